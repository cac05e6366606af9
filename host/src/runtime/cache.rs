//! Compiled components on disk between runs, keyed by the component's SHA-256 and the
//! engine's compatibility hash (wasmtime version, CPU features, settings), so a stale entry
//! is never read: it is simply not found.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The cache directory, if one is usable.
#[derive(Debug, Clone)]
pub(crate) struct DiskCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

/// Where a compiled component came from; the bench and tests look at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Read from the disk cache.
    Hit,
    /// Compiled now (and written to the cache if there is one).
    Compiled,
}

impl DiskCache {
    /// Uses `dir`, or the user's cache directory when `None`; no cache if neither exists.
    pub(crate) fn new(engine: &Engine, dir: Option<PathBuf>) -> DiskCache {
        let dir = dir.or_else(default_dir);
        let mut h = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        DiskCache {
            dir,
            engine_key: format!("{:016x}", h.finish()),
        }
    }

    fn path_for(&self, bytes: &[u8]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let digest = Sha256::digest(bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Some(dir.join(format!("{hex}-{}.cwasm", self.engine_key)))
    }

    /// The compiled `bytes`: from the cache if there, else compiled (and stored). Blocking:
    /// call it from `spawn_blocking`.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.path_for(bytes);
        if let Some(path) = path.as_deref().filter(|p| p.is_file()) {
            // SAFETY: the file is one this function wrote (below) in the user's own cache
            // directory, under a name that includes the engine's compatibility hash; wasmtime
            // still checks its header and refuses a file from another engine.
            match unsafe { Component::deserialize_file(engine, path) } {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(_) => {
                    // Truncated or corrupt: compile again and overwrite it.
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Some(path) = path
            && let Ok(serialized) = component.serialize()
        {
            store(&path, &serialized);
        }
        Ok((component, CacheOutcome::Compiled))
    }
}

impl DiskCache {
    /// The cache's directory, if there is one (built Python components live under it too).
    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The cached compiled `bytes`, if there is a usable entry; never compiles. Blocking.
    pub(crate) fn load(&self, engine: &Engine, bytes: &[u8]) -> Option<Component> {
        let path = self.path_for(bytes)?;
        // SAFETY: as in `load_or_compile`: an entry this cache wrote, checked by wasmtime.
        unsafe { Component::deserialize_file(engine, &path) }.ok()
    }
}

/// Writes through a temporary file and a rename, so a reader never sees half a file and a
/// file already mapped by another run is never changed under it (entries are only ever
/// replaced whole, never written in place); a cache that cannot be written is not an
/// error (the next run compiles again).
fn store(path: &Path, data: &[u8]) {
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    // Unique per writer: two loads of one component (two runtimes, two processes) must
    // never write into the same temporary file.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    if std::fs::write(&tmp, data).is_ok() && std::fs::rename(&tmp, path).is_ok() {
        return;
    }
    let _ = std::fs::remove_file(&tmp);
}

fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("pymanager"))
}
