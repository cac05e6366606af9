//! pymanager: a process manager for test and CI environments.
//!
//! The data flow reads in module order: [`config`] parses `pymanager.json`, [`plan`]
//! resolves it into processes and verifiers, [`supervisor`] runs them (spawning, reaping,
//! shutting down), [`runtime`] runs the verifiers as sandboxed WebAssembly components, and
//! [`api`] serves the REST interface over the supervisor's handle. [`cli`] and `main.rs`
//! are the thin edge that maps all of it to flags and exit codes.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod console;
pub mod ctl;
pub mod daemon;
pub mod error_text;
pub mod graph;
pub mod guardian;
pub mod plan;
pub mod process_view;
pub mod runtime;
pub mod state_files;
pub mod supervisor;
pub mod token;
pub mod verify;
