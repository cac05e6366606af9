//! The dashboard (`GET /ui/`) in a real headless Chromium against the real binary with real
//! processes: how the page is served, what it lists and how it follows changes without a
//! reload, its stream parsers, and what it shows of waits, restarts to come, liveness
//! checks and ports. Its actions are in dashboard_actions.rs, its connection in
//! dashboard_connection.rs, its looks in dashboard_look.rs, the start-up waterfall in
//! dashboard_startup.rs; the page helpers they share in common/dashboard.rs.
//!
//! No test asserts a duration: every wait ends on the event it waits for (a DOM change
//! observed in the page, a status from the API), bounded by `common::WAIT`.
mod common;

use common::browser::Browser;
use common::dashboard::*;
use common::{Manager, client, free_port, sh};
use serde_json::{Value, json};
use std::time::Instant;

#[test]
fn the_page_is_served_with_a_strict_policy_and_without_the_token() {
    let m = Manager::start(json!({
        "http": {"enabled": true, "token": "s3cret"},
        "keep-alive": true,
        "processes": {"svc": sh("exec sleep 100")}
    }));
    let base = m.url();
    let c = client();
    for (path, ctype) in [
        ("/ui/", "text/html; charset=utf-8"),
        ("/ui", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
    ] {
        let r = c.get(format!("{base}{path}")).send().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert_eq!(h["content-type"], ctype, "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
    }
    // The page is public; what it shows is not.
    let r = c.get(format!("{base}/api/v1/processes")).send().unwrap();
    assert_eq!(r.status(), 401);
    let r = c.get(format!("{base}/ui/nothing.js")).send().unwrap();
    assert_eq!(r.status(), 404);
    let r = c.post(format!("{base}/ui/")).send().unwrap();
    assert_eq!(r.status(), 405);
}

#[test]
fn it_lists_every_process_and_follows_exits_and_output_without_a_reload() {
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "keep-alive": true,
        "processes": {
            "web": {"executable": "sh", "arguments": ["-c", "echo web is up; exec sleep 1000"],
                    "verifier": {"type": "output", "arguments": {"pattern": "web is up"}}},
            "done": sh("echo bye; exit 2"),
            "job": sh(&format!("{}; exit 3", until("exit-now"))),
            "talker": sh(&format!(
                "echo first line; {}; echo said after the page loaded; {}; seq 1 5000; exec sleep 1000",
                until("speak"),
                until("flood")
            )),
        }
    }));
    m.wait_status("running");
    let b = Browser::start(WIDTH, HEIGHT);
    open(&b, &m, 4);
    mark(&b);

    // Every process, in the state the API reports.
    b.wait_for(
        "done as exited",
        &format!(
            "(r => r && r.dataset.lifecycle === 'exited')({})",
            row("done")
        ),
    );
    let shown = rows(&b);
    let api = api_processes(&m);
    assert_eq!(api.len(), 4);
    for (name, p) in &api {
        let r = &shown[name];
        assert_eq!(r["lifecycle"], p["lifecycle"], "{name}: {r}");
        assert_eq!(r["word"], p["lifecycle"], "{name}: {r}");
        assert_eq!(r["os"], os_text(p), "{name}: {r}");
        assert_eq!(r["command"], p["command"], "{name}: {r}");
    }
    assert_eq!(shown["web"]["lifecycle"], "ready");
    assert_eq!(shown["web"]["verifier"], "passed");
    // No process has a port: no ports column.
    assert_eq!(shown["web"]["ports"], Value::Null, "{shown}");
    assert_eq!(shown["done"]["os"], "exit 2");
    assert_eq!(shown["job"]["lifecycle"], "ready");
    assert_eq!(b.find("#phase").text(&b), "running");

    // An exit after the page loaded shows up by itself.
    let asked = Instant::now();
    touch(&m, "exit-now");
    let shown = wait_row(
        &b,
        "job",
        "with its exit code",
        "r.querySelector('.os').textContent === 'exit 3'",
    );
    println!(
        "the exit was shown {:?} after it was triggered",
        asked.elapsed()
    );
    assert_eq!(shown["job"]["lifecycle"], "exited");
    assert_eq!(shown["job"]["uptime"], "—");
    assert_not_reloaded(&b);

    // The log of a process: its last lines, then what it prints now.
    b.click(&in_row(&b, "talker", "button.name"));
    b.wait_for(
        "talker's first line",
        "document.getElementById('log').textContent.includes('first line')",
    );
    touch(&m, "speak");
    b.wait_for(
        "the line printed after the page loaded",
        "document.getElementById('log').textContent.includes('said after the page loaded')",
    );
    assert_eq!(
        b.find("#logs-of").text(&b),
        "of talker",
        "the log panel names its process"
    );
    // The filter keeps matching lines only.
    b.type_into(&b.find("#filter"), "AFTER");
    b.wait_for(
        "only the matching line",
        "document.querySelectorAll('#log .line').length === 1",
    );
    assert_eq!(b.find("#log .line").text(&b), "said after the page loaded");
    assert_eq!(b.find("#log-count").text(&b), "1 of 2 lines");

    // A flood: the page keeps the last 2000 lines, up to the newest.
    b.exec(
        "const f = document.getElementById('filter'); f.value = ''; \
         f.dispatchEvent(new Event('input'))",
        json!([]),
    );
    touch(&m, "flood");
    b.wait_for(
        "the last line of the flood",
        "(l => l && l.textContent === '5000')(document.querySelector('#log .line:last-child'))",
    );
    let kept = b.exec(
        "return document.querySelectorAll('#log .line').length",
        json!([]),
    );
    assert!(kept.as_u64().unwrap() <= 2000, "{kept} lines kept");
    assert_eq!(b.find("#log-count").text(&b), format!("{kept} lines"));
    assert_not_reloaded(&b);
}

