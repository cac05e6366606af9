//! The routes over real HTTP on loopback, against a small stand-in for the supervisor task
//! that answers the handle's commands from a table. The real supervisor is exercised by the
//! end-to-end tests in `tests/api.rs`; these pin down routing, shapes and error mapping.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};

use super::json::tests::info;
use super::*;
use crate::process_view::{OutputLog, ProcState};
use crate::supervisor::{Command, CommandError, Event, Phase, ProcessInfo, ProcessRef};

struct Fake {
    handle: SupervisorHandle,
    snapshot: watch::Sender<Arc<Snapshot>>,
    logs: HashMap<u32, Arc<OutputLog>>,
    /// Restarts wait for this before answering, so a test can hold one in flight.
    gate: Arc<Notify>,
}

fn fake(processes: Vec<ProcessInfo>, gated: bool) -> Fake {
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(16);
    let (snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot {
        phase: Phase::Running,
        processes,
    }));
    let (events, _) = broadcast::channel(64);
    let handle = SupervisorHandle {
        commands: cmd_tx,
        snapshot: snap_rx,
        events: events.clone(),
    };
    let logs: HashMap<u32, Arc<OutputLog>> = snap_tx
        .borrow()
        .processes
        .iter()
        .map(|p| (p.id, Arc::new(OutputLog::new())))
        .collect();
    let gate = Arc::new(Notify::new());
    let (snap, logs2, gate2) = (snap_tx.clone(), logs.clone(), gate.clone());
    tokio::spawn(async move {
        let busy = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        while let Some(cmd) = cmd_rx.recv().await {
            let find = |r: &ProcessRef| -> Result<ProcessInfo, CommandError> {
                let s = snap.borrow();
                if s.phase.is_shutting_down() {
                    return Err(CommandError::ShuttingDown);
                }
                super::routes::find(&s, r)
                    .cloned()
                    .map_err(|_| CommandError::NotFound(r.to_string()))
            };
            let set = |p: ProcessInfo| {
                snap.send_modify(|s| {
                    let mut n = (**s).clone();
                    n.processes[p.id as usize - 1] = p.clone();
                    *s = Arc::new(n);
                });
                let _ = events.send(Event::Process { process: p });
            };
            match cmd {
                Command::Restart(r, tx) => {
                    let p = match find(&r) {
                        Ok(p) => p,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            continue;
                        }
                    };
                    if !busy.lock().unwrap().insert(p.id) {
                        let _ = tx.send(Err(CommandError::Busy(p.name.clone(), "restart")));
                        continue;
                    }
                    let (gate, busy, snap, events) =
                        (gate2.clone(), busy.clone(), snap.clone(), events.clone());
                    tokio::spawn(async move {
                        if gated {
                            gate.notified().await;
                        }
                        let mut p = p;
                        p.restarts += 1;
                        p.state = ProcState::Running {
                            pid: 1000 + p.restarts,
                        };
                        snap.send_modify(|s| {
                            let mut n = (**s).clone();
                            n.processes[p.id as usize - 1] = p.clone();
                            *s = Arc::new(n);
                        });
                        let _ = events.send(Event::Process { process: p.clone() });
                        busy.lock().unwrap().remove(&p.id);
                        let _ = tx.send(Ok(p));
                    });
                }
                Command::Stop(r, tx) => {
                    let _ = tx.send(find(&r).map(|mut p| {
                        p.state = ProcState::Signaled { signal: 15 };
                        set(p.clone());
                        p
                    }));
                }
                Command::Start(r, tx) => {
                    let _ = tx.send(find(&r).map(|mut p| {
                        p.state = ProcState::Running { pid: 77 };
                        set(p.clone());
                        p
                    }));
                }
                Command::Output(r, tx) => {
                    let s = snap.borrow().clone();
                    let _ = tx.send(
                        super::routes::find(&s, &r)
                            .map(|p| logs2[&p.id].clone())
                            .map_err(|_| CommandError::NotFound(r.to_string())),
                    );
                }
                Command::Shutdown(tx) => {
                    if snap.borrow().phase.is_shutting_down() {
                        let _ = tx.send(Err(CommandError::ShuttingDown));
                        continue;
                    }
                    snap.send_modify(|s| {
                        let mut n = (**s).clone();
                        n.phase = Phase::Shutdown;
                        *s = Arc::new(n);
                    });
                    let _ = events.send(Event::Phase {
                        phase: Phase::Shutdown,
                    });
                    let _ = tx.send(Ok(()));
                }
                Command::ForceShutdown => {
                    snap.send_modify(|s| {
                        let mut n = (**s).clone();
                        n.phase = Phase::ForceShutdown;
                        *s = Arc::new(n);
                    });
                }
            }
        }
    });
    Fake {
        handle,
        snapshot: snap_tx,
        logs,
        gate,
    }
}

