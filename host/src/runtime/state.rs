//! What a store holds for one call into a guest: an empty WASI context, the memory cap,
//! the CPU budget, and the call's context (which module, which process, which mode).

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::engine::Ticker;
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
}

/// The data of one store, i.e. of one call into one fresh instance.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub stderr: MemoryOutputPipe,
    pub memory: MemoryCap,
    pub cpu_ticks: u64,
    pub cpu_exceeded: bool,
    pub module: Arc<ModuleInfo>,
    pub mode: Mode,
    pub started: Instant,
    pub shared: Arc<Shared>,
    /// The CA file the verifier's `ca_file` names: its `https://` requests trust it besides
    /// the system's roots.
    pub ca_file: Option<Arc<super::trust::CaFile>>,
    /// Warnings the guest logged while validating (its `warn` and `error` lines).
    pub warnings: Vec<String>,
}

impl HostState {
    /// A state with nothing granted through WASI: no preopened directories, no
    /// environment, no arguments, no sockets, no stdin; stdout discarded; stderr kept
    /// (bounded) for crash messages. `ca_file` is trusted by its `http-request` calls.
    pub(crate) fn new(
        module: Arc<ModuleInfo>,
        mode: Mode,
        shared: Arc<Shared>,
        ca_file: Option<Arc<super::trust::CaFile>>,
    ) -> HostState {
        let stderr = MemoryOutputPipe::new(STDERR_KEPT);
        let wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .stderr(stderr.clone())
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            stderr,
            memory: MemoryCap {
                max: module.limits.memory_bytes,
                used: 0,
                hit: false,
            },
            cpu_ticks: 0,
            cpu_exceeded: false,
            module,
            mode,
            started: Instant::now(),
            shared,
            ca_file,
            warnings: Vec::new(),
        }
    }

    /// Called on each epoch tick that found this guest executing: true while it is within
    /// its CPU budget.
    pub(crate) fn tick(&mut self) -> bool {
        self.cpu_ticks += 1;
        let spent = super::engine::TICK * u32::try_from(self.cpu_ticks).unwrap_or(u32::MAX);
        if spent > self.module.limits.cpu_time {
            self.cpu_exceeded = true;
        }
        !self.cpu_exceeded
    }

    /// The process, when verifying.
    pub(crate) fn view(&self) -> Option<&ProcessView> {
        match &self.mode {
            Mode::Verify(v) => Some(v),
            _ => None,
        }
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
        self.started.elapsed()
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

/// Caps the total linear memory of one instance and remembers when the cap was hit, so
/// that the trap that follows (a Rust guest aborts when allocation fails) is reported as
/// what it is.
#[derive(Debug)]
pub(crate) struct MemoryCap {
    max: usize,
    used: usize,
    pub hit: bool,
}

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
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Table elements are host memory too (a pointer each).
        Ok(desired <= 1_000_000)
    }
}
