//! The dashboard (`GET /ui/`) in a real headless Chromium against the real binary with real
//! processes: what it lists, how it follows changes without a reload, what its buttons do,
//! the token, another origin's page, keyboard, contrast and widths. The screenshot in the
//! README is taken here.
//!
//! No test asserts a duration: every wait ends on the event it waits for (a DOM change
//! observed in the page, a status from the API), bounded by `common::WAIT`.
mod browser;
mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Instant;

use browser::{Browser, ENTER, TAB};
use common::{Manager, client, sh};
use serde_json::{Value, json};

/// The window the README's screenshot shows.
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 800;

/// A JavaScript string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A JavaScript expression: the table row of process `name` (undefined until it exists).
fn row(name: &str) -> String {
    format!(
        "[...document.querySelectorAll('#rows tr')].find(r => r.querySelector('button.name').textContent === {})",
        js(name)
    )
}

/// A JavaScript expression: what each row shows, by process name.
const ROWS: &str = r#"Object.fromEntries([...document.querySelectorAll('#rows tr')].map(r => [
    r.querySelector('button.name').textContent, {
    lifecycle: r.dataset.lifecycle,
    word: r.querySelector('.lc-word').textContent,
    os: r.querySelector('.os').textContent,
    restarts: r.querySelector('.restarts').textContent,
    uptime: r.querySelector('.uptime').textContent,
    verifier: (r.querySelector('.outcome') || {}).textContent || null,
    busy: r.querySelector('.busy').textContent,
    note: r.querySelector('.note').textContent,
    command: r.querySelector('.command code').textContent,
}]))"#;

fn rows(b: &Browser) -> Value {
    b.exec(&format!("return {ROWS}"), json!([]))
}

/// Waits until process `name`'s row satisfies `cond` (a JavaScript expression over `r`, the
/// row element) and returns what the rows show then.
fn wait_row(b: &Browser, name: &str, what: &str, cond: &str) -> Value {
    b.wait_for(
        &format!("{name} {what}"),
        &format!("(r => r && ({cond}))({})", row(name)),
    );
    rows(b)
}

/// The element of process `name`'s row matching `css`.
fn in_row(b: &Browser, name: &str, css: &str) -> browser::Element {
    b.find(&format!("#rows tr[data-id='{}'] {css}", row_id(b, name)))
}

fn row_id(b: &Browser, name: &str) -> String {
    b.wait_for(
        &format!("a row for {name}"),
        &format!("(r => r && r.dataset.id)({})", row(name)),
    )
    .as_str()
    .unwrap()
    .to_string()
}

/// `GET /api/v1/processes`, by name.
fn api_processes(m: &Manager) -> serde_json::Map<String, Value> {
    let v: Value = client()
        .get(format!("{}/api/v1/processes", m.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p.clone()))
        .collect()
}

/// What the dashboard shows in the pid / exit column for a process of the API.
fn os_text(p: &Value) -> String {
    if let Some(pid) = p["pid"].as_u64() {
        format!("pid {pid}")
    } else if let Some(code) = p["exit_code"].as_i64() {
        format!("exit {code}")
    } else if let Some(sig) = p["signal"].as_i64() {
        let name = match sig {
            9 => " (SIGKILL)",
            15 => " (SIGTERM)",
            _ => "",
        };
        format!("signal {sig}{name}")
    } else {
        "—".into()
    }
}

/// Opens the dashboard and waits until it is live with `n` rows.
fn open(b: &Browser, m: &Manager, n: usize) {
    b.goto(&format!("{}/ui/", m.url()));
    b.wait_for(
        "the live connection",
        "document.getElementById('connection').dataset.state === 'live'",
    );
    b.wait_for(
        &format!("{n} rows"),
        &format!("document.querySelectorAll('#rows tr').length === {n}"),
    );
}

/// Marks the page so that a test can tell it was never reloaded.
fn mark(b: &Browser) {
    b.exec("window.__notReloaded = true", json!([]));
}

fn assert_not_reloaded(b: &Browser) {
    assert_eq!(
        b.exec("return window.__notReloaded === true", json!([])),
        true,
        "the page was reloaded"
    );
}

