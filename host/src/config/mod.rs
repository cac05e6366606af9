//! `pymanager.json`: reading it, checking it, and saying exactly where it is wrong.
//!
//! Every key of the original tool is accepted with the original's default. Errors carry the
//! field path (`processes.web.options.shell`) and map to the original's exit codes; unknown
//! keys are reported as warnings so that a typo is seen but an old config still runs.

pub mod exec;
mod flex;
mod orchestration;
pub mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

pub(crate) use flex::describe as describe_json;
pub use flex::{ShellChoice, StringOrBool};
pub use orchestration::{
    Condition, DependsOn, LivenessConfig, Policy, RestartConfig, Startup, StopSignal,
};

/// The config file used when none is named.
pub const DEFAULT_CONFIG: &str = "pymanager.json";

/// Why a config could not be used; each variant is one exit code of the original.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Exit 1.
    #[error("Cannot find file {}.", .0.display())]
    NotFound(PathBuf),
    /// Exit 2.
    #[error("Error while loading file {path}: {err}.", path = .0.display(), err = .1)]
    Unreadable(PathBuf, std::io::Error),
    /// Exit 3, with the position of the first syntax error.
    #[error("{} is not a valid JSON file: {reason} at line {line}, column {column}.", .path.display())]
    InvalidJson {
        /// The file.
        path: PathBuf,
        /// What the parser expected.
        reason: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// Exit 4.
    #[error("[ERROR] No processes listed in the configuration file.")]
    NoProcesses,
    /// Exit 5: a value is missing, of the wrong type, or contradicts another.
    #[error("[ERROR] could not set up processes: {path}: {reason}")]
    Invalid {
        /// Where in the file, e.g. `processes.web.options.shell`.
        path: String,
        /// What is wrong and what is expected.
        reason: String,
    },
}

impl ConfigError {
    /// The original tool's exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::NotFound(_) => 1,
            ConfigError::Unreadable(..) => 2,
            ConfigError::InvalidJson { .. } => 3,
            ConfigError::NoProcesses => 4,
            ConfigError::Invalid { .. } => 5,
        }
    }

    /// An exit-5 error. Control characters (a newline in a process name, say) are
    /// escaped, so the error stays one line whatever the config holds.
    pub(crate) fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: one_line(&path.into()),
            reason: one_line(&reason.into()),
        }
    }
}

pub use crate::error_text::one_line;

/// The whole configuration, with defaults filled in.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Verifier modules to load, by name (built-in) or by `path` (external component).
    pub modules: IndexMap<String, ModuleConfig>,
    /// The REST interface.
    pub http: HttpConfig,
    /// Stay up after every process has ended: `keep_alive`, or `keep-alive` (the spelling
    /// of the original's description); `keep_alive` wins when both are given.
    #[serde(skip)]
    pub keep_alive: bool,
    /// `keep-alive` as written.
    #[serde(rename = "keep-alive", deserialize_with = "flex::opt_bool_like")]
    keep_alive_hyphen: Option<bool>,
    /// `keep_alive` as written.
    #[serde(rename = "keep_alive", deserialize_with = "flex::opt_bool_like")]
    keep_alive_underscore: Option<bool>,
    /// Time every process gets between SIGTERM and SIGKILL at shutdown.
    #[serde(skip)]
    pub graceful_time: Duration,
    /// `graceful_time` as written; `Err` holds a negative value.
    #[serde(rename = "graceful_time", deserialize_with = "some_seconds")]
    graceful_time_given: Option<Result<Duration, f64>>,
    /// The shell for `shell: true` and `environment_file`; `true` means the user's shell.
    pub default_shell: StringOrBool,
    /// Which extra messages to print, as written (see [`Config::messages`]).
    #[serde(deserialize_with = "flex::message_list")]
    pub messages: Vec<String>,
    /// The processes, in the order they start.
    pub processes: IndexMap<String, ProcessConfig>,
    /// How they start: in config order (the original's way) or as their dependencies allow.
    pub startup: Startup,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            modules: IndexMap::new(),
            http: HttpConfig::default(),
            keep_alive: false,
            keep_alive_hyphen: None,
            keep_alive_underscore: None,
            graceful_time: DEFAULT_GRACEFUL_TIME,
            graceful_time_given: None,
            default_shell: StringOrBool::Bool(true),
            messages: Vec::new(),
            processes: IndexMap::new(),
            startup: Startup::default(),
        }
    }
}

