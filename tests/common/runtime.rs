//! Shared by the runtime's library-level tests (tests/runtime_*.rs): runtimes over the real
//! built-in and test-guest components, views of a process driven by hand, real HTTP and
//! TCP servers on loopback, and bounded waits.
// The re-exports below are what the runtime tests use, in one `use common::runtime::*`;
// each test file (and each other test binary that compiles this) uses only some.
#![allow(unused_imports)]

pub use std::path::PathBuf;

pub use std::sync::atomic::{AtomicUsize, Ordering};
pub use std::sync::{Arc, Mutex};
pub use std::time::Duration;

pub use futures::FutureExt;
pub use pymanager::process_view::{Level, OutputLog, ProcState, ProcessView};
pub use pymanager::runtime::{
    BUILTINS, Builtin, CacheOutcome, Grants, HostGrants, HostPattern, Limits, ModuleDecl,
    ModuleSource, Runtime, RuntimeOptions, VerifierRef,
};
pub use serde_json::json;
pub use tokio::io::{AsyncReadExt, AsyncWriteExt};
pub use tokio::net::TcpListener;
pub use tokio::sync::watch;
pub use tokio_util::sync::CancellationToken;

pub use super::{WAIT, free_port};

/// Compiled components shared by the tests of this binary (the cache tests use their own).
pub fn shared_cache() -> RuntimeOptions {
    RuntimeOptions {
        cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verifier-cache")),
        cache_key: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verifier-cache-key")),
        ..Default::default()
    }
}

pub fn guest(name: &str) -> PathBuf {
    PathBuf::from(match name {
        "looper" => env!("PYMANAGER_TEST_GUEST_LOOPER"),
        "membomb" => env!("PYMANAGER_TEST_GUEST_MEMBOMB"),
        "trapper" => env!("PYMANAGER_TEST_GUEST_TRAPPER"),
        "fileopen" => env!("PYMANAGER_TEST_GUEST_FILEOPEN"),
        "socket" => env!("PYMANAGER_TEST_GUEST_SOCKET"),
        "httpgrant" => env!("PYMANAGER_TEST_GUEST_HTTPGRANT"),
        "good" => env!("PYMANAGER_TEST_GUEST_GOOD"),
        "v100" => env!("PYMANAGER_TEST_GUEST_V100"),
        "v110" => env!("PYMANAGER_TEST_GUEST_V110"),
        "replayer" => env!("PYMANAGER_TEST_GUEST_REPLAYER"),
        other => panic!("no test guest {other}"),
    })
}

pub fn external(alias: &str, name: &str, hosts: HostGrants, limits: Limits) -> ModuleDecl {
    ModuleDecl {
        alias: alias.into(),
        source: ModuleSource::File(guest(name)),
        grants: Grants { hosts },
        limits,
    }
}

pub fn builtin(short: &str) -> (ModuleDecl, VerifierRef) {
    let b = Builtin::find(short).expect("a built-in");
    (
        b.decl().expect("embedded"),
        VerifierRef {
            module: b.module.into(),
            name: b.verifier.into(),
        },
    )
}

pub fn vref(module: &str, name: &str) -> VerifierRef {
    VerifierRef {
        module: module.into(),
        name: name.into(),
    }
}

/// A runtime with one module from `tests/guests/<guest>`, granted nothing, default limits.
pub async fn sole(alias: &str, guest: &str) -> Runtime {
    runtime(vec![external(
        alias,
        guest,
        HostGrants::none(),
        Limits::default(),
    )])
    .await
}

/// A runtime with one module from `tests/guests/<guest>`, granted `127.0.0.1:<port>` for
/// each of `ports`, default limits.
pub async fn granted(alias: &str, guest: &str, ports: &[u16]) -> Runtime {
    let grants = ports
        .iter()
        .map(|p| HostPattern::parse(&format!("127.0.0.1:{p}")).unwrap())
        .collect();
    runtime(vec![external(
        alias,
        guest,
        HostGrants::List(grants),
        Limits::default(),
    )])
    .await
}

