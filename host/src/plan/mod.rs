//! From a checked config to what the supervisor runs: command lines resolved (shells,
//! environment files, paths), verifier types resolved to modules, and every verifier's
//! arguments validated before anything starts.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

mod buffering;
mod command;
mod orchestration;
pub mod ports;
mod python_modules;
pub(crate) mod template;
mod verifiers;

use crate::config::{ConfigError, Loaded, Messages, ShellChoice, Startup, VerifierConfig};
use crate::runtime::{Builtin, ModuleDecl, VerifierRef};

pub(crate) use command::default_shell;
use command::{check_found, check_readable, find_executable, source_env_file};
pub use orchestration::{
    Dependency, LivenessSpec, Orchestration, STOP_GRACE, StopRule, start_deps, start_plan,
};
pub use ports::{Port, PortHold, PortTable};
use template::{Escapes, Scope};
pub(crate) use verifiers::external_module;
pub use verifiers::{prepare, prepare_without_builds};

/// The built-in module whose verifier waits for a line of output.
const OUTPUT_MODULE: &str = "pymanager.output_verifier";
/// The built-in module whose verifier waits for the process's exit: a process verified by
/// it is meant to end.
pub const EXITED_MODULE: &str = "pymutils.exited_verifier";

/// Everything needed to run one config.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The processes, in start order.
    pub processes: Vec<Arc<ProcessSpec>>,
    /// The verifier modules the processes use (and every external module declared).
    pub modules: Vec<ModuleDecl>,
    /// Stay up after every process has ended.
    pub keep_alive: bool,
    /// Which extra messages to print.
    pub messages: Messages,
    /// In config order, or as dependencies allow.
    pub startup: Startup,
    /// Every process's ports, by name, in config order.
    pub ports: PortTable,
}

impl Plan {
    /// Every port as the variable `pymanager run` gives its command
    /// (`PYMANAGER_PORT_<PROCESS>_<NAME>`), in config order.
    pub fn port_vars(&self) -> Vec<(String, String)> {
        ports::all_vars(&self.ports)
    }

    /// Lets every picked port go, in a process that spawns nothing (the caller of `-d`,
    /// which waits for the daemon's word while the daemon's copies keep them held).
    pub fn release_ports(&self) {
        for p in &self.processes {
            p.port_hold.release();
        }
    }

    /// The descriptors that hold picked ports, for a process that forks off and must not
    /// keep them.
    pub fn held_port_fds(&self) -> Vec<std::os::fd::RawFd> {
        self.processes
            .iter()
            .flat_map(|p| p.port_hold.raw_fds())
            .collect()
    }
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
    /// Its whole environment, when an environment file, `environment` or ports define
    /// some of it; else pymanager's.
    pub env: Option<Vec<(OsString, OsString)>>,
    /// Its named ports, resolved.
    pub ports: Arc<[Port]>,
    /// Keeps its picked ports from anyone else until it is spawned.
    pub port_hold: Arc<PortHold>,
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
    /// Appended to this file, every run of the process after the other (`pymanager
    /// run`'s log files, emptied when pymanager starts).
    Log(PathBuf),
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
    /// The `exec` verifier, checked and ready, which runs natively rather than in the
    /// runtime (`target` then names it only for messages).
    pub exec: Option<Arc<ExecSpec>>,
}

/// One process's `exec` check, ready to run: its arguments and where its command runs.
#[derive(Debug, Clone)]
pub struct ExecSpec {
    /// The checked arguments.
    pub args: crate::config::exec::ExecArgs,
    /// The process's working directory (pymanager's when `None`).
    pub cwd: Option<PathBuf>,
    /// The process's whole environment (pymanager's when `None`).
    pub env: Option<Vec<(OsString, OsString)>>,
    /// The shell for a command line (the config's default shell).
    pub shell: String,
}

/// What [`build`] does with a process's `environment_file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvFiles {
    /// Source it in the default shell: the process gets the environment it leaves.
    Source,
    /// Only check that it can be read: `pymanager check` must execute nothing, and
    /// sourcing a file runs whatever it holds.
    CheckReadable,
}

