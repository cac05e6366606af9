//! The block that explains a failed start-up, the same in the foreground, for `-d`'s caller
//! and for `pymanager run`: which process failed and why, what it printed last (kept even
//! when its output was suppressed or redirected), who was waiting for it, and where each
//! process got to, when.
//!
//! In GitHub Actions (`GITHUB_ACTIONS=true`) the reason is also an `::error` annotation and
//! the output sits in a `::group::` fold. Nothing here is coloured: the block goes to
//! stderr and to logs, where escape codes are noise.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use crate::supervisor::{Lifecycle, ProcessInfo, Snapshot, StartupFailure};

/// How many of the failed process's last output lines the report shows.
pub const TAIL_LINES: usize = 20;

/// Where the report is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    /// Add GitHub Actions workflow commands (an annotation, folds).
    pub github: bool,
}

impl Style {
    /// The style for this process's environment.
    pub fn from_env() -> Style {
        Style {
            github: std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true"),
        }
    }
}

/// The report for a start-up that failed with `failure`: the lines that follow the
/// one-line error (which the log already shows). `tail` is the failed process's last
/// output lines; `began` when the start-up began.
pub fn failure(
    failure: &StartupFailure,
    snapshot: &Snapshot,
    tail: &[String],
    began: SystemTime,
    style: Style,
) -> String {
    let mut out = String::new();
    if style.github {
        let title = match &failure.process {
            Some(p) => format!("pymanager: {p} failed"),
            None => "pymanager: start-up failed".to_string(),
        };
        let _ = writeln!(
            out,
            "::error title={}::{}",
            escape_property(&title),
            escape_data(&failure.line)
        );
    }
    if let Some(name) = &failure.process {
        let _ = writeln!(out, "  process:       {name}");
        if let Some(p) = snapshot.processes.iter().find(|p| &p.name == name) {
            let _ = writeln!(out, "  reason:        {}", reason(p));
        }
    }
    if !failure.waiters.is_empty() {
        let waiters: Vec<String> = failure
            .waiters
            .iter()
            .map(|(w, c)| format!("{w} (for {c})"))
            .collect();
        let _ = writeln!(out, "  waiting on it: {}", waiters.join(", "));
    }
    steps(&mut out, snapshot, began);
    if let Some(name) = &failure.process {
        output_tail(&mut out, name, tail, style);
    }
    out
}

