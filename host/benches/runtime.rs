//! What the verifier runtime costs: `cargo bench -p pymanager --bench runtime`.
//!
//! 1. compile time per component, cold (empty disk cache);
//! 2. load time from the disk cache;
//! 3. instantiate + call of a trivial verifier from the pre-instantiated component
//!    (`PYMANAGER_BENCH_CALLS` of them, default 5000), then what a burst of 1000 instances
//!    alive at once leaves resident;
//! 4. memory and CPU of 1000 verifiers waiting at once (on a process's exit), and where
//!    that memory is: fiber stacks, linear memories, the rest (from /proc/self/smaps);
//! 5. CPU of 100 HTTP and 100 TCP verifiers waiting on closed loopback ports
//!    (`PYMANAGER_BENCH_CLOSED_S`, default 30 s).
//!
//! `cargo bench -p pymanager --bench runtime -- waiting` runs only 4 and 5, `-- instantiate`
//! only 3 (e.g. under `perf record`).
//!
//! `PYMANAGER_WASM_POOLING=0` runs it with on-demand instance allocation instead of the
//! pooling allocator (the default), for comparison. The figures are written up in
//! docs/verifiers.md.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pymanager::process_view::{ProcState, ProcessView};
use pymanager::runtime::{
    BUILTINS, Grants, HostGrants, Limits, ModuleDecl, ModuleSource, Runtime, RuntimeOptions,
    VerifierRef,
};

const WAITERS: usize = 1000;

fn good() -> ModuleDecl {
    ModuleDecl {
        alias: "good".into(),
        source: ModuleSource::File(PathBuf::from(env!("PYMANAGER_TEST_GUEST_GOOD"))),
        grants: Grants {
            hosts: HostGrants::none(),
        },
        limits: Limits::default(),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Resident bytes of every mapping, grouped by the mapping's size (and whether it is
/// anonymous), to see where the memory of many waiting verifiers is.
fn rss_by_mapping_size() -> std::collections::BTreeMap<(usize, bool), (usize, usize)> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut out = std::collections::BTreeMap::new();
    let mut key = (0usize, true);
    for line in smaps.lines() {
        let mut parts = line.split_whitespace();
        let first = parts.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            let anon = parts.nth(4).is_none();
            key = (b - a, anon);
        } else if first == "Rss:" {
            let kb: usize = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            let e = out.entry(key).or_insert((0, 0));
            e.0 += 1;
            e.1 += kb * 1024;
        }
    }
    out
}

/// This process's memory, in bytes: resident in all (`VmRSS`), of it private anonymous
/// memory (`RssAnon`) and shared memory such as memfd images (`RssShmem`, counted once per
/// mapping), and the proportional set size (`Pss`, a page shared by n mappings counts 1/n).
struct Memory {
    rss: isize,
    anon: isize,
    shmem: isize,
    pss: isize,
}

impl Memory {
    fn now() -> Memory {
        let field = |text: &str, name: &str| -> isize {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|kb| kb.parse::<isize>().ok())
                .unwrap_or(0)
                * 1024
        };
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
        Memory {
            rss: field(&status, "VmRSS:"),
            anon: field(&status, "RssAnon:"),
            shmem: field(&status, "RssShmem:"),
            pss: field(&rollup, "Pss:"),
        }
    }
}

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|s| s.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    // Linux reports these in clock ticks of 1/100 s.
    Duration::from_millis(ticks * 10)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let only_waiting = std::env::args().any(|a| a == "waiting");
    let pooling = std::env::var("PYMANAGER_WASM_POOLING").map_or(true, |v| v != "0");
    println!(
        "verifier runtime bench ({} allocator)",
        if pooling { "pooling" } else { "on-demand" }
    );

    // 1 + 2: cold compile, then load from the disk cache.
    let cache = tempfile::tempdir().unwrap();
    let options = RuntimeOptions {
        cache_dir: Some(cache.path().join("cache")),
        cache_key: Some(cache.path().join("key")),
        ..Default::default()
    };
    if only_waiting {
        return waiting(options).await;
    }
    if std::env::args().any(|a| a == "instantiate") {
        return instantiate_and_call(options).await;
    }
    let mut decls: Vec<ModuleDecl> = BUILTINS.iter().filter_map(|b| b.decl()).collect();
    decls.push(good());
    if let Some(py) = std::env::var_os("PYMANAGER_BENCH_PYTHON_WASM") {
        // Cargo runs a bench from its package's directory: a relative path is taken from
        // the workspace root, where the docs' command is typed.
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        decls.push(ModuleDecl {
            alias: "python".into(),
            source: ModuleSource::File(root.join(py)),
            grants: Grants {
                hosts: HostGrants::none(),
            },
            limits: Limits::default(),
        });
    }
    println!(
        "\n{:<28} {:>10} {:>14} {:>14}",
        "component", "size", "cold compile", "cache load"
    );
    for decl in &decls {
        // Each alone, so that the timings do not share the CPU.
        let runtime = Runtime::new(options.clone()).unwrap();
        runtime.load(vec![decl.clone()]).await.unwrap();
        let cold = runtime.load_report(&decl.alias).unwrap();
        let mut loads = Vec::new();
        for _ in 0..21 {
            let again = Runtime::new(options.clone()).unwrap();
            again.load(vec![decl.clone()]).await.unwrap();
            loads.push(again.load_report(&decl.alias).unwrap().compile);
        }
        println!(
            "{:<28} {:>7} KB {:>11.1} ms {:>11.2} ms",
            decl.alias,
            cold.size / 1024,
            cold.compile.as_secs_f64() * 1e3,
            median(loads).as_secs_f64() * 1e3
        );
    }

    instantiate_and_call(options.clone()).await;
    waiting(options).await;
}

