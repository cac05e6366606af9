//! Starts a program in a new process without copying the manager's address space.
//!
//! `fork` copies the page tables of the whole manager (the WebAssembly runtime, the HTTP
//! server, every process's output history), so its cost grows with the manager's size:
//! ~1.2 ms per spawn at 30 MiB. Here the child is created with
//! `clone(CLONE_VM | CLONE_VFORK)`: it borrows the manager's memory, the calling thread
//! waits until the child has called `execve` (or failed), and nothing is copied. The child
//! sets up its process group, parent-death signal, descriptors and directory with plain
//! system calls, from data prepared beforehand, and writes nothing of the manager's but
//! the one [`Outcome`] it reports back.
//!
//! `posix_spawn` is as cheap but cannot set a parent-death signal; a spawner process
//! forked early would have to pass every pipe over a socket and could not make the
//! manager the parent that reaps.
//!
//! Nor is the manager's descriptor table copied: a manager of 1000 processes holds ~3000
//! descriptors (their pipes and pidfds), and a plain `clone` copies the table (taking a
//! reference on every open file) and `execve` then closes every copy again, both in time
//! that grows with the number of processes. The child shares the table instead
//! (`CLONE_FILES`) and makes its own private one with only the lowest descriptors in it
//! (`close_range(…, CLOSE_RANGE_UNSHARE)`); its stdin and output are placed in two low
//! descriptor numbers kept for that ([`Slots`]) just before the clone.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What to start: everything the child needs, as C strings built before the clone.
pub(super) struct Program<'a> {
    /// The program: a path (with a `/`) or a name looked up in the child's `PATH`.
    pub program: &'a OsStr,
    /// `argv[1..]`.
    pub args: &'a [OsString],
    /// The child's working directory, if not the manager's.
    pub cwd: Option<&'a Path>,
    /// The child's whole environment; `None` for the manager's.
    pub env: Option<&'a [(OsString, OsString)]>,
    /// Becomes the child's stdin.
    pub stdin: BorrowedFd<'a>,
    /// Becomes the child's stdout and stderr.
    pub output: BorrowedFd<'a>,
}

/// Why a child could not be started.
#[derive(Debug)]
pub(super) enum StartError {
    /// Changing into the working directory failed.
    Chdir(std::io::Error),
    /// The program could not be executed.
    Exec(std::io::Error),
    /// The manager could not prepare or create the child.
    Setup(std::io::Error),
}

/// Where the child reports a failure; written only by the child, read by the parent after
/// the clone returned (the child has then called `execve` or exited).
#[derive(Default)]
struct Outcome {
    stage: libc::c_int,
    errno: libc::c_int,
    /// The index of the last candidate `execve` was called with: after a start, the path
    /// that ran.
    attempt: usize,
}

const STAGE_OK: libc::c_int = 0;
const STAGE_SETUP: libc::c_int = 1;
const STAGE_CHDIR: libc::c_int = 2;
const STAGE_EXEC: libc::c_int = 3;

/// Everything the child reads, prepared before the clone so that the child allocates
/// nothing and takes no lock.
struct Prepared {
    /// Full paths to try in order (the `PATH` search is done here, not in the child).
    candidates: Vec<CString>,
    /// The child's `PATH`, when the program is looked up in it.
    path: Option<OsString>,
    /// `argv`, null-terminated; `argv[0]` is the program as given.
    argv: Vec<*const libc::c_char>,
    /// `/bin/sh`, the candidate, then `argv[1..]`: how `execvp` runs a script without a
    /// `#!` line (`ENOEXEC`). Slot 1 is filled in by the child.
    sh_argv: Vec<*const libc::c_char>,
    /// The child's environment as `execve` takes it: `own_env`'s pointers, or the
    /// manager's own `environ` (never changed after `main`'s start, see
    /// `token::take_from_env`), which is then not copied at each start.
    envp: *const *const libc::c_char,
    /// The pointers of an environment given in the config (null-terminated).
    _own_env: Vec<*const libc::c_char>,
    cwd: Option<CString>,
    /// Copies of the pipes moved above 0–2 (see [`above_stdio`]); closed after the clone.
    _moved: Vec<OwnedFd>,
    stdin: libc::c_int,
    output: libc::c_int,
    parent: libc::pid_t,
    /// The limit on open files to give back (the manager raised its own).
    nofile: Option<libc::rlimit>,
    /// With a shared descriptor table: the lowest descriptor the child does not copy into
    /// its own (its stdin and output are below it); `None` for a copied table.
    unshare_from: Option<libc::c_int>,
    outcome: Outcome,
    // Owners of the strings the pointers above point into.
    _strings: Vec<CString>,
}

