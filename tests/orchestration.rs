//! End-to-end tests of orchestration: `depends_on` and `"startup": "parallel"`, restart
//! policies, liveness checks, per-process stop signals and the order of a shutdown — the
//! real binary, real processes, real HTTP. Where a test needs a process to hold still, it
//! waits on a FIFO the test writes to; no test waits for a fixed time.
mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// A FIFO in the manager's directory: a process reading it blocks until the test writes.
fn gate(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
    format!("read x < {}", path.display())
}

/// Lets one reader of the FIFO through (blocks until one has it open).
fn open_gate(dir: &Path, name: &str) {
    std::fs::write(dir.join(name), "go\n").unwrap();
}

fn quiet(script: &str) -> Value {
    json!({"executable": "sh", "arguments": ["-c", script], "options": {"suppress_output": true}})
}

fn with(mut p: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

#[test]
fn a_bad_graph_is_refused_before_anything_starts() {
    let cases = [
        (
            json!({"startup": "parallel", "processes": {
                "api": with(sh("touch ran"), json!({"depends_on": ["db"]})),
                "db": with(sh("touch ran"), json!({"depends_on": {"api": "started"}}))}}),
            "processes.api.depends_on: cycle api -> db -> api",
        ),
        (
            json!({"startup": "parallel", "processes": {
                "api": with(sh("touch ran"), json!({"depends_on": ["dbx"]}))}}),
            "processes.api.depends_on.dbx: no process is named \"dbx\"",
        ),
        (
            json!({"processes": {"api": with(sh("touch ran"), json!({"restart": {"policy": "sometimes"}}))}}),
            "processes.api.restart",
        ),
    ];
    for (cfg, want) in cases {
        let dir = config_dir(&cfg);
        let check = pymanager(&[])
            .args(["check", "-f", "pymanager.json"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(check.status.code(), Some(5));
        let err = String::from_utf8_lossy(&check.stderr);
        assert!(err.contains(want), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        let mut m = Manager::start_in(dir, &[]);
        assert_eq!(m.wait_exit(), 5);
        assert!(m.output().contains(want), "{}", m.output());
        assert!(!m.path("ran").exists(), "something started");
    }
}

#[test]
fn check_prints_the_start_plan() {
    let dir = config_dir(&json!({"startup": "parallel", "processes": {
        "db": sh("true"), "cache": sh("true"),
        "migrate": with(sh("true"), json!({"depends_on": ["db"]})),
        "api": with(sh("true"), json!({"depends_on": {"migrate": "exited_ok", "cache": "started"}}))}}));
    let out = pymanager(&[])
        .args(["check", "-f", "pymanager.json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(concat!(
            "start plan (parallel: each process once what it waits for holds):\n",
            "  1. db, cache\n",
            "  2. migrate (after db: verified)\n",
            "  3. api (after migrate: exited_ok, cache: started)\n"
        )),
        "{text}"
    );
}

/// The README's example is a valid config, and its start plan is the one the README shows.
#[test]
fn the_readme_example_checks_with_the_plan_it_shows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let shown = readme
        .split("```text\n")
        .find(|block| block.starts_with("start plan"))
        .and_then(|block| block.split("```").next())
        .expect("README shows a start plan");
    let example = std::fs::read_to_string(root.join("examples/orchestration.json")).unwrap();
    assert!(
        readme.contains(example.trim()),
        "README and examples/orchestration.json differ"
    );
    let out = pymanager(&[])
        .args(["check", "-f", "examples/orchestration.json"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(shown), "{text}\n---\n{shown}");
}

#[test]
fn parallel_start_waits_on_exactly_what_each_process_needs() {
    let dir = tempfile::tempdir().unwrap();
    let db_gate = gate(dir.path(), "db-gate");
    let cfg = json!({"startup": "parallel", "http": {"enabled": true, "port": 0}, "processes": {
        "db": {"executable": "sh", "arguments": ["-c", format!("{db_gate}; echo ready; exec sleep 1000")],
               "verifier": {"type": "output", "arguments": {"pattern": "^ready$", "timeout": 60}}},
        "migrate": with(sh("echo migrated > migrated"), json!({"depends_on": ["db"]})),
        "api": with(sh("test -e migrated && echo api-saw-the-migration; exec sleep 1000"),
                    json!({"depends_on": {"migrate": "exited_ok", "db": "started"}})),
        "free": sh("echo free-started; exec sleep 1000")}});
    std::fs::write(
        dir.path().join("pymanager.json"),
        serde_json::to_vec(&cfg).unwrap(),
    )
    .unwrap();
    let m = Manager::start_in(dir, &[]);
    // db waits at its gate: free runs already, migrate and api wait, and say for what.
    assert!(m.wait_output("| free-started"));
    assert!(wait_until(WAIT, || m.v1_process("db")["lifecycle"] == "verifying"));
    assert_eq!(
        m.v1_process("migrate")["waiting_for"],
        json!({"db": "verified"})
    );
    assert_eq!(
        m.v1_process("api")["waiting_for"],
        json!({"migrate": "exited_ok"})
    );
    assert_eq!(m.v1_process("api")["lifecycle"], "pending");
    let status = client()
        .get(format!("{}/status", m.url()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(status.contains("launching processes"), "{status}");
    open_gate(m.dir.path(), "db-gate");
    m.wait_status("running");
    assert!(m.wait_output("| api-saw-the-migration"));
    assert_eq!(m.v1_process("api")["waiting_for"], Value::Null);
    let mut m = m;
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0);
}

/// `GET /api/v1/timeline` and the `-v` line: each process's spawn, verification and end,
/// and the chain of dependencies that decided when the last process became ready.
#[test]
fn the_timeline_names_the_chain_that_decided_when_the_start_up_was_ready() {
    let up = |then: &str| {
        json!({"executable": "sh", "arguments": ["-c", format!("echo up; {then}")],
               "verifier": {"type": "output", "arguments": {"pattern": "^up$"}}})
    };
    let m = Manager::start_with(
        json!({"startup": "parallel", "http": {"enabled": true}, "processes": {
            "db": up("exec sleep 1000"),
            "migrate": with(sh("exit 0"), json!({"depends_on": ["db"]})),
            "api": with(up("exec sleep 1000"),
                        json!({"depends_on": {"db": "verified", "migrate": "exited_ok"}})),
            "worker": with(sh("exec sleep 1000"), json!({"depends_on": {"db": "started"}})),
        }}),
        &["-v"],
    );
    m.wait_status("running");
    let t = m.get_json("/api/v1/timeline");
    let chain = critical_chain(&t);
    // api starts only once migrate ended, which starts only once db is verified.
    assert_eq!(chain, ["db", "migrate", "api"], "{t}");
    let ready = t["ready"].as_f64().unwrap();
    let sum: f64 = t["critical_chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["seconds"].as_f64().unwrap())
        .sum();
    assert!((sum - ready).abs() < 0.01, "{sum} vs {ready}: {t}");
    assert!(t["now"].as_f64().unwrap() >= ready, "{t}");
    let process = |name: &str| {
        t["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name}: {t}"))
            .clone()
    };
    let first = |name: &str, step: &str| process(name)["runs"][0][step].as_f64().unwrap();
    assert!(
        first("migrate", "spawned") >= first("db", "verified"),
        "{t}"
    );
    assert!(first("api", "spawned") >= first("migrate", "ended"), "{t}");
    assert!(first("api", "verified") >= first("api", "spawned"), "{t}");
    assert_eq!(process("db")["depends_on"], Value::Null);
    assert_eq!(process("db")["waiting_since"], Value::Null);
    assert_eq!(
        process("api")["depends_on"],
        json!({"db": "verified", "migrate": "exited_ok"})
    );
    assert_eq!(process("api")["waiting_since"], 0.0);
    assert_eq!(process("worker")["runs"][0]["ended"], Value::Null);
    // The line printed with -v is the summary, counted from pymanager's own start (its
    // set-up before the supervisor started may be a link of its own).
    let summary = t["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("ready in ") && summary.contains(" — critical chain: db "),
        "{summary}"
    );
    let chain = summary.split(" — critical chain: ").nth(1).unwrap();
    assert!(m.wait_output("[INFO] ready in "), "{}", m.output());
    let out = m.output();
    let line = out
        .lines()
        .find(|l| l.starts_with("[INFO] ready in "))
        .unwrap();
    assert!(line.ends_with(chain), "{line} vs {summary}");
    let mut m = m;
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0);
}

#[test]
fn a_dependency_that_fails_stops_the_start_up_unless_only_its_end_is_awaited() {
    // migrate exits 3: api, which needs it to exit 0, can never start.
    let mut m = Manager::start(json!({"startup": "parallel", "processes": {
        "migrate": sh("exit 3"),
        "api": with(sh("touch api-ran; exec sleep 1000"), json!({"depends_on": {"migrate": "exited_ok"}})),
        "other": sh("echo $$ > other.pid; exec sleep 1000")}}));
    assert_eq!(m.wait_exit(), 5);
    let out = m.output();
    assert!(
        out.contains("[ERROR] process api cannot start: migrate exited with code 3 (processes.api.depends_on.migrate: exited_ok)"),
        "{out}"
    );
    assert!(!m.path("api-ran").exists());
    if let Some(pid) = read_pids(&m.path("other.pid")).first() {
        wait_all_gone(&[*pid], WAIT).expect("everything started is stopped");
    }

    // tests fails its verification, but cleanup only waits for it to end: start-up goes on.
    let mut m = Manager::start(
        json!({"startup": "parallel", "http": {"enabled": true, "port": 0},
        "processes": {
            "tests": {"executable": "sh", "arguments": ["-c", "exit 1"],
                      "verifier": {"type": "exited", "arguments": {"expect_code": 0}}},
            "cleanup": with(sh("echo cleaned; exec sleep 1000"), json!({"depends_on": {"tests": "exited"}}))}}),
    );
    m.wait_status("running");
    assert!(m.wait_output("| cleaned"));
    assert_eq!(m.v1_process("tests")["lifecycle"], "failed");
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0);
}

/// Reads server-sent events until `done` says so; every event's data. `subscribed` hears
/// once the stream is open (its first event, the phase, arrived).
fn events_until(
    url: &str,
    subscribed: std::sync::mpsc::Sender<()>,
    mut done: impl FnMut(&Value) -> bool,
) -> Vec<Value> {
    pymanager::tls::install_crypto_provider();
    // One request for the whole stream, which spans the test's waits: two of them.
    let c = reqwest::blocking::Client::builder()
        .timeout(WAIT * 2)
        .build()
        .unwrap();
    let r = c.get(format!("{url}/api/v1/events")).send().unwrap();
    let mut out = Vec::new();
    for line in BufReader::new(r).lines() {
        let line = line.expect("stream open");
        if let Some(data) = line.strip_prefix("data: ") {
            let v: Value = serde_json::from_str(data).unwrap();
            let _ = subscribed.send(());
            let stop = done(&v);
            out.push(v);
            if stop {
                break;
            }
        }
    }
    out
}

fn seconds(rfc3339: &Value) -> f64 {
    // 2025-01-31T12:00:00.250Z: the time of day is enough within one test.
    let s = rfc3339.as_str().unwrap();
    let t = &s[11..s.len() - 1];
    let mut parts = t.split(':');
    let h: f64 = parts.next().unwrap().parse().unwrap();
    let m: f64 = parts.next().unwrap().parse().unwrap();
    let sec: f64 = parts.next().unwrap().parse().unwrap();
    h * 3600.0 + m * 60.0 + sec
}

#[test]
fn a_crashing_process_is_restarted_with_a_doubling_backoff_until_max_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let hold = gate(dir.path(), "hold");
    // The first run waits at the gate, so the test is listening before anything crashes.
    let cfg = json!({"http": {"enabled": true, "port": 0}, "keep-alive": true, "processes": {
        "crashy": with(quiet(&format!("if [ ! -e started ]; then touch started; {hold}; fi; exit 1")),
            json!({"restart": {"policy": "on-failure", "backoff": 0.2, "max_backoff": 0.8, "max_restarts": 4}}))}});
    std::fs::write(dir.path().join("pymanager.json"), cfg.to_string()).unwrap();
    let m = Manager::start_in(dir, &[]);
    m.wait_status("running");
    let url = m.url();
    let (subscribed, on) = std::sync::mpsc::channel();
    let listener = std::thread::spawn(move || {
        events_until(&url, subscribed, |v| {
            v["event"] == "process" && v["process"]["lifecycle"] == "failed"
        })
    });
    on.recv_timeout(WAIT).expect("the event stream opens");
    open_gate(m.dir.path(), "hold");
    let events = listener.join().unwrap();
    let processes: Vec<&Value> = events
        .iter()
        .filter(|v| v["event"] == "process")
        .map(|v| &v["process"])
        .collect();
    // Each restart starts after its announced next attempt, which doubles: 0.2, 0.4, 0.8, 0.8.
    let mut starts = Vec::new();
    let mut announced = Vec::new();
    for p in &processes {
        if p["lifecycle"] == "backing-off" {
            announced.push((p["restarts"].as_u64().unwrap(), seconds(&p["next_attempt"])));
            assert_eq!(p["last_exit"], json!({"exit_code": 1, "signal": null}));
        }
        if let Some(r) = p["restarts"].as_u64()
            && !starts.iter().any(|(n, _)| *n == r)
            && !p["started_at"].is_null()
        {
            starts.push((r, seconds(&p["started_at"])));
        }
    }
    let last = processes.last().unwrap();
    assert_eq!(last["lifecycle"], "failed");
    assert_eq!(last["restarts"], 4);
    assert_eq!(
        last["error"],
        "gave up after 4 restarts in a row: exited with code 1"
    );
    // One announced attempt per restart, each after the run that failed started.
    assert_eq!(announced.len(), 4, "{announced:?}");
    assert_eq!(starts.len(), 5, "{starts:?}");
    let backoff = [0.2, 0.4, 0.8, 0.8];
    for k in 0..4 {
        let (failed, failed_start) = starts[k];
        let (n, restarted_at) = starts[k + 1];
        assert_eq!((failed, n), (k as u64, k as u64 + 1));
        let (of, next) = announced[k];
        assert_eq!(of, k as u64);
        // The restart does not come before its announced time (10 ms of rounding), which
        // is at least the backoff after the failed run began; how much later each comes
        // depends on the machine's load, so only generous upper bounds are checked.
        assert!(
            restarted_at >= next - 0.01,
            "restart {n} at {restarted_at}, announced {next}"
        );
        assert!(
            next - failed_start >= backoff[k] - 0.01,
            "restart {n}: {next} - {failed_start}"
        );
        assert!(
            restarted_at - failed_start < backoff[k] + 10.0,
            "restart {n} came late"
        );
        // The waits double: each announced time is at least the next backoff after the last.
        if k > 0 {
            let (_, before) = announced[k - 1];
            assert!(next - before >= backoff[k] - 0.01, "{announced:?}");
        }
    }
    let out = m.output();
    assert!(
        out.contains("[WARNING] process crashy exited with code 1; restarting in 200 ms (restart 1 of at most 4 in a row)"),
        "{out}"
    );
    assert!(
        out.contains("[ERROR] process crashy failed: gave up after 4 restarts in a row"),
        "{out}"
    );
    let mut m = m;
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0);
}

