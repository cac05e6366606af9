//! `sleep` and `elapsed-ms`: time, the only ambient thing a verifier gets.

use std::time::{Duration, Instant};

use crate::process_view::ProcessView;

/// Sleeps unless pymanager is shutting down; while validating (no process) it returns
/// false at once, so that a verifier that retries gives up instead of waiting.
pub(crate) async fn sleep(view: Option<ProcessView>, d: Duration) -> bool {
    match view {
        Some(view) => view.sleep(d).await,
        None => false,
    }
}

/// Milliseconds since `started` (the call's start, across parks).
pub(crate) fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
