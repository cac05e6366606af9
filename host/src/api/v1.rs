//! The `/api/v1/` bodies as types, shared by the server and its clients: the server builds
//! them from a [`Snapshot`] and serializes them, `pymanager ctl` deserializes the very same
//! types. The JSON shape is therefore written down once; a field renamed here is renamed for
//! both sides, and the compiler finds every reader.
//!
//! These are the API's words, deliberately separate from the supervisor's internal types:
//! the supervisor may refine its states, the conversions below decide what clients see.
//! Field order is key order on the wire. Strings borrow from the snapshot when serializing
//! (no copies per request) and are owned when deserialized. Enums a newer server may extend
//! have an `Unknown` variant, so an older `ctl` still reads the answer.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::process_view::ProcState;
use crate::supervisor::{self as sv, ProcessInfo, Snapshot};

/// Lines `GET /api/v1/processes/{ref}/logs` returns when `lines` is not given.
pub const DEFAULT_LOG_LINES: usize = 100;

/// The manager's phase, in the original's words (`GET /status` and `GET /api/v1/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Starting and verifying processes.
    #[serde(rename = "launching processes")]
    Launching,
    /// Every process was started and verified.
    #[serde(rename = "running")]
    Running,
    /// Stopping everything gracefully.
    #[serde(rename = "shutdown")]
    Shutdown,
    /// Killing everything at once.
    #[serde(rename = "force shutdown")]
    ForceShutdown,
    /// A phase this client does not know (a newer manager).
    #[serde(other, rename = "unknown")]
    Unknown,
}

impl Phase {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Launching => "launching processes",
            Phase::Running => "running",
            Phase::Shutdown => "shutdown",
            Phase::ForceShutdown => "force shutdown",
            Phase::Unknown => "unknown",
        }
    }
}

impl From<sv::Phase> for Phase {
    fn from(p: sv::Phase) -> Self {
        match p {
            sv::Phase::Launching => Phase::Launching,
            sv::Phase::Running => Phase::Running,
            sv::Phase::Shutdown => Phase::Shutdown,
            sv::Phase::ForceShutdown => Phase::ForceShutdown,
        }
    }
}

/// What the process is doing at the OS level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Not spawned yet, or stopped.
    NotStarted,
    /// Running (`pid` is set).
    Running,
    /// Exited (`exit_code` is set).
    Exited,
    /// Ended by a signal (`signal` is set).
    Signaled,
    /// A state this client does not know (a newer manager).
    #[serde(other)]
    Unknown,
}

/// The original's two words for a process: `running` or `terminated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegacyStatus {
    /// The process runs.
    Running,
    /// Anything else.
    Terminated,
}

/// Where a process is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lifecycle {
    /// Waiting for its turn.
    Pending,
    /// Being spawned.
    Starting,
    /// Spawned, its verifier running.
    Verifying,
    /// Running and verified.
    Ready,
    /// Running, but its liveness check failed too often in a row.
    Unhealthy,
    /// Being stopped.
    Stopping,
    /// Stopped on request.
    Stopped,
    /// Ended on its own.
    Exited,
    /// Failed; its restart policy starts it again at `next_attempt`.
    BackingOff,
    /// Could not be spawned, or its verifier failed, or its restart policy gave up.
    Failed,
    /// A lifecycle state this client does not know (a newer manager).
    #[serde(other)]
    Unknown,
}

impl State {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            State::NotStarted => "not-started",
            State::Running => "running",
            State::Exited => "exited",
            State::Signaled => "signaled",
            State::Unknown => "unknown",
        }
    }
}

impl Lifecycle {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Pending => "pending",
            Lifecycle::Starting => "starting",
            Lifecycle::Verifying => "verifying",
            Lifecycle::Ready => "ready",
            Lifecycle::Unhealthy => "unhealthy",
            Lifecycle::Stopping => "stopping",
            Lifecycle::Stopped => "stopped",
            Lifecycle::Exited => "exited",
            Lifecycle::BackingOff => "backing-off",
            Lifecycle::Failed => "failed",
            Lifecycle::Unknown => "unknown",
        }
    }
}

