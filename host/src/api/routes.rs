//! The routes: which path and method reach which handler ([`super::handlers`]).
//!
//! Each route matches its path first and its method second, so a wrong method on a known path
//! is a 405 and an unknown path a 404 (warp ranks rejections; matching the method first would
//! make every unknown path a 405). The token is checked after both ([`super::auth`]), so it
//! never hides which answer a request would get. Once a route matched, its handler answers
//! every outcome itself, errors included; rejections are left to [`super::error::recover`].
//! What every request passes before any route runs (another site's page refused, a body
//! announced over the limit refused) and the hottest answers are in [`super::front`].

use std::collections::HashMap;
use std::convert::Infallible;

use bytes::Bytes;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::error::{json_response, recover};
use super::handlers::{legacy, v1};
use super::percent::decode;
use super::{Api, OPENAPI, auth, limits};

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
    ("get", "/api/v1/identity"),
    ("get", "/ui/"),
    ("get", "/ui/app.js"),
    ("get", "/ui/style.css"),
];

/// Every route, with the error handler behind. The reads made of the snapshot alone (the
/// original's two, the `/api/v1/` list and status) are also answered before routing
/// ([`super::front`]); their routes here keep a wrong method on them a 405, and the answer
/// the same whichever way a request takes.
pub fn all(api: Api) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let legacy_list = warp::path::end()
        .and(warp::get())
        .and(auth::required(&api))
        .and(with(&api))
        .map(|api: Api| legacy::list(&api));
    let legacy_status = warp::path!("status")
        .and(warp::get())
        .and(with(&api))
        .map(|api: Api| legacy::status(&api));
    let legacy_shutdown = warp::path::end()
        .and(warp::delete())
        .and(auth::required(&api))
        .and(limits::drained())
        .and(with(&api))
        .then(|api: Api| async move { legacy::shutdown(&api).await });
    let legacy_restart = warp::path!("restart" / String)
        .and(warp::post())
        .and(auth::required(&api))
        .and(limits::drained())
        .and(with(&api))
        .then(|id: String, api: Api| async move { legacy::restart(&api, &decode(&id)).await });
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
        .and(auth::required(&api))
        .and(with(&api))
        .map(|api: Api| v1::list(&api));
    let v1_get = v1
        .and(warp::path!("processes" / String))
        .and(warp::get())
        .and(auth::required(&api))
        .and(with(&api))
        .map(|r: String, api: Api| v1::get(&api, &decode(&r)));
    let v1_command = |verb: &'static str| {
        v1.and(warp::path("processes"))
            .and(warp::path::param::<String>())
            .and(warp::path(verb))
            .and(warp::path::end())
            .and(warp::post())
            .and(auth::required(&api))
            .and(limits::drained())
            .and(with(&api))
            .then(
                move |r: String, api: Api| async move { v1::command(&api, &decode(&r), verb).await },
            )
    };
    let v1_logs = v1
        .and(warp::path!("processes" / String / "logs"))
        .and(warp::get())
        .and(auth::required(&api))
        .and(warp::query::<HashMap<String, String>>())
        .and(with(&api))
        .then(
            |r: String, q: HashMap<String, String>, api: Api| async move {
                v1::logs(&api, &decode(&r), &q).await
            },
        );
    let v1_events = v1
        .and(warp::path!("events"))
        .and(warp::get())
        .and(auth::required(&api))
        .and(with(&api))
        .map(|api: Api| v1::events(&api));
    let v1_status = v1
        .and(warp::path!("status"))
        .and(warp::get())
        .and(auth::required(&api))
        .and(with(&api))
        .map(|api: Api| v1::status(&api));
    let v1_timeline = v1
        .and(warp::path!("timeline"))
        .and(warp::get())
        .and(auth::required(&api))
        .and(with(&api))
        .then(|api: Api| async move { v1::timeline(&api).await });
    let v1_shutdown = v1
        .and(warp::path!("shutdown"))
        .and(warp::post())
        .and(auth::required(&api))
        .and(limits::drained())
        .and(warp::query::<HashMap<String, String>>())
        .and(with(&api))
        .then(|q: HashMap<String, String>, api: Api| async move { v1::shutdown(&api, &q).await });
    let v1_openapi = v1
        .and(warp::path!("openapi.json"))
        .and(warp::get())
        .map(|| json_response(StatusCode::OK, Bytes::from_static(OPENAPI.as_bytes())));
    // No token: a client asks before it sends one (see `super::identity`).
    let v1_identity = v1
        .and(warp::path!("identity"))
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(with(&api))
        .map(|q: HashMap<String, String>, api: Api| super::identity::answer(&api, &q));
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
        .or(v1_identity)
        .unify()
        .boxed();

    legacy
        .or(v1)
        .unify()
        .or(super::ui::routes())
        .unify()
        .recover(recover)
        .unify()
}

/// Hands the shared state to a handler.
fn with(api: &Api) -> impl Filter<Extract = (Api,), Error = Infallible> + Clone + use<> {
    let api = api.clone();
    warp::any().map(move || api.clone())
}
