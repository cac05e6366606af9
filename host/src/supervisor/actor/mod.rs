//! The task that owns the process table and carries out what the lifecycle decides.
//!
//! Every message (a command, a report from a task it started) becomes an [`Input`] to one
//! process's [`lifecycle::step`](super::lifecycle::step); the actor stores the new state
//! and carries out the effects (`effects.rs`): spawning, starting or cancelling a verifier,
//! stopping a group, answering, writing a line. After each message it lets the start-up sequence move on, checks whether
//! every process has ended, and publishes what changed. It decides nothing about a single
//! process itself.

use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::handle::{
    Command, CommandError, Event, Phase, ProcessInfo, ProcessRef, Snapshot, SupervisorHandle,
};
use super::leader::Leader;
use super::lifecycle::{Exit, Failure, Input, Liveness, ReplyId, Rules, State};
use super::reaper::Reaper;
use super::startup::{Next, Startup};
use super::teardown::Teardown;
use super::terminate::{shutdown_group, terminate_all};
use super::timeline::Timeline;
use super::{Outcome, StartupFailure, view};
use crate::console::Console;
use crate::plan::{Plan, ProcessSpec};
use crate::process_view::{OutputLog, ProcState};
use crate::runtime::Runtime;

mod effects;

type Reply = oneshot::Sender<Result<ProcessInfo, CommandError>>;

/// What a running supervisor gives its owner.
pub struct Started {
    /// For the REST API and signal handlers.
    pub handle: SupervisorHandle,
    /// Resolves once every process is started and verified (`Ok`), or start-up failed.
    pub ready: oneshot::Receiver<Result<(), StartupFailure>>,
    /// Resolves when the supervisor is done and nothing it started is left.
    pub done: tokio::task::JoinHandle<Outcome>,
    /// Starts a command beside the processes (`pymanager run`'s), reaped with them.
    pub spawner: super::command::Spawner,
}

/// Starts the supervisor task, which launches the plan's processes in order at once.
/// Must run inside the tokio runtime.
pub fn start(plan: Plan, runtime: Runtime, console: Console) -> std::io::Result<Started> {
    let reaper = Reaper::start()?;
    let (commands, commands_rx) = mpsc::channel(256);
    let (internal_tx, internal_rx) = mpsc::unbounded_channel();
    let (events, _) = broadcast::channel(1024);
    let (ready_tx, ready) = oneshot::channel();
    let slots: Vec<Slot> = plan.processes.iter().cloned().map(Slot::new).collect();
    let teardown = Teardown::new(
        plan.startup,
        &crate::plan::start_deps(&plan.processes, crate::config::Startup::Parallel),
    );
    let startup = Startup::new(
        plan.startup,
        plan.processes
            .iter()
            .map(|p| p.orchestration.depends_on.clone())
            .collect(),
    );
    let timeline = Timeline::new(
        slots.iter().map(|s| s.name().to_string()).collect(),
        (0..slots.len()).map(|i| startup.deps(i).to_vec()).collect(),
    );
    let first = Arc::new(Snapshot {
        phase: Phase::Launching,
        processes: (0..slots.len())
            .map(|i| Arc::new(record(&slots, &startup, i)))
            .collect(),
        startup_failure: None,
    });
    let (snapshot_tx, snapshot) = watch::channel(first);
    let handle = SupervisorHandle {
        commands,
        snapshot,
        events: events.clone(),
    };
    let actor = Actor {
        changed: vec![false; slots.len()],
        published_over: false,
        slots,
        plan,
        runtime,
        console,
        reaper,
        startup,
        timeline,
        phase: Phase::Launching,
        snapshot_tx,
        events,
        internal: internal_tx,
        shutdown: CancellationToken::new(),
        force: watch::Sender::new(false),
        ready: Some(ready_tx),
        outcome: None,
        replies: HashMap::new(),
        teardown,
        deadline: None,
        pumps: TaskTracker::new(),
        next_reply: 0,
    };
    let spawner = super::command::Spawner(actor.reaper.clone());
    let done = tokio::spawn(actor.run(commands_rx, internal_rx));
    Ok(Started {
        handle,
        ready,
        done,
        spawner,
    })
}

