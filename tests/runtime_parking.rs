//! Parking: a verification that waits long holds no instance, and is replayed from its
//! journal in a fresh one — and a replayed guest can neither tell it is replayed (clock,
//! random numbers) nor make the host replay it without end.

mod common;

use common::runtime::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_long_wait_parks_and_the_replayed_verifier_goes_on_where_it_was() {
    let rt = sole("good", "good").await;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let (tx, rx) = watch::channel(ProcState::Running { pid: 7 });
    let out = Arc::new(OutputLog::new());
    let view = ProcessView::new(
        rx,
        out.clone(),
        CancellationToken::new(),
        Arc::new(move |_, msg: &str| sink.lock().unwrap().push(msg.to_string())),
    );
    let said = || lines.lock().unwrap().clone();
    let verify = tokio::spawn({
        let rt = rt.clone();
        async move {
            rt.verify(
                &vref("good", "Journey"),
                r#"{"sleep_ms": 400, "pattern": "^ready on (\\d+)$", "timeout": 60}"#,
                view,
            )
            .await
        }
    });
    // Waits until the verifier has logged `n` lines and is parked again.
    let at = |n: usize| {
        let said = &said;
        let rt = &rt;
        let verify = &verify;
        async move {
            let started = std::time::Instant::now();
            while said().len() < n || rt.parked_now() != 1 {
                assert!(started.elapsed() < WAIT, "{:?}", said());
                assert!(!verify.is_finished(), "ended early; it said {:?}", said());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    // The sleep parks, then the wait for a line (none printed yet).
    at(2).await;
    out.push("warming up");
    out.push("ready on 8080");
    // Then the wait for the exit parks.
    at(3).await;
    tx.send(ProcState::Exited { code: 3 }).unwrap();
    bounded(verify).await.unwrap().unwrap();
    assert_eq!(rt.parked_now(), 0);
    // Each line once: a replay answers `log` from the journal and shows nothing again.
    assert_eq!(
        said(),
        vec![
            "start, process running (pid 7)",
            "slept",
            "saw ready on 8080",
            "ended: exited with code 3",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parked_verification_ends_at_shutdown_and_when_dropped() {
    let rt = sole("good", "good").await;
    let token = CancellationToken::new();
    let (_tx, rx) = watch::channel(ProcState::Running { pid: 1 });
    let view = ProcessView::new(
        rx,
        Arc::new(OutputLog::new()),
        token.clone(),
        Arc::new(|_, _: &str| {}),
    );
    let wait_end = || {
        let (rt, view) = (rt.clone(), view.clone());
        tokio::spawn(async move {
            rt.verify(&vref("good", "WaitEnd"), r#"{"timeout": 600}"#, view)
                .await
        })
    };
    let waiting = wait_end();
    parked(&rt, 1).await;
    // Dropped while parked: the count goes down, nothing is left waiting.
    let dropped = wait_end();
    parked(&rt, 2).await;
    dropped.abort();
    parked(&rt, 1).await;
    token.cancel();
    let e = err(bounded(waiting).await.unwrap());
    assert_eq!(e, "still running (pid 1)");
    assert_eq!(rt.parked_now(), 0);
}

/// A guest that makes other calls on every replay than it made before (it tells a replay
/// by its stopped clock) would park and replay without end — with `"timeout": null`,
/// forever. After a few such replays its next park ends the verification, naming why.
#[tokio::test(flavor = "multi_thread")]
async fn a_guest_that_calls_differently_on_every_replay_fails_instead_of_replaying_forever() {
    let rt = sole("replay", "replayer").await;
    let (view, _tx, _) = running();
    let e = err(bounded(rt.verify(&vref("replay", "Diverge"), r#"{"timeout": null}"#, view)).await);
    assert!(
        e.starts_with(
            "verifier replay.Diverge made other host calls when it was replayed after a wait \
             than it had made before, 4 times (the last: call "
        ),
        "{e}"
    );
    assert_eq!(rt.parked_now(), 0);
}

/// A replayed guest cannot tell from the monotonic clock that it is replayed: before its
/// first answer the clock reads where the first instance's started, not 0.
#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_guest_reads_the_monotonic_clock_where_the_first_instance_did() {
    let rt = sole("replay", "replayer").await;
    let (view, lines) = logged();
    let e = err(bounded(rt.verify(&vref("replay", "Clock"), "{}", view)).await);
    let live = number_after(&lines, "first read");
    let replayed: u128 = e.strip_prefix("first read ").unwrap().parse().unwrap();
    assert!(replayed > 0, "the replayed instance read 0");
    // Strictly below: the instance that finished was a replay, not the first one.
    assert!(replayed < live, "replayed {replayed}, first {live}");
}

/// A replayed guest draws the random numbers it drew the first time (so a `HashMap`'s
/// order, or a random choice, does not make it differ from its record).
#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_guest_draws_the_random_numbers_it_drew_first() {
    let rt = sole("replay", "replayer").await;
    let (view, lines) = logged();
    let verification = {
        let rt = rt.clone();
        tokio::spawn(async move { rt.verify(&vref("replay", "Draw"), "{}", view).await })
    };
    parked(&rt, 1).await;
    let e = err(bounded(verification).await.unwrap());
    let first = number_after(&lines, "drew");
    assert_eq!(e, format!("drew {first}"));
}
