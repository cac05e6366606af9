//! The order of a shutdown. In an ordered start-up every process is asked to stop at once,
//! as the original did; in a parallel one, dependents before what they depend on: a
//! process is asked once nothing that depends on it runs any more, so independent branches
//! stop side by side. Either way the whole shutdown is bounded by the largest
//! `graceful_time` (SIGKILL for everything left then), so an order never adds up graces.

use std::borrow::Borrow;

use super::lifecycle::State;
use crate::config::Startup;

/// Which processes have been asked to stop, and who waits for whom.
#[derive(Debug, Clone)]
pub struct Teardown {
    /// `dependents[i]`: the processes that must end before `i` is asked; empty in an ordered
    /// start-up.
    dependents: Vec<Vec<usize>>,
    asked: Vec<bool>,
}

impl Teardown {
    /// The teardown of processes that depend on each other as `deps` says (`deps[i]`: what
    /// `i` depends on).
    pub fn new(mode: Startup, deps: &[Vec<usize>]) -> Teardown {
        let dependents = match mode {
            Startup::Ordered => vec![Vec::new(); deps.len()],
            Startup::Parallel => crate::graph::dependents(deps),
        };
        Teardown {
            asked: vec![false; deps.len()],
            dependents,
        }
    }

    /// The processes to ask to stop now: each that runs, was not asked yet, and has no
    /// dependent that still runs.
    pub fn next<S: Borrow<State>>(&mut self, states: &[S]) -> Vec<usize> {
        let runs = |i: usize| states[i].borrow().live_pid().is_some();
        let mut now = Vec::new();
        for i in 0..self.asked.len() {
            if self.asked[i] || !runs(i) {
                continue;
            }
            if self.dependents[i].iter().all(|&d| !runs(d)) {
                self.asked[i] = true;
                now.push(i);
            }
        }
        now
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::supervisor::lifecycle::{Exit, Run};

    fn running() -> State {
        State::Running {
            run: Run {
                n: 1,
                at: SystemTime::UNIX_EPOCH,
                streak: 0,
                previous: None,
            },
            pid: 1,
            since: SystemTime::UNIX_EPOCH,
            misses: 0,
        }
    }

    fn exited() -> State {
        State::Stopped {
            run: None,
            exit: Some(Exit::Signal(15)),
            verdict: crate::supervisor::lifecycle::Verdict::Passed,
        }
    }

    #[test]
    fn ordered_asks_everything_at_once() {
        let mut t = Teardown::new(Startup::Ordered, &[vec![], vec![0]]);
        let r = running();
        assert_eq!(t.next(&[&r, &r]), [0, 1]);
        assert!(t.next(&[&r, &r]).is_empty());
    }

    #[test]
    fn parallel_asks_dependents_first_and_branches_side_by_side() {
        // db <- api <- web; cache alone.
        let deps = [vec![], vec![0], vec![1], vec![]];
        let mut t = Teardown::new(Startup::Parallel, &deps);
        let (r, x) = (running(), exited());
        assert_eq!(t.next(&[&r, &r, &r, &r]), [2, 3]);
        assert!(t.next(&[&r, &r, &r, &x]).is_empty());
        assert_eq!(t.next(&[&r, &r, &x, &x]), [1]);
        assert_eq!(t.next(&[&r, &x, &x, &x]), [0]);
        // Nothing running: nothing to ask.
        let mut t = Teardown::new(Startup::Parallel, &deps);
        assert!(t.next(&[&x, &x, &x, &x]).is_empty());
    }
}
