//! Verifier modules written for the original pymanager: Python files whose `Verifier`
//! subclasses it imported by module name. Here such a module is built into a component by
//! componentize-py, with a small bundled `pymutils` package that gives it the original's
//! API (`Verifier`, `proc.wait`, `proc.code`, `proc.pid`, `log_fail`, `log_verbose`) and a
//! `requests` and `time.sleep` that go through the host interface, and then runs in the
//! same sandbox as every other verifier. The built component is cached by content (the
//! module's files, the bundle, the WIT and componentize-py's version), so it is built once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// The componentize-py release the bundle is written and tested against.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// Environment variable naming the componentize-py executable (else it is looked up on
/// `PATH`).
pub const COMPONENTIZE_PY_ENV: &str = "PYMANAGER_COMPONENTIZE_PY";

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

/// A Python verifier module found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonModule {
    /// The dotted module name, as the config's `modules` key gives it.
    pub name: String,
    /// What is copied into the component: the module's `.py` file, or its top-level
    /// package folder.
    pub root: PathBuf,
}

/// Looks `name` (`checks`, `mypkg.checks`) up as the original's `import` would: a
/// `.py` file or a package, next to the config first, then on `PYTHONPATH`.
pub fn find(name: &str, config_dir: &Path) -> Option<PythonModule> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || !p.chars().all(|c| c.is_alphanumeric() || c == '_'))
    {
        return None;
    }
    let pythonpath = std::env::var_os("PYTHONPATH").unwrap_or_default();
    let dirs = std::iter::once(config_dir.to_path_buf())
        .chain(std::env::split_paths(&pythonpath).filter(|p| !p.as_os_str().is_empty()));
    for dir in dirs {
        let mut path = dir.clone();
        for p in &parts[..parts.len() - 1] {
            path.push(p);
        }
        let last = parts[parts.len() - 1];
        let found = path.join(format!("{last}.py")).is_file()
            || path.join(last).join("__init__.py").is_file();
        if found {
            let root = if parts.len() == 1 && path.join(format!("{last}.py")).is_file() {
                path.join(format!("{last}.py"))
            } else {
                dir.join(parts[0])
            };
            return Some(PythonModule {
                name: name.to_string(),
                root,
            });
        }
    }
    None
}

/// Builds (or finds in `cache_dir`) the component of `module`; returns its path.
/// Blocking: it runs componentize-py (seconds) on a cache miss.
pub fn build(module: &PythonModule, cache_dir: &Path) -> Result<PathBuf, String> {
    let tool = componentize_py();
    let version = tool_version(&tool)?;
    let sources = sources(&module.root)?;
    let mut h = Sha256::new();
    for (name, text) in BUNDLE {
        h.update(name.as_bytes());
        h.update(text.as_bytes());
    }
    h.update(WIT.as_bytes());
    h.update(version.as_bytes());
    h.update(module.name.as_bytes());
    for (rel, bytes) in &sources {
        h.update(rel.to_string_lossy().as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    let key: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let dir = cache_dir.join("python");
    let out = dir.join(format!("{key}.wasm"));
    if out.is_file() {
        return Ok(out);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let stage = Stage::new(&dir)?;
    let (bundle, user, wit) = (
        stage.0.join("bundle"),
        stage.0.join("user"),
        stage.0.join("wit"),
    );
    for (rel, text) in BUNDLE {
        write(&bundle.join(rel), text.as_bytes())?;
    }
    write(
        &bundle.join("pymanager_target.py"),
        format!("MODULE = {:?}\n", module.name).as_bytes(),
    )?;
    write(&wit.join("verifier.wit"), WIT.as_bytes())?;
    for (rel, bytes) in &sources {
        write(&user.join(rel), bytes)?;
    }
    let tmp = stage.0.join("out.wasm");
    let run = Command::new(&tool)
        .arg("-d")
        .arg(&wit)
        .args([
            "-w",
            "verifier-module",
            "componentize",
            "pymanager_app",
            "-p",
        ])
        .arg(&bundle)
        .arg("-p")
        .arg(&user)
        .arg("-o")
        .arg(&tmp)
        .current_dir(&stage.0)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", tool.display()))?;
    if !run.status.success() {
        return Err(format!(
            "building {} into a component failed: {}",
            module.root.display(),
            last_error(&run.stderr)
        ));
    }
    std::fs::rename(&tmp, &out).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(out)
}

/// The one line that says what to do when componentize-py is not there.
pub fn install_hint() -> String {
    format!(
        "building a Python verifier module needs componentize-py: install it with \
         'pip install \"pymanager-rs[python]\"' (or 'pip install \
         componentize-py=={COMPONENTIZE_PY_VERSION}'), or name it in {COMPONENTIZE_PY_ENV}"
    )
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
    match Command::new(tool).arg("--version").output() {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).trim().into()),
        Ok(_) => Err(install_hint()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(install_hint()),
        Err(e) => Err(format!("cannot run {}: {e}", tool.display())),
    }
}

/// The module's files (relative path, contents): one `.py` file, or every `.py` file of
/// its package, in a stable order.
fn sources(root: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    if root.is_file() {
        let name = PathBuf::from(root.file_name().unwrap_or_default());
        return Ok(vec![(name, read(root)?)]);
    }
    let base = root.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() && p.file_name().is_some_and(|n| n != "__pycache__") {
                todo.push(p);
            } else if p.extension().is_some_and(|e| e == "py") {
                let rel = p.strip_prefix(base).unwrap_or(&p).to_path_buf();
                out.push((rel, read(&p)?));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
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

/// A staging folder, removed when dropped.
struct Stage(PathBuf);

impl Stage {
    fn new(parent: &Path) -> Result<Stage, String> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = parent.join(format!(
            ".build-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Stage(dir))
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_are_found_like_imports() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("checks.py"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("pkg/sub")).unwrap();
        std::fs::write(dir.path().join("pkg/__init__.py"), "").unwrap();
        std::fs::write(dir.path().join("pkg/sub/__init__.py"), "").unwrap();
        std::fs::write(dir.path().join("pkg/sub/mod.py"), "").unwrap();
        let m = find("checks", dir.path()).unwrap();
        assert_eq!(m.root, dir.path().join("checks.py"));
        let m = find("pkg.sub.mod", dir.path()).unwrap();
        assert_eq!(m.root, dir.path().join("pkg"));
        assert!(find("nothere", dir.path()).is_none());
        assert!(find("../etc", dir.path()).is_none());
        let files = sources(&m.root).unwrap();
        let names: Vec<_> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        assert_eq!(
            names,
            ["pkg/__init__.py", "pkg/sub/__init__.py", "pkg/sub/mod.py"]
        );
    }

    #[test]
    fn a_missing_componentize_py_says_how_to_install_it() {
        let e = tool_version(Path::new("/nonexistent/componentize-py")).unwrap_err();
        assert!(e.contains("pip install \"pymanager-rs[python]\""), "{e}");
        assert!(e.contains("pip install componentize-py==0.25.1"), "{e}");
    }
}
