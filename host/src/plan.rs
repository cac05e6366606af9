//! From a checked config to what the supervisor runs: command lines resolved (shells,
//! environment files, paths), verifier types resolved to modules, and every verifier's
//! arguments validated before anything starts.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{
    Config, ConfigError, Loaded, Messages, ModuleConfig, ShellChoice, Startup, StringOrBool,
};
use crate::runtime::{
    BUILTINS, Builtin, Grants, HostGrants, HostPattern, Limits, ModuleDecl, ModuleSource, Runtime,
    VerifierRef,
};

mod orchestration;

pub use orchestration::{Dependency, LivenessSpec, Orchestration, start_deps, start_plan};

/// Everything needed to run one config.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The processes, in start order.
    pub processes: Vec<Arc<ProcessSpec>>,
    /// The verifier modules the processes use (and every external module declared).
    pub modules: Vec<ModuleDecl>,
    /// Stay up after every process has ended.
    pub keep_alive: bool,
    /// Time between SIGTERM and SIGKILL at shutdown.
    pub graceful_time: Duration,
    /// Which extra messages to print.
    pub messages: Messages,
    /// In config order, or as dependencies allow.
    pub startup: Startup,
}

/// One process, ready to spawn.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// 1-based position in the config.
    pub id: u32,
    /// Its key under `processes`.
    pub name: Arc<str>,
    /// The command as the original printed it: executable and arguments joined by spaces.
    pub command: String,
    /// The program to execute (a shell when `shell` is set).
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Its working directory, if not pymanager's.
    pub cwd: Option<PathBuf>,
    /// Its whole environment, when an environment file defined it; else pymanager's.
    pub env: Option<Vec<(OsString, OsString)>>,
    /// Where its output goes.
    pub output: OutputMode,
    /// Its verifier, resolved.
    pub verifier: Option<VerifierSpec>,
    /// What it waits for, when it restarts, how it is checked and stopped.
    pub orchestration: Orchestration,
}

/// Where a process's output goes (it is always kept in the bounded history too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputMode {
    /// To pymanager's stdout, each line prefixed with the process name.
    Console,
    /// Nowhere (`suppress_output`).
    Suppress,
    /// Into this file, truncated at each start (`redirect_output`).
    File(PathBuf),
}

/// A process's verifier, resolved to a module.
#[derive(Debug, Clone)]
pub struct VerifierSpec {
    /// The type as written in the config.
    pub kind: String,
    /// The module and verifier it resolved to.
    pub target: VerifierRef,
    /// Its arguments as JSON text.
    pub args_json: String,
}

