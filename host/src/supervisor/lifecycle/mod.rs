//! The life of one process as one value, and the one function that changes it.
//!
//! [`State`] says everything the supervisor knows about a process: each variant carries the
//! data that exists in that stage and nothing else, so a stopped process has no pid to
//! signal and a verifying one always has a requester to answer or none. [`step`] is a pure
//! function from a state and an [`Input`] (a user's request, a report from a task the
//! actor started) to the next state and the [`Effect`]s the actor must carry out: spawn,
//! verify, cancel, signal, answer, write a line. It forks nothing and waits for nothing,
//! so every pair of state and input is tested without a process (`lifecycle/tests.rs`).
//!
//! New stages (waiting on dependencies, backing off before a restart, unhealthy after
//! liveness failures) are new variants and inputs here; the actor needs only the effects
//! they emit.

use std::time::SystemTime;

/// Names a requester waiting for an answer; the actor keeps the channel behind it, so that
/// states and effects stay plain data.
pub type ReplyId = u64;

/// One start of a process: the how-many-th (1 for the first) and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Counts starts; a report about an older run is recognised by it and ignored.
    pub n: u32,
    /// When this start began.
    pub at: SystemTime,
}

impl Run {
    fn first(at: SystemTime) -> Run {
        Run { n: 1, at }
    }

    fn next(self, at: SystemTime) -> Run {
        Run {
            n: self.n.saturating_add(1),
            at,
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal with this number ended it.
    Signal(i32),
}

impl Exit {
    /// The code the original pymanager reported: the exit code, or minus the signal number.
    pub fn legacy_code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => -s,
        }
    }
}

impl std::fmt::Display for Exit {
    /// `exited with code 3`, `killed by SIGTERM`: what a person reads in the log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Exit::Code(c) => write!(f, "exited with code {c}"),
            Exit::Signal(s) => match nix::sys::signal::Signal::try_from(s) {
                Ok(sig) => write!(f, "killed by {}", sig.as_str()),
                Err(_) => write!(f, "killed by signal {s}"),
            },
        }
    }
}

/// A spawned run's process: its pid (also its process group's id) and, once it ended, how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    /// The pid of the run's leader.
    pub pid: u32,
    /// How it ended, once it did.
    pub exit: Option<Exit>,
}

impl Proc {
    fn alive(pid: u32) -> Proc {
        Proc { pid, exit: None }
    }
}

/// What a user asked for; a second request on a busy process names the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Start a process that is not running.
    Start,
    /// Stop gracefully, start again, verify.
    Restart,
    /// Stop gracefully.
    Stop,
}

impl Op {
    /// The word in a 409 answer (`restart in progress`).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Restart => "restart",
            Op::Stop => "stop",
        }
    }
}

/// A user's request waiting for its run to be verified (or to fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiter {
    /// What was asked for.
    pub op: Op,
    /// Who to answer.
    pub reply: ReplyId,
}

/// What follows once a stopping process has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Stay stopped and answer this requester.
    Stop(ReplyId),
    /// Start again; this requester is answered once the new run is verified.
    Restart(ReplyId),
    /// Nothing: the manager is shutting down and stops everything at once.
    Shutdown,
}

/// Where the verifier of the latest run got to, kept while the run is stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It had not run (or the process has no verifier).
    Pending,
    /// A stop, restart or shutdown cut it short.
    Cancelled,
    /// It passed.
    Passed,
    /// It failed, for this reason.
    Failed(String),
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The process could not be spawned (or its output file opened).
    Spawn(String),
    /// Its verifier failed.
    Verify(String),
}

