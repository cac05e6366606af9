//! The leader of one run's process group, named by a pidfd, so that a signal meant for
//! the run never reaches a process or a group that merely got the same number later.
//!
//! A pid is the manager's to signal only until the reaper collects it; a process group's
//! number only while one of its members lives. Stopping a run signals its group *after*
//! the leader may have been reaped (SIGKILL for what the leader left behind), when the
//! number could belong to a stranger. The pidfd names the leader's `struct pid` itself:
//! with `PIDFD_SIGNAL_PROCESS_GROUP` (Linux 6.9) the kernel signals exactly the members
//! of *that* group — whether the leader is still there or not — and nobody else.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Pid, getpgid};

use super::children::{direct_children, reaping};

/// `pidfd_send_signal` flag: signal the process group of the pidfd's process (Linux 6.9).
const PIDFD_SIGNAL_PROCESS_GROUP: libc::c_uint = 1 << 2;

/// The leader of a run's process group (its pid is also the group's id).
#[derive(Debug)]
pub struct Leader {
    pid: i32,
    pidfd: Option<OwnedFd>,
    /// Set by the reaper, under its lock, when it collected the leader.
    reaped: Arc<AtomicBool>,
}

impl Leader {
    /// The leader `pid`, a child of the manager that has not been reaped: its pidfd is
    /// opened now (none on kernels before 5.3).
    pub(super) fn new(pid: i32) -> Leader {
        // SAFETY: pidfd_open on a pid that is our unreaped child, so it is that child.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let pidfd = (fd >= 0).then(|| {
            // SAFETY: a new descriptor (close-on-exec, as every pidfd) that nothing owns.
            unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) }
        });
        Leader {
            pid,
            pidfd,
            reaped: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Its pid, the process group's id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The flag the reaper sets, under its lock, when it collects the leader.
    pub(super) fn reaped_flag(&self) -> Arc<AtomicBool> {
        self.reaped.clone()
    }

    /// Sends `sig` to every process still in the run's group, never to another.
    ///
    /// What remains on kernels before 6.9 (no `PIDFD_SIGNAL_PROCESS_GROUP`): once the
    /// leader is reaped, its group is signalled by number only while one of the manager's
    /// own unreaped children is in it, which keeps the number from being reused. Members
    /// that are not the manager's children (below a living process of another group) are
    /// then not reached here; the shutdown still ends them, as the manager is a child
    /// subreaper and adopts them when their parents die.
    pub fn signal_group(&self, sig: Signal) {
        if let Some(fd) = &self.pidfd {
            // SAFETY: pidfd_send_signal on our pidfd, no siginfo.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    sig as libc::c_int,
                    std::ptr::null::<libc::siginfo_t>(),
                    PIDFD_SIGNAL_PROCESS_GROUP,
                )
            };
            // ESRCH: the group is empty; anything else but EINVAL (an older kernel) is
            // final too.
            if r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
                return;
            }
        }
        // No reaping while we look: every pid and group seen stays what it is.
        let _held = reaping();
        let group = Pid::from_raw(self.pid);
        let pinned = !self.reaped.load(Ordering::Acquire)
            || direct_children()
                .into_iter()
                .any(|c| getpgid(Some(Pid::from_raw(c))) == Ok(group));
        if pinned {
            let _ = killpg(group, sig);
        }
    }
}
