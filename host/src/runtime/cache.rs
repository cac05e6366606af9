//! Compiled components on disk between runs, and the components built from Python modules.
//!
//! Loading a cached entry runs `Component::deserialize`, which maps native code and trusts it:
//! whoever can put bytes in the cache can run code outside the sandbox; and a built Python
//! component is run as it is. So the cache is used only when it is the user's own, and no
//! entry is used before it is authenticated:
//!
//! - the directory is a [`private_files::Dir`]: created 0700, and not used if it is a
//!   symbolic link, belongs to someone else or others may write to it (one warning, and
//!   every module is compiled, every Python module built, in memory);
//! - each entry carries an HMAC-SHA256 over its name (the component's SHA-256 and the
//!   engine's compatibility hash, or the build's inputs for a Python component) and its
//!   bytes, keyed with a per-user secret kept outside the cache directory (a 0600 file,
//!   see [`default_key_path`]), so that an entry copied under another name, tampered with,
//!   or restored from someone else's cache is refused and made again; it is never used.

use std::ffi::OsStr;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::mac::{TAG_LEN, hmac_sha256, same};
use crate::private_files::{self, Dir, Rule};

/// The first bytes of every entry; a file without them is not one of ours.
const MAGIC: &[u8; 8] = b"pymcw\x01\0\0";
/// Bytes of the secret key.
const KEY_LEN: usize = 32;

/// The cache directory and its key, if both are usable.
#[derive(Debug, Clone)]
pub(crate) struct DiskCache {
    store: Option<Store>,
    engine_key: String,
    /// Why there is no cache, when the user should know (said once by the caller).
    warning: Option<String>,
}

#[derive(Clone)]
struct Store {
    dir: Dir,
    /// Where the key came from, for a compiling child to read the same one.
    key_path: PathBuf,
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Store")
            .field("dir", &self.dir.path())
            .finish()
    }
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
    /// Uses `dir` (or the user's cache directory when `None`) with the key in `key` (or
    /// [`default_key_path`]); no cache if either is missing or not the user's own.
    pub(crate) fn new(engine: &Engine, dir: Option<PathBuf>, key: Option<PathBuf>) -> DiskCache {
        let mut h = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_key = format!("{:016x}", h.finish());
        let (store, warning) = match open_store(dir, key) {
            Ok(store) => (store, None),
            Err(why) => (
                None,
                Some(format!(
                    "compiled verifiers are not cached on disk this run: {why}"
                )),
            ),
        };
        DiskCache {
            store,
            engine_key,
            warning,
        }
    }

    /// Why the cache is not used, if the user should be told.
    pub(crate) fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    /// The entry's name: what its tag covers besides its bytes.
    fn name_for(&self, bytes: &[u8]) -> String {
        let hex = private_files::hex(&Sha256::digest(bytes));
        format!("{hex}-{}.cwasm", self.engine_key)
    }

    /// The compiled `bytes`: from the cache if there and authentic, else compiled (and
    /// stored). Blocking: call it from `spawn_blocking`.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let name = self.name_for(bytes);
        if let Some(store) = &self.store
            && let Some(code) = store.read(&name)
        {
            // SAFETY: `code` is exactly what this user's pymanager serialized for this
            // component under this engine: its tag, checked just above with the user's own
            // secret, covers the entry's name (component hash and engine compatibility hash)
            // and every byte. wasmtime still checks its header.
            match unsafe { Component::deserialize(engine, &code) } {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(_) => store.remove(&name),
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Some(store) = &self.store
            && let Ok(serialized) = component.serialize()
        {
            store.write(&name, &serialized);
        }
        Ok((component, CacheOutcome::Compiled))
    }
}

impl DiskCache {
    /// The cache's directory and key file, if there is a usable cache: a compiling child
    /// writes into it with the same key, and built Python components live under it too.
    pub(crate) fn location(&self) -> Option<(&Path, &Path)> {
        self.store
            .as_ref()
            .map(|s| (s.dir.path(), s.key_path.as_path()))
    }

    /// The component built from a Python module whose build inputs hash to `key`, if the
    /// cache holds an authentic one. Blocking.
    pub(crate) fn built(&self, key: &str) -> Option<Vec<u8>> {
        self.store.as_ref()?.read(&built_name(key))
    }

    /// Keeps the component built from the inputs that hash to `key` (authenticated like
    /// every entry); nothing happens without a cache. Blocking.
    pub(crate) fn keep_built(&self, key: &str, component: &[u8]) {
        if let Some(store) = &self.store {
            store.write(&built_name(key), component);
        }
    }

    /// The cached compiled `bytes`, if there is an authentic entry; never compiles.
    /// Blocking.
    pub(crate) fn load(&self, engine: &Engine, bytes: &[u8]) -> Option<Component> {
        let store = self.store.as_ref()?;
        let name = self.name_for(bytes);
        let code = store.read(&name)?;
        // SAFETY: as in `load_or_compile`: authenticated with the user's own key just now.
        match unsafe { Component::deserialize(engine, &code) } {
            Ok(c) => Some(c),
            Err(_) => {
                store.remove(&name);
                None
            }
        }
    }
}

