//! Verifiers in the plan: types resolved to modules (built-in or external), external
//! modules declared with their grants and limits, and every verifier's arguments validated
//! before anything starts.

use std::path::Path;
use std::time::Duration;

use std::sync::Arc;

use super::ExecSpec;
use super::{Plan, VerifierSpec};
use crate::config::exec::{self as exec_verifier, ExecArgs};
use crate::config::{Config, ConfigError, ModuleConfig, VerifierConfig};
use crate::runtime::trust::CA_FILE;
use crate::runtime::{
    BUILTINS, Builtin, Grants, HostGrants, HostPattern, Limits, ModuleDecl, ModuleSource, Runtime,
    VerifierRef,
};

/// The external modules the config declares; a warning for each entry that names no module
/// (the original went on without it) or a verifier its built-in module lacks.
pub(super) fn declared_modules(
    config: &Config,
    config_dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<Vec<ModuleDecl>, ConfigError> {
    let mut modules = Vec::new();
    for (alias, m) in &config.modules {
        if let Some(path) = &m.path {
            modules.push(external_module(alias, m, path, config_dir)?);
        } else if Builtin::provided_by(alias).next().is_some() {
            for v in m.verifiers.iter().flatten() {
                if Builtin::in_module(alias, v).is_none() {
                    warnings.push(format!(
                        "[WARNING] module {alias} has no verifier {v} (it provides {}).",
                        provided_list(alias)
                    ));
                }
            }
        } else {
            let pythonpath = std::env::var_os("PYTHONPATH");
            let build_time = m.limits.build_s.map_or(
                crate::runtime::python::DEFAULT_BUILD_TIME,
                Duration::from_secs,
            );
            let at = format!("modules.{alias}");
            match super::python_modules::find(alias, config_dir, pythonpath.as_deref(), build_time)
            {
                Ok(Some(py)) => modules.push(python_module(alias, m, py, config_dir)?),
                Ok(None) => {
                    return Err(ConfigError::invalid(
                        at,
                        format!(
                            "no module {alias}: it is not built in, has no \"path\" to a .wasm \
                             component, and no {alias}.py or package is beside the config ({}) \
                             or on PYTHONPATH",
                            config_dir.display()
                        ),
                    ));
                }
                Err(why) => return Err(ConfigError::invalid(at, why)),
            }
        }
    }
    Ok(modules)
}

/// The declaration that loads a built-in module: any host (its arguments name what it
/// reaches), default limits.
pub(super) fn builtin_module(b: &'static Builtin) -> ModuleDecl {
    // A binary built without a component fails to load it, with the module named.
    b.decl().unwrap_or(ModuleDecl {
        alias: b.module.to_string(),
        source: ModuleSource::Builtin(&[]),
        grants: Grants {
            hosts: HostGrants::Any,
        },
        limits: Limits::default(),
    })
}

/// A process's verifier resolved (`at` is its field path, `processes.<name>.verifier`), and
/// the built-in module it needs loaded, if any.
pub(super) fn spec(
    at: &str,
    v: &VerifierConfig,
    config: &Config,
    declared: &[ModuleDecl],
    config_dir: &Path,
    process: &ExecContext,
    warnings: &mut Vec<String>,
) -> Result<(VerifierSpec, Option<&'static Builtin>), ConfigError> {
    let target = resolve_verifier(&v.kind, config, declared)
        .map_err(|reason| ConfigError::invalid(format!("{at}.type"), reason))?;
    let exec = match target {
        Target::Exec => {
            let args = format!("{at}.arguments");
            let (parsed, unknown) = ExecArgs::parse(&v.arguments).map_err(|e| {
                let (path, reason) = under(&args, &e);
                ConfigError::invalid(path, format!("{reason} ({})", v.kind))
            })?;
            warnings.extend(unknown.iter().map(|w| {
                let (path, reason) = under(&args, w);
                format!("[WARNING] {path}: {reason}")
            }));
            Some(Arc::new(ExecSpec {
                args: parsed,
                cwd: process.cwd.clone(),
                env: process.env.clone(),
                shell: process.shell.clone(),
            }))
        }
        _ => None,
    };
    let spec = VerifierSpec {
        kind: v.kind.clone(),
        target: target.verifier_ref(),
        args_json: with_ca_file_resolved(&v.arguments, config_dir).to_string(),
        exec,
    };
    let builtin = match target {
        Target::Builtin(b) => Some(b),
        Target::External { .. } | Target::Exec => None,
    };
    Ok((spec, builtin))
}

/// Where a process's `exec` checks run: its directory, its environment, the shell for a
/// command line.
pub(super) struct ExecContext {
    pub cwd: Option<std::path::PathBuf>,
    pub env: Option<Vec<(std::ffi::OsString, std::ffi::OsString)>>,
    pub shell: String,
}

/// The arguments with a relative `ca_file` made absolute against the config's directory
/// (where module paths are resolved too), so that the runtime, which reads it, finds it
/// wherever pymanager was started.
fn with_ca_file_resolved(args: &serde_json::Value, config_dir: &Path) -> serde_json::Value {
    let mut args = args.clone();
    if let Some(file) = args.get_mut(CA_FILE)
        && let Some(path) = file.as_str().map(Path::new)
        && path.is_relative()
    {
        *file = config_dir.join(path).to_string_lossy().into_owned().into();
    }
    args
}

/// Loads the plan's modules into `runtime` and validates every verifier's arguments.
/// Errors name the process (or module) and the reason; they mean exit 5. Returns the
/// warnings the verifiers had about their arguments (keys they ignore, …), one line each,
/// to be shown like the config's own warnings.
pub async fn prepare(plan: &Plan, runtime: &Runtime) -> Result<Vec<String>, ConfigError> {
    load_and_validate(plan, runtime, Builds::Run).await
}

/// [`prepare`] for `pymanager check`, which runs no code of the user's: Python modules are
/// not built (componentize-py runs their top-level code), so their verifiers' arguments
/// are not validated; a line for each says so, and one says if componentize-py is missing.
pub async fn prepare_without_builds(
    plan: &Plan,
    runtime: &Runtime,
) -> Result<Vec<String>, ConfigError> {
    load_and_validate(plan, runtime, Builds::Skip).await
}

/// Whether Python modules are built.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Builds {
    Run,
    Skip,
}