/// The page's own stream parsers and styles, run in the browser: a stream cut anywhere
/// parses the same, and lifecycle words the page does not know get the neutral style.
const SCRIPT_CHECKS: &str = r#"
const done = arguments[arguments.length - 1];
import('/ui/app.js').then((m) => {
  const failures = [];
  const stream = 'event: phase\ndata: {"phase":"running"}\n\n:\n\nevent: process\r\ndata: {"a":1}\r\n\r\n'
    + 'data: one\ndata: two\n\nevent: x\rdata: y\r\r';
  const want = JSON.stringify([['phase', '{"phase":"running"}'], ['process', '{"a":1}'], ['message', 'one\ntwo'], ['x', 'y']]);
  for (let cut = 0; cut <= stream.length; cut++) {
    for (let cut2 = cut; cut2 <= stream.length; cut2 += 7) {
      const got = [];
      const p = new m.SseParser((name, data) => got.push([name, data]));
      p.push(stream.slice(0, cut)); p.push(stream.slice(cut, cut2)); p.push(stream.slice(cut2));
      if (JSON.stringify(got) !== want) failures.push(`sse cut at ${cut}/${cut2}: ${JSON.stringify(got)}`);
    }
  }
  const text = 'first\r\nsecond\n\nlast';
  for (let cut = 0; cut <= text.length; cut++) {
    const got = [];
    const s = new m.LineSplitter((lines) => got.push(...lines));
    s.push(text.slice(0, cut)); s.push(text.slice(cut)); s.flush();
    if (JSON.stringify(got) !== JSON.stringify(['first', 'second', '', 'last'])) failures.push(`lines cut at ${cut}: ${JSON.stringify(got)}`);
  }
  const tones = {};
  for (const word of ['ready', 'verifying', 'failed', 'unhealthy', 'waiting', 'restarting', 'hibernating', ''])
    tones[word] = m.tone({lifecycle: word, exit_code: null});
  tones['exited 0'] = m.tone({lifecycle: 'exited', exit_code: 0});
  tones['exited 1'] = m.tone({lifecycle: 'exited', exit_code: 1});
  done({failures: failures.slice(0, 5), count: failures.length, tones});
}, (e) => done({failures: [String(e)]}));
"#;

#[test]
fn the_page_script_parses_streams_cut_anywhere_and_styles_unknown_states_neutrally() {
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "keep-alive": true,
        "processes": {"svc": sh("exec sleep 1000")}
    }));
    let b = Browser::start(WIDTH, HEIGHT);
    open(&b, &m, 1);
    let got = b.exec_async(SCRIPT_CHECKS);
    assert_eq!(got["failures"], json!([]), "{got}");
    assert_eq!(
        got["tones"],
        json!({
            "ready": "ok", "verifying": "progress", "failed": "bad", "unhealthy": "warn",
            "waiting": "idle", "restarting": "progress", "hibernating": "neutral", "": "neutral",
            "exited 0": "idle", "exited 1": "bad",
        })
    );
    // A row shows the API's word, drawn in that word's tone.
    let shown = b.exec(
        "const r = document.querySelector('#rows tr'); \
         return [r.querySelector('.lc').className, r.querySelector('.lc-word').textContent]",
        json!([]),
    );
    assert_eq!(shown, json!(["lc tone-ok", "ready"]));
}

