//! The routes and their handlers.
//!
//! Each route matches its path first and its method second, so a wrong method on a known path
//! is a 405 and an unknown path a 404 (warp ranks rejections; matching the method first would
//! make every unknown path a 405). The token is checked after both, so it never hides which
//! answer a request would get. Once a route matched, its handler answers every outcome
//! itself, errors included; rejections are left to [`super::error::recover`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures::StreamExt;
use warp::Filter;
use warp::http::StatusCode;
use warp::http::header::{CONTENT_TYPE, HeaderValue};
use warp::reject::Rejection;
use warp::reply::Response;

use super::error::{Failure, json_response, recover, too_large};
use super::json::{self, LegacyProcess, LegacyRestarted, V1Done, V1Process, V1Status};
use super::{Api, BODY_LIMIT, OPENAPI, StreamKind};
use crate::process_view::OUTPUT_HISTORY_LINES;
use crate::supervisor::{CommandError, ProcessInfo, ProcessRef, Snapshot};

/// Lines `GET .../logs` returns when `lines` is not given.
pub const DEFAULT_LOG_LINES: usize = 100;

/// Every route served, as (method, OpenAPI path template): the list `docs/openapi.json` is
/// checked against, and that a test checks the router against.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/"),
    ("delete", "/"),
    ("get", "/status"),
    ("post", "/restart/{id}"),
    ("get", "/api/v1/processes"),
    ("get", "/api/v1/processes/{ref}"),
    ("post", "/api/v1/processes/{ref}/restart"),
    ("post", "/api/v1/processes/{ref}/stop"),
    ("post", "/api/v1/processes/{ref}/start"),
    ("get", "/api/v1/processes/{ref}/logs"),
    ("get", "/api/v1/events"),
    ("get", "/api/v1/status"),
    ("get", "/api/v1/timeline"),
    ("post", "/api/v1/shutdown"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/ui/"),
    ("get", "/ui/app.js"),
    ("get", "/ui/style.css"),
];

