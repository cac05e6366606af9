//! `tcp-connect`: is something listening at a granted host and port?

use std::time::Duration;

use super::super::types::ModuleInfo;
use super::reach::{resolve, show};
use super::{ErrorKind, HostError, fail, io_kind, not_while_validating};
use crate::process_view::ProcessView;

/// Connects to `host`:`port` (granted to `module`) and closes; refused while there is no
/// process (validating).
pub(crate) async fn connect(
    module: &ModuleInfo,
    view: Option<ProcessView>,
    host: &str,
    port: u16,
    timeout_ms: u32,
) -> Result<(), HostError> {
    let Some(view) = view else {
        return Err(not_while_validating("tcp-connect"));
    };
    let timeout = Duration::from_millis(timeout_ms.into());
    let shown = show(
        host.trim().trim_start_matches('[').trim_end_matches(']'),
        port,
    );
    let attempt = async {
        let addrs = resolve(module, host, port).await?;
        // The checked addresses, not the name: no second resolution.
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addrs[..])).await {
            Ok(Ok(_stream)) => Ok(()),
            Ok(Err(e)) => Err(fail(io_kind(&e), format!("{shown}: {e}"))),
            Err(_) => Err(fail(
                ErrorKind::TimedOut,
                format!("{shown}: no answer within {timeout_ms} ms"),
            )),
        }
    };
    tokio::select! {
        r = attempt => r,
        _ = view.shutdown().cancelled() => {
            Err(fail(ErrorKind::ShuttingDown, "pymanager is shutting down"))
        }
    }
}
