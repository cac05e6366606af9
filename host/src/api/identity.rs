//! `GET /api/v1/identity?challenge=<hex>`: how a client (`pymanager ctl`) makes sure the
//! server it reached is the manager it means before it sends the token. The answer is the
//! address this API is bound to and a proof over it and the challenge keyed with the
//! token ([`crate::token::proof`]); no token is needed to ask, and asking teaches nothing
//! about the token. A manager without a token, or a request without a challenge, gets
//! `"proof": null`.

use std::collections::HashMap;

use warp::http::StatusCode;
use warp::reply::Response;

use super::Api;
use super::error::Failure;
use crate::private_files::hex;
use crate::token;

/// The answer to `GET /api/v1/identity`.
pub fn answer(api: &Api, q: &HashMap<String, String>) -> Response {
    let challenge = match q.get("challenge").map(|c| unhex(c)) {
        None => None,
        Some(Some(c)) if token::CHALLENGE_BYTES.contains(&c.len()) => Some(c),
        Some(_) => {
            return Failure::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "challenge: expected {} to {} random bytes as hex",
                    token::CHALLENGE_BYTES.start(),
                    token::CHALLENGE_BYTES.end()
                ),
            )
            .into_response();
        }
    };
    let address = api.site().bound().to_string();
    let proof = api
        .token()
        .zip(challenge)
        .map(|(t, c)| hex(&token::proof(t, &address, &c)));
    let body = serde_json::json!({"address": address, "proof": proof});
    super::error::json_response(StatusCode::OK, body.to_string().into())
}

/// The bytes of a hex string, if it is one.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::unhex;

    #[test]
    fn hex_is_read_strictly() {
        assert_eq!(unhex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("+1"), None);
    }
}
