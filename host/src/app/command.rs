//! `pymanager run -- CMD`: the command that runs once the environment is ready, with the
//! environment's address, token and ports in its environment; its exit code is `run`'s.
//!
//! While it runs, a first SIGINT/SIGTERM/SIGQUIT/SIGHUP to `pymanager run` goes to the
//! command (the environment is stopped once it has ended) and a second one kills it; a
//! process that must stay up and ends is reported, and with `--abort-on-exit` the command
//! is stopped at once and `run` exits 6. If the manager is shut down under it (`DELETE /`,
//! `--exit-with`), the command is stopped too.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use nix::sys::signal::Signal;

use super::signals::Request;
use crate::cli::RunArgs;
use crate::config::Condition;
use crate::console::Console;
use crate::plan::Plan;
use crate::process_view::ProcState;
use crate::supervisor::command::Spawner;
use crate::supervisor::{Lifecycle, Snapshot, SupervisorHandle};

/// Exit code of `run` when `--abort-on-exit` stopped the command.
pub const EXIT_ABORTED: i32 = 6;
/// Exit code of `run` when the command cannot be started (a shell's "command not found").
pub const EXIT_NOT_RUN: i32 = 127;
/// How long the command has between SIGTERM and SIGKILL when pymanager stops it.
const COMMAND_GRACE: Duration = Duration::from_secs(10);

/// What a client of the environment is told: `pymanager run`'s command in its environment,
/// `--write-env`'s file.
#[derive(Debug, Clone, Default)]
pub struct ClientEnv {
    /// The REST API's base URL, when it is on.
    pub url: Option<String>,
    /// The bearer token, when one is set.
    pub token: Option<String>,
    /// The pid to signal to stop the environment (the guardian's).
    pub pid: u32,
    /// Every `PYMANAGER_PORT_<PROCESS>_<NAME>` and its number.
    pub ports: Vec<(String, String)>,
}

impl ClientEnv {
    /// The variables, in a stable order.
    pub fn vars(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        if let Some(url) = &self.url {
            v.push(("PYMANAGER_URL".into(), url.clone()));
        }
        if let Some(token) = &self.token {
            v.push(("PYMANAGER_TOKEN".into(), token.clone()));
        }
        v.push(("PYMANAGER_PID".into(), self.pid.to_string()));
        v.extend(self.ports.iter().cloned());
        v
    }

    /// `KEY=VALUE` lines (the values hold no newline: URLs, hex tokens, numbers).
    pub fn file_text(&self) -> String {
        self.vars()
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect()
    }
}

/// For each process of `plan`, whether it is meant to end: its verifier waits for its exit,
/// or another process waits for it to have exited. The others must stay up.
pub fn one_shots(plan: &Plan) -> Vec<bool> {
    plan.processes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let exit_verified = p
                .verifier
                .as_ref()
                .is_some_and(|v| v.target.module == crate::plan::EXITED_MODULE);
            let awaited_exit = plan.processes.iter().any(|q| {
                q.orchestration.depends_on.iter().any(|d| {
                    d.on == i && matches!(d.condition, Condition::Exited | Condition::ExitedOk)
                })
            });
            exit_verified || awaited_exit
        })
        .collect()
}

/// Runs the command to its end; `run`'s exit code. `one_shot` says which processes may
/// end without that being news.
pub async fn run(
    args: &RunArgs,
    handle: &SupervisorHandle,
    spawner: &Spawner,
    env: &ClientEnv,
    one_shot: &[bool],
    signals: &mut BoxStream<'static, Request>,
    console: &Console,
) -> i32 {
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest).envs(env.vars());
    let mut child = match spawner.spawn(cmd) {
        Ok(c) => c,
        Err(e) => {
            console.log_line(&format!("[ERROR] pymanager run: {e}"));
            return EXIT_NOT_RUN;
        }
    };
    let mut watch = handle.watch();
    // The processes that must stay up and are up now.
    let watched: Vec<usize> = {
        let snap = watch.borrow_and_update();
        (0..snap.processes.len())
            .filter(|&i| !one_shot.get(i).copied().unwrap_or(false) && is_up(&snap, i))
            .collect()
    };
    let mut ended: Vec<(String, String)> = Vec::new();
    let mut watching = true;
    let mut signalled = 0;
    let mut aborted = false;
    let mut stopping = false;
    let kill_at = tokio::time::sleep(Duration::MAX);
    tokio::pin!(kill_at);
    let state = loop {
        tokio::select! {
            state = child.wait() => break state,
            Some(request) = signals.next() => {
                signalled += 1;
                match request {
                    Request::Shutdown(sig) if signalled == 1 => {
                        if let Ok(sig) = Signal::try_from(sig) {
                            child.signal(sig);
                        }
                    }
                    _ => child.signal(Signal::SIGKILL),
                }
            }
            changed = watch.changed(), if watching => {
                if changed.is_err() {
                    watching = false;
                    continue;
                }
                let snap = watch.borrow_and_update().clone();
                for &i in &watched {
                    let p = &snap.processes[i];
                    if !is_up(&snap, i)
                        && ended_for_good(p.lifecycle)
                        && !ended.iter().any(|(n, _)| n == &p.name)
                    {
                        let why = super::report::reason(p);
                        console.log_line(&format!(
                            "[WARNING] process {} ended while the command ran: {why}",
                            p.name
                        ));
                        ended.push((p.name.clone(), why));
                    }
                }
                let stop_now = (args.abort_on_exit && !ended.is_empty() && !aborted)
                    || (snap.phase.is_shutting_down() && !stopping);
                if stop_now {
                    aborted |= args.abort_on_exit && !ended.is_empty();
                    stopping = true;
                    child.signal(Signal::SIGTERM);
                    kill_at.as_mut().reset(tokio::time::Instant::now() + COMMAND_GRACE);
                }
            }
            () = &mut kill_at => {
                child.signal(Signal::SIGKILL);
                kill_at.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(3600));
            }
        }
    };
    child.give_back_terminal();
    if !ended.is_empty() {
        let list: Vec<String> = ended.iter().map(|(n, w)| format!("{n} ({w})")).collect();
        eprintln!(
            "pymanager: while the command ran, {} ended: {}",
            if ended.len() == 1 {
                "a process"
            } else {
                "processes"
            },
            list.join(", ")
        );
    }
    if aborted {
        eprintln!("pymanager: the command was stopped (--abort-on-exit): exit {EXIT_ABORTED}");
        return EXIT_ABORTED;
    }
    match state {
        ProcState::Exited { code } => code,
        ProcState::Signaled { signal } => 128 + signal,
        _ => 1,
    }
}

/// True while process `i` runs (or, verified, keeps running): what "up" means for a
/// process that must stay up.
fn is_up(snap: &Snapshot, i: usize) -> bool {
    matches!(
        snap.processes[i].lifecycle,
        Lifecycle::Ready
            | Lifecycle::Unhealthy
            | Lifecycle::Verifying
            | Lifecycle::Starting
            | Lifecycle::BackingOff
            | Lifecycle::Stopping
    )
}

/// An end that no restart policy will undo and that no user asked for.
fn ended_for_good(l: Lifecycle) -> bool {
    matches!(l, Lifecycle::Exited | Lifecycle::Failed)
}
