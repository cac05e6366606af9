//! The task that owns the process table and carries out what the lifecycles and the
//! manager decide.
//!
//! Every message (a command, a report from a task it started) becomes an [`Input`] to one
//! process's [`lifecycle::step`](super::lifecycle::step), or to the manager's own
//! [`manager::step`]; the actor stores the new value and carries out the effects
//! (`effects.rs` for a process's, `manage.rs` for the manager's): spawning, starting or
//! cancelling a verifier, stopping a group, answering, ending everything, writing a line.
//! After each message it lets the manager look at the processes again (launch the next,
//! end the start-up, stop what the shutdown's order lets go) and publishes what changed.
//! It decides nothing itself.

use std::collections::HashMap;
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
use super::lifecycle::{Exit, Input, ReplyId, Rules, State};
use super::manager::{self, Manager};
use super::reaper::Reaper;
use super::timeline::Timeline;
use super::{Outcome, StartupFailure, view};
use crate::console::Console;
use crate::plan::{Plan, ProcessSpec};
use crate::process_view::{OutputLog, ProcState};
use crate::runtime::Runtime;

mod effects;
mod manage;

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
    let manager = Manager::new(&plan);
    let timeline = {
        let startup = manager.startup().expect("a new manager is starting");
        Timeline::new(
            slots.iter().map(|s| s.name().to_string()).collect(),
            (0..slots.len()).map(|i| startup.deps(i).to_vec()).collect(),
        )
    };
    let first = Arc::new(Snapshot {
        phase: manager.phase(),
        processes: (0..slots.len())
            .map(|i| Arc::new(record(&slots, &manager, i)))
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
        manager,
        timeline,
        snapshot_tx,
        events,
        internal: internal_tx,
        shutdown: CancellationToken::new(),
        force: watch::Sender::new(false),
        ready: Some(ready_tx),
        replies: HashMap::new(),
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
    /// The start-up may launch its next process.
    /// The verifier of run `run` said why an attempt failed (a warning or error line).
    Attempt {
        idx: usize,
        run: u32,
        line: String,
    },
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
        let rules = Rules::of(&spec);
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

/// Processes launched per message in a start-up (see `Actor::after_message`): a
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
    /// The manager's own life: the start-up, the phase, the shutdown.
    manager: Manager,
    /// When each process waited, was spawned, verified and ended.
    timeline: Timeline,
    snapshot_tx: watch::Sender<Arc<Snapshot>>,
    events: broadcast::Sender<Event>,
    internal: mpsc::UnboundedSender<Internal>,
    /// Cancelled when the shutdown begins: verifiers and their waits end early.
    shutdown: CancellationToken,
    /// Set when everything is to be killed at once: what the task ending everything
    /// watches.
    force: watch::Sender<bool>,
    /// The readiness answer, until it is given.
    ready: Option<oneshot::Sender<Result<(), StartupFailure>>>,
    /// Requesters waiting for an answer, by the id the lifecycle knows them by.
    replies: HashMap<ReplyId, Reply>,
    next_reply: ReplyId,
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
                Some(msg) = internal.recv() => self.on_internal(msg),
                Some(cmd) = commands.recv() => self.on_command(cmd),
            }
            if self.manager.is_done() {
                break;
            }
            self.after_message();
        }
        // Everything is stopped, so the pipes are closed or about to be; only a process that
        // left its group (and so escaped the kill) can hold one open, hence the bound.
        self.pumps.close();
        let _ = tokio::time::timeout(OUTPUT_DRAIN, self.pumps.wait()).await;
        self.console.flush().await;
        self.manager.outcome().cloned().unwrap_or(Outcome::Shutdown)
    }

    /// Lets the manager look at the processes again, launching up to [`LAUNCH_BATCH`]
    /// processes: requests are answered between batches, and a batch is published as one
    /// snapshot and its launch lines written as one.
    fn after_message(&mut self) {
        // The batch's launch lines go out in one write, after it.
        let console = self.console.clone();
        let _held = console.hold();
        let mut launched = 0;
        while self.step_manager(manager::Input::Changed, None) {
            launched += 1;
            if launched == LAUNCH_BATCH {
                let _ = self.internal.send(Internal::Advance);
                break;
            }
        }
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
            Internal::ShutdownDone => {
                self.step_manager(manager::Input::AllGone, None);
            }
            Internal::Advance => {}
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
                self.step_manager(manager::Input::Shutdown, Some(reply));
            }
            Command::ForceShutdown => {
                self.step_manager(manager::Input::Force, None);
            }
        }
    }

    /// Publishes the application's phase, with an event, if it changed.
    fn set_phase(&mut self, phase: Phase) {
        if self.snapshot_tx.borrow().phase != phase {
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
        record(&self.slots, &self.manager, idx)
    }

    /// Publishes a new snapshot if a record changed, with an event for each that did.
    ///
    /// Only the records that may have changed are derived again: those of the processes
    /// whose state changed, of the processes the start-up holds back on them (their
    /// `waiting_for` follows their dependencies), and all of them once when the start-up
    /// ends. The rest are shared with the previous snapshot, so one change costs one record
    /// however many processes there are.
    fn publish(&mut self) {
        let startup = self.manager.startup();
        let over = startup.is_none();
        if over != self.published_over {
            self.published_over = over;
            self.changed.fill(true);
        }
        if let Some(startup) = startup {
            // Only the states that changed: marking as we go would mark the dependents of
            // a dependent, and so on down a whole ordered start-up.
            let moved: Vec<usize> = (0..self.changed.len())
                .filter(|&i| self.changed[i])
                .collect();
            for on in moved {
                for dependent in startup.dependents(on) {
                    self.changed[dependent] |= startup.holds_back(dependent);
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
                phase: old.phase,
                processes,
                startup_failure: old.startup_failure.clone(),
            }));
        }
    }
}

/// The record of process `idx`, derived from its state and what the start-up still holds
/// it back for.
fn record(slots: &[Slot], manager: &Manager, idx: usize) -> ProcessInfo {
    let waiting = manager
        .startup()
        .map(|s| s.waiting_for(idx, slots))
        .unwrap_or_default()
        .into_iter()
        .map(|d| (slots[d.on].name().to_string(), d.condition.as_str()))
        .collect();
    let slot = &slots[idx];
    view::info(&slot.spec, &slot.state, waiting, slot.attempt.as_deref())
}

pub(super) fn verifier_kind(spec: &ProcessSpec) -> &str {
    spec.verifier.as_ref().map_or("", |v| v.kind.as_str())
}
