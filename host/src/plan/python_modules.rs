//! Finding a Python verifier module written for the original pymanager, as its `import`
//! did: `<name>.py` or a package `<name>/` beside the config, then on `PYTHONPATH`
//! (`pkg.mod` is `pkg/mod.py`; the whole top-level package is bundled).
//!
//! Its top-level code runs when it is built, and it gets a network grant, so a module that
//! someone else could have written is never used: every file and folder read must be the
//! user's or root's with nobody else allowed to write to it, a symbolic link is followed
//! only if the link and its target both pass, and only regular files are read (a planted
//! FIFO or device is an error, never opened for reading). What fails is an error naming
//! the path and why, never a reason to look further along the path (a planted module
//! beside the config cannot shadow the one on `PYTHONPATH`). Each file is read through the
//! descriptor that was checked, once, here: the build uses those bytes.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::private_files::{self, Opened, TrustedDir};
use crate::runtime::python::PythonModule;

/// Most files a module may bundle.
const MAX_FILES: usize = 10_000;
/// Most bytes of source a module may bundle.
const MAX_BYTES: usize = 64 << 20;
/// Deepest folder nesting followed (symbolic links could make a cycle).
const MAX_DEPTH: usize = 32;

/// The module `name`, looked up beside `config_dir` and then on `pythonpath` (as
/// `PYTHONPATH` gives it), read and checked; `Ok(None)` if it is nowhere. `build_time` is
/// what its build may take.
pub(super) fn find(
    name: &str,
    config_dir: &Path,
    pythonpath: Option<&OsStr>,
    build_time: Duration,
) -> Result<Option<PythonModule>, String> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || !p.chars().all(|c| c.is_alphanumeric() || c == '_'))
    {
        return Ok(None);
    }
    let dirs = std::iter::once(config_dir.to_path_buf()).chain(
        pythonpath
            .map(|p| std::env::split_paths(p).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !p.as_os_str().is_empty()),
    );
    let (last, packages) = parts.split_last().expect("split gives one part at least");
    for dir in dirs {
        let mut at = dir.clone();
        at.extend(packages);
        let file = at.join(format!("{last}.py"));
        let package = at.join(last).join("__init__.py");
        // Found here if either is there at all (a link, a FIFO …): then it must pass.
        let root = if exists(&file) && packages.is_empty() {
            file.clone()
        } else if exists(&file) || exists(&package) {
            dir.join(parts[0])
        } else {
            continue;
        };
        let mut sources = Vec::new();
        read_root(&root, &dir, &mut sources).map_err(|e| e.to_string())?;
        let wanted = [file, package];
        if !sources
            .iter()
            .any(|(rel, _)| wanted.iter().any(|w| dir.join(rel) == *w))
        {
            // Found by its path, but the package's folders did not lead to it.
            return Err(format!(
                "{} does not hold module {name} as a package of Python files",
                root.display()
            ));
        }
        return Ok(Some(PythonModule {
            name: name.to_string(),
            root,
            sources,
            build_time,
        }));
    }
    Ok(None)
}

/// True when something (even a dangling link) is at `path`.
fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Reads the module's root (a `.py` file or a package folder) into `out` as paths relative
/// to `base`.
fn read_root(
    root: &Path,
    base: &Path,
    out: &mut Vec<(PathBuf, Vec<u8>)>,
) -> Result<(), private_files::FileError> {
    let rel = root.strip_prefix(base).unwrap_or(root).to_path_buf();
    match private_files::open_trusted(root)? {
        None => Err(gone(root)),
        Some(Opened::File(bytes)) => {
            out.push((rel, bytes));
            Ok(())
        }
        Some(Opened::Dir(dir)) => {
            let mut budget = Budget::default();
            walk(&dir, &rel, 0, out, &mut budget)?;
            out.sort();
            Ok(())
        }
    }
}

/// What a package may still bundle.
#[derive(Default)]
struct Budget {
    files: usize,
    bytes: usize,
}

/// Every `.py` file under `dir` (not `__pycache__`), each checked, into `out`.
fn walk(
    dir: &TrustedDir,
    rel: &Path,
    depth: usize,
    out: &mut Vec<(PathBuf, Vec<u8>)>,
    budget: &mut Budget,
) -> Result<(), private_files::FileError> {
    if depth > MAX_DEPTH {
        return Err(too_big(
            dir.path(),
            "folders nested too deep (a link cycle?)",
        ));
    }
    for name in dir.names()? {
        if name == "__pycache__" {
            continue;
        }
        let Some(st) = dir.kind(&name)? else {
            continue;
        };
        let is_py = Path::new(&name).extension().is_some_and(|e| e == "py");
        // Only to choose what to open: opening checks what is really there.
        let wanted = is_py
            || private_files::is_dir(&st)
            || (private_files::is_symlink(&st) && dir.path().join(&name).is_dir());
        if !wanted {
            // Not Python and not a folder: never opened, whatever it is.
            continue;
        }
        match dir.open(&name)? {
            None => return Err(gone(&dir.path().join(&name))),
            Some(Opened::Dir(sub)) => walk(&sub, &rel.join(&name), depth + 1, out, budget)?,
            Some(Opened::File(bytes)) if is_py => {
                budget.files += 1;
                budget.bytes += bytes.len();
                if budget.files > MAX_FILES || budget.bytes > MAX_BYTES {
                    return Err(too_big(
                        dir.path(),
                        "more than 10000 files or 64 MiB of Python: a verifier module should be small",
                    ));
                }
                out.push((rel.join(&name), bytes));
            }
            Some(Opened::File(_)) => {}
        }
    }
    Ok(())
}

