//! `http-request`: `http://` and `https://` to granted hosts, redirects followed (each hop
//! checked against the grants and resolved once, see [`super::reach`]), body capped at
//! 1 MiB. The headers a verifier sets go only to the origin it asked for: a redirect to
//! another host, port or scheme drops them (a token for one service is not handed to
//! another).
//!
//! `https://` server certificates are checked against the system's roots (rustls with the
//! platform verifier), plus the CA bundles named by `REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE` and
//! `CURL_CA_BUNDLE`, plus the CA file the verifier's `ca_file` argument names (see
//! `runtime::trust`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use reqwest::header::LOCATION;
use reqwest::{Method, Url};

use super::super::bindings::pymanager::verifier::types::{Request, Response};
use super::super::state::{HostState, ModuleInfo};
use super::super::trust::{self, CaFile};
use super::reach::resolve;
use super::{ErrorKind, HostError, fail, not_while_validating};

/// The most of a response body handed to a guest.
pub(crate) const MAX_BODY: usize = 1 << 20;
/// Redirects followed before giving up, as browsers and `requests` do.
const MAX_REDIRECTS: usize = 10;
/// Clients kept for names resolved to checked addresses; past this the cache starts over.
const MAX_PINNED: usize = 64;

/// The HTTP clients every call shares: no proxy from the environment (verifiers talk to
/// local services), redirects handled here so that each hop is checked.
///
/// A URL with an IP address goes through one shared client. A URL with a name goes through
/// a client told to resolve that name to the addresses already checked (and nothing else),
/// kept per name and addresses so that a verifier polling one URL reuses its connections.
/// A verifier with a `ca_file` gets clients of their own that also trust it, kept the same
/// way.
pub(crate) struct Clients {
    /// Built on first use: a client loads and parses the system's root certificates,
    /// which takes milliseconds and a few hundred KiB that a manager whose verifiers make
    /// no HTTP request (or that has none) should not pay for.
    plain: OnceLock<reqwest::Client>,
    pinned: Mutex<HashMap<PinKey, reqwest::Client>>,
}

/// What a kept client is for: the CA file it trusts (if any), and the name with the
/// addresses it resolves to (empty for a URL with an IP address).
type PinKey = (Option<PathBuf>, String, Vec<SocketAddr>);

impl Clients {
    pub(crate) fn new() -> Clients {
        Clients {
            plain: OnceLock::new(),
            pinned: Mutex::new(HashMap::new()),
        }
    }

