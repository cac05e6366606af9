//! What every request passes before any route runs, and the answers that need no routing.
//!
//! - **Checks**: a request a browser sends on behalf of another site is refused (403, see
//!   [`super::origin`]), and one announcing a body over the limit (413, see
//!   [`super::limits`]). They run here, on the request as it arrived, so no route (present or
//!   future) can forget them, and they read the headers in place.
//! - **The hottest answers**: `GET /`, `GET /status`, `GET /api/v1/processes` and
//!   `GET /api/v1/status`, what polling scripts, the Python API and the dashboard ask, are
//!   answered here from bytes rendered once per snapshot (or known in advance), with the
//!   token checked as their routes check it. Everything else goes to the routes
//!   ([`super::routes`]), which answer the same four requests the same way.

use std::convert::Infallible;
use std::pin::Pin;

use futures::future::{Either, Ready, ready};
use hyper::body::Incoming;
use warp::http::header::AUTHORIZATION;
use warp::http::{Method, Request};
use warp::reply::Response;

use super::handlers::{legacy, v1};
use super::{Api, auth, limits, origin};

/// The front of the API: the checks, the hottest answers, then the routes `R` (warp's
/// service of [`super::routes::all`]).
#[derive(Clone)]
pub struct Front<R> {
    api: Api,
    routes: R,
}

impl<R> Front<R>
where
    R: tower_service::Service<Request<Incoming>, Response = Response, Error = Infallible> + Clone,
{
    /// A front for `api` passing what it does not answer itself to `routes`.
    pub fn new(api: Api, routes: R) -> Self {
        Front { api, routes }
    }

    /// The answer to `req`.
    pub fn call(&self, req: Request<Incoming>) -> Answer<R::Future> {
        if let Err(f) = origin::check(self.api.site(), req.headers())
            .and_then(|()| limits::announced(req.headers()))
        {
            return Either::Left(ready(Ok(f.into_response())));
        }
        if req.method() == Method::GET
            && let Some((read, guarded)) = snapshot_read(req.uri().path())
        {
            let given = req.headers().get(AUTHORIZATION);
            let res = match guarded.then(|| auth::check(self.api.token(), given)) {
                Some(Err(f)) => f.into_response(),
                _ => read(&self.api),
            };
            return Either::Left(ready(Ok(res)));
        }
        Either::Right(Box::pin(self.routes.clone().call(req)))
    }
}

/// A read answered from the latest snapshot alone (see [`super::rendered`]).
type Read = fn(&Api) -> Response;

/// The snapshot read a path names, and whether it needs the token (the original's
/// `/status` never did).
fn snapshot_read(path: &str) -> Option<(Read, bool)> {
    Some(match path {
        "/" => (legacy::list, true),
        "/status" => (legacy::status, false),
        "/api/v1/processes" => (v1::list, true),
        "/api/v1/status" => (v1::status, true),
        _ => return None,
    })
}

/// An answer of the front: made at once, or the routes' future. The routes' future is
/// boxed: unboxed, it made every answer ~800 bytes, which hyper moves several times per
/// request, the ones answered at once (`GET /`, `/status`) included.
pub type Answer<F> = Either<Ready<Result<Response, Infallible>>, Pin<Box<F>>>;
