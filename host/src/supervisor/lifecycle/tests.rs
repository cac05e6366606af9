//! Every state against every input, without a process.
//!
//! [`TABLE`] is the specification: one line per (state, input) pair, with the state and
//! effects that follow, written in a short notation ([`show`]). The test runs [`step`] on
//! every pair of [`states`] × [`inputs`] and compares; a pair missing from the table, or
//! one the table has and the samples do not, fails too. Beside it, [`invariants`] checks
//! properties that must hold for every pair whatever the table says, also while shutting
//! down and for processes without a verifier.

use std::time::{Duration, SystemTime};

use super::*;

/// The current run of every sample state; inputs about run 1 are stale.
const N: u32 = 2;
const STALE: u32 = 1;
/// The requester waiting in sample states.
const WAITING: ReplyId = 9;
/// The requester of a new request.
const NEW: ReplyId = 1;
const PID: u32 = 100;

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn run() -> Run {
    Run {
        n: N,
        at: t(N.into()),
    }
}

fn env() -> Env {
    Env {
        now: t(50),
        verifier: true,
        shutting_down: false,
    }
}

fn alive() -> Proc {
    Proc {
        pid: PID,
        exit: None,
    }
}

fn ended() -> Proc {
    Proc {
        pid: PID,
        exit: Some(Exit::Code(1)),
    }
}

fn waiter(op: Op) -> Option<Waiter> {
    Some(Waiter { op, reply: WAITING })
}

/// One sample of every variant, and of every case inside a variant the rules tell apart.
fn states() -> Vec<(&'static str, State)> {
    let failed_verify = || Failure::Verify("bad".into());
    vec![
        ("pending", State::Pending),
        (
            "starting",
            State::Starting {
                run: run(),
                waiter: None,
            },
        ),
        (
            "starting+user",
            State::Starting {
                run: run(),
                waiter: waiter(Op::Start),
            },
        ),
        (
            "verifying",
            State::Verifying {
                run: run(),
                proc: alive(),
                waiter: None,
            },
        ),
        (
            "verifying+user",
            State::Verifying {
                run: run(),
                proc: alive(),
                waiter: waiter(Op::Restart),
            },
        ),
        (
            "verifying-exited",
            State::Verifying {
                run: run(),
                proc: ended(),
                waiter: None,
            },
        ),
        (
            "running",
            State::Running {
                run: run(),
                pid: PID,
            },
        ),
        (
            "stopping-stop",
            State::Stopping {
                run: run(),
                proc: alive(),
                verdict: Verdict::Passed,
                then: Then::Stop(WAITING),
            },
        ),
        (
            "stopping-restart",
            State::Stopping {
                run: run(),
                proc: alive(),
                verdict: Verdict::Passed,
                then: Then::Restart(WAITING),
            },
        ),
        (
            "stopping-shutdown",
            State::Stopping {
                run: run(),
                proc: alive(),
                verdict: Verdict::Cancelled,
                then: Then::Shutdown,
            },
        ),
        (
            "stopping-stop-exited",
            State::Stopping {
                run: run(),
                proc: ended(),
                verdict: Verdict::Passed,
                then: Then::Stop(WAITING),
            },
        ),
        (
            "stopped-never",
            State::Stopped {
                run: None,
                exit: None,
                verdict: Verdict::Pending,
            },
        ),
        (
            "stopped",
            State::Stopped {
                run: Some(run()),
                exit: Some(Exit::Signal(15)),
                verdict: Verdict::Passed,
            },
        ),
        (
            "stopped-unreported",
            State::Stopped {
                run: Some(run()),
                exit: None,
                verdict: Verdict::Passed,
            },
        ),
        (
            "exited",
            State::Exited {
                run: run(),
                exit: Exit::Code(0),
            },
        ),
        (
            "failed-spawn",
            State::Failed {
                run: run(),
                why: Failure::Spawn("no".into()),
                proc: None,
            },
        ),
        (
            "failed-alive",
            State::Failed {
                run: run(),
                why: failed_verify(),
                proc: Some(alive()),
            },
        ),
        (
            "failed-ended",
            State::Failed {
                run: run(),
                why: failed_verify(),
                proc: Some(ended()),
            },
        ),
    ]
}

