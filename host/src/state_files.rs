//! The manager's state files: `<config dir>/.pymanager/<config name>.pid`, `.addr` and
//! `.token`, which is how `-d`, `ctl` and scripts find a running manager.
//!
//! They live beside the config, in a directory other people may be able to write to (a
//! shared checkout, `/tmp`), and they say where to send a bearer token. So the directory is
//! created 0700 and refused when someone else owns it or may write to it; files are written
//! under a random temporary name (`O_CREAT|O_EXCL|O_NOFOLLOW`) and renamed into place; a
//! symbolic link where a file should be is an error, never followed; and every operation
//! goes through the descriptor of the directory that was checked, so swapping the directory
//! after the check changes nothing. Readers ([`read_trusted`]) accept a file only if it and
//! its directory belong to them (or root) and nobody else may write to either.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};

/// The directory beside the config that holds the state files.
pub const DIR_NAME: &str = ".pymanager";

/// Why a state file could not be used; one line, naming the path and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The directory or file belongs to someone else, or others may write to it.
    #[error("refusing to use {}: {why}", .path.display())]
    Untrusted {
        /// The directory or file.
        path: PathBuf,
        /// Who owns it or who may write to it, and what to do.
        why: String,
    },
    /// A symbolic link (or something that is not a plain file) sits where a state file goes.
    #[error("refusing to write {}: it is {what}; remove it", .path.display())]
    NotAFile {
        /// Where the file goes.
        path: PathBuf,
        /// "a symbolic link", "a directory", …
        what: &'static str,
    },
    /// The OS refused an operation.
    #[error("cannot {action} {}: {}", .path.display(), crate::error_text::io(.source))]
    Io {
        /// What was being done ("create", "write", "read").
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The OS's error.
        #[source]
        source: std::io::Error,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> StateError + 'a {
    move |e| StateError::Io {
        action,
        path: path.to_path_buf(),
        source: std::io::Error::from(e),
    }
}

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

/// The effective user: who must own what we trust.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Owned by us or by root, and writable by nobody else: the test for anything we trust.
fn check_trusted(st: &FileStat, path: &Path, what: &str) -> Result<(), StateError> {
    let me = euid();
    if st.st_uid != me && st.st_uid != 0 {
        return Err(StateError::Untrusted {
            path: path.to_path_buf(),
            why: format!(
                "the {what} belongs to uid {}, not to you (uid {me})",
                st.st_uid
            ),
        });
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        return Err(StateError::Untrusted {
            path: path.to_path_buf(),
            why: format!(
                "others may write to the {what} (mode {mode:04o}); `chmod go-w` it or remove it"
            ),
        });
    }
    Ok(())
}

fn kind_of(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

fn describe_kind(st: &FileStat) -> &'static str {
    match kind_of(st) {
        SFlag::S_IFLNK => "a symbolic link",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFREG => "a file",
        _ => "not a regular file",
    }
}

/// Opens a directory without following a symbolic link in its last component.
fn open_dir(path: &Path) -> nix::Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// The checked `.pymanager` directory of one config, held open.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
    fd: Arc<OwnedFd>,
    config_name: PathBuf,
}

