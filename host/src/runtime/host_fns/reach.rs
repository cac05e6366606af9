//! The one way out of the sandbox for HTTP and TCP: a host and port is checked against the
//! module's grants, resolved once, and every address it resolved to is checked against the
//! addresses no verifier may reach; the caller then connects to those addresses and no
//! others. A name is never resolved a second time by the connection (a DNS answer that
//! changes between the check and the connection cannot move it elsewhere).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::super::forbidden::forbidden;
use super::super::listeners::pymanager_on;
use super::super::state::ModuleInfo;
use super::super::types::HostGrants;
use super::{ErrorKind, HostError, fail};

/// Longest wait for a name to resolve; the call's own time-out applies as well.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where `host`:`port` may be reached: the addresses to connect to, all checked.
pub(crate) async fn resolve(
    module: &ModuleInfo,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, HostError> {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(fail(ErrorKind::BadRequest, "no host"));
    }
    let shown = show(host, port);
    if !module.grants.hosts.allows(host, port) {
        let alias = &module.alias;
        return Err(fail(
            ErrorKind::NotGranted,
            format!(
                "{shown} is not granted to module '{alias}': add \"{shown}\" to \
                 modules.{alias}.allow.hosts"
            ),
        ));
    }
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            let lookup = tokio::net::lookup_host((host, port));
            match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                Ok(Ok(found)) => found.collect(),
                Ok(Err(e)) => return Err(format!("{shown}: cannot resolve {host}: {e}").into()),
                Err(_) => {
                    return Err(fail(
                        ErrorKind::TimedOut,
                        format!("{shown}: resolving {host} took too long"),
                    ));
                }
            }
        }
    };
    if addrs.is_empty() {
        return Err(format!("{shown}: {host} resolves to no address").into());
    }
    for addr in &addrs {
        if let Some(api) = forbidden(*addr) {
            return Err(fail(
                ErrorKind::NotGranted,
                format!(
                    "{shown} is pymanager's own REST API ({api}): no verifier may reach it, \
                 whatever its grants"
                ),
            ));
        }
    }
    if matches!(module.grants.hosts, HostGrants::Loopback) {
        let targets = addrs.clone();
        let found = tokio::task::spawn_blocking(move || pymanager_on(&targets))
            .await
            .ok()
            .flatten();
        if let Some((addr, pid)) = found {
            let alias = &module.alias;
            return Err(fail(
                ErrorKind::NotGranted,
                format!(
                    "{shown} is the REST API of another pymanager (pid {pid}, at {addr}): a \
                     Python module's default grant (loopback) never reaches a pymanager; if \
                     it must, add \"{shown}\" to modules.{alias}.allow.hosts"
                ),
            ));
        }
    }
    Ok(addrs)
}

/// `host:port`, with brackets around an IPv6 address.
pub(crate) fn show(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
