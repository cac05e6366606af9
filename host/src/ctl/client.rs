//! The HTTP side of `ctl`: one client, never through a proxy, answers read as the API's own
//! types ([`crate::api::v1`]), and the manager's error body turned into a [`CtlError`].

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde::de::DeserializeOwned;

use super::CtlError;
use super::locate::Target;
use crate::api::v1;
use crate::error_text;

/// How long connecting to the manager may take; it is local, so this is generous.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client of one manager.
pub struct Client {
    target: Target,
    http: reqwest::Client,
}

impl Client {
    /// A client for `target`. Proxies are ignored (`HTTP_PROXY` and friends): the manager is
    /// local, and its token must not travel through anyone else.
    pub fn new(target: Target) -> Result<Client, CtlError> {
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| {
                CtlError::Failed(format!(
                    "cannot set up an HTTP client: {}",
                    error_text::chain(&e)
                ))
            })?;
        Ok(Client { target, http })
    }

    /// Sends a request; a 2xx response, or the manager's refusal as a [`CtlError`].
    pub async fn send(&self, method: Method, path: &str) -> Result<Response, CtlError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.target.base));
        if let Some(t) = &self.target.token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.map_err(|e| {
            CtlError::Unreachable(format!(
                "cannot reach the manager at {}: {}",
                self.target.base,
                error_text::chain(&e)
            ))
        })?;
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        let message = match serde_json::from_str::<v1::ErrorBody<'static>>(&body) {
            Ok(b) => b.error.message.into_owned(),
            Err(_) => format!("{status}: {}", body.trim()),
        };
        let hint = if status == StatusCode::UNAUTHORIZED {
            " (give the token with --token or PYMANAGER_TOKEN)"
        } else {
            ""
        };
        Err(CtlError::Failed(format!("{message}{hint}")))
    }

    /// A request whose answer is JSON of type `T`.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
    ) -> Result<T, CtlError> {
        let res = self.send(method, path).await?;
        let bytes = res.bytes().await.map_err(|e| {
            CtlError::Unreachable(format!(
                "the manager went away while answering: {}",
                error_text::chain(&e)
            ))
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            CtlError::Failed(format!(
                "unexpected answer from {}{path}: {e}",
                self.target.base
            ))
        })
    }
}

/// Percent-encodes a process name for a path segment.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_for_paths() {
        assert_eq!(encode("web server/1"), "web%20server%2F1");
        assert_eq!(encode("a-b_c.d~"), "a-b_c.d~");
    }
}
