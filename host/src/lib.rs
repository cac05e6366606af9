//! pymanager: a process manager for test and CI environments.
//!
//! The data flow reads in module order: [`config`] parses `pymanager.json`, [`plan`]
//! resolves it into processes and verifiers, [`supervisor`] runs them (spawning, reaping,
//! shutting down), [`runtime`] runs the verifiers as sandboxed WebAssembly components, and
//! [`api`] serves the REST interface over the supervisor's handle. [`app`] and `main.rs`
//! are the thin edge that maps all of it to flags and exit codes.
//!
//! Only what the binary, the end-to-end tests, the benchmarks and the fuzz targets use is
//! public; the rest (the command line, `ctl`, the daemon, the guardian, the state files)
//! is private to the crate, so that the compiler reports what nothing uses.

pub mod api;
pub mod app;
mod cli;
pub mod config;
pub mod console;
pub mod convert;
mod ctl;
mod daemon;
mod error_text;
mod graph;
mod guardian;
mod mac;
pub mod plan;
mod private_files;
pub mod process_view;
pub mod runtime;
mod state_files;
pub mod supervisor;
pub mod tls;
mod token;
mod verify;