/// Resolves everything that needs no verifier runtime: commands, shells, environment
/// files, output files and verifier names. Blocking (with [`EnvFiles::Source`] it runs the
/// shell for environment files), so it runs before the async runtime starts.
pub fn build(
    loaded: &Loaded,
    env_files: EnvFiles,
    warnings: &mut Vec<String>,
) -> Result<Plan, ConfigError> {
    let config = &loaded.config;
    let default_shell = default_shell(&config.default_shell);
    let cwd = std::env::current_dir()
        .map_err(|e| ConfigError::invalid("(working directory)", e.to_string()))?;

    // Absolute (`./` dropped), for the paths the runtime reads later.
    let config_dir: PathBuf = cwd.join(&loaded.dir).components().collect();
    let mut modules = verifiers::declared_modules(config, &loaded.dir, warnings)?;
    let mut used_builtins: Vec<&'static Builtin> = Vec::new();

    let names: Vec<&str> = config.processes.keys().map(String::as_str).collect();
    let (port_table, mut holds) = ports::resolve(config)?;
    let lookup = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
    let scope = Scope {
        ports: &port_table,
        env: &lookup,
    };
    let reaches = dependency_closure(config);
    let mut processes = Vec::with_capacity(config.processes.len());
    for (i, (name, p)) in config.processes.iter().enumerate() {
        let at = format!("processes.{name}");
        let arguments = p
            .arguments
            .iter()
            .enumerate()
            .map(|(j, a)| {
                scope
                    .expand(a, Escapes::Legacy)
                    .map_err(|e| ConfigError::invalid(format!("{at}.arguments.{j}"), e))
            })
            .collect::<Result<Vec<String>, _>>()?;
        let mut command = p.executable.clone();
        for a in &arguments {
            command.push(' ');
            command.push_str(a);
        }
        let workdir = p.options.working_directory.as_ref().map(|d| cwd.join(d));
        let executable = find_executable(&p.executable, workdir.as_deref(), &cwd);
        let (program, args) = match &p.options.shell {
            ShellChoice::None => (executable, arguments.iter().map(OsString::from).collect()),
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
            Some(file) => {
                let file = cwd.join(file);
                let env = match env_files {
                    EnvFiles::Source => source_env_file(&default_shell, &file).map(Some),
                    EnvFiles::CheckReadable => check_readable(&file).map(|()| None),
                };
                env.map_err(|reason| {
                    ConfigError::invalid(format!("{at}.options.environment_file"), reason)
                })?
            }
            None => None,
        };
        let env = with_overlay(env, overlay(i, p, &port_table, &reaches, &scope, &at)?);
        // A program that is nowhere on PATH stops the load, before anything starts (`check`
        // included, unless an environment file it does not source may change PATH).
        if env_files == EnvFiles::Source || p.options.environment_file.is_none() {
            check_found(&program, env.as_deref()).map_err(|reason| {
                let field = if matches!(p.options.shell, ShellChoice::None) {
                    "executable"
                } else {
                    "options.shell"
                };
                ConfigError::invalid(format!("{at}.{field}"), reason)
            })?;
        }
        let output = match (&p.options.redirect_output, p.options.suppress_output) {
            (Some(f), _) => OutputMode::File(cwd.join(f)),
            (None, true) => OutputMode::Suppress,
            (None, false) => OutputMode::Console,
        };
        let process = verifiers::ExecContext {
            cwd: workdir.clone(),
            env: env.clone(),
            shell: default_shell.clone(),
        };
        let mut verifier_spec = |v: &VerifierConfig, at: String| {
            let v = VerifierConfig {
                kind: v.kind.clone(),
                arguments: scope
                    .expand_json(&v.arguments, &format!("{at}.arguments"))
                    .map_err(|(path, e)| ConfigError::invalid(path, e))?,
            };
            let (spec, builtin) =
                verifiers::spec(&at, &v, config, &modules, &config_dir, &process, warnings)?;
            if let Some(b) = builtin
                && !used_builtins.iter().any(|u| u.module == b.module)
            {
                used_builtins.push(b);
            }
            Ok(spec)
        };
        let verifier = match &p.verifier {
            Some(v) => Some(verifier_spec(v, format!("{at}.verifier"))?),
            None => None,
        };
        let orchestration =
            orchestration::resolve(p, &at, &names, config.graceful_time, verifier_spec)?;
        if let Some(spec) = &verifier
            && spec.target.module == OUTPUT_MODULE
            && buffering::python_block_buffered(&p.executable, &arguments, env.as_deref())
        {
            warnings.push(buffering::warning(&at));
        }
        processes.push(Arc::new(ProcessSpec {
            id: i as u32 + 1,
            name: Arc::from(name.as_str()),
            command,
            program,
            args,
            cwd: workdir,
            env,
            ports: port_table[i].clone().into(),
            port_hold: Arc::new(std::mem::take(&mut holds[i])),
            output,
            verifier,
            orchestration,
        }));
    }

    modules.extend(used_builtins.into_iter().map(verifiers::builtin_module));

    for w in warnings.iter_mut() {
        *w = crate::error_text::one_line(w);
    }
    Ok(Plan {
        processes,
        modules,
        keep_alive: config.keep_alive,
        messages: config.messages(),
        startup: config.startup,
        ports: port_table,
    })
}

