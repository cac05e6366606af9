//! A web page of another site, open in the owner's browser, must not drive or read the API:
//! every route (the list in `pymanager::api::routes::ROUTES`, so a route added there is
//! covered without a new test) is called the way a browser would on that page's behalf,
//! over real sockets against the real binary, and must answer 403 with the standard error
//! body — and nothing may have been restarted, stopped or shut down afterwards. The owner's
//! own tools (no `Origin`) and the API's own pages (its origin) keep working.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Manager, sh};
use pymanager::api::routes::ROUTES;
use serde_json::{Value, json};

/// One raw HTTP/1.1 request with exactly these headers (no `Host` unless given), so that
/// a test can send what a browser sends, or a forged `Host`. Returns status and body.
fn raw(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{} {path} HTTP/1.1\r\n", method.to_ascii_uppercase());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    s.write_all(req.as_bytes()).unwrap();
    let mut answer = Vec::new();
    // A refused stream would stay open; the refusal itself is complete and closes.
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The route's path with its parameters filled in (`{id}` → 1, `{ref}` → the name).
fn path_of(template: &str) -> String {
    template.replace("{id}", "1").replace("{ref}", "web")
}

fn assert_refused(what: &str, (status, body): (u16, String)) {
    assert_eq!(status, 403, "{what}: {body}");
    let v: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {body}"));
    assert_eq!(v["success"], false, "{what}: {body}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Request refused: "), "{what}: {body}");
}

fn manager() -> (Manager, String) {
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "keep-alive": true,
        "processes": { "web": sh("exec sleep 1000"), "db": sh("exec sleep 1000") }
    }));
    m.wait_status("running");
    let addr = m.url().trim_start_matches("http://").to_string();
    (m, addr)
}

/// What each process looks like: pid, restarts, lifecycle. Equal before and after means
/// nothing was restarted, stopped or started.
fn fingerprint(m: &Manager) -> Vec<(Value, Value, Value)> {
    let v: Value = common::client()
        .get(format!("{}/api/v1/processes", m.url()))
        .send()
        .and_then(|r| r.json())
        .expect("GET /api/v1/processes");
    v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["pid"].clone(),
                p["restarts"].clone(),
                p["lifecycle"].clone(),
            )
        })
        .collect()
}

#[test]
fn other_sites_are_refused_on_every_route_and_change_nothing() {
    let (m, addr) = manager();
    let before = fingerprint(&m);
    assert!(before.iter().all(|(pid, _, _)| pid.is_u64()), "{before:?}");
    let own = addr.as_str();
    let attacks: &[(&str, &[(&str, &str)])] = &[
        (
            "foreign Origin, text/plain",
            &[
                ("Host", own),
                ("Origin", "http://evil.example"),
                ("Content-Type", "text/plain"),
            ],
        ),
        (
            "Origin: null",
            &[
                ("Host", own),
                ("Origin", "null"),
                ("Content-Type", "text/plain"),
            ],
        ),
        (
            "another local port's page",
            &[
                ("Host", own),
                ("Origin", "http://127.0.0.1:1"),
                ("Content-Type", "text/plain"),
            ],
        ),
        (
            "Sec-Fetch-Site: cross-site",
            &[("Host", own), ("Sec-Fetch-Site", "cross-site")],
        ),
        (
            "DNS rebinding (foreign Host)",
            &[("Host", "evil.example:5001")],
        ),
        (
            "DNS rebinding with its own origin",
            &[
                ("Host", "evil.example:5001"),
                ("Origin", "http://evil.example:5001"),
            ],
        ),
    ];
    // Routes that may change something come last in each pass, so a failure to refuse one
    // would show in the fingerprint.
    for (method, template) in ROUTES {
        let path = path_of(template);
        for (what, headers) in attacks {
            let got = raw(&addr, method, &path, headers, "x");
            assert_refused(&format!("{method} {path} with {what}"), got);
        }
    }
    // A path no route has yet is refused the same way (the check runs before routing).
    assert_refused(
        "unknown route",
        raw(
            &addr,
            "post",
            "/api/v2/anything",
            &[("Origin", "http://evil.example")],
            "",
        ),
    );
    assert_eq!(
        fingerprint(&m),
        before,
        "something changed; output:\n{}",
        m.output()
    );
    let status = raw(&addr, "get", "/status", &[("Host", own)], "");
    assert_eq!(status, (200, r#"{"status": "running"}"#.into()));
}

#[test]
fn own_tools_and_own_pages_keep_working() {
    let (m, addr) = manager();
    let port = addr.rsplit_once(':').unwrap().1.to_string();
    let own_origin = format!("http://{addr}");
    // A script without Origin, as the original's users call it (reqwest sends Host).
    let r = common::client()
        .get(format!("{}/", m.url()))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // No Host at all (HTTP/1.0 style clients).
    assert_eq!(raw(&addr, "get", "/status", &[], "").0, 200);
    // The API's own page, by address and by name.
    let localhost = format!("localhost:{port}");
    let localhost_origin = format!("http://localhost:{port}");
    for (host, origin) in [
        (addr.as_str(), own_origin.as_str()),
        (&localhost, &localhost_origin),
    ] {
        let headers = [
            ("Host", host),
            ("Origin", origin),
            ("Sec-Fetch-Site", "same-origin"),
        ];
        let (status, body) = raw(&addr, "get", "/", &headers, "");
        assert_eq!(status, 200, "{host}: {body}");
        assert_eq!(
            raw(&addr, "get", "/api/v1/processes/web", &headers, "").0,
            200
        );
    }
    // Typed into the address bar.
    assert_eq!(
        raw(
            &addr,
            "get",
            "/",
            &[("Host", &addr), ("Sec-Fetch-Site", "none")],
            ""
        )
        .0,
        200
    );
    // A same-origin POST really restarts.
    let before = fingerprint(&m);
    let (status, body) = raw(
        &addr,
        "post",
        "/restart/1",
        &[
            ("Host", &addr),
            ("Origin", &own_origin),
            ("Content-Type", "text/plain"),
        ],
        "",
    );
    assert_eq!(status, 200, "{body}");
    let after = fingerprint(&m);
    assert_eq!(after[0].1, 1, "restart count: {after:?}");
    assert_ne!(after[0].0, before[0].0, "a restarted process has a new pid");
}
