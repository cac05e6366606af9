//! Runs the processes: spawns them in config order, verifies them, reaps them, and stops
//! every one of them (and their descendants) on shutdown.
//!
//! One task, the [`actor`], owns the process table. Everything that takes time — a
//! verifier, a graceful stop, the shutdown — runs in a task of its own and reports back
//! with a message, so the actor always answers at once and two operations on one process
//! never race: the second is refused as busy.

mod actor;
mod clone_exec;
pub mod handle;
pub mod leader;
mod output;
pub mod reaper;
mod spawn;
mod terminate;

use std::time::Duration;

pub use actor::start;
pub use handle::*;

/// How the supervisor ended; `main` turns it into the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every process ended on its own (and keep-alive is off): exit 0.
    AllEnded,
    /// A shutdown was requested (signal, REST, parent death): exit 0.
    Shutdown,
    /// A process could not be started or verified: exit 5, with this line.
    StartupFailed(String),
}

impl Outcome {
    /// The exit code of the original tool for this outcome.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::AllEnded | Outcome::Shutdown => 0,
            Outcome::StartupFailed(_) => 5,
        }
    }
}

/// Grace given to one process on restart or stop before SIGKILL, as in the original.
pub const RESTART_GRACE: Duration = Duration::from_secs(5);
