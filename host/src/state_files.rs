//! The manager's state files: `<config dir>/.pymanager/<config name>.pid`, `.addr` and
//! `.token`, which is how `-d`, `ctl` and scripts find a running manager.
//!
//! They live beside the config, in a directory other people may be able to write to (a
//! shared checkout, `/tmp`), and they say where to send a bearer token. So the directory is
//! a [`private_files::Dir`]: created 0700, refused when someone else owns it or may write
//! to it, and every file in it written by that module's one temp-then-rename, never
//! through a symbolic link. Readers ([`read_trusted`]) accept a file only if it and its
//! directory belong to them (or root) and nobody else may write to either.

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::private_files::{self, Dir};

pub use crate::private_files::FileError as StateError;

/// The directory beside the config that holds the state files.
pub const DIR_NAME: &str = ".pymanager";

/// The longest state file a reader accepts: they are a line or two.
const READ_LIMIT: u64 = 64 * 1024;

/// `<config dir>/.pymanager`: where the state files of the manager of `config` live.
pub fn dir_of(config: &Path) -> PathBuf {
    let dir = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join(DIR_NAME)
}

/// `<config file name>.<ext>`: the name of one state file in [`dir_of`].
pub fn name_of(config: &Path, ext: &str) -> OsString {
    let mut name = config
        .file_name()
        .map(OsStr::to_os_string)
        .unwrap_or_else(|| OsString::from(crate::config::DEFAULT_CONFIG));
    name.push(".");
    name.push(ext);
    name
}

/// `<config dir>/.pymanager/<config file name>.<ext>`.
pub fn path_of(config: &Path, ext: &str) -> PathBuf {
    dir_of(config).join(name_of(config, ext))
}

/// The checked `.pymanager` directory of one config, held open.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: Dir,
    config_name: PathBuf,
}

impl StateDir {
    /// Creates (0700) or opens the state directory of `config`, and checks that it is ours
    /// and that nobody else may write to it. A directory of ours with looser read bits is
    /// tightened to 0700: the token file lives there.
    pub fn open(config: &Path) -> Result<StateDir, StateError> {
        Ok(StateDir {
            dir: Dir::private(&dir_of(config))?,
            config_name: config
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_CONFIG)),
        })
    }

    /// Where the directory is.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The state file `<config name>.<ext>` in this directory.
    pub fn file(&self, ext: &str) -> StateFile {
        StateFile {
            dir: self.dir.clone(),
            name: name_of(&self.config_name, ext),
        }
    }
}

impl StateDir {
    /// Claims the config's plain state-file names (`<config name>.addr`, …) for this
    /// manager: `Some` when no other running copy of the config holds them. The claim is an
    /// exclusive lock on `<config name>.lock`, held while the returned descriptor (or a copy
    /// a forked process inherited: the guardian's) is open, so it ends with the manager
    /// however it ends, and a stale lock file claims nothing. A copy that finds the names
    /// claimed uses names with its pid (`<config name>.<pid>.addr`).
    pub fn claim(&self) -> Result<Option<OwnedFd>, StateError> {
        self.dir.lock(&name_of(&self.config_name, LOCK_EXT))
    }

    /// The state file of copy `pid` of the config, when the plain names are another
    /// copy's: `<config name>.<pid>.<ext>`.
    pub fn instance_file(&self, pid: u32, ext: &str) -> StateFile {
        self.file(&format!("{pid}.{ext}"))
    }
}

/// The lock that claims a config's plain state-file names (see [`StateDir::claim`]).
const LOCK_EXT: &str = "lock";

/// The pids of the copies of `config` that wrote state files under their pid
/// (`<config name>.<pid>.<ext>`) and are still running.
pub fn running_instances(config: &Path, ext: &str) -> Vec<u32> {
    let Some(prefix) = config.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir_of(config)) else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let middle = name
                .strip_prefix(prefix.as_str())?
                .strip_prefix('.')?
                .strip_suffix(ext)?
                .strip_suffix('.')?;
            middle.parse().ok()
        })
        // SAFETY: kill with signal 0 only checks that a process of ours has this pid.
        .filter(|&pid: &u32| pid > 0 && unsafe { libc::kill(pid as i32, 0) } == 0)
        .collect();
    pids.sort_unstable();
    pids
}

