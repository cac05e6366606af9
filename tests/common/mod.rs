//! Shared by every end-to-end test: starts the real `pymanager` binary on a config in a
//! fresh directory, finds its REST address, waits for events with generous bounds, and
//! makes sure nothing it started outlives the test.
#![allow(dead_code)]

pub mod browser;
pub mod dashboard;
pub mod runtime;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any wait in a test may take before the test fails; generous, because CI
/// machines are slow and busy. Waits return as soon as their event happens.
pub const WAIT: Duration = Duration::from_secs(60);

/// The bound for a wait that includes building or compiling a large component (the Python
/// and JavaScript examples: componentize-py, then an 18 MB component through Cranelift):
/// seconds on a quiet machine, many minutes on a loaded one. Only bounds a hang.
pub const BUILD_WAIT: Duration = Duration::from_secs(30 * 60);

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pymanager"))
}

/// A running (or finished) pymanager on a config of its own.
pub struct Manager {
    child: Child,
    status: Option<ExitStatus>,
    /// The directory holding `pymanager.json`; removed on drop.
    pub dir: tempfile::TempDir,
    output: Arc<Mutex<String>>,
}

/// Writes `cfg` as `pymanager.json` in a fresh directory. If the config has an `http`
/// object without a port, port 0 is filled in so parallel tests never collide.
pub fn config_dir(cfg: &Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = cfg.clone();
    if let Some(http) = cfg.get_mut("http").and_then(Value::as_object_mut) {
        http.entry("port").or_insert(Value::from(0));
    }
    std::fs::write(
        dir.path().join("pymanager.json"),
        serde_json::to_vec_pretty(&cfg).unwrap(),
    )
    .unwrap();
    dir
}

impl Manager {
    /// Starts `pymanager -f <dir>/pymanager.json` on `cfg`.
    pub fn start(cfg: Value) -> Manager {
        Manager::start_with(cfg, &[])
    }

    /// Starts `pymanager -f <dir>/pymanager.json <extra...>` on `cfg`.
    pub fn start_with(cfg: Value, extra: &[&str]) -> Manager {
        let dir = config_dir(&cfg);
        Manager::start_in(dir, extra)
    }

    /// Starts pymanager in a directory already holding its `pymanager.json`.
    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Manager {
        Manager::start_wrapped(dir, &[], extra)
    }

    /// Like [`Manager::start_in`], with these environment variables set.
    pub fn start_env(dir: tempfile::TempDir, extra: &[&str], env: &[(&str, &Path)]) -> Manager {
        Manager::launch(dir, &[], extra, env)
    }

    /// Starts `<wrapper...> pymanager -f <dir>/pymanager.json <extra...>`: the wrapper (for
    /// example `prlimit --nofile=128 --`) must exec pymanager, so that the pid started is
    /// still pymanager's.
    pub fn start_wrapped(dir: tempfile::TempDir, wrapper: &[&str], extra: &[&str]) -> Manager {
        Manager::launch(dir, wrapper, extra, &[])
    }