async fn load_and_validate(
    plan: &Plan,
    runtime: &Runtime,
    builds: Builds,
) -> Result<Vec<String>, ConfigError> {
    let mut notes = Vec::new();
    let mut unbuilt = Vec::new();
    let mut modules = plan.modules.clone();
    if builds == Builds::Skip {
        modules.retain(|m| {
            let ModuleSource::Python(py) = &m.source else {
                return true;
            };
            notes.push(format!(
                "[WARNING] modules.{}: Python module {} is built with componentize-py when \
                 pymanager starts (its top-level code runs then, not in check), so the \
                 arguments of its verifiers are checked then",
                m.alias,
                py.root.display()
            ));
            unbuilt.push(m.alias.clone());
            false
        });
        if !unbuilt.is_empty() && crate::runtime::python::find_tool().is_none() {
            notes.push(format!(
                "[WARNING] {}",
                crate::runtime::python::install_hint()
            ));
        }
    }
    runtime
        .load(modules)
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
        // An exec check was checked by the plan: it runs natively, in no module.
        own.into_iter()
            .chain(liveness)
            .filter(|(v, _)| v.exec.is_none())
    });
    let checks = checks.filter(|(v, _)| !unbuilt.contains(&v.target.module));
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
        let args = format!("{at}.arguments");
        match runtime.validate(&v.target, &v.args_json).await {
            Ok(warnings) => Ok(warnings
                .iter()
                .map(|w| {
                    let (path, reason) = under(&args, w);
                    crate::error_text::one_line(&format!("[WARNING] {path}: {reason}"))
                })
                .collect::<Vec<_>>()),
            Err(e) => {
                let (path, reason) = under(&args, &e.0);
                Err(ConfigError::invalid(path, format!("{reason} ({})", v.kind)))
            }
        }
    });
    let mut warnings = notes;
    for r in futures::future::join_all(checks).await {
        warnings.extend(r?);
    }
    Ok(warnings)
}

/// Places a verifier's message under the field it names: `url: missing field` under
/// `processes.web.verifier.arguments` is `processes.web.verifier.arguments.url` and
/// `missing field`. A message that names no field stays whole, under `at`.
pub(super) fn under(at: &str, message: &str) -> (String, String) {
    match message.split_once(": ") {
        Some((field, reason))
            if !field.is_empty()
                && field != "arguments"
                && field
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.')) =>
        {
            (format!("{at}.{field}"), reason.to_string())
        }
        _ => (at.to_string(), message.to_string()),
    }
}