fn touch(m: &Manager, name: &str) {
    std::fs::write(m.path(name), b"").unwrap();
}

/// Blocks until `file` exists, in a process of the test's config.
fn until(file: &str) -> String {
    format!("while [ ! -e {file} ]; do sleep 0.05; done")
}

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

#[test]
fn restart_stop_start_busy_and_shutdown_from_the_page() {
    let mut m = Manager::start(json!({
        "http": {"enabled": true},
        "keep-alive": true,
        "processes": {
            "web": sh("exec sleep 1000"),
            // Its first run is verified at once; a restart waits for the file `go`, so a
            // restart asked by someone else stays under way as long as the test wants.
            "slow": {"executable": "sh", "arguments": ["-c", &format!(
                "if [ -e started-once ]; then {}; fi; touch started-once; echo ready; exec sleep 1000",
                until("go")
            )], "verifier": {"type": "output", "arguments": {"pattern": "^ready$"}}},
            // Passes its verifier once; run again, it fails it.
            "oneshot": {"executable": "sh", "arguments": ["-c",
                "if [ -e once ]; then exit 1; fi; touch once; exit 0"],
                "verifier": {"type": "exited"}},
        }
    }));
    m.wait_status("running");
    let b = Browser::start(WIDTH, HEIGHT);
    open(&b, &m, 3);
    mark(&b);
    let pid0 = api_processes(&m)["web"]["pid"].as_u64().unwrap();
    wait_row(
        &b,
        "web",
        "running",
        &format!("r.querySelector('.os').textContent === 'pid {pid0}'"),
    );

    // Restart: a new pid, one restart more.
    b.click(&in_row(&b, "web", "button.act-restart"));
    let shown = wait_row(
        &b,
        "web",
        "with a new pid",
        &format!(
            "r.dataset.lifecycle === 'ready' && /^pid \\d+$/.test(r.querySelector('.os').textContent) \
             && r.querySelector('.os').textContent !== 'pid {pid0}'"
        ),
    );
    let api = api_processes(&m);
    let pid1 = api["web"]["pid"].as_u64().unwrap();
    assert_ne!(pid1, pid0);
    assert_eq!(shown["web"]["os"], format!("pid {pid1}"));
    assert_eq!(api["web"]["restarts"], 1);
    wait_row(
        &b,
        "web",
        "with 1 restart",
        "r.querySelector('.restarts').textContent === '1'",
    );

    // Stop, from the keyboard: focus the button and press Enter.
    let stop = in_row(&b, "web", "button.act-stop");
    b.exec("arguments[0].focus()", json!([stop.reference()]));
    b.keys(&[ENTER]);
    wait_row(&b, "web", "stopped", "r.dataset.lifecycle === 'stopped'");
    assert!(api_processes(&m)["web"]["pid"].is_null());
    assert_eq!(
        b.exec(
            "return document.activeElement === arguments[0]",
            json!([stop.reference()])
        ),
        true,
        "the stop button keeps the focus"
    );

    // Start.
    b.click(&in_row(&b, "web", "button.act-start"));
    let shown = wait_row(
        &b,
        "web",
        "running again",
        "r.dataset.lifecycle === 'ready' && /^pid \\d+$/.test(r.querySelector('.os').textContent)",
    );
    let pid2 = api_processes(&m)["web"]["pid"].as_u64().unwrap();
    assert!(pid2 != pid1 && pid2 != pid0);
    assert_eq!(shown["web"]["os"], format!("pid {pid2}"));

    // Someone else's restart is under way: the page's restart is refused (409) and says so.
    let url = format!("{}/api/v1/processes/slow/restart", m.url());
    let other = std::thread::spawn(move || {
        let r = client().post(url).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    });
    wait_row(
        &b,
        "slow",
        "verifying again",
        "r.dataset.lifecycle === 'verifying'",
    );
    b.click(&in_row(&b, "slow", "button.act-restart"));
    let shown = wait_row(
        &b,
        "slow",
        "as busy",
        "r.querySelector('.busy').textContent.includes('busy')",
    );
    assert!(
        shown["slow"]["busy"]
            .as_str()
            .unwrap()
            .starts_with("process 'slow' is busy: "),
        "the API's message: {}",
        shown["slow"]
    );
    touch(&m, "go");
    let (status, body) = other.join().unwrap();
    assert_eq!(status, 200, "{body}");
    wait_row(
        &b,
        "slow",
        "ready and no longer busy",
        "r.dataset.lifecycle === 'ready' && r.querySelector('.busy').hidden",
    );
    assert_eq!(
        api_processes(&m)["slow"]["restarts"],
        1,
        "the page's restart was refused"
    );

    // A command that fails shows the API's message, on the row and in the alert.
    b.click(&in_row(&b, "oneshot", "button.act-restart"));
    let shown = wait_row(
        &b,
        "oneshot",
        "with the failure",
        "!r.querySelector('.note').hidden && !document.getElementById('alert').hidden",
    );
    let note = shown["oneshot"]["note"].as_str().unwrap().to_string();
    assert!(note.contains("oneshot"), "{note}");
    assert_eq!(
        b.find("#alert-text").text(&b),
        format!("Restart oneshot: {note}")
    );
    b.click(&b.find("#alert-close"));
    b.wait_for(
        "the alert dismissed",
        "document.getElementById('alert').hidden",
    );

    // Shutting down asks first; cancelling changes nothing.
    b.click(&b.find("#shutdown"));
    b.wait_for(
        "the confirmation",
        "document.getElementById('confirm').open",
    );
    b.click(&b.find("#confirm button[value=cancel]"));
    b.wait_for(
        "the dialog closed",
        "!document.getElementById('confirm').open",
    );
    m.wait_status("running");
    b.click(&b.find("#shutdown"));
    b.click(&b.find("#confirm-shutdown"));
    b.wait_for(
        "the manager gone",
        "document.getElementById('connection').dataset.state === 'down'",
    );
    assert_eq!(m.wait_exit(), 0, "{}", m.output());
    assert!(
        b.find("#connection").text(&b).starts_with("Disconnected."),
        "{}",
        b.text_of_page()
    );
}

