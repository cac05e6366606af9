//! Write pymanager verifiers in Rust.
//!
//! A verifier module is a WebAssembly component (built for `wasm32-wasip2`) that exports the
//! `pymanager:verifier/verifier` interface of the WIT package in the repository's `wit/`
//! folder. This crate hides that ABI: a verifier is a type implementing [`Verifier`] with
//! typed, serde-deserialised arguments, and [`export_verifiers!`] exports a module's
//! verifiers by their type names. Host calls (the only way out of the sandbox) are plain
//! functions in [`process`], [`http`], [`tcp`] and [`log`], plus [`sleep`], [`elapsed`] and
//! the [`retry`] helper that most verifiers are built around. Time arguments are
//! [`Timeout`] and [`Interval`] (seconds, with the default in the type).
//!
//! Host calls that can fail return a [`HostError`] whose [`ErrorKind`] says whether trying
//! again can help: `?` in a [`retry`] attempt stops the loop at once on a host not granted,
//! a bad request or a shutdown, and retries the rest.
//!
//! ```ignore
//! use pymanager_guest::{Timeout, Verifier, export_verifiers, http, retry, secs};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Args { url: String, #[serde(default)] timeout: Timeout<30_000> }
//!
//! struct Up;
//! impl Verifier for Up {
//!     type Args = Args;
//!     fn verify(a: Args) -> Result<(), String> {
//!         retry::every(secs(1.0)).for_at_most(a.timeout.duration()).run(|| {
//!             let r = http::get(&a.url, &[], secs(5.0))?;
//!             if r.status < 400 { Ok(()) } else { Err(retry::Step::Retry(format!("status {}", r.status))) }
//!         })
//!     }
//! }
//! export_verifiers!(Up);
//! ```

mod args;
mod seconds;

use std::time::Duration;

use serde::de::DeserializeOwned;

pub use args::{number_or_string, parse_args};
pub use seconds::{Interval, Timeout, format_duration, secs};

/// The generated bindings of the `verifier-module` world; [`export_verifiers!`] uses them.
/// Public so that the macro's expansion in a verifier crate can name them; not meant to be
/// used directly.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "verifier-module",
        pub_export_macro: true,
        default_bindings_module: "pymanager_guest::bindings",
        runtime_path: "pymanager_guest::__wit_bindgen_rt",
    });
}

#[doc(hidden)]
pub use wit_bindgen::rt as __wit_bindgen_rt;

// Lets the generated bindings name this crate by the path verifier crates use.
extern crate self as pymanager_guest;

use bindings::pymanager::verifier::types;
use bindings::pymanager::verifier::{host, probe};

/// Why a host call failed: its [`kind`](HostError::kind) says whether trying again can
/// help, its message is one line for the user (it is what `Display` and `String::from`
/// give).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError {
    /// What kind of failure it is.
    pub kind: ErrorKind,
    /// One line naming what failed and, when something can be fixed, what to fix.
    pub message: String,
}

/// The kinds of [`HostError`]. The first three are permanent for the call as made
/// ([`ErrorKind::is_permanent`]); the others may pass on a later attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The module's grants do not reach this host and port (the message names the grant
    /// to add), or the call is not available now (reaching out while validating).
    NotGranted,
    /// The call itself is wrong: not a URL, not an HTTP method, an unsupported scheme, an
    /// empty host, an invalid regular expression.
    BadRequest,
    /// pymanager is shutting down.
    ShuttingDown,
    /// The connection was refused: nothing listens there (yet).
    Refused,
    /// No answer within the call's time-out.
    TimedOut,
    /// Anything else: a name that does not resolve, a reset connection, a bad redirect.
    Failed,
}

impl ErrorKind {
    /// True when repeating the same call cannot succeed: a verifier should stop and report.
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            ErrorKind::NotGranted | ErrorKind::BadRequest | ErrorKind::ShuttingDown
        )
    }
}