impl Config {
    /// The `messages` list as flags; `verifier.verbose` implies `verifier.fail`.
    pub fn messages(&self) -> Messages {
        let has = |m: &str| self.messages.iter().any(|x| x == m);
        let verbose = has("verifier.verbose");
        Messages {
            process_exit: has("process.exit"),
            verifier_fail: verbose || has("verifier.fail"),
            verifier_verbose: verbose,
        }
    }
}

/// `graceful_time` when the config gives none (or a negative one).
pub const DEFAULT_GRACEFUL_TIME: Duration = Duration::from_secs(10);

fn some_seconds<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Result<Duration, f64>>, D::Error> {
    flex::seconds(d).map(Some)
}

/// The message types `messages` may list.
pub const MESSAGE_TYPES: &[&str] = &["process.exit", "verifier.fail", "verifier.verbose"];

/// One entry under `modules`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ModuleConfig {
    /// The classes the original loaded from the module; checked against what it provides.
    pub verifiers: Option<Vec<String>>,
    /// A `.wasm` component, relative to the config file; absent for built-in modules.
    pub path: Option<PathBuf>,
    /// What the module may reach.
    pub allow: AllowConfig,
    /// Resource caps for its verifier calls.
    pub limits: LimitsConfig,
}

/// Capabilities granted to an external module.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AllowConfig {
    /// Hosts (`host`, `host:port`, `*`) its HTTP and TCP calls may reach; loopback if absent.
    pub hosts: Option<Vec<String>>,
}

/// Resource caps for one module's verifier calls.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    /// Linear memory cap in MiB (64).
    pub memory_mb: Option<u32>,
    /// Guest CPU time per call in milliseconds (5000).
    pub cpu_ms: Option<u64>,
    /// Wall-clock bound per call in seconds, waits included (3600).
    pub timeout_s: Option<u64>,
    /// Wall-clock bound on building a Python module into a component, in seconds (600).
    pub build_s: Option<u64>,
}

/// The `http` object.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    /// Serve the REST interface.
    #[serde(deserialize_with = "flex::bool_like")]
    pub enabled: bool,
    /// Port (0 picks a free one and announces it).
    #[serde(deserialize_with = "flex::port")]
    pub port: u16,
    /// Address to bind; loopback unless told otherwise.
    pub host: String,
    /// Bearer token every request must carry (also `PYMANAGER_TOKEN`).
    pub token: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: false,
            port: 5001,
            host: "127.0.0.1".into(),
            token: None,
        }
    }
}

/// The `messages` list, as flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Messages {
    /// `process.exit`: print each process's exit code.
    pub process_exit: bool,
    /// `verifier.fail`: print verifiers' failed attempts (warn and error lines).
    pub verifier_fail: bool,
    /// `verifier.verbose`: print every verifier line.
    pub verifier_verbose: bool,
}

/// One entry under `processes`.
#[derive(Debug, Clone, Deserialize)]
pub struct ProcessConfig {
    /// The program, looked up from where pymanager was started.
    pub executable: String,
    /// Its arguments; required even when empty, as in the original.
    #[serde(deserialize_with = "flex::strings")]
    pub arguments: Vec<String>,
    /// How to launch it.
    #[serde(default)]
    pub options: ProcessOptions,
    /// Its named ports: a number is fixed, 0 is a free loopback port picked at start-up and
    /// kept across restarts. Referred to as `${ports.<process>.<name>}`.
    #[serde(default, deserialize_with = "flex::ports")]
    pub ports: IndexMap<String, u16>,
    /// Variables set over the inherited environment (and over `environment_file`).
    #[serde(default, deserialize_with = "flex::environment")]
    pub environment: IndexMap<String, String>,
    /// What must be true before the next process starts.
    #[serde(default)]
    pub verifier: Option<VerifierConfig>,
    /// What it waits for in other processes before it starts.
    #[serde(default)]
    pub depends_on: DependsOn,
    /// When it is started again after it fails or ends.
    #[serde(default)]
    pub restart: RestartConfig,
    /// A verifier run again and again once it is verified.
    #[serde(default)]
    pub liveness: Option<LivenessConfig>,
    /// The signal that asks it to stop (SIGTERM).
    #[serde(default)]
    pub stop_signal: StopSignal,
    /// Its time between the stop signal and SIGKILL, instead of the global one.
    #[serde(default, deserialize_with = "flex::optional_seconds")]
    pub graceful_time: Option<Duration>,
    /// What `pymanager export` needs that running it does not (its container image).
    #[serde(default)]
    pub export: ExportConfig,
}

