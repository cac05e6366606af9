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