impl From<sv::Lifecycle> for Lifecycle {
    fn from(l: sv::Lifecycle) -> Self {
        match l {
            sv::Lifecycle::Pending => Lifecycle::Pending,
            sv::Lifecycle::Starting => Lifecycle::Starting,
            sv::Lifecycle::Verifying => Lifecycle::Verifying,
            sv::Lifecycle::Ready => Lifecycle::Ready,
            sv::Lifecycle::Unhealthy => Lifecycle::Unhealthy,
            sv::Lifecycle::Stopping => Lifecycle::Stopping,
            sv::Lifecycle::Stopped => Lifecycle::Stopped,
            sv::Lifecycle::Exited => Lifecycle::Exited,
            sv::Lifecycle::BackingOff => Lifecycle::BackingOff,
            sv::Lifecycle::Failed => Lifecycle::Failed,
        }
    }
}

/// How a process's verifier did on its current run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Not run yet.
    Pending,
    /// Running now.
    Running,
    /// Passed.
    Passed,
    /// Failed; the message says why.
    Failed,
    /// Cut short by a stop, restart or shutdown.
    Cancelled,
    /// An outcome this client does not know (a newer manager).
    #[serde(other)]
    Unknown,
}

impl Outcome {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Running => "running",
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Unknown => "unknown",
        }
    }
}

impl From<sv::VerifierOutcome> for Outcome {
    fn from(o: sv::VerifierOutcome) -> Self {
        match o {
            sv::VerifierOutcome::Pending => Outcome::Pending,
            sv::VerifierOutcome::Running => Outcome::Running,
            sv::VerifierOutcome::Passed => Outcome::Passed,
            sv::VerifierOutcome::Failed => Outcome::Failed,
            sv::VerifierOutcome::Cancelled => Outcome::Cancelled,
        }
    }
}

/// A process's verifier: `{"type", "outcome", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verifier<'a> {
    /// The verifier type as written in the config.
    #[serde(rename = "type")]
    pub kind: Cow<'a, str>,
    /// How it did on the current run.
    pub outcome: Outcome,
    /// Why it failed; while it runs, what its last failed attempt said.
    pub message: Option<Cow<'a, str>>,
}

/// One process with everything the supervisor knows.
///
/// `state` is a word plus `pid` / `exit_code` / `signal` (each null when it does not apply),
/// so a client never looks inside a tagged object. `started_at` is RFC 3339 in UTC with
/// milliseconds, or null before the first start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process<'a> {
    /// 1-based position in the config.
    pub id: u32,
    /// The key under `processes`.
    pub name: Cow<'a, str>,
    /// The command line as the original printed it.
    pub command: Cow<'a, str>,
    /// What it is doing at the OS level.
    pub state: State,
    /// Its pid while running.
    pub pid: Option<u32>,
    /// Its exit code once exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it.
    pub signal: Option<i32>,
    /// The original's `running` / `terminated`.
    pub status: LegacyStatus,
    /// Where it is in its lifecycle.
    pub lifecycle: Lifecycle,
    /// Times it was started again after its first start.
    pub restarts: u32,
    /// When the current (or last) run started.
    pub started_at: Option<Cow<'a, str>>,
    /// Its verifier, if it has one.
    pub verifier: Option<Verifier<'a>>,
    /// Why it failed (to spawn, or for its restart policy), if it did; a failed
    /// verification is in `verifier` instead.
    pub error: Option<Cow<'a, str>>,
    /// What it still waits for before the start-up starts it, as `depends_on` writes it
    /// (`{"db": "verified"}`); null when it waits for nothing.
    #[serde(default)]
    pub waiting_for: Option<IndexMap<Cow<'a, str>, Cow<'a, str>>>,
    /// How its last run ended, if one did.
    #[serde(default)]
    pub last_exit: Option<LastExit>,
    /// When its restart policy starts it again (RFC 3339), while it backs off.
    #[serde(default)]
    pub next_attempt: Option<Cow<'a, str>>,
    /// Its liveness check, if it has one.
    #[serde(default)]
    pub liveness: Option<Liveness<'a>>,
    /// Its named ports and their numbers (`{"http": 43123}`); empty when it has none.
    #[serde(default)]
    pub ports: IndexMap<Cow<'a, str>, u16>,
}

/// How a run ended: `{"exit_code": 3, "signal": null}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastExit {
    /// Its exit code, if it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
}

/// A process's liveness check: `{"type", "failures", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Liveness<'a> {
    /// The verifier type as written in the config.
    #[serde(rename = "type")]
    pub kind: Cow<'a, str>,
    /// Checks failed in a row.
    pub failures: u32,
    /// Why the last one failed, while it fails.
    pub message: Option<Cow<'a, str>>,
}

