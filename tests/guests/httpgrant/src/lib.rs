//! Calls HTTP and TCP on whatever its arguments name, granted or not; passes (wrongly) only
//! if the host let a call through. Returns the host's refusal otherwise.
use pymanager_guest::{Verifier, export_verifiers, http, secs, tcp};
use serde::Deserialize;

#[derive(Deserialize)]
struct Args {
    url: String,
}

#[derive(Deserialize)]
struct TcpArgs {
    host: String,
    port: u16,
}

struct HttpAnywhere;
impl Verifier for HttpAnywhere {
    type Args = Args;
    fn verify(a: Args) -> Result<(), String> {
        http::get(&a.url, &[], secs(5.0)).map(|_| ())
    }
}

struct TcpAnywhere;
impl Verifier for TcpAnywhere {
    type Args = TcpArgs;
    fn verify(a: TcpArgs) -> Result<(), String> {
        tcp::connect(&a.host, a.port, secs(5.0))
    }
}

export_verifiers!(HttpAnywhere, TcpAnywhere);
