//! The `exec` verifier, end to end: the real binary runs a command with the process's
//! environment and working directory until it exits 0; a command that fails or hangs fails
//! the verification with its reason, and a run that hangs is killed with its whole process
//! group; the same check works as a liveness check and in `pymanager verify`.
mod common;

use common::*;
use serde_json::{Value, json};

/// A command that records its own pid and a grandchild's, then hangs: only a kill of the
/// whole group ends both.
const HANGS: &str = "echo $$ >> check.pids; sleep 1000 & echo $! >> check.pids; wait";

#[test]
fn passes_once_the_command_exits_0_in_the_processs_directory_and_whole_environment() {
    let dir = config_dir(&json!({}));
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(dir.path().join("app.env"), "export MARK=from-env-file\n").unwrap();
    let cfg = json!({
        "http": {"enabled": true, "port": 0},
        "processes": {
            "svc": {
                "executable": "sh",
                "arguments": ["-c", "sleep 0.5; touch ready; exec sleep 1000"],
                "options": {"working_directory": work, "environment_file": dir.path().join("app.env")},
                "environment": {"SECOND": "from-environment"},
                "ports": {"http": 0},
                "verifier": {"type": "exec", "arguments": {
                    "command": "test -f ready && test \"$MARK\" = from-env-file && test \"$SECOND\" = from-environment && test -n \"$PORT\"",
                    "interval": 0.1, "timeout": 20}}
            },
            "next": {
                "executable": "sleep", "arguments": ["1000"],
                "verifier": {"type": "pymanager.exec_verifier.ExecVerifier",
                             "arguments": {"command": ["test", "-d", "/"]}}
            }
        }
    });
    std::fs::write(dir.path().join("pymanager.json"), cfg.to_string()).unwrap();
    let mut m = Manager::start_in(dir, &[]);
    m.wait_status("running");
    assert!(work.join("ready").exists());
    assert_eq!(m.v1_process("svc")["verifier"]["outcome"], "passed");
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0, "{}", m.output());
}

#[test]
fn a_command_that_keeps_failing_fails_start_up_with_its_code_and_last_line() {
    let mut m = Manager::start(json!({
        "messages": ["verifier.fail"],
        "processes": {
            "svc": {
                "executable": "sleep", "arguments": ["1000"],
                "verifier": {"type": "exec", "arguments": {
                    "command": "echo not ready yet; exit 3", "interval": 0.1, "timeout": 1}}
            },
            "never": sh("echo should-not-start")
        }
    }));
    assert_eq!(m.wait_exit(), 5);
    let out = m.output();
    assert!(
        out.contains("did not pass within 1 s (last attempt: exited with code 3: not ready yet)"),
        "{out}"
    );
    assert!(out.contains("attempt 1: exited with code 3"), "{out}");
    assert!(!out.contains("should-not-start"), "{out}");
}

#[test]
fn a_missing_program_or_bad_arguments_are_named() {
    let mut m = Manager::start(json!({"processes": {"svc": {
        "executable": "sleep", "arguments": ["1000"],
        "verifier": {"type": "exec", "arguments": {"command": ["no-such-program-here"]}}}}}));
    assert_eq!(m.wait_exit(), 5);
    assert!(
        m.output()
            .contains("cannot run no-such-program-here: command not found"),
        "{}",
        m.output()
    );
    let mut m = Manager::start(json!({"processes": {"svc": {
        "executable": "sleep", "arguments": ["1000"],
        "verifier": {"type": "exec", "arguments": {"command": 42}}}}}));
    assert_eq!(m.wait_exit(), 5);
    assert!(
        m.output().contains(
            "processes.svc.verifier.arguments.command: expected a command line or a list of strings, got the number 42 (exec)"
        ),
        "{}",
        m.output()
    );
}

