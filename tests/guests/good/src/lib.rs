//! A well-behaved external module with several verifiers, used as a module loaded from a
//! file: a trivial one for benchmarks, one that waits on the process's exit, one that logs,
//! one that checks its arguments, and one that waits in every way (parking).
use std::time::Duration;

use pymanager_guest::{Verifier, elapsed, export_verifiers, log, process, secs, sleep};
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JourneyArgs {
    sleep_ms: u64,
    pattern: String,
    #[serde(default = "ten")]
    timeout: f64,
}

/// Waits in each of the three ways a verifier can (a sleep, a line of output, the exit),
/// logging a line between them, and checks that both clocks (`elapsed-ms` and WASI's)
/// counted the sleep: each long
/// wait parks, so this is what a parked and replayed verification must still do.
struct Journey;
impl Verifier for Journey {
    type Args = JourneyArgs;
    fn verify(a: JourneyArgs) -> Result<(), String> {
        log::info(&format!("start, process {}", process::state()));
        // Timed with the WASI clock too, which a replay must show as it was.
        let before = std::time::Instant::now();
        if !sleep(Duration::from_millis(a.sleep_ms)) {
            return Err("sleep cut short".into());
        }
        let slept = before.elapsed();
        if slept < Duration::from_millis(a.sleep_ms) {
            return Err(format!("the WASI clock counted {slept:?} for the sleep"));
        }
        log::info("slept");
        let line = process::wait_output(&a.pattern, secs(a.timeout))
            .map_err(|e| e.message)?
            .ok_or("no line")?;
        log::info(&format!("saw {line}"));
        let end = process::wait_exit(secs(a.timeout)).ok_or("no exit")?;
        let spent = elapsed();
        if spent < Duration::from_millis(a.sleep_ms) {
            return Err(format!("elapsed {spent:?} is less than the sleep"));
        }
        log::info(&format!("ended: {end}"));
        Ok(())
    }
}

export_verifiers!(Trivial, WaitEnd, Say, Journey);
