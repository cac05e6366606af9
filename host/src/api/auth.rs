//! The bearer token: with `http.token` set, every route but `GET /status`, the OpenAPI
//! description and the dashboard's files needs `Authorization: Bearer <token>` (401
//! otherwise). The check reads the header where it is and allocates nothing, so the
//! routes answered before routing ([`super::front`]) and warp's routes share it.

use std::sync::Arc;

use warp::Filter;
use warp::http::StatusCode;
use warp::http::header::HeaderValue;
use warp::reject::Rejection;

use super::Api;
use super::error::Failure;

/// Passes a request whose `Authorization` header carries `token` (or any request when no
/// token is set); the 401 says whether the token was missing or wrong.
pub fn check(token: Option<&str>, authorization: Option<&HeaderValue>) -> Result<(), Failure> {
    let Some(want) = token else {
        return Ok(());
    };
    match authorization.and_then(|v| v.to_str().ok()).and_then(bearer) {
        Some(given) if constant_time_eq(given.as_bytes(), want.as_bytes()) => Ok(()),
        Some(_) => Err(Failure::new(StatusCode::UNAUTHORIZED, "Invalid token.")),
        None => Err(Failure::new(
            StatusCode::UNAUTHORIZED,
            "Missing token: send 'Authorization: Bearer <token>'.",
        )),
    }
}

/// The filter of a warp route that needs the token: rejects with 401 unless [`check`]
/// passes.
pub fn required(api: &Api) -> impl Filter<Extract = (), Error = Rejection> + Clone + use<> {
    let token: Option<Arc<str>> = api.token().map(Arc::from);
    warp::header::value("authorization")
        .map(Some)
        .or(warp::any().map(|| None))
        .unify()
        .and_then(move |given: Option<HeaderValue>| {
            let result = check(token.as_deref(), given.as_ref()).map_err(warp::reject::custom);
            async move { result }
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
    fn the_token_is_checked_only_when_set() {
        let header = |s: &'static str| HeaderValue::from_static(s);
        assert!(check(None, None).is_ok());
        assert!(check(Some("t"), Some(&header("Bearer t"))).is_ok());
        let missing = check(Some("t"), None).unwrap_err();
        assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
        assert!(missing.message.starts_with("Missing token"));
        assert_eq!(
            check(Some("t"), Some(&header("Bearer u")))
                .unwrap_err()
                .message,
            "Invalid token."
        );
        assert!(check(Some("t"), Some(&header("Basic t"))).is_err());
    }
}
