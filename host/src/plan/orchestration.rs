//! How each process fits with the others, resolved from the config: what it waits for (by
//! index), when it restarts, how it is checked once verified, and how it is stopped.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::VerifierSpec;
use crate::config::{
    Condition, ConfigError, ProcessConfig, RestartConfig, Startup, VerifierConfig,
};

/// What one process waits for in another before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dependency {
    /// The index (in config order) of the process it waits for.
    pub on: usize,
    /// What must be true of it.
    pub condition: Condition,
}

/// A liveness check: a verifier, how often, how many failures in a row make it unhealthy.
#[derive(Debug, Clone)]
pub struct LivenessSpec {
    /// The verifier, resolved as a process's own is.
    pub verifier: VerifierSpec,
    /// Time from the end of one check to the start of the next.
    pub period: Duration,
    /// Failed checks in a row that make the process unhealthy.
    pub failures: u32,
}

/// A process's place among the others.
#[derive(Debug, Clone, Default)]
pub struct Orchestration {
    /// What it waits for before it starts.
    pub depends_on: Vec<Dependency>,
    /// When it is started again by itself.
    pub restart: RestartConfig,
    /// Its liveness check, if any.
    pub liveness: Option<LivenessSpec>,
    /// How it is asked to stop.
    pub stop: StopRule,
}

/// Grace given to a process on a user's stop or restart (and its restart policy's) before
/// SIGKILL, when it has no `graceful_time` of its own: the original's 5 s.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// How a process is asked to stop, resolved once here: every stop — a user's, the restart
/// policy's, the shutdown's — sends `signal` and waits one of these graces before SIGKILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopRule {
    /// Its `stop_signal` (SIGTERM by default).
    pub signal: Signal,
    /// On a user's stop or restart, or its restart policy's: its own `graceful_time`, else
    /// [`STOP_GRACE`].
    pub grace: Duration,
    /// At shutdown: its own `graceful_time`, else the global one. The largest of them
    /// bounds the whole shutdown.
    pub shutdown_grace: Duration,
}

impl StopRule {
    /// The rule of a process with `stop_signal` `signal` and its own `graceful_time` `own`,
    /// in a config whose global `graceful_time` is `global`.
    pub fn new(signal: Signal, own: Option<Duration>, global: Duration) -> StopRule {
        StopRule {
            signal,
            grace: own.unwrap_or(STOP_GRACE),
            shutdown_grace: own.unwrap_or(global),
        }
    }
}

impl Default for StopRule {
    /// SIGTERM, the original's graces.
    fn default() -> StopRule {
        StopRule::new(Signal::SIGTERM, None, crate::config::DEFAULT_GRACEFUL_TIME)
    }
}

/// Resolves process `p`'s orchestration keys; `names` are every process's name in config
/// order (the config check made sure each dependency names one). `verifier` resolves a
/// verifier type and its arguments at a field path, as for `verifier`; `graceful_time` is
/// the config's global one.
pub(crate) fn resolve(
    p: &ProcessConfig,
    at: &str,
    names: &[&str],
    graceful_time: Duration,
    mut verifier: impl FnMut(&VerifierConfig, String) -> Result<VerifierSpec, ConfigError>,
) -> Result<Orchestration, ConfigError> {
    let depends_on = p
        .depends_on
        .0
        .iter()
        .map(|(on, condition)| {
            names
                .iter()
                .position(|n| n == on)
                .map(|on| Dependency {
                    on,
                    condition: *condition,
                })
                .ok_or_else(|| {
                    ConfigError::invalid(format!("{at}.depends_on.{on}"), "no such process")
                })
        })
        .collect::<Result<_, _>>()?;
    let liveness = match &p.liveness {
        Some(l) => Some(LivenessSpec {
            verifier: verifier(
                &VerifierConfig {
                    kind: l.kind.clone(),
                    arguments: l.arguments.clone(),
                },
                format!("{at}.liveness"),
            )?,
            period: l.period,
            failures: l.failures,
        }),
        None => None,
    };
    Ok(Orchestration {
        depends_on,
        restart: p.restart,
        liveness,
        stop: StopRule::new(p.stop_signal.0, p.graceful_time, graceful_time),
    })
}

/// The start plan as `check` prints it: the levels of the dependency graph, each process
/// with what it waits for.
pub fn start_plan(plan: &super::Plan) -> String {
    let deps = start_deps(&plan.processes, plan.startup);
    let mut out = match plan.startup {
        Startup::Ordered => "start plan (ordered: each process verified before the next):\n",
        Startup::Parallel => "start plan (parallel: each process once what it waits for holds):\n",
    }
    .to_string();
    for (level, members) in crate::graph::levels(&deps).iter().enumerate() {
        let names: Vec<String> = members
            .iter()
            .map(|&i| {
                let p = &plan.processes[i];
                let waits: Vec<String> = p
                    .orchestration
                    .depends_on
                    .iter()
                    .map(|d| format!("{}: {}", plan.processes[d.on].name, d.condition.as_str()))
                    .collect();
                if waits.is_empty() {
                    p.name.to_string()
                } else {
                    format!("{} (after {})", p.name, waits.join(", "))
                }
            })
            .collect();
        out.push_str(&format!("  {}. {}\n", level + 1, names.join(", ")));
    }
    out
}

/// The dependencies of every process by index, as the start-up sees them: in an ordered
/// start-up each process also waits for the one before it to be verified.
pub fn start_deps(
    processes: &[std::sync::Arc<super::ProcessSpec>],
    startup: Startup,
) -> Vec<Vec<usize>> {
    processes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut d: Vec<usize> = p.orchestration.depends_on.iter().map(|d| d.on).collect();
            if startup == Startup::Ordered && i > 0 && !d.contains(&(i - 1)) {
                d.push(i - 1);
            }
            d
        })
        .collect()
}
