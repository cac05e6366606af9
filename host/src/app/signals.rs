//! Signals the manager answers: SIGINT, SIGTERM, SIGQUIT and SIGHUP begin the graceful
//! shutdown, a second one kills everything at once, and so does the guardian's death
//! (SIGUSR2, its parent-death signal).
//!
//! Each signal stream carries what it asks for, so a signal that could not be registered
//! costs only its own meaning: it cannot shift another signal into its place.

use futures::stream::{BoxStream, StreamExt};
use tokio::signal::unix::{SignalKind, signal};

use crate::supervisor::SupervisorHandle;

/// What a signal asks of the manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Stop everything gracefully (a second request of any kind forces it); the signal's
    /// number.
    Shutdown(i32),
    /// Kill everything at once.
    Kill,
}

/// The signals the manager answers, with their names for messages.
fn wanted() -> [(SignalKind, &'static str, Request); 5] {
    [
        (
            SignalKind::interrupt(),
            "SIGINT",
            Request::Shutdown(libc::SIGINT),
        ),
        (
            SignalKind::terminate(),
            "SIGTERM",
            Request::Shutdown(libc::SIGTERM),
        ),
        (
            SignalKind::quit(),
            "SIGQUIT",
            Request::Shutdown(libc::SIGQUIT),
        ),
        (
            SignalKind::hangup(),
            "SIGHUP",
            Request::Shutdown(libc::SIGHUP),
        ),
        (
            SignalKind::from_raw(crate::guardian::PARENT_DIED as i32),
            "the guardian's death signal (SIGUSR2)",
            Request::Kill,
        ),
    ]
}

/// One stream of every request the `signals` bring; a signal that cannot be registered is
/// left out, and reported in the returned lines.
pub fn requests(
    signals: impl IntoIterator<Item = (SignalKind, &'static str, Request)>,
) -> (BoxStream<'static, Request>, Vec<String>) {
    let mut streams = Vec::new();
    let mut failures = Vec::new();
    for (kind, name, request) in signals {
        match signal(kind) {
            Ok(sig) => streams.push(
                futures::stream::unfold(sig, move |mut sig| async move {
                    sig.recv().await.map(|()| (request, sig))
                })
                .boxed(),
            ),
            Err(e) => failures.push(format!(
                "[WARNING] cannot handle {name}: {}",
                crate::error_text::io(&e)
            )),
        }
    }
    (futures::stream::select_all(streams).boxed(), failures)
}

/// Installs the handlers of every signal the manager answers; the warnings name those it
/// cannot handle. Called before anything starts, so that no signal finds the default action
/// (an abrupt death) once a process runs or a state file says the manager is there.
pub fn listen() -> (BoxStream<'static, Request>, Vec<String>) {
    requests(wanted())
}

/// Turns signals into shutdown requests to the supervisor, for the rest of the manager's
/// life; `seen` signals were already acted on (so the next one forces the shutdown).
pub async fn forward(
    mut requests: BoxStream<'static, Request>,
    handle: SupervisorHandle,
    mut seen: u32,
) {
    while let Some(request) = requests.next().await {
        seen += 1;
        if request == Request::Kill || seen > 1 {
            handle.force_shutdown().await;
        } else {
            let _ = handle.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_registration_does_not_shift_the_meaning_of_the_others() {
        // SIGKILL cannot be handled: its registration fails. SIGURG is ignored by default,
        // so raising it in the test process is harmless.
        let (mut requests, failures) = requests([
            (
                SignalKind::from_raw(libc::SIGKILL),
                "SIGKILL",
                Request::Shutdown(libc::SIGKILL),
            ),
            (SignalKind::from_raw(libc::SIGURG), "SIGURG", Request::Kill),
        ]);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].contains("SIGKILL"), "{failures:?}");
        // SAFETY: raising a signal whose handler tokio installed above.
        unsafe { libc::raise(libc::SIGURG) };
        let got = tokio::time::timeout(std::time::Duration::from_secs(30), requests.next())
            .await
            .expect("the signal arrives");
        assert_eq!(got, Some(Request::Kill));
    }
}
