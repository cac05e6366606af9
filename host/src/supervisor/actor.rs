//! The task that owns the process table.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use super::handle::{
    Command, CommandError, Event, Lifecycle, Phase, ProcessInfo, ProcessRef, Snapshot,
    SupervisorHandle, VerifierInfo, VerifierOutcome,
};
use super::output::{Sink, pump};
use super::reaper::Reaper;
use super::spawn::spawn;
use super::terminate::{stop_group, terminate_all};
use super::{Outcome, RESTART_GRACE};
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
    let (force_tx, _) = watch::channel(false);
    let records: Vec<Record> = plan
        .processes
        .iter()
        .map(|spec| Record::new(spec.clone()))
        .collect();
    let first = Arc::new(Snapshot {
        phase: Phase::Launching,
        processes: records.iter().map(|r| r.info.clone()).collect(),
    });
    let (snapshot_tx, snapshot) = watch::channel(first);
    let handle = SupervisorHandle {
        commands,
        snapshot,
        events: events.clone(),
    };
    let actor = Actor {
        plan,
        runtime,
        console,
        reaper,
        records,
        phase: Phase::Launching,
        snapshot_tx,
        events,
        internal: internal_tx,
        shutdown: CancellationToken::new(),
        force: force_tx,
        ready: Some(ready_tx),
        outcome: None,
        dirty: true,
    };
    let done = tokio::spawn(actor.run(commands_rx, internal_rx));
    Ok(Started {
        handle,
        ready,
        done,
    })
}

/// What a run of a process was started for: the reply goes out once it is verified.
enum Purpose {
    /// The start-up sequence: the next process starts when this one is verified.
    Startup,
    /// A REST restart or start: answer this requester.
    Request(Reply),
}

/// What to do once a process has been stopped.
enum AfterStop {
    Restart(Reply),
    Stop(Reply),
}

/// Reports from the tasks the actor started.
enum Internal {
    Exited {
        idx: usize,
        run: u64,
        state: ProcState,
    },
    Verified {
        idx: usize,
        run: u64,
        result: Result<(), String>,
    },
    Stopped {
        idx: usize,
        then: AfterStop,
    },
    LaunchFrom(usize),
    ShutdownDone,
}

struct Record {
    spec: Arc<ProcessSpec>,
    info: ProcessInfo,
    state: watch::Sender<ProcState>,
    output: Arc<OutputLog>,
    /// Counts runs, so that a late report about an old run is recognised and ignored.
    run: u64,
    /// The operation under way, if any; a second one is refused as busy.
    busy: Option<&'static str>,
    /// Who waits for the current run's verification.
    purpose: Option<Purpose>,
    verifier: Option<AbortHandle>,
    /// Held open while the run lives, so the process never reads EOF on stdin.
    stdin: Option<OwnedFd>,
}

impl Record {
    fn new(spec: Arc<ProcessSpec>) -> Record {
        Record {
            info: ProcessInfo {
                id: spec.id,
                name: spec.name.to_string(),
                command: spec.command.clone(),
                state: ProcState::NotStarted,
                lifecycle: Lifecycle::Pending,
                restarts: 0,
                started_at: None,
                verifier: spec.verifier.as_ref().map(|v| VerifierInfo {
                    kind: v.kind.clone(),
                    outcome: VerifierOutcome::Pending,
                    message: None,
                }),
                error: None,
            },
            state: watch::channel(ProcState::NotStarted).0,
            output: Arc::new(OutputLog::new()),
            run: 0,
            busy: None,
            purpose: None,
            verifier: None,
            stdin: None,
            spec,
        }
    }

    fn running_pid(&self) -> Option<i32> {
        match self.info.state {
            ProcState::Running { pid } => Some(pid as i32),
            _ => None,
        }
    }
}

struct Actor {
    plan: Plan,
    runtime: Runtime,
    console: Console,
    reaper: Reaper,
    records: Vec<Record>,
    phase: Phase,
    snapshot_tx: watch::Sender<Arc<Snapshot>>,
    events: broadcast::Sender<Event>,
    internal: mpsc::UnboundedSender<Internal>,
    /// Cancelled when the shutdown begins: verifiers and their waits end early.
    shutdown: CancellationToken,
    force: watch::Sender<bool>,
    ready: Option<oneshot::Sender<Result<(), String>>>,
    outcome: Option<Outcome>,
    dirty: bool,
}

