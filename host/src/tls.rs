//! TLS for every HTTP client pymanager builds (the verifiers' host client, `ctl`, tests).
//!
//! reqwest runs on rustls with the *ring* crypto provider: ring builds with the plain C
//! compiler that a Rust toolchain on Linux already needs for linking, where rustls's default
//! provider (aws-lc-rs) needs more of a C build environment. reqwest is built without a
//! provider of its own, so one must be installed before the first client is built, or
//! building it panics: every place that builds a client calls [`install_crypto_provider`]
//! first.

use std::sync::Once;

/// Installs ring as the process's rustls crypto provider, once. Cheap to call again; a
/// provider someone else installed first is kept.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means a provider is installed already, which is all that is needed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
