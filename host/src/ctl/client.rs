//! The HTTP side of `ctl`: one client, never through a proxy, answers read as the API's own
//! types ([`crate::api::v1`]), and the manager's error body turned into a [`CtlError`].
//!
//! The token goes only to a server that has shown it knows it: before the first request
//! that would carry it, the client sends a random challenge to the token-free
//! `GET /api/v1/identity` and checks the proof over it and the server's bound address
//! ([`crate::token::proof`]). A program squatting the config's port, or the port of a stale
//! address file, never sees the token. An address the user named (`--url`) is trusted as
//! said.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde::de::DeserializeOwned;

use super::CtlError;
use super::locate::Target;
use crate::api::v1;
use crate::error_text;
use crate::private_files;
use crate::token;

/// How long connecting to the manager may take; it is local, so this is generous.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client of one manager.
pub struct Client {
    target: Target,
    http: reqwest::Client,
    /// What the server has shown: [`UNKNOWN`], [`KNOWS_TOKEN`] or [`ASKS_NONE`].
    shown: AtomicU8,
}

/// Not asked yet.
const UNKNOWN: u8 = 0;
/// The server showed it knows the token: send it.
const KNOWS_TOKEN: u8 = 1;
/// The server asks no token: send none.
const ASKS_NONE: u8 = 2;

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
        Ok(Client {
            target,
            http,
            shown: AtomicU8::new(UNKNOWN),
        })
    }

    /// Sends a request; a 2xx response, or the manager's refusal as a [`CtlError`].
    pub async fn send(&self, method: Method, path: &str) -> Result<Response, CtlError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.target.base));
        if let Some(t) = &self.target.token {
            let mut shown = KNOWS_TOKEN;
            if self.target.prove {
                shown = self.shown.load(Ordering::Relaxed);
                if shown == UNKNOWN {
                    shown = self.prove(t).await?;
                    self.shown.store(shown, Ordering::Relaxed);
                }
            }
            if shown == KNOWS_TOKEN {
                req = req.bearer_auth(t);
            }
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

    /// Asks the server to show it knows `token`, for the address this client connects to:
    /// [`KNOWS_TOKEN`] if it does, [`ASKS_NONE`] if it wants no token (then none is sent),
    /// an error (and no token sent) otherwise.
    async fn prove(&self, token: &str) -> Result<u8, CtlError> {
        let base = &self.target.base;
        let refused = |why: &str| {
            CtlError::Unreachable(format!(
                "not sending the token to {base}: the server there {why}, so it may not be \
                 the manager (a stale address, or another program on its port); give --url \
                 {base} to send it anyway"
            ))
        };
        let mut challenge = [0u8; 32];
        private_files::random_bytes(&mut challenge)
            .map_err(|e| CtlError::Failed(format!("cannot make a random challenge: {e}")))?;
        let res = self
            .http
            .get(format!(
                "{base}{}?challenge={}",
                token::IDENTITY_PATH,
                private_files::hex(&challenge)
            ))
            .send()
            .await
            .map_err(|e| {
                CtlError::Unreachable(format!(
                    "cannot reach the manager at {base}: {}",
                    error_text::chain(&e)
                ))
            })?;
        if !res.status().is_success() {
            return Err(refused(&format!(
                "answered {} where a pymanager shows who it is",
                res.status()
            )));
        }
        let answer: serde_json::Value = res
            .json()
            .await
            .map_err(|_| refused("did not answer as a pymanager does"))?;
        let target: Option<SocketAddr> = base
            .strip_prefix("http://")
            .and_then(|hostport| hostport.parse().ok());
        let bound: Option<SocketAddr> = answer["address"].as_str().and_then(|a| a.parse().ok());
        let proof = answer["proof"]
            .as_str()
            .and_then(crate::api::identity::unhex);
        match (target, bound, proof) {
            (Some(target), Some(bound), Some(proof))
                if token::address_covers(bound, target)
                    && crate::mac::same(
                        &proof,
                        &token::proof(token, &bound.to_string(), &challenge),
                    ) =>
            {
                Ok(KNOWS_TOKEN)
            }
            (Some(target), Some(bound), None)
                if answer["proof"].is_null() && token::address_covers(bound, target) =>
            {
                Ok(ASKS_NONE)
            }
            // Answered as a manager does, for this address, but not for this token: most
            // likely the token given is not the manager's (nothing is sent either way).
            (Some(target), Some(bound), Some(_)) if token::address_covers(bound, target) => {
                Err(CtlError::Failed(format!(
                    "the manager at {base} holds another token than the one given, so it was \
                     not sent (give the manager's token with --token or PYMANAGER_TOKEN)"
                )))
            }
            _ => Err(refused("did not show that it knows the token")),
        }
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