async fn instantiate_and_call(options: RuntimeOptions) {
    // 3: instantiate + call, one at a time.
    let runtime = Runtime::new(options.clone()).unwrap();
    runtime.load(vec![good()]).await.unwrap();
    let trivial = VerifierRef {
        module: "good".into(),
        name: "Trivial".into(),
    };
    let (view, _tx, _) = ProcessView::detached(ProcState::Running { pid: 1 });
    for _ in 0..200 {
        runtime.verify(&trivial, "{}", view.clone()).await.unwrap();
    }
    let mut each = Vec::new();
    let n: u32 = std::env::var("PYMANAGER_BENCH_CALLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000);
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        runtime.verify(&trivial, "{}", view.clone()).await.unwrap();
        each.push(t.elapsed());
    }
    let mean = started.elapsed() / n;
    each.sort();
    let pct = |p: usize| each[(each.len() * p / 100).min(each.len() - 1)].as_secs_f64() * 1e6;
    println!(
        "\ninstantiate + verify (trivial verifier): median {:.1} µs, mean {:.1} µs, p90 {:.1} µs, \
         p99 {:.1} µs over {n} calls",
        pct(50),
        mean.as_secs_f64() * 1e6,
        pct(90),
        pct(99)
    );
    // A burst of live instances at once: what stays resident afterwards.
    let wait_end = VerifierRef {
        module: "good".into(),
        name: "WaitEnd".into(),
    };
    let before = Memory::now();
    let maps_before = rss_by_mapping_size();
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let runtime = runtime.clone();
        let view = view.clone();
        let v = wait_end.clone();
        tasks.push(tokio::spawn(async move {
            runtime.verify(&v, r#"{"timeout": 0.15}"#, view).await
        }));
    }
    let mut failed = 0;
    for t in tasks {
        failed += usize::from(t.await.unwrap().is_err());
    }
    let after = Memory::now();
    let mib = |b: isize| b as f64 / (1 << 20) as f64;
    println!(
        "a burst of 1000 instances alive at once ({failed} of 1000 waits timed out, as they \
         should), once it ended: RSS {:+.1} MiB, PSS {:+.1} MiB, private {:+.1} MiB",
        mib(after.rss - before.rss),
        mib(after.pss - before.pss),
        mib(after.anon - before.anon)
    );
    for ((size, anon), n, rss) in grown(&maps_before, &rss_by_mapping_size(), 6) {
        println!(
            "  mappings of {} KiB ({}): {n:+} mappings, {:+.1} MiB",
            size / 1024,
            if anon { "anonymous" } else { "file" },
            mib(rss)
        );
    }
}

/// The mapping sizes whose resident memory grew the most from `before` to `after`, at most
/// `n`: (size, anonymous), mappings added, bytes grown.
fn grown(
    before: &std::collections::BTreeMap<(usize, bool), (usize, usize)>,
    after: &std::collections::BTreeMap<(usize, bool), (usize, usize)>,
    n: usize,
) -> Vec<((usize, bool), isize, isize)> {
    let mut grown: Vec<((usize, bool), isize, isize)> = after
        .iter()
        .map(|(k, (count, rss))| {
            let (count0, rss0) = before.get(k).copied().unwrap_or((0, 0));
            (
                *k,
                *count as isize - count0 as isize,
                *rss as isize - rss0 as isize,
            )
        })
        .collect();
    grown.sort_by_key(|g| -g.2);
    grown.truncate(n);
    grown
}

