//! Reads one run's combined stdout and stderr: every line goes into the bounded history
//! (for verifiers and `logs`) and to where the config sends it — the console with the
//! process's prefix, a file, or nowhere.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use tokio::io::AsyncReadExt;

use crate::console::Console;
use crate::process_view::OutputLog;

/// A line longer than this is cut into pieces, so a process that never writes a newline
/// cannot make pymanager buffer without bound.
const MAX_LINE: usize = 64 * 1024;

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
    loop {
        let n = match pipe.read(&mut buf).await {
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
            emit(&mut partial, &history, &sink).await;
            rest = &rest[nl + 1..];
        }
        partial.extend_from_slice(rest);
        while partial.len() >= MAX_LINE {
            let tail = partial.split_off(MAX_LINE);
            emit(&mut partial, &history, &sink).await;
            partial = tail;
        }
    }
    if !partial.is_empty() {
        emit(&mut partial, &history, &sink).await;
    }
}

async fn emit(line: &mut Vec<u8>, history: &OutputLog, sink: &Sink) {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    history.push(&String::from_utf8_lossy(line));
    if let Sink::Console(console, prefix) = sink {
        let mut out = Vec::with_capacity(prefix.len() + line.len() + 1);
        out.extend_from_slice(prefix);
        out.extend_from_slice(line);
        out.push(b'\n');
        console.output(out).await;
    }
    line.clear();
}
