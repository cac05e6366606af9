//! The REST API's bearer token: none, a fixed one (`http.token`, or `PYMANAGER_TOKEN` in the
//! manager's environment), or `"auto"`: a random one made at start and written beside the
//! address file (mode 0600), where `pymanager ctl` on the same account finds it.
//!
//! `PYMANAGER_TOKEN` is read once, at the very start, and removed from the environment
//! before anything is spawned or sourced: the processes pymanager runs never see it.

use std::sync::OnceLock;

use crate::config::HttpConfig;

/// The `http.token` value that asks for a generated token.
pub const AUTO: &str = "auto";

/// The state file (`<config dir>/.pymanager/<config name>.token`) holding a generated token.
pub const FILE_EXT: &str = "token";

/// The environment variable a token may come from, for the manager and for `ctl`.
pub const ENV: &str = "PYMANAGER_TOKEN";

static FROM_ENV: OnceLock<Option<String>> = OnceLock::new();

/// Takes `PYMANAGER_TOKEN` out of the environment and keeps it for [`from_env`]. Must be
/// called first thing in `main`, while the process is still single-threaded.
pub fn take_from_env() {
    let value = std::env::var(ENV).ok().filter(|t| !t.is_empty());
    // SAFETY: called at the start of `main`, before any thread exists, so nothing reads the
    // environment concurrently.
    unsafe { std::env::remove_var(ENV) };
    let _ = FROM_ENV.set(value);
}

/// `PYMANAGER_TOKEN` as it was when pymanager started (unset or empty: `None`).
pub fn from_env() -> Option<String> {
    FROM_ENV
        .get_or_init(|| std::env::var(ENV).ok().filter(|t| !t.is_empty()))
        .clone()
}

/// What the manager's token is to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// No token: anyone who can connect may call the API.
    None,
    /// This token.
    Fixed(String),
    /// A random token made at start and written to the token file.
    Auto,
}

/// The manager's token setting: `http.token` (`"auto"` or a token), else `PYMANAGER_TOKEN`.
pub fn setting(http: &HttpConfig) -> Setting {
    match http.token.as_deref() {
        Some(AUTO) => Setting::Auto,
        Some(t) => Setting::Fixed(t.to_string()),
        None => from_env().map_or(Setting::None, Setting::Fixed),
    }
}

/// A new random token: 32 bytes from the kernel, as hex.
pub fn generate() -> std::io::Result<String> {
    crate::private_files::random_hex(32)
}
