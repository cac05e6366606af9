//! How a call into a guest failed, in one line: the limit it hit, or how it crashed (with
//! what the guest said on stderr).

use super::human::{human_bytes, human_duration};
use super::store::StoreData;
use super::types::Limits;

/// The message of a guest stopped at its CPU budget.
pub(crate) fn cpu_exceeded(who: &str, limits: &Limits) -> String {
    format!(
        "verifier {who} ran longer than {} of CPU time",
        human_duration(limits.cpu_time)
    )
}

/// Context of an instantiation failure (e.g. a component the instance pool cannot hold).
pub(crate) const COULD_NOT_START: &str = "instantiating the component failed";

/// Turns a guest failure into one line: the limit it hit, or how it crashed.
pub(crate) fn describe_failure(
    who: &str,
    limits: &Limits,
    st: &StoreData,
    e: &wasmtime::Error,
) -> String {
    if st.memory.hit {
        return format!(
            "verifier {who} exceeded its memory limit of {}",
            human_bytes(limits.memory_bytes)
        );
    }
    if st.host.call.cpu.exceeded {
        return cpu_exceeded(who, limits);
    }
    if e.to_string() == COULD_NOT_START {
        let root = e.chain().last().map(|c| c.to_string()).unwrap_or_default();
        return format!("verifier {who} could not start: {root}");
    }
    let trap = e
        .downcast_ref::<wasmtime::Trap>()
        .map(|t| t.to_string())
        .unwrap_or_else(|| {
            let mut text = e.to_string();
            if let Some(root) = e.chain().last() {
                let root = root.to_string();
                if root != text {
                    text = format!("{text}: {root}");
                }
            }
            text
        });
    match st.stderr_tail() {
        Some(said) => format!("verifier {who} crashed ({trap}): {said}"),
        None => format!("verifier {who} crashed: {trap}"),
    }
}
