//! Runs the processes: spawns them in config order, verifies them, reaps them, and stops
//! every one of them (and their descendants) on shutdown.

pub mod handle;

pub use handle::*;
