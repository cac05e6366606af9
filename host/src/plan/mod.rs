//! From a checked config to what the supervisor runs: command lines resolved (shells,
//! environment files, paths), verifier types resolved to modules, and every verifier's
//! arguments validated before anything starts.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod buffering;
mod command;
mod orchestration;
mod verifiers;

use crate::config::{ConfigError, Loaded, Messages, ShellChoice, Startup, VerifierConfig};
use crate::runtime::{Builtin, ModuleDecl, VerifierRef};

pub(crate) use command::default_shell;
use command::{check_readable, find_executable, source_env_file};
pub use orchestration::{Dependency, LivenessSpec, Orchestration, start_deps, start_plan};
pub(crate) use verifiers::external_module;
pub use verifiers::prepare;

/// The built-in module whose verifier waits for a line of output.
const OUTPUT_MODULE: &str = "pymanager.output_verifier";

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
    /// The `exec` verifier, checked and ready, which runs natively rather than in the
    /// runtime (`target` then names it only for messages).
    pub exec: Option<Arc<crate::exec_verifier::ExecVerifier>>,
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
    let mut processes = Vec::with_capacity(config.processes.len());
    for (i, (name, p)) in config.processes.iter().enumerate() {
        let at = format!("processes.{name}");
        let mut command = p.executable.clone();
        for a in &p.arguments {
            command.push(' ');
            command.push_str(a);
        }
        let workdir = p.options.working_directory.as_ref().map(|d| cwd.join(d));
        let executable = find_executable(&p.executable, workdir.as_deref(), &cwd);
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
            let (spec, builtin) =
                verifiers::spec(&at, v, config, &modules, &config_dir, &process, warnings)?;
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
        let orchestration = orchestration::resolve(p, &at, &names, verifier_spec)?;
        if let Some(spec) = &verifier
            && spec.target.module == OUTPUT_MODULE
            && buffering::python_block_buffered(&p.executable, &p.arguments, env.as_deref())
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
            output,
            verifier,
            orchestration,
        }));
    }

    modules.extend(used_builtins.into_iter().map(verifiers::builtin_module));

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

#[cfg(test)]
mod tests;
