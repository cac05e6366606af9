//! `pymanager verify`: one verifier, run once, outside a manager.
//!
//! Authors try a verifier without writing a config, and the same check serves as a
//! docker compose `healthcheck` or a Kubernetes `exec` probe: the exit code says it all
//! (0 passed, 1 failed, 2 usage error). The verifier runs in the same sandbox, with the
//! same grants and limits, as under a manager; the process it looks at is the one named by
//! `--pid` (its exit arrives as an event through a pidfd), and its output is the file named
//! by `--log` (followed through inotify).

mod attach;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{AllowConfig, LimitsConfig, ModuleConfig};
use crate::process_view::{Level, OutputLog, ProcState, ProcessView};
use crate::runtime::{BUILTINS, Builtin, ModuleDecl, VerifierRef};

/// The flags of `pymanager verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// The verifier: a built-in's type (`http`, `HttpOkVerifier`,
    /// `pymutils.http_verifier.HttpOkVerifier`), or with --module a verifier the module provides.
    #[arg(value_name = "TYPE")]
    pub kind: Option<String>,

    /// A verifier component (.wasm) to load instead of the built-ins.
    #[arg(long, value_name = "FILE")]
    pub module: Option<PathBuf>,

    /// The verifier's name in --module (the same as giving TYPE).
    #[arg(long, value_name = "NAME")]
    pub verifier: Option<String>,

    /// The verifier's arguments: a JSON object, or @FILE to read it from a file.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    pub args: String,

    /// A host:port (or [v6]:port) the module may reach; repeat for more.
    /// Without it the module gets what a config's module gets by default.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,

    /// The module's memory cap in MiB.
    #[arg(long, value_name = "MB")]
    pub memory_mb: Option<u32>,

    /// The module's CPU budget per call in milliseconds.
    #[arg(long, value_name = "MS")]
    pub cpu_ms: Option<u64>,

    /// Give up after this many seconds (fractions allowed), whatever the verifier does.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub timeout: Option<f64>,

    /// The process to verify: its state, and its exit the moment it happens.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,

    /// The process's output: lines of this file (from its start, then followed).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
}

/// Why `verify` did not pass; each variant is one exit code.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Exit 1: the verifier ran and failed.
    #[error("failed: {0}")]
    Failed(String),
    /// Exit 2: the command line (or what it names) cannot be used.
    #[error("[ERROR] verify: {0}")]
    Usage(String),
}

impl ProbeError {
    /// 1 for a failed verification, 2 for a usage error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ProbeError::Failed(_) => 1,
            ProbeError::Usage(_) => 2,
        }
    }
}

/// The verification itself: load, validate, attach, verify.
pub async fn run(args: &VerifyArgs) -> Result<(), ProbeError> {
    let usage = ProbeError::Usage;
    let json = arguments(&args.args).map_err(usage)?;
    let timeout = match args.timeout {
        Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s.min(1e9))),
        Some(s) => return Err(usage(format!("--timeout {s}: expected seconds above 0"))),
        None => None,
    };
    if args.module.is_none()
        && let Some(kind) = args.kind.as_ref().or(args.verifier.as_ref())
        && crate::config::exec::names(kind)
    {
        return exec(args, &json, timeout).await;
    }
    let (decl, target) = target(args).map_err(usage)?;

    let runtime = crate::app::verifier_runtime().map_err(|e| usage(e.to_string()))?;
    runtime
        .load(vec![decl])
        .await
        .map_err(|e| usage(e.to_string()))?;
    let names = runtime.names(&target.module).unwrap_or_default();
    if !names.contains(&target.name) {
        return Err(usage(format!(
            "module '{}' has no verifier '{}' (it provides: {})",
            target.module,
            target.name,
            names.join(", ")
        )));
    }
    let warnings = runtime
        .validate(&target, &json)
        .await
        .map_err(|e| usage(format!("--args: {e}")))?;
    for w in warnings {
        eprintln!("[WARNING] --args: {w}");
    }

    let shutdown = CancellationToken::new();
    let view = attach(args, shutdown.clone()).map_err(usage)?;
    let cancel_on_signal = tokio::spawn(cancel_on_signal(shutdown));
    let verify = runtime.verify(&target, &json, view);
    let outcome = match timeout {
        Some(t) => match tokio::time::timeout(t, verify).await {
            Ok(r) => r,
            Err(_) => Err(crate::runtime::VerifyError(format!(
                "{target} did not pass within {} (--timeout)",
                crate::runtime::human_duration(t)
            ))),
        },
        None => verify.await,
    };
    cancel_on_signal.abort();
    outcome.map_err(|e| ProbeError::Failed(e.0))
}

/// The native `exec` verifier, here: its command runs in this directory and environment.
async fn exec(args: &VerifyArgs, json: &str, timeout: Option<Duration>) -> Result<(), ProbeError> {
    let usage = ProbeError::Usage;
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| usage(e.to_string()))?;
    let (parsed, warnings) =
        crate::config::exec::ExecArgs::parse(&value).map_err(|e| usage(format!("--args: {e}")))?;
    for w in warnings {
        eprintln!("[WARNING] --args: {w}");
    }
    let check = crate::plan::ExecSpec {
        args: parsed,
        cwd: None,
        env: None,
        shell: crate::plan::default_shell(&crate::config::StringOrBool::Bool(true)),
    };
    let reaper = crate::supervisor::reaper::Reaper::start()
        .map_err(|e| usage(format!("cannot watch child processes: {e}")))?;
    let shutdown = CancellationToken::new();
    let view = attach(args, shutdown.clone()).map_err(usage)?;
    let cancel_on_signal = tokio::spawn(cancel_on_signal(shutdown));
    let verify = crate::supervisor::exec_check::verify(&check, &reaper, view);
    let outcome = match timeout {
        Some(t) => tokio::time::timeout(t, verify).await.unwrap_or_else(|_| {
            Err(format!(
                "{} did not pass within {} (--timeout)",
                check.args.command,
                crate::runtime::human_duration(t)
            ))
        }),
        None => verify.await,
    };
    cancel_on_signal.abort();
    outcome.map_err(ProbeError::Failed)
}

