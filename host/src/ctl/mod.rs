//! `pymanager ctl`: controls a running pymanager over its REST API, so that scripts and
//! people never have to hand-write `curl` calls or know the port.
//!
//! [`args`] is the command line, [`locate`] finds the manager and its token (trusting only
//! our own state files and loopback), [`client`] talks HTTP and reads answers as the API's
//! own types, [`render`] prints them for people, and [`follow`] handles the long answers
//! (a followed log, `wait`). Every failure is one [`CtlError`]: one line, one exit code.

pub mod args;
pub mod client;
pub mod follow;
pub mod locate;
pub mod render;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde::Serialize;

pub use args::{CtlArgs, CtlCommand};
use client::{Client, encode};

use crate::api::v1;

/// Exit code: the manager refused or failed the request, or start-up failed.
pub const EXIT_FAILED: i32 = 1;
/// Exit code: no manager could be reached (or trusted).
pub const EXIT_UNREACHABLE: i32 = 2;
/// Exit code: `wait` ran out of time.
pub const EXIT_TIMEOUT: i32 = 3;

/// Why a `ctl` command failed; each kind is one exit code.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The manager answered no (4xx/5xx), or start-up failed.
    #[error("{0}")]
    Failed(String),
    /// No manager at the address, no address, or none to trust.
    #[error("{0}")]
    Unreachable(String),
    /// `wait` ran out of time.
    #[error("{0}")]
    Timeout(String),
}

impl CtlError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            CtlError::Failed(_) => EXIT_FAILED,
            CtlError::Unreachable(_) => EXIT_UNREACHABLE,
            CtlError::Timeout(_) => EXIT_TIMEOUT,
        }
    }
}

/// Runs one `ctl` command against the manager of `file`.
pub async fn run(args: &CtlArgs, file: &Path) -> Result<(), CtlError> {
    let (url, token) = (args.url.as_deref(), args.token.as_deref());
    if let CtlCommand::Wait { timeout, .. } = args.command {
        return wait(file, url, token, timeout, args.json).await;
    }
    let client = Client::new(locate::locate(file, url, token)?)?;
    match &args.command {
        CtlCommand::Status { .. } => {
            let s: v1::Status = client.json(Method::GET, "/api/v1/status").await?;
            show(args.json, &s, render::status_line)
        }
        CtlCommand::List { .. } => {
            let l: v1::List = client.json(Method::GET, "/api/v1/processes").await?;
            show(args.json, &l, |l| render::table(&l.processes))
        }
        CtlCommand::Ports { process, .. } => {
            let l: v1::List = client.json(Method::GET, "/api/v1/processes").await?;
            let chosen: Vec<&v1::Process> = match process {
                None => l.processes.iter().collect(),
                Some(p) => {
                    let found: Vec<&v1::Process> = l
                        .processes
                        .iter()
                        .filter(|q| q.name == *p || q.id.to_string() == *p)
                        .collect();
                    if found.is_empty() {
                        return Err(CtlError::Failed(format!(
                            "Process with id '{p}' not found."
                        )));
                    }
                    found
                }
            };
            if args.json {
                let ports: indexmap::IndexMap<&str, &indexmap::IndexMap<_, u16>> =
                    chosen.iter().map(|p| (&*p.name, &p.ports)).collect();
                show(true, &ports, |_| String::new())
            } else {
                show(false, &chosen, |c| render::ports(c))
            }
        }
        CtlCommand::Stop {
            process: None,
            no_wait: true,
            ..
        } => {
            let a: v1::Accepted = client.json(Method::POST, "/api/v1/shutdown").await?;
            show(args.json, &a, |_| "shutdown started".to_string())
        }
        CtlCommand::Stop {
            process: None,
            no_wait: false,
            ..
        } => {
            let took = follow::shut_down(&client).await?;
            show(args.json, &v1::Accepted { success: true }, |_| {
                format!("stopped in {:.2} s", took.as_secs_f64())
            })
        }
        CtlCommand::Restart {
            process, timeout, ..
        }
        | CtlCommand::Start {
            process, timeout, ..
        } => {
            let verb = match args.command {
                CtlCommand::Restart { .. } => "restart",
                _ => "start",
            };
            let request = command(&client, args.json, process, verb);
            bounded(*timeout, verb, process, request).await
        }
        CtlCommand::Stop {
            process: Some(process),
            ..
        } => command(&client, args.json, process, "stop").await,
        CtlCommand::Logs {
            process,
            lines,
            follow,
            ..
        } => {
            let path = format!(
                "/api/v1/processes/{}/logs?lines={lines}{}",
                encode(process),
                if *follow { "&follow=true" } else { "" }
            );
            follow::copy_to_stdout(&client, &path, *follow).await
        }
        CtlCommand::Wait { .. } => unreachable!("answered above"),
    }
}

/// `wait`: until the manager runs, or the timeout.
async fn wait(
    file: &Path,
    url: Option<&str>,
    token: Option<&str>,
    timeout: f64,
    json: bool,
) -> Result<(), CtlError> {
    let timeout = Duration::try_from_secs_f64(timeout).map_err(|_| {
        CtlError::Failed(format!(
            "invalid --timeout {timeout}: expected seconds >= 0"
        ))
    })?;
    follow::wait(file, url, token, timeout).await?;
    if !json {
        print(&"running");
    }
    Ok(())
}

/// `request`, given up after `timeout` seconds if there is one: the manager goes on with it.
async fn bounded(
    timeout: Option<f64>,
    verb: &str,
    process: &str,
    request: impl std::future::Future<Output = Result<(), CtlError>>,
) -> Result<(), CtlError> {
    let Some(secs) = timeout else {
        return request.await;
    };
    let limit = Duration::try_from_secs_f64(secs).map_err(|_| {
        CtlError::Failed(format!("invalid --timeout {secs}: expected seconds >= 0"))
    })?;
    tokio::time::timeout(limit, request)
        .await
        .unwrap_or_else(|_| {
            Err(CtlError::Timeout(format!(
                "{verb} of {process} not done after {secs} s; it goes on (`ctl stop {process}` \
             cuts it short)"
            )))
        })
}

/// `restart`, `start` or `stop` of one process.
async fn command(client: &Client, json: bool, process: &str, verb: &str) -> Result<(), CtlError> {
    let path = format!("/api/v1/processes/{}/{verb}", encode(process));
    let done: v1::Done = client.json(Method::POST, &path).await?;
    show(json, &done, |d| render::one_line(&d.process))
}

/// Prints the answer as JSON for scripts, or as `human` says for people.
fn show<T: Serialize>(json: bool, v: &T, human: impl FnOnce(&T) -> String) -> Result<(), CtlError> {
    if json {
        match serde_json::to_string_pretty(v) {
            Ok(text) => print(&text),
            Err(e) => return Err(CtlError::Failed(format!("cannot print the answer: {e}"))),
        }
    } else {
        print(&human(v));
    }
    Ok(())
}

/// A line on stdout; a closed stdout (`| head`) is a normal end, not an error.
fn print(text: &dyn std::fmt::Display) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}
