//! The one place a verification starts, whatever runs it: the sandboxed components of the
//! [`Runtime`](crate::runtime::Runtime), or the native [`exec`](crate::supervisor::exec_check)
//! verifier, which spawns its command through the manager's [`Reaper`]. A process's
//! verifier and its liveness check both come through here.

use super::reaper::Reaper;
use crate::plan::VerifierSpec;
use crate::process_view::ProcessView;
use crate::runtime::Runtime;

/// Runs verifier `v` against the process `view` shows; `Err` holds the reason it failed.
pub async fn run(
    runtime: &Runtime,
    reaper: &Reaper,
    v: &VerifierSpec,
    view: ProcessView,
) -> Result<(), String> {
    match &v.exec {
        Some(exec) => super::exec_check::verify(exec, reaper, view).await,
        None => runtime
            .verify(&v.target, &v.args_json, view)
            .await
            .map_err(|e| e.0),
    }
}
