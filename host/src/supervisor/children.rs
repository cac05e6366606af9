//! The manager's children as the kernel and the reaper see them: the table of who waits
//! for which child, the lock that holds off reaping, and what can be done to a child by
//! pid while that lock is held.
//!
//! Whoever signals children by pid holds the lock ([`reaping`]): a child not yet reaped
//! keeps its pid (and its process group's number), so no signal can reach a process that
//! reused the number. The reaper takes the same lock to collect exits; spawning holds it
//! across the clone, so an exit is never reaped before its pid is registered.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, getpgid, getpgrp};
use tokio::sync::oneshot;

use crate::process_view::ProcState;

/// Who waits for one child: the end it is told, and the flag that says it was reaped
/// (shared with the run's [`Leader`](super::leader::Leader), which must know when its pid
/// stops being the manager's to signal).
pub(super) struct Waiter {
    pub(super) end: oneshot::Sender<ProcState>,
    pub(super) reaped: Arc<AtomicBool>,
}

/// Who waits for which child, by pid. One table for the process: `waitpid(-1)` reaps any
/// child, whichever reaper asks, and it must find the child's waiter.
pub(super) type Waiters = HashMap<i32, Waiter>;

static WAITING: LazyLock<Mutex<Waiters>> = LazyLock::new(Mutex::default);

/// Holds off reaping until the guard is dropped: the pids of the manager's children (and
/// the process groups they are in) cannot be reused meanwhile.
pub(super) fn reaping() -> MutexGuard<'static, Waiters> {
    WAITING.lock().unwrap_or_else(|e| e.into_inner())
}

/// The manager's direct children right now (its own and adopted orphans), from procfs.
pub fn direct_children() -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Sends `sig` to `pid` and to its process group (unless that is the caller's own group):
/// a direct child of the manager or guardian takes its whole group with it.
pub fn signal_with_group(pid: i32, sig: Signal) {
    let pid = Pid::from_raw(pid);
    if let Ok(pg) = getpgid(Some(pid))
        && pg != getpgrp()
        && pg.as_raw() > 1
    {
        let _ = killpg(pg, sig);
    }
    let _ = kill(pid, sig);
}
