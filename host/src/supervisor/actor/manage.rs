//! Carrying out what the manager decided: each [`Effect`] of a [`manager::step`] becomes a
//! launch, a published phase, an answer, a line, every process's shutdown, the task that
//! ends everything, or one process's turn in the shutdown's order. No rule is here: they
//! are all in [`manager::step`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;

use super::{Actor, Internal};
use crate::supervisor::StartupFailure;
use crate::supervisor::handle::{CommandError, Event, Snapshot};
use crate::supervisor::lifecycle::Input;
use crate::supervisor::manager::{self, Effect, Note, StartupFailed};
use crate::supervisor::terminate::terminate_all;

/// Who asked for a shutdown, waiting for the answer.
pub(super) type ShutdownReply = oneshot::Sender<Result<(), CommandError>>;

impl Actor {
    /// Feeds `input` to the manager and carries out the effects; `requester` asked for it
    /// (a shutdown's) and is answered. True if a process was launched.
    pub(super) fn step_manager(
        &mut self,
        input: manager::Input,
        mut requester: Option<ShutdownReply>,
    ) -> bool {
        let env = manager::Env {
            now: Instant::now(),
            states: &self.slots,
        };
        let (next, effects) = manager::step(std::mem::take(&mut self.manager), input, &env);
        self.manager = next;
        let mut launched = false;
        for effect in effects {
            match effect {
                Effect::Launch(idx) => {
                    self.apply(idx, Input::Launch);
                    launched = true;
                }
                Effect::Phase(phase) => self.set_phase(phase),
                Effect::Note(note) => self.manager_note(note),
                Effect::Ready => {
                    // The app prints where the time went (`Timeline::summary_from`).
                    self.timeline.set_ready();
                    self.answer_ready(Ok(()));
                }
                Effect::StartupFailed(failed) => self.startup_failed(failed),
                Effect::StartupInterrupted => self.answer_ready(Err(StartupFailure::plain(
                    "pymanager was shut down during start-up",
                ))),
                Effect::Answer(answer) => {
                    if let Some(r) = requester.take() {
                        let _ = r.send(answer);
                    }
                }
                Effect::ShutDown => {
                    self.shutdown.cancel();
                    for idx in 0..self.slots.len() {
                        self.apply(idx, Input::Shutdown);
                    }
                }
                Effect::Kill => {
                    self.force.send_replace(true);
                }
                Effect::EndAll { deadline, spare } => self.end_all(deadline, spare),
                Effect::Stop { idx, grace } => self.apply(idx, Input::Teardown { grace }),
            }
        }
        launched
    }

    fn manager_note(&self, note: Note) {
        match note {
            Note::Running => self.console.info("all processes are running"),
            Note::AllEnded => self.console.info("all processes have ended"),
            Note::ShuttingDown => self.console.say_now(
                "Shutting down gracefully (SIGINT again to terminate immediately)...".into(),
            ),
        }
    }

    fn answer_ready(&mut self, answer: Result<(), StartupFailure>) {
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(answer);
        }
    }

    /// Tells everyone why the start-up failed: the log, the snapshot, an event, and the
    /// readiness answer, which carries the records and the culprit's output of this moment.
    fn startup_failed(&mut self, failed: StartupFailed) {
        let StartupFailed {
            line,
            culprit,
            waiters,
        } = failed;
        // The records as the failure left them, before the shutdown moves them on.
        self.publish();
        let name = |i: usize| self.slots[i].name().to_string();
        let failure = StartupFailure {
            snapshot: Some(self.snapshot_tx.borrow().clone()),
            output: Some(self.slots[culprit].output.clone()),
            line: line.clone(),
            process: Some(name(culprit)),
            waiters: waiters
                .into_iter()
                .map(|(w, c)| (name(w), c.as_str()))
                .collect(),
        };
        self.console.log_line(&format!("[ERROR] {line}"));
        // In the snapshot before the event goes out: a stream that subscribes in between
        // finds it in one or the other (and skips the repeat, see `api::stream::events`).
        self.snapshot_tx.send_modify(|s| {
            *s = Arc::new(Snapshot {
                phase: s.phase,
                processes: s.processes.clone(),
                startup_failure: Some(line.clone()),
            })
        });
        let _ = self.events.send(Event::StartupFailed { message: line });
        self.answer_ready(Err(failure));
    }

    /// Ends everything the manager has, sparing at first the pids the teardown stops in
    /// order; reports [`Internal::ShutdownDone`] once nothing is left.
    fn end_all(&mut self, deadline: Instant, spare: Vec<u32>) {
        let children = self.reaper.children();
        let force = self.force.subscribe();
        let tx = self.internal.clone();
        let spare: HashSet<i32> = spare.into_iter().map(|p| p as i32).collect();
        let deadline = tokio::time::Instant::from_std(deadline);
        tokio::spawn(async move {
            terminate_all(children, deadline, force, spare).await;
            let _ = tx.send(Internal::ShutdownDone);
        });
    }
}
