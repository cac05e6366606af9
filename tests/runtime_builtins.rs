//! The built-in verifiers at library level, on the real runtime: `http`, `exited`, `tcp`
//! and `output` against real servers on loopback and process states driven by hand, and
//! what a verification is about: never a process that ended unseen, and on loopback only a
//! port the process's own tree holds.

mod common;

use common::runtime::*;

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
    let (port, _) = http_server_answering(move |_| {
        format!(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{target}/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    })
    .await;
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
    let port = free_port();
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
    let port = free_port();
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
            json!({"url": "http://127.0.0.1:${MYPORT}/"}),
            "url: the port in 'http://127.0.0.1:${MYPORT}/' is not a number from 1 to 65535 \
             (only ${ports.<process>.<name>} and ${env.NAME} are filled in)",
        ),
        (
            json!({"url": "http://127.0.0.1:70000/"}),
            "url: the port in 'http://127.0.0.1:70000/' is not a number from 1 to 65535",
        ),
        (
            json!({"url": "http:///health"}),
            "url: 'http:///health' names no host",
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
            "tiemout: unknown argument, ignored (expected one of url, timeout, interval, headers, check_owner)",
            "description: unknown argument, ignored (expected one of url, timeout, interval, headers, check_owner)"
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

    let port = free_port();
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

/// A port held by a process outside the verified process's tree does not pass the `tcp`
/// and `http` verifiers on loopback: they fail naming the holder, and pass with
/// `"check_owner": false`.
#[tokio::test(flavor = "multi_thread")]
async fn a_port_held_by_another_process_fails_tcp_and_http_naming_the_holder() {
    let (tcp, t) = builtin("tcp");
    let (http, h) = builtin("http");
    let rt = runtime(vec![tcp, http]).await;
    let (_redis, view, _tx) = Bystander::start();
    let held = format!("is held by pid {} ({}), not by redis", me(), my_name());

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let args = json!({"port": port, "timeout": 0.5}).to_string();
    let e = err(bounded(rt.verify(&t, &args, view.clone())).await);
    assert_eq!(e, format!("port {port} {held} (gave up after 500 ms)"));
    let args = json!({"port": port, "check_owner": false}).to_string();
    bounded(rt.verify(&t, &args, view.clone()))
        .await
        .expect("not checked");

    let (port, _) = http_server(|_| 200).await;
    let url = format!("http://localhost:{port}/");
    let args = json!({"url": url, "timeout": 0.5}).to_string();
    let e = err(bounded(rt.verify(&h, &args, view.clone())).await);
    assert_eq!(e, format!("port {port} {held} (gave up after 500 ms)"));
    let args = json!({"url": url, "check_owner": false}).to_string();
    bounded(rt.verify(&h, &args, view))
        .await
        .expect("not checked");
}

/// A process that ends while its verifier waits for an answer fails the verification at
/// once, not after the request's time-out (ten minutes here, past the test's bound).
#[tokio::test(flavor = "multi_thread")]
async fn a_process_that_ends_while_a_request_waits_fails_at_once() {
    let (decl, v) = builtin("http");
    let rt = runtime(vec![decl]).await;
    let port = silent_server().await;
    let args = json!({"url": format!("http://127.0.0.1:{port}/"), "timeout": 600}).to_string();
    let (view, tx, _) = running();
    later(
        tx,
        Duration::from_millis(300),
        ProcState::Exited { code: 1 },
    );
    let e = err(bounded(rt.verify(&v, &args, view)).await);
    assert_eq!(
        e,
        format!(
            "process exited with code 1 before answering (last attempt: \
             http://127.0.0.1:{port}/: given up: the process ended)"
        )
    );
}

/// A verification never passes for a process that has ended unless the verifier looked
/// at the end: a verifier that goes on to reach out fails at that call, one that returns
/// ok without looking fails as well; `exited`, which looks, passes even when the process
/// ended before its first host call.
#[tokio::test(flavor = "multi_thread")]
async fn a_verifier_that_does_not_look_at_the_end_never_passes_for_an_ended_process() {
    let (http, h) = builtin("http");
    let (exited, x) = builtin("exited");
    let rt = runtime(vec![
        http,
        exited,
        external("good", "good", HostGrants::none(), Limits::default()),
    ])
    .await;
    let ended = || {
        let (view, tx, _) = ProcessView::detached(ProcState::Exited { code: 3 });
        std::mem::forget(tx);
        view.named("redis")
    };
    let (port, hits) = http_server(|_| 200).await;
    let args = json!({"url": format!("http://127.0.0.1:{port}/")}).to_string();
    let e = err(bounded(rt.verify(&h, &args, ended())).await);
    assert_eq!(e, "redis exited with code 3 before it was verified");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no request went out");
    for trivial in ["Trivial", "Say"] {
        let args = match trivial {
            "Say" => r#"{"message": "hi"}"#,
            _ => "{}",
        };
        let e = err(bounded(rt.verify(&vref("good", trivial), args, ended())).await);
        assert_eq!(e, "redis exited with code 3 before it was verified");
    }
    bounded(rt.verify(&x, r#"{"expect_code": 3}"#, ended()))
        .await
        .expect("exited looks at the end");
}

/// `pymanager verify --pid` of a process that is not its child, reaped by its parent first,
/// cannot read its exit code: the verifier is never handed an invented one.
#[tokio::test(flavor = "multi_thread")]
async fn an_exit_code_that_cannot_be_read_fails_saying_so() {
    let (exited, x) = builtin("exited");
    let rt = runtime(vec![exited]).await;
    let (view, tx, _) = ProcessView::detached(ProcState::exited_unknown());
    let e = err(bounded(rt.verify(&x, "{}", view.named("process 77"))).await);
    drop(tx);
    assert_eq!(
        e,
        "process 77 exited (its exit code is unknown: it is not pymanager's child, and its \
         parent reaped it before the code could be read)"
    );
}
