//! End-to-end tests of the REST API: the real binary, real processes, real HTTP on loopback.
//!
//! The original's routes are checked field by field and key by key (scripts parse them);
//! `/api/v1/` for what it adds. No test asserts a duration: waits are bounded by
//! `common::WAIT` and end as soon as their event happens.
mod common;

use std::io::{BufRead, BufReader};

use common::{Manager, WAIT, alive, client, sh, wait_all_gone, wait_until};
use serde_json::{Value, json};

/// A process that ignores SIGTERM (so do its children: an ignored signal survives exec), so
/// stopping it takes the whole grace period: long enough to act while it is being stopped.
fn stubborn() -> Value {
    sh("trap '' TERM; while :; do sleep 1; done")
}

/// Status, content type and body of a request.
fn send(req: reqwest::blocking::RequestBuilder) -> (u16, String, String) {
    let r = req.send().expect("request");
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ctype, r.text().unwrap())
}

fn get(url: &str) -> (u16, String) {
    let (s, _, b) = send(client().get(url));
    (s, b)
}

fn post(url: &str) -> (u16, String) {
    let (s, _, b) = send(client().post(url));
    (s, b)
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The keys of a JSON object, in the order they were sent.
fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// Asserts the original's error body, exactly: `{"success": false, "error": {"message"}}`.
fn assert_error(got: (u16, String), status: u16, message: &str) {
    assert_eq!(got.0, status, "body: {}", got.1);
    let v = json_of(&got.1);
    assert_eq!(keys(&v), ["success", "error"]);
    assert_eq!(v["success"], false);
    assert_eq!(keys(&v["error"]), ["message"]);
    assert_eq!(v["error"]["message"], message, "body: {}", got.1);
}

/// Asserts the error body's shape and status, whatever the message.
fn assert_error_shape(got: (u16, String), status: u16) {
    assert_eq!(got.0, status, "body: {}", got.1);
    let v = json_of(&got.1);
    assert_eq!(keys(&v), ["success", "error"]);
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[test]
fn original_list_and_status_have_the_originals_shape() {
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "processes": {
            "web": sh("exec sleep 100"),
            "failing": sh("exit 3"),
            "killed": sh("kill -TERM $$"),
        }
    }));
    m.wait_status("running");
    let url = m.url();
    // Wait for both short processes to have ended (no timing: their exits are events).
    assert!(wait_until(WAIT, || {
        let v = m.list();
        v["processes"][1]["status"] == "terminated" && v["processes"][2]["status"] == "terminated"
    }));
    let (status, ctype, body) = send(client().get(format!("{url}/")));
    assert_eq!(status, 200);
    assert_eq!(ctype, "application/json");
    let v = json_of(&body);
    assert_eq!(keys(&v), ["count", "processes"]);
    assert_eq!(v["count"], 3);
    let p = &v["processes"];
    assert_eq!(keys(&p[0]), ["id", "command", "status", "pid"]);
    assert_eq!(p[0]["id"], 1);
    assert_eq!(p[0]["command"], "sh -c exec sleep 100");
    assert_eq!(p[0]["status"], "running");
    assert!(alive(p[0]["pid"].as_i64().unwrap() as i32));
    assert_eq!(keys(&p[1]), ["id", "command", "status", "code"]);
    assert_eq!(p[1]["id"], 2);
    assert_eq!(p[1]["status"], "terminated");
    assert_eq!(p[1]["code"], 3);
    assert_eq!(keys(&p[2]), ["id", "command", "status", "code"]);
    assert_eq!(p[2]["id"], 3);
    assert_eq!(
        p[2]["code"], -15,
        "a signal is reported as minus its number"
    );

    let (status, ctype, body) = send(client().get(format!("{url}/status")));
    assert_eq!((status, ctype.as_str()), (200, "application/json"));
    assert_eq!(body, r#"{"status": "running"}"#);
}

