//! `pymanager export systemd`: a service unit per process and a target that groups them.
//! `After=` means what `depends_on` means: a verifier runs as `ExecStartPost=` (through
//! `pymanager verify --pid $MAINPID`), so a unit counts as started once it is verified; a
//! process that others wait to see finish is `Type=oneshot`.

use std::path::Path;

use serde_json::Value;

use super::probe::{Style, probe};
use super::source::{CheckKind, Process, Source};
use super::{Losses, common};
use crate::config::{Condition, Policy};

/// What the command line adds.
pub struct Options<'a> {
    /// Put before every unit's name.
    pub prefix: &'a str,
    /// The target's name (without `.target`, before the prefix): the config's name.
    pub target: &'a str,
    /// The pymanager binary the checks run with (an absolute path).
    pub pymanager: &'a str,
    /// Where pymanager would be started: relative paths are resolved against it.
    pub launch_dir: &'a Path,
    /// The config's directory (absolute): module paths are relative to it.
    pub config_dir: &'a Path,
    /// The config file's name, for the header.
    pub from: &'a str,
}

/// The unit files, by name.
pub fn export(src: &Source, opts: &Options, losses: &mut Losses) -> Vec<(String, String)> {
    let target = format!("{}{}.target", opts.prefix, unit_part(opts.target));
    let mut files = Vec::new();
    let mut names = Vec::new();
    for p in &src.processes {
        let name = format!("{}{}.service", opts.prefix, unit_part(&p.name));
        files.push((name.clone(), unit(p, src, opts, &target, losses)));
        names.push(name);
    }
    let group = format!(
        "# Written by `pymanager export systemd` from {}.\n[Unit]\nDescription=The processes of {}\nWants={}\n\n[Install]\nWantedBy=multi-user.target\n",
        opts.from,
        opts.from,
        names.join(" ")
    );
    files.push((target, group));
    files
}

