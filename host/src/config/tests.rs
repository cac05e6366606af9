use std::path::Path;

use super::*;

fn parse_str(s: &str) -> Result<Loaded, ConfigError> {
    parse(s.as_bytes(), Path::new("pymanager.json"))
}

fn invalid(s: &str) -> (String, String) {
    match parse_str(s) {
        Err(ConfigError::Invalid { path, reason }) => (path, reason),
        other => panic!("expected an invalid-config error, got {other:?}"),
    }
}

#[test]
fn the_seed_example_loads_with_defaults() {
    let l = parse_str(
        r#"{"modules": {"pymutils.http_verifier": {"verifiers": ["HttpOkVerifier"]}},
            "http": {"enabled": true, "port": 5001}, "keep-alive": true,
            "processes": {"test": {"executable": "python3", "arguments": ["test.py", "-v"],
              "options": {"suppress_output": false},
              "verifier": {"type": "pymutils.http_verifier.HttpOkVerifier",
                           "arguments": {"url": "http://127.0.0.1:1"}}}}}"#,
    )
    .unwrap();
    let c = l.config;
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert!(c.keep_alive && c.http.enabled);
    assert_eq!(c.http.host, "127.0.0.1");
    assert_eq!(c.graceful_time, Duration::from_secs(10));
    assert_eq!(c.default_shell, StringOrBool::Bool(true));
    let p = &c.processes["test"];
    assert_eq!(p.arguments, ["test.py", "-v"]);
    assert_eq!(
        p.verifier.as_ref().unwrap().arguments["url"],
        "http://127.0.0.1:1"
    );
}

#[test]
fn both_keep_alive_spellings_work() {
    for key in ["keep-alive", "keep_alive"] {
        let c = parse_str(&format!(
            r#"{{"{key}": true, "processes": {{"a": {{"executable": "true", "arguments": []}}}}}}"#
        ))
        .unwrap()
        .config;
        assert!(c.keep_alive, "{key}");
    }
}

#[test]
fn both_keep_alive_spellings_together_are_read_as_the_original_read_them() {
    let with = |hyphen: bool, underscore: bool| {
        parse_str(&format!(
            r#"{{"keep-alive": {hyphen}, "keep_alive": {underscore},
                "processes": {{"a": {{"executable": "true", "arguments": []}}}}}}"#
        ))
        .unwrap()
    };
    let l = with(true, true);
    assert!(l.config.keep_alive);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    // The original reads only keep_alive, so that is what a config that ran there meant.
    let l = with(true, false);
    assert!(!l.config.keep_alive);
    assert_eq!(
        l.warnings,
        [
            "[WARNING] keep-alive is true but keep_alive is false: keep_alive wins (the original \
          pymanager reads only keep_alive); remove one of them."
        ]
    );
    assert!(with(false, true).config.keep_alive);
}

