//! `TcpPortVerifier` (module `pymanager.tcp_verifier`): passes when something accepts a TCP
//! connection on `host` (default 127.0.0.1) and `port`, tried every `interval` seconds
//! (default 0.1) for at most `timeout` seconds (default 30).

use pymanager_guest::retry::{self, Step};
use pymanager_guest::{Verifier, check_seconds, elapsed, export_verifiers, secs, tcp};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    port: u16,
    #[serde(default = "loopback")]
    host: String,
    #[serde(default = "thirty")]
    timeout: f64,
    #[serde(default = "tenth")]
    interval: f64,
}

fn loopback() -> String {
    "127.0.0.1".into()
}
fn thirty() -> f64 {
    30.0
}
fn tenth() -> f64 {
    0.1
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
        check_seconds("timeout", a.timeout, true)?;
        check_seconds("interval", a.interval, false)?;
        Ok(())
    }

    fn verify(a: Args) -> Result<(), String> {
        let timeout = secs(a.timeout);
        retry::every(secs(a.interval))
            .for_at_most(timeout)
            .goal("listening")
            .run(|| {
                let left = timeout
                    .saturating_sub(elapsed())
                    .clamp(secs(0.1), secs(5.0));
                tcp::connect(&a.host, a.port, left).map_err(|e| Step::connect_failed(&a.host, e))
            })
    }
}

export_verifiers!(TcpPortVerifier);
