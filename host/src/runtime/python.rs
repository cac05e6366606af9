//! Verifier modules written for the original pymanager: Python files whose `Verifier`
//! subclasses it imported by module name. Here such a module is built into a component by
//! componentize-py, with a small bundled `pymutils` package that gives it the original's
//! API (`Verifier`, `proc.wait`, `proc.code`, `proc.pid`, `log_fail`, `log_verbose`) and a
//! `requests` and `time.sleep` that go through the host interface, and then runs in the
//! same sandbox as every other verifier.
//!
//! The plan finds the module and reads its files (`plan::python_modules`, which checks
//! who may have written them); this module builds them. componentize-py runs the module's
//! top-level code, so the build runs bounded: in a fresh private staging directory (see
//! [`crate::private_files`]), in a process group of its own, with a wall-clock limit
//! (`limits.build_s`) after which the group is killed, and a data-size limit of the
//! module's `memory_mb` plus [`TOOL_MEMORY`] for componentize-py itself. The built
//! component is kept in the compile cache under the hash of everything that went into it
//! (the module's files, the bundle, the WIT and componentize-py's version), authenticated
//! like every cache entry, so it is built once; without a cache it lives in memory only.

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::cache::DiskCache;
use crate::private_files::{self, Dir, Rule};

/// The componentize-py release the bundle is written and tested against.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// Environment variable naming the componentize-py executable (else it is looked up on
/// `PATH`).
pub const COMPONENTIZE_PY_ENV: &str = "PYMANAGER_COMPONENTIZE_PY";

/// Memory componentize-py itself may use while it builds, on top of the module's own
/// `memory_mb`: it peaks at ~450 MB of data for a small module (0.25.1, measured), and
/// each of its compiling threads adds a stack.
pub const TOOL_MEMORY: u64 = 2 << 30;

/// How long a build may take when the module sets no `limits.build_s`: seconds on a quiet
/// machine, minutes on a loaded one.
pub const DEFAULT_BUILD_TIME: Duration = Duration::from_secs(600);

/// How long `componentize-py --version` may take.
const VERSION_TIME: Duration = Duration::from_secs(60);

/// The largest component a build may leave (an interpreter inside is ~18 MB).
const OUTPUT_LIMIT: u64 = 512 << 20;

/// The files bundled into every Python verifier component, as (path, contents).
const BUNDLE: &[(&str, &str)] = &[
    (
        "pymanager_app.py",
        include_str!("../../python/pymanager_app.py"),
    ),
    (
        "pymutils/__init__.py",
        include_str!("../../python/pymutils/__init__.py"),
    ),
    (
        "pymutils/_host.py",
        include_str!("../../python/pymutils/_host.py"),
    ),
    (
        "pymutils/global_storage.py",
        include_str!("../../python/pymutils/global_storage.py"),
    ),
    (
        "pymutils/verifier.py",
        include_str!("../../python/pymutils/verifier.py"),
    ),
    (
        "pymutils/process.py",
        include_str!("../../python/pymutils/process.py"),
    ),
    (
        "pymutils/exited_verifier.py",
        include_str!("../../python/pymutils/exited_verifier.py"),
    ),
    (
        "pymutils/http_verifier.py",
        include_str!("../../python/pymutils/http_verifier.py"),
    ),
    (
        "requests/__init__.py",
        include_str!("../../python/requests/__init__.py"),
    ),
    (
        "requests/exceptions.py",
        include_str!("../../python/requests/exceptions.py"),
    ),
];

/// The WIT the component is built against.
const WIT: &str = include_str!("../../../wit/verifier.wit");

/// A Python verifier module found on disk and read (by the plan), ready to be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonModule {
    /// The dotted module name, as the config's `modules` key gives it.
    pub name: String,
    /// Where it was found: its `.py` file, or its top-level package folder (for messages).
    pub root: PathBuf,
    /// Its files as (path relative to the search directory, contents): what is built, read
    /// once when it was found and checked.
    pub sources: Vec<(PathBuf, Vec<u8>)>,
    /// How long its build may take (`limits.build_s`).
    pub build_time: Duration,
}

