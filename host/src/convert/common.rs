//! What the container targets (compose, Kubernetes) and systemd share: images, working
//! directories, the timing of one probe, and the losses every target has in common.

use std::time::Duration;

use serde_json::Value;

use super::Losses;
use super::probe::{Style, probe};
use super::source::{Check, CheckKind, Process};
use crate::config::{ConfigError, RestartConfig};

/// The image that runs `p`: its `export.image`, else `--image`.
pub fn image(p: &Process, default: Option<&str>) -> Result<String, ConfigError> {
    p.image
        .as_deref()
        .or(default)
        .map(str::to_string)
        .ok_or_else(|| {
            ConfigError::invalid(
                format!("processes.{}.export.image", p.name),
                "no image to run it in: give --image IMAGE, or set this key",
            )
        })
}

/// Its working directory in a container: an absolute one as it is; a relative one means
/// nothing there (the image has its own), a loss.
pub fn container_workdir(p: &Process, losses: &mut Losses) -> Option<String> {
    let dir = p.workdir.as_ref()?;
    if dir.is_absolute() {
        return Some(dir.to_string_lossy().into_owned());
    }
    losses.push(
        format!("processes.{}.options.working_directory", p.name),
        format!(
            "{} is relative to where pymanager starts, which a container does not have: left to the image's WORKDIR",
            dir.display()
        ),
    );
    None
}

/// A server bound to loopback inside a container is out of reach of every other one.
pub fn warn_loopback_bind(p: &Process, losses: &mut Losses) {
    let binds = p.argv.iter().any(|a| {
        a == "127.0.0.1"
            || a == "localhost"
            || a.contains("--bind 127.0.0.1")
            || a.contains("--host 127.0.0.1")
    });
    if binds {
        losses.push(
            format!("processes.{}.arguments", p.name),
            "it listens on 127.0.0.1, which in a container only that container reaches: bind 0.0.0.0 there",
        );
    }
}

/// The restart timing pymanager has and the target does not.
pub fn backoff_losses(r: &RestartConfig, at: &str, theirs: &str, losses: &mut Losses) {
    let default = RestartConfig::default();
    if r.policy != crate::config::Policy::Never
        && (r.backoff != default.backoff || r.max_backoff != default.max_backoff)
    {
        losses.push(format!("{at}.restart.backoff"), theirs);
    }
}

/// True when two checks are the same verifier with the same arguments.
pub fn same_check(a: &Check, b: &Check) -> bool {
    a.args == b.args
        && match (&a.kind, &b.kind) {
            (CheckKind::Builtin(x), CheckKind::Builtin(y)) => x.module == y.module,
            (CheckKind::Exec(x), CheckKind::Exec(y)) => x == y,
            (
                CheckKind::Module {
                    path: p, name: n, ..
                },
                CheckKind::Module {
                    path: q, name: m, ..
                },
            ) => p == q && n == m,
            _ => false,
        }
}

/// The bound of one run of a repeated probe: the `exec` verifier's run bound, else the
/// verifier's `timeout` kept between 1 and 10 s.
pub fn attempt(check: &Check) -> Duration {
    match &check.kind {
        CheckKind::Exec(a) => a.run_bound(),
        _ => check
            .timeout()
            .unwrap_or(Duration::from_secs(10))
            .clamp(Duration::from_secs(1), Duration::from_secs(10)),
    }
}

/// Whole seconds, rounded up, at least `min` (Kubernetes and systemd count in seconds).
pub fn whole_seconds(d: Duration, min: u64) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(min)
}

/// Arguments and environment values that name another process's loopback address
/// (`127.0.0.1:8601`, where db listens) stop working where each process has a host of its
/// own; they are named, not rewritten (a command line is the process's own business).
pub fn warn_loopback_peers(
    p: &Process,
    src: &super::source::Source,
    host_of: &dyn Fn(&str) -> String,
    losses: &mut Losses,
) {
    let mut found = Vec::new();
    let values = p.argv.iter().chain(p.env.values());
    for v in values {
        for host in ["127.0.0.1:", "localhost:"] {
            let mut rest = v.as_str();
            while let Some(i) = rest.find(host) {
                rest = &rest[i + host.len()..];
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                if let Ok(port) = digits.parse::<u16>()
                    && let Some(owner) = src.owners.get(&port)
                    && owner != &p.name
                {
                    let note = format!("{host}{port} (now {}:{port})", host_of(owner));
                    if !found.contains(&note) {
                        found.push(note);
                    }
                }
            }
        }
    }
    if !found.is_empty() {
        losses.push(
            format!("processes.{}", p.name),
            format!(
                "its command or environment names another process by a loopback address, which is not rewritten: {}",
                found.join(", ")
            ),
        );
    }
}

/// `v` with `f` applied to every string in it (not to keys).
pub fn map_strings(v: serde_json::Value, f: &dyn Fn(&str) -> String) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(f(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| map_strings(v, f)).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, map_strings(v, f)))
                .collect(),
        ),
        other => other,
    }
}

/// True when something waits for `p` to end (`exited`, `exited_ok`), or its verifier does
/// (`exited` with code 0): a Job in Kubernetes, a `Type=oneshot` unit in systemd.
pub fn runs_to_its_end(p: &Process, src: &super::source::Source) -> bool {
    let awaited = src.processes.iter().any(|q| {
        q.depends_on.iter().any(|(d, c)| {
            d == &p.name
                && matches!(
                    c,
                    crate::config::Condition::Exited | crate::config::Condition::ExitedOk
                )
        })
    });
    awaited || matches!(verified_as(p), Verified::Completed)
}

/// What "verified" means for a dependency in the target.
pub(super) enum Verified {
    /// Its verifier is its health check.
    Healthy,
    /// Its verifier is `exited` (code 0): it has completed.
    Completed,
    /// It has started; with why that is less than verified, if it is.
    Started(Option<String>),
}

/// How a dependency's `verified` is expressed in a target with health checks.
pub(super) fn verified_as(d: &Process) -> Verified {
    let Some(v) = &d.verifier else {
        return Verified::Started(None);
    };
    match &v.kind {
        CheckKind::Builtin(b) if b.short == "exited" => {
            if v.args
                .get("expect_code")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                == 0
            {
                Verified::Completed
            } else {
                Verified::Started(Some("exited verifier expects a code other than 0".into()))
            }
        }
        _ => match probe(
            v,
            &v.args,
            &Style {
                pymanager: "pymanager",
                exec_plain: true,
                attempt: None,
                extra: &[],
            },
        ) {
            Ok(_) => Verified::Healthy,
            Err(why) => Verified::Started(Some(why)),
        },
    }
}
