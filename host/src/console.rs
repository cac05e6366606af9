//! What pymanager writes for people: `$ command` as each process launches, every
//! process's output prefixed with its name, the `messages` the config asks for, and the
//! `-v`/`-w` log lines.
//!
//! Everything bound for stdout goes through one bounded queue to one writer thread, so the
//! async runtime never blocks on a slow or stuck stdout, and memory never grows with it:
//!
//! - process output waits for room ([`Console::output`]): a process that floods its output
//!   slows down only its own reader task, as it would writing to a terminal;
//! - lines from code that cannot wait are never queued without bound either: verifier
//!   chatter is dropped when the queue is full ([`Console::say_or_drop`]), and the launch,
//!   exit and shutdown lines ([`Console::say_now`]) have room of their own beside it, so a
//!   flood of output never pushes them out. What is dropped is counted, and the count is
//!   written where the gap is once stdout catches up.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::sync::{Notify, oneshot};

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

/// Lines of process output (and droppable notices) waiting for the writer thread.
pub const QUEUE_LINES: usize = 4096;

/// Room kept for launch, exit and shutdown lines beside [`QUEUE_LINES`]: they are dropped
/// only if this many of them wait at once behind a stuck stdout.
pub const RESERVED_LINES: usize = 1024;

/// The shared writer of everything pymanager prints; cheap to clone.
#[derive(Clone)]
pub struct Console {
    shared: Arc<Shared>,
    /// Dropped with the last clone: tells the writer thread to finish.
    _open: Arc<Open>,
    verbosity: Verbosity,
    colour: bool,
    width: usize,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the writer thread when there is something to write.
    work: Condvar,
    /// Wakes process output waiting for room.
    room: Notify,
    log: Mutex<Box<dyn Write + Send>>,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    /// Queued lines counted against [`QUEUE_LINES`].
    ordinary: usize,
    /// Queued lines counted against [`RESERVED_LINES`].
    reserved: usize,
    /// No console is left: the writer finishes what is queued and ends.
    closed: bool,
    /// The writer waits for work: only then does a new item need to wake it.
    writer_waiting: bool,
    /// Open [`Held`] guards: while any is, a new line does not wake the writer.
    held: u32,
}

impl Queue {
    /// Whether a line just queued must wake the writer now (and so it no longer waits).
    fn wake_writer(&mut self) -> bool {
        let pressing = self.reserved >= RESERVED_LINES / 2 || self.ordinary >= QUEUE_LINES / 2;
        (self.held == 0 || pressing) && std::mem::take(&mut self.writer_waiting)
    }
}

/// While alive, lines are queued without waking the writer thread; the last one dropped
/// wakes it for all of them: see [`Console::hold`].
pub struct Held<'a>(&'a Shared);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut q = self.0.lock();
        q.held -= 1;
        let wake = q.held == 0 && !q.items.is_empty() && std::mem::take(&mut q.writer_waiting);
        drop(q);
        if wake {
            self.0.work.notify_one();
        }
    }
}

enum Item {
    Line {
        bytes: Vec<u8>,
        reserved: bool,
    },
    /// This many lines were dropped here.
    Dropped(u64),
    Flush(oneshot::Sender<()>),
}

