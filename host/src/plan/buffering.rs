//! The stdout buffering trap: a Python interpreter writing into pymanager's pipe keeps its
//! output in an 8 KiB block buffer, so an output verifier waiting for a line sees nothing
//! until the buffer fills or the process exits. Found at config load, told as a warning.

use std::ffi::OsString;
use std::path::Path;

/// True for a Python interpreter started without `-u` and without `PYTHONUNBUFFERED`:
/// its stdout is block-buffered into pymanager's pipe. `env` is the process's whole
/// environment when an environment file defined it, else pymanager's own applies.
pub(super) fn python_block_buffered(
    executable: &str,
    args: &[String],
    env: Option<&[(OsString, OsString)]>,
) -> bool {
    let mut words = executable.split_whitespace();
    let program = words.next().unwrap_or("");
    let name = Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let is_python = name
        .strip_prefix("python")
        .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'));
    if !is_python {
        return false;
    }
    // Interpreter options come before the script (or -c/-m); `-u` may be combined (`-Bu`).
    let unbuffered_flag = words
        .map(str::to_string)
        .chain(args.iter().cloned())
        .take_while(|a| a.starts_with('-') && a != "-" && a != "--")
        .any(|a| {
            !a.starts_with("--")
                && a[1..]
                    .chars()
                    .take_while(|c| *c != 'c' && *c != 'm')
                    .any(|c| c == 'u')
        });
    let set = |v: Option<&OsString>| v.is_some_and(|v| !v.is_empty());
    let unbuffered_env = match env {
        Some(vars) => set(vars
            .iter()
            .find(|(k, _)| k == "PYTHONUNBUFFERED")
            .map(|(_, v)| v)),
        None => set(std::env::var_os("PYTHONUNBUFFERED").as_ref()),
    };
    !unbuffered_flag && !unbuffered_env
}

/// The warning for a process whose output an output verifier watches (`at` is its field
/// path, `processes.<name>`).
pub(super) fn warning(at: &str) -> String {
    format!(
        "[WARNING] {at}: OutputVerifier watches a Python process, which block-buffers its \
         output into a pipe (a line may not arrive until 8 KiB did): add \"-u\" to its \
         arguments or PYTHONUNBUFFERED=1 to its environment"
    )
}

#[cfg(test)]
mod tests {
    use super::python_block_buffered as buffered;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_python_without_u_is_block_buffered() {
        let unbuffered = [("PYTHONUNBUFFERED".into(), "1".into())];
        assert!(buffered("python3", &args(&["server.py"]), Some(&[])));
        assert!(buffered(
            "/usr/bin/python3.11",
            &args(&["server.py", "-u"]),
            Some(&[])
        ));
        assert!(!buffered("python3", &args(&["-u", "server.py"]), Some(&[])));
        assert!(!buffered(
            "python3",
            &args(&["-Bu", "-m", "http.server"]),
            Some(&[])
        ));
        assert!(!buffered("python3 -u", &args(&[]), Some(&[])));
        assert!(!buffered(
            "python3",
            &args(&["server.py"]),
            Some(&unbuffered)
        ));
        assert!(!buffered("node", &args(&["server.js"]), Some(&[])));
        assert!(!buffered("pythonista", &args(&[]), Some(&[])));
        assert!(buffered("python", &args(&["-m", "x", "-u"]), Some(&[])));
    }
}
