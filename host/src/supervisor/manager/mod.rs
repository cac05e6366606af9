//! The manager's own life as one value, and the one function that changes it.
//!
//! Beside each process's [`lifecycle`](super::lifecycle), the manager has a life of its
//! own: it launches the processes as the [`Startup`] allows, is running once every one is
//! verified, shuts down — on request, on a start-up failure, or when every process ended
//! without keep-alive — and is done once nothing it started is left. A [`Manager`] holds
//! all of that in one value: the [`Stage`] (the start-up's progress while starting; the
//! outcome, the deadline and whether it was forced while shutting down), and the
//! shutdown's order ([`Teardown`]). [`step`] is a pure function from a manager, an
//! [`Input`] and the processes' states (read, never changed) to the next manager and the
//! [`Effect`]s the actor carries out. Time comes in with the input ([`Env::now`]), so every
//! shutdown order is tested without a process or a clock (`manager/tests.rs`, against
//! `manager/shutdowns.txt`).
//!
//! A shutdown takes the path a user's stop takes: the manager asks each process, in the
//! teardown's order, to stop with its own grace ([`Effect::Stop`]); its lifecycle turns
//! that into the same `StopGroup` effect a stop gives. The whole shutdown is bounded by
//! the largest grace: a process asked late gets only what is left before the deadline,
//! and everything still there at the deadline is killed ([`Effect::EndAll`]).

use std::borrow::Borrow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Outcome;
use super::handle::{CommandError, Phase};
use super::lifecycle::{Failure, State};
use super::startup::{Next, Startup};
use super::teardown::Teardown;
use crate::config::Condition;
use crate::plan::{Dependency, Plan};

/// The longest a shutdown's deadline lies ahead, whatever the graces say: an instant
/// further away would not be representable.
const FARTHEST: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The manager: where it is in its life, and what it needs to decide the rest.
#[derive(Debug, Clone)]
pub struct Manager {
    stage: Stage,
    /// The order of the shutdown, once one begins.
    teardown: Teardown,
    /// Each process's grace at shutdown (its own `graceful_time`, else the global one).
    graces: Vec<Duration>,
    /// The whole shutdown's bound: the largest grace.
    bound: Duration,
    /// Stay up after every process has ended.
    keep_alive: bool,
    /// What a failure line names of each process.
    labels: Vec<Label>,
}

/// A process as a failure line names it.
#[derive(Debug, Clone)]
struct Label {
    name: Arc<str>,
    /// Its verifier's type, as written in the config (empty without one).
    verifier: String,
}

/// Where the manager is in its life.
#[derive(Debug, Clone)]
pub enum Stage {
    /// Launching the processes as the start-up allows; nobody has been told yet whether
    /// the start-up succeeds.
    Starting(Startup),
    /// Every process was started and verified.
    Running,
    /// Stopping everything.
    ShuttingDown(Shutdown),
    /// Nothing the manager started is left.
    Done(Shutdown),
}

/// A shutdown under way (or over).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shutdown {
    /// How the manager ends.
    pub outcome: Outcome,
    /// When everything still running is killed.
    pub deadline: Instant,
    /// A second SIGINT asked to kill everything at once.
    pub forced: bool,
}

/// Something that happens to the manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A message was handled, so the processes' states may have changed: look again.
    Changed,
    /// Someone asks for the shutdown (the REST API, a signal, the end of a watched process).
    Shutdown,
    /// Kill everything at once (a second SIGINT).
    Force,
    /// Nothing the manager started is left.
    AllGone,
}

/// What a step reads besides the manager and the input.
pub struct Env<'a, S> {
    /// Now: the base of the shutdown's deadline.
    pub now: Instant,
    /// Every process's state, in config order.
    pub states: &'a [S],
}

/// A line worth telling people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// Every process was started and verified (in the log).
    Running,
    /// Every process has ended (in the log).
    AllEnded,
    /// The original's line on stdout: `Shutting down gracefully (SIGINT again to terminate
    /// immediately)...`.
    ShuttingDown,
}

/// Why the start-up failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupFailed {
    /// One line: `process web failed verification (http): …`.
    pub line: String,
    /// The process whose failure ended it (for a dependency that will never hold, the
    /// dependency).
    pub culprit: usize,
    /// The processes not started yet because they waited for it, with what they waited for.
    pub waiters: Vec<(usize, Condition)>,
}