/// For each process (by index), every process it waits for, directly or through others:
/// its `depends_on`, and in an ordered start-up every process before it. Their ports are
/// in its environment.
pub(crate) fn dependency_closure(config: &crate::config::Config) -> Vec<Vec<usize>> {
    let index = |n: &str| config.processes.get_index_of(n);
    let direct: Vec<Vec<usize>> = config
        .processes
        .values()
        .enumerate()
        .map(|(i, p)| {
            let mut d: Vec<usize> = p.depends_on.0.keys().filter_map(|n| index(n)).collect();
            if config.startup == Startup::Ordered && i > 0 {
                d.push(i - 1);
            }
            d
        })
        .collect();
    (0..direct.len())
        .map(|start| {
            let mut seen = vec![false; direct.len()];
            let mut todo = direct[start].clone();
            while let Some(j) = todo.pop() {
                if j != start && !std::mem::replace(&mut seen[j], true) {
                    todo.extend(&direct[j]);
                }
            }
            (0..seen.len()).filter(|&j| seen[j]).collect()
        })
        .collect()
}

/// The variables pymanager sets for process `i`: `PORT` (its first port),
/// `PYMANAGER_PORT_…` for its own ports and those of the processes it waits for, then its
/// `environment` (which may override them).
fn overlay(
    i: usize,
    p: &crate::config::ProcessConfig,
    ports: &PortTable,
    reaches: &[Vec<usize>],
    scope: &Scope,
    at: &str,
) -> Result<Vec<(OsString, OsString)>, ConfigError> {
    let mut vars = Vec::new();
    if let Some(first) = ports[i].first() {
        vars.push(("PORT".into(), first.number.to_string().into()));
    }
    for j in std::iter::once(i).chain(reaches[i].iter().copied()) {
        let (process, list) = ports.get_index(j).expect("one entry per process");
        for port in list {
            vars.push((
                crate::config::port_var(process, &port.name).into(),
                port.number.to_string().into(),
            ));
        }
    }
    for (key, value) in &p.environment {
        let value = scope
            .expand(value, Escapes::Strict)
            .map_err(|e| ConfigError::invalid(format!("{at}.environment.{key}"), e))?;
        vars.push((key.into(), value.into()));
    }
    Ok(vars)
}

/// `base` (an environment file's whole environment, or pymanager's when `None`) with
/// `vars` set over it; `base` as it is when there are none.
fn with_overlay(
    base: Option<Vec<(OsString, OsString)>>,
    vars: Vec<(OsString, OsString)>,
) -> Option<Vec<(OsString, OsString)>> {
    if vars.is_empty() {
        return base;
    }
    let base = base.unwrap_or_else(|| std::env::vars_os().collect());
    let mut env: Vec<(OsString, OsString)> = base
        .into_iter()
        .filter(|(k, _)| !vars.iter().any(|(v, _)| v == k))
        .collect();
    // A later value of one key wins (`environment` over `PORT`).
    for (k, v) in vars {
        env.retain(|(e, _)| *e != k);
        env.push((k, v));
    }
    Some(env)
}

#[cfg(test)]
mod tests;