/// One file written whole and atomically into a directory held open, never through a
/// symbolic link; the pid, address and token files.
#[derive(Debug, Clone)]
pub struct StateFile {
    dir: Dir,
    name: OsString,
}

impl StateFile {
    /// A file at a path the user chose (`--pidfile`): its directory is taken as given
    /// (symbolic links in it included, since the user named it), the file itself is handled
    /// like every state file.
    pub fn at(path: &Path) -> Result<StateFile, StateError> {
        let dir_path = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let Some(name) = path.file_name() else {
            return Err(StateError::NotAFile {
                path: path.to_path_buf(),
                what: "not a file name",
            });
        };
        Ok(StateFile {
            dir: Dir::given(dir_path)?,
            name: name.to_os_string(),
        })
    }

    /// Where the file is; for tests.
    #[cfg(test)]
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// Fails if something other than a plain file (a planted symbolic link, a directory)
    /// sits where the file goes; a missing file or a stale one of ours is fine.
    pub fn check(&self) -> Result<(), StateError> {
        self.dir.check_slot(&self.name)
    }

    /// Replaces the file with `contents`, readable by `mode` only. Written under a random
    /// name and renamed, so a reader never sees half a file; a symbolic link in its place
    /// is an error and its target is never touched.
    pub fn write(&self, contents: &[u8], mode: u32) -> Result<(), StateError> {
        self.dir.replace(&self.name, contents, mode)
    }

    /// Removes the file (not a link's target, not anything outside the directory); a file
    /// already gone is fine.
    pub fn remove(&self) {
        self.dir.remove(&self.name);
    }
}

/// Reads a state file written by a manager, if it is trustworthy: the file and its
/// directory belong to us (or root), nobody else may write to either, and neither is a
/// symbolic link. `Ok(None)` if there is no such file.
pub fn read_trusted(path: &Path) -> Result<Option<String>, StateError> {
    Ok(private_files::read_trusted(path, READ_LIMIT)?
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn the_directory_is_created_private_and_files_replace_atomically() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("env.json");
        let dir = StateDir::open(&cfg).unwrap();
        let state = d.path().join(".pymanager");
        assert_eq!(mode(&state), 0o700);
        let f = dir.file("addr");
        assert_eq!(f.path(), d.path().join(".pymanager/env.json.addr"));
        f.write(b"one\n", 0o600).unwrap();
        assert_eq!(mode(&f.path()), 0o600);
        f.write(b"two\n", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(f.path()).unwrap(), "two\n");
        assert_eq!(read_trusted(&f.path()).unwrap().as_deref(), Some("two\n"));
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&state)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [OsString::from("env.json.addr")]);
        f.remove();
        assert!(!f.path().exists());
        assert_eq!(read_trusted(&f.path()).unwrap(), None);
        f.remove();
    }

    #[test]
    fn a_planted_symbolic_link_is_refused_and_its_target_kept() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("pymanager.json");
        let dir = StateDir::open(&cfg).unwrap();
        let target = d.path().join("precious");
        std::fs::write(&target, "keep me").unwrap();
        let f = dir.file("pid");
        symlink(&target, f.path()).unwrap();
        let e = f.write(b"123\n", 0o644).unwrap_err();
        assert!(e.to_string().contains("it is a symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        let e = read_trusted(&f.path()).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        // Removing removes the link, never the target.
        f.remove();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    }

    #[test]
    fn a_directory_others_may_write_to_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("pymanager.json");
        let dir = dir_of(&cfg);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = StateDir::open(&cfg).unwrap_err();
        assert!(e.to_string().contains("others may write"), "{e}");
        std::fs::write(dir.join("pymanager.json.addr"), "http://127.0.0.1:1\n").unwrap();
        let e = read_trusted(&dir.join("pymanager.json.addr")).unwrap_err();
        assert!(e.to_string().contains("others may write"), "{e}");
        // A directory of ours that is only readable by others is tightened.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        StateDir::open(&cfg).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn a_symbolic_link_as_the_directory_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let cfg = d.path().join("pymanager.json");
        symlink(elsewhere.path(), dir_of(&cfg)).unwrap();
        let e = StateDir::open(&cfg).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
        let e = read_trusted(&dir_of(&cfg).join("pymanager.json.addr")).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
    }
}
