//! The supervisor's public face: what the REST API, signal handlers and the CLI hold.
//!
//! Nobody outside the supervisor task touches the process table. Readers take the latest
//! [`Snapshot`] (published on every change, so a `GET /` never waits on the supervisor);
//! writers send a [`Command`] and await its reply.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::process_view::{OutputLog, ProcState};

/// The application's phase (`GET /status` reports it with the original's words, see
/// [`crate::api::v1::Phase`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Starting and verifying processes, in config order.
    Launching,
    /// Every process was started and verified.
    Running,
    /// Stopping everything gracefully.
    Shutdown,
    /// Killing everything at once (second SIGINT).
    ForceShutdown,
}

impl Phase {
    /// True once a shutdown has begun; mutating requests are refused from then on.
    pub fn is_shutting_down(self) -> bool {
        matches!(self, Phase::Shutdown | Phase::ForceShutdown)
    }
}

/// Where one process is in its lifecycle, finer than its OS state: the word the API
/// reports, derived from the supervisor's [`State`](super::lifecycle::State).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Waiting for its turn in config order.
    Pending,
    /// Being spawned.
    Starting,
    /// Spawned, its verifier running.
    Verifying,
    /// Running (and verified, if it has a verifier).
    Ready,
    /// Being stopped (restart, stop, or shutdown).
    Stopping,
    /// Stopped on request; starts again only on request.
    Stopped,
    /// Ended on its own.
    Exited,
    /// Could not be spawned, or its verifier failed, or its restart policy gave up.
    Failed,
    /// Running, but its liveness check failed too often in a row.
    Unhealthy,
    /// Failed; its restart policy starts it again at `next_attempt`.
    BackingOff,
}

/// The outcome of a process's verifier for its current run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifierOutcome {
    /// Not run yet for this run.
    Pending,
    /// Running now.
    Running,
    /// Passed.
    Passed,
    /// Failed; the message says why.
    Failed,
    /// Cut short by a stop, restart or shutdown.
    Cancelled,
}

/// A process's verifier as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifierInfo {
    /// The verifier type as written in the config.
    pub kind: String,
    /// The outcome for the current run.
    pub outcome: VerifierOutcome,
    /// Why it failed; while it runs, what its last failed attempt said (a warning or
    /// error line of the verifier).
    pub message: Option<String>,
}

/// Everything known about one process, as of one snapshot. Derived from the supervisor's
/// state in one place (`supervisor/view.rs`); two records compare equal when nothing a
/// client can see has changed.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessInfo {
    /// 1-based position in the config; the original's internal id.
    pub id: u32,
    /// The key under `processes` in the config.
    pub name: String,
    /// The command line as the original printed it (executable and arguments joined).
    pub command: String,
    /// OS-level state: running with a pid, exited with a code, …
    pub state: ProcState,
    /// Lifecycle phase.
    pub lifecycle: Lifecycle,
    /// Times the process was started again after its first start.
    pub restarts: u32,
    /// When the current (or last) run started.
    pub started_at: Option<SystemTime>,
    /// Its verifier, if it has one.
    pub verifier: Option<VerifierInfo>,
    /// Why the process failed (to spawn, or for its restart policy), if it did; a failed
    /// verification is in `verifier` instead.
    pub error: Option<String>,
    /// The conditions it still waits for before the start-up starts it (`db`, `verified`).
    pub waiting_for: Vec<(String, &'static str)>,
    /// How its last run ended, if one did: `Exited` or `Signaled`.
    pub last_exit: Option<ProcState>,
    /// When its restart policy starts it again, while it backs off.
    pub next_attempt: Option<SystemTime>,
    /// Its liveness check, if it has one.
    pub liveness: Option<LivenessInfo>,
    /// Its named ports, resolved (fixed for the manager's life).
    pub ports: Arc<[crate::plan::Port]>,
}

/// A process's liveness check as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct LivenessInfo {
    /// The verifier type as written in the config.
    pub kind: String,
    /// Checks failed in a row.
    pub failures: u32,
    /// Why the last one failed, while it fails.
    pub message: Option<String>,
}

impl ProcessInfo {
    /// The original's `running` / `terminated`.
    pub fn legacy_status(&self) -> &'static str {
        match self.state {
            ProcState::Running { .. } => "running",
            _ => "terminated",
        }
    }
}

/// The whole application's state at one moment; cheap to share.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The application's phase.
    pub phase: Phase,
    /// Every process, in config order (index = id - 1). Shared with the snapshots before
    /// and after: publishing a change copies one record, not every record.
    pub processes: Vec<Arc<ProcessInfo>>,
    /// Why the start-up failed, once it has: kept so that a client that subscribes after
    /// the `StartupFailed` event (while the manager shuts down) still learns the reason.
    pub startup_failure: Option<String>,
}

impl Snapshot {
    /// The process a reference names.
    pub fn get(&self, r: &ProcessRef) -> Option<&ProcessInfo> {
        match r {
            ProcessRef::Id(id) => self.processes.iter().find(|p| p.id == *id),
            ProcessRef::Name(n) => self.processes.iter().find(|p| &p.name == n),
        }
        .map(|p| &**p)
    }
}

