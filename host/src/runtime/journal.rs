//! Parking: a verifier that waits long holds no instance while it waits.
//!
//! A live instance costs ~50 KiB while its verifier waits in a host call (store, instance,
//! fiber stack, linear memory). So when a verifier asks for a long wait (`wait-exit`,
//! `wait-output`, `sleep` of at least [`PARK_AFTER`]), the host stops the instance, drops it,
//! and waits itself with nothing of the guest alive. When the wait ends, it runs the
//! verification again on a fresh instance and *replays* it: every host call the guest makes
//! gets the answer it got the first time, from this journal, up to the wait, which gets the
//! outcome the host just saw. From there the guest runs live again.
//!
//! A verifier is a function of what its host calls answered (and of the WASI clocks and
//! random numbers, which it should not steer by): the replayed guest reaches the same wait in
//! the same state. If it does not, if a call differs from the one recorded (it read the
//! wall clock, say), the journal is cut there and the guest goes on live from that call:
//! what it has seen is still what really happened, only earlier.
//!
//! Replaying costs an instantiation (~0.1 ms) and the guest's own work up to the wait, so
//! the journal is bounded ([`MAX_ENTRIES`], [`MAX_BYTES`]: an HTTP response can be large):
//! past either bound recording stops and the verification stays live to its end, as every
//! verification did before parking (a verifier retrying a closed port every few ms does so).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

use super::bindings::pymanager::verifier::types::{HostError, Level, ProcState, Request, Response};

/// The shortest wait that parks: below it, stopping and replaying costs more than the
/// memory it saves is worth.
pub(crate) const PARK_AFTER: Duration = Duration::from_millis(200);
/// Host calls recorded, at most, for one verification.
pub(crate) const MAX_ENTRIES: usize = 256;
/// Bytes of answers (bodies, lines, messages) recorded, at most, for one verification.
pub(crate) const MAX_BYTES: usize = 32 << 10;
/// Replays whose calls may differ from the record in one verification. A guest that
/// differs more often steers by something the journal does not replay (it times itself
/// with the stopped clock, say) and would park and replay without end: its next park ends
/// the verification instead.
pub(crate) const MAX_DIVERGENCES: u32 = 3;

/// One host call and its answer.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    ProcessState(ProcState),
    WaitExit(Option<ProcState>),
    WaitOutput {
        pattern: String,
        answer: Result<Option<String>, HostError>,
    },
    Http {
        request: Request,
        answer: Result<Response, HostError>,
    },
    Tcp {
        host: String,
        port: u16,
        answer: Result<(), HostError>,
    },
    PortOwned {
        host: String,
        port: u16,
        answer: Result<(), HostError>,
    },
    Sleep(bool),
    ElapsedMs(u64),
    Log(Level),
}

impl Entry {
    /// The host call this entry records, as the WIT names it.
    pub(crate) fn call(&self) -> &'static str {
        match self {
            Entry::ProcessState(_) => "process-state",
            Entry::WaitExit(_) => "wait-exit",
            Entry::WaitOutput { .. } => "wait-output",
            Entry::Http { .. } => "http-request",
            Entry::Tcp { .. } => "tcp-connect",
            Entry::PortOwned { .. } => "port-owned",
            Entry::Sleep(_) => "sleep",
            Entry::ElapsedMs(_) => "elapsed-ms",
            Entry::Log(_) => "log",
        }
    }

    /// Bytes this entry holds besides its own size.
    fn bytes(&self) -> usize {
        let error = |e: &HostError| e.message.len();
        let headers =
            |h: &[(String, String)]| -> usize { h.iter().map(|(k, v)| k.len() + v.len()).sum() };
        match self {
            Entry::WaitOutput { pattern, answer } => {
                pattern.len()
                    + match answer {
                        Ok(line) => line.as_ref().map_or(0, String::len),
                        Err(e) => error(e),
                    }
            }
            Entry::Http { request, answer } => {
                request.method.len()
                    + request.url.len()
                    + headers(&request.headers)
                    + request.body.len()
                    + match answer {
                        Ok(r) => headers(&r.headers) + r.body.len(),
                        Err(e) => error(e),
                    }
            }
            Entry::Tcp { host, answer, .. } | Entry::PortOwned { host, answer, .. } => {
                host.len() + answer.as_ref().err().map_or(0, error)
            }
            _ => 0,
        }
    }
}

