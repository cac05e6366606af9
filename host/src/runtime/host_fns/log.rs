//! `log`: a line in pymanager's log, through the supervisor's `messages` filter; while
//! validating, a `warn` or `error` line is a warning about the config instead.

use super::super::bindings::pymanager::verifier::types::Level as WitLevel;
use super::budget::{LOG_BURST, LOG_PER_SECOND};
use super::context::{CallState, Mode};
use crate::process_view::Level;

/// A guest's line is cut here, so that a guest cannot flood the log with one call.
const MAX_LINE: usize = 4096;
/// Warnings kept from one `validate` call; more are dropped.
const MAX_WARNINGS: usize = 32;

/// Shows the line (within the call's log budget), or keeps it as a warning about the
/// config (`warnings`) while validating.
pub(crate) fn log(
    call: &mut CallState,
    warnings: &mut Vec<String>,
    level: WitLevel,
    message: &str,
) {
    if matches!(call.mode, Mode::Validate) {
        // The config's warnings: what the verifier ignores or doubts in its arguments.
        if matches!(level, WitLevel::Warn | WitLevel::Error) && warnings.len() < MAX_WARNINGS {
            warnings.push(one_line(message));
        }
        return;
    }
    // Nothing to show while loading: there is no process to speak about.
    if call.view().is_none() {
        return;
    }
    if !call.log_budget.take() {
        return;
    }
    report_dropped(call, false);
    let Some(view) = call.view() else { return };
    let level = match level {
        WitLevel::Error => Level::Error,
        WitLevel::Warn => Level::Warn,
        WitLevel::Info => Level::Info,
        WitLevel::Debug => Level::Debug,
    };
    view.log(level, &one_line(message));
}

/// Says how many lines the log budget dropped since it was last said, if any: when the
/// call ends (`at_end`), and every few seconds while it runs.
pub(crate) fn report_dropped(st: &mut CallState, at_end: bool) {
    let dropped = st.log_budget.take_dropped(at_end);
    if dropped == 0 {
        return;
    }
    if let Some(view) = st.view() {
        view.log(
            Level::Warn,
            &format!(
                "{dropped} log line(s) of this verifier dropped (it may log {LOG_BURST} lines \
                 at once, then {LOG_PER_SECOND} a second)"
            ),
        );
    }
}

/// The message cut at [`MAX_LINE`] bytes, control characters blanked.
fn one_line(message: &str) -> String {
    let mut end = message.len().min(MAX_LINE);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
