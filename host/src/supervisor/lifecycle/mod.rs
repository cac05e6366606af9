//! The life of one process as one value, and the one function that changes it.
//!
//! [`State`] says everything the supervisor knows about a process: each variant carries the
//! data that exists in that stage and nothing else, so a stopped process has no pid to
//! signal and a verifying one always has a requester to answer or none. [`step`] is a pure
//! function from a state and an [`Input`] (a user's request, a report from a task the
//! actor started, a timer) to the next state and the [`Effect`]s the actor must carry out:
//! spawn, verify, probe, schedule, cancel, signal, answer, write a line. It forks nothing
//! and waits for nothing, so every pair of state and input is tested without a process
//! (`lifecycle/tests.rs`).
//!
//! The rules live in three files: `step.rs` (starting, verifying, stopping: what a user
//! and the start-up ask for), `recovery.rs` (what a failure leads to under the process's
//! restart policy, and liveness checks). Types are here.

use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;

mod recovery;
mod step;

pub use step::{Env, step};

/// Names a requester waiting for an answer; the actor keeps the channel behind it, so that
/// states and effects stay plain data.
pub type ReplyId = u64;

/// One start of a process: the how-many-th (1 for the first), when, and what came before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Counts starts; a report about an older run is recognised by it and ignored.
    pub n: u32,
    /// When this start began.
    pub at: SystemTime,
    /// Failed runs in a row before this one (0 after a user's start or a healthy run): what
    /// the restart policy's backoff and `max_restarts` count.
    pub streak: u32,
    /// How the run before this one ended, if it was spawned and ended.
    pub previous: Option<Exit>,
}

impl Run {
    /// The first start.
    fn first(at: SystemTime) -> Run {
        Run {
            n: 1,
            at,
            streak: 0,
            previous: None,
        }
    }

    /// The start after `prev` (if any), `streak` failed runs in a row so far.
    fn after(prev: Option<Run>, last: Option<Exit>, streak: u32, at: SystemTime) -> Run {
        Run {
            n: prev.map_or(1, |r| r.n.saturating_add(1)),
            at,
            streak,
            previous: last,
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

    /// True for an exit code 0: what `on-failure` leaves alone and `exited_ok` waits for.
    pub fn is_success(self) -> bool {
        self == Exit::Code(0)
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    /// Stay stopped and answer this requester.
    Stop(ReplyId),
    /// Start again; this requester is answered once the new run is verified.
    Restart(ReplyId),
    /// Back off, then start again (the restart policy, after this failure).
    Retry(Failure),
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
    /// It ended when its restart policy says it must not (`on-failure`: a non-zero code or a
    /// signal; `always`: any end).
    Exit(Exit),
    /// Its liveness check failed `failures` times in a row; the last reason.
    Unhealthy(String),
    /// Its restart policy gave up after this many restarts in a row; the last failure.
    GaveUp(u32, Box<Failure>),
}

impl Failure {
    /// Where the verifier got to in a run that failed this way.
    pub fn verdict(&self) -> Verdict {
        match self {
            Failure::Verify(reason) => Verdict::Failed(reason.clone()),
            Failure::GaveUp(_, last) => last.verdict(),
            Failure::Spawn(_) => Verdict::Pending,
            Failure::Exit(_) | Failure::Unhealthy(_) => Verdict::Passed,
        }
    }
}

impl std::fmt::Display for Failure {
    /// One line for people: `verification failed: …`, `exited with code 1`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Spawn(r) => write!(f, "{r}"),
            Failure::Verify(r) => write!(f, "verification failed: {r}"),
            Failure::Exit(e) => write!(f, "{e}"),
            Failure::Unhealthy(r) => write!(f, "liveness check failed: {r}"),
            Failure::GaveUp(n, last) => write!(f, "gave up after {n} restarts in a row: {last}"),
        }
    }
}

pub use crate::config::{Policy, RestartConfig as Restart};

/// A process's liveness check, once it is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Liveness {
    /// Time from one check's end to the next one's start.
    pub period: Duration,
    /// Failed checks in a row that make the process unhealthy.
    pub failures: u32,
}

/// The fixed rules of one process, from its config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rules {
    /// It has a verifier.
    pub verifier: bool,
    /// Its restart policy.
    pub restart: Restart,
    /// Its liveness check, if any.
    pub liveness: Option<Liveness>,
    /// Its stop signal and graces.
    pub stop: StopRule,
}

pub use crate::plan::StopRule;

impl Rules {
    /// The rules of the process `spec` describes.
    pub fn of(spec: &crate::plan::ProcessSpec) -> Rules {
        let how = &spec.orchestration;
        Rules {
            verifier: spec.verifier.is_some(),
            restart: how.restart,
            liveness: how.liveness.as_ref().map(|l| Liveness {
                period: l.period,
                failures: l.failures,
            }),
            stop: how.stop,
        }
    }
}

