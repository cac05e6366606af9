//! Runs the processes: spawns them in config order, verifies them, reaps them, and stops
//! every one of them (and their descendants) on shutdown.
//!
//! Each process's life is one value, a [`lifecycle::State`], changed only by the pure
//! [`lifecycle::step`]. One task, the `actor`, owns the table of them: it turns commands
//! and reports into inputs, carries out the effects the step returns, lets the [`startup`]
//! sequence move on, and publishes the records [`view`] derives. Everything that takes time
//! — a verifier, a graceful stop, the shutdown — runs in a task of its own and reports back
//! with a message, so the actor always answers at once. A user's stop, restart or shutdown
//! cuts a verification short; only two user requests on one process conflict (409).

mod actor;
mod clone_exec;
pub(crate) mod fd_limit;
pub mod handle;
pub mod leader;
pub mod lifecycle;
mod output;
pub mod reaper;
mod spawn;
pub mod startup;
pub mod teardown;
mod terminate;
pub mod timeline;
pub mod view;

#[cfg(test)]
pub(crate) mod tests;

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
