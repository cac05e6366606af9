//! The `exec` verifier: runs a command and passes when it exits 0 — what process-compose,
//! docker compose and Kubernetes call an exec probe.
//!
//! Unlike every other verifier it is not a sandboxed component: the command runs natively,
//! with the environment and working directory of the process it checks, and so with the
//! same trust as the processes of the config (whoever writes the config already chooses
//! what runs). Each run is a child of the manager in a process group of its own, reaped
//! like the processes; a run that outlives its bound is killed with its whole group, and
//! whatever a run leaves in its group is killed when it ends, so a check leaves nothing.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::plan::{OutputMode, ProcessSpec};
use crate::process_view::{Level, OutputLog, ProcState, ProcessView};
use crate::supervisor::output::{Sink, pump};
use crate::supervisor::reaper::Reaper;

/// The module name the `exec` verifier goes by (`pymanager.exec_verifier.ExecVerifier`).
pub const MODULE: &str = "pymanager.exec_verifier";
/// Its verifier name.
pub const NAME: &str = "ExecVerifier";
/// Its short name, the usual one in configs.
pub const SHORT: &str = "exec";

/// The arguments it takes (the schema lists the same).
pub const KNOWN: &[&str] = &["command", "timeout", "interval", "run_timeout"];

/// True when a verifier type names the `exec` verifier: `exec`, `ExecVerifier`,
/// `pymanager.exec_verifier.ExecVerifier` or, as for the other built-ins of the package,
/// `pymanager.ExecVerifier`.
pub fn names(kind: &str) -> bool {
    let kind = kind.trim();
    kind == SHORT
        || kind == NAME
        || kind
            .rsplit_once('.')
            .is_some_and(|(m, n)| n == NAME && (m == MODULE || m == "pymanager"))
}

/// The command a check runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// An argument list, run as it is (the first is looked up in `PATH`).
    Argv(Vec<String>),
    /// A command line, run by the default shell with `-c`.
    Shell(String),
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Argv(argv) => f.write_str(&argv.join(" ")),
            Command::Shell(line) => f.write_str(line),
        }
    }
}

/// The `exec` verifier's arguments, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecArgs {
    /// What to run.
    pub command: Command,
    /// How long to keep trying (30 s); `None` (`"timeout": null`) tries until the process
    /// ends, a stop or the shutdown.
    pub timeout: Option<Duration>,
    /// The pause between the end of one run and the start of the next (1 s).
    pub interval: Duration,
    /// The bound of one run (see [`ExecArgs::run_bound`]).
    pub run_timeout: Option<Duration>,
}

impl ExecArgs {
    /// Reads the arguments (a JSON object). The error is `field: reason`; the warnings
    /// (arguments it does not take, ignored) are too.
    pub fn parse(args: &Value) -> Result<(ExecArgs, Vec<String>), String> {
        let map = args
            .as_object()
            .ok_or("expected an object of named arguments")?;
        let mut warnings = Vec::new();
        for key in map.keys().filter(|k| !KNOWN.contains(&k.as_str())) {
            warnings.push(format!(
                "{key}: unknown argument (expected one of {})",
                KNOWN.join(", ")
            ));
        }
        let command = match map.get("command") {
            None | Some(Value::Null) => return Err("command: missing field".into()),
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err("command: must not be empty".into());
            }
            Some(Value::String(s)) => Command::Shell(s.clone()),
            Some(Value::Array(items)) => {
                let argv = items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or("command: expected a list of strings")?;
                if argv.first().is_none_or(|p| p.is_empty()) {
                    return Err("command: the list must start with a program".into());
                }
                Command::Argv(argv)
            }
            Some(other) => {
                return Err(format!(
                    "command: expected a command line or a list of strings, got {}",
                    crate::config::describe_json(other)
                ));
            }
        };
        let timeout = match map.get("timeout") {
            Some(Value::Null) => None,
            v => Some(seconds("timeout", v)?.unwrap_or(Duration::from_secs(30))),
        };
        let interval = seconds("interval", map.get("interval"))?.unwrap_or(Duration::from_secs(1));
        let run_timeout = seconds("run_timeout", map.get("run_timeout"))?;
        if run_timeout.is_some_and(|d| d.is_zero()) {
            return Err("run_timeout: must be above 0".into());
        }
        Ok((
            ExecArgs {
                command,
                timeout,
                interval,
                run_timeout,
            },
            warnings,
        ))
    }
}

/// The bound of one run when neither `run_timeout` nor `timeout` gives one.
const DEFAULT_RUN_BOUND: Duration = Duration::from_secs(30);

impl ExecArgs {
    /// The bound of one run: `run_timeout`, else `timeout`, else 30 s.
    pub fn run_bound(&self) -> Duration {
        self.run_timeout
            .or(self.timeout.filter(|t| !t.is_zero()))
            .unwrap_or(DEFAULT_RUN_BOUND)
    }
}

/// Seconds as the built-in verifiers take them: a number, or a numeric string; not negative.
fn seconds(field: &str, v: Option<&Value>) -> Result<Option<Duration>, String> {
    let n = match v {
        None => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match n {
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(s.min(1e9)))),
        _ => Err(format!(
            "{field}: expected a number of seconds (0 or more), got {}",
            crate::config::describe_json(v.unwrap_or(&Value::Null))
        )),
    }
}

