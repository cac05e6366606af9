//! `pymanager ctl`'s command line.

use std::path::PathBuf;

use crate::api::v1::DEFAULT_LOG_LINES;

/// `ctl wait`'s default patience, in seconds.
pub const DEFAULT_WAIT_SECS: f64 = 60.0;

const AFTER_HELP: &str = "\
Finding the manager: --url if given; else $PYMANAGER_URL (set for `pymanager run`'s
command); else the address file the manager writes, <config dir>/.pymanager/<config file
name>.addr (it must be yours, and name a loopback address; a second copy of the config
running at the same time writes <config file name>.<pid>.addr, and with several ctl asks
you to choose with --url); else http.host and http.port of the config (loopback only).
Requests never go through a proxy. Token: --token, else PYMANAGER_TOKEN, else http.token of the config (with
\"token\": \"auto\", the token file the manager writes beside its address file).

Exit codes:
  0  done
  1  the manager refused or failed the request (or start-up failed, for wait)
  2  the manager cannot be reached, or cannot be trusted
  3  wait: the manager was not running before the timeout";

/// Talk to a running pymanager: list, restart, stop and start its processes, read their
/// output, or wait until it is running.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct CtlArgs {
    /// The config file of the manager to talk to [default: pymanager.json].
    // Named `file` like the top-level `-f`: clap then does not add the global one here a
    // second time, and `logs -f` (follow) stays free.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// The manager's base URL (e.g. http://127.0.0.1:5001), instead of finding it; the
    /// only way to talk to a manager on a non-loopback address.
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,

    /// Bearer token for the API [default: $PYMANAGER_TOKEN, else from the config].
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Print the API's JSON answer instead of a human-readable one.
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// `-f FILE` after a `ctl` command's name (`ctl stop -f env.json`), as before it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct At {
    /// The config file of the manager to talk to.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

impl CtlArgs {
    /// The config named after the command (`ctl stop -f x`), else before it (`ctl -f x
    /// stop`); `None` for the top-level one or the default.
    pub fn config(&self) -> Option<&std::path::Path> {
        let after = match &self.command {
            CtlCommand::Status { at }
            | CtlCommand::List { at }
            | CtlCommand::Ports { at, .. }
            | CtlCommand::Restart { at, .. }
            | CtlCommand::Stop { at, .. }
            | CtlCommand::Start { at, .. }
            | CtlCommand::Wait { at, .. } => at.file.as_deref(),
            CtlCommand::Logs { file, .. } => file.as_deref(),
        };
        after.or(self.file.as_deref())
    }
}

/// The `ctl` commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum CtlCommand {
    /// Print the manager's phase (running, shutdown, ...) and how many processes run.
    Status {
        #[command(flatten)]
        #[allow(missing_docs)]
        at: At,
    },
    /// List the processes: id, name, state, pid or exit code, verifier, command.
    List {
        #[command(flatten)]
        #[allow(missing_docs)]
        at: At,
    },
    /// Print the ports of every process (or of one): name, number.
    Ports {
        /// Only this process: its id or its name.
        process: Option<String>,
        #[command(flatten)]
        #[allow(missing_docs)]
        at: At,
    },
    /// Restart a process (graceful stop, start, verify); waits until it is verified. A
    /// stop or another restart of the process meanwhile cuts it short.
    Restart {
        /// The process: its id (1, 2, ...) or its name in the config.
        process: String,
        /// Stop waiting after this many seconds (exit 3); the restart goes on.
        #[arg(long, value_name = "SECS")]
        timeout: Option<f64>,
        #[command(flatten)]
        #[allow(missing_docs)]
        at: At,
    },
    /// Stop one process; without a process, shut the whole manager down and wait until it
    /// and every process it started are gone.
    Stop {
        /// The process: its id or its name. Omit it to shut the manager down.
        process: Option<String>,
        /// Return as soon as the shutdown has begun.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        #[allow(missing_docs)]
        at: At,
    },
    /// Start a stopped or ended process; waits until it is verified.
    Start {
        /// The process: its id or its name.
        process: String,
        /// Stop waiting after this many seconds (exit 3); the start goes on.
        #[arg(long, value_name = "SECS")]
        timeout: Option<f64>,
        #[command(flatten)]
        #[allow(missing_docs)]
        at: At,
    },
    /// Print a process's last output lines; with -f, keep printing new ones.
    Logs {
        /// The process: its id or its name.
        process: String,
        /// How many of the last lines to print first (the manager keeps the last 1000).
        #[arg(short = 'n', long = "lines", default_value_t = DEFAULT_LOG_LINES)]
        lines: usize,
        /// Keep printing new lines (across restarts) until the manager exits.
        #[arg(short = 'f', long = "follow")]
        follow: bool,
        /// The config file of the manager to talk to (here only as --file: -f is follow).
        #[arg(long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Wait until every process is started and verified (status `running`).
    ///
    /// Keeps trying while the manager is not reachable yet (it may still be starting).
    /// Fails at once if start-up fails or the manager shuts down.
    Wait {
        /// Give up after this many seconds.
        #[arg(long, default_value_t = DEFAULT_WAIT_SECS, value_name = "SECS")]
        timeout: f64,
        #[command(flatten)]
        #[allow(missing_docs)]
        at: At,
    },
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Sub};

    fn parse(args: &[&str]) -> (Cli, CtlArgs) {
        let cli = Cli::try_parse_from(args).expect("parses");
        let ctl = match &cli.command {
            Some(Sub::Ctl(c)) => c.clone(),
            _ => panic!("no ctl"),
        };
        (cli, ctl)
    }

    #[test]
    fn composes_under_the_global_file_flag() {
        let (_, c) = parse(&[
            "pymanager",
            "ctl",
            "-f",
            "x.json",
            "logs",
            "web",
            "-f",
            "-n",
            "5",
        ]);
        assert_eq!(c.file, Some(PathBuf::from("x.json")));
        assert!(matches!(
            c.command,
            CtlCommand::Logs { ref process, lines: 5, follow: true, .. } if process == "web"
        ));
        // The top-level -f reaches ctl's own.
        let (cli, c) = parse(&["pymanager", "-f", "y.json", "ctl", "logs", "web"]);
        assert_eq!(cli.file, Some(PathBuf::from("y.json")));
        assert_eq!(c.file, Some(PathBuf::from("y.json")));
        assert!(matches!(
            c.command,
            CtlCommand::Logs {
                lines: DEFAULT_LOG_LINES,
                follow: false,
                ..
            }
        ));
        let (_, c) = parse(&["pymanager", "ctl", "list", "--json", "--url", "http://h:1/"]);
        assert!(c.json);
        assert_eq!(c.url.as_deref(), Some("http://h:1/"));
        let (_, c) = parse(&["pymanager", "ctl", "stop"]);
        assert!(matches!(
            c.command,
            CtlCommand::Stop {
                process: None,
                no_wait: false,
                ..
            }
        ));
        // Unique prefixes of long options, as at the top level.
        let (_, c) = parse(&["pymanager", "ctl", "--fi", "z.json", "wait", "--time", "3"]);
        assert_eq!(c.file, Some(PathBuf::from("z.json")));
        assert!(matches!(c.command, CtlCommand::Wait { timeout, .. } if timeout == 3.0));
        // -f after the command's name, too; `logs` takes --file (its -f is follow).
        let (_, c) = parse(&["pymanager", "ctl", "stop", "-f", "e.json"]);
        assert_eq!(c.config(), Some(std::path::Path::new("e.json")));
        let (_, c) = parse(&["pymanager", "ctl", "list", "--file", "e.json", "--json"]);
        assert_eq!(c.config(), Some(std::path::Path::new("e.json")));
        let (_, c) = parse(&["pymanager", "ctl", "logs", "web", "-f", "--file", "e.json"]);
        assert_eq!(c.config(), Some(std::path::Path::new("e.json")));
        assert!(matches!(c.command, CtlCommand::Logs { follow: true, .. }));
        let (_, c) = parse(&["pymanager", "ctl", "-f", "x.json", "ports", "web"]);
        assert_eq!(c.config(), Some(std::path::Path::new("x.json")));
    }
}
