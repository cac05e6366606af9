//! The API within bounds: idle and half-sent connections, streams that are opened and never
//! read. Each test attacks the real binary over real sockets and then checks that the
//! manager still does its job (answers, restarts a process) and did not grow without bound.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Manager, WAIT, config_dir, fd_count, rss_kib, sh, wait_until};
use pymanager::api::server::HEADER_READ_TIMEOUT;
use pymanager::api::{BODY_READ_TIMEOUT, MAX_EVENT_STREAMS, MAX_LOG_FOLLOWS};
use serde_json::{Value, json};

fn addr_of(m: &Manager) -> String {
    m.url().trim_start_matches("http://").to_string()
}

/// Sends a GET and reads until the end of the answer's headers; the socket stays open.
fn open_stream(addr: &str, path: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    (s, String::from_utf8_lossy(&head).into_owned())
}

/// The status code of an answer's head.
fn status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Reads the rest of an answer whose head has been read (a closed, non-streaming one).
fn rest(mut s: TcpStream) -> String {
    let mut body = Vec::new();
    let mut buf = [0u8; 4096];
    // The error answers have a Content-Length and the connection stays open: read what is
    // there.
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
        if serde_json::from_slice::<Value>(&body).is_ok() {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

#[test]
fn five_hundred_idle_connections_neither_block_status_nor_starve_a_restart() {
    // A low file limit, as on many CI runners: 500 sockets would exhaust it, and a restart
    // then fails to create its pipes.
    let dir = config_dir(&json!({
        "http": {"enabled": true},
        "keep-alive": true,
        "processes": {"web": sh("exec sleep 1000")}
    }));
    let m = Manager::start_wrapped(dir, &["prlimit", "--nofile=128:128", "--"], &[]);
    m.wait_status("running");
    let addr = addr_of(&m);
    let manager = m.manager_pid();
    let fds_before = fd_count(manager);
    let idle: Vec<TcpStream> = (0..500)
        .map(|i| TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connection {i}: {e}")))
        .collect();
    // Waiting for the idle ones to time out would take the header-read timeout; the
    // client gives up well before that.
    pymanager::tls::install_crypto_provider();
    let quick = reqwest::blocking::Client::builder()
        .timeout(HEADER_READ_TIMEOUT / 2)
        .build()
        .unwrap();
    let r = quick
        .get(format!("http://{addr}/status"))
        .send()
        .expect("GET /status while 500 connections sit idle");
    assert_eq!(r.status(), 200);
    // The oldest idle connections were closed to make room.
    let mut first = &idle[0];
    first.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(
        first.read(&mut [0u8; 16]).ok(),
        Some(0),
        "the oldest idle connection is still open"
    );
    let fds = fd_count(manager);
    let cap = 128 / 4;
    assert!(
        fds <= fds_before + cap + 2,
        "{fds} fds open (before: {fds_before}, cap {cap})"
    );
    // A restart needs new pipes: there are file descriptors left for them.
    let before: Value = quick
        .get(format!("http://{addr}/"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let restarted = common::client()
        .post(format!("http://{addr}/restart/1"))
        .send()
        .expect("restart");
    let body = json_of(&restarted.text().unwrap());
    assert_eq!(body["success"], true, "{body}\n{}", m.output());
    assert_ne!(before["processes"][0]["pid"], body["process"]["pid"]);
    assert!(
        !m.output().contains("cannot create a pipe"),
        "{}",
        m.output()
    );
    drop(idle);
}

/// A running manager of one process, `web`, with the API on.
fn one_web() -> Manager {
    let m = Manager::start(json!({
        "http": {"enabled": true}, "keep-alive": true,
        "processes": {"web": sh("exec sleep 1000")}
    }));
    m.wait_status("running");
    m
}

fn json_of(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let m = one_web();
    let addr = addr_of(&m);
    // A stream answers one request for as long as it is open: the timeout is not for it.
    let (mut events, head) = open_stream(&addr, "/api/v1/events");
    assert_eq!(status(&head), 200, "{head}");
    // A first request of its own, never finished.
    let mut first = TcpStream::connect(&addr).unwrap();
    first
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .unwrap();
    // A kept-alive connection whose second request is never finished: its period starts
    // when the first answer has been written.
    let mut second = TcpStream::connect(&addr).unwrap();
    write!(second, "GET /status HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    second.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = [0u8; 4096];
    let n = second.read(&mut answer).expect("the first answer");
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
    second.write_all(b"GET / HTTP/1.1\r\nX-Slow: ").unwrap();
    for (what, mut s) in [("first", first), ("second", second)] {
        s.set_read_timeout(Some(HEADER_READ_TIMEOUT + WAIT))
            .unwrap();
        let mut buf = Vec::new();
        // The server closes the connection (with or without a 408): the read ends, it
        // does not time out.
        let got = s.read_to_end(&mut buf);
        assert!(
            got.is_ok(),
            "{what} request: still open after {:?}: {got:?}",
            HEADER_READ_TIMEOUT + WAIT
        );
        assert!(!String::from_utf8_lossy(&buf).contains("200 OK"), "{what}");
    }
    // By now the stream has been open longer than the timeout; it still follows events
    // (before the restart it has sent only the phase and keep-alives, which name no
    // process).
    let restarted = common::client()
        .post(format!("http://{addr}/restart/1"))
        .send()
        .expect("restart");
    assert_eq!(restarted.status(), 200);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("web") {
        match events.read(&mut buf) {
            Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
            got => panic!(
                "the event stream ended or stalled ({got:?}) after: {}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
}

#[test]
fn a_body_that_never_arrives_gets_a_408_and_changes_nothing() {
    let m = one_web();
    let addr = addr_of(&m);
    let pid_of_web = || {
        let list: Value = common::client()
            .get(format!("http://{addr}/"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        list["processes"][0]["pid"].clone()
    };
    let before = pid_of_web();
    let mut s = TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "POST /restart/1 HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 10\r\n\r\nabc"
    )
    .unwrap();
    s.set_read_timeout(Some(BODY_READ_TIMEOUT + WAIT)).unwrap();
    let mut answer = Vec::new();
    let got = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(got.is_ok(), "still open: {got:?} after {answer}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within"), "{answer}");
    assert_eq!(pid_of_web(), before, "the request was carried out");
}

/// Opens `max` streams at `path`, checks the next one is refused with 503 and the message,
/// then that closing one makes room again.
fn streams_are_capped(path: &str, max: usize, what: &str) {
    let m = one_web();
    let addr = addr_of(&m);
    let mut open = Vec::new();
    for i in 0..max {
        let (s, head) = open_stream(&addr, path);
        assert_eq!(status(&head), 200, "stream {i}: {head}");
        open.push(s);
    }
    let (s, head) = open_stream(&addr, path);
    assert_eq!(status(&head), 503, "{head}");
    let body = rest(s);
    let v = json_of(&body);
    assert_eq!(v["success"], false);
    assert_eq!(
        v["error"]["message"],
        format!("Too many open {what} (limit {max}): close one and try again.")
    );
    // Everything else still answers.
    let r = common::client()
        .get(format!("http://{addr}/"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // A stream that ends gives its place back (the server notices the closed socket at
    // its next write, a keep-alive comment or a line at the latest).
    drop(open.pop());
    assert!(
        wait_until(WAIT, || status(&open_stream(&addr, path).1) == 200),
        "no room after closing a stream"
    );
}

#[test]
fn event_streams_are_capped_with_a_503() {
    streams_are_capped("/api/v1/events", MAX_EVENT_STREAMS, "event streams");
}

#[test]
fn followed_logs_are_capped_with_a_503() {
    streams_are_capped(
        "/api/v1/processes/web/logs?follow=true",
        MAX_LOG_FOLLOWS,
        "followed logs",
    );
}

#[test]
fn event_streams_that_never_read_keep_memory_bounded() {
    let m = one_web();
    let addr = addr_of(&m);
    let manager = m.manager_pid();
    let rss_before = rss_kib(manager);
    let stuck: Vec<TcpStream> = (0..MAX_EVENT_STREAMS)
        .map(|_| open_stream(&addr, "/api/v1/events").0)
        .collect();
    // Each restart is several events (stopping, stopped, starting, ready) for every stream.
    let client = common::client();
    for i in 0..300 {
        let r = client
            .post(format!("http://{addr}/restart/1"))
            .send()
            .unwrap_or_else(|e| panic!("restart {i}: {e}"));
        assert_eq!(r.status(), 200, "restart {i}");
    }
    let rss_after = rss_kib(manager);
    eprintln!(
        "RSS {rss_before} KiB -> {rss_after} KiB with {} stuck event streams",
        stuck.len()
    );
    let grown_mib = rss_after.saturating_sub(rss_before) / 1024;
    assert!(grown_mib < 64, "RSS grew by {grown_mib} MiB");
    drop(stuck);
}
/// The number at the start of the last line of `web`'s output.
fn last_line_number(addr: &str) -> u64 {
    common::client()
        .get(format!("http://{addr}/api/v1/processes/web/logs?lines=1"))
        .send()
        .and_then(|r| r.text())
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

#[test]
fn followers_that_never_read_a_flood_keep_memory_bounded() {
    // 60 KB lines as fast as a shell can print them; kept only in the history.
    let flood = "pad=$(head -c 60000 /dev/zero | tr '\\0' x); i=0; \
                 while :; do i=$((i+1)); echo \"$i $pad\"; done";
    let m = Manager::start(json!({
        "http": {"enabled": true}, "keep-alive": true,
        "processes": {"web": {"executable": "sh", "arguments": ["-c", flood],
                              "options": {"suppress_output": true}}}
    }));
    m.wait_status("running");
    let addr = addr_of(&m);
    let manager = m.manager_pid();
    assert!(
        wait_until(WAIT, || last_line_number(&addr) > 2000),
        "no flood"
    );
    let rss_before = rss_kib(manager);
    // Every follower asks for the whole history and then never reads a byte.
    let stuck: Vec<TcpStream> = (0..MAX_LOG_FOLLOWS)
        .map(|_| open_stream(&addr, "/api/v1/processes/web/logs?follow=true&lines=1000").0)
        .collect();
    let start = last_line_number(&addr);
    // Let ~1.2 GB more flow past them (20 000 lines of 60 KB).
    assert!(
        wait_until(2 * WAIT, || last_line_number(&addr) > start + 20_000),
        "the flood stalled at {} (from {start})",
        last_line_number(&addr)
    );
    let rss_after = rss_kib(manager);
    let grown_mib = rss_after.saturating_sub(rss_before) / 1024;
    eprintln!(
        "RSS {rss_before} KiB -> {rss_after} KiB with {} stuck followers",
        stuck.len()
    );
    assert!(
        grown_mib < 256,
        "RSS grew by {grown_mib} MiB with {} followers that never read",
        stuck.len()
    );
    let r = common::client()
        .get(format!("http://{addr}/status"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(stuck);
}
