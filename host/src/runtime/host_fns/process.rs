//! `process-state`, `wait-exit`, `wait-output`: the verified process, read-only.
//!
//! While validating there is no process: the state is `not-started` and waits return at
//! once (after checking their arguments, so `wait-output` still reports a bad pattern).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use regex::{Regex, RegexBuilder};

use super::super::bindings::pymanager::verifier::types::ProcState as WitState;
use super::budget::CpuMeter;
use super::{ErrorKind, HostError, fail};
use crate::process_view::{OUTPUT_HISTORY_LINES, ProcState, ProcessView, ReadFrom};

/// Bound on the compiled size of a guest's pattern (the regex crate's own defence).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The process's state in the form the guest sees.
pub(crate) fn to_wit_state(s: ProcState) -> WitState {
    match s {
        ProcState::NotStarted => WitState::NotStarted,
        ProcState::Running { pid } => WitState::Running(pid),
        ProcState::Exited { code } => WitState::Exited(code),
        ProcState::Signaled { signal } => WitState::Signaled(signal),
    }
}

/// How the process `name` ended, in words: `redis exited with code 1`, `redis was killed
/// by signal 9`.
pub(crate) fn describe_end(name: &str, state: ProcState) -> String {
    match state {
        ProcState::Exited {
            code: ProcState::UNKNOWN_CODE,
        } => format!(
            "{name} exited (its exit code is unknown: it is not pymanager's child, and its \
             parent reaped it before the code could be read)"
        ),
        ProcState::Exited { code } => format!("{name} exited with code {code}"),
        ProcState::Signaled { signal } => format!("{name} was killed by signal {signal}"),
        ProcState::Running { pid } => format!("{name} is running (pid {pid})"),
        ProcState::NotStarted => format!("{name} has not started"),
    }
}

/// `process-state`: `not-started` while there is no process (validating).
pub(crate) fn state(view: Option<&ProcessView>) -> WitState {
    view.map_or(WitState::NotStarted, |v| to_wit_state(v.state()))
}

/// `wait-exit`: `none` at once while there is no process.
pub(crate) async fn wait_exit(view: Option<ProcessView>, timeout: Duration) -> Option<WitState> {
    view?.wait_exit(timeout).await.map(to_wit_state)
}

/// Lines handed to one scan on a blocking thread.
const SCAN_LINES: usize = 256;
/// Bytes handed to one scan (lines are up to 64 KiB each).
const SCAN_BYTES: usize = 256 << 10;

/// Waits for an output line matching `pattern`: the history first, then new lines.
///
/// Matching runs on tokio's blocking threads, never on the async workers (a costly pattern
/// over a long history takes seconds), and its CPU time is charged to the guest: a guest
/// over its budget traps here, as it would computing.
pub(crate) async fn wait_output(
    view: Option<ProcessView>,
    cpu: &mut CpuMeter,
    pattern: &str,
    timeout: Duration,
) -> wasmtime::Result<Result<Option<String>, HostError>> {
    let re = match compile(pattern) {
        Ok(re) => re,
        Err(m) => return Ok(Err(fail(ErrorKind::BadRequest, m))),
    };
    let Some(view) = view else {
        return Ok(Ok(None));
    };
    Ok(Ok(read_until(&view, cpu, &re, timeout).await?))
}

/// Reads `view`'s output from its start until a line matches `re` (that line), the wait
/// ends (`None`: time-out, shutdown, exit), or the CPU budget is spent (an error). The
/// live call and a parked one (see `runtime::journal`) both wait here.
pub(crate) async fn read_until(
    view: &ProcessView,
    cpu: &mut CpuMeter,
    re: &Regex,
    timeout: Duration,
) -> wasmtime::Result<Option<String>> {
    let ends = view.output_wait_ends(timeout);
    tokio::pin!(ends);
    let mut reader = view.output().reader(ReadFrom::Start);
    // What was written before the call is read whatever the deadline; after that, the
    // deadline is looked at between batches, so a flood of lines cannot starve it.
    let mut before_deadline = OUTPUT_HISTORY_LINES;
    loop {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < SCAN_LINES && bytes < SCAN_BYTES {
            let Some(line) = reader.try_next() else { break };
            bytes += line.len();
            batch.push(line);
        }
        if batch.is_empty() {
            tokio::select! {
                biased;
                _ = &mut ends => return Ok(None),
                line = reader.next() => batch.push(line),
            }
        } else if before_deadline == 0 && futures::poll!(&mut ends).is_ready() {
            return Ok(None);
        }
        before_deadline = before_deadline.saturating_sub(batch.len());
        if let Some(found) = scan(cpu, re, batch).await? {
            return Ok(Some(found));
        }
    }
}

/// Matches `lines` on a blocking thread, charging the thread's CPU time to the guest; stops
/// early when the guest's budget is spent (an error: the guest is stopped) or when the
/// call is dropped.
async fn scan(
    cpu: &mut CpuMeter,
    re: &Regex,
    lines: Vec<Arc<str>>,
) -> wasmtime::Result<Option<String>> {
    let budget = cpu.left();
    if budget.is_zero() || cpu.exceeded {
        cpu.exceeded = true;
        return Err(wasmtime::format_err!("CPU time limit reached"));
    }
    let re = re.clone();
    let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
    let cancelled = cancel.0.clone();
    let (found, spent) = tokio::task::spawn_blocking(move || {
        let start = super::budget::thread_cpu_time();
        let mut spent = Duration::ZERO;
        for line in &lines {
            if re.is_match(line) {
                return (
                    Some(line.to_string()),
                    super::budget::thread_cpu_time().saturating_sub(start),
                );
            }
            spent = super::budget::thread_cpu_time().saturating_sub(start);
            if spent > budget || cancelled.load(Ordering::Relaxed) {
                break;
            }
        }
        (None, spent)
    })
    .await
    .map_err(|e| wasmtime::format_err!("scanning the output failed: {e}"))?;
    drop(cancel);
    if !cpu.charge(spent) {
        return Err(wasmtime::format_err!("CPU time limit reached"));
    }
    Ok(found)
}

/// Tells a scan on a blocking thread to stop when the call waiting for it is dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Compiles a guest's pattern; the error is one line (the regex crate's is several).
pub(crate) fn compile(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let text = e.to_string();
            let why = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("error: "))
                .map(str::to_string)
                .unwrap_or_else(|| text.lines().map(str::trim).collect::<Vec<_>>().join(" "));
            format!("invalid regular expression /{pattern}/: {why}")
        })
}
