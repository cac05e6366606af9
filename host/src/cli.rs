//! The command line: flags of the original tool, plus `check` and `ctl`.
//!
//! The original parsed its flags with Python's optparse, and command lines written for it
//! rely on two of its habits: long options may be shortened to any unique prefix
//! (`--verb`, `--fi env.json`), and a bare file name is accepted (`pymanager env.json`; the
//! original ignored it, here it is the config when `-f` is absent).

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

pub use crate::config::DEFAULT_CONFIG;

/// Launches the processes of a pymanager.json, verifies them, serves a REST API to
/// control them, and stops every one of them (and their children) at the end.
#[derive(Debug, Parser)]
#[command(
    name = "pymanager",
    disable_version_flag = true,
    infer_long_args = true,
    args_override_self = true
)]
pub struct Cli {
    /// The configuration file [default: pymanager.json].
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// The configuration file, as the original accepted it (same as -f). Further words (or
    /// this one, when -f is given) are ignored with a warning, as the original ignored them.
    #[arg(value_name = "CONFIG")]
    pub config: Vec<PathBuf>,

    /// Run in the background; return once every process is started and verified
    /// (exit 0) or start-up failed (exit 5). Processes' output still goes to this
    /// command's stdout while it is open, unless --logfile is given.
    #[arg(short = 'd', long = "daemon")]
    pub daemon: bool,

    /// Print [INFO] lines about what pymanager does.
    #[arg(short = 'v', long = "verbose", global = true)]
    pub verbose: bool,

    /// Print [DEBUG] lines too.
    #[arg(short = 'w', long = "debug", global = true)]
    pub debug: bool,

    /// Write pymanager's own log lines (and, with --daemon, all output) to this file.
    #[arg(short = 'l', long = "logfile", value_name = "FILE", global = true)]
    pub logfile: Option<PathBuf>,

    /// Where --daemon writes its pid [default: <config dir>/.pymanager/<config name>.pid].
    #[arg(long = "pidfile", value_name = "FILE")]
    pub pidfile: Option<PathBuf>,

    /// Print the version and exit.
    #[arg(short = 'V', long = "version")]
    pub version: bool,

    /// Serve the REST API on this port (0: any free one), whatever http.enabled and
    /// http.port say: how a test runner starts its own copy of an environment.
    #[arg(long = "http-port", global = true, value_name = "PORT")]
    pub http_port: Option<u16>,

    /// Once every process is ready, write PYMANAGER_URL, PYMANAGER_TOKEN, PYMANAGER_PID and
    /// every PYMANAGER_PORT_<PROCESS>_<NAME> to this file (KEY=VALUE lines, mode 0600).
    #[arg(long = "write-env", global = true, value_name = "FILE")]
    pub write_env: Option<PathBuf>,

    /// Shut down gracefully when process PID ends (for example the test runner that
    /// started this manager with -d).
    #[arg(long = "exit-with", global = true, value_name = "PID")]
    pub exit_with: Option<u32>,

    /// Give up (exit 5, naming what is not ready and what it waits for) if the start-up
    /// is not done within this many seconds.
    #[arg(long = "timeout", global = true, value_name = "SECONDS")]
    pub timeout: Option<f64>,

    /// A command instead of running the config.
    #[command(subcommand)]
    pub command: Option<Sub>,
}

impl Cli {
    /// The config file: `-f`, else the positional file, else `pymanager.json`.
    pub fn config_file(&self) -> &Path {
        self.file
            .as_deref()
            .or(self.config.first().map(PathBuf::as_path))
            .unwrap_or(Path::new(DEFAULT_CONFIG))
    }

    /// The positional words that name no config: all of them when `-f` is given, else
    /// all but the first.
    pub fn ignored_words(&self) -> &[PathBuf] {
        match (&self.file, self.config.split_first()) {
            (Some(_), _) => &self.config,
            (None, Some((_, rest))) => rest,
            (None, None) => &[],
        }
    }
}

/// Commands besides running the config.
#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Start the environment, run CMD once it is ready, stop everything when CMD ends, and
    /// exit with CMD's exit code (5 if the start-up failed; CMD then never runs).
    Run(RunArgs),
    /// Check the config (verifier arguments included) without starting or executing anything.
    Check,
    /// Talk to a running pymanager over its REST API.
    Ctl(crate::ctl::CtlArgs),
    /// Run one verifier once, outside a manager (exit 0 passed, 1 failed, 2 usage error).
    Verify(crate::verify::VerifyArgs),
    /// Write the config for docker compose, Kubernetes, systemd, a Procfile or process-compose.
    Export(crate::convert::ExportArgs),
    /// Print a pymanager.json made from a Procfile or a process-compose.yaml.
    Import(crate::convert::ImportArgs),
    /// Internal: compiles the component on stdin into the disk cache. pymanager runs
    /// itself with it so that the compiler's memory ends with this short-lived process.
    #[command(name = "__compile-component", hide = true)]
    CompileComponent(crate::runtime::compile_child::ChildArgs),
}

