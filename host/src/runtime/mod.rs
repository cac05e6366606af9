//! Runs verifiers as sandboxed WebAssembly components (wasmtime, WASI preview 2).
//!
//! A module is compiled once per run (in parallel, on blocking threads, cached on disk
//! between runs), linked once into a pre-instantiated component, and every call
//! (`validate`, `verify`) gets a fresh instance in a fresh store: nothing leaks from one
//! verification into the next, and a guest that traps, loops or allocates without end
//! fails alone. A guest sees nothing of the machine but the `host` interface of the WIT
//! world (`wit/verifier.wit`), whose functions live in [`host_fns`], one file per
//! capability, each checking the module's [`Grants`] first.
//!
//! Layout: [`types`] (the public vocabulary), `engine` (engine settings, epoch ticker),
//! `cache` (compiled components on disk), `state` (what a store holds), `bindings` (the
//! WIT world), [`host_fns`] (the capabilities).

mod bindings;
mod cache;
pub mod compile_child;
mod engine;
mod forbidden;
pub mod host_fns;
mod imports;
mod journal;
mod listeners;
pub mod python;
mod state;
pub mod trust;
pub mod types;

pub use cache::CacheOutcome;
pub use engine::{ASYNC_STACK_SIZE, POOL_INSTANCES};
pub use forbidden::forbid_address;
pub use types::*;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Store, UpdateDeadline};

use crate::process_view::ProcessView;
use bindings::{EXPORT_NAME, VerifierModule, VerifierModulePre};
use cache::DiskCache;
use engine::WasmEngine;
use state::{CallState, HostState, Mode, ModuleInfo, Shared};

/// Loads verifier modules once per run and runs their verifiers; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    wasm: Arc<WasmEngine>,
    linker: Linker<HostState>,
    cache: DiskCache,
    shared: Arc<Shared>,
    modules: RwLock<HashMap<String, Arc<Loaded>>>,
    /// The pymanager binary that compiles in a child process, when set (see
    /// [`compile_child`]).
    compiler: OnceLock<PathBuf>,
}

/// A module ready to run: its pre-instantiated component and what it provides.
struct Loaded {
    info: Arc<ModuleInfo>,
    pre: VerifierModulePre<HostState>,
    names: Vec<String>,
    load: LoadReport,
}

/// How one module was loaded; for the bench, the tests and `--verbose` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadReport {
    /// From the disk cache, or compiled now.
    pub outcome: CacheOutcome,
    /// Time to compile or deserialize it (on a blocking thread).
    pub compile: Duration,
    /// Size of the component (`.wasm`) in bytes.
    pub size: usize,
}

/// What a call into a guest is for.
#[derive(Clone, Copy)]
enum Call<'a> {
    Names,
    Validate(&'a str, &'a str),
    Verify(&'a str, &'a str),
}

enum Returned {
    Names(Vec<String>),
    /// The verdict, and the warnings logged on the way (validate only).
    Checked(Result<(), String>, Vec<String>),
}

impl Runtime {
    /// Sets up the engine (and its disk cache).
    pub fn new(options: RuntimeOptions) -> Result<Runtime, RuntimeError> {
        let wasm = match options.instances {
            None => WasmEngine::shared(),
            Some(n) => WasmEngine::new(n).map(Arc::new),
        }
        .map_err(|reason| RuntimeError {
            alias: "*".into(),
            reason,
        })?;
        let engine = &wasm.engine;
        let mut linker = Linker::<HostState>::new(engine);
        let linked = wasmtime_wasi::p2::add_to_linker_async(&mut linker).and_then(|()| {
            VerifierModule::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
        });
        linked.map_err(|e| RuntimeError {
            alias: "*".into(),
            reason: format!("cannot link the host functions: {e}"),
        })?;
        let cache = DiskCache::new(engine, options.cache_dir, options.cache_key);
        let shared = Arc::new(Shared {
            http: host_fns::http::Clients::new(),
            ca_files: trust::CaFiles::default(),
            ticker: wasm.ticker.clone(),
            parked: Default::default(),
        });
        Ok(Runtime {
            inner: Arc::new(Inner {
                wasm,
                linker,
                cache,
                shared,
                modules: RwLock::new(HashMap::new()),
                compiler: OnceLock::new(),
            }),
        })
    }

