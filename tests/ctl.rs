//! End-to-end tests of `pymanager ctl` against a running manager (the real binary twice).
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use common::{
    Manager, WAIT, alive, assert_code, free_port, output_of, pymanager, sh, stderr, stdout,
    wait_all_gone, wait_until,
};
use serde_json::{Value, json};

/// `pymanager ctl -f <manager's config> <args>`.
fn ctl(m: &Manager, args: &[&str]) -> Output {
    ctl_in(&m.path("pymanager.json"), args, &[])
}

/// `pymanager ctl -f <cfg> <args>` with `env` added.
fn ctl_in(cfg: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    output_of(
        pymanager(&["ctl", "-f"])
            .arg(cfg)
            .args(args)
            .envs(env.iter().copied()),
    )
}

#[test]
fn list_status_restart_stop_start_and_logs() {
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "keep-alive": true,
        "processes": {
            "web server": sh("echo one; echo two; echo three; exec sleep 100"),
            "job": sh("exit 4"),
        }
    }));
    m.wait_status("running");
    assert!(wait_until(WAIT, || m.list()["processes"][1]["status"] == "terminated"));

    let o = ctl(&m, &["list"]);
    assert_code(&o, 0);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("ID  NAME        STATE"), "{out}");
    assert!(lines[1].starts_with("1   web server  running"), "{out}");
    assert!(lines[2].starts_with("2   job         exited "), "{out}");
    // Aligned: every column starts at the same place on every line.
    let col = lines[0].find("COMMAND").unwrap();
    assert!(lines[1][col..].starts_with("sh -c echo one"), "{out}");

    let o = ctl(&m, &["list", "--json"]);
    assert_code(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["processes"][1]["exit_code"], 4);

    let o = ctl(&m, &["status"]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "running (1 of 2 processes running)\n");
    let o = ctl(&m, &["--json", "status"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["status"], "running");

    let old = m.pids()[0];
    let o = ctl(&m, &["restart", "web server"]);
    assert_code(&o, 0);
    assert!(
        stdout(&o).starts_with("web server (1): running, pid "),
        "{}",
        stdout(&o)
    );
    wait_all_gone(&[old], WAIT).expect("old run gone");

    let o = ctl(&m, &["logs", "1", "-n", "2"]);
    assert_code(&o, 0);
    assert!(wait_until(WAIT, || stdout(&ctl(
        &m,
        &["logs", "1", "-n", "2"]
    )) == "two\nthree\n"));

    let pid = m.pids()[0];
    let o = ctl(&m, &["stop", "web server"]);
    assert_code(&o, 0);
    assert!(stdout(&o).starts_with("web server (1): "), "{}", stdout(&o));
    wait_all_gone(&[pid], WAIT).expect("stopped");
    let o = ctl(&m, &["start", "1"]);
    assert_code(&o, 0);
    let pid = m.pids()[0];
    assert!(alive(pid));

    let o = ctl(&m, &["restart", "ghost"]);
    assert_code(&o, 1);
    assert_eq!(
        stderr(&o),
        "pymanager ctl: Process with id 'ghost' not found.\n"
    );
}

