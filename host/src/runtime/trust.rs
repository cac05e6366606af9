//! The `ca_file` argument every verifier takes: certificate authorities that its `https://`
//! requests trust besides the system's roots (a test CA, a company CA); and the CA bundles
//! that Python users' environments already name (`REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE`,
//! `CURL_CA_BUNDLE`), which every verifier trusts as well, as the original did through
//! `requests`.
//!
//! The host reads the file, not the guest (a guest has no files): the argument is taken off
//! the arguments before they reach the guest, the file is read and checked when the config
//! is validated (a missing or certificate-less file is a config error, at load), and every
//! verification that names it uses what was read then (the HTTP clients that trust it are
//! kept with the others, see `host_fns::http`). A relative path is resolved by the plan against the config
//! file's directory.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The argument's name in a verifier's `arguments`.
pub const CA_FILE: &str = "ca_file";

/// Splits `ca_file` off a verifier's arguments (JSON text): the arguments the guest gets,
/// and the file, if one is named (`null` names none). The error is a guest-style message,
/// `ca_file: …`, so that it lands under the argument's field path.
pub(crate) fn split(args_json: &str) -> Result<(Cow<'_, str>, Option<PathBuf>), String> {
    if !args_json.contains(CA_FILE) {
        return Ok((Cow::Borrowed(args_json), None));
    }
    let Ok(serde_json::Value::Object(mut args)) = serde_json::from_str(args_json) else {
        // Not an object: the guest says what is wrong with it.
        return Ok((Cow::Borrowed(args_json), None));
    };
    let path = match args.remove(CA_FILE) {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(PathBuf::from(s)),
        Some(other) => {
            return Err(format!(
                "{CA_FILE}: expected the path of a PEM file of CA certificates, got {other}"
            ));
        }
    };
    let rest = serde_json::Value::Object(args).to_string();
    Ok((Cow::Owned(rest), path))
}

/// The certificates of a PEM file, or why there are none.
pub fn read_pem(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    read_pem_named(CA_FILE, path)
}

/// [`read_pem`], with errors that start with `what` (the argument or variable naming it).
fn read_pem_named(what: &str, path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("{what}: cannot read {shown}: {e}"))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("{what}: {shown} is not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: {shown} holds no PEM certificate"));
    }
    Ok(certs)
}

/// The environment variables that name a CA bundle for Python's `requests`, OpenSSL and
/// curl. Every one that is set (and not empty) is trusted, besides the system's roots.
/// (`SSL_CERT_FILE`, as for every OpenSSL program, also replaces the system's store when
/// the platform's roots are loaded.)
pub const CA_BUNDLE_VARS: [&str; 3] = ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"];

/// The certificates of the CA bundles the environment names (see [`CA_BUNDLE_VARS`]),
/// read on first use and kept for the process's life; or why one of them cannot be used,
/// naming the variable (`REQUESTS_CA_BUNDLE: cannot read /x.pem: …`), which fails every
/// `https://` request as it failed `requests`.
pub(crate) fn env_bundles() -> Result<&'static [reqwest::Certificate], &'static str> {
    static READ: OnceLock<Result<Vec<reqwest::Certificate>, String>> = OnceLock::new();
    READ.get_or_init(|| read_env_bundles(|k| std::env::var_os(k)))
        .as_deref()
        .map_err(String::as_str)
}

fn read_env_bundles(
    var: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<Vec<reqwest::Certificate>, String> {
    let mut certs = Vec::new();
    for name in CA_BUNDLE_VARS {
        let Some(path) = var(name).filter(|p| !p.is_empty()) else {
            continue;
        };
        certs.extend(read_pem_named(name, Path::new(&path))?);
    }
    Ok(certs)
}

/// A CA file read: its path (which names the clients that trust it) and its certificates.
#[derive(Debug)]
pub(crate) struct CaFile {
    pub path: PathBuf,
    pub certs: Vec<reqwest::Certificate>,
}

/// The CA files read so far, each read (and checked) once, when the config is validated;
/// verifications use what was read then.
#[derive(Default)]
pub(crate) struct CaFiles {
    read: Mutex<HashMap<PathBuf, Arc<CaFile>>>,
}

impl CaFiles {
    /// The CA file at `path`, read and checked on first use: its certificates must make an
    /// HTTP client, so that a file that cannot fails the load rather than each attempt.
    pub(crate) fn get(&self, path: &Path) -> Result<Arc<CaFile>, String> {
        let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ca) = read.get(path) {
            return Ok(ca.clone());
        }
        let certs = read_pem(path)?;
        super::host_fns::http::builder()
            .tls_certs_merge(certs.iter().cloned())
            .build()
            .map_err(|e| {
                format!(
                    "{CA_FILE}: cannot use the certificates of {}: {}",
                    path.display(),
                    crate::error_text::chain(&e)
                )
            })?;
        let ca = Arc::new(CaFile {
            path: path.to_path_buf(),
            certs,
        });
        read.insert(path.to_path_buf(), ca.clone());
        Ok(ca)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_file_is_taken_off_the_arguments() {
        let (rest, path) = split(r#"{"url": "https://x/", "ca_file": "/tmp/ca.pem"}"#).unwrap();
        assert_eq!(rest, r#"{"url":"https://x/"}"#);
        assert_eq!(path, Some(PathBuf::from("/tmp/ca.pem")));
        let (rest, path) = split(r#"{"url": "https://x/", "ca_file": null}"#).unwrap();
        assert_eq!(rest, r#"{"url":"https://x/"}"#);
        assert_eq!(path, None);
        let (rest, path) = split(r#"{"url": "http://x/"}"#).unwrap();
        assert_eq!(rest, r#"{"url": "http://x/"}"#);
        assert_eq!(path, None);
    }

    #[test]
    fn a_ca_file_that_is_not_a_path_names_the_argument() {
        let e = split(r#"{"ca_file": 3}"#).unwrap_err();
        assert!(e.starts_with("ca_file: expected the path"), "{e}");
    }

    #[test]
    fn the_environment_names_bundles_by_variable() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, _) = test_ca();
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, &ca).unwrap();
        let none = read_env_bundles(|_| None).unwrap();
        assert!(none.is_empty());
        let both =
            read_env_bundles(|k| (k != "SSL_CERT_FILE").then(|| pem.clone().into_os_string()))
                .unwrap();
        assert_eq!(both.len(), 2);
        let missing = dir.path().join("missing.pem");
        let e = read_env_bundles(|k| (k == "CURL_CA_BUNDLE").then(|| missing.clone().into()))
            .unwrap_err();
        assert!(e.starts_with("CURL_CA_BUNDLE: cannot read"), "{e}");
        // An empty variable names nothing (`requests` treats it the same way).
        assert!(read_env_bundles(|_| Some("".into())).unwrap().is_empty());
    }

    /// A self-signed CA certificate, as PEM, and its key.
    fn test_ca() -> (String, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        (params.self_signed(&key).unwrap().pem(), key)
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let e = read_pem(&empty).unwrap_err();
        assert!(e.contains("holds no PEM certificate"), "{e}");
        let e = read_pem(&dir.path().join("missing.pem")).unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
    }
}
