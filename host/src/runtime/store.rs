//! What a store holds for one instance: the WASI context (granting nothing), the memory
//! cap, and the state of the verifier's host interfaces ([`HostCtx`]), each reached by the
//! linker through its own field.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::engine::Ticker;
use super::host_fns::context::{CallState, HostCtx};
use super::host_fns::http::Clients;
use super::journal::{MonotonicClock, WallClock};
use super::types::ModuleInfo;

/// Bytes of a guest's stderr kept to explain a crash (a Rust panic message goes there).
const STDERR_KEPT: usize = 16 << 10;

/// The data of one store, i.e. of one instance a call runs in (a parked call runs in
/// several, one after another: see [`super::journal`]).
pub(crate) struct StoreData {
    wasi: WasiCtx,
    table: ResourceTable,
    stderr: MemoryOutputPipe,
    pub memory: MemoryCap,
    pub host: HostCtx,
}

impl StoreData {
    /// A store's data with nothing granted through WASI: no preopened directories, no
    /// environment, no arguments, no sockets, no stdin; stdout discarded; stderr kept
    /// (bounded) for crash messages.
    pub(crate) fn new(
        module: Arc<ModuleInfo>,
        call: CallState,
        ticker: Arc<Ticker>,
        http: Arc<Clients>,
    ) -> StoreData {
        let stderr = MemoryOutputPipe::new(STDERR_KEPT);
        let mut wasi = WasiCtx::builder();
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .stderr(stderr.clone());
        if let Some(clock) = call.journal.clock() {
            // A replayed guest reads the clocks as they were the first time.
            clock.instance_made();
            wasi.monotonic_clock(MonotonicClock(clock.clone()))
                .wall_clock(WallClock(clock));
        }
        if let Some(seed) = call.journal.seed() {
            // And draws the random numbers it drew the first time.
            let mut master = StdRng::from_seed(seed);
            wasi.secure_random(StdRng::from_seed(master.random()))
                .insecure_random(StdRng::from_seed(master.random()))
                .insecure_random_seed(master.random());
        }
        let wasi = wasi.build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HOST_RESOURCES);
        StoreData {
            wasi,
            table,
            stderr,
            memory: MemoryCap {
                max: module.limits.memory_bytes,
                used: 0,
                table_elements: 0,
                hit: false,
            },
            host: HostCtx::new(call, module, ticker, http),
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
}

impl WasiView for StoreData {
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
    use crate::runtime::host_fns::context::Mode;

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

    #[test]
    fn a_call_holds_a_bounded_number_of_host_resources() {
        let module = Arc::new(ModuleInfo::bare("m"));
        let ticker = Ticker::start(wasmtime::Engine::default());
        let call = CallState::new(&module, Mode::Load, None);
        let mut st = StoreData::new(module, call, ticker.clone(), Clients::new());
        let table = st.ctx().table;
        let mut held = Vec::new();
        for i in 0..MAX_HOST_RESOURCES {
            held.push(table.push(i).expect("within the cap"));
        }
        assert!(table.push(0usize).is_err(), "past the cap");
        ticker.stop();
    }
}
