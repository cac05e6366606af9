//! Where the start-up time went: when each process began waiting on its dependencies, was
//! spawned, verified, failed and ended, and the chain of dependencies that decided when the
//! last one became ready.
//!
//! The actor feeds every state a process takes ([`Timeline::observe`]); the timeline keeps
//! only the first time each step happened in each run, as offsets from the supervisor's
//! start on a monotonic clock. `GET /api/v1/timeline` and the dashboard's waterfall read
//! it, and [`Timeline::summary`] is the line printed when the environment is ready:
//! `ready in 3.21 s — critical chain: db 1.40 s → migrate 0.62 s → api 1.19 s`.

use std::time::{Duration, Instant, SystemTime};

use super::lifecycle::State;
use crate::config::Condition;
use crate::plan::Dependency;

/// Runs kept per process: the first (the start-up's) and the latest ones, so that a process
/// restarted thousands of times costs the same as one restarted a few times.
pub const MAX_RUNS: usize = 16;

/// The time from pymanager's start to the supervisor's (loading and compiling verifier
/// modules, mostly) that [`Timeline::summary_from`] names as a link of its own, `set-up`.
const SETUP_SHOWN: Duration = Duration::from_millis(50);

/// Links of the critical chain the summary line names one by one; a longer chain (an
/// ordered start-up of many processes) has its middle folded into one `… N more …` link.
const SUMMARY_LINKS: usize = 8;

/// The times of every process since the supervisor started.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// When the supervisor started, on the wall clock: what every offset counts from.
    pub origin: SystemTime,
    /// The same moment on the monotonic clock, which the offsets are measured on.
    start: Instant,
    /// When the start-up was over with every process ready (or excused), if it was.
    pub ready: Option<Duration>,
    /// Every process, in config order.
    pub processes: Vec<ProcessTimes>,
}

/// One process's steps.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessTimes {
    /// The key under `processes`.
    pub name: String,
    /// What the start-up waited for before it launched the process (in an ordered
    /// start-up, the process before it being verified is one of them).
    pub depends_on: Vec<Dependency>,
    /// When it began waiting on them: the supervisor's start for a process that has any.
    pub waiting: Option<Duration>,
    /// Its runs, oldest first: the first one and the latest [`MAX_RUNS`]` - 1`.
    pub runs: Vec<RunTimes>,
}

/// When each step of one run happened, as offsets from [`Timeline::origin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunTimes {
    /// Counts starts: 1 for the first.
    pub run: u32,
    /// When its process was spawned (a run whose spawn failed has none).
    pub spawned: Option<Duration>,
    /// When it passed its verifier (or, without one, was spawned).
    pub verified: Option<Duration>,
    /// When it failed (its spawn, its verifier, or its end under a restart policy).
    pub failed: Option<Duration>,
    /// When its process ended.
    pub ended: Option<Duration>,
}

/// One link of the critical chain: a process, and how long the start-up waited for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// The process.
    pub name: String,
    /// From the previous link's `at` (or the supervisor's start) to this one's.
    pub took: Duration,
    /// When what the next link (or the start-up) waited for held: this process was
    /// verified, or started or ended, as the next one's dependency says.
    pub at: Duration,
}

impl Timeline {
    /// A timeline starting now, for processes `names` that the start-up launches once
    /// `deps` hold (each process's dependencies, the ordered start-up's included).
    pub fn new(names: Vec<String>, deps: Vec<Vec<Dependency>>) -> Timeline {
        Timeline::starting_at(Instant::now(), SystemTime::now(), names, deps)
    }

    fn starting_at(
        start: Instant,
        origin: SystemTime,
        names: Vec<String>,
        deps: Vec<Vec<Dependency>>,
    ) -> Timeline {
        let processes = names
            .into_iter()
            .zip(deps)
            .map(|(name, depends_on)| ProcessTimes {
                name,
                waiting: (!depends_on.is_empty()).then_some(Duration::ZERO),
                depends_on,
                runs: Vec::new(),
            })
            .collect();
        Timeline {
            origin,
            start,
            ready: None,
            processes,
        }
    }

    /// The time since the supervisor started.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Process `idx` is now in `state`.
    pub fn observe(&mut self, idx: usize, state: &State) {
        let at = self.now();
        self.observe_at(idx, state, at);
    }

    /// Process `idx` is in `state` at `at`: each step it shows is stamped, the first time.
    pub fn observe_at(&mut self, idx: usize, state: &State, at: Duration) {
        let Some(run) = state.run() else { return };
        let Some(p) = self.processes.get_mut(idx) else {
            return;
        };
        if p.runs.last().is_none_or(|r| r.run != run.n) {
            if p.runs.len() == MAX_RUNS {
                p.runs.remove(1);
            }
            p.runs.push(RunTimes {
                run: run.n,
                ..RunTimes::default()
            });
        }
        let Some(r) = p.runs.last_mut() else { return };
        let stamp = |slot: &mut Option<Duration>, now: bool| {
            if now && slot.is_none() {
                *slot = Some(at);
            }
        };
        stamp(&mut r.spawned, spawned(state));
        stamp(&mut r.verified, state.is_verified());
        stamp(
            &mut r.failed,
            matches!(state, State::Failed { .. } | State::BackingOff { .. }),
        );
        stamp(&mut r.ended, ended(state));
    }

    /// The start-up is over: every process is ready.
    pub fn set_ready(&mut self) {
        if self.ready.is_none() {
            self.ready = Some(self.now());
        }
    }

