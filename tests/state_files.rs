//! End-to-end tests of the state files (`<config dir>/.pymanager/`) and of what the
//! manager lets out of its own environment: planted symbolic links, directories that are
//! not ours, the generated token, and `PYMANAGER_TOKEN` kept from the children.
mod common;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::process::Stdio;

use common::*;
use serde_json::json;

fn private_dir(dir: &std::path::Path) -> std::path::PathBuf {
    let state = dir.join(".pymanager");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    state
}

fn am_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// A config whose only process leaves a mark if it ever runs.
fn marking(http: bool) -> tempfile::TempDir {
    config_dir(&json!({"http": {"enabled": http},
        "processes": {"a": sh("echo ran > ran.txt; exec sleep 100")}}))
}

#[test]
fn a_symbolic_link_planted_as_the_address_file_is_refused_and_its_target_kept() {
    let dir = marking(true);
    let state = private_dir(dir.path());
    let target = dir.path().join("precious");
    std::fs::write(&target, "keep me").unwrap();
    symlink(&target, state.join("pymanager.json.addr")).unwrap();
    let o = pymanager_in(dir.path(), &[]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("refusing to use")
            && err.contains("pymanager.json.addr: it is a symbolic link"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    assert!(!dir.path().join("ran.txt").exists(), "a process ran");
}

#[test]
fn a_symbolic_link_planted_as_the_token_file_is_refused_and_its_target_kept() {
    let dir = config_dir(&json!({"http": {"enabled": true, "token": "auto"},
        "processes": {"a": sh("echo ran > ran.txt; exec sleep 100")}}));
    let state = private_dir(dir.path());
    let target = dir.path().join("precious");
    std::fs::write(&target, "keep me").unwrap();
    symlink(&target, state.join("pymanager.json.token")).unwrap();
    let o = pymanager_in(dir.path(), &[]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("pymanager.json.token: it is a symbolic link"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    assert!(!dir.path().join("ran.txt").exists(), "a process ran");
    // ctl does not take a token from it either.
    std::fs::write(&target, "stolen\n").unwrap();
    let o = pymanager(&[])
        .args(["ctl", "list", "--url", "http://127.0.0.1:9"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("pymanager.json.token: it is a symbolic link"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_symbolic_link_planted_as_the_pid_file_is_refused_and_its_target_kept() {
    let dir = marking(false);
    let state = private_dir(dir.path());
    let target = dir.path().join("precious");
    std::fs::write(&target, "keep me").unwrap();
    symlink(&target, state.join("pymanager.json.pid")).unwrap();
    // The daemon's default pid file: refused before detaching, on the caller's stderr.
    let o = pymanager_in(dir.path(), &["-d"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("it is a symbolic link"),
        "{}",
        stderr(&o)
    );
    // A pid file named on the command line, likewise.
    symlink(&target, dir.path().join("my.pid")).unwrap();
    let o = pymanager_in(dir.path(), &["--pidfile", "my.pid"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("my.pid: it is a symbolic link"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    assert!(!dir.path().join("ran.txt").exists(), "a process ran");
}

#[test]
fn a_state_directory_others_may_write_to_is_refused() {
    let dir = marking(true);
    let state = private_dir(dir.path());
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = pymanager_in(dir.path(), &[]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("others may write to the directory"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("ran.txt").exists(), "a process ran");
}

#[test]
fn a_state_directory_of_someone_else_is_refused() {
    if !am_root() {
        // Only root can give a directory away; the mode test above covers the rest.
        return;
    }
    let dir = marking(true);
    let state = private_dir(dir.path());
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    let o = pymanager_in(dir.path(), &[]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("belongs to uid 65534"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("ran.txt").exists(), "a process ran");
}

#[test]
fn state_files_are_private_and_gone_at_the_end() {
    let mut m = Manager::start(json!({"http": {"enabled": true},
        "processes": {"a": sh("exec sleep 100")}}));
    m.wait_status("running");
    let state = m.path(".pymanager");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    // Nothing but the address file and the lock that claims the plain names: temporary
    // files are renamed into place.
    let mut names: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["pymanager.json.addr", "pymanager.json.lock"]);
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0);
    assert!(!state.join("pymanager.json.addr").exists());
}

#[test]
fn an_auto_token_is_made_at_start_kept_private_and_found_by_ctl() {
    let mut m = Manager::start(json!({"http": {"enabled": true, "token": "auto"},
        "processes": {"a": sh("exec sleep 100")}}));
    let url = m.url();
    let token_file = m.path(".pymanager/pymanager.json.token");
    assert!(wait_until(WAIT, || token_file.exists()));
    let meta = std::fs::metadata(&token_file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(token.len(), 64, "{token}");
    // Without it: refused; with it: served.
    let r = client().get(format!("{url}/")).send().unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .get(format!("{url}/"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // ctl finds it on its own.
    let o = pymanager(&[])
        .args(["ctl", "list"])
        .current_dir(m.dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("sleep 100"));
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0);
    assert!(!token_file.exists(), "the token outlived the manager");
    // Another run makes another one.
    let mut m2 = Manager::start(json!({"http": {"enabled": true, "token": "auto"},
        "processes": {"a": sh("exec sleep 100")}}));
    let _ = m2.url();
    let token_file = m2.path(".pymanager/pymanager.json.token");
    assert!(wait_until(WAIT, || token_file.exists()));
    let second = std::fs::read_to_string(&token_file).unwrap();
    assert_ne!(second.trim(), token);
    m2.signal(libc::SIGTERM);
    assert_eq!(m2.wait_exit(), 0);
}

#[test]
fn the_token_in_the_environment_is_not_passed_to_processes() {
    let dir = config_dir(&json!({"http": {"enabled": true, "port": 0}, "processes": {
        "plain": sh("echo \"token=${PYMANAGER_TOKEN:-unset}\" > plain.txt; exec sleep 100"),
        "sourced": {"executable": "sh",
                    "arguments": ["-c", "echo \"token=${PYMANAGER_TOKEN:-unset} x=$X\" > sourced.txt; exec sleep 100"],
                    "options": {"environment_file": "env.sh"}},
        "shell": {"executable": "echo token=${PYMANAGER_TOKEN:-unset} > shell.txt; exec sleep 100",
                  "arguments": [], "options": {"shell": true}}}}));
    std::fs::write(dir.path().join("env.sh"), "export X=1\n").unwrap();
    let mut child = pymanager(&[])
        .current_dir(dir.path())
        .env("PYMANAGER_TOKEN", "from-the-environment")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = dir.path().join(".pymanager/pymanager.json.addr");
    let files = ["plain.txt", "sourced.txt", "shell.txt"];
    assert!(wait_until(WAIT, || addr.exists()
        && files
            .iter()
            .all(
                |f| std::fs::read_to_string(dir.path().join(f)).is_ok_and(|s| s.ends_with('\n'))
            )));
    for f in files {
        let got = std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert!(got.starts_with("token=unset"), "{f}: {got}");
    }
    assert!(
        std::fs::read_to_string(dir.path().join("sourced.txt"))
            .unwrap()
            .contains("x=1")
    );
    // The manager itself still uses it.
    let url = std::fs::read_to_string(&addr).unwrap().trim().to_string();
    assert_eq!(
        client().get(format!("{url}/")).send().unwrap().status(),
        401
    );
    let r = client()
        .get(format!("{url}/"))
        .bearer_auth("from-the-environment")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn a_symbolic_link_another_user_planted_as_the_log_file_is_refused() {
    let Some(other) =
        as_other_user("a_symbolic_link_another_user_planted_as_the_log_file_is_refused")
    else {
        return;
    };
    let dir = marking(false);
    let precious = dir.path().join("precious");
    std::fs::write(&precious, "keep me").unwrap();
    // A shared place for logs (as /tmp), where the other user got first.
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let log = shared.path().join("pm.log");
    run_as_other(
        &other,
        &[
            "ln",
            "-s",
            &precious.display().to_string(),
            &log.display().to_string(),
        ],
    );
    for args in [&["-l"][..], &["-d", "-l"]] {
        let mut args = args.to_vec();
        let log = log.display().to_string();
        args.push(&log);
        let o = pymanager_in(dir.path(), &args);
        assert_eq!(o.status.code(), Some(5), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("cannot open the log file")
                && stderr(&o).contains("the symbolic link belongs to uid 65534"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
    assert!(!dir.path().join("ran.txt").exists(), "a process ran");
}
