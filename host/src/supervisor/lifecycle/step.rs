//! The transition function: what each input does in each state. Starting, verifying and
//! stopping are here; what a failure, an exit or a liveness check leads to under the
//! process's restart policy is in `recovery.rs`.

use std::time::SystemTime;

use super::recovery;
use super::{
    Answer, Effect, Failure, Input, Leftovers, Note, Op, Proc, ReplyId, Rules, Run, State, Then,
    Verdict, Waiter,
};

/// What a step needs to know besides the state: when it is, the process's rules, and
/// whether the manager is shutting down.
#[derive(Debug, Clone, Copy)]
pub struct Env {
    /// Now (the start time of a run that begins in this step, the base of timers).
    pub now: SystemTime,
    /// The process's verifier, restart policy and liveness check.
    pub rules: Rules,
    /// A shutdown has begun.
    pub shutting_down: bool,
}

/// The next state of a process and what to do, given what happened. Pure.
pub fn step(state: State, input: Input, env: &Env) -> (State, Vec<Effect>) {
    let mut fx = Vec::new();
    let next = transition(state, input, env, &mut fx);
    (next, fx)
}

pub(super) fn reply(fx: &mut Vec<Effect>, to: ReplyId, answer: Answer) {
    fx.push(Effect::Reply { to, answer });
}

pub(super) fn answer_waiter(fx: &mut Vec<Effect>, waiter: Option<Waiter>, answer: Answer) {
    if let Some(w) = waiter {
        reply(fx, w.reply, answer);
    }
}

/// Begins a new run: spawn it, and answer `waiter` once it is verified.
pub(super) fn start(run: Run, waiter: Option<Waiter>, fx: &mut Vec<Effect>) -> State {
    fx.push(Effect::Spawn { run: run.n });
    State::Starting { run, waiter }
}

/// A user's start after `prev`: failures in a row count from zero again.
fn fresh(
    prev: Option<Run>,
    last: Option<super::Exit>,
    op: Op,
    r: ReplyId,
    env: &Env,
) -> (Run, Option<Waiter>) {
    (
        Run::after(prev, last, 0, env.now),
        Some(Waiter { op, reply: r }),
    )
}

/// Drops the liveness check or wake-up of a run that stops running.
pub(super) fn cancel_timer(env: &Env, fx: &mut Vec<Effect>) {
    if env.rules.liveness.is_some() {
        fx.push(Effect::CancelTimer);
    }
}

/// Stops a spawned run: signal its group if it still runs, else settle at once.
pub(super) fn stop(
    run: Run,
    proc: Proc,
    verdict: Verdict,
    then: Then,
    env: &Env,
    fx: &mut Vec<Effect>,
) -> State {
    if proc.exit.is_none() {
        // At shutdown the group is signalled when its turn comes (`Input::Teardown`).
        if then != Then::Shutdown {
            fx.push(Effect::StopGroup {
                run: run.n,
                pid: proc.pid,
                signal: env.rules.stop.signal,
                grace: env.rules.stop.grace,
                leftovers: Leftovers::Kill,
            });
        }
        return State::Stopping {
            run,
            proc,
            verdict,
            then,
        };
    }
    stopped(run, proc, verdict, then, env, fx)
}

/// The end of a stop: stay stopped, start again, or back off.
fn stopped(
    run: Run,
    proc: Proc,
    verdict: Verdict,
    then: Then,
    env: &Env,
    fx: &mut Vec<Effect>,
) -> State {
    let halt = |verdict| State::Stopped {
        run: Some(run),
        exit: proc.exit,
        verdict,
    };
    match then {
        Then::Restart(r) if !env.shutting_down => {
            let (run, waiter) = fresh(Some(run), proc.exit, Op::Restart, r, env);
            start(run, waiter, fx)
        }
        Then::Restart(r) => {
            reply(fx, r, Answer::ShuttingDown);
            halt(verdict)
        }
        Then::Stop(r) => {
            reply(fx, r, Answer::Done);
            halt(verdict)
        }
        Then::Retry(why) => recovery::back_off(run, Some(proc), why, env, fx),
        Then::Shutdown => halt(verdict),
    }
}

