//! Arbitrary HTTP requests into the REST routes (`pymanager::api::routes::all`), served by
//! warp's test client against a real supervisor that manages no process (so that no input
//! spawns anything). Oracle: no panic, never a 500, every error answer is the JSON
//! `{"success": false, "error": {"message": …}}`, and a request either answers or is a
//! stream (events, followed logs) that is still open after the time limit.
//! `DELETE /` really shuts the supervisor down; the next input gets a fresh one.
#![no_main]

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pymanager::api::{Api, routes};
use pymanager::config::Messages;
use pymanager::console::{Console, Verbosity};
use pymanager::plan::Plan;
use pymanager::runtime::{Runtime, RuntimeOptions};
use pymanager::supervisor::{self, SupervisorHandle};
use tokio_util::sync::CancellationToken;

const METHODS: &[&str] = &["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"];
const PATHS: &[&str] = &[
    "/", "/status", "/restart/", "/api/v1/processes", "/api/v1/processes/", "/api/v1/events",
    "/api/v1/openapi.json", "/api/v1/status", "/api/v1/",
];
const TAILS: &[&str] = &[
    "", "1", "0", "-1", "4294967296", "web", "web%20server", "%", "%zz", "%00", "/logs",
    "/restart", "/stop", "/start", "/logs?lines=5", "/logs?follow=true", "?lines=x", "//", "/..",
];
const HEADERS: &[&str] = &["authorization", "content-type", "content-length", "accept", "host"];

#[derive(Arbitrary, Debug)]
struct Req {
    method: u8,
    custom_method: Option<String>,
    path: u8,
    tail: u8,
    extra: Option<String>,
    headers: Vec<(u8, String)>,
    bearer: Option<String>,
    token: bool,
    body: Vec<u8>,
}

struct Env {
    rt: tokio::runtime::Runtime,
    current: Mutex<Option<SupervisorHandle>>,
    console: Console,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let console = Console::new(Verbosity::Quiet, None, std::iter::empty()).unwrap();
        Env { rt, current: Mutex::new(None), console }
    })
}

/// The supervisor of an empty, keep-alive plan: running, with nothing to spawn.
fn handle(env: &Env) -> SupervisorHandle {
    let mut cur = env.current.lock().unwrap();
    if let Some(h) = cur.as_ref()
        && !h.snapshot().phase.is_shutting_down()
    {
        return h.clone();
    }
    let plan = Plan {
        processes: Vec::new(),
        modules: Vec::new(),
        keep_alive: true,
        graceful_time: Duration::from_millis(10),
        messages: Messages::default(),
    };
    let runtime = Runtime::new(RuntimeOptions::default()).unwrap();
    let started = env.rt.block_on(async {
        supervisor::start(plan, runtime, env.console.clone()).unwrap()
    });
    let h = started.handle.clone();
    env.rt.spawn(async move {
        let _ = started.ready.await;
        let _ = started.done.await;
    });
    *cur = Some(h.clone());
    h
}

fuzz_target!(|req: Req| {
    let env = env();
    let h = handle(env);
    let token = req.token.then(|| "secret".to_string());
    let api = Api::new(h, token, CancellationToken::new());
    let filter = routes::all(api);

    let method = match &req.custom_method {
        Some(m) if req.method % 8 == 7 => m.clone(),
        _ => METHODS[req.method as usize % METHODS.len()].to_string(),
    };
    let mut path = format!(
        "{}{}{}",
        PATHS[req.path as usize % PATHS.len()],
        TAILS[req.tail as usize % TAILS.len()],
        req.extra.as_deref().unwrap_or("")
    );
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    // The test client panics on what it cannot send; such inputs are not requests.
    let Ok(method) = warp::http::Method::from_bytes(method.as_bytes()) else { return };
    if path.parse::<warp::http::Uri>().is_err() {
        return;
    }
    let mut r = warp::test::request().method(method.as_str()).path(&path);
    for (k, v) in &req.headers {
        let name = HEADERS[*k as usize % HEADERS.len()];
        if name == "content-length" || name == "host" {
            continue; // set by the client from the body; a lie would be the client's bug
        }
        if warp::http::HeaderValue::from_str(v).is_err() {
            return;
        }
        r = r.header(name, v.as_str());
    }
    if let Some(b) = &req.bearer {
        let v = format!("Bearer {b}");
        if warp::http::HeaderValue::from_str(&v).is_err() {
            return;
        }
        r = r.header("authorization", v);
    }
    let r = r.body(req.body.clone());
    let answer = env.rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(200), r.reply(&filter)).await
    });
    let Ok(resp) = answer else { return }; // a stream that stays open
    let status = resp.status();
    assert_ne!(status.as_u16(), 500, "500 for {method} {path}: {:?}", resp.body());
    if !status.is_success() && method != warp::http::Method::HEAD {
        let v: serde_json::Value = serde_json::from_slice(resp.body())
            .unwrap_or_else(|e| panic!("{status} for {method} {path} is not JSON ({e}): {:?}", resp.body()));
        assert_eq!(v["success"], serde_json::Value::Bool(false), "{method} {path}: {v}");
        assert!(v["error"]["message"].is_string(), "{method} {path}: {v}");
    }
});
