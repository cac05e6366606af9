//! End-to-end tests of the command line: flags, config errors and exit codes.
mod common;

use std::process::{Command, Stdio};

use common::*;
use serde_json::json;

#[test]
fn version_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let o = pymanager_in(dir.path(), &["-V"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).starts_with("pymanager "), "{}", text(&o));
    let o = pymanager_in(dir.path(), &["--help"]);
    assert_eq!(o.status.code(), Some(0));
    for flag in [
        "--file",
        "--daemon",
        "--verbose",
        "--debug",
        "--logfile",
        "--version",
        "check",
    ] {
        assert!(text(&o).contains(flag), "help lacks {flag}");
    }
}

#[test]
fn exit_codes_of_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 1: not found, with the original's sentence.
    let o = pymanager_in(d, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("Cannot find file pymanager.json."),
        "{}",
        text(&o)
    );
    // 2: cannot be read (a directory).
    std::fs::create_dir(d.join("dir.json")).unwrap();
    let o = pymanager_in(d, &["-f", "dir.json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("Error while loading file dir.json"),
        "{}",
        text(&o)
    );
    // 2 as well: not UTF-8 (the original decoded the file before parsing it).
    std::fs::write(d.join("latin1.json"), b"{\"processes\": {\"caf\xe9\": 1}}").unwrap();
    let o = pymanager_in(d, &["-f", "latin1.json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(
            "Error while loading file latin1.json: 'utf-8' codec can't decode byte 0xe9 in \
             position 19: invalid continuation byte."
        ),
        "{}",
        text(&o)
    );
    // 3: not JSON, with line and column.
    std::fs::write(d.join("bad.json"), "{\n  \"processes\": ,\n}").unwrap();
    let o = pymanager_in(d, &["-f", "bad.json"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        text(&o).contains("bad.json is not a valid JSON file"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("line 2, column 16"), "{}", text(&o));
    // 4: no processes.
    std::fs::write(d.join("empty.json"), r#"{"processes": {}}"#).unwrap();
    let o = pymanager_in(d, &["-f", "empty.json"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(text(&o).contains("No processes listed"), "{}", text(&o));
    // 5: a field of the wrong type, named by its path.
    std::fs::write(
        d.join("typed.json"),
        r#"{"processes": {"web": {"executable": "true", "arguments": [], "options": {"shell": 7}}}}"#,
    )
    .unwrap();
    let o = pymanager_in(d, &["-f", "typed.json"]);
    assert_eq!(o.status.code(), Some(5));
    assert!(
        text(&o).contains("processes.web.options.shell"),
        "{}",
        text(&o)
    );
    assert_eq!(text(&o).trim().lines().count(), 1, "one line: {}", text(&o));
}

#[test]
fn suppress_with_redirect_fails_at_load_before_anything_starts() {
    let dir = config_dir(&json!({"processes": {
        "first": sh("echo started > started.txt"),
        "web": {"executable": "true", "arguments": [],
                "options": {"suppress_output": true, "redirect_output": "x.log"}}}}));
    let o = pymanager_in(dir.path(), &["-f", "pymanager.json"]);
    assert_eq!(o.status.code(), Some(5));
    assert!(text(&o).contains("processes.web.options"), "{}", text(&o));
    assert!(text(&o).contains("mutually exclusive"), "{}", text(&o));
    assert!(!dir.path().join("started.txt").exists());
}

#[test]
fn missing_executable_fails_with_exit_5_naming_the_process() {
    let dir = config_dir(&json!({"processes": {
        "ok": {"executable": "sleep", "arguments": ["1000"]},
        "broken": {"executable": "no-such-program-here", "arguments": []}}}));
    // `check` finds it, as the start-up does, before anything starts.
    let o = pymanager_in(dir.path(), &["check"]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(
        text(&o).contains(
            "processes.broken.executable: cannot run no-such-program-here: command not found"
        ),
        "{}",
        text(&o)
    );
    let mut m = Manager::start_in(dir, &[]);
    assert_eq!(m.wait_exit(), 5);
    let out = m.output();
    assert!(out.contains("processes.broken"), "{out}");
    assert!(out.contains("no-such-program-here"), "{out}");
    assert!(!out.contains("$ sleep 1000"), "nothing starts: {out}");
}

#[test]
fn a_verifier_url_with_no_valid_port_fails_check_as_it_fails_the_start_up() {
    let dir = config_dir(&json!({"processes": {"web": {
        "executable": "sleep", "arguments": ["1000"],
        "verifier": {"type": "http", "arguments": {"url": "http://127.0.0.1:${MYPORT}/"}}}}}));
    let want = "the port in 'http://127.0.0.1:${MYPORT}/' is not a number from 1 to 65535";
    let o = pymanager_in(dir.path(), &["check"]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(text(&o).contains("processes.web"), "{}", text(&o));
    assert!(text(&o).contains(want), "{}", text(&o));
    let mut m = Manager::start_in(dir, &[]);
    assert_eq!(m.wait_exit(), 5);
    assert!(m.output().contains(want), "{}", m.output());
    assert!(
        !m.output().contains("$ sleep 1000"),
        "nothing starts: {}",
        m.output()
    );
}

#[test]
fn unknown_keys_are_warned_about_not_fatal() {
    let mut m = Manager::start(json!({"keep_alvie": true, "processes": {
        "a": {"executable": "true", "arguments": [], "optoins": {}}}}));
    assert_eq!(m.wait_exit(), 0);
    let out = m.output();
    assert!(out.contains("unknown key keep_alvie"), "{out}");
    assert!(out.contains("processes.a.optoins"), "{out}");
}

#[test]
fn check_validates_without_starting_anything() {
    let dir = config_dir(&json!({"processes": {"a": sh("echo ran > ran.txt")}}));
    let o = pymanager_in(dir.path(), &["check", "-f", "pymanager.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("ok (1 processes"), "{}", text(&o));
    assert!(!dir.path().join("ran.txt").exists());

    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"processes": {"a": {"executable": "x"}}}"#,
    )
    .unwrap();
    let o = pymanager_in(dir.path(), &["check", "-f", "bad.json"]);
    assert_eq!(o.status.code(), Some(5));
    assert!(
        text(&o).contains("processes.a: missing field \"arguments\""),
        "{}",
        text(&o)
    );
}

#[test]
fn verbose_debug_and_logfile() {
    let mut m = Manager::start_with(json!({"processes": {"a": sh("exit 0")}}), &["-v"]);
    assert_eq!(m.wait_exit(), 0);
    assert!(m.output().contains("[INFO] "), "{}", m.output());
    assert!(!m.output().contains("[DEBUG] "), "{}", m.output());

    let mut m = Manager::start_with(json!({"processes": {"a": sh("exit 0")}}), &["-w"]);
    assert_eq!(m.wait_exit(), 0);
    assert!(m.output().contains("[DEBUG] "), "{}", m.output());

    let dir = config_dir(&json!({"processes": {"a": sh("exit 0")}}));
    let log = dir.path().join("pm.log");
    let log_arg = log.to_str().unwrap().to_string();
    let mut m = Manager::start_in(dir, &["-v", "-l", &log_arg]);
    assert_eq!(m.wait_exit(), 0);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("[INFO] "), "{logged}");
    assert!(!m.output().contains("[INFO] "), "{}", m.output());
}

#[test]
fn the_file_flag_may_come_before_a_subcommand() {
    let dir = config_dir(&json!({"processes": {"a": sh("exit 0")}}));
    std::fs::rename(
        dir.path().join("pymanager.json"),
        dir.path().join("env.json"),
    )
    .unwrap();
    let o = pymanager_in(dir.path(), &["-f", "env.json", "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("env.json: ok"), "{}", text(&o));
    // ctl finds the manager of env.json (none runs: exit 2, naming where it looked).
    let o = pymanager_in(dir.path(), &["-f", "env.json", "ctl", "status"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn a_positional_config_file_is_taken_when_no_file_flag_is_given() {
    // `pymanager pymanager.json` is what people typed for the original.
    let dir = config_dir(&json!({"processes": {"a": sh("echo ran > ran.txt")}}));
    let o = pymanager_in(dir.path(), &["pymanager.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(dir.path().join("ran.txt").exists());
    // Any name, and after other flags.
    std::fs::write(
        dir.path().join("env.json"),
        r#"{"processes": {"b": {"executable": "sh", "arguments": ["-c", "echo b > b.txt"]}}}"#,
    )
    .unwrap();
    let o = pymanager_in(dir.path(), &["-v", "env.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(dir.path().join("b.txt").exists());
    // A word beside -f is ignored, as the original ignored it, with a warning.
    std::fs::remove_file(dir.path().join("ran.txt")).unwrap();
    let o = pymanager_in(dir.path(), &["-f", "pymanager.json", "env.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o)
            .contains("[WARNING] ignoring the argument env.json (pymanager.json is the config)."),
        "{}",
        text(&o)
    );
    assert!(dir.path().join("ran.txt").exists());
}

#[test]
fn unique_prefixes_of_long_options_are_accepted() {
    let dir = config_dir(&json!({"processes": {"a": sh("exit 0")}}));
    std::fs::rename(dir.path().join("pymanager.json"), dir.path().join("x.json")).unwrap();
    let o = pymanager_in(dir.path(), &["--verb", "--fi", "x.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("[INFO] "), "{}", text(&o));
    let o = pymanager_in(dir.path(), &["--fi=x.json", "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Ambiguous: --verbose or --version.
    let o = pymanager_in(dir.path(), &["--ver", "--fi", "x.json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn check_executes_nothing_not_even_an_environment_file() {
    let dir = config_dir(&json!({"processes": {
        "a": {"executable": "true", "arguments": [],
              "options": {"environment_file": "env.sh"}}}}));
    std::fs::write(dir.path().join("env.sh"), "touch sourced.txt\nexport X=1\n").unwrap();
    let o = pymanager_in(dir.path(), &["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!dir.path().join("sourced.txt").exists(), "check sourced it");
    // It must still be readable.
    std::fs::remove_file(dir.path().join("env.sh")).unwrap();
    let o = pymanager_in(dir.path(), &["check"]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(
        text(&o).contains("processes.a.options.environment_file: cannot read"),
        "{}",
        text(&o)
    );
    // Running it does source it.
    std::fs::write(dir.path().join("env.sh"), "touch sourced.txt\n").unwrap();
    let o = pymanager_in(dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(dir.path().join("sourced.txt").exists());
}

#[test]
fn the_guardians_death_signal_kills_at_once_and_is_not_a_graceful_shutdown() {
    // A process that ignores SIGTERM, with a grace far longer than the test's patience: a
    // graceful shutdown would take a minute, the kill is immediate.
    let mut m = Manager::start(json!({"http": {"enabled": true}, "graceful_time": 600,
        "processes": {"stubborn": sh("trap '' TERM; echo $$ > pid; while :; do sleep 1; done")}}));
    m.wait_status("running");
    assert!(wait_until(WAIT, || !read_pids(&m.path("pid")).is_empty()));
    let pid = read_pids(&m.path("pid"))[0];
    let manager = manager_of(m.pid());
    unsafe { libc::kill(manager, libc::SIGUSR2) };
    // A graceful shutdown would wait 600 s for the process: wait_exit gives up long before.
    assert_eq!(m.wait_exit(), 0, "{}", m.output());
    wait_all_gone(&[pid, manager], WAIT).expect("everything killed");
}

#[test]
fn a_daemon_keeps_writing_output_to_the_callers_stdout() {
    let dir = config_dir(&json!({"http": {"enabled": true}, "processes": {
        "talker": sh("echo before; while [ ! -e go ]; do sleep 0.05; done; \
                      echo after-detaching; exec sleep 1000")}}));
    let o = daemon(dir.path(), &["-d"]);
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    let pidfile = dir.path().join(".pymanager/pymanager.json.pid");
    let guardian = daemon_pid(dir.path());
    // The caller has exited; the daemon still writes where its stdout went.
    std::fs::write(dir.path().join("go"), "").unwrap();
    let read = || o.stdout();
    assert!(
        wait_until(WAIT, || read().contains("talker | after-detaching")),
        "{}",
        read()
    );
    let out = read();
    assert!(out.contains("$ sh -c echo before"), "{out}");
    assert!(out.contains("talker | before"), "{out}");
    // The address is said once, by the caller.
    assert_eq!(out.matches("REST API listening on").count(), 1, "{out}");
    unsafe { libc::kill(guardian, libc::SIGTERM) };
    assert!(wait_until(WAIT, || !pidfile.exists()), "pid file left");
    wait_all_gone(&[guardian], WAIT).expect("daemon gone");
}

#[test]
fn a_daemons_caller_sees_the_warnings_of_start_up() {
    // One warning from loading the config, one from checking a verifier's arguments
    // (after detaching, where the daemon's own stderr is /dev/null).
    let dir = config_dir(&json!({"bogus": 1, "processes": {
        "a": {"executable": "true", "arguments": [],
              "verifier": {"type": "pymutils.exited_verifier.ExitedVerifier",
                           "arguments": {"description": "x"}}},
        "b": sh("exec sleep 1000")}}));
    let o = daemon(dir.path(), &["-d"]);
    let err = &o.stderr;
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("unknown key bogus"), "{err}");
    assert!(
        err.contains("processes.a.verifier.arguments.description: unknown argument"),
        "{err}"
    );
    let guardian = daemon_pid(dir.path());
    unsafe { libc::kill(guardian, libc::SIGTERM) };
    wait_all_gone(&[guardian], WAIT).expect("daemon gone");
}

#[test]
fn a_daemon_whose_callers_stdout_closes_goes_on_without_it() {
    let dir = config_dir(&json!({"http": {"enabled": true}, "processes": {
        "flood": sh("while [ ! -e go ]; do sleep 0.05; done; yes flooding"),
        "other": sh("echo $$ > other.pid; exec sleep 1000")}}));
    let mut caller = pymanager(&[])
        .args(["-d"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = caller.stdout.take().unwrap();
    assert_eq!(caller.wait().unwrap().code(), Some(0));
    // The reader goes away; then the output floods.
    drop(stdout);
    std::fs::write(dir.path().join("go"), "").unwrap();
    let guardian = daemon_pid(dir.path());
    // The manager still answers, and restarting a process still works: nothing is stuck
    // behind the closed stdout.
    let ctl = |args: &[&str]| output_of(pymanager(&["ctl"]).args(args).current_dir(dir.path()));
    for _ in 0..3 {
        let o = ctl(&["restart", "other"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let o = ctl(&["list"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("flood"),
        "{}",
        text(&o)
    );
    unsafe { libc::kill(guardian, libc::SIGTERM) };
    let pidfile = dir.path().join(".pymanager/pymanager.json.pid");
    assert!(wait_until(WAIT, || !pidfile.exists()), "pid file left");
    wait_all_gone(&[guardian], WAIT).expect("daemon gone");
}

/// Reads everything from `r` in a thread, into a string shared with the test.
fn collect_in_background(
    mut r: impl std::io::Read + Send + 'static,
) -> std::sync::Arc<std::sync::Mutex<String>> {
    let got = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let into = got.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    got
}

#[test]
fn a_stuck_stdout_drops_verifier_chatter_counts_it_and_keeps_launch_lines() {
    // stdout is a pipe nobody reads (yet): a flooding process fills it and the console
    // queue. Each restart of `chatty` then prints its launch line (which must get
    // through) and its verifier's line (which may be dropped, and then must be counted).
    let dir = config_dir(&json!({
        "http": {"enabled": true, "port": 0},
        "keep-alive": true,
        "messages": ["verifier.verbose"],
        "modules": {"good": {"path": env!("PYMANAGER_TEST_GUEST_GOOD")}},
        "processes": {
            "flood": sh("yes flooding"),
            "chatty": {"executable": "sleep", "arguments": ["1000"],
                       "verifier": {"type": "good.Say", "arguments": {"message": "hello"}}}
        }
    }));
    let mut m = pymanager(&[])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = m.stdout.take().unwrap();
    let stderr = collect_in_background(m.stderr.take().unwrap());
    let addr = dir.path().join(".pymanager/pymanager.json.addr");
    assert!(
        wait_until(WAIT, || addr.exists()),
        "{}",
        stderr.lock().unwrap()
    );
    let url = std::fs::read_to_string(&addr).unwrap().trim().to_string();
    assert!(wait_until(WAIT, || client()
        .get(format!("{url}/status"))
        .send()
        .and_then(|r| r.text())
        .is_ok_and(|t| t.contains("running"))));
    let restarts = 20;
    for _ in 0..restarts {
        let r = client()
            .post(format!("{url}/api/v1/processes/chatty/restart"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let out = collect_in_background(stdout);
    unsafe { libc::kill(m.id() as i32, libc::SIGTERM) };
    let status = m.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", stderr.lock().unwrap());
    assert!(wait_until(WAIT, || out
        .lock()
        .unwrap()
        .contains("Shutting down")));
    let out = out.lock().unwrap().clone();
    let launches = out.lines().filter(|l| *l == "$ sleep 1000").count();
    assert_eq!(launches, restarts + 1, "launch lines lost");
    let said = out.matches("Verifier (chatty): hello").count();
    let dropped: usize = out
        .lines()
        .filter_map(|l| l.strip_prefix("[pymanager: "))
        .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
        .sum();
    assert_eq!(
        said + dropped,
        restarts + 1,
        "printed {said}, dropped {dropped}"
    );
    assert!(
        dropped > 0,
        "the queue never filled up: nothing was dropped"
    );
}

/// Whether this machine lets an unprivileged test make a network namespace of its own
/// (`unshare -rn`): one where an API bound to every interface is reachable from nowhere.
fn network_namespaces() -> bool {
    Command::new("unshare")
        .args(["-rn", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn an_api_bound_beyond_loopback_without_a_token_is_warned_about() {
    if !network_namespaces() {
        // Binding every interface outside a namespace of its own would open the API to
        // the network; the decision itself is unit-tested in app::run.
        eprintln!("skipped: no network namespace (unshare -rn) on this machine");
        return;
    }
    let warning = "[WARNING] the REST API listens on 0.0.0.0:";
    let addr_file = |m: &Manager| m.path(".pymanager/pymanager.json.addr");
    for (token, warned) in [(None, true), (Some("s3cret"), false)] {
        let mut http = json!({"enabled": true, "host": "0.0.0.0"});
        if let Some(t) = token {
            http["token"] = json!(t);
        }
        let dir = config_dir(&json!({"http": http, "processes": {"a": sh("exec sleep 100")}}));
        let mut m = Manager::start_wrapped(dir, &["unshare", "-rn"], &[]);
        // The warning, if any, is written before the address file.
        assert!(
            wait_until(WAIT, || addr_file(&m).exists()),
            "{}",
            m.output()
        );
        m.signal(libc::SIGTERM);
        assert_eq!(m.wait_exit(), 0, "{}", m.output());
        let out = m.output();
        assert_eq!(out.contains(warning), warned, "token {token:?}:\n{out}");
        if warned {
            assert!(out.contains("without a token"), "{out}");
            assert!(out.contains("Set http.token"), "{out}");
        }
    }
    // A daemon's caller, whose terminal the daemon's log may not reach, is told too.
    let dir = config_dir(&json!({"http": {"enabled": true, "host": "0.0.0.0"},
        "processes": {"a": sh("exec sleep 100")}}));
    let o = Command::new("unshare")
        .arg("-rn")
        .arg(bin())
        .arg("-d")
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        // The daemon keeps writing here; a pipe would stay open until it ends.
        .stdout(std::fs::File::create(dir.path().join("caller.stdout")).unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(warning),
        "{}",
        text(&o)
    );
    let guardian = daemon_pid(dir.path());
    unsafe { libc::kill(guardian, libc::SIGTERM) };
    wait_all_gone(&[guardian], WAIT).expect("daemon gone");
}

/// Ctrl-C on a `pymanager -d` that waits for its start-up stops the start-up and everything
/// it started at once, and the command returns only once all of it is gone.
#[test]
fn sigint_to_a_waiting_daemon_caller_stops_everything() {
    let dir = config_dir(&json!({"processes": {
        "a": sh("echo $$ > a.pid; exec sleep 600"),
        "slow": {
            "executable": "sh", "arguments": ["-c", "echo $$ > slow.pid; exec sleep 600"],
            "verifier": {"type": "tcp", "arguments": {"port": 1, "timeout": 600}}
        }
    }}));
    let caller = pymanager(&[])
        .args(["-d", "-f"])
        .arg(dir.path().join("pymanager.json"))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid_files = [dir.path().join("a.pid"), dir.path().join("slow.pid")];
    assert!(wait_until(WAIT, || pid_files
        .iter()
        .all(|f| !read_pids(f).is_empty())));
    let pids: Vec<i32> = pid_files.iter().flat_map(|f| read_pids(f)).collect();
    unsafe { libc::kill(caller.id() as i32, libc::SIGINT) };
    let id = caller.id() as i32;
    let waiter = std::thread::spawn(move || caller.wait_with_output().unwrap());
    if !wait_until(WAIT, || waiter.is_finished()) {
        unsafe { libc::kill(id, libc::SIGKILL) };
        panic!("the caller did not return");
    }
    let out = waiter.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(128 + libc::SIGINT), "{stderr}");
    assert!(stderr.contains("start-up interrupted"), "{stderr}");
    // Gone when the caller returned, not some time later.
    let left: Vec<i32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "still running: {left:?}");
}