/// A runtime with one module from `tests/guests/<guest>`, granted nothing, with a CPU
/// budget of `cpu` per call.
pub async fn with_cpu(alias: &str, guest: &str, cpu: Duration) -> Runtime {
    let limits = Limits {
        cpu_time: cpu,
        ..Limits::default()
    };
    runtime(vec![external(alias, guest, HostGrants::none(), limits)]).await
}

pub async fn runtime(modules: Vec<ModuleDecl>) -> Runtime {
    let rt = Runtime::new(shared_cache()).expect("runtime");
    rt.load(modules).await.expect("modules load");
    rt
}

/// A view of a running process: this test process itself, so that the servers a test
/// starts are listening sockets of the verified process's own (see `port-owned`).
pub fn running() -> (ProcessView, watch::Sender<ProcState>, Arc<OutputLog>) {
    ProcessView::detached(ProcState::Running { pid: me() })
}

pub fn me() -> u32 {
    std::process::id()
}

/// Sets the process's state after `after`, from another task.
pub fn later(tx: watch::Sender<ProcState>, after: Duration, state: ProcState) {
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let _ = tx.send(state);
        // Keep the sender alive: a closed channel is not an exit.
        tokio::time::sleep(WAIT).await;
    });
}

pub async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .expect("the verification did not end within the test's bound")
}

/// A real HTTP/1.1 server on an ephemeral loopback port: answers each request with the
/// status `status(n)` for the n-th request (from 0) and counts them.
pub async fn http_server(
    status: impl Fn(usize) -> u16 + Send + Sync + 'static,
) -> (u16, Arc<AtomicUsize>) {
    http_server_answering(move |n| {
        format!(
            "HTTP/1.1 {} Status\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
            status(n)
        )
    })
    .await
}

/// A real HTTP/1.1 server on an ephemeral loopback port, on the test's runtime: reads each
/// request's head and writes `answer(n)` (the whole response) for the n-th request (from
/// 0); the port and the count of requests.
pub async fn http_server_answering(
    answer: impl Fn(usize) -> String + Send + Sync + 'static,
) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let reply = answer(counter.fetch_add(1, Ordering::SeqCst));
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    (port, hits)
}

pub fn err(r: Result<(), pymanager::runtime::VerifyError>) -> String {
    match r {
        Ok(()) => panic!("expected the verifier to fail, it passed"),
        Err(e) => e.to_string(),
    }
}

/// This test process's name, as `/proc` gives it.
pub fn my_name() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .unwrap()
        .trim()
        .to_string()
}

/// A process that holds no socket: the verified process, while the port is held by this
/// test process (a leftover, from its point of view). Killed on drop.
pub struct Bystander(std::process::Child);

impl Bystander {
    pub fn start() -> (Bystander, ProcessView, watch::Sender<ProcState>) {
        let child = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .unwrap();
        let (view, tx, _) = ProcessView::detached(ProcState::Running { pid: child.id() });
        (Bystander(child), view.named("redis"), tx)
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A server that accepts connections and never answers.
pub async fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    port
}

/// Waits until `n` verifications of `rt` are parked (waiting with no instance alive).
pub async fn parked(rt: &Runtime, n: usize) {
    let started = std::time::Instant::now();
    while rt.parked_now() != n {
        assert!(
            started.elapsed() < WAIT,
            "{} verifications parked, not {n}",
            rt.parked_now()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A view of a running process whose verifier log lines are kept, for the test to read.
pub fn logged() -> (ProcessView, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let (tx, rx) = watch::channel(ProcState::Running { pid: me() });
    // The sender stays, so that the process stays running.
    std::mem::forget(tx);
    let view = ProcessView::new(
        rx,
        Arc::new(OutputLog::new()),
        CancellationToken::new(),
        Arc::new(move |_, msg: &str| sink.lock().unwrap().push(msg.to_string())),
    );
    (view, lines)
}

/// The number at the end of the one line of `lines` that starts with `prefix`.
pub fn number_after(lines: &Mutex<Vec<String>>, prefix: &str) -> u128 {
    let lines = lines.lock().unwrap();
    let found: Vec<&String> = lines.iter().filter(|l| l.starts_with(prefix)).collect();
    assert_eq!(found.len(), 1, "{lines:?}");
    found[0][prefix.len()..].trim().parse().unwrap()
}
