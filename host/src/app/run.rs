//! Running a config: its state files, detaching (`-d`), the guardian, and the manager's
//! life from loading verifiers to the exit code — in the foreground, as a daemon, or
//! around `pymanager run`'s command ([`super::command`]), all on the same path.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::command::{self, ClientEnv};
use super::{AppError, SetupError, async_runtime, report, signals, verifier_runtime};
use crate::cli::{Cli, RunArgs, RunOutput};
use crate::config::{HttpConfig, Loaded};
use crate::console::{Console, Verbosity};
use crate::daemon::{self, Detached, Readiness};
use crate::plan::{self, EnvFiles, OutputMode, Plan};
use crate::runtime::CacheOutcome;
use crate::state_files::{StateDir, StateError, StateFile};
use crate::supervisor::{self, StartupFailure, SupervisorHandle};
use crate::token;

/// Runs the config: check the state files, detach if asked, split off the guardian, then
/// manage. With `run`, the command runs once the environment is ready. In a daemon, an
/// error is also told to the waiting caller.
pub fn run(cli: &Cli, file: &Path, run: Option<&RunArgs>) -> Result<i32, AppError> {
    let (mut loaded, mut plan) = super::load(file, EnvFiles::Source)?;
    plan.keep_alive |= cli.keep_alive;
    if let Some(port) = cli.http_port {
        loaded.config.http.enabled = true;
        loaded.config.http.port = port;
    }
    // Watched from before detaching: the process may end while we fork.
    let exit_with = cli.exit_with.map(open_pidfd).transpose()?;
    // Checked before detaching, so that a refusal reaches the user's terminal.
    let state = StatePlan::prepare(cli, file, &loaded.config.http, run.is_some())?;
    let logfile = cli.logfile.as_deref().map(absolute);
    if let Some(p) = &logfile {
        // Checked before detaching too, so that a refusal reaches the user's terminal.
        crate::private_files::open_output(p, crate::private_files::Output::Append)
            .map_err(|e| SetupError::LogFile(p.clone(), e))?;
    }
    let run_logs = match run {
        Some(args) => {
            // The command needs the environment while it runs, whatever ends meanwhile.
            plan.keep_alive = true;
            match args.output {
                RunOutput::Files => Some(log_files(&mut plan, args, file, &state)?),
                RunOutput::Console => None,
            }
        }
        None => None,
    };
    let mut readiness = None;
    if cli.daemon {
        // The caller only waits: the picked ports are the daemon's to hold (a copy kept
        // here would stop the processes from binding them).
        let release = || plan.release_ports();
        match daemon::detach(logfile.as_deref(), release).map_err(SetupError::Daemon)? {
            Detached::Caller(word) => {
                for w in &word.warnings {
                    eprintln!("{w}");
                }
                if let Some(sig) = word.interrupted {
                    eprintln!("pymanager: start-up interrupted; everything it started is stopped");
                    return Ok(128 + sig);
                }
                return match word.result {
                    Ok(line) => {
                        if !line.is_empty() {
                            println!("{line}");
                        }
                        Ok(0)
                    }
                    Err(text) => Err(AppError::Daemon(text)),
                };
            }
            Detached::Daemon(r) => readiness = Some(r),
        }
    }
    // The pid the caller knows, which becomes the guardian's.
    let pid = std::process::id();
    let setup = Setup {
        files: state.files(pid),
        loaded,
        plan,
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
        guardian: pid,
        write_env: cli.write_env.as_deref().map(absolute),
        exit_with,
        timeout: cli.timeout.map(|s| Duration::from_secs_f64(s.max(0.0))),
        run: run.cloned(),
        run_logs,
    };
    let result = supervise(setup, &mut readiness);
    if let (Err(e), Some(r)) = (&result, readiness.take()) {
        r.failed(&e.to_string());
    }
    result
}

/// Where the state files of one run go, decided before detaching: the checked directory,
/// and whether this copy holds the config's plain file names (another running copy of the
/// same config makes it use names with its pid).
struct StatePlan {
    dir: Option<StateDir>,
    /// Held for the manager's (and guardian's) life: the plain names are ours.
    claim: Option<OwnedFd>,
    pidfile: Option<StateFile>,
    daemon_pid: bool,
    addr: bool,
    token: bool,
}

