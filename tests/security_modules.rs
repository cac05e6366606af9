//! Attacks on the Python verifier modules a config names, done as another local user
//! would: a module planted in a shared config directory (to shadow the one on
//! `PYTHONPATH`, or to fill in one that is missing), a planted FIFO or symbolic link; and
//! what a build may do: `check` runs no build, and a build that hangs is stopped with its
//! process group at its time limit.
//!
//! Before these rules the planted modules were built and run (minutes with the real
//! componentize-py, which is why the tests give the manager the real tool); now each is a
//! config error, at once, before anything is built.
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use serde_json::{Value, json};

/// A module of the user's: a verifier `Up` that passes.
const USERS_MODULE: &str = "from pymutils.verifier import Verifier\n\n\nclass Up(Verifier):\n    def run(self, proc):\n        return True\n";

/// The attacker's version: the same verifier, reporting home first.
const PLANTED_MODULE: &str = "import requests\nfrom pymutils.verifier import Verifier\n\n\nclass Up(Verifier):\n    def run(self, proc):\n        requests.get('http://127.0.0.1:9/planted')\n        return True\n";

/// A config directory others may write to (mode 1777, as in `/tmp` or a shared checkout)
/// holding a config whose process uses `checks.Up` and leaves `ran.txt` if it starts.
fn shared_config(extra_modules: Value) -> tempfile::TempDir {
    let mut modules = json!({"checks": {"verifiers": ["Up"]}});
    for (k, v) in extra_modules.as_object().unwrap() {
        modules[k] = v.clone();
    }
    let dir = config_dir(&json!({
        "modules": modules,
        "processes": {"a": {"executable": "sh", "arguments": ["-c", "echo ran > ran.txt; exec sleep 100"],
                            "verifier": {"type": "checks.Up"}}}
    }));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

/// The user's own library folder on `PYTHONPATH`, holding their `checks.py`.
fn users_library() -> tempfile::TempDir {
    let lib = tempfile::tempdir().unwrap();
    std::fs::set_permissions(lib.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(lib.path().join("checks.py"), USERS_MODULE).unwrap();
    lib
}

/// Runs the manager on `dir` with `PYTHONPATH` and the real componentize-py; its exit and
/// output. Still running after `WAIT` fails the test: it built and ran the module.
fn run_manager(dir: &Path, pythonpath: &Path) -> (Option<i32>, String) {
    let cache = tempfile::tempdir().unwrap();
    run_within(
        pymanager(&[])
            .current_dir(dir)
            .env("PYTHONPATH", pythonpath)
            .env("PYMANAGER_COMPONENTIZE_PY", componentize_py())
            .env("XDG_CACHE_HOME", cache.path().join("cache"))
            .env("XDG_STATE_HOME", cache.path().join("state"))
            .env("NO_COLOR", "1"),
        WAIT,
    )
}

#[test]
fn a_module_planted_beside_the_config_by_another_user_is_refused_not_run() {
    let Some(other) =
        as_other_user("a_module_planted_beside_the_config_by_another_user_is_refused_not_run")
    else {
        return;
    };
    let dir = shared_config(json!({}));
    let lib = users_library();
    let planted = dir.path().join("checks.py");
    run_as_other(
        &other,
        &[
            "sh",
            "-c",
            &format!("printf '%s' \"$1\" > {}", planted.display()),
            "sh",
            PLANTED_MODULE,
        ],
    );
    let (code, out) = run_manager(dir.path(), lib.path());
    assert_eq!(code, Some(5), "{out}");
    assert!(
        out.contains(&format!(
            "modules.checks: refusing to use ./checks.py: the file belongs to uid {OTHER_UID}"
        )),
        "{out}"
    );
    assert!(!dir.path().join("ran.txt").exists(), "a process ran");
}

#[test]
fn a_missing_module_planted_later_is_not_waited_for_it_is_an_error() {
    let dir = shared_config(json!({"extra": {"verifiers": ["Up"]}}));
    let lib = users_library();
    let (code, out) = run_manager(dir.path(), lib.path());
    assert_eq!(code, Some(5), "{out}");
    assert!(
        out.contains("modules.extra: no module extra: it is not built in"),
        "{out}"
    );
    assert!(!dir.path().join("ran.txt").exists(), "a process ran");
}

#[test]
fn a_fifo_planted_as_a_module_is_an_error_not_a_hang() {
    let Some(other) = as_other_user("a_fifo_planted_as_a_module_is_an_error_not_a_hang") else {
        return;
    };
    let dir = shared_config(json!({}));
    let lib = users_library();
    let fifo = dir.path().join("checks.py");
    run_as_other(
        &other,
        &["mkfifo", "-m", "0644", &fifo.display().to_string()],
    );
    let (code, out) = run_manager(dir.path(), lib.path());
    assert_eq!(code, Some(5), "{out}");
    assert!(
        out.contains("modules.checks: refusing to use ./checks.py: it is a FIFO"),
        "{out}"
    );
}

#[test]
fn a_link_planted_by_another_user_is_refused_even_to_a_file_of_ours() {
    let Some(other) =
        as_other_user("a_link_planted_by_another_user_is_refused_even_to_a_file_of_ours")
    else {
        return;
    };
    let dir = shared_config(json!({}));
    let lib = users_library();
    // The user's own module, somewhere: the link's target passes every check.
    let ours = lib.path().join("other_checks.py");
    std::fs::write(&ours, USERS_MODULE).unwrap();
    let link = dir.path().join("checks.py");
    run_as_other(
        &other,
        &[
            "ln",
            "-s",
            &ours.display().to_string(),
            &link.display().to_string(),
        ],
    );
    let (code, out) = run_manager(dir.path(), lib.path());
    assert_eq!(code, Some(5), "{out}");
    assert!(
        out.contains(&format!(
            "refusing to use ./checks.py: the symbolic link belongs to uid {OTHER_UID}"
        )),
        "{out}"
    );
}

/// A stand-in for componentize-py that writes a line to `log` each time it runs, answers
/// `--version`, and otherwise does `body` (a shell fragment).
fn fake_tool(dir: &Path, log: &Path, body: &str) -> PathBuf {
    let tool = dir.join("componentize-py");
    std::fs::write(
        &tool,
        format!(
            "#!/bin/sh\necho \"$$ $*\" >> {}\nif [ \"$1\" = --version ]; then echo 'componentize-py 0.25.1'; exit 0; fi\n{body}\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    tool
}

fn run_with_tool(dir: &Path, tool: &Path, args: &[&str]) -> Output {
    pymanager(&[])
        .args(args)
        .current_dir(dir)
        .env("PYMANAGER_COMPONENTIZE_PY", tool)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .unwrap()
}

#[test]
fn check_runs_no_code_of_a_python_module() {
    let dir = config_dir(&json!({
        "modules": {"checks": {"verifiers": ["Up"]}},
        "processes": {"a": {"executable": "true", "arguments": [],
                            "verifier": {"type": "checks.Up", "arguments": {"any": 1}}}}
    }));
    std::fs::write(dir.path().join("checks.py"), USERS_MODULE).unwrap();
    let log = dir.path().join("tool.log");
    let tool = fake_tool(dir.path(), &log, "exit 1");
    let o = run_with_tool(dir.path(), &tool, &["check"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("[WARNING] modules.checks: Python module")
            && err.contains("checks.py is built with componentize-py when pymanager starts"),
        "{err}"
    );
    assert!(
        !log.exists(),
        "check ran the tool: {:?}",
        std::fs::read_to_string(&log)
    );
    // Nor is a missing tool run to find out: it is looked for.
    let o = pymanager(&[])
        .arg("check")
        .current_dir(dir.path())
        .env("PYMANAGER_COMPONENTIZE_PY", dir.path().join("missing"))
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("pip install componentize-py==0.25.1"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_build_that_hangs_is_stopped_with_its_process_group_at_its_time_limit() {
    let dir = config_dir(&json!({
        "modules": {"checks": {"verifiers": ["Up"], "limits": {"build_s": 2}}},
        "processes": {"a": {"executable": "sh", "arguments": ["-c", "echo ran > ran.txt"],
                            "verifier": {"type": "checks.Up"}}}
    }));
    std::fs::write(dir.path().join("checks.py"), USERS_MODULE).unwrap();
    let log = dir.path().join("tool.log");
    let pids = dir.path().join("pids");
    // Hangs, with a helper process of its own in its group.
    let tool = fake_tool(
        dir.path(),
        &log,
        &format!("sleep 1000 & echo $! > {}; wait", pids.display()),
    );
    let (code, err) = run_within(
        pymanager(&[])
            .current_dir(dir.path())
            .env("PYMANAGER_COMPONENTIZE_PY", &tool)
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env("NO_COLOR", "1"),
        WAIT,
    );
    assert_eq!(code, Some(5), "{err}");
    assert!(
        err.contains(
            "did not finish within 2 s (modules.checks.limits.build_s), so it was stopped"
        ),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let tool_pids: Vec<i32> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .chain(read_pids(&pids))
        .collect();
    assert!(tool_pids.len() >= 3, "{tool_pids:?}");
    wait_all_gone(&tool_pids, WAIT).expect("the build's processes are gone");
    assert!(!dir.path().join("ran.txt").exists(), "a process ran");
}