impl HostError {
    /// True when repeating the same call cannot succeed (see [`ErrorKind::is_permanent`]).
    pub fn is_permanent(&self) -> bool {
        self.kind.is_permanent()
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HostError {}

impl From<HostError> for String {
    fn from(e: HostError) -> String {
        e.message
    }
}

impl From<types::HostError> for HostError {
    fn from(e: types::HostError) -> HostError {
        let kind = match e.kind {
            types::ErrorKind::NotGranted => ErrorKind::NotGranted,
            types::ErrorKind::BadRequest => ErrorKind::BadRequest,
            types::ErrorKind::ShuttingDown => ErrorKind::ShuttingDown,
            types::ErrorKind::Refused => ErrorKind::Refused,
            types::ErrorKind::TimedOut => ErrorKind::TimedOut,
            types::ErrorKind::Failed => ErrorKind::Failed,
        };
        HostError {
            kind,
            message: e.message,
        }
    }
}

/// One verifier: typed arguments, an optional check of them, and the verification itself.
///
/// Both functions return `Err` with one line for the user: at validate, what is wrong with
/// the arguments (the field first: `port: must not be 0`); at verify, why the process never
/// reached its state (`exited with code 3, expected 0`).
pub trait Verifier {
    /// The arguments from the config's `verifier.arguments` (`{}` when absent). A key the
    /// type does not take is reported as a warning when the config is loaded (the original
    /// pymanager ignored such keys); `#[serde(deny_unknown_fields)]` refuses it instead.
    type Args: DeserializeOwned;

    /// Checks the arguments beyond their types, before anything starts. Must not wait:
    /// host calls that wait return at once while validating.
    fn validate(_args: &Self::Args) -> Result<(), String> {
        Ok(())
    }

    /// Verifies the process; returns when it passed, or why it never will.
    fn verify(args: Self::Args) -> Result<(), String>;
}

/// Exports the listed [`Verifier`] types from this crate's component, each under its type
/// name (`export_verifiers!(HttpOkVerifier)` provides the verifier `HttpOkVerifier`).
/// Use it once, in a `cdylib` crate built for `wasm32-wasip2`.
#[macro_export]
macro_rules! export_verifiers {
    ($($v:ident),+ $(,)?) => {
        #[doc(hidden)]
        struct __PymanagerVerifiers;

        impl $crate::bindings::exports::pymanager::verifier::verifier::Guest for __PymanagerVerifiers {
            fn names() -> ::std::vec::Vec<::std::string::String> {
                ::std::vec![$(::std::string::String::from(stringify!($v))),+]
            }
            fn validate(
                name: ::std::string::String,
                args: ::std::string::String,
            ) -> ::std::result::Result<(), ::std::string::String> {
                $(if name == stringify!($v) {
                    return $crate::__validate::<$v>(&args);
                })+
                Err($crate::__unknown(&name, &[$(stringify!($v)),+]))
            }
            fn verify(
                name: ::std::string::String,
                args: ::std::string::String,
            ) -> ::std::result::Result<(), ::std::string::String> {
                $(if name == stringify!($v) {
                    return $crate::__verify::<$v>(&args);
                })+
                Err($crate::__unknown(&name, &[$(stringify!($v)),+]))
            }
        }

        $crate::bindings::export!(__PymanagerVerifiers with_types_in $crate::bindings);
    };
}

#[doc(hidden)]
pub fn __validate<V: Verifier>(args: &str) -> Result<(), String> {
    let parsed = args::parse::<V::Args>(args)?;
    // While validating, a warning line becomes a warning about the config, shown once.
    for path in &parsed.unknown {
        log::warn(&args::unknown_warning::<V::Args>(path));
    }
    V::validate(&parsed.args)
}

#[doc(hidden)]
pub fn __verify<V: Verifier>(args: &str) -> Result<(), String> {
    V::verify(parse_args::<V::Args>(args)?)
}

#[doc(hidden)]
pub fn __unknown(name: &str, known: &[&str]) -> String {
    format!(
        "this module has no verifier '{name}' (it provides: {})",
        known.join(", ")
    )
}

fn ms(d: Duration) -> u32 {
    d.as_millis().min(u32::MAX as u128) as u32
}

/// Sleeps `d`. Returns false when pymanager is shutting down (the verifier should give up);
/// while validating it returns false at once.
pub fn sleep(d: Duration) -> bool {
    host::sleep(ms(d))
}

/// Time since this verification started, measured by the host.
pub fn elapsed() -> Duration {
    Duration::from_millis(host::elapsed_ms())
}

/// The supervised process.
pub mod process {
    use super::{Duration, HostError, host, ms, probe, types};

    /// What the supervised process is doing.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum State {
        /// Not spawned yet (or while validating, when there is no process).
        NotStarted,
        /// Running with this pid.
        Running(u32),
        /// Exited with this code.
        Exited(i32),
        /// Ended by this signal number.
        Signaled(i32),
    }

    impl State {
        /// True once the process has ended.
        pub fn has_ended(self) -> bool {
            matches!(self, State::Exited(_) | State::Signaled(_))
        }

        /// The code the original pymanager reported: the exit code, or minus the signal.
        pub fn legacy_code(self) -> Option<i32> {
            match self {
                State::Exited(c) => Some(c),
                State::Signaled(s) => Some(-s),
                _ => None,
            }
        }
    }

    impl std::fmt::Display for State {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                State::NotStarted => write!(f, "not started"),
                State::Running(pid) => write!(f, "running (pid {pid})"),
                State::Exited(c) => write!(f, "exited with code {c}"),
                State::Signaled(s) => write!(f, "killed by signal {s}"),
            }
        }
    }

    impl From<types::ProcState> for State {
        fn from(s: types::ProcState) -> Self {
            match s {
                types::ProcState::NotStarted => State::NotStarted,
                types::ProcState::Running(p) => State::Running(p),
                types::ProcState::Exited(c) => State::Exited(c),
                types::ProcState::Signaled(s) => State::Signaled(s),
            }
        }
    }

    /// The state now.
    pub fn state() -> State {
        host::process_state().into()
    }

    /// `Some(state)` if the process has ended; the check verifiers make between attempts so
    /// that they give up as soon as the process can no longer reach its state.
    pub fn ended() -> Option<State> {
        Some(state()).filter(|s| s.has_ended())
    }

    /// Waits (on the exit event, no polling) at most `timeout` for the process to end;
    /// `None` on time-out or shutdown.
    pub fn wait_exit(timeout: Duration) -> Option<State> {
        host::wait_exit(ms(timeout)).map(Into::into)
    }

    /// Waits at most `timeout` for an output line matching the regular expression
    /// `pattern`; `Ok(None)` on time-out, shutdown or exit; `Err` (a
    /// [`BadRequest`](super::ErrorKind::BadRequest)) if the pattern is invalid.
    /// While validating it returns at once, after checking the pattern.
    pub fn wait_output(pattern: &str, timeout: Duration) -> Result<Option<String>, HostError> {
        probe::wait_output(pattern, ms(timeout)).map_err(Into::into)
    }
}