/// Reports from the tasks the actor started, each about one run of one process.
enum Internal {
    Exited {
        idx: usize,
        run: u32,
        exit: Exit,
    },
    Checked {
        idx: usize,
        run: u32,
        result: Result<(), String>,
    },
    Probed {
        idx: usize,
        run: u32,
        result: Result<(), String>,
    },
    GroupStopped {
        idx: usize,
        run: u32,
    },
    Retry {
        idx: usize,
        run: u32,
    },
    /// The verifier of run `run` said why an attempt failed (a warning or error line).
    Attempt {
        idx: usize,
        run: u32,
        line: String,
    },
    /// The start-up may launch its next process.
    Advance,
    ShutdownDone,
}

/// One process: its lifecycle state, and the handles of what runs for it.
struct Slot {
    spec: Arc<ProcessSpec>,
    state: State,
    /// The OS-level state, derived from `state` after every step; what verifiers and the
    /// stop task wait on.
    os: watch::Sender<ProcState>,
    /// The output of the current run.
    output: Arc<OutputLog>,
    /// Held open while the run lives, so the process never reads EOF on stdin.
    stdin: Option<OwnedFd>,
    /// The current run's process group, signalled through its leader's pidfd.
    leader: Option<Arc<Leader>>,
    /// The verification under way.
    verifier: Option<AbortHandle>,
    /// The pending liveness check (or the one under way), or the wake-up after a backoff.
    timer: Option<AbortHandle>,
    /// Its verifier, restart policy and liveness check, as the lifecycle reads them.
    rules: Rules,
    /// What the verification under way said of its last failed attempt: the record's
    /// verifier message while it runs.
    attempt: Option<String>,
}

impl Slot {
    fn new(spec: Arc<ProcessSpec>) -> Slot {
        let how = &spec.orchestration;
        let rules = Rules {
            verifier: spec.verifier.is_some(),
            restart: how.restart,
            liveness: how.liveness.as_ref().map(|l| Liveness {
                period: l.period,
                failures: l.failures,
            }),
        };
        Slot {
            spec,
            state: State::Pending,
            os: watch::Sender::new(ProcState::NotStarted),
            output: Arc::new(OutputLog::new()),
            stdin: None,
            leader: None,
            verifier: None,
            timer: None,
            rules,
            attempt: None,
        }
    }

    fn name(&self) -> &str {
        &self.spec.name
    }
}

impl std::borrow::Borrow<State> for Slot {
    fn borrow(&self) -> &State {
        &self.state
    }
}

/// Processes launched per message in a start-up (see `Actor::advance_startup`): a
/// thousand processes started in parallel are 32 snapshots, not a thousand, and a request
/// waits for at most 32 launches.
const LAUNCH_BATCH: usize = 32;

/// How long the end waits for the output still in the pipes of processes that ended.
const OUTPUT_DRAIN: std::time::Duration = std::time::Duration::from_millis(500);

struct Actor {
    plan: Plan,
    runtime: Runtime,
    console: Console,
    reaper: Reaper,
    slots: Vec<Slot>,
    /// Which slots changed since the last publish.
    changed: Vec<bool>,
    /// Whether the start-up was over at the last publish (its end changes the records of
    /// the processes it held back).
    published_over: bool,
    startup: Startup,
    /// When each process waited, was spawned, verified and ended.
    timeline: Timeline,
    phase: Phase,
    snapshot_tx: watch::Sender<Arc<Snapshot>>,
    events: broadcast::Sender<Event>,
    internal: mpsc::UnboundedSender<Internal>,
    /// Cancelled when the shutdown begins: verifiers and their waits end early.
    shutdown: CancellationToken,
    force: watch::Sender<bool>,
    ready: Option<oneshot::Sender<Result<(), StartupFailure>>>,
    outcome: Option<Outcome>,
    /// Requesters waiting for an answer, by the id the lifecycle knows them by.
    replies: HashMap<ReplyId, Reply>,
    next_reply: ReplyId,
    /// The order of the shutdown, once one begins.
    teardown: Teardown,
    /// When everything still running at shutdown is killed.
    deadline: Option<tokio::time::Instant>,
    /// The tasks reading the processes' output: a process that printed and exited at once
    /// may be reaped before its last lines are read, so the end waits for them.
    pumps: TaskTracker,
}

