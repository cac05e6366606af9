//! What one call may spend: CPU time ([`CpuMeter`]) and log lines ([`LogBudget`]).

use std::time::{Duration, Instant};

use super::super::engine::TICK;

/// The CPU time a call has used, against its budget: epoch ticks that found the guest
/// executing, plus what the host spent on its behalf (scans of the output it asked for).
#[derive(Debug)]
pub(crate) struct CpuMeter {
    budget: Duration,
    /// Epoch ticks that found the guest executing.
    pub ticks: u64,
    charged: Duration,
    pub exceeded: bool,
}

impl CpuMeter {
    pub(crate) fn new(budget: Duration) -> CpuMeter {
        CpuMeter {
            budget,
            ticks: 0,
            charged: Duration::ZERO,
            exceeded: false,
        }
    }

    /// Called on each epoch tick that found the guest executing: true while it is within
    /// its budget.
    pub(crate) fn tick(&mut self) -> bool {
        self.ticks += 1;
        self.check()
    }

    fn spent(&self) -> Duration {
        let ticks = TICK * u32::try_from(self.ticks).unwrap_or(u32::MAX);
        ticks.saturating_add(self.charged)
    }

    fn check(&mut self) -> bool {
        if self.spent() > self.budget {
            self.exceeded = true;
        }
        !self.exceeded
    }

    /// CPU time the guest may still use in this call.
    pub(crate) fn left(&self) -> Duration {
        self.budget.saturating_sub(self.spent())
    }

    /// Charges CPU time spent on the guest's behalf outside it; false once over budget.
    pub(crate) fn charge(&mut self, spent: Duration) -> bool {
        self.charged = self.charged.saturating_add(spent);
        self.check()
    }
}

/// Lines a guest may log at once; past it, lines are dropped and counted.
pub(crate) const LOG_BURST: u32 = 1000;
/// Lines a second a guest may log once its burst is spent.
pub(crate) const LOG_PER_SECOND: u32 = 20;
/// How often, at most, a call's dropped lines are counted in the log while it runs.
const LOG_REPORT_EVERY: Duration = Duration::from_secs(5);

/// A token bucket for one call's `log` lines: a verifier that says what it does per attempt
/// is never cut, one that floods costs the manager a bounded number of lines (each line
/// goes to a bounded console queue; when that is full, it waits in a task of its own).
#[derive(Debug)]
pub(crate) struct LogBudget {
    tokens: f64,
    refilled: Instant,
    /// Lines dropped and not reported yet.
    dropped: u64,
    /// When dropped lines were last reported.
    reported: Instant,
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget {
            tokens: f64::from(LOG_BURST),
            refilled: Instant::now(),
            dropped: 0,
            reported: Instant::now(),
        }
    }
}

impl LogBudget {
    /// True if one more line may go out now; false (and counted) if it is dropped.
    pub(crate) fn take(&mut self) -> bool {
        let now = Instant::now();
        let earned = now.duration_since(self.refilled).as_secs_f64() * f64::from(LOG_PER_SECOND);
        self.tokens = (self.tokens + earned).min(f64::from(LOG_BURST));
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    /// The lines dropped and not reported yet, now reported: at the end of the call
    /// (`now`), else at most once every [`LOG_REPORT_EVERY`].
    pub(crate) fn take_dropped(&mut self, now: bool) -> u64 {
        if self.dropped == 0 || !(now || self.reported.elapsed() >= LOG_REPORT_EVERY) {
            return 0;
        }
        self.reported = Instant::now();
        std::mem::take(&mut self.dropped)
    }
}

impl CpuMeter {
    /// Runs `work` on one of tokio's blocking threads (never on the async ones) and
    /// charges the CPU time it took: host work done for the guest (reading `/proc`, say)
    /// counts against its budget as its own computing would. An error when the budget is
    /// spent: the guest is stopped.
    pub(crate) async fn run_charged<T: Send + 'static>(
        &mut self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> wasmtime::Result<T> {
        if self.left().is_zero() || self.exceeded {
            self.exceeded = true;
            return Err(wasmtime::format_err!("CPU time limit reached"));
        }
        let (out, spent) = tokio::task::spawn_blocking(move || {
            let start = thread_cpu_time();
            let out = work();
            (out, thread_cpu_time().saturating_sub(start))
        })
        .await
        .map_err(|e| wasmtime::format_err!("host work for the guest failed: {e}"))?;
        if !self.charge(spent) {
            return Err(wasmtime::format_err!("CPU time limit reached"));
        }
        Ok(out)
    }
}

/// CPU time this thread has used: what a scan costs, however loaded the machine is.
pub(crate) fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to write; the clock id is a constant
    // every Linux has.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}