impl StatePlan {
    fn prepare(
        cli: &Cli,
        file: &Path,
        http: &HttpConfig,
        run: bool,
    ) -> Result<StatePlan, AppError> {
        let auto_token = http.enabled && token::setting(http) == token::Setting::Auto;
        // `pymanager run` keeps its logs there.
        let wants_dir = http.enabled || (cli.daemon && cli.pidfile.is_none()) || run;
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
        let claim = match &dir {
            Some(d) => d.claim()?,
            None => None,
        };
        let pidfile = match &cli.pidfile {
            Some(p) => Some(StateFile::at(p)?),
            None => None,
        };
        let plan = StatePlan {
            dir,
            claim,
            pidfile,
            daemon_pid: cli.daemon,
            addr: http.enabled,
            token: auto_token,
        };
        for f in plan.files(std::process::id()).all() {
            f.check()?;
        }
        Ok(plan)
    }

    /// The files of the copy whose guardian is `pid`.
    fn files(&self, pid: u32) -> StateFiles {
        let name = |ext: &str| {
            self.dir.as_ref().map(|d| match self.claim {
                Some(_) => d.file(ext),
                None => d.instance_file(pid, ext),
            })
        };
        StateFiles {
            pid: match &self.pidfile {
                Some(p) => Some(p.clone()),
                None if self.daemon_pid => name("pid"),
                None => None,
            },
            addr: name("addr").filter(|_| self.addr),
            token: name(token::FILE_EXT).filter(|_| self.token),
            _claim: self
                .claim
                .as_ref()
                .and_then(|fd| fd.try_clone().ok())
                .map(Arc::new),
        }
    }

    /// `<config dir>/.pymanager/logs/<config name>` (with the pid for a copy that does not
    /// hold the plain names), or `None` without a state directory.
    fn default_logs(&self, file: &Path, pid: u32) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| crate::config::DEFAULT_CONFIG.to_string());
        if self.claim.is_none() {
            name.push_str(&format!(".{pid}"));
        }
        Some(absolute(dir.path()).join("logs").join(name))
    }
}

/// The state files of one run, each checked before anything starts: a planted symbolic
/// link, a foreign or open directory is refused.
struct StateFiles {
    pid: Option<StateFile>,
    addr: Option<StateFile>,
    token: Option<StateFile>,
    /// The claim on the plain names, kept open for the manager's life.
    _claim: Option<Arc<OwnedFd>>,
}

impl StateFiles {
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

/// Points every process whose output would go to the console at a file of its own in
/// `pymanager run`'s log directory (emptied now); returns the directory.
fn log_files(
    plan: &mut Plan,
    args: &RunArgs,
    file: &Path,
    state: &StatePlan,
) -> Result<PathBuf, AppError> {
    let dir = match &args.logs {
        Some(d) => absolute(d),
        None => match state.default_logs(file, std::process::id()) {
            Some(d) => d,
            // No state directory (a read-only checkout): a fresh private one of our own.
            None => crate::private_files::Dir::new_in(&std::env::temp_dir(), "pymanager-logs")
                .map_err(|e| SetupError::Logs(std::env::temp_dir(), e.into()))?
                .path()
                .to_path_buf(),
        },
    };
    std::fs::create_dir_all(&dir).map_err(|e| SetupError::Logs(dir.clone(), e))?;
    let mut taken = std::collections::HashSet::new();
    for spec in &mut plan.processes {
        if spec.output != OutputMode::Console {
            continue;
        }
        let mut name = file_name_for(&spec.name);
        if !taken.insert(name.clone()) {
            name = format!("{name}-{}", spec.id);
            taken.insert(name.clone());
        }
        let path = dir.join(format!("{name}.log"));
        crate::private_files::open_output(&path, crate::private_files::Output::Replace)
            .map_err(|e| SetupError::Logs(path.clone(), e))?;
        let mut changed = (**spec).clone();
        changed.output = OutputMode::Log(path);
        *spec = Arc::new(changed);
    }
    Ok(dir)
}

/// A process name as a file name: letters, digits, `.`, `_` and `-` kept, the rest `_`.
fn file_name_for(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
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
    /// The guardian's pid: what the caller knows, and what `PYMANAGER_PID` says.
    guardian: u32,
    write_env: Option<PathBuf>,
    exit_with: Option<OwnedFd>,
    timeout: Option<Duration>,
    /// `pymanager run`'s options and command.
    run: Option<RunArgs>,
    /// Where `pymanager run` writes the processes' output, if to files.
    run_logs: Option<PathBuf>,
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
            crate::private_files::open_output(p, crate::private_files::Output::Append)
                .map_err(|e| SetupError::LogFile(p.clone(), e))?,
        ),
        None => None,
    };
    // A few hundred processes and REST clients outgrow the usual soft limit of 1024
    // descriptors; the children get the caller's limit back. The table is grown for them
    // now, while this is the only thread (the console's writer is the next).
    let raised = crate::supervisor::fd_limit::raise();
    crate::supervisor::fd_limit::reserve(setup.plan.processes.len());
    let names = setup.plan.processes.iter().map(|p| &*p.name);
    let console = match &setup.run_logs {
        // `run`: what pymanager says about the processes goes beside their logs; its
        // warnings and errors stay on stderr (or the -l file).
        Some(dir) => {
            let path = dir.join("pymanager.log");
            let out =
                crate::private_files::open_output(&path, crate::private_files::Output::Replace)
                    .map_err(|e| SetupError::Logs(path.clone(), e))?;
            let log: Box<dyn std::io::Write + Send> = match log {
                Some(f) => Box::new(f),
                None => Box::new(std::io::stderr()),
            };
            Console::with_writers(setup.verbosity, Box::new(out), log, false, names)
        }
        None => Console::new(setup.verbosity, log, names),
    }
    .map_err(SetupError::Console)?;
    if let Err(e) = raised {
        console.log_line(&format!(
            "[WARNING] cannot raise the limit on open files: {e}"
        ));
    }
    async_runtime()?.block_on(manage(setup, console, readiness))
}

