//! `log`: a line in pymanager's log, through the supervisor's `messages` filter.

use super::super::bindings::pymanager::verifier::types::Level as WitLevel;
use super::super::state::HostState;
use crate::process_view::Level;

/// A guest's line is cut here, so that a guest cannot flood the log with one call.
const MAX_LINE: usize = 4096;

pub(crate) fn log(st: &HostState, level: WitLevel, message: &str) {
    // Nothing to show while loading or validating: there is no process to speak about.
    let Some(view) = st.view() else { return };
    let level = match level {
        WitLevel::Error => Level::Error,
        WitLevel::Warn => Level::Warn,
        WitLevel::Info => Level::Info,
        WitLevel::Debug => Level::Debug,
    };
    let mut end = message.len().min(MAX_LINE);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let line: String = message[..end]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    view.log(level, &line);
}
