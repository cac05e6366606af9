//! `pymanager ctl`: controls a running pymanager over its REST API, so that scripts and
//! people never have to hand-write `curl` calls or know the port.
//!
//! The manager is found from its config file: the address file it writes
//! (`<config dir>/.pymanager/<config file name>.addr`), else the config's `http.host` and
//! `http.port`, else `--url`. Every command is one request to `/api/v1/` (two for `wait`'s
//! retries), and every failure is one line on stderr and one exit code.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

/// Exit code: done.
pub const EXIT_OK: i32 = 0;
/// Exit code: the manager refused or failed the request, or start-up failed.
pub const EXIT_FAILED: i32 = 1;
/// Exit code: no manager could be reached.
pub const EXIT_UNREACHABLE: i32 = 2;
/// Exit code: `wait` ran out of time.
pub const EXIT_TIMEOUT: i32 = 3;

const EXIT_CODES_HELP: &str = "\
Finding the manager: --url if given; else the address file the manager writes,
<config dir>/.pymanager/<config file name>.addr; else http.host and http.port of the
config. Token: --token, else PYMANAGER_TOKEN, else http.token of the config.

Exit codes:
  0  done
  1  the manager refused or failed the request (or start-up failed, for wait)
  2  the manager cannot be reached
  3  wait: the manager was not running before the timeout";

/// Talk to a running pymanager: list, restart, stop and start its processes, read their
/// output, or wait until it is running.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct CtlArgs {
    /// The config file of the manager to talk to.
    ///
    /// Named `file` like the top-level `-f`, so that the top-level one is not also added
    /// here (clap skips a global argument whose id exists) and `logs -f` stays free.
    #[arg(short = 'f', long = "file", default_value = "pymanager.json")]
    pub file: PathBuf,

    /// The manager's base URL (e.g. http://127.0.0.1:5001), instead of finding it.
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,

    /// Bearer token for the API [default: $PYMANAGER_TOKEN, else http.token of the config].
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Print the API's JSON answer instead of a human-readable one.
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// The `ctl` commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum CtlCommand {
    /// Print the manager's phase (running, shutdown, ...) and how many processes run.
    Status,
    /// List the processes: id, name, state, pid or exit code, verifier, command.
    List,
    /// Restart a process (graceful stop, start, verify); waits until it is verified.
    Restart {
        /// The process: its id (1, 2, ...) or its name in the config.
        process: String,
    },
    /// Stop one process; without a process, shut the whole manager down.
    Stop {
        /// The process: its id or its name. Omit it to shut the manager down.
        process: Option<String>,
    },
    /// Start a stopped or ended process; waits until it is verified.
    Start {
        /// The process: its id or its name.
        process: String,
    },
    /// Print a process's last output lines; with -f, keep printing new ones.
    Logs {
        /// The process: its id or its name.
        process: String,
        /// How many of the last lines to print first (at most 1000 are kept).
        #[arg(short = 'n', long = "lines", default_value_t = 100)]
        lines: usize,
        /// Keep printing new lines (across restarts) until the manager exits.
        #[arg(short = 'f', long = "follow")]
        follow: bool,
    },
    /// Wait until every process is started and verified (status `running`).
    ///
    /// Keeps trying while the manager is not reachable yet (it may still be starting).
    /// Fails at once if start-up fails or the manager shuts down.
    Wait {
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 60.0, value_name = "SECS")]
        timeout: f64,
    },
}

/// Why a `ctl` command failed; each kind is one exit code.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The manager answered no (4xx/5xx), or start-up failed.
    #[error("{0}")]
    Failed(String),
    /// No manager at the address, or no address.
    #[error("{0}")]
    Unreachable(String),
    /// `wait` ran out of time.
    #[error("{0}")]
    Timeout(String),
}

impl CtlError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            CtlError::Failed(_) => EXIT_FAILED,
            CtlError::Unreachable(_) => EXIT_UNREACHABLE,
            CtlError::Timeout(_) => EXIT_TIMEOUT,
        }
    }
}

/// Runs one `ctl` command; returns the exit code (after printing any error once).
pub async fn run(args: CtlArgs) -> i32 {
    match execute(&args).await {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("pymanager ctl: {e}");
            e.exit_code()
        }
    }
}

