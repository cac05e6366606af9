//! A check as a command that runs outside pymanager: the `exec` verifier's own command, or
//! `pymanager verify` with the verifier's type and arguments — what a health check, a probe
//! or an `ExecStartPost=` runs. Addresses that meant another process on the same machine are
//! rewritten to where that process lives in the target.

use std::time::Duration;

use serde_json::Value;

use super::Losses;
use super::source::{Check, CheckKind, Source, is_loopback, visit_addresses};
use crate::config::exec::Command;

/// The command of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// An argument list.
    Argv(Vec<String>),
    /// A command line for `sh -c`.
    Shell(String),
}

impl Probe {
    /// As an argument list (a line becomes `sh -c line`).
    pub fn argv(&self) -> Vec<String> {
        match self {
            Probe::Argv(a) => a.clone(),
            Probe::Shell(line) => vec!["/bin/sh".into(), "-c".into(), line.clone()],
        }
    }
}

/// How a probe is to be written.
pub struct Style<'a> {
    /// The pymanager binary in the target (`pymanager`, or an absolute path).
    pub pymanager: &'a str,
    /// The `exec` verifier as its own command (a container health check) rather than
    /// through `pymanager verify exec` (which retries within its `timeout`).
    pub exec_plain: bool,
    /// Replaces the verifier's `timeout` (each run of a repeated probe is one short try).
    pub attempt: Option<Duration>,
    /// Extra arguments after `verify <type>` (`--pid $MAINPID`).
    pub extra: &'a [&'a str],
}

/// Why a check cannot be a probe, or the probe.
pub fn probe(check: &Check, args: &Value, style: &Style) -> Result<Probe, String> {
    let mut args = args.clone();
    if let (Some(t), Value::Object(map)) = (style.attempt, &mut args) {
        map.insert("timeout".into(), seconds_value(t));
    }
    let json = args.to_string();
    let verify = |what: &[&str]| {
        let mut argv = vec![style.pymanager.to_string(), "verify".into()];
        argv.extend(what.iter().map(|s| s.to_string()));
        argv.extend(style.extra.iter().map(|s| s.to_string()));
        argv.extend(["--args".to_string(), json.clone()]);
        Probe::Argv(argv)
    };
    match &check.kind {
        CheckKind::Exec(a) if style.exec_plain => Ok(match &a.command {
            Command::Argv(argv) => Probe::Argv(argv.clone()),
            Command::Shell(line) => Probe::Shell(line.clone()),
        }),
        CheckKind::Exec(_) => Ok(verify(&["exec"])),
        CheckKind::Builtin(b) if b.short == "output" => Err(
            "the output verifier reads the process's output, which a probe outside pymanager cannot see".into(),
        ),
        CheckKind::Builtin(b) if b.short == "exited" => {
            Err("the exited verifier waits for the process's end, which a probe cannot".into())
        }
        CheckKind::Builtin(b) => Ok(verify(&[b.short])),
        CheckKind::Module { path, name, hosts } => {
            let path = path.to_string_lossy().into_owned();
            let mut what = vec!["--module", path.as_str(), "--verifier", name.as_str()];
            for h in hosts {
                what.extend(["--allow-host", h.as_str()]);
            }
            Ok(verify(&what))
        }
        CheckKind::Other(kind) => Err(format!(
            "verifier {kind:?} is not a built-in or a .wasm module, so pymanager verify cannot run it"
        )),
    }
}

/// `1`, `0.5`: seconds as a JSON number.
pub fn seconds_value(d: Duration) -> Value {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        Value::from(d.as_secs())
    } else {
        Value::from(s)
    }
}

/// `check`'s arguments as seen from a probe that runs beside process `here`: a loopback
/// address whose port another process listens on is rewritten to `host_of(that process)`;
/// each rewrite is a warning.
pub fn rewritten(
    check: &Check,
    at: &str,
    here: &str,
    src: &Source,
    host_of: &dyn Fn(&str) -> String,
    losses: &mut Losses,
) -> Value {
    let mut done = Vec::new();
    let args = visit_addresses(&check.args, &mut |host, port| {
        let owner = src.owners.get(&port)?;
        if owner == here || !is_loopback(host) {
            return None;
        }
        let new = host_of(owner);
        done.push(format!("{host}:{port} -> {new}:{port}"));
        Some(new)
    });
    if !done.is_empty() {
        losses.push(
            at,
            format!(
                "{}'s loopback address rewritten to the process that listens there: {}",
                check.at,
                done.join(", ")
            ),
        );
    }
    args
}