#[test]
fn it_shows_waits_restarts_to_come_and_failing_liveness_checks() {
    // A port nothing listens on: the liveness check of "sick" always fails.
    let closed = free_port();
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "startup": "parallel",
        "processes": {
            "db": {"executable": "sh",
                   "arguments": ["-c", format!("{}; echo db is up; exec sleep 1000", until("db-go"))],
                   "verifier": {"type": "output", "arguments": {"pattern": "db is up"}}},
            "api": {"executable": "sh", "arguments": ["-c", "exec sleep 1000"],
                    "depends_on": {"db": "verified"}},
            "crashy": {"executable": "sh", "arguments": ["-c", "exit 3"],
                       "restart": {"policy": "on-failure", "backoff": 40, "max_backoff": 60}},
            "sick": {"executable": "sh", "arguments": ["-c", "exec sleep 1000"],
                     "liveness": {"type": "tcp", "arguments": {"port": closed, "timeout": 1},
                                  "period": 0.2, "failures": 1}},
            "probe": {"executable": "sh", "arguments": ["-c", "exec sleep 1000"],
                      "verifier": {"type": "tcp", "arguments": {
                          "port": closed, "timeout": 600, "interval": 0.1}}},
        }
    }));
    let b = Browser::start(WIDTH, HEIGHT);
    open(&b, &m, 5);
    mark(&b);

    // What a process held back by the start-up waits for.
    let shown = wait_row(
        &b,
        "api",
        "waiting",
        "r.querySelector('.lc-word').textContent === 'waiting for db: verified'",
    );
    assert_eq!(shown["api"]["lifecycle"], "pending", "{shown}");
    assert_eq!(
        b.exec(
            &format!("return {}.querySelector('.lc').className", row("api")),
            json!([])
        ),
        "lc tone-idle"
    );

    // A process its restart policy starts again: when, and why.
    let shown = wait_row(
        &b,
        "crashy",
        "backing off",
        "r.dataset.lifecycle === 'backing-off' && /^restarting in [0-9]+ s$/.test(r.querySelector('.lc-word').textContent)",
    );
    let api = api_processes(&m);
    assert_eq!(api["crashy"]["lifecycle"], "backing-off");
    assert!(
        api["crashy"]["next_attempt"].is_string(),
        "{}",
        api["crashy"]
    );
    assert_eq!(shown["crashy"]["note"], api["crashy"]["error"], "{shown}");
    assert_eq!(shown["crashy"]["os"], "exit 3", "{shown}");
    let secs: u64 = shown["crashy"]["word"].as_str().unwrap()["restarting in ".len()..]
        .trim_end_matches(" s")
        .parse()
        .unwrap();
    assert!((1..=40).contains(&secs), "{shown}");

    // A process whose liveness check fails.
    let shown = wait_row(
        &b,
        "sick",
        "unhealthy",
        "r.dataset.lifecycle === 'unhealthy'",
    );
    let note = shown["sick"]["note"].as_str().unwrap();
    assert!(note.starts_with("liveness (tcp): "), "{shown}");
    assert!(note.contains("failed in a row"), "{shown}");
    assert_eq!(shown["sick"]["word"], "unhealthy");

    // A process being verified: the outcome of its last attempt.
    let shown = wait_row(
        &b,
        "probe",
        "with its last attempt",
        "r.dataset.lifecycle === 'verifying' \
         && (m => m && m.textContent.includes('refused'))(r.querySelector('.verifier-message'))",
    );
    assert_eq!(shown["probe"]["verifier"], "running", "{shown}");

    // Once what it waits for holds, the waiting process starts, without a reload.
    touch(&m, "db-go");
    let shown = wait_row(&b, "api", "ready", "r.dataset.lifecycle === 'ready'");
    assert_eq!(shown["api"]["word"], "ready", "{shown}");
    assert_eq!(shown["db"]["word"], "ready", "{shown}");
    assert_not_reloaded(&b);
}

#[test]
fn a_process_s_ports_are_shown_on_its_row() {
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "keep-alive": true,
        "processes": {
            "web": {"executable": "sh", "arguments": ["-c", "exec sleep 1000"],
                    "ports": {"http": 0, "admin": 0}},
            "job": sh("exec sleep 1000"),
        }
    }));
    m.wait_status("running");
    let api = api_processes(&m);
    let ports = api["web"]["ports"].as_object().unwrap().clone();
    let (http, admin) = (&ports["http"], &ports["admin"]);
    assert!(
        http.as_u64().unwrap() > 0 && admin.as_u64().unwrap() > 0,
        "{ports:?}"
    );
    let b = Browser::start(WIDTH, HEIGHT);
    open(&b, &m, 2);
    let shown = wait_row(
        &b,
        "web",
        "with its ports",
        "r.querySelectorAll('.ports .port').length === 2",
    );
    assert_eq!(
        shown["web"]["ports"],
        format!("http {http}\nadmin {admin}"),
        "{shown}"
    );
    assert_eq!(shown["job"]["ports"], "—", "{shown}");
    assert_eq!(
        b.exec(
            "return [...document.querySelectorAll('#processes thead th')].map(t => t.textContent)",
            json!([])
        )[3],
        "Ports"
    );
    assert_eq!(b.exec(CONTRAST, json!([])), json!([]), "low contrast");
    save_screenshot(&b, "dashboard-ports.png");
}
