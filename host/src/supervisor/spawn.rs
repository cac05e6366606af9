//! Starts one run of a process: its own process group, a parent-death signal, a stdin
//! pipe held open (as the original did), and stdout and stderr on one pipe that pymanager
//! reads. The child is created without copying the manager's memory
//! ([`clone_exec`](super::clone_exec)), so a spawn costs the same however large the
//! manager has grown.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::clone_exec::{self, Program, StartError};
use super::leader::Leader;
use super::reaper::Reaper;
use crate::plan::ProcessSpec;
use crate::process_view::ProcState;

/// A process that was just started.
pub struct Spawned {
    /// Its pid, which is also its process group id.
    pub pid: u32,
    /// Its process group, to signal the run safely even after its leader was reaped.
    pub leader: Arc<Leader>,
    /// Resolves with its final state when the reaper collects it.
    pub exit: oneshot::Receiver<ProcState>,
    /// The read end of its combined stdout and stderr.
    pub output: OwnedFd,
    /// The write end of its stdin, held open while it runs so that it never sees EOF.
    pub stdin: OwnedFd,
}

/// Spawns one run of `spec`. The error is one line naming what could not be run and why.
pub fn spawn(spec: &ProcessSpec, reaper: &Reaper) -> Result<Spawned, String> {
    let (out_read, out_write) = pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
    let (in_read, in_write) = pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
    let program = Program {
        program: &spec.program,
        args: &spec.args,
        cwd: spec.cwd.as_deref(),
        env: spec.env.as_deref(),
        stdin: in_read.as_fd(),
        output: out_write.as_fd(),
    };
    let (leader, exit) = reaper
        .spawn(|| clone_exec::start(&program))
        .map_err(|e| describe_spawn_error(spec, &e))?;
    // The child has its own copies now; ours must go so that EOF is seen.
    drop((in_read, out_write));
    Ok(Spawned {
        pid: leader.pid() as u32,
        leader,
        exit,
        output: out_read,
        stdin: in_write,
    })
}

