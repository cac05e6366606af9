//! The dashboard's looks in a real headless Chromium: usable from the keyboard, readable in
//! both colour schemes at any width. The README's screenshot is taken here
//! (`PYMANAGER_SCREENSHOT=1`).
//!
//! No test asserts a duration: every wait ends on the event it waits for.
mod common;

use common::browser::{Browser, ENTER, TAB};
use common::dashboard::*;
use common::{Manager, sh};
use serde_json::{Value, json};

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