/// A service that listens on `port` until it gets SIGUSR1, then stops answering but runs on.
fn service(port: u16) -> Value {
    let script = format!(
        "import os, signal, socket\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('127.0.0.1', {port}))\n\
         s.listen(16)\n\
         open('pid-' + str(os.getpid()), 'w').close()\n\
         signal.signal(signal.SIGUSR1, lambda *a: s.close())\n\
         while True:\n    signal.pause()\n"
    );
    json!({"executable": "python3", "arguments": ["-c", script],
           "verifier": {"type": "tcp", "arguments": {"port": port, "timeout": 30}}})
}

#[test]
fn a_service_that_stops_answering_is_restarted_by_its_liveness_check() {
    let port = free_port();
    let svc = with(
        service(port),
        json!({"restart": "on-failure",
               "liveness": {"type": "tcp", "arguments": {"port": port, "timeout": 1},
                            "period": 0.2, "failures": 2}}),
    );
    let m = Manager::start(json!({"http": {"enabled": true, "port": 0},
        "messages": ["verifier.fail"], "processes": {"svc": svc}}));
    m.wait_status("running");
    let first = m.pids()[0];
    assert_eq!(m.v1_process("svc")["liveness"]["type"], "tcp");
    unsafe { libc::kill(first, libc::SIGUSR1) };
    // Two failed checks in a row: unhealthy, then restarted, verified again.
    assert!(wait_until(WAIT, || {
        let p = m.v1_process("svc");
        p["restarts"] == 1 && p["lifecycle"] == "ready"
    }));
    wait_all_gone(&[first], WAIT).expect("the unhealthy run is gone");
    let second = m.pids()[0];
    assert_ne!(second, first);
    assert!(
        m.output().contains("Liveness fail (svc): "),
        "{}",
        m.output()
    );
    let mut m = m;
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0);
}

