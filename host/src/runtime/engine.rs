//! The wasmtime engine the verifiers run on, with what belongs to it: the instance pool its
//! calls take their memories, tables and stacks from, and the epoch ticker that bounds
//! guest CPU.
//!
//! One engine serves every [`Runtime`](super::Runtime) of the process (wasmtime's advice:
//! engines are meant to be shared), unless a runtime asks for a pool of its own size.
//!
//! Instances come from wasmtime's pooling allocator: the address space of every slot
//! (linear memory, tables, fiber stack, instance metadata) is reserved once, and a slot is
//! reused by the next instance of the same module with its memory image still mapped and
//! the pages the last call dirtied reset with a copy ([`KEEP_RESIDENT`], found with the
//! kernel's `PAGEMAP_SCAN`) rather than handed back and faulted in again. That takes an
//! instantiate + call from ~40 µs (a fresh mapping, image and stack for each call) to
//! ~12 µs. What it costs: slots keep what their last call touched (~40 KiB each), so the
//! memory of the most instances ever alive at once stays resident; and the reservation is
//! virtual address space (~8 TiB for [`POOL_INSTANCES`], nothing resident), which a
//! process limited by `RLIMIT_AS` cannot have: it then falls back to allocating each
//! instance on demand, as `PYMANAGER_WASM_POOLING=0` asks for.

use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolConcurrencyLimitError,
    PoolingAllocationConfig,
};

/// One epoch tick: the granularity of the CPU-time deadline.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// Size of the native stack each call into a guest runs on (a fiber, so that the call can
/// wait in an async host function). Only the pages it touches use memory.
pub const ASYNC_STACK_SIZE: usize = 2 << 20;

/// Component instances alive at once in the shared pool: the most verifications that run
/// in an instance at the same moment (a parked one holds none). Past it, a new instance
/// waits for one to end (see [`WasmEngine::instance_ended`]).
pub const POOL_INSTANCES: u32 = 1000;

/// Bytes of each linear memory (and, separately, of each table) that a slot keeps
/// resident after a call: the pages the call dirtied, up to this, are reset by copying the
/// module's image over them; beyond it they are handed back to the kernel. A verifier's
/// call dirties a few pages.
pub(crate) const KEEP_RESIDENT: usize = 64 << 10;

/// Elements a table may have. Compiled interpreters have tables of tens of thousands of
/// functions; the pool reserves (virtually) this many per table slot.
const TABLE_ELEMENTS: usize = 200_000;

/// An engine with its ticker and, when it has one, its instance pool.
pub(crate) struct WasmEngine {
    pub engine: Engine,
    pub ticker: Arc<Ticker>,
    /// The pool's size in component instances; `None` when instances are allocated on
    /// demand.
    pub pool: Option<u32>,
    /// Woken when an instance ends, for a call waiting for a free slot.
    ended: tokio::sync::Notify,
}

impl WasmEngine {
    /// The engine shared by every runtime of this process that does not ask for a pool of
    /// its own, made on first use.
    pub(crate) fn shared() -> Result<Arc<WasmEngine>, String> {
        static SHARED: OnceLock<Result<Arc<WasmEngine>, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| WasmEngine::new(POOL_INSTANCES).map(Arc::new))
            .clone()
    }

    /// An engine of its own, with a pool of `instances` (on demand if `PYMANAGER_WASM_POOLING=0`
    /// or if the pool cannot be reserved).
    pub(crate) fn new(instances: u32) -> Result<WasmEngine, String> {
        let pooling = std::env::var("PYMANAGER_WASM_POOLING").map_or(true, |v| v != "0");
        let pooled = pooling
            .then(|| Engine::new(&pooled_config(instances)).ok())
            .flatten();
        let (engine, pool) = match pooled {
            Some(engine) => (engine, Some(instances)),
            None => (
                Engine::new(&base_config())
                    .map_err(|e| format!("cannot set up the WebAssembly engine: {e}"))?,
                None,
            ),
        };
        Ok(WasmEngine {
            ticker: Ticker::start(engine.clone()),
            engine,
            pool,
            ended: tokio::sync::Notify::new(),
        })
    }

    /// Says that an instance has ended, so that its slot is free again.
    pub(crate) fn instance_ended(&self) {
        if self.pool.is_some() {
            self.ended.notify_waiters();
        }
    }

    /// Waits until an instance ends, after an instantiation found the pool full. The
    /// caller creates this future before it tries, so that an end between the try and the
    /// wait is not missed.
    pub(crate) fn next_end(&self) -> tokio::sync::futures::Notified<'_> {
        self.ended.notified()
    }
}