/// The host calls of one verification, recorded the first time and replayed after a park.
#[derive(Debug)]
pub(crate) struct Journal {
    /// Each call with the time its answer came.
    entries: Vec<(Entry, Stamp)>,
    /// The next entry to replay; `entries.len()` while the guest runs live.
    next: usize,
    bytes: usize,
    /// Set for good when a bound is passed: nothing more is recorded, nothing parks.
    stopped: bool,
    /// `None` for a call that never parks.
    clock: Option<Arc<ReplayClock>>,
    /// The seed of the guest's random numbers, the same in each of its instances, so that a
    /// replayed guest draws what it drew the first time; `None` for a call that never parks.
    seed: Option<[u8; 32]>,
    /// Replays whose calls differed from the record, and the last difference: the call's
    /// number, the recorded call, the call made.
    divergences: u32,
    last_divergence: Option<(usize, &'static str, &'static str)>,
}

impl Journal {
    /// The journal of a verification starting now.
    pub(crate) fn new() -> Journal {
        Journal {
            entries: Vec::new(),
            next: 0,
            bytes: 0,
            stopped: false,
            clock: Some(Arc::new(ReplayClock::new())),
            seed: Some(rand::random()),
            divergences: 0,
            last_divergence: None,
        }
    }

    /// A journal that records nothing: for calls that never park (loading, validating).
    pub(crate) fn off() -> Journal {
        Journal {
            entries: Vec::new(),
            next: 0,
            bytes: 0,
            stopped: true,
            clock: None,
            seed: None,
            divergences: 0,
            last_divergence: None,
        }
    }

    /// The clock the guest's WASI clocks read: stopped at the time of each answer while
    /// replaying, so that a guest timing itself with them sees what it saw the first time.
    pub(crate) fn clock(&self) -> Option<Arc<ReplayClock>> {
        self.clock.clone()
    }

    /// The seed every instance of this call draws its random numbers from.
    pub(crate) fn seed(&self) -> Option<[u8; 32]> {
        self.seed
    }

    /// The recorded answer to the call the guest makes now (`made`), if it is replaying
    /// and the recorded call is this one (`answer` returns `Some` for a matching entry). A
    /// call that does not match ends the replay: the rest of the journal is cut, and the
    /// difference counted.
    pub(crate) fn replay<T>(
        &mut self,
        made: &'static str,
        answer: impl FnOnce(&Entry) -> Option<T>,
    ) -> Option<T> {
        let (entry, at) = self.entries.get(self.next)?;
        let at = *at;
        let Some(t) = answer(entry) else {
            self.divergences += 1;
            self.last_divergence = Some((self.next, entry.call(), made));
            self.entries.truncate(self.next);
            self.bytes = self.entries.iter().map(|(e, _)| e.bytes()).sum();
            self.live();
            return None;
        };
        self.next += 1;
        match self.next == self.entries.len() {
            true => self.live(),
            false => self.clock.iter().for_each(|c| c.stop_at(at)),
        }
        Some(t)
    }

    /// The replay is over: the clocks run, and a journal that records no more lets go of
    /// its entries.
    fn live(&mut self) {
        self.clock.iter().for_each(|c| c.go_live());
        if self.stopped {
            self.entries = Vec::new();
            self.next = 0;
            self.bytes = 0;
        }
    }

    /// Records a call the guest made live (nothing once recording has stopped).
    pub(crate) fn record(&mut self, entry: Entry) {
        if self.stopped {
            return;
        }
        self.push(entry);
        self.next = self.entries.len();
        if self.over() {
            self.stopped = true;
            self.live();
        }
    }

    fn push(&mut self, entry: Entry) {
        self.bytes += entry.bytes();
        let at = self.clock.as_ref().map_or(Stamp::ZERO, |c| c.real());
        self.entries.push((entry, at));
    }

    fn over(&self) -> bool {
        self.entries.len() > MAX_ENTRIES || self.bytes > MAX_BYTES
    }

    /// True while live calls are recorded (they need not be copied otherwise).
    pub(crate) fn recording(&self) -> bool {
        !self.stopped
    }

    /// True if a live wait of `timeout` should park rather than wait in the instance.
    pub(crate) fn should_park(&self, timeout: Duration) -> bool {
        !self.stopped && timeout >= PARK_AFTER && self.entries.len() < MAX_ENTRIES
    }

    /// Why this verification may park no more, if its replays differed from the record
    /// more than [`MAX_DIVERGENCES`] times: one line, naming the last difference.
    pub(crate) fn diverged(&self) -> Option<String> {
        let (n, recorded, made) = self.last_divergence?;
        (self.divergences > MAX_DIVERGENCES).then(|| {
            format!(
                "made other host calls when it was replayed after a wait than it had made \
                 before, {} times (the last: call {} was {made}, recorded as {recorded}): a \
                 verifier must not steer by what the journal does not replay, such as \
                 timing itself in a loop with the clock stopped",
                self.divergences,
                n + 1
            )
        })
    }

