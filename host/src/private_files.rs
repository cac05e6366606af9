//! Files that only their user may have written: the state files, the compile cache and its
//! key, the staging folder of a Python build, and the Python modules pymanager reads.
//!
//! Another user may share the places these live in (a checkout, `/tmp`, a restored CI
//! cache), so every check here is made on an open file descriptor, never on a path that
//! could be swapped between the check and the use:
//!
//! - a [`Dir`] is created 0700 or opened with `O_NOFOLLOW`, and used only if `fstat` says
//!   it is the user's own and nobody else may write to it (a directory of someone else is
//!   refused, never reused); everything in it is reached through its descriptor (`*at`);
//! - a file is written under a random name (from `getrandom`) with
//!   `O_CREAT|O_EXCL|O_NOFOLLOW` and renamed into place ([`Dir::replace`], or
//!   [`Dir::create`], which keeps a file that is already there): the one temp-then-rename
//!   scheme;
//! - a file is read through `O_NOFOLLOW|O_NONBLOCK` and used only if `fstat` says it is a
//!   regular file of the user or root that nobody else may write to ([`Rule`]);
//! - a scratch directory is made fresh under a random name and removed when dropped
//!   ([`Dir::fresh_in`]): no predictable shared path exists to be planted beforehand.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::unistd::UnlinkatFlags;

/// Why a private file or directory could not be used; one line naming the path and what
/// to do.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// It belongs to someone else, or others may write to it.
    #[error("refusing to use {}: {why}", .path.display())]
    Untrusted {
        /// The file or directory.
        path: PathBuf,
        /// Who owns it or who may write to it, and what to do.
        why: String,
    },
    /// A symbolic link, a FIFO, a device … sits where a file or directory goes.
    #[error("refusing to use {}: it is {what}; remove it", .path.display())]
    NotAFile {
        /// Where the file goes.
        path: PathBuf,
        /// "a symbolic link", "a directory", "a FIFO", …
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

impl From<FileError> for std::io::Error {
    fn from(e: FileError) -> Self {
        match e {
            FileError::Io { source, .. } => source,
            other => std::io::Error::new(std::io::ErrorKind::PermissionDenied, other.to_string()),
        }
    }
}

impl FileError {
    fn io(action: &'static str, path: &Path, e: impl Into<std::io::Error>) -> FileError {
        FileError::Io {
            action,
            path: path.to_path_buf(),
            source: e.into(),
        }
    }
}

/// The effective user: who must own what is trusted.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Fills `buf` from the kernel's random source (`getrandom`). If the kernel cannot give the
/// bytes, that is an error: never a fallback to something guessable.
pub fn random_bytes(buf: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe `rest`, which is writable.
        let got = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if got > 0 {
            filled += got as usize;
        } else if Errno::last() != Errno::EINTR {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `n` random bytes from the kernel, as hex.
pub fn random_hex(n: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; n];
    random_bytes(&mut buf)?;
    Ok(hex(&buf))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a file must be to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Owned by the user or by root, and nobody else may write to it: what the user or the
    /// system wrote (state files, cache entries, Python modules).
    Trusted,
    /// Owned by the user, and nobody else may read or write it: a secret key.
    Secret,
}

/// Checks `st` (of `path`, a "file" or "directory" as `what` says) against `rule`.
pub fn check(st: &FileStat, path: &Path, what: &str, rule: Rule) -> Result<(), FileError> {
    check_owner(st, path, what, rule)?;
    let mode = st.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        return Err(FileError::Untrusted {
            path: path.to_path_buf(),
            why: format!(
                "others may write to the {what} (mode {mode:04o}); `chmod go-w` it or remove it"
            ),
        });
    }
    if rule == Rule::Secret && mode & 0o044 != 0 {
        return Err(FileError::Untrusted {
            path: path.to_path_buf(),
            why: format!("others may read the {what} (mode {mode:04o}); `chmod 600` it"),
        });
    }
    Ok(())
}

/// The owner half of [`check`]: all there is to check of a symbolic link (whose mode
/// means nothing).
fn check_owner(st: &FileStat, path: &Path, what: &str, rule: Rule) -> Result<(), FileError> {
    let me = euid();
    let owner_ok = match rule {
        Rule::Trusted => st.st_uid == me || st.st_uid == 0,
        Rule::Secret => st.st_uid == me,
    };
    if owner_ok {
        return Ok(());
    }
    Err(FileError::Untrusted {
        path: path.to_path_buf(),
        why: format!(
            "the {what} belongs to uid {}, not to you (uid {me})",
            st.st_uid
        ),
    })
}

fn kind_of(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// "a symbolic link", "a FIFO", …: what `st` is, for messages.
pub fn describe(st: &FileStat) -> &'static str {
    match kind_of(st) {
        SFlag::S_IFLNK => "a symbolic link",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFREG => "a file",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFCHR | SFlag::S_IFBLK => "a device",
        SFlag::S_IFSOCK => "a socket",
        _ => "not a regular file",
    }
}

/// True when `st` is a regular file.
pub fn is_file(st: &FileStat) -> bool {
    kind_of(st) == SFlag::S_IFREG
}

/// True when `st` is a symbolic link.
pub fn is_symlink(st: &FileStat) -> bool {
    kind_of(st) == SFlag::S_IFLNK
}

/// True when `st` is a directory.
pub fn is_dir(st: &FileStat) -> bool {
    kind_of(st) == SFlag::S_IFDIR
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);
/// Opening a FIFO with `O_NONBLOCK` does not wait for a writer; `O_NOCTTY` keeps a planted
/// terminal from becoming ours.
const READ_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_NOCTTY)
    .union(OFlag::O_CLOEXEC);

