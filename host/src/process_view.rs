//! The window a verifier gets on the process it verifies.
//!
//! The supervisor owns every process; a verifier running in the WASM runtime must still see
//! the process's state, wait for its exit and read its output. [`ProcessView`] is that
//! read-only window: it is cheap to clone, never blocks, and every wait in it is an event
//! (a `watch` or `broadcast` channel), never a poll.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regex::Regex;
use serde::Serialize;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

/// What a supervised process is doing at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum ProcState {
    /// Not spawned yet, or between a stop and the next start.
    NotStarted,
    /// Running with this pid.
    Running { pid: u32 },
    /// Exited with this code.
    Exited { code: i32 },
    /// Ended by this signal.
    Signaled { signal: i32 },
}

impl ProcState {
    /// True once the process has ended (exited or signaled).
    pub fn has_ended(self) -> bool {
        matches!(self, ProcState::Exited { .. } | ProcState::Signaled { .. })
    }

    /// The exit code the original pymanager reported: the code, or minus the signal number.
    pub fn legacy_code(self) -> Option<i32> {
        match self {
            ProcState::Exited { code } => Some(code),
            ProcState::Signaled { signal } => Some(-signal),
            _ => None,
        }
    }
}

/// Severity of a verifier's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Shown under `verifier.fail` and `verifier.verbose`.
    Error,
    /// Shown under `verifier.fail` and `verifier.verbose`.
    Warn,
    /// Shown under `verifier.verbose`.
    Info,
    /// Shown under `verifier.verbose`.
    Debug,
}

/// Where a verifier's log lines go; the supervisor decides what is shown.
pub type LogSink = Arc<dyn Fn(Level, &str) + Send + Sync>;

/// Lines of output kept per process for verifiers and `logs`, whatever the output option.
pub const OUTPUT_HISTORY_LINES: usize = 1000;

/// One numbered line of output.
pub type NumberedLine = (u64, Arc<str>);

/// The bounded output history of one process run, plus a stream of new lines.
///
/// Each line carries a sequence number so that a reader that looks at the history and then
/// follows the stream sees every line exactly once.
#[derive(Debug)]
pub struct OutputLog {
    history: Mutex<History>,
    live: broadcast::Sender<(u64, Arc<str>)>,
}

#[derive(Debug, Default)]
struct History {
    next_seq: u64,
    lines: VecDeque<(u64, Arc<str>)>,
}

impl Default for OutputLog {
    fn default() -> Self {
        Self::new()
    }
}

impl OutputLog {
    /// An empty log.
    pub fn new() -> Self {
        let (live, _) = broadcast::channel(128);
        OutputLog {
            history: Mutex::new(History::default()),
            live,
        }
    }

    /// Appends one line (without its newline).
    pub fn push(&self, line: &str) {
        let line: Arc<str> = Arc::from(line);
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let seq = h.next_seq;
        h.next_seq += 1;
        if h.lines.len() == OUTPUT_HISTORY_LINES {
            h.lines.pop_front();
        }
        h.lines.push_back((seq, line.clone()));
        // Sent under the lock so that sequence numbers reach subscribers in order.
        let _ = self.live.send((seq, line));
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let skip = h.lines.len().saturating_sub(n);
        h.lines
            .iter()
            .skip(skip)
            .map(|(_, l)| l.to_string())
            .collect()
    }

    /// Lines after sequence number `after` still in the history, and the stream of lines to come.
    pub fn follow(&self) -> (Vec<NumberedLine>, broadcast::Receiver<NumberedLine>) {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let rx = self.live.subscribe();
        (h.lines.iter().cloned().collect(), rx)
    }

    fn lines_after(&self, after: Option<u64>) -> Vec<(u64, Arc<str>)> {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        h.lines
            .iter()
            .filter(|(s, _)| after.is_none_or(|a| *s > a))
            .cloned()
            .collect()
    }

