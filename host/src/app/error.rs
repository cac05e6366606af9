//! Every way pymanager can stop short, as one type: each variant knows its exit code, and
//! `main` prints it once.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::ctl::CtlError;
use crate::error_text;
use crate::state_files::StateError;
use crate::verify::ProbeError;

/// Why pymanager stopped short.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The command line is wrong: clap's own message (exit 2).
    #[error("{0}")]
    Usage(#[from] clap::Error),
    /// The config cannot be found, read or used: the original's exit codes 1 to 5.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Something the manager needs could not be set up (exit 5).
    #[error("[ERROR] {0}")]
    Setup(#[from] SetupError),
    /// A daemon's start-up failed, in the daemon's words (exit 5).
    #[error("{0}")]
    Daemon(String),
    /// `pymanager ctl` failed (exit 1, 2 or 3).
    #[error("pymanager ctl: {0}")]
    Ctl(#[from] CtlError),
    /// `pymanager verify` did not pass (exit 1), or could not run (exit 2).
    #[error("{0}")]
    Verify(#[from] ProbeError),
    /// `pymanager export` or `import` did not write its output.
    #[error(transparent)]
    Convert(#[from] crate::convert::ConvertError),
    /// The supervisor task panicked (exit 5); the guardian kills what it left.
    #[error("[ERROR] the supervisor failed: {0}")]
    Crashed(String),
}

impl AppError {
    /// The exit code: the original's for config errors, 5 for any other set-up failure,
    /// 2 for a command line clap refused, `ctl`'s and `verify`'s own for them.
    pub fn exit_code(&self) -> i32 {
        match self {
            AppError::Usage(_) => 2,
            AppError::Config(e) => e.exit_code(),
            AppError::Setup(_) | AppError::Daemon(_) | AppError::Crashed(_) => 5,
            AppError::Ctl(e) => e.exit_code(),
            AppError::Verify(e) => e.exit_code(),
            AppError::Convert(e) => e.exit_code(),
        }
    }

    /// Prints the error where the user looks: clap's messages as clap formats them,
    /// everything else as one line on stderr.
    pub fn print(&self) {
        match self {
            AppError::Usage(e) => {
                let _ = e.print();
            }
            other => eprintln!("{other}"),
        }
    }
}

impl From<StateError> for AppError {
    fn from(e: StateError) -> Self {
        AppError::Setup(SetupError::State(e))
    }
}

/// What could not be set up, once the config was fine.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// No threads or no event loop.
    #[error("cannot start the async runtime: {}", error_text::io(.0))]
    AsyncRuntime(std::io::Error),
    /// `fork`, `setsid` or a `dup2` failed.
    #[error("cannot start as a daemon: {}", error_text::io(.0))]
    Daemon(std::io::Error),
    /// The guardian process could not be split off.
    #[error("cannot start the guardian process: {}", error_text::io(.0))]
    Guardian(std::io::Error),
    /// The console's writer thread cannot start.
    #[error("cannot set up the console: {}", error_text::io(.0))]
    Console(std::io::Error),
    /// `--logfile` cannot be opened.
    #[error("cannot open the log file {}: {}", .0.display(), error_text::io(.1))]
    LogFile(PathBuf, std::io::Error),
    /// A pid, address or token file, or their directory.
    #[error("{0}")]
    State(StateError),
    /// No random token could be made for `"token": "auto"`.
    #[error("cannot make a token for http.token \"auto\": {}", error_text::io(.0))]
    Token(std::io::Error),
    /// The verifier runtime (wasmtime) cannot start.
    #[error("could not set up processes: modules: {0}")]
    Runtime(String),
    /// The supervisor cannot start (its reaper, its channels).
    #[error("could not set up processes: cannot start the supervisor: {}", error_text::io(.0))]
    Supervisor(std::io::Error),
    /// The REST API cannot listen.
    #[error("could not set up processes: http: {0}")]
    Http(#[from] crate::api::ApiError),
    /// `--exit-with PID` names no process that can be watched.
    #[error("--exit-with {pid}: {}", error_text::io(.1), pid = .0)]
    ExitWith(u32, std::io::Error),
    /// `pymanager run`'s log directory or files cannot be made.
    #[error("cannot write the logs to {}: {}", .0.display(), error_text::io(.1))]
    Logs(PathBuf, std::io::Error),
    /// `--write-env`'s file cannot be written.
    #[error("--write-env: {0}")]
    WriteEnv(StateError),
}
