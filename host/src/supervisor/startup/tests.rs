//! The start-up against hand-made states: order, conditions, failures and their reach.

use std::time::SystemTime;

use super::*;
use crate::supervisor::lifecycle::{Proc, Run, Verdict};

fn run() -> Run {
    Run {
        n: 1,
        at: SystemTime::UNIX_EPOCH,
        streak: 0,
        previous: None,
    }
}

fn verifying() -> State {
    State::Verifying {
        run: run(),
        proc: Proc { pid: 1, exit: None },
        waiter: None,
    }
}

fn running() -> State {
    State::Running {
        run: run(),
        pid: 1,
        since: SystemTime::UNIX_EPOCH,
        misses: 0,
    }
}

fn exited(code: i32) -> State {
    State::Exited {
        run: run(),
        exit: Exit::Code(code),
    }
}

fn failed() -> State {
    State::Failed {
        run: run(),
        why: Failure::Verify("no".into()),
        proc: None,
    }
}

fn dep(on: usize, condition: Condition) -> Dependency {
    Dependency { on, condition }
}

#[test]
fn ordered_each_process_waits_for_the_one_before_it() {
    let mut s = Startup::new(Mode::Ordered, vec![vec![], vec![]]);
    let (p, v, r) = (State::Pending, verifying(), running());
    assert_eq!(s.next(&[&p, &p]), Next::Launch(0));
    assert!(s.waits_on(0));
    assert_eq!(s.next(&[&v, &p]), Next::Wait);
    assert_eq!(
        s.waiting_for(1, &[&v, &p]),
        vec![dep(0, Condition::Verified)]
    );
    assert_eq!(s.next(&[&r, &p]), Next::Launch(1));
    assert_eq!(s.next(&[&r, &v]), Next::Wait);
    // A process that ended after it was verified counts as verified.
    assert_eq!(s.next(&[&r, &exited(0)]), Next::Ready);
    assert!(s.is_over() && !s.waits_on(0));
    assert_eq!(s.next(&[&r, &r]), Next::Wait);
}

#[test]
fn in_an_ordered_start_up_depends_on_adds_waits() {
    // b also waits for a to have exited with code 0.
    let mut s = Startup::new(
        Mode::Ordered,
        vec![vec![], vec![dep(0, Condition::ExitedOk)]],
    );
    let p = State::Pending;
    assert_eq!(s.next(&[&p, &p]), Next::Launch(0));
    assert_eq!(s.next(&[&running(), &p]), Next::Wait);
    assert_eq!(s.next(&[&exited(0), &p]), Next::Launch(1));
}

#[test]
fn a_failure_of_a_launched_process_ends_it_and_a_stop_does_not() {
    let mut s = Startup::new(Mode::Ordered, vec![vec![], vec![]]);
    let p = State::Pending;
    let stopped = State::Stopped {
        run: Some(run()),
        exit: None,
        verdict: Verdict::Cancelled,
    };
    assert_eq!(s.next(&[&p, &p]), Next::Launch(0));
    // Stopped by a user while verifying: start-up waits for it to be started again.
    assert_eq!(s.next(&[&stopped, &p]), Next::Wait);
    assert_eq!(s.next(&[&failed(), &p]), Next::Failed(0));
    assert_eq!(s.next(&[&failed(), &p]), Next::Wait);
}