/// Resolves everything that needs no verifier runtime: commands, shells, environment
/// files, output files and verifier names. Blocking (it runs the shell for environment
/// files), so it runs before the async runtime starts.
pub fn build(loaded: &Loaded, warnings: &mut Vec<String>) -> Result<Plan, ConfigError> {
    let config = &loaded.config;
    let default_shell = default_shell(&config.default_shell);
    let cwd = std::env::current_dir()
        .map_err(|e| ConfigError::invalid("(working directory)", e.to_string()))?;

    let mut modules = Vec::new();
    let mut used_builtins: Vec<&'static Builtin> = Vec::new();
    for (alias, m) in &config.modules {
        match (&m.path, find_builtin_module(alias)) {
            (Some(path), _) => modules.push(external_module(alias, m, path, &loaded.dir)?),
            (None, Some(b)) => {
                for v in m.verifiers.iter().flatten() {
                    if v != b.verifier {
                        warnings.push(format!(
                            "[WARNING] module {alias} has no verifier {v} (it provides {}).",
                            b.verifier
                        ));
                    }
                }
            }
            (None, None) => warnings.push(format!("[WARNING] module {alias} not found.")),
        }
    }

    let names: Vec<&str> = config.processes.keys().map(String::as_str).collect();
    let mut processes = Vec::with_capacity(config.processes.len());
    for (i, (name, p)) in config.processes.iter().enumerate() {
        let at = format!("processes.{name}");
        let mut command = p.executable.clone();
        for a in &p.arguments {
            command.push(' ');
            command.push_str(a);
        }
        // The executable is found from where pymanager started, not from working_directory.
        let executable = if p.executable.contains('/') {
            cwd.join(&p.executable).into_os_string()
        } else {
            OsString::from(&p.executable)
        };
        let (program, args) = match &p.options.shell {
            ShellChoice::None => (executable, p.arguments.iter().map(OsString::from).collect()),
            choice => {
                let shell = match choice {
                    ShellChoice::Named(s) => s.clone(),
                    _ => default_shell.clone(),
                };
                (
                    OsString::from(shell),
                    vec![OsString::from("-c"), OsString::from(&command)],
                )
            }
        };
        let env = match &p.options.environment_file {
            Some(file) => Some(source_env_file(&default_shell, &cwd.join(file)).map_err(
                |reason| ConfigError::invalid(format!("{at}.options.environment_file"), reason),
            )?),
            None => None,
        };
        let output = match (&p.options.redirect_output, p.options.suppress_output) {
            (Some(f), _) => OutputMode::File(cwd.join(f)),
            (None, true) => OutputMode::Suppress,
            (None, false) => OutputMode::Console,
        };
        let mut verifier_spec = |kind: &str, args: &serde_json::Value, at: String| {
            let target = resolve_verifier(kind, config)
                .map_err(|reason| ConfigError::invalid(format!("{at}.type"), reason))?;
            if target.module_is_builtin
                && let Some(b) = find_builtin_module(&target.r.module)
                && !used_builtins.iter().any(|u| u.module == b.module)
            {
                used_builtins.push(b);
            }
            Ok(VerifierSpec {
                kind: kind.to_string(),
                target: target.r,
                args_json: args.to_string(),
            })
        };
        let verifier = match &p.verifier {
            Some(v) => Some(verifier_spec(
                &v.kind,
                &v.arguments,
                format!("{at}.verifier"),
            )?),
            None => None,
        };
        let orchestration = orchestration::resolve(p, &at, &names, verifier_spec)?;
        processes.push(Arc::new(ProcessSpec {
            id: i as u32 + 1,
            name: Arc::from(name.as_str()),
            command,
            program,
            args,
            cwd: p.options.working_directory.as_ref().map(|d| cwd.join(d)),
            env,
            output,
            verifier,
            orchestration,
        }));
    }

    for b in used_builtins {
        modules.push(ModuleDecl {
            alias: b.module.to_string(),
            source: match b.component {
                Some(bytes) => ModuleSource::Builtin(bytes),
                None => ModuleSource::Builtin(&[]),
            },
            grants: Grants {
                hosts: HostGrants::Any,
            },
            limits: Limits::default(),
        });
    }

    for w in warnings.iter_mut() {
        *w = crate::config::one_line(w);
    }
    Ok(Plan {
        processes,
        modules,
        keep_alive: config.keep_alive,
        graceful_time: config.graceful_time,
        messages: config.messages(),
        startup: config.startup,
    })
}

/// Loads the plan's modules into `runtime` and validates every verifier's arguments.
/// Errors name the process (or module) and the reason; they mean exit 5.
pub async fn prepare(plan: &Plan, runtime: &Runtime) -> Result<(), ConfigError> {
    runtime
        .load(plan.modules.clone())
        .await
        .map_err(|e| ConfigError::invalid(format!("modules.{}", e.alias), e.reason))?;
    let checks = plan.processes.iter().flat_map(|p| {
        let own = p
            .verifier
            .as_ref()
            .map(|v| (v, format!("processes.{}.verifier", p.name)));
        let liveness = p
            .orchestration
            .liveness
            .as_ref()
            .map(|l| (&l.verifier, format!("processes.{}.liveness", p.name)));
        own.into_iter().chain(liveness)
    });
    let checks = checks.map(|(v, at)| async move {
        let names = runtime.names(&v.target.module).unwrap_or_default();
        if !names.iter().any(|n| n == &v.target.name) {
            return Err(ConfigError::invalid(
                format!("{at}.type"),
                format!(
                    "module {} has no verifier {} (it provides: {})",
                    v.target.module,
                    v.target.name,
                    names.join(", ")
                ),
            ));
        }
        runtime
            .validate(&v.target, &v.args_json)
            .await
            .map_err(|e| {
                ConfigError::invalid(format!("{at}.arguments"), format!("{}: {e}", v.kind))
            })
    });
    for r in futures::future::join_all(checks).await {
        r?;
    }
    Ok(())
}

/// The shell `default_shell: true` means: the user's login shell, else `/bin/sh`.
fn default_shell(choice: &StringOrBool) -> String {
    match choice {
        StringOrBool::String(s) if !s.trim().is_empty() => s.clone(),
        _ => std::env::var("SHELL")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "/bin/sh".into()),
    }
}

