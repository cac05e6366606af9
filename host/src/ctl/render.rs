//! What `ctl` prints for people: one line per process, an aligned table, the status line.

use crate::api::v1::{Outcome, Process, State, Status};

/// `pid 123`, `exit code 3`, `SIGTERM`, `-`: what the process is doing.
fn pid_or_code(p: &Process) -> String {
    match (p.state, p.pid, p.exit_code, p.signal) {
        (State::Running, Some(pid), _, _) => format!("pid {pid}"),
        (State::Exited, _, Some(code), _) => format!("exit code {code}"),
        (State::Signaled, _, _, Some(sig)) => signal_name(sig),
        _ => "-".to_string(),
    }
}

fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

/// `web (1): running, pid 123`, with the error if there is one.
pub fn one_line(p: &Process) -> String {
    let mut s = format!(
        "{} ({}): {}, {}",
        p.name,
        p.id,
        p.state.as_str(),
        pid_or_code(p)
    );
    if let Some(err) = &p.error {
        s.push_str(&format!(" ({err})"));
    }
    s
}

/// `running (1 of 2 processes running)`.
pub fn status_line(s: &Status) -> String {
    format!(
        "{} ({} of {} processes running)",
        s.status.as_str(),
        s.running,
        s.total
    )
}

/// The lifecycle word, or what a process held back by the start-up still waits for
/// (`waiting for db: verified, migrate: exited_ok`).
fn lifecycle_cell(p: &Process) -> String {
    match &p.waiting_for {
        Some(waits) if !waits.is_empty() => {
            let waits: Vec<String> = waits
                .iter()
                .map(|(name, condition)| format!("{name}: {condition}"))
                .collect();
            format!("waiting for {}", waits.join(", "))
        }
        _ => p.lifecycle.as_str().to_string(),
    }
}

/// The verifier's outcome, with its message while it runs (the last failed attempt:
/// `running: attempt 3: http://127.0.0.1:8000/ answered 404`) or once it failed.
fn verifier_cell(p: &Process) -> String {
    let Some(v) = &p.verifier else {
        return "-".to_string();
    };
    match (&v.message, v.outcome) {
        (Some(m), Outcome::Running | Outcome::Failed) => {
            format!("{}: {}", v.outcome.as_str(), crate::config::one_line(m))
        }
        _ => v.outcome.as_str().to_string(),
    }
}

/// Every named port of these processes, one per line: process, port, number.
pub fn ports(processes: &[&Process]) -> String {
    let rows: Vec<[String; 3]> = processes
        .iter()
        .flat_map(|p| {
            p.ports
                .iter()
                .map(|(name, n)| [p.name.to_string(), name.to_string(), n.to_string()])
        })
        .collect();
    if rows.is_empty() {
        return "no ports".into();
    }
    let w0 = rows
        .iter()
        .map(|r| r[0].chars().count())
        .max()
        .unwrap_or(0)
        .max(7);
    let w1 = rows
        .iter()
        .map(|r| r[1].chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!("{:<w0$}  {:<w1$}  NUMBER", "PROCESS", "PORT");
    for [process, port, number] in rows {
        out.push_str(&format!("\n{process:<w0$}  {port:<w1$}  {number}"));
    }
    out
}

/// The process list as an aligned table.
pub fn table(processes: &[Process]) -> String {
    let header = [
        "ID",
        "NAME",
        "STATE",
        "PID/CODE",
        "LIFECYCLE",
        "RESTARTS",
        "VERIFIER",
        "COMMAND",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for p in processes {
        let pid_code = match (p.state, p.pid, p.exit_code) {
            (State::Running, Some(pid), _) => pid.to_string(),
            (State::Exited, _, Some(code)) => code.to_string(),
            _ => pid_or_code(p),
        };
        rows.push(vec![
            p.id.to_string(),
            p.name.to_string(),
            p.state.as_str().to_string(),
            pid_code,
            lifecycle_cell(p),
            p.restarts.to_string(),
            verifier_cell(p),
            p.command.to_string(),
        ]);
    }
    let columns = header.len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == columns {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.pop();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(v: serde_json::Value) -> Process<'static> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn table_is_aligned() {
        let rows = vec![
            process(
                serde_json::json!({"id": 1, "name": "web", "command": "python3 -m http.server",
                "state": "running", "pid": 42, "exit_code": null, "signal": null,
                "status": "running", "lifecycle": "ready", "restarts": 0, "started_at": null,
                "verifier": null, "error": null}),
            ),
            process(
                serde_json::json!({"id": 2, "name": "migrations", "command": "sh -c x",
                "state": "signaled", "pid": null, "exit_code": null, "signal": 15,
                "status": "terminated", "lifecycle": "stopped", "restarts": 1, "started_at": null,
                "verifier": {"type": "exited", "outcome": "passed", "message": null},
                "error": null}),
            ),
        ];
        assert_eq!(
            table(&rows),
            "ID  NAME        STATE     PID/CODE  LIFECYCLE  RESTARTS  VERIFIER  COMMAND\n\
             1   web         running   42        ready      0         -         python3 -m http.server\n\
             2   migrations  signaled  SIGTERM   stopped    1         passed    sh -c x"
        );
        assert_eq!(one_line(&rows[1]), "migrations (2): signaled, SIGTERM");
    }

    #[test]
    fn a_verifier_under_way_shows_its_last_failed_attempt() {
        let mut p = process(serde_json::json!({"id": 1, "name": "web", "command": "web",
            "state": "running", "pid": 42, "exit_code": null, "signal": null,
            "status": "running", "lifecycle": "verifying", "restarts": 0, "started_at": null,
            "verifier": {"type": "http", "outcome": "running",
                         "message": "attempt 3: http://127.0.0.1:8000/ answered 404"},
            "error": null}));
        assert_eq!(
            verifier_cell(&p),
            "running: attempt 3: http://127.0.0.1:8000/ answered 404"
        );
        let v = p.verifier.as_mut().unwrap();
        v.outcome = Outcome::Passed;
        v.message = None;
        assert_eq!(verifier_cell(&p), "passed");
    }

    #[test]
    fn a_process_held_back_shows_what_it_waits_for() {
        let p = process(serde_json::json!({"id": 3, "name": "api", "command": "api",
            "state": "not-started", "pid": null, "exit_code": null, "signal": null,
            "status": "terminated", "lifecycle": "pending", "restarts": 0, "started_at": null,
            "verifier": null, "error": null,
            "waiting_for": {"db": "verified", "migrate": "exited_ok"}}));
        assert_eq!(
            lifecycle_cell(&p),
            "waiting for db: verified, migrate: exited_ok"
        );
        let mut ready = p.clone();
        ready.waiting_for = None;
        ready.lifecycle = crate::api::v1::Lifecycle::Ready;
        assert_eq!(lifecycle_cell(&ready), "ready");
    }
}
