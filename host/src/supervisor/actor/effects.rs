//! Carrying out what the lifecycle decided: each [`Effect`] of a step becomes a spawn, a
//! verifier task, a cancelled task, a graceful stop, an answer or a line for people. The
//! only decision made here is none: every rule is in [`lifecycle::step`].

use std::sync::Arc;
use std::time::SystemTime;

use tokio::task::AbortHandle;

use super::{Actor, Internal, verifier_kind};
use crate::config::Messages;
use crate::console::Console;
use crate::plan::{OutputMode, VerifierSpec};
use crate::process_view::{Level, OutputLog, ProcState, ProcessView};
use crate::supervisor::handle::CommandError;
use crate::supervisor::lifecycle::{self, Answer, Effect, Env, Exit, Input, Note, ReplyId, State};
use crate::supervisor::output::{Sink, pump};
use crate::supervisor::spawn::spawn;
use crate::supervisor::terminate::stop_group;
use crate::supervisor::verification;
use crate::supervisor::view;

impl Actor {
    /// Feeds `input` to process `idx` and carries out the effects, feeding back what they
    /// report at once (a spawn's result).
    pub(super) fn apply(&mut self, idx: usize, input: Input) {
        let mut next = Some(input);
        while let Some(input) = next.take() {
            let slot = &mut self.slots[idx];
            let env = Env {
                now: SystemTime::now(),
                rules: slot.rules,
                shutting_down: self.manager.is_shutting_down(),
            };
            let state = std::mem::replace(&mut slot.state, State::Pending);
            let (state, effects) = lifecycle::step(state, input, &env);
            slot.state = state;
            self.timeline.observe(idx, &slot.state);
            // Before any effect runs: a verifier started below must see the new process.
            slot.os.send_if_modified(|os| {
                let now = view::proc_state(&slot.state);
                std::mem::replace(os, now) != now
            });
            self.changed[idx] = true;
            for effect in effects {
                if let Some(report) = self.carry_out(idx, effect) {
                    next = Some(report);
                }
            }
        }
    }

    fn carry_out(&mut self, idx: usize, effect: Effect) -> Option<Input> {
        match effect {
            Effect::Spawn { run } => return Some(self.spawn(idx, run)),
            Effect::Verify { run } => self.verify(idx, run),
            Effect::CancelVerify => {
                if let Some(v) = self.slots[idx].verifier.take() {
                    v.abort();
                }
            }
            Effect::StopGroup {
                run,
                pid,
                signal,
                grace,
                leftovers,
            } => {
                let slot = &self.slots[idx];
                let state = slot.os.subscribe();
                let leader = slot.leader.clone().filter(|l| l.pid() == pid as i32);
                let tx = self.internal.clone();
                tokio::spawn(async move {
                    if let Some(leader) = leader {
                        stop_group(leader, signal, state, grace, leftovers).await;
                    }
                    let _ = tx.send(Internal::GroupStopped { idx, run });
                });
            }
            Effect::Probe { run, at } => self.probe(idx, run, at),
            Effect::Wake { run, at } => {
                let tx = self.internal.clone();
                let task = tokio::spawn(async move {
                    sleep_until(at).await;
                    let _ = tx.send(Internal::Retry { idx, run });
                });
                self.set_timer(idx, task.abort_handle());
            }
            Effect::CancelTimer => {
                if let Some(t) = self.slots[idx].timer.take() {
                    t.abort();
                }
            }
            Effect::Reply { to, answer } => self.answer(idx, to, answer),
            Effect::Note(note) => self.note(idx, note),
        }
        None
    }