fn three() -> Vec<ProcessInfo> {
    vec![
        info(1, "web", ProcState::Running { pid: 4242 }),
        info(2, "db", ProcState::Exited { code: 1 }),
        info(3, "job", ProcState::NotStarted),
    ]
}

struct Server {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

async fn serve(fake: &Fake, token: Option<&str>) -> Server {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (addr, server) = bind(
        fake.handle.clone(),
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

fn client() -> reqwest::Client {
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

#[tokio::test]
async fn legacy_routes_answer_like_the_original() {
    let f = fake(three(), false);
    let s = serve(&f, None).await;
    let c = client();
    let (st, body) = call(c.get(format!("{}/", s.base))).await;
    assert_eq!(st, 200);
    assert_eq!(
        body,
        concat!(
            r#"{"count":3,"processes":[{"id":1,"command":"sleep 1","status":"running","pid":4242},"#,
            r#"{"id":2,"command":"sleep 2","status":"terminated","code":1},"#,
            r#"{"id":3,"command":"sleep 3","status":"terminated","code":null}]}"#
        )
    );
    assert_eq!(
        call(c.get(format!("{}/status", s.base))).await,
        (200, r#"{"status":"running"}"#.into())
    );
    assert_eq!(
        call(c.post(format!("{}/restart/abc", s.base))).await,
        (400, error_body("Invalid ID 'abc'."))
    );
    assert_eq!(
        call(c.post(format!("{}/restart/9", s.base))).await,
        (404, error_body("Process with id '9' not found."))
    );
    assert_eq!(
        call(c.post(format!("{}/restart/-1", s.base))).await,
        (404, error_body("Process with id '-1' not found."))
    );
    assert_eq!(
        call(c.post(format!("{}/restart/2", s.base))).await,
        (
            200,
            r#"{"success":true,"process":{"id":2,"command":"sleep 2","status":"running","pid":1001}}"#
                .into()
        )
    );
    assert_eq!(
        call(c.delete(format!("{}/", s.base))).await,
        (200, r#"{"success":true}"#.into())
    );
    // From now on only /status answers.
    let shutdown = error_body("Process is in shutdown.");
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
    assert_eq!(
        call(c.get(format!("{}/status", s.base))).await,
        (200, r#"{"status":"shutdown"}"#.into())
    );
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
    let f = fake(three(), false);
    let s = serve(&f, None).await;
    let c = client();
    let (st, body) = call(c.get(format!("{}/nope", s.base))).await;
    assert_eq!((st, body), (404, error_body("No such route.")));
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
    // The restart above never happened.
    assert_eq!(f.snapshot.borrow().processes[0].restarts, 0);
}

#[tokio::test]
async fn token_guards_everything_but_status() {
    let f = fake(three(), false);
    let s = serve(&f, Some("s3cret")).await;
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
    let (st, _) = call(c.post(format!("{}/api/v1/shutdown", s.base))).await;
    assert_eq!(st, 401);
    assert_eq!(f.snapshot.borrow().phase, Phase::Running);
    let (st, _) = call(c.get(format!("{}/status", s.base))).await;
    assert_eq!(st, 200);
    let (st, _) = call(c.get(format!("{}/api/v1/openapi.json", s.base))).await;
    assert_eq!(st, 200);
    // Unknown routes stay 404: the token protects actions, not the route table (public in
    // the OpenAPI description anyway).
    let (st, _) = call(c.get(format!("{}/nope", s.base))).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn v1_reads_and_commands() {
    let f = fake(three(), false);
    let s = serve(&f, None).await;
    let c = client();
    let (st, body) = call(c.get(format!("{}/api/v1/processes", s.base))).await;
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["count"], 3);
    assert_eq!(v["processes"][0]["name"], "web");
    assert_eq!(v["processes"][0]["pid"], 4242);
    assert_eq!(v["processes"][1]["exit_code"], 1);
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
    assert_eq!(v["process"]["state"], "signaled");
    assert_eq!(v["process"]["signal"], 15);
    let (st, body) = call(c.post(format!("{}/api/v1/processes/1/start", s.base))).await;
    assert_eq!(st, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["process"]["pid"],
        77
    );
    let (st, body) = call(c.post(format!("{}/api/v1/processes/3/restart", s.base))).await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = call(c.get(format!("{}/api/v1/status", s.base))).await;
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "running");
    assert_eq!(v["total"], 3);
    assert_eq!(v["running"], 2);
    let (st, body) = call(c.post(format!("{}/api/v1/shutdown", s.base))).await;
    assert_eq!((st, body.as_str()), (202, r#"{"success":true}"#));
    let (st, _) = call(c.post(format!("{}/api/v1/shutdown", s.base))).await;
    assert_eq!(st, 403);
    let (st, _) = call(c.post(format!("{}/api/v1/processes/1/restart", s.base))).await;
    assert_eq!(st, 403);
    let (st, _) = call(c.post(format!("{}/api/v1/shutdown?force=true", s.base))).await;
    assert_eq!(st, 202);
    assert_eq!(f.snapshot.borrow().phase, Phase::ForceShutdown);
    // Reads stay open during the shutdown.
    let (st, _) = call(c.get(format!("{}/api/v1/processes", s.base))).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn a_restart_in_flight_blocks_nothing_and_a_second_one_is_refused() {
    let f = fake(three(), true);
    let s = serve(&f, None).await;
    let c = client();
    let first = tokio::spawn(call(c.post(format!("{}/restart/1", s.base))));
    // Wait until the supervisor has the first restart (it holds the process busy).
    let mut second = (0, String::new());
    for _ in 0..500 {
        second = call(c.post(format!("{}/api/v1/processes/web/restart", s.base))).await;
        if second.0 == 409 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        second,
        (
            409,
            error_body("process 'web' is busy: restart in progress")
        )
    );
    // Other requests are answered meanwhile.
    let (st, _) = call(c.get(format!("{}/", s.base))).await;
    assert_eq!(st, 200);
    f.gate.notify_one();
    let (st, body) = first.await.unwrap();
    assert_eq!(st, 200, "{body}");
}

#[tokio::test]
async fn logs_tail_and_follow() {
    let f = fake(three(), false);
    let s = serve(&f, None).await;
    let c = client();
    for i in 0..150 {
        f.logs[&1].push(&format!("line {i}"));
    }
    let (st, body) = call(c.get(format!("{}/api/v1/processes/web/logs", s.base))).await;
    assert_eq!(st, 200);
    assert_eq!(body.lines().count(), routes::DEFAULT_LOG_LINES);
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
    f.logs[&1].push("fresh");
    while !got.contains("fresh\n") {
        let chunk = r.chunk().await.unwrap().expect("stream ended early");
        got.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(got, "line 149\nfresh\n");
}

#[tokio::test]
async fn events_stream_then_end_with_the_server() {
    let f = fake(three(), false);
    let mut s = serve(&f, None).await;
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
    // Stopping the server ends the open stream, and the server future itself.
    s.stop.take().unwrap().send(()).unwrap();
    while let Ok(Some(_)) = r.chunk().await {}
    tokio::time::timeout(Duration::from_secs(10), s.done)
        .await
        .expect("server ended")
        .unwrap();
}

#[tokio::test]
async fn a_taken_port_is_a_clear_error() {
    let f = fake(three(), false);
    let s = serve(&f, None).await;
    let port: u16 = s.base.rsplit(':').next().unwrap().parse().unwrap();
    let err = bind(
        f.handle.clone(),
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
        f.handle.clone(),
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
}

#[tokio::test]
async fn every_listed_route_is_routed() {
    let f = fake(three(), false);
    let s = serve(&f, None).await;
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
}