impl Actor {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut internal: mpsc::UnboundedReceiver<Internal>,
    ) -> Outcome {
        self.console
            .info(format_args!("launching {} processes", self.slots.len()));
        self.after_message();
        loop {
            tokio::select! {
                Some(msg) = internal.recv() => {
                    if let Internal::ShutdownDone = msg {
                        break;
                    }
                    self.on_internal(msg);
                }
                Some(cmd) = commands.recv() => self.on_command(cmd),
            }
            self.after_message();
        }
        // Everything is stopped, so the pipes are closed or about to be; only a process that
        // left its group (and so escaped the kill) can hold one open, hence the bound.
        self.pumps.close();
        let _ = tokio::time::timeout(OUTPUT_DRAIN, self.pumps.wait()).await;
        self.console.flush().await;
        self.outcome.take().unwrap_or(Outcome::Shutdown)
    }

    fn after_message(&mut self) {
        self.advance_startup();
        self.check_all_ended();
        self.tear_down();
        self.publish();
    }

    // ---- messages ----------------------------------------------------------------------

    fn on_internal(&mut self, msg: Internal) {
        match msg {
            Internal::Exited { idx, run, exit } => {
                if self.slots[idx].state.run().is_some_and(|r| r.n == run) {
                    self.slots[idx].stdin = None;
                }
                self.apply(idx, Input::Exited { run, exit });
            }
            Internal::Checked { idx, run, result } => {
                if self.slots[idx].state.run().is_some_and(|r| r.n == run) {
                    self.slots[idx].verifier = None;
                }
                self.apply(idx, Input::Checked { run, result });
            }
            Internal::Probed { idx, run, result } => {
                if self.slots[idx].state.run().is_some_and(|r| r.n == run) {
                    self.slots[idx].timer = None;
                }
                self.apply(idx, Input::Probed { run, result });
            }
            Internal::GroupStopped { idx, run } => self.apply(idx, Input::GroupStopped { run }),
            Internal::Retry { idx, run } => self.apply(idx, Input::Retry { run }),
            Internal::Attempt { idx, run, line } => {
                let slot = &mut self.slots[idx];
                if matches!(&slot.state, State::Verifying { run: r, .. } if r.n == run) {
                    slot.attempt = Some(line);
                    self.changed[idx] = true;
                }
            }
            Internal::Advance | Internal::ShutdownDone => {}
        }
    }

    fn find(&self, target: &ProcessRef) -> Result<usize, CommandError> {
        let found = match target {
            ProcessRef::Id(id) => (*id as usize)
                .checked_sub(1)
                .filter(|i| *i < self.slots.len()),
            ProcessRef::Name(n) => self.slots.iter().position(|s| s.name() == n),
        };
        found.ok_or_else(|| CommandError::NotFound(target.to_string()))
    }

    /// Hands a user's request to the lifecycle of the process it names.
    fn request(&mut self, target: &ProcessRef, reply: Reply, input: fn(ReplyId) -> Input) {
        match self.find(target) {
            Err(e) => {
                let _ = reply.send(Err(e));
            }
            Ok(idx) => {
                let id = self.next_reply;
                self.next_reply += 1;
                self.replies.insert(id, reply);
                self.apply(idx, input(id));
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Restart(target, reply) => self.request(&target, reply, Input::Restart),
            Command::Stop(target, reply) => self.request(&target, reply, Input::Stop),
            Command::Start(target, reply) => self.request(&target, reply, Input::Start),
            Command::Timeline(reply) => {
                let _ = reply.send(self.timeline.clone());
            }
            Command::Output(target, reply) => {
                let _ = reply.send(self.find(&target).map(|i| self.slots[i].output.clone()));
            }
            Command::Shutdown(reply) => {
                if self.phase.is_shutting_down() {
                    let _ = reply.send(Err(CommandError::ShuttingDown));
                } else {
                    let _ = reply.send(Ok(()));
                    self.begin_shutdown(Outcome::Shutdown);
                }
            }
            Command::ForceShutdown => {
                self.force.send_replace(true);
                self.begin_shutdown(Outcome::Shutdown);
                self.set_phase(Phase::ForceShutdown);
            }
        }
    }

    // ---- start-up and the end ----------------------------------------------------------

    /// Launches what the start-up allows, up to [`LAUNCH_BATCH`] processes per message:
    /// requests are answered between batches, and a batch is published as one snapshot.
    fn advance_startup(&mut self) {
        for _ in 0..LAUNCH_BATCH {
            if self.phase.is_shutting_down() {
                return;
            }
            match self.startup.next(&self.slots) {
                Next::Wait => return,
                Next::Launch(idx) => {
                    self.apply(idx, Input::Launch);
                    continue;
                }
                other => self.end_startup(other),
            }
            return;
        }
        let _ = self.internal.send(Internal::Advance);
    }

    /// The start-up is over: ready, failed, or blocked for good.
    fn end_startup(&mut self, next: Next) {
        match next {
            Next::Wait | Next::Launch(_) => {}
            Next::Ready => {
                self.set_phase(Phase::Running);
                self.console.info("all processes are running");
                // The app prints where the time went (`Timeline::summary_from`).
                self.timeline.set_ready();
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(Ok(()));
                }
            }
            Next::Failed(idx) => {
                let slot = &self.slots[idx];
                let line = match &slot.state {
                    State::Failed {
                        why: Failure::Verify(reason),
                        ..
                    } => format!(
                        "process {} failed verification ({}): {reason}",
                        slot.name(),
                        verifier_kind(&slot.spec)
                    ),
                    State::Failed {
                        why: Failure::Spawn(reason),
                        ..
                    } => format!(
                        "could not set up processes: processes.{}: {reason}",
                        slot.name()
                    ),
                    State::Failed { why, .. } => format!("process {} failed: {why}", slot.name()),
                    _ => format!("process {} failed", slot.name()),
                };
                self.startup_failed(line, Some(idx));
            }
            Next::Blocked {
                idx,
                on,
                condition,
                why,
            } => {
                let (name, dep) = (self.slots[idx].name(), self.slots[on].name());
                let line = format!(
                    "process {name} cannot start: {dep} {why} (processes.{name}.depends_on.{dep}: {})",
                    condition.as_str()
                );
                self.startup_failed(line, Some(on));
            }
        }
    }

    fn startup_failed(&mut self, line: String, culprit: Option<usize>) {
        let line = crate::error_text::one_line(&line);
        // The records as the failure left them, before the shutdown moves them on.
        self.publish();
        let failure = StartupFailure {
            snapshot: Some(self.snapshot_tx.borrow().clone()),
            output: culprit.map(|i| self.slots[i].output.clone()),
            line: line.clone(),
            process: culprit.map(|i| self.slots[i].name().to_string()),
            waiters: culprit
                .map(|i| {
                    self.startup
                        .waiting_on(i)
                        .into_iter()
                        .map(|(w, c)| (self.slots[w].name().to_string(), c.as_str()))
                        .collect()
                })
                .unwrap_or_default(),
        };
        self.console.log_line(&format!("[ERROR] {line}"));
        // In the snapshot before the event goes out: a stream that subscribes in between
        // finds it in one or the other (and skips the repeat, see `api::stream::events`).
        self.snapshot_tx.send_modify(|s| {
            *s = Arc::new(Snapshot {
                phase: s.phase,
                processes: s.processes.clone(),
                startup_failure: Some(line.clone()),
            })
        });
        let _ = self.events.send(Event::StartupFailed {
            message: line.clone(),
        });
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Err(failure));
        }
        self.begin_shutdown(Outcome::StartupFailed(line));
    }

    /// Without keep-alive, the manager ends once no process runs any more.
    fn check_all_ended(&mut self) {
        if self.plan.keep_alive || self.phase != Phase::Running {
            return;
        }
        if self.slots.iter().all(|s| s.state.is_ended()) {
            self.console.info("all processes have ended");
            self.begin_shutdown(Outcome::AllEnded);
        }
    }

    fn begin_shutdown(&mut self, outcome: Outcome) {
        if self.phase.is_shutting_down() {
            return;
        }
        if !matches!(outcome, Outcome::AllEnded) {
            self.console.say_now(
                "Shutting down gracefully (SIGINT again to terminate immediately)...".into(),
            );
        }
        self.outcome = Some(outcome);
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Err(StartupFailure::plain(
                "pymanager was shut down during start-up",
            )));
        }
        self.startup.abandon();
        self.set_phase(Phase::Shutdown);
        self.shutdown.cancel();
        // What runs now is stopped by the teardown, each process with its own signal and
        // grace, in order; the rest (adopted orphans) at once. Everything left when the
        // largest grace is over is killed.
        let spare: HashSet<i32> = self
            .slots
            .iter()
            .filter_map(|s| s.state.live_pid())
            .map(|p| p as i32)
            .collect();
        for idx in 0..self.slots.len() {
            self.apply(idx, Input::Shutdown);
        }
        // The largest grace any process has (its own, or the global one).
        let grace = self
            .slots
            .iter()
            .map(|s| {
                s.spec
                    .orchestration
                    .graceful_time
                    .unwrap_or(self.plan.graceful_time)
            })
            .max()
            .unwrap_or(self.plan.graceful_time);
        self.deadline = Some(tokio::time::Instant::now() + grace);
        let children = self.reaper.children();
        let force = self.force.subscribe();
        let tx = self.internal.clone();
        tokio::spawn(async move {
            terminate_all(children, grace, force, spare).await;
            let _ = tx.send(Internal::ShutdownDone);
        });
        self.tear_down();
    }

    /// Asks the processes the teardown lets go now to stop: their stop signal, then SIGKILL
    /// after their own grace, or when the shutdown's deadline comes if that is sooner.
    fn tear_down(&mut self) {
        let Some(deadline) = self.deadline else {
            return;
        };
        for idx in self.teardown.next(&self.slots) {
            let slot = &self.slots[idx];
            let Some(pid) = slot.state.live_pid() else {
                continue;
            };
            let how = &slot.spec.orchestration;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let grace = how
                .graceful_time
                .unwrap_or(self.plan.graceful_time)
                .min(left);
            let (signal, state) = (how.stop_signal, slot.os.subscribe());
            if let Some(leader) = slot.leader.clone().filter(|l| l.pid() == pid as i32) {
                tokio::spawn(shutdown_group(leader, signal, state, grace));
            }
        }
    }

    fn set_phase(&mut self, phase: Phase) {
        if self.phase != phase {
            self.phase = phase;
            let _ = self.events.send(Event::Phase { phase });
            self.snapshot_tx.send_modify(|s| {
                *s = Arc::new(Snapshot {
                    phase,
                    processes: s.processes.clone(),
                    startup_failure: s.startup_failure.clone(),
                })
            });
        }
    }

    /// The record of process `idx` as the API shows it.
    fn info(&self, idx: usize) -> ProcessInfo {
        record(&self.slots, &self.startup, idx)
    }

    /// Publishes a new snapshot if a record changed, with an event for each that did.
    ///
    /// Only the records that may have changed are derived again: those of the processes
    /// whose state changed, of the processes the start-up holds back on them (their
    /// `waiting_for` follows their dependencies), and all of them once when the start-up
    /// ends. The rest are shared with the previous snapshot, so one change costs one record
    /// however many processes there are.
    fn publish(&mut self) {
        let over = self.startup.is_over();
        if over != self.published_over {
            self.published_over = over;
            self.changed.fill(true);
        }
        if !over {
            // Only the states that changed: marking as we go would mark the dependents of
            // a dependent, and so on down a whole ordered start-up.
            let moved: Vec<usize> = (0..self.changed.len())
                .filter(|&i| self.changed[i])
                .collect();
            for on in moved {
                for dependent in self.startup.dependents(on) {
                    self.changed[dependent] |= self.startup.holds_back(dependent);
                }
            }
        }
        if !self.changed.contains(&true) {
            return;
        }
        let old = self.snapshot_tx.borrow().clone();
        let mut processes = old.processes.clone();
        let mut any = false;
        for (idx, was) in processes.iter_mut().enumerate() {
            if !std::mem::take(&mut self.changed[idx]) {
                continue;
            }
            let now = self.info(idx);
            if now != **was {
                any = true;
                *was = Arc::new(now);
                let _ = self.events.send(Event::Process {
                    process: was.clone(),
                });
            }
        }
        if any {
            self.snapshot_tx.send_replace(Arc::new(Snapshot {
                phase: self.phase,
                processes,
                startup_failure: old.startup_failure.clone(),
            }));
        }
    }
}

/// The record of process `idx`, derived from its state and what the start-up still holds
/// it back for.
fn record(slots: &[Slot], startup: &Startup, idx: usize) -> ProcessInfo {
    let waiting = startup
        .waiting_for(idx, slots)
        .into_iter()
        .map(|d| (slots[d.on].name().to_string(), d.condition.as_str()))
        .collect();
    let slot = &slots[idx];
    view::info(&slot.spec, &slot.state, waiting, slot.attempt.as_deref())
}

pub(super) fn verifier_kind(spec: &ProcessSpec) -> &str {
    spec.verifier.as_ref().map_or("", |v| v.kind.as_str())
}