#[test]
fn it_reconnects_by_itself_when_the_connection_drops() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = json!({
        "http": {"enabled": true, "port": port},
        "keep-alive": true,
        "processes": {"svc": sh("exec sleep 1000")}
    });
    let mut first = Manager::start(cfg.clone());
    first.wait_status("running");
    let b = Browser::start(WIDTH, HEIGHT);
    open(&b, &first, 1);
    mark(&b);
    let pid = api_processes(&first)["svc"]["pid"].as_u64().unwrap();
    wait_row(
        &b,
        "svc",
        "running",
        &format!("r.querySelector('.os').textContent === 'pid {pid}'"),
    );

    // Dropped without a word (a manager that said it shuts down is not reconnected to:
    // see tests/security_token.rs).
    unsafe { libc::kill(first.manager_pid(), libc::SIGKILL) };
    first.wait_exit();
    b.wait_for(
        "that it is disconnected",
        "document.getElementById('connection').dataset.state === 'down' \
         && document.getElementById('main').classList.contains('stale')",
    );

    // A manager on the same address again: the page finds it without being reloaded.
    let second = Manager::start(cfg);
    second.wait_status("running");
    let pid2 = api_processes(&second)["svc"]["pid"].as_u64().unwrap();
    b.wait_for(
        "the live connection again",
        "document.getElementById('connection').dataset.state === 'live'",
    );
    wait_row(
        &b,
        "svc",
        "with the new pid",
        &format!("r.querySelector('.os').textContent === 'pid {pid2}'"),
    );
    assert_not_reloaded(&b);
}

