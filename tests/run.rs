//! `pymanager run -- CMD`, end to end: the real binary starts an environment, runs a real
//! command in it, and leaves nothing behind; its exit code is the command's.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::*;
use serde_json::{Value, json};

/// `pymanager run -f <dir>/pymanager.json <extra...> -- <cmd...>`, started in `dir`.
fn spawn_run(dir: &Path, extra: &[&str], cmd: &[&str]) -> Child {
    pymanager(&[])
        .arg("run")
        .arg("-f")
        .arg(dir.join("pymanager.json"))
        .args(extra)
        .arg("--")
        .args(cmd)
        .current_dir(dir)
        .env_remove("GITHUB_ACTIONS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pymanager run")
}

/// Waits for a child's end and its output, bounded by two waits: a run is a start-up and
/// a shutdown, each of which a test may wait `WAIT` for.
fn finish(child: Child) -> Output {
    let pid = child.id() as i32;
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    if !wait_until(WAIT * 2, || waiter.is_finished()) {
        unsafe { libc::kill(pid, libc::SIGKILL) };
        panic!("pymanager run did not end");
    }
    waiter.join().unwrap()
}

fn run_in(dir: &Path, extra: &[&str], cmd: &[&str]) -> Output {
    finish(spawn_run(dir, extra, cmd))
}

/// A service that records its pid in `<name>.pid` and then sleeps.
fn sleeper(name: &str) -> Value {
    sh(&format!("echo $$ > {name}.pid; exec sleep 600"))
}

fn pids_in(dir: &Path, names: &[&str]) -> Vec<i32> {
    names
        .iter()
        .flat_map(|n| read_pids(&dir.join(format!("{n}.pid"))))
        .collect()
}

#[test]
fn the_commands_exit_code_is_runs_and_nothing_is_left() {
    let dir = config_dir(&json!({"processes": {"a": sleeper("a"), "b": sleeper("b")}}));
    // Each command first waits for both services to have written their pids (being
    // started is all the start-up waits for here).
    let started = "while [ ! -s a.pid ] || [ ! -s b.pid ]; do sleep 0.01; done";
    for (last, want) in [
        ("true", 0),
        ("exit 3", 3),
        ("kill -TERM $$", 128 + libc::SIGTERM),
    ] {
        let script = format!("{started}; {last}");
        let cmd = ["sh", "-c", script.as_str()];
        let out = run_in(dir.path(), &[], &cmd);
        assert_eq!(out.status.code(), Some(want), "{cmd:?}: {}", stderr(&out));
        let pids = pids_in(dir.path(), &["a", "b"]);
        assert_eq!(pids.len(), 2);
        assert_eq!(wait_all_gone(&pids, WAIT), Ok(()), "{cmd:?} left processes");
        for n in ["a", "b"] {
            std::fs::remove_file(dir.path().join(format!("{n}.pid"))).unwrap();
        }
    }
}

