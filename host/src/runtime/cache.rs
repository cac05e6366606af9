//! Compiled components on disk between runs.
//!
//! Loading a cached entry runs `Component::deserialize`, which maps native code and trusts it:
//! whoever can put bytes in the cache can run code outside the sandbox. So the cache is used
//! only when it is the user's own, and no entry is deserialized before it is authenticated:
//!
//! - the directory is created with mode 0700; one that is a symlink, is not owned by the
//!   user, or cannot be made 0700 is not used (one warning, and every module is compiled);
//! - each entry carries an HMAC-SHA256 over its name (the component's SHA-256 and the
//!   engine's compatibility hash) and its bytes, keyed with a per-user secret kept outside
//!   the cache directory (a 0600 file, see [`default_key_path`]), so that an entry copied
//!   under another module's name, tampered with, or restored from someone else's cache is
//!   refused and the module compiled again; it is never loaded.

use std::fs::{DirBuilder, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The first bytes of every entry; a file without them is not one of ours.
const MAGIC: &[u8; 8] = b"pymcw\x01\0\0";
/// Bytes of the authentication tag after [`MAGIC`].
const TAG_LEN: usize = 32;
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
    dir: PathBuf,
    /// Where the key came from, for a compiling child to read the same one.
    key_path: PathBuf,
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Store").field("dir", &self.dir).finish()
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
        let digest = Sha256::digest(bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
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
            .map(|s| (s.dir.as_path(), s.key_path.as_path()))
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

impl Store {
    fn tag(&self, name: &str, code: &[u8]) -> [u8; TAG_LEN] {
        let mut message = Vec::with_capacity(name.len() + 1);
        message.extend_from_slice(name.as_bytes());
        message.push(0);
        hmac_sha256(&self.key, &[&message, code])
    }

    /// The entry's code if it exists and its tag is right; a wrong one is removed.
    fn read(&self, name: &str) -> Option<Vec<u8>> {
        let path = self.dir.join(name);
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .ok()?;
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let mut data = Vec::new();
        file.read_to_end(&mut data).ok()?;
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
        let _ = std::fs::remove_file(self.dir.join(name));
    }

    /// Writes through a temporary file and a rename, so a reader never sees half an entry
    /// and an entry already read by another run is never changed under it; a cache that
    /// cannot be written is not an error (the next run compiles again).
    fn write(&self, name: &str, code: &[u8]) {
        // Unique per writer: two loads of one component (two runtimes, two processes) must
        // never write into the same temporary file.
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let tmp = self.dir.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)?;
            f.write_all(MAGIC)?;
            f.write_all(&self.tag(name, code))?;
            f.write_all(code)?;
            std::fs::rename(&tmp, self.dir.join(name))
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

fn open_store(dir: Option<PathBuf>, key: Option<PathBuf>) -> Result<Option<Store>, String> {
    let Some(dir) = dir.or_else(default_dir) else {
        return Ok(None);
    };
    let Some(key_path) = key.or_else(default_key_path) else {
        return Ok(None);
    };
    own_dir(&dir)?;
    let key = load_key(&key_path)?;
    Ok(Some(Store { dir, key_path, key }))
}

/// Creates `dir` (mode 0700) if needed and checks it is the user's own: a real directory
/// owned by the user, which is then made 0700 if it was not.
fn own_dir(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    match DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) => return Err(format!("cannot create {shown}: {e}")),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("{shown}: {e}"))?;
    if meta.file_type().is_symlink() {
        return Err(format!("{shown} is a symbolic link"));
    }
    if !meta.is_dir() {
        return Err(format!("{shown} is not a directory"));
    }
    let me = euid();
    if meta.uid() != me {
        return Err(format!(
            "{shown} belongs to uid {}, not to this user (uid {me})",
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot make {shown} private (mode 0700): {e}"))?;
    }
    Ok(())
}

/// Reads the user's cache key, creating it (mode 0600, in a 0700 directory) the first time.
fn load_key(path: &Path) -> Result<[u8; KEY_LEN], String> {
    let shown = path.display();
    match read_key(path) {
        Ok(key) => return Ok(key),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(format!("{shown}: {e}")),
        Err(_) => {}
    }
    let parent = path
        .parent()
        .ok_or_else(|| format!("{shown}: not a file path"))?;
    own_dir(parent)?;
    // Written whole under a temporary name, then linked to its real name: two runs creating
    // the key at once agree on one (the loser's link fails and it reads the winner's).
    let mut key = [0u8; KEY_LEN];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(|e| format!("cannot read random bytes for {shown}: {e}"))?;
    let tmp = parent.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("key"),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let made = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&key).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match made {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read_key(path).map_err(|e| format!("{shown}: {e}"))
        }
        Err(e) => Err(format!("cannot create {shown}: {e}")),
    }
}

/// The key in `path`, if it is a regular file of the right size that only this user can
/// read or write.
fn read_key(path: &Path) -> std::io::Result<[u8; KEY_LEN]> {
    let refuse = |why: String| std::io::Error::new(std::io::ErrorKind::PermissionDenied, why);
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                refuse("is a symbolic link".into())
            } else {
                e
            }
        })?;
    let meta = f.metadata()?;
    let me = euid();
    if !meta.is_file() {
        return Err(refuse("is not a regular file".into()));
    }
    if meta.uid() != me {
        return Err(refuse(format!(
            "belongs to uid {}, not to this user (uid {me})",
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(refuse(format!(
            "mode {:04o}: others may read it (expected 0600)",
            meta.mode() & 0o7777
        )));
    }
    let mut key = [0u8; KEY_LEN];
    let mut rest = Vec::new();
    f.read_exact(&mut key)
        .and_then(|()| f.read_to_end(&mut rest))
        .map_err(|_| refuse(format!("is not a {KEY_LEN}-byte key")))?;
    if !rest.is_empty() {
        return Err(refuse(format!("is not a {KEY_LEN}-byte key")));
    }
    Ok(key)
}

/// The user this process acts as.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
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

/// Equal, in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// HMAC-SHA256 (RFC 2104) of the concatenated `parts` under `key` (at most one block long).
fn hmac_sha256(key: &[u8; KEY_LEN], parts: &[&[u8]]) -> [u8; TAG_LEN] {
    const BLOCK: usize = 64;
    let mut padded = [0u8; BLOCK];
    padded[..KEY_LEN].copy_from_slice(key);
    let ipad: Vec<u8> = padded.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = padded.iter().map(|b| b ^ 0x5c).collect();
    let mut inner = Sha256::new();
    inner.update(&ipad);
    for p in parts {
        inner.update(p);
    }
    let mut outer = Sha256::new();
    outer.update(&opad);
    outer.update(inner.finalize());
    outer.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_the_rfc_4231_vector() {
        // RFC 4231, test case 2 uses a short key; ours is always 32 bytes, so check the
        // construction against case 2's key zero-padded to 32 bytes, which HMAC treats the
        // same (keys shorter than a block are zero-padded).
        let mut key = [0u8; KEY_LEN];
        key[..4].copy_from_slice(b"Jefe");
        let tag = hmac_sha256(&key, &[b"what do ya want ", b"for nothing?"]);
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

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
        assert!(e.contains("others may read it"), "{e}");

        let link = dir.path().join("state").join("link-key");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let e = load_key(&link).unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
    }

    #[test]
    fn a_cache_directory_that_is_a_link_is_refused_and_ours_is_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
        own_dir(&real).unwrap();
        assert_eq!(std::fs::metadata(&real).unwrap().mode() & 0o777, 0o700);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(own_dir(&link).unwrap_err().contains("symbolic link"));
    }
}
