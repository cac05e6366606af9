//! `--daemon`: detach from the terminal, yet let the caller learn whether start-up worked.
//!
//! The caller's process forks and waits on a pipe; the detached child (which becomes the
//! guardian, whose child becomes the manager) writes one line on it once every process is
//! verified, or why start-up failed. So `pymanager -d && run-tests` runs the tests only
//! against a ready environment.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::unistd::{ForkResult, fork, setsid};

/// Detaches. Returns the readiness pipe's write end in the daemon; in the caller it
/// waits for the daemon's word and exits with 0 or 5. Must be called single-threaded.
pub fn detach(logfile: Option<&Path>, pidfile: &Path) -> std::io::Result<OwnedFd> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: the process is single-threaded here.
    match unsafe { fork() }? {
        ForkResult::Parent { .. } => {
            drop(write);
            std::process::exit(wait_for_word(read))
        }
        ForkResult::Child => {
            drop(read);
            setsid()?;
            let out = match logfile {
                Some(p) => std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
                None => std::fs::OpenOptions::new().write(true).open("/dev/null")?,
            };
            let null = std::fs::File::open("/dev/null")?;
            for (from, to) in [
                (null.as_raw_fd(), 0),
                (out.as_raw_fd(), 1),
                (out.as_raw_fd(), 2),
            ] {
                // SAFETY: plain dup2 on descriptors this process owns.
                if unsafe { libc::dup2(from, to) } < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(dir) = pidfile.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(pidfile, format!("{}\n", std::process::id()))?;
            Ok(write)
        }
    }
}

/// Tells the waiting caller how start-up went; `Ok` carries a line for its stdout.
pub fn report(pipe: OwnedFd, result: Result<String, String>) {
    let mut f = std::fs::File::from(pipe);
    let _ = match result {
        Ok(msg) => writeln!(f, "ok {msg}"),
        Err(msg) => writeln!(f, "err {msg}"),
    };
}

fn wait_for_word(read: OwnedFd) -> i32 {
    let mut line = String::new();
    let _ = BufReader::new(std::fs::File::from(read)).read_line(&mut line);
    let line = line.trim_end();
    if let Some(msg) = line.strip_prefix("ok") {
        if !msg.trim().is_empty() {
            println!("{}", msg.trim());
        }
        0
    } else if let Some(msg) = line.strip_prefix("err ") {
        eprintln!("{msg}");
        5
    } else {
        eprintln!("[ERROR] pymanager exited during start-up (see its --logfile)");
        5
    }
}
