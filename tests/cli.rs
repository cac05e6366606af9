//! End-to-end tests of the command line: flags, config errors and exit codes.
mod common;

use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::json;

fn run(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run pymanager")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn version_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["-V"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).starts_with("pymanager "), "{}", text(&o));
    let o = run(dir.path(), &["--help"]);
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
    let o = run(d, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("Cannot find file pymanager.json."),
        "{}",
        text(&o)
    );
    // 2: cannot be read (a directory).
    std::fs::create_dir(d.join("dir.json")).unwrap();
    let o = run(d, &["-f", "dir.json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("Error while loading file dir.json"),
        "{}",
        text(&o)
    );
    // 3: not JSON, with line and column.
    std::fs::write(d.join("bad.json"), "{\n  \"processes\": ,\n}").unwrap();
    let o = run(d, &["-f", "bad.json"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        text(&o).contains("bad.json is not a valid JSON file"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("line 2, column 16"), "{}", text(&o));
    // 4: no processes.
    std::fs::write(d.join("empty.json"), r#"{"processes": {}}"#).unwrap();
    let o = run(d, &["-f", "empty.json"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(text(&o).contains("No processes listed"), "{}", text(&o));
    // 5: a field of the wrong type, named by its path.
    std::fs::write(
        d.join("typed.json"),
        r#"{"processes": {"web": {"executable": "true", "arguments": [], "options": {"shell": 7}}}}"#,
    )
    .unwrap();
    let o = run(d, &["-f", "typed.json"]);
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
    let o = run(dir.path(), &["-f", "pymanager.json"]);
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
    let mut m = Manager::start_in(dir, &[]);
    assert_eq!(m.wait_exit(), 5);
    let out = m.output();
    assert!(out.contains("processes.broken"), "{out}");
    assert!(out.contains("no-such-program-here"), "{out}");
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
    let o = run(dir.path(), &["check", "-f", "pymanager.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("ok (1 processes"), "{}", text(&o));
    assert!(!dir.path().join("ran.txt").exists());

    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"processes": {"a": {"executable": "x"}}}"#,
    )
    .unwrap();
    let o = run(dir.path(), &["check", "-f", "bad.json"]);
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
    let o = run(dir.path(), &["-f", "env.json", "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("env.json: ok"), "{}", text(&o));
    // ctl finds the manager of env.json (none runs: exit 2, naming where it looked).
    let o = run(dir.path(), &["-f", "env.json", "ctl", "status"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
