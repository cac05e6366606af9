//! Every failure the API reports, as one status and one message, in the original's body:
//! `{"success": false, "error": {"message": "..."}}`.
//!
//! Handlers answer their own failures directly (a [`Failure`] turned into a response); only
//! checks that run before routing (the token, the body size) and warp's own rejections
//! (unknown route, wrong method, bad query) travel as rejections, and [`recover`] gives them
//! the same body.

use std::convert::Infallible;

use bytes::Bytes;
use serde::Serialize;
use warp::http::StatusCode;
use warp::http::header::{CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use warp::reject::{self, Rejection};
use warp::reply::Response;

use crate::supervisor::CommandError;

/// A request that failed: the status and the one line that says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The HTTP status.
    pub status: StatusCode,
    /// The message of the error body.
    pub message: String,
}

impl reject::Reject for Failure {}

impl Failure {
    /// A failure with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }

    /// The original's answer to anything but `GET /status` once a shutdown has begun.
    pub fn shutting_down() -> Self {
        Failure::from(CommandError::ShuttingDown)
    }

    /// The response: the status and the standard error body.
    pub fn into_response(self) -> Response {
        let body = super::json::to_string(&self.body());
        self.respond(body)
    }

    /// The response on one of the original's routes: the same body, serialized as the
    /// original serialized it (`{"success": false, "error": {"message": "..."}}`).
    pub fn into_legacy_response(self) -> Response {
        let body = super::json::to_legacy_string(&self.body());
        self.respond(body)
    }

    fn body(&self) -> impl Serialize + '_ {
        #[derive(Serialize)]
        struct Body<'a> {
            success: bool,
            error: Message<'a>,
        }
        #[derive(Serialize)]
        struct Message<'a> {
            message: &'a str,
        }
        Body {
            success: false,
            error: Message {
                message: &self.message,
            },
        }
    }

    fn respond(self, body: String) -> Response {
        let mut res = json_response(self.status, Bytes::from(body));
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

impl From<CommandError> for Failure {
    fn from(e: CommandError) -> Self {
        Failure::new(command_status(&e), e.to_string())
    }
}

/// The HTTP status for each way the supervisor can refuse or fail a command.
pub fn command_status(e: &CommandError) -> StatusCode {
    match e {
        CommandError::NotFound(_) => StatusCode::NOT_FOUND,
        CommandError::ShuttingDown => StatusCode::FORBIDDEN,
        CommandError::Busy(..) | CommandError::Cancelled(..) => StatusCode::CONFLICT,
        CommandError::Failed(..) => StatusCode::INTERNAL_SERVER_ERROR,
        CommandError::Gone => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A response with a JSON body.
pub fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut res = Response::new(body.into());
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// Turns any rejection into the standard error body; the last filter of the API, so no
/// client ever sees warp's plain-text errors.
pub async fn recover(r: Rejection) -> Result<Response, Infallible> {
    let failure = rejection_failure(&r);
    // An unknown route is answered as the original's router answered it, in its spacing.
    Ok(if r.is_not_found() {
        failure.into_legacy_response()
    } else {
        failure.into_response()
    })
}

/// The failure a rejection stands for.
pub fn rejection_failure(r: &Rejection) -> Failure {
    if let Some(f) = r.find::<Failure>() {
        return f.clone();
    }
    if r.is_not_found() {
        return Failure::new(StatusCode::NOT_FOUND, "No such route.");
    }
    if r.find::<reject::MethodNotAllowed>().is_some() {
        return Failure::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed on this route.",
        );
    }
    if r.find::<reject::PayloadTooLarge>().is_some() {
        return too_large();
    }
    if r.find::<reject::InvalidQuery>().is_some() {
        return Failure::new(StatusCode::BAD_REQUEST, "Invalid query string.");
    }
    if let Some(h) = r.find::<reject::InvalidHeader>() {
        return Failure::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid header {}.", h.name()),
        );
    }
    if let Some(h) = r.find::<reject::MissingHeader>() {
        return Failure::new(
            StatusCode::BAD_REQUEST,
            format!("Missing header {}.", h.name()),
        );
    }
    if r.find::<reject::LengthRequired>().is_some() {
        return Failure::new(StatusCode::LENGTH_REQUIRED, "Content-Length required.");
    }
    if r.find::<reject::UnsupportedMediaType>().is_some() {
        return Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type.",
        );
    }
    // What is left is a body that could not be read (the client went away mid-request):
    // warp does not name that type, and it is the client's doing.
    Failure::new(StatusCode::BAD_REQUEST, "Bad request.")
}

/// 413, for a request body over [`super::BODY_LIMIT`].
pub fn too_large() -> Failure {
    Failure::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "Request body too large (limit {} bytes).",
            super::BODY_LIMIT
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_errors_map_to_statuses_and_the_originals_messages() {
        let f = Failure::from(CommandError::NotFound("7".into()));
        assert_eq!(f.status, StatusCode::NOT_FOUND);
        assert_eq!(f.message, "Process with id '7' not found.");
        let f = Failure::from(CommandError::ShuttingDown);
        assert_eq!(f.status, StatusCode::FORBIDDEN);
        assert_eq!(f.message, "Process is in shutdown.");
        assert_eq!(
            Failure::from(CommandError::Busy("web".into(), "restart")).status,
            StatusCode::CONFLICT
        );
        assert_eq!(
            Failure::from(CommandError::Failed("web".into(), "x".into())).status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            Failure::from(CommandError::Gone).status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn warps_rejections_get_the_standard_body() {
        assert_eq!(
            rejection_failure(&warp::reject()).status,
            StatusCode::NOT_FOUND
        );
        let f = rejection_failure(&reject::custom(Failure::new(
            StatusCode::UNAUTHORIZED,
            "no",
        )));
        assert_eq!(f, Failure::new(StatusCode::UNAUTHORIZED, "no"));
    }
}