    /// Spawns run `run` of process `idx`; the lifecycle's next input.
    fn spawn(&mut self, idx: usize, run: u32) -> Input {
        let console = self.console.clone();
        let slot = &mut self.slots[idx];
        let spec = slot.spec.clone();
        slot.output = Arc::new(OutputLog::new());
        slot.stdin = None;
        slot.leader = None;
        console.say_now(format!("$ {}", spec.command));
        let sink = match &spec.output {
            OutputMode::Console => {
                Sink::Console(console.clone(), console.prefix(spec.id, &spec.name))
            }
            OutputMode::Suppress => Sink::Discard,
            OutputMode::File(path) => match Console::open_output_file(path) {
                Ok(f) => Sink::File(f),
                Err(e) => {
                    let reason = format!("cannot open {} for output: {e}", path.display());
                    return Input::SpawnFailed { reason };
                }
            },
            OutputMode::Log(path) => {
                match crate::private_files::open_output(path, crate::private_files::Output::Append)
                {
                    Ok(f) => Sink::File(f),
                    Err(e) => {
                        let reason = format!("cannot open {} for output: {e}", path.display());
                        return Input::SpawnFailed { reason };
                    }
                }
            }
        };
        // Its picked ports were held against other pymanagers until now: it binds them.
        spec.port_hold.release();
        let spawned = match spawn(&spec, &self.reaper) {
            Ok(s) => s,
            Err(reason) => return Input::SpawnFailed { reason },
        };
        console.debug(format_args!(
            "{} started with pid {}",
            spec.name, spawned.pid
        ));
        slot.stdin = Some(spawned.stdin);
        slot.leader = Some(spawned.leader);
        self.pumps
            .spawn(pump(spawned.output, slot.output.clone(), sink));
        let tx = self.internal.clone();
        let exit = spawned.exit;
        tokio::spawn(async move {
            // The reaper always answers; a dropped sender means the manager is exiting.
            if let Ok(state) = exit.await {
                let exit = match state {
                    ProcState::Signaled { signal } => Exit::Signal(signal),
                    other => Exit::Code(other.legacy_code().unwrap_or(0)),
                };
                let _ = tx.send(Internal::Exited { idx, run, exit });
            }
        });
        Input::Spawned { pid: spawned.pid }
    }

    /// What a verifier or liveness check of process `idx` sees of it: its state, output,
    /// the shutdown and the console for its log lines. The warnings and errors of the
    /// verifier of run `attempts` (each a failed attempt) also become its record's message.
    fn view(&self, idx: usize, attempts: Option<u32>) -> ProcessView {
        let slot = &self.slots[idx];
        let mut sink = log_sink(&self.console, self.plan.messages, &slot.spec.name);
        if let Some(run) = attempts {
            let (console, tx) = (sink, self.internal.clone());
            sink = Arc::new(move |level, line| {
                console(level, line);
                if matches!(level, Level::Error | Level::Warn) {
                    let line = line.to_string();
                    let _ = tx.send(Internal::Attempt { idx, run, line });
                }
            });
        }
        ProcessView::new(
            slot.os.subscribe(),
            slot.output.clone(),
            self.shutdown.child_token(),
            sink,
        )
        .named(&slot.spec.name)
    }

    /// Starts the verifier of run `run` of process `idx` in a task of its own.
    fn verify(&mut self, idx: usize, run: u32) {
        let Some(v) = self.slots[idx].spec.verifier.clone() else {
            return;
        };
        self.slots[idx].attempt = None;
        let view = self.view(idx, Some(run));
        let task = self.check(v, view, None, move |result| Internal::Checked {
            idx,
            run,
            result,
        });
        if let Some(old) = self.slots[idx].verifier.replace(task) {
            old.abort();
        }
    }

    /// At `at`, runs the liveness check of run `run` of process `idx` in a task of its own.
    fn probe(&mut self, idx: usize, run: u32, at: SystemTime) {
        let Some(l) = self.slots[idx].spec.orchestration.liveness.as_ref() else {
            return;
        };
        let v = l.verifier.clone();
        let view = self.view(idx, None);
        let task = self.check(v, view, Some(at), move |result| Internal::Probed {
            idx,
            run,
            result,
        });
        self.set_timer(idx, task);
    }

    /// Runs verifier `v` against the process `view` shows, in a task of its own, from `at`
    /// (at once without one), and reports its verdict as `report` makes it: a verification
    /// and a liveness check differ in nothing else.
    fn check(
        &self,
        v: VerifierSpec,
        view: ProcessView,
        at: Option<SystemTime>,
        report: impl FnOnce(Result<(), String>) -> Internal + Send + 'static,
    ) -> AbortHandle {
        let (runtime, reaper) = (self.runtime.clone(), self.reaper.clone());
        let tx = self.internal.clone();
        let task = tokio::spawn(async move {
            if let Some(at) = at {
                sleep_until(at).await;
            }
            let result = verification::run(&runtime, &reaper, &v, view).await;
            let _ = tx.send(report(result));
        });
        task.abort_handle()
    }

