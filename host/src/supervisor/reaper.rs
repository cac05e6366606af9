//! Reaps every child of the manager the moment it ends, on SIGCHLD.
//!
//! One task drains `waitpid(-1, WNOHANG)` on each SIGCHLD, so exits are events, never
//! polled, and no child ever stays a zombie — including orphans re-parented to the manager
//! (it is a child subreaper). Spawning goes through [`Reaper::spawn`], which holds the
//! reaping lock ([`reaping`]) across the clone, so an exit can never be reaped before its
//! pid is registered.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{oneshot, watch};

use super::children::{Waiter, reaping};
use super::leader::Leader;
use crate::process_view::ProcState;

/// Owns the reaping of all children; cheap to clone.
#[derive(Clone)]
pub struct Reaper {
    children: watch::Sender<Children>,
}

/// What the reaper last saw of the manager's children.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Children {
    /// True while the manager has any child (adopted orphans included).
    pub any: bool,
    /// Children reaped so far; changes whenever one ends (its own children may just have
    /// been re-parented to the manager).
    pub reaped: u64,
}

impl Reaper {
    /// Installs the SIGCHLD handler and starts the reaping task. Must be called inside the
    /// tokio runtime, before the first spawn.
    pub fn start() -> std::io::Result<Reaper> {
        let mut sigchld = signal(SignalKind::child())?;
        let (children, _) = watch::channel(Children::default());
        let reaper = Reaper { children };
        let r = reaper.clone();
        tokio::spawn(async move {
            loop {
                r.reap();
                if sigchld.recv().await.is_none() {
                    return;
                }
            }
        });
        Ok(reaper)
    }

    /// Starts a child with `start` (which returns its pid) and registers it before any
    /// exit can be reaped; returns its group's [`Leader`] and a receiver for its end.
    pub(super) fn spawn<E>(
        &self,
        start: impl FnOnce() -> Result<i32, E>,
    ) -> Result<(Arc<Leader>, oneshot::Receiver<ProcState>), E> {
        let mut waiting = reaping();
        let pid = start()?;
        let leader = Arc::new(Leader::new(pid));
        let (tx, rx) = oneshot::channel();
        waiting.insert(
            pid,
            Waiter {
                end: tx,
                reaped: leader.reaped_flag(),
            },
        );
        self.children
            .send_if_modified(|c| !std::mem::replace(&mut c.any, true));
        Ok((leader, rx))
    }

    /// Wakes whenever a child ends or the last one is gone.
    pub fn children(&self) -> watch::Receiver<Children> {
        self.children.subscribe()
    }

    /// Reaps every child that has ended; tells their waiters; records whether any are left.
    pub fn reap(&self) {
        let mut waiting = reaping();
        let mut reaped = 0;
        loop {
            let (pid, state) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, ProcState::Exited { code }),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    (pid, ProcState::Signaled { signal: sig as i32 })
                }
                Ok(WaitStatus::StillAlive) => {
                    self.publish(true, reaped);
                    return;
                }
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(_) => {
                    // ECHILD: nothing left to wait for.
                    self.publish(false, reaped);
                    return;
                }
            };
            reaped += 1;
            if let Some(waiter) = waiting.remove(&pid.as_raw()) {
                waiter.reaped.store(true, Ordering::Release);
                let _ = waiter.end.send(state);
            }
        }
    }

    fn publish(&self, any: bool, reaped: u64) {
        self.children.send_if_modified(|c| {
            let changed = c.any != any || reaped > 0;
            c.any = any;
            c.reaped += reaped;
            changed
        });
    }
}