/// A process's `export` object: read only by `pymanager export`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ExportConfig {
    /// The container image that runs it (compose, Kubernetes), instead of `--image`.
    pub image: Option<String>,
}

/// The `options` of a process.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProcessOptions {
    /// Keep the output off pymanager's stdout.
    #[serde(deserialize_with = "flex::bool_like")]
    pub suppress_output: bool,
    /// Write the output (stdout and stderr) to this file instead.
    pub redirect_output: Option<PathBuf>,
    /// Run the process in this directory.
    pub working_directory: Option<PathBuf>,
    /// Source this file in the default shell and use the resulting environment.
    pub environment_file: Option<PathBuf>,
    /// Run the command line through a shell.
    pub shell: ShellChoice,
}

/// A process's verifier.
#[derive(Debug, Clone, Deserialize)]
pub struct VerifierConfig {
    /// `module.Name`, a built-in name (`HttpOkVerifier`) or a short name (`http`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Handed to the verifier as JSON; `{}` when absent or `null`.
    #[serde(default = "empty_object", deserialize_with = "flex::arguments")]
    pub arguments: Value,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// A config that loaded, and the warnings worth showing about it.
#[derive(Debug)]
pub struct Loaded {
    /// The config.
    pub config: Config,
    /// The directory of the config file; relative paths in `modules` start here.
    pub dir: PathBuf,
    /// One line each: unknown keys and the like.
    pub warnings: Vec<String>,
}

/// Reads and checks the config file at `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ConfigError::NotFound(path.to_path_buf()),
        _ => ConfigError::Unreadable(path.to_path_buf(), e),
    })?;
    let mut loaded = parse(&bytes, path)?;
    loaded.dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(loaded)
}

/// Parses and checks config text; `path` is only used in messages.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Loaded, ConfigError> {
    // The original decoded the file before parsing it: bytes that are not UTF-8 made it
    // unreadable (exit 2), not invalid JSON.
    if let Err(e) = std::str::from_utf8(bytes) {
        let at = e.valid_up_to();
        let why = format!(
            "'utf-8' codec can't decode byte 0x{:02x} in position {at}: {}",
            bytes[at],
            match e.error_len() {
                None => "unexpected end of data",
                Some(_) if matches!(bytes[at], 0x80..=0xc1 | 0xf5..) => "invalid start byte",
                Some(_) => "invalid continuation byte",
            }
        );
        return Err(ConfigError::Unreadable(
            path.to_path_buf(),
            std::io::Error::new(std::io::ErrorKind::InvalidData, why),
        ));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| ConfigError::InvalidJson {
        path: path.to_path_buf(),
        reason: flex::json_reason(&e),
        line: e.line(),
        column: e.column(),
    })?;
    if !value.is_object() {
        return Err(ConfigError::invalid(
            "(top level)",
            "expected a JSON object with a \"processes\" key",
        ));
    }
    let mut warnings = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let mut config: Config = {
        let de = serde_path_to_error::Deserializer::new(&value, &mut track);
        serde_ignored::deserialize(de, |p| {
            warnings.push(format!(
                "[WARNING] unknown key {} ignored.",
                one_line(&p.to_string())
            ))
        })
        .map_err(|e| ConfigError::invalid(flex::path_of(&track.path()), flex::clean(&e)))?
    };
    settle(&mut config, &mut warnings);
    check(&config, &mut warnings)?;
    Ok(Loaded {
        config,
        dir: PathBuf::from("."),
        warnings,
    })
}