/// Stack of the child until it calls `execve`: it runs a handful of system calls.
const CHILD_STACK: usize = 64 << 10;

/// Starts `p` and returns the child's pid once it has called `execve`. The child is in a
/// new process group of its own, gets SIGKILL when the calling thread ends, has every
/// signal's default action and an empty signal mask, inherits no descriptor but its
/// stdin, stdout and stderr, and has the limit on open files pymanager was started with.
///
/// The caller must keep SIGCHLD reaping away from the child until it has registered the
/// pid (the reaper holds its lock across this call).
pub(super) fn start(p: &Program<'_>) -> Result<libc::pid_t, StartError> {
    let mut prep = prepare(p).map_err(StartError::Setup)?;
    // The slots are held until the child has called `execve`: one start at a time uses them.
    let mut slots = Slots::take();
    if let Some(slots) = slots.as_mut() {
        prep.unshare_from = Some(slots.fill(&prep).map_err(StartError::Setup)?);
        prep.stdin = slots.stdin;
        prep.output = slots.output;
    }
    let result = CHILD_STACKS.with(|cell| {
        let stack = match cell.take() {
            Some(stack) => stack,
            None => Stack::new(CHILD_STACK).map_err(StartError::Setup)?,
        };
        let result = clone_child(&mut prep, &stack);
        cell.set(Some(stack));
        result
    });
    if let Some(slots) = slots.as_mut() {
        // The slots must not keep the pipes open: the process would never see EOF on its
        // stdin, nor pymanager on its output.
        slots.empty();
    }
    if result.is_ok() {
        remember_path(p, &prep);
    }
    result
}

/// The two low descriptor numbers a child's stdin and output are placed in before the
/// clone, so that the child copies only the descriptors below them into its own table.
/// They hold `/dev/null` between starts, so the numbers stay ours. `None` where the kernel
/// cannot unshare a table this way (before 5.9, or a filter that forbids `close_range`):
/// the child then gets a copy of the whole table, as with `fork`; also when
/// [`COPY_TABLE_VAR`] is set (valgrind, which `bench/rest_ir.py` runs the manager under,
/// cannot follow a clone that shares the table).
struct Slots {
    stdin: libc::c_int,
    output: libc::c_int,
    null: OwnedFd,
}

static SLOTS: std::sync::LazyLock<Option<std::sync::Mutex<Slots>>> =
    std::sync::LazyLock::new(|| Slots::open().ok().map(std::sync::Mutex::new));

/// Set (to anything), the child gets a copy of the manager's descriptor table.
const COPY_TABLE_VAR: &str = "PYMANAGER_SPAWN_COPIES_TABLE";

