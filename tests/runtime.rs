//! The verifier runtime at library level: real components (the built-ins and the hostile
//! guests of tests/guests), real HTTP and TCP servers on loopback, and process states
//! driven through `ProcessView::detached`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use pymanager::process_view::{Level, OutputLog, ProcState, ProcessView};
use pymanager::runtime::{
    BUILTINS, Builtin, CacheOutcome, Grants, HostGrants, HostPattern, Limits, ModuleDecl,
    ModuleSource, Runtime, RuntimeOptions, VerifierRef,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Generous bound on anything a test waits for; only reached when something is broken.
const WAIT: Duration = Duration::from_secs(60);

/// Compiled components shared by the tests of this binary (the cache tests use their own).
fn shared_cache() -> RuntimeOptions {
    RuntimeOptions {
        cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verifier-cache")),
        cache_key: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verifier-cache-key")),
        ..Default::default()
    }
}

fn guest(name: &str) -> PathBuf {
    PathBuf::from(match name {
        "looper" => env!("PYMANAGER_TEST_GUEST_LOOPER"),
        "membomb" => env!("PYMANAGER_TEST_GUEST_MEMBOMB"),
        "trapper" => env!("PYMANAGER_TEST_GUEST_TRAPPER"),
        "fileopen" => env!("PYMANAGER_TEST_GUEST_FILEOPEN"),
        "socket" => env!("PYMANAGER_TEST_GUEST_SOCKET"),
        "httpgrant" => env!("PYMANAGER_TEST_GUEST_HTTPGRANT"),
        "good" => env!("PYMANAGER_TEST_GUEST_GOOD"),
        "v100" => env!("PYMANAGER_TEST_GUEST_V100"),
        other => panic!("no test guest {other}"),
    })
}

fn external(alias: &str, name: &str, hosts: HostGrants, limits: Limits) -> ModuleDecl {
    ModuleDecl {
        alias: alias.into(),
        source: ModuleSource::File(guest(name)),
        grants: Grants { hosts },
        limits,
    }
}

fn builtin(short: &str) -> (ModuleDecl, VerifierRef) {
    let b = Builtin::find(short).expect("a built-in");
    (
        b.decl().expect("embedded"),
        VerifierRef {
            module: b.module.into(),
            name: b.verifier.into(),
        },
    )
}

fn vref(module: &str, name: &str) -> VerifierRef {
    VerifierRef {
        module: module.into(),
        name: name.into(),
    }
}

/// A runtime with one module from `tests/guests/<guest>`, granted nothing, default limits.
async fn sole(alias: &str, guest: &str) -> Runtime {
    runtime(vec![external(
        alias,
        guest,
        HostGrants::none(),
        Limits::default(),
    )])
    .await
}

async fn runtime(modules: Vec<ModuleDecl>) -> Runtime {
    let rt = Runtime::new(shared_cache()).expect("runtime");
    rt.load(modules).await.expect("modules load");
    rt
}

fn running() -> (ProcessView, watch::Sender<ProcState>, Arc<OutputLog>) {
    ProcessView::detached(ProcState::Running { pid: 4242 })
}

/// Sets the process's state after `after`, from another task.
fn later(tx: watch::Sender<ProcState>, after: Duration, state: ProcState) {
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let _ = tx.send(state);
        // Keep the sender alive: a closed channel is not an exit.
        tokio::time::sleep(WAIT).await;
    });
}

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .expect("the verification did not end within the test's bound")
}

/// A real HTTP/1.1 server on an ephemeral loopback port: answers each request with the
/// status `status(n)` for the n-th request (from 0) and counts them.
async fn http_server(
    status: impl Fn(usize) -> u16 + Send + Sync + 'static,
) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let status = Arc::new(status);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let code = status(n);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let reply = format!(
                    "HTTP/1.1 {code} Status\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    (port, hits)
}

/// A loopback port with nothing listening on it.
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