fn user_request(input: &Input) -> Option<ReplyId> {
    match *input {
        Input::Start(r) | Input::Restart(r) | Input::Stop(r) => Some(r),
        _ => None,
    }
}

fn busy(waiter: Option<Waiter>) -> Answer {
    Answer::Busy(waiter.map_or("start-up", |w| w.op.as_str()))
}

fn transition(state: State, input: Input, env: &Env, fx: &mut Vec<Effect>) -> State {
    if let Input::Teardown { grace } = input {
        return teardown(state, grace, env, fx);
    }
    if env.shutting_down
        && let Some(r) = user_request(&input)
    {
        reply(fx, r, Answer::ShuttingDown);
        return state;
    }
    match state {
        State::Pending => match input {
            Input::Launch if !env.shutting_down => start(Run::first(env.now), None, fx),
            Input::Start(r) | Input::Restart(r) | Input::Stop(r) => {
                reply(fx, r, Answer::Busy("start-up"));
                State::Pending
            }
            _ => State::Pending,
        },

        State::Starting { run, waiter } => starting(run, waiter, input, env, fx),
        State::Verifying { run, proc, waiter } => verifying(run, proc, waiter, input, env, fx),

        state @ State::Running {
            run,
            pid,
            since,
            misses,
        } => live(state, run, pid, Some(since), misses, input, env, fx),
        state @ State::Unhealthy {
            run, pid, misses, ..
        } => live(state, run, pid, None, misses, input, env, fx),

        State::Stopping {
            run,
            proc,
            verdict,
            then,
        } => stopping(run, proc, verdict, then, input, env, fx),

        State::Stopped { run, exit, verdict } => match input {
            Input::Start(r) | Input::Restart(r) => {
                let op = if matches!(input, Input::Start(_)) {
                    Op::Start
                } else {
                    Op::Restart
                };
                let (run, waiter) = fresh(run, exit, op, r, env);
                start(run, waiter, fx)
            }
            Input::Stop(r) => {
                reply(fx, r, Answer::Done);
                State::Stopped { run, exit, verdict }
            }
            // A late exit of the stopped run (the stop settled before it was reported).
            Input::Exited { run: n, exit: e }
                if exit.is_none() && run.is_some_and(|r| r.n == n) =>
            {
                fx.push(Effect::Note(Note::Exited(e)));
                State::Stopped {
                    run,
                    exit: Some(e),
                    verdict,
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
            | Input::Shutdown
            | Input::Teardown { .. } => State::Stopped { run, exit, verdict },
        },

        State::Exited { run, exit } => match input {
            Input::Start(r) => {
                let (run, waiter) = fresh(Some(run), Some(exit), Op::Start, r, env);
                start(run, waiter, fx)
            }
            Input::Restart(r) => {
                let (run, waiter) = fresh(Some(run), Some(exit), Op::Restart, r, env);
                start(run, waiter, fx)
            }
            Input::Stop(r) => {
                reply(fx, r, Answer::Done);
                State::Stopped {
                    run: Some(run),
                    exit: Some(exit),
                    verdict: Verdict::Passed,
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
            | Input::Shutdown
            | Input::Teardown { .. } => State::Exited { run, exit },
        },

        State::BackingOff {
            run,
            proc,
            why,
            until,
        } => recovery::backing_off(run, proc, why, until, input, env, fx),

        State::Failed { run, why, proc } => failed(run, why, proc, input, env, fx),
    }
}

/// The shutdown's turn for this process: it shuts down (if it had not yet), and its group,
/// if one runs, is signalled, with `grace` before SIGKILL. What the leader leaves in the
/// group is the shutdown's to end.
fn teardown(state: State, grace: std::time::Duration, env: &Env, fx: &mut Vec<Effect>) -> State {
    let state = transition(state, Input::Shutdown, env, fx);
    if let State::Stopping { run, proc, .. } = &state
        && proc.exit.is_none()
    {
        fx.push(Effect::StopGroup {
            run: run.n,
            pid: proc.pid,
            signal: env.rules.stop.signal,
            grace,
            leftovers: Leftovers::ToShutdown,
        });
    }
    state
}

fn starting(
    run: Run,
    waiter: Option<Waiter>,
    input: Input,
    env: &Env,
    fx: &mut Vec<Effect>,
) -> State {
    match input {
        Input::Spawned { pid } if env.shutting_down => {
            answer_waiter(fx, waiter, Answer::ShuttingDown);
            State::Stopping {
                run,
                proc: Proc::alive(pid),
                verdict: Verdict::Cancelled,
                then: Then::Shutdown,
            }
        }
        Input::Spawned { pid } if env.rules.verifier => {
            fx.push(Effect::Verify { run: run.n });
            State::Verifying {
                run,
                proc: Proc::alive(pid),
                waiter,
            }
        }
        Input::Spawned { pid } => {
            answer_waiter(fx, waiter, Answer::Done);
            recovery::verified(run, pid, env, fx)
        }
        Input::SpawnFailed { reason } => {
            answer_waiter(fx, waiter, Answer::Failed(reason.clone()));
            recovery::failed(run, None, Failure::Spawn(reason), env, fx)
        }
        Input::Start(r) if waiter.is_none() => State::Starting {
            run,
            waiter: Some(Waiter {
                op: Op::Start,
                reply: r,
            }),
        },
        Input::Start(r) | Input::Restart(r) | Input::Stop(r) => {
            reply(fx, r, busy(waiter));
            State::Starting { run, waiter }
        }
        Input::Shutdown => {
            answer_waiter(fx, waiter, Answer::ShuttingDown);
            State::Starting { run, waiter: None }
        }
        Input::Launch
        | Input::Checked { .. }
        | Input::Probed { .. }
        | Input::Exited { .. }
        | Input::GroupStopped { .. }
        | Input::Retry { .. }
        | Input::Teardown { .. } => State::Starting { run, waiter },
    }
}

fn verifying(
    run: Run,
    proc: Proc,
    waiter: Option<Waiter>,
    input: Input,
    env: &Env,
    fx: &mut Vec<Effect>,
) -> State {
    match input {
        Input::Checked { run: n, result } if n == run.n => match result {
            Ok(()) => {
                fx.push(Effect::Note(Note::Verified));
                answer_waiter(fx, waiter, Answer::Done);
                match proc.exit {
                    None => recovery::verified(run, proc.pid, env, fx),
                    Some(exit) => recovery::ended(run, proc.pid, exit, None, env, fx),
                }
            }
            Err(reason) => {
                fx.push(Effect::Note(Note::VerifyFailed(reason.clone())));
                let why = Failure::Verify(reason);
                answer_waiter(fx, waiter, Answer::Failed(why.to_string()));
                recovery::failed(run, Some(proc), why, env, fx)
            }
        },
        Input::Exited { run: n, exit } if n == run.n && proc.exit.is_none() => {
            fx.push(Effect::Note(Note::Exited(exit)));
            State::Verifying {
                run,
                proc: Proc {
                    exit: Some(exit),
                    ..proc
                },
                waiter,
            }
        }
        // A user's stop or restart cuts short the start or restart under way, and its
        // verification: the earlier requester learns that it was.
        Input::Restart(r) | Input::Stop(r) if waiter.is_some() => {
            fx.push(Effect::CancelVerify);
            let (op, then) = match input {
                Input::Stop(_) => (Op::Stop, Then::Stop(r)),
                _ => (Op::Restart, Then::Restart(r)),
            };
            answer_waiter(fx, waiter, Answer::Cancelled(op.as_str()));
            stop(run, proc, Verdict::Cancelled, then, env, fx)
        }
        Input::Start(r) if waiter.is_some() => {
            reply(fx, r, busy(waiter));
            State::Verifying { run, proc, waiter }
        }
        // Joins the verification the start-up (or the restart policy) began.
        Input::Start(r) => State::Verifying {
            run,
            proc,
            waiter: Some(Waiter {
                op: Op::Start,
                reply: r,
            }),
        },
        // That verification gives way to a user's stop or restart.
        Input::Restart(r) => {
            fx.push(Effect::CancelVerify);
            stop(run, proc, Verdict::Cancelled, Then::Restart(r), env, fx)
        }
        Input::Stop(r) => {
            fx.push(Effect::CancelVerify);
            stop(run, proc, Verdict::Cancelled, Then::Stop(r), env, fx)
        }
        Input::Shutdown => {
            fx.push(Effect::CancelVerify);
            answer_waiter(fx, waiter, Answer::ShuttingDown);
            stop(run, proc, Verdict::Cancelled, Then::Shutdown, env, fx)
        }
        Input::Launch
        | Input::Spawned { .. }
        | Input::SpawnFailed { .. }
        | Input::Checked { .. }
        | Input::Probed { .. }
        | Input::Exited { .. }
        | Input::GroupStopped { .. }
        | Input::Retry { .. }
        | Input::Teardown { .. } => State::Verifying { run, proc, waiter },
    }
}

/// A verified process that runs is stopped: its liveness check ends with it.
fn stop_running(run: Run, pid: u32, then: Then, env: &Env, fx: &mut Vec<Effect>) -> State {
    cancel_timer(env, fx);
    stop(run, Proc::alive(pid), Verdict::Passed, then, env, fx)
}

fn stopping(
    run: Run,
    proc: Proc,
    verdict: Verdict,
    then: Then,
    input: Input,
    env: &Env,
    fx: &mut Vec<Effect>,
) -> State {
    match input {
        Input::Exited { run: n, exit } if n == run.n && proc.exit.is_none() => {
            fx.push(Effect::Note(Note::Exited(exit)));
            let proc = Proc {
                exit: Some(exit),
                ..proc
            };
            if then == Then::Shutdown {
                // The shutdown ends groups itself; the leader's end is this run's end.
                return State::Stopped {
                    run: Some(run),
                    exit: Some(exit),
                    verdict,
                };
            }
            State::Stopping {
                run,
                proc,
                verdict,
                then,
            }
        }
        Input::GroupStopped { run: n } if n == run.n => stopped(run, proc, verdict, then, env, fx),
        // The restart policy's stop gives way to what a user asks for.
        Input::Stop(r) if matches!(then, Then::Retry(_)) => State::Stopping {
            run,
            proc,
            verdict,
            then: Then::Stop(r),
        },
        Input::Start(r) | Input::Restart(r) if matches!(then, Then::Retry(_)) => State::Stopping {
            run,
            proc,
            verdict,
            then: Then::Restart(r),
        },
        // A user's restart that is still stopping the process gives way to a stop: it is
        // not started again. (A second restart has nothing to add to it.)
        Input::Stop(r) if matches!(then, Then::Restart(_)) => {
            if let Then::Restart(earlier) = then {
                reply(fx, earlier, Answer::Cancelled(Op::Stop.as_str()));
            }
            State::Stopping {
                run,
                proc,
                verdict,
                then: Then::Stop(r),
            }
        }
        Input::Start(r) | Input::Restart(r) | Input::Stop(r) => {
            let answer = match then {
                Then::Stop(_) => Answer::Busy(Op::Stop.as_str()),
                Then::Restart(_) | Then::Retry(_) => Answer::Busy(Op::Restart.as_str()),
                Then::Shutdown => Answer::ShuttingDown,
            };
            reply(fx, r, answer);
            State::Stopping {
                run,
                proc,
                verdict,
                then,
            }
        }
        Input::Shutdown => {
            let then = match then {
                // A restart will not happen; its requester learns why now.
                Then::Restart(r) => {
                    reply(fx, r, Answer::ShuttingDown);
                    Then::Shutdown
                }
                Then::Retry(_) => Then::Shutdown,
                other => other,
            };
            if proc.exit.is_some() && then == Then::Shutdown {
                return State::Stopped {
                    run: Some(run),
                    exit: proc.exit,
                    verdict,
                };
            }
            State::Stopping {
                run,
                proc,
                verdict,
                then,
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
        | Input::Teardown { .. } => State::Stopping {
            run,
            proc,
            verdict,
            then,
        },
    }
}

fn failed(
    run: Run,
    why: Failure,
    proc: Option<Proc>,
    input: Input,
    env: &Env,
    fx: &mut Vec<Effect>,
) -> State {
    let alive = proc.filter(|p| p.exit.is_none());
    let last = proc.and_then(|p| p.exit);
    match (input, alive) {
        (Input::Exited { run: n, exit }, Some(p)) if n == run.n => {
            fx.push(Effect::Note(Note::Exited(exit)));
            State::Failed {
                run,
                why,
                proc: Some(Proc {
                    exit: Some(exit),
                    ..p
                }),
            }
        }
        // It runs, though it failed its verification: nothing to start.
        (Input::Start(r), Some(_)) => {
            reply(fx, r, Answer::Done);
            State::Failed { run, why, proc }
        }
        (Input::Start(r), None) => {
            let (run, waiter) = fresh(Some(run), last, Op::Start, r, env);
            start(run, waiter, fx)
        }
        (Input::Restart(r), Some(p)) => stop(run, p, why.verdict(), Then::Restart(r), env, fx),
        (Input::Restart(r), None) => {
            let (run, waiter) = fresh(Some(run), last, Op::Restart, r, env);
            start(run, waiter, fx)
        }
        (Input::Stop(r), Some(p)) => stop(run, p, why.verdict(), Then::Stop(r), env, fx),
        (Input::Stop(r), None) => {
            reply(fx, r, Answer::Done);
            State::Stopped {
                run: Some(run),
                exit: last,
                verdict: why.verdict(),
            }
        }
        (Input::Shutdown, Some(p)) => stop(run, p, why.verdict(), Then::Shutdown, env, fx),
        (
            Input::Launch
            | Input::Spawned { .. }
            | Input::SpawnFailed { .. }
            | Input::Checked { .. }
            | Input::Probed { .. }
            | Input::Exited { .. }
            | Input::GroupStopped { .. }
            | Input::Retry { .. }
            | Input::Shutdown
            | Input::Teardown { .. },
            _,
        ) => State::Failed { run, why, proc },
    }
}

/// A process that runs: `Running` (since `since`) or `Unhealthy` (`since` is `None`), which
/// take every input the same way; `state` is the state itself, kept when nothing changes.
#[allow(clippy::too_many_arguments)]
fn live(
    state: State,
    run: Run,
    pid: u32,
    since: Option<SystemTime>,
    misses: u32,
    input: Input,
    env: &Env,
    fx: &mut Vec<Effect>,
) -> State {
    match input {
        Input::Exited { run: n, exit } if n == run.n => {
            fx.push(Effect::Note(super::Note::Exited(exit)));
            cancel_timer(env, fx);
            recovery::ended(run, pid, exit, since, env, fx)
        }
        Input::Probed { run: n, result } if n == run.n && env.rules.liveness.is_some() => {
            let liveness = env.rules.liveness.unwrap_or_default();
            recovery::probed(run, pid, since, misses, liveness, result, env, fx)
        }
        Input::Start(r) => {
            reply(fx, r, Answer::Done);
            state
        }
        Input::Restart(r) => stop_running(run, pid, Then::Restart(r), env, fx),
        Input::Stop(r) => stop_running(run, pid, Then::Stop(r), env, fx),
        Input::Shutdown => stop_running(run, pid, Then::Shutdown, env, fx),
        Input::Launch
        | Input::Spawned { .. }
        | Input::SpawnFailed { .. }
        | Input::Checked { .. }
        | Input::Probed { .. }
        | Input::Exited { .. }
        | Input::GroupStopped { .. }
        | Input::Retry { .. }
        | Input::Teardown { .. } => state,
    }
}
