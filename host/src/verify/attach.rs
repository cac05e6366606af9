//! What `pymanager verify` attaches a verifier to, when no manager supervises the process:
//! a pid (its state, and its exit as an event through a pidfd) and a log file (its lines,
//! followed through inotify). Both feed the same [`ProcessView`] a supervised process
//! would, so a verifier cannot tell the difference.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

use crate::process_view::{OutputLog, ProcState};

/// Watches a process that is not our child: `Running` until its pidfd becomes readable
/// (the kernel's exit event; no polling), then its exit as far as it can be known (see
/// [`ProcState::exited_unknown`]).
pub(crate) fn watch_pid(pid: u32) -> Result<watch::Receiver<ProcState>, String> {
    let fd = pidfd_open(pid)?;
    let (tx, rx) = watch::channel(ProcState::Running { pid });
    // SAFETY: the descriptor is owned by the AsyncFd from here on and closed only with it.
    let fd = unsafe { AsyncFd::register(fd) }
        .map_err(|e| format!("--pid {pid}: cannot watch it: {e}"))?;
    tokio::spawn(async move {
        // Readable once the process has ended; an error here means the same for us.
        let _ = fd.readable().await;
        // Once reaped, the code is gone: the verification says so rather than hand the
        // verifier a code that never was.
        let state = exit_state(pid).unwrap_or_else(ProcState::exited_unknown);
        let _ = tx.send(state);
        // Keep the sender until every verifier is gone, so waits see the final state.
        tx.closed().await;
    });
    Ok(rx)
}

/// How a verification names the process `pid`: `process 4242 (redis-server)`.
pub(crate) fn name_of(pid: u32) -> String {
    match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) if !comm.trim().is_empty() => format!("process {pid} ({})", comm.trim()),
        _ => format!("process {pid}"),
    }
}

fn pidfd_open(pid: u32) -> Result<OwnedFd, String> {
    let raw = i32::try_from(pid).map_err(|_| format!("--pid {pid}: not a process id"))?;
    if raw <= 0 {
        return Err(format!("--pid {pid}: not a process id"));
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, raw, 0) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ESRCH) => format!("--pid {pid}: no such process"),
            _ => format!("--pid {pid}: cannot watch it: {e}"),
        });
    }
    // SAFETY: the syscall returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The state of an ended process. A process that is not pymanager's child cannot be
/// waited for; its exit status is read from `/proc/<pid>/stat` while it is a zombie (its
/// parent has not reaped it yet). Once reaped, the code is gone: `None`.
fn exit_state(pid: u32) -> Option<ProcState> {
    let status = zombie_status(pid)?;
    Some(if libc::WIFSIGNALED(status) {
        ProcState::Signaled {
            signal: libc::WTERMSIG(status),
        }
    } else {
        ProcState::Exited {
            code: libc::WEXITSTATUS(status),
        }
    })
}

/// The wait status of `pid` if it is a zombie (field 52, `exit_code`, of proc(5)'s stat).
fn zombie_status(pid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() != Some(&"Z") {
        return None;
    }
    fields.get(52 - 3)?.parse().ok()
}

/// Follows `path`: its lines so far, then each line appended, pushed to `out`. Waits for
/// the file to appear if it does not exist yet, and starts over when it is replaced or
/// truncated (log rotation). Changes come from inotify on the file's directory.
pub(crate) fn follow_log(path: &Path, out: Arc<OutputLog>) -> Result<(), String> {
    let shown = path.display().to_string();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| format!("--log {shown}: not a file name"))?
        .to_os_string();
    if !dir.is_dir() {
        return Err(format!(
            "--log {shown}: no such directory {}",
            dir.display()
        ));
    }
    if path.is_dir() {
        return Err(format!("--log {shown}: is a directory"));
    }
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
        .map_err(|e| format!("--log {shown}: cannot watch it: {e}"))?;
    inotify
        .add_watch(
            &dir,
            AddWatchFlags::IN_MODIFY
                | AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_CLOSE_WRITE,
        )
        .map_err(|e| format!("--log {shown}: cannot watch {}: {e}", dir.display()))?;
    // SAFETY: the inotify descriptor is owned by the AsyncFd from here on.
    let events = unsafe { AsyncFd::register(Watch(inotify)) }
        .map_err(|e| format!("--log {shown}: cannot watch it: {e}"))?;
    let path = path.to_path_buf();
    tokio::spawn(async move {
        let mut reader = LineReader::new(path);
        // The watch is in place before the first read: nothing written after it is missed.
        reader.read_new(&out);
        loop {
            let Ok(mut ready) = events.readable().await else {
                return;
            };
            let touched = match ready.try_io(|w| w.get_ref().0.read_events().map_err(Into::into)) {
                Ok(Ok(list)) => list.iter().any(|e| e.name.as_ref() == Some(&name)),
                Ok(Err(_)) => return,
                Err(_would_block) => continue,
            };
            if touched {
                reader.read_new(&out);
            }
        }
    });
    Ok(())
}

/// An inotify instance as something tokio can wait on.
struct Watch(Inotify);

impl AsRawFd for Watch {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Reads a growing file line by line, remembering where it stopped.
struct LineReader {
    path: PathBuf,
    file: Option<(File, u64)>,
    offset: u64,
    partial: Vec<u8>,
}

impl LineReader {
    fn new(path: PathBuf) -> LineReader {
        LineReader {
            path,
            file: None,
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// Reads what was appended since the last call (or everything, for a new file).
    fn read_new(&mut self, out: &OutputLog) {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return;
        };
        let replaced = self.file.as_ref().is_none_or(|(_, ino)| *ino != meta.ino());
        if replaced || meta.len() < self.offset {
            let Ok(f) = File::open(&self.path) else {
                return;
            };
            self.file = Some((f, meta.ino()));
            self.offset = 0;
            self.partial.clear();
        }
        let Some((file, _)) = self.file.as_mut() else {
            return;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        if let Ok(n) = file.read_to_end(&mut buf) {
            self.offset += n as u64;
        }
        self.partial.extend_from_slice(&buf);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            out.push(text.trim_end_matches('\r'));
        }
    }
}
