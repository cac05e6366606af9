//! Running a config: its state files, detaching (`-d`), the guardian, and the manager's
//! life from loading verifiers to the exit code.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{AppError, SetupError, async_runtime, signals, verifier_runtime};
use crate::cli::Cli;
use crate::config::{HttpConfig, Loaded};
use crate::console::{Console, Verbosity};
use crate::daemon::{self, Detached, Readiness};
use crate::plan::{self, EnvFiles, Plan};
use crate::runtime::CacheOutcome;
use crate::state_files::{StateDir, StateError, StateFile};
use crate::supervisor::{self, SupervisorHandle};
use crate::token;

/// Runs the config: check the state files, detach if asked, split off the guardian, then
/// manage. In a daemon, an error is also told to the waiting caller.
pub fn run(cli: &Cli, file: &Path) -> Result<i32, AppError> {
    let (loaded, plan) = super::load(file, EnvFiles::Source)?;
    // Checked before detaching, so that a refusal reaches the user's terminal.
    let files = StateFiles::prepare(cli, file, &loaded.config.http)?;
    let logfile = cli.logfile.as_deref().map(absolute);
    let mut readiness = None;
    if cli.daemon {
        match daemon::detach(logfile.as_deref()).map_err(SetupError::Daemon)? {
            Detached::Caller(word) => {
                for w in &word.warnings {
                    eprintln!("{w}");
                }
                return match word.result {
                    Ok(line) => {
                        if !line.is_empty() {
                            println!("{line}");
                        }
                        Ok(0)
                    }
                    Err(line) => Err(AppError::Daemon(line)),
                };
            }
            Detached::Daemon(r) => readiness = Some(r),
        }
    }
    let setup = Setup {
        loaded,
        plan,
        files,
        verbosity: if cli.debug {
            Verbosity::Debug
        } else if cli.verbose {
            Verbosity::Info
        } else {
            Verbosity::Quiet
        },
        // A daemon without a log file shares the caller's stdout: the caller prints the
        // announcement, the daemon's console would print it twice.
        announce: !(cli.daemon && logfile.is_none()),
        logfile,
    };
    let result = supervise(setup, &mut readiness);
    if let (Err(e), Some(r)) = (&result, readiness.take()) {
        r.failed(&e.to_string());
    }
    result
}

/// The state files of one run, each checked before anything starts: a planted symbolic
/// link, a foreign or open directory is refused here.
struct StateFiles {
    pid: Option<StateFile>,
    addr: Option<StateFile>,
    token: Option<StateFile>,
}

