//! The command line of a process: which program, with which shell, in which environment.

use std::ffi::{OsStr, OsString};
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

/// Whether `program` can be run: a bare name must be found on `PATH` (the process's own,
/// from `env`, else pymanager's), as the spawn will look for it. A path is not checked here:
/// an earlier process may still create it. The error is the spawn's own words.
pub(super) fn check_found(
    program: &OsStr,
    env: Option<&[(OsString, OsString)]>,
) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    if program.as_bytes().contains(&b'/') || program.is_empty() {
        return Ok(());
    }
    let path = match env {
        Some(vars) => vars
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone()),
        None => std::env::var_os("PATH"),
    }
    .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    let found = std::env::split_paths(&path).any(|dir| {
        let candidate = dir.join(program);
        std::fs::metadata(&candidate).is_ok_and(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.is_file() && m.permissions().mode() & 0o111 != 0
        })
    });
    if found {
        Ok(())
    } else {
        Err(format!(
            "cannot run {}: command not found (not in PATH)",
            program.to_string_lossy()
        ))
    }
}