/// While a process is verified, its record carries the last attempt's outcome, in the API
/// and in `ctl list`, rather than nothing until the verifier gives up.
#[test]
fn while_verifying_the_last_attempts_outcome_is_shown() {
    let answers_404 = common::serve_status("404 Not Found");
    let closed = free_port();
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "startup": "parallel",
        "processes": {
            "web": {"executable": "sleep", "arguments": ["1000"],
                    "verifier": {"type": "http", "arguments": {
                        "url": format!("http://127.0.0.1:{answers_404}/health"),
                        "timeout": 600, "interval": 0.1}}},
            "db": {"executable": "sleep", "arguments": ["1000"],
                   "verifier": {"type": "tcp", "arguments": {
                       "port": closed, "timeout": 600, "interval": 0.1}}},
        }
    }));
    let url = m.url();
    let message = |name: &str| -> Value {
        let v: Value = common::client()
            .get(format!("{url}/api/v1/processes/{name}"))
            .send()
            .and_then(|r| r.json())
            .unwrap();
        v
    };
    let mut last = Value::Null;
    for (name, want) in [("web", "answered 404"), ("db", "refused")] {
        let seen = wait_until(WAIT, || {
            last = message(name);
            last["verifier"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(want))
        });
        assert!(seen, "{name}: {last}");
        assert_eq!(last["lifecycle"], "verifying", "{last}");
        assert_eq!(last["verifier"]["outcome"], "running", "{last}");
    }
    let o = ctl(&m, &["list"]);
    assert_code(&o, 0);
    let out = stdout(&o);
    let line = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no {name} in {out}"))
            .to_string()
    };
    assert!(line("web").contains("answered 404"), "{out}");
    assert!(line("db").contains("refused"), "{out}");
}

/// `ctl stop` returns once the manager's processes are gone — here one that takes its
/// time to stop — so that an immediate rerun never collides with them.
#[test]
fn stop_without_a_process_shuts_the_manager_down_and_waits_until_it_is_gone() {
    let mut m = Manager::start(json!({
        "http": {"enabled": true},
        "processes": {
            "web": sh("exec sleep 100"),
            "slow": sh("trap 'sleep 0.5; exit 0' TERM; while :; do sleep 0.05; done")
        }
    }));
    m.wait_status("running");
    let pids = m.pids();
    let o = ctl(&m, &["stop"]);
    assert_code(&o, 0);
    assert!(stdout(&o).starts_with("stopped in "), "{}", stdout(&o));
    let left: Vec<i32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    assert!(
        left.is_empty(),
        "still running when ctl stop returned: {left:?}"
    );
    assert_eq!(m.wait_exit(), 0);
    // Gone: the address file went with it, and the config says port 0.
    let o = ctl(&m, &["status"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("no address file"), "{}", stderr(&o));
}

#[test]
fn wait_returns_once_running_even_if_started_first() {
    let dir = common::config_dir(&json!({
        "http": {"enabled": true},
        "processes": { "web": sh("exec sleep 100") }
    }));
    let cfg = dir.path().join("pymanager.json");
    // ctl first: it keeps trying until the manager is there.
    let waiter = pymanager(&[])
        .args(["ctl", "-f"])
        .arg(&cfg)
        .args(["wait", "--timeout", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let m = Manager::start_in(dir, &[]);
    let o = waiter.wait_with_output().unwrap();
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "running\n");
    assert_eq!(m.list()["processes"][0]["status"], "running");
}

#[test]
fn unreachable_managers_and_timeouts_have_their_own_exit_code() {
    let dir = common::config_dir(&json!({
        "http": {"enabled": true},
        "processes": { "web": sh("exec sleep 100") }
    }));
    let cfg = dir.path().join("pymanager.json");
    let o = ctl_in(&cfg, &["wait", "--timeout", "0.5"], &[]);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("could not reach the manager"),
        "{}",
        stderr(&o)
    );
    // A port nobody listens on.
    let port = free_port();
    let o = ctl_in(
        &cfg,
        &["list", "--url", &format!("http://127.0.0.1:{port}")],
        &[],
    );
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("cannot reach the manager"),
        "{}",
        stderr(&o)
    );
    let o = ctl_in(&dir.path().join("missing.json"), &["list"], &[]);
    assert_code(&o, 2);
    let o = ctl_in(&cfg, &["--help"], &[]);
    assert_code(&o, 0);
    assert!(stdout(&o).contains("Exit codes:"));
}

