use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::verifiers::under;
use super::*;
use crate::runtime::ModuleSource;

/// The plan of `config` (a JSON value) read from `dir`, and the warnings on the way.
fn plan_in(dir: &Path, config: serde_json::Value) -> Result<(Plan, Vec<String>), ConfigError> {
    let mut loaded = crate::config::parse(config.to_string().as_bytes(), Path::new("p.json"))?;
    loaded.dir = dir.to_path_buf();
    let mut warnings = loaded.warnings.clone();
    build(&loaded, EnvFiles::Source, &mut warnings).map(|p| (p, warnings))
}

fn plan(config: serde_json::Value) -> Result<(Plan, Vec<String>), ConfigError> {
    plan_in(Path::new("."), config)
}

fn invalid(config: serde_json::Value) -> (String, String) {
    match plan(config) {
        Err(ConfigError::Invalid { path, reason }) => (path, reason),
        other => panic!("expected an invalid-config error, got {other:?}"),
    }
}

fn with_verifier(kind: &str) -> serde_json::Value {
    json!({"processes": {"a": {"executable": "true", "arguments": [],
        "verifier": {"type": kind}}}})
}

fn target(p: &Plan, i: usize) -> (String, String) {
    let v = p.processes[i].verifier.as_ref().expect("a verifier");
    (v.target.module.clone(), v.target.name.clone())
}

#[test]
fn processes_keep_their_order_ids_and_command_lines() {
    let (p, warnings) = plan(json!({
        "keep_alive": true, "graceful_time": "2.5", "messages": ["process.exit"],
        "default_shell": "/bin/sh",
        "processes": {
            "z": {"executable": "echo", "arguments": ["a b", "c"]},
            "y": {"executable": "echo", "arguments": ["$HOME"], "options": {"shell": true}},
            "x": {"executable": "echo", "arguments": [], "options": {"shell": "bash"}}
        }
    }))
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let names: Vec<_> = p.processes.iter().map(|s| (s.id, &*s.name)).collect();
    assert_eq!(names, [(1, "z"), (2, "y"), (3, "x")]);
    let z = &p.processes[0];
    assert_eq!(z.command, "echo a b c");
    assert_eq!((z.program.as_os_str(), z.args.len()), ("echo".as_ref(), 2));
    assert_eq!(z.args[0], "a b");
    let y = &p.processes[1];
    assert_eq!(y.program, "/bin/sh");
    assert_eq!(y.args, ["-c", "echo $HOME"]);
    assert_eq!(p.processes[2].program, "bash");
    assert!(p.keep_alive);
    // The global graceful_time is each process's at shutdown; a user's stop gives 5 s.
    let stop = p.processes[0].orchestration.stop;
    assert_eq!(stop.shutdown_grace, Duration::from_millis(2500));
    assert_eq!(stop.grace, Duration::from_secs(5));
    assert_eq!(stop.signal, nix::sys::signal::Signal::SIGTERM);
    assert!(p.messages.process_exit && !p.messages.verifier_fail);
    assert!(p.modules.is_empty());
}

#[test]
fn a_processs_own_graceful_time_is_its_grace_for_every_stop() {
    use crate::plan::StopRule;
    use nix::sys::signal::Signal;
    let (p, _) = plan(json!({"graceful_time": 7, "processes": {
        "own": {"executable": "true", "arguments": [], "graceful_time": 2, "stop_signal": "SIGINT"},
        "global": {"executable": "true", "arguments": []}}}))
    .unwrap();
    let secs = Duration::from_secs;
    assert_eq!(
        p.processes[0].orchestration.stop,
        StopRule {
            signal: Signal::SIGINT,
            grace: secs(2),
            shutdown_grace: secs(2)
        }
    );
    assert_eq!(
        p.processes[1].orchestration.stop,
        StopRule {
            signal: Signal::SIGTERM,
            grace: secs(5),
            shutdown_grace: secs(7)
        }
    );
}

