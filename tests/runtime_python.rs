//! A verifier written in Python (examples/python-verifier, built with componentize-py by
//! its build.sh) runs through the same runtime as the Rust ones, against a real server.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::runtime::http_server_answering;
use common::{BUILD_WAIT, WAIT, build_example, example_dir, free_port, http_response};
use pymanager::process_view::{ProcState, ProcessView};
use pymanager::runtime::{
    CacheOutcome, Grants, HostGrants, HostPattern, Limits, ModuleDecl, ModuleSource, Runtime,
    RuntimeOptions, VerifierRef,
};
use serde_json::json;

fn build_python_verifier() -> PathBuf {
    build_example("python-verifier")
}

/// Answers `{"status": "starting"}` to the first two requests, `{"status": "ok"}` after.
async fn health_server() -> (u16, Arc<AtomicUsize>) {
    http_server_answering(|n| {
        let status = if n < 2 { "starting" } else { "ok" };
        http_response(
            "200 OK",
            "application/json",
            &format!(r#"{{"status": "{status}"}}"#),
        )
    })
    .await
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
        ..Default::default()
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
    let (view, _tx, _) = ProcessView::detached(ProcState::Running { pid: 1 });
    tokio::time::timeout(WAIT, rt.verify(&v, &args, view))
        .await
        .expect("bounded")
        .expect("passes once the field is ok");
    assert!(hits.load(Ordering::SeqCst) >= 3);

    // Not granted: refused by the host, named in the message.
    let args =
        json!({"url": "http://127.0.0.1:1/", "field": "status", "equals": "ok", "timeout": 0})
            .to_string();
    let (view, _tx, _) = ProcessView::detached(ProcState::Running { pid: 1 });
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
        ..Default::default()
    })
    .unwrap();
    again.load(vec![decl]).await.unwrap();
    assert_eq!(
        again.load_report("pyverify").unwrap().outcome,
        CacheOutcome::Hit
    );
}

/// Verifiers written against the original pymanager's API, as its users wrote them.
const CHECKS_PY: &str = r#"
import subprocess
import time

import requests
from requests import exceptions as reqexcept

from pymutils.verifier import Verifier


class HttpUp(Verifier):
    def __init__(self, **kwargs):
        self.url = kwargs["url"]
        self.timeout = kwargs.get("timeout", 30)

    def run(self, proc):
        started = time.time()
        while time.time() - started < self.timeout:
            try:
                resp = requests.get(self.url, timeout=1)
                if resp.status_code == 200:
                    self.log_verbose("answered from pid {0}".format(proc.pid))
                    return True
                self.log_fail("Got status {0} from server.".format(resp.status_code))
            except reqexcept.ConnectionError as e:
                self.log_fail("Connection error: {0}".format(e))
            time.sleep(0.1)
        return False


class ExitsWith(Verifier):
    def __init__(self, **kwargs):
        self.timeout = kwargs.get("timeout", 30)
        self.expect_code = kwargs.get("expect_code", 0)

    def run(self, proc):
        try:
            proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            self.log_fail("Process did not exit in given timeframe {0}s".format(self.timeout))
            return False
        if proc.code() != self.expect_code:
            self.log_fail("Expected exit code {0}, got {1}".format(self.expect_code, proc.code()))
        return proc.code() == self.expect_code


class ReadsAFile(Verifier):
    def run(self, proc):
        with open("/etc/hostname") as f:
            return bool(f.read())
"#;

/// A config dir holding checks.py and a config whose processes use `verifiers`.
fn original_config(processes: serde_json::Value) -> tempfile::TempDir {
    let cfg = json!({
        "modules": { "checks": { "verifiers": ["HttpUp", "ExitsWith", "ReadsAFile"] } },
        "http": { "enabled": true },
        "keep-alive": true,
        "messages": ["verifier.fail"],
        "processes": processes,
    });
    let dir = common::config_dir(&cfg);
    std::fs::write(dir.path().join("checks.py"), CHECKS_PY).unwrap();
    dir
}

#[test]
fn without_componentize_py_the_user_is_told_how_to_install_it() {
    let dir = original_config(json!({
        "job": {
            "executable": "true", "arguments": [],
            "verifier": { "type": "checks.ExitsWith" }
        }
    }));
    let cache = tempfile::tempdir().unwrap();
    let mut m = common::Manager::start_env(
        dir,
        &[],
        &[
            (
                "PYMANAGER_COMPONENTIZE_PY",
                std::path::Path::new("/nonexistent/componentize-py"),
            ),
            ("XDG_CACHE_HOME", cache.path()),
        ],
    );
    assert_eq!(m.wait_exit(), 5, "{}", m.output());
    let out = m.output();
    assert_eq!(
        out.matches("pip install componentize-py==0.25.1").count(),
        1,
        "{out}"
    );
}

/// componentize-py from the example's venv (made by its build.sh, run once).
fn componentize_py() -> PathBuf {
    build_python_verifier();
    example_dir("python-verifier").join(".venv/bin/componentize-py")
}

#[test]
fn the_originals_python_verifiers_run_unchanged_in_the_sandbox() {
    let tool = componentize_py();
    let cache = tempfile::tempdir().unwrap();
    let env = [
        ("PYMANAGER_COMPONENTIZE_PY", tool.as_path()),
        ("XDG_CACHE_HOME", cache.path()),
    ];
    let port = free_port();
    let dir = original_config(json!({
        "web": {
            "executable": "python3",
            "arguments": ["-m", "http.server", port.to_string(), "--bind", "127.0.0.1"],
            "verifier": { "type": "checks.HttpUp", "arguments": { "url": format!("http://127.0.0.1:{port}/") } }
        },
        "job": {
            "executable": "sh",
            "arguments": ["-c", "exit 3"],
            "verifier": { "type": "checks.ExitsWith", "arguments": { "expect_code": 3, "timeout": 60 } }
        }
    }));
    // Built with componentize-py and compiled on first use: minutes on a loaded machine.
    let m = common::Manager::start_env(dir, &["-v"], &env);
    assert!(
        common::wait_until(BUILD_WAIT, || {
            let out = m.output();
            out.contains("REST API listening") || out.contains("[ERROR]")
        }) && m.output().contains("REST API listening"),
        "{}",
        m.output()
    );
    // Both verified: the server answered HttpUp, the job exited 3 as ExitsWith expects.
    let status = format!("{}/status", m.url());
    let client = common::client();
    assert!(
        common::wait_until(BUILD_WAIT, || {
            client
                .get(&status)
                .send()
                .and_then(|r| r.text())
                .is_ok_and(|t| t.contains(r#""status": "running""#))
        }),
        "{}",
        m.output()
    );
    m.signal(libc::SIGTERM);
    let mut m = m;
    assert_eq!(
        m.wait_exit_within(BUILD_WAIT).and_then(|s| s.code()),
        Some(0),
        "{}",
        m.output()
    );

    // What the sandbox cannot give (a file) fails with a message that says so.
    let dir = original_config(json!({
        "reader": {
            "executable": "sleep", "arguments": ["60"],
            "verifier": { "type": "checks.ReadsAFile" }
        }
    }));
    let mut m = common::Manager::start_env(dir, &[], &env);
    let status = m.wait_exit_within(BUILD_WAIT).and_then(|s| s.code());
    assert_eq!(status, Some(5), "{}", m.output());
    assert!(
        m.output().contains(
            "ReadsAFile.run raised FileNotFoundError: [Errno 44] No such file or directory: '/etc/hostname' (pymanager's sandbox gives a verifier no files"
        ),
        "{}",
        m.output()
    );
}