#[test]
fn the_command_gets_the_environments_address_token_and_ports_and_its_logs_stay_out() {
    let dir = config_dir(&json!({
        "http": {"enabled": true, "token": "auto"},
        "processes": {
            "web": web_on_a_picked_port("web")
        }
    }));
    let script = r#"
        echo "port=$PYMANAGER_PORT_WEB_HTTP"
        curl -sf -H "Authorization: Bearer $PYMANAGER_TOKEN" "$PYMANAGER_URL/api/v1/processes/web"
        echo
        curl -s -o /dev/null -w 'web=%{http_code}\n' "http://127.0.0.1:$PYMANAGER_PORT_WEB_HTTP/"
    "#;
    let out = run_in(dir.path(), &[], &["sh", "-c", script]);
    let (stdout, stderr) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let port: u16 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("port="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    let record: Value = serde_json::from_str(stdout.lines().nth(1).unwrap()).unwrap();
    assert_eq!(record["ports"]["http"], port);
    assert!(stdout.contains("web=200"), "{stdout}");
    // The server's own lines are in its log file, not in the command's output.
    assert!(!stdout.contains("Serving HTTP"), "{stdout}");
    let logs = dir.path().join(".pymanager/logs/pymanager.json");
    assert!(
        stderr.contains(&format!(
            "pymanager: the processes' output goes to {}",
            logs.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("pymanager: ready in "), "{stderr}");
    let web_log = std::fs::read_to_string(logs.join("web.log")).unwrap();
    assert!(web_log.contains("Serving HTTP"), "{web_log}");
    // Gone after run: nothing listens on the port any more.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    // --output console: the original's interleaved console instead.
    let out = run_in(dir.path(), &["--output", "console"], &["true"]);
    assert!(
        common::stdout(&out).contains("web | Serving HTTP"),
        "{}",
        common::stdout(&out)
    );
}

#[test]
fn sigint_during_start_up_stops_everything_and_the_command_never_runs() {
    let dir = config_dir(&json!({"processes": {
        "a": sleeper("a"),
        "never": {
            "executable": "sh", "arguments": ["-c", "echo $$ > never.pid; exec sleep 600"],
            "verifier": {"type": "tcp", "arguments": {"port": 1, "timeout": 600}}
        }
    }}));
    let child = spawn_run(dir.path(), &[], &["touch", "ran"]);
    assert!(wait_until(WAIT, || pids_in(dir.path(), &["a", "never"])
        .len()
        == 2));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = finish(child);
    assert_eq!(
        out.status.code(),
        Some(128 + libc::SIGINT),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("ran").exists());
    assert_eq!(
        wait_all_gone(&pids_in(dir.path(), &["a", "never"]), WAIT),
        Ok(())
    );
}

#[test]
fn sigint_during_the_command_goes_to_it_first_then_everything_stops() {
    let dir = config_dir(&json!({"processes": {"a": sleeper("a")}}));
    let cmd = "trap 'echo got-int > trapped; exit 7' INT; echo $$ > cmd.pid; while :; do sleep 0.05; done";
    let child = spawn_run(dir.path(), &[], &["sh", "-c", cmd]);
    assert!(wait_until(WAIT, || dir.path().join("cmd.pid").exists()));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = finish(child);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("trapped")).unwrap(),
        "got-int\n"
    );
    assert_eq!(
        wait_all_gone(&pids_in(dir.path(), &["a", "cmd"]), WAIT),
        Ok(())
    );
}

/// A service that runs until `die` appears, then exits 1.
fn mortal() -> Value {
    sh("echo $$ > svc.pid; while [ ! -e die ]; do sleep 0.05; done; echo dying; exit 1")
}

#[test]
fn abort_on_exit_stops_the_command_when_a_service_dies() {
    let dir = config_dir(&json!({"processes": {"svc": mortal()}}));
    let cmd = "echo $$ > cmd.pid; exec sleep 600";
    let child = spawn_run(dir.path(), &["--abort-on-exit"], &["sh", "-c", cmd]);
    assert!(wait_until(WAIT, || dir.path().join("cmd.pid").exists()));
    std::fs::write(dir.path().join("die"), "").unwrap();
    let out = finish(child);
    let stderr = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("process svc ended while the command ran: exited with code 1"),
        "{stderr}"
    );
    assert_eq!(
        wait_all_gone(&pids_in(dir.path(), &["svc", "cmd"]), WAIT),
        Ok(())
    );
}

#[test]
fn without_abort_on_exit_a_dead_service_is_reported_when_the_command_ends() {
    let dir = config_dir(&json!({"processes": {"svc": mortal()}}));
    // The command makes the service die, waits for it to be gone, and succeeds.
    let cmd = "touch die; while kill -0 $(cat svc.pid) 2>/dev/null; do sleep 0.05; done; exit 0";
    let out = run_in(dir.path(), &[], &["sh", "-c", cmd]);
    let stderr = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "pymanager: while the command ran, a process ended: svc (exited with code 1)"
        ),
        "{stderr}"
    );
}

