//! Errors as the one line a person reads: every error pymanager reports goes through here,
//! so that causes are shown the same way everywhere.
//!
//! Library errors (reqwest, wasmtime, std::io) say little at the top ("error sending
//! request") and the useful part deep in their sources ("Connection refused"); some repeat
//! their cause in their own message, some span lines. [`chain`] walks the sources once,
//! skips what was already said, and folds everything onto one line.

use std::error::Error;

/// The error and each cause not already contained in what came before, joined by `": "`,
/// on one line (line breaks folded, control characters escaped, Rust's `(os error N)`
/// dropped where the OS's own words are there).
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(err) = next {
        let text = match err.downcast_ref::<std::io::Error>() {
            Some(io_err) => io(io_err),
            None => err.to_string(),
        };
        let text = text.lines().map(str::trim).collect::<Vec<_>>().join(" ");
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    one_line(&parts.join(": "))
}

/// The innermost cause alone, for a line repeated per attempt where the layers above it
/// add only noise (`Connection refused`); I/O errors in the OS's words.
pub fn root_cause(e: &(dyn Error + 'static)) -> String {
    let mut err = e;
    while let Some(next) = err.source() {
        err = next;
    }
    let text = match err.downcast_ref::<std::io::Error>() {
        Some(io_err) => io(io_err),
        None => err.to_string(),
    };
    one_line(&text.lines().map(str::trim).collect::<Vec<_>>().join(" "))
}

/// An I/O error in the OS's words (`No such file or directory`), without Rust's
/// `(os error 2)` suffix; other I/O errors as they are.
pub fn io(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) if e.get_ref().is_none() => nix::errno::Errno::from_raw(code).desc().to_string(),
        _ => e.to_string(),
    }
}

/// `s` with control characters escaped (`\n`, `\u{1b}`), for messages that must stay on
/// one line.
pub fn one_line(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer failed")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn causes_once_each_on_one_line() {
        let io_err = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        let e = Outer(Middle(io_err));
        // The middle error already names its cause: it is not repeated.
        assert_eq!(
            chain(&e),
            "outer failed: middle: Connection refused (os error 111)"
        );
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(chain(&e), "No such file or directory");
        let e = Outer(Middle(std::io::Error::from_raw_os_error(
            libc::ECONNREFUSED,
        )));
        assert_eq!(root_cause(&e), "Connection refused");
        let e = std::io::Error::other("two\nlines\u{1b}");
        assert_eq!(chain(&e), "two lines\\u{1b}");
    }
}
