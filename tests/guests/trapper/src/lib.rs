//! Fails the hard way: a Rust panic (an abort, so a trap) or a raw `unreachable`.
use pymanager_guest::{Verifier, export_verifiers};

struct Panic;
impl Verifier for Panic {
    type Args = serde::de::IgnoredAny;
    fn verify(_: Self::Args) -> Result<(), String> {
        panic!("the verifier gave up in a panic")
    }
}

struct Unreachable;
impl Verifier for Unreachable {
    type Args = serde::de::IgnoredAny;
    fn verify(_: Self::Args) -> Result<(), String> {
        #[cfg(target_arch = "wasm32")]
        core::arch::wasm32::unreachable();
        #[cfg(not(target_arch = "wasm32"))]
        unreachable!()
    }
}

export_verifiers!(Panic, Unreachable);
