//! A well-behaved external module with several verifiers, used as a module loaded from a
//! file: a trivial one for benchmarks, one that waits on the process's exit, one that logs,
//! and one that checks its arguments.
use pymanager_guest::{Verifier, export_verifiers, log, process, secs};
use serde::Deserialize;

/// Passes at once: the cost of a verification itself.
struct Trivial;
impl Verifier for Trivial {
    type Args = serde::de::IgnoredAny;
    fn verify(_: Self::Args) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitArgs {
    #[serde(default = "ten")]
    timeout: f64,
}
fn ten() -> f64 {
    10.0
}

/// Waits for the process to end; passes on any end, fails on time-out.
struct WaitEnd;
impl Verifier for WaitEnd {
    type Args = WaitArgs;
    fn verify(a: WaitArgs) -> Result<(), String> {
        match process::wait_exit(secs(a.timeout)) {
            Some(_) => Ok(()),
            None => Err(format!("still {}", process::state())),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SayArgs {
    message: String,
    #[serde(default)]
    fail: bool,
}

/// Logs its message, then passes or fails with it.
struct Say;
impl Verifier for Say {
    type Args = SayArgs;
    fn validate(a: &SayArgs) -> Result<(), String> {
        if a.message.is_empty() {
            return Err("message: must not be empty".into());
        }
        Ok(())
    }
    fn verify(a: SayArgs) -> Result<(), String> {
        log::info(&a.message);
        if a.fail { Err(a.message) } else { Ok(()) }
    }
}

export_verifiers!(Trivial, WaitEnd, Say);
