//! Runs verifiers as sandboxed WebAssembly components (wasmtime, WASI preview 2).
//!
//! A module is compiled once per run (in parallel, on blocking threads, cached on disk
//! between runs), linked once into a pre-instantiated component, and every call
//! (`validate`, `verify`) gets a fresh instance in a fresh store: nothing leaks from one
//! verification into the next, and a guest that traps, loops or allocates without end
//! fails alone. A guest sees nothing of the machine but the `host` interface of the WIT
//! world (`wit/verifier.wit`), whose functions live in `host_fns`, one file per
//! capability, each checking the module's [`Grants`] first.
//!
//! Layout: this file is the facade ([`Runtime`]); [`types`] the public vocabulary; `load`
//! prepares a module (read, check, compile or load from `cache`, link); `call` makes one
//! call into a guest (instance, limits, parking); `store` is what a store holds; `failure`
//! words what went wrong; `engine` is the wasmtime engine, its instance pool and epoch
//! ticker; `bindings` the WIT world; `host_fns` the capabilities; `journal` the record
//! that lets a waiting verification park.

mod bindings;
mod cache;
mod call;
pub mod compile_child;
mod engine;
mod failure;
mod forbidden;
mod host_fns;
mod human;
mod imports;
mod journal;
mod listeners;
mod load;
pub mod python;
mod store;
pub mod trust;
pub mod types;

pub use cache::CacheOutcome;
pub use engine::{ASYNC_STACK_SIZE, POOL_INSTANCES};
pub use forbidden::forbid_address;
pub use human::{human_bytes, human_duration};
pub use load::{LoadReport, describe_load};
pub use types::*;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use crate::process_view::ProcessView;
use bindings::VerifierModulePre;
use cache::DiskCache;
use call::{Call, Calls, Returned};
use engine::WasmEngine;
use host_fns::context::Mode;
use host_fns::http::Clients;
use load::{Loader, Prepared};
use store::StoreData;

/// Loads verifier modules once per run and runs their verifiers; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    loader: Loader,
    calls: Calls,
    /// The HTTP clients and CA files every call shares.
    http: Arc<Clients>,
    modules: RwLock<HashMap<String, Arc<Loaded>>>,
}

/// A module ready to run: its pre-instantiated component and what it provides.
struct Loaded {
    info: Arc<ModuleInfo>,
    pre: VerifierModulePre<StoreData>,
    names: Vec<String>,
    load: LoadReport,
}

impl Runtime {
    /// Sets up the engine (and its disk cache).
    pub fn new(options: RuntimeOptions) -> Result<Runtime, RuntimeError> {
        let setup = |reason| RuntimeError {
            alias: "*".into(),
            reason,
        };
        let wasm = match options.instances {
            None => WasmEngine::shared(),
            Some(n) => WasmEngine::new(n).map(Arc::new),
        }
        .map_err(setup)?;
        let cache = DiskCache::new(&wasm.engine, options.cache_dir, options.cache_key);
        let loader = Loader::new(wasm.clone(), cache, options.grants_from).map_err(setup)?;
        let http = Clients::new();
        Ok(Runtime {
            inner: Arc::new(Inner {
                calls: Calls::new(wasm, http.clone()),
                loader,
                http,
                modules: RwLock::new(HashMap::new()),
            }),
        })
    }

    /// The runtime pymanager itself runs verifiers in: `options` (the user's disk cache
    /// by default), and components missing from the cache compiled by a child
    /// `pymanager` (this executable, see [`compile_child`]), so that the compiler's memory
    /// never stays with this process.
    pub fn for_pymanager(options: RuntimeOptions) -> Result<Runtime, RuntimeError> {
        let runtime = Runtime::new(options)?;
        if let Ok(exe) = std::env::current_exe() {
            runtime.compile_in_child(exe);
        }
        Ok(runtime)
    }

    /// Compiles components that are not in the disk cache in a child process: `exe` (the
    /// pymanager binary) run with a hidden subcommand fills the cache and exits, so the
    /// compiler's memory never stays with the caller. Without it (or without a cache
    /// directory, or if the child fails) components are compiled in this process.
    pub fn compile_in_child(&self, exe: PathBuf) {
        self.inner.loader.compile_in_child(exe);
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
                    tokio::task::spawn_blocking(move || inner.loader.prepare(decl)),
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
            .inner
            .calls
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
        self.inner.loader.cache_warning()
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
    /// sleep) with no instance alive, see `journal`. For the bench and the tests.
    pub fn parked_now(&self) -> usize {
        self.inner.calls.parked_now()
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
            Some(path) => Some(self.inner.http.ca_file(&path).map_err(VerifyError)?),
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
            .inner
            .calls
            .call(&m.info, &m.pre, &who, mode, call, bound, ca_file)
            .await?
        {
            Returned::Checked(verdict, warnings) => Ok((verdict, warnings)),
            Returned::Names(_) => unreachable!("validate() and verify() return a result"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process_view::ProcState;
    use std::time::Duration;

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
            ..Default::default()
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
        assert_eq!(rt.inner.calls.ticker().running_now(), 0);
    }
}
