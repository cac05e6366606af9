//! A loaded `pymanager.json` as every export reads it: each process's command line, its
//! whole environment, its ports (a picked one given a fixed number), its checks resolved to
//! the verifier they name, and who owns which loopback port, so that an address that meant
//! "that other process on this machine" can be rewritten to where that process lives.

use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;

use super::Losses;
use crate::config::exec::{self as exec_verifier, ExecArgs};
use crate::config::{
    Condition, Config, ConfigError, LivenessConfig, RestartConfig, ShellChoice, StringOrBool,
    VerifierConfig,
};
use crate::plan::template::{Escapes, Scope};
use crate::plan::{Port, PortTable};
use crate::runtime::Builtin;

/// What an export reads besides the config: pymanager's environment (for `${env.…}`),
/// environment files, and the number the first port picked at start-up gets.
pub struct Inputs<'a> {
    /// Looks a variable up, as pymanager would at start-up.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Reads an environment file (the path as the config gives it).
    pub read: &'a dyn Fn(&Path) -> Result<String, String>,
    /// Ports written as 0 are numbered from here on, skipping the fixed ones.
    pub port_base: u16,
}

/// The config, resolved for export.
#[derive(Debug)]
pub struct Source {
    /// In config order.
    pub processes: Vec<Process>,
    /// Who listens on which loopback port (declared, or named by its own verifier).
    pub owners: IndexMap<u16, String>,
}

/// One process, resolved.
#[derive(Debug)]
pub struct Process {
    /// Its key under `processes`.
    pub name: String,
    /// Its command: a shell form is `[shell, "-c", line]`.
    pub argv: Vec<String>,
    /// Its working directory, as written.
    pub workdir: Option<PathBuf>,
    /// What pymanager adds to its environment: an environment file's plain assignments,
    /// `PORT`, `PYMANAGER_PORT_…`, then `environment`.
    pub env: IndexMap<String, String>,
    /// Its ports, by name.
    pub ports: Vec<(String, u16)>,
    /// Loopback ports it listens on: its own ports and those its verifier checks.
    pub listens: Vec<u16>,
    /// Its verifier.
    pub verifier: Option<Check>,
    /// Its liveness check, with its period and failures.
    pub liveness: Option<(Check, Duration, u32)>,
    /// What it waits for: its `depends_on` and, in an ordered start-up, the process
    /// before it (`verified`), which pymanager waits for without being told.
    pub depends_on: Vec<(String, Condition)>,
    /// Its restart policy.
    pub restart: RestartConfig,
    /// The signal that asks it to stop, by name (`SIGTERM`).
    pub stop_signal: String,
    /// Its time between the stop signal and SIGKILL.
    pub grace: Duration,
    /// `export.image`.
    pub image: Option<String>,
    /// `suppress_output`.
    pub suppress_output: bool,
    /// `redirect_output`.
    pub redirect_output: Option<PathBuf>,
}

/// A verifier or liveness check, resolved.
#[derive(Debug, Clone)]
pub struct Check {
    /// Its field path (`processes.web.verifier`).
    pub at: String,
    /// What runs it.
    pub kind: CheckKind,
    /// Its arguments, references replaced.
    pub args: Value,
}

/// What a check's type names.
#[derive(Debug, Clone)]
pub enum CheckKind {
    /// A built-in component verifier.
    Builtin(&'static Builtin),
    /// The native `exec` verifier.
    Exec(ExecArgs),
    /// A verifier of a `.wasm` module: its path (relative to the config) and grants.
    Module {
        /// The component.
        path: PathBuf,
        /// The verifier's name in it.
        name: String,
        /// `allow.hosts`.
        hosts: Vec<String>,
    },
    /// A verifier that cannot run outside this config (a Python module, an unknown type).
    Other(String),
}

impl Check {
    /// Its `timeout` argument: `None` for `null` (no limit), 30 s when absent.
    pub fn timeout(&self) -> Option<Duration> {
        match &self.kind {
            CheckKind::Exec(a) => a.timeout,
            _ => match self.args.get("timeout") {
                Some(Value::Null) => None,
                v => Some(seconds(v).unwrap_or(Duration::from_secs(30))),
            },
        }
    }

    /// How often it tries: its `interval` argument, else the verifier's default.
    pub fn interval(&self) -> Duration {
        match &self.kind {
            CheckKind::Exec(a) => a.interval,
            CheckKind::Builtin(b) if b.short == "tcp" => {
                seconds(self.args.get("interval")).unwrap_or(Duration::from_millis(100))
            }
            _ => seconds(self.args.get("interval")).unwrap_or(Duration::from_secs(1)),
        }
    }

