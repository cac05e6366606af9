//! Named ports and `environment`, end to end: a port picked at start-up reaches the
//! process's arguments, its environment, the processes that wait for it, its verifier and
//! the API; a wrong reference stops the load with its field path.

mod common;

use common::*;
use serde_json::json;

/// A web server on a picked port, verified on it; a client that waits for it and writes
/// what it was given.
#[test]
fn a_picked_port_reaches_arguments_environment_dependents_verifier_and_api() {
    let cfg = json!({
        "http": {"enabled": true},
        "keep_alive": true,
        "processes": {
            "web": {
                "executable": "python3",
                "arguments": ["-m", "http.server", "--bind", "127.0.0.1", "${ports.web.http}"],
                "ports": {"http": 0, "admin": "0"},
                "verifier": {"type": "http", "arguments": {"url": "http://127.0.0.1:${ports.web.http}/"}}
            },
            "client": {
                "executable": "sh",
                "arguments": ["-c", "echo \"$PORT|$PYMANAGER_PORT_WEB_HTTP|$PYMANAGER_PORT_CLIENT_OWN|$GREETING|$FROM_ENV\" > seen; echo $$ >> seen"],
                "ports": {"own": 0},
                "environment": {
                    "GREETING": "web at ${ports.web.http}, $$5",
                    "FROM_ENV": "${env.PYMANAGER_TEST_VALUE:-unset}"
                },
                "verifier": {"type": "exited"}
            }
        }
    });
    let m = Manager::start(cfg);
    assert!(
        wait_until(WAIT, || std::fs::read_to_string(m.path("seen"))
            .is_ok_and(|s| s.lines().count() == 2)),
        "{}",
        m.output()
    );
    let list = m.get_json("/api/v1/processes");
    let web = &list["processes"][0]["ports"];
    let http = web["http"].as_u64().expect("web's http port");
    let admin = web["admin"].as_u64().expect("web's admin port");
    assert!(http != 0 && admin != 0 && http != admin, "{web}");
    let own = list["processes"][1]["ports"]["own"].as_u64().unwrap();
    // The server listens on the picked port (its verifier passed on it too).
    assert!(std::net::TcpStream::connect(("127.0.0.1", http as u16)).is_ok());
    let seen = std::fs::read_to_string(m.path("seen")).unwrap();
    assert_eq!(
        seen.lines().next().unwrap(),
        format!("{own}|{http}|{own}|web at {http}, $5|unset")
    );
    // The command line shows the port, not the reference.
    assert_eq!(
        list["processes"][0]["command"],
        format!("python3 -m http.server --bind 127.0.0.1 {http}")
    );
}

#[test]
fn a_port_is_kept_across_restarts() {
    let cfg = json!({
        "http": {"enabled": true},
        "processes": {
            "web": {
                "executable": "python3",
                "arguments": ["-m", "http.server", "--bind", "127.0.0.1", "${ports.web.http}"],
                "ports": {"http": 0},
                "verifier": {"type": "tcp", "arguments": {"port": "${ports.web.http}"}}
            }
        }
    });
    let m = Manager::start(cfg);
    m.wait_status("running");
    let get = || m.v1_process("web");
    let before = get();
    let r = client()
        .post(format!("{}/api/v1/processes/web/restart", m.url()))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    let after = get();
    assert_eq!(after["restarts"], 1);
    assert_ne!(after["pid"], before["pid"]);
    assert_eq!(after["ports"], before["ports"]);
}

/// Each wrong reference is one line with its field path, exit 5, nothing started.
#[test]
fn a_wrong_reference_is_a_load_error_naming_its_field() {
    let cases = [
        (
            json!({"executable": "true", "arguments": ["${ports.web.htp}"], "ports": {"http": 0}}),
            "processes.web.arguments.0: ${ports.web.htp}: process web has no port htp (its ports: http)",
        ),
        (
            json!({"executable": "true", "arguments": [], "environment": {"A": "${env.PYMANAGER_SURELY_UNSET}"}}),
            "processes.web.environment.A: ${env.PYMANAGER_SURELY_UNSET}: PYMANAGER_SURELY_UNSET is not set",
        ),
        (
            json!({"executable": "true", "arguments": [], "verifier": {"type": "tcp", "arguments": {"port": "${ports.db.main}"}}}),
            "processes.web.verifier.arguments.port: ${ports.db.main}: there is no process db",
        ),
        (
            json!({"executable": "true", "arguments": [], "ports": {"a b": 0}}),
            "processes.web.ports.a b: a port's name is letters",
        ),
        (
            json!({"executable": "true", "arguments": [], "ports": {"http": 70000}}),
            "processes.web.ports: http: expected a port number (0-65535)",
        ),
    ];
    for (process, want) in cases {
        let dir = config_dir(&json!({"processes": {"web": process}}));
        let out = pymanager(&[])
            .arg("check")
            .arg("-f")
            .arg(dir.path().join("pymanager.json"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{want}: {err}");
        assert!(err.contains(want), "want {want:?} in:\n{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

/// `-d`: the caller that waits for the daemon's word forked after the ports were picked;
/// it must not keep them bound, or the process could not bind its own port.
#[test]
fn a_daemons_waiting_caller_lets_the_picked_ports_go() {
    let dir = config_dir(&json!({
        "processes": {
            "web": {
                "executable": "python3",
                "arguments": ["-m", "http.server", "--bind", "127.0.0.1", "${ports.web.http}"],
                "ports": {"http": 0},
                "verifier": {"type": "http", "arguments": {"url": "http://127.0.0.1:${ports.web.http}/", "timeout": 60}}
            }
        }
    }));
    let env_file = dir.path().join("env");
    let out = pymanager(&[])
        .args(["-d", "-l", "out.log", "--write-env", "env", "-f"])
        .arg(dir.path().join("pymanager.json"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let log = std::fs::read_to_string(dir.path().join("out.log")).unwrap_or_default();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = std::fs::read_to_string(&env_file).unwrap();
    let pid: i32 = env
        .lines()
        .find_map(|l| l.strip_prefix("PYMANAGER_PID="))
        .unwrap()
        .parse()
        .unwrap();
    let port: u16 = env
        .lines()
        .find_map(|l| l.strip_prefix("PYMANAGER_PORT_WEB_HTTP="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(wait_all_gone(&[pid], WAIT), Ok(()));
}