    /// The parked wait is over with `outcome`: the next instance replays from the start,
    /// its clocks stopped where the first instance's started until its first answer.
    /// An outcome past the journal's bounds is still replayed, but nothing parks after it.
    pub(crate) fn resume(&mut self, outcome: Entry) {
        self.push(outcome);
        self.stopped |= self.over();
        self.next = 0;
        if let Some(c) = &self.clock {
            c.stop_at(c.first_instance());
        }
    }
}

/// A moment on both clocks a guest can read through WASI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Nanoseconds since the verification started.
    mono: u64,
    /// Nanoseconds since the Unix epoch.
    wall: u64,
}

impl Stamp {
    const ZERO: Stamp = Stamp { mono: 0, wall: 0 };
}

/// The WASI monotonic and wall clocks of one verification: real time while the guest runs
/// live, stopped at a recorded moment while it is replayed. The monotonic clock counts from
/// the verification's start, not from each instance's, so a replayed guest's intervals are
/// the first run's.
#[derive(Debug)]
pub(crate) struct ReplayClock {
    started: Instant,
    /// When the call's first instance was made: where a replay's clocks stand until its
    /// first answer, so that they read what the first instance's read (not a telling 0).
    first: OnceLock<Stamp>,
    /// The stopped time, `u64::MAX` in `mono` while live.
    stopped_mono: AtomicU64,
    stopped_wall: AtomicU64,
}

impl ReplayClock {
    fn new() -> ReplayClock {
        ReplayClock {
            started: Instant::now(),
            first: OnceLock::new(),
            stopped_mono: AtomicU64::new(u64::MAX),
            stopped_wall: AtomicU64::new(0),
        }
    }

    /// Notes that an instance of the call is being made: the first time, that is where the
    /// clocks of every replay start.
    pub(crate) fn instance_made(&self) {
        self.first.get_or_init(|| self.real());
    }

    fn first_instance(&self) -> Stamp {
        *self.first.get_or_init(|| self.real())
    }

    /// The real time now.
    fn real(&self) -> Stamp {
        Stamp {
            mono: u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX - 1),
            wall: wall_now(),
        }
    }

    fn stop_at(&self, at: Stamp) {
        self.stopped_wall.store(at.wall, Ordering::Relaxed);
        self.stopped_mono.store(at.mono, Ordering::Relaxed);
    }

    fn go_live(&self) {
        self.stopped_mono.store(u64::MAX, Ordering::Relaxed);
    }

    /// The time the guest sees now.
    fn now(&self) -> Stamp {
        match self.stopped_mono.load(Ordering::Relaxed) {
            u64::MAX => self.real(),
            mono => Stamp {
                mono,
                wall: self.stopped_wall.load(Ordering::Relaxed),
            },
        }
    }
}

fn wall_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The guest's `wasi:clocks/monotonic-clock`.
pub(crate) struct MonotonicClock(pub Arc<ReplayClock>);

impl HostMonotonicClock for MonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.0.now().mono
    }
}

/// The guest's `wasi:clocks/wall-clock`.
pub(crate) struct WallClock(pub Arc<ReplayClock>);