fn find_builtin_module(alias: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.module == alias)
}

struct Resolved {
    r: VerifierRef,
    module_is_builtin: bool,
}

/// `module.Name`, a built-in verifier's name, or a built-in's short name.
fn resolve_verifier(kind: &str, config: &Config) -> Result<Resolved, String> {
    let kind = kind.trim();
    if let Some(b) = BUILTINS
        .iter()
        .find(|b| b.short == kind || b.verifier == kind)
    {
        return Ok(Resolved {
            r: VerifierRef {
                module: b.module.into(),
                name: b.verifier.into(),
            },
            module_is_builtin: true,
        });
    }
    let Some((module, name)) = kind.rsplit_once('.') else {
        return Err(format!(
            "unknown verifier {kind:?}: write module.Name, or one of the built-ins: {}",
            builtin_list()
        ));
    };
    if config.modules.get(module).is_some_and(|m| m.path.is_some()) {
        return Ok(Resolved {
            r: VerifierRef {
                module: module.into(),
                name: name.into(),
            },
            module_is_builtin: false,
        });
    }
    if let Some(b) = find_builtin_module(module) {
        return Ok(Resolved {
            r: VerifierRef {
                module: b.module.into(),
                name: name.into(),
            },
            module_is_builtin: true,
        });
    }
    Err(format!(
        "unknown module {module:?}: declare it under modules with a \"path\" to its .wasm component, or use a built-in: {}",
        builtin_list()
    ))
}

fn builtin_list() -> String {
    BUILTINS
        .iter()
        .map(|b| format!("{}.{} ({})", b.module, b.verifier, b.short))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The declaration of an external module: its path resolved against `config_dir`, its
/// grants and limits from the config (shared with `pymanager verify`'s flags, so that both
/// grant the same by default).
pub(crate) fn external_module(
    alias: &str,
    m: &ModuleConfig,
    path: &Path,
    config_dir: &Path,
) -> Result<ModuleDecl, ConfigError> {
    let at = format!("modules.{alias}");
    let hosts = match &m.allow.hosts {
        None => HostGrants::loopback(),
        Some(list) => HostGrants::List(
            list.iter()
                .enumerate()
                .map(|(i, h)| {
                    HostPattern::parse(h)
                        .map_err(|r| ConfigError::invalid(format!("{at}.allow.hosts.{i}"), r))
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    let defaults = Limits::default();
    let limits = Limits {
        memory_bytes: m
            .limits
            .memory_mb
            .map_or(defaults.memory_bytes, |mb| (mb as usize) << 20),
        cpu_time: m
            .limits
            .cpu_ms
            .map_or(defaults.cpu_time, Duration::from_millis),
        call_timeout: m.limits.timeout_s.map(Duration::from_secs),
    };
    if limits.memory_bytes < 1 << 20
        || limits.cpu_time.is_zero()
        || limits.call_timeout.is_some_and(|d| d.is_zero())
    {
        return Err(ConfigError::invalid(
            format!("{at}.limits"),
            "memory_mb must be at least 1, cpu_ms and timeout_s above 0",
        ));
    }
    Ok(ModuleDecl {
        alias: alias.to_string(),
        source: ModuleSource::File(config_dir.join(path)),
        grants: Grants { hosts },
        limits,
    })
}

/// Sources `file` in `shell` and returns the environment it leaves.
fn source_env_file(shell: &str, file: &Path) -> Result<Vec<(OsString, OsString)>, String> {
    use std::os::unix::ffi::OsStrExt;
    if !file.is_file() {
        return Err(format!("cannot read {}: no such file", file.display()));
    }
    let out = std::process::Command::new(shell)
        .arg("-c")
        .arg(". \"$1\" >/dev/null && exec env -0")
        .arg("pymanager")
        .arg(file)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {shell} to source {}: {e}", file.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "sourcing {} in {shell} failed ({}): {}",
            file.display(),
            out.status,
            err.lines().last().unwrap_or("").trim()
        ));
    }
    Ok(out
        .stdout
        .split(|b| *b == 0)
        .filter_map(|kv| {
            let eq = kv.iter().position(|b| *b == b'=')?;
            let (k, v) = kv.split_at(eq);
            if k.is_empty() {
                return None;
            }
            Some((
                std::ffi::OsStr::from_bytes(k).to_os_string(),
                std::ffi::OsStr::from_bytes(&v[1..]).to_os_string(),
            ))
        })
        .collect())
}