/// A directory held open and checked once; everything in it is reached through its
/// descriptor. Cheap to clone; a fresh scratch directory is removed with its last clone.
#[derive(Debug, Clone)]
pub struct Dir {
    inner: Arc<DirInner>,
}

#[derive(Debug)]
struct DirInner {
    path: PathBuf,
    fd: OwnedFd,
    /// Made by [`Dir::fresh_in`]: removed when dropped.
    scratch: bool,
}

impl Drop for DirInner {
    fn drop(&mut self) {
        if self.scratch {
            // `remove_dir_all` never follows a symbolic link, not even one swapped in for
            // the directory itself.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

impl Dir {
    /// Creates `path` (mode 0700, missing parents too) or opens it, and checks that it is
    /// the user's own and nobody else may write to it; one that others may read is
    /// tightened to 0700. A symbolic link, or a directory of someone else, is refused.
    pub fn private(path: &Path) -> Result<Dir, FileError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| FileError::io("create", parent, e))?;
        }
        match nix::unistd::mkdir(path, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(FileError::io("create", path, e)),
        }
        let fd = nix::fcntl::open(path, DIR_FLAGS, Mode::empty())
            .map_err(|e| not_a_dir(path, e, || is_link_at(None, path)))?;
        Dir::own(path.to_path_buf(), fd, false)
    }

    /// A new, empty private directory `<parent>/<prefix>-<random>`, removed (with what is
    /// in it) when the last clone is dropped. Its name cannot be guessed, and `mkdir` fails
    /// on anything already there, so nobody can have prepared it.
    pub fn fresh_in(parent: &Path, prefix: &str) -> Result<Dir, FileError> {
        Dir::made_in(parent, prefix, true)
    }

    /// A new, empty private directory `<parent>/<prefix>-<random>` that stays when dropped
    /// (logs to read afterwards); made as [`Dir::fresh_in`] makes one.
    pub fn new_in(parent: &Path, prefix: &str) -> Result<Dir, FileError> {
        Dir::made_in(parent, prefix, false)
    }

