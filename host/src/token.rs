//! The REST API's bearer token: none, a fixed one (`http.token`, or `PYMANAGER_TOKEN` in the
//! manager's environment), or `"auto"`: a random one made at start and written beside the
//! address file (mode 0600), where `pymanager ctl` on the same account finds it.
//!
//! `PYMANAGER_TOKEN` is read once, at the very start, and removed from the environment
//! before anything is spawned or sourced: the processes pymanager runs never see it. Its
//! bytes are also overwritten where the kernel shows the environment pymanager started
//! with (`/proc/<pid>/environ`, which removing a variable does not change), and pymanager
//! then makes itself non-dumpable, so that its children, which run as the same user,
//! cannot read its memory or open its `/proc/<pid>/environ` and `mem` (root still can).

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
    if value.is_some() {
        // Only then: a token from the config or the token file is in a file its children
        // can read anyway, and a dumpable manager lets its owner's tools (and tests) look
        // at its descriptors.
        // SAFETY: PR_SET_DUMPABLE only changes who may inspect this process.
        unsafe {
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        }
    }
    let entries = initial_entries();
    // SAFETY: called at the start of `main`, before any thread exists, so nothing reads the
    // environment concurrently.
    unsafe { std::env::remove_var(ENV) };
    for (ptr, len) in entries {
        // SAFETY: `ptr..ptr+len` is the text of an environment entry (found by `strlen`),
        // which nothing points to any more: `remove_var` took it out of `environ`. The
        // memory is the process's own and writable (the initial block is on the stack).
        unsafe { std::ptr::write_bytes(ptr, 0, len) };
    }
    let _ = FROM_ENV.set(value);
}

unsafe extern "C" {
    /// The C library's environment: the entries the process started with, and any set
    /// since.
    static mut environ: *mut *mut libc::c_char;
}

/// Where the `PYMANAGER_TOKEN=…` entries are in memory, as (start, length without the
/// terminating zero).
fn initial_entries() -> Vec<(*mut u8, usize)> {
    let prefix = format!("{ENV}=");
    let mut found = Vec::new();
    // SAFETY: single-threaded (see `take_from_env`); `environ` is a null-terminated array
    // of pointers to zero-terminated strings.
    unsafe {
        let mut at = environ;
        while !at.is_null() && !(*at).is_null() {
            let entry = *at;
            let len = libc::strlen(entry);
            let bytes = std::slice::from_raw_parts(entry.cast::<u8>(), len);
            if bytes.starts_with(prefix.as_bytes()) {
                found.push((entry.cast::<u8>(), len));
            }
            at = at.add(1);
        }
    }
    found
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

/// The route on which a manager shows a client that it knows the token before the client
/// sends it: `GET` with `?challenge=<hex>`, no token needed.
pub const IDENTITY_PATH: &str = "/api/v1/identity";

/// Shortest and longest challenge, in bytes.
pub const CHALLENGE_BYTES: std::ops::RangeInclusive<usize> = 16..=64;

/// The proof a manager listening on `address` (as bound, e.g. `127.0.0.1:5001` or
/// `0.0.0.0:5001`) gives for `challenge`: HMAC-SHA256 keyed with the token over both. A
/// server that does not know the token cannot make it; one that relays the challenge to a
/// manager elsewhere gets a proof for that manager's address, which the client refuses
/// (see [`address_covers`]). Tokens longer than a hash block are hashed first.
pub fn proof(token: &str, address: &str, challenge: &[u8]) -> [u8; crate::mac::TAG_LEN] {
    use sha2::Digest;
    let digest;
    let key = if token.len() > 64 {
        digest = sha2::Sha256::digest(token.as_bytes());
        &digest[..]
    } else {
        token.as_bytes()
    };
    crate::mac::hmac_sha256(
        key,
        &[
            b"pymanager identity 1\0",
            address.as_bytes(),
            b"\0",
            challenge,
        ],
    )
}

/// True when a server bound to `bound` is the one a client reached by connecting to
/// `target`: the same port, and the same address, or a wildcard of its family (`[::]`
/// takes IPv4 too).
pub fn address_covers(bound: std::net::SocketAddr, target: std::net::SocketAddr) -> bool {
    use std::net::IpAddr;
    if bound.port() != target.port() {
        return false;
    }
    let canonical = |ip: IpAddr| ip.to_canonical();
    let (b, t) = (canonical(bound.ip()), canonical(target.ip()));
    b == t
        || match b {
            IpAddr::V4(v4) => v4.is_unspecified() && t.is_ipv4(),
            IpAddr::V6(v6) => v6.is_unspecified(),
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_binds_the_token_the_address_and_the_challenge() {
        let p = proof("t", "127.0.0.1:5001", b"c");
        assert_eq!(p, proof("t", "127.0.0.1:5001", b"c"));
        assert_ne!(p, proof("u", "127.0.0.1:5001", b"c"));
        assert_ne!(p, proof("t", "127.0.0.1:5002", b"c"));
        assert_ne!(p, proof("t", "127.0.0.1:5001", b"d"));
        let long = "x".repeat(200);
        assert_ne!(proof(&long, "a", b"c"), proof(&long[..199], "a", b"c"));
    }

    #[test]
    fn an_address_covers_what_connecting_to_it_reaches() {
        let a = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        assert!(address_covers(a("127.0.0.1:1"), a("127.0.0.1:1")));
        assert!(address_covers(a("0.0.0.0:1"), a("127.0.0.1:1")));
        assert!(address_covers(a("[::]:1"), a("127.0.0.1:1")));
        assert!(address_covers(a("[::]:1"), a("[::1]:1")));
        assert!(address_covers(a("[::ffff:127.0.0.1]:1"), a("127.0.0.1:1")));
        assert!(!address_covers(a("127.0.0.1:1"), a("127.0.0.1:2")));
        assert!(!address_covers(a("127.0.0.1:1"), a("127.0.0.2:1")));
        assert!(!address_covers(a("0.0.0.0:1"), a("[::1]:1")));
    }
}
