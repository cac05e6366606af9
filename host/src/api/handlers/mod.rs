//! What each route does once it matched: the original's four in [`legacy`], the
//! `/api/v1/` ones in [`v1`]. A handler answers every outcome itself, errors included, in
//! the body its family uses.

pub mod legacy;
pub mod v1;

use bytes::Bytes;
use warp::http::StatusCode;
use warp::http::header::{CONTENT_TYPE, HeaderValue};
use warp::reply::Response;

use super::error::{Failure, json_response};
use super::json;
use crate::supervisor::{CommandError, ProcessInfo, ProcessRef, Snapshot};

/// A JSON answer from a serializable value.
fn ok_json<T: serde::Serialize>(status: StatusCode, v: &T) -> Response {
    json_response(status, Bytes::from(json::to_string(v)))
}

/// A plain-text answer.
fn text_response(body: Bytes) -> Response {
    let mut res = Response::new(body.into());
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// The process a reference names in a snapshot, or the supervisor's own 404.
fn find<'a>(snap: &'a Snapshot, r: &ProcessRef) -> Result<&'a ProcessInfo, Failure> {
    snap.get(r)
        .ok_or_else(|| Failure::from(CommandError::NotFound(r.to_string())))
}
