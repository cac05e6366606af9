//! The transition function: every rule of a process's life, in one `match`.

use super::{
    Answer, Effect, Exit, Failure, Input, Note, Op, Proc, ReplyId, Run, State, Then, Verdict,
    Waiter,
};
use std::time::SystemTime;

/// What a step needs to know besides the state: when it is, whether the process has a
/// verifier, and whether the manager is shutting down.
#[derive(Debug, Clone, Copy)]
pub struct Env {
    /// Now (the start time of a run that begins in this step).
    pub now: SystemTime,
    /// The process has a verifier.
    pub verifier: bool,
    /// A shutdown has begun.
    pub shutting_down: bool,
}

/// The next state of a process and what to do, given what happened. Pure.
pub fn step(state: State, input: Input, env: &Env) -> (State, Vec<Effect>) {
    let mut fx = Vec::new();
    let next = transition(state, input, env, &mut fx);
    (next, fx)
}

fn reply(fx: &mut Vec<Effect>, to: ReplyId, answer: Answer) {
    fx.push(Effect::Reply { to, answer });
}

fn answer_waiter(fx: &mut Vec<Effect>, waiter: Option<Waiter>, answer: Answer) {
    if let Some(w) = waiter {
        reply(fx, w.reply, answer);
    }
}

/// Begins a new run: spawn it, and answer `waiter` once it is verified.
fn start(run: Run, waiter: Option<Waiter>, fx: &mut Vec<Effect>) -> State {
    fx.push(Effect::Spawn { run: run.n });
    State::Starting { run, waiter }
}

/// Stops a spawned run: signal its group if it still runs, else settle at once.
fn stop(
    run: Run,
    proc: Proc,
    verdict: Verdict,
    then: Then,
    env: &Env,
    fx: &mut Vec<Effect>,
) -> State {
    if proc.exit.is_none() {
        if then != Then::Shutdown {
            fx.push(Effect::StopGroup {
                run: run.n,
                pid: proc.pid,
            });
        }
        return State::Stopping {
            run,
            proc,
            verdict,
            then,
        };
    }
    stopped(Some(run), proc.exit, verdict, then, env, fx)
}

/// The end of a stop: stay stopped, or start again.
fn stopped(
    run: Option<Run>,
    exit: Option<Exit>,
    verdict: Verdict,
    then: Then,
    env: &Env,
    fx: &mut Vec<Effect>,
) -> State {
    match then {
        Then::Restart(r) if !env.shutting_down => {
            let next = run.map_or(Run::first(env.now), |r| r.next(env.now));
            start(
                next,
                Some(Waiter {
                    op: Op::Restart,
                    reply: r,
                }),
                fx,
            )
        }
        Then::Restart(r) => {
            reply(fx, r, Answer::ShuttingDown);
            State::Stopped { run, exit, verdict }
        }
        Then::Stop(r) => {
            reply(fx, r, Answer::Done);
            State::Stopped { run, exit, verdict }
        }
        Then::Shutdown => State::Stopped { run, exit, verdict },
    }
}

fn is_user_request(input: &Input) -> Option<(Op, ReplyId)> {
    match *input {
        Input::Start(r) => Some((Op::Start, r)),
        Input::Restart(r) => Some((Op::Restart, r)),
        Input::Stop(r) => Some((Op::Stop, r)),
        _ => None,
    }
}

