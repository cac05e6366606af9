//! Starts one run of a process: its own process group, a parent-death signal, a stdin
//! pipe held open (as the original did), and stdout and stderr on one pipe that pymanager
//! reads.

use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

use tokio::sync::oneshot;

use super::reaper::Reaper;
use crate::plan::ProcessSpec;
use crate::process_view::ProcState;

/// A process that was just started.
pub struct Spawned {
    /// Its pid, which is also its process group id.
    pub pid: u32,
    /// Resolves with its final state when the reaper collects it.
    pub exit: oneshot::Receiver<ProcState>,
    /// The read end of its combined stdout and stderr.
    pub output: OwnedFd,
    /// The write end of its stdin, held open while it runs so that it never sees EOF.
    pub stdin: OwnedFd,
}

/// Spawns one run of `spec`. The error is one line naming what could not be run and why.
pub fn spawn(spec: &ProcessSpec, reaper: &Reaper) -> Result<Spawned, String> {
    let (out_read, out_write) = pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
    let (in_read, in_write) = pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
    let err_write = out_write
        .try_clone()
        .map_err(|e| format!("cannot create a pipe: {e}"))?;

    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .stdin(Stdio::from(in_read))
        .stdout(Stdio::from(out_write))
        .stderr(Stdio::from(err_write))
        .process_group(0);
    if let Some(dir) = &spec.cwd {
        cmd.current_dir(dir);
    }
    if let Some(env) = &spec.env {
        cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    }
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            // Dies with the manager's thread that spawned it, even on `kill -9`; the
            // guardian process takes care of what this child leaves behind.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Undo the manager's signal mask and ignored signals.
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            Ok(())
        });
    }
    use std::os::unix::process::CommandExt as _;
    let (pid, exit) = reaper
        .spawn(&mut cmd)
        .map_err(|e| describe_spawn_error(spec, &e))?;
    // The child's copies of the pipe ends live in `cmd`; drop them so EOF is seen.
    drop(cmd);
    Ok(Spawned {
        pid,
        exit,
        output: out_read,
        stdin: in_write,
    })
}

fn describe_spawn_error(spec: &ProcessSpec, e: &std::io::Error) -> String {
    let program = spec.program.to_string_lossy();
    match (e.kind(), &spec.cwd) {
        (std::io::ErrorKind::NotFound, Some(dir)) if !dir.is_dir() => {
            format!("working directory {} does not exist", dir.display())
        }
        (std::io::ErrorKind::NotFound, _) => format!("cannot run {program}: command not found"),
        (std::io::ErrorKind::PermissionDenied, _) => {
            format!("cannot run {program}: permission denied")
        }
        _ => format!("cannot run {program}: {e}"),
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}