#[test]
fn the_token_comes_from_the_flag_the_environment_or_the_config() {
    let m = Manager::start(json!({
        "http": {"enabled": true, "token": "s3cret"},
        "processes": { "web": sh("exec sleep 100") }
    }));
    m.wait_status("running");
    let cfg = m.path("pymanager.json");
    // From the config.
    assert_code(&ctl_in(&cfg, &["list"], &[]), 0);
    // A wrong one is not even sent: the manager cannot show it knows it.
    let o = ctl_in(&cfg, &["list", "--token", "wrong"], &[]);
    assert_code(&o, 1);
    assert!(stderr(&o).contains("holds another token"), "{}", stderr(&o));
    assert!(stderr(&o).contains("PYMANAGER_TOKEN"), "{}", stderr(&o));
    assert_code(&ctl_in(&cfg, &["list"], &[("PYMANAGER_TOKEN", "wrong")]), 1);
    // The flag wins over the environment.
    assert_code(
        &ctl_in(
            &cfg,
            &["list", "--token", "s3cret"],
            &[("PYMANAGER_TOKEN", "wrong")],
        ),
        0,
    );
    // --url bypasses the address file, not the token.
    let o = ctl_in(
        &cfg,
        &["status", "--url", &m.url(), "--token", "s3cret"],
        &[],
    );
    assert_code(&o, 0);
}

#[test]
fn logs_follow_prints_new_lines_until_the_manager_exits() {
    let mut m = Manager::start(json!({
        "http": {"enabled": true},
        "processes": { "talker": sh("echo first; exec sleep 100") }
    }));
    m.wait_status("running");
    let mut follower = pymanager(&[])
        .args(["ctl", "-f"])
        .arg(m.path("pymanager.json"))
        .args(["logs", "talker", "-f", "-n", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "first");
    // A restart's output follows on the same stream.
    assert_code(&ctl(&m, &["restart", "talker"]), 0);
    assert_eq!(lines.next().unwrap().unwrap(), "first");
    assert_code(&ctl(&m, &["stop"]), 0);
    assert_eq!(m.wait_exit(), 0);
    assert!(lines.next().is_none());
    let status = follower.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// Established TCP connections whose local port is `port` (the server's side), from
/// /proc/net/tcp: how a test knows a client is connected without sleeping.
fn connections_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3
                && f[3] == "01"
                && f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    == Some(port)
        })
        .count()
}

/// A manager whose start-up fails once the test creates `go` (`migrate` then exits 1 where
/// its verifier expects 0), and which cannot finish its shutdown before the test creates
/// `release` (`holder` ignores SIGTERM and has 60 s of grace): a client may come while it
/// fails or after, and always finds the manager there.
fn failing_start_up() -> Manager {
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "processes": {
            "holder": {
                "executable": "sh",
                "arguments": ["-c", "trap '' TERM; touch trapped; while [ ! -e release ]; do sleep 0.05; done"],
                "graceful_time": 60
            },
            "migrate": {
                "executable": "sh",
                "arguments": ["-c", "while [ ! -e go ]; do sleep 0.05; done; exit 1"],
                "verifier": {
                    "type": "pymutils.exited_verifier.ExitedVerifier",
                    "arguments": {"expect_code": 0}
                }
            }
        }
    }));
    // The holder keeps the manager up through the failed start-up only once it ignores
    // SIGTERM: a shell not yet at its `trap` dies of the shutdown's signal.
    assert!(wait_until(WAIT, || m.path("trapped").exists()));
    m
}

