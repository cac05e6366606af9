//! A command run beside the supervised processes: `pymanager run`'s CMD. It is reaped by
//! the same reaper as every child of the manager (which reaps any child), but it is not in
//! the process table: the API never lists it and no restart policy applies to it.
//!
//! It runs in a process group of its own, signalled through its leader's pidfd like a
//! process's run. On a terminal where pymanager is the foreground job, its group becomes
//! the foreground group while it runs, so that it reads the terminal and Ctrl-C reaches it
//! alone; [`CommandChild::give_back_terminal`] hands the terminal back.

use std::os::unix::process::CommandExt;
use std::sync::Arc;

use nix::sys::signal::Signal;
use tokio::sync::oneshot;

use super::leader::Leader;
use super::reaper::Reaper;
use crate::process_view::ProcState;

/// Starts commands beside the supervised processes; cheap to clone.
#[derive(Clone)]
pub struct Spawner(pub(super) Reaper);

/// A command started by a [`Spawner`].
pub struct CommandChild {
    leader: Arc<Leader>,
    exit: oneshot::Receiver<ProcState>,
    /// The process group that had the terminal before, if the command was given it.
    terminal: Option<libc::pid_t>,
}

impl Spawner {
    /// Spawns `cmd` in a new process group (its stdin, stdout and stderr as `cmd` says; by
    /// default pymanager's own). If pymanager's process group has the terminal on stdin,
    /// the command's group gets it. The error is one line naming the program.
    pub fn spawn(&self, mut cmd: std::process::Command) -> Result<CommandChild, String> {
        let program = cmd.get_program().to_string_lossy().into_owned();
        let terminal = foreground_of_our_terminal();
        cmd.process_group(0);
        if terminal.is_some() {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    take_terminal(libc::getpid());
                    Ok(())
                });
            }
        }
        let (leader, exit) = self
            .0
            .spawn(|| cmd.spawn().map(|c| c.id() as i32))
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => format!("cannot run {program}: command not found"),
                std::io::ErrorKind::PermissionDenied => {
                    format!("cannot run {program}: permission denied")
                }
                _ => format!("cannot run {program}: {}", crate::error_text::io(&e)),
            })?;
        if terminal.is_some() {
            // The child took it already; done here too in case it had not yet, and its group
            // woken in case it was stopped reading the terminal before it had it.
            take_terminal(leader.pid());
            leader.signal_group(Signal::SIGCONT);
        }
        Ok(CommandChild {
            leader,
            exit,
            terminal,
        })
    }
}

impl CommandChild {
    /// Its pid (and its process group's id).
    pub fn pid(&self) -> i32 {
        self.leader.pid()
    }

    /// Sends `sig` to its whole process group.
    pub fn signal(&self, sig: Signal) {
        self.leader.signal_group(sig);
    }

    /// Waits for it to end; how it ended.
    pub async fn wait(&mut self) -> ProcState {
        // The reaper always answers while the manager runs.
        (&mut self.exit)
            .await
            .unwrap_or(ProcState::Exited { code: 1 })
    }

    /// Gives the terminal back to the process group that had it before the command.
    pub fn give_back_terminal(&mut self) {
        if let Some(group) = self.terminal.take() {
            take_terminal(group);
        }
    }
}

impl Drop for CommandChild {
    fn drop(&mut self) {
        self.give_back_terminal();
    }
}

/// The foreground process group of the terminal on stdin, if it is the group pymanager
/// was started in (the guardian's): only then may the command take the terminal.
fn foreground_of_our_terminal() -> Option<libc::pid_t> {
    // SAFETY: plain queries.
    unsafe {
        if libc::isatty(0) != 1 {
            return None;
        }
        let foreground = libc::tcgetpgrp(0);
        let ours = libc::getpgid(libc::getppid());
        (foreground > 0 && foreground == ours).then_some(foreground)
    }
}

/// Makes `group` the terminal's foreground group. From a background group this would
/// stop the caller with SIGTTOU, so that signal is blocked around the call (the kernel then
/// allows it). Async-signal-safe.
fn take_terminal(group: libc::pid_t) {
    // SAFETY: sigset and mask calls on local values; tcsetpgrp on stdin.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTTOU);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        libc::tcsetpgrp(0, group);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
}
