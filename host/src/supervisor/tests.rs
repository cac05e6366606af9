//! The actor with real, short-lived processes (`sh -c`, `sleep`) and the real verifier
//! runtime: start-up order, the end without keep-alive, cancelled verifications, the lines
//! people read. No test waits for a fixed time: each awaits the event it checks, bounded
//! by [`WAIT`].
//!
//! A supervisor reaps every child of the process it runs in and, at shutdown, signals all
//! of them: two supervisors in one test binary would take each other's children. Every
//! test that starts one holds [`exclusive`] for its whole run.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::*;
use crate::console::{Console, Verbosity};
use crate::plan::{self, ProcessSpec};
use crate::runtime::{Runtime, RuntimeOptions};

/// How long any awaited event may take before a test fails: generous, for loaded machines.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// Serialises the tests that start a supervisor (see the module's comment).
pub(crate) async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Awaits `f`, failing the test after [`WAIT`].
pub(crate) async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing after {WAIT:?}"))
}

/// Everything written to a console stream, readable while the supervisor runs.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The plan of a config given as JSON (its relative paths resolve from the current
/// directory, as for the binary).
pub(crate) fn plan_of(config: Value) -> plan::Plan {
    let loaded = crate::config::parse(
        config.to_string().as_bytes(),
        std::path::Path::new("pymanager.json"),
    )
    .expect("a valid config");
    plan::build(&loaded, plan::EnvFiles::Source, &mut Vec::new()).expect("a plan")
}

/// One process's spec, for tests of what is derived from it.
pub(crate) fn spec_for_view(verifier: bool) -> ProcessSpec {
    let mut p = json!({"executable": "sleep", "arguments": ["1"]});
    if verifier {
        p["verifier"] = json!({"type": "exited"});
    }
    let plan = plan_of(json!({"processes": {"web": p}}));
    (*plan.processes[0]).clone()
}

/// A supervisor running a config, with its console captured.
pub(crate) struct Running {
    pub handle: SupervisorHandle,
    pub ready: oneshot::Receiver<Result<(), crate::supervisor::StartupFailure>>,
    pub done: tokio::task::JoinHandle<Outcome>,
    /// What it wrote to stdout (launch lines, `messages`).
    pub out: Captured,
    /// Its log (`-v` lines, warnings, errors).
    pub log: Captured,
}

impl Running {
    /// Waits until start-up succeeded.
    pub(crate) async fn ready(&mut self) {
        let r = bounded("start-up", &mut self.ready).await;
        assert_eq!(r, Ok(Ok(())), "log:\n{}", self.log.text());
    }

    /// Waits for the supervisor to end; how it ended.
    pub(crate) async fn done(self) -> Outcome {
        bounded("the end", self.done).await.expect("the actor ran")
    }

    /// Waits until `f` holds for the latest snapshot.
    pub(crate) async fn until(&self, what: &str, f: impl Fn(&Snapshot) -> bool) {
        let mut w = self.handle.watch();
        bounded(what, w.wait_for(|s| f(s)))
            .await
            .expect("supervisor alive");
    }
}

/// Starts a supervisor on `config`, verifier modules loaded, console captured.
pub(crate) async fn run(config: Value) -> Running {
    let plan = plan_of(config);
    let runtime = Runtime::new(RuntimeOptions::default()).expect("runtime");
    plan::prepare(&plan, &runtime).await.expect("modules load");
    let (out, log) = (Captured::default(), Captured::default());
    let names: Vec<String> = plan.processes.iter().map(|p| p.name.to_string()).collect();
    let console = Console::with_writers(
        Verbosity::Info,
        Box::new(out.clone()),
        Box::new(log.clone()),
        false,
        names.iter().map(String::as_str),
    )
    .expect("console");
    let s = start(plan, runtime, console).expect("supervisor");
    Running {
        handle: s.handle,
        ready: s.ready,
        done: s.done,
        out,
        log,
    }
}

