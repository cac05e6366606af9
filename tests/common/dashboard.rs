//! The dashboard's page as its browser tests see it: the rows by process name, waits on
//! what a row shows, the live connection, the API's view to compare with, and the
//! screenshots the tests leave (and the README's, when asked).

use std::path::PathBuf;

use serde_json::{Value, json};

use super::browser::{Browser, Element};
use super::{Manager, client};

/// The window the README's screenshot shows.
pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 800;

/// A JavaScript string literal.
pub fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A JavaScript expression: the table row of process `name` (undefined until it exists).
pub fn row(name: &str) -> String {
    format!(
        "[...document.querySelectorAll('#rows tr')].find(r => r.querySelector('button.name').textContent === {})",
        js(name)
    )
}

/// A JavaScript expression: what each row shows, by process name.
pub const ROWS: &str = r#"Object.fromEntries([...document.querySelectorAll('#rows tr')].map(r => [
    r.querySelector('button.name').textContent, {
    lifecycle: r.dataset.lifecycle,
    word: r.querySelector('.lc-word').textContent,
    os: r.querySelector('.os').textContent,
    ports: r.querySelector('.ports').checkVisibility() ? r.querySelector('.ports').innerText : null,
    restarts: r.querySelector('.restarts').textContent,
    uptime: r.querySelector('.uptime').textContent,
    verifier: (r.querySelector('.outcome') || {}).textContent || null,
    busy: r.querySelector('.busy').textContent,
    note: r.querySelector('.note').textContent,
    command: r.querySelector('.command code').textContent,
}]))"#;

pub fn rows(b: &Browser) -> Value {
    b.exec(&format!("return {ROWS}"), json!([]))
}

/// Waits until process `name`'s row satisfies `cond` (a JavaScript expression over `r`, the
/// row element) and returns what the rows show then.
pub fn wait_row(b: &Browser, name: &str, what: &str, cond: &str) -> Value {
    b.wait_for(
        &format!("{name} {what}"),
        &format!("(r => r && ({cond}))({})", row(name)),
    );
    rows(b)
}

/// The element of process `name`'s row matching `css`.
pub fn in_row(b: &Browser, name: &str, css: &str) -> Element {
    b.find(&format!("#rows tr[data-id='{}'] {css}", row_id(b, name)))
}

pub fn row_id(b: &Browser, name: &str) -> String {
    b.wait_for(
        &format!("a row for {name}"),
        &format!("(r => r && r.dataset.id)({})", row(name)),
    )
    .as_str()
    .unwrap()
    .to_string()
}

/// `GET /api/v1/processes`, by name.
pub fn api_processes(m: &Manager) -> serde_json::Map<String, Value> {
    m.get_json("/api/v1/processes")["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p.clone()))
        .collect()
}

/// What the dashboard shows in the pid / exit column for a process of the API.
pub fn os_text(p: &Value) -> String {
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
pub fn open(b: &Browser, m: &Manager, n: usize) {
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
pub fn mark(b: &Browser) {
    b.exec("window.__notReloaded = true", json!([]));
}

pub fn assert_not_reloaded(b: &Browser) {
    assert_eq!(
        b.exec("return window.__notReloaded === true", json!([])),
        true,
        "the page was reloaded"
    );
}

pub fn touch(m: &Manager, name: &str) {
    std::fs::write(m.path(name), b"").unwrap();
}

/// Blocks until `file` exists, in a process of the test's config.
pub fn until(file: &str) -> String {
    format!("while [ ! -e {file} ]; do sleep 0.05; done")
}

/// Where the screenshots of a test run go; `PYMANAGER_SCREENSHOT=1` also writes the
/// docs' `docs/dashboard.png` and `docs/dashboard-timeline.png`.
pub fn save_screenshot(b: &Browser, name: &str) {
    save_png(b.screenshot(), name);
}

pub fn save_png(png: Vec<u8>, name: &str) {
    assert_eq!(&png[1..4], b"PNG", "a PNG");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(dir.join(name), &png).unwrap();
    let published = ["dashboard.png", "dashboard-timeline.png"];
    if published.contains(&name) && std::env::var_os("PYMANAGER_SCREENSHOT").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../docs")
            .join(name);
        std::fs::write(&docs, &png).unwrap();
        println!("wrote {}", docs.display());
    }
}

/// The pid of `svc` as `GET /api/v1/processes/svc` with `token` reports it.
pub fn api_pid(m: &Manager, token: &str) -> u64 {
    let v: Value = client()
        .get(format!("{}/api/v1/processes/svc", m.url()))
        .bearer_auth(token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["pid"].as_u64().unwrap_or_else(|| panic!("{v}"))
}

/// The element's text colours against their backgrounds: every text on the page that is
/// not a disabled control, as `[ratio, needed, description]` where the ratio is too low.
pub const CONTRAST: &str = r#"
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
