//! A module as it was built before WIT 1.2.0: bindings generated from the 1.1.0 WIT kept
//! beside this crate (wit/, never to be updated), `probe`'s typed errors, no SDK. The host
//! must keep running it unchanged.

wit_bindgen::generate!({
    path: "wit",
    world: "verifier-module",
});

use exports::pymanager::verifier::verifier::Guest;
use pymanager::verifier::probe;
use pymanager::verifier::types::{ErrorKind, ProcState, Request};

struct Old;

fn arg(args: &str, key: &str) -> Result<serde_json::Value, String> {
    let v: serde_json::Value = serde_json::from_str(args).map_err(|e| e.to_string())?;
    v.get(key).cloned().ok_or_else(|| format!("{key}: missing"))
}

fn kind(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::NotGranted => "not-granted",
        ErrorKind::BadRequest => "bad-request",
        ErrorKind::ShuttingDown => "shutting-down",
        ErrorKind::Refused => "refused",
        ErrorKind::TimedOut => "timed-out",
        ErrorKind::Failed => "failed",
    }
}

impl Guest for Old {
    fn names() -> Vec<String> {
        vec!["HttpGet".into(), "TcpOpen".into(), "ExitsZero".into()]
    }

    fn validate(_name: String, _args: String) -> Result<(), String> {
        Ok(())
    }

    fn verify(name: String, args: String) -> Result<(), String> {
        match name.as_str() {
            "HttpGet" => {
                let url = arg(&args, "url")?.as_str().unwrap_or_default().to_string();
                let r = probe::http_request(&Request {
                    method: "GET".into(),
                    url,
                    headers: vec![],
                    body: vec![],
                    timeout_ms: 5_000,
                })
                .map_err(|e| format!("{}: {}", kind(e.kind), e.message))?;
                (r.status == 200)
                    .then_some(())
                    .ok_or(format!("status {}", r.status))
            }
            "TcpOpen" => {
                let port = arg(&args, "port")?.as_u64().unwrap_or_default() as u16;
                probe::tcp_connect("127.0.0.1", port, 5_000)
                    .map_err(|e| format!("{}: {}", kind(e.kind), e.message))
            }
            "ExitsZero" => match pymanager::verifier::host::wait_exit(60_000) {
                Some(ProcState::Exited(0)) => Ok(()),
                Some(ProcState::Exited(c)) => Err(format!("exited with {c}")),
                other => Err(format!("did not exit with 0: {other:?}")),
            },
            other => Err(format!("no verifier {other}")),
        }
    }
}

export!(Old);