/// A process name as part of a unit name: what systemd allows kept, the rest `_`.
fn unit_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn unit(p: &Process, src: &Source, opts: &Options, target: &str, losses: &mut Losses) -> String {
    let at = format!("processes.{}", p.name);
    let unit_of = |n: &str| format!("{}{}.service", opts.prefix, unit_part(n));
    let mut u = vec![
        format!(
            "# Written by `pymanager export systemd` from {}.",
            opts.from
        ),
        "[Unit]".to_string(),
        format!(
            "Description=pymanager process {}: {}",
            p.name,
            escape_spec(&summary(&p.argv))
        ),
        format!("PartOf={target}"),
    ];
    for (dep, cond) in &p.depends_on {
        let Some(d) = src.processes.iter().find(|q| &q.name == dep) else {
            continue;
        };
        u.push(format!("After={}", unit_of(dep)));
        match cond {
            Condition::Exited => u.push(format!("Wants={}", unit_of(dep))),
            _ => u.push(format!("Requires={}", unit_of(dep))),
        }
        if *cond == Condition::Started && d.verifier.is_some() {
            losses.push(
                format!("{at}.depends_on.{dep}"),
                format!(
                    "started: systemd's After= waits for {dep}'s verifier too (its ExecStartPost=)"
                ),
            );
        }
    }
    let r = &p.restart;
    if r.policy != Policy::Never {
        // max_restarts in a row, approximately: that many starts within a window long enough
        // for each of them to back off.
        let window = (r.max_backoff.as_secs() + 1) * u64::from(r.max_restarts + 1);
        u.push(format!("StartLimitIntervalSec={window}s"));
        u.push(format!("StartLimitBurst={}", r.max_restarts + 1));
        losses.push(
            format!("{at}.restart"),
            "systemd waits RestartSec= before every restart (no doubling up to max_backoff), and counts max_restarts within StartLimitIntervalSec=",
        );
    }
    u.push(String::new());
    u.push("[Service]".into());
    let oneshot = common::runs_to_its_end(p, src);
    if oneshot {
        u.push("Type=oneshot".into());
        u.push("RemainAfterExit=yes".into());
    } else {
        u.push("Type=exec".into());
    }
    let cwd = p.workdir.as_ref().map(|d| opts.launch_dir.join(d));
    if let Some(dir) = &cwd {
        u.push(format!(
            "WorkingDirectory={}",
            quote(&dir.to_string_lossy())
        ));
    }
    for (k, v) in &p.env {
        if v.contains('\n') {
            losses.push(
                format!("{at}.environment.{k}"),
                "a value with a newline cannot be an Environment= line; left out",
            );
            continue;
        }
        u.push(format!("Environment={}", quote(&format!("{k}={v}"))));
    }
    let mut argv = p.argv.clone();
    if argv[0].contains('/') && !argv[0].starts_with('/') {
        let base = cwd.as_deref().unwrap_or(opts.launch_dir);
        argv[0] = base.join(&argv[0]).to_string_lossy().into_owned();
    }
    u.push(format!("ExecStart={}", command_line(&argv)));
    if let Some(v) = &p.verifier {
        match &v.kind {
            CheckKind::Builtin(b) if b.short == "exited" => {
                let code = v
                    .args
                    .get("expect_code")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if code != 0 {
                    u.push(format!("SuccessExitStatus={code}"));
                }
                if !oneshot {
                    losses.push(&v.at, "exited: only a Type=oneshot unit is waited for to its end; nothing waits for this one");
                }
            }
            CheckKind::Builtin(b) if b.short == "output" && p.redirect_output.is_some() => {
                let log = opts
                    .launch_dir
                    .join(p.redirect_output.as_ref().expect("checked"));
                let log = log.to_string_lossy().into_owned();
                let extra = ["--pid", "$MAINPID", "--log", log.as_str()];
                let style = Style {
                    pymanager: opts.pymanager,
                    exec_plain: false,
                    attempt: None,
                    extra: &extra,
                };
                let mut argv = probe_argv(v, &style);
                argv[0] = opts.pymanager.to_string();
                u.push(format!(
                    "ExecStartPost={}",
                    command_line_with_mainpid(&argv)
                ));
                u.push(format!("TimeoutStartSec={}", start_timeout(v)));
            }
            _ => {
                let extra = ["--pid", "$MAINPID"];
                let style = Style {
                    pymanager: opts.pymanager,
                    exec_plain: false,
                    attempt: None,
                    extra: &extra,
                };
                // A module's path is relative to the config; the unit runs anywhere.
                let mut v = v.clone();
                if let CheckKind::Module { path, .. } = &mut v.kind {
                    *path = opts.config_dir.join(&*path);
                }
                match probe(&v, &v.args, &style) {
                    Ok(probe) => {
                        u.push(format!("ExecStartPost={}", command_line_with_mainpid(&probe.argv())));
                        u.push(format!("TimeoutStartSec={}", start_timeout(&v)));
                    }
                    Err(why) => losses.push(
                        &v.at,
                        format!("{why}; under systemd it goes to the journal (redirect_output makes it a file that can be checked): not checked"),
                    ),
                }
            }
        }
    }
    if let Some((l, ..)) = &p.liveness {
        losses.push(
            &l.at,
            "systemd has no health checks: the liveness check is not kept",
        );
    }
    let restart = match r.policy {
        Policy::Never => "no",
        Policy::OnFailure => "on-failure",
        Policy::Always if oneshot => {
            losses.push(
                format!("{at}.restart.policy"),
                "a Type=oneshot unit cannot restart always: on-failure",
            );
            "on-failure"
        }
        Policy::Always => "always",
    };
    u.push(format!("Restart={restart}"));
    if r.policy != Policy::Never {
        u.push(format!("RestartSec={}", seconds(r.backoff)));
    }
    if p.stop_signal != "SIGTERM" {
        u.push(format!("KillSignal={}", p.stop_signal));
    }
    u.push(format!("TimeoutStopSec={}", seconds(p.grace)));
    if p.suppress_output {
        u.push("StandardOutput=null".into());
        u.push("StandardError=null".into());
    } else if let Some(file) = &p.redirect_output {
        u.push(format!(
            "StandardOutput=truncate:{}",
            opts.launch_dir.join(file).to_string_lossy()
        ));
        u.push("StandardError=inherit".into());
    }
    u.push(String::new());
    u.push("[Install]".into());
    u.push(format!("WantedBy={target}"));
    let mut text = u.join("\n");
    text.push('\n');
    text
}

/// The command on one line, cut at 72 characters: a unit's description.
fn summary(argv: &[String]) -> String {
    let line = argv.join(" ").replace(['\n', '\r', '\t'], " ");
    match line.char_indices().nth(72) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line,
    }
}

fn probe_argv(v: &super::source::Check, style: &Style) -> Vec<String> {
    probe(v, &v.args, style)
        .map(|p| p.argv())
        .unwrap_or_default()
}

/// `TimeoutStartSec=`: the verifier's own time-out and a margin, or none for `null`.
fn start_timeout(v: &super::source::Check) -> String {
    match v.timeout() {
        Some(t) => format!("{}s", common::whole_seconds(t, 0) + 30),
        None => "infinity".into(),
    }
}

/// `10`, `0.5`: seconds as systemd reads them (with a unit).
fn seconds(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else {
        format!("{ms}ms")
    }
}

/// An argument list as an `Exec*=` line: each word quoted where needed, `$` and `%`
/// escaped so that systemd passes them as written.
pub fn command_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| quote(&a.replace('$', "$$")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Like [`command_line`], but `$MAINPID` stays the variable systemd fills in.
fn command_line_with_mainpid(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a == "$MAINPID" {
                a.clone()
            } else {
                quote(&a.replace('$', "$$"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A word in double quotes when it holds anything but plain characters; `%` doubled.
fn quote(s: &str) -> String {
    let s = escape_spec(s);
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@$%".contains(c))
    {
        return s;
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `%` is systemd's specifier mark.
fn escape_spec(s: &str) -> String {
    s.replace('%', "%%")
}