    /// The loopback port it checks, if it checks one (`url`, or `host` and `port`).
    pub fn loopback_port(&self) -> Option<u16> {
        let mut found = None;
        visit_addresses(&self.args, &mut |host, port| {
            if is_loopback(host) && found.is_none() {
                found = Some(port);
            }
            None
        });
        found
    }
}

fn seconds(v: Option<&Value>) -> Option<Duration> {
    let s = match v? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s.min(1e9)))
}

/// True for `localhost`, `127.x.x.x` and `::1`.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Calls `f(host, port)` for every address in a check's arguments — each URL with a port
/// (or a scheme's default port), and an object's `host` with its `port` (`host` defaults to
/// 127.0.0.1 beside a `port`, as the tcp verifier reads it) — and puts the host `f`
/// returns in its place.
pub fn visit_addresses(args: &Value, f: &mut dyn FnMut(&str, u16) -> Option<String>) -> Value {
    match args {
        Value::String(s) => match url::Url::parse(s) {
            Ok(mut u) if u.host_str().is_some() => {
                let (host, port) = (
                    u.host_str().unwrap_or_default().to_string(),
                    u.port_or_known_default(),
                );
                if let Some(port) = port
                    && let Some(new) = f(&host, port)
                    && u.set_host(Some(&new)).is_ok()
                {
                    return Value::String(u.to_string());
                }
                args.clone()
            }
            _ => args.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| visit_addresses(v, f)).collect()),
        Value::Object(map) => {
            let mut out: serde_json::Map<String, Value> = map
                .iter()
                .map(|(k, v)| (k.clone(), visit_addresses(v, f)))
                .collect();
            let port = map
                .get("port")
                .and_then(|p| p.as_u64().or_else(|| p.as_str()?.parse().ok()))
                .and_then(|p| u16::try_from(p).ok());
            if let Some(port) = port {
                let host = map
                    .get("host")
                    .and_then(Value::as_str)
                    .unwrap_or("127.0.0.1");
                if let Some(new) = f(host, port) {
                    out.insert("host".into(), Value::String(new));
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Resolves `config` for export; what it cannot carry over is added to `losses`.
pub fn resolve(
    config: &Config,
    inputs: &Inputs,
    losses: &mut Losses,
) -> Result<Source, ConfigError> {
    let table = number_ports(config, inputs.port_base, losses);
    let scope = Scope {
        ports: &table,
        env: inputs.env,
    };
    let reaches = crate::plan::dependency_closure(config);
    let shell = match &config.default_shell {
        StringOrBool::String(s) if !s.trim().is_empty() => s.clone(),
        _ => "/bin/sh".to_string(),
    };
    let mut processes = Vec::new();
    for (i, (name, p)) in config.processes.iter().enumerate() {
        let at = format!("processes.{name}");
        let mut arguments = Vec::new();
        for (j, a) in p.arguments.iter().enumerate() {
            arguments.push(
                scope
                    .expand(a, Escapes::Legacy)
                    .map_err(|e| ConfigError::invalid(format!("{at}.arguments.{j}"), e))?,
            );
        }
        let argv = match &p.options.shell {
            ShellChoice::None => std::iter::once(p.executable.clone())
                .chain(arguments)
                .collect(),
            choice => {
                let shell = match choice {
                    ShellChoice::Named(s) => s.clone(),
                    _ => shell.clone(),
                };
                let mut line = p.executable.clone();
                for a in &arguments {
                    line.push(' ');
                    line.push_str(a);
                }
                vec![shell, "-c".into(), line]
            }
        };
        let mut env = IndexMap::new();
        if let Some(file) = &p.options.environment_file {
            let at = format!("{at}.options.environment_file");
            let text = (inputs.read)(file).map_err(|e| ConfigError::invalid(&at, e))?;
            for (k, v) in super::dotenv::parse(&text, &at, losses) {
                env.insert(k, v);
            }
        }
        if let Some(first) = table[i].first() {
            env.insert("PORT".into(), first.number.to_string());
        }
        for j in std::iter::once(i).chain(reaches[i].iter().copied()) {
            let (process, list) = table.get_index(j).expect("one entry per process");
            for port in list {
                env.insert(
                    crate::config::port_var(process, &port.name),
                    port.number.to_string(),
                );
            }
        }
        for (k, v) in &p.environment {
            let v = scope
                .expand(v, Escapes::Strict)
                .map_err(|e| ConfigError::invalid(format!("{at}.environment.{k}"), e))?;
            env.insert(k.clone(), v);
        }
        let check = |v: &VerifierConfig, at: String| -> Result<Check, ConfigError> {
            let args = scope
                .expand_json(&v.arguments, &format!("{at}.arguments"))
                .map_err(|(path, e)| ConfigError::invalid(path, e))?;
            Ok(Check {
                kind: check_kind(&v.kind, &args, config, &at)?,
                at,
                args,
            })
        };
        let verifier = p
            .verifier
            .as_ref()
            .map(|v| check(v, format!("{at}.verifier")))
            .transpose()?;
        let liveness = p
            .liveness
            .as_ref()
            .map(|l: &LivenessConfig| {
                let v = VerifierConfig {
                    kind: l.kind.clone(),
                    arguments: l.arguments.clone(),
                };
                check(&v, format!("{at}.liveness")).map(|c| (c, l.period, l.failures))
            })
            .transpose()?;
        processes.push(Process {
            name: name.clone(),
            argv,
            workdir: p.options.working_directory.clone(),
            env,
            ports: table[i]
                .iter()
                .map(|p| (p.name.to_string(), p.number))
                .collect(),
            listens: Vec::new(),
            verifier,
            liveness,
            depends_on: {
                let mut d: Vec<(String, Condition)> = p
                    .depends_on
                    .0
                    .iter()
                    .map(|(k, c)| (k.clone(), *c))
                    .collect();
                if config.startup == crate::config::Startup::Ordered
                    && i > 0
                    && let Some((before, _)) = config.processes.get_index(i - 1)
                    && !d.iter().any(|(n, _)| n == before)
                {
                    d.push((before.clone(), Condition::Verified));
                }
                d
            },
            restart: p.restart,
            stop_signal: p.stop_signal.0.as_str().to_string(),
            grace: p.graceful_time.unwrap_or(config.graceful_time),
            image: p.export.image.clone(),
            suppress_output: p.options.suppress_output,
            redirect_output: p.options.redirect_output.clone(),
        });
    }
    // Who listens where: declared ports first, then the loopback port each verifier checks
    // (a process's verifier checks its own service), where nobody declared it.
    let mut owners = IndexMap::new();
    for p in &processes {
        for (_, n) in &p.ports {
            owners.entry(*n).or_insert_with(|| p.name.clone());
        }
    }
    for p in &processes {
        if let Some(port) = p.verifier.as_ref().and_then(Check::loopback_port) {
            owners.entry(port).or_insert_with(|| p.name.clone());
        }
    }
    for p in &mut processes {
        p.listens = owners
            .iter()
            .filter(|(_, o)| **o == p.name)
            .map(|(n, _)| *n)
            .collect();
    }
    Ok(Source { processes, owners })
}

/// Every process's ports with numbers: fixed ones as written, each 0 the next number from
/// `base` that no fixed port takes (a loss: the export cannot pick one at start-up).
fn number_ports(config: &Config, base: u16, losses: &mut Losses) -> PortTable {
    let fixed: Vec<u16> = config
        .processes
        .values()
        .flat_map(|p| p.ports.values().copied())
        .filter(|n| *n != 0)
        .collect();
    let mut next = base;
    let mut table = PortTable::new();
    for (name, p) in &config.processes {
        let mut list = Vec::new();
        for (port, n) in &p.ports {
            let number = if *n == 0 {
                while fixed.contains(&next) {
                    next = next.saturating_add(1);
                }
                let picked = next;
                next = next.saturating_add(1);
                losses.push(
                    format!("processes.{name}.ports.{port}"),
                    format!("0 (a free port picked at start-up) is exported as {picked} (--port-base {base})"),
                );
                picked
            } else {
                *n
            };
            list.push(Port {
                name: port.as_str().into(),
                number,
            });
        }
        table.insert(name.clone(), list);
    }
    table
}

/// What a check's `type` names, as the plan resolves it (without loading anything).
fn check_kind(
    kind: &str,
    args: &Value,
    config: &Config,
    at: &str,
) -> Result<CheckKind, ConfigError> {
    let kind = kind.trim();
    if let Some((module, name)) = kind.rsplit_once('.')
        && let Some(m) = config.modules.get(module)
        && let Some(path) = &m.path
    {
        return Ok(CheckKind::Module {
            path: path.clone(),
            name: name.to_string(),
            hosts: m.allow.hosts.clone().unwrap_or_default(),
        });
    }
    if exec_verifier::names(kind) {
        let (parsed, _) = ExecArgs::parse(args)
            .map_err(|e| ConfigError::invalid(format!("{at}.arguments"), e))?;
        return Ok(CheckKind::Exec(parsed));
    }
    Ok(match Builtin::resolve(kind) {
        Some(b) => CheckKind::Builtin(b),
        None => CheckKind::Other(kind.to_string()),
    })
}
