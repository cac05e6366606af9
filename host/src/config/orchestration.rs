//! The keys that go beyond the original: `startup`, and per process `depends_on`,
//! `restart`, `liveness`, `stop_signal` and `graceful_time`. Without them a config means
//! what it meant to the original; each is checked here, with its field path, before
//! anything starts.

use std::time::Duration;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, de::Error as _};
use serde_json::Value;

use super::{Config, ConfigError, flex};

/// How processes are started (`startup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Startup {
    /// The original's way: in config order, each verified before the next starts;
    /// `depends_on` may add waits but never reorders.
    #[default]
    Ordered,
    /// Each process starts the moment its `depends_on` conditions hold; processes without
    /// any start at once.
    Parallel,
}

/// What a process waits for in another (`depends_on` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// It was spawned.
    Started,
    /// Its verifier passed (without a verifier: it was spawned).
    Verified,
    /// It ended, with any code.
    Exited,
    /// It ended with code 0.
    ExitedOk,
}

impl Condition {
    /// The word in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Started => "started",
            Condition::Verified => "verified",
            Condition::Exited => "exited",
            Condition::ExitedOk => "exited_ok",
        }
    }
}

/// `depends_on`: `{"db": "verified", "migrate": "exited_ok"}`, or a list of names, each
/// meaning `verified`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DependsOn(pub IndexMap<String, Condition>);

impl<'de> Deserialize<'de> for DependsOn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Names(Vec<String>),
            Conditions(IndexMap<String, Condition>),
        }
        match Value::deserialize(d)? {
            Value::Null => Ok(DependsOn::default()),
            v @ (Value::Array(_) | Value::Object(_)) => match Form::deserialize(v) {
                Ok(Form::Names(names)) => Ok(DependsOn(
                    names
                        .into_iter()
                        .map(|n| (n, Condition::Verified))
                        .collect(),
                )),
                Ok(Form::Conditions(map)) => Ok(DependsOn(map)),
                Err(_) => Err(D::Error::custom(
                    "expected {\"<process>\": \"started\" | \"verified\" | \"exited\" | \"exited_ok\"} or a list of process names",
                )),
            },
            other => Err(D::Error::custom(format!(
                "expected an object of process names and conditions, or a list of names; found {}",
                flex::describe(&other)
            ))),
        }
    }
}

/// When a failed process is started again (`restart.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Never (the default, the original's behaviour).
    #[default]
    Never,
    /// After it fails: exits with a code other than 0 or by a signal, fails its verifier or
    /// its spawn, or fails its liveness check too often.
    OnFailure,
    /// After every end, code 0 included, and every failure.
    Always,
}

/// A process's `restart` object (or just its policy, as a string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartConfig {
    /// When.
    pub policy: Policy,
    /// Wait before the first restart in a row; doubles with each further one (0.5 s).
    pub backoff: Duration,
    /// The longest wait (30 s).
    pub max_backoff: Duration,
    /// Restarts in a row after which the process is failed (10).
    pub max_restarts: u32,
}

impl Default for RestartConfig {
    fn default() -> Self {
        RestartConfig {
            policy: Policy::Never,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_restarts: 10,
        }
    }
}

impl RestartConfig {
    /// The wait before restart number `attempt` in a row (1 for the first): `backoff`,
    /// doubled for each restart before it in the row, at most `max_backoff`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }

    /// How long a run must stay verified for its failures in a row to count from zero
    /// again: the longest wait, and never less than ten seconds.
    pub fn healthy_after(&self) -> Duration {
        self.max_backoff.max(Duration::from_secs(10))
    }
}

impl<'de> Deserialize<'de> for RestartConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            #[serde(default)]
            policy: Policy,
            #[serde(default, deserialize_with = "flex::optional_seconds")]
            backoff: Option<Duration>,
            #[serde(default, deserialize_with = "flex::optional_seconds")]
            max_backoff: Option<Duration>,
            #[serde(default)]
            max_restarts: Option<u32>,
        }
        let defaults = RestartConfig::default();
        match Value::deserialize(d)? {
            Value::String(s) => Policy::deserialize(Value::String(s))
                .map(|policy| RestartConfig { policy, ..defaults })
                .map_err(|_| D::Error::custom("expected \"never\", \"on-failure\" or \"always\"")),
            v @ Value::Object(_) => {
                let f = Full::deserialize(v).map_err(|e| D::Error::custom(flex::clean(&e)))?;
                Ok(RestartConfig {
                    policy: f.policy,
                    backoff: f.backoff.unwrap_or(defaults.backoff),
                    max_backoff: f.max_backoff.unwrap_or(defaults.max_backoff),
                    max_restarts: f.max_restarts.unwrap_or(defaults.max_restarts),
                })
            }
            other => Err(D::Error::custom(format!(
                "expected {{\"policy\": \"on-failure\", …}} or a policy name, found {}",
                flex::describe(&other)
            ))),
        }
    }
}

