//! Finding the manager of a config and the token it wants, without trusting anything a
//! neighbour could have planted.
//!
//! In order: `--url` (the user's word, any address); else `PYMANAGER_URL` (what `pymanager
//! run` gives its command, so `ctl` inside it reaches its own copy); else the address file
//! the manager wrote, if it and its directory are ours and it names a loopback address —
//! with several copies of the config running, each wrote its own and the user must choose;
//! else the config's `http.host` and `http.port`, loopback only. The config is read with
//! the same loader the manager uses, so `"enabled": 1` means the same to both.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use super::CtlError;
use crate::config::{self, ConfigError, Loaded};
use crate::state_files;
use crate::token;

/// Where the manager is and what token to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `http://127.0.0.1:5001`, without a trailing slash.
    pub base: String,
    /// The bearer token, if any.
    pub token: Option<String>,
    /// The server must show that it knows the token before it is sent (see
    /// [`crate::token::proof`]): anything but an address the user named with `--url`
    /// (`PYMANAGER_URL` included, which may be left over from an environment that ended)
    /// could be a stale address or the config's port, held by someone else.
    pub prove: bool,
}

/// Finds the manager of `file`, or the one `url` names.
pub fn locate(
    file: &Path,
    url: Option<&str>,
    token_flag: Option<&str>,
) -> Result<Target, CtlError> {
    let config = config::load(file);
    let from_env = std::env::var("PYMANAGER_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    let (base, copy) = match url.map(str::to_string).or(from_env) {
        Some(url) => (url.trim().trim_end_matches('/').to_string(), None),
        None => base_of(file, &config)?,
    };
    Ok(Target {
        base,
        token: token_for(file, &config, token_flag, copy)?,
        prove: url.is_none(),
    })
}

/// The address files of the running managers of `file`: the plain one (`<config>.addr`),
/// and one per copy that found the plain names taken (`<config>.<pid>.addr`), each with the
/// copy's pid.
fn address_files(file: &Path) -> Vec<(std::path::PathBuf, Option<u32>)> {
    let mut files = vec![(state_files::path_of(file, "addr"), None)];
    for pid in state_files::running_instances(file, "addr") {
        files.push((
            state_files::path_of(file, &format!("{pid}.addr")),
            Some(pid),
        ));
    }
    files
}

