//! `pymanager export` and `pymanager import`: a `pymanager.json` carried to docker compose,
//! Kubernetes, systemd (and back to a Procfile or process-compose), and Procfiles and
//! process-compose files brought in.
//!
//! Each format is a pure function from one config type to another: it reads what it is
//! given and returns text, and nothing here runs anything or touches the network; the
//! command line ([`cli`]) reads and writes the files. Whatever the target cannot express is
//! never dropped silently: it is a [`Losses`] line naming the process and the key, and
//! `--strict` makes any loss an error (exit 5). Verifiers travel as `pymanager verify`
//! probes ([`probe`]), so a readiness check written once keeps working in the target.

pub mod cli;
mod common;
pub mod compose;
mod dotenv;
pub mod k8s;
pub mod probe;
pub mod process_compose;
pub mod procfile;
pub mod source;
pub mod systemd;
pub mod yaml;

pub use cli::{ExportArgs, ImportArgs};

/// What a conversion could not carry over, one warning line each.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Losses(Vec<String>);

impl Losses {
    /// Records that `at` (a field path, `processes.web.liveness`) lost something, and why.
    pub fn push(&mut self, at: impl AsRef<str>, reason: impl AsRef<str>) {
        let line = format!("[WARNING] {}: {}", at.as_ref(), reason.as_ref());
        self.0.push(crate::config::one_line(&line));
    }

    /// The warning lines, in the order they were found.
    pub fn lines(&self) -> &[String] {
        &self.0
    }

    /// True when nothing was lost.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why a conversion did not produce its output; each variant is one exit code.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The config cannot be used: the original's exit codes 1 to 5.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// An input file to import: not found (1), unreadable (2), not parseable (3), or
    /// unusable (5), with where and why.
    #[error("[ERROR] import: {message}")]
    Import {
        /// The exit code.
        code: i32,
        /// One line: the file or field, and what is wrong.
        message: String,
    },
    /// `--strict` and something was lost (exit 5).
    #[error("[ERROR] {0} (--strict makes each loss an error)")]
    Strict(String),
    /// The output cannot be written (exit 2).
    #[error("[ERROR] cannot write {path}: {reason}")]
    Write {
        /// Where.
        path: String,
        /// Why.
        reason: String,
    },
    /// A flag that does not apply (exit 2).
    #[error("[ERROR] {0}")]
    Usage(String),
}

impl ConvertError {
    /// The exit code of this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConvertError::Config(e) => e.exit_code(),
            ConvertError::Import { code, .. } => *code,
            ConvertError::Strict(_) => 5,
            ConvertError::Write { .. } | ConvertError::Usage(_) => 2,
        }
    }
}
