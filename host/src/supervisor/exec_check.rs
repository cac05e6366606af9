//! Running an `exec` check: the command of a process's `exec` verifier (or liveness check),
//! run natively with the environment and working directory of the process it checks, and
//! so with the same trust as the processes of the config (whoever writes the config
//! already chooses what runs). Each run is a child of the manager in a process group of
//! its own, reaped like the processes; a run that outlives its bound is killed with its
//! whole group, and whatever a run leaves in its group is killed when it ends, so a check
//! leaves nothing.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::output::{Sink, pump};
use super::reaper::Reaper;
use crate::config::exec::{Command, SHORT};
use crate::plan::{ExecSpec, OutputMode, ProcessSpec};
use crate::process_view::{Level, OutputLog, ProcState, ProcessView};

/// Runs the command of `spec` until it exits 0 (passed), `timeout` runs out, the process
/// ends, or pymanager shuts down (failed, with the last attempt's reason). Every run is
/// spawned through `reaper`, the one that reaps the manager's children.
pub async fn verify(spec: &ExecSpec, reaper: &Reaper, view: ProcessView) -> Result<(), String> {
    Check { spec }.verify(reaper, view).await
}

/// How one run ended, when it did not pass.
enum RunEnd {
    /// It ended with this state (not code 0); its last lines of output.
    Failed(ProcState, Vec<String>),
    /// Killed after this long; its last lines.
    TimedOut(Duration, Vec<String>),
    /// It could not be started.
    NotStarted(String),
    /// The process checked ended or pymanager shuts down: the run was killed.
    Cut,
}

impl RunEnd {
    fn describe(&self) -> String {
        let with_output = |what: String, lines: &[String]| match lines.last() {
            Some(last) => format!("{what}: {}", crate::config::one_line(last)),
            None => what,
        };
        match self {
            RunEnd::Failed(ProcState::Signaled { signal }, lines) => {
                with_output(format!("killed by signal {signal}"), lines)
            }
            RunEnd::Failed(state, lines) => with_output(
                format!("exited with code {}", state.legacy_code().unwrap_or(-1)),
                lines,
            ),
            RunEnd::TimedOut(after, lines) => with_output(
                format!(
                    "did not finish within {}, killed",
                    crate::runtime::human_duration(*after)
                ),
                lines,
            ),
            RunEnd::NotStarted(why) => why.clone(),
            RunEnd::Cut => "cut short".into(),
        }
    }
}

/// Lines of a run's output kept for the messages.
const LINES_KEPT: usize = 3;

/// A check being run.
struct Check<'a> {
    spec: &'a ExecSpec,
}

