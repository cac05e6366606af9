//! Configs written for the original pymanager 0.2.6.1 run here unchanged. Each test runs a
//! config that the original runs (checked side by side with it), and asserts what the
//! original did with it, in the words this build uses.

mod common;

use common::{Manager, config_dir, serve_status, sh};
use serde_json::json;

/// With `working_directory`, a relative executable is found inside that directory (the
/// original ran it there, as Python's subprocess does) and, failing that, in the launch
/// directory (what the original's description says).
#[test]
fn a_relative_executable_is_found_in_the_working_directory_then_the_launch_directory() {
    let dir = config_dir(&json!({
        "processes": {
            "inside": {
                "executable": "./run.sh",
                "arguments": [],
                "options": {"working_directory": "sub"},
                "verifier": {"type": "pymutils.exited_verifier.ExitedVerifier"}
            },
            "beside": {
                "executable": "./launch.sh",
                "arguments": [],
                "options": {"working_directory": "sub"},
                "verifier": {"type": "pymutils.exited_verifier.ExitedVerifier"}
            }
        },
        "modules": {"pymutils.exited_verifier": {"verifiers": ["ExitedVerifier"]}}
    }));
    let script = |path: &std::path::Path, text: &str| {
        std::fs::write(path, format!("#!/bin/sh\necho \"{text} in $(pwd)\"\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    script(&dir.path().join("sub/run.sh"), "inside");
    script(&dir.path().join("launch.sh"), "beside");
    let sub = dir.path().join("sub").canonicalize().unwrap();
    let mut m = Manager::start_in(dir, &[]);
    assert_eq!(m.wait_exit(), 0, "{}", m.output());
    let out = m.output();
    assert!(
        out.contains(&format!("inside in {}", sub.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("beside in {}", sub.display())),
        "{out}"
    );
}

/// The original passed a verifier's arguments as keyword arguments and its verifiers read
/// only the ones they knew: an unknown one is a warning here, not an error.
#[test]
fn an_unknown_verifier_argument_is_warned_and_the_config_runs() {
    let mut m = Manager::start(json!({
        "modules": {"pymutils.exited_verifier": {"verifiers": ["ExitedVerifier"]}},
        "processes": {"a": {
            "executable": "true", "arguments": [],
            "verifier": {"type": "pymutils.exited_verifier.ExitedVerifier",
                         "arguments": {"expect_code": 0, "description": "x"}}
        }}
    }));
    assert_eq!(m.wait_exit(), 0, "{}", m.output());
    let out = m.output();
    assert!(
        out.contains(
            "[WARNING] processes.a.verifier.arguments.description: unknown argument, ignored"
        ),
        "{out}"
    );
}

/// `"messages": "process.exit"` (a string: the original tested it with `in`) and
/// ExitedVerifier's `"timeout": null` (`proc.wait(None)`: no limit) ran on the original.
#[test]
fn a_messages_string_and_a_null_timeout_run_as_on_the_original() {
    let mut m = Manager::start(json!({
        "messages": "process.exit",
        "modules": {"pymutils.exited_verifier": {"verifiers": ["ExitedVerifier"]}},
        "processes": {"a": {
            "executable": "sh", "arguments": ["-c", "exit 0"],
            "verifier": {"type": "pymutils.exited_verifier.ExitedVerifier",
                         "arguments": {"timeout": null}}
        }}
    }));
    assert_eq!(m.wait_exit(), 0, "{}", m.output());
    let out = m.output();
    assert!(
        out.contains("Process sh -c exit 0 exited with code 0"),
        "{out}"
    );
}

/// The original imported the module named under `modules` and took the verifier classes
/// from it: the `pymutils` package itself offers every built-in verifier.
#[test]
fn the_pymutils_package_provides_its_verifiers_by_their_names() {
    let mut m = Manager::start(json!({
        "modules": {"pymutils": {"verifiers": ["ExitedVerifier"]}},
        "processes": {"a": {
            "executable": "true", "arguments": [],
            "verifier": {"type": "pymutils.ExitedVerifier"}
        }}
    }));
    assert_eq!(m.wait_exit(), 0, "{}", m.output());
    assert!(!m.output().contains("[ERROR]"), "{}", m.output());
}

/// Both spellings in one config run (the original read only `keep_alive`, which wins);
/// a disagreement between them is warned.
#[test]
fn both_keep_alive_spellings_run_and_keep_alive_wins_a_disagreement() {
    let mut m = Manager::start(json!({
        "keep-alive": true,
        "keep_alive": false,
        "processes": {"a": sh("exit 0")}
    }));
    // keep_alive false: the manager ends with its only process.
    assert_eq!(m.wait_exit(), 0, "{}", m.output());
    let out = m.output();
    assert!(
        out.contains("[WARNING] keep-alive is true but keep_alive is false: keep_alive wins"),
        "{out}"
    );
}

/// A prompt without a newline reached the terminal at once on the original (the process
/// wrote to it directly); here it is shown after a short pause, and the rest of its line
/// follows on a line of its own when it comes.
#[test]
fn a_partial_line_is_shown_without_waiting_for_its_newline() {
    let fifo_dir = tempfile::tempdir().unwrap();
    let go = fifo_dir.path().join("go");
    let status = std::process::Command::new("mkfifo")
        .arg(&go)
        .status()
        .unwrap();
    assert!(status.success());
    let m = Manager::start(json!({
        "keep_alive": true,
        "processes": {"prompt": sh(&format!(
            "printf 'name? '; read answer < '{}'; echo \"hello $answer\"; sleep 60",
            go.display()
        ))}
    }));
    assert!(m.wait_output("prompt | name? "), "{}", m.output());
    // The process is still blocked on its fifo: the prompt was shown before its newline.
    std::fs::write(&go, "world\n").unwrap();
    assert!(m.wait_output("hello world"), "{}", m.output());
    let out = m.output();
    assert!(out.contains("prompt | name? \n"), "{out}");
    assert!(out.contains("prompt | hello world\n"), "{out}");
}

/// `verifier.verbose` announces each connection attempt, as the original's
/// `Verifier: Attempting connection to … with a timeout of …` lines did.
#[test]
fn verifier_verbose_announces_each_attempt() {
    let port = serve_status("200 OK");
    let url = format!("http://127.0.0.1:{port}/");
    let m = Manager::start(json!({
        "messages": ["verifier.verbose"],
        "keep_alive": true,
        "http": {"enabled": true},
        "modules": {"pymutils.http_verifier": {"verifiers": ["HttpOkVerifier"]}},
        "processes": {"web": {
            "executable": "sleep", "arguments": ["60"],
            // The test serves the port, not `web`: the ownership check is off.
            "verifier": {"type": "pymutils.http_verifier.HttpOkVerifier",
                         "arguments": {"url": url, "check_owner": false}}
        }}
    }));
    m.wait_status("running");
    let out = m.output();
    assert!(
        out.contains(&format!(
            "Verifier (web): Attempting connection to {url} with a timeout of"
        )),
        "{out}"
    );
}