    /// Compiles components that are not in the disk cache in a child process: `exe` (the
    /// pymanager binary) run with a hidden subcommand fills the cache and exits, so the
    /// compiler's memory never stays with the caller. Without it (or without a cache
    /// directory, or if the child fails) components are compiled in this process.
    pub fn compile_in_child(&self, exe: PathBuf) {
        let _ = self.inner.compiler.set(exe);
    }

    /// Compiles (or loads from the cache) every module, in parallel, off the async threads;
    /// then asks each for its verifiers' names. The first failure is returned (each module
    /// is still tried, so one bad module does not hide another's error behind it).
    pub async fn load(&self, modules: Vec<ModuleDecl>) -> Result<(), RuntimeError> {
        let tasks: Vec<_> = modules
            .into_iter()
            .map(|decl| {
                let inner = self.inner.clone();
                let alias = decl.alias.clone();
                (
                    alias,
                    tokio::task::spawn_blocking(move || inner.prepare(decl)),
                )
            })
            .collect();
        let mut first_error = None;
        for (alias, task) in tasks {
            let prepared = match task.await {
                Ok(r) => r,
                Err(e) => Err(RuntimeError {
                    alias: alias.clone(),
                    reason: format!("compiling it failed: {e}"),
                }),
            };
            let outcome = match prepared {
                Ok(p) => self.finish_load(p).await,
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn finish_load(&self, p: Prepared) -> Result<(), RuntimeError> {
        let info = p.info.clone();
        let bound = CallBound::setup(&info.limits);
        let names = match self
            .call(
                &info,
                &p.pre,
                "names()",
                Mode::Load,
                Call::Names,
                bound,
                None,
            )
            .await
        {
            Ok(Returned::Names(n)) => n,
            Ok(Returned::Checked(..)) => unreachable!("names() returns names"),
            Err(e) => {
                return Err(RuntimeError {
                    alias: info.alias.clone(),
                    reason: format!("asking it for its verifiers failed: {}", e.0),
                });
            }
        };
        let loaded = Loaded {
            info: p.info,
            pre: p.pre,
            names,
            load: p.report,
        };
        self.inner
            .modules
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(info.alias.clone(), Arc::new(loaded));
        Ok(())
    }

    /// The verifiers a loaded module provides; `None` if no module has that alias.
    pub fn names(&self, alias: &str) -> Option<Vec<String>> {
        self.module(alias).map(|m| m.names.clone())
    }

    /// Why compiled components are not cached on disk this run (the cache directory or its
    /// key is not the user's own), for the caller to say once as a warning.
    pub fn cache_warning(&self) -> Option<&str> {
        self.inner.cache.warning()
    }

    /// How a loaded module was loaded (cache hit or compile, and how long it took).
    pub fn load_report(&self, alias: &str) -> Option<LoadReport> {
        self.module(alias).map(|m| m.load)
    }

    fn module(&self, alias: &str) -> Option<Arc<Loaded>> {
        self.inner
            .modules
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(alias)
            .cloned()
    }

    fn resolve(&self, v: &VerifierRef) -> Result<Arc<Loaded>, VerifyError> {
        let m = self.module(&v.module).ok_or_else(|| {
            VerifyError(format!("verifier {v}: module '{}' is not loaded", v.module))
        })?;
        if !m.names.contains(&v.name) {
            return Err(VerifyError(format!(
                "module '{}' has no verifier '{}' (it provides: {})",
                v.module,
                v.name,
                m.names.join(", ")
            )));
        }
        Ok(m)
    }

    /// Checks a verifier's arguments (JSON) before anything starts. The guest runs without
    /// a process: its waits return at once and it cannot reach the network. Returns the
    /// warnings the guest logged (`warn` and `error` lines: arguments it ignores, values it
    /// doubts), one line each, for the caller to show as warnings about the config.
    pub async fn validate(
        &self,
        v: &VerifierRef,
        args_json: &str,
    ) -> Result<Vec<String>, VerifyError> {
        let (verdict, warnings) = self.check(v, args_json, Mode::Validate).await?;
        verdict.map(|()| warnings).map_err(VerifyError)
    }

    /// Verifications parked at this moment: waiting (for an exit, a line, the end of a
    /// sleep) with no instance alive, see [`journal`]. For the bench and the tests.
    pub fn parked_now(&self) -> usize {
        self.inner
            .shared
            .parked
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs a verifier against a process; cancel-safe (dropping the future stops the guest).
    ///
    /// The call is bounded by the module's `limits.timeout_s` if it sets one, else by the
    /// verifier's own `timeout` argument plus a margin ([`Limits::verification_bound`]); a
    /// verifier given `"timeout": null` runs until it returns or the future is dropped.
    pub async fn verify(
        &self,
        v: &VerifierRef,
        args_json: &str,
        view: ProcessView,
    ) -> Result<(), VerifyError> {
        let (verdict, _) = self.check(v, args_json, Mode::Verify(view)).await?;
        verdict.map_err(VerifyError)
    }

    /// `validate()` or `verify()` (by `mode`): the guest's verdict and the warnings it
    /// logged. `ca_file` is taken off the arguments here; the first use reads the file (and
    /// builds its client), so that a bad one fails the load.
    async fn check(
        &self,
        v: &VerifierRef,
        args_json: &str,
        mode: Mode,
    ) -> Result<(Result<(), String>, Vec<String>), VerifyError> {
        let m = self.resolve(v)?;
        let who = v.to_string();
        let (guest_args, ca_file) = trust::split(args_json).map_err(VerifyError)?;
        let ca_file = match ca_file {
            Some(path) => Some(self.inner.shared.ca_files.get(&path).map_err(VerifyError)?),
            None => None,
        };
        let (call, bound) = match mode {
            Mode::Verify(_) => (
                Call::Verify(&v.name, &guest_args),
                m.info.limits.verification_bound(args_json),
            ),
            Mode::Validate | Mode::Load => (
                Call::Validate(&v.name, &guest_args),
                CallBound::setup(&m.info.limits),
            ),
        };
        match self
            .call(&m.info, &m.pre, &who, mode, call, bound, ca_file)
            .await?
        {
            Returned::Checked(verdict, warnings) => Ok((verdict, warnings)),
            Returned::Names(_) => unreachable!("validate() and verify() return a result"),
        }
    }

    /// One call into a fresh instance, under the module's limits; its `http-request` calls
    /// trust `ca_file` besides the system's roots. A verification that parks (see
    /// [`journal`]) runs in a fresh instance again after each parked wait, within the same
    /// bound.
    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        info: &Arc<ModuleInfo>,
        pre: &VerifierModulePre<HostState>,
        who: &str,
        mode: Mode,
        call: Call<'_>,
        bound: CallBound,
        ca_file: Option<Arc<trust::CaFile>>,
    ) -> Result<Returned, VerifyError> {
        let shared = &self.inner.shared;
        let _running = shared.ticker.running();
        let deadline = bound
            .limit()
            .map(|limit| tokio::time::Instant::now() + limit);
        let mut state = CallState::new(info, mode, ca_file);
        loop {
            let mut live = self.instance(info, state);
            let outcome = within(deadline, self.run(&mut live, info, pre, call)).await;
            let parked = live.data_mut().parked.take();
            if let (Ok(Err(_)), Some(wait)) = (&outcome, parked) {
                state = live.into_data().call;
                match within(deadline, wait.wait(&mut state, shared)).await {
                    Ok(Ok(answer)) => {
                        state.journal.resume(answer);
                        continue;
                    }
                    Ok(Err(e)) => {
                        host_fns::log::report_dropped(&mut state, true);
                        let why = if state.cpu.exceeded {
                            cpu_exceeded(who, &info.limits)
                        } else {
                            format!("verifier {who} crashed: {e}")
                        };
                        return Err(VerifyError(why));
                    }
                    Err(_) => {
                        host_fns::log::report_dropped(&mut state, true);
                        return Err(VerifyError(bound.exceeded(who)));
                    }
                }
            }
            host_fns::log::report_dropped(&mut live.data_mut().call, true);
            return match outcome {
                Ok(Ok(r)) => Ok(r),
                Ok(Err(e)) => Err(VerifyError(describe_failure(
                    who,
                    &info.limits,
                    live.data(),
                    &e,
                ))),
                Err(_) => Err(VerifyError(bound.exceeded(who))),
            };
        }
    }

    /// A store for one instance of `call`: its memory capped, its CPU time metered by
    /// epoch ticks.
    fn instance(&self, info: &Arc<ModuleInfo>, call: CallState) -> Live {
        let inner = &self.inner;
        let state = HostState::new(info.clone(), inner.shared.clone(), call);
        let mut store = Store::new(&inner.wasm.engine, state);
        store.limiter(|s| &mut s.memory);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut cx| {
            if cx.data_mut().call.cpu.tick() {
                Ok(UpdateDeadline::Yield(1))
            } else {
                Err(wasmtime::format_err!("CPU time limit reached"))
            }
        });
        Live {
            store: Some(store),
            wasm: inner.wasm.clone(),
        }
    }

    /// Instantiates the component in `live` and makes `call`. When the instance pool is
    /// full, the instantiation waits for an instance to end (in a fresh store: a failed
    /// instantiation may hold some of the pool's slots until its store goes).
    async fn run(
        &self,
        live: &mut Live,
        info: &Arc<ModuleInfo>,
        pre: &VerifierModulePre<HostState>,
        call: Call<'_>,
    ) -> wasmtime::Result<Returned> {
        let instance = loop {
            let ended = self.inner.wasm.next_end();
            match pre.instantiate_async(&mut **live).await {
                Ok(instance) => break instance,
                Err(e) if engine::pool_full(&e) => {
                    let placeholder = CallState::new(info, Mode::Load, None);
                    let state = std::mem::replace(&mut live.data_mut().call, placeholder);
                    // Not an end another waiter waits for: it would wake them all to try,
                    // fail and wake each other in turn.
                    live.store = None;
                    *live = self.instance(info, state);
                    ended.await;
                }
                Err(e) => return Err(e.context(COULD_NOT_START)),
            }
        };
        let store = &mut **live;
        let guest = instance.pymanager_verifier_verifier();
        Ok(match call {
            Call::Names => Returned::Names(guest.call_names(&mut *store).await?),
            Call::Validate(name, args) => {
                let r = guest.call_validate(&mut *store, name, args).await?;
                Returned::Checked(r, std::mem::take(&mut store.data_mut().warnings))
            }
            Call::Verify(name, args) => Returned::Checked(
                guest.call_verify(&mut *store, name, args).await?,
                Vec::new(),
            ),
        })
    }
}

/// The store of one live instance; when it goes, a call waiting for a slot of the
/// instance pool is told.
struct Live {
    store: Option<Store<HostState>>,
    wasm: Arc<WasmEngine>,
}

impl Live {
    /// The store's data, the store (and its instance) gone.
    fn into_data(mut self) -> HostState {
        let store = self.store.take().expect("a live store");
        let data = store.into_data();
        self.wasm.instance_ended();
        data
    }
}

impl std::ops::Deref for Live {
    type Target = Store<HostState>;
    fn deref(&self) -> &Store<HostState> {
        self.store.as_ref().expect("a live store")
    }
}

impl std::ops::DerefMut for Live {
    fn deref_mut(&mut self) -> &mut Store<HostState> {
        self.store.as_mut().expect("a live store")
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            drop(store);
            self.wasm.instance_ended();
        }
    }
}

/// `fut`, cut at `deadline` if there is one.
async fn within<F: std::future::Future>(
    deadline: Option<tokio::time::Instant>,
    fut: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, fut).await,
        None => Ok(fut.await),
    }
}