struct Open(Arc<Shared>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.work.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

impl Console {
    /// A console writing to stdout, with log lines in `log` (the `-l` file) or on stderr.
    /// `names` are the process names, to align their prefixes.
    pub fn new<'a>(
        verbosity: Verbosity,
        log: Option<File>,
        names: impl Iterator<Item = &'a str>,
    ) -> std::io::Result<Console> {
        let colour = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let log: Box<dyn Write + Send> = match log {
            Some(f) => Box::new(f),
            None => Box::new(std::io::stderr()),
        };
        Console::with_writers(verbosity, Box::new(std::io::stdout()), log, colour, names)
    }

    /// A console writing what belongs on stdout to `out` and log lines to `log`: what
    /// [`Console::new`] builds on, and what tests read back.
    pub fn with_writers<'a>(
        verbosity: Verbosity,
        out: Box<dyn Write + Send>,
        log: Box<dyn Write + Send>,
        colour: bool,
        names: impl Iterator<Item = &'a str>,
    ) -> std::io::Result<Console> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            room: Notify::new(),
            log: Mutex::new(log),
        });
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("pymanager-stdout".into())
            .spawn(move || write_all(&writer, out))?;
        Ok(Console {
            _open: Arc::new(Open(shared.clone())),
            shared,
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
        let mut line = Some(line);
        loop {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            // Registered before looking, so room made in between is not missed.
            room.as_mut().enable();
            {
                let mut q = self.shared.lock();
                if q.ordinary < QUEUE_LINES {
                    if let Some(bytes) = line.take() {
                        q.ordinary += 1;
                        q.items.push_back(Item::Line {
                            bytes,
                            reserved: false,
                        });
                    }
                    let wake = q.wake_writer();
                    drop(q);
                    if wake {
                        self.shared.work.notify_one();
                    }
                    return;
                }
            }
            room.await;
        }
    }

    /// A line on stdout, in order with process output; waits for room like output does.
    pub async fn say(&self, text: String) {
        self.output(with_newline(text)).await;
    }

    /// A line on stdout from code that cannot wait, that must not be lost (a launch, an
    /// exit, the shutdown): it goes into the room kept for such lines, and is dropped (and
    /// counted) only if that is full too.
    pub fn say_now(&self, text: String) {
        self.push_now(with_newline(text), true);
    }

    /// A line on stdout from code that cannot wait and that may be lost (verifier
    /// messages): dropped, and counted, when the queue is full.
    pub fn say_or_drop(&self, text: String) {
        self.push_now(with_newline(text), false);
    }

    fn push_now(&self, bytes: Vec<u8>, reserved: bool) {
        let mut q = self.shared.lock();
        let fits = if reserved {
            q.reserved < RESERVED_LINES
        } else {
            q.ordinary < QUEUE_LINES
        };
        if !fits {
            // The gap is marked where it is; one marker per gap, so markers are bounded by
            // the lines around them.
            match q.items.back_mut() {
                Some(Item::Dropped(n)) => *n += 1,
                _ => q.items.push_back(Item::Dropped(1)),
            }
            return;
        }
        if reserved {
            q.reserved += 1;
        } else {
            q.ordinary += 1;
        }
        q.items.push_back(Item::Line { bytes, reserved });
        let wake = q.wake_writer();
        drop(q);
        if wake {
            self.shared.work.notify_one();
        }
    }

    /// Holds the writer thread back while a burst of lines is queued (a batch of
    /// launches): they are written in one go when the guard is dropped, and the thread
    /// that queues them is not preempted by a writer woken for each. A queue half full
    /// wakes the writer all the same, so nothing is dropped for being held.
    pub fn hold(&self) -> Held<'_> {
        self.shared.lock().held += 1;
        Held(&self.shared)
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
        let mut log = self.shared.log.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(log, "{text}");
        let _ = log.flush();
    }

    /// Waits until everything queued so far is written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        let wake = {
            let mut q = self.shared.lock();
            q.items.push_back(Item::Flush(tx));
            std::mem::take(&mut q.writer_waiting)
        };
        if wake {
            self.shared.work.notify_one();
        }
        let _ = rx.await;
    }

    /// Opens `path` for a process's `redirect_output`, truncating it.
    pub fn open_output_file(path: &Path) -> std::io::Result<File> {
        crate::private_files::open_output(path, crate::private_files::Output::Replace)
    }
}

fn with_newline(text: String) -> Vec<u8> {
    let mut line = text.into_bytes();
    line.push(b'\n');
    line
}

/// The most queued items the writer takes at once: it writes them with one system call,
/// and they are no longer counted in the queue while it does.
const BATCH: usize = 256;