/// One process's `exec` check, ready to run: its arguments and where its command runs.
#[derive(Debug, Clone)]
pub struct ExecVerifier {
    /// The checked arguments.
    pub args: ExecArgs,
    /// The process's working directory (pymanager's when `None`).
    pub cwd: Option<PathBuf>,
    /// The process's whole environment (pymanager's when `None`).
    pub env: Option<Vec<(OsString, OsString)>>,
    /// The shell for a command line (the config's default shell).
    pub shell: String,
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

impl ExecVerifier {
    /// Runs the command until it exits 0 (passed), `timeout` runs out, the process ends,
    /// or pymanager shuts down (failed, with the last attempt's reason). Every run is
    /// spawned through `reaper`, the one that reaps the manager's children.
    pub async fn verify(&self, reaper: &Reaper, view: ProcessView) -> Result<(), String> {
        let started = tokio::time::Instant::now();
        let deadline = self.args.timeout.map(|t| started + t);
        let mut attempt = 0u32;
        let mut last: Option<RunEnd> = None;
        loop {
            attempt += 1;
            if let Some(end) = ended(&view) {
                return Err(format!("{end} before {} passed", self.args.command));
            }
            // The first run always gets its whole bound (`"timeout": 0` makes one attempt);
            // a later one no more than what is left.
            let left = deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
            let bound = match left {
                Some(l) if attempt > 1 => self.args.run_bound().min(l),
                _ => self.args.run_bound(),
            };
            view.log(
                Level::Info,
                &format!("attempt {attempt}: running {}", self.args.command),
            );
            let mut end = match self.run_once(reaper, &view, Some(bound)).await {
                Ok(()) => return Ok(()),
                Err(end) => end,
            };
            if let Some(state) = ended(&view) {
                return Err(format!(
                    "{state} before {} passed (last attempt: {})",
                    self.args.command,
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
            let cut = matches!(end, RunEnd::TimedOut(..)) && bound < self.args.run_bound();
            if cut && let Some(before) = last.take() {
                end = before;
            }
            let next = tokio::time::Instant::now() + self.args.interval;
            if let (Some(d), Some(t)) = (deadline, self.args.timeout)
                && (cut || next >= d)
            {
                return Err(format!(
                    "{} did not pass within {} (last attempt: {})",
                    self.args.command,
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
        let spawned = crate::supervisor::spawn::spawn(&spec, reaper).map_err(RunEnd::NotStarted)?;
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
        let (program, args): (OsString, Vec<OsString>) = match &self.args.command {
            Command::Argv(argv) => (
                argv[0].clone().into(),
                argv[1..].iter().map(OsString::from).collect(),
            ),
            Command::Shell(line) => (
                self.shell.clone().into(),
                vec!["-c".into(), line.clone().into()],
            ),
        };
        ProcessSpec {
            id: 0,
            name: Arc::from(SHORT),
            command: self.args.command.to_string(),
            program,
            args,
            cwd: self.cwd.clone(),
            env: self.env.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_names_of_the_exec_verifier() {
        for yes in [
            "exec",
            "ExecVerifier",
            "pymanager.exec_verifier.ExecVerifier",
            "pymanager.ExecVerifier",
        ] {
            assert!(names(yes), "{yes}");
        }
        for no in ["execs", "pymutils.ExecVerifier", "http", "x.exec"] {
            assert!(!names(no), "{no}");
        }
    }

    #[test]
    fn arguments_are_checked_with_the_field_first() {
        let (a, w) = ExecArgs::parse(&json!({"command": ["pg_isready", "-q"]})).unwrap();
        assert_eq!(
            a.command,
            Command::Argv(vec!["pg_isready".into(), "-q".into()])
        );
        assert_eq!(a.timeout, Some(Duration::from_secs(30)));
        assert_eq!(a.interval, Duration::from_secs(1));
        assert_eq!(a.run_timeout, None);
        assert!(w.is_empty());
        let (a, w) = ExecArgs::parse(&json!({
            "command": "test -f ready", "timeout": null, "interval": "0.5", "run_timeout": 2, "tiemout": 1
        }))
        .unwrap();
        assert_eq!(a.command, Command::Shell("test -f ready".into()));
        assert_eq!(a.timeout, None);
        assert_eq!(a.interval, Duration::from_millis(500));
        assert_eq!(a.run_timeout, Some(Duration::from_secs(2)));
        assert_eq!(
            w,
            ["tiemout: unknown argument (expected one of command, timeout, interval, run_timeout)"]
        );
        for (args, error) in [
            (json!({}), "command: missing field"),
            (json!({"command": ""}), "command: must not be empty"),
            (
                json!({"command": []}),
                "command: the list must start with a program",
            ),
            (
                json!({"command": [1]}),
                "command: expected a list of strings",
            ),
            (
                json!({"command": 3}),
                "command: expected a command line or a list of strings, got the number 3",
            ),
            (
                json!({"command": "x", "timeout": -1}),
                "timeout: expected a number of seconds (0 or more), got the number -1",
            ),
            (
                json!({"command": "x", "interval": "soon"}),
                "interval: expected a number of seconds (0 or more), got the string \"soon\"",
            ),
            (
                json!({"command": "x", "run_timeout": 0}),
                "run_timeout: must be above 0",
            ),
        ] {
            assert_eq!(ExecArgs::parse(&args).unwrap_err(), error, "{args}");
        }
    }
}
