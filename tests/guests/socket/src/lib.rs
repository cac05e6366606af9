//! Tries to open a TCP connection with std::net (WASI sockets underneath), bypassing the
//! host's granted `tcp-connect`; passes (wrongly) only if it connected.
use pymanager_guest::{Verifier, export_verifiers};
use serde::Deserialize;

#[derive(Deserialize)]
struct Args {
    port: u16,
}

struct RawSocket;
impl Verifier for RawSocket {
    type Args = Args;
    fn verify(a: Args) -> Result<(), String> {
        match std::net::TcpStream::connect(("127.0.0.1", a.port)) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("no socket: {e}")),
        }
    }
}

export_verifiers!(RawSocket);
