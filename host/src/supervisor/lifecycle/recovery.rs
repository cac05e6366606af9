//! What a failure leads to: the restart policy (back off, start again, give up) and the
//! liveness check of a verified process. With the policy `never` and no liveness check,
//! these rules are the original's: a failed process stays failed, an exited one exited.

use std::time::{Duration, SystemTime};

use super::step::{Env, reply, start, stop};
use super::{
    Answer, Effect, Exit, Failure, Input, Liveness, Note, Op, Policy, Proc, Run, State, Then,
    Verdict, Waiter,
};

/// A run is verified (or needs no verifier) and runs: its liveness checks begin.
pub(super) fn verified(run: Run, pid: u32, env: &Env, fx: &mut Vec<Effect>) -> State {
    schedule_probe(run, env, fx);
    State::Running {
        run,
        pid,
        since: env.now,
        misses: 0,
    }
}

fn schedule_probe(run: Run, env: &Env, fx: &mut Vec<Effect>) {
    if let Some(l) = env.rules.liveness
        && !env.shutting_down
    {
        fx.push(Effect::Probe {
            run: run.n,
            at: later(env.now, l.period),
        });
    }
}

fn later(now: SystemTime, d: Duration) -> SystemTime {
    now.checked_add(d).unwrap_or(now)
}

/// A run failed to spawn or to be verified: under `never` it stays failed (still running,
/// if it does); otherwise it is stopped, then backs off.
pub(super) fn failed(
    run: Run,
    proc: Option<Proc>,
    why: Failure,
    env: &Env,
    fx: &mut Vec<Effect>,
) -> State {
    if env.rules.restart.policy == Policy::Never || env.shutting_down {
        return State::Failed { run, why, proc };
    }
    match proc {
        Some(p) if p.exit.is_none() => {
            let verdict = why.verdict();
            stop(run, p, verdict, Then::Retry(why), env, fx)
        }
        _ => back_off(run, proc, why, env, fx),
    }
}

/// A verified run's process ended on its own. `since`: when it was verified (and healthy),
/// if it was; a run that stayed healthy long enough starts its failures in a row anew.
pub(super) fn ended(
    run: Run,
    pid: u32,
    exit: Exit,
    since: Option<SystemTime>,
    env: &Env,
    fx: &mut Vec<Effect>,
) -> State {
    let restart = env.rules.restart;
    let failure = match restart.policy {
        Policy::Never => false,
        Policy::OnFailure => !exit.is_success(),
        Policy::Always => true,
    };
    if !failure || env.shutting_down {
        return State::Exited { run, exit };
    }
    let healthy = since.is_some_and(|s| healthy_since(s, env));
    let run = if healthy {
        Run { streak: 0, ..run }
    } else {
        run
    };
    let proc = Proc {
        pid,
        exit: Some(exit),
    };
    back_off(run, Some(proc), Failure::Exit(exit), env, fx)
}

/// Waits before the next start, or gives up after `max_restarts` in a row.
pub(super) fn back_off(
    run: Run,
    proc: Option<Proc>,
    why: Failure,
    env: &Env,
    fx: &mut Vec<Effect>,
) -> State {
    let restart = env.rules.restart;
    let attempt = run.streak.saturating_add(1);
    if env.shutting_down || restart.policy == Policy::Never {
        return settle(run, proc, why);
    }
    if attempt > restart.max_restarts {
        let why = Failure::GaveUp(run.streak, Box::new(why));
        fx.push(Effect::Note(Note::GaveUp(why.clone())));
        return State::Failed { run, why, proc };
    }
    let delay = restart.delay(attempt);
    let until = later(env.now, delay);
    fx.push(Effect::Note(Note::Restarting {
        why: why.clone(),
        delay,
        attempt,
    }));
    fx.push(Effect::Wake {
        run: run.n,
        at: until,
    });
    State::BackingOff {
        run,
        proc,
        why,
        until,
    }
}

