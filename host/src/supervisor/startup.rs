//! The start-up sequence, as an observer of the processes' states: in config order, each
//! process starts once the one before it is verified. It holds no state of the processes
//! themselves, only how far it got, so that a user's restart or stop during start-up needs
//! no special case: the sequence goes on when the process it waits for is verified, and
//! fails when that process fails.

use std::borrow::Borrow;

use super::lifecycle::State;

/// How far the start-up got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Startup {
    /// How many processes it has launched.
    launched: usize,
    /// Set once it succeeded or failed.
    over: bool,
}

/// What the start-up asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Launch the process at this index.
    Launch(usize),
    /// Every process is verified: the manager is running.
    Ready,
    /// The process at this index failed, so start-up failed.
    Failed(usize),
    /// Nothing to do until a process changes.
    Wait,
}

impl Startup {
    /// What to do now, given every process's state (in config order).
    pub fn next<S: Borrow<State>>(&mut self, states: &[S]) -> Next {
        if self.over {
            return Next::Wait;
        }
        if let Some(prev) = self.waiting_on() {
            match states[prev].borrow() {
                State::Failed { .. } => {
                    self.over = true;
                    return Next::Failed(prev);
                }
                s if !s.is_verified() => return Next::Wait,
                _ => {}
            }
        }
        if self.launched == states.len() {
            self.over = true;
            return Next::Ready;
        }
        self.launched += 1;
        Next::Launch(self.launched - 1)
    }

    /// The process whose verification the start-up waits for, if any.
    pub fn waiting_on(&self) -> Option<usize> {
        if self.over {
            return None;
        }
        self.launched.checked_sub(1)
    }

    /// Ends the sequence (the manager is shutting down).
    pub fn abandon(&mut self) {
        self.over = true;
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::supervisor::lifecycle::{Failure, Proc, Run};

    fn run() -> Run {
        Run {
            n: 1,
            at: SystemTime::UNIX_EPOCH,
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
        State::Running { run: run(), pid: 1 }
    }

    #[test]
    fn each_process_waits_for_the_one_before_it() {
        let mut s = Startup::default();
        let (p, v, r) = (State::Pending, verifying(), running());
        assert_eq!(s.next(&[&p, &p]), Next::Launch(0));
        assert_eq!(s.waiting_on(), Some(0));
        assert_eq!(s.next(&[&v, &p]), Next::Wait);
        assert_eq!(s.next(&[&r, &p]), Next::Launch(1));
        assert_eq!(s.next(&[&r, &v]), Next::Wait);
        // A process that ended after it was verified counts as verified.
        let exited = State::Exited {
            run: run(),
            exit: crate::supervisor::lifecycle::Exit::Code(0),
        };
        assert_eq!(s.next(&[&r, &exited]), Next::Ready);
        assert_eq!(s.waiting_on(), None);
        assert_eq!(s.next(&[&r, &r]), Next::Wait);
    }

    #[test]
    fn a_failure_of_the_awaited_process_ends_it_and_nothing_else_does() {
        let mut s = Startup::default();
        let p = State::Pending;
        let failed = State::Failed {
            run: run(),
            why: Failure::Verify("no".into()),
            proc: None,
        };
        let stopped = State::Stopped {
            run: Some(run()),
            exit: None,
            verdict: crate::supervisor::lifecycle::Verdict::Cancelled,
        };
        assert_eq!(s.next(&[&p, &p]), Next::Launch(0));
        // Stopped by a user while verifying: start-up waits for it to be started again.
        assert_eq!(s.next(&[&stopped, &p]), Next::Wait);
        assert_eq!(s.next(&[&failed, &p]), Next::Failed(0));
        assert_eq!(s.next(&[&failed, &p]), Next::Wait);

        let mut s = Startup::default();
        s.abandon();
        assert_eq!(s.next(&[&p]), Next::Wait);
    }
}
