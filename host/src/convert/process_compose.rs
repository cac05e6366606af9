//! process-compose.yaml, both ways. Its processes start at once unless `depends_on` says
//! otherwise, so an import is a `"startup": "parallel"` config; its probes become
//! verifiers (`http_get` the http verifier, `exec` the exec verifier), `ready_log_line` the
//! output verifier, `availability` the restart policy, `shutdown` the stop signal and
//! grace. An export writes the same keys back; a check that is neither http nor exec runs
//! as an exec probe of `pymanager verify`.

use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Losses;
use super::probe::{Probe, Style, probe};
use super::source::{Check, CheckKind, Source};
use crate::config::exec::Command;
use crate::config::{Condition, Policy};

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    version: Option<Value>,
    #[serde(default)]
    environment: Vec<String>,
    #[serde(default)]
    shell: Option<Shell>,
    #[serde(default)]
    processes: IndexMap<String, Proc>,
}

#[derive(Deserialize)]
struct Shell {
    shell_command: Option<String>,
    shell_argument: Option<String>,
}

#[derive(Deserialize)]
struct Proc {
    command: Option<String>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    environment: Vec<String>,
    #[serde(default)]
    depends_on: IndexMap<String, DependsOn>,
    #[serde(default)]
    readiness_probe: Option<Probe_>,
    #[serde(default)]
    liveness_probe: Option<Probe_>,
    #[serde(default)]
    ready_log_line: Option<String>,
    #[serde(default)]
    availability: Option<Availability>,
    #[serde(default)]
    shutdown: Option<Shutdown>,
    #[serde(default)]
    disabled: bool,
}

#[derive(Deserialize)]
struct DependsOn {
    condition: String,
}

#[derive(Deserialize)]
#[allow(non_camel_case_types)]
struct Probe_ {
    #[serde(default)]
    http_get: Option<HttpGet>,
    #[serde(default)]
    exec: Option<Exec>,
    #[serde(default)]
    initial_delay_seconds: f64,
    #[serde(default = "ten")]
    period_seconds: f64,
    #[serde(default = "one")]
    timeout_seconds: f64,
    #[serde(default = "one")]
    success_threshold: f64,
    #[serde(default = "three")]
    failure_threshold: f64,
}

fn ten() -> f64 {
    10.0
}
fn one() -> f64 {
    1.0
}
fn three() -> f64 {
    3.0
}

#[derive(Deserialize)]
struct HttpGet {
    #[serde(default = "loopback")]
    host: String,
    #[serde(default = "http")]
    scheme: String,
    #[serde(default = "slash")]
    path: String,
    port: Value,
}

fn loopback() -> String {
    "127.0.0.1".into()
}
fn http() -> String {
    "http".into()
}
fn slash() -> String {
    "/".into()
}

#[derive(Deserialize)]
struct Exec {
    command: String,
    #[serde(default)]
    working_dir: Option<String>,
}

#[derive(Deserialize)]
struct Availability {
    #[serde(default)]
    restart: Option<String>,
    #[serde(default)]
    backoff_seconds: Option<f64>,
    #[serde(default)]
    max_restarts: Option<u32>,
}

#[derive(Deserialize)]
struct Shutdown {
    #[serde(default)]
    signal: Option<i32>,
    #[serde(default)]
    timeout_seconds: Option<f64>,
    #[serde(default)]
    command: Option<String>,
}

/// Keys process-compose has that mean nothing to a process pymanager starts, read without
/// a warning (they describe the file or its own UI).
const QUIET: &[&str] = &["version", "description", "log_location", "log_level"];