    fn launch(
        dir: tempfile::TempDir,
        wrapper: &[&str],
        extra: &[&str],
        env: &[(&str, &Path)],
    ) -> Manager {
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin());
                c
            }
            None => Command::new(bin()),
        };
        cmd.envs(env.iter().copied());
        cmd.arg("-f")
            .arg(dir.path().join("pymanager.json"))
            .args(extra)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn pymanager");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            std::thread::spawn(move || collect(stream, output));
        }
        Manager {
            child,
            status: None,
            dir,
            output,
        }
    }

    /// The pid of the `pymanager` process the test started.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The manager process: the only child of the guardian (the pid the test started).
    pub fn manager_pid(&self) -> i32 {
        manager_of(self.child.id())
    }

    /// Path of a file in the config's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Everything pymanager wrote to stdout and stderr so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until the output contains `needle`; false after `WAIT`.
    pub fn wait_output(&self, needle: &str) -> bool {
        wait_until(WAIT, || self.output().contains(needle))
    }

    /// The REST base URL (`http://127.0.0.1:PORT`), read from the address file pymanager
    /// writes once it listens. Panics (with pymanager's output) if it never appears.
    pub fn url(&self) -> String {
        let file = self.dir.path().join(".pymanager/pymanager.json.addr");
        let mut url = None;
        wait_until(WAIT, || {
            url = std::fs::read_to_string(&file)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty());
            url.is_some()
        });
        url.unwrap_or_else(|| panic!("no address file; output:\n{}", self.output()))
    }

    /// `GET /status` until it reports `want`; panics with the output after `WAIT`.
    pub fn wait_status(&self, want: &str) {
        let url = format!("{}/status", self.url());
        let client = client();
        let mut last = String::new();
        let ok = wait_until(WAIT, || match client.get(&url).send() {
            Ok(r) => {
                last = r.text().unwrap_or_default();
                serde_json::from_str::<Value>(&last)
                    .ok()
                    .and_then(|v| v["status"].as_str().map(|s| s == want))
                    .unwrap_or(false)
            }
            Err(e) => {
                last = e.to_string();
                false
            }
        });
        assert!(
            ok,
            "status never became {want:?} (last: {last}); output:\n{}",
            self.output()
        );
    }

    /// `GET /` parsed.
    pub fn list(&self) -> Value {
        client()
            .get(format!("{}/", self.url()))
            .send()
            .and_then(|r| r.json())
            .expect("GET /")
    }

    /// `GET <path>` (`/api/v1/timeline`) parsed; panics, naming the path, unless the
    /// answer is a success with a JSON body.
    pub fn get_json(&self, path: &str) -> Value {
        client()
            .get(format!("{}{path}", self.url()))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `GET /api/v1/processes/<r>`: one process as the API shows it.
    pub fn v1_process(&self, r: &str) -> Value {
        self.get_json(&format!("/api/v1/processes/{r}"))
    }

    /// Pids of the managed processes that `GET /` reports as running.
    pub fn pids(&self) -> Vec<i32> {
        self.list()["processes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["pid"].as_i64().map(|p| p as i32))
            .collect()
    }

    /// Sends `sig` to pymanager.
    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for pymanager to exit; its exit status, or `None` after `timeout`.
    pub fn wait_exit_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_some() {
            return self.status;
        }
        let end = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                self.status = Some(st);
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(50));
                return Some(st);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for pymanager to exit and returns its exit code; panics after `WAIT`.
    pub fn wait_exit(&mut self) -> i32 {
        let st = self
            .wait_exit_within(WAIT)
            .unwrap_or_else(|| panic!("pymanager did not exit; output:\n{}", self.output()));
        st.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            -st.signal().unwrap_or(0)
        })
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if self.status.is_none() && self.child.try_wait().ok().flatten().is_none() {
            self.signal(libc::SIGINT);
            if self.wait_exit_within(Duration::from_secs(15)).is_none() {
                self.signal(libc::SIGKILL);
                let _ = self.child.wait();
            }
        }
    }
}

fn collect(mut stream: Box<dyn Read + Send>, into: Arc<Mutex<String>>) {
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => into
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
}

/// What `pymanager -d …` left: its exit status, its stderr, and the file its stdout (and
/// the daemon's, which keeps it) goes to.
pub struct Daemonized {
    /// The caller's exit status.
    pub status: std::process::ExitStatus,
    /// The caller's stderr.
    pub stderr: String,
    /// Where the shared stdout goes.
    pub stdout_file: PathBuf,
}

impl Daemonized {
    /// Everything written to the shared stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_file).unwrap_or_default()
    }
}

