//! Serves HTTP/1.1 connections within bounds, so that no client (a stuck script, a port
//! scanner, a local user holding sockets open) can take the API or the manager down:
//!
//! - **a header-read timeout** ([`HEADER_READ_TIMEOUT`]): a connection that does not finish
//!   sending its request's headers in time, or stays idle that long between requests, is
//!   closed;
//! - **a cap on open connections** ([`connection_cap`], from the process's file limit): at
//!   the cap, the oldest connection that is idle (no request in flight, no answer being
//!   sent) is closed to make room, so a pile of idle sockets delays no one and never eats
//!   the file descriptors that starting a process needs (its pipes); if every connection is
//!   busy, the newcomer gets a 503 at once and is closed.
//!
//! warp's own server has neither, hence this accept loop over hyper's HTTP/1 connection
//! with the API's [`Front`](super::front::Front) as the service.
//!
//! The timeout is kept here rather than by hyper's own `header_read_timeout`: that one
//! drops and allocates a timer and registers it with tokio's timer wheel on every request
//! (12 % of the instructions of a `GET /`). Here a request costs a clock read when its
//! answer is done; each connection has one timer, which fires at most once per timeout
//! period and then checks how long the connection has really been waiting.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Request;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use warp::reply::Response;

/// How long a client may take to send a request's headers, and how long a kept-alive
/// connection may stay idle.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The most connections open at once, whatever the file limit.
pub const MAX_CONNECTIONS: usize = 256;

/// The fewest, however low the file limit.
const MIN_CONNECTIONS: usize = 8;

/// The connection cap for this process: [`MAX_CONNECTIONS`], or a quarter of the open-file
/// limit if that is lower, so that three quarters stay for the managed processes' pipes,
/// log files and the verifier runtime.
pub fn connection_cap() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    let quarter = usize::try_from(soft / 4).unwrap_or(usize::MAX);
    quarter.clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

/// The answer to a connection beyond the cap when none can be closed for it.
fn busy_answer() -> String {
    let body = r#"{"success": false, "error": {"message": "Too many connections: every one is busy; retry."}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Serves `answer` (the answer to each request) on `listener` until `stop` fires; then
/// stops accepting, lets each connection finish the request it is on, and returns when all
/// are closed. Dropping the future closes every connection at once.
pub async fn serve<A, F>(listener: TcpListener, answer: A, cap: usize, stop: CancellationToken)
where
    A: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response, Infallible>> + Send + 'static,
{
    let table = Arc::new(Table::new(cap));
    let _close_all = CloseAll(table.clone());
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors (or a connection reset before it was accepted):
                // make room if there is idle room to make, and try again shortly rather than
                // spinning.
                if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) {
                    table.evict_idle();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        let Some(slot) = table.admit().await else {
            // Best effort and never waiting: a fresh socket's send buffer is empty.
            let _ = stream.try_write(busy_answer().as_bytes());
            continue;
        };
        tokio::spawn(connection(stream, answer.clone(), slot, stop.clone()));
    }
    drop(listener);
    table.wait_empty().await;
}

