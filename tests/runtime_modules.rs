//! External modules at library level: loading, names, arguments and logs; components
//! built against older versions of the WIT; files that are not a module; and the
//! compiled-component cache on disk (its authentication, its owner).

mod common;

use common::runtime::*;

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
    let rt = granted("old", "v100", &[port]).await;
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

/// A module built against WIT 1.1.0 (tests/guests/v110: bindings from its own copy of the
/// 1.1.0 WIT, no SDK) still runs on this host of 1.2.0, `probe` and its typed errors
/// included.
#[tokio::test(flavor = "multi_thread")]
async fn a_component_built_against_wit_1_1_0_still_runs() {
    let bytes = std::fs::read(guest("v110")).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("pymanager:verifier/probe@1.1.0"));
    assert!(text.contains("pymanager:verifier/verifier@1.1.0"));
    assert!(
        !text.contains("@1.2.0"),
        "the 1.1.0 guest was built against 1.2.0"
    );

    let (port, hits) = http_server(|_| 200).await;
    let rt = granted("old", "v110", &[port]).await;
    let (view, tx, _) = running();
    let args = json!({"url": format!("http://127.0.0.1:{port}/")}).to_string();
    bounded(rt.verify(&vref("old", "HttpGet"), &args, view.clone()))
        .await
        .expect("HTTP through 1.1.0's probe.http-request");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let args = json!({"port": port}).to_string();
    bounded(rt.verify(&vref("old", "TcpOpen"), &args, view.clone()))
        .await
        .expect("TCP through 1.1.0's probe.tcp-connect");
    let args = json!({"port": 1}).to_string();
    let e = err(bounded(rt.verify(&vref("old", "TcpOpen"), &args, view.clone())).await);
    assert_eq!(
        e,
        "not-granted: 127.0.0.1:1 is not granted to module 'old': add \"127.0.0.1:1\" to \
         modules.old.allow.hosts"
    );
    later(tx, Duration::from_millis(50), ProcState::Exited { code: 0 });
    bounded(rt.verify(&vref("old", "ExitsZero"), "{}", view))
        .await
        .expect("the exit event through 1.0.0's wait-exit");
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
            "module 'mymod': {} does not export pymanager:verifier/verifier@1.2.0",
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
