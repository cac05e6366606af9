//! Verifiers that try to tell a replayed instance from the first one, each around one long
//! wait that parks (see pymanager's `runtime::journal`): through the clock, through random
//! numbers, and one that uses what it finds to make other calls on every replay.
use std::hash::BuildHasher;
use std::time::Duration;

use pymanager_guest::{Verifier, export_verifiers, log, process, sleep};

/// The raw WASI monotonic clock, in nanoseconds.
fn monotonic() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// True when the clock stands still: two reads in a row give the same time, which a live
/// clock never does (a replay before its first answer reads a stopped one).
fn stopped_clock() -> bool {
    monotonic() == monotonic()
}

/// Makes a different first call on each replay than the one it made before: a long
/// output wait when the clock stands still, a long sleep when it runs. Waits forever
/// otherwise.
struct Diverge;
impl Verifier for Diverge {
    type Args = serde::de::IgnoredAny;
    fn verify(_: Self::Args) -> Result<(), String> {
        loop {
            if stopped_clock() {
                let _ = process::wait_output("never printed", Duration::from_millis(300));
            } else if !sleep(Duration::from_millis(300)) {
                return Err("shutting down".into());
            }
        }
    }
}

/// Reads the monotonic clock first thing, says what it read, waits long enough to park,
/// and fails with what it read in the instance that finished (a replay of the first).
struct Clock;
impl Verifier for Clock {
    type Args = serde::de::IgnoredAny;
    fn verify(_: Self::Args) -> Result<(), String> {
        let first = monotonic();
        log::info(&format!("first read {first}"));
        sleep(Duration::from_millis(300));
        Err(format!("first read {first}"))
    }
}

/// Draws a random number first thing (through the standard library's hash seed, as a
/// `HashMap` does), says it, waits long enough to park, and fails with what it drew in the
/// instance that finished.
struct Draw;
impl Verifier for Draw {
    type Args = serde::de::IgnoredAny;
    fn verify(_: Self::Args) -> Result<(), String> {
        let drawn = std::collections::hash_map::RandomState::new().hash_one(0u8);
        log::info(&format!("drew {drawn}"));
        sleep(Duration::from_millis(300));
        Err(format!("drew {drawn}"))
    }
}

export_verifiers!(Diverge, Clock, Draw);