#[test]
fn a_relative_executable_is_found_in_the_working_directory_then_the_launch_directory() {
    let launch = tempfile::tempdir().unwrap();
    let wd = launch.path().join("wd");
    std::fs::create_dir(&wd).unwrap();
    std::fs::write(wd.join("inside.sh"), "").unwrap();
    std::fs::write(launch.path().join("outside.sh"), "").unwrap();
    std::fs::write(wd.join("both.sh"), "").unwrap();
    std::fs::write(launch.path().join("both.sh"), "").unwrap();
    let find = |exe: &str, workdir: Option<&Path>| find_executable(exe, workdir, launch.path());

    assert_eq!(find("./inside.sh", Some(&wd)), wd.join("./inside.sh"));
    assert_eq!(
        find("./outside.sh", Some(&wd)),
        launch.path().join("./outside.sh")
    );
    assert_eq!(find("./both.sh", Some(&wd)), wd.join("./both.sh"));
    // In neither place yet (an earlier process may create it): where the original looked.
    assert_eq!(find("./later.sh", Some(&wd)), wd.join("./later.sh"));
    assert_eq!(
        find("./outside.sh", None),
        launch.path().join("./outside.sh")
    );
    // Bare names go through PATH; absolute paths stay as they are.
    assert_eq!(find("python3", Some(&wd)), "python3");
    assert_eq!(find("/bin/true", Some(&wd)), "/bin/true");
}

#[test]
fn verifier_types_resolve_to_the_builtin_modules_under_any_name_the_original_took() {
    let (p, warnings) = plan(json!({
        "modules": {"pymutils": {"verifiers": ["ExitedVerifier", "HttpOkVerifier"]},
                    "pymutils.http_verifier": {"verifiers": ["HttpOkVerifier"]}},
        "processes": {
            "a": {"executable": "true", "arguments": [],
                  "verifier": {"type": "pymutils.ExitedVerifier"}},
            "b": {"executable": "true", "arguments": [],
                  "verifier": {"type": "pymutils.http_verifier.HttpOkVerifier",
                               "arguments": {"url": "http://127.0.0.1:1/"}}},
            "c": {"executable": "true", "arguments": [],
                  "verifier": {"type": "pymutils.http_verifier.ExitedVerifier"}},
            "d": {"executable": "true", "arguments": [], "verifier": {"type": "tcp"}},
            "e": {"executable": "true", "arguments": [],
                  "verifier": {"type": "  HttpOkVerifier "}}
        }
    }))
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let exited = ("pymutils.exited_verifier".into(), "ExitedVerifier".into());
    let http = ("pymutils.http_verifier".into(), "HttpOkVerifier".into());
    assert_eq!(target(&p, 0), exited);
    assert_eq!(target(&p, 1), http);
    assert_eq!(target(&p, 2), exited);
    assert_eq!(
        target(&p, 3),
        ("pymanager.tcp_verifier".into(), "TcpPortVerifier".into())
    );
    assert_eq!(target(&p, 4), http);
    assert_eq!(
        p.processes[1].verifier.as_ref().unwrap().args_json,
        r#"{"url":"http://127.0.0.1:1/"}"#
    );
    // Each built-in module is loaded once, in the order first used.
    let aliases: Vec<_> = p.modules.iter().map(|m| m.alias.as_str()).collect();
    assert_eq!(
        aliases,
        [
            "pymutils.exited_verifier",
            "pymutils.http_verifier",
            "pymanager.tcp_verifier"
        ]
    );
}

#[test]
fn unknown_verifiers_are_refused_at_the_type() {
    let (path, reason) = invalid(with_verifier("Nope"));
    assert_eq!(path, "processes.a.verifier.type");
    assert!(reason.starts_with("unknown verifier \"Nope\""), "{reason}");
    let (_, reason) = invalid(with_verifier("mine.Nope"));
    assert!(reason.starts_with("unknown module \"mine\""), "{reason}");
    let (_, reason) = invalid(with_verifier("pymutils.TcpPortVerifier"));
    assert_eq!(
        reason,
        "module pymutils has no verifier \"TcpPortVerifier\" (it provides HttpOkVerifier, ExitedVerifier)"
    );
}

#[test]
fn a_module_entry_that_names_nothing_is_an_error() {
    let (p, warnings) = plan(json!({
        "modules": {"pymutils": {"verifiers": ["ExitedVerifier", "Nope"]}},
        "processes": {"a": {"executable": "true", "arguments": []}}
    }))
    .unwrap();
    assert!(p.modules.is_empty());
    assert_eq!(
        warnings,
        [
            "[WARNING] module pymutils has no verifier Nope (it provides HttpOkVerifier, ExitedVerifier)."
        ]
    );
    // A module that cannot be found could be planted later: it is an error, not a warning.
    let (path, reason) = invalid(json!({
        "modules": {"mine": {}},
        "processes": {"a": {"executable": "true", "arguments": []}}
    }));
    assert_eq!(path, "modules.mine");
    assert!(
        reason.starts_with("no module mine: it is not built in"),
        "{reason}"
    );
}

