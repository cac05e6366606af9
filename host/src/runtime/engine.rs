//! The wasmtime engine shared by every module, and the epoch ticker that bounds guest CPU.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// One epoch tick: the granularity of the CPU-time deadline.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// Size of the native stack each call into a guest runs on (a fiber, so that the call can
/// wait in an async host function). Only the pages it touches use memory.
pub const ASYNC_STACK_SIZE: usize = 2 << 20;

/// Component instances the pooling allocator keeps slots for: the most verifications that
/// can run at once (each slot is virtual address space until used).
pub(crate) const POOL_INSTANCES: u32 = 2000;

/// Builds the engine: components, async host calls, epoch interruption, and on-demand
/// instance allocation. `PYMANAGER_WASM_POOLING=1` asks for the pooling allocator instead.
///
/// Pooling halves the cost of one verification (22 µs instead of 45 µs), but its reserved
/// slots are ~4000 memory mappings, and every `fork` of the manager copies them: starting
/// 500 processes took 2.1 s of kernel time with the pool against 0.6 s without it.
pub(crate) fn new_engine() -> Result<Engine, String> {
    let pooling = std::env::var("PYMANAGER_WASM_POOLING").is_ok_and(|v| v == "1");
    if pooling {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(POOL_INSTANCES)
            .total_stacks(POOL_INSTANCES)
            // A Rust guest has 3–4 core instances (its code plus adapter shims); an
            // interpreter-in-a-component (componentize-py) has more.
            .total_core_instances(POOL_INSTANCES * 6)
            .total_memories(POOL_INSTANCES * 2)
            .total_tables(POOL_INSTANCES * 6)
            .max_memories_per_module(2)
            .max_tables_per_module(4)
            .table_elements(100_000);
        let mut config = base_config();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        if let Ok(engine) = Engine::new(&config) {
            return Ok(engine);
        }
    }
    Engine::new(&base_config()).map_err(|e| format!("cannot set up the WebAssembly engine: {e}"))
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
/// runtime (tests make many) is alive; it ends when the [`Runtime`](super::Runtime) goes.
pub(crate) struct Ticker {
    state: Mutex<TickerState>,
    wake: Condvar,
}

struct TickerState {
    /// Guests executing WebAssembly right now (not waiting in a host call). Signed so that
    /// an unbalanced guard shows up (in tests) instead of being absorbed at zero.
    running: isize,
    /// False once the runtime is dropped.
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
