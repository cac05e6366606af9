//! The command line of a process: which program, with which shell, in which environment.

use std::ffi::OsString;
use std::path::Path;

use crate::config::StringOrBool;

/// The shell `default_shell: true` means: the user's login shell, else `/bin/sh`.
pub(crate) fn default_shell(choice: &StringOrBool) -> String {
    match choice {
        StringOrBool::String(s) if !s.trim().is_empty() => s.clone(),
        _ => std::env::var("SHELL")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "/bin/sh".into()),
    }
}

/// The program to run for `executable`. A bare name is looked up in `PATH` as it is; a
/// relative path is looked up in the working directory first (where the original found it:
/// Python's subprocess runs it after changing directory) and then in the launch directory
/// (where the original's description says it is found). When it is in neither (an earlier
/// process may still create it), the working directory's is the one tried.
pub(super) fn find_executable(executable: &str, workdir: Option<&Path>, launch: &Path) -> OsString {
    let path = Path::new(executable);
    if !executable.contains('/') || path.is_absolute() {
        return OsString::from(executable);
    }
    let from_launch = launch.join(path);
    match workdir {
        Some(dir) if dir.join(path).is_file() || !from_launch.is_file() => {
            dir.join(path).into_os_string()
        }
        _ => from_launch.into_os_string(),
    }
}

/// Opens `file` for reading, as sourcing it would, without running anything.
pub(super) fn check_readable(file: &Path) -> Result<(), String> {
    if file.is_dir() {
        return Err(format!("cannot read {}: it is a directory", file.display()));
    }
    std::fs::File::open(file).map(drop).map_err(|e| {
        format!(
            "cannot read {}: {}",
            file.display(),
            crate::error_text::io(&e)
        )
    })
}

/// Sources `file` in `shell` and returns the environment it leaves.
pub(super) fn source_env_file(
    shell: &str,
    file: &Path,
) -> Result<Vec<(OsString, OsString)>, String> {
    use std::os::unix::ffi::OsStrExt;
    if !file.is_file() {
        return Err(format!("cannot read {}: no such file", file.display()));
    }
    let out = std::process::Command::new(shell)
        .arg("-c")
        .arg(". \"$1\" >/dev/null && exec env -0")
        .arg("pymanager")
        .arg(file)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {shell} to source {}: {e}", file.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "sourcing {} in {shell} failed ({}): {}",
            file.display(),
            out.status,
            err.lines().last().unwrap_or("").trim()
        ));
    }
    Ok(out
        .stdout
        .split(|b| *b == 0)
        .filter_map(|kv| {
            let eq = kv.iter().position(|b| *b == b'=')?;
            let (k, v) = kv.split_at(eq);
            if k.is_empty() {
                return None;
            }
            Some((
                std::ffi::OsStr::from_bytes(k).to_os_string(),
                std::ffi::OsStr::from_bytes(&v[1..]).to_os_string(),
            ))
        })
        .collect())
}
