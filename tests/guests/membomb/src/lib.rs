//! Allocates and touches memory without end; only the memory cap can stop it.
use pymanager_guest::{Verifier, export_verifiers};

struct Hog;
impl Verifier for Hog {
    type Args = serde::de::IgnoredAny;
    fn verify(_: Self::Args) -> Result<(), String> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

export_verifiers!(Hog);
