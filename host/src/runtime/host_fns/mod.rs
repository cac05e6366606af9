//! The `host` and `probe` interfaces of the WIT world: one module per capability, each
//! checking the calling module's grants (and the call's mode) before doing anything.
//!
//! | WIT function | module |
//! | --- | --- |
//! | `process-state`, `wait-exit`, `wait-output` | [`process`] |
//! | `http-request` | [`http`] |
//! | `tcp-connect` | [`tcp`] |
//! | `sleep`, `elapsed-ms` | [`clock`] |
//! | `log` | [`log`] |
//!
//! The calls that can fail return a [`HostError`]: its kind goes to modules built against
//! WIT 1.1.0 (through `probe`), its message alone to those built against 1.0.0 (through
//! `host`'s functions of the same names), so both see the same words.

pub(crate) mod clock;
pub(crate) mod http;
pub(crate) mod log;
pub(crate) mod process;
pub(crate) mod reach;
pub(crate) mod tcp;

use super::bindings::pymanager::verifier::{host, probe, types};
use super::state::HostState;

pub(crate) use types::{ErrorKind, HostError};

/// A failed host call of `kind`, with its one line for the user.
pub(crate) fn fail(kind: ErrorKind, message: impl Into<String>) -> HostError {
    HostError {
        kind,
        message: message.into(),
    }
}

/// Any other failure: [`ErrorKind::Failed`], which a verifier may retry.
impl From<String> for HostError {
    fn from(message: String) -> HostError {
        fail(ErrorKind::Failed, message)
    }
}

impl HostError {
    /// The same failure, its message prefixed with what was being reached.
    pub(crate) fn about(self, what: impl std::fmt::Display) -> HostError {
        fail(self.kind, format!("{what}: {}", self.message))
    }
}

/// The kind of a failed connection attempt, from the operating system's error.
pub(crate) fn io_kind(e: &std::io::Error) -> ErrorKind {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => ErrorKind::Refused,
        std::io::ErrorKind::TimedOut => ErrorKind::TimedOut,
        _ => ErrorKind::Failed,
    }
}

impl types::Host for HostState {}

/// WIT 1.0.0's signatures: the message of a failure, without its kind.
impl host::Host for HostState {
    async fn process_state(&mut self) -> types::ProcState {
        process::state(self)
    }

    async fn wait_exit(&mut self, timeout_ms: u32) -> Option<types::ProcState> {
        process::wait_exit(self, timeout_ms).await
    }

    async fn wait_output(
        &mut self,
        pattern: String,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Option<String>, String>> {
        Ok(process::wait_output(self, &pattern, timeout_ms)
            .await?
            .map_err(|e| e.message))
    }

    async fn http_request(&mut self, request: types::Request) -> Result<types::Response, String> {
        http::request(self, request).await.map_err(|e| e.message)
    }

    async fn tcp_connect(
        &mut self,
        host: String,
        port: u16,
        timeout_ms: u32,
    ) -> Result<(), String> {
        tcp::connect(self, &host, port, timeout_ms)
            .await
            .map_err(|e| e.message)
    }

    async fn sleep(&mut self, ms: u32) -> bool {
        clock::sleep(self, ms).await
    }

    async fn elapsed_ms(&mut self) -> u64 {
        clock::elapsed_ms(self)
    }

    async fn log(&mut self, level: types::Level, message: String) {
        log::log(self, level, &message)
    }
}

/// WIT 1.1.0's `probe`: the same calls, failures typed.
impl probe::Host for HostState {
    async fn wait_output(
        &mut self,
        pattern: String,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Option<String>, HostError>> {
        process::wait_output(self, &pattern, timeout_ms).await
    }

    async fn http_request(
        &mut self,
        request: types::Request,
    ) -> Result<types::Response, HostError> {
        http::request(self, request).await
    }

    async fn tcp_connect(
        &mut self,
        host: String,
        port: u16,
        timeout_ms: u32,
    ) -> Result<(), HostError> {
        tcp::connect(self, &host, port, timeout_ms).await
    }
}

/// The refusal for reaching out while validating.
pub(crate) fn not_while_validating(what: &str) -> HostError {
    fail(
        ErrorKind::NotGranted,
        format!("{what} is not available while validating arguments (validate must not reach out)"),
    )
}