/// Resolves the command line to a module and the verifier in it.
fn target(args: &VerifyArgs) -> Result<(ModuleDecl, VerifierRef), String> {
    let name = match (&args.kind, &args.verifier) {
        (Some(a), Some(b)) if a != b => {
            return Err(format!("two verifiers named: '{a}' and --verifier '{b}'"));
        }
        (Some(n), _) | (None, Some(n)) => n.trim().to_string(),
        (None, None) => {
            return Err(format!(
                "name a verifier: one of the built-ins ({}), or --module FILE --verifier NAME",
                builtin_list()
            ));
        }
    };
    let Some(path) = &args.module else {
        if !args.allow_hosts.is_empty() || args.memory_mb.is_some() || args.cpu_ms.is_some() {
            return Err(
                "--allow-host, --memory-mb and --cpu-ms apply to --module; the built-ins \
                 reach what their arguments name"
                    .into(),
            );
        }
        let b = find_builtin(&name).ok_or_else(|| {
            format!(
                "unknown verifier '{name}': one of the built-ins ({}), or --module FILE --verifier NAME",
                builtin_list()
            )
        })?;
        let decl = b
            .decl()
            .ok_or_else(|| format!("this binary was built without the verifier {name}"))?;
        let target = VerifierRef {
            module: b.module.into(),
            name: b.verifier.into(),
        };
        return Ok((decl, target));
    };
    let alias = "module";
    let config = ModuleConfig {
        verifiers: None,
        path: Some(path.clone()),
        allow: AllowConfig {
            hosts: (!args.allow_hosts.is_empty()).then(|| args.allow_hosts.clone()),
        },
        limits: LimitsConfig {
            memory_mb: args.memory_mb,
            cpu_ms: args.cpu_ms,
            timeout_s: None,
            build_s: None,
        },
    };
    let cwd = std::env::current_dir().map_err(|e| format!("(working directory): {e}"))?;
    let decl = crate::plan::external_module(alias, &config, path, &cwd).map_err(|e| match e {
        crate::config::ConfigError::Invalid { path, reason } => {
            let flag = match path.rsplit('.').next() {
                Some("limits") => "--memory-mb/--cpu-ms".to_string(),
                _ => "--allow-host".to_string(),
            };
            format!("{flag}: {reason}")
        }
        other => other.to_string(),
    })?;
    let name = name
        .strip_prefix(&format!("{alias}."))
        .unwrap_or(&name)
        .to_string();
    Ok((
        decl,
        VerifierRef {
            module: alias.into(),
            name,
        },
    ))
}

fn find_builtin(name: &str) -> Option<&'static Builtin> {
    Builtin::resolve(name).or_else(|| Builtin::find(name))
}

fn builtin_list() -> String {
    BUILTINS
        .iter()
        .map(|b| b.short)
        .chain([crate::config::exec::SHORT])
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--args`: JSON text, or `@file`; checked to be an object here so the error says where.
fn arguments(raw: &str) -> Result<String, String> {
    let (text, from) = match raw.strip_prefix('@') {
        Some(file) => (
            std::fs::read_to_string(file).map_err(|e| format!("--args @{file}: {e}"))?,
            format!("--args @{file}"),
        ),
        None => (raw.to_string(), "--args".to_string()),
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{from}: not valid JSON: {e}"))?;
    if !value.is_object() {
        return Err(format!("{from}: expected a JSON object"));
    }
    Ok(value.to_string())
}

/// The window the verifier gets: the `--pid` process (or a process that runs for as long
/// as the verification does), the `--log` file's lines, and every log line on stdout.
fn attach(args: &VerifyArgs, shutdown: CancellationToken) -> Result<ProcessView, String> {
    let state = match args.pid {
        Some(pid) => attach::watch_pid(pid)?,
        None => {
            // No process named: it counts as running (pid 0) for as long as we verify.
            let (tx, rx) = watch::channel(ProcState::Running { pid: 0 });
            let keep = tx;
            tokio::spawn(async move { keep.closed().await });
            rx
        }
    };
    if let Some(pid) = args.pid {
        println!("[INFO] watching process {pid}");
    }
    let output = Arc::new(OutputLog::new());
    if let Some(path) = &args.log {
        attach::follow_log(path, output.clone())?;
        println!("[INFO] following {}", path.display());
    }
    let log = Arc::new(|level: Level, line: &str| {
        let tag = match level {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        };
        println!("[{tag}] {line}");
    });
    Ok(ProcessView::new(state, output, shutdown, log))
}

/// SIGINT or SIGTERM (a probe's own time-out, say) ends every wait of the verifier, which
/// then fails with its reason instead of being killed mid-sentence.
async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    shutdown.cancel();
}