#[test]
fn original_restart_and_its_errors() {
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "processes": { "web": sh("exec sleep 100"), "other": sh("exec sleep 100") }
    }));
    m.wait_status("running");
    let url = m.url();
    let before = m.pids();
    let (s, b) = post(&format!("{url}/restart/2"));
    assert_eq!(s, 200, "{b}");
    let v = json_of(&b);
    assert_eq!(keys(&v), ["success", "process"]);
    assert_eq!(v["success"], true);
    assert_eq!(keys(&v["process"]), ["id", "command", "status", "pid"]);
    assert_eq!(v["process"]["id"], 2);
    assert_eq!(v["process"]["status"], "running");
    let new_pid = v["process"]["pid"].as_i64().unwrap() as i32;
    assert_ne!(new_pid, before[1]);
    assert!(alive(new_pid));
    wait_all_gone(&[before[1]], WAIT).expect("the old process is gone");
    assert!(alive(before[0]), "the other process was left alone");

    assert_error(
        post(&format!("{url}/restart/abc")),
        400,
        "Invalid ID 'abc'.",
    );
    assert_error(
        post(&format!("{url}/restart/web")),
        400,
        "Invalid ID 'web'.",
    );
    assert_error(
        post(&format!("{url}/restart/99")),
        404,
        "Process with id '99' not found.",
    );
    assert_error(
        post(&format!("{url}/restart/0")),
        404,
        "Process with id '0' not found.",
    );
}

#[test]
fn delete_shuts_down_and_everything_but_status_is_refused_meanwhile() {
    let mut m = Manager::start(json!({
        "http": {"enabled": true},
        "graceful_time": 3,
        "processes": { "stubborn": stubborn() }
    }));
    m.wait_status("running");
    let url = m.url();
    let pids = m.pids();
    let (s, ctype, b) = send(client().delete(format!("{url}/")));
    assert_eq!(
        (s, ctype.as_str(), b.as_str()),
        (200, "application/json", r#"{"success": true}"#)
    );
    // The stubborn process holds the shutdown open for graceful_time.
    let msg = "Process is in shutdown.";
    let (s, b) = get(&format!("{url}/status"));
    assert_eq!(s, 200);
    assert!(
        ["shutdown", "force shutdown"].contains(&json_of(&b)["status"].as_str().unwrap()),
        "{b}"
    );
    assert_error(get(&format!("{url}/")), 403, msg);
    assert_error(post(&format!("{url}/restart/1")), 403, msg);
    assert_error(post(&format!("{url}/restart/nope")), 403, msg);
    let (s, _, b) = send(client().delete(format!("{url}/")));
    assert_error((s, b), 403, msg);
    assert_error(post(&format!("{url}/api/v1/processes/1/restart")), 403, msg);
    assert_eq!(m.wait_exit(), 0, "{}", m.output());
    wait_all_gone(&pids, WAIT).expect("nothing left");
}

#[test]
fn every_rejection_uses_the_error_body() {
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "processes": { "web": sh("exec sleep 100") }
    }));
    m.wait_status("running");
    let url = m.url();
    assert_error(get(&format!("{url}/nope")), 404, "No such route.");
    assert_eq!(
        get(&format!("{url}/nope")).1,
        r#"{"success": false, "error": {"message": "No such route."}}"#
    );
    assert_error(get(&format!("{url}/api/v1/nope")), 404, "No such route.");
    assert_error(
        get(&format!("{url}/restart/1/extra")),
        404,
        "No such route.",
    );
    let (s, _, b) = send(client().put(format!("{url}/")));
    assert_error((s, b), 405, "Method not allowed on this route.");
    assert_error_shape(get(&format!("{url}/restart/1")), 405);
    assert_error_shape(post(&format!("{url}/status")), 405);
    assert_error_shape(post(&format!("{url}/api/v1/processes/1/logs")), 405);
    // A body over 64 KiB is refused before anything happens.
    let (s, _, b) = send(
        client()
            .post(format!("{url}/restart/1"))
            .body(vec![b'x'; 65 * 1024 + 1]),
    );
    assert_error_shape((s, b), 413);
    assert_eq!(m.v1_process("web")["restarts"], 0);
    // A small body is fine.
    let (s, _, b) = send(client().post(format!("{url}/restart/1")).body("{}"));
    assert_eq!(s, 200, "{b}");
    assert_error_shape(
        get(&format!("{url}/api/v1/processes/web/logs?lines=many")),
        400,
    );
    assert_error_shape(
        get(&format!("{url}/api/v1/processes/web/logs?follow=maybe")),
        400,
    );
    assert_error(
        get(&format!("{url}/api/v1/processes/ghost")),
        404,
        "Process with id 'ghost' not found.",
    );
}

