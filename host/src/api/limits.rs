//! The request body limit ([`BODY_LIMIT`](super::BODY_LIMIT)): none of our routes needs a
//! body, so a request that announces a bigger one is refused before routing (413), and the
//! routes that change something read and discard what a chunked body sends, refusing it
//! once it goes past the limit, or when it does not arrive in time
//! ([`BODY_READ_TIMEOUT`](super::BODY_READ_TIMEOUT), 408).

use bytes::Buf;
use futures::StreamExt;
use warp::Filter;
use warp::http::StatusCode;
use warp::http::header::{CONTENT_LENGTH, HeaderMap};
use warp::reject::Rejection;

use super::error::{Failure, too_large};
use super::{BODY_LIMIT, BODY_READ_TIMEOUT};

/// 413 for a request announcing a body over the limit. A `Content-Length` that is not a
/// number is left to the HTTP layer, which refuses it before any route runs.
pub fn announced(headers: &HeaderMap) -> Result<(), Failure> {
    let length = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match length {
        Some(n) if n > BODY_LIMIT => Err(too_large()),
        _ => Ok(()),
    }
}

/// Reads (and discards) the body of a mutating request, 413 past the limit (a chunked body
/// has no length to check up front), 408 when it takes longer than [`BODY_READ_TIMEOUT`].
pub fn drained() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::body::stream()
        .and_then(|body| async move {
            tokio::time::timeout(BODY_READ_TIMEOUT, drain(body))
                .await
                .unwrap_or_else(|_| Err(warp::reject::custom(too_slow())))
        })
        .untuple_one()
}

fn too_slow() -> Failure {
    Failure::new(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "The request body did not arrive within {} s.",
            BODY_READ_TIMEOUT.as_secs()
        ),
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use warp::http::HeaderValue;

    #[test]
    fn an_announced_body_over_the_limit_is_refused() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_LENGTH, HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(announced(&HeaderMap::new()).is_ok());
        assert!(announced(&with("0")).is_ok());
        assert!(announced(&with(&BODY_LIMIT.to_string())).is_ok());
        let f = announced(&with(&(BODY_LIMIT + 1).to_string())).unwrap_err();
        assert_eq!(f.status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