/// Runs `pymanager <args>` in `dir` with stdout in a file: a daemon keeps writing to its
/// caller's stdout, so a pipe would stay open as long as the daemon runs.
pub fn daemon(dir: &Path, args: &[&str]) -> Daemonized {
    let stdout_file = dir.join("daemon.stdout");
    let out = pymanager(&[])
        .args(args)
        .current_dir(dir)
        .stdout(std::fs::File::create(&stdout_file).unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    Daemonized {
        status: out.status,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        stdout_file,
    }
}

/// The pid of the daemon started in `dir` (the guardian), from its pid file.
pub fn daemon_pid(dir: &Path) -> i32 {
    let file = dir.join(".pymanager/pymanager.json.pid");
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .parse()
        .unwrap()
}

/// A blocking HTTP client with a bound on every request.
pub fn client() -> reqwest::blocking::Client {
    pymanager::tls::install_crypto_provider();
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Calls `f` until it returns true or `timeout` passes; true if it did.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the command name, which is in parentheses.
            let state = stat
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next());
            !matches!(state, Some(Some('Z')) | Some(Some('X')))
        }
        Err(_) => false,
    }
}

/// True while any live (non-zombie) process is in process group `pgid`.
pub fn group_alive(pgid: i32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .any(|pid| pgid_of(pid) == Some(pgid) && alive(pid))
}

/// The process group of `pid`, if it exists.
pub fn pgid_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    // Fields after the name: state ppid pgrp ...
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// Waits until none of `pids` is alive; false (with the survivors named) after `timeout`.
pub fn wait_all_gone(pids: &[i32], timeout: Duration) -> Result<(), Vec<i32>> {
    if wait_until(timeout, || pids.iter().all(|p| !alive(*p))) {
        Ok(())
    } else {
        Err(pids.iter().copied().filter(|p| alive(*p)).collect())
    }
}

/// Asserts that every one of `pids` (at least one) ends within [`WAIT`]; survivors are
/// killed, so that a failing test leaves nothing behind, and named in the failure.
#[track_caller]
pub fn assert_all_gone(pids: &[i32]) {
    assert!(!pids.is_empty(), "no pids were recorded");
    if let Err(left) = wait_all_gone(pids, WAIT) {
        for p in &left {
            unsafe { libc::kill(*p, libc::SIGKILL) };
        }
        panic!("processes left running: {left:?}");
    }
}

/// Reads pids that test processes wrote, one per line, into `file`.
pub fn read_pids(file: &Path) -> Vec<i32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// A loopback port that was free a moment ago (for a config that needs a fixed port, or a
/// port nothing listens on).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A free loopback port whose neighbours 100 and 200 above were free a moment ago too (for
/// foreman's port scheme: `PORT` = base + 100 × the process's index).
pub fn free_port_trio() -> u16 {
    loop {
        let p = free_port();
        if p < 65000
            && std::net::TcpListener::bind(("127.0.0.1", p + 100)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", p + 200)).is_ok()
        {
            return p;
        }
    }
}

/// A web server (`python3 -m http.server`) on a port picked at start-up, `ports.<name>.http`,
/// verified by an HTTP GET on it: a process entry named `name` in a config.
pub fn web_on_a_picked_port(name: &str) -> Value {
    serde_json::json!({
        "executable": "python3",
        "arguments": ["-m", "http.server", "--bind", "127.0.0.1", format!("${{ports.{name}.http}}")],
        "ports": {"http": 0},
        "verifier": {"type": "http", "arguments": {"url": format!("http://127.0.0.1:${{ports.{name}.http}}/")}}
    })
}

/// A config of `n` sleeps (`s0000`, `s0001`, …) started in parallel, their output
/// suppressed, the API on: the load of the scale tests.
pub fn sleeps(n: usize) -> Value {
    let processes: serde_json::Map<String, Value> = (0..n)
        .map(|i| {
            (
                format!("s{i:04}"),
                serde_json::json!({"executable": "sleep", "arguments": ["100000"],
                       "options": {"suppress_output": true}}),
            )
        })
        .collect();
    serde_json::json!({"http": {"enabled": true}, "keep-alive": true, "startup": "parallel",
           "graceful_time": 5, "processes": processes})
}

/// The names on the critical chain of a `GET /api/v1/timeline` answer, in its order.
pub fn critical_chain(timeline: &Value) -> Vec<&str> {
    timeline["critical_chain"]
        .as_array()
        .expect("a critical_chain")
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect()
}

/// A `sh -c` process entry for a config.
pub fn sh(script: &str) -> Value {
    serde_json::json!({ "executable": "sh", "arguments": ["-c", script] })
}

/// Resident memory of `pid` in KiB (0 if it is gone).
pub fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors of `pid`, which must be alive (a count of a process that is gone
/// would pass any "no more than" check).
pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("the descriptors of {pid}: {e}"))
        .count()
}

