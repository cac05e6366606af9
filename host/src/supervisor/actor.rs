//! The task that owns the process table and carries out what the lifecycle decides.
//!
//! Every message (a command, a report from a task it started) becomes an [`Input`] to one
//! process's [`lifecycle::step`]; the actor stores the new state and carries out the
//! effects: spawning, starting or cancelling a verifier, stopping a group, answering,
//! writing a line. After each message it lets the start-up sequence move on, checks whether
//! every process has ended, and publishes what changed. It decides nothing about a single
//! process itself.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use super::handle::{
    Command, CommandError, Event, Phase, ProcessInfo, ProcessRef, Snapshot, SupervisorHandle,
};
use super::lifecycle::{self, Answer, Effect, Env, Exit, Failure, Input, Note, ReplyId, State};
use super::output::{Sink, pump};
use super::reaper::Reaper;
use super::spawn::spawn;
use super::startup::{Next, Startup};
use super::terminate::{stop_group, terminate_all};
use super::{Outcome, RESTART_GRACE, view};
use crate::config::Messages;
use crate::console::Console;
use crate::plan::{OutputMode, Plan, ProcessSpec};
use crate::process_view::{Level, OutputLog, ProcState, ProcessView};
use crate::runtime::Runtime;

type Reply = oneshot::Sender<Result<ProcessInfo, CommandError>>;

