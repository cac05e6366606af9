//! `port-owned`: does the socket listening at a loopback port belong to the verified
//! process (or one of its descendants), or to someone else — a leftover of an earlier run
//! that still holds the port while the new process failed to bind it and exited?
//!
//! Linux says it (asked by `runtime::listeners`): the listening sockets of a port, with
//! their inodes and owners' uids, come from `sock_diag` netlink (or `/proc/net/tcp{,6}`,
//! state `0A`); a process's open sockets are the `socket:[inode]` links of `/proc/<pid>/fd`;
//! its children are listed in
//! `/proc/<pid>/task/<tid>/children`. A connection to `127.0.0.1:P` reaches the listener
//! bound to that address if there is one, else one bound to the wildcard address
//! (`0.0.0.0:P`, or `[::]:P`, which takes IPv4 too); every listener it could reach must be
//! the tree's.
//!
//! Where the answer cannot be known, the check passes rather than fail a service that is
//! fine: no listener to be seen (another network namespace), or a holder that cannot be
//! found while part of the tree cannot be read (a process run as another user through
//! `sudo`, whose descriptors are not ours to read).

use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};

use super::super::listeners::{Listener, listening_at, pids, sockets_of};
use super::super::types::ModuleInfo;
use super::budget::CpuMeter;
use super::reach::resolve;
use super::{ErrorKind, HostError, fail, not_while_validating};
use crate::process_view::{ProcState, ProcessView};

/// `port-owned` for `module`: `host` and `port` checked against its grants and resolved,
/// then the listeners there against the tree of the verified process. The work is done on
/// a blocking thread and charged to `cpu`; `memo` keeps the last holder found for the next
/// call (see [`check`]). An error is the CPU budget spent.
pub(crate) async fn port_owned(
    module: &ModuleInfo,
    view: Option<ProcessView>,
    cpu: &mut CpuMeter,
    memo: &mut Option<(u64, u32)>,
    host: &str,
    port: u16,
) -> wasmtime::Result<Result<(), HostError>> {
    let Some(view) = view else {
        return Ok(Err(not_while_validating("port-owned")));
    };
    let targets = match resolve(module, host, port).await {
        Ok(t) => t,
        Err(e) => return Ok(Err(e)),
    };
    // No process to hold it against (`pymanager verify` without --pid counts as pid 0).
    let root = match view.state() {
        ProcState::Running { pid } if pid != 0 => pid,
        _ => return Ok(Ok(())),
    };
    let remembered = *memo;
    let (found, remembered) = cpu
        .run_charged(move || {
            let mut remembered = remembered;
            (check(root, &targets, &mut remembered), remembered)
        })
        .await?;
    *memo = remembered;
    Ok(found.map_err(|why| {
        let held = match why {
            NotOwned::By(h) if h.name.is_empty() => format!("pid {}", h.pid),
            NotOwned::By(h) => format!("pid {} ({})", h.pid, h.name),
            NotOwned::Unseen(uid) => {
                format!("a process pymanager cannot see (of user {uid})")
            }
        };
        fail(
            ErrorKind::Failed,
            format!("port {port} is held by {held}, not by {}", view.name()),
        )
    }))
}

/// The process that holds a socket, as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    pub pid: u32,
    pub name: String,
}

/// Why the listener at a port is not the tree's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotOwned {
    /// This process holds it.
    By(Holder),
    /// A process that cannot be seen holds it (another user's): its socket's uid.
    Unseen(u32),
}

/// Checks the listeners a connection to `targets` (loopback addresses, one port) would
/// reach against the tree of processes rooted at `root`. `remembered` is the holder this
/// call found last time (looked at first: a verifier that retries asks again and again),
/// updated with the one found now.
pub(crate) fn check(
    root: u32,
    targets: &[SocketAddr],
    remembered: &mut Option<(u64, u32)>,
) -> Result<(), NotOwned> {
    let loopback: Vec<SocketAddr> = targets
        .iter()
        .copied()
        .filter(|t| t.ip().is_loopback())
        .collect();
    let listening = listening_at(&loopback);
    let mut reached: Vec<Listener> = Vec::new();
    for target in loopback {
        reached.extend(reachable(&listening, target));
    }
    if reached.is_empty() {
        return Ok(());
    }
    let tree = Tree::of(root);
    let stranger = reached.iter().find(|l| !tree.sockets.contains(&l.inode));
    let Some(stranger) = stranger else {
        return Ok(());
    };
    if let Some((inode, pid)) = *remembered
        && inode == stranger.inode
        && sockets_of(pid).is_some_and(|s| s.contains(&inode))
    {
        return Err(NotOwned::By(holder(pid)));
    }
    match find_holder(stranger.inode) {
        Some(pid) => {
            *remembered = Some((stranger.inode, pid));
            Err(NotOwned::By(holder(pid)))
        }
        None if tree.unreadable => Ok(()),
        None => Err(NotOwned::Unseen(stranger.uid)),
    }
}

