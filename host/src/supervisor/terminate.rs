//! Ending processes: one process group gracefully (a stop, a restart, its turn in the
//! shutdown), and everything the manager has at shutdown — SIGTERM to what the shutdown
//! does not stop in order, then SIGKILL for all that is left at the deadline, including
//! orphans the manager adopted as a child subreaper.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::sync::watch;

use super::children::{direct_children, reaping, signal_with_group};
use super::leader::Leader;
use super::lifecycle::Leftovers;
use super::reaper::Children;
use crate::process_view::ProcState;

/// Stops the run led by `leader`: `signal` (its `stop_signal`, SIGTERM by default) to its
/// group, SIGKILL to the group after `grace` if the leader has not ended by then, and waits
/// for the leader's end. What the leader leaves in its group once it ended in time is
/// SIGKILLed with it, or left to the shutdown ([`Leftovers`]). The group is named by the
/// leader's pidfd, so a SIGKILL after the leader was reaped reaches what it left behind and
/// nothing else.
pub async fn stop_group(
    leader: Arc<Leader>,
    signal: Signal,
    mut state: watch::Receiver<ProcState>,
    grace: Duration,
    leftovers: Leftovers,
) {
    leader.signal_group(signal);
    let not_running = |s: &ProcState| !matches!(s, ProcState::Running { .. });
    let ended = tokio::time::timeout(grace, state.wait_for(not_running))
        .await
        .is_ok();
    if !ended || leftovers == Leftovers::Kill {
        leader.signal_group(Signal::SIGKILL);
    }
    if !ended {
        let _ = state.wait_for(not_running).await;
    }
}

/// Signals every child of the manager and the process group of each; with `seen`, only
/// those not signalled before. Reaping waits meanwhile, so every pid seen is still the
/// manager's child (and its group's number still its group's).
fn signal_children(sig: Signal, mut seen: Option<&mut HashSet<i32>>) {
    let _held = reaping();
    for pid in direct_children() {
        if let Some(seen) = seen.as_deref_mut()
            && !seen.insert(pid)
        {
            continue;
        }
        signal_with_group(pid, sig);
    }
}

/// Ends everything the manager started and everything that descends from it. Returns
/// when the manager has no child left. SIGTERM goes to all at once, except to the children
/// in `spare` (processes the supervisor stops itself, each with its own signal and in its
/// own order); SIGKILL follows for all at `deadline`, or as soon as `force` becomes true.
pub async fn terminate_all(
    mut children: watch::Receiver<Children>,
    deadline: tokio::time::Instant,
    mut force: watch::Receiver<bool>,
    spare: HashSet<i32>,
) {
    let mut termed = spare;
    if !*force.borrow() {
        signal_children(Signal::SIGTERM, Some(&mut termed));
        let deadline = tokio::time::sleep_until(deadline);
        tokio::pin!(deadline);
        loop {
            if !children.borrow_and_update().any {
                return;
            }
            tokio::select! {
                changed = children.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // A child ended: its own children may now be the manager's.
                    signal_children(Signal::SIGTERM, Some(&mut termed));
                }
                _ = &mut deadline => break,
                _ = force.wait_for(|f| *f) => break,
            }
        }
    }
    // Kill what is left. Orphans re-parented to the manager by these kills arrive without
    // a signal of their own, so look again a little later until none is left.
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        signal_children(Signal::SIGKILL, None);
        if !children.borrow_and_update().any || tokio::time::Instant::now() > give_up {
            return;
        }
        tokio::select! {
            _ = children.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
}