#[test]
fn a_run_that_hangs_is_killed_with_its_group_and_the_verification_fails() {
    let mut m = Manager::start(json!({
        "http": {"enabled": true, "port": 0},
        "keep-alive": true,
        "processes": {"svc": {
            "executable": "sleep", "arguments": ["1000"],
            "verifier": {"type": "exec", "arguments": {
                "command": HANGS, "run_timeout": 0.5, "interval": 0.1, "timeout": 30}},
            "restart": {"policy": "never"}
        }}
    }));
    // The first run hangs: killed after 0.5 s, both its processes, while the manager runs.
    let pids = m.path("check.pids");
    assert!(wait_until(WAIT, || read_pids(&pids).len() >= 4), "two runs");
    let first = read_pids(&pids)[..2].to_vec();
    wait_all_gone(&first, WAIT).expect("the first run's group is gone");
    assert!(alive(m.pids()[0]), "the process checked runs on");
    m.signal(libc::SIGTERM);
    m.wait_exit();
    wait_all_gone(&read_pids(&pids), WAIT).expect("nothing of any run is left");
}

#[test]
fn as_a_liveness_check_it_marks_a_process_unhealthy_then_healthy_again() {
    let m = Manager::start(json!({
        "http": {"enabled": true, "port": 0},
        "processes": {"svc": {
            "executable": "sh", "arguments": ["-c", "touch healthy; exec sleep 1000"],
            "verifier": {"type": "exec", "arguments": {"command": "test -f healthy", "interval": 0.1}},
            "liveness": {"type": "exec", "arguments": {"command": ["test", "-f", "healthy"], "timeout": 0},
                         "period": 0.2, "failures": 2}
        }}
    }));
    m.wait_status("running");
    std::fs::remove_file(m.path("healthy")).unwrap();
    assert!(wait_until(WAIT, || m.v1_process("svc")["lifecycle"] == "unhealthy"));
    let p = m.v1_process("svc");
    assert!(
        p["liveness"]["message"]
            .as_str()
            .is_some_and(|s| s.contains("exited with code 1")),
        "{p}"
    );
    std::fs::write(m.path("healthy"), "").unwrap();
    assert!(wait_until(WAIT, || m.v1_process("svc")["lifecycle"] == "ready"));
    let mut m = m;
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0);
}

#[test]
fn a_hanging_liveness_check_is_killed_with_its_group_each_period() {
    let m = Manager::start(json!({
        "http": {"enabled": true, "port": 0},
        "processes": {"svc": {
            "executable": "sleep", "arguments": ["1000"],
            "liveness": {"type": "exec", "arguments": {"command": HANGS, "run_timeout": 0.3, "timeout": 0.3},
                         "period": 0.1, "failures": 1}
        }}
    }));
    assert!(wait_until(WAIT, || m.v1_process("svc")["lifecycle"] == "unhealthy"));
    let pids = m.path("check.pids");
    assert!(
        wait_until(WAIT, || read_pids(&pids).len() >= 4),
        "two checks"
    );
    let two = read_pids(&pids)[..4].to_vec();
    wait_all_gone(&two, WAIT).expect("each check's group is gone while the manager runs");
    let mut m = m;
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0);
    wait_all_gone(&read_pids(&pids), WAIT).expect("nothing of any check is left");
}

#[test]
fn pymanager_verify_runs_it_here_and_kills_a_run_at_its_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: Value, extra: &[&str]| {
        pymanager(&[])
            .arg("verify")
            .arg("exec")
            .arg("--args")
            .arg(args.to_string())
            .args(extra)
            .current_dir(dir.path())
            .env("MARK", "here")
            .output()
            .unwrap()
    };
    let out = run(json!({"command": "test \"$MARK\" = here"}), &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("passed\n"));
    let out = run(
        json!({"command": ["false"], "timeout": 0.3, "interval": 0.1}),
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "failed: false did not pass within 300 ms (last attempt: exited with code 1)"
        ),
        "{out:?}"
    );
    // The run the deadline cuts short is not the reason given: the last whole one is.
    let out = run(
        json!({"command": "sleep 0.2; echo nope; exit 3", "timeout": 1, "interval": 0, "run_timeout": 30}),
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("did not pass within 1 s (last attempt: exited with code 3: nope)"),
        "{out:?}"
    );
    let out = run(json!({"command": HANGS}), &["--timeout", "0.5"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let pids = read_pids(&dir.path().join("check.pids"));
    assert_eq!(pids.len(), 2, "{out:?}");
    wait_all_gone(&pids, WAIT).expect("the run's group is gone with verify");
    let out = run(json!({"comand": "x"}), &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--args: command: missing field"));
}