/// Every route, with the checks every request passes first (another site's page is refused,
/// see [`super::origin`]; a body over the limit is refused) and the error handler behind.
/// A route added to `legacy` or `v1` (or beside them, inside `same_site`) is covered by
/// both checks without doing anything.
pub fn all(api: Api) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    // The hottest route first: `GET /` is what polling scripts ask.
    let legacy_list = warp::path::end()
        .and(warp::get())
        .and(auth(&api))
        .and(with(&api))
        .map(|api: Api| legacy_list(&api));
    let legacy_status = warp::path!("status")
        .and(warp::get())
        .and(with(&api))
        .map(|api: Api| status(&api));
    let legacy_shutdown = warp::path::end()
        .and(warp::delete())
        .and(auth(&api))
        .and(body_within_limit())
        .and(with(&api))
        .then(|api: Api| async move { legacy_shutdown(&api).await });
    let legacy_restart = warp::path!("restart" / String)
        .and(warp::post())
        .and(auth(&api))
        .and(body_within_limit())
        .and(with(&api))
        .then(|id: String, api: Api| async move { legacy_restart(&api, &decode(&id)).await });
    let legacy = legacy_list
        .or(legacy_status)
        .unify()
        .or(legacy_shutdown)
        .unify()
        .or(legacy_restart)
        .unify();

    let v1 = warp::path!("api" / "v1" / ..);
    let v1_list = v1
        .and(warp::path!("processes"))
        .and(warp::get())
        .and(auth(&api))
        .and(with(&api))
        .map(|api: Api| v1_list(&api));
    let v1_get = v1
        .and(warp::path!("processes" / String))
        .and(warp::get())
        .and(auth(&api))
        .and(with(&api))
        .map(|r: String, api: Api| v1_get(&api, &decode(&r)));
    let v1_command = |verb: &'static str| {
        v1.and(warp::path("processes"))
            .and(warp::path::param::<String>())
            .and(warp::path(verb))
            .and(warp::path::end())
            .and(warp::post())
            .and(auth(&api))
            .and(body_within_limit())
            .and(with(&api))
            .then(
                move |r: String, api: Api| async move { v1_command(&api, &decode(&r), verb).await },
            )
    };
    let v1_logs = v1
        .and(warp::path!("processes" / String / "logs"))
        .and(warp::get())
        .and(auth(&api))
        .and(warp::query::<HashMap<String, String>>())
        .and(with(&api))
        .then(
            |r: String, q: HashMap<String, String>, api: Api| async move {
                v1_logs(&api, &decode(&r), &q).await
            },
        );
    let v1_events = v1
        .and(warp::path!("events"))
        .and(warp::get())
        .and(auth(&api))
        .and(with(&api))
        .map(|api: Api| match api.stream_slot(StreamKind::Events) {
            Ok(slot) => super::stream::events(&api, slot),
            Err(f) => f.into_response(),
        });
    let v1_status = v1
        .and(warp::path!("status"))
        .and(warp::get())
        .and(auth(&api))
        .and(with(&api))
        .map(|api: Api| {
            let snap = api.handle().snapshot();
            ok_json(StatusCode::OK, &V1Status(&snap))
        });
    let v1_timeline = v1
        .and(warp::path!("timeline"))
        .and(warp::get())
        .and(auth(&api))
        .and(with(&api))
        .then(|api: Api| async move {
            match api.handle().timeline().await {
                Ok(t) => ok_json(StatusCode::OK, &super::v1::Timeline::from(&t)),
                Err(e) => Failure::from(e).into_response(),
            }
        });
    let v1_shutdown = v1
        .and(warp::path!("shutdown"))
        .and(warp::post())
        .and(auth(&api))
        .and(body_within_limit())
        .and(warp::query::<HashMap<String, String>>())
        .and(with(&api))
        .then(|q: HashMap<String, String>, api: Api| async move { v1_shutdown(&api, &q).await });
    let v1_openapi = v1
        .and(warp::path!("openapi.json"))
        .and(warp::get())
        .map(|| json_response(StatusCode::OK, Bytes::from_static(OPENAPI.as_bytes())));
    let v1 = v1_list
        .or(v1_get)
        .unify()
        .or(v1_command("restart"))
        .unify()
        .or(v1_command("stop"))
        .unify()
        .or(v1_command("start"))
        .unify()
        .or(v1_logs)
        .unify()
        .or(v1_events)
        .unify()
        .or(v1_status)
        .unify()
        .or(v1_timeline)
        .unify()
        .or(v1_shutdown)
        .unify()
        .or(v1_openapi)
        .unify()
        .boxed();

    same_site(&api)
        .and(content_length_within_limit())
        .and(legacy.or(v1).unify().or(super::ui::routes()).unify())
        .recover(recover)
        .unify()
}

/// Hands the shared state to a handler.
fn with(api: &Api) -> impl Filter<Extract = (Api,), Error = Infallible> + Clone + use<> {
    let api = api.clone();
    warp::any().map(move || api.clone())
}

/// Rejects with 403 a request a browser sends on behalf of another site (see
/// [`super::origin`]), before routing: no route can forget it.
fn same_site(api: &Api) -> impl Filter<Extract = (), Error = Rejection> + Clone + use<> {
    let site = *api.site();
    warp::header::headers_cloned()
        .and_then(move |headers: warp::http::HeaderMap| async move {
            super::origin::check(&site, &headers).map_err(warp::reject::custom)
        })
        .untuple_one()
}

/// Rejects with 401 unless the request carries the configured bearer token (if any).
fn auth(api: &Api) -> impl Filter<Extract = (), Error = Rejection> + Clone + use<> {
    let token: Option<Arc<str>> = api.token().map(Arc::from);
    warp::header::optional::<String>("authorization")
        .and_then(move |given: Option<String>| {
            let token = token.clone();
            async move {
                match token {
                    None => Ok(()),
                    Some(want) => match given.as_deref().and_then(bearer) {
                        Some(t) if constant_time_eq(t.as_bytes(), want.as_bytes()) => Ok(()),
                        Some(_) => Err(warp::reject::custom(Failure::new(
                            StatusCode::UNAUTHORIZED,
                            "Invalid token.",
                        ))),
                        None => Err(warp::reject::custom(Failure::new(
                            StatusCode::UNAUTHORIZED,
                            "Missing token: send 'Authorization: Bearer <token>'.",
                        ))),
                    },
                }
            }
        })
        .untuple_one()
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was
/// right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 413 for any request announcing a body over the limit, before any route runs.
fn content_length_within_limit() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and_then(|len: Option<u64>| async move {
            match len {
                Some(n) if n > BODY_LIMIT => Err(warp::reject::custom(too_large())),
                _ => Ok(()),
            }
        })
        .untuple_one()
}