#[test]
fn four_copies_of_one_config_run_at_once_in_one_directory() {
    let dir = config_dir(&json!({
        "http": {"enabled": true, "port": 0},
        "processes": {
            "web": web_on_a_picked_port("web")
        }
    }));
    // Each command checks that its manager's web is the one on its port, then waits until
    // all four are up at once (so they really overlap) before it ends.
    let script = r#"
        got=$(curl -sf "$PYMANAGER_URL/api/v1/processes/web") || exit 10
        case "$got" in *"\"http\":$PYMANAGER_PORT_WEB_HTTP"*) ;; *) exit 11;; esac
        curl -sf -o /dev/null "http://127.0.0.1:$PYMANAGER_PORT_WEB_HTTP/" || exit 12
        echo "$PYMANAGER_PORT_WEB_HTTP" > "up.$$"
        while [ $(ls up.* | wc -l) -lt 4 ]; do sleep 0.05; done
        echo "$PYMANAGER_PORT_WEB_HTTP"
    "#;
    let children: Vec<Child> = (0..4)
        .map(|_| spawn_run(dir.path(), &[], &["sh", "-c", script]))
        .collect();
    let outs: Vec<Output> = children.into_iter().map(finish).collect();
    let mut ports = Vec::new();
    for out in &outs {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}\n{}",
            stdout(out),
            stderr(out)
        );
        ports.push(stdout(out).trim().to_string());
    }
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 4, "{ports:?}");
    // Each copy cleaned up its own state files and nothing else is left.
    let left: Vec<PathBuf> = std::fs::read_dir(dir.path().join(".pymanager"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "addr"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn ctl_finds_a_lone_copy_and_asks_to_choose_among_several() {
    let cfg = json!({
        "http": {"enabled": true, "port": 0},
        "processes": {"a": {"executable": "sleep", "arguments": ["600"]}}
    });
    let dir = config_dir(&cfg);
    let file = dir.path().join("pymanager.json");
    let ctl = |args: &[&str]| {
        pymanager(&[])
            .arg("ctl")
            .arg("-f")
            .arg(&file)
            .args(args)
            .env_remove("PYMANAGER_URL")
            .output()
            .unwrap()
    };
    let first = Manager::start_in(dir, &[]);
    first.wait_status("running");
    let out = ctl(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    // A second copy in the same directory writes its own address file.
    let second = pymanager(&[])
        .arg("-f")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let own = first
        .path(".pymanager")
        .join(format!("pymanager.json.{}.addr", second.id()));
    assert!(wait_until(WAIT, || own.exists()));
    let out = ctl(&["status"]);
    let stderr = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("2 copies of"), "{stderr}");
    assert!(stderr.contains("--url"), "{stderr}");
    // PYMANAGER_URL chooses.
    let url = std::fs::read_to_string(&own).unwrap();
    let out = pymanager(&[])
        .arg("ctl")
        .arg("-f")
        .arg(&file)
        .arg("stop")
        .env("PYMANAGER_URL", url.trim())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let mut second = second;
    assert!(wait_until(WAIT, || second.try_wait().unwrap().is_some()));
    assert!(!own.exists());
    // The first copy is alone again, and found.
    let out = ctl(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
}

/// The failure block of each kind of failure names the process, the reason and its last
/// lines, in `run`, `-d` and the foreground alike.
#[test]
fn a_failed_start_up_explains_itself() {
    let cases = [
        (
            "a verifier that times out",
            json!({"processes": {"web": {
                "executable": "sh", "arguments": ["-c", "echo listening soon; exec sleep 600"],
                "verifier": {"type": "tcp", "arguments": {"port": 1, "timeout": 0.5}}
            }}}),
            vec![
                "  process:       web\n",
                "last 1 lines of web's output:\n    | listening soon\n",
            ],
        ),
        (
            "a migration that exits 1",
            json!({"startup": "parallel", "processes": {
                "migrate": {"executable": "sh", "arguments": ["-c", "echo 'relation x missing' >&2; exit 1"],
                            "options": {"suppress_output": true}},
                "api": {"executable": "sleep", "arguments": ["600"], "depends_on": {"migrate": "exited_ok"}}
            }}),
            vec![
                "  process:       migrate\n",
                "  reason:        exited with code 1\n",
                "  waiting on it: api (for exited_ok)\n",
                "    | relation x missing\n",
            ],
        ),
        (
            "an executable that does not exist",
            json!({"processes": {
                "a": {"executable": "sleep", "arguments": ["600"]},
                "ghost": {"executable": "./no-such-program", "arguments": []},
                "b": {"executable": "sleep", "arguments": ["600"]}
            }}),
            vec![
                "  process:       ghost\n",
                "command not found",
                "  waiting on it: b (for verified)\n",
                "  ghost printed nothing\n",
            ],
        ),
    ];
    for (what, cfg, wants) in cases {
        let dir = config_dir(&cfg);
        let run_out = run_in(dir.path(), &[], &["touch", "ran"]);
        let daemon_out = pymanager(&[])
            .args(["-d", "-f"])
            .arg(dir.path().join("pymanager.json"))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .output()
            .unwrap();
        let mut fg = Manager::start_in(config_dir(&cfg), &[]);
        assert_eq!(fg.wait_exit(), 5, "{what}");
        for (mode, code, stderr) in [
            ("run", run_out.status.code(), stderr(&run_out)),
            ("-d", daemon_out.status.code(), stderr(&daemon_out)),
            ("foreground", Some(5), fg.output()),
        ] {
            assert_eq!(code, Some(5), "{what}, {mode}: {stderr}");
            assert!(stderr.contains("[ERROR] "), "{what}, {mode}: {stderr}");
            assert!(stderr.contains("  steps:\n"), "{what}, {mode}: {stderr}");
            for want in &wants {
                assert!(
                    stderr.contains(want),
                    "{what}, {mode}: want {want:?} in:\n{stderr}"
                );
            }
        }
        assert!(!dir.path().join("ran").exists(), "{what}");
    }
}

#[test]
fn in_github_actions_the_failure_is_an_annotation_with_a_fold() {
    let dir = config_dir(&json!({"processes": {"web": {
        "executable": "sh", "arguments": ["-c", "echo boom; exit 2"],
        "verifier": {"type": "http", "arguments": {"url": "http://127.0.0.1:1/", "timeout": 30}}
    }}}));
    let out = pymanager(&[])
        .arg("run")
        .arg("-f")
        .arg(dir.path().join("pymanager.json"))
        .args(["--", "true"])
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    let stderr = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("::error title=pymanager%3A web failed::"),
        "{stderr}"
    );
    assert!(
        stderr.contains("::group::last 1 lines of web's output\n    | boom\n::endgroup::"),
        "{stderr}"
    );
}

#[test]
fn timeout_bounds_the_wait_and_names_what_is_not_ready() {
    let dir = config_dir(&json!({"processes": {
        "slow": {"executable": "sh", "arguments": ["-c", "echo $$ > slow.pid; exec sleep 600"],
                 "verifier": {"type": "tcp", "arguments": {"port": 1, "timeout": 600}}},
        "after": {"executable": "sleep", "arguments": ["600"]}
    }}));
    let out = run_in(dir.path(), &["--timeout", "1"], &["touch", "ran"]);
    let stderr = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("start-up not done after 1.00 s: 2 not ready (slow, after)"),
        "{stderr}"
    );
    assert!(stderr.contains("  slow           verifying"), "{stderr}");
    assert!(
        stderr.contains("  after          not started: waiting for slow (verified)"),
        "{stderr}"
    );
    assert!(!dir.path().join("ran").exists());
    assert_eq!(wait_all_gone(&pids_in(dir.path(), &["slow"]), WAIT), Ok(()));
}

#[test]
fn a_daemon_writes_its_environment_and_ends_with_the_process_it_was_told_to() {
    let dir = config_dir(&json!({"processes": {"a": {
        "executable": "sh", "arguments": ["-c", "echo $$ > a.pid; exec sleep 600"],
        "ports": {"main": 0}
    }}}));
    // The process it ends with: a sleeper of the test's own.
    let mut owner = Command::new("sleep").arg("600").spawn().unwrap();
    let env_file = dir.path().join("env");
    let out = pymanager(&[])
        .args(["-d", "-f"])
        .arg(dir.path().join("pymanager.json"))
        .arg("--http-port")
        .arg("0")
        .arg("--write-env")
        .arg(&env_file)
        .arg("--exit-with")
        .arg(owner.id().to_string())
        .current_dir(dir.path())
        // The daemon keeps writing the processes' output to the caller's stdout.
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let env = std::fs::read_to_string(&env_file).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let get = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k} in {env}"))
            .to_string()
    };
    let url = get("PYMANAGER_URL");
    let manager: i32 = get("PYMANAGER_PID").parse().unwrap();
    let port: u16 = get("PYMANAGER_PORT_A_MAIN").parse().unwrap();
    let record: Value = client()
        .get(format!("{url}/api/v1/processes/a"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(record["ports"]["main"], port);
    let a = pids_in(dir.path(), &["a"]);
    assert!(alive(manager));
    // The owner ends: the manager shuts down, and takes everything with it.
    owner.kill().unwrap();
    owner.wait().unwrap();
    assert_eq!(wait_all_gone(&[manager], WAIT), Ok(()));
    assert_eq!(wait_all_gone(&a, WAIT), Ok(()));
}

/// `--keep-alive` keeps the manager up once every process has ended, as the config key does.
#[test]
fn keep_alive_on_the_command_line_keeps_the_manager_up() {
    let dir = config_dir(&json!({"processes": {"once": sh("exit 0")}}));
    let mut m = Manager::start_in(dir, &["--keep-alive", "--http-port", "0"]);
    m.wait_status("running");
    let url = m.url();
    assert!(wait_until(WAIT, || {
        client()
            .get(format!("{url}/api/v1/processes/once"))
            .send()
            .and_then(|r| r.json::<Value>())
            .is_ok_and(|v| v["lifecycle"] == "exited")
    }));
    // Still there to take a request (without it the shutdown would have begun: 403).
    let r = client()
        .post(format!("{url}/api/v1/processes/once/start"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0);
}
