//! `TcpPortVerifier` (module `pymanager.tcp_verifier`): passes when something accepts a TCP
//! connection on `host` (default 127.0.0.1) and `port`, tried every `interval` seconds
//! (default 0.1) for at most `timeout` seconds (default 30; `null`: no limit).
//!
//! On a loopback address the listening socket must also be the verified process's (or one
//! of its descendants'): a leftover process of an earlier run holding the port does not
//! make the new one pass. `"check_owner": false` turns that off, for a service that hands
//! its socket to another process tree.

use pymanager_guest::retry::{self, Step};
use pymanager_guest::{
    Interval, Timeout, Verifier, elapsed, export_verifiers, log, number_or_string, secs, tcp,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Args {
    #[serde(deserialize_with = "number_or_string")]
    port: u16,
    #[serde(default = "loopback")]
    host: String,
    #[serde(default)]
    timeout: Timeout<30_000>,
    #[serde(default)]
    interval: Interval<100>,
    #[serde(default = "yes")]
    check_owner: bool,
}

fn loopback() -> String {
    "127.0.0.1".into()
}

fn yes() -> bool {
    true
}

struct TcpPortVerifier;

impl Verifier for TcpPortVerifier {
    type Args = Args;

    fn validate(a: &Args) -> Result<(), String> {
        if a.port == 0 {
            return Err("port: must be between 1 and 65535".into());
        }
        if a.host.trim().is_empty() {
            return Err("host: must not be empty".into());
        }
        Ok(())
    }

    fn verify(a: Args) -> Result<(), String> {
        let timeout = a.timeout.duration();
        let interval = a.interval.duration();
        // Quick retries after a refusal are announced at the pace of `interval`.
        let mut announced: Option<std::time::Duration> = None;
        retry::every(interval)
            .for_at_most(timeout)
            .goal("listening")
            .run(|| {
                let left = timeout
                    .saturating_sub(elapsed())
                    .clamp(secs(0.1), secs(5.0));
                let now = elapsed();
                if announced.is_none_or(|at| now.saturating_sub(at) >= interval) {
                    announced = Some(now);
                    log::info(&format!("Attempting connection to {}:{}", a.host, a.port));
                }
                tcp::connect(&a.host, a.port, left)
                    .map_err(|e| Step::connect_failed(&a.host, e))?;
                if a.check_owner && retry::is_loopback(&a.host) {
                    tcp::port_owned(&a.host, a.port)?;
                }
                Ok(())
            })
    }
}

export_verifiers!(TcpPortVerifier);