impl StateDir {
    /// Creates (0700) or opens the state directory of `config`, and checks that it is ours
    /// and that nobody else may write to it. A directory of ours with looser read bits is
    /// tightened to 0700: the token file lives there.
    pub fn open(config: &Path) -> Result<StateDir, StateError> {
        let path = dir_of(config);
        match nix::unistd::mkdir(&path, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(io_err("create", &path)(e)),
        }
        let fd = open_dir(&path).map_err(|e| match e {
            Errno::ELOOP | Errno::ENOTDIR => StateError::NotAFile {
                path: path.clone(),
                what: if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink()) {
                    "a symbolic link"
                } else {
                    "not a directory"
                },
            },
            e => io_err("open", &path)(e),
        })?;
        let st = nix::sys::stat::fstat(&fd).map_err(io_err("open", &path))?;
        check_trusted(&st, &path, "directory")?;
        if st.st_mode & 0o077 != 0 && st.st_uid == euid() {
            nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(0o700))
                .map_err(io_err("chmod", &path))?;
        }
        Ok(StateDir {
            path,
            fd: Arc::new(fd),
            config_name: config
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_CONFIG)),
        })
    }

    /// Where the directory is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state file `<config name>.<ext>` in this directory.
    pub fn file(&self, ext: &str) -> StateFile {
        StateFile {
            dir: self.fd.clone(),
            dir_path: self.path.clone(),
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
        let name = name_of(&self.config_name, LOCK_EXT);
        let path = self.path.join(&name);
        let fd = nix::fcntl::openat(
            &*self.fd,
            name.as_os_str(),
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| match e {
            Errno::ELOOP => StateError::NotAFile {
                path: path.clone(),
                what: "a symbolic link",
            },
            e => io_err("create", &path)(e),
        })?;
        // SAFETY: flock on a descriptor this process owns.
        if unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        } == 0
        {
            Ok(Some(fd))
        } else {
            Ok(None)
        }
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
    dir: Arc<OwnedFd>,
    dir_path: PathBuf,
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
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let Some(name) = path.file_name() else {
            return Err(StateError::NotAFile {
                path: path.to_path_buf(),
                what: "not a file name",
            });
        };
        let fd = nix::fcntl::open(
            &dir_path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_err("open", &dir_path))?;
        Ok(StateFile {
            dir: Arc::new(fd),
            dir_path,
            name: name.to_os_string(),
        })
    }

    /// Where the file is, for messages and for readers.
    pub fn path(&self) -> PathBuf {
        self.dir_path.join(&self.name)
    }

    /// Fails if something other than a plain file (a planted symbolic link, a directory)
    /// sits where the file goes; a missing file or a stale one of ours is fine.
    pub fn check(&self) -> Result<(), StateError> {
        match nix::sys::stat::fstatat(
            &*self.dir,
            self.name.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) if kind_of(&st) == SFlag::S_IFREG => Ok(()),
            Ok(st) => Err(StateError::NotAFile {
                path: self.path(),
                what: describe_kind(&st),
            }),
            Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(io_err("check", &self.path())(e)),
        }
    }

    /// Replaces the file with `contents`, readable by `mode` only. Written under a random
    /// name and renamed, so a reader never sees half a file; a symbolic link in its place
    /// is an error and its target is never touched.
    pub fn write(&self, contents: &[u8], mode: u32) -> Result<(), StateError> {
        self.check()?;
        let path = self.path();
        let tmp = temporary_name(&self.name).map_err(|source| StateError::Io {
            action: "write",
            path: path.clone(),
            source,
        })?;
        let fd = nix::fcntl::openat(
            &*self.dir,
            tmp.as_os_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        )
        .map_err(io_err("write", &path))?;
        // `mode` as narrowed by the umask, never wider.
        let written = std::fs::File::from(fd).write_all(contents);
        let renamed = written.map_err(|source| StateError::Io {
            action: "write",
            path: path.clone(),
            source,
        });
        let renamed = renamed.and_then(|()| {
            nix::fcntl::renameat(
                &*self.dir,
                tmp.as_os_str(),
                &*self.dir,
                self.name.as_os_str(),
            )
            .map_err(io_err("write", &path))
        });
        if renamed.is_err() {
            let _ = nix::unistd::unlinkat(
                &*self.dir,
                tmp.as_os_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
        renamed
    }

    /// Removes the file (not a link's target, not anything outside the directory); a file
    /// already gone is fine.
    pub fn remove(&self) {
        let _ = nix::unistd::unlinkat(
            &*self.dir,
            self.name.as_os_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }
}

/// `.<name>.<16 random hex digits>.tmp`: unguessable, so nobody can plant a file or link
/// under it beforehand (and `O_EXCL` would refuse one anyway).
fn temporary_name(name: &OsStr) -> std::io::Result<OsString> {
    let mut t = OsString::from(".");
    t.push(name);
    t.push(".");
    t.push(random_hex(8)?);
    t.push(".tmp");
    Ok(t)
}

/// `n` random bytes from the kernel, as hex. If the kernel cannot give them, that is an
/// error: never a fallback to something guessable.
pub fn random_hex(n: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        // SAFETY: the pointer and length describe the unfilled tail of `buf`.
        let got = unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), n - filled, 0) };
        if got > 0 {
            filled += got as usize;
        } else if Errno::last() != Errno::EINTR {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Reads a state file written by a manager, if it is trustworthy: the file and its
/// directory belong to us (or root), nobody else may write to either, and neither is a
/// symbolic link. `Ok(None)` if there is no such file.
pub fn read_trusted(path: &Path) -> Result<Option<String>, StateError> {
    let dir_path = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Some(name) = path.file_name() else {
        return Ok(None);
    };
    let dir = match open_dir(dir_path) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(Errno::ELOOP | Errno::ENOTDIR) => {
            return Err(StateError::Untrusted {
                path: dir_path.to_path_buf(),
                why: "it is not a directory of its own (a symbolic link?); remove it".into(),
            });
        }
        Err(e) => return Err(io_err("read", dir_path)(e)),
    };
    let st = nix::sys::stat::fstat(&dir).map_err(io_err("read", dir_path))?;
    check_trusted(&st, dir_path, "directory")?;
    let fd = match nix::fcntl::openat(
        &dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(Errno::ELOOP) => {
            return Err(StateError::Untrusted {
                path: path.to_path_buf(),
                why: "it is a symbolic link; remove it".into(),
            });
        }
        Err(e) => return Err(io_err("read", path)(e)),
    };
    let st = nix::sys::stat::fstat(fd.as_fd()).map_err(io_err("read", path))?;
    if kind_of(&st) != SFlag::S_IFREG {
        return Err(StateError::Untrusted {
            path: path.to_path_buf(),
            why: format!("it is {}; remove it", describe_kind(&st)),
        });
    }
    check_trusted(&st, path, "file")?;
    let mut text = String::new();
    // State files are a line or two; a huge one is not ours.
    std::fs::File::from(fd)
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|source| StateError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
    Ok(Some(text))
}

/// True if `name` looks like a temporary name of [`StateFile::write`]; for tests.
#[cfg(test)]
fn is_temporary(name: &OsStr) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let b = name.as_bytes();
    b.starts_with(b".") && b.ends_with(b".tmp")
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
        assert_eq!(dir.path, d.path().join(".pymanager"));
        assert_eq!(mode(&dir.path), 0o700);
        let f = dir.file("addr");
        assert_eq!(f.path(), d.path().join(".pymanager/env.json.addr"));
        f.write(b"one\n", 0o600).unwrap();
        assert_eq!(mode(&f.path()), 0o600);
        f.write(b"two\n", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(f.path()).unwrap(), "two\n");
        assert_eq!(read_trusted(&f.path()).unwrap().as_deref(), Some("two\n"));
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&dir.path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(!names.iter().any(|n| is_temporary(n)), "{names:?}");
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
    }

    #[test]
    fn random_names_differ() {
        let a = temporary_name(OsStr::new("x.pid")).unwrap();
        let b = temporary_name(OsStr::new("x.pid")).unwrap();
        assert_ne!(a, b);
        assert_eq!(random_hex(16).unwrap().len(), 32);
    }
}