#[test]
fn without_a_restart_policy_a_service_that_stops_answering_is_marked_unhealthy() {
    let port = free_port();
    let svc = with(
        service(port),
        json!({"liveness": {"type": "tcp", "arguments": {"port": port, "timeout": 1},
                            "period": 0.2, "failures": 2}}),
    );
    let m =
        Manager::start(json!({"http": {"enabled": true, "port": 0}, "processes": {"svc": svc}}));
    m.wait_status("running");
    let pid = m.pids()[0];
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    assert!(wait_until(WAIT, || m.v1_process("svc")["lifecycle"] == "unhealthy"));
    let p = m.v1_process("svc");
    assert!(p["liveness"]["failures"].as_u64().unwrap() >= 2, "{p}");
    assert!(p["liveness"]["message"].is_string(), "{p}");
    assert_eq!(p["pid"], pid, "left running");
    assert_eq!(p["restarts"], 0);
    let mut m = m;
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0);
}

#[test]
fn stop_signal_is_what_a_stop_and_a_shutdown_send() {
    let m = Manager::start(json!({"http": {"enabled": true, "port": 0}, "processes": {
        "polite": with(sh("trap 'echo got-INT >> signals; exit 0' INT; trap 'echo got-TERM >> signals; exit 0' TERM; \
                            echo $$ > polite.pid; while :; do sleep 1 & wait; done"),
                       json!({"stop_signal": "SIGINT"}))}}));
    m.wait_status("running");
    let pid = |m: &Manager| std::fs::read_to_string(m.path("polite.pid")).unwrap_or_default();
    assert!(wait_until(WAIT, || !pid(&m).is_empty()));
    let first = pid(&m);
    let r = client()
        .post(format!("{}/api/v1/processes/polite/restart", m.url()))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(wait_until(WAIT, || std::fs::read_to_string(
        m.path("signals")
    )
    .is_ok_and(|s| s.contains("got-INT"))));
    // The new run has set its traps once it wrote its pid: only then can the shutdown's
    // signal be seen by the test (a shell not yet at its `trap` dies without a word).
    assert!(wait_until(WAIT, || {
        let now = pid(&m);
        !now.is_empty() && now != first
    }));
    let mut m = m;
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0);
    let got = std::fs::read_to_string(m.path("signals")).unwrap();
    assert_eq!(
        got, "got-INT\ngot-INT\n",
        "the restart and the shutdown both sent SIGINT"
    );
}

