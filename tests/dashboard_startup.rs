//! The dashboard's start-up timeline in a real headless Chromium: a parallel start-up drawn
//! as a waterfall with its critical chain, in both colour schemes. Its picture in the
//! README is taken here (`PYMANAGER_SCREENSHOT=1`).
//!
//! No test asserts a duration: every wait ends on the event it waits for.
mod common;

use common::browser::Browser;
use common::dashboard::*;
use common::{Manager, critical_chain, sh};
use serde_json::{Value, json};

/// A parallel start-up with a chain of dependencies (db → migrate → api), a process off it
/// (cache) and one that waits only for db's spawn (worker): the waterfall's showcase.
fn start_up_showcase() -> Value {
    let up = |delay: &str| {
        json!({"executable": "sh",
               "arguments": ["-c", format!("sleep {delay}; echo ready; exec sleep 1000")],
               "verifier": {"type": "output", "arguments": {"pattern": "^ready$"}}})
    };
    let mut api = up("0.6");
    api["depends_on"] = json!({"db": "verified", "migrate": "exited_ok", "cache": "verified"});
    let mut migrate = sh("sleep 0.5; echo applied 12 migrations");
    migrate["depends_on"] = json!(["db"]);
    let mut worker = sh("exec sleep 1000");
    worker["depends_on"] = json!({"db": "started"});
    json!({
        "http": {"enabled": true},
        "startup": "parallel",
        "keep-alive": true,
        "processes": {"db": up("0.8"), "cache": up("0.3"), "migrate": migrate, "api": api,
                      "worker": worker}
    })
}

/// A JavaScript expression: each waterfall row's bars, as `{name: {critical, label,
/// bars: [[kind, left px, right px]]}}`.
const BARS: &str = r#"Object.fromEntries([...document.querySelectorAll('#waterfall li')].map(li => [
    li.dataset.name, {
    critical: li.dataset.critical === 'true',
    label: li.querySelector('.wf-label').textContent,
    bars: [...li.querySelectorAll('.bar')].map(b => {
        const r = b.getBoundingClientRect();
        return [b.classList[1], r.left, r.right];
    }),
}]))"#;

/// The waterfall's own arithmetic, on hand-made timelines: an ordered start-up and a spawn
/// that failed.
const WATERFALL_CHECKS: &str = r#"
const done = arguments[arguments.length - 1];
import('/ui/app.js').then((m) => {
  const run = (spawned, verified, failed, ended) => ({run: 1, spawned, verified, failed, ended});
  const t = {now: 5, ready: 4, summary: 'x',
    critical_chain: [{name: 'a', seconds: 1, at: 1}, {name: 'b', seconds: 3, at: 4}],
    processes: [
      {name: 'a', depends_on: null, waiting_since: null, runs: [run(0, 1, null, null)]},
      {name: 'b', depends_on: {a: 'verified'}, waiting_since: 0, runs: [run(1, 4, null, null)]},
      {name: 'c', depends_on: null, waiting_since: null, runs: [run(0.5, null, 2, 2)]},
      {name: 'x', depends_on: null, waiting_since: null, runs: [run(null, null, 0.2, null)]},
    ]};
  const w = m.waterfall(t, 5);
  const r1 = (v) => Math.round(v * 10) / 10;
  done({end: w.end, ticks: w.ticks.map((k) => k.text),
        rows: w.rows.map((r) => [r.name, r.critical, r.label,
                                 r.segments.map((s) => [s.kind, r1(s.left), r1(s.width), s.open])]),
        texts: [m.secondsText(1.4), m.secondsText(12.34), m.secondsText(125)]});
}, (e) => done({error: String(e)}));
"#;

