//! `tcp-connect`: is something listening at a granted host and port?

use std::time::Duration;

use super::super::state::HostState;
use super::not_while_validating;
use super::reach::{resolve, show};

pub(crate) async fn connect(
    st: &mut HostState,
    host: &str,
    port: u16,
    timeout_ms: u32,
) -> Result<(), String> {
    let Some(view) = st.view().cloned() else {
        return Err(not_while_validating("tcp-connect"));
    };
    let module = st.module.clone();
    let _waiting = st.shared.ticker.waiting();
    let timeout = Duration::from_millis(timeout_ms.into());
    let shown = show(
        host.trim().trim_start_matches('[').trim_end_matches(']'),
        port,
    );
    let attempt = async {
        let addrs = resolve(&module, host, port).await?;
        // The checked addresses, not the name: no second resolution.
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addrs[..])).await {
            Ok(Ok(_stream)) => Ok(()),
            Ok(Err(e)) => Err(format!("{shown}: {e}")),
            Err(_) => Err(format!("{shown}: no answer within {timeout_ms} ms")),
        }
    };
    tokio::select! {
        r = attempt => r,
        _ = view.shutdown().cancelled() => Err("pymanager is shutting down".into()),
    }
}
