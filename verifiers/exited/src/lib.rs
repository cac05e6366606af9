//! `ExitedVerifier` (module `pymutils.exited_verifier`): passes when the process exits with
//! `expect_code` (default 0) within `timeout` seconds (default 30).
//!
//! It waits on the exit event itself (no polling). As in the original, a process killed by
//! signal N has the code -N, so `"expect_code": -15` expects a SIGTERM.

use pymanager_guest::process::{self, State};
use pymanager_guest::{Verifier, elapsed, export_verifiers, format_duration, secs};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default = "thirty")]
    timeout: f64,
    #[serde(default)]
    expect_code: i32,
}

fn thirty() -> f64 {
    30.0
}

struct ExitedVerifier;

impl Verifier for ExitedVerifier {
    type Args = Args;

    fn validate(a: &Args) -> Result<(), String> {
        if !(a.timeout >= 0.0) {
            return Err("timeout: must be a number of seconds, 0 or more".into());
        }
        Ok(())
    }

    fn verify(a: Args) -> Result<(), String> {
        let timeout = secs(a.timeout);
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
                    Err(format!("{now} after {}", format_duration(timeout)))
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