/// The base URL (and the copy it belongs to, if not the plain one's): the address file,
/// else the config's `http` object.
fn base_of(
    file: &Path,
    config: &Result<Loaded, ConfigError>,
) -> Result<(String, Option<u32>), CtlError> {
    let mut found = Vec::new();
    for (addr_file, copy) in address_files(file) {
        match state_files::read_trusted(&addr_file) {
            Ok(Some(text)) if !text.trim().is_empty() => {
                let url = loopback_url(text.trim()).ok_or_else(|| {
                    CtlError::Unreachable(format!(
                        "{} names {}, which is not a loopback address; give --url {} to talk to it",
                        addr_file.display(),
                        text.trim(),
                        text.trim()
                    ))
                })?;
                found.push((url, copy));
            }
            Ok(_) => {}
            Err(e) => return Err(CtlError::Unreachable(e.to_string())),
        }
    }
    match found.len() {
        0 => {}
        1 => return Ok(found.remove(0)),
        n => {
            return Err(CtlError::Unreachable(format!(
                "{n} copies of {} are running ({}): choose one with --url URL (or PYMANAGER_URL)",
                file.display(),
                found
                    .iter()
                    .map(|(u, _)| u.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let addr_file = state_files::path_of(file, "addr");
    let loaded = config.as_ref().map_err(|e| {
        CtlError::Unreachable(format!(
            "no manager found: no address file {} and {}",
            addr_file.display(),
            e.to_string().trim_start_matches("[ERROR] ")
        ))
    })?;
    let http = &loaded.config.http;
    if !http.enabled {
        return Err(CtlError::Unreachable(format!(
            "the REST API is not enabled in {} (set http.enabled to true)",
            file.display()
        )));
    }
    if http.port == 0 {
        return Err(CtlError::Unreachable(format!(
            "no manager found: no address file {} (http.port is 0, so only that file says \
             where the manager listens; is it running?)",
            addr_file.display()
        )));
    }
    let host = http
        .host
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let ip = match host {
        "" | "localhost" => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        h => h.parse::<IpAddr>().ok(),
    };
    match ip.and_then(|ip| loopback(SocketAddr::new(ip, http.port))) {
        Some(addr) => Ok((format!("http://{addr}"), None)),
        None => Err(CtlError::Unreachable(format!(
            "{} says the manager listens on {}, which is not a loopback address; give --url \
             to talk to it",
            file.display(),
            http.host
        ))),
    }
}

/// `addr` if it is a loopback address; a wildcard address (the manager listens on every
/// interface) is reached on the loopback one.
fn loopback(addr: SocketAddr) -> Option<SocketAddr> {
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    // `::ffff:127.0.0.1` is loopback too, though `Ipv6Addr::is_loopback` says no.
    ip.to_canonical()
        .is_loopback()
        .then_some(SocketAddr::new(ip, addr.port()))
}

/// The address file's `http://<ip>:<port>` as a base URL, if it names a loopback address.
fn loopback_url(text: &str) -> Option<String> {
    let addr: SocketAddr = text
        .strip_prefix("http://")?
        .trim_end_matches('/')
        .parse()
        .ok()?;
    loopback(addr).map(|a| format!("http://{a}"))
}

/// The token: `--token`, else `PYMANAGER_TOKEN`, else the config's (`"auto"`: the token file
/// the manager wrote — copy `copy`'s, if it is not the plain one — if it is ours).
fn token_for(
    file: &Path,
    config: &Result<Loaded, ConfigError>,
    flag: Option<&str>,
    copy: Option<u32>,
) -> Result<Option<String>, CtlError> {
    if let Some(t) = flag.filter(|t| !t.is_empty()) {
        return Ok(Some(t.to_string()));
    }
    if let Some(t) = token::from_env() {
        return Ok(Some(t));
    }
    let Ok(loaded) = config else {
        return Ok(None);
    };
    match loaded.config.http.token.as_deref() {
        Some(token::AUTO) => {
            let path = match copy {
                Some(pid) => state_files::path_of(file, &format!("{pid}.{}", token::FILE_EXT)),
                None => state_files::path_of(file, token::FILE_EXT),
            };
            match state_files::read_trusted(&path) {
                Ok(text) => Ok(text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())),
                Err(e) => Err(CtlError::Unreachable(e.to_string())),
            }
        }
        Some(t) => Ok(Some(t.to_string())),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn write_config(dir: &Path, cfg: Value) -> std::path::PathBuf {
        let mut cfg = cfg;
        cfg["processes"] = json!({"a": {"executable": "true", "arguments": []}});
        let file = dir.join("pm.json");
        std::fs::write(&file, cfg.to_string()).unwrap();
        file
    }

    fn base(cfg: Value) -> Result<String, CtlError> {
        let dir = tempfile::tempdir().unwrap();
        let file = write_config(dir.path(), cfg);
        locate(&file, None, None).map(|t| t.base)
    }

    #[test]
    fn address_from_the_config_when_there_is_no_address_file() {
        assert_eq!(
            base(json!({"http": {"enabled": true}})).unwrap(),
            "http://127.0.0.1:5001"
        );
        // The loader's loose values mean the same here as to the manager.
        assert_eq!(
            base(json!({"http": {"enabled": 1, "port": 6000, "host": "0.0.0.0"}})).unwrap(),
            "http://127.0.0.1:6000"
        );
        assert_eq!(
            base(json!({"http": {"enabled": "true", "port": 7, "host": "::1"}})).unwrap(),
            "http://[::1]:7"
        );
        assert_eq!(
            base(json!({"http": {"enabled": true, "port": 7, "host": "::ffff:127.0.0.1"}}))
                .unwrap(),
            "http://[::ffff:127.0.0.1]:7"
        );
        for refused in [
            json!({"http": {"enabled": false}}),
            json!({"http": {"enabled": true, "port": 0}}),
            json!({"http": {"enabled": true, "host": "192.0.2.1"}}),
        ] {
            assert_eq!(base(refused).unwrap_err().exit_code(), 2);
        }
    }

    #[test]
    fn the_address_file_wins_if_it_names_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_config(dir.path(), json!({}));
        let sd = state_files::StateDir::open(&file).unwrap();
        sd.file("addr")
            .write(b"http://127.0.0.1:9/\n", 0o644)
            .unwrap();
        assert_eq!(
            locate(&file, None, None).unwrap().base,
            "http://127.0.0.1:9"
        );
        sd.file("addr").write(b"http://0.0.0.0:9\n", 0o644).unwrap();
        assert_eq!(
            locate(&file, None, None).unwrap().base,
            "http://127.0.0.1:9"
        );
        sd.file("addr")
            .write(b"http://192.0.2.7:9\n", 0o644)
            .unwrap();
        let e = locate(&file, None, None).unwrap_err();
        assert!(e.to_string().contains("not a loopback address"), "{e}");
        // --url says otherwise.
        assert_eq!(
            locate(&file, Some("http://192.0.2.7:9/"), None)
                .unwrap()
                .base,
            "http://192.0.2.7:9"
        );
    }

    #[test]
    fn the_token_comes_from_the_flag_or_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_config(
            dir.path(),
            json!({"http": {"enabled": true, "token": "t1"}}),
        );
        assert_eq!(
            locate(&file, None, None).unwrap().token.as_deref(),
            Some("t1")
        );
        assert_eq!(
            locate(&file, None, Some("t2")).unwrap().token.as_deref(),
            Some("t2")
        );
        let file = write_config(
            dir.path(),
            json!({"http": {"enabled": true, "token": "auto"}}),
        );
        assert_eq!(locate(&file, None, None).unwrap().token, None);
        let sd = state_files::StateDir::open(&file).unwrap();
        sd.file("token").write(b"generated\n", 0o600).unwrap();
        assert_eq!(
            locate(&file, None, None).unwrap().token.as_deref(),
            Some("generated")
        );
    }
}