/// Reads (and discards) the body of a mutating request, 413 past the limit: a chunked body
/// has no length to check up front.
fn body_within_limit() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::body::stream().and_then(drain).untuple_one()
}

async fn drain<S, B>(body: S) -> Result<(), Rejection>
where
    S: futures::Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut seen = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| {
            warp::reject::custom(Failure::new(
                StatusCode::BAD_REQUEST,
                "Cannot read the request body.",
            ))
        })?;
        seen += chunk.remaining() as u64;
        if seen > BODY_LIMIT {
            return Err(warp::reject::custom(too_large()));
        }
    }
    Ok(())
}

/// Percent-decodes one path segment (`web%20server` → `web server`); a malformed escape is
/// kept as written.
pub fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// A JSON answer from a serializable value.
fn ok_json<T: serde::Serialize>(status: StatusCode, v: &T) -> Response {
    json_response(status, Bytes::from(json::to_string(v)))
}

/// An answer of one of the original's routes, serialized as the original did.
fn legacy_json<T: serde::Serialize>(v: &T) -> Response {
    json_response(StatusCode::OK, Bytes::from(json::to_legacy_string(v)))
}

fn legacy_list(api: &Api) -> Response {
    let (snap, body) = api.legacy_list();
    if snap.phase.is_shutting_down() {
        return Failure::shutting_down().into_legacy_response();
    }
    json_response(StatusCode::OK, body)
}

fn status(api: &Api) -> Response {
    #[derive(serde::Serialize)]
    struct Status {
        status: &'static str,
    }
    let snap = api.handle().snapshot();
    legacy_json(&Status {
        status: super::v1::Phase::from(snap.phase).as_str(),
    })
}

async fn legacy_shutdown(api: &Api) -> Response {
    if api.handle().snapshot().phase.is_shutting_down() {
        return Failure::shutting_down().into_legacy_response();
    }
    match api.handle().shutdown().await {
        Ok(()) => legacy_json(&serde_json::json!({ "success": true })),
        Err(e) => Failure::from(e).into_legacy_response(),
    }
}

/// The original's restart: ids as Python's `int()` reads them (400 otherwise), 404 for a
/// number that names no process.
async fn legacy_restart(api: &Api, id: &str) -> Response {
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

/// The process a reference names in a snapshot, or the supervisor's own 404.
pub fn find<'a>(snap: &'a Snapshot, r: &ProcessRef) -> Result<&'a ProcessInfo, Failure> {
    snap.get(r)
        .ok_or_else(|| Failure::from(CommandError::NotFound(r.to_string())))
}

fn v1_list(api: &Api) -> Response {
    #[derive(serde::Serialize)]
    struct List<'a> {
        count: usize,
        processes: Vec<V1Process<'a>>,
    }
    let snap = api.handle().snapshot();
    ok_json(
        StatusCode::OK,
        &List {
            count: snap.processes.len(),
            processes: snap.processes.iter().map(|p| V1Process(p)).collect(),
        },
    )
}

fn v1_get(api: &Api, r: &str) -> Response {
    let snap = api.handle().snapshot();
    match find(&snap, &ProcessRef::parse(r)) {
        Ok(p) => ok_json(StatusCode::OK, &V1Process(p)),
        Err(f) => f.into_response(),
    }
}

async fn v1_command(api: &Api, r: &str, verb: &str) -> Response {
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

async fn v1_logs(api: &Api, r: &str, q: &HashMap<String, String>) -> Response {
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
            Ok(slot) => super::stream::follow_logs(api, target, log, q.lines, slot),
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

/// A plain-text answer.
pub fn text_response(body: Bytes) -> Response {
    let mut res = Response::new(body.into());
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

async fn v1_shutdown(api: &Api, q: &HashMap<String, String>) -> Response {
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
    fn bearer_header_parsing() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

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
    fn percent_decoding() {
        assert_eq!(decode("web%20server"), "web server");
        assert_eq!(decode("a%2Fb"), "a/b");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz1"), "%zz1");
        assert_eq!(decode("plain"), "plain");
    }

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
