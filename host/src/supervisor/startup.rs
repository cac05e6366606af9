//! The start-up, as an observer of the processes' states: each process starts once its
//! dependencies hold (in an ordered start-up, also once the process before it is
//! verified), and the start-up is over when every process is verified, or failed when one
//! failed or can never start. It keeps no state of the processes themselves, only which
//! it launched, so a user's restart or stop during start-up needs no special case.

use std::borrow::Borrow;

use super::lifecycle::{Exit, Failure, State};
use crate::config::{Condition, Startup as Mode};
use crate::plan::Dependency;

/// What the start-up asks for next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Launch the process at this index.
    Launch(usize),
    /// Every process is verified: the manager is running.
    Ready,
    /// The process at this index failed, so the start-up failed.
    Failed(usize),
    /// The process at `idx` can never start: `on` will never be `condition` (`why`).
    Blocked {
        /// The process that cannot start.
        idx: usize,
        /// The dependency that will never hold.
        on: usize,
        /// What it waited for.
        condition: Condition,
        /// Why it never will.
        why: String,
    },
    /// Nothing to do until a process changes.
    Wait,
}

/// Whether a dependency's condition holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holds {
    /// It does.
    Yes,
    /// Not yet.
    NotYet,
    /// It never will, and why.
    Never(String),
}

/// How far the start-up got.
#[derive(Debug, Clone)]
pub struct Startup {
    /// What each process waits for, the order of an ordered start-up included.
    deps: Vec<Vec<Dependency>>,
    /// The reverse of `deps`: which processes wait for each one.
    dependents: Vec<Vec<usize>>,
    launched: Vec<bool>,
    /// Every process below this index is launched: where the search for the next one
    /// begins, so that a parallel start-up of N processes looks at each once, not N times.
    unlaunched_from: usize,
    over: bool,
}

impl Startup {
    /// A start-up of processes with these dependencies, in this mode.
    pub fn new(mode: Mode, depends_on: Vec<Vec<Dependency>>) -> Startup {
        let deps: Vec<Vec<Dependency>> = depends_on
            .into_iter()
            .enumerate()
            .map(|(i, mut d)| {
                if mode == Mode::Ordered && i > 0 {
                    d.push(Dependency {
                        on: i - 1,
                        condition: Condition::Verified,
                    });
                }
                d
            })
            .collect();
        let mut dependents = vec![Vec::new(); deps.len()];
        for (i, d) in deps.iter().enumerate() {
            for d in d {
                dependents[d.on].push(i);
            }
        }
        Startup {
            launched: vec![false; deps.len()],
            unlaunched_from: 0,
            dependents,
            deps,
            over: false,
        }
    }

    /// What to do now, given every process's state (in config order).
    pub fn next<S: Borrow<State>>(&mut self, states: &[S]) -> Next {
        if self.over {
            return Next::Wait;
        }
        let state = |i: usize| states[i].borrow();
        for i in 0..self.deps.len() {
            if !self.launched[i] {
                continue;
            }
            if matches!(state(i), State::Failed { .. }) && !self.excused(i) {
                self.over = true;
                return Next::Failed(i);
            }
        }
        for i in self.unlaunched_from..self.deps.len() {
            if self.launched[i] {
                continue;
            }
            let mut all = true;
            for d in &self.deps[i] {
                match holds(d.condition, state(d.on)) {
                    Holds::Yes => {}
                    Holds::NotYet => all = false,
                    Holds::Never(why) => {
                        self.over = true;
                        return Next::Blocked {
                            idx: i,
                            on: d.on,
                            condition: d.condition,
                            why,
                        };
                    }
                }
            }
            if all {
                self.launched[i] = true;
                while self.launched.get(self.unlaunched_from) == Some(&true) {
                    self.unlaunched_from += 1;
                }
                return Next::Launch(i);
            }
        }
        let done = (0..self.deps.len()).all(|i| {
            self.launched[i]
                && (state(i).is_verified()
                    || matches!(state(i), State::Failed { .. }) && self.excused(i))
        });
        if done {
            self.over = true;
            return Next::Ready;
        }
        Next::Wait
    }

