//! Named ports (`"ports": {"http": 0}`): a number is fixed; 0 is a free loopback port
//! picked here, once per start of pymanager, so that copies of one config never collide and
//! a process keeps its port across restarts.
//!
//! A picked port stays bound (never listening) by pymanager until its process is spawned:
//! another pymanager picking ports meanwhile is never handed the same one.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, socket};

use crate::config::{Config, ConfigError, port_var};

/// One named port of a process, resolved to its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Its name under `ports`.
    pub name: Arc<str>,
    /// Its number.
    pub number: u16,
}

/// The sockets that keep a process's picked ports from being picked by anyone else, until
/// the process is spawned (it then binds them itself).
#[derive(Debug, Default)]
pub struct PortHold(Mutex<Vec<OwnedFd>>);

impl PortHold {
    /// Lets the ports go: called right before the process that owns them is spawned. Later
    /// calls do nothing.
    pub fn release(&self) {
        if let Ok(mut held) = self.0.lock() {
            held.clear();
        }
    }

    /// The descriptors held, for a process that forks and must not keep them (the
    /// guardian).
    pub fn raw_fds(&self) -> Vec<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.0
            .lock()
            .map(|h| h.iter().map(AsRawFd::as_raw_fd).collect())
            .unwrap_or_default()
    }
}

/// Every process's ports, by process name, in config order.
pub type PortTable = IndexMap<String, Vec<Port>>;

/// Resolves every process's ports: fixed ones as written, 0 picked (and held). Returns the
/// table and, per process in config order, the hold of its picked ports.
pub fn resolve(config: &Config) -> Result<(PortTable, Vec<PortHold>), ConfigError> {
    let mut table = PortTable::new();
    let mut holds = Vec::with_capacity(config.processes.len());
    for (process, p) in &config.processes {
        let mut ports = Vec::with_capacity(p.ports.len());
        let mut held = Vec::new();
        for (name, &number) in &p.ports {
            let number = if number == 0 {
                let (fd, n) = pick().map_err(|e| {
                    ConfigError::invalid(
                        format!("processes.{process}.ports.{name}"),
                        format!(
                            "cannot pick a free port on 127.0.0.1: {}",
                            crate::error_text::io(&std::io::Error::from(e))
                        ),
                    )
                })?;
                held.push(fd);
                n
            } else {
                number
            };
            ports.push(Port {
                name: Arc::from(name.as_str()),
                number,
            });
        }
        table.insert(process.clone(), ports);
        holds.push(PortHold(Mutex::new(held)));
    }
    Ok((table, holds))
}

/// A free port on 127.0.0.1, and the socket bound to it (not listening: a connection to it
/// is refused, as if nothing were there yet).
fn pick() -> nix::Result<(OwnedFd, u16)> {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::new(127, 0, 0, 1, 0),
    )?;
    let at: SockaddrIn = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd))?;
    Ok((fd, at.port()))
}

/// Every port as its environment variable, in config order: what `pymanager run` gives its
/// command, and `--write-env` writes.
pub fn all_vars(table: &PortTable) -> Vec<(String, String)> {
    table
        .iter()
        .flat_map(|(process, ports)| {
            ports
                .iter()
                .map(move |p| (port_var(process, &p.name), p.number.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_are_upper_case_with_underscores() {
        assert_eq!(port_var("web", "http"), "PYMANAGER_PORT_WEB_HTTP");
        assert_eq!(
            port_var("my-db.1", "admin-1"),
            "PYMANAGER_PORT_MY_DB_1_ADMIN_1"
        );
        assert_eq!(port_var("é", "x"), "PYMANAGER_PORT___X");
    }

    #[test]
    fn picked_ports_are_held_until_released() {
        let config = crate::config::parse(
            br#"{"processes": {"a": {"executable": "true", "arguments": [],
                 "ports": {"http": 0, "fixed": 9000}}}}"#,
            std::path::Path::new("t.json"),
        )
        .unwrap()
        .config;
        let (table, holds) = resolve(&config).unwrap();
        let ports = &table["a"];
        assert_eq!(ports[1].number, 9000);
        let picked = ports[0].number;
        assert_ne!(picked, 0);
        // Held: nobody else can bind it.
        assert!(std::net::TcpListener::bind(("127.0.0.1", picked)).is_err());
        holds[0].release();
        let l = std::net::TcpListener::bind(("127.0.0.1", picked)).unwrap();
        drop(l);
        holds[0].release();
    }
}