/// The writer thread: writes what is queued, in order, until every console is gone. A
/// closed stdout (a pipe whose reader left, a terminal that went away) is a normal end of
/// writing, not of draining: processes are never blocked by it.
///
/// It takes everything queued (up to [`BATCH`] items) at once and writes it in one go: a
/// thousand launch lines queued in a burst are one `write`, not a thousand.
fn write_all(shared: &Shared, mut out: Box<dyn Write + Send>) {
    let mut broken = false;
    let mut batch: Vec<Item> = Vec::with_capacity(BATCH);
    let mut bytes: Vec<u8> = Vec::new();
    loop {
        {
            let mut q = shared.lock();
            while q.items.is_empty() {
                if q.closed {
                    return;
                }
                q.writer_waiting = true;
                q = shared.work.wait(q).unwrap_or_else(|e| e.into_inner());
                q.writer_waiting = false;
            }
            let was_full = q.ordinary == QUEUE_LINES;
            while batch.len() < BATCH {
                let Some(item) = q.items.pop_front() else {
                    break;
                };
                match &item {
                    Item::Line { reserved: true, .. } => q.reserved -= 1,
                    Item::Line {
                        reserved: false, ..
                    } => q.ordinary -= 1,
                    Item::Dropped(_) | Item::Flush(_) => {}
                }
                batch.push(item);
            }
            if was_full && q.ordinary < QUEUE_LINES {
                shared.room.notify_waiters();
            }
        }
        for item in batch.drain(..) {
            match item {
                Item::Line { bytes: line, .. } => bytes.extend_from_slice(&line),
                Item::Dropped(n) => bytes.extend_from_slice(
                    format!("[pymanager: {n} lines dropped here, stdout could not keep up]\n")
                        .as_bytes(),
                ),
                Item::Flush(done) => {
                    write_out(&mut out, &mut bytes, &mut broken);
                    let _ = done.send(());
                }
            }
        }
        write_out(&mut out, &mut bytes, &mut broken);
    }
}

