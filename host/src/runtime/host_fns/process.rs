//! `process-state`, `wait-exit`, `wait-output`: the verified process, read-only.
//!
//! While validating there is no process: the state is `not-started` and waits return at
//! once (after checking their arguments, so `wait-output` still reports a bad pattern).

use std::time::Duration;

use regex::{Regex, RegexBuilder};

use super::super::bindings::pymanager::verifier::types::ProcState as WitState;
use super::super::state::HostState;
use super::{ErrorKind, HostError, fail};
use crate::process_view::ProcState;

/// Bound on the compiled size of a guest's pattern (the regex crate's own defence).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

fn to_wit(s: ProcState) -> WitState {
    match s {
        ProcState::NotStarted => WitState::NotStarted,
        ProcState::Running { pid } => WitState::Running(pid),
        ProcState::Exited { code } => WitState::Exited(code),
        ProcState::Signaled { signal } => WitState::Signaled(signal),
    }
}

pub(crate) fn state(st: &HostState) -> WitState {
    st.view()
        .map_or(WitState::NotStarted, |v| to_wit(v.state()))
}

pub(crate) async fn wait_exit(st: &mut HostState, timeout_ms: u32) -> Option<WitState> {
    // Owned clones: the store's state is not `Sync`, so no reference to it may live
    // across an await.
    let view = st.view()?.clone();
    let _waiting = st.shared.ticker.waiting();
    view.wait_exit(Duration::from_millis(timeout_ms.into()))
        .await
        .map(to_wit)
}

pub(crate) async fn wait_output(
    st: &mut HostState,
    pattern: &str,
    timeout_ms: u32,
) -> Result<Option<String>, HostError> {
    let re = compile(pattern).map_err(|m| fail(ErrorKind::BadRequest, m))?;
    let Some(view) = st.view().cloned() else {
        return Ok(None);
    };
    let _waiting = st.shared.ticker.waiting();
    Ok(view
        .wait_output(&re, Duration::from_millis(timeout_ms.into()))
        .await)
}

/// Compiles a guest's pattern; the error is one line (the regex crate's is several).
pub(crate) fn compile(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let text = e.to_string();
            let why = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("error: "))
                .map(str::to_string)
                .unwrap_or_else(|| text.lines().map(str::trim).collect::<Vec<_>>().join(" "));
            format!("invalid regular expression /{pattern}/: {why}")
        })
}
