//! References in a config's values, replaced once, here, so that the supervisor and the
//! runtime see plain values: `${ports.<process>.<name>}` (a port's number),
//! `${env.NAME}` and `${env.NAME:-default}` (pymanager's own environment).
//!
//! The keys the original knew (`arguments`, verifier arguments) are read as the original
//! wrote them: only these two forms are references there, so a shell's `$$` or `${HOME}`
//! in a command line is left alone, and `$${` writes a literal `${`. In `environment`
//! values (a key of pymanager's own) `$$` is a literal `$` and every `${…}` must be one of
//! the two forms.

use serde_json::Value;

use super::ports::PortTable;

/// How `$` is read in a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escapes {
    /// A key of the original's: only `${ports.…}` and `${env.…}` are references; `$${`
    /// is a literal `${`; any other `$` is kept.
    Legacy,
    /// `environment` values: `$$` is a literal `$`, and any other `${…}` is an error.
    Strict,
}

/// What references are resolved against.
pub struct Scope<'a> {
    /// Every process's ports.
    pub ports: &'a PortTable,
    /// Looks a variable up in pymanager's environment.
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Scope<'_> {
    /// `s` with its references replaced; the error says which reference and why, in one
    /// line, for the caller to put after the field path.
    pub fn expand(&self, s: &str, escapes: Escapes) -> Result<String, String> {
        if !s.contains('$') {
            return Ok(s.to_string());
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(after) = tail.strip_prefix("$${") {
                out.push_str("${");
                rest = after;
            } else if escapes == Escapes::Strict && tail.starts_with("$$") {
                out.push('$');
                rest = &tail[2..];
            } else if let Some(body) = tail.strip_prefix("${") {
                let Some(end) = body.find('}') else {
                    if escapes == Escapes::Strict || is_reference(body) {
                        return Err(format!(
                            "{} has no closing brace (write $$ for a literal $)",
                            shorten(tail)
                        ));
                    }
                    out.push_str(tail);
                    rest = "";
                    break;
                };
                let inner = &body[..end];
                match self.resolve(inner) {
                    Some(value) => out.push_str(&value?),
                    None if escapes == Escapes::Strict => {
                        return Err(format!(
                            "${{{inner}}} is not a reference: use ${{env.{inner}}} for a \
                             variable of pymanager's environment, ${{ports.<process>.<name>}} \
                             for a port, or $${{{inner}}} for the text itself"
                        ));
                    }
                    None => out.push_str(&tail[..end + 3]),
                }
                rest = &body[end + 1..];
            } else {
                out.push('$');
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The value of one reference's body (`ports.web.http`), or `None` if it is not a
    /// reference at all (`HOME`).
    fn resolve(&self, inner: &str) -> Option<Result<String, String>> {
        if let Some(path) = inner.strip_prefix("ports.") {
            return Some(self.port(inner, path).map(|n| n.to_string()));
        }
        if let Some(var) = inner.strip_prefix("env.") {
            let (name, default) = match var.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (var, None),
            };
            if name.is_empty() || name.contains(['=', '\0']) {
                return Some(Err(format!("${{{inner}}}: not a variable name")));
            }
            return Some(match ((self.env)(name), default) {
                (Some(v), _) => Ok(v),
                (None, Some(d)) => Ok(d.to_string()),
                (None, None) => Err(format!(
                    "${{{inner}}}: {name} is not set in pymanager's environment (give a \
                     default: ${{env.{name}:-value}})"
                )),
            });
        }
        if inner == "ports" || inner == "env" {
            return Some(Err(format!(
                "${{{inner}}} names nothing: write ${{ports.<process>.<name>}} or ${{env.NAME}}"
            )));
        }
        None
    }

    fn port(&self, inner: &str, path: &str) -> Result<u16, String> {
        let Some((process, name)) = path.rsplit_once('.') else {
            return Err(format!(
                "${{{inner}}}: write ${{ports.<process>.<name>}}, e.g. ${{ports.{path}.http}}"
            ));
        };
        let Some(ports) = self.ports.get(process) else {
            return Err(format!("${{{inner}}}: there is no process {process}"));
        };
        match ports.iter().find(|p| &*p.name == name) {
            Some(p) => Ok(p.number),
            None if ports.is_empty() => Err(format!(
                "${{{inner}}}: process {process} has no ports (give it \"ports\": {{\"{name}\": 0}})"
            )),
            None => Err(format!(
                "${{{inner}}}: process {process} has no port {name} (its ports: {})",
                ports
                    .iter()
                    .map(|p| &*p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// A verifier's arguments with the references in every string replaced. A string that
    /// is one port reference and nothing else becomes the number (`"port": "${ports.db.main}"`
    /// is the port a verifier expects). `at` is the field path of `args`.
    pub fn expand_json(&self, args: &Value, at: &str) -> Result<Value, (String, String)> {
        Ok(match args {
            Value::String(s) => {
                if let Some(inner) = s.strip_prefix("${ports.").and_then(|r| r.strip_suffix('}'))
                    && !inner.contains('}')
                {
                    let n = self
                        .port(&format!("ports.{inner}"), inner)
                        .map_err(|e| (at.to_string(), e))?;
                    Value::from(n)
                } else {
                    Value::String(
                        self.expand(s, Escapes::Legacy)
                            .map_err(|e| (at.to_string(), e))?,
                    )
                }
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.expand_json(v, &format!("{at}.{i}")))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        Ok::<_, (String, String)>((
                            k.clone(),
                            self.expand_json(v, &format!("{at}.{k}"))?,
                        ))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            other => other.clone(),
        })
    }
}

/// True when an unclosed `${` begins what would be a reference.
fn is_reference(body: &str) -> bool {
    body.starts_with("ports") || body.starts_with("env")
}

/// The start of `s`, for a message.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(30) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ports::Port;

    fn table() -> PortTable {
        let mut t = PortTable::new();
        t.insert(
            "web".into(),
            vec![
                Port {
                    name: "http".into(),
                    number: 8080,
                },
                Port {
                    name: "admin".into(),
                    number: 9000,
                },
            ],
        );
        t.insert(
            "db.main".into(),
            vec![Port {
                name: "pg".into(),
                number: 5432,
            }],
        );
        t.insert("plain".into(), vec![]);
        t
    }

    fn env(name: &str) -> Option<String> {
        (name == "HOME").then(|| "/home/u".to_string())
    }

    fn expand(s: &str, e: Escapes) -> Result<String, String> {
        let t = table();
        Scope {
            ports: &t,
            env: &env,
        }
        .expand(s, e)
    }

    #[test]
    fn references_are_replaced() {
        let l = Escapes::Legacy;
        assert_eq!(
            expand("--port=${ports.web.http}", l).unwrap(),
            "--port=8080"
        );
        assert_eq!(expand("${ports.db.main.pg}", l).unwrap(), "5432");
        assert_eq!(expand("${env.HOME}/x", l).unwrap(), "/home/u/x");
        assert_eq!(expand("${env.NOPE:-dflt}", l).unwrap(), "dflt");
        assert_eq!(expand("${env.HOME:-dflt}", l).unwrap(), "/home/u");
        assert_eq!(expand("${env.NOPE:-}", l).unwrap(), "");
    }

    #[test]
    fn legacy_values_keep_a_shells_dollars() {
        let l = Escapes::Legacy;
        for s in ["echo $$ > pid", "echo ${HOME}", "a$", "$1 $@", "${", "x${y"] {
            assert_eq!(expand(s, l).unwrap(), s, "{s}");
        }
        assert_eq!(
            expand("$${ports.web.http}", l).unwrap(),
            "${ports.web.http}"
        );
    }

    #[test]
    fn strict_values_escape_dollars_and_refuse_other_braces() {
        let s = Escapes::Strict;
        assert_eq!(expand("a$$b", s).unwrap(), "a$b");
        assert_eq!(expand("$$${env.HOME}", s).unwrap(), "$/home/u");
        assert_eq!(expand("cost: 5$", s).unwrap(), "cost: 5$");
        let e = expand("${HOME}", s).unwrap_err();
        assert!(e.contains("${env.HOME}"), "{e}");
        assert!(
            expand("${env.HOME", s)
                .unwrap_err()
                .contains("no closing brace")
        );
    }

    #[test]
    fn unknown_references_say_what_exists() {
        let l = Escapes::Legacy;
        let e = expand("${ports.web.htp}", l).unwrap_err();
        assert!(
            e.contains("has no port htp (its ports: http, admin)"),
            "{e}"
        );
        let e = expand("${ports.nope.http}", l).unwrap_err();
        assert!(e.contains("there is no process nope"), "{e}");
        let e = expand("${ports.plain.http}", l).unwrap_err();
        assert!(e.contains("has no ports"), "{e}");
        let e = expand("${ports.web}", l).unwrap_err();
        assert!(e.contains("${ports.<process>.<name>}"), "{e}");
        let e = expand("${env.NOPE}", l).unwrap_err();
        assert!(
            e.contains("NOPE is not set") && e.contains("${env.NOPE:-value}"),
            "{e}"
        );
        assert!(
            expand("x ${ports.web.http", l)
                .unwrap_err()
                .contains("no closing brace")
        );
    }

    #[test]
    fn a_lone_port_reference_in_arguments_is_a_number() {
        let t = table();
        let scope = Scope {
            ports: &t,
            env: &env,
        };
        let args = serde_json::json!({
            "port": "${ports.web.admin}",
            "url": "http://127.0.0.1:${ports.web.http}/",
            "headers": {"X": ["${env.HOME}"]},
            "n": 3
        });
        let out = scope
            .expand_json(&args, "processes.a.verifier.arguments")
            .unwrap();
        assert_eq!(
            out,
            serde_json::json!({
                "port": 9000,
                "url": "http://127.0.0.1:8080/",
                "headers": {"X": ["/home/u"]},
                "n": 3
            })
        );
        let (at, e) = scope
            .expand_json(&serde_json::json!({"h": {"u": "${ports.x.y}"}}), "v")
            .unwrap_err();
        assert_eq!(at, "v.h.u");
        assert!(e.contains("no process x"));
    }
}
