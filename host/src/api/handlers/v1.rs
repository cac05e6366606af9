//! The `/api/v1/` routes: per-process reads and commands, logs, status and shutdown, in
//! the shapes of [`crate::api::v1`].

use std::collections::HashMap;

use bytes::Bytes;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{find, ok_json, text_response};
use crate::api::error::{Failure, json_response};
use crate::api::json::{V1Done, V1Process};
use crate::api::rendered::Body;
use crate::api::v1::DEFAULT_LOG_LINES;
use crate::api::{Api, StreamKind};
use crate::process_view::OUTPUT_HISTORY_LINES;
use crate::supervisor::ProcessRef;

/// `GET /api/v1/processes`, from the body rendered once per snapshot.
pub fn list(api: &Api) -> Response {
    json_response(StatusCode::OK, api.rendered(Body::V1List).1)
}

/// `GET /api/v1/processes/{ref}`.
pub fn get(api: &Api, r: &str) -> Response {
    let snap = api.handle().snapshot();
    match find(&snap, &ProcessRef::parse(r)) {
        Ok(p) => ok_json(StatusCode::OK, &V1Process(p)),
        Err(f) => f.into_response(),
    }
}

/// `POST /api/v1/processes/{ref}/{restart|stop|start}`.
pub async fn command(api: &Api, r: &str, verb: &str) -> Response {
    let target = ProcessRef::parse(r);
    if api.handle().snapshot().phase.is_shutting_down() {
        return Failure::shutting_down().into_response();
    }
    let handle = api.handle();
    let result = match verb {
        "restart" => handle.restart(target).await,
        "stop" => handle.stop(target).await,
        _ => handle.start(target).await,
    };
    match result {
        Ok(p) => ok_json(
            StatusCode::OK,
            &V1Done {
                success: true,
                process: V1Process(&p),
            },
        ),
        Err(e) => Failure::from(e).into_response(),
    }
}

/// `GET /api/v1/status`, from the body rendered once per snapshot.
pub fn status(api: &Api) -> Response {
    json_response(StatusCode::OK, api.rendered(Body::V1Status).1)
}

/// `GET /api/v1/timeline`: asked of the supervisor, which keeps it.
pub async fn timeline(api: &Api) -> Response {
    match api.handle().timeline().await {
        Ok(t) => ok_json(StatusCode::OK, &crate::api::v1::Timeline::from(&t)),
        Err(e) => Failure::from(e).into_response(),
    }
}

/// The `lines` and `follow` of a logs request.
#[derive(Debug, PartialEq, Eq)]
pub struct LogsQuery {
    /// How many of the last lines to send first.
    pub lines: usize,
    /// Whether to keep sending new lines.
    pub follow: bool,
}

/// Parses `?lines=N&follow=BOOL`; 400 naming the bad parameter.
pub fn logs_query(q: &HashMap<String, String>) -> Result<LogsQuery, Failure> {
    let lines = match q.get("lines") {
        None => DEFAULT_LOG_LINES,
        Some(v) => v.parse::<usize>().map_err(|_| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                format!("Invalid 'lines' value '{v}': expected a number from 0 to {OUTPUT_HISTORY_LINES}."),
            )
        })?,
    };
    let follow = match q.get("follow").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") | Some("") => true,
        Some(v) => {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                format!("Invalid 'follow' value '{v}': expected true or false."),
            ));
        }
    };
    Ok(LogsQuery {
        lines: lines.min(OUTPUT_HISTORY_LINES),
        follow,
    })
}

/// `GET /api/v1/processes/{ref}/logs`: the last lines, or those and every new one.
pub async fn logs(api: &Api, r: &str, q: &HashMap<String, String>) -> Response {
    let q = match logs_query(q) {
        Ok(q) => q,
        Err(f) => return f.into_response(),
    };
    let target = ProcessRef::parse(r);
    let log = match api.handle().output(target.clone()).await {
        Ok(log) => log,
        Err(e) => return Failure::from(e).into_response(),
    };
    if q.follow {
        return match api.stream_slot(StreamKind::LogFollow) {
            Ok(slot) => crate::api::stream::follow_logs(api, target, log, q.lines, slot),
            Err(f) => f.into_response(),
        };
    }
    let mut body = String::new();
    for line in log.tail(q.lines) {
        body.push_str(&line);
        body.push('\n');
    }
    text_response(Bytes::from(body))
}

/// `GET /api/v1/events`: every change as a server-sent event.
pub fn events(api: &Api) -> Response {
    match api.stream_slot(StreamKind::Events) {
        Ok(slot) => crate::api::stream::events(api, slot),
        Err(f) => f.into_response(),
    }
}

/// `POST /api/v1/shutdown[?force=true]`: 202 once the shutdown has begun.
pub async fn shutdown(api: &Api, q: &HashMap<String, String>) -> Response {
    let force = match q.get("force").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") | Some("") => true,
        Some(v) => {
            return Failure::new(
                StatusCode::BAD_REQUEST,
                format!("Invalid 'force' value '{v}': expected true or false."),
            )
            .into_response();
        }
    };
    let accepted = || {
        ok_json(
            StatusCode::ACCEPTED,
            &serde_json::json!({ "success": true }),
        )
    };
    if force {
        // Allowed during a graceful shutdown: that is what it is for (the second Ctrl-C).
        api.handle().force_shutdown().await;
        return accepted();
    }
    if api.handle().snapshot().phase.is_shutting_down() {
        return Failure::shutting_down().into_response();
    }
    match api.handle().shutdown().await {
        Ok(()) => accepted(),
        Err(e) => Failure::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_query_defaults_and_errors() {
        let q = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        };
        assert_eq!(
            logs_query(&q(&[])).unwrap(),
            LogsQuery {
                lines: DEFAULT_LOG_LINES,
                follow: false
            }
        );
        assert_eq!(
            logs_query(&q(&[("lines", "5000"), ("follow", "true")])).unwrap(),
            LogsQuery {
                lines: OUTPUT_HISTORY_LINES,
                follow: true
            }
        );
        assert_eq!(
            logs_query(&q(&[("lines", "x")])).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            logs_query(&q(&[("follow", "maybe")])).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