/// Every input, about the current run and (where it names one) a stale run.
fn inputs() -> Vec<(&'static str, Input)> {
    vec![
        ("launch", Input::Launch),
        ("start", Input::Start(NEW)),
        ("restart", Input::Restart(NEW)),
        ("stop", Input::Stop(NEW)),
        ("spawned", Input::Spawned { pid: 200 }),
        (
            "spawn-failed",
            Input::SpawnFailed {
                reason: "no".into(),
            },
        ),
        (
            "passed",
            Input::Checked {
                run: N,
                result: Ok(()),
            },
        ),
        (
            "failed",
            Input::Checked {
                run: N,
                result: Err("bad".into()),
            },
        ),
        (
            "passed-stale",
            Input::Checked {
                run: STALE,
                result: Ok(()),
            },
        ),
        (
            "exited",
            Input::Exited {
                run: N,
                exit: Exit::Signal(9),
            },
        ),
        (
            "exited-stale",
            Input::Exited {
                run: STALE,
                exit: Exit::Signal(9),
            },
        ),
        ("group-stopped", Input::GroupStopped { run: N }),
        ("group-stopped-stale", Input::GroupStopped { run: STALE }),
        ("shutdown", Input::Shutdown),
    ]
}

/// A state in a few words: `stage(run pid/exit, waiter or then)`.
fn show(s: &State) -> String {
    let run = |r: &Run| format!("#{}", r.n);
    let proc = |p: &Proc| match p.exit {
        None => format!("pid {}", p.pid),
        Some(e) => format!("pid {} {}", p.pid, exit(e)),
    };
    let waiter = |w: &Option<Waiter>| match w {
        None => String::new(),
        Some(w) => format!(" for {}:{}", w.op.as_str(), w.reply),
    };
    match s {
        State::Pending => "pending".into(),
        State::Starting { run: r, waiter: w } => format!("starting({}{})", run(r), waiter(w)),
        State::Verifying {
            run: r,
            proc: p,
            waiter: w,
        } => {
            format!("verifying({} {}{})", run(r), proc(p), waiter(w))
        }
        State::Running { run: r, pid } => format!("running({} pid {pid})", run(r)),
        State::Stopping {
            run: r,
            proc: p,
            verdict: v,
            then: th,
        } => {
            format!(
                "stopping({} {} {} then {})",
                run(r),
                proc(p),
                verdict(v),
                then(th)
            )
        }
        State::Stopped {
            run: r,
            exit: e,
            verdict: v,
        } => format!(
            "stopped({} {} {})",
            r.as_ref().map_or("-".into(), run),
            e.map_or("-".into(), exit),
            verdict(v)
        ),
        State::Exited { run: r, exit: e } => format!("exited({} {})", run(r), exit(*e)),
        State::Failed {
            run: r,
            why,
            proc: p,
        } => format!(
            "failed({} {} {})",
            run(r),
            match why {
                Failure::Spawn(m) => format!("spawn:{m}"),
                Failure::Verify(m) => format!("verify:{m}"),
            },
            p.as_ref().map_or("-".into(), proc)
        ),
    }
}

fn exit(e: Exit) -> String {
    match e {
        Exit::Code(c) => format!("code {c}"),
        Exit::Signal(s) => format!("sig {s}"),
    }
}

fn verdict(v: &Verdict) -> String {
    match v {
        Verdict::Pending => "unverified".into(),
        Verdict::Cancelled => "cancelled".into(),
        Verdict::Passed => "passed".into(),
        Verdict::Failed(m) => format!("failed:{m}"),
    }
}

fn then(t: &Then) -> String {
    match t {
        Then::Stop(r) => format!("stop:{r}"),
        Then::Restart(r) => format!("restart:{r}"),
        Then::Shutdown => "shutdown".into(),
    }
}

