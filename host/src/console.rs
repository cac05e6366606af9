//! What pymanager writes for people: `$ command` as each process launches, every
//! process's output prefixed with its name, the `messages` the config asks for, and the
//! `-v`/`-w` log lines.
//!
//! Process output goes through one bounded channel to one writer thread, so a process
//! that floods its output slows down only its own reader task: the async runtime never
//! blocks on a full stdout, and nothing is buffered without bound.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

/// How much pymanager says about itself (`-v`, `-w`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Verbosity {
    /// Only what the config's `messages` ask for.
    #[default]
    Quiet,
    /// `-v`: `[INFO]` lines.
    Info,
    /// `-w`: `[DEBUG]` lines too.
    Debug,
}

/// Lines of process output waiting for the writer thread; bounds memory under a flood.
const QUEUE_LINES: usize = 4096;

/// The shared writer of everything pymanager prints; cheap to clone.
#[derive(Clone)]
pub struct Console {
    lines: mpsc::Sender<Item>,
    log: Arc<Mutex<Box<dyn Write + Send>>>,
    verbosity: Verbosity,
    colour: bool,
    width: usize,
}

enum Item {
    Line(Vec<u8>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

impl Console {
    /// A console writing to stdout, with log lines on stderr or in `logfile`.
    /// `names` are the process names, to align their prefixes.
    pub fn new<'a>(
        verbosity: Verbosity,
        logfile: Option<&Path>,
        names: impl Iterator<Item = &'a str>,
    ) -> std::io::Result<Console> {
        let log: Box<dyn Write + Send> = match logfile {
            Some(p) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            ),
            None => Box::new(std::io::stderr()),
        };
        let colour = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Console::with_writers(verbosity, Box::new(std::io::stdout()), log, colour, names)
    }

    /// A console writing what belongs on stdout to `out` and log lines to `log`: what
    /// [`Console::new`] builds on, and what tests read back.
    pub fn with_writers<'a>(
        verbosity: Verbosity,
        mut out: Box<dyn Write + Send>,
        log: Box<dyn Write + Send>,
        colour: bool,
        names: impl Iterator<Item = &'a str>,
    ) -> std::io::Result<Console> {
        let (lines, mut rx) = mpsc::channel::<Item>(QUEUE_LINES);
        std::thread::Builder::new()
            .name("pymanager-stdout".into())
            .spawn(move || {
                let mut broken = false;
                while let Some(item) = rx.blocking_recv() {
                    match item {
                        // A closed stdout (a pipe whose reader left) is a normal end: keep
                        // draining so that processes are never blocked by it.
                        Item::Line(line) => {
                            if !broken && out.write_all(&line).and_then(|_| out.flush()).is_err() {
                                broken = true;
                            }
                        }
                        Item::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })?;
        Ok(Console {
            lines,
            log: Arc::new(Mutex::new(log)),
            verbosity,
            colour,
            width: names.map(str::len).max().unwrap_or(0).min(24),
        })
    }

    /// The prefix put before each output line of the process with this id and name.
    pub fn prefix(&self, id: u32, name: &str) -> Vec<u8> {
        let padded = format!("{name:<w$} | ", w = self.width);
        if self.colour {
            let c = COLOURS[(id as usize).saturating_sub(1) % COLOURS.len()];
            format!("\x1b[{c}m{padded}\x1b[0m").into_bytes()
        } else {
            padded.into_bytes()
        }
    }

    /// Queues one line of process output (with its newline); waits while the queue is full.
    pub async fn output(&self, line: Vec<u8>) {
        let _ = self.lines.send(Item::Line(line)).await;
    }

    /// A line on stdout, in order with process output (launch lines, `messages`).
    pub async fn say(&self, text: String) {
        let mut line = text.into_bytes();
        line.push(b'\n');
        let _ = self.lines.send(Item::Line(line)).await;
    }

    /// A line on stdout from code that cannot wait. When a flood of process output fills
    /// the queue, a task waits for room instead, so the line is late but never lost.
    pub fn say_now(&self, text: String) {
        let mut line = text.into_bytes();
        line.push(b'\n');
        if let Err(mpsc::error::TrySendError::Full(item)) = self.lines.try_send(Item::Line(line)) {
            let lines = self.lines.clone();
            tokio::spawn(async move {
                let _ = lines.send(item).await;
            });
        }
    }

    /// An `[INFO]` line, shown with `-v` or `-w`.
    pub fn info(&self, text: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Info {
            self.log_line(&format!("[INFO] {text}"));
        }
    }

    /// A `[DEBUG]` line, shown with `-w`.
    pub fn debug(&self, text: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Debug {
            self.log_line(&format!("[DEBUG] {text}"));
        }
    }

    /// A line for the log (stderr, or the `-l` file): warnings and errors.
    pub fn log_line(&self, text: &str) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(log, "{text}");
        let _ = log.flush();
    }

    /// Waits until everything queued so far is written.
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.lines.send(Item::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Opens `path` for a process's `redirect_output`, truncating it.
    pub fn open_output_file(path: &Path) -> std::io::Result<File> {
        File::create(path)
    }
}