fn transition(state: State, input: Input, env: &Env, fx: &mut Vec<Effect>) -> State {
    if env.shutting_down
        && let Some((_, r)) = is_user_request(&input)
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

        State::Starting { run, waiter } => match input {
            Input::Spawned { pid } if env.shutting_down => {
                answer_waiter(fx, waiter, Answer::ShuttingDown);
                State::Stopping {
                    run,
                    proc: Proc::alive(pid),
                    verdict: Verdict::Cancelled,
                    then: Then::Shutdown,
                }
            }
            Input::Spawned { pid } if env.verifier => {
                fx.push(Effect::Verify { run: run.n });
                State::Verifying {
                    run,
                    proc: Proc::alive(pid),
                    waiter,
                }
            }
            Input::Spawned { pid } => {
                answer_waiter(fx, waiter, Answer::Done);
                State::Running { run, pid }
            }
            Input::SpawnFailed { reason } => {
                answer_waiter(fx, waiter, Answer::Failed(reason.clone()));
                State::Failed {
                    run,
                    why: Failure::Spawn(reason),
                    proc: None,
                }
            }
            Input::Start(r) if waiter.is_none() => State::Starting {
                run,
                waiter: Some(Waiter {
                    op: Op::Start,
                    reply: r,
                }),
            },
            Input::Start(r) | Input::Restart(r) | Input::Stop(r) => {
                let busy = waiter.map_or("start-up", |w| w.op.as_str());
                reply(fx, r, Answer::Busy(busy));
                State::Starting { run, waiter }
            }
            Input::Shutdown => {
                answer_waiter(fx, waiter, Answer::ShuttingDown);
                State::Starting { run, waiter: None }
            }
            Input::Launch
            | Input::Checked { .. }
            | Input::Exited { .. }
            | Input::GroupStopped { .. } => State::Starting { run, waiter },
        },

        State::Verifying { run, proc, waiter } => match input {
            Input::Checked { run: n, result } if n == run.n => match result {
                Ok(()) => {
                    fx.push(Effect::Note(Note::Verified));
                    answer_waiter(fx, waiter, Answer::Done);
                    match proc.exit {
                        None => State::Running { run, pid: proc.pid },
                        Some(exit) => State::Exited { run, exit },
                    }
                }
                Err(reason) => {
                    fx.push(Effect::Note(Note::VerifyFailed(reason.clone())));
                    answer_waiter(
                        fx,
                        waiter,
                        Answer::Failed(format!("verification failed: {reason}")),
                    );
                    State::Failed {
                        run,
                        why: Failure::Verify(reason),
                        proc: Some(proc),
                    }
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
            Input::Start(r) | Input::Restart(r) | Input::Stop(r) if waiter.is_some() => {
                let busy = waiter.map_or("start-up", |w| w.op.as_str());
                reply(fx, r, Answer::Busy(busy));
                State::Verifying { run, proc, waiter }
            }
            // Joins the start-up's verification: answered with its verdict.
            Input::Start(r) => State::Verifying {
                run,
                proc,
                waiter: Some(Waiter {
                    op: Op::Start,
                    reply: r,
                }),
            },
            // The start-up's own verification gives way to a user's stop or restart.
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
            | Input::Exited { .. }
            | Input::GroupStopped { .. } => State::Verifying { run, proc, waiter },
        },

        State::Running { run, pid } => match input {
            Input::Exited { run: n, exit } if n == run.n => {
                fx.push(Effect::Note(Note::Exited(exit)));
                State::Exited { run, exit }
            }
            Input::Start(r) => {
                reply(fx, r, Answer::Done);
                State::Running { run, pid }
            }
            Input::Restart(r) => stop(
                run,
                Proc::alive(pid),
                Verdict::Passed,
                Then::Restart(r),
                env,
                fx,
            ),
            Input::Stop(r) => stop(
                run,
                Proc::alive(pid),
                Verdict::Passed,
                Then::Stop(r),
                env,
                fx,
            ),
            Input::Shutdown => stop(
                run,
                Proc::alive(pid),
                Verdict::Passed,
                Then::Shutdown,
                env,
                fx,
            ),
            Input::Launch
            | Input::Spawned { .. }
            | Input::SpawnFailed { .. }
            | Input::Checked { .. }
            | Input::Exited { .. }
            | Input::GroupStopped { .. } => State::Running { run, pid },
        },

        State::Stopping {
            run,
            proc,
            verdict,
            then,
        } => match input {
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
            Input::GroupStopped { run: n } if n == run.n => {
                stopped(Some(run), proc.exit, verdict, then, env, fx)
            }
            Input::Start(r) | Input::Restart(r) | Input::Stop(r) => {
                let answer = match then {
                    Then::Stop(_) => Answer::Busy(Op::Stop.as_str()),
                    Then::Restart(_) => Answer::Busy(Op::Restart.as_str()),
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
            | Input::Exited { .. }
            | Input::GroupStopped { .. } => State::Stopping {
                run,
                proc,
                verdict,
                then,
            },
        },

        State::Stopped { run, exit, verdict } => match input {
            Input::Start(r) | Input::Restart(r) => {
                let op = if matches!(input, Input::Start(_)) {
                    Op::Start
                } else {
                    Op::Restart
                };
                let next = run.map_or(Run::first(env.now), |r| r.next(env.now));
                start(next, Some(Waiter { op, reply: r }), fx)
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
            | Input::Exited { .. }
            | Input::GroupStopped { .. }
            | Input::Shutdown => State::Stopped { run, exit, verdict },
        },

        State::Exited { run, exit } => match input {
            Input::Start(r) => start(
                run.next(env.now),
                Some(Waiter {
                    op: Op::Start,
                    reply: r,
                }),
                fx,
            ),
            Input::Restart(r) => start(
                run.next(env.now),
                Some(Waiter {
                    op: Op::Restart,
                    reply: r,
                }),
                fx,
            ),
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
            | Input::Exited { .. }
            | Input::GroupStopped { .. }
            | Input::Shutdown => State::Exited { run, exit },
        },

        State::Failed { run, why, proc } => {
            let verdict = match &why {
                Failure::Spawn(_) => Verdict::Pending,
                Failure::Verify(reason) => Verdict::Failed(reason.clone()),
            };
            let alive = proc.filter(|p| p.exit.is_none());
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
                (Input::Start(r), None) => start(
                    run.next(env.now),
                    Some(Waiter {
                        op: Op::Start,
                        reply: r,
                    }),
                    fx,
                ),
                (Input::Restart(r), Some(p)) => stop(run, p, verdict, Then::Restart(r), env, fx),
                (Input::Restart(r), None) => start(
                    run.next(env.now),
                    Some(Waiter {
                        op: Op::Restart,
                        reply: r,
                    }),
                    fx,
                ),
                (Input::Stop(r), Some(p)) => stop(run, p, verdict, Then::Stop(r), env, fx),
                (Input::Stop(r), None) => {
                    reply(fx, r, Answer::Done);
                    State::Stopped {
                        run: Some(run),
                        exit: proc.and_then(|p| p.exit),
                        verdict,
                    }
                }
                (Input::Shutdown, Some(p)) => stop(run, p, verdict, Then::Shutdown, env, fx),
                (
                    Input::Launch
                    | Input::Spawned { .. }
                    | Input::SpawnFailed { .. }
                    | Input::Checked { .. }
                    | Input::Exited { .. }
                    | Input::GroupStopped { .. }
                    | Input::Shutdown,
                    _,
                ) => State::Failed { run, why, proc },
            }
        }
    }
}
