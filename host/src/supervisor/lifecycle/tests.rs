//! Every state against every input, without a process.
//!
//! Two tables are the specification, one line per (state, input) pair with the state and
//! effects that follow, in a short notation ([`show`]): `transitions.txt` for a process
//! with the original's rules (a verifier, restart policy `never`, no liveness check), and
//! `recovery.txt` for one with policy `on-failure` and a liveness check. The tests run
//! [`step`] on every pair of [`states`] × [`inputs`] and compare; a pair missing from a
//! table, or one a table has and the samples do not, fails too. Beside them, [`invariants`]
//! checks properties that must hold for every pair whatever the tables say, also while
//! shutting down, without a verifier, and under the policy `always`.

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
/// "Now" in every step: 50 s after the epoch.
const NOW: u64 = 50;

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// The current run: the second start, one failure in a row before it.
fn run() -> Run {
    Run {
        n: N,
        at: t(2),
        streak: 1,
        previous: Some(Exit::Code(1)),
    }
}

/// The original's rules: a verifier, never restarted, no liveness check.
fn plain() -> Env {
    Env {
        now: t(NOW),
        rules: Rules {
            verifier: true,
            ..Rules::default()
        },
        shutting_down: false,
    }
}

/// Restarted on failure (1 s, 2 s, … at most 4 s; at most 2 in a row), checked every 10 s,
/// unhealthy after 2 failed checks in a row; stopped with SIGINT, 2 s before SIGKILL.
fn recovering() -> Env {
    Env {
        now: t(NOW),
        rules: Rules {
            verifier: true,
            restart: Restart {
                policy: Policy::OnFailure,
                backoff: Duration::from_secs(1),
                max_backoff: Duration::from_secs(4),
                max_restarts: 2,
            },
            liveness: Some(Liveness {
                period: Duration::from_secs(10),
                failures: 2,
            }),
            stop: StopRule {
                signal: nix::sys::signal::Signal::SIGINT,
                grace: Duration::from_secs(2),
                shutdown_grace: Duration::from_secs(2),
            },
        },
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
#[rustfmt::skip]
fn states() -> Vec<(&'static str, State)> {
    let verify = || Failure::Verify("bad".into());
    let running = |since: u64, misses: u32| State::Running { run: run(), pid: PID, since: t(since), misses };
    vec![
        ("pending", State::Pending),
        ("starting", State::Starting { run: run(), waiter: None }),
        ("starting+user", State::Starting { run: run(), waiter: waiter(Op::Start) }),
        ("verifying", State::Verifying { run: run(), proc: alive(), waiter: None }),
        ("verifying+user", State::Verifying { run: run(), proc: alive(), waiter: waiter(Op::Restart) }),
        ("verifying-exited", State::Verifying { run: run(), proc: ended(), waiter: None }),
        ("running", running(45, 0)),
        ("running-missed", running(45, 1)),
        ("running-long", running(5, 0)),
        ("running-last-chance", State::Running { run: Run { streak: 2, ..run() }, pid: PID, since: t(45), misses: 0 }),
        ("unhealthy", State::Unhealthy { run: run(), pid: PID, misses: 2, reason: "down".into() }),
        ("stopping-stop", State::Stopping { run: run(), proc: alive(), verdict: Verdict::Passed, then: Then::Stop(WAITING) }),
        ("stopping-restart", State::Stopping { run: run(), proc: alive(), verdict: Verdict::Passed, then: Then::Restart(WAITING) }),
        ("stopping-retry", State::Stopping { run: run(), proc: alive(), verdict: Verdict::Failed("bad".into()), then: Then::Retry(verify()) }),
        ("stopping-shutdown", State::Stopping { run: run(), proc: alive(), verdict: Verdict::Cancelled, then: Then::Shutdown }),
        ("stopping-stop-exited", State::Stopping { run: run(), proc: ended(), verdict: Verdict::Passed, then: Then::Stop(WAITING) }),
        ("stopped-never", State::Stopped { run: None, exit: None, verdict: Verdict::Pending }),
        ("stopped", State::Stopped { run: Some(run()), exit: Some(Exit::Signal(15)), verdict: Verdict::Passed }),
        ("stopped-unreported", State::Stopped { run: Some(run()), exit: None, verdict: Verdict::Passed }),
        ("exited", State::Exited { run: run(), exit: Exit::Code(0) }),
        ("backing-off", State::BackingOff { run: run(), proc: Some(ended()), why: Failure::Exit(Exit::Code(1)), until: t(51) }),
        ("failed-spawn", State::Failed { run: run(), why: Failure::Spawn("no".into()), proc: None }),
        ("failed-alive", State::Failed { run: run(), why: verify(), proc: Some(alive()) }),
        ("failed-ended", State::Failed { run: run(), why: verify(), proc: Some(ended()) }),
        ("gave-up", State::Failed { run: run(), why: Failure::GaveUp(2, Box::new(Failure::Exit(Exit::Code(1)))), proc: Some(ended()) }),
    ]
}

/// Every input, about the current run and (where it names one) a stale run.
#[rustfmt::skip]
fn inputs() -> Vec<(&'static str, Input)> {
    vec![
        ("launch", Input::Launch),
        ("start", Input::Start(NEW)),
        ("restart", Input::Restart(NEW)),
        ("stop", Input::Stop(NEW)),
        ("spawned", Input::Spawned { pid: 200 }),
        ("spawn-failed", Input::SpawnFailed { reason: "no".into() }),
        ("passed", Input::Checked { run: N, result: Ok(()) }),
        ("failed", Input::Checked { run: N, result: Err("bad".into()) }),
        ("passed-stale", Input::Checked { run: STALE, result: Ok(()) }),
        ("alive", Input::Probed { run: N, result: Ok(()) }),
        ("dead", Input::Probed { run: N, result: Err("down".into()) }),
        ("alive-stale", Input::Probed { run: STALE, result: Ok(()) }),
        ("exited", Input::Exited { run: N, exit: Exit::Signal(9) }),
        ("exited-ok", Input::Exited { run: N, exit: Exit::Code(0) }),
        ("exited-stale", Input::Exited { run: STALE, exit: Exit::Signal(9) }),
        ("group-stopped", Input::GroupStopped { run: N }),
        ("group-stopped-stale", Input::GroupStopped { run: STALE }),
        ("retry", Input::Retry { run: N }),
        ("retry-stale", Input::Retry { run: STALE }),
        ("shutdown", Input::Shutdown),
        ("teardown", Input::Teardown { grace: Duration::from_secs(3) }),
    ]
}

/// A state in a few words: `stage(run, pid or exit, waiter or what follows)`. A run is
/// `#n` with `/k` when it follows k failures in a row.
fn show(s: &State) -> String {
    let run = |r: &Run| {
        let mut out = format!("#{}", r.n);
        if r.streak > 0 {
            out.push_str(&format!("/{}", r.streak));
        }
        out
    };
    let proc = |p: &Proc| match p.exit {
        None => format!("pid {}", p.pid),
        Some(e) => format!("pid {} {}", p.pid, exit(e)),
    };
    let waiter = |w: &Option<Waiter>| match w {
        None => String::new(),
        Some(w) => format!(" for {}:{}", w.op.as_str(), w.reply),
    };
    let secs = |at: &SystemTime| at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
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
        State::Running {
            run: r,
            pid,
            since,
            misses,
        } => {
            format!(
                "running({} pid {pid} since {} missed {misses})",
                run(r),
                secs(since)
            )
        }
        State::Unhealthy {
            run: r,
            pid,
            misses,
            reason,
        } => {
            format!("unhealthy({} pid {pid} missed {misses}: {reason})", run(r))
        }
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
        State::BackingOff {
            run: r,
            proc: p,
            why,
            until,
        } => format!(
            "backing-off({} {} {} until {})",
            run(r),
            p.as_ref().map_or("-".into(), proc),
            failure(why),
            secs(until)
        ),
        State::Failed {
            run: r,
            why,
            proc: p,
        } => format!(
            "failed({} {} {})",
            run(r),
            failure(why),
            p.as_ref().map_or("-".into(), proc)
        ),
    }
}

fn failure(f: &Failure) -> String {
    match f {
        Failure::Spawn(m) => format!("spawn:{m}"),
        Failure::Verify(m) => format!("verify:{m}"),
        Failure::Exit(e) => format!("exit:{}", exit(*e)),
        Failure::Unhealthy(m) => format!("unhealthy:{m}"),
        Failure::GaveUp(n, last) => format!("gave-up-after-{n}:{}", failure(last)),
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
        Then::Retry(why) => format!("retry:{}", failure(why)),
        Then::Shutdown => "shutdown".into(),
    }
}

/// Effects in a few words, `;`-separated; `-` for none.
fn show_effects(fx: &[Effect]) -> String {
    if fx.is_empty() {
        return "-".into();
    }
    let secs = |at: &SystemTime| at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    fx.iter()
        .map(|e| match e {
            Effect::Spawn { run } => format!("spawn #{run}"),
            Effect::Verify { run } => format!("verify #{run}"),
            Effect::CancelVerify => "cancel-verify".into(),
            Effect::Probe { run, at } => format!("probe #{run} at {}", secs(at)),
            Effect::Wake { run, at } => format!("wake #{run} at {}", secs(at)),
            Effect::CancelTimer => "cancel-timer".into(),
            Effect::StopGroup {
                run,
                pid,
                signal,
                grace,
                leftovers,
            } => format!(
                "stop-group #{run} pid {pid} {} {}s{}",
                signal.as_str(),
                grace.as_secs(),
                match leftovers {
                    Leftovers::Kill => "",
                    Leftovers::ToShutdown => " rest to the shutdown",
                }
            ),
            Effect::Reply { to, answer } => format!(
                "reply {to} {}",
                match answer {
                    Answer::Done => "done".into(),
                    Answer::Busy(op) => format!("busy:{op}"),
                    Answer::ShuttingDown => "shutting-down".into(),
                    Answer::Failed(m) => format!("failed:{m}"),
                    Answer::Cancelled(op) => format!("cancelled:{op}"),
                }
            ),
            Effect::Note(Note::Exited(e)) => format!("note {}", exit(*e)),
            Effect::Note(Note::Verified) => "note verified".into(),
            Effect::Note(Note::VerifyFailed(m)) => format!("note verify-failed:{m}"),
            Effect::Note(Note::Restarting {
                why,
                delay,
                attempt,
            }) => {
                format!(
                    "note restarting:{} in {}s #{attempt}",
                    failure(why),
                    delay.as_secs()
                )
            }
            Effect::Note(Note::GaveUp(why)) => format!("note {}", failure(why)),
            Effect::Note(Note::Unhealthy(m)) => format!("note unhealthy:{m}"),
            Effect::Note(Note::Healthy) => "note healthy".into(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn outcome(state: &State, input: &Input, env: &Env) -> String {
    let (next, fx) = step(state.clone(), input.clone(), env);
    format!("{} | {}", show(&next), show_effects(&fx))
}

/// Compares `step` on every sample pair under `env` with a table (`state | input | next
/// state | effects` per line, `#` comments).
fn check_table(table: &str, env: &Env) {
    let mut want: std::collections::BTreeMap<(String, String), String> = Default::default();
    for line in table
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
            let got = outcome(&s, &i, env);
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

#[test]
fn with_the_originals_rules_every_pair_does_what_the_table_says() {
    check_table(include_str!("transitions.txt"), &plain());
}

#[test]
fn with_a_restart_policy_and_a_liveness_check_every_pair_does_what_the_table_says() {
    check_table(include_str!("recovery.txt"), &recovering());
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

/// Every environment the invariants are checked in.
fn environments() -> Vec<Env> {
    let mut out = Vec::new();
    for base in [plain(), recovering()] {
        out.push(base);
        out.push(Env {
            rules: Rules {
                verifier: false,
                ..base.rules
            },
            ..base
        });
        out.push(Env {
            shutting_down: true,
            ..base
        });
    }
    let mut always = recovering();
    always.rules.restart.policy = Policy::Always;
    out.push(always);
    out
}

#[test]
fn invariants() {
    for e in &environments() {
        for (sn, s) in states() {
            for (inn, i) in inputs() {
                let (next, fx) = step(s.clone(), i.clone(), e);
                let at = format!("{sn} | {inn} ({e:?})");
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
                        | Input::Probed { run: STALE, .. }
                        | Input::Exited { run: STALE, .. }
                        | Input::GroupStopped { run: STALE }
                        | Input::Retry { run: STALE }
                );
                if stale {
                    assert_eq!((&next, fx.len()), (&s, 0), "{at}");
                }
                for f in &fx {
                    // Only a pid that runs is signalled.
                    if let Effect::StopGroup { pid, .. } = f {
                        assert_eq!(s.live_pid(), Some(*pid), "{at}");
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
                        assert!(e.rules.verifier && !e.shutting_down, "{at}");
                    }
                    // Timers only for what the rules ask, never while shutting down.
                    if let Effect::Probe { .. } = f {
                        assert!(e.rules.liveness.is_some() && !e.shutting_down, "{at}");
                    }
                    if let Effect::Wake { .. } = f {
                        assert!(
                            e.rules.restart.policy != Policy::Never && !e.shutting_down,
                            "{at}"
                        );
                        assert!(matches!(next, State::BackingOff { .. }), "{at}");
                    }
                }
                // A process that runs is never "ended"; one waiting to restart neither.
                if next.is_ended() {
                    assert_eq!(next.live_pid(), None, "{at}");
                    assert!(!matches!(next, State::BackingOff { .. }), "{at}");
                }
                // Under `never`, nothing starts by itself.
                if e.rules.restart.policy == Policy::Never {
                    if !matches!(s, State::BackingOff { .. }) {
                        assert!(!matches!(next, State::BackingOff { .. }), "{at}");
                    }
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
                // A restart policy never fights a user: a user's stop, unless refused,
                // ends in stopped or on its way there, whatever the policy.
                if let Input::Stop(_) = i {
                    let refused = fx.iter().any(|f| {
                        matches!(
                            f,
                            Effect::Reply {
                                to: NEW,
                                answer: Answer::Busy(_) | Answer::ShuttingDown
                            }
                        )
                    });
                    if !refused {
                        assert!(
                            matches!(
                                next,
                                State::Stopped { .. }
                                    | State::Stopping {
                                        then: Then::Stop(NEW),
                                        ..
                                    }
                            ),
                            "{at}: {}",
                            outcome(&s, &i, e)
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn shutting_down_refuses_requests_and_spawns_nothing() {
    for base in [plain(), recovering()] {
        let down = Env {
            shutting_down: true,
            ..base
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
    }
    // A spawn that completes during the shutdown is stopped with the rest, unverified.
    let down = Env {
        shutting_down: true,
        ..plain()
    };
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
        "stopping(#2/1 pid 7 cancelled then shutdown)",
        "{}",
        show_effects(&fx)
    );
    assert_eq!(show_effects(&fx), "reply 9 shutting-down");
}

#[test]
fn a_teardown_stops_whatever_runs_with_the_shutdowns_grace_as_a_stop_does() {
    let grace = Duration::from_secs(3);
    for e in &environments() {
        let down = Env {
            shutting_down: true,
            ..*e
        };
        for (sn, s) in states() {
            let (next, fx) = step(s.clone(), Input::Teardown { grace }, &down);
            let stops: Vec<&Effect> = fx
                .iter()
                .filter(|f| matches!(f, Effect::StopGroup { .. }))
                .collect();
            match s.live_pid() {
                Some(pid) => {
                    let stop = Effect::StopGroup {
                        run: N,
                        pid,
                        signal: e.rules.stop.signal,
                        grace,
                        leftovers: Leftovers::ToShutdown,
                    };
                    assert_eq!(stops, [&stop], "{sn}");
                    assert!(matches!(next, State::Stopping { .. }), "{sn}");
                }
                None => assert!(stops.is_empty(), "{sn}"),
            }
            // Besides the stop, a teardown is the shutdown: the same state follows.
            let (shut, _) = step(s.clone(), Input::Shutdown, &down);
            assert_eq!(next, shut, "{sn}");
        }
    }
}

#[test]
fn without_a_verifier_a_spawned_process_is_ready_at_once() {
    let mut plain_no_verifier = plain();
    plain_no_verifier.rules.verifier = false;
    let (next, fx) = step(
        State::Starting {
            run: run(),
            waiter: waiter(Op::Restart),
        },
        Input::Spawned { pid: 7 },
        &plain_no_verifier,
    );
    assert_eq!(show(&next), "running(#2/1 pid 7 since 50 missed 0)");
    assert_eq!(show_effects(&fx), "reply 9 done");
}

#[test]
fn backoff_doubles_up_to_its_bound_and_the_policy_gives_up_after_max_restarts() {
    let mut e = recovering();
    e.rules.restart.max_restarts = 10;
    let r = e.rules.restart;
    let delays: Vec<u64> = (1..=6).map(|a| r.delay(a).as_secs()).collect();
    assert_eq!(delays, [1, 2, 4, 4, 4, 4]);
    // A process that exits at once, again and again: each restart waits longer, and the
    // eleventh failure in a row is the last.
    let mut state = State::Running {
        run: Run { streak: 0, ..run() },
        pid: PID,
        since: t(NOW),
        misses: 0,
    };
    let mut waits = Vec::new();
    for _ in 0..20 {
        let n = state.run().unwrap().n;
        let (next, fx) = step(
            state,
            Input::Exited {
                run: n,
                exit: Exit::Code(1),
            },
            &e,
        );
        match &next {
            State::BackingOff { until, .. } => {
                waits.push(until.duration_since(t(NOW)).unwrap().as_secs());
                let (starting, _) = step(next, Input::Retry { run: n }, &e);
                let (running, _) = step(starting, Input::Spawned { pid: PID }, &e);
                let n = running.run().unwrap().n;
                let (verified, _) = step(
                    running,
                    Input::Checked {
                        run: n,
                        result: Ok(()),
                    },
                    &e,
                );
                state = verified;
            }
            State::Failed { why, .. } => {
                assert_eq!(failure(why), "gave-up-after-10:exit:code 1");
                assert!(fx.contains(&Effect::Note(Note::GaveUp(why.clone()))));
                state = next;
                break;
            }
            other => panic!("{}", show(other)),
        }
    }
    assert_eq!(waits, [1, 2, 4, 4, 4, 4, 4, 4, 4, 4]);
    assert!(matches!(state, State::Failed { .. }));
    assert!(state.is_ended());
}

#[test]
fn ended_means_nothing_runs() {
    for (sn, s) in states() {
        if s.is_ended() {
            assert_eq!(s.live_pid(), None, "{sn}");
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
    assert_eq!(
        Failure::GaveUp(3, Box::new(Failure::Exit(Exit::Code(1)))).to_string(),
        "gave up after 3 restarts in a row: exited with code 1"
    );
}
