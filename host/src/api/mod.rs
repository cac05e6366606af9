//! The REST interface: the original's four endpoints, unchanged in shape, and `/api/v1/`,
//! which says and does more (per-process stop/start, logs, an event stream, OpenAPI).
//!
//! Handlers never touch the process table: they read the supervisor's latest
//! [`Snapshot`](crate::supervisor::Snapshot) or send it a command through the
//! [`SupervisorHandle`] and await the reply, so a slow restart never blocks a `GET /`.
//! A request meets [`server`] (connections within bounds), then [`front`] (the checks every
//! request passes, the hottest answers), then [`routes`] (which path reaches which of the
//! [`handlers`]). JSON shapes are in [`json`] and [`v1`], error bodies in [`error`], the
//! long-lived streaming answers (events, followed logs) in [`stream`]. `docs/api.md` is the
//! user's page; `docs/openapi.json` (served at `/api/v1/openapi.json`) the machine's.

pub mod auth;
pub mod error;
pub mod front;
pub mod handlers;
pub(crate) mod identity;
pub mod json;
pub mod limits;
pub mod origin;
pub mod percent;
pub mod rendered;
pub mod routes;
pub mod server;
pub mod stream;
pub mod ui;
pub mod v1;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::supervisor::{Snapshot, SupervisorHandle};

/// The largest request body accepted; none of our routes needs one, so anything bigger is a
/// mistake or an attack (413).
pub const BODY_LIMIT: u64 = 64 * 1024;

/// How long a request's body may take to arrive once its head has: the header-read
/// timeout's counterpart, so that a client announcing a body it never sends does not hold
/// a connection busy (out of reach of the idle eviction) forever (408).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long in-flight requests may finish after the server is told to stop; a client
/// following logs must not hold the manager's exit hostage.
pub const DRAIN: Duration = Duration::from_secs(5);

/// Event streams (`/api/v1/events`) open at once; past it, 503. Each holds a task and a
/// small queue, and a client that never reads keeps them.
pub const MAX_EVENT_STREAMS: usize = 32;

/// Followed logs (`logs?follow=true`) open at once; past it, 503.
pub const MAX_LOG_FOLLOWS: usize = 32;

/// The OpenAPI 3 description of the whole API, served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// Where and how to serve; built by the caller from the config's `http` object.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Host or address to bind; loopback unless the config says otherwise.
    pub host: String,
    /// Port to bind; 0 picks a free one (the address actually bound is returned).
    pub port: u16,
    /// If set, every request but `GET /status` and `GET /api/v1/openapi.json` must carry
    /// `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            host: "127.0.0.1".into(),
            port: 5001,
            token: None,
        }
    }
}

/// Why the API could not be served; one line each, naming what to fix.
#[derive(thiserror::Error, Debug)]
pub enum ApiError {
    /// `http.host` does not resolve.
    #[error("cannot resolve http.host '{host}': {}", crate::error_text::io(.source))]
    Resolve {
        /// The host as configured.
        host: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// The address is taken, or not ours to bind.
    #[error("cannot listen on {addr}: {}", crate::error_text::io(.source))]
    Listen {
        /// The address tried.
        addr: String,
        /// The OS's error.
        #[source]
        source: std::io::Error,
    },
    /// An empty token would be a lock anyone opens by sending `Bearer ` (or no one could):
    /// refuse it rather than guess.
    #[error("http token is empty: set a token or remove it")]
    EmptyToken,
}

/// Binds the REST interface and returns the address bound and the server future.
///
/// Binding happens here, so a taken port is an error the caller reports before anything
/// starts; serving happens only when the returned future is polled. The future ends after
/// `shutdown` resolves: new connections are refused, streams (events, followed logs) end,
/// and in-flight requests get up to [`DRAIN`] to finish. Dropping the future stops it too.
pub async fn bind(
    handle: SupervisorHandle,
    config: ApiConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = ()> + Send + 'static), ApiError> {
    if config.token.as_deref() == Some("") {
        return Err(ApiError::EmptyToken);
    }
    let host = config.host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, config.port))
        .await
        .map_err(|source| ApiError::Resolve {
            host: config.host.clone(),
            source,
        })?
        .collect();
    let mut listener = Err(ApiError::Resolve {
        host: config.host.clone(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
    });
    for addr in addrs {
        match listen(addr) {
            Ok(l) => {
                listener = Ok(l);
                break;
            }
            Err(source) => {
                listener = Err(ApiError::Listen {
                    addr: addr.to_string(),
                    source,
                })
            }
        }
    }
    let (listener, local) = listener?;

    let stop = CancellationToken::new();
    let api = Api::new(handle, config.token, stop.clone()).serving(origin::Site::new(local));
    let front = Arc::new(front::Front::new(
        api.clone(),
        warp::service(routes::all(api)),
    ));
    let server = server::serve(
        listener,
        move |req| front.call(req),
        server::connection_cap(),
        stop.clone(),
    );
    Ok((local, async move {
        // Dropping the server (the caller gave up on it) ends the streams as well.
        let _guard = stop.clone().drop_guard();
        tokio::pin!(server);
        tokio::select! {
            _ = &mut server => return,
            _ = shutdown => stop.cancel(),
        }
        let _ = tokio::time::timeout(DRAIN, server).await;
    }))
}