#[test]
fn with_a_token_the_page_is_refused_until_it_is_given() {
    let m = Manager::start(json!({
        "http": {"enabled": true, "token": "correct horse"},
        "keep-alive": true,
        "processes": {"svc": sh("echo hello from svc; exec sleep 1000")}
    }));
    m.wait_status("running");
    let b = Browser::start(WIDTH, HEIGHT);
    b.goto(&format!("{}/ui/", m.url()));
    b.wait_for(
        "the token form",
        "!document.getElementById('token-form').hidden",
    );
    assert_eq!(
        b.exec(
            "return document.querySelectorAll('#rows tr').length",
            json!([])
        ),
        0,
        "nothing is shown without the token"
    );
    assert_eq!(
        b.exec("return document.activeElement.id", json!([])),
        "token",
        "the token field has the focus"
    );

    b.type_into(&b.find("#token"), &format!("wrong{ENTER}"));
    b.wait_for(
        "the API's refusal",
        "document.getElementById('token-error').textContent === 'Invalid token.' \
         && !document.getElementById('token-form').hidden",
    );

    b.type_into(&b.find("#token"), &format!("correct horse{ENTER}"));
    b.wait_for(
        "the processes",
        "document.getElementById('connection').dataset.state === 'live' \
         && document.querySelectorAll('#rows tr').length === 1",
    );
    let pid = api_pid(&m, "correct horse");
    wait_row(
        &b,
        "svc",
        "running",
        &format!("r.querySelector('.os').textContent === 'pid {pid}'"),
    );

    // Every call carries it: a command and a log.
    b.click(&in_row(&b, "svc", "button.act-restart"));
    wait_row(
        &b,
        "svc",
        "with a new pid",
        &format!(
            "r.dataset.lifecycle === 'ready' && r.querySelector('.os').textContent !== 'pid {pid}' && /^pid/.test(r.querySelector('.os').textContent)"
        ),
    );
    assert_ne!(api_pid(&m, "correct horse"), pid);
    b.click(&in_row(&b, "svc", "button.name"));
    b.wait_for(
        "svc's output",
        "document.getElementById('log').textContent.includes('hello from svc')",
    );

    // Asked once per tab: a reload does not ask again.
    b.reload();
    b.wait_for(
        "the processes after a reload",
        "document.querySelectorAll('#rows tr').length === 1 \
         && document.getElementById('token-form').hidden",
    );
}

fn api_pid(m: &Manager, token: &str) -> u64 {
    let v: Value = client()
        .get(format!("{}/api/v1/processes/svc", m.url()))
        .bearer_auth(token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["pid"].as_u64().unwrap_or_else(|| panic!("{v}"))
}

/// A page of another origin (the same host, another port) that tries to drive the API with
/// `fetch`: a restart and a stop as "simple" requests (sent without a preflight), a shutdown
/// through both routes.
const ATTACK: &str = r#"<!doctype html><title>attacking</title><script>
const api = new URLSearchParams(location.search).get('api');
const tries = [
  ['POST', '/restart/1', 'no-cors'], ['POST', '/restart/1', 'cors'],
  ['POST', '/api/v1/processes/1/stop', 'no-cors'],
  ['POST', '/api/v1/processes/1/restart', 'cors'],
  ['DELETE', '/', 'cors'], ['POST', '/api/v1/shutdown', 'no-cors'],
];
(async () => {
  const results = [];
  for (const [method, path, mode] of tries) {
    try {
      const r = await fetch(api + path, {method, mode, body: 'x', headers: {'Content-Type': 'text/plain'}});
      results.push(`${method} ${path} ${mode}: ${r.type} ${r.status}`);
    } catch (e) {
      results.push(`${method} ${path} ${mode}: ${e}`);
    }
  }
  window.results = results;
  document.title = 'done';
})();
</script>"#;

/// Serves [`ATTACK`] on another port of loopback until the test ends.
fn serve_attack_page() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{ATTACK}",
                ATTACK.len()
            );
        }
    });
    port
}

#[test]
fn a_page_of_another_origin_cannot_restart_or_stop_anything() {
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "keep-alive": true,
        "processes": {"svc": sh("exec sleep 1000")}
    }));
    m.wait_status("running");
    let base = m.url();
    let before = api_processes(&m)["svc"].clone();
    let port = serve_attack_page();
    let b = Browser::start(WIDTH, HEIGHT);
    b.goto(&format!("http://127.0.0.1:{port}/?api={base}"));
    b.wait_for("the attack's end", "document.title === 'done'");
    let tried = b.exec("return window.results", json!([]));
    // The browser's own complaints about the attack page's requests (CORS) are expected.
    let complaints = b.page_errors();
    let tried = json!({"fetches": tried, "console": complaints});

    // Every fetch has been answered (or refused by the browser) by now: nothing changed.
    let status = client()
        .get(format!("{base}/status"))
        .send()
        .and_then(|r| r.json::<Value>());
    assert!(
        status.as_ref().is_ok_and(|s| s["status"] == "running"),
        "the manager was shut down ({status:?}): {tried}"
    );
    let after = api_processes(&m)["svc"].clone();
    assert_eq!(
        after["pid"], before["pid"],
        "svc was restarted or stopped: {tried}"
    );
    assert_eq!(after["restarts"], 0, "svc was restarted: {tried}");
    assert_eq!(after["lifecycle"], "ready", "{tried}");
    assert!(common::alive(before["pid"].as_i64().unwrap() as i32));
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