impl<'a> From<&'a ProcessInfo> for Process<'a> {
    fn from(p: &'a ProcessInfo) -> Self {
        let (state, pid, exit_code, signal) = match p.state {
            ProcState::NotStarted => (State::NotStarted, None, None, None),
            ProcState::Running { pid } => (State::Running, Some(pid), None, None),
            ProcState::Exited { code } => (State::Exited, None, Some(code), None),
            ProcState::Signaled { signal } => (State::Signaled, None, None, Some(signal)),
        };
        Process {
            id: p.id,
            name: Cow::Borrowed(&p.name),
            command: Cow::Borrowed(&p.command),
            state,
            pid,
            exit_code,
            signal,
            status: match p.state {
                ProcState::Running { .. } => LegacyStatus::Running,
                _ => LegacyStatus::Terminated,
            },
            lifecycle: p.lifecycle.into(),
            restarts: p.restarts,
            started_at: p.started_at.map(|t| Cow::Owned(rfc3339(t))),
            verifier: p.verifier.as_ref().map(|v| Verifier {
                kind: Cow::Borrowed(&v.kind),
                outcome: v.outcome.into(),
                message: v.message.as_deref().map(Cow::Borrowed),
            }),
            error: p.error.as_deref().map(Cow::Borrowed),
            waiting_for: (!p.waiting_for.is_empty()).then(|| {
                p.waiting_for
                    .iter()
                    .map(|(name, condition)| {
                        (Cow::Borrowed(name.as_str()), Cow::Borrowed(*condition))
                    })
                    .collect()
            }),
            last_exit: p.last_exit.map(|e| match e {
                ProcState::Exited { code } => LastExit {
                    exit_code: Some(code),
                    signal: None,
                },
                ProcState::Signaled { signal } => LastExit {
                    exit_code: None,
                    signal: Some(signal),
                },
                _ => LastExit {
                    exit_code: None,
                    signal: None,
                },
            }),
            next_attempt: p.next_attempt.map(|t| Cow::Owned(rfc3339(t))),
            liveness: p.liveness.as_ref().map(|l| Liveness {
                kind: Cow::Borrowed(&l.kind),
                failures: l.failures,
                message: l.message.as_deref().map(Cow::Borrowed),
            }),
            ports: p
                .ports
                .iter()
                .map(|port| (Cow::Borrowed(&*port.name), port.number))
                .collect(),
        }
    }
}

/// `GET /api/v1/processes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct List<'a> {
    /// How many processes there are.
    pub count: usize,
    /// Every process, in config order.
    pub processes: Vec<Process<'a>>,
}

/// The answer to a command on one process (restart, stop, start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done<'a> {
    /// Always true; failures use [`ErrorBody`].
    pub success: bool,
    /// The process after the command.
    pub process: Process<'a>,
}

/// `GET /api/v1/status`: the phase and how many processes are where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The phase.
    pub status: Phase,
    /// True once a shutdown has begun.
    pub shutting_down: bool,
    /// How many processes there are.
    pub total: usize,
    /// How many of them run.
    pub running: usize,
    /// How many are in each lifecycle state.
    pub lifecycle: LifecycleCounts,
    /// Why the start-up failed, once it has (the manager is then shutting down); null before.
    #[serde(default)]
    pub startup_failure: Option<String>,
}

/// Processes per lifecycle state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LifecycleCounts {
    /// Waiting for their turn.
    pub pending: usize,
    /// Being spawned.
    pub starting: usize,
    /// Being verified.
    pub verifying: usize,
    /// Running and verified.
    pub ready: usize,
    /// Running, but failing their liveness checks.
    pub unhealthy: usize,
    /// Being stopped.
    pub stopping: usize,
    /// Stopped on request.
    pub stopped: usize,
    /// Ended on their own.
    pub exited: usize,
    /// Waiting to be started again by their restart policy.
    #[serde(rename = "backing-off")]
    pub backing_off: usize,
    /// Failed to start or to verify.
    pub failed: usize,
}

