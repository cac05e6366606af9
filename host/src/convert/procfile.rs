//! Procfiles (foreman, honcho): `name: command` lines, each run with `sh -c`.
//!
//! `import`: each line a process; `PORT` as foreman gives it (5000 for the first process,
//! 100 more for each next one, here through `ports`), and the `.env` beside the Procfile as
//! `environment` — a `.env` is `KEY=value` lines, not a shell script (nothing exports its
//! variables), so it cannot be an `environment_file`, which pymanager sources. `export`:
//! the commands, and a loss for everything else.

use serde_json::{Map, Value, json};

use super::Losses;
use super::source::Source;

/// The config for a Procfile's text, with the text of the `.env` beside it, if any.
pub fn import(
    text: &str,
    dotenv: Option<&str>,
    port_base: u16,
    losses: &mut Losses,
) -> Result<Value, String> {
    let env: Vec<(String, String)> = dotenv
        .map(|t| super::dotenv::parse(t, ".env", losses))
        .unwrap_or_default();
    let mut processes = Map::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, command)) = line.split_once(':') else {
            return Err(format!("line {}: expected \"name: command\"", n + 1));
        };
        let name = name.trim();
        let command = command.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "line {}: {name:?} is not a process name (letters, digits, _ and -)",
                n + 1
            ));
        }
        if command.is_empty() {
            return Err(format!("line {}: {name} has no command", n + 1));
        }
        if processes.contains_key(name) {
            return Err(format!("line {}: {name} is named twice", n + 1));
        }
        let port = u32::from(port_base) + 100 * processes.len() as u32;
        let port = u16::try_from(port).map_err(|_| {
            format!(
                "line {}: {name}'s PORT would be {port}, past 65535 (--port-base)",
                n + 1
            )
        })?;
        let mut p = json!({
            "executable": "sh",
            "arguments": ["-c", command],
            "ports": {"port": port}
        });
        if !env.is_empty() {
            let vars: Map<String, Value> = env
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.replace('$', "$$"))))
                .collect();
            p["environment"] = Value::Object(vars);
        }
        processes.insert(name.to_string(), p);
    }
    if processes.is_empty() {
        return Err("no processes (expected \"name: command\" lines)".into());
    }
    // Foreman starts every process at once and stops all when one ends.
    Ok(json!({"startup": "parallel", "processes": processes}))
}

/// A Procfile for `src`: each process's command line; what a Procfile cannot say is a loss.
pub fn export(src: &Source, losses: &mut Losses) -> String {
    let mut out = String::new();
    for p in &src.processes {
        let at = format!("processes.{}", p.name);
        out.push_str(&format!("{}: {}\n", p.name, command_line(&p.argv)));
        let own_port = p.ports.first().map(|(_, n)| n.to_string());
        let lost_env: Vec<&String> = p
            .env
            .iter()
            .filter(|(k, v)| {
                !(k.starts_with("PYMANAGER_PORT_")
                    || (k.as_str() == "PORT" && Some(*v) == own_port.as_ref()))
            })
            .map(|(k, _)| k)
            .collect();
        if !lost_env.is_empty() {
            losses.push(
                format!("{at}.environment"),
                format!(
                    "a Procfile has no environment (put {} in .env)",
                    lost_env
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if !p.ports.is_empty() {
            losses.push(
                format!("{at}.ports"),
                "a Procfile has no ports: foreman gives PORT from its own --port",
            );
        }
        let mut lost = Vec::new();
        if p.workdir.is_some() {
            lost.push("options.working_directory");
        }
        if p.verifier.is_some() {
            lost.push("verifier");
        }
        if p.liveness.is_some() {
            lost.push("liveness");
        }
        if !p.depends_on.is_empty() {
            lost.push("depends_on");
        }
        if p.restart.policy != crate::config::Policy::Never {
            lost.push("restart");
        }
        if p.stop_signal != "SIGTERM" {
            lost.push("stop_signal");
        }
        for key in lost {
            losses.push(format!("{at}.{key}"), "a Procfile cannot express it");
        }
    }
    out
}

/// The line a shell would run for `argv`: `sh -c X` is `X` itself.
pub fn command_line(argv: &[String]) -> String {
    if argv.len() == 3
        && argv[1] == "-c"
        && matches!(argv[0].rsplit('/').next(), Some("sh" | "bash"))
    {
        return argv[2].clone();
    }
    argv.iter()
        .map(|a| shell_word(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `a` as one word for `sh`.
fn shell_word(a: &str) -> String {
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c))
    {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}