fn sh(script: &str) -> Value {
    json!({"executable": "sh", "arguments": ["-c", script],
           "options": {"suppress_output": true}})
}

fn lifecycle_of(s: &Snapshot, name: &str) -> Lifecycle {
    s.get(&ProcessRef::Name(name.into())).unwrap().lifecycle
}

#[tokio::test]
async fn processes_start_in_order_and_the_manager_ends_with_the_last() {
    let _one = exclusive().await;
    let m = run(json!({"messages": ["process.exit"], "processes": {
        "a": sh("exit 3"),
        "b": sh("kill -TERM $$"),
        "c": {"executable": "true", "arguments": []}}}))
    .await;
    let (out, log) = (m.out.clone(), m.log.clone());
    assert_eq!(m.done().await, Outcome::AllEnded);
    let out = out.text();
    let a = out.find("$ sh -c exit 3").expect(&out);
    let b = out.find("$ sh -c kill -TERM $$").expect(&out);
    let c = out.find("$ true").expect(&out);
    assert!(a < b && b < c, "{out}");
    // The original's words on stdout, a person's in the log.
    assert!(
        out.contains("Process sh -c exit 3 exited with code 3"),
        "{out}"
    );
    assert!(
        out.contains("Process sh -c kill -TERM $$ exited with code -15"),
        "{out}"
    );
    let log = log.text();
    assert!(
        log.contains("[INFO] process a: exited with code 3"),
        "{log}"
    );
    assert!(log.contains("[INFO] process b: killed by SIGTERM"), "{log}");
    assert!(!log.contains("Signaled"), "{log}");
}

#[tokio::test]
async fn a_spawn_failure_fails_the_start_up_and_nothing_after_it_starts() {
    let _one = exclusive().await;
    let mut m = run(json!({"processes": {
        "a": {"executable": "sleep", "arguments": ["1000"]},
        "b": {"executable": "./no-such-program-here", "arguments": []},
        "c": {"executable": "sleep", "arguments": ["1000"]}}}))
    .await;
    let r = bounded("start-up", &mut m.ready).await.unwrap();
    let failure = r.unwrap_err();
    let line = failure.line.clone();
    assert!(
        line.starts_with("could not set up processes: processes.b: cannot run"),
        "{line}"
    );
    // The report names the culprit and who waited on it.
    assert_eq!(failure.process.as_deref(), Some("b"));
    assert_eq!(failure.waiters, vec![("c".to_string(), "verified")]);
    let snap = m.handle.snapshot();
    assert_eq!(lifecycle_of(&snap, "c"), Lifecycle::Pending);
    match m.done().await {
        Outcome::StartupFailed(l) => assert_eq!(l, line),
        other => panic!("{other:?}"),
    }
}

/// A process whose verifier (output `up`, an hour at most) passes only once `marker`
/// exists when the run starts.
fn up_once_marked(marker: &std::path::Path) -> Value {
    json!({"executable": "sh",
        "arguments": ["-c", format!("if [ -e {} ]; then echo up; fi; exec sleep 1000", marker.display())],
        "options": {"suppress_output": true},
        "verifier": {"type": "output", "arguments": {"pattern": "^up$", "timeout": 3600}}})
}

#[tokio::test]
async fn a_users_stop_cuts_the_start_ups_verification_short_and_a_start_resumes_it() {
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let mut m = run(json!({"processes": {
        "slow": up_once_marked(&marker),
        "after": sh("exec sleep 1000")}}))
    .await;
    m.until("verifying", |s| {
        lifecycle_of(s, "slow") == Lifecycle::Verifying
    })
    .await;
    let slow = ProcessRef::Name("slow".into());
    let p = bounded("stop", m.handle.stop(slow.clone())).await.unwrap();
    assert_eq!(p.lifecycle, Lifecycle::Stopped);
    assert_eq!(p.verifier.unwrap().outcome, VerifierOutcome::Cancelled);
    // The start-up waits for it: the next process has not started.
    let snap = m.handle.snapshot();
    assert_eq!(snap.phase, Phase::Launching);
    assert_eq!(lifecycle_of(&snap, "after"), Lifecycle::Pending);
    std::fs::write(&marker, "").unwrap();
    let p = bounded("start", m.handle.start(slow)).await.unwrap();
    assert_eq!(p.lifecycle, Lifecycle::Ready);
    assert_eq!(p.restarts, 1);
    m.ready().await;
    bounded("shutdown", m.handle.shutdown()).await.unwrap();
    assert_eq!(m.done().await, Outcome::Shutdown);
}