impl Slots {
    /// Made at the first start, while the manager holds few descriptors, so their numbers
    /// (and the table the child copies) stay small.
    fn open() -> std::io::Result<Slots> {
        if std::env::var_os(COPY_TABLE_VAR).is_some() {
            return Err(std::io::Error::other("a copied table was asked for"));
        }
        // SAFETY: close_range on descriptors above any this process can have closes
        // nothing; it only tells whether the call exists and is allowed.
        if unsafe { libc::syscall(libc::SYS_close_range, u32::MAX - 1, u32::MAX, 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let null = std::fs::File::open("/dev/null")?;
        let above_stdio = |fd: &std::fs::File| -> std::io::Result<libc::c_int> {
            // SAFETY: F_DUPFD_CLOEXEC on a descriptor owned here; the copy is ours.
            let copy = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
            if copy < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(copy)
        };
        let stdin = above_stdio(&null)?;
        let output = above_stdio(&null)?;
        Ok(Slots {
            stdin,
            output,
            null: null.into(),
        })
    }

    fn take() -> Option<std::sync::MutexGuard<'static, Slots>> {
        SLOTS
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Puts the child's stdin and output into the slots; the lowest descriptor the child
    /// need not copy.
    fn fill(&mut self, prep: &Prepared) -> std::io::Result<libc::c_int> {
        dup_onto(prep.stdin, self.stdin)?;
        dup_onto(prep.output, self.output)?;
        Ok(self.stdin.max(self.output) + 1)
    }

    fn empty(&mut self) {
        let null = self.null.as_raw_fd();
        let _ = dup_onto(null, self.stdin);
        let _ = dup_onto(null, self.output);
    }
}

/// `dup3(from, to, O_CLOEXEC)`: `to` now refers to what `from` does, atomically.
fn dup_onto(from: libc::c_int, to: libc::c_int) -> std::io::Result<()> {
    // SAFETY: both are descriptors this process holds; `to` is a slot owned by `Slots`.
    if unsafe { libc::dup3(from, to, libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

thread_local! {
    /// One child stack per thread that starts processes, made on its first start and used
    /// again by every later one: with `CLONE_VFORK` the thread waits until its child has
    /// called `execve` (or exited), so the stack is free again when `clone` returns. A new
    /// mapping per start cost an `mmap`, an `mprotect`, an `munmap` and fresh page faults.
    static CHILD_STACKS: std::cell::Cell<Option<Stack>> = const { std::cell::Cell::new(None) };
}

/// Clones the child onto `stack` and waits until it has called `execve` or failed.
fn clone_child(prep: &mut Prepared, stack: &Stack) -> Result<libc::pid_t, StartError> {
    // Block every signal in this thread across the clone: the child starts with the same
    // mask and unblocks only after it reset the handlers, so no handler of the manager
    // ever runs on the child's (shared) memory.
    // SAFETY: plain signal-mask calls on sets owned here.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: the child runs `child_main` on its own stack with `prep`, which outlives the
    // clone: with CLONE_VFORK this thread resumes only once the child has called `execve`
    // or exited. The child writes only `prep.outcome`.
    let files = if prep.unshare_from.is_some() {
        libc::CLONE_FILES
    } else {
        0
    };
    let pid = unsafe {
        libc::clone(
            child_main,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | files | libc::SIGCHLD,
            (prep as *mut Prepared).cast(),
        )
    };
    let clone_error = std::io::Error::last_os_error();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    if pid < 0 {
        return Err(StartError::Setup(clone_error));
    }
    // SAFETY: `prep.outcome` is plain data the (now exec'd or exited) child wrote.
    let outcome = unsafe { std::ptr::read_volatile(&prep.outcome) };
    if outcome.stage == STAGE_OK {
        return Ok(pid);
    }
    // The child has exited: collect it here, the reaper never learns of it.
    let mut status = 0;
    // SAFETY: waits for our own child, which has exited.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
    {}
    let e = std::io::Error::from_raw_os_error(outcome.errno);
    Err(match outcome.stage {
        STAGE_CHDIR => StartError::Chdir(e),
        STAGE_EXEC => StartError::Exec(e),
        _ => StartError::Setup(e),
    })
}

fn cstring(s: &[u8]) -> std::io::Result<CString> {
    CString::new(s).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "an argument or variable contains a NUL byte",
        )
    })
}

fn prepare(p: &Program<'_>) -> std::io::Result<Prepared> {
    let mut strings = Vec::new();
    let mut argv = Vec::with_capacity(p.args.len() + 2);
    let arg0 = cstring(p.program.as_bytes())?;
    argv.push(arg0.as_ptr());
    strings.push(arg0);
    for a in p.args {
        let c = cstring(a.as_bytes())?;
        argv.push(c.as_ptr());
        strings.push(c);
    }
    argv.push(std::ptr::null());
    let sh = cstring(b"/bin/sh")?;
    let mut sh_argv = vec![sh.as_ptr(), std::ptr::null()];
    sh_argv.extend_from_slice(&argv[1..]);
    strings.push(sh);

    let mut path = None;
    let mut own_env = Vec::new();
    let envp = match p.env {
        Some(env) => {
            for (k, v) in env {
                if k.as_bytes() == b"PATH" {
                    path = Some(v.clone());
                }
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                let c = cstring(&kv)?;
                own_env.push(c.as_ptr());
                strings.push(c);
            }
            own_env.push(std::ptr::null());
            own_env.as_ptr()
        }
        None => {
            path = std::env::var_os("PATH");
            manager_environ().unwrap_or_else(|| {
                own_env.push(std::ptr::null());
                own_env.as_ptr()
            })
        }
    };

    let mut candidates = candidates(p.program, path.as_deref())?;
    // The search path the candidates come from, when the program is looked up in one.
    let path = (!p.program.as_bytes().contains(&b'/'))
        .then(|| path.unwrap_or_else(|| DEFAULT_PATH.into()));
    if let Some(found) = path
        .as_deref()
        .and_then(|path| remembered_path(p.program, path))
    {
        candidates.insert(0, found);
    }
    let cwd = p
        .cwd
        .map(|d| cstring(d.as_os_str().as_bytes()))
        .transpose()?;
    let mut moved = Vec::new();
    let stdin = above_stdio(p.stdin, &mut moved)?;
    let output = above_stdio(p.output, &mut moved)?;
    Ok(Prepared {
        path,
        candidates,
        argv,
        sh_argv,
        envp,
        _own_env: own_env,
        cwd,
        _moved: moved,
        stdin,
        output,
        // SAFETY: getpid has no preconditions.
        parent: unsafe { libc::getpid() },
        nofile: super::fd_limit::for_children(),
        unshare_from: None,
        outcome: Outcome::default(),
        _strings: strings,
    })
}

unsafe extern "C" {
    /// The C library's environment of this process.
    static environ: *const *const libc::c_char;
}

/// The manager's own environment, as the C library holds it (`None` once cleared). Handed
/// to the child as it is, as `fork` and `exec` would: copying it made three allocations per
/// variable at each start. Sound because nothing changes the environment once `main` has
/// started other threads (`token::take_from_env` runs first, alone; `set_var` is `unsafe`
/// for this reason), so the array stays as it is while a child reads it.
fn manager_environ() -> Option<*const *const libc::c_char> {
    // SAFETY: reads the pointer, which nothing writes after the start of `main`.
    let env = unsafe { environ };
    (!env.is_null()).then_some(env)
}

/// The search path when `PATH` is unset, as glibc's `execvp` has it.
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// Where a program looked up in a search path was last found: `(program, PATH)` → the path
/// that ran. It is tried first at the next start, before the whole search again: 1000
/// processes of one program in a long `PATH` would otherwise each try every directory
/// before the right one (14 failed `execve`s per start here). As with a shell's hash of
/// commands, a program installed later in an earlier directory of the same `PATH` is not
/// seen until the remembered one is gone. Only absolute paths are remembered: a relative
/// one depends on the working directory.
type Found = std::collections::HashMap<(OsString, OsString), CString>;

static FOUND: std::sync::LazyLock<std::sync::Mutex<Found>> =
    std::sync::LazyLock::new(Default::default);

/// Bounds the memory of [`FOUND`]: programs × search paths a config can name.
const FOUND_MAX: usize = 4096;

fn found() -> std::sync::MutexGuard<'static, Found> {
    FOUND.lock().unwrap_or_else(|e| e.into_inner())
}

fn remembered_path(program: &OsStr, path: &OsStr) -> Option<CString> {
    found()
        .get(&(program.to_os_string(), path.to_os_string()))
        .cloned()
}

/// Remembers the candidate a successful start ran, if it was looked up in a search path.
fn remember_path(p: &Program<'_>, prep: &Prepared) {
    let (Some(path), Some(ran)) = (&prep.path, prep.candidates.get(prep.outcome.attempt)) else {
        return;
    };
    if !ran.as_bytes().starts_with(b"/") {
        return;
    }
    let mut found = found();
    if found.len() >= FOUND_MAX {
        found.clear();
    }
    found.insert((p.program.to_os_string(), path.clone()), ran.clone());
}

/// The paths `execvp` would try for `program` with the child's `PATH` (its default when
/// unset, as glibc's).
fn candidates(program: &OsStr, path: Option<&OsStr>) -> std::io::Result<Vec<CString>> {
    let name = program.as_bytes();
    if name.is_empty() {
        return Err(std::io::Error::from_raw_os_error(libc::ENOENT));
    }
    if name.contains(&b'/') {
        return Ok(vec![cstring(name)?]);
    }
    let path = path.map_or(DEFAULT_PATH.as_bytes(), |p| p.as_bytes());
    path.split(|b| *b == b':')
        .map(|dir| {
            let mut full = if dir.is_empty() {
                b".".to_vec()
            } else {
                dir.to_vec()
            };
            full.push(b'/');
            full.extend_from_slice(name);
            cstring(&full)
        })
        .collect()
}

/// The raw descriptor, copied above 0–2 if it is one of them (a manager started with a
/// closed stdin, say), so that the child's `dup2`s cannot overwrite each other's source.
fn above_stdio(fd: BorrowedFd<'_>, keep: &mut Vec<OwnedFd>) -> std::io::Result<libc::c_int> {
    let raw = fd.as_raw_fd();
    if raw > 2 {
        return Ok(raw);
    }
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor the caller keeps open.
    let moved = unsafe { libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 3) };
    if moved < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `moved` is a new descriptor that nothing else owns.
    keep.push(unsafe { OwnedFd::from_raw_fd(moved) });
    Ok(moved)
}