async fn execute(args: &CtlArgs) -> Result<(), CtlError> {
    if let CtlCommand::Wait { timeout } = args.command {
        let timeout = Duration::try_from_secs_f64(timeout).map_err(|_| {
            CtlError::Failed(format!(
                "invalid --timeout {timeout}: expected seconds >= 0"
            ))
        })?;
        wait(args, timeout).await?;
        if !args.json {
            println!("running");
        }
        return Ok(());
    }
    let server = Server::locate(args)?;
    match &args.command {
        CtlCommand::Status => {
            let v = server.json(reqwest::Method::GET, "/api/v1/status").await?;
            print_or(args.json, &v, || {
                format!(
                    "{} ({} of {} processes running)",
                    str_of(&v["status"]),
                    v["running"],
                    v["total"]
                )
            })
        }
        CtlCommand::List => {
            let v = server
                .json(reqwest::Method::GET, "/api/v1/processes")
                .await?;
            print_or(args.json, &v, || {
                table(v["processes"].as_array().map_or(&[], |a| a))
            })
        }
        CtlCommand::Restart { process } | CtlCommand::Start { process } => {
            let verb = match args.command {
                CtlCommand::Restart { .. } => "restart",
                _ => "start",
            };
            let path = format!("/api/v1/processes/{}/{verb}", encode(process));
            let v = server.json(reqwest::Method::POST, &path).await?;
            print_or(args.json, &v, || one_line(&v["process"]))
        }
        CtlCommand::Stop { process: Some(p) } => {
            let path = format!("/api/v1/processes/{}/stop", encode(p));
            let v = server.json(reqwest::Method::POST, &path).await?;
            print_or(args.json, &v, || one_line(&v["process"]))
        }
        CtlCommand::Stop { process: None } => {
            let v = server
                .json(reqwest::Method::POST, "/api/v1/shutdown")
                .await?;
            print_or(args.json, &v, || "shutdown started".to_string())
        }
        CtlCommand::Logs {
            process,
            lines,
            follow,
        } => {
            let path = format!(
                "/api/v1/processes/{}/logs?lines={lines}{}",
                encode(process),
                if *follow { "&follow=true" } else { "" }
            );
            server.copy_to_stdout(&path, *follow).await
        }
        CtlCommand::Wait { .. } => unreachable!("handled above"),
    }
}