/// The component built from `module` (or found authentic in `cache`), for the module
/// `alias` whose guests may use `memory_bytes`. Blocking: it runs componentize-py (seconds)
/// when the cache has no such component.
pub(crate) fn build(
    module: &PythonModule,
    alias: &str,
    memory_bytes: usize,
    cache: &DiskCache,
) -> Result<Vec<u8>, String> {
    let tool = componentize_py();
    let version = tool_version(&tool)?;
    let key = build_key(module, &version);
    if let Some(built) = cache.built(&key) {
        return Ok(built);
    }
    let stage =
        Dir::fresh_in(&std::env::temp_dir(), "pymanager-build").map_err(|e| e.to_string())?;
    for (rel, text) in BUNDLE {
        write(&stage, &Path::new("bundle").join(rel), text.as_bytes())?;
    }
    write(
        &stage,
        Path::new("bundle/pymanager_target.py"),
        format!("MODULE = {:?}\n", module.name).as_bytes(),
    )?;
    write(&stage, Path::new("wit/verifier.wit"), WIT.as_bytes())?;
    for (rel, bytes) in &module.sources {
        write(&stage, &Path::new("user").join(rel), bytes)?;
    }
    // Every directory the tool reads exists even if the module has no file of its own.
    stage.sub("user").map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&tool);
    cmd.arg("-d")
        .arg(stage.join("wit"))
        .args([
            "-w",
            "verifier-module",
            "componentize",
            "pymanager_app",
            "-p",
        ])
        .arg(stage.join("bundle"))
        .arg("-p")
        .arg(stage.join("user"))
        .arg("-o")
        .arg(stage.join("out.wasm"))
        .current_dir(stage.path());
    let memory = memory_bytes as u64 + TOOL_MEMORY;
    let what = module.root.display();
    let run = run_bounded(cmd, module.build_time, Some(memory))
        .map_err(|e| format!("cannot run {}: {e}", tool.display()))?;
    match run.end {
        End::TimedOut => {
            return Err(format!(
                "building {what} into a component did not finish within {} \
                 (modules.{alias}.limits.build_s), so it was stopped: does its top-level code \
                 loop or wait?",
                super::human_duration(module.build_time)
            ));
        }
        End::Exited(Some(0)) => {}
        End::Exited(_) => {
            let said = last_error(&run.stderr);
            let memory_hint = if said.contains("memory allocation") || said.contains("MemoryError")
            {
                format!(
                    " (the build may use {}: modules.{alias}.limits.memory_mb plus {} for \
                     componentize-py)",
                    super::human_bytes(memory as usize),
                    super::human_bytes(TOOL_MEMORY as usize)
                )
            } else {
                String::new()
            };
            return Err(format!(
                "building {what} into a component failed: {said}{memory_hint}"
            ));
        }
    }
    let built = stage
        .read(OsStr::new("out.wasm"), Rule::Trusted, OUTPUT_LIMIT)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("building {what}: componentize-py wrote no component"))?;
    cache.keep_built(&key, &built);
    Ok(built)
}