#[test]
fn a_token_guards_everything_but_status() {
    let m = Manager::start(json!({
        "http": {"enabled": true, "token": "s3cret"},
        "processes": { "web": sh("exec sleep 100") }
    }));
    m.wait_status("running");
    let url = m.url();
    assert_error(
        get(&format!("{url}/")),
        401,
        "Missing token: send 'Authorization: Bearer <token>'.",
    );
    let (s, _, b) = send(client().get(format!("{url}/")).bearer_auth("wrong"));
    assert_error((s, b), 401, "Invalid token.");
    let (s, _, _) = send(client().get(format!("{url}/")).bearer_auth("s3cret"));
    assert_eq!(s, 200);
    assert_error_shape(post(&format!("{url}/restart/1")), 401);
    assert_error_shape(post(&format!("{url}/api/v1/shutdown")), 401);
    assert_error_shape(get(&format!("{url}/api/v1/events")), 401);
    let (s, _, _) = send(client().delete(format!("{url}/")));
    assert_eq!(s, 401);
    // Health checks and the API description stay open.
    assert_eq!(get(&format!("{url}/status")).0, 200);
    assert_eq!(get(&format!("{url}/api/v1/openapi.json")).0, 200);
    // Nothing above reached the process.
    let (s, _, b) = send(
        client()
            .get(format!("{url}/api/v1/processes/web"))
            .bearer_auth("s3cret"),
    );
    assert_eq!(s, 200);
    assert_eq!(json_of(&b)["restarts"], 0);
}

/// `POST <url>/restart/1` on a thread of its own, with a client that waits as long as a
/// test may (a restart of a stubborn process takes its whole grace period).
fn restart_in_background(url: &str) -> std::thread::JoinHandle<(u16, String, String)> {
    let url = url.to_string();
    std::thread::spawn(move || {
        pymanager::tls::install_crypto_provider();
        let c = reqwest::blocking::Client::builder()
            .timeout(WAIT)
            .build()
            .unwrap();
        send(c.post(format!("{url}/restart/1")))
    })
}

#[test]
fn a_second_restart_of_the_same_process_is_refused_and_reads_never_wait() {
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "processes": { "stubborn": stubborn(), "web": sh("exec sleep 100") }
    }));
    m.wait_status("running");
    let url = m.url();
    let old = m.pids();
    let first = restart_in_background(&url);
    // The first restart takes the whole grace period (the process ignores SIGTERM).
    assert!(wait_until(WAIT, || m.v1_process("stubborn")["lifecycle"] == "stopping"));
    assert_error(
        post(&format!("{url}/api/v1/processes/stubborn/restart")),
        409,
        "process 'stubborn' is busy: restart in progress",
    );
    assert_error_shape(post(&format!("{url}/restart/1")), 409);
    // (A stop would cut the restart short: it is not started again.)
    // Reads, and commands on other processes, are answered meanwhile.
    assert_eq!(get(&format!("{url}/")).0, 200);
    assert_eq!(get(&format!("{url}/api/v1/status")).0, 200);
    let (s, b) = post(&format!("{url}/api/v1/processes/web/restart"));
    assert_eq!(s, 200, "{b}");
    assert!(
        !first.is_finished(),
        "the stubborn restart is still under way"
    );
    let (s, _, b) = first.join().unwrap();
    assert_eq!(s, 200, "{b}");
    let v = json_of(&b);
    assert_eq!(v["process"]["status"], "running");
    assert_ne!(v["process"]["pid"].as_i64().unwrap() as i32, old[0]);
    wait_all_gone(&old, WAIT).expect("both old processes are gone");
}