/// The entry name of a built Python component: what its tag covers besides its bytes.
fn built_name(key: &str) -> String {
    format!("python-{key}.wasm")
}

impl Store {
    fn tag(&self, name: &str, code: &[u8]) -> [u8; TAG_LEN] {
        hmac_sha256(&self.key, &[name.as_bytes(), &[0], code])
    }

    /// The entry's code if it exists and its tag is right; a wrong one is removed.
    fn read(&self, name: &str) -> Option<Vec<u8>> {
        let mut data = self
            .dir
            .read(OsStr::new(name), Rule::Trusted, u64::MAX)
            .ok()??;
        let header = MAGIC.len() + TAG_LEN;
        let authentic = data.len() > header
            && data[..MAGIC.len()] == MAGIC[..]
            && same(&data[MAGIC.len()..header], &self.tag(name, &data[header..]));
        if !authentic {
            self.remove(name);
            return None;
        }
        data.drain(..header);
        Some(data)
    }

    fn remove(&self, name: &str) {
        self.dir.remove(OsStr::new(name));
    }

    /// Writes the entry whole, through the one temp-then-rename of [`private_files`], so a
    /// reader never sees half an entry and an entry already read by another run is never
    /// changed under it; a cache that cannot be written is not an error (the next run
    /// compiles again).
    fn write(&self, name: &str, code: &[u8]) {
        let tag = self.tag(name, code);
        let _ = self
            .dir
            .replace_parts(OsStr::new(name), &[MAGIC, &tag, code], 0o600);
    }
}

fn open_store(dir: Option<PathBuf>, key: Option<PathBuf>) -> Result<Option<Store>, String> {
    let Some(dir) = dir.or_else(default_dir) else {
        return Ok(None);
    };
    let Some(key_path) = key.or_else(default_key_path) else {
        return Ok(None);
    };
    let dir = Dir::private(&dir).map_err(|e| e.to_string())?;
    let key = load_key(&key_path)?;
    Ok(Some(Store { dir, key_path, key }))
}

/// Reads the user's cache key (a secret: the user's own, 0600, in a 0700 directory),
/// creating it the first time; two runs creating it at once agree on one.
fn load_key(path: &Path) -> Result<[u8; KEY_LEN], String> {
    let shown = path.display();
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(format!("{shown}: not a file path"));
    };
    let dir = Dir::private(parent).map_err(|e| e.to_string())?;
    let read = || -> Result<Option<[u8; KEY_LEN]>, String> {
        match dir.read(name, Rule::Secret, KEY_LEN as u64 + 1) {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => bytes
                .try_into()
                .map(Some)
                .map_err(|_| format!("{shown} is not a {KEY_LEN}-byte key; remove it")),
            Err(e) => Err(e.to_string()),
        }
    };
    if let Some(key) = read()? {
        return Ok(key);
    }
    let mut key = [0u8; KEY_LEN];
    private_files::random_bytes(&mut key)
        .map_err(|e| format!("cannot make random bytes for {shown}: {e}"))?;
    if dir.create(name, &key, 0o600).map_err(|e| e.to_string())? {
        return Ok(key);
    }
    read()?.ok_or_else(|| format!("{shown} vanished while it was made"))
}

/// `$XDG_CACHE_HOME/pymanager`, else `~/.cache/pymanager`.
fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("pymanager"))
}

/// `$XDG_STATE_HOME/pymanager/cache-key`, else `~/.local/state/pymanager/cache-key`: outside
/// the cache directory, so that a shared or restored cache never brings its own key.
pub(crate) fn default_key_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state"))
        })?;
    Some(base.join("pymanager").join("cache-key"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn a_key_others_can_read_or_that_is_a_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("cache-key");
        let key = load_key(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        assert_eq!(load_key(&path).unwrap(), key, "the key is kept");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_key(&path).unwrap_err();
        assert!(e.contains("others may read"), "{e}");

        let link = dir.path().join("state").join("link-key");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let e = load_key(&link).unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
    }

    #[test]
    fn built_components_are_kept_authenticated() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(Some(dir.path().join("cache")), Some(dir.path().join("key")))
            .unwrap()
            .unwrap();
        let cache = DiskCache {
            store: Some(store),
            engine_key: String::new(),
            warning: None,
        };
        assert_eq!(cache.built("k1"), None);
        cache.keep_built("k1", b"\0asm component");
        assert_eq!(cache.built("k1").as_deref(), Some(&b"\0asm component"[..]));
        // Planted under the name, or copied from another key: not used, and removed.
        let entry = dir.path().join("cache").join(built_name("k1"));
        std::fs::copy(&entry, dir.path().join("cache").join(built_name("k2"))).unwrap();
        assert_eq!(cache.built("k2"), None);
        std::fs::write(&entry, b"\0asm planted").unwrap();
        assert_eq!(cache.built("k1"), None);
        assert!(!entry.exists());
    }
}