#[test]
fn exit_codes_follow_the_original() {
    assert_eq!(parse_str("{").unwrap_err().exit_code(), 3);
    assert_eq!(
        parse_str(r#"{"processes": {}}"#).unwrap_err().exit_code(),
        4
    );
    assert_eq!(parse_str("{}").unwrap_err().exit_code(), 4);
    assert_eq!(
        parse_str(r#"{"processes": {"a": {}}}"#)
            .unwrap_err()
            .exit_code(),
        5
    );
    let missing = load(Path::new("/nonexistent/pymanager.json")).unwrap_err();
    assert_eq!(missing.exit_code(), 1);
    assert_eq!(
        missing.to_string(),
        "Cannot find file /nonexistent/pymanager.json."
    );
    let dir = load(Path::new("/")).unwrap_err();
    assert_eq!(dir.exit_code(), 2, "{dir}");
}

#[test]
fn json_errors_give_line_and_column() {
    let e = parse_str("{\n  \"processes\": {,\n}").unwrap_err();
    let ConfigError::InvalidJson { line, column, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!((*line, *column), (2, 17));
    assert!(e.to_string().contains("line 2, column 17"), "{e}");
}

#[test]
fn errors_name_the_field_path() {
    let (path, reason) = invalid(r#"{"processes": {"web": {"executable": "x"}}}"#);
    assert_eq!(path, "processes.web");
    assert!(reason.contains("missing field \"arguments\""), "{reason}");

    let (path, reason) = invalid(
        r#"{"processes": {"web": {"executable": "x", "arguments": [], "options": {"shell": 3}}}}"#,
    );
    assert_eq!(path, "processes.web.options.shell");
    assert!(reason.contains("found the number 3"), "{reason}");

    let (path, reason) = invalid(
        r#"{"http": {"port": "x"}, "processes": {"a": {"executable": "x", "arguments": []}}}"#,
    );
    assert_eq!(path, "http.port");
    assert!(reason.starts_with("expected a port number"), "{reason}");

    let (path, _) = invalid(r#"{"processes": {"a": {"executable": "x", "arguments": "-v"}}}"#);
    assert_eq!(path, "processes.a.arguments");

    let (path, _) = invalid(r#"{"processes": {"a": {"executable": "x", "arguments": [[1]]}}}"#);
    assert_eq!(path, "processes.a.arguments");
}

#[test]
fn suppress_and_redirect_together_are_refused_at_load() {
    let (path, reason) = invalid(
        r#"{"processes": {"a": {"executable": "x", "arguments": [],
            "options": {"suppress_output": true, "redirect_output": "out.log"}}}}"#,
    );
    assert_eq!(path, "processes.a.options");
    assert!(reason.contains("mutually exclusive"));
}

#[test]
fn unknown_keys_are_warnings() {
    let l = parse_str(
        r#"{"keep_alvie": true, "messages": ["process.exit", "proces.exit"],
            "processes": {"a": {"executable": "x", "arguments": [], "optoins": {}}}}"#,
    )
    .unwrap();
    let w = l.warnings.join("\n");
    assert!(w.contains("keep_alvie"), "{w}");
    assert!(w.contains("processes.a.optoins"), "{w}");
    assert!(w.contains("proces.exit"), "{w}");
    assert!(l.config.messages().process_exit);
}

#[test]
fn loose_values_of_the_original_are_accepted() {
    let c = parse_str(
        r#"{"graceful_time": "2", "default_shell": "bash", "messages": ["verifier.verbose"],
            "processes": {"a": {"executable": "x", "arguments": [1, true],
              "options": {"shell": "zsh", "suppress_output": 1}}}}"#,
    )
    .unwrap()
    .config;
    assert_eq!(c.graceful_time, Duration::from_secs(2));
    assert_eq!(c.default_shell, StringOrBool::String("bash".into()));
    assert_eq!(c.processes["a"].arguments, ["1", "true"]);
    assert_eq!(
        c.processes["a"].options.shell,
        ShellChoice::Named("zsh".into())
    );
    assert!(c.processes["a"].options.suppress_output);
    let m = c.messages();
    assert!(m.verifier_verbose && m.verifier_fail && !m.process_exit);
}

#[test]
fn more_loose_values_configs_of_the_original_use() {
    let l = parse_str(
        r#"{"messages": "process.exit", "graceful_time": -1, "keep_alive": 2,
            "http": {"enabled": "yes", "port": " 5002 "},
            "processes": {"a": {"executable": "x", "arguments": [],
              "verifier": {"type": "exited", "arguments": null}}}}"#,
    )
    .unwrap();
    let c = &l.config;
    assert!(c.messages().process_exit && !c.messages().verifier_fail);
    assert_eq!(c.graceful_time, Duration::from_secs(10));
    assert_eq!(
        l.warnings,
        ["[WARNING] invalid graceful_time '-1', must be a positive number; using 10 s."]
    );
    assert!(c.keep_alive && c.http.enabled);
    assert_eq!(c.http.port, 5002);
    let v = c.processes["a"].verifier.as_ref().unwrap();
    assert_eq!(v.arguments, serde_json::json!({}));

    // A string names every message type written in it; one naming none is warned about.
    let c = parse_str(
        r#"{"messages": "verifier.fail,process.exit", "processes": {"a": {"executable": "x", "arguments": []}}}"#,
    )
    .unwrap()
    .config;
    let m = c.messages();
    assert!(m.process_exit && m.verifier_fail && !m.verifier_verbose);
    let l = parse_str(
        r#"{"messages": "everything", "processes": {"a": {"executable": "x", "arguments": []}}}"#,
    )
    .unwrap();
    assert!(
        l.warnings[0].contains("unknown message type \"everything\""),
        "{:?}",
        l.warnings
    );
    let c = parse_str(
        r#"{"messages": null, "processes": {"a": {"executable": "x", "arguments": []}}}"#,
    )
    .unwrap()
    .config;
    assert_eq!(c.messages(), Messages::default());

    // Flags: Python's truth, except strings no config means as true.
    for (flag, want) in [
        ("0", false),
        ("0.5", true),
        (r#""off""#, false),
        (r#""""#, false),
    ] {
        let c = parse_str(&format!(
            r#"{{"keep_alive": {flag}, "processes": {{"a": {{"executable": "x", "arguments": []}}}}}}"#
        ))
        .unwrap()
        .config;
        assert_eq!(c.keep_alive, want, "{flag}");
    }
    let (path, reason) = invalid(
        r#"{"keep_alive": "maybe", "processes": {"a": {"executable": "x", "arguments": []}}}"#,
    );
    assert_eq!(path, "keep_alive");
    assert!(reason.contains("expected true or false"), "{reason}");
    let (path, _) = invalid(
        r#"{"graceful_time": "soon", "processes": {"a": {"executable": "x", "arguments": []}}}"#,
    );
    assert_eq!(path, "graceful_time");
}

#[test]
fn processes_keep_config_order() {
    let c = parse_str(
        r#"{"processes": {"z": {"executable": "x", "arguments": []},
                          "a": {"executable": "x", "arguments": []},
                          "m": {"executable": "x", "arguments": []}}}"#,
    )
    .unwrap()
    .config;
    assert_eq!(c.processes.keys().collect::<Vec<_>>(), ["z", "a", "m"]);
}