/// The config for a process-compose file's text; the error is an exit code (3: not YAML,
/// 5: not a process-compose file) and one line.
pub fn import(text: &str, losses: &mut Losses) -> Result<Value, (i32, String)> {
    let value = super::yaml::parse(text).map_err(|e| (3, format!("not valid YAML: {e}")))?;
    let mut track = serde_path_to_error::Track::new();
    let mut unknown = Vec::new();
    let file: File = {
        let de = serde_path_to_error::Deserializer::new(&value, &mut track);
        serde_ignored::deserialize(de, |p| unknown.push(p.to_string()))
            .map_err(|e| (5, format!("{}: {e}", track.path())))?
    };
    for key in unknown {
        if !QUIET.contains(&key.rsplit('.').next().unwrap_or(&key)) {
            losses.push(&key, "pymanager has no equivalent; left out");
        }
    }
    let _ = file.version;
    let shell = file
        .shell
        .as_ref()
        .and_then(|s| s.shell_command.clone())
        .unwrap_or_else(|| "bash".into());
    let shell_arg = file
        .shell
        .as_ref()
        .and_then(|s| s.shell_argument.clone())
        .unwrap_or_else(|| "-c".into());
    let global = env_list(&file.environment, "environment", losses);
    let mut processes = Map::new();
    let disabled: Vec<&String> = file
        .processes
        .iter()
        .filter(|(_, p)| p.disabled)
        .map(|(n, _)| n)
        .collect();
    for (name, p) in &file.processes {
        let at = format!("processes.{name}");
        if p.disabled {
            losses.push(
                format!("{at}.disabled"),
                "pymanager starts every process it lists: a disabled process is left out",
            );
            continue;
        }
        let Some(command) = &p.command else {
            return Err((5, format!("{at}.command: missing field")));
        };
        let mut out = json!({"executable": shell, "arguments": [shell_arg, command]});
        if let Some(dir) = &p.working_dir {
            out["options"] = json!({"working_directory": dir});
        }
        let mut env = global.clone();
        env.extend(env_list(
            &p.environment,
            &format!("{at}.environment"),
            losses,
        ));
        if !env.is_empty() {
            out["environment"] = Value::Object(
                env.into_iter()
                    .map(|(k, v)| (k, Value::String(v.replace('$', "$$"))))
                    .collect(),
            );
        }
        let mut deps = Map::new();
        for (dep, d) in &p.depends_on {
            if disabled.contains(&dep) {
                losses.push(
                    format!("{at}.depends_on.{dep}"),
                    "waits for a disabled process: left out",
                );
                continue;
            }
            let cond = match d.condition.as_str() {
                "process_started" => "started",
                "process_healthy" | "process_log_ready" => "verified",
                "process_completed" => "exited",
                "process_completed_successfully" => "exited_ok",
                other => {
                    return Err((
                        5,
                        format!("{at}.depends_on.{dep}.condition: unknown condition {other:?}"),
                    ));
                }
            };
            deps.insert(dep.clone(), cond.into());
        }
        if !deps.is_empty() {
            out["depends_on"] = Value::Object(deps);
        }
        let verifier = match (&p.readiness_probe, &p.ready_log_line) {
            (Some(r), line) => {
                if line.is_some() {
                    losses.push(
                        format!("{at}.ready_log_line"),
                        "a process has one verifier: the readiness_probe is used",
                    );
                }
                Some(check(r, p, &format!("{at}.readiness_probe"), losses)?)
            }
            (None, Some(line)) => {
                Some(json!({"type": "output", "arguments": {"pattern": regex::escape(line)}}))
            }
            (None, None) => None,
        };
        if let Some(v) = verifier {
            out["verifier"] = v;
        }
        if let Some(l) = &p.liveness_probe {
            let at = format!("{at}.liveness_probe");
            let mut v = check(l, p, &at, losses)?;
            if l.initial_delay_seconds > 0.0 {
                losses.push(
                    format!("{at}.initial_delay_seconds"),
                    "liveness checks start once the process is verified: no further delay",
                );
            }
            // Each liveness check is one try: its probe's period and threshold say the rest.
            v["arguments"]["timeout"] = json!(0);
            v["period"] = number(l.period_seconds);
            v["failures"] = json!(l.failure_threshold.max(1.0) as u32);
            out["liveness"] = v;
        }
        if let Some(a) = &p.availability {
            let policy = match a.restart.as_deref() {
                None | Some("no") => "never",
                Some("on_failure") => "on-failure",
                Some("always") => "always",
                Some("exit_on_failure") => {
                    losses.push(format!("{at}.availability.restart"), "exit_on_failure: pymanager does not stop everything when one process fails after start-up (pymanager run --abort-on-exit does); never");
                    "never"
                }
                Some(other) => {
                    return Err((
                        5,
                        format!("{at}.availability.restart: unknown policy {other:?}"),
                    ));
                }
            };
            if policy != "never" {
                let backoff = a.backoff_seconds.unwrap_or(1.0);
                let mut r = json!({"policy": policy, "backoff": number(backoff), "max_backoff": number(backoff)});
                match a.max_restarts {
                    Some(0) | None => {
                        losses.push(format!("{at}.availability.max_restarts"), "process-compose restarts without a limit; pymanager stops after max_restarts in a row: 1000000");
                        r["max_restarts"] = json!(1_000_000);
                    }
                    Some(n) => r["max_restarts"] = json!(n),
                }
                out["restart"] = r;
            }
        }
        if let Some(s) = &p.shutdown {
            if let Some(sig) = s.signal {
                out["stop_signal"] = json!(sig);
            }
            if let Some(t) = s.timeout_seconds {
                out["graceful_time"] = number(t);
            }
            if s.command.is_some() {
                losses.push(
                    format!("{at}.shutdown.command"),
                    "pymanager stops a process with its stop_signal only; the command is not run",
                );
            }
        }
        processes.insert(name.clone(), out);
    }
    if processes.is_empty() {
        return Err((5, "processes: no process to import".into()));
    }
    Ok(json!({"startup": "parallel", "processes": processes}))
}

