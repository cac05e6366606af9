//! Nothing left behind, whatever happens: `kill -9` of pymanager or of its manager
//! process, processes that misbehave, and zombies. Survivors are found by pid, never by
//! name.
mod common;

use common::*;
use serde_json::json;

/// Children of `pid` that are zombies.
fn zombie_children(pid: i32) -> Vec<i32> {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) else {
        return vec![];
    };
    s.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|p| !alive(*p) && std::path::Path::new(&format!("/proc/{p}")).exists())
        .collect()
}

/// A tree: a shell, its background child, and a `setsid` double-forked grandchild
/// that left the process group; all pids go to `pids`.
fn tree() -> serde_json::Value {
    sh("echo $$ >> pids; sleep 1000 & echo $! >> pids; \
        (setsid sh -c 'echo $$ >> pids; exec sleep 1000' &); wait")
}

fn started_tree(n: usize) -> (Manager, Vec<i32>) {
    let mut procs = serde_json::Map::new();
    for i in 0..n {
        procs.insert(format!("p{i}"), tree());
    }
    let m = Manager::start(json!({"http": {"enabled": true}, "graceful_time": 600,
        "processes": procs}));
    m.wait_status("running");
    assert!(wait_until(WAIT, || read_pids(&m.path("pids")).len() == 3 * n));
    let pids = read_pids(&m.path("pids"));
    (m, pids)
}

#[test]
fn kill_9_of_pymanager_leaves_nothing() {
    let (mut m, mut pids) = started_tree(3);
    let manager = manager_of(m.pid());
    pids.push(manager);
    m.signal(libc::SIGKILL);
    m.wait_exit();
    // The manager kills everything at once when the guardian dies: no 600 s grace.
    assert_all_gone(&pids);
}

#[test]
fn kill_9_of_the_manager_process_leaves_nothing() {
    let (mut m, pids) = started_tree(3);
    let manager = manager_of(m.pid());
    unsafe { libc::kill(manager, libc::SIGKILL) };
    // The guardian exits with the manager's fate after killing what it left.
    assert_eq!(m.wait_exit(), 128 + libc::SIGKILL);
    assert_all_gone(&pids);
    assert!(!m.path(".pymanager/pymanager.json.addr").exists());
}

#[test]
fn misbehaving_processes_are_reported_truthfully() {
    let mut m = Manager::start(json!({"http": {"enabled": true}, "keep-alive": true,
    "processes": {
        "instant": sh("exit 7"),
        "crash": sh("kill -SEGV $$"),
        "closes": sh("exec >&- 2>&-; sleep 1000"),
        "flood": sh("yes flooding-the-output-of-pymanager"),
        "forker": sh("for i in $(seq 300); do sleep 1000 & done; echo $$ > forker.pid; wait")
    }}));
    m.wait_status("running");
    let list = || m.list()["processes"].as_array().unwrap().clone();
    assert!(wait_until(WAIT, || {
        let l = list();
        l[0]["code"] == 7 && l[1]["code"] == -libc::SIGSEGV
    }));
    let l = list();
    assert_eq!(l[2]["status"], "running");
    assert_eq!(l[3]["status"], "running");
    assert!(wait_until(WAIT, || m.path("forker.pid").exists()));
    // The API stays responsive while one process floods its output.
    for _ in 0..20 {
        let s = client().get(format!("{}/status", m.url())).send().unwrap();
        assert_eq!(s.status(), 200);
    }
    let forker: i32 = std::fs::read_to_string(m.path("forker.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let manager = manager_of(m.pid());
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0);
    assert!(!group_alive(forker), "the forker's 300 children survived");
    assert_all_gone(&[manager, forker]);
}

/// The parent of `pid`, while it exists (a zombie included).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the name: state ppid ...
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn no_zombies_are_left_while_running() {
    let m = Manager::start(json!({"http": {"enabled": true}, "keep_alive": true,
        "processes": {
            "a": sh("exit 0"),
            "orphans": sh("for i in 1 2 3 4 5; do (sh -c 'echo $$ >> orphans; exec sleep 0.1' &); done; sleep 1000")}}));
    m.wait_status("running");
    let manager = manager_of(m.pid());
    assert!(wait_until(WAIT, || m.list()["processes"][0]["status"] == "terminated"));
    assert!(wait_until(WAIT, || read_pids(&m.path("orphans")).len() == 5));
    // Each short-lived orphan was re-parented to the manager when its subshell exited, and
    // must be reaped when it ends: a zombie would keep the manager as its parent forever.
    let orphans = read_pids(&m.path("orphans"));
    assert!(
        wait_until(WAIT, || orphans
            .iter()
            .all(|p| parent_of(*p) != Some(manager))),
        "not reaped: {:?}",
        orphans
            .iter()
            .filter(|p| parent_of(**p) == Some(manager))
            .collect::<Vec<_>>()
    );
    assert!(wait_until(WAIT, || zombie_children(manager).is_empty()));
}

fn thread_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

#[test]
fn hundreds_of_restarts_leak_no_descriptor_thread_or_process() {
    let m = Manager::start(json!({"http": {"enabled": true}, "processes": {
        "svc": sh("echo $$ >> pids; sleep 1000 & echo $! >> pids; echo ready; wait")}}));
    m.wait_status("running");
    let manager = manager_of(m.pid());
    let url = format!("{}/restart/1", m.url());
    let c = client();
    // Warm up: the first restarts allocate what is then reused.
    for _ in 0..10 {
        assert_eq!(c.post(&url).send().unwrap().status(), 200);
    }
    let fds = fd_count(manager);
    let threads = thread_count(manager);
    for _ in 0..300 {
        let r = c.post(&url).send().unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
    }
    assert!(
        wait_until(WAIT, || fd_count(manager) <= fds + 2),
        "descriptors grew from {fds} to {}",
        fd_count(manager)
    );
    assert!(thread_count(manager) <= threads + 2, "threads grew");
    // Every earlier run and its background child is gone; only the current pair lives.
    // (A run restarted at once may not have written its pids: those are gone anyway.)
    let leader = m.pids()[0];
    let mut pids = Vec::new();
    assert!(wait_until(WAIT, || {
        pids = read_pids(&m.path("pids"));
        pids.len() >= 2 && pids[pids.len() - 2] == leader
    }));
    let (old, current) = pids.split_at(pids.len() - 2);
    assert!(old.len() > 100, "too few runs recorded: {}", old.len());
    assert_all_gone(old);
    assert!(current.iter().all(|p| alive(*p)));
    assert!(zombie_children(manager).is_empty());
}

#[test]
fn five_hundred_processes_start_and_all_stop() {
    let mut procs = serde_json::Map::new();
    for i in 0..500 {
        procs.insert(
            format!("p{i}"),
            json!({"executable": "sleep", "arguments": ["1000"]}),
        );
    }
    let m = Manager::start(json!({"http": {"enabled": true}, "processes": procs}));
    m.wait_status("running");
    let pids = m.pids();
    assert_eq!(pids.len(), 500);
    let mut m = m;
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0);
    assert_all_gone(&pids);
}
