//! End-to-end: the real binary runs verifiers through the WASM runtime — the built-ins
//! against real processes and servers, an external module from a path, and hostile or
//! broken modules that must stop start-up with exit 5 and one clear line.
mod common;

use common::*;
use serde_json::json;

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn good_wasm() -> &'static str {
    env!("PYMANAGER_TEST_GUEST_GOOD")
}

#[test]
fn http_verifier_waits_for_a_real_server() {
    let port = free_port();
    let mut m = Manager::start(json!({
        "http": {"enabled": true},
        "processes": {
            "web": {
                "executable": "python3",
                "arguments": ["-c", format!(
                    "import http.server,time; time.sleep(0.5); \
                     http.server.HTTPServer(('127.0.0.1', {port}), http.server.SimpleHTTPRequestHandler).serve_forever()")],
                "verifier": {
                    "type": "pymutils.http_verifier.HttpOkVerifier",
                    "arguments": {"url": format!("http://127.0.0.1:{port}/"), "interval": 0.1, "timeout": 20}
                }
            },
            "after": sh("sleep 1000")
        }
    }));
    m.wait_status("running");
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0, "{}", m.output());
}

#[test]
fn exited_verifier_failure_stops_start_up_with_exit_5() {
    let mut m = Manager::start(json!({"processes": {
        "job": {"executable": "sh", "arguments": ["-c", "exit 3"], "verifier": {"type": "exited"}},
        "never": sh("echo should-not-start")
    }}));
    assert_eq!(m.wait_exit(), 5);
    let out = m.output();
    assert!(out.contains("exited with code 3, expected 0"), "{out}");
    assert!(!out.contains("should-not-start"), "{out}");
}

#[test]
fn tcp_and_output_verifiers_pass_on_real_processes() {
    let port = free_port();
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "processes": {
            "listener": {
                "executable": "python3",
                "arguments": ["-c", format!(
                    "import socket,time; time.sleep(0.3); s=socket.socket(); \
                     s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); \
                     s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(1000)")],
                "verifier": {"type": "tcp", "arguments": {"port": port, "timeout": 20}}
            },
            "talker": {
                "executable": "sh",
                "arguments": ["-c", "echo starting; sleep 0.3; echo ready on 8080; sleep 1000"],
                "verifier": {"type": "output", "arguments": {"pattern": r"ready on \d+"}}
            }
        }
    }));
    m.wait_status("running");
}

#[test]
fn an_external_module_from_a_path_verifies() {
    let mut m = Manager::start(json!({
        "modules": {"good": {"path": good_wasm()}},
        "processes": {
            "short": {
                "executable": "sh", "arguments": ["-c", "sleep 0.3"],
                "verifier": {"type": "good.WaitEnd", "arguments": {"timeout": 20}}
            }
        }
    }));
    assert_eq!(m.wait_exit(), 0, "{}", m.output());
}

#[test]
fn a_hostile_module_fails_alone_with_exit_5_and_a_clear_line() {
    let mut m = Manager::start(json!({
        "modules": {"spinner": {"path": env!("PYMANAGER_TEST_GUEST_LOOPER"), "limits": {"cpu_ms": 300}}},
        "processes": {
            "web": {"executable": "sh", "arguments": ["-c", "sleep 1000"], "verifier": {"type": "spinner.Spin"}}
        }
    }));
    assert_eq!(m.wait_exit(), 5);
    let out = m.output();
    assert!(
        out.contains("verifier spinner.Spin ran longer than 300 ms of CPU time"),
        "{out}"
    );
}

#[test]
fn bad_modules_and_arguments_are_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let mut m = Manager::start(json!({
        "modules": {"mymod": {"path": core}},
        "processes": {"web": {"executable": "sh", "arguments": ["-c", "echo started"], "verifier": {"type": "mymod.X"}}}
    }));
    assert_eq!(m.wait_exit(), 5);
    let out = m.output();
    assert!(
        out.contains("is not a WebAssembly component (a core module?"),
        "{out}"
    );
    assert!(!out.contains("started\n"), "{out}");

    let mut m = Manager::start(json!({"processes": {
        "web": {"executable": "sh", "arguments": ["-c", "echo started"],
                "verifier": {"type": "HttpOkVerifier", "arguments": {"url": 5}}}
    }}));
    assert_eq!(m.wait_exit(), 5);
    let out = m.output();
    assert!(
        out.contains("processes.web.verifier.arguments.url: expected a string, got integer `5` (HttpOkVerifier)"),
        "{out}"
    );
    assert!(!out.contains("started\n"), "{out}");
}
