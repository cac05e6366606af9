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
    close_in_guardian: Option<RawFd>,
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
            if let Some(fd) = close_in_guardian {
                let _ = nix::unistd::close(fd);
            }
            // SAFETY: plain prctl call.
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
            let code = watch(child, &set);
            // The manager removes these itself; after a `kill -9` it cannot.
            for f in remove_at_exit {
                f.remove();
            }
            std::process::exit(code)
        }
    }
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
    use crate::supervisor::reaper::{direct_children, signal_with_group};
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
