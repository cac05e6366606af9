//! The routes over real HTTP on loopback, against the real supervisor running real
//! short-lived processes (`sleep`, `sh -c`): routing, shapes and error mapping, with every
//! answer the supervisor's own. Where a test needs a process to hold still (a restart in
//! flight, a line written on cue), the process waits on a FIFO the test writes to.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::*;
use crate::process_view::ProcState;
use crate::supervisor::tests::{Running, bounded, exclusive, run};
use crate::supervisor::{Phase, ProcessRef};

/// A `sh -c` process whose output stays out of the test's own.
fn sh(script: &str) -> Value {
    json!({"executable": "sh", "arguments": ["-c", script],
           "options": {"suppress_output": true}})
}

/// `web` runs, `db` exited with code 1, `job` was killed by SIGTERM.
async fn three() -> Running {
    let mut m = run(json!({"keep-alive": true, "processes": {
        "web": sh("exec sleep 100"),
        "db": sh("exit 1"),
        "job": sh("kill -TERM $$")}}))
    .await;
    m.ready().await;
    m.until("db and job ended", |s| {
        s.processes[1].state.has_ended() && s.processes[2].state.has_ended()
    })
    .await;
    m
}

/// A FIFO in a fresh directory: a process reading it blocks until the test writes.
struct Gate {
    dir: tempfile::TempDir,
}

