//! The command line: flags of the original tool, plus `check` and `ctl`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Launches the processes of a pymanager.json, verifies them, serves a REST API to
/// control them, and stops every one of them (and their children) at the end.
#[derive(Debug, Parser)]
#[command(name = "pymanager", disable_version_flag = true)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        short = 'f',
        long = "file",
        default_value = "pymanager.json",
        global = true
    )]
    pub file: PathBuf,

    /// Run in the background; return once every process is started and verified
    /// (exit 0) or start-up failed (exit 5).
    #[arg(short = 'd', long = "daemon")]
    pub daemon: bool,

    /// Print [INFO] lines about what pymanager does.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Print [DEBUG] lines too.
    #[arg(short = 'w', long = "debug")]
    pub debug: bool,

    /// Write pymanager's own log lines (and, with --daemon, all output) to this file.
    #[arg(short = 'l', long = "logfile")]
    pub logfile: Option<PathBuf>,

    /// Where --daemon writes its pid [default: <config dir>/.pymanager/<config name>.pid].
    #[arg(long = "pidfile")]
    pub pidfile: Option<PathBuf>,

    /// Print the version and exit.
    #[arg(short = 'V', long = "version")]
    pub version: bool,

    /// A command instead of running the config.
    #[command(subcommand)]
    pub command: Option<Sub>,
}

/// Commands besides running the config.
#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Check the config (verifier arguments included) without starting anything.
    Check,
    /// Talk to a running pymanager over its REST API.
    Ctl(crate::ctl::CtlArgs),
    /// Run one verifier once, outside a manager (exit 0 passed, 1 failed, 2 usage error).
    Verify(crate::verify::VerifyArgs),
    /// Internal: compiles the component on stdin into the disk cache. pymanager runs
    /// itself with it so that the compiler's memory ends with this short-lived process.
    #[command(name = "__compile-component", hide = true)]
    CompileComponent(crate::runtime::compile_child::ChildArgs),
}

/// The version string printed by `-V`.
pub fn version() -> String {
    format!("pymanager {}", env!("CARGO_PKG_VERSION"))
}
