//! Module preparation: read a component (a file, a built-in, a Python module built into
//! one), check what it is and what it imports before the compiler sees it, compile it (or
//! load it from the disk cache; a compile runs apart, see [`Loader::compile_apart`]), and
//! link it once into a pre-instantiated component.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};

use super::bindings::{EXPORT_NAME, VerifierModule, VerifierModulePre};
use super::cache::{CacheOutcome, DiskCache};
use super::engine::{self, WasmEngine};
use super::store::StoreData;
use super::types::{GrantsFrom, ModuleDecl, ModuleInfo, ModuleSource, RuntimeError};
use super::{compile_child, imports, python};

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

/// A module compiled and linked, before its names are asked for.
pub(crate) struct Prepared {
    pub info: Arc<ModuleInfo>,
    pub pre: VerifierModulePre<StoreData>,
    pub report: LoadReport,
}

/// How a module got loaded, in words: `compiled into the cache in 0.2 s`, `in the cache
/// already`.
pub fn describe_load(r: &LoadReport) -> String {
    match r.outcome {
        CacheOutcome::Compiled => format!(
            "compiled into the cache in {}",
            super::human::human_duration(r.compile)
        ),
        CacheOutcome::Hit => "in the cache already".into(),
    }
}

/// Turns module declarations into linked components, on one engine.
pub(crate) struct Loader {
    wasm: Arc<WasmEngine>,
    linker: Linker<StoreData>,
    cache: DiskCache,
    /// The pymanager binary that compiles in a child process, when set (see
    /// [`compile_child`]).
    compiler: OnceLock<PathBuf>,
    /// Where the modules' host grants are written.
    grants_from: GrantsFrom,
}

impl Loader {
    /// A loader for `wasm`, caching compiled components in `cache`. The linker gives WASI
    /// (granting nothing) and the verifier's host interfaces, each its own part of the
    /// store.
    pub(crate) fn new(
        wasm: Arc<WasmEngine>,
        cache: DiskCache,
        grants_from: GrantsFrom,
    ) -> Result<Loader, String> {
        let mut linker = Linker::<StoreData>::new(&wasm.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| {
                VerifierModule::add_to_linker::<StoreData, HasSelf<_>>(&mut linker, |s| &mut s.host)
            })
            .map_err(|e| format!("cannot link the host functions: {e}"))?;
        Ok(Loader {
            wasm,
            linker,
            cache,
            compiler: OnceLock::new(),
            grants_from,
        })
    }

    /// Compiles in a child `exe` from now on (see [`compile_child`]).
    pub(crate) fn compile_in_child(&self, exe: PathBuf) {
        let _ = self.compiler.set(exe);
    }

    /// Why compiled components are not cached on disk this run, if they are not.
    pub(crate) fn cache_warning(&self) -> Option<&str> {
        self.cache.warning()
    }

    /// Reads, checks, compiles (or loads from the cache) and links one module. Blocking.
    pub(crate) fn prepare(&self, decl: ModuleDecl) -> Result<Prepared, RuntimeError> {
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
                grants_from: self.grants_from,
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
    ) -> Result<VerifierModulePre<StoreData>, String> {
        let pre = self.linker.instantiate_pre(component).map_err(|e| {
            format!(
                "{what} imports something pymanager does not provide ({}); a verifier may \
                 import only pymanager:verifier/host and probe (@1.0 to @1.2) and WASI 0.2",
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
