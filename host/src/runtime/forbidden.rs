//! Addresses no verifier may reach, whatever its grants: the manager's own REST API.
//!
//! A verifier that could call the API could read every process's output and stop or
//! restart anything; granting a module `127.0.0.1:5001` must not be a way to that. The API
//! registers each address it listens on here, after binding its socket and before
//! listening on it, so that no connection to it can have been accepted before the address
//! is known here. The list is per process (every API this process serves is its own).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::RwLock;

static FORBIDDEN: RwLock<Vec<SocketAddr>> = RwLock::new(Vec::new());

/// Adds `addr` (as bound: an unspecified address such as `0.0.0.0:5001` stands for that port
/// on every address of this machine) to the addresses no verifier may reach.
pub fn forbid_address(addr: SocketAddr) {
    let mut list = FORBIDDEN.write().unwrap_or_else(|e| e.into_inner());
    if !list.contains(&addr) {
        list.push(addr);
    }
}

/// The forbidden address that `target` would reach, if any.
pub(crate) fn forbidden(target: SocketAddr) -> Option<SocketAddr> {
    let list = FORBIDDEN.read().unwrap_or_else(|e| e.into_inner());
    list.iter()
        .copied()
        .find(|f| f.port() == target.port() && same_listener(f.ip(), target.ip()))
}

/// True when a connection to `target` would reach a socket listening on `bound`.
pub(crate) fn same_listener(bound: IpAddr, target: IpAddr) -> bool {
    let target = canonical(target);
    if canonical(bound) == target {
        return true;
    }
    // Connecting to 0.0.0.0 or :: reaches this machine.
    if target.is_unspecified() {
        return true;
    }
    // A wildcard listener (`0.0.0.0`, or `::`, which takes IPv4 too) answers on every
    // address of this machine.
    bound.is_unspecified() && is_local(target)
}

/// IPv4-mapped IPv6 (`::ffff:127.0.0.1`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// True when `ip` is one of this machine's addresses: binding a socket to it works only then.
fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified() || UdpSocket::bind((ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_address_and_its_aliases_are_forbidden() {
        let port = 1; // nothing listens here; the list is only compared
        forbid_address(SocketAddr::from(([127, 0, 0, 1], port)));
        let at = |s: &str| forbidden(s.parse().unwrap());
        assert!(at("127.0.0.1:1").is_some());
        assert!(at("[::ffff:127.0.0.1]:1").is_some());
        assert!(at("0.0.0.0:1").is_some());
        assert!(at("127.0.0.1:2").is_none());
        assert!(at("10.255.255.1:1").is_none());
    }

    #[test]
    fn a_wildcard_listener_is_forbidden_on_every_local_address() {
        let port = 3;
        forbid_address(SocketAddr::from(([0, 0, 0, 0], port)));
        let at = |s: &str| forbidden(s.parse().unwrap());
        assert!(at("127.0.0.1:3").is_some());
        assert!(at("127.0.0.53:3").is_some());
        assert!(at("[::1]:3").is_some());
        assert!(at("127.0.0.1:4").is_none());
        // Not an address of this machine (TEST-NET-3, never assigned).
        assert!(at("203.0.113.7:3").is_none());
    }
}