/// HTTP requests (`http://` and `https://`, certificates checked against the system's roots
/// and the verifier's `ca_file`), to the hosts granted to the module.
pub mod http {
    use super::{Duration, HostError, ms, probe, types};

    /// A response; `body` holds at most its first 1 MiB.
    #[derive(Debug, Clone)]
    pub struct Response {
        /// The status code.
        pub status: u16,
        /// Headers, names in lower case.
        pub headers: Vec<(String, String)>,
        /// The body (truncated at 1 MiB).
        pub body: Vec<u8>,
    }

    /// Sends `method` to `url` with `headers` and `body`; an HTTP error status is a
    /// response; an unreachable host, a time-out or a refused grant is a [`HostError`].
    pub fn request(
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
        timeout: Duration,
    ) -> Result<Response, HostError> {
        let r = probe::http_request(&types::Request {
            method: method.to_ascii_uppercase(),
            url: url.to_string(),
            headers: headers.to_vec(),
            body: body.to_vec(),
            timeout_ms: ms(timeout),
        })
        .map_err(HostError::from)?;
        Ok(Response {
            status: r.status,
            headers: r.headers,
            body: r.body,
        })
    }

    /// `GET url`.
    pub fn get(
        url: &str,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<Response, HostError> {
        request("GET", url, headers, &[], timeout)
    }
}

/// TCP reachability checks, to the hosts granted to the module.
pub mod tcp {
    use super::{Duration, HostError, ms, probe};

