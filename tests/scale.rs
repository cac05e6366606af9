//! A thousand processes: started in parallel, listed, restarted in bulk and stopped, with
//! nothing left behind — no process, no zombie, no descriptor. Functional only: how fast
//! is the benchmarks' business (`bench/run.sh --only scale`).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;

const N: usize = 1000;

/// Time for what a thousand processes do at once on a busy machine; every wait still ends
/// as soon as its event happens.
const LONG: Duration = Duration::from_secs(180);

/// The manager's own children, zombies included.
fn children(manager: i32) -> HashSet<i32> {
    let mut out = HashSet::new();
    for task in std::fs::read_dir(format!("/proc/{manager}/task")).unwrap() {
        let path = task.unwrap().path().join("children");
        if let Ok(list) = std::fs::read_to_string(path) {
            out.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    out
}

/// The manager's pipes and pidfds.
fn process_descriptors(manager: i32) -> usize {
    std::fs::read_dir(format!("/proc/{manager}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| {
            let t = target.to_string_lossy();
            t.starts_with("pipe:") || t.contains("pidfd")
        })
        .count()
}

/// Descriptors a process holds, as (number, target).
fn descriptors(pid: i32) -> Vec<(String, String)> {
    let mut fds: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                target.display().to_string(),
            ))
        })
        .collect();
    fds.sort();
    fds
}

/// Stops everything over the API (`DELETE /`) and waits for the manager to exit 0.
fn stop_and_exit_0(m: &mut Manager) {
    let r = client().delete(format!("{}/", m.url())).send().unwrap();
    assert_eq!(r.status(), 200);
    let code = m
        .wait_exit_within(LONG)
        .unwrap_or_else(|| panic!("the manager did not exit; output:\n{}", m.output()));
    assert_eq!(code.code(), Some(0), "{}", m.output());
}

/// The running pids `GET /` lists, once it lists `N` running processes.
fn all_running(m: &Manager) -> Vec<i32> {
    let mut pids = Vec::new();
    let ok = wait_until(LONG, || {
        let list = m.list();
        assert_eq!(list["count"], N, "{list}");
        pids = m.pids();
        pids.len() == N
    });
    assert!(
        ok,
        "only {} of {N} run; output:\n{}",
        pids.len(),
        m.output()
    );
    pids
}

#[test]
fn a_thousand_processes_start_restart_and_stop_leaving_nothing() {
    let mut m = Manager::start(sleeps(N));
    let manager = m.manager_pid();
    let started = std::time::Instant::now();
    assert!(
        wait_until(LONG, || client()
            .get(format!("{}/status", m.url()))
            .send()
            .and_then(|r| r.text())
            .is_ok_and(|t| t.contains("\"running\""))),
        "not running; output:\n{}",
        m.output()
    );
    eprintln!("{N} processes running after {:?}", started.elapsed());

    // Listed, each once, each a child of the manager and leading its own group.
    let first = all_running(&m);
    let unique: HashSet<i32> = first.iter().copied().collect();
    assert_eq!(unique.len(), N);
    assert_eq!(
        children(manager),
        unique,
        "the manager's children are the processes"
    );
    for &pid in first.iter().step_by(97) {
        assert_eq!(pgid_of(pid), Some(pid));
        // The child got its stdin and output, and nothing else of the manager's ~3000
        // descriptors (it shares the table only until it makes its own).
        let fds = descriptors(pid);
        let names: Vec<&str> = fds.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["0", "1", "2"], "{pid}: {fds:?}");
    }
    let v1 = m.get_json("/api/v1/processes");
    assert_eq!(v1["count"], N);
    // An output pipe, a stdin pipe and a pidfd per process, and a few of its own.
    let held = process_descriptors(manager);
    assert!((3 * N..3 * N + 20).contains(&held), "{held} descriptors");

    // Restarted in bulk: every process at once, from a few clients.
    let url = m.url();
    std::thread::scope(|s| {
        for part in 0..8 {
            let url = &url;
            s.spawn(move || {
                let c = client();
                for id in (1..=N).filter(|id| id % 8 == part) {
                    let r = c
                        .post(format!("{url}/api/v1/processes/{id}/restart"))
                        .send()
                        .unwrap();
                    let status = r.status();
                    let body = r.text().unwrap();
                    assert_eq!(status, 200, "restart {id}: {body}");
                }
            });
        }
    });
    let second = all_running(&m);
    let renewed: HashSet<i32> = second.iter().copied().collect();
    assert_eq!(renewed.len(), N);
    assert!(
        renewed.is_disjoint(&unique),
        "every process runs anew after its restart"
    );
    // The old runs are gone and reaped: the manager's children are the new ones only (a
    // zombie would still be listed), and it holds no more descriptors than before.
    assert!(wait_all_gone(&first, LONG).is_ok(), "an old run survived");
    assert!(
        wait_until(LONG, || children(manager) == renewed),
        "zombies or strays among the manager's children"
    );
    assert_eq!(process_descriptors(manager), held, "descriptors leaked");

    // Stopped: everything ends, the manager exits 0, nothing is left.
    stop_and_exit_0(&mut m);
    assert!(
        wait_all_gone(&second, LONG).is_ok(),
        "a process outlived the manager"
    );
    for pid in second.iter().step_by(97) {
        assert!(
            !group_alive(*pid),
            "the group of {pid} outlived the manager"
        );
    }
}

/// The manager grows its descriptor table for all its processes before it starts the
/// first: growing it while they start would stop the spawning thread for an RCU grace
/// period at each doubling (see `supervisor::fd_limit::reserve`).
#[test]
fn the_descriptor_table_is_grown_for_every_process_before_the_first_starts() {
    let mut cfg = sleeps(N);
    // Everything waits for the first to have exited, which it never does: one runs.
    for (name, p) in cfg["processes"].as_object_mut().unwrap() {
        if name != "s0000" {
            p["depends_on"] = serde_json::json!({"s0000": "exited"});
        }
    }
    let mut m = Manager::start(cfg);
    let manager = m.manager_pid();
    assert!(
        wait_until(LONG, || m.pids().len() == 1),
        "the first process does not run; output:\n{}",
        m.output()
    );
    let fd_size: usize = std::fs::read_to_string(format!("/proc/{manager}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("FDSize:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        fd_size >= 3 * N,
        "a table of {fd_size} descriptors for {N} processes"
    );
    assert!(process_descriptors(manager) < 10, "only one process runs");
    stop_and_exit_0(&mut m);
}
