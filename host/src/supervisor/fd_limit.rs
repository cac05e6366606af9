//! The manager's limit on open files, raised so that many processes and connections fit,
//! and the caller's limit given back to every child.
//!
//! Each managed process holds two pipes and a pidfd in the manager, and each REST client a
//! socket: with the usual soft limit of 1024, a few hundred processes and a busy API meet
//! "too many open files". The hard limit is what the system allows this user, so the
//! manager raises its soft limit to it at start. Its children get the soft limit the
//! caller gave pymanager, as they would have without it: a program that `select`s on
//! descriptors below 1024, or sizes a table by the limit, sees what it always saw.

use std::sync::OnceLock;

/// The soft and hard limits pymanager was started with, once [`raise`] changed them.
static ORIGINAL: OnceLock<libc::rlimit> = OnceLock::new();

/// Raises the soft limit on open files to the hard limit and remembers the original for
/// the children. Returns the new soft limit. Call it once, before the first spawn; a
/// second call changes nothing and keeps the first original.
pub fn raise() -> std::io::Result<u64> {
    let mut now = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if now.rlim_cur >= now.rlim_max || ORIGINAL.get().is_some() {
        return Ok(now.rlim_cur);
    }
    let raised = libc::rlimit {
        rlim_cur: now.rlim_max,
        rlim_max: now.rlim_max,
    };
    // SAFETY: setrlimit reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let _ = ORIGINAL.set(now);
    Ok(raised.rlim_cur)
}

/// The limit a child must be given back, if [`raise`] changed the manager's.
pub(super) fn for_children() -> Option<libc::rlimit> {
    ORIGINAL.get().copied()
}

/// Descriptors the manager holds per process: its output's read end, its stdin's write
/// end and its pidfd, and one to spare (a verifier's connection, a REST client).
const PER_PROCESS: usize = 4;

/// Grows this process's descriptor table at once to hold what `processes` processes need,
/// as long as the manager is still one thread.
///
/// The kernel doubles a full table and, when more than one thread shares it, waits for
/// an RCU grace period before freeing the old one: 12–22 ms each on a virtual machine,
/// four times while 1000 processes start (64 → … → 4096 descriptors), with the spawning
/// thread, and so every start after it, stopped. Grown here, before the async runtime's
/// threads exist, it costs an allocation. Nothing is held: the table is not shrunk when
/// the descriptor that grew it is closed. A failure only leaves the growing for later.
pub fn reserve(processes: usize) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    let wanted = 64 + processes.saturating_mul(PER_PROCESS);
    let highest = (wanted as u64).min(limit.rlim_cur.saturating_sub(1));
    let Ok(highest) = libc::c_int::try_from(highest) else {
        return;
    };
    let Ok(null) = std::fs::File::open("/dev/null") else {
        return;
    };
    // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor at `highest` or above, owned here and
    // closed at once.
    let high = unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&null),
            libc::F_DUPFD_CLOEXEC,
            highest,
        )
    };
    if high >= 0 {
        // SAFETY: `high` is the descriptor just made, nothing else refers to it.
        unsafe { libc::close(high) };
    }
}

#[cfg(test)]
mod tests {
    /// The table holds the reserved descriptors: the process's `FDSize` (the size of its
    /// descriptor table) covers them.
    #[test]
    fn reserve_grows_the_descriptor_table() {
        let fd_size = || -> u64 {
            std::fs::read_to_string("/proc/self/status")
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("FDSize:"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes the struct it is given.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        // Within the soft limit, whatever the machine's: 1000 processes need 4064.
        let processes = (limit.rlim_cur.min(4064).saturating_sub(64) / 4) as usize;
        super::reserve(processes);
        assert!(
            fd_size() >= 64 + 4 * processes as u64 - 1,
            "FDSize {} for {processes} processes",
            fd_size()
        );
    }
}