impl HostWallClock for WallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.now().wall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::bindings::pymanager::verifier::types::ErrorKind;

    fn elapsed(e: &Entry) -> Option<u64> {
        match e {
            Entry::ElapsedMs(v) => Some(*v),
            _ => None,
        }
    }

    fn sleep(e: &Entry) -> Option<bool> {
        match e {
            Entry::Sleep(v) => Some(*v),
            _ => None,
        }
    }

    #[test]
    fn a_resumed_journal_answers_each_call_as_recorded_then_goes_live() {
        let mut j = Journal::new();
        assert_eq!(
            j.replay("elapsed-ms", elapsed),
            None,
            "nothing to replay at first"
        );
        j.record(Entry::ElapsedMs(5));
        assert!(j.should_park(Duration::from_secs(1)));
        assert!(!j.should_park(Duration::from_millis(10)));
        j.resume(Entry::Sleep(true));
        assert_eq!(j.replay("elapsed-ms", elapsed), Some(5));
        assert_eq!(j.replay("sleep", sleep), Some(true));
        assert_eq!(
            j.replay("elapsed-ms", elapsed),
            None,
            "live after the parked call"
        );
        j.record(Entry::ElapsedMs(900));
        j.resume(Entry::Sleep(false));
        assert_eq!(j.replay("elapsed-ms", elapsed), Some(5));
        assert_eq!(j.replay("sleep", sleep), Some(true));
        assert_eq!(j.replay("elapsed-ms", elapsed), Some(900));
        assert_eq!(j.replay("sleep", sleep), Some(false));
    }

    #[test]
    fn a_journal_whose_replays_differ_too_often_says_so() {
        let mut j = Journal::new();
        for round in 0..=MAX_DIVERGENCES {
            assert_eq!(j.diverged(), None, "round {round}");
            j.record(Entry::Sleep(true));
            j.resume(Entry::Sleep(true));
            assert_eq!(j.replay("elapsed-ms", elapsed), None);
        }
        let why = j.diverged().expect("too many");
        assert!(
            why.contains("4 times (the last: call 1 was elapsed-ms, recorded as sleep)"),
            "{why}"
        );
    }

    #[test]
    fn a_call_that_differs_from_the_record_cuts_the_replay_there() {
        let mut j = Journal::new();
        j.record(Entry::ElapsedMs(1));
        j.record(Entry::Log(Level::Info));
        j.resume(Entry::Sleep(true));
        assert_eq!(j.replay("elapsed-ms", elapsed), Some(1));
        // The guest sleeps where it logged the first time: from here it runs live.
        assert_eq!(j.replay("sleep", sleep), None);
        assert_eq!(j.replay("sleep", sleep), None);
        j.record(Entry::Sleep(true));
        j.resume(Entry::Sleep(true));
        assert_eq!(j.replay("elapsed-ms", elapsed), Some(1));
        assert_eq!(j.replay("sleep", sleep), Some(true));
        assert_eq!(j.replay("sleep", sleep), Some(true));
    }

    #[test]
    fn past_its_bounds_the_journal_stops_recording_and_nothing_parks() {
        let mut j = Journal::new();
        for i in 0..MAX_ENTRIES {
            assert!(j.should_park(PARK_AFTER), "entry {i}");
            j.record(Entry::ElapsedMs(i as u64));
        }
        assert!(!j.should_park(Duration::from_secs(60)));
        j.record(Entry::ElapsedMs(0));
        assert!(!j.should_park(Duration::from_secs(60)));
        assert_eq!(j.replay("elapsed-ms", elapsed), None);

        let mut j = Journal::new();
        j.record(Entry::WaitOutput {
            pattern: "x".into(),
            answer: Err(HostError {
                kind: ErrorKind::Failed,
                message: "m".repeat(MAX_BYTES + 1),
            }),
        });
        assert!(!j.should_park(Duration::from_secs(60)), "too many bytes");
    }

    #[test]
    fn an_outcome_past_the_bounds_is_replayed_and_nothing_parks_after_it() {
        let mut j = Journal::new();
        j.record(Entry::ElapsedMs(1));
        let line = "x".repeat(MAX_BYTES + 1);
        j.resume(Entry::WaitOutput {
            pattern: "x".into(),
            answer: Ok(Some(line.clone())),
        });
        assert_eq!(j.replay("elapsed-ms", elapsed), Some(1));
        let replayed = j.replay("wait-output", |e| match e {
            Entry::WaitOutput {
                answer: Ok(Some(l)),
                ..
            } => Some(l.clone()),
            _ => None,
        });
        assert_eq!(replayed, Some(line));
        assert!(!j.should_park(Duration::from_secs(60)));
        assert!(j.entries.is_empty(), "entries let go once replayed");
    }

    #[test]
    fn a_replayed_guest_reads_the_clocks_as_they_were() {
        let mut j = Journal::new();
        let clock = j.clock().unwrap();
        std::thread::sleep(Duration::from_millis(1));
        clock.instance_made();
        let mono = MonotonicClock(clock.clone());
        let first = mono.now();
        j.record(Entry::ElapsedMs(0));
        let answered = j.entries[0].1;
        j.resume(Entry::Sleep(true));
        // Replaying: the clock reads where the first instance started (not 0, which no
        // first instance reads), then the time of each answer.
        let replayed = mono.now();
        assert!(replayed >= 1_000_000, "{replayed}");
        assert!(first >= replayed);
        clock.instance_made();
        assert_eq!(mono.now(), replayed, "a replay's instance does not move it");
        assert_eq!(j.replay("elapsed-ms", elapsed), Some(0));
        assert_eq!(mono.now(), answered.mono);
        assert_eq!(
            WallClock(clock.clone()).now(),
            Duration::from_nanos(answered.wall)
        );
        // The parked call's answer is the last: from there the clocks run.
        assert_eq!(j.replay("sleep", sleep), Some(true));
        let resumed = j.entries[1].1;
        assert!(mono.now() >= resumed.mono);
    }
}
