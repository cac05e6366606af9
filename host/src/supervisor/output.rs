//! Reads one run's combined stdout and stderr: every line goes into the bounded history
//! (for verifiers and `logs`) and to where the config sends it — the console with the
//! process's prefix, a file, or nowhere.
//!
//! A partial line (a prompt, a progress bar) that no more output follows within
//! [`PARTIAL_PAUSE`] is shown on the console as it is, on a line of its own, and the rest of
//! its line follows on the next when it comes: the original's processes wrote to the
//! terminal directly, so their prompts appeared at once. The history keeps whole lines.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::console::Console;
use crate::process_view::OutputLog;

/// A line longer than this is cut into pieces, so a process that never writes a newline
/// cannot make pymanager buffer without bound.
const MAX_LINE: usize = 64 * 1024;

/// How long a partial line waits for the rest of its line before the console shows it:
/// long enough that a line written in two pieces is rarely split, short enough to read as
/// at once.
pub const PARTIAL_PAUSE: Duration = Duration::from_millis(200);

/// Where the lines of one run go besides the history.
pub enum Sink {
    /// pymanager's stdout, after this prefix.
    Console(Console, Vec<u8>),
    /// A file (`redirect_output`), written as the process wrote it.
    File(std::fs::File),
    /// Nowhere (`suppress_output`).
    Discard,
}

/// Pumps `fd` until the process and every holder of its stdout have closed it.
pub async fn pump(fd: OwnedFd, history: Arc<OutputLog>, mut sink: Sink) {
    let Ok(mut pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
        return;
    };
    let mut buf = vec![0u8; 8 * 1024];
    let mut partial: Vec<u8> = Vec::new();
    // How much of `partial` the console has shown already.
    let mut shown = 0;
    loop {
        // A timer only while a partial line waits to be shown; otherwise just the read.
        let read = if partial.len() > shown && matches!(sink, Sink::Console(..)) {
            match tokio::time::timeout(PARTIAL_PAUSE, pipe.read(&mut buf)).await {
                Ok(read) => read,
                Err(_) => {
                    show_partial(&partial, &mut shown, &sink).await;
                    continue;
                }
            }
        } else {
            pipe.read(&mut buf).await
        };
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        if let Sink::File(f) = &mut sink {
            let _ = f.write_all(chunk);
        }
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            partial.extend_from_slice(&rest[..nl]);
            emit(&mut partial, std::mem::take(&mut shown), &history, &sink).await;
            rest = &rest[nl + 1..];
        }
        partial.extend_from_slice(rest);
        while partial.len() >= MAX_LINE {
            let tail = partial.split_off(MAX_LINE);
            emit(&mut partial, std::mem::take(&mut shown), &history, &sink).await;
            partial = tail;
        }
    }
    if !partial.is_empty() {
        emit(&mut partial, shown, &history, &sink).await;
    }
}

/// A whole line: into the history, and to the console unless it was all shown already
/// (`shown` bytes of it were, as a partial line).
async fn emit(line: &mut Vec<u8>, shown: usize, history: &OutputLog, sink: &Sink) {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    history.push(&String::from_utf8_lossy(line));
    let rest = &line[shown.min(line.len())..];
    if let Sink::Console(console, prefix) = sink
        && (shown == 0 || !rest.is_empty())
    {
        console.output(prefixed(prefix, rest)).await;
    }
    line.clear();
}

/// The part of a partial line the console has not shown yet, shown now.
async fn show_partial(partial: &[u8], shown: &mut usize, sink: &Sink) {
    if let Sink::Console(console, prefix) = sink {
        console.output(prefixed(prefix, &partial[*shown..])).await;
    }
    *shown = partial.len();
}

fn prefixed(prefix: &[u8], text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + text.len() + 1);
    out.extend_from_slice(prefix);
    out.extend_from_slice(text);
    out.push(b'\n');
    out
}
