//! The command line: flags of the original tool, plus `check` and `ctl`.
//!
//! The original parsed its flags with Python's optparse, and command lines written for it
//! rely on two of its habits: long options may be shortened to any unique prefix
//! (`--verb`, `--fi env.json`), and a bare file name is accepted (`pymanager env.json`; the
//! original ignored it, here it is the config when `-f` is absent).

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

/// The config file used when none is named.
pub const DEFAULT_CONFIG: &str = "pymanager.json";

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

    /// The configuration file, as the original accepted it (same as -f).
    #[arg(value_name = "CONFIG", conflicts_with = "file")]
    pub config: Option<PathBuf>,

    /// Run in the background; return once every process is started and verified
    /// (exit 0) or start-up failed (exit 5). Processes' output still goes to this
    /// command's stdout while it is open, unless --logfile is given.
    #[arg(short = 'd', long = "daemon")]
    pub daemon: bool,

    /// Print [INFO] lines about what pymanager does.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Print [DEBUG] lines too.
    #[arg(short = 'w', long = "debug")]
    pub debug: bool,

    /// Write pymanager's own log lines (and, with --daemon, all output) to this file.
    #[arg(short = 'l', long = "logfile", value_name = "FILE")]
    pub logfile: Option<PathBuf>,

    /// Where --daemon writes its pid [default: <config dir>/.pymanager/<config name>.pid].
    #[arg(long = "pidfile", value_name = "FILE")]
    pub pidfile: Option<PathBuf>,

    /// Print the version and exit.
    #[arg(short = 'V', long = "version")]
    pub version: bool,

    /// A command instead of running the config.
    #[command(subcommand)]
    pub command: Option<Sub>,
}

impl Cli {
    /// The config file: `-f`, else the positional file, else `pymanager.json`.
    pub fn config_file(&self) -> &Path {
        self.file
            .as_deref()
            .or(self.config.as_deref())
            .unwrap_or(Path::new(DEFAULT_CONFIG))
    }
}

/// Commands besides running the config.
#[derive(Debug, Subcommand)]
pub enum Sub {
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
        assert!(parse(&["-f", "a.json", "b.json"]).is_err());
        // A subcommand's name is the subcommand, and -f goes before or after it.
        let c = parse(&["check"]).unwrap();
        assert!(matches!(c.command, Some(Sub::Check)));
        let c = parse(&["check", "-f", "x.json"]).unwrap();
        assert_eq!(c.config_file(), Path::new("x.json"));
        let c = parse(&["-f", "x.json", "check"]).unwrap();
        assert_eq!(c.config_file(), Path::new("x.json"));
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
