//! `--daemon`: detach from the terminal, yet let the caller learn whether start-up worked.
//!
//! The caller's process forks and waits on a pipe; the detached child (which becomes the
//! guardian, whose child becomes the manager) writes one line on it once every process is
//! verified, or why start-up failed. So `pymanager -d && run-tests` runs the tests only
//! against a ready environment. As with the original, the daemon keeps writing the
//! processes' output to the caller's stdout (unless `--logfile` is given) for as long as
//! that stays open: CI logs show what the services printed.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::unistd::{ForkResult, fork, setsid};

/// Where the daemon tells the waiting caller how start-up went: warnings on the way, then
/// one final word, which consumes it.
#[derive(Debug)]
pub struct Readiness(std::fs::File);

impl Readiness {
    /// A warning for the caller's stderr (the daemon's own stderr may be /dev/null).
    pub fn warn(&mut self, line: &str) {
        let _ = writeln!(self.0, "warn {line}");
    }

    /// A line for the caller's stderr that is not a warning (what `-v` says of the
    /// start-up).
    pub fn info(&mut self, line: &str) {
        let _ = writeln!(self.0, "info {line}");
    }

    /// Start-up succeeded; `line` (if not empty) is printed on the caller's stdout.
    pub fn ready(mut self, line: &str) {
        let _ = writeln!(self.0, "ok {line}");
    }

    /// Start-up failed; `line` is printed on the caller's stderr and the caller exits 5.
    pub fn failed(mut self, line: &str) {
        let _ = writeln!(self.0, "err {line}");
    }

    /// The descriptor, for the guardian to close: only the manager may hold it, so that the
    /// caller sees end-of-file if the manager dies.
    pub fn raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// What the daemon told the waiting caller.
#[derive(Debug)]
pub struct Word {
    /// Warnings (and `-v` lines), for the caller's stderr, in order.
    pub warnings: Vec<String>,
    /// `Ok`: a line for stdout (maybe empty); `Err`: why start-up failed.
    pub result: Result<String, String>,
}

/// What [`detach`] returns in each of the two processes.
#[derive(Debug)]
pub enum Detached {
    /// In the caller: the daemon's word.
    Caller(Word),
    /// In the daemon.
    Daemon(Readiness),
}

/// Detaches: forks, and in the caller waits for the daemon's word. The daemon gets a new
/// session, /dev/null as stdin, and `logfile` as stdout and stderr; without a log file it
/// keeps the caller's stdout and sends stderr to /dev/null (start-up errors reach the
/// caller through the readiness pipe). Must be called single-threaded.
pub fn detach(logfile: Option<&Path>) -> std::io::Result<Detached> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: the process is single-threaded here.
    match unsafe { fork() }? {
        ForkResult::Parent { .. } => {
            drop(write);
            Ok(Detached::Caller(wait_for_word(read)))
        }
        ForkResult::Child => {
            drop(read);
            setsid()?;
            let null_in = std::fs::File::open("/dev/null")?;
            let null_out = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
            let log = match logfile {
                Some(p) => Some(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(p)?,
                ),
                None => None,
            };
            let mut moves = vec![(null_in.as_raw_fd(), 0)];
            match &log {
                Some(log) => moves.extend([(log.as_raw_fd(), 1), (log.as_raw_fd(), 2)]),
                None => moves.push((null_out.as_raw_fd(), 2)),
            }
            for (from, to) in moves {
                // SAFETY: plain dup2 on descriptors this process owns.
                if unsafe { libc::dup2(from, to) } < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(Detached::Daemon(Readiness(std::fs::File::from(write))))
        }
    }
}

fn wait_for_word(read: OwnedFd) -> Word {
    let mut warnings = Vec::new();
    for line in BufReader::new(std::fs::File::from(read)).lines() {
        let Ok(line) = line else { break };
        if let Some(w) = line
            .strip_prefix("warn ")
            .or_else(|| line.strip_prefix("info "))
        {
            warnings.push(w.to_string());
        } else if let Some(msg) = line.strip_prefix("ok") {
            let result = Ok(msg.trim().to_string());
            return Word { warnings, result };
        } else if let Some(msg) = line.strip_prefix("err ") {
            let result = Err(msg.to_string());
            return Word { warnings, result };
        }
    }
    Word {
        warnings,
        result: Err("[ERROR] pymanager exited during start-up (see its --logfile)".into()),
    }
}
