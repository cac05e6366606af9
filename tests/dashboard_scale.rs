//! The dashboard with a thousand processes, in a real headless Chromium: every one is
//! listed as the API reports it, and changes made through the API (a stop, restarts) show
//! up in their rows by themselves, through the event stream, without a reload. Functional
//! only: no test here asserts a duration.
mod common;

use common::browser::Browser;
use common::dashboard::row;
use common::{Manager, client, sleeps};
use serde_json::{Value, json};

const N: usize = 1000;

/// A JavaScript expression: `[lifecycle, os text]` of the row of process `name`, or null
/// until it exists.
fn row_state(name: &str) -> String {
    format!(
        "(r => r ? [r.dataset.lifecycle, r.querySelector('.os').textContent] : null)({})",
        row(name)
    )
}

/// `POST /api/v1/processes/<name>/<verb>`, which must succeed.
fn command(m: &Manager, name: &str, verb: &str) -> Value {
    let r = client()
        .post(format!("{}/api/v1/processes/{name}/{verb}", m.url()))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{verb} {name}");
    r.json().unwrap()
}

#[test]
fn a_thousand_rows_render_and_follow_changes_without_a_reload() {
    let m = Manager::start(sleeps(N));
    m.wait_status("running");
    let b = Browser::start(1280, 800);
    b.goto(&format!("{}/ui/", m.url()));
    b.wait_for(
        "the live connection",
        "document.getElementById('connection').dataset.state === 'live'",
    );
    b.wait_for(
        &format!("{N} rows"),
        &format!("document.querySelectorAll('#rows tr').length === {N}"),
    );
    b.exec("window.__notReloaded = true", json!([]));

    // Every row as the API has it: each name once, each ready with its pid.
    let shown = b.exec(
        "return [...document.querySelectorAll('#rows tr')].map(r => \
         [r.querySelector('button.name').textContent, r.dataset.lifecycle, \
          r.querySelector('.os').textContent])",
        json!([]),
    );
    let api = m.get_json("/api/v1/processes");
    let api = api["processes"].as_array().unwrap();
    assert_eq!(api.len(), N);
    let shown = shown.as_array().unwrap();
    assert_eq!(shown.len(), N);
    let mut names = std::collections::HashSet::new();
    for row in shown {
        let name = row[0].as_str().unwrap();
        assert!(names.insert(name.to_string()), "{name} listed twice");
        let p = api
            .iter()
            .find(|p| p["name"] == name)
            .expect("listed by the API");
        assert_eq!(row[1], "ready", "{row}");
        assert!(
            row[2].as_str().unwrap().contains(&p["pid"].to_string()),
            "{row} shows pid {}",
            p["pid"]
        );
    }

    // Changes made elsewhere reach their rows by themselves: the last row stopped, a
    // handful restarted (each with a new pid), in a table of a thousand.
    let last = format!("s{:04}", N - 1);
    command(&m, &last, "stop");
    b.wait_for(
        &format!("{last} stopped"),
        &format!("(s => s && s[0] === 'stopped')({})", row_state(&last)),
    );
    for i in (0..N).step_by(199) {
        let name = format!("s{i:04}");
        let done = command(&m, &name, "restart");
        let pid = done["process"]["pid"].to_string();
        b.wait_for(
            &format!("{name} with its new pid {pid}"),
            &format!(
                "(s => s && s[0] === 'ready' && s[1].includes({}))({})",
                serde_json::to_string(&pid).unwrap(),
                row_state(&name)
            ),
        );
    }
    assert_eq!(
        b.exec("return window.__notReloaded === true", json!([])),
        true,
        "the page was reloaded"
    );
    assert_eq!(
        b.exec(
            "return document.querySelectorAll('#rows tr').length",
            json!([])
        ),
        N
    );
    assert!(b.page_errors().is_empty(), "{:?}", b.page_errors());
}