/// Writes and empties `bytes`, unless stdout is gone.
fn write_out(out: &mut Box<dyn Write + Send>, bytes: &mut Vec<u8>, broken: &mut bool) {
    if !*broken && !bytes.is_empty() {
        *broken = out.write_all(bytes).and_then(|()| out.flush()).is_err();
    }
    bytes.clear();
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// A stdout that blocks until the test lets it write, and keeps what it got.
    struct Gate {
        started: mpsc::Sender<()>,
        open: mpsc::Receiver<()>,
        opened: bool,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if !self.opened {
                let _ = self.started.send(());
                let _ = self.open.recv();
                self.opened = true;
            }
            self.got.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A console whose stdout blocks on its first write until `open` is sent; `started`
    /// says the writer is blocked.
    /// A console, the sender that lets its stdout write, the receiver that says it blocks,
    /// and what it wrote.
    type Gated = (
        Console,
        mpsc::Sender<()>,
        mpsc::Receiver<()>,
        Arc<Mutex<Vec<u8>>>,
    );

    fn gated() -> Gated {
        let (open, gate) = mpsc::channel();
        let (started_tx, started) = mpsc::channel();
        let got = Arc::new(Mutex::new(Vec::new()));
        let out = Gate {
            started: started_tx,
            open: gate,
            opened: false,
            got: got.clone(),
        };
        let c = Console::with_writers(
            Verbosity::Quiet,
            Box::new(out),
            Box::new(std::io::sink()),
            false,
            std::iter::empty(),
        )
        .unwrap();
        (c, open, started, got)
    }

    fn blocked(started: &mpsc::Receiver<()>) {
        started
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the writer took the first line");
    }

    #[tokio::test]
    async fn a_stuck_stdout_drops_chatter_counts_it_and_keeps_launch_lines() {
        let (c, open, started, got) = gated();
        // The writer takes the first line and blocks on it; the queue then fills up.
        c.output(b"first\n".to_vec()).await;
        blocked(&started);
        for i in 0..QUEUE_LINES {
            c.output(format!("out {i}\n").into_bytes()).await;
        }
        // Full: process output would wait; chatter is dropped and counted.
        for i in 0..10_000 {
            c.say_or_drop(format!("chatter {i}"));
        }
        c.say_now("$ launch".into());
        c.say_now("Process x exited with code 0".into());
        let waiting = {
            let c = c.clone();
            tokio::spawn(async move { c.output(b"late\n".to_vec()).await })
        };
        {
            let q = c.shared.lock();
            assert!(
                q.items.len() <= QUEUE_LINES + RESERVED_LINES + 2,
                "{}",
                q.items.len()
            );
        }
        open.send(()).unwrap();
        waiting.await.unwrap();
        c.flush().await;
        let text = String::from_utf8(got.lock().unwrap().clone()).unwrap();
        assert!(text.starts_with("first\nout 0\n"), "{}", &text[..40]);
        // Every line of chatter is counted in one marker, where the gap is.
        let marker = "[pymanager: 10000 lines dropped here, stdout could not keep up]\n$ launch\n";
        assert!(text.contains(marker), "no {marker:?}");
        assert_eq!(text.matches("lines dropped here").count(), 1);
        assert!(text.contains("Process x exited with code 0\n"));
        assert!(text.ends_with("late\n"));
        assert_eq!(
            text.lines().filter(|l| l.starts_with("out ")).count(),
            QUEUE_LINES
        );
    }

    #[tokio::test]
    async fn launch_lines_have_room_of_their_own_and_are_counted_past_it() {
        let (c, open, started, got) = gated();
        c.say_now("$ run first".into());
        blocked(&started);
        for i in 0..RESERVED_LINES + 9 {
            c.say_now(format!("$ run {i}"));
        }
        // Process output still has its own room.
        c.output(b"output\n".to_vec()).await;
        open.send(()).unwrap();
        c.flush().await;
        let text = String::from_utf8(got.lock().unwrap().clone()).unwrap();
        assert!(
            text.ends_with("[pymanager: 9 lines dropped here, stdout could not keep up]\noutput\n")
        );
    }

    /// A stdout that keeps each `write` call apart.
    struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn recording() -> (Console, Arc<Mutex<Vec<Vec<u8>>>>) {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let out = Box::new(Writes(writes.clone()));
        let c = Console::with_writers(
            Verbosity::Quiet,
            out,
            Box::new(std::io::sink()),
            false,
            std::iter::empty(),
        )
        .unwrap();
        (c, writes)
    }

    /// Waits (bounded) until `cond` holds; `what` names it if it never does.
    async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            tokio::task::yield_now().await;
        }
    }

    /// Waits until the writer thread sleeps for want of work.
    async fn writer_idle(c: &Console) {
        until("the writer never went idle", || {
            c.shared.lock().writer_waiting
        })
        .await;
    }

    #[tokio::test]
    async fn lines_queued_while_held_wake_the_writer_once_and_go_out_in_one_write() {
        let (c, writes) = recording();
        writer_idle(&c).await;
        {
            let _held = c.hold();
            for i in 0..100 {
                c.say_now(format!("$ run {i}"));
            }
            // Nothing woke it: it still sleeps, and has written nothing.
            assert!(c.shared.lock().writer_waiting);
            assert!(writes.lock().unwrap().is_empty());
        }
        c.flush().await;
        let writes = writes.lock().unwrap();
        let want: String = (0..100).map(|i| format!("$ run {i}\n")).collect();
        assert_eq!(writes.len(), 1);
        assert_eq!(String::from_utf8(writes[0].clone()).unwrap(), want);
    }

    #[tokio::test]
    async fn a_hold_wakes_the_writer_all_the_same_once_the_room_is_half_taken() {
        let (c, writes) = recording();
        writer_idle(&c).await;
        let held = c.hold();
        for i in 0..RESERVED_LINES / 2 - 1 {
            c.say_now(format!("$ run {i}"));
        }
        assert!(c.shared.lock().writer_waiting);
        c.say_now("$ the one that fills half".into());
        // Woken now, not when the hold ends: a long burst is not dropped for being held.
        until("the writer was not woken", || {
            !writes.lock().unwrap().is_empty()
        })
        .await;
        drop(held);
        c.flush().await;
        let text = String::from_utf8(writes.lock().unwrap().concat()).unwrap();
        assert_eq!(text.lines().count(), RESERVED_LINES / 2);
        assert!(text.ends_with("$ the one that fills half\n"));
    }
}