/// Everything the supervisor knows about one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Never started: waiting for its turn at start-up.
    Pending,
    /// Being spawned (the actor carries out [`Effect::Spawn`] and reports back).
    Starting {
        /// This start.
        run: Run,
        /// A user's request to answer once verified; none for the start-up's own start.
        waiter: Option<Waiter>,
    },
    /// Spawned; its verifier runs. The process may already have ended (a verifier that
    /// expects an exit).
    Verifying {
        /// This start.
        run: Run,
        /// Its process.
        proc: Proc,
        /// A user's request to answer with the verdict; none for the start-up's.
        waiter: Option<Waiter>,
    },
    /// Spawned and verified (or without a verifier), running.
    Running {
        /// This start.
        run: Run,
        /// Its pid.
        pid: u32,
    },
    /// Signalled to stop; waits for its process group to end.
    Stopping {
        /// The run being stopped.
        run: Run,
        /// Its process (the exit is recorded when it comes).
        proc: Proc,
        /// Where its verifier got to.
        verdict: Verdict,
        /// What follows.
        then: Then,
    },
    /// Stopped on request; starts again only on request.
    Stopped {
        /// The last run, if it ever started.
        run: Option<Run>,
        /// How that run ended, if it was spawned.
        exit: Option<Exit>,
        /// Where its verifier got to.
        verdict: Verdict,
    },
    /// Verified (or without a verifier), then ended on its own.
    Exited {
        /// The run that ended.
        run: Run,
        /// How.
        exit: Exit,
    },
    /// Could not be spawned, or its verifier failed. A process that failed verification
    /// may still run: it is not ended until it exits.
    Failed {
        /// The run that failed.
        run: Run,
        /// Why.
        why: Failure,
        /// Its process, if it was spawned.
        proc: Option<Proc>,
    },
}

impl State {
    /// True when no process of this entry runs and nothing is under way for it: what
    /// "every process has ended" counts.
    pub fn is_ended(&self) -> bool {
        match self {
            State::Pending | State::Stopped { .. } | State::Exited { .. } => true,
            State::Failed { proc, .. } => proc.is_none_or(|p| p.exit.is_some()),
            State::Starting { .. }
            | State::Verifying { .. }
            | State::Running { .. }
            | State::Stopping { .. } => false,
        }
    }

    /// True once the current run passed its verifier (or needed none), whether or not it
    /// still runs: what the start-up waits for before the next process.
    pub fn is_verified(&self) -> bool {
        matches!(self, State::Running { .. } | State::Exited { .. })
    }

    /// The current (or last) run, if the process was ever started.
    pub fn run(&self) -> Option<Run> {
        match self {
            State::Pending => None,
            State::Stopped { run, .. } => *run,
            State::Starting { run, .. }
            | State::Verifying { run, .. }
            | State::Running { run, .. }
            | State::Stopping { run, .. }
            | State::Exited { run, .. }
            | State::Failed { run, .. } => Some(*run),
        }
    }
}

/// Something that happens to a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Its turn at start-up came.
    Launch,
    /// A user asks to start it.
    Start(ReplyId),
    /// A user asks to restart it.
    Restart(ReplyId),
    /// A user asks to stop it.
    Stop(ReplyId),
    /// The spawn of the current run succeeded.
    Spawned {
        /// The new process.
        pid: u32,
    },
    /// The spawn of the current run failed.
    SpawnFailed {
        /// Why, in one line.
        reason: String,
    },
    /// The verifier of run `run` returned.
    Checked {
        /// Which run it verified.
        run: u32,
        /// Its verdict.
        result: Result<(), String>,
    },
    /// The process of run `run` ended.
    Exited {
        /// Which run.
        run: u32,
        /// How.
        exit: Exit,
    },
    /// The graceful stop of run `run` is complete: its group is gone.
    GroupStopped {
        /// Which run.
        run: u32,
    },
    /// The manager shuts down: everything stops at once.
    Shutdown,
}

/// How a request is answered. The actor adds the process's record to `Done`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Done; the process as it is now.
    Done,
    /// Another request on this process is under way (409); names it.
    Busy(&'static str),
    /// The manager is shutting down (403).
    ShuttingDown,
    /// Started, but it did not come up: why.
    Failed(String),
}

/// A line worth telling people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The process ended.
    Exited(Exit),
    /// Its verifier passed.
    Verified,
    /// Its verifier failed.
    VerifyFailed(String),
}

/// What the actor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Spawn run `run`, then report [`Input::Spawned`] or [`Input::SpawnFailed`].
    Spawn {
        /// The run to spawn.
        run: u32,
    },
    /// Start the verifier of run `run`; it reports [`Input::Checked`].
    Verify {
        /// The run to verify.
        run: u32,
    },
    /// Drop the verification under way.
    CancelVerify,
    /// Stop the process group `pid` gracefully; report [`Input::GroupStopped`].
    StopGroup {
        /// The run being stopped.
        run: u32,
        /// Its leader (and group id).
        pid: u32,
    },
    /// Answer a requester.
    Reply {
        /// Who.
        to: ReplyId,
        /// What.
        answer: Answer,
    },
    /// Write a line.
    Note(Note),
}

mod step;
pub use step::{Env, step};

#[cfg(test)]
mod tests;
