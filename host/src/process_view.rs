//! The window a verifier gets on the process it verifies.
//!
//! The supervisor owns every process; a verifier running in the WASM runtime must still see
//! the process's state, wait for its exit and read its output. [`ProcessView`] is that
//! read-only window: it is cheap to clone, never blocks, and every wait in it is an event
//! (a `watch` channel), never a poll.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regex::Regex;
use serde::Serialize;
use tokio::sync::watch;
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

/// The bounded output history of one process run, which readers follow as it grows.
///
/// Lines are numbered from 0 in the order they were written. A [`LogReader`] keeps only
/// the number of the next line it wants and reads the history one line at a time, so a
/// reader costs the same whatever the history holds, and a slow reader never holds lines
/// in memory: if the history moved past it, it skips what it missed (and counts it).
#[derive(Debug)]
pub struct OutputLog {
    history: Mutex<History>,
    /// The number the next line will get; readers wait on its changes.
    written: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct History {
    /// The number of `lines[0]`.
    first: u64,
    lines: VecDeque<Arc<str>>,
}

impl History {
    fn end(&self) -> u64 {
        self.first + self.lines.len() as u64
    }
}

impl Default for OutputLog {
    fn default() -> Self {
        Self::new()
    }
}

/// Lines a waiting verifier scans before it looks at its deadline again.
const SCAN_BATCH: usize = 256;

/// Where a [`LogReader`] begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// The oldest line still in the history.
    Start,
    /// The last `n` lines of the history.
    Tail(usize),
}

impl OutputLog {
    /// An empty log.
    pub fn new() -> Self {
        OutputLog {
            history: Mutex::new(History::default()),
            written: watch::Sender::new(0),
        }
    }

    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one line (without its newline).
    pub fn push(&self, line: &str) {
        let line: Arc<str> = Arc::from(line);
        let mut h = self.history();
        if h.lines.len() == OUTPUT_HISTORY_LINES {
            h.lines.pop_front();
            h.first += 1;
        }
        h.lines.push_back(line);
        // Under the lock, so that the number readers see never goes backwards, and so that
        // a reader created now (it subscribes under the same lock) is either counted here or
        // finds this line in the history. Without readers, nobody is woken: a flood of
        // output nobody follows costs no notification.
        if self.written.receiver_count() > 0 {
            self.written.send_replace(h.end());
        }
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let h = self.history();
        let skip = h.lines.len().saturating_sub(n);
        h.lines.iter().skip(skip).map(|l| l.to_string()).collect()
    }

    /// A reader of this log from `from` on: every line from there, each once, in order.
    pub fn reader(self: &Arc<Self>, from: ReadFrom) -> LogReader {
        let h = self.history();
        let next = match from {
            ReadFrom::Start => h.first,
            ReadFrom::Tail(n) => h.end().saturating_sub(n as u64).max(h.first),
        };
        // Subscribed under the history lock: see `push`.
        let written = self.written.subscribe();
        drop(h);
        LogReader {
            log: self.clone(),
            written,
            next,
        }
    }

    /// Waits for a line matching `pattern` (history first, then new lines) until `stop`
    /// fires; `None` when stopped.
    pub async fn wait_for(
        self: &Arc<Self>,
        pattern: &Regex,
        stop: impl Future<Output = ()>,
    ) -> Option<String> {
        let mut reader = self.reader(ReadFrom::Start);
        tokio::pin!(stop);
        loop {
            // What is written already is read first, a bounded batch at a time, so that a
            // flood of lines can neither starve `stop` nor hide a line written before it.
            for _ in 0..SCAN_BATCH {
                let Some(line) = reader.try_next() else { break };
                if pattern.is_match(&line) {
                    return Some(line.to_string());
                }
            }
            tokio::select! {
                biased;
                _ = &mut stop => return None,
                line = reader.next() => {
                    if pattern.is_match(&line) {
                        return Some(line.to_string());
                    }
                }
            }
        }
    }
}

/// Follows one [`OutputLog`]: each line once, in order, read lazily from the history.
#[derive(Debug)]
pub struct LogReader {
    log: Arc<OutputLog>,
    written: watch::Receiver<u64>,
    /// The number of the next line to read.
    next: u64,
}

impl LogReader {
    /// The next line if it has been written; lines the history dropped before this reader
    /// got to them are skipped.
    pub fn try_next(&mut self) -> Option<Arc<str>> {
        let h = self.log.history();
        self.next = self.next.max(h.first);
        let line = h.lines.get((self.next - h.first) as usize)?.clone();
        self.next += 1;
        Some(line)
    }

