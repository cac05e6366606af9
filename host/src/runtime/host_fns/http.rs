//! `http-request`: plain `http://` to granted hosts, redirects followed (each hop checked
//! against the grants), body capped at 1 MiB.
//!
//! The client has no TLS (the workspace builds reqwest without it): an `https://` URL is
//! refused with a message saying so.

use std::time::Duration;

use reqwest::header::LOCATION;
use reqwest::{Method, Url};

use super::super::bindings::pymanager::verifier::types::{Request, Response};
use super::super::state::{HostState, ModuleInfo};
use super::{not_granted, not_while_validating};

/// The most of a response body handed to a guest.
pub(crate) const MAX_BODY: usize = 1 << 20;
/// Redirects followed before giving up, as browsers and `requests` do.
const MAX_REDIRECTS: usize = 10;

/// The shared client: no proxy from the environment (verifiers talk to local services),
/// redirects handled here so that each hop is checked against the grants.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

pub(crate) async fn request(st: &mut HostState, req: Request) -> Result<Response, String> {
    let Some(view) = st.view().cloned() else {
        return Err(not_while_validating("http-request"));
    };
    let method = Method::from_bytes(req.method.trim().to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("'{}' is not an HTTP method", req.method))?;
    let url = Url::parse(req.url.trim()).map_err(|e| format!("'{}' is not a URL: {e}", req.url))?;
    check(&st.module, &url)?;
    let (module, shared) = (st.module.clone(), st.shared.clone());
    let _waiting = st.shared.ticker.waiting();
    let timeout = Duration::from_millis(req.timeout_ms.into());
    let shown = url.to_string();
    tokio::select! {
        r = tokio::time::timeout(timeout, send(&module, &shared.http, method, url, &req)) => match r {
            Ok(r) => r,
            Err(_) => Err(format!("{shown}: no answer within {} ms", req.timeout_ms)),
        },
        _ = view.shutdown().cancelled() => Err("pymanager is shutting down".into()),
    }
}

/// Refuses anything but `http://` to a granted host.
fn check(module: &ModuleInfo, url: &Url) -> Result<(), String> {
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(format!(
                "{url}: https is not supported (pymanager's HTTP client has no TLS); use http://"
            ));
        }
        other => {
            return Err(format!(
                "{url}: '{other}' URLs are not supported; use http://"
            ));
        }
    }
    let host = url
        .host_str()
        .ok_or_else(|| format!("{url}: no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(80);
    if !module.grants.hosts.allows(host, port) {
        return Err(not_granted(&module.alias, host, port));
    }
    Ok(())
}

async fn send(
    module: &ModuleInfo,
    client: &reqwest::Client,
    method: Method,
    mut url: Url,
    req: &Request,
) -> Result<Response, String> {
    for _ in 0..=MAX_REDIRECTS {
        let mut builder = client.request(method.clone(), url.clone());
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
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
            check(module, &url)?;
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
    Err(format!("{url}: more than {MAX_REDIRECTS} redirects"))
}

/// `http://x/: Connection refused`: the innermost cause is the useful one.
fn describe(url: &Url, e: &reqwest::Error) -> String {
    format!("{url}: {}", crate::error_text::root_cause(e))
}