#[test]
fn parallel_starts_what_it_can_at_once_and_each_when_its_conditions_hold() {
    // db; migrate needs db verified; api needs migrate exited_ok and db started; web free.
    let deps = vec![
        vec![],
        vec![dep(0, Condition::Verified)],
        vec![dep(1, Condition::ExitedOk), dep(0, Condition::Started)],
        vec![],
    ];
    let mut s = Startup::new(Mode::Parallel, deps);
    let p = State::Pending;
    assert_eq!(s.next(&[&p, &p, &p, &p]), Next::Launch(0));
    assert_eq!(s.next(&[&verifying(), &p, &p, &p]), Next::Launch(3));
    assert_eq!(s.next(&[&verifying(), &p, &p, &verifying()]), Next::Wait);
    assert_eq!(
        s.waiting_for(2, &[&verifying(), &p, &p, &p]),
        vec![dep(1, Condition::ExitedOk)]
    );
    let db = running();
    assert_eq!(s.next(&[&db, &p, &p, &running()]), Next::Launch(1));
    assert_eq!(s.next(&[&db, &running(), &p, &running()]), Next::Wait);
    assert_eq!(s.next(&[&db, &exited(0), &p, &running()]), Next::Launch(2));
    assert_eq!(
        s.next(&[&db, &exited(0), &verifying(), &running()]),
        Next::Wait
    );
    assert_eq!(
        s.next(&[&db, &exited(0), &running(), &running()]),
        Next::Ready
    );
}

#[test]
fn a_dependency_that_can_never_hold_blocks_its_dependent_unless_it_waits_for_an_end() {
    let p = State::Pending;
    // api needs migrate to exit 0; it exited 3.
    let mut s = Startup::new(
        Mode::Parallel,
        vec![vec![], vec![dep(0, Condition::ExitedOk)]],
    );
    assert_eq!(s.next(&[&p, &p]), Next::Launch(0));
    assert_eq!(
        s.next(&[&exited(3), &p]),
        Next::Blocked {
            idx: 1,
            on: 0,
            condition: Condition::ExitedOk,
            why: "exited with code 3".into()
        }
    );

    // cleanup waits for tests to have ended, however: the failure of tests is excused.
    let mut s = Startup::new(
        Mode::Parallel,
        vec![vec![], vec![dep(0, Condition::Exited)]],
    );
    assert_eq!(s.next(&[&p, &p]), Next::Launch(0));
    assert_eq!(s.next(&[&failed(), &p]), Next::Launch(1));
    assert_eq!(s.next(&[&failed(), &exited(0)]), Next::Ready);

    // A failed process nobody waits for fails the start-up, as in the original.
    let mut s = Startup::new(Mode::Parallel, vec![vec![], vec![]]);
    assert_eq!(s.next(&[&p, &p]), Next::Launch(0));
    assert_eq!(s.next(&[&failed(), &p]), Next::Failed(0));
}

#[test]
fn conditions_read_the_state() {
    let backing_off = State::BackingOff {
        run: run(),
        proc: Some(Proc {
            pid: 1,
            exit: Some(Exit::Code(1)),
        }),
        why: Failure::Exit(Exit::Code(1)),
        until: SystemTime::UNIX_EPOCH,
    };
    assert_eq!(holds(Condition::Started, &State::Pending), Holds::NotYet);
    assert_eq!(holds(Condition::Started, &verifying()), Holds::Yes);
    assert_eq!(holds(Condition::Started, &backing_off), Holds::Yes);
    assert_eq!(holds(Condition::Verified, &verifying()), Holds::NotYet);
    assert_eq!(holds(Condition::Verified, &running()), Holds::Yes);
    // A restart is coming: not failed yet.
    assert_eq!(holds(Condition::ExitedOk, &backing_off), Holds::NotYet);
    assert_eq!(holds(Condition::Exited, &running()), Holds::NotYet);
    assert_eq!(holds(Condition::Exited, &exited(4)), Holds::Yes);
    assert_eq!(holds(Condition::ExitedOk, &exited(0)), Holds::Yes);
    assert_eq!(
        holds(Condition::Verified, &failed()),
        Holds::Never("failed: verification failed: no".into())
    );
    assert_eq!(holds(Condition::Exited, &failed()), Holds::Yes);
    let spawn_failed = State::Failed {
        run: run(),
        why: Failure::Spawn("cannot run x: command not found".into()),
        proc: None,
    };
    assert_eq!(
        holds(Condition::Started, &spawn_failed),
        Holds::Never("could not be started: cannot run x: command not found".into())
    );
}
