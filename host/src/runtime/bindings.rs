//! Rust bindings of the WIT world `verifier-module` (repository `wit/`), host side.
//!
//! Every import is an `async fn` on `host_fns::context::HostCtx` (the store's part for
//! these interfaces), so a verifier that waits costs a future on the tokio runtime, never
//! a thread; every export is called with `call_async`, so a guest can be paused (epoch
//! yields) and cancelled (dropping the future).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "verifier-module",
    // `wait-output` may trap: the scans it runs are charged to the guest's CPU time, and
    // a guest over its budget is stopped there like one caught computing. The three waits
    // also stop the guest to park a long wait (see `runtime::journal`), and the calls
    // that look outside the process stop it when it ended unseen (see `host_fns`).
    imports: {
        "pymanager:verifier/host.process-state": async | trappable,
        "pymanager:verifier/host.wait-exit": async | trappable,
        "pymanager:verifier/host.sleep": async | trappable,
        "pymanager:verifier/host.wait-output": async | trappable,
        "pymanager:verifier/host.http-request": async | trappable,
        "pymanager:verifier/host.tcp-connect": async | trappable,
        "pymanager:verifier/probe.wait-output": async | trappable,
        "pymanager:verifier/probe.http-request": async | trappable,
        "pymanager:verifier/probe.tcp-connect": async | trappable,
        "pymanager:verifier/probe.port-owned": async | trappable,
        default: async,
    },
    exports: { default: async },
});

/// The exported interface every module must provide, as named in error messages. A module
/// built against 1.0.0 or 1.1.0 exports `…/verifier@1.0.0` or `@1.1.0`, which wasmtime
/// finds under this name by semver (the interface is the same in every version).
pub(crate) const EXPORT_NAME: &str = "pymanager:verifier/verifier@1.2.0";