/// The hash of everything a build depends on: the bundle, the WIT, the tool's version and
/// the module's name and files.
fn build_key(module: &PythonModule, version: &str) -> String {
    let mut h = Sha256::new();
    for (name, text) in BUNDLE {
        h.update(name.as_bytes());
        h.update(text.as_bytes());
    }
    h.update(WIT.as_bytes());
    h.update(version.as_bytes());
    h.update(module.name.as_bytes());
    for (rel, bytes) in &module.sources {
        h.update(rel.to_string_lossy().as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    private_files::hex(&h.finalize())
}

/// The one line that says what to do when componentize-py is not there.
pub fn install_hint() -> String {
    format!(
        "building a Python verifier module needs componentize-py: install it with \
         'pip install \"pymanager-rs[python]\"' (or 'pip install \
         componentize-py=={COMPONENTIZE_PY_VERSION}'), or name it in {COMPONENTIZE_PY_ENV}"
    )
}

/// The componentize-py a build would run, if it can be found (without running it): for
/// `pymanager check`, which runs nothing.
pub fn find_tool() -> Option<PathBuf> {
    let tool = componentize_py();
    if tool.components().count() > 1 {
        return tool.is_file().then_some(tool);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(&tool))
        .find(|p| p.is_file())
}

/// componentize-py: the one `PYMANAGER_COMPONENTIZE_PY` names, else the one beside this
/// binary (`pip install "pymanager-rs[python]"` puts both in one venv's `bin/`, which need
/// not be on `PATH`), else `componentize-py` on `PATH`.
fn componentize_py() -> PathBuf {
    if let Some(named) = std::env::var_os(COMPONENTIZE_PY_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(named);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("componentize-py")))
        .filter(|beside| beside.is_file())
        .unwrap_or_else(|| PathBuf::from("componentize-py"))
}

fn tool_version(tool: &Path) -> Result<String, String> {
    let mut cmd = Command::new(tool);
    cmd.arg("--version");
    match run_bounded(cmd, VERSION_TIME, None) {
        Ok(Run {
            end: End::Exited(Some(0)),
            stdout,
            ..
        }) => Ok(String::from_utf8_lossy(&stdout).trim().into()),
        Ok(Run {
            end: End::TimedOut, ..
        }) => Err(format!(
            "{} --version did not answer within {}",
            tool.display(),
            super::human_duration(VERSION_TIME)
        )),
        Ok(_) => Err(install_hint()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(install_hint()),
        Err(e) => Err(format!("cannot run {}: {e}", tool.display())),
    }
}

/// Writes `rel` (with its folders) into the staging directory.
fn write(stage: &Dir, rel: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut dir = stage.clone();
    let mut parts: Vec<&OsStr> = rel.iter().collect();
    let Some(name) = parts.pop() else {
        return Ok(());
    };
    for part in parts {
        let part = part
            .to_str()
            .ok_or_else(|| format!("{}: not a UTF-8 path", rel.display()))?;
        dir = dir.sub(part).map_err(|e| e.to_string())?;
    }
    dir.replace(name, bytes, 0o600).map_err(|e| e.to_string())
}

/// How a bounded run ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// On its own, with this exit code (`None`: killed by a signal).
    Exited(Option<i32>),
    /// Killed, with its whole process group, at the time limit.
    TimedOut,
}

/// What a bounded run left.
struct Run {
    end: End,
    stdout: Vec<u8>,
    /// The last 64 KiB of its stderr.
    stderr: Vec<u8>,
}

/// Most bytes kept of each of a bounded run's outputs.
const OUTPUT_KEPT: usize = 64 << 10;

/// Runs `cmd` in a process group of its own, its data size capped at `memory` bytes if
/// given, for at most `limit`: then the whole group is killed. Whatever the group left
/// running when the command ends is killed too. Waits on the process's pidfd and its pipes
/// (no polling). Blocking.
fn run_bounded(mut cmd: Command, limit: Duration, memory: Option<u64>) -> std::io::Result<Run> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: only async-signal-safe calls (setrlimit, prctl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(bytes) = memory {
                let lim = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_DATA, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // Never outlives the manager (the thread that waits for it).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let group = child.id() as libc::pid_t;
    // SAFETY: pidfd_open takes a pid and flags, and returns a new descriptor or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, group, 0) };
    if raw < 0 {
        let e = std::io::Error::last_os_error();
        kill_group(group);
        let _ = child.wait();
        return Err(e);
    }
    // SAFETY: a descriptor just returned by pidfd_open, owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let mut pipes = [
        child
            .stdout
            .take()
            .map(|p| std::fs::File::from(OwnedFd::from(p))),
        child
            .stderr
            .take()
            .map(|p| std::fs::File::from(OwnedFd::from(p))),
    ];
    let mut kept: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let deadline = Instant::now() + limit;
    let mut end = None;
    while end.is_none() {
        let mut fds = vec![libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        for pipe in pipes.iter().flatten() {
            fds.push(libc::pollfd {
                fd: pipe.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `fds` is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            kill_group(group);
            let _ = child.wait();
            return Err(e);
        }
        if n == 0 {
            end = Some(End::TimedOut);
            break;
        }
        read_ready(&mut pipes, &mut kept);
        if fds[0].revents != 0 {
            end = Some(End::Exited(None));
        }
    }
    // The command is gone (or timed out): nothing of its group stays. Killed before it is
    // reaped, so the group's id cannot have been given to anyone else.
    kill_group(group);
    for (pipe, kept) in pipes.iter_mut().zip(kept.iter_mut()) {
        if let Some(p) = pipe.as_mut() {
            drain(p, kept);
        }
    }
    let status = child.wait();
    let end = match end {
        Some(End::TimedOut) => End::TimedOut,
        _ => End::Exited(status.ok().and_then(|s| s.code())),
    };
    let [stdout, stderr] = kept;
    Ok(Run {
        end,
        stdout,
        stderr,
    })
}

/// Reads what the pipes have now (they are polled readable or closed).
fn read_ready(pipes: &mut [Option<std::fs::File>; 2], kept: &mut [Vec<u8>; 2]) {
    for (pipe, kept) in pipes.iter_mut().zip(kept.iter_mut()) {
        let Some(p) = pipe else { continue };
        let mut fd = [libc::pollfd {
            fd: p.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: one valid pollfd; a zero timeout only asks.
        if unsafe { libc::poll(fd.as_mut_ptr(), 1, 0) } <= 0 {
            continue;
        }
        let mut buf = [0u8; 8192];
        match p.read(&mut buf) {
            Ok(0) | Err(_) => *pipe = None,
            Ok(n) => keep(kept, &buf[..n]),
        }
    }
}

/// Reads a pipe to its end (its writers are dead).
fn drain(pipe: &mut impl Read, kept: &mut Vec<u8>) {
    let mut buf = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut buf) {
        if n == 0 {
            break;
        }
        keep(kept, &buf[..n]);
    }
}

/// Appends `bytes`, keeping the last [`OUTPUT_KEPT`] bytes.
fn keep(kept: &mut Vec<u8>, bytes: &[u8]) {
    kept.extend_from_slice(bytes);
    if kept.len() > OUTPUT_KEPT {
        kept.drain(..kept.len() - OUTPUT_KEPT);
    }
}

/// SIGKILL to every process of the group.
fn kill_group(group: libc::pid_t) {
    // SAFETY: kill with a negative pid signals a process group; no memory is involved.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

/// The last meaningful line componentize-py printed (a Python traceback ends with it).
fn last_error(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    text.lines()
        .map(str::trim)
        .rfind(|l| {
            !l.is_empty() && !l.starts_with("Caused by") && !l.starts_with("Stack backtrace")
        })
        .unwrap_or("componentize-py failed without a message")
        .chars()
        .take(500)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_componentize_py_says_how_to_install_it() {
        let e = tool_version(Path::new("/nonexistent/componentize-py")).unwrap_err();
        assert!(e.contains("pip install \"pymanager-rs[python]\""), "{e}");
        assert!(e.contains("pip install componentize-py==0.25.1"), "{e}");
    }

    #[test]
    fn a_bounded_run_is_stopped_with_its_group_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("sleep 300 & echo $! > \"$1\"; echo started >&2; wait")
            .arg("sh")
            .arg(&pids);
        let run = run_bounded(cmd, Duration::from_millis(500), None).unwrap();
        assert_eq!(run.end, End::TimedOut);
        assert_eq!(String::from_utf8_lossy(&run.stderr), "started\n");
        let sleeper: i32 = std::fs::read_to_string(&pids)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Killed with its group: gone, or a zombie waiting for init.
        let gone = || {
            std::fs::read_to_string(format!("/proc/{sleeper}/stat"))
                .map_or(true, |stat| stat.contains(") Z"))
        };
        let end = Instant::now() + Duration::from_secs(30);
        while !gone() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone(), "the group's other process outlived the time limit");

        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("grep 'Max data size' /proc/self/limits; exit 3");
        let run = run_bounded(cmd, Duration::from_secs(600), Some(1 << 30)).unwrap();
        assert_eq!(run.end, End::Exited(Some(3)));
        let limits = String::from_utf8_lossy(&run.stdout);
        assert!(
            limits
                .split_whitespace()
                .filter(|w| *w == "1073741824")
                .count()
                == 2,
            "{limits}"
        );
    }
}
