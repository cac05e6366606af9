//! One call into a guest: a fresh instance from the module's pre-instantiated component,
//! in a fresh store, under the module's limits (memory cap, CPU budget by epoch ticks, a
//! wall-clock bound); a call that parks (see [`super::journal`]) is carried on in a fresh
//! instance after each parked wait.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use wasmtime::{Store, UpdateDeadline};

use super::bindings::VerifierModulePre;
use super::engine::{self, WasmEngine};
use super::failure::{COULD_NOT_START, cpu_exceeded, describe_failure};
use super::host_fns;
use super::host_fns::context::{CallState, Mode, Stop};
use super::host_fns::http::Clients;
use super::store::StoreData;
use super::trust::CaFile;
use super::types::{CallBound, ModuleInfo, VerifyError};

/// What a call into a guest is for.
#[derive(Clone, Copy)]
pub(crate) enum Call<'a> {
    Names,
    Validate(&'a str, &'a str),
    Verify(&'a str, &'a str),
}

pub(crate) enum Returned {
    Names(Vec<String>),
    /// The verdict, and the warnings logged on the way (validate only).
    Checked(Result<(), String>, Vec<String>),
}

/// Makes calls into guests: the engine (its pool and ticker) and what every call shares.
pub(crate) struct Calls {
    wasm: Arc<WasmEngine>,
    http: Arc<Clients>,
    /// Verifications parked now (waiting with no instance alive).
    parked: AtomicUsize,
}

impl Calls {
    /// Calls on `wasm`, whose HTTP requests go through `http`.
    pub(crate) fn new(wasm: Arc<WasmEngine>, http: Arc<Clients>) -> Calls {
        Calls {
            wasm,
            http,
            parked: AtomicUsize::new(0),
        }
    }

    /// The epoch ticker of the engine (for tests: its count of running guests).
    #[cfg(test)]
    pub(crate) fn ticker(&self) -> &engine::Ticker {
        &self.wasm.ticker
    }

    /// Verifications parked at this moment.
    pub(crate) fn parked_now(&self) -> usize {
        self.parked.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One call into a fresh instance, under the module's limits; its `http-request` calls
    /// trust `ca_file` besides the system's roots. A verification that parks (see
    /// [`journal`]) runs in a fresh instance again after each parked wait, within the same
    /// bound.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn call(
        &self,
        info: &Arc<ModuleInfo>,
        pre: &VerifierModulePre<StoreData>,
        who: &str,
        mode: Mode,
        call: Call<'_>,
        bound: CallBound,
        ca_file: Option<Arc<CaFile>>,
    ) -> Result<Returned, VerifyError> {
        let _running = self.wasm.ticker.running();
        let deadline = bound
            .limit()
            .map(|limit| tokio::time::Instant::now() + limit);
        let mut state = CallState::new(info, mode, ca_file);
        loop {
            let mut live = self.instance(info, state);
            let outcome = within(deadline, self.run(&mut live, info, pre, call)).await;
            let stop = live.data_mut().host.stop.take();
            let failed = match (&outcome, &stop) {
                (Ok(Err(_)), Some(Stop::Diverged(why))) => Some(format!("verifier {who} {why}")),
                (Ok(Err(_)), Some(Stop::Ended(line))) => Some(line.clone()),
                // Passed, but the process has ended and the verifier never looked.
                (Ok(Ok(Returned::Checked(Ok(()), _))), _) => {
                    host_fns::unseen_end(&live.data().host)
                }
                _ => None,
            };
            if let Some(why) = failed {
                host_fns::log::report_dropped(&mut live.data_mut().host.call, true);
                return Err(VerifyError(why));
            }
            if let (Ok(Err(_)), Some(Stop::Park(wait))) = (&outcome, stop) {
                state = live.into_data().host.call;
                let Some(view) = state.view().cloned() else {
                    return Err(VerifyError(format!(
                        "verifier {who} waited with no process to wait on"
                    )));
                };
                let waited = wait.wait(
                    view,
                    state.saw_end,
                    &mut state.cpu,
                    &self.wasm.ticker,
                    &self.parked,
                );
                match within(deadline, waited).await {
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
            host_fns::log::report_dropped(&mut live.data_mut().host.call, true);
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
        let state = StoreData::new(
            info.clone(),
            call,
            self.wasm.ticker.clone(),
            self.http.clone(),
        );
        let mut store = Store::new(&self.wasm.engine, state);
        store.limiter(|s| &mut s.memory);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut cx| {
            if cx.data_mut().host.call.cpu.tick() {
                Ok(UpdateDeadline::Yield(1))
            } else {
                Err(wasmtime::format_err!("CPU time limit reached"))
            }
        });
        Live {
            store: Some(store),
            wasm: self.wasm.clone(),
        }
    }

    /// Instantiates the component in `live` and makes `call`. When the instance pool is
    /// full, the instantiation waits for an instance to end (in a fresh store: a failed
    /// instantiation may hold some of the pool's slots until its store goes).
    async fn run(
        &self,
        live: &mut Live,
        info: &Arc<ModuleInfo>,
        pre: &VerifierModulePre<StoreData>,
        call: Call<'_>,
    ) -> wasmtime::Result<Returned> {
        let instance = loop {
            let ended = self.wasm.next_end();
            match pre.instantiate_async(&mut **live).await {
                Ok(instance) => break instance,
                Err(e) if engine::pool_full(&e) => {
                    let placeholder = CallState::new(info, Mode::Load, None);
                    let state = std::mem::replace(&mut live.data_mut().host.call, placeholder);
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
                Returned::Checked(r, std::mem::take(&mut store.data_mut().host.warnings))
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
    store: Option<Store<StoreData>>,
    wasm: Arc<WasmEngine>,
}

impl Live {
    /// The store's data, the store (and its instance) gone.
    fn into_data(mut self) -> StoreData {
        let store = self.store.take().expect("a live store");
        let data = store.into_data();
        self.wasm.instance_ended();
        data
    }
}

impl std::ops::Deref for Live {
    type Target = Store<StoreData>;
    fn deref(&self) -> &Store<StoreData> {
        self.store.as_ref().expect("a live store")
    }
}

impl std::ops::DerefMut for Live {
    fn deref_mut(&mut self) -> &mut Store<StoreData> {
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