async fn connection<A, F>(stream: TcpStream, answer: A, slot: Slot, stop: CancellationToken)
where
    A: Fn(Request<Incoming>) -> F + Send + 'static,
    F: Future<Output = Result<Response, Infallible>> + Send + 'static,
{
    let _ = stream.set_nodelay(true);
    let activity = slot.activity.clone();
    let handler = hyper::service::service_fn(move |req: Request<Incoming>| {
        let guard = Busy::enter(&activity);
        let answered = answer(req);
        async move {
            let mut res = answered.await?;
            // Every answer, errors and streams included: a browser never guesses a type
            // other than the one given (a JSON or text body rendered as HTML).
            res.headers_mut().insert(
                hyper::header::X_CONTENT_TYPE_OPTIONS,
                hyper::header::HeaderValue::from_static("nosniff"),
            );
            Ok::<_, Infallible>(res.map(|body| Guarded { body, _busy: guard }))
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    // Kept by `waited_too_long` instead (see the module's doc).
    http.header_read_timeout(None);
    let conn = http.serve_connection(TokioIo::new(stream), handler);
    tokio::pin!(conn);
    let too_long = waited_too_long(&slot.activity, HEADER_READ_TIMEOUT);
    tokio::pin!(too_long);
    tokio::select! {
        _ = &mut conn => return,
        _ = slot.evict.cancelled() => return,
        _ = &mut too_long => return,
        _ = stop.cancelled() => {}
    }
    conn.as_mut().graceful_shutdown();
    tokio::select! {
        _ = &mut conn => {}
        _ = slot.evict.cancelled() => {}
        _ = &mut too_long => {}
    }
}

/// Resolves once the connection has waited `limit` for a request's head: since it was
/// opened, or since its last answer was written, with no request handed to the routes in
/// between. A connection with a request in flight (a stream included) never times out.
async fn waited_too_long(activity: &Activity, limit: Duration) {
    let timer = tokio::time::sleep_until(activity.opened + limit);
    tokio::pin!(timer);
    loop {
        (&mut timer).await;
        let now = Instant::now();
        let next = match activity.idle_since() {
            Some(since) if now.saturating_duration_since(since) >= limit => return,
            Some(since) => since + limit,
            // Busy now: whenever it is done, it gets the whole period again.
            None => now + limit,
        };
        timer.as_mut().reset(next);
    }
}

/// The open connections, oldest first.
struct Table {
    cap: usize,
    open: Mutex<Open>,
    closed: Notify,
}

#[derive(Default)]
struct Open {
    next: u64,
    conns: BTreeMap<u64, Entry>,
}

struct Entry {
    activity: Arc<Activity>,
    evict: CancellationToken,
}

impl Table {
    fn new(cap: usize) -> Table {
        Table {
            cap,
            open: Mutex::new(Open::default()),
            closed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a new connection. When the table is full, the oldest idle connection is
    /// told to close and its slot awaited (so that the sockets open never exceed the cap,
    /// not even for a moment); `None` when every connection is busy.
    async fn admit(self: &Arc<Self>) -> Option<Slot> {
        loop {
            // Registered before looking, so a slot freed in between is not missed.
            let freed = self.closed.notified();
            {
                let mut open = self.lock();
                if open.conns.len() < self.cap {
                    return Some(self.insert(&mut open));
                }
                let closing = open.conns.values().any(|e| e.evict.is_cancelled());
                if !closing && !Self::evict_oldest_idle(&open) {
                    return None;
                }
            }
            freed.await;
        }
    }

    fn insert(self: &Arc<Self>, open: &mut Open) -> Slot {
        let id = open.next;
        open.next += 1;
        let entry = Entry {
            activity: Arc::new(Activity::new()),
            evict: CancellationToken::new(),
        };
        let slot = Slot {
            table: self.clone(),
            id,
            activity: entry.activity.clone(),
            evict: entry.evict.clone(),
        };
        open.conns.insert(id, entry);
        slot
    }

    /// Tells the oldest idle connection, if any, to close.
    fn evict_idle(&self) {
        Self::evict_oldest_idle(&self.lock());
    }

    /// The connection keeps its place until its task has closed the socket.
    fn evict_oldest_idle(open: &Open) -> bool {
        let idle = open
            .conns
            .values()
            .find(|e| !e.evict.is_cancelled() && e.activity.is_idle());
        match idle {
            Some(e) => {
                e.evict.cancel();
                true
            }
            None => false,
        }
    }

    fn remove(&self, id: u64) {
        self.lock().conns.remove(&id);
        self.closed.notify_waiters();
    }

    async fn wait_empty(&self) {
        loop {
            let notified = self.closed.notified();
            if self.lock().conns.is_empty() {
                return;
            }
            notified.await;
        }
    }
}

/// Closes every connection still open when the server goes away.
struct CloseAll(Arc<Table>);

impl Drop for CloseAll {
    fn drop(&mut self) {
        for (_, e) in std::mem::take(&mut self.0.lock().conns) {
            e.evict.cancel();
        }
    }
}

/// One connection's place in the table; gives it back when the connection ends.
struct Slot {
    table: Arc<Table>,
    id: u64,
    activity: Arc<Activity>,
    evict: CancellationToken,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.table.remove(self.id);
    }
}

/// What a connection is doing, as its answers tell it: whether a request is in flight,
/// and since when it has not been. Read by the eviction of idle connections and by the
/// header-read timeout.
struct Activity {
    /// Requests handed to the routes whose answers are not yet written.
    busy: AtomicUsize,
    /// When the last answer was written, in nanoseconds after `opened`.
    idle_since: AtomicU64,
    opened: Instant,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            opened: Instant::now(),
        }
    }

    fn is_idle(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0
    }

    /// Since when the connection has had no request in flight; `None` while it has one.
    fn idle_since(&self) -> Option<Instant> {
        self.is_idle()
            .then(|| self.opened + Duration::from_nanos(self.idle_since.load(Ordering::Acquire)))
    }
}

/// Marks a connection busy from the moment a request is handed to the routes until its
/// answer's last byte has been written (the guard lives in the answer's body).
struct Busy(Arc<Activity>);

impl Busy {
    fn enter(activity: &Arc<Activity>) -> Busy {
        activity.busy.fetch_add(1, Ordering::AcqRel);
        Busy(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        // Written before the count drops, so whoever sees the connection idle also sees
        // since when.
        let since = u64::try_from(a.opened.elapsed().as_nanos()).unwrap_or(u64::MAX);
        a.idle_since.fetch_max(since, Ordering::AcqRel);
        a.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body, carrying its connection's [`Busy`] mark until it is dropped.
struct Guarded<B> {
    body: B,
    _busy: Busy,
}

impl<B: Body + Unpin> Body for Guarded<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_table_closes_its_oldest_idle_connection() {
        let table = Arc::new(Table::new(2));
        let a = table.admit().await.unwrap();
        let b = table.admit().await.unwrap();
        let busy_a = Busy::enter(&a.activity);
        // b is idle: it is told to close, and its place is given once it has.
        let b_evict = b.evict.clone();
        let closer = tokio::spawn(async move {
            b_evict.cancelled().await;
            drop(b);
        });
        let c = table.admit().await.expect("b is idle and makes room");
        closer.await.unwrap();
        assert!(!a.evict.is_cancelled());
        let _busy_c = Busy::enter(&c.activity);
        assert!(table.admit().await.is_none(), "every connection is busy");
        drop(busy_a);
        let a_evict = a.evict.clone();
        let closer = tokio::spawn(async move {
            a_evict.cancelled().await;
            drop(a);
        });
        assert!(table.admit().await.is_some());
        closer.await.unwrap();
    }

    /// Generous: the timer may fire late on a loaded machine, never early.
    const LATE: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn an_idle_connection_times_out_one_period_after_it_opened() {
        let activity = Activity::new();
        let limit = Duration::from_millis(200);
        tokio::time::timeout(LATE, waited_too_long(&activity, limit))
            .await
            .expect("an idle connection times out");
        assert!(activity.opened.elapsed() >= limit);
    }

    #[tokio::test]
    async fn a_request_in_flight_holds_the_timeout_off_and_its_end_restarts_it() {
        let activity = Arc::new(Activity::new());
        let limit = Duration::from_millis(100);
        let busy = Busy::enter(&activity);
        let too_long = waited_too_long(&activity, limit);
        tokio::pin!(too_long);
        // Five periods with a stream open: it is never cut.
        let held = tokio::time::timeout(5 * limit, &mut too_long).await;
        assert!(held.is_err(), "a busy connection timed out");
        let done = Instant::now();
        drop(busy);
        tokio::time::timeout(LATE, &mut too_long)
            .await
            .expect("idle after its answer, it times out");
        assert!(done.elapsed() >= limit, "cut before a whole idle period");
    }

    #[tokio::test]
    async fn an_answer_late_in_the_period_gives_a_whole_new_one() {
        let activity = Arc::new(Activity::new());
        let limit = Duration::from_millis(300);
        let too_long = waited_too_long(&activity, limit);
        tokio::pin!(too_long);
        // Its timer is armed for one period after the opening…
        let _ = tokio::time::timeout(limit / 2, &mut too_long).await;
        // …and a request answered since moves the end.
        drop(Busy::enter(&activity));
        let answered = Instant::now();
        tokio::time::timeout(LATE, &mut too_long).await.unwrap();
        assert!(
            answered.elapsed() >= limit,
            "cut before a whole idle period"
        );
    }

    #[test]
    fn the_cap_follows_the_file_limit() {
        let cap = connection_cap();
        assert!((MIN_CONNECTIONS..=MAX_CONNECTIONS).contains(&cap));
    }

    #[test]
    fn the_busy_answer_is_well_formed() {
        let answer = busy_answer();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["success"], false);
    }
}
