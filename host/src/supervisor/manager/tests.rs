//! The manager against scripted runs, without a process or a clock.
//!
//! Each [`Script`] is a config and the messages the actor would receive, at given times: a
//! process's report, a shutdown request, a second SIGINT, the end of everything. The
//! harness does with them what the actor does: a report goes to the process's real
//! [`lifecycle::step`], then the manager looks again ([`Input::Changed`], again after each
//! launch); the manager's effects are carried out on the processes' states (a launch spawns
//! at once, as pid 101, 102, … in config order; a shutdown's stop is the lifecycle's
//! `Teardown`, whose `stop-group` is shown beside it). Every manager step that does
//! something is one line of `shutdowns.txt`: the time, the message, the stage after, the
//! effects. The file is the specification; `PYMANAGER_BLESS=1` rewrites it from the code
//! (then read the diff).

use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::*;
use crate::supervisor::lifecycle::{self, Exit, Leftovers, Rules};
use crate::supervisor::tests::plan_of;

/// A message to the actor.
#[derive(Clone)]
enum Msg {
    /// The supervisor starts: the manager looks for the first time.
    Start,
    /// The verifier of a process's current run passed.
    Passed(&'static str),
    /// The verifier of a process's current run failed, for this reason.
    Failed(&'static str, &'static str),
    /// A process's current run ended.
    Exited(&'static str, Exit),
    /// An input for the manager itself.
    Manager(Input),
}

/// A config and what happens to it, at seconds from the start.
struct Script {
    title: &'static str,
    config: Value,
    messages: Vec<(f64, Msg)>,
}

/// The processes' states and the manager, as the actor holds them.
struct World {
    names: Vec<String>,
    rules: Vec<Rules>,
    states: Vec<State>,
    manager: Manager,
    t0: Instant,
    at: Duration,
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

impl World {
    fn new(config: Value) -> World {
        let plan = plan_of(config);
        World {
            names: plan.processes.iter().map(|p| p.name.to_string()).collect(),
            rules: plan.processes.iter().map(|p| Rules::of(p)).collect(),
            states: vec![State::Pending; plan.processes.len()],
            manager: Manager::new(&plan),
            t0: Instant::now(),
            at: Duration::ZERO,
        }
    }

    fn idx(&self, name: &str) -> usize {
        self.names.iter().position(|n| n == name).expect(name)
    }

    /// Feeds `input` to process `idx`'s lifecycle as the actor does (a spawn succeeds at
    /// once); its effects.
    fn lifecycle(&mut self, idx: usize, input: lifecycle::Input) -> Vec<lifecycle::Effect> {
        let mut all = Vec::new();
        let mut next = Some(input);
        while let Some(input) = next.take() {
            let env = lifecycle::Env {
                now: SystemTime::UNIX_EPOCH + self.at,
                rules: self.rules[idx],
                shutting_down: self.manager.is_shutting_down(),
            };
            let state = std::mem::replace(&mut self.states[idx], State::Pending);
            let (state, fx) = lifecycle::step(state, input, &env);
            self.states[idx] = state;
            if fx
                .iter()
                .any(|f| matches!(f, lifecycle::Effect::Spawn { .. }))
            {
                next = Some(lifecycle::Input::Spawned {
                    pid: 101 + idx as u32,
                });
            }
            all.extend(fx);
        }
        all
    }

    fn current_run(&self, idx: usize) -> u32 {
        self.states[idx].run().expect("started").n
    }

    /// One step of the manager, its effects carried out; the line it makes (`None` if it
    /// did nothing) and whether it launched a process.
    fn step(&mut self, input: Input, label: &str) -> (Option<String>, bool) {
        let env = Env {
            now: self.t0 + self.at,
            states: &self.states,
        };
        let (manager, effects) = step(std::mem::take(&mut self.manager), input, &env);
        self.manager = manager;
        let mut shown = Vec::new();
        let mut launched = false;
        for effect in &effects {
            let mut text = self.show(effect);
            match *effect {
                Effect::Launch(idx) => {
                    self.lifecycle(idx, lifecycle::Input::Launch);
                    launched = true;
                }
                Effect::ShutDown => {
                    for idx in 0..self.states.len() {
                        self.lifecycle(idx, lifecycle::Input::Shutdown);
                    }
                }
                Effect::Stop { idx, grace } => {
                    let fx = self.lifecycle(idx, lifecycle::Input::Teardown { grace });
                    let groups: Vec<String> = fx
                        .iter()
                        .filter_map(|f| match f {
                            lifecycle::Effect::StopGroup {
                                signal,
                                grace,
                                leftovers,
                                ..
                            } => {
                                assert_eq!(*leftovers, Leftovers::ToShutdown);
                                Some(format!("stop-group {} {}", signal.as_str(), secs(*grace)))
                            }
                            _ => None,
                        })
                        .collect();
                    text.push_str(&format!(
                        " → {}",
                        if groups.is_empty() {
                            "-".to_string()
                        } else {
                            groups.join(", ")
                        }
                    ));
                }
                _ => {}
            }
            shown.push(text);
        }
        let line = (!shown.is_empty()).then(|| self.line(label, &shown.join("; ")));
        (line, launched)
    }

    fn line(&self, label: &str, effects: &str) -> String {
        format!(
            "{:<5} | {:<21} | {:<45} | {effects}",
            secs(self.at),
            label,
            self.stage()
        )
    }

    /// Handles one message as the actor does; its lines.
    fn message(&mut self, at: f64, msg: Msg) -> Vec<String> {
        self.at = Duration::from_secs_f64(at);
        let (first, label) = match msg.clone() {
            Msg::Start => (Input::Changed, "start".to_string()),
            Msg::Passed(name) => {
                let idx = self.idx(name);
                let run = self.current_run(idx);
                self.lifecycle(
                    idx,
                    lifecycle::Input::Checked {
                        run,
                        result: Ok(()),
                    },
                );
                (Input::Changed, format!("{name} passed"))
            }
            Msg::Failed(name, why) => {
                let idx = self.idx(name);
                let run = self.current_run(idx);
                self.lifecycle(
                    idx,
                    lifecycle::Input::Checked {
                        run,
                        result: Err(why.to_string()),
                    },
                );
                (Input::Changed, format!("{name} failed"))
            }
            Msg::Exited(name, exit) => {
                let idx = self.idx(name);
                let run = self.current_run(idx);
                self.lifecycle(idx, lifecycle::Input::Exited { run, exit });
                let how = match exit {
                    Exit::Code(c) => format!("code {c}"),
                    Exit::Signal(s) => format!("sig {s}"),
                };
                (Input::Changed, format!("{name} exited {how}"))
            }
            Msg::Manager(input) => {
                let word = match input {
                    Input::Changed => "changed",
                    Input::Shutdown => "shutdown",
                    Input::Force => "force",
                    Input::AllGone => "all gone",
                };
                (input, word.to_string())
            }
        };
        let mut lines = Vec::new();
        let (line, launched) = self.step(first, &label);
        lines.extend(line);
        // After every message the actor lets the manager look again (and again after a
        // launch), unless it is done.
        let mut again = first != Input::Changed || launched;
        while again && !self.manager.is_done() {
            let (line, launched) = self.step(Input::Changed, "…");
            lines.extend(line);
            again = launched;
        }
        if lines.is_empty() {
            lines.push(self.line(&label, "-"));
        }
        lines
    }

    fn stage(&self) -> String {
        let outcome = |o: &Outcome| match o {
            Outcome::AllEnded => "all ended",
            Outcome::Shutdown => "shutdown",
            Outcome::StartupFailed(_) => "start-up failed",
        };
        let since = |at: Instant| secs(at.duration_since(self.t0));
        match self.manager.stage() {
            Stage::Starting(_) => "starting".into(),
            Stage::Running => "running".into(),
            Stage::ShuttingDown(s) => format!(
                "shutting down({}, kill at {}{})",
                outcome(&s.outcome),
                since(s.deadline),
                if s.forced { ", forced" } else { "" }
            ),
            Stage::Done(s) => format!("done({})", outcome(&s.outcome)),
        }
    }

    fn show(&self, effect: &Effect) -> String {
        match effect {
            Effect::Launch(idx) => format!("launch {}", self.names[*idx]),
            Effect::Phase(p) => format!(
                "phase {}",
                match p {
                    Phase::Launching => "launching",
                    Phase::Running => "running",
                    Phase::Shutdown => "shutdown",
                    Phase::ForceShutdown => "force-shutdown",
                }
            ),
            Effect::Note(Note::Running) => "note running".into(),
            Effect::Note(Note::AllEnded) => "note all ended".into(),
            Effect::Note(Note::ShuttingDown) => "note shutting down".into(),
            Effect::Ready => "ready".into(),
            Effect::StartupFailed(f) => {
                let waiters: Vec<String> = f
                    .waiters
                    .iter()
                    .map(|(w, c)| format!("{} waits for {}", self.names[*w], c.as_str()))
                    .collect();
                format!(
                    "start-up failed by {}{}: {}",
                    self.names[f.culprit],
                    if waiters.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", waiters.join(", "))
                    },
                    f.line
                )
            }
            Effect::StartupInterrupted => "start-up interrupted".into(),
            Effect::Answer(Ok(())) => "answer ok".into(),
            Effect::Answer(Err(_)) => "answer: already shutting down".into(),
            Effect::ShutDown => "shut down".into(),
            Effect::Kill => "kill".into(),
            Effect::EndAll { deadline, spare } => {
                let spared: Vec<&str> = spare
                    .iter()
                    .map(|pid| &*self.names[(*pid - 101) as usize])
                    .collect();
                let at = secs(deadline.duration_since(self.t0));
                if spared.is_empty() {
                    format!("end all, kill at {at}")
                } else {
                    format!("end all, kill at {at}, sparing {}", spared.join(" "))
                }
            }
            Effect::Stop { idx, grace } => {
                format!("stop {} in {}", self.names[*idx], secs(*grace))
            }
        }
    }
}

fn run(script: &Script) -> String {
    let mut w = World::new(script.config.clone());
    let mut out = String::new();
    // The title in lines of at most 90 characters.
    let mut line = String::from("##");
    for word in script.title.split_whitespace() {
        if line.len() + 1 + word.len() > 90 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("##");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    for (at, msg) in &script.messages {
        for line in w.message(*at, msg.clone()) {
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

/// A process that runs until it is stopped.
fn sleeper() -> Value {
    json!({"executable": "sleep", "arguments": ["1000"]})
}

/// One with a verifier (the scripts say when it passes).
fn verified() -> Value {
    json!({"executable": "sleep", "arguments": ["1000"],
           "verifier": {"type": "output", "arguments": {"pattern": "up"}}})
}

fn with(mut p: Value, more: Value) -> Value {
    for (k, v) in more.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

fn scripts() -> Vec<Script> {
    use Msg::*;
    let shutdown = Manager(Input::Shutdown);
    let force = Manager(Input::Force);
    let gone = Manager(Input::AllGone);
    let term = Exit::Signal(15);
    let kill = Exit::Signal(9);
    vec![
        Script {
            title: "ordered: db, api, web, each verified before the next; graceful_time 10, \
                    api's own 3. The shutdown asks everything at once, each with its own \
                    grace; a second request is refused.",
            config: json!({"graceful_time": 10, "processes": {
                "db": verified(),
                "api": with(verified(), json!({"graceful_time": 3})),
                "web": sleeper()}}),
            messages: vec![
                (0.0, Start),
                (1.0, Passed("db")),
                (2.0, Passed("api")),
                (5.0, shutdown.clone()),
                (5.0, shutdown.clone()),
                (5.2, Exited("web", term)),
                (5.5, Exited("api", term)),
                (6.0, Exited("db", Exit::Code(0))),
                (6.0, gone.clone()),
            ],
        },
        Script {
            title: "parallel: web needs api needs db, cache alone; graceful_time 10. \
                    Dependents stop first, independent branches side by side, and each \
                    process asked later gets what is left of the largest grace.",
            config: json!({"startup": "parallel", "graceful_time": 10, "processes": {
                "db": verified(),
                "api": with(verified(), json!({"depends_on": ["db"]})),
                "web": with(sleeper(), json!({"depends_on": ["api"]})),
                "cache": sleeper()}}),
            messages: vec![
                (0.0, Start),
                (1.0, Passed("db")),
                (2.0, Passed("api")),
                (4.0, shutdown.clone()),
                (4.5, Exited("cache", Exit::Code(0))),
                (5.0, Exited("web", term)),
                (6.0, Exited("api", term)),
                (6.5, Exited("db", term)),
                (6.5, gone.clone()),
            ],
        },
        Script {
            title: "a process that ignores SIGTERM (ordered): deaf has its own graceful_time \
                    2, polite the global 10. Its stop kills it at its own grace, and the \
                    manager is done then, not at the largest grace.",
            config: json!({"graceful_time": 10, "processes": {
                "polite": sleeper(),
                "deaf": with(sleeper(), json!({"graceful_time": 2}))}}),
            messages: vec![
                (0.0, Start),
                (1.0, shutdown.clone()),
                (1.1, Exited("polite", term)),
                (3.0, Exited("deaf", kill)),
                (3.0, gone.clone()),
            ],
        },
        Script {
            title: "two processes that ignore SIGTERM in a chain (parallel): api needs db, \
                    each with graceful_time 3, and no process has the global one. One after \
                    the other they would take 6 s; the second is asked when nothing is left \
                    of the largest grace, so the whole shutdown takes 3 s.",
            config: json!({"startup": "parallel", "processes": {
                "db": with(sleeper(), json!({"graceful_time": 3})),
                "api": with(sleeper(), json!({"depends_on": ["db"], "graceful_time": 3}))}}),
            messages: vec![
                (0.0, Start),
                (1.0, shutdown.clone()),
                (4.0, Exited("api", kill)),
                (4.0, Exited("db", kill)),
                (4.0, gone.clone()),
            ],
        },
        Script {
            title: "a second SIGINT: the shutdown under way becomes a kill of everything at \
                    once.",
            config: json!({"graceful_time": 10, "processes": {
                "a": sleeper(),
                "b": with(sleeper(), json!({"stop_signal": "SIGINT"}))}}),
            messages: vec![
                (0.0, Start),
                (1.0, shutdown.clone()),
                (1.5, force.clone()),
                (1.5, force.clone()),
                (1.6, Exited("a", kill)),
                (1.6, Exited("b", kill)),
                (1.6, gone.clone()),
            ],
        },
        Script {
            title: "SIGINT twice during the start-up: the readiness learns that the start-up \
                    was cut short; the second kills at once.",
            config: json!({"graceful_time": 10, "processes": {
                "a": verified(),
                "b": sleeper()}}),
            messages: vec![
                (0.0, Start),
                (0.5, shutdown.clone()),
                (0.7, force.clone()),
                (0.8, Exited("a", kill)),
                (0.8, gone.clone()),
            ],
        },
        Script {
            title: "a start-up failure (ordered): b fails its verification, c never starts; \
                    what runs is stopped, b too.",
            config: json!({"graceful_time": 10, "processes": {
                "a": sleeper(),
                "b": verified(),
                "c": sleeper()}}),
            messages: vec![
                (0.0, Start),
                (1.0, Failed("b", "no line matched")),
                (1.2, Exited("a", term)),
                (1.2, Exited("b", term)),
                (1.2, gone.clone()),
            ],
        },
        Script {
            title: "a dependency that can no longer hold (parallel): api waits for migrate to \
                    exit with code 0, and it exits with 1.",
            config: json!({"startup": "parallel", "processes": {
                "migrate": sleeper(),
                "api": with(sleeper(), json!({"depends_on": {"migrate": "exited_ok"}}))}}),
            messages: vec![
                (0.0, Start),
                (1.0, Exited("migrate", Exit::Code(1))),
                (1.0, gone.clone()),
            ],
        },
        Script {
            title: "every process ended, without keep-alive: the manager ends, quietly.",
            config: json!({"processes": {"a": sleeper(), "b": sleeper()}}),
            messages: vec![
                (0.0, Start),
                (1.0, Exited("a", Exit::Code(0))),
                (2.0, Exited("b", Exit::Code(3))),
                (2.0, gone.clone()),
            ],
        },
        Script {
            title: "every process ended, with keep-alive: the manager stays.",
            config: json!({"keep_alive": true, "processes": {"a": sleeper()}}),
            messages: vec![(0.0, Start), (1.0, Exited("a", Exit::Code(0)))],
        },
    ]
}

/// The table without its comment lines (`#` and a space, or a lone `#`).
fn specification(text: &str) -> String {
    text.lines()
        .filter(|l| !(*l == "#" || l.starts_with("# ")))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn every_shutdown_order_does_what_the_table_says() {
    let got: String = scripts().iter().map(run).collect::<Vec<_>>().join("\n");
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/supervisor/manager/shutdowns.txt"
    );
    let file = std::fs::read_to_string(path).unwrap_or_default();
    if std::env::var_os("PYMANAGER_BLESS").is_some() {
        let header: String = file
            .lines()
            .take_while(|l| *l == "#" || l.starts_with("# ") || l.is_empty())
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(path, format!("{header}{got}")).unwrap();
        return;
    }
    let want = specification(&file);
    let want = want.trim_start();
    if want != got {
        let first = want
            .lines()
            .zip(got.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(got.lines().count()));
        panic!(
            "shutdowns.txt differs from line {} of its table:\n   want {}\n    got {}\n\nthe whole table now:\n{got}",
            first + 1,
            want.lines().nth(first).unwrap_or("(end)"),
            got.lines().nth(first).unwrap_or("(end)"),
        );
    }
}

/// The stage a sequence of inputs leaves, with no process at all.
#[test]
fn a_manager_of_one_process_ends_each_way_with_its_outcome() {
    let mut w = World::new(json!({"processes": {"a": sleeper()}}));
    w.message(0.0, Msg::Start);
    assert_eq!(w.manager.phase(), Phase::Running);
    assert!(w.manager.outcome().is_none());
    w.message(1.0, Msg::Manager(Input::Force));
    assert_eq!(w.manager.phase(), Phase::ForceShutdown);
    assert!(w.manager.is_shutting_down() && !w.manager.is_done());
    // Nothing is done before everything is gone, whatever the processes say.
    w.message(1.0, Msg::Exited("a", Exit::Signal(9)));
    assert!(!w.manager.is_done());
    w.message(1.0, Msg::Manager(Input::AllGone));
    assert!(w.manager.is_done());
    assert_eq!(w.manager.outcome(), Some(&Outcome::Shutdown));
    assert_eq!(w.manager.outcome().unwrap().exit_code(), 0);
    // Once done, nothing moves it.
    for input in [
        Input::Changed,
        Input::Shutdown,
        Input::Force,
        Input::AllGone,
    ] {
        let lines = w.message(2.0, Msg::Manager(input));
        assert!(w.manager.is_done(), "{lines:?}");
    }
}

#[test]
fn an_enormous_grace_does_not_overflow_the_deadline() {
    // The largest the config takes: 28 years.
    let mut w = World::new(json!({"graceful_time": 9e8, "processes": {"a": sleeper()}}));
    w.message(0.0, Msg::Start);
    let lines = w.message(1.0, Msg::Manager(Input::Shutdown));
    match w.manager.stage() {
        Stage::ShuttingDown(s) => assert!(s.deadline > w.t0 + Duration::from_secs(3600)),
        _ => panic!("{lines:?}"),
    }
}