    fn made_in(parent: &Path, prefix: &str, scratch: bool) -> Result<Dir, FileError> {
        let mut last = Errno::EEXIST;
        for _ in 0..8 {
            let name = format!(
                "{prefix}-{}",
                random_hex(8).map_err(|e| FileError::io("create", parent, e))?
            );
            let path = parent.join(name);
            match nix::unistd::mkdir(&path, Mode::from_bits_truncate(0o700)) {
                Ok(()) => {
                    let fd = nix::fcntl::open(&path, DIR_FLAGS, Mode::empty())
                        .map_err(|e| FileError::io("open", &path, e))?;
                    let dir = Dir::own(path.clone(), fd, scratch);
                    if dir.is_err() {
                        let _ = std::fs::remove_dir(&path);
                    }
                    return dir;
                }
                Err(Errno::EEXIST) => last = Errno::EEXIST,
                Err(e) => return Err(FileError::io("create", &path, e)),
            }
        }
        Err(FileError::io("create", parent, last))
    }

    /// A directory the user named (`--pidfile`'s), taken as given: symbolic links in it
    /// are followed and its owner is not checked, since the user chose it. Files in it are
    /// still written only by [`Dir::replace`].
    pub fn given(path: &Path) -> Result<Dir, FileError> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| FileError::io("open", path, e))?;
        Ok(Dir {
            inner: Arc::new(DirInner {
                path: path.to_path_buf(),
                fd,
                scratch: false,
            }),
        })
    }

    /// The subdirectory `name` of this one, created 0700 if missing, checked like
    /// [`Dir::private`].
    pub fn sub(&self, name: &str) -> Result<Dir, FileError> {
        let path = self.join(name);
        match nix::sys::stat::mkdirat(self.fd(), name, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(FileError::io("create", &path, e)),
        }
        let fd = nix::fcntl::openat(self.fd(), name, DIR_FLAGS, Mode::empty())
            .map_err(|e| not_a_dir(&path, e, || is_link_at(Some(self.fd()), Path::new(name))))?;
        Dir::own(path, fd, false)
    }

    /// Checks an open directory: ours, nobody else may write to it; readable by others is
    /// tightened to 0700.
    fn own(path: PathBuf, fd: OwnedFd, scratch: bool) -> Result<Dir, FileError> {
        let st = nix::sys::stat::fstat(&fd).map_err(|e| FileError::io("open", &path, e))?;
        let me = euid();
        if st.st_uid != me {
            return Err(FileError::Untrusted {
                why: format!(
                    "the directory belongs to uid {}, not to you (uid {me}); remove it or \
                     choose another place",
                    st.st_uid
                ),
                path,
            });
        }
        check(&st, &path, "directory", Rule::Trusted)?;
        if st.st_mode & 0o077 != 0 {
            nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(0o700))
                .map_err(|e| FileError::io("make private (mode 0700)", &path, e))?;
        }
        Ok(Dir {
            inner: Arc::new(DirInner { path, fd, scratch }),
        })
    }

    /// Where the directory is, for messages and for programs that take a path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// `<this directory>/<name>`, for messages.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.inner.path.join(name)
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.inner.fd.as_fd()
    }

    /// Fails if something other than a regular file (a planted symbolic link, a directory)
    /// sits at `name`; nothing there, or a file, is fine.
    pub fn check_slot(&self, name: &OsStr) -> Result<(), FileError> {
        match nix::sys::stat::fstatat(self.fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if is_file(&st) => Ok(()),
            Ok(st) => Err(FileError::NotAFile {
                path: self.join(name),
                what: describe(&st),
            }),
            Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(FileError::io("check", &self.join(name), e)),
        }
    }

    /// Replaces `name` with `contents`, readable as `mode` allows (narrowed by the umask).
    /// Written under a random name and renamed, so a reader never sees half a file; a
    /// symbolic link at `name` is an error and its target is never touched.
    pub fn replace(&self, name: &OsStr, contents: &[u8], mode: u32) -> Result<(), FileError> {
        self.replace_parts(name, &[contents], mode)
    }

    /// [`Dir::replace`] with the contents given in parts (a header and a body), so that a
    /// large body is not copied to be written.
    pub fn replace_parts(&self, name: &OsStr, parts: &[&[u8]], mode: u32) -> Result<(), FileError> {
        self.check_slot(name)?;
        self.put(name, parts, mode, RenameFlags::empty())
            .map(|_| ())
    }

    /// Writes `name` unless it exists (then it is left as it is, and `false` returned):
    /// two writers at once agree on the first one's file.
    pub fn create(&self, name: &OsStr, contents: &[u8], mode: u32) -> Result<bool, FileError> {
        self.put(name, &[contents], mode, RenameFlags::RENAME_NOREPLACE)
    }

    /// The one temp-then-rename: a random name, `O_CREAT|O_EXCL|O_NOFOLLOW`, the whole
    /// contents, then a rename (`flags`) onto `name`; the temporary file never stays.
    fn put(
        &self,
        name: &OsStr,
        parts: &[&[u8]],
        mode: u32,
        flags: RenameFlags,
    ) -> Result<bool, FileError> {
        let path = self.join(name);
        let tmp = temporary_name(name).map_err(|e| FileError::io("write", &path, e))?;
        let fd = nix::fcntl::openat(
            self.fd(),
            tmp.as_os_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        )
        .map_err(|e| FileError::io("write", &path, e))?;
        let mut file = std::fs::File::from(fd);
        let written = parts
            .iter()
            .try_for_each(|p| file.write_all(p))
            .map_err(|e| FileError::io("write", &path, e));
        let renamed = written.and_then(|()| {
            match nix::fcntl::renameat2(self.fd(), tmp.as_os_str(), self.fd(), name, flags) {
                Ok(()) => Ok(true),
                Err(Errno::EEXIST) if flags.contains(RenameFlags::RENAME_NOREPLACE) => Ok(false),
                Err(e) => Err(FileError::io("write", &path, e)),
            }
        });
        if !matches!(renamed, Ok(true)) {
            let _ = nix::unistd::unlinkat(self.fd(), tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
        }
        renamed
    }

    /// Takes an exclusive lock on the file `name` (created 0600 if missing, never through a
    /// symbolic link, a regular file of ours): `Some` with the descriptor that holds it, or
    /// `None` if another process holds it. The lock ends when the descriptor (or a copy a
    /// forked process inherited) is closed, however the holder ends.
    pub fn lock(&self, name: &OsStr) -> Result<Option<OwnedFd>, FileError> {
        let path = self.join(name);
        let fd = nix::fcntl::openat(
            self.fd(),
            name,
            OFlag::O_RDWR
                | OFlag::O_CREAT
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| match e {
            Errno::ELOOP => FileError::NotAFile {
                path: path.clone(),
                what: "a symbolic link",
            },
            e => FileError::io("create", &path, e),
        })?;
        let st = nix::sys::stat::fstat(&fd).map_err(|e| FileError::io("open", &path, e))?;
        if !is_file(&st) {
            return Err(FileError::NotAFile {
                path,
                what: describe(&st),
            });
        }
        check(&st, &path, "file", Rule::Trusted)?;
        // SAFETY: flock on a descriptor this process owns.
        let locked = unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        } == 0;
        Ok(locked.then_some(fd))
    }

    /// The contents of `name` if it is a regular file that `rule` accepts (at most `limit`
    /// bytes: a longer one is refused); `Ok(None)` if there is none.
    pub fn read(&self, name: &OsStr, rule: Rule, limit: u64) -> Result<Option<Vec<u8>>, FileError> {
        let path = self.join(name);
        let fd = match nix::fcntl::openat(self.fd(), name, READ_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => {
                return Err(FileError::NotAFile {
                    path,
                    what: "a symbolic link",
                });
            }
            Err(e) => return Err(FileError::io("read", &path, e)),
        };
        read_checked(fd, &path, rule, limit).map(Some)
    }

    /// Removes the file `name` (never a link's target, never anything outside the
    /// directory); one already gone is fine.
    pub fn remove(&self, name: &OsStr) {
        let _ = nix::unistd::unlinkat(self.fd(), name, UnlinkatFlags::NoRemoveDir);
    }
}