/// Everything the supervisor knows about one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Never started: waiting for its turn (or its dependencies) at start-up.
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
        /// When it was verified; a run healthy for long enough resets the restart count.
        since: SystemTime,
        /// Liveness checks failed in a row so far (fewer than make it unhealthy).
        misses: u32,
    },
    /// Running, but its liveness check failed too often in a row (its restart policy is
    /// `never`, so it is left running, and checked on).
    Unhealthy {
        /// This start.
        run: Run,
        /// Its pid.
        pid: u32,
        /// Liveness checks failed in a row.
        misses: u32,
        /// Why the last one failed.
        reason: String,
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
    /// Failed; waits out its backoff before its restart policy starts it again.
    BackingOff {
        /// The run that failed.
        run: Run,
        /// Its process, if it was spawned (ended).
        proc: Option<Proc>,
        /// Why it failed.
        why: Failure,
        /// When the next attempt starts.
        until: SystemTime,
    },
    /// Could not be spawned, failed its verification, or its restart policy gave up. A
    /// process that failed verification may still run: it is not ended until it exits.
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
    /// "every process has ended" counts. A process waiting to be restarted is not ended.
    pub fn is_ended(&self) -> bool {
        match self {
            State::Pending | State::Stopped { .. } | State::Exited { .. } => true,
            State::Failed { proc, .. } => proc.is_none_or(|p| p.exit.is_some()),
            State::Starting { .. }
            | State::Verifying { .. }
            | State::Running { .. }
            | State::Unhealthy { .. }
            | State::Stopping { .. }
            | State::BackingOff { .. } => false,
        }
    }

    /// True once the current run passed its verifier (or needed none), whether or not it
    /// still runs: what the start-up waits for before the next process.
    pub fn is_verified(&self) -> bool {
        matches!(
            self,
            State::Running { .. } | State::Unhealthy { .. } | State::Exited { .. }
        )
    }

    /// The pid of the process that runs now, if one does.
    pub fn live_pid(&self) -> Option<u32> {
        match self {
            State::Verifying { proc, .. } | State::Stopping { proc, .. } => {
                proc.exit.is_none().then_some(proc.pid)
            }
            State::Failed { proc: Some(p), .. } | State::BackingOff { proc: Some(p), .. } => {
                p.exit.is_none().then_some(p.pid)
            }
            State::Running { pid, .. } | State::Unhealthy { pid, .. } => Some(*pid),
            _ => None,
        }
    }

    /// The current (or last) run, if the process was ever started.
    pub fn run(&self) -> Option<Run> {
        match self {
            State::Pending => None,
            State::Stopped { run, .. } => *run,
            State::Starting { run, .. }
            | State::Verifying { run, .. }
            | State::Running { run, .. }
            | State::Unhealthy { run, .. }
            | State::Stopping { run, .. }
            | State::Exited { run, .. }
            | State::BackingOff { run, .. }
            | State::Failed { run, .. } => Some(*run),
        }
    }

    /// How the process last ended: the current run's end if it ended, else the run before.
    pub fn last_exit(&self) -> Option<Exit> {
        let own = match self {
            State::Verifying { proc, .. } | State::Stopping { proc, .. } => proc.exit,
            State::Stopped { exit, .. } => *exit,
            State::Exited { exit, .. } => Some(*exit),
            State::BackingOff { proc, .. } | State::Failed { proc, .. } => {
                proc.and_then(|p| p.exit)
            }
            _ => None,
        };
        own.or_else(|| self.run().and_then(|r| r.previous))
    }
}

/// Something that happens to a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Its turn at start-up came (its dependencies hold).
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
    /// A liveness check of run `run` returned.
    Probed {
        /// Which run it checked.
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
    /// The backoff after run `run` is over.
    Retry {
        /// Which run failed.
        run: u32,
    },
    /// The manager shuts down: what is under way for the process ends (a verification, a
    /// restart, a backoff) and nothing starts again; a process that runs waits, stopping,
    /// for its turn in the shutdown's order.
    Shutdown,
    /// Its turn in the shutdown's order came: stop its group, with `grace` before SIGKILL
    /// (the manager's: its own grace at shutdown, or less if the shutdown's deadline comes
    /// sooner).
    Teardown {
        /// Time between the stop signal and SIGKILL.
        grace: Duration,
    },
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
    /// A later request cut this one short before its run was verified (409); names the
    /// later one (`stop`, `restart`).
    Cancelled(&'static str),
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
    /// It failed, and its restart policy starts it again after `delay`.
    Restarting {
        /// Why.
        why: Failure,
        /// The wait.
        delay: Duration,
        /// The restart's number in a row.
        attempt: u32,
    },
    /// Its restart policy gave up: it stays failed.
    GaveUp(Failure),
    /// Its liveness check failed too often in a row.
    Unhealthy(String),
    /// Its liveness check passes again.
    Healthy,
}

/// What becomes of the rest of a process group once its leader ended within its grace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftovers {
    /// SIGKILLed with it: nothing of a stopped run stays behind (a user's stop or restart,
    /// the restart policy's).
    Kill,
    /// Left to the shutdown, which already signalled them with the group and kills
    /// whatever remains at its deadline: a child finishing its own clean-up is not cut
    /// short.
    ToShutdown,
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
    /// At `at`, run the liveness check of run `run`; it reports [`Input::Probed`].
    Probe {
        /// The run to check.
        run: u32,
        /// When.
        at: SystemTime,
    },
    /// At `at`, report [`Input::Retry`] for run `run`.
    Wake {
        /// The run that failed.
        run: u32,
        /// When.
        at: SystemTime,
    },
    /// Drop the pending probe or wake-up (and a liveness check under way).
    CancelTimer,
    /// Stop the process group `pid`: `signal` to the group, SIGKILL after `grace` if its
    /// leader has not ended; report [`Input::GroupStopped`] once it has. A user's stop and
    /// the shutdown's go this one way.
    StopGroup {
        /// The run being stopped.
        run: u32,
        /// Its leader (and group id).
        pid: u32,
        /// The process's stop signal.
        signal: Signal,
        /// Time between `signal` and SIGKILL.
        grace: Duration,
        /// What the leader leaves in its group when it ends in time.
        leftovers: Leftovers,
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

#[cfg(test)]
mod tests;