#[test]
fn a_shutdown_during_a_restart_answers_both_and_leaves_nothing() {
    let mut m = Manager::start(json!({
        "http": {"enabled": true},
        "graceful_time": 2,
        "processes": { "stubborn": stubborn() }
    }));
    m.wait_status("running");
    let url = m.url();
    let old = m.pids();
    let restart = restart_in_background(&url);
    assert!(wait_until(WAIT, || m.v1_process("1")["lifecycle"] == "stopping"));
    let (s, _, b) = send(client().delete(format!("{url}/")));
    assert_eq!((s, b.as_str()), (200, r#"{"success": true}"#));
    // The restart gets an answer (success or the standard error body), never a hang.
    let (s, _, b) = restart.join().unwrap();
    if s != 200 {
        assert_error_shape((s, b), s);
    }
    assert_eq!(m.wait_exit(), 0, "{}", m.output());
    wait_all_gone(&old, WAIT).expect("nothing left");
}

#[test]
fn v1_lists_gets_stops_starts_and_restarts() {
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "keep-alive": true,
        "processes": { "web": sh("exec sleep 100"), "job": sh("exit 0") }
    }));
    m.wait_status("running");
    let url = m.url();
    let (s, b) = get(&format!("{url}/api/v1/processes"));
    assert_eq!(s, 200);
    let v = json_of(&b);
    assert_eq!(keys(&v), ["count", "processes"]);
    assert_eq!(v["count"], 2);
    let web = &v["processes"][0];
    assert_eq!(
        keys(web),
        [
            "id",
            "name",
            "command",
            "state",
            "pid",
            "exit_code",
            "signal",
            "status",
            "lifecycle",
            "restarts",
            "started_at",
            "verifier",
            "error",
            "waiting_for",
            "last_exit",
            "next_attempt",
            "liveness",
            "ports"
        ]
    );
    assert_eq!(web["name"], "web");
    assert_eq!(web["state"], "running");
    assert_eq!(web["lifecycle"], "ready");
    assert!(web["started_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(web["verifier"], Value::Null);
    assert!(wait_until(WAIT, || m.v1_process("job")["state"] == "exited"));
    assert_eq!(m.v1_process("2")["exit_code"], 0);
    assert_eq!(
        json_of(&get(&format!("{url}/api/v1/status")).1)["lifecycle"]["stopped"],
        0
    );

    let (s, b) = post(&format!("{url}/api/v1/processes/web/stop"));
    assert_eq!(s, 200, "{b}");
    let v = json_of(&b);
    assert_eq!(keys(&v), ["success", "process"]);
    assert_eq!(v["process"]["lifecycle"], "stopped");
    assert_eq!(v["process"]["pid"], Value::Null);
    wait_all_gone(&[web["pid"].as_i64().unwrap() as i32], WAIT).expect("stopped");
    // The list and the status are kept rendered per snapshot: both were read above, and
    // both follow the change.
    let list = || json_of(&get(&format!("{url}/api/v1/processes")).1);
    let status = || json_of(&get(&format!("{url}/api/v1/status")).1);
    assert!(wait_until(WAIT, || list()["processes"][0]["lifecycle"] == "stopped"));
    assert!(wait_until(WAIT, || status()["lifecycle"]["stopped"] == 1));

    let (s, b) = post(&format!("{url}/api/v1/processes/web/start"));
    assert_eq!(s, 200, "{b}");
    let v = json_of(&b);
    assert_eq!(v["process"]["state"], "running");
    let pid = v["process"]["pid"].as_i64().unwrap();
    assert!(alive(pid as i32));
    assert!(wait_until(WAIT, || list()["processes"][0]["pid"] == pid));
    assert!(wait_until(WAIT, || status()["lifecycle"]["stopped"] == 0));

    let (s, b) = post(&format!("{url}/api/v1/processes/job/restart"));
    assert_eq!(s, 200, "{b}");
    assert_eq!(json_of(&b)["process"]["restarts"], 1);
    assert_error(
        post(&format!("{url}/api/v1/processes/ghost/stop")),
        404,
        "Process with id 'ghost' not found.",
    );

    let (s, b) = get(&format!("{url}/api/v1/status"));
    assert_eq!(s, 200);
    let v = json_of(&b);
    assert_eq!(
        keys(&v),
        [
            "status",
            "shutting_down",
            "total",
            "running",
            "lifecycle",
            "startup_failure"
        ]
    );
    assert_eq!(v["status"], "running");
    assert_eq!(v["total"], 2);
}

#[test]
fn v1_logs_tail_and_follow_across_a_restart() {
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "processes": {
            "talker": sh("for i in 1 2 3 4 5; do echo line $i; done; exec sleep 100"),
        }
    }));
    m.wait_status("running");
    let url = m.url();
    let logs = |q: &str| get(&format!("{url}/api/v1/processes/talker/logs{q}"));
    assert!(wait_until(WAIT, || logs("").1.contains("line 5")));
    let (s, ctype, b) = send(client().get(format!("{url}/api/v1/processes/1/logs?lines=2")));
    assert_eq!((s, ctype.as_str()), (200, "text/plain; charset=utf-8"));
    assert_eq!(b, "line 4\nline 5\n");
    assert_eq!(logs("?lines=0").1, "");

    pymanager::tls::install_crypto_provider();
    let c = reqwest::blocking::Client::builder()
        .timeout(WAIT)
        .build()
        .unwrap();
    let r = c
        .get(format!(
            "{url}/api/v1/processes/talker/logs?lines=1&follow=true"
        ))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut lines = BufReader::new(r).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "line 5");
    // A restart begins a new run; its output follows on the same stream.
    let (s, b) = post(&format!("{url}/restart/1"));
    assert_eq!(s, 200, "{b}");
    for want in ["line 1", "line 2", "line 3", "line 4", "line 5"] {
        assert_eq!(lines.next().unwrap().unwrap(), want);
    }
}