/// What the actor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Launch process `idx`: its lifecycle's `Launch`.
    Launch(usize),
    /// The application's phase is now this one: publish it.
    Phase(Phase),
    /// Write a line.
    Note(Note),
    /// Answer the readiness: every process is verified.
    Ready,
    /// The start-up failed: report it (the log, an event, the snapshot) and answer the
    /// readiness with it.
    StartupFailed(StartupFailed),
    /// A shutdown cut the start-up short: answer the readiness so.
    StartupInterrupted,
    /// Answer the requester of the shutdown.
    Answer(Result<(), CommandError>),
    /// Every process shuts down (its lifecycle's `Shutdown`): verifications and waits end
    /// early, nothing starts again.
    ShutDown,
    /// Kill everything at once from now on.
    Kill,
    /// End everything the manager has: its children other than `spare` (the processes
    /// that ran when the shutdown began, which [`Effect::Stop`] stops in order) get SIGTERM
    /// now, and everything still there at `deadline` gets SIGKILL, `spare` included, and
    /// what they left behind. Report [`Input::AllGone`] when nothing is left.
    EndAll {
        /// When the graces are over.
        deadline: Instant,
        /// The pids the teardown stops.
        spare: Vec<u32>,
    },
    /// The shutdown's turn for process `idx`: its lifecycle's `Teardown`, which signals
    /// its group and gives it `grace` before SIGKILL.
    Stop {
        /// The process.
        idx: usize,
        /// Its own grace at shutdown, or what is left before the deadline if that is less.
        grace: Duration,
    },
}

impl Manager {
    /// The manager of `plan`, about to launch its processes.
    pub fn new(plan: &Plan) -> Manager {
        let graces: Vec<Duration> = plan
            .processes
            .iter()
            .map(|p| p.orchestration.stop.shutdown_grace)
            .collect();
        let depends_on = plan
            .processes
            .iter()
            .map(|p| p.orchestration.depends_on.clone())
            .collect::<Vec<Vec<Dependency>>>();
        Manager {
            stage: Stage::Starting(Startup::new(plan.startup, depends_on)),
            teardown: Teardown::new(
                plan.startup,
                &crate::plan::start_deps(&plan.processes, crate::config::Startup::Parallel),
            ),
            bound: graces.iter().copied().max().unwrap_or_default(),
            graces,
            keep_alive: plan.keep_alive,
            labels: plan
                .processes
                .iter()
                .map(|p| Label {
                    name: p.name.clone(),
                    verifier: p.verifier.as_ref().map_or("", |v| &v.kind).to_string(),
                })
                .collect(),
        }
    }

    /// Where it is.
    pub fn stage(&self) -> &Stage {
        &self.stage
    }

    /// The phase the API reports.
    pub fn phase(&self) -> Phase {
        match &self.stage {
            Stage::Starting(_) => Phase::Launching,
            Stage::Running => Phase::Running,
            Stage::ShuttingDown(s) | Stage::Done(s) if s.forced => Phase::ForceShutdown,
            Stage::ShuttingDown(_) | Stage::Done(_) => Phase::Shutdown,
        }
    }

    /// The start-up, while it runs.
    pub fn startup(&self) -> Option<&Startup> {
        match &self.stage {
            Stage::Starting(s) => Some(s),
            _ => None,
        }
    }

    /// True once a shutdown has begun: requests are refused, nothing starts again.
    pub fn is_shutting_down(&self) -> bool {
        matches!(self.stage, Stage::ShuttingDown(_) | Stage::Done(_))
    }

    /// True once nothing the manager started is left.
    pub fn is_done(&self) -> bool {
        matches!(self.stage, Stage::Done(_))
    }

    /// How the manager ends, once a shutdown has begun.
    pub fn outcome(&self) -> Option<&Outcome> {
        match &self.stage {
            Stage::ShuttingDown(s) | Stage::Done(s) => Some(&s.outcome),
            _ => None,
        }
    }

    /// True while the start-up waits for process `i` to be verified: its failure would be
    /// the start-up's.
    pub fn waits_on(&self, i: usize) -> bool {
        self.startup().is_some_and(|s| s.waits_on(i))
    }

    /// Looks at the processes again: launch what the start-up allows, end the start-up,
    /// end the manager once everything ended, stop what the shutdown's order lets go.
    fn look<S: Borrow<State>>(&mut self, env: &Env<'_, S>, fx: &mut Vec<Effect>) {
        match &mut self.stage {
            Stage::Starting(startup) => match startup.next(env.states) {
                Next::Wait => {}
                // One at a time: the next one may wait for what this one becomes.
                Next::Launch(idx) => fx.push(Effect::Launch(idx)),
                Next::Ready => {
                    self.stage = Stage::Running;
                    // The phase first: whoever learns that the manager is ready finds
                    // it running.
                    fx.push(Effect::Phase(Phase::Running));
                    fx.push(Effect::Note(Note::Running));
                    fx.push(Effect::Ready);
                    self.look(env, fx);
                }
                next => {
                    let failed = self.failure(&next, env.states);
                    let outcome = Outcome::StartupFailed(failed.line.clone());
                    fx.push(Effect::StartupFailed(failed));
                    self.shut_down(outcome, false, env, fx);
                }
            },
            Stage::Running => {
                if !self.keep_alive && env.states.iter().all(|s| s.borrow().is_ended()) {
                    fx.push(Effect::Note(Note::AllEnded));
                    self.shut_down(Outcome::AllEnded, false, env, fx);
                }
            }
            Stage::ShuttingDown(_) => self.tear_down(env, fx),
            Stage::Done(_) => {}
        }
    }