/// What a verifier type resolved to.
#[derive(Debug, Clone)]
enum Target {
    /// A built-in verifier (under its own module's name, whatever alias named it).
    Builtin(&'static Builtin),
    /// A verifier of the external module with this alias.
    External { module: String, name: String },
    /// The native `exec` verifier.
    Exec,
}

impl Target {
    fn verifier_ref(&self) -> VerifierRef {
        match self {
            Target::Builtin(b) => VerifierRef {
                module: b.module.into(),
                name: b.verifier.into(),
            },
            Target::External { module, name } => VerifierRef {
                module: module.clone(),
                name: name.clone(),
            },
            Target::Exec => VerifierRef {
                module: exec_verifier::MODULE.into(),
                name: exec_verifier::NAME.into(),
            },
        }
    }
}

/// `module.Name` (an external module's alias, or a built-in module or package), a built-in
/// verifier's name, or a built-in's short name. `declared` are the external modules (with a
/// `path`, or found as Python files).
fn resolve_verifier(
    kind: &str,
    config: &Config,
    declared: &[ModuleDecl],
) -> Result<Target, String> {
    let kind = kind.trim();
    if let Some((module, name)) = kind.rsplit_once('.')
        && config.modules.get(module).is_some_and(|m| m.path.is_some())
    {
        return Ok(Target::External {
            module: module.into(),
            name: name.into(),
        });
    }
    if exec_verifier::names(kind) {
        return Ok(Target::Exec);
    }
    if let Some(b) = Builtin::resolve(kind) {
        return Ok(Target::Builtin(b));
    }
    let Some((module, name)) = kind.rsplit_once('.') else {
        return Err(format!(
            "unknown verifier {kind:?}: write module.Name, or one of the built-ins: {}",
            builtin_list()
        ));
    };
    // A Python module declared without a path (built when loaded).
    if declared.iter().any(|m| m.alias == module) {
        return Ok(Target::External {
            module: module.into(),
            name: name.into(),
        });
    }
    if Builtin::provided_by(module).next().is_some() {
        return Err(format!(
            "module {module} has no verifier {name:?} (it provides {})",
            provided_list(module)
        ));
    }
    Err(format!(
        "unknown module {module:?}: declare it under modules with a \"path\" to its .wasm component, or as a Python module ({module}.py next to the config or on PYTHONPATH), or use a built-in: {}",
        builtin_list()
    ))
}

/// `ExitedVerifier, HttpOkVerifier`: what a built-in module or package provides.
fn provided_list(module: &str) -> String {
    Builtin::provided_by(module)
        .map(|b| b.verifier)
        .collect::<Vec<_>>()
        .join(", ")
}

fn builtin_list() -> String {
    BUILTINS
        .iter()
        .map(|b| format!("{}.{} ({})", b.module, b.verifier, b.short))
        .chain(std::iter::once(format!(
            "{}.{} ({})",
            exec_verifier::MODULE,
            exec_verifier::NAME,
            exec_verifier::SHORT
        )))
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
        None => HostGrants::none(),
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
        || m.limits.build_s == Some(0)
    {
        return Err(ConfigError::invalid(
            format!("{at}.limits"),
            "memory_mb must be at least 1, cpu_ms, timeout_s and build_s above 0",
        ));
    }
    Ok(ModuleDecl {
        alias: alias.to_string(),
        source: ModuleSource::File(config_dir.join(path)),
        grants: Grants { hosts },
        limits,
    })
}

/// The declaration of a Python module written for the original: built into a component
/// when loaded. Unless `allow.hosts` says otherwise its verifiers reach this machine's
/// loopback addresses, any port, so that a config written for the original runs unchanged
/// (the original's verifiers checked services of the test environment on this machine, on
/// ports that `${ports…}` may now choose at start) — but never a pymanager's API, its own
/// or another's (see `runtime::listeners`): those answer `DELETE /` without a token unless
/// one is set.
fn python_module(
    alias: &str,
    m: &ModuleConfig,
    py: crate::runtime::python::PythonModule,
    config_dir: &Path,
) -> Result<ModuleDecl, ConfigError> {
    let mut decl = external_module(alias, m, Path::new(""), config_dir)?;
    if m.allow.hosts.is_none() {
        decl.grants.hosts = HostGrants::Loopback;
    }
    decl.source = ModuleSource::Python(py);
    Ok(decl)
}
