//! End-to-end: the real binary runs verifiers through the WASM runtime — the built-ins
//! against real processes and servers, an external module from a path, and hostile or
//! broken modules that must stop start-up with exit 5 and one clear line.
mod common;

use common::*;
use serde_json::json;

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

/// A leftover of an earlier run: a Python process listening on `port` of 127.0.0.1 (an
/// HTTP server when `http`), outside any manager; killed and reaped on drop.
struct Leftover(std::process::Child);

impl Leftover {
    fn listen(port: u16, http: bool) -> Leftover {
        let script = listener_script(port, http);
        let child = std::process::Command::new("python3")
            .args(["-c", &script])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3");
        let leftover = Leftover(child);
        assert!(
            wait_until(WAIT, || std::net::TcpStream::connect(("127.0.0.1", port))
                .is_ok()),
            "the leftover never listened"
        );
        leftover
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Leftover {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Python program that listens on `port` (an HTTP server when `http`, a bare socket
/// otherwise): the leftover, and the process that tries to take its port.
fn listener_script(port: u16, http: bool) -> String {
    if http {
        format!(
            "import http.server; http.server.HTTPServer(('127.0.0.1', {port}), \
             http.server.SimpleHTTPRequestHandler).serve_forever()"
        )
    } else {
        format!(
            "import socket,time; s=socket.socket(); s.bind(('127.0.0.1', {port})); \
             s.listen(); time.sleep(600)"
        )
    }
}

/// A Python command that listens on `port` as the leftover does: it fails to bind while
/// the leftover holds the port, and exits 1.
fn binds(port: u16, http: bool) -> serde_json::Value {
    json!({"executable": "python3", "arguments": ["-c", listener_script(port, http)]})
}

/// Back to back: the previous run's server still holds the port, the new one cannot bind
/// it and exits. Its `tcp` or `http` verifier must not pass because *something* answers
/// there: start-up fails (exit 5), naming the holder.
#[test]
fn a_port_held_by_a_leftover_fails_tcp_and_http_naming_the_holder() {
    for http in [false, true] {
        let port = free_port();
        let leftover = Leftover::listen(port, http);
        let mut redis = binds(port, http);
        redis["verifier"] = if http {
            json!({"type": "http", "arguments": {"url": format!("http://127.0.0.1:{port}/"), "timeout": 20}})
        } else {
            json!({"type": "tcp", "arguments": {"port": port, "timeout": 20}})
        };
        let mut m = Manager::start(json!({
            "messages": ["verifier.fail"],
            "processes": {"redis": redis, "after": sh("echo should-not-start")}
        }));
        assert_eq!(m.wait_exit(), 5, "{}", m.output());
        let out = m.output();
        let held = format!(
            "port {port} is held by pid {} (python3), not by redis",
            leftover.pid()
        );
        assert!(out.contains(&held), "{held:?} not in:\n{out}");
        assert!(!out.contains("should-not-start"), "{out}");
    }
}

/// `"check_owner": false`: a service whose socket another process tree holds (here one
/// that never listens itself) passes on what answers there.
#[test]
fn check_owner_false_lets_another_tree_hold_the_port() {
    let port = free_port();
    let _leftover = Leftover::listen(port, true);
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "processes": {
            "proxy": {"executable": "sleep", "arguments": ["600"], "verifier": {"type": "http",
                "arguments": {"url": format!("http://127.0.0.1:{port}/"), "check_owner": false, "timeout": 20}}},
            "db": {"executable": "sleep", "arguments": ["600"], "verifier": {"type": "tcp",
                "arguments": {"port": port, "check_owner": false, "timeout": 20}}}
        }
    }));
    m.wait_status("running");
}

/// A process that exits while its verifier waits for an answer (from a server that
/// accepts and never answers) fails at once, not after the verifier's 120 s.
#[test]
fn a_process_that_exits_while_being_verified_fails_at_once() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut m = Manager::start(json!({"processes": {
        "web": {"executable": "sh", "arguments": ["-c", "sleep 0.5; exit 1"],
                "verifier": {"type": "http", "arguments": {
                    "url": format!("http://127.0.0.1:{port}/"), "timeout": 120, "check_owner": false}}}
    }}));
    assert_eq!(m.wait_exit(), 5, "{}", m.output());
    let out = m.output();
    assert!(
        out.contains("process exited with code 1 before answering"),
        "{out}"
    );
    drop(silent);
}

/// `exited` looks at the end, so it passes for a process that ended before the verifier's
/// first host call.
#[test]
fn exited_passes_for_a_quick_true() {
    let mut m = Manager::start(json!({"processes": {
        "quick": {"executable": "true", "arguments": [], "verifier": {"type": "exited"}},
        "next": {"executable": "sh", "arguments": ["-c", "echo next-started"],
                 "verifier": {"type": "exited"}}
    }}));
    assert_eq!(m.wait_exit(), 0, "{}", m.output());
    assert!(m.output().contains("next-started"), "{}", m.output());
}
