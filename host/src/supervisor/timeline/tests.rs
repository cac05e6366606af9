use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::supervisor::lifecycle::{Exit, Failure, Proc, Run};

fn s(secs: f64) -> Duration {
    Duration::from_secs_f64(secs)
}

fn dep(on: usize, condition: Condition) -> Dependency {
    Dependency { on, condition }
}

/// A timeline of processes `(name, dependencies, runs)`, ready at `ready`.
fn timeline(
    processes: Vec<(&str, Vec<Dependency>, Vec<RunTimes>)>,
    ready: Option<f64>,
) -> Timeline {
    let (names, deps): (Vec<String>, Vec<Vec<Dependency>>) = processes
        .iter()
        .map(|(n, d, _)| (n.to_string(), d.clone()))
        .unzip();
    let mut t = Timeline::starting_at(Instant::now(), SystemTime::UNIX_EPOCH, names, deps);
    for (p, (_, _, runs)) in t.processes.iter_mut().zip(processes) {
        p.runs = runs;
    }
    t.ready = ready.map(s);
    t
}

/// One run: spawned, verified, ended (each optional).
fn run(spawned: f64, verified: Option<f64>, ended: Option<f64>) -> RunTimes {
    RunTimes {
        run: 1,
        spawned: Some(s(spawned)),
        verified: verified.map(s),
        failed: None,
        ended: ended.map(s),
    }
}

fn links(t: &Timeline) -> Vec<(String, String)> {
    t.critical_chain()
        .unwrap()
        .iter()
        .map(|l| (l.name.clone(), seconds(l.took)))
        .collect()
}

#[test]
fn an_ordered_start_up_is_one_chain_through_every_process() {
    // What an ordered start-up's dependencies are: each process on the one before.
    let t = timeline(
        vec![
            ("db", vec![], vec![run(0.0, Some(1.40), None)]),
            (
                "migrate",
                vec![dep(0, Condition::Verified)],
                vec![run(1.41, Some(2.02), Some(2.5))],
            ),
            (
                "api",
                vec![dep(1, Condition::Verified)],
                vec![run(2.03, Some(3.21), None)],
            ),
        ],
        Some(3.21),
    );
    assert_eq!(
        t.summary().unwrap(),
        "ready in 3.21 s — critical chain: db 1.40 s → migrate 0.62 s → api 1.19 s"
    );
    let chain = t.critical_chain().unwrap();
    assert_eq!(chain.iter().map(|l| l.took).sum::<Duration>(), s(3.21));
    assert_eq!(chain[1].at, s(2.02));
}

#[test]
fn counted_from_pymanager_s_start_the_set_up_is_a_link_when_it_took_long() {
    let t = timeline(
        vec![
            ("db", vec![], vec![run(0.0, Some(1.40), None)]),
            (
                "api",
                vec![dep(0, Condition::Verified)],
                vec![run(1.41, Some(3.21), None)],
            ),
        ],
        Some(3.21),
    );
    let origin = t.origin;
    assert_eq!(
        t.summary_from(origin - s(2.0)).unwrap(),
        "ready in 5.21 s — critical chain: set-up 2.00 s → db 1.40 s → api 1.81 s"
    );
    // A few milliseconds of set-up are not worth a link.
    assert_eq!(
        t.summary_from(origin - s(0.01)).unwrap(),
        "ready in 3.22 s — critical chain: db 1.40 s → api 1.81 s"
    );
    assert_eq!(t.summary_from(origin), t.summary());
}

#[test]
fn a_parallel_start_up_follows_the_dependency_that_held_last() {
    let t = timeline(
        vec![
            ("db", vec![], vec![run(0.01, Some(1.40), None)]),
            ("cache", vec![], vec![run(0.01, Some(0.50), None)]),
            (
                "migrate",
                vec![dep(0, Condition::Verified)],
                vec![run(1.41, Some(1.41), Some(2.02))],
            ),
            (
                "api",
                vec![
                    dep(1, Condition::Verified),
                    dep(0, Condition::Verified),
                    dep(2, Condition::ExitedOk),
                ],
                vec![run(2.03, Some(3.21), None)],
            ),
            // Ready before api, off the chain.
            (
                "worker",
                vec![dep(0, Condition::Verified)],
                vec![run(1.41, Some(1.45), None)],
            ),
        ],
        Some(3.22),
    );
    assert_eq!(
        links(&t),
        [
            ("db".into(), "1.40 s".into()),
            ("migrate".into(), "0.62 s".into()),
            ("api".into(), "1.19 s".into())
        ]
    );
    assert_eq!(
        t.summary().unwrap(),
        "ready in 3.22 s — critical chain: db 1.40 s → migrate 0.62 s → api 1.19 s"
    );
}

#[test]
fn the_slowest_independent_process_is_a_chain_of_its_own() {
    let t = timeline(
        vec![
            ("db", vec![], vec![run(0.0, Some(1.0), None)]),
            (
                "api",
                vec![dep(0, Condition::Started)],
                vec![run(0.02, Some(2.0), None)],
            ),
            ("search", vec![], vec![run(0.0, Some(4.5), None)]),
        ],
        Some(4.5),
    );
    assert_eq!(
        t.summary().unwrap(),
        "ready in 4.50 s — critical chain: search 4.50 s"
    );
    // `started`: api waited for db's spawn only, not its verification.
    let t = timeline(
        vec![
            ("db", vec![], vec![run(0.0, Some(3.0), None)]),
            (
                "api",
                vec![dep(0, Condition::Started)],
                vec![run(0.02, Some(4.0), None)],
            ),
        ],
        Some(4.0),
    );
    assert_eq!(
        links(&t),
        [
            ("db".into(), "0.00 s".into()),
            ("api".into(), "4.00 s".into())
        ]
    );
}