#[test]
fn external_modules_are_found_beside_the_config_with_their_grants_and_limits() {
    let (p, _) = plan_in(
        Path::new("/cfg"),
        json!({
            "modules": {"mine": {"path": "v/mine.wasm", "allow": {"hosts": ["db:5432", "[::1]:8080"]},
                                 "limits": {"memory_mb": 8, "cpu_ms": 10, "timeout_s": 2}}},
            "processes": {"a": {"executable": "true", "arguments": [],
                                "verifier": {"type": "mine.Check"}}}
        }),
    )
    .unwrap();
    let m = &p.modules[0];
    assert_eq!(m.alias, "mine");
    assert!(matches!(&m.source, ModuleSource::File(f) if f == Path::new("/cfg/v/mine.wasm")));
    assert!(m.grants.hosts.allows("db", 5432) && m.grants.hosts.allows("::1", 8080));
    assert!(!m.grants.hosts.allows("db", 5433) && !m.grants.hosts.allows("x", 1));
    assert_eq!(m.limits.memory_bytes, 8 << 20);
    assert_eq!(m.limits.cpu_time, Duration::from_millis(10));
    assert_eq!(m.limits.call_timeout, Some(Duration::from_secs(2)));
    assert_eq!(target(&p, 0), ("mine".into(), "Check".into()));

    let (path, _) = invalid(json!({
        "modules": {"mine": {"path": "m.wasm", "allow": {"hosts": ["ok:80", "db:http"]}}},
        "processes": {"a": {"executable": "true", "arguments": []}}
    }));
    assert_eq!(path, "modules.mine.allow.hosts.1");
    // A grant names a port: a bare host or a wildcard is refused.
    for bare in ["db", "*"] {
        let (path, _) = invalid(json!({
            "modules": {"mine": {"path": "m.wasm", "allow": {"hosts": ["ok:80", bare]}}},
            "processes": {"a": {"executable": "true", "arguments": []}}
        }));
        assert_eq!(path, "modules.mine.allow.hosts.1");
    }
    let (p, _) = plan_in(
        Path::new("/cfg"),
        json!({
            "modules": {"mine": {"path": "m.wasm"}},
            "processes": {"a": {"executable": "true", "arguments": []}}
        }),
    )
    .unwrap();
    assert!(
        !p.modules[0].grants.hosts.allows("127.0.0.1", 80),
        "nothing by default"
    );
    let (path, _) = invalid(json!({
        "modules": {"mine": {"path": "m.wasm", "limits": {"cpu_ms": 0}}},
        "processes": {"a": {"executable": "true", "arguments": []}}
    }));
    assert_eq!(path, "modules.mine.limits");
}

#[test]
fn output_goes_where_the_options_say() {
    let (p, _) = plan(json!({"processes": {
        "a": {"executable": "true", "arguments": []},
        "b": {"executable": "true", "arguments": [], "options": {"suppress_output": true}},
        "c": {"executable": "true", "arguments": [], "options": {"redirect_output": "c.log"}}
    }}))
    .unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(p.processes[0].output, OutputMode::Console);
    assert_eq!(p.processes[1].output, OutputMode::Suppress);
    assert_eq!(p.processes[2].output, OutputMode::File(cwd.join("c.log")));
}

#[test]
fn an_environment_file_is_sourced_into_the_whole_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("env.sh");
    std::fs::write(
        &file,
        "export GREETING='hello world'\nMULTI='a\nb'; export MULTI\n",
    )
    .unwrap();
    let (p, _) = plan(json!({"default_shell": "/bin/sh", "processes": {
        "a": {"executable": "true", "arguments": [], "options": {"environment_file": file}}
    }}))
    .unwrap();
    let env = p.processes[0].env.as_ref().expect("an environment");
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("GREETING").unwrap(), "hello world");
    assert_eq!(get("MULTI").unwrap(), "a\nb");

    let (path, reason) = invalid(json!({"processes": {
        "a": {"executable": "true", "arguments": [],
              "options": {"environment_file": dir.path().join("missing.sh")}}
    }}));
    assert_eq!(path, "processes.a.options.environment_file");
    assert!(reason.contains("no such file"), "{reason}");
}

#[test]
fn verifier_messages_are_placed_under_the_field_they_name() {
    let at = "processes.web.verifier.arguments";
    assert_eq!(
        under(at, "url: missing field"),
        (format!("{at}.url"), "missing field".into())
    );
    assert_eq!(
        under(at, "headers.x-token: expected a string"),
        (format!("{at}.headers.x-token"), "expected a string".into())
    );
    for whole in [
        "arguments: expected an object",
        "verifier x.Y crashed: unreachable",
        "no colon here",
        ": empty field",
    ] {
        assert_eq!(under(at, whole), (at.to_string(), whole.to_string()));
    }
}