#[test]
fn a_parallel_shutdown_stops_dependents_first_within_the_largest_grace() {
    // web needs api needs db; each records when it is asked to stop, and lingers 0.2 s.
    let polite = |name: &str| {
        sh(&format!(
            "trap 'echo {name} >> order; sleep 0.2; exit 0' TERM; echo {name} >> ready; while :; do sleep 1 & wait; done"
        ))
    };
    let m = Manager::start(
        json!({"startup": "parallel", "http": {"enabled": true, "port": 0},
        "processes": {
            "web": with(polite("web"), json!({"depends_on": ["api"]})),
            "db": polite("db"),
            "api": with(polite("api"), json!({"depends_on": ["db"]}))}}),
    );
    m.wait_status("running");
    // Running means spawned and verified, not that the shell has set its trap yet: wait for
    // each to say it has, or a SIGTERM arriving first would kill it before it writes a line.
    assert!(wait_until(WAIT, || {
        std::fs::read_to_string(m.path("ready")).is_ok_and(|s| s.lines().count() == 3)
    }));
    let mut m = m;
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0);
    assert_eq!(
        std::fs::read_to_string(m.path("order")).unwrap(),
        "web\napi\ndb\n"
    );

    // Two stubborn processes in a chain, 3 s of grace each: both are killed, neither
    // before its grace. That the second gets only what is left of the largest grace (the
    // whole shutdown takes 3 s, not 6) is the manager's arithmetic, pinned without a clock
    // in supervisor/manager/shutdowns.txt; its time is measured by `bench/run.sh --only
    // shutdown` (a loaded machine would break an upper bound here).
    let stubborn = || sh("trap '' TERM; echo $$ >> pids; while :; do sleep 1 & wait; done");
    let m = Manager::start(
        json!({"startup": "parallel", "http": {"enabled": true, "port": 0},
        "processes": {
            "db": with(stubborn(), json!({"graceful_time": 3})),
            "api": with(stubborn(), json!({"depends_on": ["db"], "graceful_time": 3}))}}),
    );
    m.wait_status("running");
    assert!(wait_until(WAIT, || read_pids(&m.path("pids")).len() == 2));
    let pids = read_pids(&m.path("pids"));
    let mut m = m;
    let asked = Instant::now();
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0);
    let took = asked.elapsed();
    assert!(took >= Duration::from_millis(2900), "{took:?}");
    wait_all_gone(&pids, WAIT).expect("nothing left");
}