    /// Waits for a line matching `pattern` (history first, then new lines) until `stop` fires.
    /// Returns `None` when stopped or when the stream ends.
    pub async fn wait_for(
        &self,
        pattern: &Regex,
        stop: impl Future<Output = ()>,
    ) -> Option<String> {
        let (history, mut rx) = self.follow();
        let mut last = None;
        for (seq, line) in history {
            if pattern.is_match(&line) {
                return Some(line.to_string());
            }
            last = Some(seq);
        }
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return None,
                got = rx.recv() => match got {
                    Ok((seq, line)) => {
                        if last.is_some_and(|l| seq <= l) {
                            continue;
                        }
                        last = Some(seq);
                        if pattern.is_match(&line) {
                            return Some(line.to_string());
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Fell behind a flood: catch up from the history.
                        for (seq, line) in self.lines_after(last) {
                            last = Some(seq);
                            if pattern.is_match(&line) {
                                return Some(line.to_string());
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }
}

/// A read-only, cloneable window on one process run, handed to its verifier.
#[derive(Clone)]
pub struct ProcessView {
    name: Arc<str>,
    state: watch::Receiver<ProcState>,
    output: Arc<OutputLog>,
    shutdown: CancellationToken,
    log: LogSink,
}

impl ProcessView {
    /// Builds a view; the supervisor keeps the sending side of `state` and writes `output`.
    pub fn new(
        name: Arc<str>,
        state: watch::Receiver<ProcState>,
        output: Arc<OutputLog>,
        shutdown: CancellationToken,
        log: LogSink,
    ) -> Self {
        ProcessView {
            name,
            state,
            output,
            shutdown,
            log,
        }
    }

    /// The process's name in the config.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process's state now.
    pub fn state(&self) -> ProcState {
        *self.state.borrow()
    }

    /// Cancelled when pymanager shuts down; every wait ends early then.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Writes a verifier log line through the supervisor's `messages` filter.
    pub fn log(&self, level: Level, message: &str) {
        (self.log)(level, message)
    }

    /// Waits up to `timeout` for the process to end; `None` on time-out or shutdown.
    pub async fn wait_exit(&self, timeout: Duration) -> Option<ProcState> {
        let mut rx = self.state.clone();
        let ended = async {
            match rx.wait_for(|s| s.has_ended()).await {
                Ok(s) => Some(*s),
                Err(_) => None,
            }
        };
        tokio::select! {
            s = ended => s,
            _ = tokio::time::sleep(timeout) => None,
            _ = self.shutdown.cancelled() => None,
        }
    }

    /// Waits up to `timeout` for an output line matching `pattern`; `None` on time-out,
    /// shutdown, or the process's exit without a match.
    pub async fn wait_output(&self, pattern: &Regex, timeout: Duration) -> Option<String> {
        let mut state = self.state.clone();
        let stop = async {
            tokio::select! {
                _ = tokio::time::sleep(timeout) => {}
                _ = self.shutdown.cancelled() => {}
                // Output may still be draining when the exit is seen: give it a moment.
                _ = async {
                    let _ = state.wait_for(|s| s.has_ended()).await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                } => {}
            }
        };
        self.output.wait_for(pattern, stop).await
    }

    /// Sleeps `d`; false if cut short by shutdown.
    pub async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.shutdown.cancelled() => false,
        }
    }

    /// A view of a process that is not supervised, for validating and for tests:
    /// its state never changes and it has no output.
    pub fn detached(
        name: &str,
        state: ProcState,
    ) -> (Self, watch::Sender<ProcState>, Arc<OutputLog>) {
        let (tx, rx) = watch::channel(state);
        let out = Arc::new(OutputLog::new());
        let view = ProcessView::new(
            Arc::from(name),
            rx,
            out.clone(),
            CancellationToken::new(),
            Arc::new(|_, _| {}),
        );
        (view, tx, out)
    }
}