fn wait_ctl(m: &Manager) -> Command {
    let mut c = pymanager(&[]);
    c.args(["ctl", "-f"])
        .arg(m.path("pymanager.json"))
        .args(["wait", "--timeout", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

#[track_caller]
fn assert_start_up_failed(o: &Output) {
    assert_code(o, 1);
    let err = stderr(o);
    assert!(err.starts_with("pymanager ctl: start-up failed: "), "{err}");
    assert!(err.contains("migrate"), "{err}");
}

#[test]
fn wait_fails_with_the_reason_when_start_up_fails() {
    let mut m = failing_start_up();
    let port: u16 = m.url().rsplit(':').next().unwrap().parse().unwrap();
    let waiter = wait_ctl(&m).spawn().unwrap();
    // Most often ctl is subscribed when the start-up fails; if it is not yet, it still gets
    // the reason (the stream repeats it), as the manager cannot be gone before `release`.
    assert!(
        wait_until(WAIT, || connections_to(port) >= 1),
        "ctl never connected"
    );
    std::fs::write(m.path("go"), "").unwrap();
    let o = waiter.wait_with_output().unwrap();
    std::fs::write(m.path("release"), "").unwrap();
    assert_start_up_failed(&o);
    assert_eq!(m.wait_exit(), 5);
}

#[test]
fn wait_started_after_the_failure_still_gets_the_reason() {
    let mut m = failing_start_up();
    std::fs::write(m.path("go"), "").unwrap();
    let status = format!("{}/api/v1/status", m.url());
    let mut last = Value::Null;
    assert!(
        wait_until(WAIT, || {
            last = common::client()
                .get(&status)
                .send()
                .and_then(|r| r.json())
                .unwrap_or(Value::Null);
            last["startup_failure"].is_string()
        }),
        "no startup_failure in the status: {last}"
    );
    assert_eq!(last["shutting_down"], true, "{last}");
    assert!(
        last["startup_failure"]
            .as_str()
            .unwrap()
            .contains("migrate"),
        "{last}"
    );
    let o = wait_ctl(&m).output().unwrap();
    std::fs::write(m.path("release"), "").unwrap();
    assert_start_up_failed(&o);
    assert_eq!(m.wait_exit(), 5);
}

/// A listener standing in for something ctl must never talk to (a fake manager, a proxy);
/// `connected()` says whether anyone did.
struct Trap(std::net::TcpListener);

impl Trap {
    fn new() -> Trap {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        Trap(l)
    }

    fn url(&self) -> String {
        format!("http://{}", self.0.local_addr().unwrap())
    }

    fn connected(&self) -> bool {
        self.0.accept().is_ok()
    }
}

#[test]
fn ctl_never_goes_through_a_proxy() {
    let m = Manager::start(json!({
        "http": {"enabled": true, "token": "s3cret"},
        "processes": { "web": sh("exec sleep 100") }
    }));
    m.wait_status("running");
    let proxy = Trap::new();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let cfg = m.path("pymanager.json");
    for p in [proxy.url(), closed] {
        let env = [
            ("HTTP_PROXY", p.as_str()),
            ("http_proxy", p.as_str()),
            ("ALL_PROXY", p.as_str()),
            ("all_proxy", p.as_str()),
            ("NO_PROXY", ""),
            ("no_proxy", ""),
        ];
        let o = ctl_in(&cfg, &["list"], &env);
        assert_code(&o, 0);
        let o = ctl_in(&cfg, &["status", "--url", &m.url()], &env);
        assert_code(&o, 0);
    }
    assert!(!proxy.connected(), "ctl talked to the proxy");
}

/// A config (`http` as given) whose state directory, made with `mode`, holds an address
/// file saying `addr`, as someone could have planted it: the config file and the state
/// directory.
fn planted_address(
    http: Value,
    mode: u32,
    addr: &str,
) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = common::config_dir(&json!({
        "http": http,
        "processes": { "web": sh("exec sleep 100") }
    }));
    let cfg = dir.path().join("pymanager.json");
    let state = dir.path().join(".pymanager");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(mode)).unwrap();
    std::fs::write(state.join("pymanager.json.addr"), format!("{addr}\n")).unwrap();
    (dir, cfg, state)
}

/// Asserts that `ctl list` on `cfg` is refused (exit 2) with `reason` on stderr.
#[track_caller]
fn list_refused(cfg: &std::path::Path, reason: &str) {
    let o = ctl_in(cfg, &["list"], &[]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains(reason), "{}", stderr(&o));
}

#[test]
fn ctl_refuses_an_address_file_others_could_have_written() {
    let fake = Trap::new();
    let (dir, cfg, state) = planted_address(
        json!({"enabled": true, "token": "s3cret"}),
        0o777,
        &fake.url(),
    );
    list_refused(&cfg, "others may write to the directory");
    use std::os::unix::fs::PermissionsExt;
    // The directory is fine, the file is not.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let addr = state.join("pymanager.json.addr");
    std::fs::set_permissions(&addr, std::fs::Permissions::from_mode(0o666)).unwrap();
    list_refused(&cfg, "others may write to the file");
    if unsafe { libc::geteuid() } == 0 {
        // A file of someone else's, in our own directory.
        std::fs::set_permissions(&addr, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::chown(&addr, Some(65534), Some(65534)).unwrap();
        list_refused(&cfg, "belongs to uid 65534");
    }
    // A symbolic link as the address file.
    std::fs::remove_file(&addr).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::write(&elsewhere, format!("{}\n", fake.url())).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &addr).unwrap();
    list_refused(&cfg, "symbolic link");
    assert!(
        !fake.connected(),
        "ctl sent its request (and token) to the fake"
    );
}

#[test]
fn ctl_refuses_a_state_directory_of_someone_else() {
    if unsafe { libc::geteuid() } != 0 {
        // Only root can give a directory away; the mode checks above cover the rest.
        return;
    }
    let fake = Trap::new();
    let (_dir, cfg, state) = planted_address(
        json!({"enabled": true, "token": "s3cret"}),
        0o755,
        &fake.url(),
    );
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    list_refused(&cfg, "belongs to uid 65534");
    assert!(
        !fake.connected(),
        "ctl sent its request (and token) to the fake"
    );
}

#[test]
fn ctl_talks_only_to_loopback_unless_told_otherwise() {
    // 192.0.2.0/24 is reserved for documentation: nothing answers there.
    let (_dir, cfg, state) =
        planted_address(json!({"enabled": true}), 0o700, "http://192.0.2.1:5001");
    list_refused(&cfg, "not a loopback address");
    list_refused(&cfg, "--url");
    // The config's own host, likewise.
    std::fs::remove_file(state.join("pymanager.json.addr")).unwrap();
    std::fs::write(
        &cfg,
        json!({"http": {"enabled": true, "host": "192.0.2.1"},
               "processes": {"web": sh("exec sleep 100")}})
        .to_string(),
    )
    .unwrap();
    list_refused(&cfg, "not a loopback address");
}

#[test]
fn ctl_reads_the_config_with_the_managers_own_loader() {
    // `"enabled": 1` is true for the manager, so it is for ctl.
    let m = Manager::start(json!({
        "http": {"enabled": 1, "port": 0},
        "processes": { "web": sh("exec sleep 100") }
    }));
    m.wait_status("running");
    let o = ctl(&m, &["status"]);
    assert_code(&o, 0);
    // Without an address file, the config's port is used: a fixed free port here.
    let port = free_port();
    let m2 = Manager::start(json!({
        "http": {"enabled": "true", "port": port},
        "processes": { "web": sh("exec sleep 100") }
    }));
    m2.wait_status("running");
    std::fs::remove_file(m2.path(".pymanager/pymanager.json.addr")).unwrap();
    let o = ctl(&m2, &["status"]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "running (1 of 1 processes running)\n");
}

#[test]
fn the_ctl_help_speaks_to_users() {
    let o = pymanager(&[]).args(["ctl", "--help"]).output().unwrap();
    assert_code(&o, 0);
    let help = stdout(&o);
    assert!(
        help.contains("The config file of the manager to talk to"),
        "{help}"
    );
    assert!(!help.contains("clap"), "{help}");
}

#[test]
fn stop_no_wait_returns_once_the_shutdown_began() {
    let mut m = Manager::start(json!({
        "http": {"enabled": true},
        "processes": { "web": sh("exec sleep 100") }
    }));
    m.wait_status("running");
    let o = ctl(&m, &["stop", "--no-wait"]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "shutdown started\n");
    assert_eq!(m.wait_exit(), 0);
}

/// A restart whose verification would wait for minutes is cut short by a stop (which
/// answers at once) or by another restart; the first requester learns why.
#[test]
fn a_stop_or_a_restart_cuts_a_restarts_verification_short() {
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "processes": {
            "stuck": {
                "executable": "sh",
                "arguments": ["-c", "[ -e second ] && exec sleep 600; touch second; exec sleep 600"],
                "verifier": {"type": "tcp", "arguments": {"port": 1, "timeout": 600}}
            }
        }
    }));
    // Start-up: the first run passes no verification either; let it through by a restart
    // the test then cuts short.
    let url = m.url();
    assert!(wait_until(WAIT, || m.path("second").exists()));
    let slow = |verb: &str| {
        pymanager(&[])
            .arg("ctl")
            .arg("--url")
            .arg(&url)
            .args([verb, "stuck"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // A restart of a process still being verified by the start-up replaces that run; the
    // next restart is then cut short by a stop.
    let first = slow("restart");
    let record = || -> Value {
        common::client()
            .get(format!("{url}/api/v1/processes/stuck"))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    assert!(wait_until(WAIT, || record()["restarts"] == 1
        && record()["lifecycle"] == "verifying"));
    let second = slow("restart");
    let first = first.wait_with_output().unwrap();
    assert_code(&first, 1);
    assert!(
        stderr(&first).contains("cancelled by a later restart"),
        "{}",
        stderr(&first)
    );
    assert!(wait_until(WAIT, || record()["restarts"] == 2
        && record()["lifecycle"] == "verifying"));
    let stop = ctl(&m, &["stop", "stuck"]);
    assert_code(&stop, 0);
    let second = second.wait_with_output().unwrap();
    assert_code(&second, 1);
    assert!(
        stderr(&second).contains("cancelled by a later stop"),
        "{}",
        stderr(&second)
    );
    assert_eq!(record()["lifecycle"], "stopped");
    // --timeout bounds the wait for a restart; the restart goes on.
    let o = ctl(&m, &["restart", "stuck", "--timeout", "0.5"]);
    assert_code(&o, 3);
    assert!(
        stderr(&o).contains("restart of stuck not done after 0.5 s"),
        "{}",
        stderr(&o)
    );
    assert_eq!(record()["lifecycle"], "verifying");
}

/// `-f` after the command's name, as before it; and `ctl ports`.
#[test]
fn the_file_flag_after_the_command_and_ports() {
    let mut m = Manager::start(json!({
        "http": {"enabled": true},
        "processes": {
            "web": {"executable": "sleep", "arguments": ["100"], "ports": {"http": 0, "admin": 0}},
            "worker": sh("exec sleep 100")
        }
    }));
    m.wait_status("running");
    let file = m.path("pymanager.json");
    let after = |args: &[&str]| {
        pymanager(&[])
            .arg("ctl")
            .args(args)
            .arg("-f")
            .arg(&file)
            .env_remove("PYMANAGER_URL")
            .output()
            .unwrap()
    };
    let o = after(&["ports"]);
    assert_code(&o, 0);
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("PROCESS") && lines[0].ends_with("NUMBER"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("web") && lines[1].contains("http"),
        "{text}"
    );
    let o = after(&["ports", "web", "--json"]);
    assert_code(&o, 0);
    let ports: Value = serde_json::from_slice(&o.stdout).unwrap();
    let http = ports["web"]["http"].as_u64().unwrap();
    assert!(text.contains(&http.to_string()), "{text}");
    assert_eq!(ports.as_object().unwrap().len(), 1);
    let o = after(&["ports", "nope"]);
    assert_code(&o, 1);
    let o = after(&["stop"]);
    assert_code(&o, 0);
    assert_eq!(m.wait_exit(), 0);
}
