//! What a store holds for one call into a guest: an empty WASI context, the memory cap,
//! and the call's context (which module, which process, which mode, its CPU budget),
//! which outlives the instance when the call parks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::engine::Ticker;
use super::journal::{Journal, MonotonicClock, Parked, WallClock};
use super::types::{Grants, Limits};
use crate::process_view::ProcessView;

/// Bytes of a guest's stderr kept to explain a crash (a Rust panic message goes there).
const STDERR_KEPT: usize = 16 << 10;

/// A loaded module's identity and rights, shared by all its calls.
#[derive(Debug)]
pub(crate) struct ModuleInfo {
    pub alias: String,
    pub grants: Grants,
    pub limits: Limits,
}

/// Why a guest is being called: decides what the host functions may do.
pub(crate) enum Mode {
    /// `names()` at load: no process, nothing may wait or reach out.
    Load,
    /// `validate()`: no process; waits return at once, HTTP and TCP are refused.
    Validate,
    /// `verify()` against this process.
    Verify(ProcessView),
}

/// Things every call shares: the HTTP clients (connection pools), the CA files read, and
/// the epoch ticker.
pub(crate) struct Shared {
    pub http: super::host_fns::http::Clients,
    pub ca_files: super::trust::CaFiles,
    pub ticker: Arc<Ticker>,
    /// Verifications parked now (waiting with no instance alive).
    pub parked: std::sync::atomic::AtomicUsize,
}

/// The data of one store, i.e. of one instance a call runs in (a parked call runs in
/// several, one after another: see [`super::journal`]).
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub stderr: MemoryOutputPipe,
    pub memory: MemoryCap,
    pub module: Arc<ModuleInfo>,
    pub shared: Arc<Shared>,
    /// What outlives this instance: the call's mode, budgets, clock and journal.
    pub call: CallState,
    /// Warnings the guest logged while validating (its `warn` and `error` lines).
    pub warnings: Vec<String>,
    /// The long wait the guest asked for, when its instance was stopped to park it.
    pub parked: Option<Parked>,
    /// The call's CPU ticks when this instance started.
    ticks_at_start: u64,
}

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
    pub ca_file: Option<Arc<super::trust::CaFile>>,
    pub journal: Journal,
}