    /// The client that connects `host` to `addrs` and nowhere else, trusting `ca` besides
    /// the system's roots.
    fn for_target(
        &self,
        ca: Option<&CaFile>,
        host: &str,
        addrs: &[SocketAddr],
    ) -> Result<reqwest::Client, String> {
        let by_address = host.parse::<IpAddr>().is_ok();
        if by_address && ca.is_none() {
            let plain = self
                .plain
                .get_or_init(|| builder().build().unwrap_or_default());
            return Ok(plain.clone());
        }
        let key = match by_address {
            true => (ca.map(|c| c.path.clone()), String::new(), Vec::new()),
            false => (
                ca.map(|c| c.path.clone()),
                host.to_ascii_lowercase(),
                addrs.to_vec(),
            ),
        };
        let mut pinned = self.pinned.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = pinned.get(&key) {
            return Ok(c.clone());
        }
        let mut builder = builder();
        if !by_address {
            builder = builder.resolve_to_addrs(host, addrs);
        }
        if let Some(ca) = ca {
            builder = builder.tls_certs_merge(ca.certs.iter().cloned());
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot set up an HTTP client for {host}: {e}"))?;
        if pinned.len() >= MAX_PINNED {
            pinned.clear();
        }
        pinned.insert(key, client.clone());
        Ok(client)
    }
}

/// The settings of every client: no proxy, no redirect of its own, and the CA bundles the
/// environment names trusted (a bundle that cannot be read fails `https://` requests in
/// [`check_scheme`], not the client).
pub(crate) fn builder() -> reqwest::ClientBuilder {
    crate::tls::install_crypto_provider();
    let builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
    match trust::env_bundles() {
        Ok(certs) if !certs.is_empty() => builder.tls_certs_merge(certs.iter().cloned()),
        _ => builder,
    }
}

pub(crate) async fn request(st: &mut HostState, req: Request) -> Result<Response, HostError> {
    let Some(view) = st.view().cloned() else {
        return Err(not_while_validating("http-request"));
    };
    let method =
        Method::from_bytes(req.method.trim().to_ascii_uppercase().as_bytes()).map_err(|_| {
            fail(
                ErrorKind::BadRequest,
                format!("'{}' is not an HTTP method", req.method),
            )
        })?;
    let url = Url::parse(req.url.trim()).map_err(|e| {
        fail(
            ErrorKind::BadRequest,
            format!("'{}' is not a URL: {e}", req.url),
        )
    })?;
    check_scheme(&url)?;
    let (module, shared, ca) = (
        st.module.clone(),
        st.shared.clone(),
        st.call.ca_file.clone(),
    );
    let _waiting = st.shared.ticker.waiting();
    let timeout = Duration::from_millis(req.timeout_ms.into());
    let shown = url.to_string();
    tokio::select! {
        r = tokio::time::timeout(timeout, send(&module, &shared.http, ca.as_deref(), method, url, &req)) => match r {
            Ok(r) => r,
            Err(_) => Err(fail(
                ErrorKind::TimedOut,
                format!("{shown}: no answer within {} ms", req.timeout_ms),
            )),
        },
        _ = view.shutdown().cancelled() => {
            Err(fail(ErrorKind::ShuttingDown, "pymanager is shutting down"))
        }
    }
}

/// Refuses anything but `http://` and `https://` with a host, and `https://` while a CA
/// bundle the environment names cannot be read.
fn check_scheme(url: &Url) -> Result<(), HostError> {
    match url.scheme() {
        "http" => {}
        "https" => {
            if let Err(e) = trust::env_bundles() {
                return Err(fail(ErrorKind::Failed, format!("{url}: {e}")));
            }
        }
        other => {
            return Err(fail(
                ErrorKind::BadRequest,
                format!("{url}: '{other}' URLs are not supported; use http:// or https://"),
            ));
        }
    }
    if url.host_str().is_none() {
        return Err(fail(ErrorKind::BadRequest, format!("{url}: no host")));
    }
    Ok(())
}

/// The host (without brackets) and port a URL connects to.
fn target(url: &Url) -> (String, u16) {
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    (host, url.port_or_known_default().unwrap_or(80))
}

async fn send(
    module: &ModuleInfo,
    clients: &Clients,
    ca: Option<&CaFile>,
    method: Method,
    mut url: Url,
    req: &Request,
) -> Result<Response, HostError> {
    let asked = url.origin();
    for _ in 0..=MAX_REDIRECTS {
        let (host, port) = target(&url);
        let addrs = resolve(module, &host, port)
            .await
            .map_err(|e| e.about(&url))?;
        let mut builder = clients
            .for_target(ca, &host, &addrs)?
            .request(method.clone(), url.clone());
        // The verifier's headers (a token, a cookie) are for the origin it named.
        if url.origin() == asked {
            for (k, v) in &req.headers {
                builder = builder.header(k.as_str(), v.as_str());
            }
        }
        if !req.body.is_empty() {
            builder = builder.body(req.body.clone());
        }
        let mut resp = builder.send().await.map_err(|e| describe(&url, &e))?;
        let redirect =
            resp.status().is_redirection() && (method == Method::GET || method == Method::HEAD);
        if let Some(next) = redirect
            .then(|| {
                resp.headers()
                    .get(LOCATION)?
                    .to_str()
                    .ok()?
                    .parse::<String>()
                    .ok()
            })
            .flatten()
        {
            url = url
                .join(&next)
                .map_err(|e| format!("{url}: bad redirect to '{next}': {e}"))?;
            check_scheme(&url)?;
            continue;
        }
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while body.len() < MAX_BODY {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_BODY - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) => break,
                Err(e) => return Err(describe(&url, &e)),
            }
        }
        return Ok(Response {
            status,
            headers,
            body,
        });
    }
    Err(format!("{url}: more than {MAX_REDIRECTS} redirects").into())
}

/// `http://x/: Connection refused`: the innermost cause is the useful one.
fn describe(url: &Url, e: &reqwest::Error) -> HostError {
    let mut kind = if e.is_timeout() {
        ErrorKind::TimedOut
    } else {
        ErrorKind::Failed
    };
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && kind == ErrorKind::Failed
        {
            kind = super::io_kind(io);
        }
    }
    fail(kind, format!("{url}: {}", crate::error_text::root_cause(e)))
}