fn describe_spawn_error(spec: &ProcessSpec, e: &StartError) -> String {
    let program = spec.program.to_string_lossy();
    let dir = spec.cwd.as_deref().unwrap_or(std::path::Path::new("."));
    match e {
        StartError::Chdir(e) if e.kind() == std::io::ErrorKind::NotFound => {
            format!("working directory {} does not exist", dir.display())
        }
        StartError::Chdir(e) => {
            format!(
                "cannot change into working directory {}: {e}",
                dir.display()
            )
        }
        StartError::Exec(e) if e.kind() == std::io::ErrorKind::NotFound => {
            format!("cannot run {program}: command not found")
        }
        StartError::Exec(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            format!("cannot run {program}: permission denied")
        }
        StartError::Exec(e) | StartError::Setup(e) => format!("cannot run {program}: {e}"),
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    //! The guarantees of a spawn, checked on real processes.
    use std::ffi::OsString;
    use std::io::Read;
    use std::os::unix::ffi::OsStrExt;
    use std::time::Duration;

    use nix::sys::signal::Signal;

    use super::*;
    use crate::plan::OutputMode;

    fn spec(program: &str, args: &[&str]) -> ProcessSpec {
        ProcessSpec {
            id: 1,
            name: "t".into(),
            command: program.into(),
            program: program.into(),
            args: args.iter().map(OsString::from).collect(),
            cwd: None,
            env: None,
            ports: Default::default(),
            port_hold: Default::default(),
            output: OutputMode::Suppress,
            verifier: None,
            orchestration: Default::default(),
        }
    }

    /// Everything the child wrote, until it closed its output.
    fn read_all(fd: OwnedFd) -> String {
        let mut s = String::new();
        std::fs::File::from(fd).read_to_string(&mut s).unwrap();
        s
    }

    async fn ended(s: Spawned) -> ProcState {
        tokio::time::timeout(Duration::from_secs(30), s.exit)
            .await
            .expect("the child ends")
            .expect("the reaper answers")
    }

    fn kill(s: &Spawned) {
        s.leader.signal_group(Signal::SIGKILL);
    }

    #[tokio::test]
    async fn the_child_leads_its_own_group_with_default_signals_and_an_empty_mask() {
        let reaper = Reaper::start().unwrap();
        let s = spawn(&spec("sleep", &["1000"]), &reaper).unwrap();
        let pid = s.pid as i32;
        assert_eq!(
            nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid)))
                .unwrap()
                .as_raw(),
            pid
        );
        let field = |pid: &str, name: &str| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap()
                .to_string();
            u64::from_str_radix(line.rsplit('\t').next().unwrap(), 16).unwrap()
        };
        assert_eq!(field(&pid.to_string(), "SigBlk:"), 0);
        // What this process ignores stays ignored, as with fork and exec, but SIGPIPE
        // (ignored by the Rust runtime) is back to its default.
        let sigpipe = 1u64 << (libc::SIGPIPE - 1);
        assert_ne!(field("self", "SigIgn:") & sigpipe, 0);
        assert_eq!(
            field(&pid.to_string(), "SigIgn:"),
            field("self", "SigIgn:") & !sigpipe
        );
        kill(&s);
        assert_eq!(ended(s).await, ProcState::Signaled { signal: 9 });
    }

    #[tokio::test]
    async fn the_child_inherits_no_descriptor_but_its_stdin_and_output() {
        let reaper = Reaper::start().unwrap();
        // A descriptor opened without O_CLOEXEC must not reach the child either.
        // SAFETY: open and close of a descriptor owned here.
        let stray = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
        assert!(stray > 2);
        let s = spawn(&spec("sleep", &["1000"]), &reaper).unwrap();
        unsafe { libc::close(stray) };
        let pid = s.pid;
        let list = || {
            let mut fds: Vec<(String, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .unwrap()
                .filter_map(|e| {
                    let e = e.ok()?;
                    let target = std::fs::read_link(e.path()).ok()?;
                    Some((
                        e.file_name().into_string().unwrap(),
                        target.display().to_string(),
                    ))
                })
                .collect();
            fds.sort();
            fds
        };
        // `sleep` opens (and closes) locale files of its own as it starts: wait for it to
        // settle; a descriptor leaked to it would stay.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut fds = list();
        while fds.len() != 3 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
            fds = list();
        }
        let names: Vec<&str> = fds.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["0", "1", "2"], "{fds:?}");
        assert!(fds[0].1.starts_with("pipe:"), "{fds:?}");
        assert_eq!(fds[1].1, fds[2].1, "stdout and stderr share one pipe");
        assert_ne!(fds[0].1, fds[1].1);
        kill(&s);
        ended(s).await;
    }

    #[tokio::test]
    async fn working_directory_environment_and_path_lookup_are_the_childs() {
        let reaper = Reaper::start().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut sp = spec("sh", &["-c", "pwd; echo \"$ONLY\"; echo err >&2; cat"]);
        sp.cwd = Some(dir.path().into());
        sp.env = Some(vec![
            ("ONLY".into(), "this".into()),
            ("PATH".into(), "/usr/bin:/bin".into()),
        ]);
        let s = spawn(&sp, &reaper).unwrap();
        let pid = s.pid;
        // stdin stays open while we hold it: `cat` waits until it is closed.
        let Spawned {
            output,
            stdin,
            exit,
            ..
        } = s;
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        drop(stdin);
        let out = read_all(output);
        let here = dir.path().canonicalize().unwrap();
        assert_eq!(out, format!("{}\nthis\nerr\n", here.display()));
        let state = tokio::time::timeout(Duration::from_secs(30), exit)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(state, ProcState::Exited { code: 0 });
    }

    #[tokio::test]
    async fn one_thread_starts_children_one_after_another_each_with_its_own_arguments() {
        // A current-thread runtime: every start below runs on this thread and so on the
        // child stack it keeps, also right after a child that failed before `execve`.
        let reaper = Reaper::start().unwrap();
        for i in 0..40 {
            if i % 10 == 5 {
                let mut sp = spec("sh", &["-c", "exit 0"]);
                sp.cwd = Some("/no/such/dir".into());
                assert!(spawn(&sp, &reaper).is_err());
            }
            let code = (i % 7).to_string();
            let sp = spec(
                "sh",
                &["-c", "echo \"$0 $1\"; exit \"$1\"", &i.to_string(), &code],
            );
            let Spawned { output, exit, .. } = spawn(&sp, &reaper).unwrap();
            assert_eq!(read_all(output), format!("{i} {code}\n"));
            let state = tokio::time::timeout(Duration::from_secs(30), exit)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(state, ProcState::Exited { code: i % 7 });
        }
    }

    /// Without an environment of its own, the child gets the manager's, every variable of
    /// it and nothing else (it is handed over, not rebuilt).
    #[tokio::test]
    async fn without_an_environment_of_its_own_the_child_gets_the_managers() {
        let reaper = Reaper::start().unwrap();
        let s = spawn(&spec("cat", &["/proc/self/environ"]), &reaper).unwrap();
        let Spawned { output, exit, .. } = s;
        let mut seen = Vec::new();
        std::fs::File::from(output).read_to_end(&mut seen).unwrap();
        assert_eq!(exit.await.unwrap(), ProcState::Exited { code: 0 });
        let mut seen: Vec<&[u8]> = seen.split(|b| *b == 0).filter(|v| !v.is_empty()).collect();
        seen.sort();
        let ours: Vec<Vec<u8>> = std::env::vars_os()
            .map(|(k, v)| [k.as_bytes(), b"=", v.as_bytes()].concat())
            .collect();
        let mut ours: Vec<&[u8]> = ours.iter().map(Vec::as_slice).collect();
        ours.sort();
        assert!(!ours.is_empty());
        assert_eq!(seen, ours);
    }

    #[tokio::test]
    async fn a_script_without_a_shebang_runs_in_sh_as_with_execvp() {
        let reaper = Reaper::start().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("job");
        std::fs::write(&script, "echo from-script \"$1\"\nexit 4\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let s = spawn(&spec(script.to_str().unwrap(), &["arg"]), &reaper).unwrap();
        let Spawned { output, exit, .. } = s;
        assert_eq!(read_all(output), "from-script arg\n");
        assert_eq!(exit.await.unwrap(), ProcState::Exited { code: 4 });
    }

    /// A program found in a search path is tried there first next time; once it is gone
    /// from there, the whole search runs again.
    #[tokio::test]
    async fn a_program_found_in_the_path_is_found_again_after_it_moved() {
        let reaper = Reaper::start().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (early, late) = (dir.path().join("early"), dir.path().join("late"));
        std::fs::create_dir(&early).unwrap();
        std::fs::create_dir(&late).unwrap();
        let install = |at: &std::path::Path, says: &str| {
            let tool = at.join("pm-spawn-tool");
            std::fs::write(&tool, format!("#!/bin/sh\necho {says}\n")).unwrap();
            std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
            tool
        };
        let mut sp = spec("pm-spawn-tool", &[]);
        sp.env = Some(vec![(
            "PATH".into(),
            format!("{}:{}:/usr/bin:/bin", early.display(), late.display()).into(),
        )]);
        let run = |sp: &ProcessSpec| {
            let Spawned { output, .. } = spawn(sp, &reaper).unwrap();
            read_all(output)
        };
        let moved = install(&late, "late");
        assert_eq!(run(&sp), "late\n");
        assert_eq!(run(&sp), "late\n");
        std::fs::remove_file(moved).unwrap();
        install(&early, "early");
        assert_eq!(run(&sp), "early\n");
    }

    #[tokio::test]
    async fn what_cannot_be_run_is_one_clear_line() {
        let reaper = Reaper::start().unwrap();
        let err = spawn(&spec("no-such-program-here", &[]), &reaper)
            .err()
            .unwrap();
        assert_eq!(err, "cannot run no-such-program-here: command not found");
        let mut sp = spec("sleep", &["1"]);
        sp.cwd = Some("/no/such/dir".into());
        let err = spawn(&sp, &reaper).err().unwrap();
        assert_eq!(err, "working directory /no/such/dir does not exist");
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "data").unwrap();
        let err = spawn(&spec(plain.to_str().unwrap(), &[]), &reaper)
            .err()
            .unwrap();
        assert!(err.ends_with("permission denied"), "{err}");
    }

    /// The manager runs with its soft limit on open files at the hard limit; its children
    /// get back the limit it was started with.
    #[tokio::test]
    async fn the_child_gets_the_limit_on_open_files_pymanager_was_started_with() {
        let reaper = Reaper::start().unwrap();
        let get = || {
            let mut r = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes the struct it is given.
            assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
            r
        };
        // Below the hard limit, so that the raise shows (nothing else in these tests
        // raises it).
        let mut started = get();
        if started.rlim_cur >= started.rlim_max {
            started.rlim_cur = started.rlim_max - 1;
            // SAFETY: setrlimit reads the struct it is given.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &started) }, 0);
        }
        let raised = super::super::fd_limit::raise().unwrap();
        assert_eq!(raised, started.rlim_max);
        assert_eq!(get().rlim_cur, started.rlim_max);
        let s = spawn(&spec("sh", &["-c", "ulimit -Sn; ulimit -Hn"]), &reaper).unwrap();
        let Spawned { output, exit, .. } = s;
        assert_eq!(
            read_all(output),
            format!("{}\n{}\n", started.rlim_cur, started.rlim_max)
        );
        assert_eq!(exit.await.unwrap(), ProcState::Exited { code: 0 });
    }

    /// The parent-death signal is armed: when the thread that spawned the child ends (as
    /// when the manager is killed), the child is killed.
    #[tokio::test]
    async fn the_child_dies_with_the_thread_that_spawned_it() {
        let reaper = Reaper::start().unwrap();
        let r = reaper.clone();
        let s = std::thread::spawn(move || spawn(&spec("sleep", &["1000"]), &r).unwrap())
            .join()
            .unwrap();
        assert_eq!(ended(s).await, ProcState::Signaled { signal: 9 });
    }

    /// After the leader was reaped, its group is still reached through the pidfd: what
    /// the leader left behind is killed.
    #[tokio::test]
    async fn a_group_is_signalled_after_its_leader_was_reaped() {
        let reaper = Reaper::start().unwrap();
        let s = spawn(&spec("sh", &["-c", "sleep 1000 & echo $!"]), &reaper).unwrap();
        let Spawned {
            output,
            exit,
            leader,
            ..
        } = s;
        let mut line = String::new();
        let mut out = std::fs::File::from(output);
        let mut b = [0u8; 1];
        while out.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
            line.push(b[0] as char);
        }
        let sleeper: i32 = line.trim().parse().unwrap();
        assert_eq!(exit.await.unwrap(), ProcState::Exited { code: 0 });
        assert!(std::path::Path::new(&format!("/proc/{sleeper}")).exists());
        leader.signal_group(Signal::SIGKILL);
        // The sleeper now belongs to whoever adopted it; it must die (or be a zombie).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap_or_default();
            let state = stat
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next());
            if stat.is_empty() || state == Some(Some('Z')) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{sleeper} still alive: {stat}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