    fn set_timer(&mut self, idx: usize, task: AbortHandle) {
        if let Some(old) = self.slots[idx].timer.replace(task) {
            old.abort();
        }
    }

    fn answer(&mut self, idx: usize, to: ReplyId, answer: Answer) {
        let Some(reply) = self.replies.remove(&to) else {
            return;
        };
        let name = self.slots[idx].name().to_string();
        let result = match answer {
            Answer::Done => Ok(self.info(idx)),
            Answer::Busy(op) => Err(CommandError::Busy(name, op)),
            Answer::ShuttingDown => Err(CommandError::ShuttingDown),
            Answer::Failed(reason) => Err(CommandError::Failed(name, reason)),
            Answer::Cancelled(by) => Err(CommandError::Cancelled(name, by)),
        };
        let _ = reply.send(result);
    }

    /// The lines people read: `messages` on stdout, `-v` lines and warnings in the log.
    fn note(&mut self, idx: usize, note: Note) {
        let slot = &self.slots[idx];
        match note {
            Note::Exited(exit) => {
                if self.plan.messages.process_exit {
                    // The original's words: the code, or minus the signal number.
                    self.console.say_now(format!(
                        "Process {} exited with code {}",
                        slot.spec.command,
                        exit.legacy_code()
                    ));
                }
                self.console
                    .info(format_args!("process {}: {exit}", slot.name()));
            }
            Note::Verified => self
                .console
                .info(format_args!("process {} verified", slot.name())),
            // A failure the start-up waits on is reported as the start-up's failure.
            Note::VerifyFailed(reason) if !self.manager.waits_on(idx) => {
                self.console.log_line(&format!(
                    "[WARNING] process {} failed verification ({}): {}",
                    slot.name(),
                    verifier_kind(&slot.spec),
                    crate::error_text::one_line(&reason)
                ));
            }
            Note::VerifyFailed(_) => {}
            Note::Restarting {
                why,
                delay,
                attempt,
            } => self.console.log_line(&format!(
                "[WARNING] process {} {}; restarting in {} (restart {attempt} of at most {} in a row)",
                slot.name(),
                crate::error_text::one_line(&failure_text(&why)),
                crate::runtime::human_duration(delay),
                slot.rules.restart.max_restarts
            )),
            Note::GaveUp(why) => self.console.log_line(&format!(
                "[ERROR] process {} failed: {}",
                slot.name(),
                crate::error_text::one_line(&why.to_string())
            )),
            Note::Unhealthy(reason) => {
                let reason = crate::error_text::one_line(&reason);
                if self.plan.messages.verifier_fail {
                    self.console
                        .say_now(format!("Liveness fail ({}): {reason}", slot.name()));
                }
                self.console
                    .info(format_args!("process {} is unhealthy: {reason}", slot.name()));
            }
            Note::Healthy => self
                .console
                .info(format_args!("process {} is healthy again", slot.name())),
        }
    }
}

/// A failure as the restart line tells it: `exited with code 1`, `failed verification: …`.
fn failure_text(why: &lifecycle::Failure) -> String {
    match why {
        lifecycle::Failure::Spawn(r) => format!("could not be started: {r}"),
        lifecycle::Failure::Verify(r) => format!("failed verification: {r}"),
        other => other.to_string(),
    }
}

/// Sleeps until the wall-clock time `at` (at once if it has passed).
async fn sleep_until(at: SystemTime) {
    let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::time::sleep(wait).await;
}

/// Routes a verifier's log lines through the config's `messages`.
fn log_sink(console: &Console, messages: Messages, name: &str) -> crate::process_view::LogSink {
    let console = console.clone();
    let name = name.to_string();
    Arc::new(move |level, msg| match level {
        Level::Error | Level::Warn if messages.verifier_fail => {
            console.say_or_drop(format!("Verifier fail ({name}): {msg}"))
        }
        _ if messages.verifier_verbose => console.say_or_drop(format!("Verifier ({name}): {msg}")),
        _ => console.debug(format_args!("verifier of {name}: {msg}")),
    })
}