/// Processes in every kind of state, for the screenshot and the layout checks.
fn showcase() -> Value {
    json!({
        "http": {"enabled": true},
        "keep-alive": true,
        "processes": {
            "api": {"executable": "sh", "arguments": ["-c",
                "echo 'listening on 127.0.0.1:8080'; exec sleep 1000"],
                "verifier": {"type": "output", "arguments": {"pattern": "listening on"}}},
            "worker": sh("i=0; while :; do i=$((i+1)); echo \"job $i done in 12 ms\"; sleep 0.5; done"),
            "migrate": sh("echo 'applied 12 migrations'; exit 0"),
            "crashy": sh("echo 'error: cannot open /var/lib/crashy/state' >&2; exit 1"),
            "cache": {"executable": "sh", "arguments": ["-c", "echo warming up; exec sleep 1000"],
                      "verifier": {"type": "output", "arguments": {"pattern": "cache ready", "timeout": 600}}},
        }
    })
}

/// The element's text colours against their backgrounds: every text on the page that is
/// not a disabled control, as `[ratio, needed, description]` where the ratio is too low.
const CONTRAST: &str = r#"
const parse = (c) => { const m = c.match(/[\d.]+/g).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; };
const lum = ({r, g, b}) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
const background = (el) => { for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor); if (c.a > 0.5) return c; } return parse(getComputedStyle(document.documentElement).backgroundColor); };
const bad = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  if (!n.textContent.trim()) continue;
  const el = n.parentElement;
  if (!el.checkVisibility() || el.closest('[aria-disabled="true"], .visually-hidden, .skip, dialog:not([open])')) continue;
  const s = getComputedStyle(el);
  const fg = parse(s.color), bg = background(el);
  const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
  const ratio = (l1 + 0.05) / (l2 + 0.05);
  const size = parseFloat(s.fontSize), bold = Number(s.fontWeight) >= 700;
  const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
  if (ratio < needed) bad.push([Math.round(ratio * 100) / 100, needed, el.tagName + '.' + el.className + ': ' + n.textContent.trim().slice(0, 40)]);
}
return bad;"#;

/// Where the screenshots of a test run go; `PYMANAGER_SCREENSHOT=1` also writes the
/// README's `docs/dashboard.png`.
fn save_screenshot(b: &Browser, name: &str) {
    let png = b.screenshot();
    assert_eq!(&png[1..4], b"PNG", "a PNG");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(dir.join(name), &png).unwrap();
    if name == "dashboard.png" && std::env::var_os("PYMANAGER_SCREENSHOT").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/dashboard.png");
        std::fs::write(&docs, &png).unwrap();
        println!("wrote {}", docs.display());
    }
}

