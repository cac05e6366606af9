//! `pymanager export compose`: one service per process, for docker compose (the compose
//! specification, no `version` key).

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::probe::{Probe, Style, probe, rewritten};
use super::source::{CheckKind, Process, Source};
use super::{Losses, common};
use crate::config::{Condition, ConfigError, Policy, RestartConfig};

/// What the command line adds.
pub struct Options<'a> {
    /// `--image`: the image of every process without `export.image`.
    pub image: Option<&'a str>,
    /// The config file's name, for the header.
    pub from: &'a str,
}

/// The compose file for `src`.
pub fn export(src: &Source, opts: &Options, losses: &mut Losses) -> Result<String, ConfigError> {
    let mut services = Map::new();
    for p in &src.processes {
        // Compose replaces `$VAR` everywhere in the file: a `$` that is meant is `$$`.
        let s = common::map_strings(service(p, src, opts, losses)?, &|s| s.replace('$', "$$"));
        services.insert(p.name.clone(), s);
    }
    let header = [
        format!("Written by `pymanager export compose` from {}.", opts.from),
        "Health checks run `pymanager verify`: each image must have the pymanager binary on its PATH.".into(),
    ];
    Ok(super::yaml::emit(&json!({"services": services}), &header))
}

fn service(
    p: &Process,
    src: &Source,
    opts: &Options,
    losses: &mut Losses,
) -> Result<Value, ConfigError> {
    let at = format!("processes.{}", p.name);
    let image = common::image(p, opts.image)?;
    let mut s = Map::new();
    s.insert("image".into(), image.into());
    s.insert("command".into(), json!(p.argv));
    if let Some(dir) = common::container_workdir(p, losses) {
        s.insert("working_dir".into(), dir.into());
    }
    if !p.env.is_empty() {
        s.insert("environment".into(), json!(p.env));
    }
    if !p.listens.is_empty() {
        let ports: Vec<String> = p
            .listens
            .iter()
            .map(|n| format!("127.0.0.1:{n}:{n}"))
            .collect();
        s.insert("ports".into(), json!(ports));
        common::warn_loopback_bind(p, losses);
    }
    common::warn_loopback_peers(p, src, &|owner| owner.to_string(), losses);
    if p.stop_signal != "SIGTERM" {
        s.insert("stop_signal".into(), p.stop_signal.clone().into());
    }
    s.insert("stop_grace_period".into(), duration(p.grace).into());
    s.insert("restart".into(), restart(&p.restart, &at, losses).into());
    if let Some(h) = healthcheck(p, src, losses) {
        s.insert("healthcheck".into(), h);
    }
    let deps = depends_on(p, src, losses);
    if !deps.is_empty() {
        s.insert("depends_on".into(), Value::Object(deps));
    }
    if p.suppress_output {
        s.insert("logging".into(), json!({"driver": "none"}));
    }
    if p.redirect_output.is_some() {
        losses.push(
            format!("{at}.options.redirect_output"),
            "a container's output goes to its logging driver (docker compose logs); not to a file",
        );
    }
    Ok(Value::Object(s))
}

/// `no`, `on-failure:N`, `always`; what docker does not do the same way is a loss.
fn restart(r: &RestartConfig, at: &str, losses: &mut Losses) -> String {
    common::backoff_losses(
        r,
        at,
        "docker restarts with its own backoff (100 ms, doubling)",
        losses,
    );
    match r.policy {
        Policy::Never => "no".into(),
        Policy::OnFailure => format!("on-failure:{}", r.max_restarts),
        Policy::Always => {
            losses.push(
                format!("{at}.restart.max_restarts"),
                format!(
                    "docker's always restarts without a limit ({} in a row ignored)",
                    r.max_restarts
                ),
            );
            "always".into()
        }
    }
}

/// The verifier as a health check (with the liveness check's period and failures when
/// there is one); without a verifier, the liveness check.
fn healthcheck(p: &Process, src: &Source, losses: &mut Losses) -> Option<Value> {
    let (check, retries, interval) = match (&p.verifier, &p.liveness) {
        (Some(v), Some((l, period, failures))) => {
            if !common::same_check(v, l) {
                losses.push(
                    l.at.clone(),
                    "compose has one health check per service: the verifier's, run every liveness period",
                );
            }
            (v, *failures, *period)
        }
        (Some(v), None) => (v, 3, v.interval()),
        (None, Some((l, period, failures))) => (l, *failures, *period),
        (None, None) => return None,
    };
    let attempt = common::attempt(check);
    let args = rewritten(
        check,
        &format!("processes.{}.healthcheck", p.name),
        &p.name,
        src,
        &|owner| owner.to_string(),
        losses,
    );
    let style = Style {
        pymanager: "pymanager",
        exec_plain: true,
        attempt: Some(attempt),
        extra: &[],
    };
    let test = match probe(check, &args, &style) {
        Ok(Probe::Argv(argv)) => std::iter::once("CMD".to_string())
            .chain(argv)
            .collect::<Vec<_>>(),
        Ok(Probe::Shell(line)) => vec!["CMD-SHELL".into(), line],
        Err(_) if matches!(common::verified_as(p), common::Verified::Completed) => {
            losses.push(
                check.at.clone(),
                "compose has no health check for a service's end: what depends on it waits with service_completed_successfully",
            );
            return None;
        }
        Err(why) => {
            losses.push(check.at.clone(), format!("{why}: no health check"));
            return None;
        }
    };
    let mut h = Map::new();
    h.insert("test".into(), json!(test));
    h.insert(
        "interval".into(),
        duration(interval.max(Duration::from_secs(1))).into(),
    );
    let bound = match &check.kind {
        CheckKind::Exec(_) => attempt,
        // `pymanager verify` gives up by itself at its `timeout`; a second more lets it say why.
        _ => attempt + Duration::from_secs(1),
    };
    h.insert("timeout".into(), duration(bound).into());
    h.insert("retries".into(), retries.into());
    if let Some(t) = check.timeout().filter(|t| !t.is_zero()) {
        h.insert("start_period".into(), duration(t).into());
    }
    Some(Value::Object(h))
}

/// `depends_on` with conditions.
fn depends_on(p: &Process, src: &Source, losses: &mut Losses) -> Map<String, Value> {
    let mut out = Map::new();
    for (dep, cond) in &p.depends_on {
        let at = format!("processes.{}.depends_on.{dep}", p.name);
        let Some(d) = src.processes.iter().find(|q| &q.name == dep) else {
            continue;
        };
        let condition = match cond {
            Condition::Started => "service_started",
            Condition::ExitedOk => "service_completed_successfully",
            Condition::Exited => {
                losses.push(
                    &at,
                    "exited (any exit code) has no equivalent in compose: service_completed_successfully (code 0) is the nearest",
                );
                "service_completed_successfully"
            }
            Condition::Verified => match common::verified_as(d) {
                common::Verified::Healthy => "service_healthy",
                common::Verified::Completed => "service_completed_successfully",
                common::Verified::Started(None) => "service_started",
                common::Verified::Started(Some(why)) => {
                    losses.push(
                        &at,
                        format!("verified becomes service_started: {dep}'s {why}"),
                    );
                    "service_started"
                }
            },
        };
        out.insert(dep.clone(), json!({"condition": condition}));
    }
    out
}

/// `10s`, `1m30s`, `500ms`: a compose duration.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else if s > 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