/// Names a process in a request: by 1-based id or by config name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessRef {
    /// The original's numeric id.
    Id(u32),
    /// The key under `processes`.
    Name(String),
}

impl ProcessRef {
    /// A number is an id, anything else a name.
    pub fn parse(s: &str) -> ProcessRef {
        match s.parse::<u32>() {
            Ok(id) => ProcessRef::Id(id),
            Err(_) => ProcessRef::Name(s.to_string()),
        }
    }
}

impl std::fmt::Display for ProcessRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProcessRef::Id(id) => write!(f, "{id}"),
            ProcessRef::Name(n) => write!(f, "{n}"),
        }
    }
}

/// Why the supervisor refused or failed a command. Each maps to one HTTP status.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    /// No process has that id or name (404).
    #[error("Process with id '{0}' not found.")]
    NotFound(String),
    /// A shutdown has begun (403, the original's message).
    #[error("Process is in shutdown.")]
    ShuttingDown,
    /// Another operation on the same process is under way (409).
    #[error("process '{0}' is busy: {1} in progress")]
    Busy(String, &'static str),
    /// The process was started again but did not come up (500 with the reason).
    #[error("process '{0}' failed: {1}")]
    Failed(String, String),
    /// A later stop or restart of the process cut this request short (409).
    #[error("process '{0}': cancelled by a later {1}")]
    Cancelled(String, &'static str),
    /// The supervisor is gone (the manager is exiting).
    #[error("pymanager is exiting")]
    Gone,
}

/// A change the supervisor announces, for the event stream and daemon readiness.
#[derive(Debug, Clone)]
pub enum Event {
    /// The application's phase changed.
    Phase {
        /// The new phase.
        phase: Phase,
    },
    /// A process's record changed.
    Process {
        /// Its new record, the one the snapshot holds.
        process: Arc<ProcessInfo>,
    },
    /// Start-up failed; the manager is stopping with exit code 5.
    StartupFailed {
        /// One line naming the process and the reason.
        message: String,
    },
}

/// A request to the supervisor task, with the channel its answer comes back on.
#[derive(Debug)]
pub(crate) enum Command {
    Restart(
        ProcessRef,
        oneshot::Sender<Result<ProcessInfo, CommandError>>,
    ),
    Stop(
        ProcessRef,
        oneshot::Sender<Result<ProcessInfo, CommandError>>,
    ),
    Start(
        ProcessRef,
        oneshot::Sender<Result<ProcessInfo, CommandError>>,
    ),
    Output(
        ProcessRef,
        oneshot::Sender<Result<Arc<OutputLog>, CommandError>>,
    ),
    Shutdown(oneshot::Sender<Result<(), CommandError>>),
    ForceShutdown,
    Timeline(oneshot::Sender<super::timeline::Timeline>),
}

/// A cloneable handle on the supervisor.
#[derive(Clone)]
pub struct SupervisorHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) snapshot: watch::Receiver<Arc<Snapshot>>,
    pub(crate) events: broadcast::Sender<Event>,
}

impl SupervisorHandle {
    /// The latest state; never waits.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// A receiver that wakes on every new snapshot.
    pub fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.clone()
    }

    /// Every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, CommandError>>) -> Command,
    ) -> Result<T, CommandError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| CommandError::Gone)?;
        rx.await.map_err(|_| CommandError::Gone)?
    }

    /// Stops the process gracefully, starts it again and runs its verifier; answers when done.
    pub async fn restart(&self, target: ProcessRef) -> Result<ProcessInfo, CommandError> {
        self.ask(|tx| Command::Restart(target, tx)).await
    }

    /// Stops the process gracefully; it stays stopped until started.
    pub async fn stop(&self, target: ProcessRef) -> Result<ProcessInfo, CommandError> {
        self.ask(|tx| Command::Stop(target, tx)).await
    }

    /// Starts a stopped or ended process and runs its verifier; answers when done.
    pub async fn start(&self, target: ProcessRef) -> Result<ProcessInfo, CommandError> {
        self.ask(|tx| Command::Start(target, tx)).await
    }

    /// The output history of the process's current run.
    pub async fn output(&self, target: ProcessRef) -> Result<Arc<OutputLog>, CommandError> {
        self.ask(|tx| Command::Output(target, tx)).await
    }

    /// When each process waited, was spawned, verified and ended, and (once the start-up is
    /// ready) its critical chain: [`Timeline::summary`](super::timeline::Timeline::summary)
    /// is the `ready in 3.21 s — critical chain: …` line.
    pub async fn timeline(&self) -> Result<super::timeline::Timeline, CommandError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Timeline(tx))
            .await
            .map_err(|_| CommandError::Gone)?;
        rx.await.map_err(|_| CommandError::Gone)
    }

    /// Begins the graceful shutdown and answers at once; `ShuttingDown` if one has begun.
    pub async fn shutdown(&self) -> Result<(), CommandError> {
        self.ask(Command::Shutdown).await
    }

    /// Kills every process at once (a second SIGINT).
    pub async fn force_shutdown(&self) {
        let _ = self.commands.send(Command::ForceShutdown).await;
    }
}
