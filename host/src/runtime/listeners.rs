//! Which sockets of this machine another pymanager listens on: what the default grant of a
//! Python module (loopback, see [`super::HostGrants::Loopback`]) must not reach.
//!
//! The manager's own API is forbidden to every verifier ([`super::forbid_address`]), but
//! that list is per process; another pymanager of the same user (a second copy of the
//! config, another project's environment) has an API that answers `DELETE /` without a
//! token unless one is set. So before a loopback-granted module connects, the listening
//! sockets of the addresses it would reach are asked of the kernel ([`diag`], or
//! `/proc/net/tcp{,6}` where it does not answer) and their owners looked up among the
//! processes this user may inspect: a process named `pymanager`, or running the same
//! executable as this one, is a pymanager. Looked up at each connection (a manager started
//! after the check is still seen), on a blocking thread.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;

use super::forbidden::same_listener;

mod diag;

/// The first of `targets` on which a pymanager listens, with that pymanager's pid.
/// Blocking.
pub(crate) fn pymanager_on(targets: &[SocketAddr]) -> Option<(SocketAddr, u32)> {
    let listening = listening_at(targets);
    let mut inodes: Vec<(SocketAddr, u64)> = Vec::new();
    for target in targets {
        for l in &listening {
            if l.addr.port() == target.port() && same_listener(l.addr.ip(), target.ip()) {
                inodes.push((*target, l.inode));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let me = std::fs::metadata("/proc/self/exe").ok();
    pymanagers(me.as_ref()).into_iter().find_map(|pid| {
        let sockets = sockets_of(pid)?;
        let (target, _) = inodes.iter().find(|(_, i)| sockets.contains(i))?;
        Some((*target, pid))
    })
}

/// A listening TCP socket: where it is bound, its inode (which names it among a process's
/// descriptors) and its owner's uid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Listener {
    pub addr: SocketAddr,
    pub inode: u64,
    pub uid: u32,
}

/// The TCP sockets listening on the ports of `targets`, each port asked once (the
/// addresses a name resolves to share theirs).
pub(crate) fn listening_at(targets: &[SocketAddr]) -> Vec<Listener> {
    let mut ports: Vec<u16> = targets.iter().map(SocketAddr::port).collect();
    ports.sort_unstable();
    ports.dedup();
    ports.into_iter().flat_map(listening_on).collect()
}

/// The TCP sockets of this network namespace listening on `port`: asked of the kernel
/// over `sock_diag`, else read from `/proc/net/tcp{,6}`.
fn listening_on(port: u16) -> Vec<Listener> {
    diag::listening_on(port).unwrap_or_else(|| {
        listening_in_proc()
            .into_iter()
            .filter(|l| l.addr.port() == port)
            .collect()
    })
}

/// Every listening TCP socket of this network namespace, as `/proc/net/tcp{,6}` lists
/// them: the way that needs no netlink, and costs a walk of every connection slot.
fn listening_in_proc() -> Vec<Listener> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            out.extend(text.lines().skip(1).filter_map(parse_line));
        }
    }
    out
}

/// One line of `/proc/net/tcp{,6}`, if it is a listening socket.
fn parse_line(line: &str) -> Option<Listener> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
    const LISTEN: &str = "0A";
    if fields.len() < 10 || fields[3] != LISTEN {
        return None;
    }
    let (ip, port) = fields[1].split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some(Listener {
        addr: SocketAddr::new(parse_ip(ip)?, port),
        uid: fields[7].parse().ok()?,
        inode: fields[9].parse().ok()?,
    })
}

/// An address as the kernel prints it: each 32-bit word in hex, in the machine's byte
/// order.
fn parse_ip(hex: &str) -> Option<IpAddr> {
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(0)?))),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// The socket inodes `pid` holds open; `None` if its descriptors cannot be read (another
/// user's process, or gone).
pub(crate) fn sockets_of(pid: u32) -> Option<HashSet<u64>> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        fds.flatten()
            .filter_map(|fd| {
                let link = std::fs::read_link(fd.path()).ok()?;
                let link = link.to_str()?;
                link.strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .parse()
                    .ok()
            })
            .collect(),
    )
}

/// The pids of this pid namespace's processes.
pub(crate) fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
}

/// The pids of the pymanagers this process may inspect: named `pymanager`, or running the
/// executable `me` is.
fn pymanagers(me: Option<&std::fs::Metadata>) -> Vec<u32> {
    pids()
        .filter(|pid| {
            let named = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim_end() == "pymanager");
            named
                || me.is_some_and(|me| {
                    std::fs::metadata(format!("/proc/{pid}/exe"))
                        .is_ok_and(|m| m.dev() == me.dev() && m.ino() == me.ino())
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_lines_are_read() {
        let v4 = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0";
        let want = "127.0.0.1:8080".parse::<SocketAddr>().unwrap();
        if cfg!(target_endian = "little") {
            let got = parse_line(v4).unwrap();
            assert_eq!((got.addr, got.inode, got.uid), (want, 12345, 0));
        }
        let established = v4.replace(" 0A ", " 01 ");
        assert_eq!(parse_line(&established), None);
        let v6 = "   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1";
        if cfg!(target_endian = "little") {
            let got = parse_line(v6).unwrap();
            assert_eq!((got.addr, got.inode), ("[::1]:8080".parse().unwrap(), 777));
        }
    }

    #[test]
    fn the_kernel_and_proc_name_the_same_listeners_of_a_port() {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = v4.local_addr().unwrap().port();
        // The same port on IPv6 where the machine has it: both families are asked.
        let v6 = std::net::TcpListener::bind(("::1", port)).ok();
        let key = |l: &Listener| (l.addr, l.inode, l.uid);
        let mut asked: Vec<_> = diag::listening_on(port)
            .expect("sock_diag answers on Linux")
            .iter()
            .map(key)
            .collect();
        let mut read: Vec<_> = listening_in_proc()
            .iter()
            .filter(|l| l.addr.port() == port)
            .map(key)
            .collect();
        asked.sort();
        read.sort();
        assert_eq!(asked, read);
        assert_eq!(asked.len(), 1 + usize::from(v6.is_some()));
        drop((v4, v6));
        closed_soon(|| diag::listening_on(port) == Some(Vec::new()));
    }

    /// Waits until `gone` holds after a listener was closed. A process another test
    /// starts at that moment holds a copy of this process's descriptors until its
    /// `execve` closes them, so the socket may outlive its close for a little while.
    fn closed_soon(gone: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !gone() {
            assert!(
                std::time::Instant::now() < deadline,
                "still listening 30 s after the close"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn a_listener_of_a_process_running_this_executable_is_found() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        assert!(listening_on(addr.port()).iter().any(|l| l.addr == addr));
        assert!(listening_in_proc().iter().any(|l| l.addr == addr));
        // This test binary runs the executable it is: it counts as a pymanager.
        assert_eq!(pymanager_on(&[addr]), Some((addr, std::process::id())));
        let wild = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), addr.port());
        assert_eq!(pymanager_on(&[wild]), Some((wild, std::process::id())));
        drop(l);
        closed_soon(|| pymanager_on(&[addr]).is_none());
    }
}
