//! What an external verifier may reach, with the real binary and a real component (the
//! hostile test guest `httpgrant`, which calls whatever its arguments name): nothing
//! without a grant — neither the manager's own REST API nor any other loopback port — and
//! never the API, whatever the grant. Built-in verifiers reach what their arguments name,
//! and keep configured headers for the origin they were configured for.
mod common;

use common::{Manager, free_port, serve, sh};
use serde_json::{Value, json};

const GUEST: &str = env!("PYMANAGER_TEST_GUEST_HTTPGRANT");

fn ok(_: &str) -> String {
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".into()
}

/// Runs a manager whose `probe` process is verified by `verifier` of the module `mine`
/// (granted `hosts`, if any), with its API on `api_port`; returns its exit code and output.
fn run(api_port: u16, hosts: Option<Vec<String>>, verifier: Value) -> (i32, String) {
    let mut module = json!({"path": GUEST});
    if let Some(h) = hosts {
        module["allow"] = json!({"hosts": h});
    }
    let mut m = Manager::start(json!({
        "http": {"enabled": true, "port": api_port},
        "modules": {"mine": module},
        "processes": {
            // The API is bound while the first process starts: the probe comes once its
            // address file is written, so that it meets a listening API.
            "api-up": {"executable": "sh", "arguments": ["-c",
                       "while ! [ -s .pymanager/pymanager.json.addr ]; do sleep 0.02; done"],
                       "verifier": {"type": "exited"}},
            "db": {"executable": "sh", "arguments": ["-c", "echo password=$(echo aHVudGVyMg== | base64 -d); exec sleep 1000"],
                   "options": {"suppress_output": true}},
            "probe": {"executable": "sh", "arguments": ["-c", "exec sleep 1000"], "verifier": verifier}
        }
    }));
    let status = format!("http://127.0.0.1:{api_port}/status");
    let client = common::client();
    let mut running = false;
    let settled = common::wait_until(common::WAIT, || {
        if m.wait_exit_within(std::time::Duration::from_millis(10))
            .is_some()
        {
            return true;
        }
        running = client
            .get(&status)
            .send()
            .and_then(|r| r.text())
            .is_ok_and(|t| t.contains("\"running\""));
        running
    });
    assert!(settled, "neither running nor exited:\n{}", m.output());
    if running {
        m.signal(libc::SIGINT);
    }
    let code = m.wait_exit();
    (if running { 0 } else { code }, m.output())
}

fn http_to(url: String) -> Value {
    json!({"type": "mine.HttpAnywhere", "arguments": {"url": url}})
}

fn tcp_to(host: &str, port: u16) -> Value {
    json!({"type": "mine.TcpAnywhere", "arguments": {"host": host, "port": port}})
}

#[test]
fn an_ungranted_module_reaches_neither_the_api_nor_another_loopback_port() {
    let api = free_port();
    let logs = format!("http://127.0.0.1:{api}/api/v1/processes/db/logs");
    let (code, out) = run(api, None, http_to(logs));
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains(&format!(
            "127.0.0.1:{api} is not granted to module 'mine': add \"127.0.0.1:{api}\" to modules.mine.allow.hosts"
        )),
        "{out}"
    );
    assert!(!out.contains("hunter2"), "{out}");

    let (port, seen) = serve(ok);
    let (code, out) = run(
        free_port(),
        None,
        http_to(format!("http://127.0.0.1:{port}/")),
    );
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains(&format!(
            "add \"127.0.0.1:{port}\" to modules.mine.allow.hosts"
        )),
        "{out}"
    );
    let (code, out) = run(free_port(), None, tcp_to("localhost", port));
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains(&format!(
            "add \"localhost:{port}\" to modules.mine.allow.hosts"
        )),
        "{out}"
    );
    assert!(seen.lock().unwrap().is_empty(), "the server was reached");

    // Granted, the same port is reached.
    let (code, out) = run(
        free_port(),
        Some(vec![format!("127.0.0.1:{port}")]),
        http_to(format!("http://127.0.0.1:{port}/")),
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn the_api_is_refused_whatever_the_grant() {
    let api = free_port();
    let grants = vec![format!("127.0.0.1:{api}"), format!("localhost:{api}")];
    for verifier in [
        http_to(format!("http://127.0.0.1:{api}/api/v1/processes/db/logs")),
        // A name that resolves to it: checked after the one resolution.
        http_to(format!("http://localhost:{api}/api/v1/processes/db/logs")),
        tcp_to("127.0.0.1", api),
        tcp_to("localhost", api),
    ] {
        let (code, out) = run(api, Some(grants.clone()), verifier.clone());
        assert_eq!(code, 5, "{verifier}: {out}");
        assert!(
            out.contains("is pymanager's own REST API (127.0.0.1:")
                && out.contains("no verifier may reach it"),
            "{verifier}: {out}"
        );
        assert!(!out.contains("hunter2"), "{out}");
    }
}

#[test]
fn a_grant_without_a_port_is_refused_with_its_field_path() {
    let mut m = Manager::start(json!({
        "modules": {"mine": {"path": GUEST, "allow": {"hosts": ["127.0.0.1:80", "api.internal"]}}},
        "processes": {"probe": sh("echo started; exec sleep 1000")}
    }));
    assert_eq!(m.wait_exit(), 5);
    let out = m.output();
    assert!(
        out.contains(
            "modules.mine.allow.hosts.1: 'api.internal' has no port: a grant names host:port \
             (for example \"api.internal:80\")"
        ),
        "{out}"
    );
    assert!(!out.contains("started"), "{out}");
}

#[test]
fn builtin_http_keeps_configured_headers_for_their_origin_only() {
    let (elsewhere, elsewhere_seen) = serve(ok);
    // Same origin first (/start → /next), then another origin (another port).
    let (first, first_seen) = serve(move |line| {
        let to = if line.starts_with("GET /start") {
            "/next".to_string()
        } else {
            format!("http://localhost:{elsewhere}/landed")
        };
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    });
    let mut m = Manager::start(json!({
        "processes": {"web": {
            "executable": "sh", "arguments": ["-c", "exec sleep 1000"],
            "verifier": {"type": "http", "arguments": {
                "url": format!("http://127.0.0.1:{first}/start"),
                // The servers are this test's, not the process's: without this the
                // verifier would retry until the shutdown cuts a request short.
                "check_owner": false,
                "headers": {"Authorization": "Bearer s3cret", "X-Trace": "1"}
            }}
        }},
        "keep-alive": true
    }));
    assert!(
        common::wait_until(common::WAIT, || !elsewhere_seen.lock().unwrap().is_empty()),
        "the redirect was not followed:\n{}",
        m.output()
    );
    m.signal(libc::SIGINT);
    m.wait_exit();
    let first_seen = first_seen.lock().unwrap();
    assert!(first_seen.len() >= 2, "{first_seen:?}");
    for head in first_seen.iter() {
        assert!(
            head.contains("Bearer s3cret"),
            "same origin lost the header: {head}"
        );
    }
    let elsewhere_seen = elsewhere_seen.lock().unwrap();
    for head in elsewhere_seen.iter() {
        let head = head.to_ascii_lowercase();
        assert!(
            !head.contains("s3cret") && !head.contains("x-trace"),
            "another origin got the configured headers: {head}"
        );
    }
}