impl Gate {
    fn new() -> Gate {
        let dir = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&dir.path().join("gate"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        Gate { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("gate")
    }

    /// Lets one reader through (opening blocks until a reader has the FIFO open).
    async fn open(&self) {
        let path = self.path();
        bounded(
            "gate",
            tokio::task::spawn_blocking(move || std::fs::write(path, "go\n")),
        )
        .await
        .unwrap()
        .unwrap();
    }
}

fn wait_at(gate: &Path) -> String {
    format!("read x < {}", gate.display())
}

struct Server {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

async fn serve(m: &Running, token: Option<&str>) -> Server {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (addr, server) = bind(
        m.handle.clone(),
        ApiConfig {
            host: "127.0.0.1".into(),
            port: 0,
            token: token.map(String::from),
        },
        async move {
            let _ = stop_rx.await;
        },
    )
    .await
    .expect("bind");
    Server {
        base: format!("http://{addr}"),
        stop: Some(stop_tx),
        done: tokio::spawn(server),
    }
}

/// Shuts the supervisor down and waits until nothing it started is left.
async fn finish(m: Running) {
    let _ = m.handle.shutdown().await;
    m.done().await;
}

fn pid_of(m: &Running, r: &str) -> u32 {
    m.handle
        .snapshot()
        .get(&ProcessRef::parse(r))
        .and_then(|p| match p.state {
            ProcState::Running { pid } => Some(pid),
            _ => None,
        })
        .expect("running")
}

fn client() -> reqwest::Client {
    crate::tls::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Status and raw body of a request.
async fn call(req: reqwest::RequestBuilder) -> (u16, String) {
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

fn error_body(msg: &str) -> String {
    serde_json::json!({"success": false, "error": {"message": msg}}).to_string()
}

/// The error body of the original's routes, in its serialisation (`json.dumps`: `", "` and
/// `": "`).
fn legacy_error_body(msg: &str) -> String {
    format!(r#"{{"success": false, "error": {{"message": "{msg}"}}}}"#)
}

#[tokio::test]
async fn legacy_routes_answer_like_the_original() {
    let _one = exclusive().await;
    let m = three().await;
    let s = serve(&m, None).await;
    let c = client();
    let web = pid_of(&m, "1");
    let (st, body) = call(c.get(format!("{}/", s.base))).await;
    assert_eq!(st, 200);
    assert_eq!(
        body,
        format!(
            concat!(
                r#"{{"count": 3, "processes": [{{"id": 1, "command": "sh -c exec sleep 100", "status": "running", "pid": {}}}, "#,
                r#"{{"id": 2, "command": "sh -c exit 1", "status": "terminated", "code": 1}}, "#,
                r#"{{"id": 3, "command": "sh -c kill -TERM $$", "status": "terminated", "code": -15}}]}}"#
            ),
            web
        )
    );
    assert_eq!(
        call(c.get(format!("{}/status", s.base))).await,
        (200, r#"{"status": "running"}"#.into())
    );
    assert_eq!(
        call(c.post(format!("{}/restart/abc", s.base))).await,
        (400, legacy_error_body("Invalid ID 'abc'."))
    );
    assert_eq!(
        call(c.post(format!("{}/restart/9", s.base))).await,
        (404, legacy_error_body("Process with id '9' not found."))
    );
    assert_eq!(
        call(c.post(format!("{}/restart/-1", s.base))).await,
        (404, legacy_error_body("Process with id '-1' not found."))
    );
    let (st, body) = call(c.post(format!("{}/restart/2", s.base))).await;
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body,
        format!(
            r#"{{"success": true, "process": {{"id": 2, "command": "sh -c exit 1", "status": "{}", {}}}}}"#,
            v["process"]["status"].as_str().unwrap(),
            match v["process"]["pid"].as_u64() {
                Some(pid) => format!(r#""pid": {pid}"#),
                None => r#""code": 1"#.to_string(),
            }
        )
    );
    assert_eq!(
        call(c.delete(format!("{}/", s.base))).await,
        (200, r#"{"success": true}"#.into())
    );
    // From now on only /status answers.
    let shutdown = legacy_error_body("Process is in shutdown.");
    assert_eq!(
        call(c.get(format!("{}/", s.base))).await,
        (403, shutdown.clone())
    );
    assert_eq!(
        call(c.delete(format!("{}/", s.base))).await,
        (403, shutdown.clone())
    );
    assert_eq!(
        call(c.post(format!("{}/restart/1", s.base))).await,
        (403, shutdown.clone())
    );
    assert_eq!(
        call(c.post(format!("{}/restart/x", s.base))).await,
        (403, shutdown.clone())
    );
    let (st, body) = call(c.get(format!("{}/status", s.base))).await;
    assert_eq!(st, 200);
    assert!(
        [
            r#"{"status": "shutdown"}"#,
            r#"{"status": "force shutdown"}"#
        ]
        .contains(&body.as_str()),
        "{body}"
    );
    m.done().await;
}

/// POSTs a chunked body of `n` chunks of `size` bytes over a raw connection (no client
/// library sends chunked bodies without a stream feature); the response's status.
async fn chunked_post(base: &str, path: &str, n: usize, size: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..n {
        let chunk = format!("{size:x}\r\n{}\r\n", "z".repeat(size));
        // The server may answer and close before the whole body is sent.
        if conn.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

#[tokio::test]
async fn warps_rejections_use_the_error_body() {
    let _one = exclusive().await;
    let m = three().await;
    let s = serve(&m, None).await;
    let c = client();
    // An unknown route is answered in the original's spacing, like its other routes.
    let (st, body) = call(c.get(format!("{}/nope", s.base))).await;
    assert_eq!((st, body), (404, legacy_error_body("No such route.")));
    let (st, body) = call(c.put(format!("{}/", s.base))).await;
    assert_eq!(
        (st, body),
        (405, error_body("Method not allowed on this route."))
    );
    let (st, _) = call(c.get(format!("{}/restart/1", s.base))).await;
    assert_eq!(st, 405);
    let (st, _) = call(c.post(format!("{}/api/v1/processes/1/logs", s.base))).await;
    assert_eq!(st, 405);
    let big = vec![b'x'; 70 * 1024];
    let (st, body) = call(c.post(format!("{}/restart/1", s.base)).body(big.clone())).await;
    assert_eq!(st, 413, "{body}");
    assert!(body.starts_with(r#"{"success":false,"error":{"message":"Request body too large"#));
    // A chunked body has no length up front: read, and refused once past the limit.
    let status = chunked_post(&s.base, "/restart/1", 20, 8192).await;
    assert_eq!(status, 413);
    let status = chunked_post(&s.base, "/api/v1/processes/db/stop", 2, 100).await;
    assert_eq!(status, 200);
    let (st, body) = call(c.get(format!("{}/api/v1/processes/1/logs?lines=x", s.base))).await;
    assert_eq!(st, 400, "{body}");
    // The restarts above never happened.
    assert_eq!(m.handle.snapshot().processes[0].restarts, 0);
    finish(m).await;
}

#[tokio::test]
async fn token_guards_everything_but_status() {
    let _one = exclusive().await;
    let m = three().await;
    let s = serve(&m, Some("s3cret")).await;
    let c = client();
    let (st, body) = call(c.get(format!("{}/", s.base))).await;
    assert_eq!(
        (st, body),
        (
            401,
            error_body("Missing token: send 'Authorization: Bearer <token>'.")
        )
    );
    let (st, body) = call(c.get(format!("{}/", s.base)).bearer_auth("wrong")).await;
    assert_eq!((st, body), (401, error_body("Invalid token.")));
    let (st, _) = call(c.get(format!("{}/", s.base)).bearer_auth("s3cret")).await;
    assert_eq!(st, 200);
    // The reads answered before routing check it as their routes do.
    for path in ["/api/v1/processes", "/api/v1/status"] {
        let url = format!("{}{path}", s.base);
        let (st, body) = call(c.get(&url)).await;
        assert_eq!(st, 401, "{path}: {body}");
        let (st, body) = call(c.get(&url).bearer_auth("wrong")).await;
        assert_eq!((st, body), (401, error_body("Invalid token.")), "{path}");
        let (st, _) = call(c.get(&url).bearer_auth("s3cret")).await;
        assert_eq!(st, 200, "{path}");
    }
    let (st, _) = call(c.post(format!("{}/api/v1/shutdown", s.base))).await;
    assert_eq!(st, 401);
    assert_eq!(m.handle.snapshot().phase, Phase::Running);
    let (st, _) = call(c.get(format!("{}/status", s.base))).await;
    assert_eq!(st, 200);
    let (st, _) = call(c.get(format!("{}/api/v1/openapi.json", s.base))).await;
    assert_eq!(st, 200);
    // Unknown routes stay 404: the token protects actions, not the route table (public in
    // the OpenAPI description anyway).
    let (st, _) = call(c.get(format!("{}/nope", s.base))).await;
    assert_eq!(st, 404);
    finish(m).await;
}

#[tokio::test]
async fn v1_reads_and_commands() {
    let _one = exclusive().await;
    let m = three().await;
    let s = serve(&m, None).await;
    let c = client();
    let (st, body) = call(c.get(format!("{}/api/v1/processes", s.base))).await;
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["count"], 3);
    assert_eq!(v["processes"][0]["name"], "web");
    assert_eq!(v["processes"][0]["pid"], pid_of(&m, "web"));
    assert_eq!(v["processes"][1]["exit_code"], 1);
    assert_eq!(v["processes"][2]["signal"], 15);
    let (st, body) = call(c.get(format!("{}/api/v1/processes/db", s.base))).await;
    assert_eq!(st, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["id"], 2);
    let (st, body) = call(c.get(format!("{}/api/v1/processes/nope", s.base))).await;
    assert_eq!(
        (st, body),
        (404, error_body("Process with id 'nope' not found."))
    );
    let (st, body) = call(c.post(format!("{}/api/v1/processes/web/stop", s.base))).await;
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["success"], true);
    assert_eq!(v["process"]["lifecycle"], "stopped");
    assert_eq!(v["process"]["state"], "signaled");
    assert_eq!(v["process"]["signal"], 15);
    let (st, body) = call(c.post(format!("{}/api/v1/processes/1/start", s.base))).await;
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["process"]["pid"], pid_of(&m, "web"));
    assert_eq!(v["process"]["restarts"], 1);
    let (st, body) = call(c.post(format!("{}/api/v1/processes/3/restart", s.base))).await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = call(c.get(format!("{}/api/v1/status", s.base))).await;
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "running");
    assert_eq!(v["total"], 3);
    assert_eq!(
        v["lifecycle"]["ready"].as_u64().unwrap() + v["lifecycle"]["exited"].as_u64().unwrap(),
        3
    );
    let (st, body) = call(c.post(format!("{}/api/v1/shutdown", s.base))).await;
    assert_eq!((st, body.as_str()), (202, r#"{"success":true}"#));
    let (st, _) = call(c.post(format!("{}/api/v1/shutdown", s.base))).await;
    assert_eq!(st, 403);
    let (st, _) = call(c.post(format!("{}/api/v1/processes/1/restart", s.base))).await;
    assert_eq!(st, 403);
    let (st, _) = call(c.post(format!("{}/api/v1/shutdown?force=true", s.base))).await;
    assert_eq!(st, 202);
    // Reads stay open during the shutdown, and after it.
    let (st, _) = call(c.get(format!("{}/api/v1/processes", s.base))).await;
    assert_eq!(st, 200);
    let handle = m.handle.clone();
    m.done().await;
    assert!(handle.snapshot().phase.is_shutting_down());
    let (st, _) = call(c.get(format!("{}/api/v1/processes", s.base))).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn a_restart_in_flight_blocks_nothing_and_a_start_meanwhile_is_refused() {
    let _one = exclusive().await;
    let gate = Gate::new();
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    // The first run is verified at once; the next one only once the gate opens.
    let web = json!({"executable": "sh", "arguments": ["-c", format!(
            "if [ -e {s} ]; then {wait}; fi; touch {s}; echo up; exec sleep 100",
            s = started.display(), wait = wait_at(&gate.path()))],
        "options": {"suppress_output": true},
        "verifier": {"type": "output", "arguments": {"pattern": "^up$", "timeout": 3600}}});
    let mut m = run(json!({"processes": {"web": web, "db": sh("exec sleep 100")}})).await;
    m.ready().await;
    let s = serve(&m, None).await;
    let c = client();
    let first = tokio::spawn(call(c.post(format!("{}/restart/1", s.base))));
    m.until("the restart's verification", |s| {
        s.processes[0].restarts == 1
            && s.processes[0].lifecycle == crate::supervisor::Lifecycle::Verifying
    })
    .await;
    // A start has nothing to add (a stop or another restart would cut this one short).
    let busy = error_body("process 'web' is busy: restart in progress");
    assert_eq!(
        call(c.post(format!("{}/api/v1/processes/web/start", s.base))).await,
        (409, busy)
    );
    // Other requests are answered meanwhile.
    let (st, _) = call(c.get(format!("{}/", s.base))).await;
    assert_eq!(st, 200);
    let (st, body) = call(c.post(format!("{}/api/v1/processes/db/restart", s.base))).await;
    assert_eq!(st, 200, "{body}");
    assert!(!first.is_finished());
    gate.open().await;
    let (st, body) = bounded("restart", first).await.unwrap();
    assert_eq!(st, 200, "{body}");
    finish(m).await;
}

#[tokio::test]
async fn logs_tail_and_follow() {
    let _one = exclusive().await;
    let gate = Gate::new();
    let talker = sh(&format!(
        "i=0; while [ $i -lt 150 ]; do echo \"line $i\"; i=$((i+1)); done; {}; echo fresh; exec sleep 100",
        wait_at(&gate.path())
    ));
    let mut m = run(json!({"processes": {"web": talker}})).await;
    m.ready().await;
    let log = m.handle.output(ProcessRef::Id(1)).await.unwrap();
    let last = regex::Regex::new("^line 149$").unwrap();
    bounded("150 lines", log.wait_for(&last, std::future::pending())).await;
    let s = serve(&m, None).await;
    let c = client();
    let (st, body) = call(c.get(format!("{}/api/v1/processes/web/logs", s.base))).await;
    assert_eq!(st, 200);
    assert_eq!(body.lines().count(), v1::DEFAULT_LOG_LINES);
    assert!(body.ends_with("line 149\n"));
    let (_, body) = call(c.get(format!("{}/api/v1/processes/1/logs?lines=2", s.base))).await;
    assert_eq!(body, "line 148\nline 149\n");
    let (st, _) = call(c.get(format!("{}/api/v1/processes/9/logs", s.base))).await;
    assert_eq!(st, 404);

    let mut r = c
        .get(format!(
            "{}/api/v1/processes/web/logs?lines=1&follow=true",
            s.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut got = String::from_utf8(r.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    assert_eq!(got, "line 149\n");
    gate.open().await;
    while !got.contains("fresh\n") {
        let chunk = bounded("fresh", r.chunk())
            .await
            .unwrap()
            .expect("stream ended early");
        got.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(got, "line 149\nfresh\n");
    finish(m).await;
}

#[tokio::test]
async fn events_stream_then_end_with_the_server() {
    let _one = exclusive().await;
    let m = three().await;
    let mut s = serve(&m, None).await;
    let c = client();
    let mut r = c
        .get(format!("{}/api/v1/events", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut got = String::new();
    while !got.contains("\n\n") {
        got.push_str(std::str::from_utf8(&r.chunk().await.unwrap().unwrap()).unwrap());
    }
    assert_eq!(
        got,
        "event: phase\ndata: {\"event\":\"phase\",\"phase\":\"running\"}\n\n"
    );
    let (st, _) = call(c.post(format!("{}/api/v1/processes/db/stop", s.base))).await;
    assert_eq!(st, 200);
    got.clear();
    while !got.contains("\n\n") {
        got.push_str(std::str::from_utf8(&r.chunk().await.unwrap().unwrap()).unwrap());
    }
    assert!(
        got.starts_with("event: process\ndata: {\"event\":\"process\",\"process\":{\"id\":2,"),
        "{got}"
    );
    assert!(got.contains(r#""lifecycle":"stopped""#), "{got}");
    // Stopping the server ends the open stream, and the server future itself.
    s.stop.take().unwrap().send(()).unwrap();
    while let Ok(Some(_)) = r.chunk().await {}
    tokio::time::timeout(Duration::from_secs(10), s.done)
        .await
        .expect("server ended")
        .unwrap();
    finish(m).await;
}

#[tokio::test]
async fn a_taken_port_is_a_clear_error() {
    let _one = exclusive().await;
    let m = three().await;
    let s = serve(&m, None).await;
    let port: u16 = s.base.rsplit(':').next().unwrap().parse().unwrap();
    let err = bind(
        m.handle.clone(),
        ApiConfig {
            host: "127.0.0.1".into(),
            port,
            token: None,
        },
        std::future::pending(),
    )
    .await
    .err()
    .expect("second bind fails");
    assert_eq!(
        err.to_string(),
        format!("cannot listen on 127.0.0.1:{port}: Address already in use")
    );
    let err = bind(
        m.handle.clone(),
        ApiConfig {
            token: Some(String::new()),
            ..ApiConfig::default()
        },
        std::future::pending(),
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(err, ApiError::EmptyToken));
    finish(m).await;
}

#[tokio::test]
async fn every_listed_route_is_routed() {
    let _one = exclusive().await;
    let m = three().await;
    let s = serve(&m, None).await;
    let c = client();
    // The shutdown routes last: they change what the others answer.
    let mut routes = routes::ROUTES.to_vec();
    routes.sort_by_key(|(m, p)| (*m == "delete" || p.ends_with("shutdown"), *p));
    for (method, template) in routes {
        let path = template.replace("{ref}", "1").replace("{id}", "1");
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = c
            .request(m, format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        // The second shutdown route is refused (403): routed all the same.
        let st = r.status().as_u16();
        assert!(![404, 405].contains(&st), "{method} {path}: {st}");
    }
    m.done().await;
}