    /// The next line, waiting for it to be written. Cancel-safe: dropped before it returns,
    /// it has consumed nothing.
    pub async fn next(&mut self) -> Arc<str> {
        loop {
            self.written.borrow_and_update();
            if let Some(line) = self.try_next() {
                return line;
            }
            // The sender lives in the log this reader holds: the channel never closes.
            if self.written.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The log this reader follows.
    pub fn log(&self) -> &Arc<OutputLog> {
        &self.log
    }
}

/// A read-only, cloneable window on one process run, handed to its verifier.
#[derive(Clone)]
pub struct ProcessView {
    state: watch::Receiver<ProcState>,
    output: Arc<OutputLog>,
    shutdown: CancellationToken,
    log: LogSink,
}

impl ProcessView {
    /// Builds a view; the supervisor keeps the sending side of `state` and writes `output`.
    pub fn new(
        state: watch::Receiver<ProcState>,
        output: Arc<OutputLog>,
        shutdown: CancellationToken,
        log: LogSink,
    ) -> Self {
        ProcessView {
            state,
            output,
            shutdown,
            log,
        }
    }

    /// The process's state now.
    pub fn state(&self) -> ProcState {
        *self.state.borrow()
    }

    /// The process's state, to wait on its changes (its end, say).
    pub fn state_receiver(&self) -> watch::Receiver<ProcState> {
        self.state.clone()
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
        self.output
            .wait_for(pattern, self.output_wait_ends(timeout))
            .await
    }

    /// The process's output, for a reader that scans it its own way (the verifier runtime
    /// scans off the async threads, charged to the guest).
    pub fn output(&self) -> &Arc<OutputLog> {
        &self.output
    }

    /// Resolves when a wait for output should give up: after `timeout`, at shutdown, or
    /// shortly after the process ended (its last output may still be draining when the exit
    /// is seen).
    pub async fn output_wait_ends(&self, timeout: Duration) {
        let mut state = self.state.clone();
        tokio::select! {
            _ = tokio::time::sleep(timeout) => {}
            _ = self.shutdown.cancelled() => {}
            _ = async {
                let _ = state.wait_for(|s| s.has_ended()).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            } => {}
        }
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
    pub fn detached(state: ProcState) -> (Self, watch::Sender<ProcState>, Arc<OutputLog>) {
        let (tx, rx) = watch::channel(state);
        let out = Arc::new(OutputLog::new());
        let view = ProcessView::new(
            rx,
            out.clone(),
            CancellationToken::new(),
            Arc::new(|_, _| {}),
        );
        (view, tx, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(n: usize) -> Arc<OutputLog> {
        let log = Arc::new(OutputLog::new());
        for i in 0..n {
            log.push(&format!("l{i}"));
        }
        log
    }

    fn drain(r: &mut LogReader) -> Vec<String> {
        std::iter::from_fn(|| r.try_next().map(|l| l.to_string())).collect()
    }

    #[test]
    fn a_reader_starts_where_asked_and_sees_each_line_once() {
        let log = log_with(5);
        assert_eq!(drain(&mut log.reader(ReadFrom::Tail(2))), ["l3", "l4"]);
        assert_eq!(
            drain(&mut log.reader(ReadFrom::Tail(0))),
            Vec::<String>::new()
        );
        assert_eq!(drain(&mut log.reader(ReadFrom::Tail(99))).len(), 5);
        let mut r = log.reader(ReadFrom::Start);
        assert_eq!(drain(&mut r).len(), 5);
        log.push("new");
        assert_eq!(drain(&mut r), ["new"]);
        assert!(r.try_next().is_none());
        assert_eq!(log.tail(2), ["l4", "new"]);
    }

    #[test]
    fn a_slow_reader_skips_what_the_history_dropped_and_says_how_much() {
        let log = log_with(3);
        let mut r = log.reader(ReadFrom::Start);
        assert_eq!(r.try_next().as_deref(), Some("l0"));
        for i in 3..OUTPUT_HISTORY_LINES + 10 {
            log.push(&format!("l{i}"));
        }
        let got = drain(&mut r);
        assert_eq!(got.len(), OUTPUT_HISTORY_LINES);
        assert_eq!(got[0], "l10");
        assert_eq!(log.tail(usize::MAX).len(), OUTPUT_HISTORY_LINES);
    }

    #[tokio::test]
    async fn next_waits_for_a_line_and_wait_for_matches_history_then_new_lines() {
        let log = log_with(2);
        let mut r = log.reader(ReadFrom::Tail(0));
        let writer = {
            let log = log.clone();
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                log.push("later");
            })
        };
        assert_eq!(&*r.next().await, "later");
        writer.await.unwrap();

        let re = Regex::new("^l1$").unwrap();
        assert_eq!(
            log.wait_for(&re, std::future::pending()).await.as_deref(),
            Some("l1")
        );
        let re = Regex::new("ready").unwrap();
        let waiting = {
            let log = log.clone();
            tokio::spawn(async move { log.wait_for(&re, std::future::pending()).await })
        };
        log.push("not yet");
        log.push("ready now");
        assert_eq!(waiting.await.unwrap().as_deref(), Some("ready now"));
        let never = Regex::new("never").unwrap();
        assert_eq!(log.wait_for(&never, async {}).await, None);
    }

    #[tokio::test]
    async fn a_view_sees_the_exit_and_ends_its_waits_on_shutdown() {
        let (view, state, out) = ProcessView::detached(ProcState::Running { pid: 1 });
        let exit = tokio::spawn({
            let view = view.clone();
            async move { view.wait_exit(Duration::from_secs(3600)).await }
        });
        state.send_replace(ProcState::Exited { code: 3 });
        assert_eq!(exit.await.unwrap(), Some(ProcState::Exited { code: 3 }));
        assert_eq!(view.state(), ProcState::Exited { code: 3 });
        out.push("done");
        let re = Regex::new("done").unwrap();
        assert_eq!(
            view.wait_output(&re, Duration::from_secs(3600))
                .await
                .as_deref(),
            Some("done")
        );

        let (view, _state, _) = ProcessView::detached(ProcState::Running { pid: 1 });
        view.shutdown().cancel();
        assert_eq!(view.wait_exit(Duration::from_secs(3600)).await, None);
        assert!(!view.sleep(Duration::from_secs(3600)).await);
        let re = Regex::new("x").unwrap();
        assert_eq!(view.wait_output(&re, Duration::from_secs(3600)).await, None);
    }

    #[test]
    fn legacy_codes_are_minus_the_signal() {
        assert_eq!(ProcState::Signaled { signal: 9 }.legacy_code(), Some(-9));
        assert_eq!(ProcState::Exited { code: 2 }.legacy_code(), Some(2));
        assert_eq!(ProcState::NotStarted.legacy_code(), None);
        assert!(!ProcState::Running { pid: 1 }.has_ended());
    }
}
