//! The dashboard's connection to the manager in a real headless Chromium: it reconnects by
//! itself when the connection drops, and with a token it is refused until it is given.
//!
//! No test asserts a duration: every wait ends on the event it waits for.
mod common;

use common::browser::{Browser, ENTER};
use common::dashboard::*;
use common::{Manager, free_port, sh};
use serde_json::json;

#[test]
fn it_reconnects_by_itself_when_the_connection_drops() {
    let port = free_port();
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