    /// Begins the shutdown: everything shuts down, what runs is stopped in the teardown's
    /// order, and everything is killed at the deadline (at once if `forced`).
    fn shut_down<S: Borrow<State>>(
        &mut self,
        outcome: Outcome,
        forced: bool,
        env: &Env<'_, S>,
        fx: &mut Vec<Effect>,
    ) {
        if outcome != Outcome::AllEnded {
            fx.push(Effect::Note(Note::ShuttingDown));
        }
        let failed = matches!(outcome, Outcome::StartupFailed(_));
        if matches!(self.stage, Stage::Starting(_)) && !failed {
            fx.push(Effect::StartupInterrupted);
        }
        let deadline = env
            .now
            .checked_add(self.bound.min(FARTHEST))
            .unwrap_or(env.now);
        self.stage = Stage::ShuttingDown(Shutdown {
            outcome,
            deadline,
            forced,
        });
        fx.push(Effect::Phase(self.phase()));
        fx.push(Effect::ShutDown);
        let spare = env
            .states
            .iter()
            .filter_map(|s| s.borrow().live_pid())
            .collect();
        fx.push(Effect::EndAll { deadline, spare });
        self.tear_down(env, fx);
    }

    /// Asks the processes the teardown lets go now to stop, each with its own grace, or
    /// what is left before the deadline if that is less. A forced shutdown asks nobody:
    /// everything is being killed.
    fn tear_down<S: Borrow<State>>(&mut self, env: &Env<'_, S>, fx: &mut Vec<Effect>) {
        let Stage::ShuttingDown(s) = &self.stage else {
            return;
        };
        if s.forced {
            return;
        }
        let left = s.deadline.saturating_duration_since(env.now);
        for idx in self.teardown.next(env.states) {
            let grace = self.graces[idx].min(left);
            fx.push(Effect::Stop { idx, grace });
        }
    }

    /// Why the start-up ended with `next` (a failure), in one line, with its culprit and who
    /// waited for it.
    fn failure<S: Borrow<State>>(&self, next: &Next, states: &[S]) -> StartupFailed {
        let name = |i: usize| &*self.labels[i].name;
        let (line, culprit) = match *next {
            Next::Blocked {
                idx,
                on,
                condition,
                ref why,
            } => {
                let (name, dep) = (name(idx), name(on));
                let line = format!(
                    "process {name} cannot start: {dep} {why} (processes.{name}.depends_on.{dep}: {})",
                    condition.as_str()
                );
                (line, on)
            }
            Next::Failed(idx) => {
                let (name, kind) = (name(idx), &self.labels[idx].verifier);
                let line = match states[idx].borrow() {
                    State::Failed {
                        why: Failure::Verify(reason),
                        ..
                    } => format!("process {name} failed verification ({kind}): {reason}"),
                    State::Failed {
                        why: Failure::Spawn(reason),
                        ..
                    } => format!("could not set up processes: processes.{name}: {reason}"),
                    State::Failed { why, .. } => format!("process {name} failed: {why}"),
                    _ => format!("process {name} failed"),
                };
                (line, idx)
            }
            Next::Wait | Next::Launch(_) | Next::Ready => {
                unreachable!("the start-up did not fail")
            }
        };
        let waiters = self
            .startup()
            .map(|s| s.waiting_on(culprit))
            .unwrap_or_default();
        StartupFailed {
            line: crate::error_text::one_line(&line),
            culprit,
            waiters,
        }
    }
}

/// The next manager and what to do, given what happened. Pure: it reads the clock from
/// `env` and the processes' states, and changes neither.
pub fn step<S: Borrow<State>>(
    mut manager: Manager,
    input: Input,
    env: &Env<'_, S>,
) -> (Manager, Vec<Effect>) {
    let mut fx = Vec::new();
    match input {
        Input::Changed => manager.look(env, &mut fx),
        Input::Shutdown if manager.is_shutting_down() => {
            fx.push(Effect::Answer(Err(CommandError::ShuttingDown)));
        }
        Input::Shutdown => {
            fx.push(Effect::Answer(Ok(())));
            manager.shut_down(Outcome::Shutdown, false, env, &mut fx);
        }
        Input::Force => match &mut manager.stage {
            Stage::ShuttingDown(s) if !s.forced => {
                s.forced = true;
                fx.push(Effect::Kill);
                fx.push(Effect::Phase(Phase::ForceShutdown));
            }
            Stage::ShuttingDown(_) | Stage::Done(_) => {}
            Stage::Starting(_) | Stage::Running => {
                fx.push(Effect::Kill);
                manager.shut_down(Outcome::Shutdown, true, env, &mut fx);
            }
        },
        Input::AllGone => {
            if let Stage::ShuttingDown(s) = &manager.stage {
                manager.stage = Stage::Done(s.clone());
            }
        }
    }
    (manager, fx)
}

impl Default for Manager {
    /// A manager of no process: what stands in for one while [`step`] runs.
    fn default() -> Manager {
        Manager {
            stage: Stage::Running,
            teardown: Teardown::new(crate::config::Startup::Ordered, &[]),
            graces: Vec::new(),
            bound: Duration::ZERO,
            keep_alive: false,
            labels: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