impl Check<'_> {
    async fn verify(&self, reaper: &Reaper, view: ProcessView) -> Result<(), String> {
        let started = tokio::time::Instant::now();
        let deadline = self.spec.args.timeout.map(|t| started + t);
        let mut attempt = 0u32;
        let mut last: Option<RunEnd> = None;
        loop {
            attempt += 1;
            if let Some(end) = ended(&view) {
                return Err(format!("{end} before {} passed", self.spec.args.command));
            }
            // The first run always gets its whole bound (`"timeout": 0` makes one attempt);
            // a later one no more than what is left.
            let left = deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
            let bound = match left {
                Some(l) if attempt > 1 => self.spec.args.run_bound().min(l),
                _ => self.spec.args.run_bound(),
            };
            view.log(
                Level::Info,
                &format!("attempt {attempt}: running {}", self.spec.args.command),
            );
            let mut end = match self.run_once(reaper, &view, Some(bound)).await {
                Ok(()) => return Ok(()),
                Err(end) => end,
            };
            if let Some(state) = ended(&view) {
                return Err(format!(
                    "{state} before {} passed (last attempt: {})",
                    self.spec.args.command,
                    end.describe()
                ));
            }
            if view.shutdown().is_cancelled() {
                return Err("pymanager is shutting down".into());
            }
            view.log(
                Level::Warn,
                &format!("attempt {attempt}: {}", end.describe()),
            );
            if let RunEnd::NotStarted(why) = &end {
                // A program that does not exist will not appear by trying again.
                return Err(why.clone());
            }
            // A run the overall deadline cut short says less than the one before it did.
            let cut = matches!(end, RunEnd::TimedOut(..)) && bound < self.spec.args.run_bound();
            if cut && let Some(before) = last.take() {
                end = before;
            }
            let next = tokio::time::Instant::now() + self.spec.args.interval;
            if let (Some(d), Some(t)) = (deadline, self.spec.args.timeout)
                && (cut || next >= d)
            {
                return Err(format!(
                    "{} did not pass within {} (last attempt: {})",
                    self.spec.args.command,
                    crate::runtime::human_duration(t),
                    end.describe()
                ));
            }
            last = Some(end);
            let mut state = view_state(&view);
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = view.shutdown().cancelled() => return Err("pymanager is shutting down".into()),
                _ = state.wait_for(|s| s.has_ended()) => {}
            }
        }
    }

    /// One run, bounded by `bound`.
    async fn run_once(
        &self,
        reaper: &Reaper,
        view: &ProcessView,
        bound: Option<Duration>,
    ) -> Result<(), RunEnd> {
        let spec = self.spec();
        let spawned = super::spawn::spawn(&spec, reaper).map_err(RunEnd::NotStarted)?;
        // The command reads nothing: its stdin ends at once.
        drop(spawned.stdin);
        let output = Arc::new(OutputLog::new());
        let pump = tokio::spawn(pump(spawned.output, output.clone(), Sink::Discard));
        // Killed with its group however this ends: a verification cut short (a stop, a
        // restart, `verify --timeout`) drops this future mid-run.
        let leader = scopeguard::guard(spawned.leader, |l| l.signal_group(Signal::SIGKILL));
        let mut exit = spawned.exit;
        let mut state = view_state(view);
        let timer = async {
            match bound {
                Some(b) => tokio::time::sleep(b).await,
                None => std::future::pending().await,
            }
        };
        let (end, reaped) = tokio::select! {
            done = &mut exit => (match done {
                Ok(ProcState::Exited { code: 0 }) => None,
                Ok(s) => Some(RunEnd::Failed(s, Vec::new())),
                Err(_) => Some(RunEnd::Cut),
            }, true),
            _ = timer => (Some(RunEnd::TimedOut(bound.unwrap_or_default(), Vec::new())), false),
            _ = view.shutdown().cancelled() => (Some(RunEnd::Cut), false),
            _ = state.wait_for(|s| s.has_ended()) => (Some(RunEnd::Cut), false),
        };
        // Whatever is left in the run's group (the whole run, if it did not end) goes now,
        // and the leader is waited for, so that no check outlives its verdict.
        leader.signal_group(Signal::SIGKILL);
        if !reaped {
            let _ = exit.await;
        }
        // The output ends once every holder of the pipe is gone; a process that left the
        // group (setsid) may keep it: its lines so far are enough.
        let _ = tokio::time::timeout(Duration::from_millis(200), pump).await;
        let lines = output.tail(LINES_KEPT);
        for line in &lines {
            view.log(Level::Debug, &format!("output: {line}"));
        }
        match end {
            None => Ok(()),
            Some(RunEnd::Failed(s, _)) => Err(RunEnd::Failed(s, lines)),
            Some(RunEnd::TimedOut(b, _)) => Err(RunEnd::TimedOut(b, lines)),
            Some(other) => Err(other),
        }
    }

    /// The run as the supervisor spawns a process: program, arguments, directory and
    /// environment of the process checked.
    fn spec(&self) -> ProcessSpec {
        let (program, args): (OsString, Vec<OsString>) = match &self.spec.args.command {
            Command::Argv(argv) => (
                argv[0].clone().into(),
                argv[1..].iter().map(OsString::from).collect(),
            ),
            Command::Shell(line) => (
                self.spec.shell.clone().into(),
                vec!["-c".into(), line.clone().into()],
            ),
        };
        ProcessSpec {
            id: 0,
            name: Arc::from(SHORT),
            command: self.spec.args.command.to_string(),
            program,
            args,
            cwd: self.spec.cwd.clone(),
            env: self.spec.env.clone(),
            ports: Default::default(),
            port_hold: Default::default(),
            output: OutputMode::Suppress,
            verifier: None,
            orchestration: Default::default(),
        }
    }
}

/// The process's state as a receiver to wait on.
fn view_state(view: &ProcessView) -> tokio::sync::watch::Receiver<ProcState> {
    view.state_receiver()
}

/// `process exited with code N` once the process checked has ended.
fn ended(view: &ProcessView) -> Option<String> {
    match view.state() {
        ProcState::Exited { code } => Some(format!("process exited with code {code}")),
        ProcState::Signaled { signal } => Some(format!("process was killed by signal {signal}")),
        _ => None,
    }
}
