//! Which sockets of this machine another pymanager listens on: what the default grant of a
//! Python module (loopback, see [`super::HostGrants::Loopback`]) must not reach.
//!
//! The manager's own API is forbidden to every verifier ([`super::forbid_address`]), but
//! that list is per process; another pymanager of the same user (a second copy of the
//! config, another project's environment) has an API that answers `DELETE /` without a
//! token unless one is set. So before a loopback-granted module connects, the listening
//! sockets of the addresses it would reach are looked up in `/proc/net/tcp{,6}` and their
//! owners among the processes this user may inspect: a process named `pymanager`, or
//! running the same executable as this one, is a pymanager. Looked up at each connection
//! (a manager started after the check is still seen); a few reads of `/proc`, on a
//! blocking thread.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;

use super::forbidden::same_listener;

/// The first of `targets` on which a pymanager listens, with that pymanager's pid.
/// Blocking.
pub(crate) fn pymanager_on(targets: &[SocketAddr]) -> Option<(SocketAddr, u32)> {
    let listening = listening_sockets();
    let mut inodes: Vec<(SocketAddr, u64)> = Vec::new();
    for target in targets {
        for (bound, inode) in &listening {
            if bound.port() == target.port() && same_listener(bound.ip(), target.ip()) {
                inodes.push((*target, *inode));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let me = std::fs::metadata("/proc/self/exe").ok();
    for pid in pymanagers(me.as_ref()) {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let link = link.to_string_lossy();
            if let Some(inode) = link
                .strip_prefix("socket:[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok())
                && let Some((target, _)) = inodes.iter().find(|(_, i)| *i == inode)
            {
                return Some((*target, pid));
            }
        }
    }
    None
}

/// Every listening TCP socket of this network namespace: (bound address, inode).
fn listening_sockets() -> Vec<(SocketAddr, u64)> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            out.extend(text.lines().skip(1).filter_map(parse_line));
        }
    }
    out
}

/// One line of `/proc/net/tcp{,6}`, if it is a listening socket.
fn parse_line(line: &str) -> Option<(SocketAddr, u64)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
    const LISTEN: &str = "0A";
    if fields.len() < 10 || fields[3] != LISTEN {
        return None;
    }
    let (ip, port) = fields[1].split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = parse_ip(ip)?;
    let inode = fields[9].parse().ok()?;
    Some((SocketAddr::new(ip, port), inode))
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

/// The pids of the pymanagers this process may inspect: named `pymanager`, or running the
/// executable `me` is.
fn pymanagers(me: Option<&std::fs::Metadata>) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
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
            assert_eq!(parse_line(v4), Some((want, 12345)));
        }
        let established = v4.replace(" 0A ", " 01 ");
        assert_eq!(parse_line(&established), None);
        let v6 = "   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1";
        if cfg!(target_endian = "little") {
            assert_eq!(parse_line(v6), Some(("[::1]:8080".parse().unwrap(), 777)));
        }
    }

    #[test]
    fn a_listener_of_a_process_running_this_executable_is_found() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        assert!(listening_sockets().iter().any(|(a, _)| *a == addr));
        // This test binary runs the executable it is: it counts as a pymanager.
        assert_eq!(pymanager_on(&[addr]), Some((addr, std::process::id())));
        let wild = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), addr.port());
        assert_eq!(pymanager_on(&[wild]), Some((wild, std::process::id())));
        drop(l);
        assert_eq!(pymanager_on(&[addr]), None);
    }
}