/// Reads server-sent events until one satisfies `want`; its data.
fn next_event(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    want: impl Fn(&Value) -> bool,
) -> Value {
    loop {
        let line = lines.next().expect("stream open").expect("readable");
        if let Some(data) = line.strip_prefix("data: ") {
            let v = json_of(data);
            if want(&v) {
                return v;
            }
        }
    }
}

#[test]
fn v1_events_stream_phase_and_process_changes() {
    let mut m = Manager::start(json!({
        "http": {"enabled": true},
        "processes": { "web": sh("exec sleep 100") }
    }));
    m.wait_status("running");
    let url = m.url();
    pymanager::tls::install_crypto_provider();
    let c = reqwest::blocking::Client::builder()
        .timeout(WAIT)
        .build()
        .unwrap();
    let r = c.get(format!("{url}/api/v1/events")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut lines = BufReader::new(r).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "event: phase");
    assert_eq!(
        lines.next().unwrap().unwrap(),
        r#"data: {"event":"phase","phase":"running"}"#
    );
    let (s, _) = post(&format!("{url}/api/v1/processes/web/restart"));
    assert_eq!(s, 200);
    let v = next_event(&mut lines, |v| {
        v["event"] == "process"
            && v["process"]["restarts"] == 1
            && v["process"]["state"] == "running"
    });
    assert_eq!(v["process"]["name"], "web");
    let (s, _) = post(&format!("{url}/api/v1/shutdown"));
    assert_eq!(s, 202);
    next_event(&mut lines, |v| {
        v["event"] == "phase" && v["phase"] == "shutdown"
    });
    // The stream ends when the manager does.
    for line in lines.by_ref() {
        if line.is_err() {
            break;
        }
    }
    assert_eq!(m.wait_exit(), 0);
}

#[test]
fn v1_shutdown_and_force() {
    let mut m = Manager::start(json!({
        "http": {"enabled": true},
        "graceful_time": 600,
        "processes": { "stubborn": stubborn() }
    }));
    m.wait_status("running");
    let url = m.url();
    let pids = m.pids();
    let (s, b) = post(&format!("{url}/api/v1/shutdown"));
    assert_eq!((s, b.as_str()), (202, r#"{"success":true}"#));
    assert_error(
        post(&format!("{url}/api/v1/shutdown")),
        403,
        "Process is in shutdown.",
    );
    // graceful_time is 600 s, ten times the test's bound: only the forced shutdown ends
    // this within it.
    let (s, b) = post(&format!("{url}/api/v1/shutdown?force=true"));
    assert_eq!((s, b.as_str()), (202, r#"{"success":true}"#));
    m.wait_exit_within(WAIT)
        .unwrap_or_else(|| panic!("not forced down; output:\n{}", m.output()));
    wait_all_gone(&pids, WAIT).expect("nothing left");
}