    /// Connects to `host`:`port` and closes at once: `Ok` when something listens there.
    pub fn connect(host: &str, port: u16, timeout: Duration) -> Result<(), HostError> {
        probe::tcp_connect(host, port, ms(timeout)).map_err(Into::into)
    }

    /// `Ok` when the socket listening at `host`:`port` belongs to the verified process or
    /// one of its descendants; an error (worth retrying) naming the holder otherwise:
    /// `port 63790 is held by pid 4242 (redis-server), not by redis`. Call it after a
    /// connection to a loopback address succeeded, to tell the process's own service
    /// from a leftover process holding its port. `Ok` when there is nothing to compare (not
    /// a loopback address, no process).
    pub fn port_owned(host: &str, port: u16) -> Result<(), HostError> {
        probe::port_owned(host, port).map_err(Into::into)
    }
}

/// Lines in pymanager's log, shown according to its `messages` settings.
pub mod log {
    use super::{host, types::Level};

    /// Shown under `verifier.fail` and `verifier.verbose`.
    pub fn error(msg: &str) {
        host::log(Level::Error, msg)
    }
    /// Shown under `verifier.fail` and `verifier.verbose`.
    pub fn warn(msg: &str) {
        host::log(Level::Warn, msg)
    }
    /// Shown under `verifier.verbose`.
    pub fn info(msg: &str) {
        host::log(Level::Info, msg)
    }
    /// Shown under `verifier.verbose`.
    pub fn debug(msg: &str) {
        host::log(Level::Debug, msg)
    }
}

/// Try-until-deadline loops, the shape of most verifiers.
pub mod retry {
    use super::{Duration, ErrorKind, HostError, elapsed, log, process, sleep};

    /// What one attempt says.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Step {
        /// Not yet; this is why (reported if the time runs out). The next attempts come
        /// 10 ms, 20 ms, 40 ms, … later, up to `interval`.
        Retry(String),
        /// Not yet, and looking again costs next to nothing: a connection refused by this
        /// machine (nothing listens yet). Retried within [`SOON_FIRST`] at first, then
        /// after 1/[`SOON_RATIO`] of the time waited so far (up to `interval`), so a
        /// service is seen within ~3% of its start-up time, while one that never comes
        /// costs a few hundred attempts in 30 s. Logged at most once per `interval`.
        Soon(String),
        /// Never: stop now with this reason.
        Fail(String),
    }

    impl Step {
        /// The step for a failed connection attempt to `host`: [`Step::Fail`] when retrying
        /// cannot help (a host not granted, a bad request, a shutdown), [`Step::Soon`] when
        /// this machine refused it (nothing listens there yet: cheap to ask again), else
        /// [`Step::Retry`] (a remote host, a time-out).
        pub fn connect_failed(host: &str, why: HostError) -> Step {
            if why.is_permanent() {
                Step::Fail(why.message)
            } else if why.kind == ErrorKind::Refused && is_loopback(host) {
                Step::Soon(why.message)
            } else {
                Step::Retry(why.message)
            }
        }
    }

    /// `?` on a host call in an attempt: [`Step::Fail`] when retrying cannot help,
    /// [`Step::Retry`] otherwise.
    impl From<HostError> for Step {
        fn from(why: HostError) -> Step {
            if why.is_permanent() {
                Step::Fail(why.message)
            } else {
                Step::Retry(why.message)
            }
        }
    }

    /// The shortest pause after a [`Step::Soon`]: a refused loopback connection costs
    /// microseconds, and a service is seen at most this late in its first moments.
    pub const SOON_FIRST: Duration = Duration::from_millis(2);
    /// After a [`Step::Soon`], the pause is the time waited so far divided by this.
    pub const SOON_RATIO: u32 = 32;

    /// True for the names and addresses of this machine's loopback interface.
    pub fn is_loopback(host: &str) -> bool {
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        if host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        host.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
    }

    /// The host of an `http://` URL (`[::1]` as `::1`), for [`Step::connect_failed`].
    pub fn url_host(url: &str) -> &str {
        let host_port = authority(url);
        if let Some(v6) = host_port.strip_prefix('[') {
            return v6.split(']').next().unwrap_or("");
        }
        host_port.split(':').next().unwrap_or("")
    }

