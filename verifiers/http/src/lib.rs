//! `HttpOkVerifier` (module `pymutils.http_verifier`): passes when `GET url` answers 2xx.
//!
//! Arguments as in the original pymanager: `url` (required), `timeout` (s, 30),
//! `interval` (s, 1), `headers` (object of strings). Plain `http://` only: the host's HTTP
//! client has no TLS.

use std::collections::BTreeMap;

use pymanager_guest::retry::{self, Step};
use pymanager_guest::{Verifier, check_seconds, elapsed, export_verifiers, http, secs};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    url: String,
    #[serde(default = "thirty")]
    timeout: f64,
    #[serde(default = "one")]
    interval: f64,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

fn thirty() -> f64 {
    30.0
}
fn one() -> f64 {
    1.0
}

struct HttpOkVerifier;

impl Verifier for HttpOkVerifier {
    type Args = Args;

    fn validate(a: &Args) -> Result<(), String> {
        let lower = a.url.to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err(
                "url: https:// is not supported (pymanager's HTTP client has no TLS); use http://"
                    .into(),
            );
        }
        if !lower.starts_with("http://") {
            return Err(format!("url: expected an http:// URL, got '{}'", a.url));
        }
        check_seconds("timeout", a.timeout, true)?;
        check_seconds("interval", a.interval, false)?;
        Ok(())
    }

    fn verify(a: Args) -> Result<(), String> {
        let headers: Vec<(String, String)> = a.headers.into_iter().collect();
        let timeout = secs(a.timeout);
        retry::every(secs(a.interval))
            .for_at_most(timeout)
            .goal("answering")
            .run(|| {
                // One request may use what is left of the budget, but never less than 100 ms.
                let left = timeout.saturating_sub(elapsed()).max(secs(0.1));
                match http::get(&a.url, &headers, left) {
                    Ok(r) if (200..300).contains(&r.status) => Ok(()),
                    Ok(r) => Err(Step::Retry(format!("{} answered {}", a.url, r.status))),
                    Err(e) => Err(Step::connect_failed(retry::url_host(&a.url), e)),
                }
            })
    }
}

export_verifiers!(HttpOkVerifier);
