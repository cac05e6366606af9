//! Attacks on the REST API's token and on what the API promises, done as another local
//! user would: a listener squatting the config's port or a stale address's, a child
//! reading `/proc/$PPID/environ`, a page left open on a manager that shut down. And what
//! is not defended, shown as it is: without a token, any local user can stop the manager.
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};

use common::*;
use serde_json::json;

/// `pymanager ctl <args>` in `dir`.
fn ctl(dir: &std::path::Path, args: &[&str]) -> Output {
    output_of(pymanager(&["ctl"]).args(args).current_dir(dir))
}

#[test]
fn ctl_never_sends_the_token_to_a_listener_squatting_the_configs_port() {
    let Some(other) =
        as_other_user("ctl_never_sends_the_token_to_a_listener_squatting_the_configs_port")
    else {
        return;
    };
    let port = free_port();
    let squatter = Squatter::start(&other, port);
    // No manager runs: ctl falls back to the config's http.port, where the squatter is.
    let dir = config_dir(
        &json!({"http": {"enabled": true, "port": port, "token": "s3cret-config"},
        "processes": {"a": sh("exec sleep 100")}}),
    );
    for args in [
        &["list"][..],
        &["stop"],
        &["--token", "s3cret-flag", "status"],
    ] {
        let o = ctl(dir.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!(
                "not sending the token to http://127.0.0.1:{port}: the server there did not show that it knows the token"
            )),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    // It was asked who it is, once by each, and never given the token.
    let heads = squatter.wait_heads(3);
    assert!(heads.iter().all(|h| !h.contains("s3cret")), "{heads:?}");
    // The user's own word still goes there.
    let o = ctl(
        dir.path(),
        &["--url", &format!("http://127.0.0.1:{port}"), "list"],
    );
    assert!(
        squatter.wait_heads(4)[3].contains("Bearer s3cret-config"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn ctl_never_sends_the_token_to_a_listener_squatting_a_stale_address() {
    let Some(other) =
        as_other_user("ctl_never_sends_the_token_to_a_listener_squatting_a_stale_address")
    else {
        return;
    };
    let squatter = Squatter::start(&other, 0);
    // An address file left by a manager that died (kill -9, a crash): the port it names
    // is free again, and taken.
    let dir = config_dir(&json!({"http": {"enabled": true, "token": "auto"},
        "processes": {"a": sh("exec sleep 100")}}));
    let state = dir.path().join(".pymanager");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(
        state.join("pymanager.json.addr"),
        format!("http://127.0.0.1:{}\n", squatter.port),
    )
    .unwrap();
    let token_file = state.join("pymanager.json.token");
    std::fs::write(&token_file, "stale-generated-token\n").unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = ctl(dir.path(), &["list"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not sending the token"),
        "{}",
        stderr(&o)
    );
    let heads = squatter.wait_heads(1);
    assert!(
        heads.iter().all(|h| !h.contains("stale-generated-token")),
        "{heads:?}"
    );
}

#[test]
fn ctl_sends_the_token_to_the_manager_that_shows_it_knows_it() {
    let m = Manager::start(json!({"http": {"enabled": true, "token": "t0ken"},
        "processes": {"a": sh("exec sleep 100")}}));
    m.wait_status("running");
    let o = ctl(m.dir.path(), &["list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // A wrong token is never sent either: the manager cannot show it knows it.
    let o = ctl(m.dir.path(), &["--token", "wrong", "list"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("holds another token than the one given, so it was not sent"),
        "{}",
        stderr(&o)
    );
    // A manager without a token is not sent one.
    let open = Manager::start(json!({"http": {"enabled": true},
        "processes": {"a": sh("exec sleep 100")}}));
    open.wait_status("running");
    let o = ctl(open.dir.path(), &["--token", "unneeded", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn the_identity_route_proves_nothing_without_the_token() {
    let m = Manager::start(json!({"http": {"enabled": true, "token": "t0ken"},
        "processes": {"a": sh("exec sleep 100")}}));
    let url = m.url();
    let r = client()
        .get(format!(
            "{url}/api/v1/identity?challenge={}",
            "ab".repeat(32)
        ))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().unwrap();
    assert_eq!(
        format!("http://{}", v["address"].as_str().unwrap()),
        url,
        "{v}"
    );
    assert_eq!(v["proof"].as_str().unwrap().len(), 64, "{v}");
    assert!(!v.to_string().contains("t0ken"));
    for bad in ["ab", "zz".repeat(32).as_str(), "ab".repeat(65).as_str()] {
        let r = client()
            .get(format!("{url}/api/v1/identity?challenge={bad}"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
}

/// Runs the manager in `dir` (as whoever `prefix` runs commands as; nothing: this user)
/// with `PYMANAGER_TOKEN` in its environment until a process of its config has written
/// `file` ending in `done`; stops it and returns the file.
fn with_the_token_in_its_environment(prefix: &[String], dir: &Path, file: &str) -> String {
    let mut child = command_as(prefix, bin())
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("PYMANAGER_TOKEN", "from-the-environment")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = dir.join(file);
    let written = wait_until(WAIT, || {
        std::fs::read_to_string(&out).is_ok_and(|s| s.ends_with("done\n"))
    });
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(written, "{file} was never written");
    std::fs::read_to_string(&out).unwrap()
}

#[test]
fn a_child_cannot_read_the_token_from_the_managers_environ() {
    // Run as root here: /proc/<pid>/environ stays readable to root, so what it shows must
    // no longer hold the token.
    let dir = config_dir(&json!({"http": {"enabled": true}, "processes": {
        "reader": sh("tr '\\0' '\\n' < /proc/$PPID/environ > environ.txt; echo done >> environ.txt; exec sleep 100")}}));
    let environ = with_the_token_in_its_environment(&[], dir.path(), "environ.txt");
    assert!(environ.contains("NO_COLOR=1"), "{environ}");
    assert!(!environ.contains("from-the-environment"), "{environ}");
    assert!(!environ.contains("PYMANAGER_TOKEN"), "{environ}");
}

#[test]
fn a_child_of_the_same_user_cannot_open_the_managers_environ_or_memory() {
    let Some(other) =
        as_other_user("a_child_of_the_same_user_cannot_open_the_managers_environ_or_memory")
    else {
        return;
    };
    // The manager runs as an ordinary user (not root), as its children do.
    let dir = config_dir(
        &json!({"http": {"enabled": true, "token": "auto"}, "processes": {
        "reader": sh("for f in environ mem maps; do if (exec 3< /proc/$PPID/$f) 2> /dev/null; then echo \"$f readable\"; else echo \"$f refused\"; fi; done > probe.txt; echo done >> probe.txt; exec sleep 100")}}),
    );
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for p in [dir.path().to_path_buf(), dir.path().join("pymanager.json")] {
        std::os::unix::fs::chown(p, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
    }
    let probe = with_the_token_in_its_environment(&other, dir.path(), "probe.txt");
    assert!(
        probe.starts_with("environ refused\nmem refused\nmaps refused\n"),
        "{probe}"
    );
}

#[test]
fn every_answer_says_nosniff() {
    let m = Manager::start(json!({"http": {"enabled": true, "token": "t"},
        "processes": {"a": sh("exec sleep 100")}}));
    let url = m.url();
    let c = client();
    for (path, token, status) in [
        ("/", true, 200),
        ("/", false, 401),
        ("/status", false, 200),
        ("/nowhere", true, 404),
        ("/api/v1/processes/a/logs?lines=x", true, 400),
        ("/api/v1/openapi.json", false, 200),
        ("/ui/", false, 200),
        ("/ui/app.js", false, 200),
    ] {
        let mut req = c.get(format!("{url}{path}"));
        if token {
            req = req.bearer_auth("t");
        }
        let r = req.send().unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert_eq!(
            r.headers()
                .get("x-content-type-options")
                .map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{path}"
        );
    }
}

#[test]
fn without_a_token_any_local_user_can_stop_the_manager() {
    // What SECURITY.md says is not defended, shown: the API binds loopback, and loopback
    // is every local user's.
    let Some(other) = as_other_user("without_a_token_any_local_user_can_stop_the_manager") else {
        return;
    };
    let mut m = Manager::start(json!({"http": {"enabled": true},
        "processes": {"a": sh("exec sleep 100")}}));
    m.wait_status("running");
    let url = m.url();
    run_as_other(
        &other,
        &[
            system_python(),
            "-c",
            "import sys, urllib.request as u; u.urlopen(u.Request(sys.argv[1] + '/', method='DELETE'))",
            &url,
        ],
    );
    assert_eq!(m.wait_exit(), 0);
}

#[test]
fn the_dashboard_stops_reconnecting_once_the_manager_said_it_shuts_down() {
    let port = free_port();
    let mut m = Manager::start(
        json!({"http": {"enabled": true, "port": port, "token": "t0ken"},
        "keep-alive": true,
        "processes": {"svc": sh("exec sleep 1000")}}),
    );
    m.wait_status("running");
    let b = common::browser::Browser::start(1280, 800);
    b.goto(&format!("{}/ui/", m.url()));
    b.wait_for(
        "the token form",
        "!document.getElementById('token-form').hidden",
    );
    b.type_into(
        &b.find("#token"),
        &format!("t0ken{}", common::browser::ENTER),
    );
    b.wait_for(
        "the live connection",
        "document.getElementById('connection').dataset.state === 'live'",
    );
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0);
    // Someone takes the port at once: the page must not send it the token.
    let squatter = Squatter::start(&[], port);
    b.wait_for(
        "that it says the manager shut down and stops",
        "document.getElementById('connection').textContent === \
         'Disconnected. The manager has shut down; reload the page once it runs again.'",
    );
    assert!(
        squatter.heads().iter().all(|h| !h.contains("t0ken")),
        "{:?}",
        squatter.heads()
    );
}
