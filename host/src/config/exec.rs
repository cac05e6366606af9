//! The `exec` verifier's names and arguments: it runs a command and passes when it exits 0
//! — what process-compose, docker compose and Kubernetes call an exec probe. Unlike every
//! other verifier it is native, not a sandboxed component, so its arguments are read here,
//! with the config, rather than by a component; `supervisor::exec_check` runs it.

use std::time::Duration;

use serde_json::Value;

/// The module name the `exec` verifier goes by (`pymanager.exec_verifier.ExecVerifier`).
pub const MODULE: &str = "pymanager.exec_verifier";
/// Its verifier name.
pub const NAME: &str = "ExecVerifier";
/// Its short name, the usual one in configs.
pub const SHORT: &str = "exec";

/// The arguments it takes (the schema lists the same).
pub const KNOWN: &[&str] = &["command", "timeout", "interval", "run_timeout"];

/// True when a verifier type names the `exec` verifier: `exec`, `ExecVerifier`,
/// `pymanager.exec_verifier.ExecVerifier` or, as for the other built-ins of the package,
/// `pymanager.ExecVerifier`.
pub fn names(kind: &str) -> bool {
    let kind = kind.trim();
    kind == SHORT
        || kind == NAME
        || kind
            .rsplit_once('.')
            .is_some_and(|(m, n)| n == NAME && (m == MODULE || m == "pymanager"))
}

/// The command a check runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// An argument list, run as it is (the first is looked up in `PATH`).
    Argv(Vec<String>),
    /// A command line, run by the default shell with `-c`.
    Shell(String),
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Argv(argv) => f.write_str(&argv.join(" ")),
            Command::Shell(line) => f.write_str(line),
        }
    }
}

/// The `exec` verifier's arguments, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecArgs {
    /// What to run.
    pub command: Command,
    /// How long to keep trying (30 s); `None` (`"timeout": null`) tries until the process
    /// ends, a stop or the shutdown.
    pub timeout: Option<Duration>,
    /// The pause between the end of one run and the start of the next (1 s).
    pub interval: Duration,
    /// The bound of one run (see [`ExecArgs::run_bound`]).
    pub run_timeout: Option<Duration>,
}

impl ExecArgs {
    /// Reads the arguments (a JSON object). The error is `field: reason`; the warnings
    /// (arguments it does not take, ignored) are too.
    pub fn parse(args: &Value) -> Result<(ExecArgs, Vec<String>), String> {
        let map = args
            .as_object()
            .ok_or("expected an object of named arguments")?;
        let mut warnings = Vec::new();
        for key in map.keys().filter(|k| !KNOWN.contains(&k.as_str())) {
            warnings.push(format!(
                "{key}: unknown argument (expected one of {})",
                KNOWN.join(", ")
            ));
        }
        let command = match map.get("command") {
            None | Some(Value::Null) => return Err("command: missing field".into()),
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err("command: must not be empty".into());
            }
            Some(Value::String(s)) => Command::Shell(s.clone()),
            Some(Value::Array(items)) => {
                let argv = items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or("command: expected a list of strings")?;
                if argv.first().is_none_or(|p| p.is_empty()) {
                    return Err("command: the list must start with a program".into());
                }
                Command::Argv(argv)
            }
            Some(other) => {
                return Err(format!(
                    "command: expected a command line or a list of strings, got {}",
                    crate::config::describe_json(other)
                ));
            }
        };
        let timeout = match map.get("timeout") {
            Some(Value::Null) => None,
            v => Some(seconds("timeout", v)?.unwrap_or(Duration::from_secs(30))),
        };
        let interval = seconds("interval", map.get("interval"))?.unwrap_or(Duration::from_secs(1));
        let run_timeout = seconds("run_timeout", map.get("run_timeout"))?;
        if run_timeout.is_some_and(|d| d.is_zero()) {
            return Err("run_timeout: must be above 0".into());
        }
        Ok((
            ExecArgs {
                command,
                timeout,
                interval,
                run_timeout,
            },
            warnings,
        ))
    }
}

/// The bound of one run when neither `run_timeout` nor `timeout` gives one.
const DEFAULT_RUN_BOUND: Duration = Duration::from_secs(30);

impl ExecArgs {
    /// The bound of one run: `run_timeout`, else `timeout`, else 30 s.
    pub fn run_bound(&self) -> Duration {
        self.run_timeout
            .or(self.timeout.filter(|t| !t.is_zero()))
            .unwrap_or(DEFAULT_RUN_BOUND)
    }
}

/// Seconds as the built-in verifiers take them: a number, or a numeric string; not negative.
fn seconds(field: &str, v: Option<&Value>) -> Result<Option<Duration>, String> {
    let n = match v {
        None => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match n {
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(s.min(1e9)))),
        _ => Err(format!(
            "{field}: expected a number of seconds (0 or more), got {}",
            crate::config::describe_json(v.unwrap_or(&Value::Null))
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_names_of_the_exec_verifier() {
        for yes in [
            "exec",
            "ExecVerifier",
            "pymanager.exec_verifier.ExecVerifier",
            "pymanager.ExecVerifier",
        ] {
            assert!(names(yes), "{yes}");
        }
        for no in ["execs", "pymutils.ExecVerifier", "http", "x.exec"] {
            assert!(!names(no), "{no}");
        }
    }

    #[test]
    fn arguments_are_checked_with_the_field_first() {
        let (a, w) = ExecArgs::parse(&json!({"command": ["pg_isready", "-q"]})).unwrap();
        assert_eq!(
            a.command,
            Command::Argv(vec!["pg_isready".into(), "-q".into()])
        );
        assert_eq!(a.timeout, Some(Duration::from_secs(30)));
        assert_eq!(a.interval, Duration::from_secs(1));
        assert_eq!(a.run_timeout, None);
        assert!(w.is_empty());
        let (a, w) = ExecArgs::parse(&json!({
            "command": "test -f ready", "timeout": null, "interval": "0.5", "run_timeout": 2, "tiemout": 1
        }))
        .unwrap();
        assert_eq!(a.command, Command::Shell("test -f ready".into()));
        assert_eq!(a.timeout, None);
        assert_eq!(a.interval, Duration::from_millis(500));
        assert_eq!(a.run_timeout, Some(Duration::from_secs(2)));
        assert_eq!(
            w,
            ["tiemout: unknown argument (expected one of command, timeout, interval, run_timeout)"]
        );
        for (args, error) in [
            (json!({}), "command: missing field"),
            (json!({"command": ""}), "command: must not be empty"),
            (
                json!({"command": []}),
                "command: the list must start with a program",
            ),
            (
                json!({"command": [1]}),
                "command: expected a list of strings",
            ),
            (
                json!({"command": 3}),
                "command: expected a command line or a list of strings, got the number 3",
            ),
            (
                json!({"command": "x", "timeout": -1}),
                "timeout: expected a number of seconds (0 or more), got the number -1",
            ),
            (
                json!({"command": "x", "interval": "soon"}),
                "interval: expected a number of seconds (0 or more), got the string \"soon\"",
            ),
            (
                json!({"command": "x", "run_timeout": 0}),
                "run_timeout: must be above 0",
            ),
        ] {
            assert_eq!(ExecArgs::parse(&args).unwrap_err(), error, "{args}");
        }
    }
}