fn cpu_exceeded(who: &str, limits: &Limits) -> String {
    format!(
        "verifier {who} ran longer than {} of CPU time",
        human_duration(limits.cpu_time)
    )
}

/// Context of an instantiation failure (e.g. every pooled instance slot is in use).
const COULD_NOT_START: &str = "instantiating the component failed";

/// Turns a guest failure into one line: the limit it hit, or how it crashed.
fn describe_failure(who: &str, limits: &Limits, st: &HostState, e: &wasmtime::Error) -> String {
    if st.memory.hit {
        return format!(
            "verifier {who} exceeded its memory limit of {}",
            human_bytes(limits.memory_bytes)
        );
    }
    if st.call.cpu.exceeded {
        return cpu_exceeded(who, limits);
    }
    if e.to_string() == COULD_NOT_START {
        let root = e.chain().last().map(|c| c.to_string()).unwrap_or_default();
        return format!("verifier {who} could not start: {root}");
    }
    let trap = e
        .downcast_ref::<wasmtime::Trap>()
        .map(|t| t.to_string())
        .unwrap_or_else(|| {
            let mut text = e.to_string();
            if let Some(root) = e.chain().last() {
                let root = root.to_string();
                if root != text {
                    text = format!("{text}: {root}");
                }
            }
            text
        });
    match st.stderr_tail() {
        Some(said) => format!("verifier {who} crashed ({trap}): {said}"),
        None => format!("verifier {who} crashed: {trap}"),
    }
}