impl StateFiles {
    fn prepare(cli: &Cli, file: &Path, http: &HttpConfig) -> Result<StateFiles, AppError> {
        let auto_token = http.enabled && token::setting(http) == token::Setting::Auto;
        let wants_dir = http.enabled || (cli.daemon && cli.pidfile.is_none());
        let dir = if wants_dir {
            match StateDir::open(file) {
                Ok(d) => Some(d),
                // Only a directory we cannot create is forgiven (a read-only checkout):
                // the manager then runs without state files, as the original did.
                Err(e @ StateError::Io { .. }) if !auto_token => {
                    eprintln!(
                        "[WARNING] {e}; running without state files (ctl finds the manager \
                         from the config only)"
                    );
                    None
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        };
        let pid = match &cli.pidfile {
            Some(p) => Some(StateFile::at(p)?),
            None if cli.daemon => dir.as_ref().map(|d| d.file("pid")),
            None => None,
        };
        let files = StateFiles {
            pid,
            addr: dir
                .as_ref()
                .filter(|_| http.enabled)
                .map(|d| d.file("addr")),
            token: dir
                .as_ref()
                .filter(|_| auto_token)
                .map(|d| d.file(token::FILE_EXT)),
        };
        for f in files.all() {
            f.check()?;
        }
        Ok(files)
    }

    fn all(&self) -> Vec<StateFile> {
        [&self.pid, &self.addr, &self.token]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Removes the address and token files: the API is gone.
    fn remove_api_files(&self) {
        for f in [&self.addr, &self.token].into_iter().flatten() {
            f.remove();
        }
    }
}

/// What the manager starts from, once the config is loaded and the process detached.
struct Setup {
    loaded: Loaded,
    plan: Plan,
    files: StateFiles,
    verbosity: Verbosity,
    logfile: Option<PathBuf>,
    /// Print the REST address on the console (else only the daemon's caller prints it).
    announce: bool,
}

/// Writes the pid file, splits off the guardian, and runs the manager to its end.
fn supervise(setup: Setup, readiness: &mut Option<Readiness>) -> Result<i32, AppError> {
    if let Some(p) = &setup.files.pid {
        p.write(format!("{}\n", std::process::id()).as_bytes(), 0o644)?;
    }
    // Only the manager may hold the readiness pipe (the caller must see end-of-file if the
    // manager dies) and the sockets that keep picked ports for its processes.
    let mut manager_only = setup.plan.held_port_fds();
    manager_only.extend(readiness.as_ref().map(Readiness::raw_fd));
    crate::guardian::split(&manager_only, setup.files.all()).map_err(SetupError::Guardian)?;
    let log = match &setup.logfile {
        Some(p) => Some(
            File::options()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| SetupError::LogFile(p.clone(), e))?,
        ),
        None => None,
    };
    let console = Console::new(
        setup.verbosity,
        log,
        setup.plan.processes.iter().map(|p| &*p.name),
    )
    .map_err(SetupError::Console)?;
    // A few hundred processes and REST clients outgrow the usual soft limit of 1024
    // descriptors; the children get the caller's limit back.
    if let Err(e) = crate::supervisor::fd_limit::raise() {
        console.log_line(&format!(
            "[WARNING] cannot raise the limit on open files: {e}"
        ));
    }
    async_runtime()?.block_on(manage(setup, console, readiness))
}

/// The manager: load verifiers, supervise, serve REST, handle signals, report readiness.
async fn manage(
    setup: Setup,
    console: Console,
    readiness: &mut Option<Readiness>,
) -> Result<i32, AppError> {
    let Setup {
        loaded,
        plan,
        files,
        announce,
        verbosity,
        ..
    } = setup;
    let (signals, failures) = signals::listen();
    for w in &failures {
        warn(&console, readiness, w);
    }
    let runtime = verifier_runtime()?;
    if let Some(w) = runtime.cache_warning() {
        console.log_line(&format!("[WARNING] {w}"));
    }
    if !plan.modules.is_empty() {
        console.info(format_args!(
            "loading {} verifier module(s): {}",
            plan.modules.len(),
            plan.modules
                .iter()
                .map(|m| m.alias.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for w in plan::prepare(&plan, &runtime).await? {
        warn(&console, readiness, &w);
    }
    for m in &plan.modules {
        if let Some(r) = runtime.load_report(&m.alias) {
            let how = match r.outcome {
                CacheOutcome::Hit => "loaded from the cache",
                CacheOutcome::Compiled => "compiled",
            };
            console.info(format_args!(
                "module {} ({}) {how} in {}",
                m.alias,
                crate::runtime::human_bytes(r.size),
                crate::runtime::human_duration(r.compile)
            ));
        }
    }

    let started =
        supervisor::start(plan, runtime, console.clone()).map_err(SetupError::Supervisor)?;
    let handle = started.handle.clone();
    tokio::spawn(signals::forward(signals, handle.clone()));

    let http = &loaded.config.http;
    let mut announced = String::new();
    if http.enabled {
        match serve(&handle, http, &files, &console, readiness).await {
            Ok(url) => announced = format!("REST API listening on {url}"),
            Err(e) => {
                let _ = handle.shutdown().await;
                let _ = started.done.await;
                files.remove_api_files();
                return Err(e);
            }
        }
        if announce {
            console.say(announced.clone()).await;
        }
    }

    let mut ready = started.ready;
    let mut done = started.done;
    let outcome = tokio::select! {
        r = &mut ready => {
            if let Some(mut rd) = readiness.take() {
                match r {
                    Ok(Ok(())) => {
                        // The caller prints what `-v` says of the start-up: the daemon's
                        // own log may go nowhere.
                        if verbosity >= Verbosity::Info {
                            rd.info(&startup_summary(&handle).await);
                        }
                        rd.ready(&announced)
                    }
                    Ok(Err(e)) => rd.failed(&format!("[ERROR] {e}")),
                    Err(_) => rd.failed("[ERROR] pymanager stopped during start-up"),
                }
            }
            (&mut done).await
        }
        o = &mut done => {
            if let Some(rd) = readiness.take() {
                rd.failed("[ERROR] pymanager stopped during start-up");
            }
            o
        }
    };
    files.remove_api_files();
    console.flush().await;
    // Whatever a failed supervisor left is killed by the guardian when this process exits.
    let outcome = outcome.map_err(|e| AppError::Crashed(e.to_string()))?;
    Ok(outcome.exit_code())
}

/// `[INFO] ready in 3.21 s — critical chain: …`: where the start-up time went.
async fn startup_summary(handle: &SupervisorHandle) -> String {
    let summary = handle.timeline().await.ok().and_then(|t| t.summary());
    format!("[INFO] {}", summary.unwrap_or_else(|| "ready".into()))
}

/// Serves the REST API: the token, the address file, and a warning if the API is open to
/// the network without a token. Returns the base URL.
async fn serve(
    handle: &SupervisorHandle,
    http: &HttpConfig,
    files: &StateFiles,
    console: &Console,
    readiness: &mut Option<Readiness>,
) -> Result<String, AppError> {
    let token = match token::setting(http) {
        token::Setting::None => None,
        token::Setting::Fixed(t) => Some(t),
        token::Setting::Auto => {
            let t = token::generate().map_err(SetupError::Token)?;
            if let Some(f) = &files.token {
                f.write(format!("{t}\n").as_bytes(), 0o600)?;
            }
            Some(t)
        }
    };
    let config = crate::api::ApiConfig {
        host: http.host.clone(),
        port: http.port,
        token: token.clone(),
    };
    let mut watch = handle.watch();
    // The server ends with the supervisor.
    let stop = async move { while watch.changed().await.is_ok() {} };
    let (addr, server) = crate::api::bind(handle.clone(), config, stop)
        .await
        .map_err(SetupError::Http)?;
    tokio::spawn(server);
    if let Some(line) = open_without_token(addr, token.as_deref()) {
        warn(console, readiness, &line);
    }
    let url = format!("http://{addr}");
    if let Some(f) = &files.addr {
        match f.write(format!("{url}\n").as_bytes(), 0o644) {
            Ok(()) => {}
            Err(e @ StateError::Io { .. }) => warn(console, readiness, &format!("[WARNING] {e}")),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(url)
}

/// The warning for an API that other machines may reach and that asks no token.
fn open_without_token(addr: std::net::SocketAddr, token: Option<&str>) -> Option<String> {
    // `::ffff:127.0.0.1` is loopback too, though `Ipv6Addr::is_loopback` says no.
    (token.is_none() && !addr.ip().to_canonical().is_loopback()).then(|| {
        format!(
            "[WARNING] the REST API listens on {addr} without a token: anyone who can reach \
             it can stop and restart the processes and read their output. Set http.token \
             (\"auto\" makes one that ctl finds)."
        )
    })
}

/// A warning in the log, and for a daemon's caller, whose terminal the log may not reach.
fn warn(console: &Console, readiness: &mut Option<Readiness>, line: &str) {
    console.log_line(line);
    if let Some(r) = readiness {
        r.warn(line);
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::env::current_dir()
        .map(|d| d.join(p))
        .unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_open_to_the_network_without_a_token_is_warned_about() {
        let at = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        let w = open_without_token(at("0.0.0.0:5001"), None).unwrap();
        assert!(w.starts_with("[WARNING] the REST API listens on 0.0.0.0:5001 without a token"));
        assert!(open_without_token(at("[::]:1"), None).is_some());
        assert!(open_without_token(at("192.0.2.1:80"), None).is_some());
        assert!(open_without_token(at("0.0.0.0:5001"), Some("t")).is_none());
        assert!(open_without_token(at("127.0.0.1:5001"), None).is_none());
        assert!(open_without_token(at("[::1]:5001"), None).is_none());
        assert!(open_without_token(at("[::ffff:127.0.0.1]:5001"), None).is_none());
        assert!(open_without_token(at("[::ffff:192.0.2.1]:5001"), None).is_some());
    }
}
