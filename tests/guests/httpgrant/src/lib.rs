//! Calls HTTP and TCP on whatever its arguments name, granted or not; passes (wrongly) only
//! if the host let a call through. Returns the host's refusal otherwise. `RetryAnywhere`
//! does the same in the SDK's retry loop, for ten minutes: a refusal must end it at once.
use pymanager_guest::{Verifier, export_verifiers, http, retry, secs, tcp};
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
        http::get(&a.url, &[], secs(5.0))
            .map(|_| ())
            .map_err(String::from)
    }
}

struct RetryAnywhere;
impl Verifier for RetryAnywhere {
    type Args = Args;
    fn verify(a: Args) -> Result<(), String> {
        retry::every(secs(1.0)).for_at_most(secs(600.0)).run(|| {
            http::get(&a.url, &[], secs(5.0))?;
            Ok(())
        })
    }
}

struct TcpAnywhere;
impl Verifier for TcpAnywhere {
    type Args = TcpArgs;
    fn verify(a: TcpArgs) -> Result<(), String> {
        tcp::connect(&a.host, a.port, secs(5.0)).map_err(String::from)
    }
}

export_verifiers!(HttpAnywhere, TcpAnywhere, RetryAnywhere);