async fn waiting(options: RuntimeOptions) {
    let runtime = Runtime::new(options).unwrap();
    let mut decls: Vec<ModuleDecl> = BUILTINS.iter().filter_map(|b| b.decl()).collect();
    decls.push(good());
    runtime.load(decls).await.unwrap();
    // 4: many verifiers waiting on one process's exit.
    let wait_end = VerifierRef {
        module: "good".into(),
        name: "WaitEnd".into(),
    };
    let (view, tx, _) = ProcessView::detached(ProcState::Running { pid: 1 });
    let before = Memory::now();
    let maps_before = rss_by_mapping_size();
    let mut tasks = Vec::with_capacity(WAITERS);
    for _ in 0..WAITERS {
        let runtime = runtime.clone();
        let view = view.clone();
        let v = wait_end.clone();
        tasks.push(tokio::spawn(async move {
            runtime.verify(&v, r#"{"timeout": 600}"#, view).await
        }));
    }
    // Each one parks in `wait-exit` (its instance dropped, see `runtime::journal`).
    let started = Instant::now();
    while runtime.parked_now() < WAITERS {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "only {} of {WAITERS} verifiers reached their wait",
            runtime.parked_now()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reached = started.elapsed();
    let during = Memory::now();
    let maps = rss_by_mapping_size();
    let cpu_before = cpu_time();
    let idle = Duration::from_secs(3);
    tokio::time::sleep(idle).await;
    let cpu_idle = cpu_time() - cpu_before;
    let _ = tx.send(ProcState::Exited { code: 0 });
    let released = Instant::now();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let per = |b: isize| b as f64 / 1024.0 / WAITERS as f64;
    println!(
        "\n{WAITERS} verifiers waiting at once (all waiting {:.1} s after they were started): \
         RSS +{:.1} MiB ({:.1} KiB each); CPU while they wait: {} ms over {} s; \
         all {WAITERS} passed {:.0} ms after the exit",
        reached.as_secs_f64(),
        (during.rss - before.rss) as f64 / (1 << 20) as f64,
        per(during.rss - before.rss),
        cpu_idle.as_millis(),
        idle.as_secs(),
        released.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "  per waiting verifier: private (anonymous) {:+.1} KiB, shared pages of memory images \
         {:+.1} KiB (counted once per mapping by RSS), proportional set size {:+.1} KiB",
        per(during.anon - before.anon),
        per(during.shmem - before.shmem),
        per(during.pss - before.pss)
    );
    // Where that memory is: the mapping sizes whose resident memory grew the most (a
    // fiber stack is a mapping of ASYNC_STACK_SIZE; a linear memory one of its current
    // size, inside a reservation of GiBs; the heap grows in large anonymous mappings).
    for ((size, anon), n, rss) in grown(&maps_before, &maps, 8) {
        println!(
            "  mappings of {} KiB ({}): {n:+} mappings, {:+.1} KiB per waiting verifier",
            size / 1024,
            if anon { "anonymous" } else { "file" },
            per(rss)
        );
    }
    println!(
        "  (the engine's async stack size is {} KiB)",
        pymanager::runtime::ASYNC_STACK_SIZE / 1024
    );

    // 5: verifiers retrying closed loopback ports: what does waiting cost in CPU?
    let secs: u64 = std::env::var("PYMANAGER_BENCH_CLOSED_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (view, _tx, _) = ProcessView::detached(ProcState::Running { pid: 1 });
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (module, name, args) = if i % 2 == 0 {
            (
                "pymutils.http_verifier",
                "HttpOkVerifier",
                format!(r#"{{"url": "http://127.0.0.1:{closed}/", "timeout": {secs}}}"#),
            )
        } else {
            (
                "pymanager.tcp_verifier",
                "TcpPortVerifier",
                format!(r#"{{"port": {closed}, "timeout": {secs}}}"#),
            )
        };
        let v = VerifierRef {
            module: module.into(),
            name: name.into(),
        };
        let runtime = runtime.clone();
        let view = view.clone();
        tasks.push(tokio::spawn(async move {
            runtime.verify(&v, &args, view).await
        }));
    }
    let cpu_before = cpu_time();
    let started = Instant::now();
    let mut failed = 0;
    for t in tasks {
        failed += usize::from(t.await.unwrap().is_err());
    }
    println!(
        "100 HTTP + 100 TCP verifiers on a closed loopback port for {secs} s: CPU {} ms \
         ({:.2} ms per verifier per second); {failed} gave up after {:.1} s",
        (cpu_time() - cpu_before).as_millis(),
        (cpu_time() - cpu_before).as_secs_f64() * 1e3 / 200.0 / secs as f64,
        started.elapsed().as_secs_f64()
    );
}
