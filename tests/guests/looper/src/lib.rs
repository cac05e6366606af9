//! Hostile loops: one that never calls the host (only the CPU-time deadline can stop it),
//! one that floods the log, one that makes the host scan the output with a costly pattern.
use pymanager_guest::{Verifier, export_verifiers, log, process};
use serde::Deserialize;

struct Spin;
impl Verifier for Spin {
    type Args = serde::de::IgnoredAny;
    fn verify(_: Self::Args) -> Result<(), String> {
        let mut x: u64 = 0;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

/// Loops in validate too: validation must be bounded as well.
struct SpinAtValidate;
impl Verifier for SpinAtValidate {
    type Args = serde::de::IgnoredAny;
    fn validate(_: &Self::Args) -> Result<(), String> {
        let mut x: u64 = 0;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }
    fn verify(_: Self::Args) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Deserialize)]
struct FloodArgs {
    lines: u64,
}

/// Logs `lines` lines as fast as it can, then passes.
struct Flood;
impl Verifier for Flood {
    type Args = FloodArgs;
    fn verify(a: FloodArgs) -> Result<(), String> {
        for i in 0..a.lines {
            log::error(&format!("flood line {i} {}", "x".repeat(200)));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct ScanArgs {
    pattern: String,
}

/// Asks for `pattern` in the output again and again, whatever the answer: every call makes
/// the host scan the whole history once more.
struct Scan;
impl Verifier for Scan {
    type Args = ScanArgs;
    fn verify(a: ScanArgs) -> Result<(), String> {
        loop {
            process::wait_output(&a.pattern, std::time::Duration::ZERO)?;
        }
    }
}

export_verifiers!(Spin, SpinAtValidate, Flood, Scan);