/// `["KEY=value", …]` as pairs; an entry without `=` is a loss.
fn env_list(list: &[String], at: &str, losses: &mut Losses) -> Vec<(String, String)> {
    list.iter()
        .enumerate()
        .filter_map(|(i, e)| match e.split_once('=') {
            Some((k, v)) => Some((k.to_string(), v.to_string())),
            None => {
                losses.push(
                    format!("{at}.{i}"),
                    format!("{e:?} is not KEY=value; left out"),
                );
                None
            }
        })
        .collect()
}

/// A probe as a verifier: up to `initial_delay + period × failure_threshold` to pass.
fn check(pr: &Probe_, p: &Proc, at: &str, losses: &mut Losses) -> Result<Value, (i32, String)> {
    let timeout = pr.initial_delay_seconds + pr.period_seconds * pr.failure_threshold.max(1.0);
    if pr.success_threshold > 1.0 {
        losses.push(
            format!("{at}.success_threshold"),
            "a verifier passes on its first success",
        );
    }
    match (&pr.http_get, &pr.exec) {
        (Some(h), None) => {
            let port = match &h.port {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => return Err((5, format!("{at}.http_get.port: expected a number"))),
            };
            let path = if h.path.starts_with('/') {
                h.path.clone()
            } else {
                format!("/{}", h.path)
            };
            if pr.timeout_seconds != 1.0 {
                losses.push(
                    format!("{at}.timeout_seconds"),
                    "the http verifier bounds each request itself",
                );
            }
            Ok(json!({"type": "http", "arguments": {
                "url": format!("{}://{}:{port}{path}", h.scheme, h.host),
                "interval": number(pr.period_seconds),
                "timeout": number(timeout)
            }}))
        }
        (None, Some(e)) => {
            if e.working_dir.is_some() && e.working_dir != p.working_dir {
                losses.push(
                    format!("{at}.exec.working_dir"),
                    "the exec verifier runs in the process's working directory",
                );
            }
            Ok(json!({"type": "exec", "arguments": {
                "command": e.command,
                "interval": number(pr.period_seconds),
                "timeout": number(timeout),
                "run_timeout": number(pr.timeout_seconds)
            }}))
        }
        _ => Err((5, format!("{at}: expected one of http_get and exec"))),
    }
}

/// A number of seconds as JSON: whole numbers without a fraction.
fn number(s: f64) -> Value {
    if s.fract() == 0.0 && (0.0..1e15).contains(&s) {
        json!(s as u64)
    } else {
        json!(s)
    }
}

