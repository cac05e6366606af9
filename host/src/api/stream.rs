//! The answers that stay open: the event stream (server-sent events) and followed logs
//! (chunked plain text).
//!
//! Each is a task that writes into a small channel the response body reads from. The task
//! ends when the client goes away (the body, hence the channel, is dropped), when the server
//! stops, or when the supervisor is gone, so no stream outlives its reason to exist and none
//! keeps the manager from exiting.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::{broadcast, mpsc};
use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use warp::reply::{Reply, Response};

use super::json::{event_json, phase_event};
use super::{Api, StreamSlot};
use crate::process_view::{OutputLog, ReadFrom};
use crate::supervisor::{Event, ProcessRef, Snapshot};

/// A comment line sent this often on a quiet event stream, so that proxies and clients see
/// the connection is alive (and the task notices a client that went away).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Chunks queued per stream before the producer waits for a slow client.
const QUEUE: usize = 64;

/// The response body: whatever the producer task sends.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Stream for ChannelBody {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|c| c.map(Ok))
    }
}

fn streaming_response(rx: mpsc::Receiver<Bytes>, content_type: &'static str) -> Response {
    let mut res = warp::reply::stream(ChannelBody(rx)).into_response();
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// One server-sent event.
pub fn sse(name: &str, data: &str) -> Bytes {
    // Our JSON never holds a raw newline, so one `data:` line carries it.
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// `GET /api/v1/events`: a `phase` event with the current phase (and a `startup-failed`
/// event if the start-up already failed), then every [`Event`] as it happens, as
/// server-sent events whose data is JSON.
/// The stream holds `slot` until it ends.
pub fn events(api: &Api, slot: StreamSlot) -> Response {
    let (tx, rx) = mpsc::channel(QUEUE);
    // Subscribed before the snapshot is read, so nothing between the two is missed.
    let mut events = api.handle().subscribe();
    let snapshot = api.handle().snapshot();
    let phase = snapshot.phase;
    let failure = snapshot.startup_failure.clone();
    drop(snapshot);
    let api = api.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let send = |chunk: Bytes| {
            let tx = tx.clone();
            async move { tx.send(chunk).await.is_ok() }
        };
        let (name, data) = event_json(&phase_event(phase));
        if !send(sse(name, &data)).await {
            return;
        }
        // Told already: the same failure may still be on its way through `events`.
        let mut told_failure = failure.is_some();
        if let Some(message) = failure
            && !send(event_chunk(&Event::StartupFailed { message })).await
        {
            return;
        }
        let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
        keep_alive.reset();
        loop {
            let chunk = tokio::select! {
                _ = api.stopped().cancelled() => return,
                _ = tx.closed() => return,
                _ = keep_alive.tick() => Bytes::from_static(b":\n\n"),
                got = events.recv() => match got {
                    Ok(Event::StartupFailed { .. }) if told_failure => {
                        told_failure = false;
                        continue;
                    }
                    Ok(e) => event_chunk(&e),
                    Err(broadcast::error::RecvError::Lagged(n)) => sse(
                        "lagged",
                        &format!(r#"{{"event":"lagged","missed":{n}}}"#),
                    ),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if !send(chunk).await {
                return;
            }
        }
    });
    streaming_response(rx, "text/event-stream")
}

fn event_chunk(e: &Event) -> Bytes {
    let (name, data) = event_json(e);
    sse(name, &data)
}

/// `GET .../logs?follow=true`: the last `lines` lines of the current run, then every new
/// line, across restarts (a new run's output follows the old one's), as plain text. The
/// history is read lazily, a line at a time, however many clients follow it.
/// The stream holds `slot` until it ends.
pub fn follow_logs(
    api: &Api,
    target: ProcessRef,
    log: Arc<OutputLog>,
    lines: usize,
    slot: StreamSlot,
) -> Response {
    let (tx, rx) = mpsc::channel(QUEUE);
    let api = api.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let mut reader = log.reader(ReadFrom::Tail(lines));
        let mut snapshots = api.handle().watch();
        let mut run = run_of(&snapshots.borrow_and_update(), &target);
        loop {
            while let Some(line) = reader.try_next() {
                if tx.send(line_chunk(&line)).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                _ = api.stopped().cancelled() => return,
                _ = tx.closed() => return,
                line = reader.next() => {
                    if tx.send(line_chunk(&line)).await.is_err() {
                        return;
                    }
                }
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let now = run_of(&snapshots.borrow_and_update(), &target);
                    if now != run {
                        run = now;
                        // A new run has a new log; keep following the old one otherwise.
                        match api.handle().output(target.clone()).await {
                            Ok(new) if !Arc::ptr_eq(&new, reader.log()) => {
                                reader = new.reader(ReadFrom::Start);
                            }
                            Ok(_) => {}
                            Err(_) => return,
                        }
                    }
                }
            }
        }
    });
    streaming_response(rx, "text/plain; charset=utf-8")
}

/// What identifies one run of a process: it changes when the process is started again.
type RunId = Option<(Option<std::time::SystemTime>, u32)>;

fn run_of(snap: &Snapshot, target: &ProcessRef) -> RunId {
    snap.get(target).map(|p| (p.started_at, p.restarts))
}

fn line_chunk(line: &str) -> Bytes {
    let mut s = String::with_capacity(line.len() + 1);
    s.push_str(line);
    s.push('\n');
    Bytes::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_framing() {
        assert_eq!(
            sse("phase", "{}"),
            Bytes::from("event: phase\ndata: {}\n\n")
        );
    }
}