#[test]
fn hostile_shapes_give_errors_not_panics() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(parse_str(&deep).unwrap_err().exit_code(), 3);
    for s in [
        "[]",
        "null",
        "1",
        r#"{"processes": []}"#,
        r#"{"processes": {"a": null}}"#,
        r#"{"processes": {"a": {"executable": 1, "arguments": []}}}"#,
        r#"{"processes": {"a": {"executable": "", "arguments": []}}}"#,
        r#"{"processes": {"a": {"executable": "x", "arguments": [], "verifier": {}}}}"#,
        r#"{"processes": {"a": {"executable": "x", "arguments": [], "verifier": {"type": "http", "arguments": []}}}}"#,
        r#"{"modules": [], "processes": {"a": {"executable": "x", "arguments": []}}}"#,
    ] {
        let e = parse_str(s).unwrap_err();
        assert_eq!(e.exit_code(), 5, "{s}: {e}");
    }
}

#[test]
fn names_with_control_characters_still_give_one_line_errors() {
    let e = parse_str(r#"{"processes": {"we\nb": {"executable": "x"}}}"#).unwrap_err();
    let text = e.to_string();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("processes.we\\nb"), "{text}");
    let l = parse_str(r#"{"ke\ny": 1, "processes": {"a": {"executable": "x", "arguments": []}}}"#)
        .unwrap();
    assert!(
        l.warnings.iter().all(|w| w.lines().count() == 1),
        "{:?}",
        l.warnings
    );
}