fn print_or(json: bool, v: &Value, human: impl FnOnce() -> String) -> Result<(), CtlError> {
    let text = if json {
        serde_json::to_string_pretty(v).unwrap_or_default()
    } else {
        human()
    };
    let mut out = std::io::stdout().lock();
    // A closed stdout (`| head`) is a normal end, not an error.
    let _ = writeln!(out, "{text}");
    Ok(())
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

/// Where the manager is and how to authenticate.
struct Server {
    base: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl Server {
    /// Finds the manager of `args.file` (or `--url`).
    fn locate(args: &CtlArgs) -> Result<Server, CtlError> {
        let config = read_config(&args.file);
        let base = match &args.url {
            Some(url) => url.trim().trim_end_matches('/').to_string(),
            None => base_from(&args.file, &config)?,
        };
        let token = args
            .token
            .clone()
            .or_else(|| std::env::var("PYMANAGER_TOKEN").ok())
            .filter(|t| !t.is_empty())
            .or_else(|| {
                config.as_ref().ok().and_then(|c| {
                    c.pointer("/http/token")
                        .and_then(Value::as_str)
                        .map(String::from)
                })
            });
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| CtlError::Failed(format!("cannot set up an HTTP client: {e}")))?;
        Ok(Server {
            base,
            token,
            client,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.client.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends the request; a 2xx response, or the manager's error as a [`CtlError`].
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, CtlError> {
        let res = req.send().await.map_err(|e| {
            CtlError::Unreachable(format!(
                "cannot reach the manager at {}: {}",
                self.base,
                error_chain(&e)
            ))
        })?;
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.pointer("/error/message")?.as_str().map(String::from))
            .unwrap_or_else(|| format!("{status}: {}", body.trim()));
        let hint = if status == reqwest::StatusCode::UNAUTHORIZED {
            " (give the token with --token or PYMANAGER_TOKEN)"
        } else {
            ""
        };
        Err(CtlError::Failed(format!("{message}{hint}")))
    }

    /// A request whose answer is JSON.
    async fn json(&self, method: reqwest::Method, path: &str) -> Result<Value, CtlError> {
        let res = self.send(self.request(method, path)).await?;
        let base = &self.base;
        res.json::<Value>()
            .await
            .map_err(|e| CtlError::Failed(format!("unexpected answer from {base}{path}: {e}")))
    }

    /// Streams a text answer to stdout as it comes.
    async fn copy_to_stdout(&self, path: &str, follow: bool) -> Result<(), CtlError> {
        let mut res = self.send(self.request(reqwest::Method::GET, path)).await?;
        let mut out = std::io::stdout();
        loop {
            match res.chunk().await {
                Ok(Some(chunk)) => {
                    // A closed stdout (`| head`) is a normal end.
                    if out.write_all(&chunk).and_then(|_| out.flush()).is_err() {
                        return Ok(());
                    }
                }
                Ok(None) => return Ok(()),
                // The manager exiting ends a followed log: that is its normal end.
                Err(_) if follow => return Ok(()),
                Err(e) => {
                    return Err(CtlError::Unreachable(format!(
                        "the manager went away: {}",
                        error_chain(&e)
                    )));
                }
            }
        }
    }
}

/// The config as loose JSON, or why it cannot be read.
fn read_config(file: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", file.display()))
}

/// The base URL: the address file, else the config's `http` object.
fn base_from(file: &Path, config: &Result<Value, String>) -> Result<String, CtlError> {
    let addr_file = crate::app::state_file(file, "addr");
    if let Ok(text) = std::fs::read_to_string(&addr_file) {
        let url = text.trim();
        if !url.is_empty() {
            return Ok(url.trim_end_matches('/').to_string());
        }
    }
    let config = config.as_ref().map_err(|e| {
        CtlError::Unreachable(format!(
            "no manager found: no address file {} and {e}",
            addr_file.display()
        ))
    })?;
    let http = config.get("http");
    let enabled = http
        .and_then(|h| h.get("enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !enabled {
        return Err(CtlError::Unreachable(format!(
            "the REST API is not enabled in {} (set http.enabled to true)",
            file.display()
        )));
    }
    let port = match http.and_then(|h| h.get("port")) {
        None => 5001,
        Some(p) => p
            .as_u64()
            .or_else(|| p.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|p| *p <= u16::MAX as u64)
            .ok_or_else(|| {
                CtlError::Unreachable(format!("http.port in {} is not a port", file.display()))
            })?,
    };
    if port == 0 {
        return Err(CtlError::Unreachable(format!(
            "no manager found: no address file {} (http.port is 0, so only that file says \
             where the manager listens; is it running?)",
            addr_file.display()
        )));
    }
    let host = http
        .and_then(|h| h.get("host"))
        .and_then(Value::as_str)
        .unwrap_or("127.0.0.1");
    // A manager listening on every address is reached on loopback.
    let host = match host {
        "0.0.0.0" | "" => "127.0.0.1".to_string(),
        "::" | "[::]" => "[::1]".to_string(),
        h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
        h => h.to_string(),
    };
    Ok(format!("http://{host}:{port}"))
}

/// The error and its causes on one line (reqwest's own message alone says only "error
/// sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}

/// Percent-encodes a process name for a path segment.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `pid 123`, `exit code 3`, `SIGTERM`, `not started`: what the process is doing.
fn pid_or_code(p: &Value) -> String {
    if let Some(pid) = p["pid"].as_u64() {
        return format!("pid {pid}");
    }
    if let Some(code) = p["exit_code"].as_i64() {
        return format!("exit code {code}");
    }
    if let Some(sig) = p["signal"].as_i64() {
        return nix::sys::signal::Signal::try_from(sig as i32)
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|_| format!("signal {sig}"));
    }
    "-".to_string()
}

/// `web (1): running, pid 123`.
fn one_line(p: &Value) -> String {
    let mut s = format!(
        "{} ({}): {}, {}",
        str_of(&p["name"]),
        p["id"],
        str_of(&p["state"]),
        pid_or_code(p)
    );
    if let Some(err) = p["error"].as_str() {
        s.push_str(&format!(" ({err})"));
    }
    s
}

/// The process list as an aligned table.
fn table(processes: &[Value]) -> String {
    let header = [
        "ID",
        "NAME",
        "STATE",
        "PID/CODE",
        "LIFECYCLE",
        "RESTARTS",
        "VERIFIER",
        "COMMAND",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for p in processes {
        let pid_code = match (
            p["pid"].as_u64(),
            p["exit_code"].as_i64(),
            p["signal"].as_i64(),
        ) {
            (Some(pid), _, _) => pid.to_string(),
            (_, Some(code), _) => code.to_string(),
            (_, _, Some(_)) => pid_or_code(p),
            _ => "-".into(),
        };
        rows.push(vec![
            p["id"].to_string(),
            str_of(&p["name"]).to_string(),
            str_of(&p["state"]).to_string(),
            pid_code,
            lifecycle_cell(p),
            p["restarts"].to_string(),
            p["verifier"]["outcome"].as_str().unwrap_or("-").to_string(),
            str_of(&p["command"]).to_string(),
        ]);
    }
    let columns = header.len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == columns {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.pop();
    out
}

/// The lifecycle word, or what a process held back by the start-up still waits for
/// (`waiting for db: verified, migrate: exited_ok`).
fn lifecycle_cell(p: &Value) -> String {
    match p["waiting_for"].as_object() {
        Some(waits) if !waits.is_empty() => {
            let waits: Vec<String> = waits
                .iter()
                .map(|(name, condition)| format!("{name}: {}", str_of(condition)))
                .collect();
            format!("waiting for {}", waits.join(", "))
        }
        _ => str_of(&p["lifecycle"]).to_string(),
    }
}

/// How one attempt at `wait` ended, short of success.
enum Attempt {
    /// Not reachable (yet): try again until the deadline.
    Retry(String),
    /// An answer that will not change by trying again.
    Final(CtlError),
}

/// Waits until the manager reports `running`, reconnecting while it cannot be reached.
async fn wait(args: &CtlArgs, timeout: Duration) -> Result<(), CtlError> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(20);
    let mut reached = false;
    let mut last = String::from("no attempt made");
    loop {
        let attempt = tokio::time::timeout_at(deadline, wait_once(args, &mut reached)).await;
        match attempt {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(Attempt::Final(e))) => return Err(e),
            Ok(Err(Attempt::Retry(why))) => last = why,
            Err(_) if reached => {
                return Err(CtlError::Timeout(format!(
                    "the manager was not running after {:.1}s",
                    timeout.as_secs_f64()
                )));
            }
            Err(_) => {}
        }
        if Instant::now() + pause >= deadline {
            return Err(if reached {
                CtlError::Timeout(format!(
                    "the manager was not running after {:.1}s",
                    timeout.as_secs_f64()
                ))
            } else {
                CtlError::Unreachable(format!(
                    "could not reach the manager within {:.1}s: {last}",
                    timeout.as_secs_f64()
                ))
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// One connection to the event stream: succeeds on phase `running`, fails for good on a
/// start-up failure, a shutdown or a refusal.
async fn wait_once(args: &CtlArgs, reached: &mut bool) -> Result<(), Attempt> {
    let server = match Server::locate(args) {
        Ok(s) => s,
        Err(CtlError::Unreachable(why)) => return Err(Attempt::Retry(why)),
        Err(e) => return Err(Attempt::Final(e)),
    };
    let mut res = match server
        .send(server.request(reqwest::Method::GET, "/api/v1/events"))
        .await
    {
        Ok(r) => r,
        Err(CtlError::Unreachable(why)) => return Err(Attempt::Retry(why)),
        Err(e) => return Err(Attempt::Final(e)),
    };
    *reached = true;
    let mut buf = String::new();
    let mut shutting_down = false;
    loop {
        let chunk = match res.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) | Err(_) => break,
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let Some(data) = block
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .and_then(|d| serde_json::from_str::<Value>(d.trim()).ok())
            else {
                continue;
            };
            match (str_of(&data["event"]), str_of(&data["phase"])) {
                ("phase", "running") => return Ok(()),
                ("phase", "shutdown" | "force shutdown") => shutting_down = true,
                ("startup-failed", _) => {
                    return Err(Attempt::Final(CtlError::Failed(format!(
                        "start-up failed: {}",
                        str_of(&data["message"])
                    ))));
                }
                _ => {}
            }
        }
    }
    Err(Attempt::Final(CtlError::Failed(if shutting_down {
        "the manager shut down before it was running".into()
    } else {
        "the manager went away before it was running".into()
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser, Subcommand};
    use serde_json::json;

    /// The shape of the top-level command line: a global `-f` and `ctl` as a subcommand.
    #[derive(Debug, Parser)]
    struct Top {
        #[arg(
            short = 'f',
            long = "file",
            default_value = "pymanager.json",
            global = true
        )]
        file: PathBuf,
        #[command(subcommand)]
        command: Option<Sub>,
    }

    #[derive(Debug, Subcommand)]
    enum Sub {
        Ctl(CtlArgs),
    }

    fn parse(args: &[&str]) -> CtlArgs {
        let top = Top::try_parse_from(args).expect("parses");
        match top.command {
            Some(Sub::Ctl(c)) => c,
            None => panic!("no ctl"),
        }
    }

    #[test]
    fn composes_under_a_global_file_flag() {
        Top::command().debug_assert();
        let c = parse(&[
            "pymanager",
            "ctl",
            "-f",
            "x.json",
            "logs",
            "web",
            "-f",
            "-n",
            "5",
        ]);
        assert_eq!(c.file, PathBuf::from("x.json"));
        assert!(matches!(
            c.command,
            CtlCommand::Logs { ref process, lines: 5, follow: true } if process == "web"
        ));
        let c = parse(&["pymanager", "ctl", "list", "--json", "--url", "http://h:1/"]);
        assert!(c.json);
        assert_eq!(c.url.as_deref(), Some("http://h:1/"));
        let c = parse(&["pymanager", "ctl", "stop"]);
        assert!(matches!(c.command, CtlCommand::Stop { process: None }));
    }

    #[test]
    fn address_from_the_config_when_there_is_no_address_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pm.json");
        let base = |cfg: Value| base_from(&file, &Ok(cfg));
        assert_eq!(
            base(json!({"http": {"enabled": true}})).unwrap(),
            "http://127.0.0.1:5001"
        );
        assert_eq!(
            base(json!({"http": {"enabled": true, "port": "6000", "host": "0.0.0.0"}})).unwrap(),
            "http://127.0.0.1:6000"
        );
        assert_eq!(
            base(json!({"http": {"enabled": true, "port": 7, "host": "::1"}})).unwrap(),
            "http://[::1]:7"
        );
        assert_eq!(
            base(json!({"http": {"enabled": false}}))
                .unwrap_err()
                .exit_code(),
            2
        );
        assert_eq!(
            base(json!({"http": {"enabled": true, "port": 0}}))
                .unwrap_err()
                .exit_code(),
            2
        );
        std::fs::create_dir_all(dir.path().join(".pymanager")).unwrap();
        std::fs::write(
            dir.path().join(".pymanager/pm.json.addr"),
            "http://127.0.0.1:9/\n",
        )
        .unwrap();
        assert_eq!(base(json!({})).unwrap(), "http://127.0.0.1:9");
    }

    #[test]
    fn names_are_encoded_for_paths() {
        assert_eq!(encode("web server/1"), "web%20server%2F1");
        assert_eq!(encode("a-b_c.d~"), "a-b_c.d~");
    }

    #[test]
    fn table_is_aligned() {
        let rows = vec![
            json!({"id": 1, "name": "web", "state": "running", "pid": 42, "lifecycle": "ready",
                   "restarts": 0, "verifier": null, "command": "python3 -m http.server"}),
            json!({"id": 2, "name": "migrations", "state": "signaled", "pid": null, "exit_code": null,
                   "signal": 15, "lifecycle": "stopped", "restarts": 1,
                   "verifier": {"outcome": "passed"}, "command": "sh -c x"}),
        ];
        assert_eq!(
            table(&rows),
            "ID  NAME        STATE     PID/CODE  LIFECYCLE  RESTARTS  VERIFIER  COMMAND\n\
             1   web         running   42        ready      0         -         python3 -m http.server\n\
             2   migrations  signaled  SIGTERM   stopped    1         passed    sh -c x"
        );
    }

    #[test]
    fn a_process_held_back_shows_what_it_waits_for() {
        let p = json!({"lifecycle": "pending", "waiting_for": {"db": "verified", "migrate": "exited_ok"}});
        assert_eq!(
            lifecycle_cell(&p),
            "waiting for db: verified, migrate: exited_ok"
        );
        let p = json!({"lifecycle": "ready", "waiting_for": null});
        assert_eq!(lifecycle_cell(&p), "ready");
    }
}