/// Binds `addr`, makes the bound address one no verifier may reach, then listens: no
/// connection can be accepted before the address is forbidden.
fn listen(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As TcpListener::bind does: a restarted manager may take its port back at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let local = socket.local_addr()?;
    crate::runtime::forbid_address(local);
    Ok((socket.listen(1024)?, local))
}

/// What every handler shares: the supervisor's handle, the token, and the hottest answers
/// rendered once per snapshot.
#[derive(Clone)]
pub struct Api {
    inner: Arc<Inner>,
    site: origin::Site,
}

struct Inner {
    handle: SupervisorHandle,
    token: Option<String>,
    /// The answers made of the latest snapshot alone.
    rendered: rendered::Rendered,
    /// Cancelled when the server stops; ends every stream.
    stop: CancellationToken,
    /// Room for more event streams.
    event_streams: Arc<Semaphore>,
    /// Room for more followed logs.
    log_follows: Arc<Semaphore>,
}

/// Which kind of long-lived answer a [`StreamSlot`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// `GET /api/v1/events`.
    Events,
    /// `GET /api/v1/processes/{ref}/logs?follow=true`.
    LogFollow,
}

/// A place among the streams of one kind, held by the stream's task for as long as it
/// runs.
#[derive(Debug)]
pub struct StreamSlot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Api {
    /// The shared state of one server.
    pub fn new(handle: SupervisorHandle, token: Option<String>, stop: CancellationToken) -> Self {
        Api {
            inner: Arc::new(Inner {
                handle,
                token,
                rendered: Default::default(),
                stop,
                event_streams: Arc::new(Semaphore::new(MAX_EVENT_STREAMS)),
                log_follows: Arc::new(Semaphore::new(MAX_LOG_FOLLOWS)),
            }),
            site: origin::Site::default(),
        }
    }

    /// The same API, told where it listens: requests from other sites are told apart by
    /// it (see [`origin`]). Without it the API assumes loopback.
    pub fn serving(mut self, site: origin::Site) -> Self {
        self.site = site;
        self
    }

    /// Where the API listens, as [`origin::check`] needs it.
    pub fn site(&self) -> &origin::Site {
        &self.site
    }

    /// The supervisor.
    pub fn handle(&self) -> &SupervisorHandle {
        &self.inner.handle
    }

    /// The bearer token requests must carry, if any.
    pub fn token(&self) -> Option<&str> {
        self.inner.token.as_deref()
    }

    /// Fires when the server stops.
    pub fn stopped(&self) -> &CancellationToken {
        &self.inner.stop
    }

    /// A place for one more stream of this kind, or the 503 that says there is none: a
    /// client that opens streams and never reads them must not grow the manager without
    /// bound.
    pub fn stream_slot(&self, kind: StreamKind) -> Result<StreamSlot, error::Failure> {
        let (pool, what, limit) = match kind {
            StreamKind::Events => (
                &self.inner.event_streams,
                "event streams",
                MAX_EVENT_STREAMS,
            ),
            StreamKind::LogFollow => (&self.inner.log_follows, "followed logs", MAX_LOG_FOLLOWS),
        };
        pool.clone()
            .try_acquire_owned()
            .map(StreamSlot)
            .map_err(|_| {
                error::Failure::new(
                    warp::http::StatusCode::SERVICE_UNAVAILABLE,
                    format!("Too many open {what} (limit {limit}): close one and try again."),
                )
            })
    }

    /// The latest snapshot and its `which` body, serialized at most once per snapshot.
    pub fn rendered(&self, which: rendered::Body) -> (Arc<Snapshot>, Bytes) {
        let snap = self.inner.handle.snapshot();
        let body = self.inner.rendered.get(&snap, which);
        (snap, body)
    }
}

#[cfg(test)]
mod tests;