/// What a running supervisor gives its owner.
pub struct Started {
    /// For the REST API and signal handlers.
    pub handle: SupervisorHandle,
    /// Resolves once every process is started and verified (`Ok`), or start-up failed.
    pub ready: oneshot::Receiver<Result<(), String>>,
    /// Resolves when the supervisor is done and nothing it started is left.
    pub done: tokio::task::JoinHandle<Outcome>,
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
    let first = Arc::new(Snapshot {
        phase: Phase::Launching,
        processes: slots.iter().map(Slot::info).collect(),
    });
    let (snapshot_tx, snapshot) = watch::channel(first);
    let handle = SupervisorHandle {
        commands,
        snapshot,
        events: events.clone(),
    };
    let actor = Actor {
        changed: vec![false; slots.len()],
        slots,
        plan,
        runtime,
        console,
        reaper,
        startup: Startup::default(),
        phase: Phase::Launching,
        snapshot_tx,
        events,
        internal: internal_tx,
        shutdown: CancellationToken::new(),
        force: watch::Sender::new(false),
        ready: Some(ready_tx),
        outcome: None,
        replies: HashMap::new(),
        next_reply: 0,
    };
    let done = tokio::spawn(actor.run(commands_rx, internal_rx));
    Ok(Started {
        handle,
        ready,
        done,
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
    GroupStopped {
        idx: usize,
        run: u32,
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
    verifier: Option<AbortHandle>,
}

impl Slot {
    fn new(spec: Arc<ProcessSpec>) -> Slot {
        Slot {
            spec,
            state: State::Pending,
            os: watch::Sender::new(ProcState::NotStarted),
            output: Arc::new(OutputLog::new()),
            stdin: None,
            verifier: None,
        }
    }

    fn info(&self) -> ProcessInfo {
        view::info(&self.spec, &self.state)
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

struct Actor {
    plan: Plan,
    runtime: Runtime,
    console: Console,
    reaper: Reaper,
    slots: Vec<Slot>,
    /// Which slots changed since the last publish.
    changed: Vec<bool>,
    startup: Startup,
    phase: Phase,
    snapshot_tx: watch::Sender<Arc<Snapshot>>,
    events: broadcast::Sender<Event>,
    internal: mpsc::UnboundedSender<Internal>,
    /// Cancelled when the shutdown begins: verifiers and their waits end early.
    shutdown: CancellationToken,
    force: watch::Sender<bool>,
    ready: Option<oneshot::Sender<Result<(), String>>>,
    outcome: Option<Outcome>,
    /// Requesters waiting for an answer, by the id the lifecycle knows them by.
    replies: HashMap<ReplyId, Reply>,
    next_reply: ReplyId,
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
        self.console.flush().await;
        self.outcome.take().unwrap_or(Outcome::Shutdown)
    }

    fn after_message(&mut self) {
        self.advance_startup();
        self.check_all_ended();
        self.publish();
    }

    // ---- applying the lifecycle ------------------------------------------------------

    /// Feeds `input` to process `idx` and carries out the effects, feeding back what they
    /// report at once (a spawn's result).
    fn apply(&mut self, idx: usize, input: Input) {
        let mut next = Some(input);
        while let Some(input) = next.take() {
            let slot = &mut self.slots[idx];
            let env = Env {
                now: SystemTime::now(),
                verifier: slot.spec.verifier.is_some(),
                shutting_down: self.phase.is_shutting_down(),
            };
            let state = std::mem::replace(&mut slot.state, State::Pending);
            let (state, effects) = lifecycle::step(state, input, &env);
            slot.state = state;
            // Before any effect runs: a verifier started below must see the new process.
            slot.os.send_if_modified(|os| {
                let now = view::proc_state(&slot.state);
                std::mem::replace(os, now) != now
            });
            self.changed[idx] = true;
            for effect in effects {
                if let Some(report) = self.carry_out(idx, effect) {
                    next = Some(report);
                }
            }
        }
    }

    fn carry_out(&mut self, idx: usize, effect: Effect) -> Option<Input> {
        match effect {
            Effect::Spawn { run } => return Some(self.spawn(idx, run)),
            Effect::Verify { run } => self.verify(idx, run),
            Effect::CancelVerify => {
                if let Some(v) = self.slots[idx].verifier.take() {
                    v.abort();
                }
            }
            Effect::StopGroup { run, pid } => {
                let state = self.slots[idx].os.subscribe();
                let tx = self.internal.clone();
                tokio::spawn(async move {
                    stop_group(pid as i32, state, RESTART_GRACE).await;
                    let _ = tx.send(Internal::GroupStopped { idx, run });
                });
            }
            Effect::Reply { to, answer } => self.answer(idx, to, answer),
            Effect::Note(note) => self.note(idx, note),
        }
        None
    }

    /// Spawns run `run` of process `idx`; the lifecycle's next input.
    fn spawn(&mut self, idx: usize, run: u32) -> Input {
        let console = self.console.clone();
        let slot = &mut self.slots[idx];
        let spec = slot.spec.clone();
        slot.output = Arc::new(OutputLog::new());
        slot.stdin = None;
        console.say_now(format!("$ {}", spec.command));
        let sink = match &spec.output {
            OutputMode::Console => {
                Sink::Console(console.clone(), console.prefix(spec.id, &spec.name))
            }
            OutputMode::Suppress => Sink::Discard,
            OutputMode::File(path) => match Console::open_output_file(path) {
                Ok(f) => Sink::File(f),
                Err(e) => {
                    let reason = format!("cannot open {} for output: {e}", path.display());
                    return Input::SpawnFailed { reason };
                }
            },
        };
        let spawned = match spawn(&spec, &self.reaper) {
            Ok(s) => s,
            Err(reason) => return Input::SpawnFailed { reason },
        };
        console.debug(format_args!(
            "{} started with pid {}",
            spec.name, spawned.pid
        ));
        slot.stdin = Some(spawned.stdin);
        tokio::spawn(pump(spawned.output, slot.output.clone(), sink));
        let tx = self.internal.clone();
        let exit = spawned.exit;
        tokio::spawn(async move {
            // The reaper always answers; a dropped sender means the manager is exiting.
            if let Ok(state) = exit.await {
                let exit = match state {
                    ProcState::Signaled { signal } => Exit::Signal(signal),
                    other => Exit::Code(other.legacy_code().unwrap_or(0)),
                };
                let _ = tx.send(Internal::Exited { idx, run, exit });
            }
        });
        Input::Spawned { pid: spawned.pid }
    }

    /// Starts the verifier of run `run` of process `idx` in a task of its own.
    fn verify(&mut self, idx: usize, run: u32) {
        let slot = &mut self.slots[idx];
        let Some(v) = slot.spec.verifier.clone() else {
            return;
        };
        let view = ProcessView::new(
            slot.spec.name.clone(),
            slot.os.subscribe(),
            slot.output.clone(),
            self.shutdown.child_token(),
            log_sink(&self.console, self.plan.messages, &slot.spec.name),
        );
        let runtime = self.runtime.clone();
        let tx = self.internal.clone();
        let task = tokio::spawn(async move {
            let result = runtime
                .verify(&v.target, &v.args_json, view)
                .await
                .map_err(|e| e.0);
            let _ = tx.send(Internal::Checked { idx, run, result });
        });
        if let Some(old) = slot.verifier.replace(task.abort_handle()) {
            old.abort();
        }
    }

    fn answer(&mut self, idx: usize, to: ReplyId, answer: Answer) {
        let Some(reply) = self.replies.remove(&to) else {
            return;
        };
        let name = self.slots[idx].name().to_string();
        let result = match answer {
            Answer::Done => Ok(self.slots[idx].info()),
            Answer::Busy(op) => Err(CommandError::Busy(name, op)),
            Answer::ShuttingDown => Err(CommandError::ShuttingDown),
            Answer::Failed(reason) => Err(CommandError::Failed(name, reason)),
        };
        let _ = reply.send(result);
    }

    /// The lines people read: `messages` on stdout, `-v` lines and warnings in the log.
    fn note(&mut self, idx: usize, note: Note) {
        let slot = &self.slots[idx];
        match note {
            Note::Exited(exit) => {
                if self.plan.messages.process_exit {
                    // The original's words: the code, or minus the signal number.
                    self.console.say_now(format!(
                        "Process {} exited with code {}",
                        slot.spec.command,
                        exit.legacy_code()
                    ));
                }
                self.console
                    .info(format_args!("process {}: {exit}", slot.name()));
            }
            Note::Verified => self
                .console
                .info(format_args!("process {} verified", slot.name())),
            // A failure the start-up waits on is reported as the start-up's failure.
            Note::VerifyFailed(reason) if self.startup.waiting_on() != Some(idx) => {
                self.console.log_line(&format!(
                    "[WARNING] process {} failed verification ({}): {}",
                    slot.name(),
                    verifier_kind(&slot.spec),
                    crate::config::one_line(&reason)
                ));
            }
            Note::VerifyFailed(_) => {}
        }
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
            Internal::GroupStopped { idx, run } => self.apply(idx, Input::GroupStopped { run }),
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

    /// Launches the next process in order when the start-up allows it, one per message so
    /// that requests are answered between launches.
    fn advance_startup(&mut self) {
        if self.phase.is_shutting_down() {
            return;
        }
        match self.startup.next(&self.slots) {
            Next::Wait => {}
            Next::Launch(idx) => {
                self.apply(idx, Input::Launch);
                let _ = self.internal.send(Internal::Advance);
            }
            Next::Ready => {
                self.set_phase(Phase::Running);
                self.console.info("all processes are running");
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
                    _ => format!("process {} failed", slot.name()),
                };
                self.startup_failed(line);
            }
        }
    }

    fn startup_failed(&mut self, line: String) {
        let line = crate::config::one_line(&line);
        self.console.log_line(&format!("[ERROR] {line}"));
        let _ = self.events.send(Event::StartupFailed {
            message: line.clone(),
        });
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Err(line.clone()));
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
            let _ = ready.send(Err("pymanager was shut down during start-up".into()));
        }
        self.startup.abandon();
        self.set_phase(Phase::Shutdown);
        self.shutdown.cancel();
        for idx in 0..self.slots.len() {
            self.apply(idx, Input::Shutdown);
        }
        let children = self.reaper.children();
        let grace = self.plan.graceful_time;
        let force = self.force.subscribe();
        let tx = self.internal.clone();
        tokio::spawn(async move {
            terminate_all(children, grace, force).await;
            let _ = tx.send(Internal::ShutdownDone);
        });
    }

    fn set_phase(&mut self, phase: Phase) {
        if self.phase != phase {
            self.phase = phase;
            let _ = self.events.send(Event::Phase { phase });
            self.snapshot_tx.send_modify(|s| {
                *s = Arc::new(Snapshot {
                    phase,
                    processes: s.processes.clone(),
                })
            });
        }
    }

    /// Publishes a new snapshot if a record changed, with an event for each that did.
    fn publish(&mut self) {
        if !self.changed.iter().any(|c| *c) {
            return;
        }
        let old = self.snapshot_tx.borrow().clone();
        let mut processes = Vec::with_capacity(self.slots.len());
        let mut any = false;
        for (idx, slot) in self.slots.iter().enumerate() {
            let was = &old.processes[idx];
            if !std::mem::take(&mut self.changed[idx]) {
                processes.push(was.clone());
                continue;
            }
            let now = slot.info();
            if now != *was {
                any = true;
                let _ = self.events.send(Event::Process {
                    process: now.clone(),
                });
            }
            processes.push(now);
        }
        if any {
            self.snapshot_tx.send_replace(Arc::new(Snapshot {
                phase: self.phase,
                processes,
            }));
        }
    }
}

fn verifier_kind(spec: &ProcessSpec) -> &str {
    spec.verifier.as_ref().map_or("", |v| v.kind.as_str())
}

/// Routes a verifier's log lines through the config's `messages`.
fn log_sink(console: &Console, messages: Messages, name: &str) -> crate::process_view::LogSink {
    let console = console.clone();
    let name = name.to_string();
    Arc::new(move |level, msg| match level {
        Level::Error | Level::Warn if messages.verifier_fail => {
            console.say_now(format!("Verifier fail ({name}): {msg}"))
        }
        _ if messages.verifier_verbose => console.say_now(format!("Verifier ({name}): {msg}")),
        _ => console.debug(format_args!("verifier of {name}: {msg}")),
    })
}