/// Where a failure rests when nothing starts the process again.
fn settle(run: Run, proc: Option<Proc>, why: Failure) -> State {
    match why {
        Failure::Exit(exit) => State::Exited { run, exit },
        why => State::Failed { run, why, proc },
    }
}

/// A liveness check of a running process returned. `since`: when it became healthy, if it
/// is (`None`: it is unhealthy); `misses`: checks failed in a row before this one.
#[allow(clippy::too_many_arguments)]
pub(super) fn probed(
    run: Run,
    pid: u32,
    since: Option<SystemTime>,
    misses: u32,
    liveness: Liveness,
    result: Result<(), String>,
    env: &Env,
    fx: &mut Vec<Effect>,
) -> State {
    let reason = match result {
        Ok(()) => {
            if since.is_none() {
                fx.push(Effect::Note(Note::Healthy));
            }
            schedule_probe(run, env, fx);
            return State::Running {
                run,
                pid,
                since: since.unwrap_or(env.now),
                misses: 0,
            };
        }
        Err(reason) => reason,
    };
    let misses = misses.saturating_add(1);
    match since {
        Some(since) if misses < liveness.failures => {
            schedule_probe(run, env, fx);
            return State::Running {
                run,
                pid,
                since,
                misses,
            };
        }
        Some(since) => {
            fx.push(Effect::Note(Note::Unhealthy(reason.clone())));
            if env.rules.restart.policy != Policy::Never && !env.shutting_down {
                let run = if healthy_since(since, env) {
                    Run { streak: 0, ..run }
                } else {
                    run
                };
                let why = Failure::Unhealthy(reason);
                return stop(
                    run,
                    Proc::alive(pid),
                    Verdict::Passed,
                    Then::Retry(why),
                    env,
                    fx,
                );
            }
        }
        None => {}
    }
    schedule_probe(run, env, fx);
    State::Unhealthy {
        run,
        pid,
        misses,
        reason,
    }
}

/// True when a run verified at `since` has been healthy long enough for its failures in a
/// row to count from zero again.
fn healthy_since(since: SystemTime, env: &Env) -> bool {
    env.now
        .duration_since(since)
        .is_ok_and(|d| d >= env.rules.restart.healthy_after())
}

/// A process waiting out its backoff.
pub(super) fn backing_off(
    run: Run,
    proc: Option<Proc>,
    why: Failure,
    until: SystemTime,
    input: Input,
    env: &Env,
    fx: &mut Vec<Effect>,
) -> State {
    let last = proc.and_then(|p| p.exit).or(run.previous);
    match input {
        Input::Retry { run: n } if n == run.n => {
            if env.shutting_down || env.rules.restart.policy == Policy::Never {
                return settle(run, proc, why);
            }
            let next = Run::after(Some(run), last, run.streak.saturating_add(1), env.now);
            start(next, None, fx)
        }
        // A user's start or restart does not wait for the backoff, and counts anew.
        Input::Start(r) | Input::Restart(r) => {
            fx.push(Effect::CancelTimer);
            let op = if matches!(input, Input::Start(_)) {
                Op::Start
            } else {
                Op::Restart
            };
            let next = Run::after(Some(run), last, 0, env.now);
            start(next, Some(Waiter { op, reply: r }), fx)
        }
        Input::Stop(r) => {
            fx.push(Effect::CancelTimer);
            reply(fx, r, Answer::Done);
            State::Stopped {
                run: Some(run),
                exit: last,
                verdict: why.verdict(),
            }
        }
        Input::Shutdown => {
            fx.push(Effect::CancelTimer);
            State::Stopped {
                run: Some(run),
                exit: last,
                verdict: why.verdict(),
            }
        }
        Input::Launch
        | Input::Spawned { .. }
        | Input::SpawnFailed { .. }
        | Input::Checked { .. }
        | Input::Probed { .. }
        | Input::Exited { .. }
        | Input::GroupStopped { .. }
        | Input::Retry { .. }
        | Input::Teardown { .. } => State::BackingOff {
            run,
            proc,
            why,
            until,
        },
    }
}
