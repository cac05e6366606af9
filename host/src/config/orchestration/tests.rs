//! The orchestration keys: their forms, their defaults, and one clear error each.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::super::{ConfigError, Loaded, parse};
use super::*;

fn load(v: Value) -> Result<Loaded, ConfigError> {
    parse(v.to_string().as_bytes(), Path::new("pymanager.json"))
}

/// The error's field path and reason.
fn invalid(v: Value) -> (String, String) {
    match load(v) {
        Err(ConfigError::Invalid { path, reason }) => (path, reason),
        other => panic!("expected an invalid-config error, got {other:?}"),
    }
}

fn p() -> Value {
    json!({"executable": "true", "arguments": []})
}

fn with(extra: Value) -> Value {
    let mut p = p();
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

#[test]
fn without_the_new_keys_a_config_means_what_it_meant() {
    let l = load(json!({"processes": {"a": p()}})).unwrap();
    assert_eq!(l.config.startup, Startup::Ordered);
    let a = &l.config.processes["a"];
    assert!(a.depends_on.0.is_empty());
    assert_eq!(a.restart, RestartConfig::default());
    assert_eq!(a.restart.policy, Policy::Never);
    assert!(a.liveness.is_none());
    assert_eq!(a.stop_signal, StopSignal::default());
    assert_eq!(a.graceful_time, None);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn depends_on_is_a_list_of_names_or_names_with_conditions() {
    let l = load(json!({"startup": "parallel", "processes": {
        "db": p(), "migrate": with(json!({"depends_on": ["db"]})),
        "api": with(json!({"depends_on": {"db": "started", "migrate": "exited_ok"}})),
        "cleanup": with(json!({"depends_on": {"api": "exited"}}))}}))
    .unwrap();
    let c = &l.config;
    assert_eq!(c.startup, Startup::Parallel);
    assert_eq!(
        c.processes["migrate"].depends_on.0["db"],
        Condition::Verified
    );
    let api = &c.processes["api"].depends_on.0;
    assert_eq!(
        api.iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        [("db", Condition::Started), ("migrate", Condition::ExitedOk)]
    );
    assert_eq!(
        c.processes["cleanup"].depends_on.0["api"],
        Condition::Exited
    );
}

#[test]
fn a_bad_graph_is_named_with_its_field_path() {
    let parallel = |procs: Value| json!({"startup": "parallel", "processes": procs});
    assert_eq!(
        invalid(parallel(
            json!({"api": with(json!({"depends_on": ["dbx"]})), "db": p()})
        )),
        (
            "processes.api.depends_on.dbx".into(),
            "no process is named \"dbx\" (there are: api, db)".into()
        )
    );
    assert_eq!(
        invalid(parallel(
            json!({"api": with(json!({"depends_on": ["api"]}))})
        )),
        (
            "processes.api.depends_on.api".into(),
            "a process cannot depend on itself".into()
        )
    );
    assert_eq!(
        invalid(parallel(json!({
            "web": with(json!({"depends_on": ["api"]})),
            "api": with(json!({"depends_on": ["db"]})),
            "db": with(json!({"depends_on": {"api": "started"}}))}))),
        (
            "processes.api.depends_on".into(),
            "cycle api -> db -> api".into()
        )
    );
    // Ordered: a dependency on a later process could never be met.
    let (path, reason) = invalid(json!({"processes": {
        "api": with(json!({"depends_on": ["db"]})), "db": p()}}));
    assert_eq!(path, "processes.api.depends_on.db");
    assert!(reason.contains("\"startup\": \"parallel\""), "{reason}");
    let (path, reason) = invalid(json!({"processes": {
        "api": with(json!({"depends_on": {"db": "sometime"}})), "db": p()}}));
    assert_eq!(path, "processes.api.depends_on");
    assert!(reason.contains("exited_ok"), "{reason}");
    let (path, _) = invalid(json!({"processes": {"a": with(json!({"depends_on": 3}))}}));
    assert_eq!(path, "processes.a.depends_on");
    let (path, reason) = invalid(json!({"startup": "eventually", "processes": {"a": p()}}));
    assert_eq!(path, "startup");
    assert!(reason.contains("parallel"), "{reason}");
}

#[test]
fn restart_takes_a_policy_name_or_an_object_with_defaults() {
    let l = load(json!({"processes": {
        "a": with(json!({"restart": "on-failure"})),
        "b": with(json!({"restart": {"policy": "always", "backoff": 0.1, "max_restarts": 3}})),
        "c": with(json!({"restart": {"policy": "never", "max_backoff": "60"}}))}}))
    .unwrap();
    let c = &l.config;
    assert_eq!(c.processes["a"].restart.policy, Policy::OnFailure);
    assert_eq!(c.processes["a"].restart.max_restarts, 10);
    let b = c.processes["b"].restart;
    assert_eq!(
        (b.policy, b.backoff, b.max_backoff, b.max_restarts),
        (
            Policy::Always,
            Duration::from_millis(100),
            Duration::from_secs(30),
            3
        )
    );
    assert_eq!(
        c.processes["c"].restart.max_backoff,
        Duration::from_secs(60)
    );

    let (path, reason) =
        invalid(json!({"processes": {"a": with(json!({"restart": "sometimes"}))}}));
    assert_eq!(path, "processes.a.restart");
    assert!(reason.contains("on-failure"), "{reason}");
    let (path, reason) = invalid(json!({"processes": {"a": with(json!({"restart":
        {"policy": "always", "backof": 1}}))}}));
    assert_eq!(path, "processes.a.restart");
    assert!(reason.contains("backof"), "{reason}");
    let (path, reason) = invalid(json!({"processes": {"a": with(json!({"restart":
        {"policy": "always", "backoff": 5, "max_backoff": 1}}))}}));
    assert_eq!(
        (path.as_str(), reason.as_str()),
        (
            "processes.a.restart.max_backoff",
            "must be at least backoff"
        )
    );
    let (path, _) = invalid(json!({"processes": {"a": with(json!({"restart":
        {"max_restarts": -1}}))}}));
    assert_eq!(path, "processes.a.restart");
}

#[test]
fn backoff_doubles_up_to_its_bound() {
    let r = RestartConfig {
        backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(3),
        ..RestartConfig::default()
    };
    let waits: Vec<u128> = (1..=6).map(|a| r.delay(a).as_millis()).collect();
    assert_eq!(waits, [500, 1000, 2000, 3000, 3000, 3000]);
    assert_eq!(r.delay(u32::MAX), Duration::from_secs(3));
    assert_eq!(r.healthy_after(), Duration::from_secs(10));
}

#[test]
fn liveness_is_any_verifier_with_a_period_and_a_failure_count() {
    let l = load(json!({"processes": {"a": with(json!({"liveness":
        {"type": "http", "arguments": {"url": "http://127.0.0.1:1/"}}}))}}))
    .unwrap();
    let live = l.config.processes["a"].liveness.clone().unwrap();
    assert_eq!(live.kind, "http");
    assert_eq!(live.period, Duration::from_secs(10));
    assert_eq!(live.failures, 3);
    for (bad, at) in [
        (
            json!({"type": "http", "period": 0}),
            "processes.a.liveness.period",
        ),
        (
            json!({"type": "http", "failures": 0}),
            "processes.a.liveness.failures",
        ),
        (json!({"type": " "}), "processes.a.liveness.type"),
        (
            json!({"type": "http", "arguments": [1]}),
            "processes.a.liveness.arguments",
        ),
    ] {
        let (path, _) = invalid(json!({"processes": {"a": with(json!({"liveness": bad}))}}));
        assert_eq!(path, at);
    }
    let (path, _) = invalid(json!({"processes": {"a": with(json!({"liveness": {"period": 1}}))}}));
    assert_eq!(path, "processes.a.liveness");
}

#[test]
fn stop_signal_and_graceful_time_per_process() {
    use nix::sys::signal::Signal;
    let l = load(json!({"processes": {
        "a": with(json!({"stop_signal": "SIGINT", "graceful_time": 2.5})),
        "b": with(json!({"stop_signal": "hup"})),
        "c": with(json!({"stop_signal": 3}))}}))
    .unwrap();
    let c = &l.config;
    assert_eq!(c.processes["a"].stop_signal.0, Signal::SIGINT);
    assert_eq!(
        c.processes["a"].graceful_time,
        Some(Duration::from_millis(2500))
    );
    assert_eq!(c.processes["b"].stop_signal.0, Signal::SIGHUP);
    assert_eq!(c.processes["c"].stop_signal.0, Signal::SIGQUIT);
    for bad in [
        json!("SIGNOPE"),
        json!(0),
        json!(99),
        json!("KILL"),
        json!(true),
    ] {
        let (path, reason) =
            invalid(json!({"processes": {"a": with(json!({"stop_signal": bad}))}}));
        assert_eq!(path, "processes.a.stop_signal", "{reason}");
    }
    let (path, _) = invalid(json!({"processes": {"a": with(json!({"graceful_time": -1}))}}));
    assert_eq!(path, "processes.a.graceful_time");
}