/// Values written in more than one way, brought to one: both keep-alive spellings, and a
/// negative `graceful_time` (the original's warning, and its default).
fn settle(config: &mut Config, warnings: &mut Vec<String>) {
    config.keep_alive = match (config.keep_alive_hyphen, config.keep_alive_underscore) {
        (Some(hyphen), Some(underscore)) if hyphen != underscore => {
            warnings.push(format!(
                "[WARNING] keep-alive is {hyphen} but keep_alive is {underscore}: keep_alive wins \
                 (the original pymanager reads only keep_alive); remove one of them."
            ));
            underscore
        }
        (_, Some(underscore)) => underscore,
        (Some(hyphen), None) => hyphen,
        (None, None) => false,
    };
    config.graceful_time = match config.graceful_time_given {
        Some(Ok(d)) => d,
        Some(Err(given)) => {
            warnings.push(format!(
                "[WARNING] invalid graceful_time '{given}', must be a positive number; using 10 s."
            ));
            DEFAULT_GRACEFUL_TIME
        }
        None => DEFAULT_GRACEFUL_TIME,
    };
}

/// Rules that span fields.
fn check(config: &Config, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    if config.processes.is_empty() {
        return Err(ConfigError::NoProcesses);
    }
    for (name, p) in &config.processes {
        let at = format!("processes.{name}");
        if p.executable.trim().is_empty() {
            return Err(ConfigError::invalid(
                format!("{at}.executable"),
                "must name a program",
            ));
        }
        if p.options.suppress_output && p.options.redirect_output.is_some() {
            return Err(ConfigError::invalid(
                format!("{at}.options"),
                "suppress_output and redirect_output are mutually exclusive; keep one",
            ));
        }
        if let Some(v) = &p.verifier {
            if v.kind.trim().is_empty() {
                return Err(ConfigError::invalid(
                    format!("{at}.verifier.type"),
                    "must name a verifier, e.g. \"pymutils.http_verifier.HttpOkVerifier\"",
                ));
            }
            if !v.arguments.is_object() {
                return Err(ConfigError::invalid(
                    format!("{at}.verifier.arguments"),
                    "expected an object of named arguments",
                ));
            }
        }
    }
    check_ports_and_environment(config, warnings)?;
    for (i, m) in config.messages.iter().enumerate() {
        if !MESSAGE_TYPES.contains(&m.as_str()) {
            warnings.push(format!(
                "[WARNING] messages.{i}: unknown message type {m:?} ignored (known: {}).",
                MESSAGE_TYPES.join(", ")
            ));
        }
    }
    orchestration::check(config)?;
    if config.graceful_time > Duration::from_secs(24 * 3600) {
        warnings.push("[WARNING] graceful_time is longer than a day.".into());
    }
    Ok(())
}

/// `PYMANAGER_PORT_<PROCESS>_<NAME>`, the variable that carries a port to the processes
/// and to `pymanager run`'s command: upper case, every character but A-Z and 0-9 as `_`.
pub fn port_var(process: &str, port: &str) -> String {
    let mut s = String::from("PYMANAGER_PORT_");
    let upper = |c: char| {
        let c = c.to_ascii_uppercase();
        if c.is_ascii_alphanumeric() { c } else { '_' }
    };
    s.extend(process.chars().map(upper));
    s.push('_');
    s.extend(port.chars().map(upper));
    s
}

/// Port names that make a variable name, variable names the OS takes, and no two ports
/// behind one `PYMANAGER_PORT_…` variable.
fn check_ports_and_environment(
    config: &Config,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let mut vars: std::collections::HashMap<String, String> = Default::default();
    let mut fixed: std::collections::HashMap<u16, String> = Default::default();
    for (name, p) in &config.processes {
        for (port, &number) in &p.ports {
            let at = format!("processes.{name}.ports.{port}");
            if port.is_empty()
                || !port
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(ConfigError::invalid(
                    at,
                    "a port's name is letters, digits, '_' and '-' (e.g. \"http\")",
                ));
            }
            let var = port_var(name, port);
            if let Some(other) = vars.insert(var.clone(), at.clone()) {
                return Err(ConfigError::invalid(
                    at,
                    format!("its variable {var} is also {other}'s: rename one of them"),
                ));
            }
            if number != 0
                && let Some(other) = fixed.insert(number, at.clone())
            {
                warnings.push(format!(
                    "[WARNING] {at}: port {number} is also {other}; only one of them can listen on it."
                ));
            }
        }
        for key in p.environment.keys() {
            if key.is_empty() || key.contains(['=', '\0']) {
                return Err(ConfigError::invalid(
                    format!("processes.{name}.environment"),
                    format!("{key:?} is not a variable name (no '=', not empty)"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
