//! What the outside sees of a process, derived from its [`State`] in this one place: the
//! API record ([`ProcessInfo`]), and the OS-level state a verifier watches.
//!
//! Nothing here is stored: the actor derives a record after each change and compares it
//! with the last one published (`ProcessInfo: PartialEq`), so an event goes out exactly when
//! something a client can see changed.

use super::handle::{Lifecycle, LivenessInfo, ProcessInfo, VerifierInfo, VerifierOutcome};
use super::lifecycle::{Exit, Failure, State, Verdict};
use crate::plan::ProcessSpec;
use crate::process_view::ProcState;

/// The record the API reports for a process of `spec` in `state`; `waiting_for`: the
/// conditions (dependency name and condition) the start-up still holds it back for;
/// `attempt`: what the verifier under way said of its last failed attempt, if anything.
pub fn info(
    spec: &ProcessSpec,
    state: &State,
    waiting_for: Vec<(String, &'static str)>,
    attempt: Option<&str>,
) -> ProcessInfo {
    let run = state.run();
    ProcessInfo {
        id: spec.id,
        name: spec.name.to_string(),
        command: spec.command.clone(),
        state: proc_state(state),
        lifecycle: lifecycle(state),
        restarts: run.map_or(0, |r| r.n.saturating_sub(1)),
        started_at: run.map(|r| r.at),
        verifier: spec.verifier.as_ref().map(|v| {
            let (outcome, message) = verifier_outcome(state, attempt);
            VerifierInfo {
                kind: v.kind.clone(),
                outcome,
                message,
            }
        }),
        error: match state {
            State::Failed { why, .. } | State::BackingOff { why, .. } => match why {
                Failure::Verify(_) => None,
                other => Some(other.to_string()),
            },
            _ => None,
        },
        waiting_for,
        ports: spec.ports.clone(),
        last_exit: state.last_exit().map(ended),
        next_attempt: match state {
            State::BackingOff { until, .. } => Some(*until),
            _ => None,
        },
        liveness: spec.orchestration.liveness.as_ref().map(|l| {
            let (failures, message) = match state {
                State::Running { misses, .. } => (*misses, None),
                State::Unhealthy { misses, reason, .. } => (*misses, Some(reason.clone())),
                _ => (0, None),
            };
            LivenessInfo {
                kind: l.verifier.kind.clone(),
                failures,
                message,
            }
        }),
    }
}

fn ended(exit: Exit) -> ProcState {
    match exit {
        Exit::Code(code) => ProcState::Exited { code },
        Exit::Signal(signal) => ProcState::Signaled { signal },
    }
}

/// The process as the OS sees it: running with a pid, or how it ended.
pub fn proc_state(state: &State) -> ProcState {
    let of = |pid: u32, exit: Option<Exit>| exit.map_or(ProcState::Running { pid }, ended);
    match state {
        State::Pending | State::Starting { .. } => ProcState::NotStarted,
        State::Verifying { proc, .. } | State::Stopping { proc, .. } => of(proc.pid, proc.exit),
        State::Running { pid, .. } | State::Unhealthy { pid, .. } => {
            ProcState::Running { pid: *pid }
        }
        State::Stopped { exit, .. } => exit.map_or(ProcState::NotStarted, ended),
        State::Exited { exit, .. } => ended(*exit),
        State::Failed { proc, .. } | State::BackingOff { proc, .. } => {
            proc.map_or(ProcState::NotStarted, |p| of(p.pid, p.exit))
        }
    }
}

/// The lifecycle word.
pub fn lifecycle(state: &State) -> Lifecycle {
    match state {
        State::Pending => Lifecycle::Pending,
        State::Starting { .. } => Lifecycle::Starting,
        State::Verifying { .. } => Lifecycle::Verifying,
        State::Running { .. } => Lifecycle::Ready,
        State::Unhealthy { .. } => Lifecycle::Unhealthy,
        State::Stopping { .. } => Lifecycle::Stopping,
        State::Stopped { .. } => Lifecycle::Stopped,
        State::Exited { .. } => Lifecycle::Exited,
        State::BackingOff { .. } => Lifecycle::BackingOff,
        State::Failed { .. } => Lifecycle::Failed,
    }
}

/// Where the current run's verifier is, and its message: why it failed, or while it runs,
/// the outcome of its last failed attempt (`attempt`).
fn verifier_outcome(state: &State, attempt: Option<&str>) -> (VerifierOutcome, Option<String>) {
    let of_verdict = |v: &Verdict| match v {
        Verdict::Pending => (VerifierOutcome::Pending, None),
        Verdict::Cancelled => (VerifierOutcome::Cancelled, None),
        Verdict::Passed => (VerifierOutcome::Passed, None),
        Verdict::Failed(m) => (VerifierOutcome::Failed, Some(m.clone())),
    };
    match state {
        State::Pending | State::Starting { .. } => (VerifierOutcome::Pending, None),
        State::Verifying { .. } => (VerifierOutcome::Running, attempt.map(str::to_string)),
        State::Running { .. } | State::Unhealthy { .. } | State::Exited { .. } => {
            (VerifierOutcome::Passed, None)
        }
        State::Stopping { verdict, .. } | State::Stopped { verdict, .. } => of_verdict(verdict),
        State::Failed { why, .. } | State::BackingOff { why, .. } => of_verdict(&why.verdict()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::supervisor::lifecycle::{Proc, Run, Then};

    fn spec(verifier: bool) -> ProcessSpec {
        crate::supervisor::tests::spec_for_view(verifier)
    }

    fn run(n: u32) -> Run {
        Run {
            n,
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(n.into()),
            streak: 0,
            previous: None,
        }
    }

    #[test]
    fn a_record_says_what_the_state_holds() {
        let s = spec(true);
        let p = info(&s, &State::Pending, vec![], None);
        assert_eq!(p.state, ProcState::NotStarted);
        assert_eq!(p.lifecycle, Lifecycle::Pending);
        assert_eq!((p.restarts, p.started_at), (0, None));
        assert_eq!(p.verifier.unwrap().outcome, VerifierOutcome::Pending);

        let verifying = State::Verifying {
            run: run(3),
            proc: Proc {
                pid: 42,
                exit: Some(Exit::Code(0)),
            },
            waiter: None,
        };
        let p = info(&s, &verifying, vec![], None);
        assert_eq!(p.state, ProcState::Exited { code: 0 });
        assert_eq!(p.lifecycle, Lifecycle::Verifying);
        assert_eq!((p.restarts, p.started_at), (2, Some(run(3).at)));
        assert_eq!(p.verifier.unwrap().outcome, VerifierOutcome::Running);
        // While it verifies, the last failed attempt is the message; once it ends, the verdict.
        let v = info(&s, &verifying, vec![], Some("attempt 2: answered 404"))
            .verifier
            .unwrap();
        assert_eq!(v.message.as_deref(), Some("attempt 2: answered 404"));

        let failed = State::Failed {
            run: run(1),
            why: Failure::Verify("refused".into()),
            proc: Some(Proc { pid: 7, exit: None }),
        };
        let p = info(&s, &failed, vec![], Some("attempt 9: answered 500"));
        assert_eq!(p.state, ProcState::Running { pid: 7 });
        assert_eq!(p.lifecycle, Lifecycle::Failed);
        assert_eq!(p.error, None);
        let v = p.verifier.unwrap();
        assert_eq!(
            (v.outcome, v.message.as_deref()),
            (VerifierOutcome::Failed, Some("refused"))
        );

        let unspawnable = State::Failed {
            run: run(1),
            why: Failure::Spawn("cannot run x: command not found".into()),
            proc: None,
        };
        let p = info(&spec(false), &unspawnable, vec![], None);
        assert_eq!(p.state, ProcState::NotStarted);
        assert_eq!(p.error.as_deref(), Some("cannot run x: command not found"));
        assert_eq!(p.verifier, None);

        let stopping = State::Stopping {
            run: run(2),
            proc: Proc {
                pid: 9,
                exit: Some(Exit::Signal(15)),
            },
            verdict: Verdict::Cancelled,
            then: Then::Shutdown,
        };
        let p = info(&s, &stopping, vec![], None);
        assert_eq!(p.state, ProcState::Signaled { signal: 15 });
        assert_eq!(p.lifecycle, Lifecycle::Stopping);
        assert_eq!(p.verifier.unwrap().outcome, VerifierOutcome::Cancelled);
    }

    #[test]
    fn equal_states_derive_equal_records_and_a_change_shows() {
        let s = spec(true);
        let a = State::Running {
            run: run(1),
            pid: 5,
            since: SystemTime::UNIX_EPOCH,
            misses: 0,
        };
        assert_eq!(
            info(&s, &a, vec![], None),
            info(&s, &a.clone(), vec![], None)
        );
        let b = State::Exited {
            run: run(1),
            exit: Exit::Signal(9),
        };
        assert_ne!(info(&s, &a, vec![], None), info(&s, &b, vec![], None));
        assert_eq!(info(&s, &b, vec![], None).state.legacy_code(), Some(-9));
    }
}