/// Effects in a few words, `;`-separated; `-` for none.
fn show_effects(fx: &[Effect]) -> String {
    if fx.is_empty() {
        return "-".into();
    }
    fx.iter()
        .map(|e| match e {
            Effect::Spawn { run } => format!("spawn #{run}"),
            Effect::Verify { run } => format!("verify #{run}"),
            Effect::CancelVerify => "cancel-verify".into(),
            Effect::StopGroup { run, pid } => format!("stop-group #{run} pid {pid}"),
            Effect::Reply { to, answer } => format!(
                "reply {to} {}",
                match answer {
                    Answer::Done => "done".into(),
                    Answer::Busy(op) => format!("busy:{op}"),
                    Answer::ShuttingDown => "shutting-down".into(),
                    Answer::Failed(m) => format!("failed:{m}"),
                }
            ),
            Effect::Note(Note::Exited(e)) => format!("note {}", exit(*e)),
            Effect::Note(Note::Verified) => "note verified".into(),
            Effect::Note(Note::VerifyFailed(m)) => format!("note verify-failed:{m}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn outcome(state: &State, input: &Input, env: &Env) -> String {
    let (next, fx) = step(state.clone(), input.clone(), env);
    format!("{} | {}", show(&next), show_effects(&fx))
}

/// `state | input | next state | effects`, for every pair, with a verifier, not shutting
/// down. Run numbers: `#2` is current, `#3` a new start; requester 9 waits, 1 asks now.
const TABLE: &str = include_str!("transitions.txt");

#[test]
fn every_state_and_input_does_what_the_table_says() {
    let mut want: std::collections::BTreeMap<(String, String), String> = Default::default();
    for line in TABLE
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let cols: Vec<&str> = line.split(" | ").map(str::trim).collect();
        assert_eq!(cols.len(), 4, "malformed line: {line}");
        let prev = want.insert(
            (cols[0].into(), cols[1].into()),
            format!("{} | {}", cols[2], cols[3]),
        );
        assert!(prev.is_none(), "twice in the table: {line}");
    }
    let mut wrong = Vec::new();
    for (sn, s) in states() {
        for (inn, i) in inputs() {
            let got = outcome(&s, &i, &env());
            match want.remove(&(sn.to_string(), inn.to_string())) {
                Some(w) if w == got => {}
                Some(w) => wrong.push(format!("{sn} | {inn}\n   want {w}\n    got {got}")),
                None => wrong.push(format!("missing from the table: {sn} | {inn} | {got}")),
            }
        }
    }
    for ((sn, inn), _) in want {
        wrong.push(format!("in the table, not sampled: {sn} | {inn}"));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The requesters a state holds.
fn held(s: &State) -> Vec<ReplyId> {
    match s {
        State::Starting { waiter, .. } | State::Verifying { waiter, .. } => {
            waiter.iter().map(|w| w.reply).collect()
        }
        State::Stopping {
            then: Then::Stop(r) | Then::Restart(r),
            ..
        } => vec![*r],
        _ => vec![],
    }
}

/// The pid a state says runs.
fn live_pid(s: &State) -> Option<u32> {
    match s {
        State::Verifying { proc, .. } | State::Stopping { proc, .. } => {
            proc.exit.is_none().then_some(proc.pid)
        }
        State::Failed { proc: Some(p), .. } => p.exit.is_none().then_some(p.pid),
        State::Running { pid, .. } => Some(*pid),
        _ => None,
    }
}

#[test]
fn invariants() {
    let envs = [
        env(),
        Env {
            verifier: false,
            ..env()
        },
        Env {
            shutting_down: true,
            ..env()
        },
    ];
    for e in &envs {
        for (sn, s) in states() {
            for (inn, i) in inputs() {
                let (next, fx) = step(s.clone(), i.clone(), e);
                let at = format!(
                    "{sn} | {inn} (verifier {}, shutting down {})",
                    e.verifier, e.shutting_down
                );
                let replies: Vec<ReplyId> = fx
                    .iter()
                    .filter_map(|f| match f {
                        Effect::Reply { to, .. } => Some(*to),
                        _ => None,
                    })
                    .collect();
                // Every requester is answered exactly once: now, or held for later.
                let mut asked = held(&s);
                if matches!(i, Input::Start(_) | Input::Restart(_) | Input::Stop(_)) {
                    asked.push(NEW);
                }
                for r in &asked {
                    let n = replies.iter().filter(|x| *x == r).count()
                        + held(&next).iter().filter(|x| *x == r).count();
                    assert_eq!(n, 1, "requester {r} at {at}: {}", outcome(&s, &i, e));
                }
                assert!(replies.iter().all(|r| asked.contains(r)), "{at}");
                // A report about another run changes nothing.
                let stale = matches!(
                    i,
                    Input::Checked { run: STALE, .. }
                        | Input::Exited { run: STALE, .. }
                        | Input::GroupStopped { run: STALE }
                );
                if stale {
                    assert_eq!((&next, fx.len()), (&s, 0), "{at}");
                }
                // Only a pid that runs is signalled, and a process that runs is never "ended".
                for f in &fx {
                    if let Effect::StopGroup { pid, .. } = f {
                        assert_eq!(live_pid(&s), Some(*pid), "{at}");
                    }
                    if let Effect::Spawn { run } = f {
                        assert!(!e.shutting_down, "{at}");
                        assert!(
                            matches!(next, State::Starting { run: r, .. } if r.n == *run),
                            "{at}"
                        );
                        assert_eq!(*run, s.run().map_or(1, |r| r.n + 1), "{at}");
                    }
                    if let Effect::Verify { .. } = f {
                        assert!(e.verifier && !e.shutting_down, "{at}");
                    }
                }
                if next.is_ended() {
                    assert_eq!(live_pid(&next), None, "{at}");
                }
                // A new run starts only on a launch or a user's request, never by itself.
                if next.run().map(|r| r.n) != s.run().map(|r| r.n) {
                    assert!(
                        matches!(
                            i,
                            Input::Launch
                                | Input::Start(_)
                                | Input::Restart(_)
                                | Input::GroupStopped { .. }
                        ),
                        "{at}"
                    );
                }
            }
        }
    }
}

#[test]
fn shutting_down_refuses_requests_and_spawns_nothing() {
    let down = Env {
        shutting_down: true,
        ..env()
    };
    for (sn, s) in states() {
        for i in [Input::Start(NEW), Input::Restart(NEW), Input::Stop(NEW)] {
            let (next, fx) = step(s.clone(), i, &down);
            assert_eq!(next, s, "{sn}");
            assert_eq!(
                fx,
                [Effect::Reply {
                    to: NEW,
                    answer: Answer::ShuttingDown
                }],
                "{sn}"
            );
        }
        let (_, fx) = step(s.clone(), Input::Launch, &down);
        assert!(fx.is_empty(), "{sn}");
    }
    // A spawn that completes during the shutdown is stopped with the rest, unverified.
    let (next, fx) = step(
        State::Starting {
            run: run(),
            waiter: waiter(Op::Start),
        },
        Input::Spawned { pid: 7 },
        &down,
    );
    assert_eq!(
        show(&next),
        "stopping(#2 pid 7 cancelled then shutdown)",
        "{}",
        show_effects(&fx)
    );
    assert_eq!(show_effects(&fx), "reply 9 shutting-down");
}

#[test]
fn without_a_verifier_a_spawned_process_is_ready_at_once() {
    let plain = Env {
        verifier: false,
        ..env()
    };
    let (next, fx) = step(
        State::Starting {
            run: run(),
            waiter: waiter(Op::Restart),
        },
        Input::Spawned { pid: 7 },
        &plain,
    );
    assert_eq!(show(&next), "running(#2 pid 7)");
    assert_eq!(show_effects(&fx), "reply 9 done");
}

#[test]
fn ended_means_nothing_runs() {
    for (sn, s) in states() {
        if s.is_ended() {
            assert_eq!(live_pid(&s), None, "{sn}");
            assert!(held(&s).is_empty(), "{sn}");
        }
    }
    let alive_but_failed = State::Failed {
        run: run(),
        why: Failure::Verify("x".into()),
        proc: Some(alive()),
    };
    assert!(!alive_but_failed.is_ended());
}

#[test]
fn exits_read_as_people_write_them() {
    assert_eq!(Exit::Code(3).to_string(), "exited with code 3");
    assert_eq!(Exit::Signal(15).to_string(), "killed by SIGTERM");
    assert_eq!(Exit::Signal(9).to_string(), "killed by SIGKILL");
    assert_eq!(Exit::Signal(99).to_string(), "killed by signal 99");
    assert_eq!(Exit::Signal(15).legacy_code(), -15);
    assert_eq!(Exit::Code(3).legacy_code(), 3);
}