/// The report for a start-up that was not done within `limit`: what is not ready yet and
/// what it waits for.
pub fn timed_out(snapshot: &Snapshot, limit: Duration, began: SystemTime, style: Style) -> String {
    let mut out = String::new();
    let not_ready: Vec<&ProcessInfo> = snapshot
        .processes
        .iter()
        .map(|p| &**p)
        .filter(|p| !matches!(p.lifecycle, Lifecycle::Ready | Lifecycle::Exited))
        .collect();
    let headline = format!(
        "start-up not done after {}: {} not ready ({})",
        seconds(limit),
        not_ready.len(),
        not_ready
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if style.github {
        let _ = writeln!(
            out,
            "::error title={}::{}",
            escape_property("pymanager: start-up timed out"),
            escape_data(&headline)
        );
    }
    let _ = writeln!(out, "[ERROR] {headline}");
    for p in not_ready {
        let _ = writeln!(out, "  {:<14} {}", p.name, reason(p));
    }
    steps(&mut out, snapshot, began);
    out
}

/// Where a process is, in words: `verifying (last attempt: connection refused)`,
/// `waiting for db (verified)`, `exited with code 1`.
pub fn reason(p: &ProcessInfo) -> String {
    let verifier_message = p
        .verifier
        .as_ref()
        .and_then(|v| v.message.as_deref())
        .map(crate::error_text::one_line);
    match p.lifecycle {
        Lifecycle::Pending if !p.waiting_for.is_empty() => format!(
            "not started: waiting for {}",
            p.waiting_for
                .iter()
                .map(|(n, c)| format!("{n} ({c})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Lifecycle::Pending => "not started".into(),
        Lifecycle::Verifying => match verifier_message {
            Some(m) => format!("verifying (last attempt: {m})"),
            None => "verifying".into(),
        },
        Lifecycle::Failed => {
            if let Some(e) = &p.error {
                crate::error_text::one_line(e)
            } else if let Some(m) = verifier_message {
                format!("verification failed: {m}")
            } else {
                ended(p).unwrap_or_else(|| "failed".into())
            }
        }
        _ => ended(p).unwrap_or_else(|| lifecycle_word(p.lifecycle).into()),
    }
}

/// `exited with code 1`, `killed by SIGKILL`, when the process (or its last run) ended.
fn ended(p: &ProcessInfo) -> Option<String> {
    use crate::process_view::ProcState;
    let state = match p.state {
        s @ (ProcState::Exited { .. } | ProcState::Signaled { .. }) => Some(s),
        _ => p.last_exit,
    }?;
    Some(match state {
        ProcState::Exited { code } => format!("exited with code {code}"),
        ProcState::Signaled { signal } => match nix::sys::signal::Signal::try_from(signal) {
            Ok(s) => format!("killed by {}", s.as_str()),
            Err(_) => format!("killed by signal {signal}"),
        },
        _ => return None,
    })
}

fn lifecycle_word(l: Lifecycle) -> &'static str {
    match l {
        Lifecycle::Pending => "not started",
        Lifecycle::Starting => "starting",
        Lifecycle::Verifying => "verifying",
        Lifecycle::Ready => "ready",
        Lifecycle::Stopping => "stopping",
        Lifecycle::Stopped => "stopped",
        Lifecycle::Exited => "exited",
        Lifecycle::Failed => "failed",
        Lifecycle::Unhealthy => "unhealthy",
        Lifecycle::BackingOff => "backing off",
    }
}

/// One line per process: when it started (since the start-up began) and where it got to.
fn steps(out: &mut String, snapshot: &Snapshot, began: SystemTime) {
    let _ = writeln!(out, "  steps:");
    let width = snapshot
        .processes
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0)
        .min(24);
    for p in &snapshot.processes {
        let started = match p.started_at {
            Some(t) => format!(
                "started at +{}",
                seconds(t.duration_since(began).unwrap_or_default())
            ),
            None => "never started".into(),
        };
        let now = if p.started_at.is_some() {
            format!(", {}", reason(p))
        } else {
            String::new()
        };
        let _ = writeln!(out, "    {:<width$}  {started}{now}", p.name);
    }
}

fn output_tail(out: &mut String, name: &str, tail: &[String], style: Style) {
    let shown = &tail[tail.len().saturating_sub(TAIL_LINES)..];
    if shown.is_empty() {
        let _ = writeln!(out, "  {name} printed nothing");
        return;
    }
    let title = format!("last {} lines of {name}'s output", shown.len());
    if style.github {
        let _ = writeln!(out, "::group::{title}");
    } else {
        let _ = writeln!(out, "  {title}:");
    }
    for line in shown {
        let _ = writeln!(out, "    | {}", crate::error_text::one_line(line));
    }
    if style.github {
        let _ = writeln!(out, "::endgroup::");
    }
}

/// `1.40 s`.
pub fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// A workflow command's message: `%`, CR and LF escaped as GitHub reads them.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property (`title=`): also `:` and `,`.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::process_view::ProcState;
    use crate::supervisor::{Phase, VerifierInfo, VerifierOutcome};

    fn record(id: u32, name: &str, lifecycle: Lifecycle, state: ProcState) -> ProcessInfo {
        ProcessInfo {
            lifecycle,
            ..crate::api::json::tests::info(id, name, state)
        }
    }

    fn snapshot() -> (Snapshot, SystemTime) {
        let began = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut db = record(1, "db", Lifecycle::Ready, ProcState::Running { pid: 10 });
        db.started_at = Some(began);
        let mut migrate = record(
            2,
            "migrate",
            Lifecycle::Failed,
            ProcState::Exited { code: 1 },
        );
        migrate.started_at = Some(began + Duration::from_millis(1400));
        let mut api = record(3, "api", Lifecycle::Pending, ProcState::NotStarted);
        api.waiting_for = vec![("migrate".into(), "exited_ok")];
        let mut web = record(
            4,
            "web",
            Lifecycle::Verifying,
            ProcState::Running { pid: 12 },
        );
        web.started_at = Some(began + Duration::from_millis(250));
        web.verifier = Some(VerifierInfo {
            kind: "http".into(),
            outcome: VerifierOutcome::Running,
            message: Some("connection refused".into()),
        });
        let snap = Snapshot {
            phase: Phase::Shutdown,
            processes: [db, migrate, api, web].into_iter().map(Arc::new).collect(),
            startup_failure: None,
        };
        (snap, began)
    }

    #[test]
    fn a_failure_names_the_process_its_reason_waiters_steps_and_output() {
        let (snap, began) = snapshot();
        let f = StartupFailure {
            line: "process api cannot start: migrate exited with code 1".into(),
            process: Some("migrate".into()),
            waiters: vec![("api".into(), "exited_ok")],
            snapshot: None,
            output: None,
        };
        let tail: Vec<String> = (1..=25).map(|i| format!("line {i}")).collect();
        let text = failure(&f, &snap, &tail, began, Style::default());
        assert!(text.contains("  process:       migrate\n"), "{text}");
        assert!(
            text.contains("  reason:        exited with code 1\n"),
            "{text}"
        );
        assert!(
            text.contains("  waiting on it: api (for exited_ok)\n"),
            "{text}"
        );
        assert!(
            text.contains("    db       started at +0.00 s, ready\n"),
            "{text}"
        );
        assert!(
            text.contains("    migrate  started at +1.40 s, exited with code 1\n"),
            "{text}"
        );
        assert!(text.contains("    api      never started\n"), "{text}");
        assert!(
            text.contains(
                "    web      started at +0.25 s, verifying (last attempt: connection refused)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  last 20 lines of migrate's output:\n    | line 6\n"),
            "{text}"
        );
        assert!(text.ends_with("    | line 25\n"), "{text}");
        assert!(!text.contains("| line 5\n"), "{text}");
        assert!(!text.contains("::"), "{text}");
    }

    #[test]
    fn in_github_actions_the_reason_is_an_annotation_and_the_output_a_fold() {
        let (snap, began) = snapshot();
        let f = StartupFailure {
            line: "process migrate failed: 100% broken".into(),
            process: Some("migrate".into()),
            waiters: vec![],
            snapshot: None,
            output: None,
        };
        let text = failure(&f, &snap, &["boom".into()], began, Style { github: true });
        assert!(
            text.starts_with(
                "::error title=pymanager%3A migrate failed::process migrate failed: 100%25 broken\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("::group::last 1 lines of migrate's output\n    | boom\n::endgroup::\n"),
            "{text}"
        );
    }

    #[test]
    fn a_timeout_names_what_is_not_ready_and_what_it_waits_for() {
        let (snap, began) = snapshot();
        let text = timed_out(&snap, Duration::from_secs(30), began, Style::default());
        assert!(
            text.starts_with(
                "[ERROR] start-up not done after 30.00 s: 3 not ready (migrate, api, web)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  api            not started: waiting for migrate (exited_ok)\n"),
            "{text}"
        );
        assert!(
            text.contains("  web            verifying (last attempt: connection refused)\n"),
            "{text}"
        );
    }
}