/// A process-compose file for `src`.
pub fn export(src: &Source, losses: &mut Losses) -> String {
    let mut processes = Map::new();
    for p in &src.processes {
        let at = format!("processes.{}", p.name);
        let mut out = Map::new();
        out.insert(
            "command".into(),
            super::procfile::command_line(&p.argv).into(),
        );
        if let Some(dir) = &p.workdir {
            out.insert(
                "working_dir".into(),
                dir.to_string_lossy().into_owned().into(),
            );
        }
        if !p.env.is_empty() {
            let env: Vec<String> = p.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.insert("environment".into(), json!(env));
        }
        let mut deps = Map::new();
        for (dep, cond) in &p.depends_on {
            let c = match cond {
                Condition::Started => "process_started",
                Condition::Verified => {
                    let d = src.processes.iter().find(|q| &q.name == dep);
                    match d.and_then(|d| d.verifier.as_ref()).map(|v| &v.kind) {
                        None => "process_started",
                        Some(CheckKind::Builtin(b)) if b.short == "output" => "process_log_ready",
                        Some(_) => "process_healthy",
                    }
                }
                Condition::Exited => "process_completed",
                Condition::ExitedOk => "process_completed_successfully",
            };
            deps.insert(dep.clone(), json!({"condition": c}));
        }
        if !deps.is_empty() {
            out.insert("depends_on".into(), Value::Object(deps));
        }
        if let Some(v) = &p.verifier {
            match &v.kind {
                CheckKind::Builtin(b) if b.short == "output" => {
                    match v.args.get("pattern").and_then(Value::as_str).map(unescape) {
                        Some(Some(line)) => {
                            out.insert("ready_log_line".into(), line.into());
                        }
                        _ => losses.push(format!("{}.arguments.pattern", v.at), "ready_log_line is a plain text, not a regular expression"),
                    }
                }
                CheckKind::Builtin(b) if b.short == "exited" => losses.push(
                    &v.at,
                    "process-compose has no check for a process's end: depend on it with process_completed_successfully",
                ),
                _ => {
                    if let Some(probe) = export_probe(v, v.timeout(), losses) {
                        out.insert("readiness_probe".into(), probe);
                    }
                }
            }
        }
        if let Some((l, period, failures)) = &p.liveness
            && let Some(mut probe) = export_probe(l, Some(Duration::ZERO), losses)
        {
            probe["period_seconds"] = number(period.as_secs_f64());
            probe["failure_threshold"] = json!(failures);
            out.insert("liveness_probe".into(), probe);
        }
        let r = &p.restart;
        if r.policy != Policy::Never {
            if r.max_backoff != r.backoff {
                losses.push(
                    format!("{at}.restart.max_backoff"),
                    "process-compose waits the same backoff_seconds before every restart",
                );
            }
            out.insert(
                "availability".into(),
                json!({
                    "restart": if r.policy == Policy::Always { "always" } else { "on_failure" },
                    "backoff_seconds": number(r.backoff.as_secs_f64()),
                    "max_restarts": r.max_restarts
                }),
            );
        }
        let signal = nix::sys::signal::Signal::iterator()
            .find(|s| s.as_str() == p.stop_signal)
            .map_or(15, |s| s as i32);
        // process-compose's defaults (SIGTERM, 10 s) are left unsaid.
        let mut shutdown = Map::new();
        if signal != 15 {
            shutdown.insert("signal".into(), signal.into());
        }
        if p.grace != Duration::from_secs(10) {
            shutdown.insert("timeout_seconds".into(), number(p.grace.as_secs_f64()));
        }
        if !shutdown.is_empty() {
            out.insert("shutdown".into(), Value::Object(shutdown));
        }
        if p.suppress_output || p.redirect_output.is_some() {
            losses.push(format!("{at}.options"), "process-compose keeps every process's output in its log: suppress_output and redirect_output are not kept");
        }
        processes.insert(p.name.clone(), Value::Object(out));
    }
    let header = ["Written by `pymanager export process-compose`.".to_string()];
    super::yaml::emit(&json!({"version": "0.5", "processes": processes}), &header)
}

/// A check as a process-compose probe: `http_get` for the http verifier on a plain URL,
/// `exec` for the exec verifier, else an exec probe running `pymanager verify`.
fn export_probe(v: &Check, timeout: Option<Duration>, losses: &mut Losses) -> Option<Value> {
    let interval = v.interval().as_secs_f64();
    let mut probe_v = json!({"period_seconds": number(interval)});
    let tries = match timeout {
        Some(t) if t.is_zero() => 1.0,
        Some(t) => (t.as_secs_f64() / interval).ceil().max(1.0),
        None => 1_000_000.0,
    };
    probe_v["failure_threshold"] = json!(tries as u64);
    match &v.kind {
        CheckKind::Builtin(b) if b.short == "http" => {
            let url = v
                .args
                .get("url")
                .and_then(Value::as_str)
                .and_then(|u| url::Url::parse(u).ok());
            let plain = v.args.as_object().is_some_and(|m| {
                m.keys()
                    .all(|k| matches!(k.as_str(), "url" | "interval" | "timeout"))
            });
            if let Some(u) = url.filter(|_| plain)
                && let (Some(host), Some(port)) = (u.host_str(), u.port_or_known_default())
                && u.query().is_none()
            {
                probe_v["http_get"] =
                    json!({"host": host, "scheme": u.scheme(), "path": u.path(), "port": port});
                return Some(probe_v);
            }
        }
        CheckKind::Exec(a) => {
            let command = match &a.command {
                Command::Shell(line) => line.clone(),
                Command::Argv(argv) => super::procfile::command_line(argv),
            };
            probe_v["exec"] = json!({"command": command});
            probe_v["timeout_seconds"] = number(a.run_bound().as_secs_f64());
            return Some(probe_v);
        }
        _ => {}
    }
    let style = Style {
        pymanager: "pymanager",
        exec_plain: true,
        attempt: Some(super::common::attempt(v)),
        extra: &[],
    };
    match probe(v, &v.args, &style) {
        Ok(Probe::Argv(argv)) => {
            probe_v["exec"] = json!({"command": super::procfile::command_line(&argv)});
            Some(probe_v)
        }
        Ok(Probe::Shell(line)) => {
            probe_v["exec"] = json!({"command": line});
            Some(probe_v)
        }
        Err(why) => {
            losses.push(&v.at, format!("{why}: no probe"));
            None
        }
    }
}

/// The text a pattern matches when it is a plain text escaped (`regex::escape`'s inverse).
fn unescape(pattern: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            c if "^$.|?*+()[]{}".contains(c) => return None,
            c => out.push(c),
        }
    }
    Some(out)
}