/// `pymanager run`'s own options and the command it runs.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = RUN_AFTER_HELP)]
pub struct RunArgs {
    /// Stop CMD at once and exit 6 if a process that must stay up ends (or exhausts its
    /// restarts) while CMD runs; without it, that is reported when CMD ends.
    #[arg(long = "abort-on-exit")]
    pub abort_on_exit: bool,

    /// Where each process's output goes, one file per process
    /// [default: <config dir>/.pymanager/logs/<config name>/].
    #[arg(long = "logs", value_name = "DIR")]
    pub logs: Option<PathBuf>,

    /// `files` (the default): the processes' output goes to --logs, not into CMD's output;
    /// `console`: interleaved on stdout, prefixed with each process's name, as the
    /// original printed it.
    #[arg(long = "output", value_enum, default_value_t = RunOutput::Files)]
    pub output: RunOutput,

    /// The command to run once the environment is ready: everything from its name on is
    /// its own (`run -v pytest -x` runs `pytest -x`); `--` before it is allowed.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

/// Where `pymanager run` sends the processes' output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunOutput {
    /// One file per process under --logs.
    Files,
    /// The original's interleaved console on stdout.
    Console,
}

const RUN_AFTER_HELP: &str = "\
CMD's environment: pymanager's own, plus PYMANAGER_URL (the REST API's address, when it
is on), PYMANAGER_TOKEN (when one is set) and PYMANAGER_PORT_<PROCESS>_<NAME> for every
port of every process.

Signals: SIGINT or SIGTERM to `pymanager run` goes to CMD first; the environment is
stopped once CMD has ended. On a terminal, Ctrl-C reaches CMD alone.

Exit codes: CMD's own (128+n if a signal n ended it); 5 the start-up failed (CMD never
ran); 6 --abort-on-exit stopped CMD because a process ended; 1-4 the config, as always.";

/// The version string printed by `-V`.
pub fn version() -> String {
    format!("pymanager {}", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("pymanager").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_config_is_named_by_flag_position_or_default() {
        assert_eq!(
            parse(&[]).unwrap().config_file(),
            Path::new("pymanager.json")
        );
        assert_eq!(
            parse(&["-f", "a.json"]).unwrap().config_file(),
            Path::new("a.json")
        );
        assert_eq!(
            parse(&["a.json"]).unwrap().config_file(),
            Path::new("a.json")
        );
        assert_eq!(
            parse(&["-d", "a.json", "-v"]).unwrap().config_file(),
            Path::new("a.json")
        );
        // Words beside the config are ignored (with a warning), as the original ignored them.
        let c = parse(&["-f", "a.json", "b.json"]).unwrap();
        assert_eq!(c.config_file(), Path::new("a.json"));
        assert_eq!(c.ignored_words(), [PathBuf::from("b.json")]);
        let c = parse(&["a.json", "b.json", "c"]).unwrap();
        assert_eq!(c.config_file(), Path::new("a.json"));
        assert_eq!(c.ignored_words().len(), 2);
        // A subcommand's name is the subcommand, and -f goes before or after it.
        let c = parse(&["check"]).unwrap();
        assert!(matches!(c.command, Some(Sub::Check)));
        let c = parse(&["check", "-f", "x.json"]).unwrap();
        assert_eq!(c.config_file(), Path::new("x.json"));
        let c = parse(&["-f", "x.json", "check"]).unwrap();
        assert_eq!(c.config_file(), Path::new("x.json"));
    }

    #[test]
    fn run_takes_its_command_after_its_own_flags() {
        let cmd = |c: &Cli| match &c.command {
            Some(Sub::Run(r)) => r.command.clone(),
            _ => panic!("not run"),
        };
        let c = parse(&["run", "-v", "--timeout", "3", "pytest", "-x", "-v"]).unwrap();
        assert!(c.verbose);
        assert_eq!(cmd(&c), ["pytest", "-x", "-v"]);
        let c = parse(&["run", "-f", "e.json", "--", "sh", "-c", "exit 3"]).unwrap();
        assert_eq!(c.config_file(), Path::new("e.json"));
        assert_eq!(cmd(&c), ["sh", "-c", "exit 3"]);
        assert!(parse(&["run"]).is_err());
    }

    #[test]
    fn long_options_may_be_shortened_to_a_unique_prefix() {
        let c = parse(&["--verb", "--fi", "x.json", "--dae", "--log", "l.txt"]).unwrap();
        assert!(c.verbose && c.daemon);
        assert_eq!(c.config_file(), Path::new("x.json"));
        assert_eq!(c.logfile.as_deref(), Some(Path::new("l.txt")));
        assert!(parse(&["--fi=y.json"]).unwrap().file.is_some());
        // --ver could be --verbose or --version; --d, --debug or --daemon.
        assert!(parse(&["--ver"]).is_err());
        assert!(parse(&["--d"]).is_err());
        assert!(parse(&["--de"]).unwrap().debug);
    }
}
