//! A real headless Chromium driven through chromedriver (W3C WebDriver over HTTP on
//! loopback), for the dashboard's tests.
//!
//! The client is the dozen WebDriver commands the tests use, over the blocking reqwest the
//! other tests already use. Waits run inside the page: a script resolves on the first DOM
//! mutation after which its condition holds (a `MutationObserver`), bounded by
//! `common::WAIT`, so a test waits exactly as long as the page takes.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::WAIT;

/// Where Debian's packages put the browser and its driver; `PYMANAGER_CHROMIUM` and
/// `PYMANAGER_CHROMEDRIVER` override them.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The W3C key code for Tab.
pub const TAB: &str = "\u{E004}";
/// The W3C key code for Enter.
pub const ENTER: &str = "\u{E007}";

fn tool(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

/// One browser session: chromedriver, the Chromium it started, and a fresh profile.
pub struct Browser {
    driver: Child,
    http: reqwest::blocking::Client,
    session: String,
    base: String,
    _profile: tempfile::TempDir,
}

/// An element, as the session knows it.
#[derive(Clone)]
pub struct Element(Value);

impl Browser {
    /// Starts chromedriver and a headless Chromium in a `width`×`height` window. Panics with
    /// one line saying what to install when either is missing.
    pub fn start(width: u32, height: u32) -> Browser {
        let chromium = tool("PYMANAGER_CHROMIUM", CHROMIUM);
        let chromedriver = tool("PYMANAGER_CHROMEDRIVER", CHROMEDRIVER);
        for (path, what) in [(&chromium, "chromium"), (&chromedriver, "chromedriver")] {
            assert!(
                Path::new(path).exists(),
                "the dashboard's browser tests need {what} at {path}: install it with \
                 `apt-get install chromium chromium-driver` (or run scripts/test-deps.sh)"
            );
        }
        let mut driver = Command::new(&chromedriver)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own group, so that whatever it leaves is killed with it on drop.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {chromedriver}: {e}"));
        let port = read_port(&mut driver)
            .unwrap_or_else(|| panic!("{chromedriver} did not say which port it listens on"));
        let base = format!("http://127.0.0.1:{port}");
        pymanager::tls::install_crypto_provider();
        let http = reqwest::blocking::Client::builder()
            .timeout(WAIT + Duration::from_secs(30))
            .no_proxy()
            .build()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "pageLoadStrategy": "normal",
            "timeouts": {"script": (WAIT + Duration::from_secs(10)).as_millis() as u64},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        }}});
        let mut b = Browser {
            driver,
            http,
            session: String::new(),
            base,
            _profile: profile,
        };
        let v = b.send(reqwest::Method::POST, "/session", caps);
        b.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        b.resize(width, height);
        b
    }

    fn send(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}{}", self.base, path);
        let req = self.http.request(method.clone(), &url);
        let req = if method == reqwest::Method::GET || method == reqwest::Method::DELETE {
            req
        } else {
            req.json(&body)
        };
        let r = req
            .send()
            .unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        let status = r.status();
        let v: Value = r.json().unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "webdriver {method} {path}: {status}: {}",
            v["value"]["message"]
        );
        v["value"].clone()
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{}", self.session, path);
        self.send(reqwest::Method::POST, &path, body)
    }

    fn get(&self, path: &str) -> Value {
        let path = format!("/session/{}{}", self.session, path);
        self.send(reqwest::Method::GET, &path, Value::Null)
    }

    /// Loads `url` and waits until the page has loaded.
    pub fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url }));
    }

    /// Reloads the page.
    pub fn reload(&self) {
        self.post("/refresh", json!({}));
    }

    /// Resizes the window so that the page gets `width`×`height` CSS pixels (the window's
    /// own frame, even headless, takes some of the window size).
    pub fn resize(&self, width: u32, height: u32) {
        let frame = self.exec(
            "return [outerWidth - innerWidth, outerHeight - innerHeight]",
            json!([]),
        );
        let dw = frame[0].as_u64().unwrap_or(0) as u32;
        let dh = frame[1].as_u64().unwrap_or(0) as u32;
        self.post(
            "/window/rect",
            json!({ "width": width + dw, "height": height + dh }),
        );
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub fn exec(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
    }

    /// Runs `script`, which ends by calling its last argument with the result.
    pub fn exec_async(&self, script: &str) -> Value {
        self.post("/execute/async", json!({ "script": script, "args": [] }))
    }

    /// Sends a DevTools command to the page (e.g. to emulate a colour scheme).
    pub fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.post("/goog/cdp/execute", json!({ "cmd": cmd, "params": params }))
    }

    /// Waits until the JavaScript expression `cond` is truthy and returns its value; `what`
    /// names the wait in the panic message, which also shows the page's text.
    pub fn wait_for(&self, what: &str, cond: &str) -> Value {
        let script = format!(
            r#"const done = arguments[arguments.length - 1];
            const check = () => {{ try {{ return ({cond}); }} catch (e) {{ return null; }} }};
            const first = check();
            if (first) {{ done(first); return; }}
            const obs = new MutationObserver(() => {{
                const v = check();
                if (v) {{ obs.disconnect(); clearTimeout(t); done(v); }}
            }});
            obs.observe(document, {{subtree: true, childList: true, characterData: true, attributes: true}});
            const t = setTimeout(() => {{ obs.disconnect(); done(null); }}, {ms});"#,
            ms = WAIT.as_millis()
        );
        let v = self.post("/execute/async", json!({ "script": script, "args": [] }));
        if v.is_null() || v == Value::Bool(false) {
            panic!(
                "the page never showed {what} (waited {WAIT:?} for `{cond}`); it shows:\n{}",
                self.text_of_page()
            );
        }
        v
    }

    /// Everything the page shows, as text.
    pub fn text_of_page(&self) -> String {
        self.exec(
            "return document.body ? document.body.innerText : ''",
            json!([]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// The first element matching `css`, waiting until there is one.
    pub fn find(&self, css: &str) -> Element {
        let quoted = serde_json::to_string(css).unwrap();
        self.wait_for(
            &format!("an element {css}"),
            &format!("document.querySelector({quoted})"),
        );
        Element(self.post("/element", json!({ "using": "css selector", "value": css })))
    }

    /// Clicks an element, as a user would (scrolled into view, at its centre).
    pub fn click(&self, el: &Element) {
        self.post(&format!("/element/{}/click", el.id()), json!({}));
    }

    /// Types `text` into an element (W3C key codes such as [`ENTER`] included).
    pub fn type_into(&self, el: &Element, text: &str) {
        self.post(
            &format!("/element/{}/value", el.id()),
            json!({ "text": text }),
        );
    }

    /// Presses and releases each key in turn, on whatever has the focus.
    pub fn keys(&self, keys: &[&str]) {
        let mut actions = Vec::new();
        for k in keys {
            actions.push(json!({"type": "keyDown", "value": k}));
            actions.push(json!({"type": "keyUp", "value": k}));
        }
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        );
    }

    /// Uncaught script errors and policy violations the console saw since the last call.
    pub fn page_errors(&self) -> Vec<String> {
        let log = self.post("/se/log", json!({ "type": "browser" }));
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|e| {
                e["level"] == "SEVERE" && (e["source"] == "javascript" || e["source"] == "security")
            })
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// A PNG of one element (scrolled into view first).
    pub fn element_screenshot(&self, el: &Element) -> Vec<u8> {
        use base64::Engine;
        let b64 = self.get(&format!("/element/{}/screenshot", el.id()));
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("a base64 screenshot"))
            .expect("a base64 screenshot")
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let b64 = self.get("/screenshot");
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("a base64 screenshot"))
            .expect("a base64 screenshot")
    }
}