/// `64 MiB`, `1.5 GiB`, `512 KiB`, `100 bytes`.
pub fn human_bytes(n: usize) -> String {
    const UNITS: &[(usize, &str)] = &[(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for &(size, unit) in UNITS {
        if n >= size {
            return if n.is_multiple_of(size) {
                format!("{} {unit}", n / size)
            } else {
                format!("{:.1} {unit}", n as f64 / size as f64)
            };
        }
    }
    format!("{n} bytes")
}

/// `5 s`, `1 h`, `1.5 s`, `250 ms`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() == 0 && s >= 3600 && s.is_multiple_of(3600) {
        format!("{} h", s / 3600)
    } else if d.subsec_nanos() == 0 && s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else if d >= Duration::from_secs(1) {
        if d.subsec_millis() == 0 {
            format!("{s} s")
        } else {
            format!("{:.1} s", d.as_secs_f64())
        }
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// A module compiled and linked, before its names are asked for.
struct Prepared {
    info: Arc<ModuleInfo>,
    pre: VerifierModulePre<HostState>,
    report: LoadReport,
}

impl Inner {
    /// Reads, checks, compiles (or loads from the cache) and links one module. Blocking.
    fn prepare(&self, decl: ModuleDecl) -> Result<Prepared, RuntimeError> {
        let fail = |reason: String| RuntimeError {
            alias: decl.alias.clone(),
            reason,
        };
        let (bytes, what): (std::borrow::Cow<'static, [u8]>, String) = match &decl.source {
            ModuleSource::Builtin(b) => ((*b).into(), "the built-in component".into()),
            ModuleSource::File(path) => (
                std::fs::read(path)
                    .map_err(|e| {
                        fail(format!("cannot read {}: {}", path.display(), io_reason(&e)))
                    })?
                    .into(),
                path.display().to_string(),
            ),
            ModuleSource::Python(module) => (
                python::build(module, &decl.alias, decl.limits.memory_bytes, &self.cache)
                    .map_err(fail)?
                    .into(),
                module.root.display().to_string(),
            ),
        };
        check_header(&bytes, &what).map_err(fail)?;
        imports::check(&bytes, &what).map_err(fail)?;
        let started = Instant::now();
        let (component, outcome) = match self.cache.load(&self.wasm.engine, &bytes) {
            Some(c) => (c, CacheOutcome::Hit),
            None => (
                self.compile_apart(&bytes).map_err(|e| {
                    fail(format!(
                        "{what} is not a valid component: {}",
                        crate::error_text::chain(e.as_ref())
                    ))
                })?,
                CacheOutcome::Compiled,
            ),
        };
        let compile = started.elapsed();
        let pre = self.link(&component, &what).map_err(fail)?;
        Ok(Prepared {
            info: Arc::new(ModuleInfo {
                alias: decl.alias,
                grants: decl.grants,
                limits: decl.limits,
            }),
            pre,
            report: LoadReport {
                outcome,
                compile,
                size: bytes.len(),
            },
        })
    }

    /// Compiles `bytes` so that the manager keeps no more memory than a cache hit would.
    /// Compiling a 12–18 MB component (an interpreter inside) leaves hundreds of MB behind:
    /// the compiler's contexts, which an engine keeps for its life, its freed scratch
    /// memory, which the allocator keeps, and the machine code in anonymous memory. So,
    /// when a compiling child is set and there is a disk cache, a child process compiles
    /// into the cache and the result is mapped from there, as a hit would be. Otherwise the
    /// compile runs on an engine of its own (same settings, so the same cache key), which
    /// is dropped with everything it holds; the freed heap is handed back to the system
    /// (`malloc_trim`); and the result is mapped from the cache entry just written (or
    /// deserialized from memory when there is no cache).
    fn compile_apart(&self, bytes: &[u8]) -> wasmtime::Result<Component> {
        if let (Some(exe), Some((dir, key))) = (self.compiler.get(), self.cache.location())
            && compile_child::compile(exe, dir, key, bytes).is_ok()
            && let Some(c) = self.cache.load(&self.wasm.engine, bytes)
        {
            release_free_heap();
            return Ok(c);
        }
        let serialized = {
            let compiler = engine::compiler().map_err(wasmtime::Error::msg)?;
            let (component, _) = self.cache.load_or_compile(&compiler, bytes)?;
            component.serialize()?
        };
        release_free_heap();
        if let Some(c) = self.cache.load(&self.wasm.engine, bytes) {
            return Ok(c);
        }
        // SAFETY: these bytes were serialized just now by an engine of the same settings.
        unsafe { Component::deserialize(&self.wasm.engine, &serialized) }
    }

    fn link(
        &self,
        component: &Component,
        what: &str,
    ) -> Result<VerifierModulePre<HostState>, String> {
        let pre = self.linker.instantiate_pre(component).map_err(|e| {
            format!(
                "{what} imports something pymanager does not provide ({}); a verifier may \
                 import only pymanager:verifier/host and probe (@1.0 or @1.1) and WASI 0.2",
                crate::error_text::chain(e.as_ref())
            )
        })?;
        VerifierModulePre::new(pre).map_err(|e| {
            format!(
                "{what} does not export {EXPORT_NAME} ({}); build it against pymanager's \
                 wit/ world 'verifier-module'",
                crate::error_text::chain(e.as_ref())
            )
        })
    }
}

/// Returns the allocator's free memory to the system (glibc keeps freed blocks of every
/// thread's arena for reuse; after a compile that is hundreds of MB never reused).
fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Refuses what is not a component before handing it to the compiler, with the reason a
/// user can act on.
fn check_header(bytes: &[u8], what: &str) -> Result<(), String> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(format!("{what} is not a WebAssembly file"));
    }
    match bytes[4..8] {
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        [0x01, 0x00, 0x00, 0x00] => Err(format!(
            "{what} is not a WebAssembly component (a core module? build it for \
             wasm32-wasip2, or wrap it with 'wasm-tools component new')"
        )),
        _ => Err(format!(
            "{what} is a WebAssembly file of an unknown version (expected a component)"
        )),
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process_view::ProcState;

    fn good() -> ModuleDecl {
        ModuleDecl {
            alias: "good".into(),
            source: ModuleSource::File(env!("PYMANAGER_TEST_GUEST_GOOD").into()),
            grants: Grants {
                hosts: HostGrants::none(),
            },
            limits: Limits::default(),
        }
    }

    /// A verification dropped while its guest waits in a host call must leave the epoch
    /// ticker idle: otherwise an idle pymanager would tick 100 times a second forever.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_dropped_verification_leaves_the_ticker_idle() {
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime::new(RuntimeOptions {
            cache_dir: Some(dir.path().join("cache")),
            cache_key: Some(dir.path().join("key")),
            // An engine of its own: its ticker counts only this test's guests.
            instances: Some(8),
        })
        .unwrap();
        rt.load(vec![good()]).await.unwrap();
        let (view, _tx, _) = ProcessView::detached(ProcState::Running { pid: 1 });
        let v = VerifierRef {
            module: "good".into(),
            name: "WaitEnd".into(),
        };
        let cut = tokio::time::timeout(
            Duration::from_millis(300),
            rt.verify(&v, r#"{"timeout": 60}"#, view),
        )
        .await;
        assert!(cut.is_err(), "WaitEnd returned while the process runs");
        assert_eq!(rt.inner.wasm.ticker.running_now(), 0);
    }

    #[test]
    fn a_verification_is_bounded_by_its_own_timeout_unless_the_module_says_otherwise() {
        let follow = Limits::default();
        let bound = |args: &str| follow.verification_bound(args);
        let args = |s: u64| CallBound::Arguments {
            timeout: Duration::from_secs(s),
        };
        assert_eq!(bound(r#"{"timeout": 5}"#), args(5));
        assert_eq!(
            bound(r#"{"timeout": 5}"#).limit(),
            Some(Duration::from_secs(15))
        );
        assert_eq!(bound(r#"{"timeout": "7"}"#), args(7));
        assert_eq!(bound(r#"{"url": "x"}"#), args(30));
        assert_eq!(bound("{}"), args(30));
        assert_eq!(bound(r#"{"timeout": -1}"#), args(0));
        assert_eq!(bound(r#"{"timeout": null}"#), CallBound::Unbounded);
        assert_eq!(bound(r#"{"timeout": 1e300}"#), CallBound::Unbounded);
        assert_eq!(CallBound::Unbounded.limit(), None);
        let fixed = Limits {
            call_timeout: Some(Duration::from_secs(2)),
            ..Limits::default()
        };
        assert_eq!(
            fixed.verification_bound(r#"{"timeout": null}"#),
            CallBound::Module(Duration::from_secs(2))
        );
        assert_eq!(
            args(30).exceeded("m.V"),
            "verifier m.V did not finish within 40 s (its timeout of 30 s plus 10 s)"
        );
        assert_eq!(CallBound::setup(&follow).limit(), Some(SETUP_CALL_TIMEOUT));
    }

    #[test]
    fn sizes_and_durations_read_as_written() {
        assert_eq!(human_bytes(64 << 20), "64 MiB");
        assert_eq!(human_bytes(1536 << 20), "1.5 GiB");
        assert_eq!(human_duration(Duration::from_secs(5)), "5 s");
        assert_eq!(human_duration(Duration::from_secs(3600)), "1 h");
        assert_eq!(human_duration(Duration::from_millis(300)), "300 ms");
    }
}
