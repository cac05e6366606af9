//! The edge of the program: flags in, exit code out. Every error is reported here, once,
//! as one line; everything below returns `Result`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::{Cli, Sub};
use crate::config::{self, ConfigError, Loaded};
use crate::console::{Console, Verbosity};
use crate::plan::{self, Plan};
use crate::runtime::{Runtime, RuntimeOptions};
use crate::supervisor::{self, Outcome, SupervisorHandle};

/// Runs pymanager with the process's arguments and returns its exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 2,
            };
        }
    };
    if cli.version {
        println!("{}", crate::cli::version());
        return 0;
    }
    match &cli.command {
        Some(Sub::Check) => check(&cli.file),
        Some(Sub::Ctl(args)) => {
            // `pymanager -f x.json ctl …` names the config before the subcommand.
            let mut args = args.clone();
            if args.file == Path::new("pymanager.json") {
                args.file = cli.file.clone();
            }
            ctl(&args)
        }
        Some(Sub::Verify(args)) => crate::verify::main(args),
        None => run(cli),
    }
}

/// The directory pymanager keeps its pid and address files in, beside the config.
pub fn state_dir(config: &Path) -> PathBuf {
    let dir = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join(".pymanager")
}

/// `<config dir>/.pymanager/<config file name>.<ext>`: where the pid and the REST
/// address of the manager of that config are written.
pub fn state_file(config: &Path, ext: &str) -> PathBuf {
    let name = config
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pymanager.json".into());
    state_dir(config).join(format!("{name}.{ext}"))
}

fn load(file: &Path) -> Result<(Loaded, Plan), ConfigError> {
    let loaded = config::load(file)?;
    let mut warnings = Vec::new();
    let plan = plan::build(&loaded, &mut warnings)?;
    for w in loaded.warnings.iter().chain(&warnings) {
        eprintln!("{w}");
    }
    Ok((loaded, plan))
}

fn fail(e: &ConfigError) -> i32 {
    eprintln!("{e}");
    e.exit_code()
}

/// `pymanager ctl`: a client of a running manager.
fn ctl(args: &crate::ctl::CtlArgs) -> i32 {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(crate::ctl::run(args.clone())),
        Err(e) => {
            eprintln!("[ERROR] cannot start the async runtime: {e}");
            2
        }
    }
}

