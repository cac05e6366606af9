//! The original's four routes: `GET /`, `GET /status`, `POST /restart/<id>`, `DELETE /`,
//! answering the original's bytes (see [`json::to_legacy_string`]).

use bytes::Bytes;
use warp::http::StatusCode;
use warp::reply::Response;

use crate::api::Api;
use crate::api::error::{Failure, json_response};
use crate::api::json::{self, LegacyProcess, LegacyRestarted};
use crate::api::rendered::Body;
use crate::supervisor::{CommandError, Phase, ProcessRef};

/// An answer of one of the original's routes, serialized as the original did.
fn legacy_json<T: serde::Serialize>(v: &T) -> Response {
    json_response(StatusCode::OK, Bytes::from(json::to_legacy_string(v)))
}

/// `GET /`: the processes, from the body rendered once per snapshot.
pub fn list(api: &Api) -> Response {
    let (snap, body) = api.rendered(Body::LegacyList);
    if snap.phase.is_shutting_down() {
        return Failure::shutting_down().into_legacy_response();
    }
    json_response(StatusCode::OK, body)
}

/// `GET /status`: the phase, one of five bodies known in advance.
pub fn status(api: &Api) -> Response {
    json_response(
        StatusCode::OK,
        Bytes::from_static(status_body(api.handle().snapshot().phase)),
    )
}

/// The body of `GET /status` in each phase, as the original wrote it.
pub fn status_body(phase: Phase) -> &'static [u8] {
    match phase {
        Phase::Launching => br#"{"status": "launching processes"}"#,
        Phase::Running => br#"{"status": "running"}"#,
        Phase::Shutdown => br#"{"status": "shutdown"}"#,
        Phase::ForceShutdown => br#"{"status": "force shutdown"}"#,
    }
}

/// `DELETE /`: a graceful shutdown, answered at once.
pub async fn shutdown(api: &Api) -> Response {
    if api.handle().snapshot().phase.is_shutting_down() {
        return Failure::shutting_down().into_legacy_response();
    }
    match api.handle().shutdown().await {
        Ok(()) => legacy_json(&serde_json::json!({ "success": true })),
        Err(e) => Failure::from(e).into_legacy_response(),
    }
}

/// `POST /restart/<id>`: ids as Python's `int()` reads them (400 otherwise), 404 for a
/// number that names no process.
pub async fn restart(api: &Api, id: &str) -> Response {
    if api.handle().snapshot().phase.is_shutting_down() {
        return Failure::shutting_down().into_legacy_response();
    }
    let n = match python_int(id) {
        None => {
            return Failure::new(StatusCode::BAD_REQUEST, format!("Invalid ID '{id}'."))
                .into_legacy_response();
        }
        Some(Some(n)) => n,
        Some(None) => {
            return Failure::from(CommandError::NotFound(id.to_string())).into_legacy_response();
        }
    };
    match api.handle().restart(ProcessRef::Id(n)).await {
        Ok(p) => legacy_json(&LegacyRestarted {
            success: true,
            process: LegacyProcess(&p),
        }),
        Err(e) => Failure::from(e).into_legacy_response(),
    }
}

/// `s` as Python's `int()` reads it: surrounding white space, a sign, and digits with single
/// underscores between them (`" +1_0 "` is 10). `None` if it is not an integer at all;
/// `Some(None)` for an integer that cannot be a process id (zero, negative, huge).
pub fn python_int(s: &str) -> Option<Option<u32>> {
    let s = s.trim();
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let valid = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !valid {
        return None;
    }
    let n = digits
        .replace('_', "")
        .parse::<u32>()
        .ok()
        .filter(|_| !negative);
    Some(n.filter(|n| *n > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_ids_are_read_as_pythons_int_reads_them() {
        assert_eq!(python_int("1"), Some(Some(1)));
        assert_eq!(python_int(" +1_0 "), Some(Some(10)));
        assert_eq!(python_int("007"), Some(Some(7)));
        assert_eq!(python_int("0"), Some(None));
        assert_eq!(python_int("-1"), Some(None));
        assert_eq!(python_int("99999999999999999999"), Some(None));
        for bad in ["", " ", "abc", "1.0", "1__0", "_1", "1_", "+", "0x1", "1 2"] {
            assert_eq!(python_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_status_bodies_are_the_ones_serde_would_write() {
        #[derive(serde::Serialize)]
        struct Status {
            status: &'static str,
        }
        for phase in [
            Phase::Launching,
            Phase::Running,
            Phase::Shutdown,
            Phase::ForceShutdown,
        ] {
            let written = json::to_legacy_string(&Status {
                status: crate::api::v1::Phase::from(phase).as_str(),
            });
            assert_eq!(status_body(phase), written.as_bytes(), "{phase:?}");
        }
    }
}