impl Drop for WasmEngine {
    fn drop(&mut self) {
        self.ticker.stop();
    }
}

/// True when `e` says that the pool had no free slot (of instances, memories, tables or
/// stacks), which passes when another instance ends.
pub(crate) fn pool_full(e: &wasmtime::Error) -> bool {
    e.chain()
        .any(|c| c.downcast_ref::<PoolConcurrencyLimitError>().is_some())
}

/// An engine that only compiles: the same code generation settings as the runtime's (so
/// the same cache key), without a pool to reserve.
pub(crate) fn compiler() -> Result<Engine, String> {
    Engine::new(&base_config()).map_err(|e| format!("cannot set up the WebAssembly engine: {e}"))
}

/// The pooling allocator for `instances` component instances. A Rust verifier has 3–4
/// core instances (its code plus shims), one memory and a few tables; an interpreter in a
/// component has more of each, and takes more of the totals.
fn pooled_config(instances: u32) -> Config {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        .total_stacks(instances)
        .total_core_instances(instances * 4)
        .total_memories(instances * 2)
        .total_tables(instances * 4)
        .max_memories_per_module(2)
        .max_tables_per_module(4)
        .table_elements(TABLE_ELEMENTS)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto);
    let mut config = base_config();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

fn base_config() -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .parallel_compilation(true)
        .async_stack_size(ASYNC_STACK_SIZE);
    config
}

/// Advances the engine's epoch every [`TICK`] while at least one guest is executing
/// WebAssembly, and sleeps otherwise: an idle pymanager, or one whose verifiers all wait in
/// host calls, uses no CPU for it.
///
/// It is a thread rather than a tokio task so that it does not depend on which tokio
/// runtime (tests make many) is alive; it ends with its engine.
pub(crate) struct Ticker {
    state: Mutex<TickerState>,
    wake: Condvar,
}

struct TickerState {
    /// Guests executing WebAssembly right now (not waiting in a host call). Signed so that
    /// an unbalanced guard shows up (in tests) instead of being absorbed at zero.
    running: isize,
    /// False once the engine is dropped.
    alive: bool,
}

impl Ticker {
    /// Starts the ticker thread for `engine`.
    pub(crate) fn start(engine: Engine) -> Arc<Ticker> {
        let ticker = Arc::new(Ticker {
            state: Mutex::new(TickerState {
                running: 0,
                alive: true,
            }),
            wake: Condvar::new(),
        });
        let t = ticker.clone();
        std::thread::Builder::new()
            .name("pymanager-epoch".into())
            .spawn(move || t.run(engine))
            .expect("spawn the epoch ticker thread");
        ticker
    }

    fn run(&self, engine: Engine) {
        loop {
            {
                let mut st = self.lock();
                while st.alive && st.running <= 0 {
                    st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                if !st.alive {
                    return;
                }
            }
            std::thread::sleep(TICK);
            engine.increment_epoch();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TickerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, n: isize) {
        let mut st = self.lock();
        let was = st.running;
        st.running += n;
        if was <= 0 && st.running > 0 {
            self.wake.notify_one();
        }
    }

    /// Marks a guest as executing until the guard is dropped.
    pub(crate) fn running(self: &Arc<Self>) -> Running {
        self.add(1);
        Running(self.clone(), 1)
    }

    /// Marks the current guest as waiting in a host call until the guard is dropped.
    pub(crate) fn waiting(self: &Arc<Self>) -> Running {
        self.add(-1);
        Running(self.clone(), -1)
    }

    /// Guests executing WebAssembly now (for tests: it must return to 0).
    #[cfg(test)]
    pub(crate) fn running_now(&self) -> isize {
        self.lock().running
    }

    /// Stops the thread.
    pub(crate) fn stop(&self) {
        self.lock().alive = false;
        self.wake.notify_one();
    }
}

/// Undoes a [`Ticker::running`] or [`Ticker::waiting`] mark when dropped.
pub(crate) struct Running(Arc<Ticker>, isize);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.add(-self.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{Hash, Hasher};

    fn compat(engine: &Engine) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        h.finish()
    }

    /// Components compiled by the compiling engine (or a compiling child) are loaded by the
    /// pooled one from the same cache entry: the pool must not change the cache key.
    #[test]
    fn the_compiler_and_the_pooled_engine_share_their_cache_key() {
        let pooled = WasmEngine::new(4).unwrap();
        assert_eq!(pooled.pool, Some(4), "the pool could not be reserved");
        assert_eq!(compat(&pooled.engine), compat(&compiler().unwrap()));
    }
}
