//! What every request passes before any route runs, and the answers that need no routing.
//!
//! - **Checks**: a request a browser sends on behalf of another site is refused (403, see
//!   [`super::origin`]), and one announcing a body over the limit (413, see
//!   [`super::limits`]). They run here, on the request as it arrived, so no route (present or
//!   future) can forget them, and they read the headers in place.
//! - **The hottest answers**: `GET /` and `GET /status`, what polling scripts ask, are
//!   answered here from bytes rendered once per snapshot (or known in advance), with the
//!   token checked as their routes check it. Everything else goes to the routes
//!   ([`super::routes`]), which answer the same two requests the same way.

use std::convert::Infallible;
use std::pin::Pin;

use futures::future::{Either, Ready, ready};
use hyper::body::Incoming;
use warp::http::header::AUTHORIZATION;
use warp::http::{Method, Request};
use warp::reply::Response;

use super::handlers::legacy;
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
        if req.method() == Method::GET {
            match req.uri().path() {
                "/" => {
                    let given = req.headers().get(AUTHORIZATION);
                    let res = match auth::check(self.api.token(), given) {
                        Ok(()) => legacy::list(&self.api),
                        Err(f) => f.into_response(),
                    };
                    return Either::Left(ready(Ok(res)));
                }
                "/status" => return Either::Left(ready(Ok(legacy::status(&self.api)))),
                _ => {}
            }
        }
        Either::Right(Box::pin(self.routes.clone().call(req)))
    }
}

/// An answer of the front: made at once, or the routes' future. The routes' future is
/// boxed: unboxed, it made every answer ~800 bytes, which hyper moves several times per
/// request, the ones answered at once (`GET /`, `/status`) included.
pub type Answer<F> = Either<Ready<Result<Response, Infallible>>, Pin<Box<F>>>;
