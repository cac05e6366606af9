//! `tcp-connect`: is something listening at a granted host and port?

use std::time::Duration;

use super::super::state::HostState;
use super::{ErrorKind, HostError, fail, io_kind, not_granted, not_while_validating};

pub(crate) async fn connect(
    st: &mut HostState,
    host: &str,
    port: u16,
    timeout_ms: u32,
) -> Result<(), HostError> {
    let Some(view) = st.view().cloned() else {
        return Err(not_while_validating("tcp-connect"));
    };
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(fail(ErrorKind::BadRequest, "tcp-connect: empty host"));
    }
    if !st.module.grants.hosts.allows(host, port) {
        return Err(not_granted(&st.module.alias, host, port));
    }
    let _waiting = st.shared.ticker.waiting();
    let timeout = Duration::from_millis(timeout_ms.into());
    let connect = tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port)));
    tokio::select! {
        r = connect => match r {
            Ok(Ok(_stream)) => Ok(()),
            Ok(Err(e)) => Err(fail(io_kind(&e), format!("{host}:{port}: {e}"))),
            Err(_) => Err(fail(
                ErrorKind::TimedOut,
                format!("{host}:{port}: no answer within {timeout_ms} ms"),
            )),
        },
        _ = view.shutdown().cancelled() => {
            Err(fail(ErrorKind::ShuttingDown, "pymanager is shutting down"))
        }
    }
}
