//! The `host` interface of the WIT world: one module per capability, each checking the
//! calling module's grants (and the call's mode) before doing anything.
//!
//! | WIT function | module |
//! | --- | --- |
//! | `process-state`, `wait-exit`, `wait-output` | [`process`] |
//! | `http-request` | [`http`] |
//! | `tcp-connect` | [`tcp`] |
//! | `sleep`, `elapsed-ms` | [`clock`] |
//! | `log` | [`log`] |

pub(crate) mod clock;
pub(crate) mod http;
pub(crate) mod log;
pub(crate) mod process;
pub(crate) mod reach;
pub(crate) mod tcp;

use super::bindings::pymanager::verifier::{host, types};
use super::state::HostState;

impl types::Host for HostState {}

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
        process::wait_output(self, &pattern, timeout_ms).await
    }

    async fn http_request(&mut self, request: types::Request) -> Result<types::Response, String> {
        http::request(self, request).await
    }

    async fn tcp_connect(
        &mut self,
        host: String,
        port: u16,
        timeout_ms: u32,
    ) -> Result<(), String> {
        tcp::connect(self, &host, port, timeout_ms).await
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

/// The refusal for reaching out while validating.
pub(crate) fn not_while_validating(what: &str) -> String {
    format!("{what} is not available while validating arguments (validate must not reach out)")
}