/// A process's `liveness` check: any verifier, run again every `period` once the process
/// is verified.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LivenessConfig {
    /// The verifier type, as for `verifier.type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its arguments; `{}` when absent.
    #[serde(default = "super::empty_object")]
    pub arguments: Value,
    /// Time from the end of one check to the start of the next (10 s).
    #[serde(default = "ten_seconds", deserialize_with = "flex::duration")]
    pub period: Duration,
    /// Failed checks in a row that make the process unhealthy (3).
    #[serde(default = "three")]
    pub failures: u32,
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

fn three() -> u32 {
    3
}

/// The signal that asks a process to stop (`stop_signal`): a name (`SIGINT`, `INT`, `int`)
/// or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopSignal(pub nix::sys::signal::Signal);

impl Default for StopSignal {
    fn default() -> Self {
        StopSignal(nix::sys::signal::Signal::SIGTERM)
    }
}

impl<'de> Deserialize<'de> for StopSignal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use nix::sys::signal::Signal;
        let v = Value::deserialize(d)?;
        let sig = match &v {
            Value::Number(n) => n
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .and_then(|n| Signal::try_from(n).ok()),
            Value::String(s) => {
                let upper = s.trim().to_ascii_uppercase();
                let name = if upper.starts_with("SIG") {
                    upper
                } else {
                    format!("SIG{upper}")
                };
                name.parse::<Signal>().ok().or_else(|| {
                    s.trim()
                        .parse::<i32>()
                        .ok()
                        .and_then(|n| Signal::try_from(n).ok())
                })
            }
            _ => None,
        };
        match sig {
            Some(Signal::SIGKILL | Signal::SIGSTOP) => Err(D::Error::custom(
                "SIGKILL and SIGSTOP cannot ask a process to stop gracefully; SIGKILL follows graceful_time anyway",
            )),
            Some(s) => Ok(StopSignal(s)),
            None => Err(D::Error::custom(format!(
                "expected a signal name such as \"SIGINT\" or a number, found {}",
                flex::describe(&v)
            ))),
        }
    }
}

/// Checks what spans processes: names in `depends_on`, cycles, the order of an ordered
/// start-up, and values that must relate (`max_backoff` ≥ `backoff`).
pub(super) fn check(config: &Config) -> Result<(), ConfigError> {
    let names: Vec<&str> = config.processes.keys().map(String::as_str).collect();
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(names.len());
    for (i, (name, p)) in config.processes.iter().enumerate() {
        let at = format!("processes.{name}");
        let mut mine = Vec::new();
        for on in p.depends_on.0.keys() {
            let here = format!("{at}.depends_on.{on}");
            let Some(j) = names.iter().position(|n| n == on) else {
                return Err(ConfigError::invalid(
                    here,
                    format!(
                        "no process is named {on:?} (there are: {})",
                        names.join(", ")
                    ),
                ));
            };
            if j == i {
                return Err(ConfigError::invalid(
                    here,
                    "a process cannot depend on itself",
                ));
            }
            if config.startup == Startup::Ordered && j > i {
                return Err(ConfigError::invalid(
                    here,
                    format!(
                        "{on} starts after {name} in an ordered start-up; list it before {name}, or set \"startup\": \"parallel\""
                    ),
                ));
            }
            mine.push(j);
        }
        deps.push(mine);
        let r = &p.restart;
        if r.max_backoff < r.backoff {
            return Err(ConfigError::invalid(
                format!("{at}.restart.max_backoff"),
                "must be at least backoff",
            ));
        }
        if let Some(l) = &p.liveness {
            let at = format!("{at}.liveness");
            if l.kind.trim().is_empty() {
                return Err(ConfigError::invalid(
                    format!("{at}.type"),
                    "must name a verifier",
                ));
            }
            if !l.arguments.is_object() {
                return Err(ConfigError::invalid(
                    format!("{at}.arguments"),
                    "expected an object of named arguments",
                ));
            }
            if l.period.is_zero() {
                return Err(ConfigError::invalid(
                    format!("{at}.period"),
                    "must be above 0",
                ));
            }
            if l.failures == 0 {
                return Err(ConfigError::invalid(
                    format!("{at}.failures"),
                    "must be at least 1",
                ));
            }
        }
    }
    if let Some(cycle) = crate::graph::cycle(&deps) {
        let path: Vec<&str> = cycle.iter().map(|i| names[*i]).collect();
        return Err(ConfigError::invalid(
            format!("processes.{}.depends_on", path[0]),
            format!("cycle {}", path.join(" -> ")),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
