//! `HttpOkVerifier` (module `pymutils.http_verifier`): passes when `GET url` answers 2xx.
//!
//! Arguments as in the original pymanager: `url` (required, `http://` or `https://`),
//! `timeout` (s, 30; `null`: no limit), `interval` (s, 1), `headers` (object of strings).
//! An `https://` server's certificate is checked against the system's roots, plus the CA
//! of the `ca_file` argument, which pymanager reads itself: it never reaches this guest.
//!
//! On a loopback address the listening socket must also be the verified process's (or one
//! of its descendants'): a leftover process of an earlier run answering on the port does
//! not make the new one pass. `"check_owner": false` turns that off, for a service that
//! hands its socket to another process tree.

use std::collections::BTreeMap;
use std::time::Duration;

use pymanager_guest::retry::{self, Step};
use pymanager_guest::{
    Interval, Timeout, Verifier, elapsed, export_verifiers, format_duration, http, log, secs, tcp,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Args {
    url: String,
    #[serde(default)]
    timeout: Timeout<30_000>,
    #[serde(default)]
    interval: Interval<1_000>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default = "yes")]
    check_owner: bool,
}

fn yes() -> bool {
    true
}

struct HttpOkVerifier;

impl Verifier for HttpOkVerifier {
    type Args = Args;

    fn validate(a: &Args) -> Result<(), String> {
        let lower = a.url.trim().to_ascii_lowercase();
        if !lower.starts_with("http://") && !lower.starts_with("https://") {
            return Err(format!(
                "url: expected an http:// or https:// URL, got '{}'",
                a.url
            ));
        }
        if retry::url_host(&a.url).is_empty() {
            return Err(format!("url: '{}' names no host", a.url));
        }
        match retry::url_port(&a.url) {
            Some(port) if port > 0 => Ok(()),
            _ => Err(format!(
                "url: the port in '{}' is not a number from 1 to 65535{}",
                a.url,
                if a.url.contains("${") {
                    " (only ${ports.<process>.<name>} and ${env.NAME} are filled in)"
                } else {
                    ""
                }
            )),
        }
    }

    fn verify(a: Args) -> Result<(), String> {
        let headers: Vec<(String, String)> = a.headers.into_iter().collect();
        let timeout = a.timeout.duration();
        let interval = a.interval.duration();
        // Quick retries after a refusal are announced at the pace of `interval`.
        let mut announced: Option<Duration> = None;
        retry::every(interval)
            .for_at_most(timeout)
            .goal("answering")
            .run(|| {
                // One request may use what is left of the budget, but never less than 100 ms.
                let now = elapsed();
                let left = timeout.saturating_sub(now).max(secs(0.1));
                let announce = announced.is_none_or(|at| now.saturating_sub(at) >= interval);
                if announce {
                    announced = Some(now);
                }
                match a.timeout.limit().filter(|_| announce) {
                    Some(_) => log::info(&format!(
                        "Attempting connection to {} with a timeout of {}",
                        a.url,
                        format_duration(left)
                    )),
                    None if announce => log::info(&format!("Attempting connection to {}", a.url)),
                    None => {}
                }
                match http::get(&a.url, &headers, left) {
                    Ok(r) if (200..300).contains(&r.status) => owned(&a.url, a.check_owner),
                    Ok(r) => Err(Step::Retry(format!("{} answered {}", a.url, r.status))),
                    Err(e) => Err(Step::connect_failed(retry::url_host(&a.url), e)),
                }
            })
    }
}

/// The check that the server that answered is the verified process's, on a loopback URL.
fn owned(url: &str, check_owner: bool) -> Result<(), Step> {
    let host = retry::url_host(url);
    match retry::url_port(url) {
        Some(port) if check_owner && retry::is_loopback(host) => Ok(tcp::port_owned(host, port)?),
        _ => Ok(()),
    }
}

export_verifiers!(HttpOkVerifier);