    /// The chain of dependencies that decided when the last process became ready, first
    /// link first; `None` until the start-up is over and ready.
    ///
    /// It starts from the process ready last and goes back, each time to the dependency
    /// whose condition held last before the process was spawned (the one it waited for
    /// longest), until a process that waited for nothing. Each link took from the
    /// previous one's `at` to its own, so the links add up to the time to ready.
    pub fn critical_chain(&self) -> Option<Vec<Link>> {
        let ready = self.ready?;
        let (mut idx, mut at) = self
            .processes
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((i, p.done_at(ready)?)))
            .max_by_key(|&(i, at)| (at, std::cmp::Reverse(i)))?;
        let mut chain = Vec::new();
        loop {
            let p = &self.processes[idx];
            chain.push((idx, at));
            // The run that got there, and when it was spawned.
            let Some(spawned) = p
                .runs
                .iter()
                .rev()
                .find_map(|r| r.spawned.filter(|s| *s <= at))
            else {
                break;
            };
            let decided = p
                .depends_on
                .iter()
                .filter_map(|d| {
                    let on = self.processes.get(d.on)?;
                    Some((d.on, on.held_at(d.condition, spawned)?))
                })
                .max_by_key(|&(_, t)| t);
            match decided {
                Some((on, t)) if chain.len() <= self.processes.len() => (idx, at) = (on, t),
                _ => break,
            }
        }
        chain.reverse();
        let mut before = Duration::ZERO;
        Some(
            chain
                .into_iter()
                .map(|(i, at)| {
                    let took = at.saturating_sub(before);
                    before = before.max(at);
                    Link {
                        name: self.processes[i].name.clone(),
                        took,
                        at,
                    }
                })
                .collect(),
        )
    }

    /// `ready in 3.21 s — critical chain: db 1.40 s → migrate 0.62 s → api 1.19 s`, once
    /// the start-up is over and ready, counted from the supervisor's start.
    pub fn summary(&self) -> Option<String> {
        self.summary_from(self.origin)
    }

    /// The summary counted from `began`, when pymanager started (before it loaded its
    /// verifier modules): what the foreground, `-d` and `run` print. The time before the
    /// supervisor started is a link of its own, `set-up 0.29 s`, when it is 0.05 s or more
    /// (a module compiled on a first run can take seconds).
    pub fn summary_from(&self, began: SystemTime) -> Option<String> {
        let setup = self.origin.duration_since(began).unwrap_or_default();
        let ready = self.ready?;
        let mut chain = self.critical_chain()?;
        if setup >= SETUP_SHOWN {
            chain.insert(
                0,
                Link {
                    name: "set-up".into(),
                    took: setup,
                    at: Duration::ZERO,
                },
            );
        }
        Some(format!(
            "ready in {} — critical chain: {}",
            seconds(ready + setup),
            chain_text(&chain)
        ))
    }
}

/// `1.40 s`.
pub fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// `db 1.40 s → migrate 0.62 s → api 1.19 s`; a chain longer than [`SUMMARY_LINKS`] keeps
/// its first and last links and folds the middle: `… 92 more 10.02 s …`.
fn chain_text(chain: &[Link]) -> String {
    let link = |l: &Link| format!("{} {}", l.name, seconds(l.took));
    if chain.len() <= SUMMARY_LINKS {
        return chain.iter().map(link).collect::<Vec<_>>().join(" → ");
    }
    let head = SUMMARY_LINKS / 2;
    let tail = SUMMARY_LINKS - head - 1;
    let middle = &chain[head..chain.len() - tail];
    let folded = format!(
        "… {} more {} …",
        middle.len(),
        seconds(middle.iter().map(|l| l.took).sum())
    );
    chain[..head]
        .iter()
        .map(link)
        .chain(std::iter::once(folded))
        .chain(chain[chain.len() - tail..].iter().map(link))
        .collect::<Vec<_>>()
        .join(" → ")
}

impl ProcessTimes {
    /// When the process became what the start-up waits for, by `ready`: verified, or else
    /// failed or ended (a failure the start-up excuses).
    fn done_at(&self, ready: Duration) -> Option<Duration> {
        let by = |f: fn(&RunTimes) -> Option<Duration>| {
            self.runs.iter().filter_map(f).filter(|t| *t <= ready).max()
        };
        by(|r| r.verified).or_else(|| by(|r| r.failed.or(r.ended)))
    }

    /// The last time by `by` at which `condition` came to hold for this process.
    fn held_at(&self, condition: Condition, by: Duration) -> Option<Duration> {
        self.runs
            .iter()
            .filter_map(|r| match condition {
                Condition::Started => r.spawned,
                Condition::Verified => r.verified,
                Condition::Exited | Condition::ExitedOk => r.ended.or(r.failed),
            })
            .filter(|t| *t <= by)
            .max()
    }
}

/// True once the run's process was spawned.
fn spawned(state: &State) -> bool {
    match state {
        State::Pending | State::Starting { .. } => false,
        State::Failed { proc, .. } | State::BackingOff { proc, .. } => proc.is_some(),
        State::Stopped { exit, .. } => exit.is_some(),
        State::Verifying { .. }
        | State::Running { .. }
        | State::Unhealthy { .. }
        | State::Stopping { .. }
        | State::Exited { .. } => true,
    }
}

/// True once the run's process ended.
fn ended(state: &State) -> bool {
    match state {
        State::Verifying { proc, .. } | State::Stopping { proc, .. } => proc.exit.is_some(),
        State::Failed { proc, .. } | State::BackingOff { proc, .. } => {
            proc.is_some_and(|p| p.exit.is_some())
        }
        State::Stopped { exit, .. } => exit.is_some(),
        State::Exited { .. } => true,
        State::Pending
        | State::Starting { .. }
        | State::Running { .. }
        | State::Unhealthy { .. } => false,
    }
}

#[cfg(test)]
mod tests;
