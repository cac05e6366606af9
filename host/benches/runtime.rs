//! What the verifier runtime costs: `cargo bench -p pymanager --bench runtime`.
//!
//! 1. compile time per component, cold (empty disk cache);
//! 2. load time from the disk cache;
//! 3. instantiate + call of a trivial verifier from the pre-instantiated component;
//! 4. memory and CPU of 1000 verifiers waiting at once (on a process's exit).
//!
//! `PYMANAGER_WASM_POOLING=1` runs it with the pooling allocator instead of on-demand
//! instance allocation (the default), for comparison. The figures are written up in docs/verifiers.md.

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

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
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
    let pooling = std::env::var("PYMANAGER_WASM_POOLING").is_ok_and(|v| v == "1");
    println!(
        "verifier runtime bench ({} allocator)",
        if pooling { "pooling" } else { "on-demand" }
    );

    // 1 + 2: cold compile, then load from the disk cache.
    let cache = tempfile::tempdir().unwrap();
    let options = RuntimeOptions {
        cache_dir: Some(cache.path().to_path_buf()),
    };
    let mut decls: Vec<ModuleDecl> = BUILTINS.iter().filter_map(|b| b.decl()).collect();
    decls.push(good());
    if let Some(py) = std::env::var_os("PYMANAGER_BENCH_PYTHON_WASM") {
        decls.push(ModuleDecl {
            alias: "python".into(),
            source: ModuleSource::File(py.into()),
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

    // 3: instantiate + call, one at a time.
    let runtime = Runtime::new(options.clone()).unwrap();
    runtime.load(vec![good()]).await.unwrap();
    let trivial = VerifierRef {
        module: "good".into(),
        name: "Trivial".into(),
    };
    let (view, _tx, _) = ProcessView::detached("bench", ProcState::Running { pid: 1 });
    for _ in 0..200 {
        runtime.verify(&trivial, "{}", view.clone()).await.unwrap();
    }
    let mut each = Vec::new();
    let n = 5000;
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        runtime.verify(&trivial, "{}", view.clone()).await.unwrap();
        each.push(t.elapsed());
    }
    let mean = started.elapsed() / n;
    println!(
        "\ninstantiate + verify (trivial verifier): median {:.1} µs, mean {:.1} µs over {n} calls",
        median(each).as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6
    );

    // 4: many verifiers waiting on one process's exit.
    let wait_end = VerifierRef {
        module: "good".into(),
        name: "WaitEnd".into(),
    };
    let (view, tx, _) = ProcessView::detached("bench", ProcState::Running { pid: 1 });
    let before = rss_bytes();
    let mut tasks = Vec::with_capacity(WAITERS);
    for _ in 0..WAITERS {
        let runtime = runtime.clone();
        let view = view.clone();
        let v = wait_end.clone();
        tasks.push(tokio::spawn(async move {
            runtime.verify(&v, r#"{"timeout": 600}"#, view).await
        }));
    }
    // Let every verifier reach its wait.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = rss_bytes();
    let cpu_before = cpu_time();
    let idle = Duration::from_secs(3);
    tokio::time::sleep(idle).await;
    let cpu_idle = cpu_time() - cpu_before;
    let _ = tx.send(ProcState::Exited { code: 0 });
    let released = Instant::now();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    println!(
        "{WAITERS} verifiers waiting at once: RSS +{:.1} MiB ({:.1} KiB each); \
         CPU while they wait: {} ms over {} s; all {WAITERS} passed {:.0} ms after the exit",
        (during.saturating_sub(before)) as f64 / (1 << 20) as f64,
        (during.saturating_sub(before)) as f64 / 1024.0 / WAITERS as f64,
        cpu_idle.as_millis(),
        idle.as_secs(),
        released.elapsed().as_secs_f64() * 1e3
    );
}
