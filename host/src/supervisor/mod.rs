//! Runs the processes: spawns them in config order, verifies them, reaps them, and stops
//! every one of them (and their descendants) on shutdown.
//!
//! Each process's life is one value, a [`lifecycle::State`], changed only by the pure
//! [`lifecycle::step`]; the manager's own life — the start-up, running, the shutdown and
//! its order, the outcome — is another, a [`manager::Manager`], changed only by the pure
//! [`manager::step`]. One task, the `actor`, owns them all: it turns commands and reports
//! into inputs, carries out the effects the steps return, and publishes the records
//! [`view`] derives. Everything that takes time — a verifier, a graceful stop, the
//! shutdown — runs in a task of its own and reports back with a message, so the actor
//! always answers at once. A user's stop, restart or shutdown cuts a verification short,
//! a user's stop or restart cuts another's start or restart short, and the other requests
//! on a busy process are refused (409).

mod actor;
pub mod children;
mod clone_exec;
pub mod command;
pub mod exec_check;
pub(crate) mod fd_limit;
pub mod handle;
pub mod leader;
pub mod lifecycle;
pub mod manager;
pub(crate) mod output;
pub mod reaper;
pub(crate) mod spawn;
pub mod startup;
pub mod teardown;
mod terminate;
pub mod timeline;
pub mod verification;
pub mod view;

#[cfg(test)]
pub(crate) mod tests;

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

/// Why the start-up failed: the line the log and the API show, and what the failure
/// report ([`crate::app`]) tells around it.
#[derive(Debug, Clone)]
pub struct StartupFailure {
    /// One line: `process web failed verification (http): …`.
    pub line: String,
    /// The process whose failure ended the start-up, if one did (a dependency that will
    /// never hold names the dependency).
    pub process: Option<String>,
    /// The processes that had not started yet because they waited for it, each with what
    /// it waited for (`verified`, `exited_ok`).
    pub waiters: Vec<(String, &'static str)>,
    /// Every process as it was when the start-up failed (before the shutdown changed it).
    pub snapshot: Option<std::sync::Arc<Snapshot>>,
    /// The output of the process that failed (its last run's), still filling while its
    /// pipe drains: read it once the supervisor is done.
    pub output: Option<std::sync::Arc<crate::process_view::OutputLog>>,
}

impl PartialEq for StartupFailure {
    /// The same failure: the same line, process and waiters (what is around them is the
    /// moment's, not the failure's).
    fn eq(&self, other: &Self) -> bool {
        (&self.line, &self.process, &self.waiters) == (&other.line, &other.process, &other.waiters)
    }
}

impl std::fmt::Display for StartupFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line)
    }
}

impl StartupFailure {
    /// A failure that names no process (the manager stopped during start-up, say).
    pub fn plain(line: impl Into<String>) -> StartupFailure {
        StartupFailure {
            line: line.into(),
            process: None,
            waiters: Vec::new(),
            snapshot: None,
            output: None,
        }
    }
}