    /// A failed process does not fail the start-up when something depends on it and all
    /// that does waits only for it to have ended (`exited`).
    fn excused(&self, i: usize) -> bool {
        let mut conditions = self
            .deps
            .iter()
            .flatten()
            .filter(|d| d.on == i)
            .map(|d| d.condition)
            .peekable();
        conditions.peek().is_some() && conditions.all(|c| c == Condition::Exited)
    }

    /// True while the start-up has not launched process `i`, nor ended.
    pub fn holds_back(&self, i: usize) -> bool {
        !self.over && !self.launched.get(i).copied().unwrap_or(true)
    }

    /// True while the start-up waits for process `i` to be verified (its failure would be
    /// the start-up's failure).
    pub fn waits_on(&self, i: usize) -> bool {
        !self.over && self.launched.get(i).copied().unwrap_or(false) && !self.excused(i)
    }

    /// The conditions process `i` still waits for, while the start-up holds it back: each
    /// dependency's index and condition.
    pub fn waiting_for<S: Borrow<State>>(&self, i: usize, states: &[S]) -> Vec<Dependency> {
        if !self.holds_back(i) {
            return Vec::new();
        }
        self.deps[i]
            .iter()
            .filter(|d| holds(d.condition, states[d.on].borrow()) != Holds::Yes)
            .copied()
            .collect()
    }

    /// What process `i` waits for before it starts (in an ordered start-up, the process
    /// before it being verified included).
    pub fn deps(&self, i: usize) -> &[Dependency] {
        &self.deps[i]
    }

    /// The processes the start-up has not launched that wait for process `on`, each with
    /// what it waits for: who a failure of `on` leaves stranded.
    pub fn waiting_on(&self, on: usize) -> Vec<(usize, Condition)> {
        self.dependents[on]
            .iter()
            .filter(|&&i| !self.launched[i])
            .flat_map(|&i| {
                self.deps[i]
                    .iter()
                    .filter(|d| d.on == on)
                    .map(move |d| (i, d.condition))
            })
            .collect()
    }

    /// The processes that wait for process `on` (what they wait for changes with its state).
    pub fn dependents(&self, on: usize) -> impl Iterator<Item = usize> + '_ {
        self.dependents[on].iter().copied()
    }

    /// True once the start-up succeeded or failed.
    pub fn is_over(&self) -> bool {
        self.over
    }
}

/// Whether `condition` holds for a process in `state`, will later, or never will.
pub fn holds(condition: Condition, state: &State) -> Holds {
    let why = |f: &Failure| match f {
        Failure::Spawn(r) => format!("could not be started: {r}"),
        other => format!("failed: {other}"),
    };
    let ended = |e: Exit| match condition {
        Condition::ExitedOk if !e.is_success() => Holds::Never(e.to_string()),
        _ => Holds::Yes,
    };
    match (condition, state) {
        // A process that failed (and will not be restarted) never gets there; it has ended
        // once it no longer runs.
        (Condition::Exited, State::Failed { proc, .. }) => {
            if proc.is_none_or(|p| p.exit.is_some()) {
                Holds::Yes
            } else {
                Holds::NotYet
            }
        }
        (Condition::Started, State::Failed { proc: Some(_), .. }) => Holds::Yes,
        (_, State::Failed { why: w, .. }) => Holds::Never(why(w)),

        (Condition::Started, s) => match s {
            State::Pending | State::Starting { .. } => Holds::NotYet,
            State::BackingOff { proc, .. } if proc.is_none() => Holds::NotYet,
            State::Stopped { run: None, .. } => Holds::NotYet,
            _ => Holds::Yes,
        },
        (Condition::Verified, s) if s.is_verified() => Holds::Yes,
        (Condition::Verified, _) => Holds::NotYet,
        (Condition::Exited | Condition::ExitedOk, State::Exited { exit, .. }) => ended(*exit),
        // Stopped by a user: it ended, but a start may still run it to success.
        (Condition::Exited, State::Stopped { exit: Some(_), .. }) => Holds::Yes,
        (Condition::ExitedOk, State::Stopped { exit: Some(e), .. }) if e.is_success() => Holds::Yes,
        (Condition::Exited | Condition::ExitedOk, _) => Holds::NotYet,
    }
}

#[cfg(test)]
mod tests;