fn gone(path: &Path) -> private_files::FileError {
    private_files::FileError::Io {
        action: "read",
        path: path.to_path_buf(),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    }
}

fn too_big(path: &Path, why: &str) -> private_files::FileError {
    private_files::FileError::Untrusted {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    const T: Duration = Duration::from_secs(1);

    fn find_in(name: &str, dir: &Path) -> Result<Option<PythonModule>, String> {
        find(name, dir, None, T)
    }

    #[test]
    fn modules_are_found_like_imports() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("checks.py"), "A = 1\n").unwrap();
        std::fs::create_dir_all(dir.path().join("pkg/sub/__pycache__")).unwrap();
        std::fs::write(dir.path().join("pkg/__init__.py"), "").unwrap();
        std::fs::write(dir.path().join("pkg/sub/__init__.py"), "").unwrap();
        std::fs::write(dir.path().join("pkg/sub/mod.py"), "").unwrap();
        std::fs::write(dir.path().join("pkg/sub/data.txt"), "").unwrap();
        std::fs::write(dir.path().join("pkg/sub/__pycache__/mod.py"), "").unwrap();
        let m = find_in("checks", dir.path()).unwrap().unwrap();
        assert_eq!(m.root, dir.path().join("checks.py"));
        assert_eq!(
            m.sources,
            [(PathBuf::from("checks.py"), b"A = 1\n".to_vec())]
        );
        let m = find_in("pkg.sub.mod", dir.path()).unwrap().unwrap();
        assert_eq!(m.root, dir.path().join("pkg"));
        let names: Vec<_> = m
            .sources
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        assert_eq!(
            names,
            ["pkg/__init__.py", "pkg/sub/__init__.py", "pkg/sub/mod.py"]
        );
        assert!(find_in("nothere", dir.path()).unwrap().is_none());
        assert!(find_in("../etc", dir.path()).unwrap().is_none());
    }

    #[test]
    fn the_config_directory_comes_first_and_pythonpath_after() {
        let cfg = tempfile::tempdir().unwrap();
        let lib = tempfile::tempdir().unwrap();
        std::fs::write(lib.path().join("checks.py"), "LIB = 1\n").unwrap();
        let path = lib.path().as_os_str();
        let m = find("checks", cfg.path(), Some(path), T).unwrap().unwrap();
        assert_eq!(m.root, lib.path().join("checks.py"));
        std::fs::write(cfg.path().join("checks.py"), "CFG = 1\n").unwrap();
        let m = find("checks", cfg.path(), Some(path), T).unwrap().unwrap();
        assert_eq!(m.root, cfg.path().join("checks.py"));
    }

    #[test]
    fn a_module_others_may_write_to_is_an_error_not_skipped() {
        let cfg = tempfile::tempdir().unwrap();
        let lib = tempfile::tempdir().unwrap();
        std::fs::write(lib.path().join("checks.py"), "LIB = 1\n").unwrap();
        let planted = cfg.path().join("checks.py");
        std::fs::write(&planted, "EVIL = 1\n").unwrap();
        std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = find("checks", cfg.path(), Some(lib.path().as_os_str()), T).unwrap_err();
        assert!(
            e.contains(&format!("refusing to use {}", planted.display()))
                && e.contains("others may write to the file (mode 0666)"),
            "{e}"
        );
        // A file of a package, or the package's folder, likewise.
        std::fs::remove_file(&planted).unwrap();
        std::fs::create_dir(cfg.path().join("pkg")).unwrap();
        std::fs::write(cfg.path().join("pkg/__init__.py"), "").unwrap();
        std::fs::set_permissions(
            cfg.path().join("pkg"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        let e = find_in("pkg", cfg.path()).unwrap_err();
        assert!(e.contains("others may write to the directory"), "{e}");
    }

    #[test]
    fn fifos_are_errors_and_links_are_checked_at_both_ends() {
        let cfg = tempfile::tempdir().unwrap();
        let fifo = cfg.path().join("checks.py");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = find_in("checks", cfg.path()).unwrap_err();
        assert!(e.contains("it is a FIFO"), "{e}");
        std::fs::remove_file(&fifo).unwrap();

        let real = cfg.path().join("real.py");
        std::fs::write(&real, "R = 1\n").unwrap();
        symlink(&real, &fifo).unwrap();
        let m = find_in("checks", cfg.path()).unwrap().unwrap();
        assert_eq!(
            m.sources,
            [(PathBuf::from("checks.py"), b"R = 1\n".to_vec())]
        );
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o646)).unwrap();
        let e = find_in("checks", cfg.path()).unwrap_err();
        assert!(e.contains(&real.display().to_string()), "{e}");
        std::fs::remove_file(&fifo).unwrap();
        symlink(cfg.path().join("nowhere.py"), &fifo).unwrap();
        let e = find_in("checks", cfg.path()).unwrap_err();
        assert!(e.contains("checks.py"), "{e}");
    }
}
