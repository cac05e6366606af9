//! A verifier written in Python (examples/python-verifier, built with componentize-py by
//! its build.sh) runs through the same runtime as the Rust ones, against a real server.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pymanager::process_view::{ProcState, ProcessView};
use pymanager::runtime::{
    CacheOutcome, Grants, HostGrants, HostPattern, Limits, ModuleDecl, ModuleSource, Runtime,
    RuntimeOptions, VerifierRef,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(120);

fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/python-verifier")
}

/// Runs build.sh (a venv with componentize-py, then the component); returns the .wasm.
fn build_python_verifier() -> PathBuf {
    let dir = example_dir();
    let out = Command::new("sh")
        .arg(dir.join("build.sh"))
        .output()
        .expect("run examples/python-verifier/build.sh");
    assert!(
        out.status.success(),
        "build.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("verifier.wasm")
}

/// Answers `{"status": "starting"}` to the first two requests, `{"status": "ok"}` after.
async fn health_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => buf.extend_from_slice(&chunk[..k]),
                    }
                }
                let body = if n < 2 {
                    r#"{"status": "starting"}"#
                } else {
                    r#"{"status": "ok"}"#
                };
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    (port, hits)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_verifier_runs_like_a_rust_one() {
    let wasm = tokio::task::spawn_blocking(build_python_verifier)
        .await
        .unwrap();
    let (port, hits) = health_server().await;
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verifier-cache");
    let key = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verifier-cache-key");
    let decl = ModuleDecl {
        alias: "pyverify".into(),
        source: ModuleSource::File(wasm),
        grants: Grants {
            hosts: HostGrants::List(vec![
                HostPattern::parse(&format!("127.0.0.1:{port}")).unwrap(),
            ]),
        },
        limits: Limits::default(),
    };
    let rt = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.clone()),
        cache_key: Some(key.clone()),
    })
    .unwrap();
    rt.load(vec![decl.clone()])
        .await
        .expect("the Python component loads");
    assert_eq!(
        rt.names("pyverify"),
        Some(vec!["JsonFieldVerifier".to_string()])
    );

    let v = VerifierRef {
        module: "pyverify".into(),
        name: "JsonFieldVerifier".into(),
    };
    let e = rt
        .validate(&v, r#"{"url": "http://127.0.0.1/"}"#)
        .await
        .unwrap_err();
    assert_eq!(e.0, "field: missing field");
    let e = rt
        .validate(
            &v,
            r#"{"url": "http://x/", "field": "a", "equals": 1, "tiemout": 1}"#,
        )
        .await
        .unwrap_err();
    assert!(e.0.starts_with("tiemout: unknown argument"), "{e}");

    let args = json!({
        "url": format!("http://127.0.0.1:{port}/health"),
        "field": "status",
        "equals": "ok",
        "interval": 0.05,
    })
    .to_string();
    rt.validate(&v, &args).await.expect("valid arguments");
    let (view, _tx, _) = ProcessView::detached("api", ProcState::Running { pid: 1 });
    tokio::time::timeout(WAIT, rt.verify(&v, &args, view))
        .await
        .expect("bounded")
        .expect("passes once the field is ok");
    assert!(hits.load(Ordering::SeqCst) >= 3);

    // Not granted: refused by the host, named in the message.
    let args =
        json!({"url": "http://127.0.0.1:1/", "field": "status", "equals": "ok", "timeout": 0})
            .to_string();
    let (view, _tx, _) = ProcessView::detached("api", ProcState::Running { pid: 1 });
    let e = rt.verify(&v, &args, view).await.unwrap_err();
    assert!(
        e.0.contains(
            "127.0.0.1:1 is not granted to module 'pyverify': add \"127.0.0.1:1\" to modules.pyverify.allow.hosts"
        ),
        "{e}"
    );

    // The 18 MB component is compiled once; the next run reads it from the disk cache.
    let again = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache),
        cache_key: Some(key),
    })
    .unwrap();
    again.load(vec![decl]).await.unwrap();
    assert_eq!(
        again.load_report("pyverify").unwrap().outcome,
        CacheOutcome::Hit
    );
}