/// The manager process of a guardian: its only child, once it has one.
pub fn manager_of(guardian: u32) -> i32 {
    let mut found = None;
    assert!(wait_until(WAIT, || {
        found = std::fs::read_to_string(format!("/proc/{guardian}/task/{guardian}/children"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()));
        found.is_some()
    }));
    found.unwrap()
}

/// The folder of a shipped example (`examples/<name>`).
pub fn example_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

/// Runs `examples/<name>/build.sh` once per test binary (its tests run in parallel, and two
/// builds at once would fetch and write the same files twice); returns the `.wasm` it made.
pub fn build_example(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let dir = example_dir(name);
    if !built.iter().any(|b| b == name) {
        let out = std::process::Command::new("sh")
            .arg(dir.join("build.sh"))
            .output()
            .unwrap_or_else(|e| panic!("run examples/{name}/build.sh: {e}"));
        assert!(
            out.status.success(),
            "examples/{name}/build.sh failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        built.push(name.to_string());
    }
    dir.join("verifier.wasm")
}

/// A real HTTP server on a free loopback port, on one thread until the test ends: it reads
/// each request's head, records it, and writes `answer(request line)` (the whole response)
/// back. The port, and the heads received so far.
pub fn serve(answer: impl Fn(&str) -> String + Send + 'static) -> (u16, Arc<Mutex<Vec<String>>>) {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut head = String::new();
            let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let first = head.lines().next().unwrap_or_default().to_string();
            record.lock().unwrap().push(head);
            let _ = conn.write_all(answer(&first).as_bytes());
        }
    });
    (port, seen)
}

/// A whole HTTP/1.1 response with `status` (`"200 OK"`) and `body`, closing the connection.
pub fn http_response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Serves HTTP on a free loopback port until the test ends, answering every request with
/// `status` and an empty body; the port.
pub fn serve_status(status: &'static str) -> u16 {
    serve(move |_| http_response(status, "text/plain", "")).0
}

/// `pymanager <args...>`, ready to run: no stdin, no colours, no `PYMANAGER_TOKEN` from the
/// test's own environment. Callers add a directory or an environment of their own.
pub fn pymanager(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("PYMANAGER_TOKEN")
        .stdin(Stdio::null());
    cmd
}

/// Runs `pymanager <args...>` in `dir` to its end; its output.
pub fn pymanager_in(dir: &Path, args: &[&str]) -> Output {
    output_of(pymanager(args).current_dir(dir))
}

/// Runs `cmd` (a [`pymanager`] command) to its end, capturing its stdout and stderr.
pub fn output_of(cmd: &mut Command) -> Output {
    cmd.output().expect("run pymanager")
}