/// True when `name` (in `dir`, or a path) is a symbolic link; for messages only.
fn is_link_at(dir: Option<BorrowedFd<'_>>, name: &Path) -> bool {
    match dir {
        Some(d) => nix::sys::stat::fstatat(d, name, AtFlags::AT_SYMLINK_NOFOLLOW),
        None => nix::sys::stat::lstat(name),
    }
    .is_ok_and(|st| kind_of(&st) == SFlag::S_IFLNK)
}

/// The error for a directory that would not open: a symbolic link or not a directory is
/// named as such.
fn not_a_dir(path: &Path, e: Errno, is_link: impl FnOnce() -> bool) -> FileError {
    match e {
        Errno::ELOOP | Errno::ENOTDIR => FileError::NotAFile {
            path: path.to_path_buf(),
            what: if is_link() {
                "a symbolic link"
            } else {
                "not a directory"
            },
        },
        e => FileError::io("open", path, e),
    }
}

/// Reads an open file whole, if `fstat` says it is a regular file that `rule` accepts.
fn read_checked(fd: OwnedFd, path: &Path, rule: Rule, limit: u64) -> Result<Vec<u8>, FileError> {
    let st = nix::sys::stat::fstat(&fd).map_err(|e| FileError::io("read", path, e))?;
    if !is_file(&st) {
        return Err(FileError::NotAFile {
            path: path.to_path_buf(),
            what: describe(&st),
        });
    }
    check(&st, path, "file", rule)?;
    if st.st_size as u64 > limit {
        return Err(FileError::Untrusted {
            path: path.to_path_buf(),
            why: format!("it is larger than {limit} bytes"),
        });
    }
    let mut data = Vec::with_capacity(st.st_size as usize);
    std::fs::File::from(fd)
        .take(limit)
        .read_to_end(&mut data)
        .map_err(|e| FileError::io("read", path, e))?;
    Ok(data)
}

