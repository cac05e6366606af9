//! `pymanager verify`: one verifier, run by the real binary against real processes, as a
//! healthcheck or a probe would run it.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{WAIT, described, free_port, output_of, pymanager, text};

/// `pymanager verify <args...>`, run to its end.
fn verify(args: &[&str]) -> Output {
    output_of(pymanager(&["verify"]).args(args))
}

/// True if `needle` is in what the command wrote (stdout or stderr).
fn says(out: &Output, needle: &str) -> bool {
    text(out).contains(needle)
}

/// A child killed and reaped when the test ends, whatever happens.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `python3 -m http.server` on an ephemeral port of 127.0.0.1; returns it and its port
/// (read from its first line, which `-u` makes arrive at once).
fn http_server() -> (Reaped, u16) {
    let mut child = Command::new("python3")
        .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let child = Reaped(child);
    let line = rx
        .recv_timeout(WAIT)
        .expect("http.server announces its port");
    // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
    let port = line
        .split_whitespace()
        .skip_while(|w| *w != "port")
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (child, port)
}

#[test]
fn passes_against_a_running_http_server() {
    let (_server, port) = http_server();
    let args = format!(r#"{{"url": "http://127.0.0.1:{port}/", "timeout": 20}}"#);
    let out = verify(&["http", "--args", &args]);
    assert_eq!(out.status.code(), Some(0), "{}", described(&out));
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("passed\n"));
}

#[test]
fn fails_with_the_reason_against_a_closed_port() {
    let port = free_port();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        format!(r#"{{"url": "http://127.0.0.1:{port}/", "timeout": 0.5}}"#),
    )
    .unwrap();
    let at = format!("@{}", file.path().display());
    let out = verify(&["pymutils.http_verifier.HttpOkVerifier", "--args", &at]);
    assert_eq!(out.status.code(), Some(1), "{}", described(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "failed: http://127.0.0.1:{port}/: Connection refused"
        )),
        "{}",
        described(&out)
    );
    assert!(err.contains("gave up after"), "{}", described(&out));
    // Each attempt is in the verifier's log, on stdout.
    assert!(says(&out, "[WARN] attempt 1: "), "{}", described(&out));
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    for (args, says) in [
        (vec!["nope"], "unknown verifier 'nope'"),
        (vec![], "name a verifier"),
        (
            vec!["http", "--args", "{\"url\": 1}"],
            "--args: url: expected a string",
        ),
        (vec!["http", "--args", "[1"], "--args: not valid JSON"),
        (
            vec!["http", "--args", "@/nonexistent/x.json"],
            "--args @/nonexistent/x.json",
        ),
        (
            vec!["--module", "/nonexistent/x.wasm", "--verifier", "V"],
            "no such file",
        ),
        (vec!["exited", "--pid", "0"], "--pid 0: not a process id"),
        (vec!["exited", "--timeout", "-1"], "--timeout -1"),
        (
            vec![
                "output",
                "--args",
                "{\"pattern\": \"x\"}",
                "--log",
                "/nonexistent/dir/log",
            ],
            "no such directory",
        ),
    ] {
        let out = verify(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", described(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {}", described(&out));
        assert!(err.contains(says), "{args:?}: {}", described(&out));
    }
}

/// Starts `pymanager verify` with its stdout piped, and returns it and a channel of its
/// stdout lines.
fn spawn_verify(args: &[&str]) -> (Reaped, mpsc::Receiver<String>) {
    let mut child = pymanager(&[])
        .arg("verify")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pymanager verify");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Reaped(child), rx)
}

/// Waits until a line containing `needle` arrives.
fn wait_line(rx: &mpsc::Receiver<String>, needle: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no line with {needle:?}");
}

