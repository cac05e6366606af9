//! The REST API (placeholder until the warp server lands): `GET /status` and `GET /` in
//! the original's shapes, enough for scripts that wait for `running`.

use std::future::Future;
use std::net::SocketAddr;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::supervisor::SupervisorHandle;

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Address to bind.
    pub host: String,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// Bearer token required on every request.
    pub token: Option<String>,
}

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Binding failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Binds and returns the bound address and the server future.
pub async fn bind(
    handle: SupervisorHandle,
    config: ApiConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = ()> + Send + 'static), ApiError> {
    let addr = format!("{}:{}", config.host, config.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| ApiError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(|source| ApiError::Bind {
        addr: config.host.clone(),
        source,
    })?;
    let server = async move {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                Ok((mut sock, _)) = listener.accept() => {
                    let handle = handle.clone();
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 8192];
                        let Ok(n) = sock.read(&mut buf).await else { return };
                        let req = String::from_utf8_lossy(&buf[..n]);
                        let line = req.lines().next().unwrap_or("");
                        let snap = handle.snapshot();
                        let body = match line.split_whitespace().nth(1) {
                            Some("/status") => json!({"status": snap.phase.as_str()}),
                            _ => json!({"count": snap.processes.len(), "processes":
                                snap.processes.iter().map(|p| match p.state.legacy_code() {
                                    None => json!({"id": p.id, "command": p.command, "status": p.legacy_status(),
                                        "pid": match p.state { crate::process_view::ProcState::Running { pid } => Some(pid), _ => None }}),
                                    Some(c) => json!({"id": p.id, "command": p.command, "status": p.legacy_status(), "code": c}),
                                }).collect::<Vec<_>>()}),
                        }.to_string();
                        let resp = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                        let _ = sock.write_all(resp.as_bytes()).await;
                    });
                }
            }
        }
    };
    Ok((local, server))
}