/// Reads the file at `path` if it and its directory are trusted ([`Rule::Trusted`]:
/// the user's or root's, nobody else may write to either) and neither is a symbolic link;
/// `Ok(None)` if there is no such file. For `ctl`, which reads what a manager wrote.
pub fn read_trusted(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, FileError> {
    let dir_path = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Some(name) = path.file_name() else {
        return Ok(None);
    };
    let dir = match nix::fcntl::open(dir_path, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(not_a_dir(dir_path, e, || is_link_at(None, dir_path))),
    };
    let st = nix::sys::stat::fstat(&dir).map_err(|e| FileError::io("read", dir_path, e))?;
    check(&st, dir_path, "directory", Rule::Trusted)?;
    let dir = Dir {
        inner: Arc::new(DirInner {
            path: dir_path.to_path_buf(),
            fd: dir,
            scratch: false,
        }),
    };
    dir.read(name, Rule::Trusted, limit)
}

/// A file or directory opened for reading, found trusted by its descriptor.
#[derive(Debug)]
pub enum Opened {
    /// A regular file's contents.
    File(Vec<u8>),
    /// A directory, open.
    Dir(TrustedDir),
}

/// A directory found trusted ([`Rule::Trusted`]), open for listing and for opening what is
/// in it by the same rule.
#[derive(Debug)]
pub struct TrustedDir {
    path: PathBuf,
    fd: OwnedFd,
}

/// Most bytes one trusted file may have (a Python module's source).
pub const TRUSTED_FILE_LIMIT: u64 = 16 << 20;

/// Opens `path` if it is a regular file or a directory that [`Rule::Trusted`] accepts; a
/// symbolic link is resolved, and is used only if the link and what it points to are both
/// trusted. Anything else (a FIFO, a device, a file of someone else) is an error naming
/// the path and why. `Ok(None)` if nothing is there.
pub fn open_trusted(path: &Path) -> Result<Option<Opened>, FileError> {
    open_at(None, path, path)
}

impl TrustedDir {
    /// The path it was opened as, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The names in the directory (not `.` and `..`), sorted.
    pub fn names(&self) -> Result<Vec<OsString>, FileError> {
        let dup = self
            .fd
            .try_clone()
            .map_err(|e| FileError::io("read", &self.path, e))?;
        let mut dir =
            nix::dir::Dir::from_fd(dup).map_err(|e| FileError::io("read", &self.path, e))?;
        let mut names = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|e| FileError::io("read", &self.path, e))?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name != "." && name != ".." {
                names.push(name.to_os_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// `name` in this directory, opened by the rule of [`open_trusted`].
    pub fn open(&self, name: &OsStr) -> Result<Option<Opened>, FileError> {
        open_at(
            Some(self.fd.as_fd()),
            Path::new(name),
            &self.path.join(name),
        )
    }

    /// What is at `name` without opening it (not following a symbolic link); `None` if
    /// nothing is.
    pub fn kind(&self, name: &OsStr) -> Result<Option<FileStat>, FileError> {
        match nix::sys::stat::fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(FileError::io("read", &self.path.join(name), e)),
        }
    }
}

/// [`open_trusted`] of `name` in `dir` (or of the path `name` when `dir` is `None`),
/// `shown` as `path` in messages.
fn open_at(
    dir: Option<BorrowedFd<'_>>,
    name: &Path,
    shown: &Path,
) -> Result<Option<Opened>, FileError> {
    // What is there decides whether it is opened at all: a FIFO, a device or a socket
    // never is (opening one can block or act). The descriptor is checked again after.
    let there = match dir {
        Some(d) => nix::sys::stat::fstatat(d, name, AtFlags::AT_SYMLINK_NOFOLLOW),
        None => nix::sys::stat::lstat(name),
    };
    match there {
        Ok(st) if !is_file(&st) && !is_dir(&st) && !is_symlink(&st) => {
            return Err(FileError::NotAFile {
                path: shown.to_path_buf(),
                what: describe(&st),
            });
        }
        Ok(_) => {}
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(FileError::io("read", shown, e)),
    }
    let opened = match dir {
        Some(d) => nix::fcntl::openat(d, name, READ_FLAGS, Mode::empty()),
        None => nix::fcntl::open(name, READ_FLAGS, Mode::empty()),
    };
    let fd = match opened {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(Errno::ELOOP) => return follow_link(dir, name, shown),
        Err(e) => return Err(FileError::io("read", shown, e)),
    };
    let st = nix::sys::stat::fstat(&fd).map_err(|e| FileError::io("read", shown, e))?;
    if is_dir(&st) {
        check(&st, shown, "directory", Rule::Trusted)?;
        return Ok(Some(Opened::Dir(TrustedDir {
            path: shown.to_path_buf(),
            fd,
        })));
    }
    read_checked(fd, shown, Rule::Trusted, TRUSTED_FILE_LIMIT)
        .map(|bytes| Some(Opened::File(bytes)))
}

/// A symbolic link met by [`open_at`]: used if the link is the user's or root's and its
/// target (resolved whole) passes the same checks.
fn follow_link(
    dir: Option<BorrowedFd<'_>>,
    name: &Path,
    shown: &Path,
) -> Result<Option<Opened>, FileError> {
    let st = match dir {
        Some(d) => nix::sys::stat::fstatat(d, name, AtFlags::AT_SYMLINK_NOFOLLOW),
        None => nix::sys::stat::lstat(name),
    }
    .map_err(|e| FileError::io("read", shown, e))?;
    if kind_of(&st) != SFlag::S_IFLNK {
        // ELOOP from a path whose last part is not a link: a loop further up.
        return Err(FileError::io("read", shown, Errno::ELOOP));
    }
    check_owner(&st, shown, "symbolic link", Rule::Trusted)?;
    let target = std::fs::canonicalize(shown).map_err(|e| FileError::io("resolve", shown, e))?;
    match open_at(None, &target, &target)? {
        Some(opened) => Ok(Some(opened)),
        None => Err(FileError::io(
            "read",
            shown,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )),
    }
}

/// How [`open_output`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// After what is there.
    Append,
    /// Over it (emptied first).
    Replace,
}

/// Opens `path` to write to it (created 0644 if missing), for output the user named: the
/// log (`--logfile`), a process's `redirect_output`, `pymanager run`'s logs. A symbolic
/// link there is followed only if it is the user's or root's (`/dev/stdout` is root's),
/// checked through a descriptor of the link itself: one another user planted in a shared
/// directory is refused, so that their link cannot make pymanager write to a file of the
/// user's that they choose (`~/.bashrc`).
pub fn open_output(path: &Path, how: Output) -> std::io::Result<std::fs::File> {
    open_output_at(path, how, 0)
}

fn open_output_at(path: &Path, how: Output, depth: usize) -> std::io::Result<std::fs::File> {
    let flags = OFlag::O_WRONLY
        | match how {
            Output::Append => OFlag::O_APPEND,
            Output::Replace => OFlag::O_TRUNC,
        }
        | OFlag::O_CREAT
        | OFlag::O_NOFOLLOW
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    // A link with O_NOFOLLOW fails with ELOOP, or EACCES where the kernel protects links
    // in sticky directories: then look at what is there.
    let refused = match nix::fcntl::open(path, flags, Mode::from_bits_truncate(0o644)) {
        Ok(fd) => return Ok(std::fs::File::from(fd)),
        Err(e @ (Errno::ELOOP | Errno::EACCES)) if depth < 8 => e,
        Err(e) => return Err(e.into()),
    };
    let link = nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let st = nix::sys::stat::fstat(&link)?;
    if !is_symlink(&st) {
        return Err(refused.into());
    }
    check_owner(&st, path, "symbolic link", Rule::Trusted)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e.to_string()))?;
    let target = nix::fcntl::readlinkat(&link, "")?;
    let target = path
        .parent()
        .unwrap_or(Path::new("."))
        .join(Path::new(&target));
    open_output_at(&target, how, depth + 1)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn names(p: &Path) -> Vec<String> {
        let mut n: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn a_private_directory_is_made_0700_and_files_replace_atomically() {
        let d = tempfile::tempdir().unwrap();
        let dir = Dir::private(&d.path().join("a/b")).unwrap();
        assert_eq!(mode(dir.path()), 0o700);
        dir.replace(OsStr::new("f"), b"one", 0o600).unwrap();
        dir.replace(OsStr::new("f"), b"two", 0o600).unwrap();
        assert_eq!(mode(&dir.join("f")), 0o600);
        let got = dir.read(OsStr::new("f"), Rule::Secret, 100).unwrap();
        assert_eq!(got.as_deref(), Some(&b"two"[..]));
        assert!(!dir.create(OsStr::new("f"), b"three", 0o600).unwrap());
        assert!(dir.create(OsStr::new("g"), b"new", 0o600).unwrap());
        assert_eq!(names(dir.path()), ["f", "g"], "no temporary file stays");
        assert!(
            dir.read(OsStr::new("f"), Rule::Trusted, 2).is_err(),
            "over the limit"
        );
        dir.remove(OsStr::new("f"));
        assert_eq!(dir.read(OsStr::new("f"), Rule::Trusted, 9).unwrap(), None);
    }

    #[test]
    fn a_directory_others_may_write_to_or_that_is_a_link_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let open = d.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = Dir::private(&open).unwrap_err();
        assert!(e.to_string().contains("others may write"), "{e}");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        Dir::private(&open).unwrap();
        assert_eq!(mode(&open), 0o700, "tightened");
        let link = d.path().join("link");
        symlink(&open, &link).unwrap();
        let e = Dir::private(&link).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let top = Dir::private(&d.path().join("top")).unwrap();
        symlink(&open, top.join("sub")).unwrap();
        let e = top.sub("sub").unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
    }

    #[test]
    fn a_planted_link_is_never_written_through_nor_read() {
        let d = tempfile::tempdir().unwrap();
        let dir = Dir::private(&d.path().join("s")).unwrap();
        let target = d.path().join("precious");
        std::fs::write(&target, "keep me").unwrap();
        symlink(&target, dir.join("f")).unwrap();
        let e = dir.replace(OsStr::new("f"), b"x", 0o600).unwrap_err();
        assert!(e.to_string().contains("it is a symbolic link"), "{e}");
        let e = dir.read(OsStr::new("f"), Rule::Trusted, 99).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        dir.remove(OsStr::new("f"));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    }

    #[test]
    fn a_secret_others_may_read_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let dir = Dir::private(&d.path().join("s")).unwrap();
        dir.replace(OsStr::new("k"), b"key", 0o600).unwrap();
        std::fs::set_permissions(dir.join("k"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = dir.read(OsStr::new("k"), Rule::Secret, 99).unwrap_err();
        assert!(e.to_string().contains("others may read"), "{e}");
        assert!(dir.read(OsStr::new("k"), Rule::Trusted, 99).is_ok());
    }

    #[test]
    fn a_fresh_directory_is_new_private_and_removed() {
        let d = tempfile::tempdir().unwrap();
        let a = Dir::fresh_in(d.path(), "x").unwrap();
        let b = Dir::fresh_in(d.path(), "x").unwrap();
        assert_ne!(a.path(), b.path());
        assert_eq!(mode(a.path()), 0o700);
        let sub = a.sub("inner").unwrap();
        sub.replace(OsStr::new("f"), b"x", 0o600).unwrap();
        let path = a.path().to_path_buf();
        drop(sub);
        drop(a);
        assert!(!path.exists());
        drop(b);
        assert!(names(d.path()).is_empty());
    }

    #[test]
    fn trusted_files_are_regular_and_links_are_checked_at_both_ends() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("m.py");
        std::fs::write(&file, "x = 1\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(open_trusted(&file).unwrap(), Some(Opened::File(b)) if b == b"x = 1\n"));
        let link = d.path().join("l.py");
        symlink(&file, &link).unwrap();
        assert!(matches!(
            open_trusted(&link).unwrap(),
            Some(Opened::File(_))
        ));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = open_trusted(&link).unwrap_err();
        assert!(e.to_string().contains("others may write"), "{e}");
        let fifo = d.path().join("f.py");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let e = open_trusted(&fifo).unwrap_err();
        assert!(e.to_string().contains("it is a FIFO"), "{e}");
        assert!(open_trusted(&d.path().join("none.py")).unwrap().is_none());
        let Some(Opened::Dir(dir)) = open_trusted(d.path()).unwrap() else {
            panic!("a directory");
        };
        assert_eq!(dir.names().unwrap(), ["f.py", "l.py", "m.py"]);
    }

    #[test]
    fn a_log_is_appended_to_through_links_of_ours_only() {
        use std::io::Write;
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("run.log");
        open_output(&log, Output::Append)
            .unwrap()
            .write_all(b"one\n")
            .unwrap();
        let link = d.path().join("link.log");
        symlink("run.log", &link).unwrap();
        open_output(&link, Output::Append)
            .unwrap()
            .write_all(b"two\n")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "one\ntwo\n");
        if euid() == 0 {
            let theirs = d.path().join("theirs.log");
            symlink("run.log", &theirs).unwrap();
            std::os::unix::fs::lchown(&theirs, Some(65534), None).unwrap();
            let e = open_output(&theirs, Output::Replace).unwrap_err();
            assert!(e.to_string().contains("belongs to uid 65534"), "{e}");
        }
    }

    #[test]
    fn random_names_differ() {
        let a = temporary_name(OsStr::new("x.pid")).unwrap();
        let b = temporary_name(OsStr::new("x.pid")).unwrap();
        assert_ne!(a, b);
        assert_eq!(random_hex(16).unwrap().len(), 32);
    }
}