fn post(m: &Manager, path: &str) -> (u16, Value) {
    let r = client()
        .post(format!("{}{path}", m.url()))
        .send()
        .expect("POST");
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

#[test]
fn a_users_stop_and_start_take_precedence_over_the_restart_policy() {
    let m = Manager::start(
        json!({"http": {"enabled": true, "port": 0}, "keep-alive": true,
        "processes": {"crashy": with(quiet("echo run >> runs; exit 1"),
            json!({"restart": {"policy": "always", "backoff": 30, "max_backoff": 120}}))}}),
    );
    assert!(wait_until(WAIT, || m.v1_process("crashy")["lifecycle"]
        == "backing-off"));
    let p = m.v1_process("crashy");
    let first = seconds(&p["started_at"]);
    assert!(seconds(&p["next_attempt"]) - first >= 29.99, "{p}");

    // A stop ends the wait: nothing is due any more.
    let (status, body) = post(&m, "/api/v1/processes/crashy/stop");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["process"]["lifecycle"], "stopped", "{body}");
    assert_eq!(body["process"]["next_attempt"], Value::Null, "{body}");
    assert_eq!(m.v1_process("crashy")["lifecycle"], "stopped");

    // A start does not wait for the backoff, and its failures in a row count anew: the
    // next wait is the first backoff again, not the doubled one.
    let (status, body) = post(&m, "/api/v1/processes/crashy/start");
    assert_eq!(status, 200, "{body}");
    assert!(wait_until(WAIT, || {
        let p = m.v1_process("crashy");
        p["restarts"] == 1 && p["lifecycle"] == "backing-off"
    }));
    let p = m.v1_process("crashy");
    let second = seconds(&p["started_at"]);
    assert!(
        second - first < 29.0,
        "the start waited for the backoff: {p}"
    );
    let wait = seconds(&p["next_attempt"]) - second;
    assert!((29.99..59.0).contains(&wait), "{p}");
    let runs = std::fs::read_to_string(m.path("runs")).unwrap();
    assert_eq!(runs.lines().count(), 2, "{runs}");
    let mut m = m;
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0);
}