impl From<&Snapshot> for Status {
    fn from(snap: &Snapshot) -> Self {
        let mut counts = LifecycleCounts::default();
        for p in &snap.processes {
            let n = match Lifecycle::from(p.lifecycle) {
                Lifecycle::Pending => &mut counts.pending,
                Lifecycle::Starting => &mut counts.starting,
                Lifecycle::Verifying => &mut counts.verifying,
                Lifecycle::Ready => &mut counts.ready,
                Lifecycle::Unhealthy => &mut counts.unhealthy,
                Lifecycle::BackingOff => &mut counts.backing_off,
                Lifecycle::Stopping => &mut counts.stopping,
                Lifecycle::Stopped => &mut counts.stopped,
                Lifecycle::Exited => &mut counts.exited,
                Lifecycle::Failed | Lifecycle::Unknown => &mut counts.failed,
            };
            *n += 1;
        }
        Status {
            status: snap.phase.into(),
            shutting_down: snap.phase.is_shutting_down(),
            total: snap.processes.len(),
            running: snap
                .processes
                .iter()
                .filter(|p| matches!(p.state, ProcState::Running { .. }))
                .count(),
            lifecycle: counts,
            startup_failure: snap.startup_failure.clone(),
        }
    }
}

/// `{"success": true}`: the answer to a shutdown request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// Always true.
    pub success: bool,
}

/// Every error's body, the original's: `{"success": false, "error": {"message": …}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody<'a> {
    /// Always false.
    pub success: bool,
    /// What went wrong.
    pub error: ErrorMessage<'a>,
}

/// The `error` object of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessage<'a> {
    /// One line saying why.
    pub message: Cow<'a, str>,
}

/// The data of one server-sent event of `GET /api/v1/events`; its `event` field is also the
/// SSE event name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event<'a> {
    /// The phase changed (also the first event of every stream).
    Phase {
        /// The new phase.
        phase: Phase,
    },
    /// A process changed.
    Process {
        /// Its new record (boxed: it is by far the largest event).
        process: Box<Process<'a>>,
    },
    /// Start-up failed; the manager stops with exit code 5.
    StartupFailed {
        /// One line naming the process and the reason.
        message: Cow<'a, str>,
    },
    /// The client fell behind and missed this many events.
    Lagged {
        /// How many.
        missed: u64,
    },
    /// An event this client does not know (a newer manager).
    #[serde(other)]
    Unknown,
}

impl<'a> From<&'a sv::Event> for Event<'a> {
    fn from(e: &'a sv::Event) -> Self {
        match e {
            sv::Event::Phase { phase } => Event::Phase {
                phase: (*phase).into(),
            },
            sv::Event::Process { process } => Event::Process {
                process: Box::new(process.as_ref().into()),
            },
            sv::Event::StartupFailed { message } => Event::StartupFailed {
                message: Cow::Borrowed(message),
            },
        }
    }
}

/// `GET /api/v1/timeline`: when each process waited, was spawned, verified, failed and
/// ended, in seconds since `started_at`, and the start-up's critical chain once it is ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline<'a> {
    /// When the supervisor started (RFC 3339): every time below counts from it.
    pub started_at: Cow<'a, str>,
    /// Seconds from `started_at` to this answer: where a bar still running ends.
    pub now: f64,
    /// Seconds from `started_at` to the start-up being ready; null until it is.
    pub ready: Option<f64>,
    /// `ready in 3.21 s — critical chain: db 1.40 s → …`; null until the start-up is ready.
    pub summary: Option<String>,
    /// The dependencies that decided when the last process became ready, first first;
    /// empty until the start-up is ready.
    pub critical_chain: Vec<ChainLink<'a>>,
    /// Every process, in config order.
    pub processes: Vec<TimelineProcess<'a>>,
}

/// One link of the critical chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainLink<'a> {
    /// The process.
    pub name: Cow<'a, str>,
    /// Seconds from the previous link's `at` (or `started_at`) to this one's.
    pub seconds: f64,
    /// When what the next link waited for held (it was verified, started or ended).
    pub at: f64,
}

/// One process of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineProcess<'a> {
    /// The key under `processes`.
    pub name: Cow<'a, str>,
    /// What the start-up waited for before launching it (`{"db": "verified"}`; in an
    /// ordered start-up, the process before it too); null when nothing.
    pub depends_on: Option<IndexMap<Cow<'a, str>, Cow<'a, str>>>,
    /// When it began waiting on them; null when it waits for nothing.
    pub waiting_since: Option<f64>,
    /// Its runs, oldest first (the first and the latest ones).
    pub runs: Vec<TimelineRun>,
}

/// One run of a process: each step's time, null until it happened.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimelineRun {
    /// 1 for the first start, 2 for the next …
    pub run: u32,
    /// When its process was spawned.
    pub spawned: Option<f64>,
    /// When it passed its verifier (or, without one, was spawned).
    pub verified: Option<f64>,
    /// When it failed (to spawn, its verification, or by an end its policy counts).
    pub failed: Option<f64>,
    /// When its process ended.
    pub ended: Option<f64>,
}