#[test]
fn usable_from_the_keyboard_readable_in_both_schemes_at_any_width() {
    let m = Manager::start(showcase());
    let b = Browser::start(WIDTH, HEIGHT);
    open(&b, &m, 5);
    wait_row(
        &b,
        "cache",
        "verifying",
        "r.dataset.lifecycle === 'verifying'",
    );
    wait_row(
        &b,
        "crashy",
        "exited",
        "r.querySelector('.os').textContent === 'exit 1'",
    );
    wait_row(
        &b,
        "migrate",
        "exited",
        "r.querySelector('.os').textContent === 'exit 0'",
    );
    b.click(&in_row(&b, "worker", "button.name"));
    b.wait_for(
        "worker's output",
        "document.querySelectorAll('#log .line').length >= 6",
    );
    b.find("#phase");
    // The mouse must not hover anything in the picture.
    b.exec("document.activeElement.blur()", json!([]));

    // 1280×800: nothing sideways, the table and the log both in view.
    let fits = b.exec(
        "const log = document.getElementById('log').getBoundingClientRect(); \
         return [document.documentElement.scrollWidth <= innerWidth, log.top < innerHeight - 100, innerWidth, innerHeight]",
        json!([]),
    );
    assert_eq!(fits[0], true, "horizontal scrolling at {WIDTH}px");
    assert_eq!(
        fits[1], true,
        "the log is below the fold at {WIDTH}×{HEIGHT}"
    );
    assert_eq!(
        (fits[2].as_u64(), fits[3].as_u64()),
        (Some(WIDTH.into()), Some(HEIGHT.into()))
    );
    save_screenshot(&b, "dashboard.png");

    // Contrast, light then dark (following the system's scheme).
    let light = b.exec(CONTRAST, json!([]));
    assert_eq!(light, json!([]), "low contrast in the light scheme");
    b.cdp(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
    );
    let dark_bg = b.exec(
        "return getComputedStyle(document.body).backgroundColor",
        json!([]),
    );
    assert_eq!(
        dark_bg, "rgb(13, 17, 23)",
        "the dark scheme follows the system"
    );
    let dark = b.exec(CONTRAST, json!([]));
    assert_eq!(dark, json!([]), "low contrast in the dark scheme");
    save_screenshot(&b, "dashboard-dark.png");
    b.cdp(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": "light"}]}),
    );

    // The keyboard reaches every control, in reading order.
    b.exec(
        "window.__focused = []; document.addEventListener('focusin', (e) => { \
         const t = e.target; window.__focused.push(t.id || t.getAttribute('aria-label') || t.textContent); })",
        json!([]),
    );
    // From the top of the page (the skip link is the first stop).
    b.exec("document.querySelector('.skip').focus()", json!([]));
    b.keys(&[TAB; 26]);
    let focused: Vec<String> =
        serde_json::from_value(b.exec("return window.__focused", json!([]))).unwrap();
    for want in [
        "shutdown",
        "api",
        "Restart api",
        "Stop api",
        "Start api",
        "worker",
        "Restart cache",
        "filter",
        "log",
    ] {
        assert!(
            focused.iter().any(|f| f == want),
            "{want} is not reachable with Tab: {focused:?}"
        );
    }
    let pos = |w: &str| focused.iter().position(|f| f == w).unwrap();
    assert!(
        pos("api") < pos("worker") && pos("worker") < pos("filter"),
        "not in reading order: {focused:?}"
    );
    // Enter on a name opens its log.
    let name = in_row(&b, "api", "button.name");
    b.exec("arguments[0].focus()", json!([name.reference()]));
    b.keys(&[ENTER]);
    b.wait_for(
        "api's log",
        "document.getElementById('log').textContent.includes('listening on 127.0.0.1:8080')",
    );

    // A narrow window: each process is a card, nothing sideways.
    b.resize(420, 900);
    b.wait_for("the narrow layout", "innerWidth === 420");
    let narrow = b.exec(
        "return [document.documentElement.scrollWidth <= innerWidth, \
         getComputedStyle(document.querySelector('#rows tr')).display]",
        json!([]),
    );
    assert_eq!(narrow, json!([true, "block"]), "the narrow layout");
    assert_eq!(
        b.exec(CONTRAST, json!([])),
        json!([]),
        "low contrast when narrow"
    );
    save_screenshot(&b, "dashboard-narrow.png");
}

#[test]
fn it_shows_waits_restarts_to_come_and_failing_liveness_checks() {
    // A port nothing listens on: the liveness check of "sick" always fails.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
        }
    }));
    let b = Browser::start(WIDTH, HEIGHT);
    open(&b, &m, 4);
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

    // Once what it waits for holds, the waiting process starts, without a reload.
    touch(&m, "db-go");
    let shown = wait_row(&b, "api", "ready", "r.dataset.lifecycle === 'ready'");
    assert_eq!(shown["api"]["word"], "ready", "{shown}");
    assert_eq!(shown["db"]["word"], "ready", "{shown}");
    assert_not_reloaded(&b);
}