/// How the start-up ended, as `manage` acts on it.
enum Start {
    Ready,
    Failed(StartupFailure),
    TimedOut(Duration),
    /// A signal stopped it (`run` only: the others shut down through `signals::forward`).
    Interrupted(i32),
}

/// The manager: load verifiers, supervise, serve REST, handle signals, report readiness;
/// with `run`, run the command once ready.
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
        guardian,
        write_env,
        exit_with,
        timeout,
        run,
        run_logs,
        verbosity,
        ..
    } = setup;
    let (mut signals, failures) = signals::listen();
    for w in &failures {
        warn(&console, readiness, w);
    }
    let began = SystemTime::now();
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
    if let Some(dir) = &run_logs {
        eprintln!("pymanager: the processes' output goes to {}", dir.display());
    }

    let port_vars = plan.port_vars();
    let one_shot = command::one_shots(&plan);
    let started =
        supervisor::start(plan, runtime, console.clone()).map_err(SetupError::Supervisor)?;
    let handle = started.handle.clone();
    if run.is_none() {
        tokio::spawn(signals::forward(signals, handle.clone(), 0));
        signals = futures::stream::StreamExt::boxed(futures::stream::pending());
    }
    if let Some(fd) = exit_with {
        tokio::spawn(shut_down_when_it_ends(fd, handle.clone()));
    }

    let http = &loaded.config.http;
    let mut announced = String::new();
    let mut client_env = ClientEnv {
        url: None,
        token: None,
        pid: guardian,
        ports: port_vars,
    };
    if http.enabled {
        match serve(&handle, http, &files, &console, readiness).await {
            Ok((url, token)) => {
                announced = format!("REST API listening on {url}");
                client_env.url = Some(url);
                client_env.token = token;
            }
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
    let limit = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(limit);
    let start = tokio::select! {
        r = &mut ready => match r {
            Ok(Ok(())) => Start::Ready,
            Ok(Err(f)) => Start::Failed(f),
            Err(_) => Start::Failed(StartupFailure::plain("pymanager stopped during start-up")),
        },
        _ = &mut limit => Start::TimedOut(timeout.unwrap_or_default()),
        Some(request) = futures::StreamExt::next(&mut signals) => match request {
            signals::Request::Shutdown(sig) => Start::Interrupted(sig),
            signals::Request::Kill => Start::Interrupted(libc::SIGKILL),
        },
    };
    let style = report::Style::from_env();
    // Set where an arm had to wait for the supervisor's end itself.
    let mut outcome = None;
    let code = match start {
        Start::Ready => {
            let now = SystemTime::now();
            // For timing what follows (bench/run.py's `run` scenario reads it): the clock
            // a command's own `date +%s%N` reads.
            console.debug(format_args!(
                "ready at {:.6} (seconds since the epoch)",
                now.duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64()
            ));
            // Where the time went: `ready in 3.21 s — critical chain: db 1.40 s → …`.
            let ready_line = match handle
                .timeline()
                .await
                .ok()
                .and_then(|t| t.summary_from(began))
            {
                Some(line) => line,
                None => format!(
                    "ready in {}",
                    report::seconds(now.duration_since(began).unwrap_or_default())
                ),
            };
            if let Some(path) = &write_env {
                StateFile::at(path)
                    .and_then(|f| f.write(client_env.file_text().as_bytes(), 0o600))
                    .map_err(SetupError::WriteEnv)?;
            }
            console.info(&ready_line);
            if let Some(mut rd) = readiness.take() {
                // The caller prints what `-v` says: the daemon's own log may go nowhere.
                if verbosity >= Verbosity::Info {
                    rd.info(&format!("[INFO] {ready_line}"));
                }
                rd.ready(&announced);
            }
            match &run {
                Some(args) => {
                    eprintln!("pymanager: {ready_line}");
                    let code = command::run(
                        args,
                        &handle,
                        &started.spawner,
                        &client_env,
                        &one_shot,
                        &mut signals,
                        &console,
                    )
                    .await;
                    let _ = handle.shutdown().await;
                    // A signal now forces the shutdown.
                    tokio::spawn(signals::forward(signals, handle.clone(), 1));
                    Some(code)
                }
                None => None,
            }
        }
        Start::Failed(failure) => {
            // The culprit's output, read once everything has stopped and its last lines
            // were drained.
            let log = failure.output.clone();
            let snapshot = failure
                .snapshot
                .clone()
                .unwrap_or_else(|| handle.snapshot());
            tokio::spawn(signals::forward(signals, handle.clone(), 1));
            outcome = Some((&mut done).await);
            let tail = log.map(|l| l.tail(report::TAIL_LINES)).unwrap_or_default();
            let text = report::failure(&failure, &snapshot, &tail, began, style);
            match readiness.take() {
                Some(rd) => rd.failed(&format!("[ERROR] {}\n{text}", failure.line)),
                None => console.log_line(text.trim_end()),
            }
            None
        }
        Start::TimedOut(limit) => {
            let text = report::timed_out(&handle.snapshot(), limit, began, style);
            let _ = handle.shutdown().await;
            tokio::spawn(signals::forward(signals, handle.clone(), 1));
            match readiness.take() {
                Some(rd) => rd.failed(text.trim_end()),
                None => console.log_line(text.trim_end()),
            }
            Some(5)
        }
        Start::Interrupted(sig) => {
            if sig == libc::SIGKILL {
                handle.force_shutdown().await;
            } else {
                let _ = handle.shutdown().await;
            }
            // A second signal forces the shutdown.
            tokio::spawn(signals::forward(signals, handle.clone(), 1));
            Some(128 + sig)
        }
    };
    let outcome = match outcome {
        Some(o) => o,
        None => done.await,
    };
    files.remove_api_files();
    console.flush().await;
    // Whatever a failed supervisor left is killed by the guardian when this process exits.
    let outcome = outcome.map_err(|e| AppError::Crashed(e.to_string()))?;
    Ok(code.unwrap_or_else(|| outcome.exit_code()))
}

/// Opens a pidfd for `--exit-with PID`.
fn open_pidfd(pid: u32) -> Result<OwnedFd, AppError> {
    // SAFETY: pidfd_open returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(SetupError::ExitWith(pid, std::io::Error::last_os_error()).into());
    }
    // SAFETY: a new descriptor nothing else owns.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    // Not for the processes pymanager starts.
    let _ = nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    Ok(fd)
}

