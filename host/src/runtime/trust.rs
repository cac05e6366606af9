//! The `ca_file` argument every verifier takes: certificate authorities that its `https://`
//! requests trust besides the system's roots (a test CA, a company CA).
//!
//! The host reads the file, not the guest (a guest has no files): the argument is taken off
//! the arguments before they reach the guest, the file is read and checked when the config
//! is validated (a missing or certificate-less file is a config error, at load), and every
//! verification that names it uses what was read then (the HTTP clients keep what they
//! read, see `host_fns::http`). A relative path is resolved by the plan against the config
//! file's directory.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

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
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("{CA_FILE}: cannot read {shown}: {e}"))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("{CA_FILE}: {shown} is not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{CA_FILE}: {shown} holds no PEM certificate"));
    }
    Ok(certs)
}

/// A CA file read: its path (which names the clients that trust it) and its certificates.
#[derive(Debug)]
pub(crate) struct CaFile {
    pub path: PathBuf,
    pub certs: Vec<reqwest::Certificate>,
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
