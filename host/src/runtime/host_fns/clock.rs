//! `sleep` and `elapsed-ms`: time, the only ambient thing a verifier gets.

use std::time::Duration;

use super::super::state::HostState;

/// Sleeps unless pymanager is shutting down; while validating it returns false at once,
/// so that a verifier that retries gives up instead of waiting.
pub(crate) async fn sleep(st: &mut HostState, ms: u32) -> bool {
    let Some(view) = st.view().cloned() else {
        return false;
    };
    let _waiting = st.shared.ticker.waiting();
    view.sleep(Duration::from_millis(ms.into())).await
}

pub(crate) fn elapsed_ms(st: &HostState) -> u64 {
    u64::try_from(st.elapsed().as_millis()).unwrap_or(u64::MAX)
}