/// Shuts the manager down gracefully when the process behind `pidfd` ends (a pidfd
/// becomes readable then).
async fn shut_down_when_it_ends(pidfd: OwnedFd, handle: SupervisorHandle) {
    // SAFETY: the AsyncFd owns the pidfd, so it stays open while it is registered.
    let Ok(fd) = (unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE)
    }) else {
        return;
    };
    if fd.readable().await.is_ok() {
        let _ = handle.shutdown().await;
    }
}

/// Serves the REST API: the token, the address file, and a warning if the API is open to
/// the network without a token. Returns the base URL and the token.
async fn serve(
    handle: &SupervisorHandle,
    http: &HttpConfig,
    files: &StateFiles,
    console: &Console,
    readiness: &mut Option<Readiness>,
) -> Result<(String, Option<String>), AppError> {
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
    Ok((url, token))
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

/// `p` from the current directory, without `.` components.
fn absolute(p: &Path) -> PathBuf {
    std::env::current_dir()
        .map(|d| d.join(p))
        .unwrap_or_else(|_| p.to_path_buf())
        .components()
        .filter(|c| *c != std::path::Component::CurDir)
        .collect()
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

    #[test]
    fn process_names_make_safe_file_names() {
        assert_eq!(file_name_for("web"), "web");
        assert_eq!(file_name_for("a/b c"), "a_b_c");
        assert_eq!(file_name_for(".."), "_..");
        assert_eq!(file_name_for(""), "_");
    }
}
