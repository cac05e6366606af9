//! `OutputVerifier` (module `pymanager.output_verifier`): passes when a line of the
//! process's output (stdout or stderr, since it started) matches the regular expression
//! `pattern`, within `timeout` seconds (default 30; `null`: no limit).
//!
//! The pattern is compiled by the host, with the engine that will match it (Rust `regex`
//! syntax): at validate the verifier asks the host to wait zero milliseconds for it, which
//! returns at once and reports a bad pattern as `pattern: <why>`.

use pymanager_guest::process;
use pymanager_guest::{Timeout, Verifier, elapsed, export_verifiers, log, secs};
use serde::Deserialize;

#[derive(Deserialize)]
struct Args {
    pattern: String,
    #[serde(default)]
    timeout: Timeout<30_000>,
}

struct OutputVerifier;

impl Verifier for OutputVerifier {
    type Args = Args;

    fn validate(a: &Args) -> Result<(), String> {
        process::wait_output(&a.pattern, secs(0.0))
            .map(|_| ())
            .map_err(|e| format!("pattern: {e}"))
    }

    fn verify(a: Args) -> Result<(), String> {
        log::info(&format!(
            "Waiting for an output line matching /{}/ ({})",
            a.pattern,
            match a.timeout.limit() {
                Some(_) => format!("at most {}", a.timeout),
                None => "no time limit".into(),
            }
        ));
        let timeout = a.timeout.duration();
        match process::wait_output(&a.pattern, timeout) {
            Ok(Some(_)) => Ok(()),
            Err(e) => Err(format!("pattern: {e}")),
            Ok(None) => match process::ended() {
                Some(s) => Err(format!(
                    "process {s} without printing a line matching /{}/",
                    a.pattern
                )),
                None if elapsed() < timeout => Err(format!(
                    "no line matched /{}/ before pymanager began shutting down",
                    a.pattern
                )),
                None => Err(format!(
                    "no output line matched /{}/ within {}",
                    a.pattern, a.timeout
                )),
            },
        }
    }
}

export_verifiers!(OutputVerifier);