impl CallState {
    /// A call in `mode` by `module`, with nothing spent yet.
    pub(crate) fn new(
        module: &ModuleInfo,
        mode: Mode,
        ca_file: Option<Arc<super::trust::CaFile>>,
    ) -> CallState {
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

/// The CPU time a call has used, against its budget: epoch ticks that found the guest
/// executing, plus what the host spent on its behalf (scans of the output it asked for).
#[derive(Debug)]
pub(crate) struct CpuMeter {
    budget: Duration,
    ticks: u64,
    charged: Duration,
    pub exceeded: bool,
}

impl CpuMeter {
    fn new(budget: Duration) -> CpuMeter {
        CpuMeter {
            budget,
            ticks: 0,
            charged: Duration::ZERO,
            exceeded: false,
        }
    }

    /// Called on each epoch tick that found the guest executing: true while it is within
    /// its budget.
    pub(crate) fn tick(&mut self) -> bool {
        self.ticks += 1;
        self.check()
    }

    fn spent(&self) -> Duration {
        let ticks = super::engine::TICK * u32::try_from(self.ticks).unwrap_or(u32::MAX);
        ticks.saturating_add(self.charged)
    }

    fn check(&mut self) -> bool {
        if self.spent() > self.budget {
            self.exceeded = true;
        }
        !self.exceeded
    }

    /// CPU time the guest may still use in this call.
    pub(crate) fn left(&self) -> Duration {
        self.budget.saturating_sub(self.spent())
    }

    /// Charges CPU time spent on the guest's behalf outside it; false once over budget.
    pub(crate) fn charge(&mut self, spent: Duration) -> bool {
        self.charged = self.charged.saturating_add(spent);
        self.check()
    }
}

impl HostState {
    /// A state with nothing granted through WASI: no preopened directories, no
    /// environment, no arguments, no sockets, no stdin; stdout discarded; stderr kept
    /// (bounded) for crash messages.
    pub(crate) fn new(module: Arc<ModuleInfo>, shared: Arc<Shared>, call: CallState) -> HostState {
        let stderr = MemoryOutputPipe::new(STDERR_KEPT);
        let mut wasi = WasiCtx::builder();
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .stderr(stderr.clone());
        if let Some(clock) = call.journal.clock() {
            // A replayed guest reads the clocks as they were the first time.
            wasi.monotonic_clock(MonotonicClock(clock.clone()))
                .wall_clock(WallClock(clock));
        }
        let wasi = wasi.build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HOST_RESOURCES);
        HostState {
            wasi,
            table,
            stderr,
            memory: MemoryCap {
                max: module.limits.memory_bytes,
                used: 0,
                table_elements: 0,
                hit: false,
            },
            module,
            shared,
            ticks_at_start: call.cpu.ticks,
            call,
            warnings: Vec::new(),
            parked: None,
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
        let replay = super::engine::TICK.saturating_mul(ticks);
        self.call.journal.should_park(timeout)
            && replay.saturating_mul(REPLAYS_LEFT) <= self.call.cpu.left()
    }

    /// The process, when verifying.
    pub(crate) fn view(&self) -> Option<&ProcessView> {
        self.call.view()
    }

    /// The last lines the guest wrote to stderr, on one line.
    pub(crate) fn stderr_tail(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.stderr.contents()).into_owned();
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        let tail = lines[lines.len().saturating_sub(3)..].join(" ");
        (!tail.is_empty()).then(|| tail.chars().take(500).collect())
    }

    /// Time since the call started (what `elapsed-ms` reports).
    pub(crate) fn elapsed(&self) -> Duration {
        self.call.started.elapsed()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// How many more replays of its work a guest's CPU budget must hold for a wait to park.
const REPLAYS_LEFT: u32 = 4;

/// Lines a guest may log at once; past it, lines are dropped and counted.
pub(crate) const LOG_BURST: u32 = 1000;
/// Lines a second a guest may log once its burst is spent.
pub(crate) const LOG_PER_SECOND: u32 = 20;
/// How often, at most, a call's dropped lines are counted in the log while it runs.
const LOG_REPORT_EVERY: Duration = Duration::from_secs(5);

/// A token bucket for one call's `log` lines: a verifier that says what it does per attempt
/// is never cut, one that floods costs the manager a bounded number of lines (each line
/// goes to a bounded console queue; when that is full, it waits in a task of its own).
#[derive(Debug)]
pub(crate) struct LogBudget {
    tokens: f64,
    refilled: Instant,
    /// Lines dropped and not reported yet.
    dropped: u64,
    /// When dropped lines were last reported.
    reported: Instant,
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget {
            tokens: f64::from(LOG_BURST),
            refilled: Instant::now(),
            dropped: 0,
            reported: Instant::now(),
        }
    }
}

impl LogBudget {
    /// True if one more line may go out now; false (and counted) if it is dropped.
    pub(crate) fn take(&mut self) -> bool {
        let now = Instant::now();
        let earned = now.duration_since(self.refilled).as_secs_f64() * f64::from(LOG_PER_SECOND);
        self.tokens = (self.tokens + earned).min(f64::from(LOG_BURST));
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    /// The lines dropped and not reported yet, now reported: at the end of the call
    /// (`now`), else at most once every [`LOG_REPORT_EVERY`].
    pub(crate) fn take_dropped(&mut self, now: bool) -> u64 {
        if self.dropped == 0 || !(now || self.reported.elapsed() >= LOG_REPORT_EVERY) {
            return 0;
        }
        self.reported = Instant::now();
        std::mem::take(&mut self.dropped)
    }
}

/// Caps the total linear memory of one instance and remembers when the cap was hit, so
/// that the trap that follows (a Rust guest aborts when allocation fails) is reported as
/// what it is.
#[derive(Debug)]
pub(crate) struct MemoryCap {
    max: usize,
    used: usize,
    /// Elements of all the instance's tables together.
    table_elements: usize,
    pub hit: bool,
}

/// Table elements one instance may have in all its tables together.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// Host resources (streams, pollables) one call may hold at once: a verifier needs a
/// handful; one that creates them in a loop would otherwise grow the host's memory.
pub(crate) const MAX_HOST_RESOURCES: usize = 1024;

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grown = self.used.saturating_add(desired.saturating_sub(current));
        if grown > self.max {
            self.hit = true;
            return Ok(false);
        }
        self.used = grown;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Table elements are host memory too (a pointer or two each), and an instance has
        // several tables: the cap is on all of them together.
        let grown = self
            .table_elements
            .saturating_add(desired.saturating_sub(current));
        if grown > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.table_elements = grown;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_elements_are_capped_across_tables() {
        let mut cap = MemoryCap {
            max: 1 << 20,
            used: 0,
            table_elements: 0,
            hit: false,
        };
        let half = MAX_TABLE_ELEMENTS / 2;
        // Two tables of half the cap each fit; a third table of any size does not.
        assert!(cap.table_growing(0, half, None).unwrap());
        assert!(cap.table_growing(0, half, None).unwrap());
        assert!(!cap.table_growing(0, 1, None).unwrap());
        // Growing by nothing is always allowed.
        assert!(cap.table_growing(10, 10, None).unwrap());
    }

    /// A module and the shared parts of a runtime (its ticker stopped by the caller).
    fn setup() -> (Arc<ModuleInfo>, Arc<Shared>) {
        let module = Arc::new(ModuleInfo {
            alias: "m".into(),
            grants: Grants {
                hosts: super::super::types::HostGrants::none(),
            },
            limits: Limits::default(),
        });
        let shared = Arc::new(Shared {
            http: super::super::host_fns::http::Clients::new(),
            ca_files: super::super::trust::CaFiles::default(),
            ticker: Ticker::start(wasmtime::Engine::default()),
            parked: Default::default(),
        });
        (module, shared)
    }

    #[test]
    fn a_call_holds_a_bounded_number_of_host_resources() {
        let (module, shared) = setup();
        let ticker = shared.ticker.clone();
        let call = CallState::new(&module, Mode::Load, None);
        let mut st = HostState::new(module, shared, call);
        let table = st.ctx().table;
        let mut held = Vec::new();
        for i in 0..MAX_HOST_RESOURCES {
            held.push(table.push(i).expect("within the cap"));
        }
        assert!(table.push(0usize).is_err(), "past the cap");
        ticker.stop();
    }

    #[test]
    fn a_guest_whose_replays_would_not_fit_its_cpu_budget_waits_live() {
        let (module, shared) = setup();
        let ticker = shared.ticker.clone();
        let (view, _tx, _) =
            ProcessView::detached(crate::process_view::ProcState::Running { pid: 1 });
        let call = CallState::new(&module, Mode::Verify(view), None);
        let mut st = HostState::new(module.clone(), shared.clone(), call);
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
        let st = HostState::new(module, shared, st.call);
        assert!(st.may_park(long));
        ticker.stop();
    }
}