/// The listeners a connection to `target` may reach: those bound to its address (an IPv4
/// address also as IPv4-mapped IPv6), else those bound to the wildcard address.
fn reachable(listening: &[Listener], target: SocketAddr) -> Vec<Listener> {
    let on_port = listening.iter().filter(|l| l.addr.port() == target.port());
    let ip = target.ip();
    let mapped = match ip {
        IpAddr::V4(v4) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
        IpAddr::V6(_) => None,
    };
    let exact: Vec<Listener> = on_port
        .clone()
        .filter(|l| l.addr.ip() == ip || Some(l.addr.ip()) == mapped)
        .copied()
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    on_port
        .filter(|l| match (ip, l.addr.ip()) {
            (IpAddr::V4(_), IpAddr::V4(a)) => a.is_unspecified(),
            // A socket bound to [::] takes IPv4 too, unless it is IPv6-only, which
            // /proc does not say: counted, so that a stranger there is not missed.
            (_, IpAddr::V6(a)) => a.is_unspecified(),
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        })
        .copied()
        .collect()
}

/// A process and its descendants, with the sockets they hold open.
struct Tree {
    sockets: HashSet<u64>,
    /// True if some process of the tree could not be read (another user's).
    unreadable: bool,
}

impl Tree {
    fn of(root: u32) -> Tree {
        let mut tree = Tree {
            sockets: HashSet::new(),
            unreadable: false,
        };
        let mut seen = HashSet::new();
        let mut todo = VecDeque::from([root]);
        while let Some(pid) = todo.pop_front() {
            if !seen.insert(pid) {
                continue;
            }
            match sockets_of(pid) {
                Some(s) => tree.sockets.extend(s),
                None => tree.unreadable |= std::path::Path::new(&format!("/proc/{pid}")).exists(),
            }
            todo.extend(children(pid));
        }
        tree
    }
}

/// The children of `pid`: what each of its threads lists (`CONFIG_PROC_CHILDREN`), else
/// the processes whose parent it is.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut listed = false;
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            listed = true;
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    if !listed {
        out = pids().filter(|p| parent_of(*p) == Some(pid)).collect();
    }
    out
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name (field 2) may hold spaces and parentheses: count from its end.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The first process found holding socket `inode` open.
fn find_holder(inode: u64) -> Option<u32> {
    pids().find(|pid| sockets_of(*pid).is_some_and(|s| s.contains(&inode)))
}

fn holder(pid: u32) -> Holder {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    Holder { pid, name }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_connection_reaches_the_exact_address_before_the_wildcard() {
        let l = |addr: &str, inode| Listener {
            addr: SocketAddr::new(addr.parse().unwrap(), 80),
            inode,
            uid: 0,
        };
        let all = [l("0.0.0.0", 1), l("::", 2), l("127.0.0.1", 3), l("::1", 4)];
        let to = |a: &str| SocketAddr::new(a.parse().unwrap(), 80);
        let inodes = |v: Vec<Listener>| v.iter().map(|l| l.inode).collect::<Vec<_>>();
        assert_eq!(inodes(reachable(&all, to("127.0.0.1"))), [3]);
        assert_eq!(inodes(reachable(&all, to("::1"))), [4]);
        assert_eq!(inodes(reachable(&all[..2], to("127.0.0.1"))), [1, 2]);
        assert_eq!(inodes(reachable(&all[..2], to("::1"))), [2]);
        assert!(reachable(&all, SocketAddr::new("127.0.0.1".parse().unwrap(), 81)).is_empty());
    }

    #[test]
    fn a_listener_of_this_process_is_owned_and_one_of_another_is_not() {
        let mine = TcpListener::bind("127.0.0.1:0").unwrap();
        let at = mine.local_addr().unwrap();
        let mut remembered = None;
        assert_eq!(check(std::process::id(), &[at], &mut remembered), Ok(()));
        // Seen from a tree this process is not in (pid 1's children do not include it
        // as a root): the holder is this process, by its pid.
        let child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let r = check(child.id(), &[at], &mut remembered);
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        match r {
            Err(NotOwned::By(h)) => assert_eq!(h.pid, std::process::id()),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            remembered.map(|(_, pid)| pid),
            Some(std::process::id()),
            "the holder is remembered for the next attempt"
        );
        // Nothing listens: nothing to hold against the tree.
        drop(mine);
        assert_eq!(check(1, &[at], &mut None), Ok(()));
    }
}