    /// The port an `http://` or `https://` URL connects to (80 and 443 when it names none).
    pub fn url_port(url: &str) -> Option<u16> {
        let host_port = authority(url);
        let after_host = match host_port.strip_prefix('[') {
            Some(v6) => v6.split_once(']').map_or("", |(_, rest)| rest),
            None => host_port.split_once(':').map_or("", |(_, p)| p),
        };
        let port = after_host.trim_start_matches(':');
        if !port.is_empty() {
            return port.parse().ok();
        }
        let scheme = url
            .trim()
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        }
    }

    /// `host:port` of a URL, without user info.
    fn authority(url: &str) -> &str {
        let rest = url.trim();
        let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        authority.rsplit_once('@').map_or(authority, |(_, h)| h)
    }

    /// The pause before the next attempt: after a [`Step::Soon`], proportional to the
    /// time waited so far; otherwise the doubling `backoff`; never above `interval`.
    pub(crate) fn pause(
        soon: bool,
        spent: Duration,
        backoff: Duration,
        interval: Duration,
    ) -> Duration {
        let nap = if soon {
            (spent / SOON_RATIO).max(SOON_FIRST)
        } else {
            backoff
        };
        nap.min(interval)
    }

    /// A retry loop under construction: [`every`]`(interval).for_at_most(timeout).run(f)`.
    #[derive(Debug, Clone, Copy)]
    pub struct Retry {
        interval: Duration,
        timeout: Duration,
        stop_on_exit: bool,
        goal: &'static str,
    }

    /// The first pause between attempts; each next one doubles, up to `interval`.
    const FIRST_PAUSE: Duration = Duration::from_millis(10);

    /// Attempts at most `interval` apart (default time budget: 30 s). The first retries
    /// come sooner (10 ms, 20 ms, 40 ms, … up to `interval`; after a [`Step::Soon`], a
    /// few ms): a service that starts in 150 ms is seen ready after ~150 ms, not after a
    /// whole `interval`.
    pub fn every(interval: Duration) -> Retry {
        Retry {
            interval,
            timeout: Duration::from_secs(30),
            stop_on_exit: true,
            goal: "passing",
        }
    }

    impl Retry {
        /// Gives up `timeout` after the verification started.
        pub fn for_at_most(mut self, timeout: Duration) -> Retry {
            self.timeout = timeout;
            self
        }

        /// Names what the loop waits for, for the message when the process ends first:
        /// `.goal("answering")` gives `process exited with code 1 before answering (…)`.
        pub fn goal(mut self, goal: &'static str) -> Retry {
            self.goal = goal;
            self
        }

        /// Keeps trying after the process has ended (by default a loop stops then, since the
        /// process can no longer reach its state). The loop still looks at the process
        /// between attempts: a verification may go on after the end only once it has seen
        /// it (see the WIT's `host` interface).
        pub fn even_after_exit(mut self) -> Retry {
            self.stop_on_exit = false;
            self
        }

        /// Runs `attempt` until it returns `Ok`, a [`Step::Fail`], the time runs out
        /// (`<last reason> (gave up after 30 s)`), the process ends
        /// (`process exited with code 1 before <goal> (last attempt: <reason>)`), or
        /// pymanager shuts down.
        pub fn run(self, mut attempt: impl FnMut() -> Result<(), Step>) -> Result<(), String> {
            let mut tries = 0u64;
            let mut backoff = FIRST_PAUSE;
            let mut logged: Option<Duration> = None;
            loop {
                tries += 1;
                let (why, soon) = match attempt() {
                    Ok(()) => return Ok(()),
                    Err(Step::Fail(why)) => return Err(why),
                    Err(Step::Retry(why)) => (why, false),
                    Err(Step::Soon(why)) => (why, true),
                };
                let spent = elapsed();
                // A failed attempt is what `messages: ["verifier.fail"]` asks to see; the
                // quick attempts after a refusal are shown at the pace of `interval`.
                if !soon || logged.is_none_or(|at| spent.saturating_sub(at) >= self.interval) {
                    log::warn(&format!("attempt {tries}: {why}"));
                    logged = Some(spent);
                }
                let gone = |why: &str| {
                    let state = process::ended()?;
                    self.stop_on_exit.then(|| {
                        format!("process {state} before {} (last attempt: {why})", self.goal)
                    })
                };
                if let Some(e) = gone(&why) {
                    return Err(e);
                }
                if spent >= self.timeout {
                    return Err(format!(
                        "{why} (gave up after {})",
                        super::format_duration(self.timeout)
                    ));
                }
                let nap = pause(soon, spent, backoff, self.interval).min(self.timeout - spent);
                if !soon {
                    backoff = backoff.saturating_mul(2);
                }
                if !sleep(nap) {
                    return Err(format!("{why} (pymanager is shutting down)"));
                }
                // The sleep returns early when the process ends: look before trying again.
                if let Some(e) = gone(&why) {
                    return Err(e);
                }
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::retry::{Step, is_loopback, pause, url_host, url_port};
    use super::{ErrorKind, HostError};
    use std::time::Duration;

    const MS: Duration = Duration::from_millis(1);

    fn error(kind: ErrorKind, message: &str) -> HostError {
        HostError {
            kind,
            message: message.into(),
        }
    }

    #[test]
    fn a_refused_loopback_connection_is_retried_soon_and_a_remote_one_backs_off() {
        let refused = "127.0.0.1:8080: Connection refused (os error 111)";
        assert_eq!(
            Step::connect_failed("127.0.0.1", error(ErrorKind::Refused, refused)),
            Step::Soon(refused.into())
        );
        assert_eq!(
            Step::connect_failed("example.com", error(ErrorKind::Refused, refused)),
            Step::Retry(refused.into())
        );
        let late = "127.0.0.1:8080: no answer within 100 ms";
        assert_eq!(
            Step::connect_failed("localhost", error(ErrorKind::TimedOut, late)),
            Step::Retry(late.into())
        );
    }

    #[test]
    fn what_retrying_cannot_fix_fails_the_loop_at_once() {
        for kind in [
            ErrorKind::NotGranted,
            ErrorKind::BadRequest,
            ErrorKind::ShuttingDown,
        ] {
            let e = error(kind, "no");
            assert_eq!(
                Step::connect_failed("127.0.0.1", e.clone()),
                Step::Fail("no".into())
            );
            assert_eq!(Step::from(e), Step::Fail("no".into()));
        }
        for kind in [ErrorKind::Refused, ErrorKind::TimedOut, ErrorKind::Failed] {
            assert_eq!(
                Step::from(error(kind, "later")),
                Step::Retry("later".into())
            );
        }
    }

    #[test]
    fn loopback_names_and_url_hosts() {
        for h in ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "LOCALHOST"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["10.0.0.1", "example.com", ""] {
            assert!(!is_loopback(h), "{h}");
        }
        assert_eq!(url_host("http://127.0.0.1:8000/x?y"), "127.0.0.1");
        assert_eq!(url_host("http://user:pw@[::1]:80/"), "::1");
        assert_eq!(url_host("http://localhost"), "localhost");
        assert_eq!(url_port("http://127.0.0.1:8000/x?y"), Some(8000));
        assert_eq!(url_port("http://user:pw@[::1]:81/"), Some(81));
        assert_eq!(url_port("http://localhost/"), Some(80));
        assert_eq!(url_port("HTTPS://[::1]/"), Some(443));
        assert_eq!(url_port("ftp://x/"), None);
    }

    #[test]
    fn pauses_after_a_refusal_grow_with_the_time_waited_and_stay_within_interval() {
        let second = Duration::from_secs(1);
        assert_eq!(pause(true, Duration::ZERO, 10 * MS, second), 2 * MS);
        assert_eq!(pause(true, 32 * MS, 10 * MS, second), 2 * MS);
        assert_eq!(pause(true, 3200 * MS, 10 * MS, second), 100 * MS);
        assert_eq!(
            pause(true, Duration::from_secs(600), 10 * MS, second),
            second
        );
        assert_eq!(pause(false, 3200 * MS, 40 * MS, second), 40 * MS);
        assert_eq!(pause(false, Duration::ZERO, 4 * second, second), second);
    }
}
