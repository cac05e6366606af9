//! `ExitedVerifier` (module `pymutils.exited_verifier`): passes when the process exits with
//! `expect_code` (default 0) within `timeout` seconds (default 30; `null`: no limit).
//!
//! It waits on the exit event itself (no polling). As in the original, a process killed by
//! signal N has the code -N, so `"expect_code": -15` expects a SIGTERM.

use pymanager_guest::process::{self, State};
use pymanager_guest::{Timeout, Verifier, elapsed, export_verifiers, log};
use serde::Deserialize;

#[derive(Deserialize)]
struct Args {
    #[serde(default)]
    timeout: Timeout<30_000>,
    #[serde(default)]
    expect_code: i32,
}

struct ExitedVerifier;

impl Verifier for ExitedVerifier {
    type Args = Args;

    fn verify(a: Args) -> Result<(), String> {
        log::info(&format!(
            "Waiting for the process to exit with {} ({})",
            match a.expect_code {
                c if c < 0 => format!("signal {}", -c),
                c => format!("code {c}"),
            },
            match a.timeout.limit() {
                Some(_) => format!("at most {}", a.timeout),
                None => "no time limit".into(),
            }
        ));
        let timeout = a.timeout.duration();
        match process::wait_exit(timeout) {
            Some(s) if s.legacy_code() == Some(a.expect_code) => Ok(()),
            Some(s) => Err(format!("{s}, expected {}", expected(a.expect_code))),
            None => {
                let now = match process::state() {
                    State::NotStarted => "not started",
                    _ => "still running",
                };
                if elapsed() < timeout {
                    Err(format!("{now} when pymanager began shutting down"))
                } else {
                    Err(format!("{now} after {}", a.timeout))
                }
            }
        }
    }
}

fn expected(code: i32) -> String {
    if code < 0 {
        format!("signal {}", -code)
    } else {
        code.to_string()
    }
}

export_verifiers!(ExitedVerifier);