/// What a command wrote to stdout.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What a command wrote to stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Everything a command wrote: stdout, then stderr.
pub fn text(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// A command's exit code and output, for an assertion's message.
pub fn described(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

/// Asserts that a command exited with `code`, showing its output if not.
#[track_caller]
pub fn assert_code(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "{}", described(o));
}

/// Runs `cmd` (its stdout and stderr captured) until it exits, for at most `bound`: its exit
/// code and its output (stdout, then stderr). One still running then is killed, and the
/// test fails with its output.
pub fn run_within(cmd: &mut Command, bound: Duration) -> (Option<i32>, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let ended = wait_until(bound, || child.try_wait().unwrap().is_some());
    if !ended {
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(ended, "still running after {bound:?}:\n{text}");
    (out.status.code(), text)
}

/// componentize-py from `examples/python-verifier`'s venv (made by its build.sh, run once
/// per test binary).
pub fn componentize_py() -> PathBuf {
    build_example("python-verifier");
    example_dir("python-verifier").join(".venv/bin/componentize-py")
}

/// The uid another local user runs as in the attack tests (`nobody`).
pub const OTHER_UID: u32 = 65534;

/// The words that run a command as another local user ([`OTHER_UID`], no groups): `setpriv`
/// under root. `None`, after saying why on stderr, where this test cannot switch user (then
/// the test is skipped).
pub fn as_other_user(test: &str) -> Option<Vec<String>> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let setpriv = Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !root || !setpriv {
        eprintln!(
            "skipped {test}: switching to another user needs root and setpriv (root: {root}, setpriv: {setpriv})"
        );
        return None;
    }
    Some(
        [
            "setpriv",
            &format!("--reuid={OTHER_UID}"),
            &format!("--regid={OTHER_UID}"),
            "--clear-groups",
            "--",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    )
}

/// A Python the other user can run too (a per-user shim on `PATH` may be closed to them).
pub fn system_python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// A command running `program` as whoever `prefix` (from [`as_other_user`]) runs commands
/// as; an empty `prefix`: this user.
pub fn command_as(prefix: &[String], program: impl AsRef<std::ffi::OsStr>) -> Command {
    match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Runs `argv` as another local user (see [`as_other_user`]) and waits for it; panics if it
/// fails.
pub fn run_as_other(prefix: &[String], argv: &[&str]) -> std::process::Output {
    let out = command_as(prefix, argv[0])
        .args(&argv[1..])
        .output()
        .expect("run as another user");
    assert!(
        out.status.success(),
        "{argv:?} as uid {OTHER_UID}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A TCP listener squatting a port (run as another user when `prefix` says so): it answers
/// every request `200 {}` and reports each request's head, one JSON string per line.
pub struct Squatter {
    child: Child,
    heads: Arc<Mutex<Vec<String>>>,
    /// The port it holds.
    pub port: u16,
}

const SQUATTER: &str = r#"
import json, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
print(json.dumps("listening %d" % s.getsockname()[1]), flush=True)
while True:
    c, _ = s.accept()
    data = b""
    c.settimeout(10)
    try:
        while b"\r\n\r\n" not in data:
            chunk = c.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    print(json.dumps(data.decode("latin-1")), flush=True)
    try:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    except OSError:
        pass
    c.close()
"#;

impl Squatter {
    /// Listens on 127.0.0.1:`port` (0: any free port) as whoever `prefix` runs commands as
    /// (nothing: this user).
    pub fn start(prefix: &[String], port: u16) -> Squatter {
        let mut child = command_as(prefix, system_python())
            .args(["-c", SQUATTER, &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the squatter");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        std::io::BufRead::read_line(&mut out, &mut first).unwrap();
        let first: String = serde_json::from_str(&first).expect("the squatter listens");
        let port = first.trim_start_matches("listening ").parse().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let into = heads.clone();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(out).map_while(Result::ok) {
                if let Ok(head) = serde_json::from_str::<String>(&line) {
                    into.lock().unwrap().push(head);
                }
            }
        });
        Squatter { child, heads, port }
    }

    /// The heads of the requests received so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// Waits until `n` requests have been reported (each is reported before it is
    /// answered, so once a client has its answers they are on their way); their heads.
    pub fn wait_heads(&self, n: usize) -> Vec<String> {
        assert!(
            wait_until(WAIT, || self.heads().len() >= n),
            "{} requests reported, not {n}",
            self.heads().len()
        );
        self.heads()
    }
}

impl Drop for Squatter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