#[tokio::test]
async fn a_restart_cuts_a_verification_short_and_a_stop_cuts_the_restart_short() {
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let m = run(json!({"processes": {
        "slow": up_once_marked(&dir.path().join("never"))}}))
    .await;
    m.until("verifying", |s| {
        lifecycle_of(s, "slow") == Lifecycle::Verifying
    })
    .await;
    let slow = ProcessRef::Name("slow".into());
    let restart = tokio::spawn({
        let (h, slow) = (m.handle.clone(), slow.clone());
        async move { h.restart(slow).await }
    });
    // The start-up's verification gave way; the restart's own one now runs.
    m.until("verifying again", |s| {
        let p = s.get(&slow).unwrap();
        p.restarts == 1 && p.lifecycle == Lifecycle::Verifying
    })
    .await;
    // A start has nothing to add to it.
    let e = bounded("start", m.handle.start(slow.clone()))
        .await
        .unwrap_err();
    assert_eq!(e, CommandError::Busy("slow".into(), "restart"));
    // A stop does not wait for it: it cuts it short and the restart learns so.
    let stopped = bounded("stop", m.handle.stop(slow.clone())).await.unwrap();
    assert_eq!(stopped.lifecycle, Lifecycle::Stopped);
    let r = bounded("restart answered", restart).await.unwrap();
    assert_eq!(
        r.unwrap_err(),
        CommandError::Cancelled("slow".into(), "stop")
    );
    bounded("shutdown", m.handle.shutdown()).await.unwrap();
    assert_eq!(m.done().await, Outcome::Shutdown);
}

#[tokio::test]
async fn a_process_that_failed_its_verification_but_runs_keeps_the_manager_up() {
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("first-run");
    // Says `up` on its first run only; its verifier gives up after half a second.
    let once = json!({"executable": "sh",
        "arguments": ["-c", format!("if [ ! -e {m} ]; then touch {m}; echo up; fi; exec sleep 1000", m = marker.display())],
        "options": {"suppress_output": true},
        "verifier": {"type": "output", "arguments": {"pattern": "^up$", "timeout": 0.5}}});
    let mut m = run(json!({"processes": {"once": once, "other": sh("exec sleep 1000")}})).await;
    m.ready().await;
    let once = ProcessRef::Name("once".into());
    let e = bounded("restart", m.handle.restart(once.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, CommandError::Failed(n, why) if n == "once" && why.starts_with("verification failed")),
        "{e}"
    );
    let p = m.handle.snapshot().get(&once).unwrap().clone();
    assert_eq!(p.lifecycle, Lifecycle::Failed);
    assert!(matches!(
        p.state,
        crate::process_view::ProcState::Running { .. }
    ));
    assert!(
        m.log
            .text()
            .contains("[WARNING] process once failed verification (output): "),
        "{}",
        m.log.text()
    );
    // The other process ends; `once` still runs, so the manager (without keep-alive) stays.
    bounded("stop", m.handle.stop(ProcessRef::Name("other".into())))
        .await
        .unwrap();
    // A round trip through the actor: a shutdown would have begun before this answer.
    bounded("output", m.handle.output(once.clone()))
        .await
        .unwrap();
    assert_eq!(m.handle.snapshot().phase, Phase::Running);
    // Once it ends too, the manager does.
    bounded("stop", m.handle.stop(once)).await.unwrap();
    assert_eq!(m.done().await, Outcome::AllEnded);
}