/// Seconds, to the millisecond.
fn secs(d: std::time::Duration) -> f64 {
    d.as_millis() as f64 / 1000.0
}

impl<'a> From<&'a sv::timeline::Timeline> for Timeline<'a> {
    fn from(t: &'a sv::timeline::Timeline) -> Self {
        let name = |i: usize| Cow::Borrowed(t.processes[i].name.as_str());
        Timeline {
            started_at: Cow::Owned(rfc3339(t.origin)),
            now: secs(t.now()),
            ready: t.ready.map(secs),
            summary: t.summary(),
            critical_chain: t
                .critical_chain()
                .unwrap_or_default()
                .into_iter()
                .map(|l| ChainLink {
                    name: Cow::Owned(l.name),
                    seconds: secs(l.took),
                    at: secs(l.at),
                })
                .collect(),
            processes: t
                .processes
                .iter()
                .map(|p| TimelineProcess {
                    name: Cow::Borrowed(&p.name),
                    depends_on: (!p.depends_on.is_empty()).then(|| {
                        p.depends_on
                            .iter()
                            .map(|d| (name(d.on), Cow::Borrowed(d.condition.as_str())))
                            .collect()
                    }),
                    waiting_since: p.waiting.map(secs),
                    runs: p
                        .runs
                        .iter()
                        .map(|r| TimelineRun {
                            run: r.run,
                            spawned: r.spawned.map(secs),
                            verified: r.verified.map(secs),
                            failed: r.failed.map(secs),
                            ended: r.ended.map(secs),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// `t` as RFC 3339 in UTC with milliseconds; times before 1970 clamp to the epoch.
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let millis = since.subsec_millis();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn each_word_is_spelled_the_same_on_the_wire_and_in_a_table() {
        // `as_str` (what `ctl` prints, what `GET /status` answers) and the serde names
        // (what the wire carries) are written side by side; this keeps them equal.
        fn same<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug + Copy>(
            all: &[T],
            word: fn(T) -> &'static str,
        ) {
            for &w in all {
                assert_eq!(serde_json::to_value(w).unwrap(), word(w), "{w:?}");
                let back: T = serde_json::from_value(word(w).into()).unwrap();
                assert_eq!(back, w);
            }
        }
        use Lifecycle as L;
        same(
            &[
                Phase::Launching,
                Phase::Running,
                Phase::Shutdown,
                Phase::ForceShutdown,
                Phase::Unknown,
            ],
            Phase::as_str,
        );
        same(
            &[
                State::NotStarted,
                State::Running,
                State::Exited,
                State::Signaled,
                State::Unknown,
            ],
            State::as_str,
        );
        same(
            &[
                L::Pending,
                L::Starting,
                L::Verifying,
                L::Ready,
                L::Unhealthy,
                L::Stopping,
                L::Stopped,
                L::Exited,
                L::BackingOff,
                L::Failed,
                L::Unknown,
            ],
            Lifecycle::as_str,
        );
        same(
            &[
                Outcome::Pending,
                Outcome::Running,
                Outcome::Passed,
                Outcome::Failed,
                Outcome::Cancelled,
                Outcome::Unknown,
            ],
            Outcome::as_str,
        );
    }

    #[test]
    fn an_older_client_reads_words_it_does_not_know() {
        let e: Event<'static> =
            serde_json::from_str(r#"{"event":"weather","sky":"blue"}"#).unwrap();
        assert_eq!(e, Event::Unknown);
        let e: Event<'static> =
            serde_json::from_str(r#"{"event":"phase","phase":"hibernating"}"#).unwrap();
        assert_eq!(
            e,
            Event::Phase {
                phase: Phase::Unknown
            }
        );
        let e: Event<'static> = serde_json::from_str(r#"{"event":"lagged","missed":3}"#).unwrap();
        assert_eq!(e, Event::Lagged { missed: 3 });
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day in a century leap year) 23:59:59.999
        let t = UNIX_EPOCH + Duration::from_millis(951_868_799_999);
        assert_eq!(rfc3339(t), "2000-02-29T23:59:59.999Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_800); // 2100-01-01
        assert_eq!(rfc3339(t), "2100-01-01T00:00:00.000Z");
    }
}