#[test]
fn a_restart_during_the_start_up_counts_from_the_start_and_ends_at_the_run_that_passed() {
    let failed = RunTimes {
        run: 1,
        spawned: Some(s(0.0)),
        verified: None,
        failed: Some(s(0.5)),
        ended: Some(s(0.5)),
    };
    let retried = RunTimes {
        run: 2,
        ..run(1.5, Some(2.0), None)
    };
    let t = timeline(
        vec![
            ("db", vec![], vec![failed, retried]),
            (
                "api",
                vec![dep(0, Condition::Verified)],
                vec![run(2.01, Some(2.5), None)],
            ),
        ],
        Some(2.5),
    );
    assert_eq!(
        links(&t),
        [
            ("db".into(), "2.00 s".into()),
            ("api".into(), "0.50 s".into())
        ]
    );
}

#[test]
fn nothing_is_summed_up_before_the_start_up_is_ready() {
    let t = timeline(vec![("db", vec![], vec![run(0.0, None, None)])], None);
    assert_eq!(t.critical_chain(), None);
    assert_eq!(t.summary(), None);
}

#[test]
fn a_long_chain_folds_its_middle() {
    let n = 20;
    let processes = (0..n)
        .map(|i| {
            let deps = if i == 0 {
                vec![]
            } else {
                vec![dep(i - 1, Condition::Verified)]
            };
            let name: &str = Box::leak(format!("p{i}").into_boxed_str());
            (name, deps, vec![run(i as f64, Some(i as f64 + 1.0), None)])
        })
        .collect();
    let t = timeline(processes, Some(n as f64));
    assert_eq!(t.critical_chain().unwrap().len(), n);
    assert_eq!(
        t.summary().unwrap(),
        "ready in 20.00 s — critical chain: p0 1.00 s → p1 1.00 s → p2 1.00 s → p3 1.00 s → \
         … 13 more 13.00 s … → p17 1.00 s → p18 1.00 s → p19 1.00 s"
    );
}

fn at(n: u32) -> Run {
    Run {
        n,
        at: SystemTime::UNIX_EPOCH,
        streak: 0,
        previous: None,
    }
}

#[test]
fn each_step_is_stamped_the_first_time_a_state_shows_it() {
    let mut t = Timeline::starting_at(
        Instant::now(),
        SystemTime::UNIX_EPOCH,
        vec!["db".into(), "api".into()],
        vec![vec![], vec![dep(0, Condition::Verified)]],
    );
    assert_eq!(t.processes[0].waiting, None);
    assert_eq!(t.processes[1].waiting, Some(Duration::ZERO));
    t.observe_at(0, &State::Pending, s(0.0));
    assert!(t.processes[0].runs.is_empty());
    t.observe_at(
        0,
        &State::Starting {
            run: at(1),
            waiter: None,
        },
        s(0.1),
    );
    let verifying = State::Verifying {
        run: at(1),
        proc: Proc { pid: 9, exit: None },
        waiter: None,
    };
    t.observe_at(0, &verifying, s(0.2));
    t.observe_at(0, &verifying, s(0.3));
    let running = State::Running {
        run: at(1),
        pid: 9,
        since: SystemTime::UNIX_EPOCH,
        misses: 0,
    };
    t.observe_at(0, &running, s(1.0));
    t.observe_at(
        0,
        &State::Exited {
            run: at(1),
            exit: Exit::Code(0),
        },
        s(2.0),
    );
    assert_eq!(
        t.processes[0].runs,
        [RunTimes {
            run: 1,
            spawned: Some(s(0.2)),
            verified: Some(s(1.0)),
            failed: None,
            ended: Some(s(2.0)),
        }]
    );
    // A run that could not be spawned: failed, never spawned.
    t.observe_at(
        1,
        &State::Failed {
            run: at(1),
            why: Failure::Spawn("no such file".into()),
            proc: None,
        },
        s(3.0),
    );
    assert_eq!(
        t.processes[1].runs,
        [RunTimes {
            run: 1,
            failed: Some(s(3.0)),
            ..RunTimes::default()
        }]
    );
}

#[test]
fn a_process_restarted_many_times_keeps_its_first_run_and_the_latest() {
    let mut t = Timeline::starting_at(
        Instant::now(),
        SystemTime::UNIX_EPOCH,
        vec!["flaky".into()],
        vec![vec![]],
    );
    for n in 1..=1000 {
        t.observe_at(
            0,
            &State::Starting {
                run: at(n),
                waiter: None,
            },
            s(n.into()),
        );
    }
    let runs: Vec<u32> = t.processes[0].runs.iter().map(|r| r.run).collect();
    assert_eq!(runs.len(), MAX_RUNS);
    assert_eq!(runs[0], 1);
    assert_eq!(runs[1], 1000 - MAX_RUNS as u32 + 2);
    assert_eq!(runs[MAX_RUNS - 1], 1000);
}
