//! `OutputVerifier` (module `pymanager.output_verifier`): passes when a line of the
//! process's output (stdout or stderr, since it started) matches the regular expression
//! `pattern`, within `timeout` seconds (default 30).
//!
//! The pattern is compiled by the host, with the engine that will match it (Rust `regex`
//! syntax): at validate the verifier asks the host to wait zero milliseconds for it, which
//! returns at once and reports a bad pattern as `pattern: <why>`.

use pymanager_guest::process;
use pymanager_guest::{Verifier, elapsed, export_verifiers, format_duration, secs};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    pattern: String,
    #[serde(default = "thirty")]
    timeout: f64,
}

fn thirty() -> f64 {
    30.0
}

struct OutputVerifier;

impl Verifier for OutputVerifier {
    type Args = Args;

    fn validate(a: &Args) -> Result<(), String> {
        if !(a.timeout >= 0.0) {
            return Err("timeout: must be a number of seconds, 0 or more".into());
        }
        process::wait_output(&a.pattern, secs(0.0))
            .map(|_| ())
            .map_err(|e| format!("pattern: {e}"))
    }

    fn verify(a: Args) -> Result<(), String> {
        let timeout = secs(a.timeout);
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
                    a.pattern,
                    format_duration(timeout)
                )),
            },
        }
    }
}

export_verifiers!(OutputVerifier);
