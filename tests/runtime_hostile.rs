//! Hostile guests (tests/guests/): each fails alone, with a clear message, while the
//! runtime and every other verifier go on — loops, memory bombs, traps, files and sockets
//! of their own, hosts outside their grants, calls cut by their bounds, a full instance
//! pool.

mod common;

use common::runtime::*;

/// Scanning the output for a guest's pattern is work done for the guest: a pattern that
/// makes each line cost milliseconds stops the guest at its CPU budget, as a loop would.
#[tokio::test(flavor = "multi_thread")]
async fn output_scans_are_charged_to_the_guest_cpu_budget() {
    let rt = with_cpu("hostile", "looper", Duration::from_millis(500)).await;
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
    let rt = with_cpu("spinner", "looper", Duration::from_millis(300)).await;
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
    let other = free_port();
    let rt = granted("mymod", "httpgrant", &[other]).await;
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
    let closed = free_port();
    let rt = granted("mymod", "httpgrant", &[closed]).await;
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
    let (view, tx, _) = running();
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
    // And one that parks on the exit, then needs a slot again for its replay.
    let parking = {
        let (rt, view) = (rt.clone(), view.clone());
        tokio::spawn(async move {
            rt.verify(&vref("good", "WaitEnd"), r#"{"timeout": 60}"#, view)
                .await
        })
    };
    for t in live {
        let e = err(bounded(t).await.unwrap());
        assert_eq!(e, format!("still running (pid {})", me()));
    }
    parked(&rt, 1).await;
    later(tx, Duration::ZERO, ProcState::Exited { code: 0 });
    bounded(parking)
        .await
        .unwrap()
        .expect("the parked one passes");
}
