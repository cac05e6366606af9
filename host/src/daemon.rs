//! `--daemon`: detach from the terminal, yet let the caller learn whether start-up worked.
//!
//! The caller's process forks and waits on a pipe; the detached child (which becomes the
//! guardian, whose child becomes the manager) writes one line on it once every process is
//! verified, or why start-up failed. So `pymanager -d && run-tests` runs the tests only
//! against a ready environment. As with the original, the daemon keeps writing the
//! processes' output to the caller's stdout (unless `--logfile` is given) for as long as
//! that stays open: CI logs show what the services printed.

use std::io::Write;
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

    /// Start-up succeeded; `line` (if not empty) is printed on the caller's stdout.
    pub fn ready(mut self, line: &str) {
        let _ = writeln!(self.0, "ok {line}");
    }

    /// Start-up failed; `text` (the error and its report, maybe several lines) is printed
    /// on the caller's stderr and the caller exits 5.
    pub fn failed(mut self, text: &str) {
        for line in text.lines() {
            let _ = writeln!(self.0, "err {line}");
        }
        let _ = writeln!(self.0, "end");
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
    /// Warnings, for the caller's stderr.
    pub warnings: Vec<String>,
    /// `Ok`: a line for stdout (maybe empty); `Err`: why start-up failed.
    pub result: Result<String, String>,
    /// The signal that interrupted the wait, if one did: the daemon was stopped with it,
    /// and is gone.
    pub interrupted: Option<i32>,
}

/// The signals that stop a waiting caller, and the daemon with it.
const STOPPING: [nix::sys::signal::Signal; 4] = [
    nix::sys::signal::Signal::SIGINT,
    nix::sys::signal::Signal::SIGTERM,
    nix::sys::signal::Signal::SIGQUIT,
    nix::sys::signal::Signal::SIGHUP,
];

/// What [`detach`] returns in each of the two processes.
#[derive(Debug)]
pub enum Detached {
    /// In the caller: the daemon's word.
    Caller(Word),
    /// In the daemon.
    Daemon(Readiness),
}

/// Detaches: forks, and in the caller runs `in_caller` (to let go of what only the daemon
/// may hold, such as the sockets that keep picked ports) and waits for the daemon's word.
/// The daemon gets a new session, /dev/null as stdin, and `logfile` as stdout and stderr;
/// without a log file it keeps the caller's stdout and sends stderr to /dev/null (start-up
/// errors reach the caller through the readiness pipe). Must be called single-threaded.
pub fn detach(logfile: Option<&Path>, in_caller: impl FnOnce()) -> std::io::Result<Detached> {
    use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // Blocked before the fork, so that a Ctrl-C at any moment of the wait is seen by the
    // caller (which passes it on) and not lost.
    let mut stopping = SigSet::empty();
    for s in STOPPING {
        stopping.add(s);
    }
    let mut before = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&stopping), Some(&mut before))?;
    // SAFETY: the process is single-threaded here.
    match unsafe { fork() }? {
        ForkResult::Parent { child } => {
            drop(write);
            in_caller();
            let word = wait_for_word(read, &stopping, child);
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&before), None)?;
            Ok(Detached::Caller(word))
        }
        ForkResult::Child => {
            drop(read);
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&before), None)?;
            setsid()?;
            let null_in = std::fs::File::open("/dev/null")?;
            let null_out = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
            let log = match logfile {
                Some(p) => Some(crate::private_files::open_output(
                    p,
                    crate::private_files::Output::Append,
                )?),
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

/// Reads the daemon's word. A stopping signal meanwhile is passed on to the daemon (whose
/// guardian passes it to the manager: a graceful shutdown, a second one forces it); the
/// caller then waits until the daemon is gone, so that nothing it started is left.
fn wait_for_word(
    read: OwnedFd,
    stopping: &nix::sys::signal::SigSet,
    daemon: nix::unistd::Pid,
) -> Word {
    let mut warnings = Vec::new();
    let mut failure: Vec<String> = Vec::new();
    let mut interrupted = None;
    let signals = nix::sys::signalfd::SignalFd::with_flags(
        stopping,
        nix::sys::signalfd::SfdFlags::SFD_CLOEXEC,
    )
    .ok();
    let mut lines = SignalledLines {
        read: std::fs::File::from(read),
        buf: Vec::new(),
        signals,
        on_signal: |sig: i32| {
            interrupted.get_or_insert(sig);
            if let Ok(sig) = nix::sys::signal::Signal::try_from(sig) {
                let _ = nix::sys::signal::kill(daemon, sig);
            }
        },
    };
    let mut ready = None;
    while let Some(line) = lines.next_line() {
        if let Some(w) = line.strip_prefix("warn ") {
            warnings.push(w.to_string());
        } else if let Some(msg) = line.strip_prefix("ok") {
            ready = Some(msg.trim().to_string());
            break;
        } else if let Some(msg) = line.strip_prefix("err ") {
            failure.push(msg.to_string());
        } else if line == "end" {
            break;
        }
    }
    drop(lines);
    let result = match ready {
        Some(line) => Ok(line),
        None if failure.is_empty() => {
            Err("[ERROR] pymanager exited during start-up (see its --logfile)".into())
        }
        None => Err(failure.join("\n")),
    };
    if interrupted.is_some() {
        // Everything the daemon started is gone when it is.
        let _ = nix::sys::wait::waitpid(daemon, None);
    }
    Word {
        warnings,
        result,
        interrupted,
    }
}

/// The daemon's lines, read while watching for stopping signals.
struct SignalledLines<F: FnMut(i32)> {
    read: std::fs::File,
    buf: Vec<u8>,
    signals: Option<nix::sys::signalfd::SignalFd>,
    on_signal: F,
}

impl<F: FnMut(i32)> SignalledLines<F> {
    /// The next whole line, or `None` at end of file.
    fn next_line(&mut self) -> Option<String> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::io::Read;
        use std::os::fd::AsFd;
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Some(String::from_utf8_lossy(&line[..i]).into_owned());
            }
            let mut fds = vec![PollFd::new(self.read.as_fd(), PollFlags::POLLIN)];
            if let Some(s) = &self.signals {
                fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return None,
            }
            let signalled = fds
                .get(1)
                .and_then(|f| f.revents())
                .is_some_and(|r| r.contains(PollFlags::POLLIN));
            let readable = fds[0].revents().is_some_and(|r| !r.is_empty());
            if signalled
                && let Some(s) = &mut self.signals
                && let Ok(Some(info)) = s.read_signal()
            {
                (self.on_signal)(info.ssi_signo as i32);
            }
            if readable {
                let mut chunk = [0u8; 4096];
                match self.read.read(&mut chunk) {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        }
    }
}