/// `pymanager check`: everything up to the first spawn.
fn check(file: &Path) -> i32 {
    let (_, plan) = match load(file) {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let Some(rt) = async_runtime() else {
        return 5;
    };
    rt.block_on(async {
        let runtime = match Runtime::new(RuntimeOptions::default()) {
            Ok(r) => r,
            Err(e) => return fail(&ConfigError::invalid("modules", e.to_string())),
        };
        match plan::prepare(&plan, &runtime).await {
            Ok(warnings) => {
                for w in warnings {
                    eprintln!("{w}");
                }
                println!(
                    "{}: ok ({} processes, {} with verifiers)",
                    file.display(),
                    plan.processes.len(),
                    plan.processes
                        .iter()
                        .filter(|p| p.verifier.is_some())
                        .count()
                );
                0
            }
            Err(e) => fail(&e),
        }
    })
}

/// Runs the config: detach if asked, split off the guardian, then manage.
fn run(cli: Cli) -> i32 {
    let (loaded, plan) = match load(&cli.file) {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let logfile = cli.logfile.as_ref().map(|p| absolute(p));
    let readiness = if cli.daemon {
        let pidfile = cli
            .pidfile
            .clone()
            .unwrap_or_else(|| state_file(&cli.file, "pid"));
        match crate::daemon::detach(logfile.as_deref(), &pidfile) {
            Ok(fd) => Some(fd),
            Err(e) => {
                eprintln!("[ERROR] cannot start as a daemon: {e}");
                return 5;
            }
        }
    } else {
        if let Some(p) = &cli.pidfile
            && let Err(e) = std::fs::write(p, format!("{}\n", std::process::id()))
        {
            eprintln!("[ERROR] cannot write the pid file {}: {e}", p.display());
            return 5;
        }
        None
    };
    let pidfile = cli
        .pidfile
        .clone()
        .or_else(|| cli.daemon.then(|| state_file(&cli.file, "pid")));
    // The readiness pipe goes to the manager only, so that the caller sees EOF if it dies.
    let guardian_closes = readiness.as_ref().map(|fd| fd.as_raw_fd());
    let mut leftovers = vec![state_file(&cli.file, "addr")];
    leftovers.extend(pidfile.clone());
    if let Err(e) = crate::guardian::split(guardian_closes, leftovers) {
        eprintln!("[ERROR] cannot start the guardian process: {e}");
        return 5;
    }
    // A few hundred processes and REST clients outgrow the usual soft limit of 1024
    // descriptors; the children get the caller's limit back.
    if let Err(e) = supervisor::fd_limit::raise() {
        eprintln!("[WARNING] cannot raise the limit on open files: {e}");
    }
    let verbosity = if cli.debug {
        Verbosity::Debug
    } else if cli.verbose {
        Verbosity::Info
    } else {
        Verbosity::Quiet
    };
    let Some(rt) = async_runtime() else {
        return 5;
    };
    let code = rt.block_on(manage(
        loaded,
        plan,
        &cli.file,
        verbosity,
        logfile.as_deref(),
        readiness,
    ));
    if let Some(p) = pidfile {
        let _ = std::fs::remove_file(p);
    }
    code
}

/// The manager's async runtime: two workers are plenty (everything waits on events), and
/// they live as long as the manager, which the children's parent-death signal relies on.
fn async_runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("[ERROR] cannot start the async runtime: {e}");
            None
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::env::current_dir()
        .map(|d| d.join(p))
        .unwrap_or_else(|_| p.to_path_buf())
}

/// The manager: load verifiers, supervise, serve REST, handle signals, report readiness.
async fn manage(
    loaded: Loaded,
    plan: Plan,
    file: &Path,
    verbosity: Verbosity,
    logfile: Option<&Path>,
    readiness: Option<OwnedFd>,
) -> i32 {
    let console = match Console::new(verbosity, logfile, plan.processes.iter().map(|p| &*p.name)) {
        Ok(c) => c,
        Err(e) => {
            let line = format!("[ERROR] cannot open the log file: {e}");
            eprintln!("{line}");
            report(readiness, Err(line));
            return 5;
        }
    };
    let runtime = match Runtime::new(RuntimeOptions::default()) {
        Ok(r) => r,
        Err(e) => {
            return setup_failed(
                &console,
                readiness,
                ConfigError::invalid("modules", e.to_string()),
            );
        }
    };
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
    match plan::prepare(&plan, &runtime).await {
        Ok(warnings) => warnings.iter().for_each(|w| console.log_line(w)),
        Err(e) => return setup_failed(&console, readiness, e),
    }
    for m in &plan.modules {
        if let Some(r) = runtime.load_report(&m.alias) {
            let how = match r.outcome {
                crate::runtime::CacheOutcome::Hit => "loaded from the cache",
                crate::runtime::CacheOutcome::Compiled => "compiled",
            };
            console.info(format_args!(
                "module {} ({}) {how} in {}",
                m.alias,
                crate::runtime::human_bytes(r.size),
                crate::runtime::human_duration(r.compile)
            ));
        }
    }

    let started = match supervisor::start(plan, runtime, console.clone()) {
        Ok(s) => s,
        Err(e) => {
            let e = ConfigError::invalid("(supervisor)", e.to_string());
            return setup_failed(&console, readiness, e);
        }
    };
    let handle = started.handle.clone();
    tokio::spawn(forward_signals(handle.clone()));

    let http = &loaded.config.http;
    let addr_file = state_file(file, "addr");
    let mut announced = String::new();
    if http.enabled {
        let token = http.token.clone().or_else(|| {
            std::env::var("PYMANAGER_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
        });
        let config = crate::api::ApiConfig {
            host: http.host.clone(),
            port: http.port,
            token,
        };
        let mut watch = handle.watch();
        let stop = async move {
            // The server ends with the supervisor.
            while watch.changed().await.is_ok() {}
        };
        match crate::api::bind(handle.clone(), config, stop).await {
            Ok((addr, server)) => {
                tokio::spawn(server);
                let url = format!("http://{addr}");
                if let Err(e) = write_addr_file(&addr_file, &url) {
                    console.log_line(&format!(
                        "[WARNING] cannot write {}: {e}",
                        addr_file.display()
                    ));
                }
                announced = format!("REST API listening on {url}");
                console.say(announced.clone()).await;
            }
            Err(e) => {
                let line = format!("[ERROR] could not set up processes: http: {e}");
                console.log_line(&line);
                let _ = handle.shutdown().await;
                let _ = started.done.await;
                report(readiness, Err(line));
                let _ = std::fs::remove_file(&addr_file);
                return 5;
            }
        }
    }

    let mut ready = started.ready;
    let mut done = started.done;
    let outcome = tokio::select! {
        r = &mut ready => {
            match r {
                Ok(Ok(())) => report(readiness, Ok(announced)),
                Ok(Err(e)) => report(readiness, Err(format!("[ERROR] {e}"))),
                Err(_) => report(readiness, Err("[ERROR] pymanager stopped during start-up".into())),
            }
            (&mut done).await
        }
        o = &mut done => {
            report(readiness, Err("[ERROR] pymanager stopped during start-up".into()));
            o
        }
    };
    if http.enabled {
        let _ = std::fs::remove_file(&addr_file);
    }
    console.flush().await;
    match outcome {
        Ok(o) => o.exit_code(),
        Err(e) => {
            console.log_line(&format!("[ERROR] the supervisor failed: {e}"));
            // Whatever it left is killed by the guardian when this process exits.
            Outcome::StartupFailed(String::new()).exit_code()
        }
    }
}

fn write_addr_file(path: &Path, url: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Written whole, then renamed, so a reader never sees half an address.
    let tmp = path.with_extension("addr.tmp");
    std::fs::write(&tmp, format!("{url}\n"))?;
    std::fs::rename(tmp, path)
}

fn report(readiness: Option<OwnedFd>, result: Result<String, String>) {
    if let Some(fd) = readiness {
        crate::daemon::report(fd, result);
    }
}

fn setup_failed(console: &Console, readiness: Option<OwnedFd>, e: ConfigError) -> i32 {
    let line = e.to_string();
    console.log_line(&line);
    report(readiness, Err(line));
    e.exit_code()
}

/// SIGINT, SIGTERM, SIGQUIT (and SIGHUP) begin the graceful shutdown; a second one, or
/// the guardian's death, kills everything at once.
async fn forward_signals(handle: SupervisorHandle) {
    let kinds = [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::quit(),
        SignalKind::hangup(),
        SignalKind::user_defined2(),
    ];
    let mut streams: Vec<_> = kinds.iter().filter_map(|k| signal(*k).ok()).collect();
    let mut count = 0;
    loop {
        let which = futures::future::select_all(streams.iter_mut().map(|s| Box::pin(s.recv())))
            .await
            .1;
        count += 1;
        if which == 4 || count > 1 {
            handle.force_shutdown().await;
        } else {
            let _ = handle.shutdown().await;
        }
    }
}