impl Actor {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut internal: mpsc::UnboundedReceiver<Internal>,
    ) -> Outcome {
        self.console
            .info(format_args!("launching {} processes", self.records.len()));
        self.launch_from(0);
        self.publish();
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
            self.publish();
        }
        self.console.flush().await;
        self.outcome.take().unwrap_or(Outcome::Shutdown)
    }

    // ---- start-up sequence -------------------------------------------------------

    /// Starts processes from `idx` on, in order, each after the previous one verified.
    fn launch_from(&mut self, idx: usize) {
        if self.phase.is_shutting_down() {
            return;
        }
        if idx == self.records.len() {
            self.set_phase(Phase::Running);
            self.console.info("all processes are running");
            if let Some(ready) = self.ready.take() {
                let _ = ready.send(Ok(()));
            }
            self.check_all_ended();
            return;
        }
        self.start_run(idx, Purpose::Startup);
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

    // ---- one run of one process --------------------------------------------------

    /// Spawns a new run of process `idx`, then verifies it; `purpose` learns the result.
    fn start_run(&mut self, idx: usize, purpose: Purpose) {
        let console = self.console.clone();
        let rec = &mut self.records[idx];
        rec.run += 1;
        rec.output = Arc::new(OutputLog::new());
        rec.info.error = None;
        rec.info.started_at = Some(SystemTime::now());
        let spec = rec.spec.clone();
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
                    return self.run_failed(idx, purpose, reason);
                }
            },
        };
        let spawned = match spawn(&spec, &self.reaper) {
            Ok(s) => s,
            Err(reason) => return self.run_failed(idx, purpose, reason),
        };
        let rec = &mut self.records[idx];
        let run = rec.run;
        console.debug(format_args!(
            "{} started with pid {}",
            spec.name, spawned.pid
        ));
        rec.info.state = ProcState::Running { pid: spawned.pid };
        rec.state.send_replace(rec.info.state);
        rec.stdin = Some(spawned.stdin);
        tokio::spawn(pump(spawned.output, rec.output.clone(), sink));
        let tx = self.internal.clone();
        let exit = spawned.exit;
        tokio::spawn(async move {
            // The reaper always answers; a dropped sender means the manager is exiting.
            if let Ok(state) = exit.await {
                let _ = tx.send(Internal::Exited { idx, run, state });
            }
        });

        let Some(v) = spec.verifier.clone() else {
            rec.info.lifecycle = Lifecycle::Ready;
            self.run_verified(idx, purpose);
            return;
        };
        rec.info.lifecycle = Lifecycle::Verifying;
        rec.busy = Some("verification");
        rec.purpose = Some(purpose);
        if let Some(info) = &mut rec.info.verifier {
            info.outcome = VerifierOutcome::Running;
            info.message = None;
        }
        let log = log_sink(&self.console, self.plan.messages, &spec.name);
        let view = ProcessView::new(
            spec.name.clone(),
            rec.state.subscribe(),
            rec.output.clone(),
            self.shutdown.child_token(),
            log,
        );
        let runtime = self.runtime.clone();
        let tx = self.internal.clone();
        let task = tokio::spawn(async move {
            let result = runtime
                .verify(&v.target, &v.args_json, view)
                .await
                .map_err(|e| e.0);
            let _ = tx.send(Internal::Verified { idx, run, result });
        });
        rec.verifier = Some(task.abort_handle());
        self.dirty = true;
    }

    fn run_failed(&mut self, idx: usize, purpose: Purpose, reason: String) {
        let rec = &mut self.records[idx];
        rec.info.lifecycle = Lifecycle::Failed;
        rec.info.error = Some(reason.clone());
        rec.busy = None;
        self.dirty = true;
        let name = rec.spec.name.clone();
        match purpose {
            Purpose::Startup => self.startup_failed(format!(
                "could not set up processes: processes.{name}: {reason}"
            )),
            Purpose::Request(reply) => {
                let _ = reply.send(Err(CommandError::Failed(name.to_string(), reason)));
            }
        }
    }

    fn run_verified(&mut self, idx: usize, purpose: Purpose) {
        let rec = &mut self.records[idx];
        rec.busy = None;
        self.dirty = true;
        match purpose {
            // Through the mailbox, not a call: with many processes without verifiers a
            // direct call would recurse once per process.
            Purpose::Startup => {
                let _ = self.internal.send(Internal::LaunchFrom(idx + 1));
            }
            Purpose::Request(reply) => {
                let _ = reply.send(Ok(self.records[idx].info.clone()));
            }
        }
    }

    fn on_internal(&mut self, msg: Internal) {
        self.dirty = true;
        match msg {
            Internal::Exited { idx, run, state } => {
                let rec = &mut self.records[idx];
                if rec.run != run {
                    return;
                }
                rec.info.state = state;
                rec.state.send_replace(state);
                rec.stdin = None;
                if !matches!(rec.info.lifecycle, Lifecycle::Stopping | Lifecycle::Failed) {
                    rec.info.lifecycle = Lifecycle::Exited;
                }
                if self.plan.messages.process_exit {
                    let how = match state {
                        ProcState::Signaled { signal } => format!("code {}", -signal),
                        _ => format!("code {}", state.legacy_code().unwrap_or(0)),
                    };
                    self.console
                        .say_now(format!("Process {} exited with {how}", rec.spec.command));
                }
                self.console
                    .info(format_args!("process {} ended: {state:?}", rec.spec.name));
                self.check_all_ended();
            }
            Internal::Verified { idx, run, result } => {
                let rec = &mut self.records[idx];
                if rec.run != run {
                    return;
                }
                rec.verifier = None;
                let purpose = rec.purpose.take();
                if let Some(info) = &mut rec.info.verifier {
                    info.outcome = match result {
                        Ok(()) => VerifierOutcome::Passed,
                        Err(_) => VerifierOutcome::Failed,
                    };
                    info.message = result.as_ref().err().cloned();
                }
                match result {
                    Ok(()) => {
                        if rec.info.lifecycle == Lifecycle::Verifying {
                            rec.info.lifecycle = Lifecycle::Ready;
                        }
                        self.console
                            .info(format_args!("process {} verified", rec.spec.name));
                        if let Some(p) = purpose {
                            self.run_verified(idx, p);
                        }
                    }
                    Err(reason) => {
                        let name = rec.spec.name.clone();
                        let kind = rec
                            .spec
                            .verifier
                            .as_ref()
                            .map_or(String::new(), |v| v.kind.clone());
                        rec.info.lifecycle = Lifecycle::Failed;
                        rec.busy = None;
                        match purpose {
                            Some(Purpose::Startup) => self.startup_failed(format!(
                                "process {name} failed verification ({kind}): {reason}"
                            )),
                            Some(Purpose::Request(reply)) => {
                                let _ = reply.send(Err(CommandError::Failed(
                                    name.to_string(),
                                    format!("verification failed: {reason}"),
                                )));
                            }
                            None => {}
                        }
                    }
                }
            }
            Internal::Stopped { idx, then } => {
                let rec = &mut self.records[idx];
                rec.busy = None;
                match then {
                    AfterStop::Restart(reply) => {
                        if self.phase.is_shutting_down() {
                            let _ = reply.send(Err(CommandError::ShuttingDown));
                            return;
                        }
                        rec.info.restarts += 1;
                        rec.busy = Some("restart");
                        self.start_run(idx, Purpose::Request(reply));
                    }
                    AfterStop::Stop(reply) => {
                        rec.info.lifecycle = Lifecycle::Stopped;
                        let _ = reply.send(Ok(rec.info.clone()));
                        self.check_all_ended();
                    }
                }
            }
            Internal::LaunchFrom(idx) => self.launch_from(idx),
            Internal::ShutdownDone => {}
        }
    }

    // ---- commands ------------------------------------------------------------------

    fn find(&self, target: &ProcessRef) -> Result<usize, CommandError> {
        let found = match target {
            ProcessRef::Id(id) => (*id as usize)
                .checked_sub(1)
                .filter(|i| *i < self.records.len()),
            ProcessRef::Name(n) => self.records.iter().position(|r| *r.spec.name == **n),
        };
        found.ok_or_else(|| CommandError::NotFound(target.to_string()))
    }

    /// Checks that a mutating command may run on `target` now.
    fn claim(&self, target: &ProcessRef) -> Result<usize, CommandError> {
        if self.phase.is_shutting_down() {
            return Err(CommandError::ShuttingDown);
        }
        let idx = self.find(target)?;
        if let Some(op) = self.records[idx].busy {
            return Err(CommandError::Busy(
                self.records[idx].spec.name.to_string(),
                op,
            ));
        }
        if self.phase == Phase::Launching && self.records[idx].info.lifecycle == Lifecycle::Pending
        {
            return Err(CommandError::Busy(
                self.records[idx].spec.name.to_string(),
                "start-up",
            ));
        }
        Ok(idx)
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Restart(target, reply) => match self.claim(&target) {
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
                Ok(idx) => self.stop_then(idx, "restart", AfterStop::Restart(reply)),
            },
            Command::Stop(target, reply) => match self.claim(&target) {
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
                Ok(idx) => self.stop_then(idx, "stop", AfterStop::Stop(reply)),
            },
            Command::Start(target, reply) => match self.claim(&target) {
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
                Ok(idx) if self.records[idx].running_pid().is_some() => {
                    let _ = reply.send(Ok(self.records[idx].info.clone()));
                }
                Ok(idx) => {
                    self.records[idx].info.restarts += 1;
                    self.records[idx].busy = Some("start");
                    self.start_run(idx, Purpose::Request(reply));
                    self.dirty = true;
                }
            },
            Command::Output(target, reply) => {
                let _ = reply.send(self.find(&target).map(|i| self.records[i].output.clone()));
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

    /// Stops process `idx` gracefully in a task of its own, then does `then`.
    fn stop_then(&mut self, idx: usize, op: &'static str, then: AfterStop) {
        let rec = &mut self.records[idx];
        rec.busy = Some(op);
        rec.info.lifecycle = Lifecycle::Stopping;
        if let Some(v) = rec.verifier.take() {
            v.abort();
        }
        let pid = rec.running_pid();
        let state = rec.state.subscribe();
        let tx = self.internal.clone();
        self.dirty = true;
        tokio::spawn(async move {
            if let Some(pid) = pid {
                stop_group(pid, state, RESTART_GRACE).await;
            }
            let _ = tx.send(Internal::Stopped { idx, then });
        });
    }

    // ---- the end ---------------------------------------------------------------------

    /// Without keep-alive, the manager ends once every process has ended.
    fn check_all_ended(&mut self) {
        if self.plan.keep_alive || self.phase != Phase::Running {
            return;
        }
        let all_ended = self.records.iter().all(|r| {
            r.busy.is_none()
                && matches!(
                    r.info.lifecycle,
                    Lifecycle::Exited | Lifecycle::Stopped | Lifecycle::Failed
                )
        });
        if all_ended {
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
        self.set_phase(Phase::Shutdown);
        self.shutdown.cancel();
        for rec in &mut self.records {
            if let Some(v) = rec.verifier.take() {
                v.abort();
            }
            if let Some(Purpose::Request(reply)) = rec.purpose.take() {
                let _ = reply.send(Err(CommandError::ShuttingDown));
            }
            if rec.running_pid().is_some() {
                rec.info.lifecycle = Lifecycle::Stopping;
            }
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
            self.dirty = true;
            let _ = self.events.send(Event::Phase { phase });
        }
    }

    /// Publishes a new snapshot (and a process event for each changed record).
    fn publish(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let old = self.snapshot_tx.borrow().clone();
        let processes: Vec<ProcessInfo> = self.records.iter().map(|r| r.info.clone()).collect();
        for (i, p) in processes.iter().enumerate() {
            if old.processes.get(i).is_none_or(|o| !same(o, p)) {
                let _ = self.events.send(Event::Process { process: p.clone() });
            }
        }
        self.snapshot_tx.send_replace(Arc::new(Snapshot {
            phase: self.phase,
            processes,
        }));
    }
}

/// Routes a verifier's log lines through the config's `messages`.
fn log_sink(console: &Console, messages: Messages, name: &str) -> crate::process_view::LogSink {
    let console = console.clone();
    let name = name.to_string();
    Arc::new(move |level, msg| match level {
        Level::Error | Level::Warn if messages.verifier_fail => {
            console.say_or_drop(format!("Verifier fail ({name}): {msg}"))
        }
        _ if messages.verifier_verbose => console.say_or_drop(format!("Verifier ({name}): {msg}")),
        _ => console.debug(format_args!("verifier of {name}: {msg}")),
    })
}

fn same(a: &ProcessInfo, b: &ProcessInfo) -> bool {
    a.state == b.state
        && a.lifecycle == b.lifecycle
        && a.restarts == b.restarts
        && a.verifier == b.verifier
        && a.error == b.error
        && a.started_at == b.started_at
}
