//! Compiling a component in a short-lived child process, so that the manager never holds
//! the compiler's memory.
//!
//! Compiling a 12–18 MB component (an interpreter inside: ComponentizeJS, componentize-py)
//! costs hundreds of MB in the compiler; freed, much of it stays with the allocator, and an
//! engine keeps its compiler contexts for its life. The manager therefore runs itself
//! again with a hidden subcommand that reads the component on stdin, compiles it with the
//! same engine settings and writes the result into the disk cache, then exits, taking all
//! of that memory with it. The manager then loads the entry from the cache exactly as a
//! later run would: after a first compile it is as small as after a cache hit.
//!
//! The child is only an optimisation: if it cannot run, fails, or leaves no usable cache
//! entry, the manager compiles in-process (and so reports a bad component's error itself).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::cache::DiskCache;
use super::engine;

/// The hidden subcommand the manager runs itself with.
pub const SUBCOMMAND: &str = "__compile-component";

/// Arguments of the hidden subcommand; the component's bytes come on stdin.
#[derive(Debug, Clone, clap::Args)]
pub struct ChildArgs {
    /// The disk cache to compile into.
    #[arg(long = "cache-dir")]
    pub cache_dir: PathBuf,
    /// The key that authenticates the cache's entries: the manager's own.
    #[arg(long = "cache-key")]
    pub cache_key: PathBuf,
    /// The manager's pid: the child ends with it (never left behind by a manager that
    /// was killed while it compiled).
    #[arg(long = "parent")]
    pub parent: u32,
}

/// The child's side: compiles stdin into the cache. Exit 0 when the entry is written,
/// 1 with one line on stderr otherwise.
pub fn child_main(args: &ChildArgs) -> i32 {
    // SAFETY: prctl with PR_SET_PDEATHSIG only sets a signal for this process.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    // The parent may have died before the line above: then nobody waits for the result.
    if std::os::unix::process::parent_id() != args.parent {
        return 1;
    }
    match compile_into(&args.cache_dir, &args.cache_key) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("pymanager {SUBCOMMAND}: {e}");
            1
        }
    }
}

fn compile_into(dir: &Path, key: &Path) -> Result<(), String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the component: {e}"))?;
    let engine = engine::compiler()?;
    let cache = DiskCache::new(&engine, Some(dir.to_path_buf()), Some(key.to_path_buf()));
    if let Some(why) = cache.warning() {
        return Err(why.to_string());
    }
    cache
        .load_or_compile(&engine, &bytes)
        .map_err(|e| format!("cannot compile the component: {e}"))?;
    Ok(())
}

/// The manager's side: runs `exe` as the compiling child for `bytes` into `dir` (entries
/// authenticated with the key in `key`), and waits for it. Blocking: call it from a blocking thread. Success means only that the child
/// ran to its end; the caller then looks in the cache.
pub(crate) fn compile(exe: &Path, dir: &Path, key: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut child = Command::new(exe)
        .arg(SUBCOMMAND)
        .arg("--cache-dir")
        .arg(dir)
        .arg("--cache-key")
        .arg(key)
        .arg("--parent")
        .arg(std::process::id().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A child that died early closes the pipe; its status says why.
        let _ = stdin.write_all(bytes);
    }
    // The manager's reaper may collect the child's status first (it reaps every child);
    // then this wait fails, and the cache entry, present or not, is the answer.
    match child.wait_with_output() {
        Ok(out) if !out.status.success() => Err(String::from_utf8_lossy(&out.stderr)
            .trim()
            .lines()
            .last()
            .unwrap_or("the compiling child failed")
            .to_string()),
        _ => Ok(()),
    }
}