impl Element {
    /// The element as a script argument (`arguments[i]` in [`Browser::exec`]).
    pub fn reference(&self) -> Value {
        self.0.clone()
    }

    /// Its rendered text.
    pub fn text(&self, b: &Browser) -> String {
        b.get(&format!("/element/{}/text", self.id()))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn id(&self) -> &str {
        self.0
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("a web element reference")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Every test fails on a script error or a policy violation, whatever it asserted.
        let errors = if self.session.is_empty() || std::thread::panicking() {
            Vec::new()
        } else {
            self.page_errors()
        };
        if !self.session.is_empty() {
            // Quits Chromium; a failure here must not hide the test's own panic.
            let _ = self
                .http
                .delete(format!("{}/session/{}", self.base, self.session))
                .send();
        }
        // chromedriver and anything left in its group.
        unsafe { libc::kill(-(self.driver.id() as i32), libc::SIGKILL) };
        let _ = self.driver.wait();
        assert!(errors.is_empty(), "errors in the page: {errors:#?}");
    }
}

/// Reads chromedriver's start-up lines until the one with its port.
fn read_port(driver: &mut Child) -> Option<u16> {
    let out = driver.stdout.take()?;
    let mut lines = BufReader::new(out).lines();
    let port = loop {
        let line = lines.next()?.ok()?;
        if let Some(rest) = line.split("started successfully on port ").nth(1) {
            break rest.trim_end_matches('.').trim().parse().ok()?;
        }
    };
    // Keep draining its output so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Some(port)
}
