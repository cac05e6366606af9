//! The `host` and `probe` interfaces of the WIT world: one module per capability, each
//! checking the calling module's grants (and the call's mode) before doing anything.
//!
//! | WIT function | module |
//! | --- | --- |
//! | `process-state`, `wait-exit`, `wait-output` | [`process`] |
//! | `http-request` | [`http`] |
//! | `tcp-connect` | [`tcp`] |
//! | `port-owned` | [`owner`] |
//! | `sleep`, `elapsed-ms` | [`clock`] |
//! | `log` | [`log`] |
//!
//! Each of those modules takes only what its capability needs (the process's view, the
//! module's grants, the HTTP clients); what the interfaces hold for one instance is
//! [`context::HostCtx`], and the dispatch below hands each function its part. A call that
//! waits is marked as waiting on the epoch ticker here, so that its time is not charged as
//! the guest's CPU.
//!
//! Every call of a verification is journaled, and a long wait parks (see
//! [`super::journal`]): the functions here answer from the journal while a parked guest is
//! replayed, and record what they answered live.
//!
//! The calls that can fail return a [`HostError`]: its kind goes to modules built against
//! WIT 1.1.0 (through `probe`), its message alone to those built against 1.0.0 (through
//! `host`'s functions of the same names), so both see the same words.

pub(crate) mod budget;
pub(crate) mod clock;
pub(crate) mod context;
pub(crate) mod http;
pub(crate) mod log;
pub(crate) mod owner;
pub(crate) mod park;
pub(crate) mod process;
pub(crate) mod reach;
pub(crate) mod tcp;

use std::time::Duration;

use super::bindings::pymanager::verifier::{host, probe, types};
use super::journal::Entry;
use crate::process_view::ProcState;
use context::{HostCtx, Stop};
use park::Parked;

pub(crate) use types::{ErrorKind, HostError};

/// A failed host call of `kind`, with its one line for the user.
pub(crate) fn fail(kind: ErrorKind, message: impl Into<String>) -> HostError {
    HostError {
        kind,
        message: message.into(),
    }
}

/// Any other failure: [`ErrorKind::Failed`], which a verifier may retry.
impl From<String> for HostError {
    fn from(message: String) -> HostError {
        fail(ErrorKind::Failed, message)
    }
}

impl HostError {
    /// The same failure, its message prefixed with what was being reached.
    pub(crate) fn about(self, what: impl std::fmt::Display) -> HostError {
        fail(self.kind, format!("{what}: {}", self.message))
    }
}

/// The kind of a failed connection attempt, from the operating system's error.
pub(crate) fn io_kind(e: &std::io::Error) -> ErrorKind {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => ErrorKind::Refused,
        std::io::ErrorKind::TimedOut => ErrorKind::TimedOut,
        _ => ErrorKind::Failed,
    }
}

/// The journal's answer to this call (`made`, its WIT name) when a parked guest is
/// replayed and the recorded call has this shape:
/// `replayed!(st, "sleep", Entry::Sleep(b) => *b)` (a guard may follow the pattern).
macro_rules! replayed {
    ($st:expr, $made:expr, $pat:pat $(if $guard:expr)? => $answer:expr) => {
        $st.call.journal.replay($made, |e| match e {
            $pat $(if $guard)? => Some($answer),
            _ => None,
        })
    };
}

impl types::Host for HostCtx {}

/// WIT 1.0.0's signatures: the message of a failure, without its kind.
impl host::Host for HostCtx {
    async fn process_state(&mut self) -> wasmtime::Result<types::ProcState> {
        if let Some(s) = replayed!(self, "process-state", Entry::ProcessState(s) => *s) {
            seen(self, Some(s))?;
            return Ok(s);
        }
        let s = process::state(self.view());
        seen(self, Some(s))?;
        self.call.journal.record(Entry::ProcessState(s));
        Ok(s)
    }

    async fn wait_exit(&mut self, timeout_ms: u32) -> wasmtime::Result<Option<types::ProcState>> {
        if let Some(s) = replayed!(self, "wait-exit", Entry::WaitExit(s) => *s) {
            seen(self, s)?;
            return Ok(s);
        }
        let timeout = Duration::from_millis(timeout_ms.into());
        let running = self.view().is_some_and(|v| !v.state().has_ended());
        if running && self.may_park(timeout) {
            return park(self, Parked::Exit(timeout));
        }
        let s = {
            let _waiting = self.ticker.waiting();
            process::wait_exit(self.view().cloned(), timeout).await
        };
        seen(self, s)?;
        self.call.journal.record(Entry::WaitExit(s));
        Ok(s)
    }

