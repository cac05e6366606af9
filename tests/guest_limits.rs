//! A hostile verifier against the manager that runs it, with the real binary and a real
//! component (the test guest `looper`): a flood of `log` lines and a costly pattern over a
//! long output history cost the manager bounded memory and never its responsiveness.
mod common;

use common::{Manager, WAIT, client, wait_until};
use serde_json::json;

const GUEST: &str = env!("PYMANAGER_TEST_GUEST_LOOPER");

/// Peak resident memory of `pid` in KiB.
fn peak_rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The lifecycle of process `name`, as `GET /api/v1/processes/<name>` answers it.
fn lifecycle(m: &Manager, name: &str) -> String {
    m.v1_process(name)["lifecycle"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Asks for process `name` `n` times in a row and asserts that every answer came while it
/// was still verifying: the API kept answering while the verifier's guest worked.
#[track_caller]
fn answered_while_verifying(m: &Manager, name: &str, n: usize) {
    for i in 0..n {
        assert_eq!(
            lifecycle(m, name),
            "verifying",
            "answer {i} came after {name}'s verification ended: {}",
            tail(&m.output())
        );
    }
}

fn tail(s: &str) -> &str {
    let mut at = s.len().saturating_sub(3000);
    while !s.is_char_boundary(at) {
        at += 1;
    }
    &s[at..]
}

/// The guest's lines shown, and the lines the manager said it dropped.
fn told(out: &str) -> (u64, u64) {
    let shown = out.matches("flood line ").count() as u64;
    let dropped = out
        .lines()
        .filter_map(|l| {
            l.split_once("Verifier fail (chatty): ")?
                .1
                .split_once(" log line(s) of this verifier dropped")
                .and_then(|(n, _)| n.parse::<u64>().ok())
        })
        .sum();
    (shown, dropped)
}

#[test]
fn a_guest_logging_a_million_lines_costs_bounded_memory() {
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "messages": ["verifier.fail"],
        "modules": {"hostile": {"path": GUEST, "limits": {"cpu_ms": 120000}}},
        "processes": {
            "chatty": {"executable": "sh", "arguments": ["-c", "exec sleep 1000"],
                       "verifier": {"type": "hostile.Flood", "arguments": {"lines": 1000000, "timeout": 600}}}
        }
    }));
    let pid = m.manager_pid();
    // The manager answers while the guest floods.
    assert!(
        m.wait_output("flood line 0 "),
        "the guest never logged:\n{}",
        m.output()
    );
    answered_while_verifying(&m, "chatty", 5);
    // A million host calls take a while in a debug build on a busy machine (its
    // verification bound, the `timeout` argument, is raised for that).
    let url = format!("{}/status", m.url());
    let passed = wait_until(10 * WAIT, || {
        client()
            .get(&url)
            .send()
            .and_then(|r| r.text())
            .is_ok_and(|t| t.contains(r#""status": "running""#))
    });
    assert!(passed, "the flood never ended:\n{}", tail(&m.output()));
    // Every line is either shown or counted as dropped, once the call's count is out.
    let (mut shown, mut dropped) = (0, 0);
    let all_told = wait_until(WAIT, || {
        (shown, dropped) = told(&m.output());
        shown + dropped == 1_000_000
    });
    assert!(
        all_told,
        "{shown} lines shown, {dropped} counted as dropped"
    );
    // A burst of 1000, then 20 a second: a million lines never reach the console.
    assert!(
        (1000..20_000).contains(&shown),
        "{shown} of the guest's lines were shown"
    );
    // Queued, a million lines of 230 bytes would be 230 MB at least.
    let peak = peak_rss_kib(pid);
    assert!(peak < 150 << 10, "peak RSS {peak} KiB");
}

#[test]
fn a_costly_pattern_neither_blocks_the_api_nor_escapes_the_cpu_budget() {
    // A thousand lines of 4000 letters, then nothing: every scan of the history with the
    // pattern below costs seconds of CPU (the regex engine falls back from its DFA).
    let noisy = "line=$(head -c 4000 /dev/zero | tr '\\0' a); i=0; \
                 while [ $i -lt 1000 ]; do echo $line; i=$((i+1)); done; exec sleep 1000";
    let pattern = "[a-z]{1,300}[a-z]{1,300}z";
    let mut m = Manager::start(json!({
        "http": {"enabled": true},
        "modules": {"hostile": {"path": GUEST, "limits": {"cpu_ms": 2000}}},
        "processes": {
            "noisy": {"executable": "sh", "arguments": ["-c", noisy],
                      "options": {"suppress_output": true},
                      "verifier": {"type": "hostile.Scan", "arguments": {"pattern": pattern}}}
        }
    }));
    // While the guest's scans run, the API answers as usual: ten requests one after
    // another are all answered while the verification is still going. (Were a scan to hold
    // up the API, each answer would wait for a scan of seconds of CPU, and the guest's 2 s
    // budget would run out, ending the verification, before the tenth.)
    assert!(
        wait_until(WAIT, || lifecycle(&m, "noisy") == "verifying"),
        "never verifying: {}",
        m.output()
    );
    answered_while_verifying(&m, "noisy", 10);
    // The scans were charged to the guest: it is stopped at its CPU budget, not at the end
    // of its (40 s) verification bound.
    // (CPU time: on a loaded machine it takes longer on the clock.)
    let status = m.wait_exit_within(4 * WAIT);
    assert_eq!(status.and_then(|s| s.code()), Some(5), "{}", m.output());
    assert!(
        m.output()
            .contains("verifier hostile.Scan ran longer than 2 s of CPU time"),
        "{}",
        m.output()
    );
}
