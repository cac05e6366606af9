//! The guardian: a small process between the caller and the manager that outlives a
//! manager killed with `kill -9` and then kills everything the manager left behind.
//!
//! The manager's children die with it (parent-death signal), but their children would be
//! re-parented to init and live on. The guardian is a child subreaper, so every such
//! orphan is re-parented to it instead; once the manager is gone it kills them all and
//! exits with the manager's exit code. Signals sent to the guardian (the pid the caller
//! knows) are forwarded to the manager; if the guardian itself is killed, the manager
//! gets a parent-death signal and kills everything at once.

use std::os::fd::RawFd;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid, setpgid};

/// The signal the manager receives when the guardian dies: kill everything at once.
pub const PARENT_DIED: Signal = Signal::SIGUSR2;

const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGQUIT,
    Signal::SIGHUP,
];

/// Splits the process in two. Returns in the manager; in the guardian it never returns
/// but exits with the manager's exit code. `close_in_guardian` are descriptors only the
/// manager may hold (the daemon's readiness pipe); `remove_at_exit` are the pid, address
/// and token files. Must be called while single-threaded.
pub fn split(
    close_in_guardian: &[RawFd],
    remove_at_exit: Vec<crate::state_files::StateFile>,
) -> std::io::Result<()> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    // Blocked before the fork so that no signal is lost between fork and sigwait.
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    let guardian = getpid();
    // SAFETY: the process is single-threaded here (no runtime, no threads yet).
    match unsafe { fork() }? {
        ForkResult::Child => {
            setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
            // SAFETY: plain prctl calls.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, PARENT_DIED as libc::c_int, 0, 0, 0);
                libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
            }
            if getppid() != guardian {
                // The guardian died before the death signal was armed.
                std::process::exit(1);
            }
            sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None)?;
            Ok(())
        }
        ForkResult::Parent { child } => {
            for &fd in close_in_guardian {
                let _ = nix::unistd::close(fd);
            }
            // SAFETY: plain prctl call.
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
            release_clean_file_pages();
            let code = watch(child, &set);
            // The manager removes these itself; after a `kill -9` it cannot.
            for f in remove_at_exit {
                f.remove();
            }
            std::process::exit(code)
        }
    }
}

/// Unmaps, in the guardian only, the pages of the binary and its libraries that the start-up
/// brought in: the manager keeps them, and the few the guardian's loop runs on come back
/// from the page cache on first use. Without this, every code page touched before the fork
/// stayed resident in both processes (~3.5 MiB of the pair's RSS with 20 processes).
///
/// Only mappings of a file, not writable, and holding no private (copied-on-write) page
/// are dropped: for those, `MADV_DONTNEED` loses nothing, the next access reads the same
/// bytes from the file. Relocated read-only data (RELRO) holds private pages and is kept.
fn release_clean_file_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    for (start, end) in clean_file_mappings(&smaps) {
        // SAFETY: a whole mapping of this process, file-backed, read-only and without a
        // private page: dropping its pages changes no byte anyone can read.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
}

/// The address ranges of `/proc/<pid>/smaps` mappings that are file-backed, not writable,
/// and without anonymous (private) pages.
fn clean_file_mappings(smaps: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    // The mapping being read: its range if it qualifies so far.
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            // A mapping's header: `start-end perms offset dev inode [path]`.
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            let readable_file = path.starts_with('/') && perms.as_bytes().get(1) == Some(&b'-');
            current = readable_file.then_some((a, b));
        } else if first == "Anonymous:" {
            let private_kib: u64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(1);
            if let Some(range) = current.take()
                && private_kib == 0
            {
                out.push(range);
            }
        }
    }
    out
}

/// The guardian's whole life: forward signals until the manager ends, then clean up.
fn watch(manager: Pid, set: &SigSet) -> i32 {
    let code = loop {
        let Ok(sig) = set.wait() else { continue };
        if sig != Signal::SIGCHLD {
            let _ = kill(manager, sig);
            continue;
        }
        if let Some(code) = reap(manager) {
            break code;
        }
    };
    kill_everything();
    code
}

/// Reaps ended children; the manager's exit code once it has ended.
fn reap(manager: Pid) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, c)) if pid == manager => code = Some(c),
            Ok(WaitStatus::Signaled(pid, s, _)) if pid == manager => code = Some(128 + s as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return code,
            Ok(_) => {}
        }
    }
}

/// Kills every process re-parented to the guardian, and their groups, until none is left.
fn kill_everything() {
    use crate::supervisor::children::{direct_children, signal_with_group};
    loop {
        for pid in direct_children() {
            signal_with_group(pid, Signal::SIGKILL);
        }
        match waitpid(Pid::from_raw(-1), None) {
            Err(nix::errno::Errno::ECHILD) => return,
            _ => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::clean_file_mappings;

    #[test]
    fn only_read_only_file_mappings_without_private_pages_are_released() {
        let smaps = "\
55d0e0a00000-55d0e0b00000 r--p 00000000 fe:01 123 /usr/bin/pymanager
Rss:                 800 kB
Anonymous:             0 kB
55d0e0b00000-55d0e0c00000 r-xp 00100000 fe:01 123 /usr/bin/pymanager
Anonymous:             0 kB
55d0e0c00000-55d0e0c10000 r--p 00200000 fe:01 123 /usr/bin/pymanager
Anonymous:            64 kB
55d0e0c10000-55d0e0c20000 rw-p 00210000 fe:01 123 /usr/bin/pymanager
Anonymous:             0 kB
55d0e1000000-55d0e1100000 rw-p 00000000 00:00 0 [heap]
Anonymous:            12 kB
7f0000000000-7f0000001000 r--p 00000000 00:00 0
Anonymous:             0 kB
7f0000001000-7f0000002000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
";
        assert_eq!(
            clean_file_mappings(smaps),
            vec![
                (0x55d0e0a00000, 0x55d0e0b00000),
                (0x55d0e0b00000, 0x55d0e0c00000)
            ]
        );
    }
}
