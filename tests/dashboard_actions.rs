//! The dashboard's buttons in a real headless Chromium against the real binary: restart,
//! stop, start, the busy state and the shutdown, from the page; and a page of another
//! origin, which can do none of them.
//!
//! No test asserts a duration: every wait ends on the event it waits for.
mod common;

use common::browser::{Browser, ENTER};
use common::dashboard::*;
use common::{Manager, client, http_response, serve, sh};
use serde_json::{Value, json};

#[test]
fn restart_stop_start_busy_and_shutdown_from_the_page() {
    let mut m = Manager::start(json!({
        "http": {"enabled": true},
        "keep-alive": true,
        "processes": {
            "web": sh("exec sleep 1000"),
            // Its first run is verified at once; a later run waits for the file `go`, and a
            // stop waits for `stop-now`: someone else's command on it stays under way as
            // long as the test wants.
            "slow": {"executable": "sh", "arguments": ["-c", &format!(
                "if [ -e started-once ]; then {}; fi; touch started-once; echo ready; \
                 trap '{}; exit 0' TERM; while :; do sleep 0.05; done",
                until("go"), until("stop-now")
            )], "verifier": {"type": "output", "arguments": {"pattern": "^ready$"}},
               "graceful_time": 120},
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

    // Someone else's stop is under way: the page's restart is refused (409) and says so.
    let other = |verb: &str| {
        let url = format!("{}/api/v1/processes/slow/{verb}", m.url());
        std::thread::spawn(move || {
            let r = client().post(url).send().unwrap();
            (r.status().as_u16(), r.text().unwrap())
        })
    };
    let stop = other("stop");
    wait_row(&b, "slow", "stopping", "r.dataset.lifecycle === 'stopping'");
    b.click(&in_row(&b, "slow", "button.act-restart"));
    let shown = wait_row(
        &b,
        "slow",
        "as busy",
        "r.querySelector('.busy').textContent.includes('busy')",
    );
    assert_eq!(
        shown["slow"]["busy"], "process 'slow' is busy: stop in progress",
        "the API's message: {}",
        shown["slow"]
    );
    touch(&m, "stop-now");
    let (status, body) = stop.join().unwrap();
    assert_eq!(status, 200, "{body}");
    wait_row(
        &b,
        "slow",
        "stopped and no longer busy",
        "r.dataset.lifecycle === 'stopped' && r.querySelector('.busy').hidden",
    );

    // Someone else's start is being verified: the page's restart cuts it short and goes
    // ahead; the other requester is told so.
    let start = other("start");
    wait_row(
        &b,
        "slow",
        "verifying",
        "r.dataset.lifecycle === 'verifying'",
    );
    b.click(&in_row(&b, "slow", "button.act-restart"));
    let (status, body) = start.join().unwrap();
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("cancelled by a later restart"), "{body}");
    touch(&m, "go");
    let shown = wait_row(
        &b,
        "slow",
        "ready after the page's restart",
        "r.dataset.lifecycle === 'ready' && r.querySelector('.busy').hidden \
         && r.querySelector('.note').hidden",
    );
    assert_eq!(shown["slow"]["verifier"], "passed", "{shown}");

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
    serve(|_| http_response("200 OK", "text/html", ATTACK)).0
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