fn err(r: Result<(), pymanager::runtime::VerifyError>) -> String {
    match r {
        Ok(()) => panic!("expected the verifier to fail, it passed"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn builtins_load_and_list_their_verifier() {
    let decls: Vec<_> = BUILTINS
        .iter()
        .map(|b| b.decl().expect("embedded"))
        .collect();
    let rt = runtime(decls).await;
    for b in BUILTINS {
        assert_eq!(rt.names(b.module), Some(vec![b.verifier.to_string()]));
    }
    assert_eq!(rt.names("nope"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn http_passes_once_the_server_answers_2xx() {
    let (decl, v) = builtin("http");
    let rt = runtime(vec![decl]).await;
    let (port, hits) = http_server(|n| if n < 2 { 503 } else { 204 }).await;
    let args =
        json!({"url": format!("http://127.0.0.1:{port}/health"), "interval": 0.05}).to_string();
    rt.validate(&v, &args).await.expect("valid args");
    let (view, _tx, _) = running();
    bounded(rt.verify(&v, &args, view)).await.expect("passes");
    assert!(hits.load(Ordering::SeqCst) >= 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn http_follows_a_redirect_to_a_2xx() {
    let (decl, v) = builtin("http");
    let rt = runtime(vec![decl]).await;
    let (target, target_hits) = http_server(|_| 200).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            let reply = format!(
                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{target}/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = sock.write_all(reply.as_bytes()).await;
        }
    });
    let args = json!({"url": format!("http://127.0.0.1:{port}/")}).to_string();
    let (view, _tx, _) = running();
    bounded(rt.verify(&v, &args, view))
        .await
        .expect("passes after the redirect");
    assert_eq!(target_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn http_fails_with_the_last_status_after_its_timeout() {
    let (decl, v) = builtin("http");
    let rt = runtime(vec![decl]).await;
    let (port, _) = http_server(|_| 500).await;
    let url = format!("http://127.0.0.1:{port}/");
    let args = json!({"url": url, "timeout": 0.5, "interval": 0.1}).to_string();
    let (view, _tx, _) = running();
    let e = err(bounded(rt.verify(&v, &args, view)).await);
    assert!(e.contains(&format!("{url} answered 500")), "{e}");
    assert!(e.contains("gave up after 500 ms"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_gives_up_when_the_process_exits() {
    let (decl, v) = builtin("http");
    let rt = runtime(vec![decl]).await;
    let port = closed_port().await;
    let args = json!({"url": format!("http://127.0.0.1:{port}/"), "interval": 0.05}).to_string();
    let (view, tx, _) = running();
    later(
        tx,
        Duration::from_millis(200),
        ProcState::Exited { code: 3 },
    );
    let e = err(bounded(rt.verify(&v, &args, view)).await);
    assert!(
        e.starts_with("process exited with code 3 before answering"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn http_gives_up_on_shutdown() {
    let (decl, v) = builtin("http");
    let rt = runtime(vec![decl]).await;
    let port = closed_port().await;
    let args = json!({"url": format!("http://127.0.0.1:{port}/")}).to_string();
    let (view, _tx, _) = running();
    let token: CancellationToken = view.shutdown().clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        token.cancel();
    });
    let e = err(bounded(rt.verify(&v, &args, view)).await);
    assert!(e.contains("pymanager is shutting down"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_arguments_are_checked_at_validate() {
    let (decl, v) = builtin("http");
    let rt = runtime(vec![decl]).await;
    let cases = [
        (json!({}), "url: missing field"),
        (json!({"url": 5}), "url: expected a string, got integer `5`"),
        (
            json!({"url": "http://x/", "timeout": "x"}),
            "timeout: expected a number of seconds (0 or more), or null for no limit, got string \"x\"",
        ),
        (
            json!({"url": "ftp://x/"}),
            "url: expected an http:// or https:// URL, got 'ftp://x/'",
        ),
        (
            json!({"url": "http://x/", "headers": {"a": 1}}),
            "headers.a: expected a string",
        ),
        (
            json!({"url": "http://x/", "interval": 0}),
            "interval: expected a number of seconds above 0, got integer `0`",
        ),
    ];
    for (args, want) in cases {
        let e = rt.validate(&v, &args.to_string()).await.expect_err(want);
        assert!(e.0.starts_with(want), "{args}: got '{e}', want '{want}…'");
    }
    let warnings = rt
        .validate(
            &v,
            &json!({"url": "https://x/", "timeout": "3", "interval": null, "headers": {"a": "b"}})
                .to_string(),
        )
        .await
        .expect("valid");
    assert_eq!(warnings, Vec::<String>::new());
    // Keys the verifier does not take are ignored, as the original did, with a warning each.
    let warnings = rt
        .validate(
            &v,
            &json!({"url": "http://x/", "tiemout": 3, "description": "x"}).to_string(),
        )
        .await
        .expect("unknown keys are not fatal");
    assert_eq!(
        warnings,
        [
            "tiemout: unknown argument, ignored (expected one of url, timeout, interval, headers)",
            "description: unknown argument, ignored (expected one of url, timeout, interval, headers)"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exited_waits_for_the_exit_event() {
    let (decl, v) = builtin("exited");
    let rt = runtime(vec![decl]).await;

    let (view, tx, _) = running();
    later(
        tx,
        Duration::from_millis(100),
        ProcState::Exited { code: 0 },
    );
    bounded(rt.verify(&v, "{}", view))
        .await
        .expect("exit 0 passes");

    let (view, tx, _) = running();
    later(
        tx,
        Duration::from_millis(100),
        ProcState::Exited { code: 3 },
    );
    let e = err(bounded(rt.verify(&v, "{}", view)).await);
    assert_eq!(e, "exited with code 3, expected 0");

    let (view, tx, _) = running();
    later(
        tx,
        Duration::from_millis(100),
        ProcState::Signaled { signal: 9 },
    );
    let e = err(bounded(rt.verify(&v, r#"{"expect_code": 0}"#, view)).await);
    assert_eq!(e, "killed by signal 9, expected 0");

    // As in the original, minus a signal number expects that signal.
    let (view, _tx, _) = ProcessView::detached(ProcState::Signaled { signal: 15 });
    bounded(rt.verify(&v, r#"{"expect_code": -15}"#, view))
        .await
        .expect("-15 matches SIGTERM");

    let (view, _tx, _) = running();
    let e = err(bounded(rt.verify(&v, r#"{"timeout": 0.2}"#, view)).await);
    assert_eq!(e, "still running after 200 ms");

    let e = rt
        .validate(&v, r#"{"expect_code": "0"}"#)
        .await
        .unwrap_err();
    assert_eq!(e.0, "expect_code: expected an integer, got string \"0\"");
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_passes_on_a_listening_port_and_gives_up_on_exit() {
    let (decl, v) = builtin("tcp");
    let rt = runtime(vec![decl]).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (view, _tx, _) = running();
    bounded(rt.verify(&v, &json!({"port": port}).to_string(), view))
        .await
        .expect("listening");

    let port = closed_port().await;
    let (view, tx, _) = running();
    later(
        tx,
        Duration::from_millis(200),
        ProcState::Exited { code: 1 },
    );
    let e = err(bounded(rt.verify(&v, &json!({"port": port}).to_string(), view)).await);
    assert!(
        e.starts_with("process exited with code 1 before listening"),
        "{e}"
    );

    let e = rt.validate(&v, r#"{"port": 0}"#).await.unwrap_err();
    assert_eq!(e.0, "port: must be between 1 and 65535");
    let e = rt.validate(&v, r#"{"port": 70000}"#).await.unwrap_err();
    assert!(e.0.starts_with("port: expected"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn output_waits_for_a_matching_line() {
    let (decl, v) = builtin("output");
    let rt = runtime(vec![decl]).await;
    let (view, _tx, out) = running();
    out.push("starting");
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        out.push("listening on port 8080");
    });
    let args = json!({"pattern": r"listening on port \d+"}).to_string();
    rt.validate(&v, &args).await.expect("valid pattern");
    bounded(rt.verify(&v, &args, view))
        .await
        .expect("line seen");

    let (view, tx, out) = running();
    out.push("nothing to see");
    later(
        tx,
        Duration::from_millis(100),
        ProcState::Exited { code: 2 },
    );
    let e = err(bounded(rt.verify(&v, &args, view)).await);
    assert_eq!(
        e,
        r"process exited with code 2 without printing a line matching /listening on port \d+/"
    );

    let e = rt
        .validate(&v, r#"{"pattern": "(unclosed"}"#)
        .await
        .unwrap_err();
    assert!(
        e.0.starts_with("pattern: invalid regular expression /(unclosed/: unclosed group"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// Hostile guests: each fails alone, with a clear message.

/// Scanning the output for a guest's pattern is work done for the guest: a pattern that
/// makes each line cost milliseconds stops the guest at its CPU budget, as a loop would.
#[tokio::test(flavor = "multi_thread")]
async fn output_scans_are_charged_to_the_guest_cpu_budget() {
    let limits = Limits {
        cpu_time: Duration::from_millis(500),
        ..Limits::default()
    };
    let rt = runtime(vec![external(
        "hostile",
        "looper",
        HostGrants::none(),
        limits,
    )])
    .await;
    let (view, _tx, out) = running();
    let long = "a".repeat(4000);
    for _ in 0..1000 {
        out.push(&long);
    }
    let args = r#"{"pattern": "[a-z]{1,300}[a-z]{1,300}z"}"#;
    let e = err(bounded(rt.verify(&vref("hostile", "Scan"), args, view)).await);
    assert_eq!(
        e,
        "verifier hostile.Scan ran longer than 500 ms of CPU time"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_loop_is_stopped_by_its_cpu_deadline() {
    let limits = Limits {
        cpu_time: Duration::from_millis(300),
        ..Limits::default()
    };
    let rt = runtime(vec![external(
        "spinner",
        "looper",
        HostGrants::none(),
        limits,
    )])
    .await;
    let (view, _tx, _) = running();
    let e = err(bounded(rt.verify(&vref("spinner", "Spin"), "{}", view)).await);
    assert_eq!(
        e,
        "verifier spinner.Spin ran longer than 300 ms of CPU time"
    );
    let e = bounded(rt.validate(&vref("spinner", "SpinAtValidate"), "{}"))
        .await
        .unwrap_err();
    assert_eq!(
        e.0,
        "verifier spinner.SpinAtValidate ran longer than 300 ms of CPU time"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_bomb_is_stopped_by_its_memory_cap() {
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    let rt = runtime(vec![external("hog", "membomb", HostGrants::none(), limits)]).await;
    let (view, _tx, _) = running();
    let e = err(bounded(rt.verify(&vref("hog", "Hog"), "{}", view)).await);
    assert_eq!(e, "verifier hog.Hog exceeded its memory limit of 16 MiB");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_fails_the_call_with_what_the_guest_said() {
    let rt = sole("t", "trapper").await;
    let (view, _tx, _) = running();
    let e = err(bounded(rt.verify(&vref("t", "Panic"), "{}", view.clone())).await);
    assert!(e.starts_with("verifier t.Panic crashed"), "{e}");
    assert!(e.contains("the verifier gave up in a panic"), "{e}");
    let e = err(bounded(rt.verify(&vref("t", "Unreachable"), "{}", view)).await);
    assert!(e.starts_with("verifier t.Unreachable crashed"), "{e}");
    assert!(e.contains("unreachable"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sandbox_has_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "s3cret").unwrap();
    let escaped = dir.path().join("escaped.txt");
    let rt = sole("f", "fileopen").await;
    let args = json!({"read": secret, "write": escaped}).to_string();
    let (view, _tx, _) = running();
    let e = err(bounded(rt.verify(&vref("f", "OpenFile"), &args, view)).await);
    assert!(e.starts_with("no file access: read: "), "{e}");
    assert!(!escaped.exists(), "the guest created a file on the host");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sandbox_has_no_sockets_of_its_own() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let rt = runtime(vec![external(
        "s",
        "socket",
        HostGrants::Any,
        Limits::default(),
    )])
    .await;
    let (view, _tx, _) = running();
    let e = err(bounded(rt.verify(
        &vref("s", "RawSocket"),
        &json!({"port": port}).to_string(),
        view,
    ))
    .await);
    assert!(e.starts_with("no socket: "), "{e}");
    tokio::task::yield_now().await;
    assert!(
        listener.accept().now_or_never().is_none(),
        "the guest's connection reached the listener"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_outside_the_grants_is_refused_with_the_grant_to_add() {
    let (port, hits) = http_server(|_| 200).await;
    let other = closed_port().await;
    let grants = HostGrants::List(vec![
        HostPattern::parse(&format!("127.0.0.1:{other}")).unwrap(),
    ]);
    let rt = runtime(vec![external(
        "mymod",
        "httpgrant",
        grants,
        Limits::default(),
    )])
    .await;
    let (view, _tx, _) = running();
    let args = json!({"url": format!("http://127.0.0.1:{port}/")}).to_string();
    let e = err(bounded(rt.verify(&vref("mymod", "HttpAnywhere"), &args, view.clone())).await);
    assert_eq!(
        e,
        format!(
            "http://127.0.0.1:{port}/: 127.0.0.1:{port} is not granted to module 'mymod': \
             add \"127.0.0.1:{port}\" to modules.mymod.allow.hosts"
        )
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the request reached the server"
    );

    let args = json!({"host": "10.0.0.5", "port": 80}).to_string();
    let e = err(bounded(rt.verify(&vref("mymod", "TcpAnywhere"), &args, view)).await);
    assert_eq!(
        e,
        "10.0.0.5:80 is not granted to module 'mymod': add \"10.0.0.5:80\" to \
         modules.mymod.allow.hosts"
    );
}

/// The SDK's retry loop stops at the first refusal that retrying cannot fix (a host not
/// granted, a URL that is not one) instead of retrying it until its ten minutes are up
/// (this test's bound is one minute), and still retries what may pass later.
#[tokio::test(flavor = "multi_thread")]
async fn the_sdks_retry_fails_at_once_on_what_retrying_cannot_fix() {
    let (port, hits) = http_server(|n| if n < 2 { 503 } else { 200 }).await;
    let closed = closed_port().await;
    let grants = HostGrants::List(vec![
        HostPattern::parse(&format!("127.0.0.1:{closed}")).unwrap(),
    ]);
    let rt = runtime(vec![external(
        "mymod",
        "httpgrant",
        grants,
        Limits::default(),
    )])
    .await;
    let (view, _tx, _) = running();
    let retry = vref("mymod", "RetryAnywhere");

    let args = json!({"url": format!("http://127.0.0.1:{port}/")}).to_string();
    let e = err(bounded(rt.verify(&retry, &args, view.clone())).await);
    assert_eq!(
        e,
        format!(
            "http://127.0.0.1:{port}/: 127.0.0.1:{port} is not granted to module 'mymod': \
             add \"127.0.0.1:{port}\" to modules.mymod.allow.hosts"
        )
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    let args = json!({"url": "ftp://127.0.0.1/"}).to_string();
    let e = err(bounded(rt.verify(&retry, &args, view.clone())).await);
    assert_eq!(
        e,
        "ftp://127.0.0.1/: 'ftp' URLs are not supported; use http:// or https://"
    );

    // A refused connection is retried: the process ending stops the loop, with the refusal.
    let (view, tx, _) = running();
    later(
        tx,
        Duration::from_millis(300),
        ProcState::Exited { code: 1 },
    );
    let args = json!({"url": format!("http://127.0.0.1:{closed}/")}).to_string();
    let e = err(bounded(rt.verify(&retry, &args, view)).await);
    assert!(
        e.starts_with("process exited with code 1 before passing (last attempt: "),
        "{e}"
    );
}

/// A module built against WIT 1.0.0 (tests/guests/v100: bindings from its own copy of the
/// 1.0.0 WIT, no SDK) still runs on this host: HTTP and TCP to granted hosts, the exit
/// event, and a refusal as the plain string 1.0.0 defines.
#[tokio::test(flavor = "multi_thread")]
async fn a_component_built_against_wit_1_0_0_still_runs() {
    let bytes = std::fs::read(guest("v100")).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("pymanager:verifier/host@1.0.0"));
    assert!(text.contains("pymanager:verifier/verifier@1.0.0"));
    assert!(
        !text.contains("@1.1.0"),
        "the 1.0.0 guest was built against 1.1.0"
    );

    let (port, hits) = http_server(|_| 200).await;
    let grants = HostGrants::List(vec![
        HostPattern::parse(&format!("127.0.0.1:{port}")).unwrap(),
    ]);
    let rt = runtime(vec![external("old", "v100", grants, Limits::default())]).await;
    assert_eq!(
        rt.names("old"),
        Some(vec![
            "HttpGet".to_string(),
            "TcpOpen".to_string(),
            "ExitsZero".to_string()
        ])
    );
    let (view, tx, _) = running();
    let args = json!({"url": format!("http://127.0.0.1:{port}/")}).to_string();
    bounded(rt.verify(&vref("old", "HttpGet"), &args, view.clone()))
        .await
        .expect("HTTP through 1.0.0's http-request");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let args = json!({"port": port}).to_string();
    bounded(rt.verify(&vref("old", "TcpOpen"), &args, view.clone()))
        .await
        .expect("TCP through 1.0.0's tcp-connect");

    let args = json!({"port": 1}).to_string();
    let e = err(bounded(rt.verify(&vref("old", "TcpOpen"), &args, view.clone())).await);
    assert_eq!(
        e,
        "127.0.0.1:1 is not granted to module 'old': add \"127.0.0.1:1\" to modules.old.allow.hosts"
    );

    later(tx, Duration::from_millis(50), ProcState::Exited { code: 0 });
    bounded(rt.verify(&vref("old", "ExitsZero"), "{}", view))
        .await
        .expect("the exit event through 1.0.0's wait-exit");
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_guests_fail_alone_while_a_good_one_passes() {
    let tight = Limits {
        cpu_time: Duration::from_millis(500),
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    let (http, http_ref) = builtin("http");
    let rt = runtime(vec![
        external("spinner", "looper", HostGrants::none(), tight),
        external("hog", "membomb", HostGrants::none(), tight),
        external("t", "trapper", HostGrants::none(), tight),
        external("good", "good", HostGrants::none(), Limits::default()),
        http,
    ])
    .await;
    let (port, _) = http_server(|n| if n < 3 { 503 } else { 200 }).await;
    let http_args =
        json!({"url": format!("http://127.0.0.1:{port}/"), "interval": 0.1}).to_string();
    let (view, tx, _) = running();
    later(
        tx,
        Duration::from_millis(300),
        ProcState::Exited { code: 0 },
    );

    let refs = [
        vref("spinner", "Spin"),
        vref("hog", "Hog"),
        vref("t", "Panic"),
        vref("good", "WaitEnd"),
    ];
    let (spin, hog, trap, good, web) = bounded(async {
        tokio::join!(
            rt.verify(&refs[0], "{}", view.clone()),
            rt.verify(&refs[1], "{}", view.clone()),
            rt.verify(&refs[2], "{}", view.clone()),
            rt.verify(&refs[3], "{}", view.clone()),
            rt.verify(&http_ref, &http_args, running().0),
        )
    })
    .await;
    assert!(err(spin).contains("ran longer than 500 ms of CPU time"));
    assert!(err(hog).contains("exceeded its memory limit of 16 MiB"));
    assert!(err(trap).contains("crashed"));
    good.expect("the good verifier passes beside the hostile ones");
    web.expect("the http verifier passes beside the hostile ones");
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_a_verification_stops_it_and_the_runtime_goes_on() {
    let limits = Limits {
        cpu_time: Duration::from_secs(600),
        ..Limits::default()
    };
    let rt = runtime(vec![
        external("spinner", "looper", HostGrants::none(), limits),
        external("good", "good", HostGrants::none(), Limits::default()),
    ])
    .await;
    let (view, _tx, _) = running();
    let cut = tokio::time::timeout(
        Duration::from_millis(300),
        rt.verify(&vref("spinner", "Spin"), "{}", view.clone()),
    )
    .await;
    assert!(cut.is_err(), "the endless loop returned");
    bounded(rt.verify(&vref("good", "Trivial"), "{}", view))
        .await
        .expect("still works");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_longer_than_the_call_timeout_is_cut() {
    let limits = Limits {
        call_timeout: Some(Duration::from_millis(300)),
        ..Limits::default()
    };
    let rt = runtime(vec![external("good", "good", HostGrants::none(), limits)]).await;
    let (view, _tx, _) = running();
    let e = err(bounded(rt.verify(&vref("good", "WaitEnd"), r#"{"timeout": 30}"#, view)).await);
    assert_eq!(
        e,
        "verifier good.WaitEnd did not finish within 300 ms (its module's call time-out)"
    );
}

/// Instances come from a pool of fixed size: when every slot is taken, a new verification
/// waits for one to end instead of failing (`could not start`), and a parked one (holding
/// no slot) is replayed once a slot frees.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_instance_pool_makes_new_instances_wait_not_fail() {
    let rt = Runtime::new(RuntimeOptions {
        instances: Some(2),
        ..shared_cache()
    })
    .expect("runtime");
    rt.load(vec![external(
        "good",
        "good",
        HostGrants::none(),
        Limits::default(),
    )])
    .await
    .expect("loads");
    let (view, tx, out) = running();
    // Six at once, each holding its instance while it waits live (below the park bound).
    let live: Vec<_> = (0..6)
        .map(|_| {
            let (rt, view) = (rt.clone(), view.clone());
            tokio::spawn(async move {
                rt.verify(&vref("good", "WaitEnd"), r#"{"timeout": 0.15}"#, view)
                    .await
            })
        })
        .collect();
    // And one that parks, then needs a slot again for its replay.
    let journey = {
        let (rt, view) = (rt.clone(), view.clone());
        tokio::spawn(async move {
            let args = json!({"sleep_ms": 300, "pattern": "^ready$", "timeout": 60});
            rt.verify(&vref("good", "Journey"), &args.to_string(), view)
                .await
        })
    };
    for t in live {
        let e = err(bounded(t).await.unwrap());
        assert_eq!(e, "still running (pid 4242)");
    }
    out.push("ready");
    later(tx, Duration::ZERO, ProcState::Exited { code: 0 });
    bounded(journey)
        .await
        .unwrap()
        .expect("the parked one passes");
}

/// Waits until `n` verifications of `rt` are parked (waiting with no instance alive).
async fn parked(rt: &Runtime, n: usize) {
    let started = std::time::Instant::now();
    while rt.parked_now() != n {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{} verifications parked, not {n}",
            rt.parked_now()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_wait_parks_and_the_replayed_verifier_goes_on_where_it_was() {
    let rt = sole("good", "good").await;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let (tx, rx) = watch::channel(ProcState::Running { pid: 7 });
    let out = Arc::new(OutputLog::new());
    let view = ProcessView::new(
        rx,
        out.clone(),
        CancellationToken::new(),
        Arc::new(move |_, msg: &str| sink.lock().unwrap().push(msg.to_string())),
    );
    let said = || lines.lock().unwrap().clone();
    let verify = tokio::spawn({
        let rt = rt.clone();
        async move {
            rt.verify(
                &vref("good", "Journey"),
                r#"{"sleep_ms": 400, "pattern": "^ready on (\\d+)$", "timeout": 60}"#,
                view,
            )
            .await
        }
    });
    // Waits until the verifier has logged `n` lines and is parked again.
    let at = |n: usize| {
        let said = &said;
        let rt = &rt;
        let verify = &verify;
        async move {
            let started = std::time::Instant::now();
            while said().len() < n || rt.parked_now() != 1 {
                assert!(started.elapsed() < Duration::from_secs(120), "{:?}", said());
                assert!(!verify.is_finished(), "ended early; it said {:?}", said());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    // The sleep parks, then the wait for a line (none printed yet).
    at(2).await;
    out.push("warming up");
    out.push("ready on 8080");
    // Then the wait for the exit parks.
    at(3).await;
    tx.send(ProcState::Exited { code: 3 }).unwrap();
    bounded(verify).await.unwrap().unwrap();
    assert_eq!(rt.parked_now(), 0);
    // Each line once: a replay answers `log` from the journal and shows nothing again.
    assert_eq!(
        said(),
        vec![
            "start, process running (pid 7)",
            "slept",
            "saw ready on 8080",
            "ended: exited with code 3",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parked_verification_ends_at_shutdown_and_when_dropped() {
    let rt = sole("good", "good").await;
    let token = CancellationToken::new();
    let (_tx, rx) = watch::channel(ProcState::Running { pid: 1 });
    let view = ProcessView::new(
        rx,
        Arc::new(OutputLog::new()),
        token.clone(),
        Arc::new(|_, _: &str| {}),
    );
    let wait_end = || {
        let (rt, view) = (rt.clone(), view.clone());
        tokio::spawn(async move {
            rt.verify(&vref("good", "WaitEnd"), r#"{"timeout": 600}"#, view)
                .await
        })
    };
    let waiting = wait_end();
    parked(&rt, 1).await;
    // Dropped while parked: the count goes down, nothing is left waiting.
    let dropped = wait_end();
    parked(&rt, 2).await;
    dropped.abort();
    parked(&rt, 1).await;
    token.cancel();
    let e = err(bounded(waiting).await.unwrap());
    assert_eq!(e, "still running (pid 1)");
    assert_eq!(rt.parked_now(), 0);
}

// ---------------------------------------------------------------------------------------
// External modules: loading, names, arguments, logs.

#[tokio::test(flavor = "multi_thread")]
async fn an_external_module_lists_validates_and_logs() {
    let rt = sole("good", "good").await;
    assert_eq!(
        rt.names("good"),
        Some(vec![
            "Trivial".to_string(),
            "WaitEnd".into(),
            "Say".into(),
            "Journey".into()
        ])
    );
    let e = rt.validate(&vref("good", "Nope"), "{}").await.unwrap_err();
    assert_eq!(
        e.0,
        "module 'good' has no verifier 'Nope' (it provides: Trivial, WaitEnd, Say, Journey)"
    );
    let e = rt
        .validate(&vref("good", "Say"), r#"{"message": ""}"#)
        .await
        .unwrap_err();
    assert_eq!(e.0, "message: must not be empty");
    let e = rt
        .validate(&vref("good", "Say"), r#"{"message": "x", "loud": true}"#)
        .await
        .unwrap_err();
    assert!(e.0.starts_with("loud: unknown argument"), "{e}");

    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let (_tx, rx) = watch::channel(ProcState::Running { pid: 1 });
    let view = ProcessView::new(
        rx,
        Arc::new(OutputLog::new()),
        CancellationToken::new(),
        Arc::new(move |level, msg: &str| sink.lock().unwrap().push((level, msg.to_string()))),
    );
    let e = err(bounded(rt.verify(
        &vref("good", "Say"),
        r#"{"message": "hello\nthere", "fail": true}"#,
        view,
    ))
    .await);
    assert_eq!(e, "hello\nthere");
    assert_eq!(
        *lines.lock().unwrap(),
        vec![(Level::Info, "hello there".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_module_file_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let load = |path: PathBuf| async move {
        let rt = Runtime::new(shared_cache()).unwrap();
        let decl = ModuleDecl {
            alias: "mymod".into(),
            source: ModuleSource::File(path),
            grants: Grants {
                hosts: HostGrants::none(),
            },
            limits: Limits::default(),
        };
        rt.load(vec![decl]).await.unwrap_err().to_string()
    };
    let missing = dir.path().join("missing.wasm");
    assert_eq!(
        load(missing.clone()).await,
        format!(
            "module 'mymod': cannot read {}: no such file",
            missing.display()
        )
    );

    let text = dir.path().join("text.wasm");
    std::fs::write(&text, "hello").unwrap();
    assert_eq!(
        load(text.clone()).await,
        format!(
            "module 'mymod': {} is not a WebAssembly file",
            text.display()
        )
    );

    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let e = load(core.clone()).await;
    assert!(
        e.starts_with(&format!(
            "module 'mymod': {} is not a WebAssembly component (a core module?",
            core.display()
        )),
        "{e}"
    );

    // A valid, empty component: it exports nothing.
    let empty = dir.path().join("empty.wasm");
    std::fs::write(&empty, b"\0asm\x0d\0\x01\0").unwrap();
    let e = load(empty.clone()).await;
    assert!(
        e.starts_with(&format!(
            "module 'mymod': {} does not export pymanager:verifier/verifier@1.1.0",
            empty.display()
        )),
        "{e}"
    );

    let mut truncated = std::fs::read(guest("good")).unwrap();
    truncated.truncate(truncated.len() / 2);
    let cut = dir.path().join("cut.wasm");
    std::fs::write(&cut, truncated).unwrap();
    let e = load(cut.clone()).await;
    assert!(
        e.starts_with(&format!(
            "module 'mymod': {} is not a valid component",
            cut.display()
        )),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn compiled_components_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let options = RuntimeOptions {
        cache_dir: Some(dir.path().join("cache")),
        cache_key: Some(dir.path().join("key")),
        ..Default::default()
    };
    let decl = || external("good", "good", HostGrants::none(), Limits::default());

    let first = Runtime::new(options.clone()).unwrap();
    first.load(vec![decl()]).await.unwrap();
    assert_eq!(
        first.load_report("good").unwrap().outcome,
        CacheOutcome::Compiled
    );

    let second = Runtime::new(options.clone()).unwrap();
    second.load(vec![decl()]).await.unwrap();
    assert_eq!(
        second.load_report("good").unwrap().outcome,
        CacheOutcome::Hit
    );
    let (view, _tx, _) = running();
    bounded(second.verify(&vref("good", "Trivial"), "{}", view))
        .await
        .unwrap();

    // A damaged entry is compiled again, not trusted. (Entries are mapped into memory:
    // the runtimes that mapped them go first; pymanager itself only ever replaces entries
    // whole.)
    drop((first, second));
    for entry in std::fs::read_dir(dir.path().join("cache")).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() / 3);
        std::fs::write(&path, bytes).unwrap();
    }
    let third = Runtime::new(options).unwrap();
    third.load(vec![decl()]).await.unwrap();
    assert_eq!(
        third.load_report("good").unwrap().outcome,
        CacheOutcome::Compiled
    );
    let (view, _tx, _) = running();
    bounded(third.verify(&vref("good", "Trivial"), "{}", view))
        .await
        .unwrap();
}

/// The attack on a shared or restored cache: the native code of one module planted under
/// another module's name, or altered in place. Neither may be loaded (deserializing runs
/// native code outside the sandbox): the module is compiled again and its own verifier
/// runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_swapped_or_tampered_cache_entry_is_compiled_again_never_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let options = RuntimeOptions {
        cache_dir: Some(cache.clone()),
        cache_key: Some(dir.path().join("key")),
        ..Default::default()
    };
    let good = || external("good", "good", HostGrants::none(), Limits::default());
    let looper = || external("looper", "looper", HostGrants::none(), Limits::default());
    let entries = || -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };

    let rt = Runtime::new(options.clone()).unwrap();
    assert_eq!(rt.cache_warning(), None);
    rt.load(vec![good()]).await.unwrap();
    let good_entry = entries().pop().expect("good's entry");
    drop(rt);
    let rt = Runtime::new(options.clone()).unwrap();
    rt.load(vec![looper()]).await.unwrap();
    let looper_entry = entries()
        .into_iter()
        .find(|p| *p != good_entry)
        .expect("looper's entry");
    drop(rt);
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache), 0o700);
    assert_eq!(mode(&dir.path().join("key")), 0o600);

    // The looper's compiled code under good's name.
    std::fs::copy(&looper_entry, &good_entry).unwrap();
    let rt = Runtime::new(options.clone()).unwrap();
    rt.load(vec![good()]).await.unwrap();
    assert_eq!(
        rt.load_report("good").unwrap().outcome,
        CacheOutcome::Compiled
    );
    assert_eq!(
        rt.names("good").unwrap(),
        ["Trivial", "WaitEnd", "Say", "Journey"],
        "good's own verifiers, not the planted ones"
    );
    let (view, _tx, _) = running();
    bounded(rt.verify(&vref("good", "Trivial"), "{}", view))
        .await
        .unwrap();
    drop(rt);

    // One byte of the code changed, the file otherwise intact.
    let mut bytes = std::fs::read(&good_entry).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&good_entry, bytes).unwrap();
    let rt = Runtime::new(options.clone()).unwrap();
    rt.load(vec![good()]).await.unwrap();
    assert_eq!(
        rt.load_report("good").unwrap().outcome,
        CacheOutcome::Compiled
    );
    drop(rt);

    // A cache keyed with someone else's secret (a restored cache) is not trusted either.
    let foreign = RuntimeOptions {
        cache_dir: Some(cache.clone()),
        cache_key: Some(dir.path().join("other-key")),
        ..Default::default()
    };
    let rt = Runtime::new(foreign).unwrap();
    rt.load(vec![good()]).await.unwrap();
    assert_eq!(
        rt.load_report("good").unwrap().outcome,
        CacheOutcome::Compiled
    );
}

/// A cache directory that is not the user's own is not used: one warning, and modules are
/// compiled (and still work).
#[tokio::test(flavor = "multi_thread")]
async fn a_cache_directory_owned_by_someone_else_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let other = if me == 0 { 65534 } else { 0 };
    let path = std::ffi::CString::new(cache.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; -1 leaves the group as it is.
    let given = unsafe { libc::chown(path.as_ptr(), other, u32::MAX) } == 0;
    if !given {
        // Without the right to give a directory away, a symbolic link stands in for a
        // directory planted by someone else.
        std::fs::remove_dir(&cache).unwrap();
        std::os::unix::fs::symlink(dir.path(), &cache).unwrap();
    }
    let options = RuntimeOptions {
        cache_dir: Some(cache.clone()),
        cache_key: Some(dir.path().join("key")),
        ..Default::default()
    };
    for _ in 0..2 {
        let rt = Runtime::new(options.clone()).unwrap();
        let warning = rt.cache_warning().expect("a warning").to_string();
        assert!(
            warning.starts_with("compiled verifiers are not cached on disk this run: ")
                && warning.contains(&cache.display().to_string()),
            "{warning}"
        );
        rt.load(vec![external(
            "good",
            "good",
            HostGrants::none(),
            Limits::default(),
        )])
        .await
        .unwrap();
        assert_eq!(
            rt.load_report("good").unwrap().outcome,
            CacheOutcome::Compiled
        );
    }
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
}

#[test]
fn host_patterns_parse_and_match() {
    let p = HostPattern::parse("10.0.0.5:80").unwrap();
    assert!(p.allows("10.0.0.5", 80) && !p.allows("10.0.0.5", 81));
    let p = HostPattern::parse("[::1]:8080").unwrap();
    assert!(p.allows("::1", 8080));
    assert!(p.allows("[::1]", 8080));
    assert_eq!(p.to_string(), "[::1]:8080");
    assert!(
        HostPattern::parse("API.internal:80")
            .unwrap()
            .allows("api.internal", 80)
    );
    for bad in [
        "*",
        "*:80",
        "h:x",
        "h:0",
        "localhost",
        "[::1]",
        "::1",
        ":80",
        "",
    ] {
        assert!(HostPattern::parse(bad).is_err(), "{bad:?} parsed");
    }
    assert_eq!(
        HostPattern::parse("api.internal").unwrap_err(),
        "'api.internal' has no port: a grant names host:port (for example \"api.internal:80\")"
    );
    assert!(!HostGrants::none().allows("localhost", 5000));
    assert!(!HostGrants::none().allows("127.0.0.1", 80));
    assert!(HostGrants::Any.allows("10.0.0.5", 80));
}
