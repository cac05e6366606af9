//! Loops forever without calling the host; only the CPU-time deadline can stop it.
use pymanager_guest::{Verifier, export_verifiers};

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

export_verifiers!(Spin, SpinAtValidate);
