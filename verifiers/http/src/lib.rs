//! `HttpOkVerifier` (module `pymutils.http_verifier`): passes when `GET url` answers 2xx.
//!
//! Arguments as in the original pymanager: `url` (required, `http://` or `https://`),
//! `timeout` (s, 30; `null`: no limit), `interval` (s, 1), `headers` (object of strings).
//! An `https://` server's certificate is checked against the system's roots, plus the CA
//! of the `ca_file` argument, which pymanager reads itself: it never reaches this guest.

use std::collections::BTreeMap;

use pymanager_guest::retry::{self, Step};
use pymanager_guest::{
    Interval, Timeout, Verifier, elapsed, export_verifiers, format_duration, http, log, secs,
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
        Ok(())
    }

    fn verify(a: Args) -> Result<(), String> {
        let headers: Vec<(String, String)> = a.headers.into_iter().collect();
        let timeout = a.timeout.duration();
        retry::every(a.interval.duration())
            .for_at_most(timeout)
            .goal("answering")
            .run(|| {
                // One request may use what is left of the budget, but never less than 100 ms.
                let left = timeout.saturating_sub(elapsed()).max(secs(0.1));
                match a.timeout.limit() {
                    Some(_) => log::info(&format!(
                        "Attempting connection to {} with a timeout of {}",
                        a.url,
                        format_duration(left)
                    )),
                    None => log::info(&format!("Attempting connection to {}", a.url)),
                }
                match http::get(&a.url, &headers, left) {
                    Ok(r) if (200..300).contains(&r.status) => Ok(()),
                    Ok(r) => Err(Step::Retry(format!("{} answered {}", a.url, r.status))),
                    Err(e) => Err(Step::Retry(e)),
                }
            })
    }
}

export_verifiers!(HttpOkVerifier);