/// Waits for the verify process to end; its exit code and stderr.
fn finish(mut v: Reaped) -> (Option<i32>, String) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(status) = v.0.try_wait().unwrap() {
            let mut err = String::new();
            v.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            return (status.code(), err);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "verify did not end within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A process that runs until its stdin is closed, then exits with `code`.
fn exits_on_eof(code: i32) -> Child {
    Command::new("python3")
        .args([
            "-c",
            &format!("import sys; sys.stdin.read(); sys.exit({code})"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("python3")
}

#[test]
fn attaches_to_a_pid_and_sees_its_exit_code() {
    for (code, expect, passes) in [(3, 3, true), (3, 0, false)] {
        let mut proc = exits_on_eof(code);
        let pid = proc.id().to_string();
        let args = format!(r#"{{"expect_code": {expect}, "timeout": 60}}"#);
        let (v, rx) = spawn_verify(&["exited", "--pid", &pid, "--args", &args]);
        wait_line(&rx, &format!("watching process {pid}"));
        // Only now does it exit: the verifier sees the exit as an event, not a state it
        // found at start. (The test does not reap it yet, so its code can be read.)
        drop(proc.stdin.take());
        let (got, err) = finish(v);
        let _ = proc.wait();
        if passes {
            assert_eq!(got, Some(0), "{err}");
        } else {
            assert_eq!(got, Some(1), "{err}");
            assert!(err.contains("exited with code 3, expected 0"), "{err}");
        }
    }
}

#[test]
fn a_verifier_gives_up_when_the_attached_pid_ends() {
    let mut proc = exits_on_eof(0);
    let pid = proc.id().to_string();
    let port = free_port();
    let args = format!(r#"{{"port": {port}, "timeout": 60}}"#);
    let (v, rx) = spawn_verify(&["tcp", "--pid", &pid, "--args", &args]);
    wait_line(&rx, "watching process");
    drop(proc.stdin.take());
    let (got, err) = finish(v);
    let _ = proc.wait();
    assert_eq!(got, Some(1), "{err}");
    // Said by the verifier when it looked at the process between two attempts (`process
    // exited with code 0 before listening …`), or by the host when the end came during an
    // attempt (`process <pid> (bash) exited with code 0 before it was verified`): which one
    // depends on where the verifier was when the process ended.
    assert!(err.contains("exited with code 0 before"), "{err}");
}

#[test]
fn follows_a_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "starting\n").unwrap();
    let log_arg = log.display().to_string();
    let (v, rx) = spawn_verify(&[
        "output",
        "--log",
        &log_arg,
        "--args",
        r#"{"pattern": "^listening on \\d+$", "timeout": 60}"#,
    ]);
    wait_line(&rx, "following");
    // Appended after it attached, in two writes that split the line.
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"still starting\nlisten").unwrap();
    f.flush().unwrap();
    f.write_all(b"ing on 8080\n").unwrap();
    drop(f);
    let (got, err) = finish(v);
    assert_eq!(got, Some(0), "{err}");
}

#[test]
fn a_log_file_that_does_not_exist_yet_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("later.log");
    let log_arg = log.display().to_string();
    let (v, rx) = spawn_verify(&[
        "output",
        "--log",
        &log_arg,
        "--args",
        r#"{"pattern": "ready", "timeout": 60}"#,
    ]);
    wait_line(&rx, "following");
    // Written elsewhere and renamed into place, as log writers and rotators do.
    let tmp = dir.path().join("tmp");
    std::fs::write(&tmp, "ready\n").unwrap();
    std::fs::rename(&tmp, &log).unwrap();
    let (got, err) = finish(v);
    assert_eq!(got, Some(0), "{err}");
}

#[test]
fn a_log_line_that_never_comes_fails_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "starting\n").unwrap();
    let out = verify(&[
        "output",
        "--log",
        &log.display().to_string(),
        "--args",
        r#"{"pattern": "ready", "timeout": 0.3}"#,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", described(&out));
    assert!(
        says(&out, "no output line matched /ready/"),
        "{}",
        described(&out)
    );
}

/// With `--pid`, a loopback port counts only when that process's tree holds it: a server
/// of another process fails the check, naming it; the holder's own pid passes.
#[test]
fn with_pid_a_port_counts_only_when_that_process_holds_it() {
    let (server, port) = http_server();
    let bystander = Reaped(Command::new("sleep").arg("600").spawn().expect("sleep"));
    let (other, holder) = (bystander.0.id().to_string(), server.0.id().to_string());
    let args = format!(r#"{{"port": {port}, "timeout": 0.5}}"#);
    let out = verify(&["tcp", "--pid", &other, "--args", &args]);
    assert_eq!(out.status.code(), Some(1), "{}", described(&out));
    let said = format!(
        "failed: port {port} is held by pid {holder} (python3), not by process {other} (sleep)"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with(&said),
        "{said:?}, got {}",
        described(&out)
    );
    let out = verify(&["tcp", "--pid", &holder, "--args", &args]);
    assert_eq!(out.status.code(), Some(0), "{}", described(&out));
    let url = format!(r#"{{"url": "http://127.0.0.1:{port}/", "timeout": 20}}"#);
    let out = verify(&["http", "--pid", &holder, "--args", &url]);
    assert_eq!(out.status.code(), Some(0), "{}", described(&out));
}

/// A process that is not `verify`'s child and leaves no zombie behind (its parent ignores
/// SIGCHLD, so the kernel reaps it at once) has an exit code nobody can read: the
/// verification fails saying so, instead of inventing one (it used to say 255).
#[test]
fn the_exit_code_of_a_process_reaped_elsewhere_is_unknown_not_invented() {
    // The parent prints its child's pid and waits; the child sleeps until killed.
    let mut parent = Reaped(
        Command::new("python3")
            .args([
                "-u",
                "-c",
                "import signal,subprocess,time; signal.signal(signal.SIGCHLD, signal.SIG_IGN); \
                 print(subprocess.Popen(['sleep', '600']).pid); time.sleep(600)",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3"),
    );
    let mut line = String::new();
    BufReader::new(parent.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid = line.trim().to_string();
    let (v, rx) = spawn_verify(&["exited", "--pid", &pid]);
    wait_line(&rx, &format!("watching process {pid}"));
    unsafe { libc::kill(pid.parse().unwrap(), libc::SIGTERM) };
    let (got, err) = finish(v);
    assert_eq!(got, Some(1), "{err}");
    assert_eq!(
        err.trim(),
        format!(
            "failed: process {pid} (sleep) exited (its exit code is unknown: it is not \
             pymanager's child, and its parent reaped it before the code could be read)"
        )
    );
}

/// `verify` with the compiled-component cache of its own (the cache and its key under
/// `home`), as a fresh container has.
fn verify_in(home: &std::path::Path, args: &[&str]) -> Output {
    output_of(
        pymanager(&["verify"])
            .args(args)
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_STATE_HOME", home.join("state")),
    )
}

const GOOD: &str = env!("PYMANAGER_TEST_GUEST_GOOD");

/// Probe mode in a container: `--prepare-only` compiles the module into the cache at image
/// build time (and says so), so that the probe itself loads it from there.
#[test]
fn prepare_only_compiles_into_the_cache_and_the_probe_loads_it_from_there() {
    let home = tempfile::tempdir().unwrap();
    let prepare = ["--module", GOOD, "--verifier", "Trivial", "--prepare-only"];
    let out = verify_in(home.path(), &prepare);
    assert_eq!(out.status.code(), Some(0), "{}", described(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with("prepared: guest_good compiled into the cache in "),
        "{}",
        described(&out)
    );
    let out = verify_in(home.path(), &prepare);
    assert_eq!(out.status.code(), Some(0), "{}", described(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "prepared: guest_good in the cache already\n"
    );
    // Arguments given are checked; without them, a verifier's required ones are not asked.
    let out = verify_in(
        home.path(),
        &["http", "--prepare-only", "--args", r#"{"url": 3}"#],
    );
    assert_eq!(out.status.code(), Some(2), "{}", described(&out));
    let out = verify_in(home.path(), &["http", "--prepare-only"]);
    assert_eq!(out.status.code(), Some(0), "{}", described(&out));
    let out = verify_in(
        home.path(),
        &["--module", GOOD, "--verifier", "Trivial", "--timeout", "20"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", described(&out));
}

/// `--timeout` bounds the whole run: a cold cache's compile longer than it fails the
/// probe (exit 1, saying what to do), and the command does not wait for the compile.
#[test]
fn timeout_covers_loading_the_module_and_says_to_prepare_it() {
    let home = tempfile::tempdir().unwrap();
    let out = verify_in(
        home.path(),
        &[
            "--module",
            GOOD,
            "--verifier",
            "Trivial",
            "--timeout",
            "0.01",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", described(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "failed: did not pass within 10 ms (--timeout): loading the module took that long (it \
         was being compiled: prepare the cache beforehand, at image build time, with the same \
         command and --prepare-only)"
    );
}

/// In probe mode the refusal of a host not granted names the flag that grants it and the
/// module by its own name.
#[test]
fn a_host_not_granted_names_the_allow_host_flag_and_the_module() {
    let (_server, port) = http_server();
    let guest = env!("PYMANAGER_TEST_GUEST_HTTPGRANT");
    let args = format!(r#"{{"url": "http://127.0.0.1:{port}/"}}"#);
    let out = verify(&[
        "--module",
        guest,
        "--verifier",
        "HttpAnywhere",
        "--args",
        &args,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", described(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "failed: http://127.0.0.1:{port}/: 127.0.0.1:{port} is not granted to module \
             'guest_httpgrant': add --allow-host 127.0.0.1:{port}"
        )
    );
    let grant = format!("127.0.0.1:{port}");
    let out = verify(&[
        "--module",
        guest,
        "--verifier",
        "HttpAnywhere",
        "--allow-host",
        &grant,
        "--args",
        &args,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", described(&out));
}

/// `pymanager prepare -f pymanager.json`: the config's modules compiled into the cache at
/// image build time, nothing started; the manager then loads them from there.
#[test]
fn prepare_compiles_a_configs_modules_and_starts_nothing() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("pymanager.json");
    std::fs::write(
        &cfg,
        format!(
            r#"{{"modules": {{"good": {{"path": {GOOD:?}}}}},
                "processes": {{"web": {{"executable": "sh", "arguments": ["-c", "echo started > ran"],
                                      "verifier": {{"type": "good.Trivial"}}}}}}}}"#
        ),
    )
    .unwrap();
    let prepare = || {
        pymanager(&[])
            .args(["prepare", "-f"])
            .arg(&cfg)
            .env("XDG_CACHE_HOME", home.path().join("cache"))
            .env("XDG_STATE_HOME", home.path().join("state"))
            .output()
            .expect("run pymanager prepare")
    };
    let out = prepare();
    assert_eq!(out.status.code(), Some(0), "{}", described(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("good: compiled into the cache in "),
        "{}",
        described(&out)
    );
    assert!(
        !dir.path().join("ran").exists(),
        "prepare started a process"
    );
    let out = prepare();
    assert!(
        says(&out, "good: in the cache already"),
        "{}",
        described(&out)
    );
}