/// The child, between the clone and `execve`. It shares the manager's memory, so it only
/// reads `Prepared`, makes system calls (async-signal-safe ones), and writes its outcome.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `Prepared`, alive and untouched while we run.
    let p = unsafe { &mut *(arg as *mut Prepared) };
    // SAFETY: system calls on data prepared by the parent; nothing here allocates, locks
    // or unwinds.
    unsafe {
        // No handler of the manager may run here: every caught signal gets its default
        // action (`execve` would reset them anyway), and SIGPIPE, which the Rust runtime
        // ignores, too. Other ignored signals stay ignored, as with `fork`.
        for sig in 1..=64 {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            if old.sa_sigaction != libc::SIG_DFL
                && (old.sa_sigaction != libc::SIG_IGN || sig == libc::SIGPIPE)
            {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        if libc::setpgid(0, 0) != 0 {
            return fail(p, STAGE_SETUP);
        }
        // Dies with the manager's thread that spawned it, even on `kill -9`; the guardian
        // takes care of what this child leaves behind. If the manager died before the
        // signal was armed, the child has already been re-parented: give up.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            return fail(p, STAGE_SETUP);
        }
        if libc::getppid() != p.parent {
            libc::_exit(127);
        }
        // With a shared table: a private one first, of the descriptors below
        // `unshare_from` only (the slots with stdin and output among them). Until then
        // nothing here may touch a descriptor: the table is the manager's.
        if let Some(from) = p.unshare_from
            && libc::syscall(
                libc::SYS_close_range,
                from as u32,
                u32::MAX,
                libc::CLOSE_RANGE_UNSHARE,
            ) != 0
        {
            return fail(p, STAGE_SETUP);
        }
        if libc::dup2(p.stdin, 0) < 0 || libc::dup2(p.output, 1) < 0 || libc::dup2(p.output, 2) < 0
        {
            return fail(p, STAGE_SETUP);
        }
        // Whatever the manager holds, even a descriptor someone opened without
        // O_CLOEXEC, closes at `execve` (kernels before 5.11 lack the call; there every
        // descriptor of the manager is close-on-exec already).
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        // The limit on open files pymanager was started with, not the manager's raised one.
        if let Some(limit) = &p.nofile
            && libc::setrlimit(libc::RLIMIT_NOFILE, limit) != 0
        {
            return fail(p, STAGE_SETUP);
        }
        if let Some(dir) = &p.cwd
            && libc::chdir(dir.as_ptr()) != 0
        {
            return fail(p, STAGE_CHDIR);
        }
        let empty: libc::sigset_t = {
            let mut s = std::mem::zeroed();
            libc::sigemptyset(&mut s);
            s
        };
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());

        // As `execvp`: the first candidate that runs wins; a permission error is reported
        // if no candidate ran and one existed but was not executable.
        let mut errno = libc::ENOENT;
        let mut denied = false;
        for (i, path) in p.candidates.iter().enumerate() {
            p.outcome.attempt = i;
            libc::execve(path.as_ptr(), p.argv.as_ptr(), p.envp);
            let e = *libc::__errno_location();
            if e == libc::ENOEXEC {
                p.sh_argv[1] = path.as_ptr();
                libc::execve(p.sh_argv[0], p.sh_argv.as_ptr(), p.envp);
                errno = *libc::__errno_location();
                break;
            }
            match e {
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR | libc::ENAMETOOLONG | libc::ELOOP => {}
                _ => {
                    errno = e;
                    break;
                }
            }
            errno = e;
        }
        if denied && matches!(errno, libc::ENOENT | libc::ENOTDIR) {
            errno = libc::EACCES;
        }
        p.outcome.errno = errno;
        p.outcome.stage = STAGE_EXEC;
        libc::_exit(127)
    }
}

/// Records the failed stage and `errno`, and ends the child.
unsafe fn fail(p: &mut Prepared, stage: libc::c_int) -> libc::c_int {
    // SAFETY: reading this thread's errno and exiting are async-signal-safe.
    unsafe {
        p.outcome.errno = *libc::__errno_location();
        p.outcome.stage = stage;
        libc::_exit(127)
    }
}

/// A child's stack: its own pages with a guard page below.
struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

impl Stack {
    fn new(size: usize) -> std::io::Result<Stack> {
        let len = size + page_size();
        // SAFETY: an anonymous private mapping; the lowest page becomes the guard.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the first page of the mapping just made.
        unsafe { libc::mprotect(base, page_size(), libc::PROT_NONE) };
        Ok(Stack { base, len })
    }

    /// The highest address: stacks grow down.
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping, page-aligned (so 16-byte aligned).
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer used by anyone.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}
