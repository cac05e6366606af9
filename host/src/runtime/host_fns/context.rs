//! What the `host` and `probe` interfaces hold: per instance ([`HostCtx`]), and per call
//! ([`CallState`], which outlives each instance a parked call runs in).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::engine::{TICK, Ticker};
use super::super::journal::Journal;
use super::super::trust::CaFile;
use super::super::types::ModuleInfo;
use super::budget::{CpuMeter, LogBudget};
use super::http::Clients;
use super::park::Parked;
use crate::process_view::ProcessView;

/// Why a guest is being called: decides what the host functions may do.
pub(crate) enum Mode {
    /// `names()` at load: no process, nothing may wait or reach out.
    Load,
    /// `validate()`: no process; waits return at once, HTTP and TCP are refused.
    Validate,
    /// `verify()` against this process.
    Verify(ProcessView),
}

/// Why the host stopped a guest in the middle of a host call.
pub(crate) enum Stop {
    /// To park this wait (see `runtime::journal`).
    Park(Parked),
    /// To end the call because its replays kept differing: what the verifier did, worded
    /// to follow `verifier <module>.<name>`.
    Diverged(String),
    /// To end the call because the process ended and the verifier went on without
    /// looking: the whole line (`redis exited with code 1 before it was verified`).
    Ended(String),
}

/// The state of the verifier's host interfaces in one instance.
pub(crate) struct HostCtx {
    /// What outlives this instance: the call's mode, budgets, clock and journal.
    pub call: CallState,
    /// Who is calling: its grants (HTTP, TCP) and limits.
    pub module: Arc<ModuleInfo>,
    /// Told when the guest waits in a host call (its CPU is not counted then).
    pub ticker: Arc<Ticker>,
    /// The HTTP clients every call shares (their connection pools).
    pub http: Arc<Clients>,
    /// Warnings the guest logged while validating (its `warn` and `error` lines).
    pub warnings: Vec<String>,
    /// Why the host stopped the guest, when it did (the error the guest unwound with
    /// says only that it was stopped).
    pub stop: Option<Stop>,
    /// The call's CPU ticks when this instance started.
    ticks_at_start: u64,
}

impl HostCtx {
    /// The interfaces' state for an instance running `call` for `module`.
    pub(crate) fn new(
        call: CallState,
        module: Arc<ModuleInfo>,
        ticker: Arc<Ticker>,
        http: Arc<Clients>,
    ) -> HostCtx {
        HostCtx {
            ticks_at_start: call.cpu.ticks,
            call,
            module,
            ticker,
            http,
            warnings: Vec::new(),
            stop: None,
        }
    }

    /// True if a live wait of `timeout` should park: the journal allows it, and what the
    /// guest computed in this instance — what a replay would compute again, charged to its
    /// budget — fits four times in what is left of its CPU budget. So a guest that computes
    /// before it waits stays live before replays eat its budget, and one that was merely
    /// caught by a tick or two (on a loaded machine a tick lands on any guest now and then)
    /// still parks.
    pub(crate) fn may_park(&self, timeout: Duration) -> bool {
        let ticks = u32::try_from(self.call.cpu.ticks - self.ticks_at_start).unwrap_or(u32::MAX);
        let replay = TICK.saturating_mul(ticks);
        self.call.journal.should_park(timeout)
            && replay.saturating_mul(REPLAYS_LEFT) <= self.call.cpu.left()
    }

    /// The process, when verifying.
    pub(crate) fn view(&self) -> Option<&ProcessView> {
        self.call.view()
    }
}

/// How many more replays of its work a guest's CPU budget must hold for a wait to park.
const REPLAYS_LEFT: u32 = 4;

/// The part of a call that outlives each instance it runs in: a parked verification keeps
/// only this (and its journal's answers) while it waits.
pub(crate) struct CallState {
    pub mode: Mode,
    pub cpu: CpuMeter,
    /// What the guest's `log` lines may still use in this call.
    pub log_budget: LogBudget,
    /// When the call started: `elapsed-ms` counts from here, across parks.
    pub started: Instant,
    /// The CA file the verifier's `ca_file` names: its `https://` requests trust it besides
    /// the system's roots.
    pub ca_file: Option<Arc<CaFile>>,
    pub journal: Journal,
    /// True once `process-state` or `wait-exit` has answered with the process's end: from
    /// then on the verifier may go on after it (see `host_fns`).
    pub saw_end: bool,
    /// The holder `port-owned` found last: (socket inode, pid).
    pub holder: Option<(u64, u32)>,
}

impl CallState {
    /// A call in `mode` by `module`, with nothing spent yet.
    pub(crate) fn new(module: &ModuleInfo, mode: Mode, ca_file: Option<Arc<CaFile>>) -> CallState {
        let journal = match mode {
            Mode::Verify(_) => Journal::new(),
            Mode::Load | Mode::Validate => Journal::off(),
        };
        CallState {
            mode,
            cpu: CpuMeter::new(module.limits.cpu_time),
            log_budget: LogBudget::default(),
            started: Instant::now(),
            ca_file,
            journal,
            saw_end: false,
            holder: None,
        }
    }

    /// The process, when verifying.
    pub(crate) fn view(&self) -> Option<&ProcessView> {
        match &self.mode {
            Mode::Verify(v) => Some(v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_whose_replays_would_not_fit_its_cpu_budget_waits_live() {
        let module = Arc::new(ModuleInfo::bare("m"));
        let ticker = Ticker::start(wasmtime::Engine::default());
        let new = |call| HostCtx::new(call, module.clone(), ticker.clone(), Clients::new());
        let (view, _tx, _) =
            ProcessView::detached(crate::process_view::ProcState::Running { pid: 1 });
        let mut st = new(CallState::new(&module, Mode::Verify(view), None));
        let long = Duration::from_secs(1);
        assert!(st.may_park(long));
        assert!(!st.may_park(Duration::from_millis(10)), "a short wait");
        // Caught by a tick: a replay costs ~10 ms, which the 5 s budget holds many times.
        assert!(st.call.cpu.tick());
        assert!(st.may_park(long));
        // A second of work in this instance: four replays would not fit in the 4 s left.
        for _ in 0..100 {
            assert!(st.call.cpu.tick());
        }
        assert!(!st.may_park(long));
        // The next instance (after a park elsewhere) starts counting anew.
        let st = new(st.call);
        assert!(st.may_park(long));
        ticker.stop();
    }
}
