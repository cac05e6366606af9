//! The default grant of a Python module, loopback (so that the original's configs run
//! unchanged), against a second pymanager on the same machine: a verifier given it reaches
//! the services of the test environment on loopback, but never another pymanager's API,
//! which would take `DELETE /` from it. The hostile guest `httpgrant` (it calls whatever
//! its arguments name) stands for the module; the grant is the same whatever the module
//! is written in (a Python module with it: tests/security_python.rs).
mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::*;
use pymanager::process_view::{ProcState, ProcessView};
use pymanager::runtime::{
    Grants, HostGrants, HostPattern, Limits, ModuleDecl, ModuleSource, Runtime, RuntimeOptions,
    VerifierRef,
};
use serde_json::json;

/// A plain HTTP service on loopback, run by another program than pymanager.
struct Service {
    child: Child,
    port: u16,
}

impl Service {
    fn start() -> Service {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(system_python())
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(wait_until(WAIT, || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()));
        Service { child, port }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn loopback_module() -> ModuleDecl {
    ModuleDecl {
        alias: "checks".into(),
        source: ModuleSource::File(PathBuf::from(env!("PYMANAGER_TEST_GUEST_HTTPGRANT"))),
        grants: Grants {
            hosts: HostGrants::Loopback,
        },
        limits: Limits::default(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_loopback_grant_reaches_services_but_never_another_pymanager() {
    let (other, api) = tokio::task::spawn_blocking(|| {
        let m = Manager::start(json!({"http": {"enabled": true}, "keep-alive": true,
            "processes": {"a": sh("exec sleep 100")}}));
        m.wait_status("running");
        let url = m.url();
        (m, url)
    })
    .await
    .unwrap();
    let service = tokio::task::spawn_blocking(Service::start).await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let rt = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.path().join("cache")),
        cache_key: Some(cache.path().join("key")),
        ..Default::default()
    })
    .unwrap();
    rt.load(vec![loopback_module()]).await.unwrap();
    let verify = |name: &'static str, args: serde_json::Value| {
        let rt = rt.clone();
        async move {
            let (view, _tx, _) = ProcessView::detached(ProcState::Running { pid: 1 });
            let v = VerifierRef {
                module: "checks".into(),
                name: name.into(),
            };
            tokio::time::timeout(WAIT, rt.verify(&v, &args.to_string(), view))
                .await
                .expect("bounded")
        }
    };

    // A service of the environment: reached.
    verify(
        "HttpAnywhere",
        json!({"url": format!("http://127.0.0.1:{}/", service.port)}),
    )
    .await
    .expect("the loopback service is reached");

    // The other pymanager, by address, by name, over TCP: never.
    let port = api.rsplit(':').next().unwrap().to_string();
    for (name, args) in [
        ("HttpAnywhere", json!({"url": format!("{api}/status")})),
        (
            "HttpAnywhere",
            json!({"url": format!("http://localhost:{port}/")}),
        ),
        (
            "TcpAnywhere",
            json!({"host": "127.0.0.1", "port": port.parse::<u16>().unwrap()}),
        ),
    ] {
        let e = verify(name, args.clone()).await.unwrap_err();
        assert!(
            e.0.contains(&format!(
                "is the REST API of another pymanager (pid {}",
                other.manager_pid()
            )) && e.0.contains("add \""),
            "{args}: {e}"
        );
    }
    // Granted by name, it is reached: the user's word.
    let mut granted = loopback_module();
    granted.grants.hosts = HostGrants::List(vec![
        HostPattern::parse(&format!("127.0.0.1:{port}")).unwrap(),
    ]);
    let rt = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.path().join("cache")),
        cache_key: Some(cache.path().join("key")),
        ..Default::default()
    })
    .unwrap();
    rt.load(vec![granted]).await.unwrap();
    let (view, _tx, _) = ProcessView::detached(ProcState::Running { pid: 1 });
    let v = VerifierRef {
        module: "checks".into(),
        name: "HttpAnywhere".into(),
    };
    let args = json!({"url": format!("{api}/status")}).to_string();
    tokio::time::timeout(WAIT, rt.verify(&v, &args, view))
        .await
        .expect("bounded")
        .expect("an explicit grant reaches it");
    tokio::task::spawn_blocking(move || drop(other))
        .await
        .unwrap();
}