    async fn wait_output(
        &mut self,
        pattern: String,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Option<String>, String>> {
        Ok(wait_output(self, pattern, timeout_ms)
            .await?
            .map_err(|e| e.message))
    }

    async fn http_request(
        &mut self,
        request: types::Request,
    ) -> wasmtime::Result<Result<types::Response, String>> {
        Ok(http_request(self, request).await?.map_err(|e| e.message))
    }

    async fn tcp_connect(
        &mut self,
        host: String,
        port: u16,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(tcp_connect(self, host, port, timeout_ms)
            .await?
            .map_err(|e| e.message))
    }

    async fn sleep(&mut self, ms: u32) -> wasmtime::Result<bool> {
        if let Some(b) = replayed!(self, "sleep", Entry::Sleep(b) => *b) {
            return Ok(b);
        }
        go_on(self)?;
        let d = Duration::from_millis(ms.into());
        if self.view().is_some() && self.may_park(d) {
            return park(self, Parked::Sleep(d));
        }
        let b = {
            let _waiting = self.ticker.waiting();
            let view = self.view().cloned();
            // Cut short by an unseen end: true, it was not pymanager shutting down.
            until_unseen_end(self, clock::sleep(view, d))
                .await
                .unwrap_or(true)
        };
        self.call.journal.record(Entry::Sleep(b));
        Ok(b)
    }

    async fn elapsed_ms(&mut self) -> u64 {
        if let Some(ms) = replayed!(self, "elapsed-ms", Entry::ElapsedMs(ms) => *ms) {
            return ms;
        }
        let ms = clock::elapsed_ms(self.call.started);
        self.call.journal.record(Entry::ElapsedMs(ms));
        ms
    }

    async fn log(&mut self, level: types::Level, message: String) {
        // A line logged before a park was shown then: its replay shows nothing.
        if let Some(()) = replayed!(self, "log", Entry::Log(l) if *l == level => ()) {
            return;
        }
        log::log(&mut self.call, &mut self.warnings, level, &message);
        self.call.journal.record(Entry::Log(level));
    }
}

/// WIT 1.1.0's `probe`: the same calls, failures typed; and 1.2.0's `port-owned`.
impl probe::Host for HostCtx {
    async fn wait_output(
        &mut self,
        pattern: String,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Option<String>, HostError>> {
        wait_output(self, pattern, timeout_ms).await
    }

    async fn http_request(
        &mut self,
        request: types::Request,
    ) -> wasmtime::Result<Result<types::Response, HostError>> {
        http_request(self, request).await
    }

    async fn tcp_connect(
        &mut self,
        host: String,
        port: u16,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<(), HostError>> {
        tcp_connect(self, host, port, timeout_ms).await
    }

    async fn port_owned(
        &mut self,
        host: String,
        port: u16,
    ) -> wasmtime::Result<Result<(), HostError>> {
        if let Some(answer) = replayed!(
            self,
            "port-owned",
            Entry::PortOwned { host: h, port: p, answer } if *h == host && *p == port => answer.clone()
        ) {
            return Ok(answer);
        }
        go_on(self)?;
        let answer = {
            let _waiting = self.ticker.waiting();
            let view = self.view().cloned();
            let call = &mut self.call;
            owner::port_owned(
                &self.module,
                view,
                &mut call.cpu,
                &mut call.holder,
                &host,
                port,
            )
            .await?
        };
        if self.call.journal.recording() {
            let answer = answer.clone();
            let entry = Entry::PortOwned { host, port, answer };
            self.call.journal.record(entry);
        }
        Ok(answer)
    }
}

/// Stops the guest to park its wait: the error unwinds it (a guest cannot catch it), and
/// the runtime, seeing why it stopped, carries out the wait with the instance dropped. A
/// guest whose replays kept differing from the record parks no more: it fails here.
fn park<T>(st: &mut HostCtx, wait: Parked) -> wasmtime::Result<T> {
    match st.call.journal.diverged() {
        Some(why) => stop(st, Stop::Diverged(why)),
        None => stop(st, Stop::Park(wait)),
    }
}

/// Stops the guest for `why`: the error unwinds it, and the runtime acts on `why`.
fn stop<T>(st: &mut HostCtx, why: Stop) -> wasmtime::Result<T> {
    st.stop = Some(why);
    Err(wasmtime::format_err!("stopped by the host"))
}

/// Notes what `process-state` or `wait-exit` answered: once it is the process's end, the
/// verifier has seen it and may go on. An end whose exit code is unknown (a process that
/// is not pymanager's child, reaped by its parent first) ends the call: the verifier would
/// otherwise be handed a code that never was.
fn seen(st: &mut HostCtx, answer: Option<types::ProcState>) -> wasmtime::Result<()> {
    match answer {
        Some(types::ProcState::Exited(ProcState::UNKNOWN_CODE)) => {
            let name = st.view().map_or("the process", |v| v.name()).to_string();
            let line = process::describe_end(&name, ProcState::exited_unknown());
            stop(st, Stop::Ended(line))
        }
        Some(types::ProcState::Exited(_) | types::ProcState::Signaled(_)) => {
            st.call.saw_end = true;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The failure of a verification whose process has ended without the verifier having
/// seen it end (`redis exited with code 1 before it was verified`); `None` while it runs,
/// once the verifier has seen the end, and when there is no process.
pub(crate) fn unseen_end(st: &HostCtx) -> Option<String> {
    let view = st.view()?;
    let state = view.state();
    (state.has_ended() && !st.call.saw_end).then(|| {
        format!(
            "{} before it was verified",
            process::describe_end(view.name(), state)
        )
    })
}

/// Before a call that looks at anything but the process's state: a process that ended
/// unseen ends the call here, so that no verifier passes for a process that is gone.
fn go_on(st: &mut HostCtx) -> wasmtime::Result<()> {
    match unseen_end(st) {
        Some(line) => stop(st, Stop::Ended(line)),
        None => Ok(()),
    }
}

/// `wait`, or `None` if the process ends first and the verifier has not seen it end: a
/// waiting call returns then, for the verifier to look (or be stopped at its next call).
async fn until_unseen_end<F: Future>(st: &HostCtx, wait: F) -> Option<F::Output> {
    let Some(view) = st.view().filter(|_| !st.call.saw_end).cloned() else {
        return Some(wait.await);
    };
    tokio::select! {
        biased;
        out = wait => Some(out),
        _ = view.ended() => None,
    }
}

/// What a waiting `http-request` or `tcp-connect` answers when the process ends unseen.
fn cut_short(st: &HostCtx, what: &str) -> HostError {
    let name = st.view().map_or("the process", |v| v.name());
    fail(ErrorKind::Failed, format!("{what}: given up: {name} ended"))
}

/// `wait-output`, journaled; a long wait parks (after its pattern is checked).
async fn wait_output(
    st: &mut HostCtx,
    pattern: String,
    timeout_ms: u32,
) -> wasmtime::Result<Result<Option<String>, HostError>> {
    if let Some(answer) = replayed!(st, "wait-output", Entry::WaitOutput { pattern: p, answer } if *p == pattern => answer.clone())
    {
        return Ok(answer);
    }
    go_on(st)?;
    let timeout = Duration::from_millis(timeout_ms.into());
    // A bad pattern is answered live, so that its error is recorded like any answer.
    if st.view().is_some()
        && st.may_park(timeout)
        && let Ok(re) = process::compile(&pattern)
    {
        return park(
            st,
            Parked::Output {
                pattern,
                re,
                timeout,
            },
        );
    }
    let answer = {
        let _waiting = st.ticker.waiting();
        let view = st.view().cloned();
        process::wait_output(view, &mut st.call.cpu, &pattern, timeout).await?
    };
    if st.call.journal.recording() {
        let answer = answer.clone();
        st.call
            .journal
            .record(Entry::WaitOutput { pattern, answer });
    }
    Ok(answer)
}

/// `http-request`, journaled (the request without its time-out is what must match).
async fn http_request(
    st: &mut HostCtx,
    request: types::Request,
) -> wasmtime::Result<Result<types::Response, HostError>> {
    let same = |r: &types::Request| {
        r.method == request.method
            && r.url == request.url
            && r.headers == request.headers
            && r.body == request.body
    };
    if let Some(answer) = replayed!(st, "http-request", Entry::Http { request: r, answer } if same(r) => answer.clone())
    {
        return Ok(answer);
    }
    go_on(st)?;
    let record = st.call.journal.recording().then(|| request.clone());
    let url = request.url.clone();
    let answer = {
        let _waiting = st.ticker.waiting();
        let ca = st.call.ca_file.clone();
        let view = st.view().cloned();
        let sent = http::request(&st.http, ca.as_deref(), &st.module, view, request);
        match until_unseen_end(st, sent).await {
            Some(answer) => answer,
            None => Err(cut_short(st, url.trim())),
        }
    };
    if let Some(request) = record {
        let entry = Entry::Http {
            request,
            answer: answer.clone(),
        };
        st.call.journal.record(entry);
    }
    Ok(answer)
}

/// `tcp-connect`, journaled.
async fn tcp_connect(
    st: &mut HostCtx,
    host: String,
    port: u16,
    timeout_ms: u32,
) -> wasmtime::Result<Result<(), HostError>> {
    if let Some(answer) = replayed!(
        st,
        "tcp-connect",
        Entry::Tcp { host: h, port: p, answer } if *h == host && *p == port => answer.clone()
    ) {
        return Ok(answer);
    }
    go_on(st)?;
    let answer = {
        let _waiting = st.ticker.waiting();
        let view = st.view().cloned();
        let connected = tcp::connect(&st.module, view, &host, port, timeout_ms);
        match until_unseen_end(st, connected).await {
            Some(answer) => answer,
            None => Err(cut_short(st, &reach::show(&host, port))),
        }
    };
    if st.call.journal.recording() {
        let answer = answer.clone();
        st.call.journal.record(Entry::Tcp { host, port, answer });
    }
    Ok(answer)
}

/// The refusal for reaching out while validating.
pub(crate) fn not_while_validating(what: &str) -> HostError {
    fail(
        ErrorKind::NotGranted,
        format!("{what} is not available while validating arguments (validate must not reach out)"),
    )
}