#[test]
fn the_start_up_is_drawn_as_a_waterfall_with_its_critical_chain() {
    let m = Manager::start(start_up_showcase());
    m.wait_status("running");
    let t = m.get_json("/api/v1/timeline");
    let summary = t["summary"].as_str().unwrap().to_string();
    let b = Browser::start(WIDTH, HEIGHT);
    open(&b, &m, 5);
    b.wait_for(
        "the start-up's summary",
        &format!(
            "document.getElementById('timeline-summary').textContent === {}",
            js(&summary)
        ),
    );
    b.wait_for(
        "a waterfall row per process",
        "document.querySelectorAll('#waterfall li').length === 5",
    );
    let bars = b.exec(&format!("return {BARS}"), json!([]));

    // The rows on the critical chain are the API's.
    let chain = critical_chain(&t);
    assert_eq!(chain.last(), Some(&"api"), "{t}");
    for name in ["db", "cache", "migrate", "api", "worker"] {
        assert_eq!(
            bars[name]["critical"],
            chain.contains(&name),
            "{name}: {bars}"
        );
    }
    let bar = |name: &str, kind: &str| -> (f64, f64) {
        let b = bars[name]["bars"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b[0] == kind)
            .unwrap_or_else(|| panic!("no {kind} bar for {name}: {bars}"));
        (b[1].as_f64().unwrap(), b[2].as_f64().unwrap())
    };
    // One px of rounding either way.
    let at_or_after = |a: f64, b: f64| a >= b - 1.0;
    // api waited until it was spawned, after migrate ended, after db was verified.
    let (api_wait, api_verify) = (bar("api", "wait"), bar("api", "verify"));
    assert!((api_wait.1 - api_verify.0).abs() <= 1.0, "{bars}");
    assert!(
        at_or_after(api_verify.0, bar("migrate", "verify").1),
        "{bars}"
    );
    assert!(
        at_or_after(bar("migrate", "verify").0, bar("db", "run").0),
        "{bars}"
    );
    assert!(
        at_or_after(bar("worker", "verify").0, bar("db", "verify").0),
        "{bars}"
    );
    let kinds = |name: &str| -> Vec<Value> {
        bars[name]["bars"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b[0].clone())
            .collect()
    };
    assert_eq!(
        kinds("db"),
        ["verify", "run"],
        "db waits for nothing: {bars}"
    );
    // api's label: how long it took from its spawn to its verification.
    let api = &t["processes"][3]["runs"][0];
    let took = api["verified"].as_f64().unwrap() - api["spawned"].as_f64().unwrap();
    assert_eq!(bars["api"]["label"], format!("{took:.2} s"), "{bars}");

    // The drawing's arithmetic on hand-made timelines.
    let got = b.exec_async(WATERFALL_CHECKS);
    assert_eq!(got["end"], 4.16, "{got}");
    assert_eq!(
        got["ticks"],
        json!(["0 s", "1 s", "2 s", "3 s", "4 s"]),
        "{got}"
    );
    assert_eq!(
        got["rows"],
        json!([
            [
                "a",
                true,
                "1.00 s",
                [["verify", 0, 24, false], ["run", 24, 76, true]]
            ],
            [
                "b",
                true,
                "3.00 s",
                [
                    ["wait", 0, 24, false],
                    ["verify", 24, 72.1, false],
                    ["run", 96.2, 3.8, true]
                ]
            ],
            ["c", false, "failed", [["failed", 12, 36.1, false]]],
            ["x", false, "failed", [["failed", 4.8, 0, false]]],
        ]),
        "{got}"
    );
    assert_eq!(
        got["texts"],
        json!(["1.40 s", "12.3 s", "2 min 05 s"]),
        "{got}"
    );

    assert_eq!(bars["worker"]["label"], "started", "{bars}");
    assert!(
        bars["migrate"]["label"]
            .as_str()
            .unwrap()
            .starts_with("ran "),
        "{bars}"
    );

    // Readable in both schemes, and pictured for the docs (a window tall enough for the
    // whole section).
    b.resize(WIDTH, 1200);
    b.wait_for("the tall window", "innerHeight === 1200");
    b.exec("document.activeElement.blur()", json!([]));
    let section = b.find("section.timeline");
    assert_eq!(b.exec(CONTRAST, json!([])), json!([]), "low contrast");
    save_png(b.element_screenshot(&section), "dashboard-timeline.png");
    b.cdp(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
    );
    assert_eq!(
        b.exec(CONTRAST, json!([])),
        json!([]),
        "low contrast in the dark scheme"
    );
    save_png(
        b.element_screenshot(&section),
        "dashboard-timeline-dark.png",
    );
}
