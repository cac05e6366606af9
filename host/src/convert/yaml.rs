//! YAML in and out. Reading goes through `saphyr` (a maintained, pure-Rust YAML 1.2 parser)
//! into a JSON value, so that the imports deserialize with the same field paths and
//! unknown-key warnings as `pymanager.json` itself. Writing is this small emitter: the
//! documents written are trees of maps, lists, strings, numbers and booleans, and it quotes
//! every string that a YAML 1.1 reader (PyYAML, docker compose, kubectl) could take for
//! something else (`yes`, `on`, `1:30`, `0x1F`), which no general emitter promises.

use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::{Map, Value};

/// Parses one YAML document into JSON. Keys that are not strings are written as strings;
/// `<<` merge keys are applied; the error is one line with the position.
pub fn parse(text: &str) -> Result<Value, String> {
    let docs = Yaml::load_from_str(text).map_err(|e| e.to_string())?;
    match docs.len() {
        0 => Ok(Value::Null),
        1 => to_json(&docs[0]),
        n => Err(format!(
            "{n} YAML documents in one file; expected one (no '---' between two)"
        )),
    }
}

fn to_json(y: &Yaml) -> Result<Value, String> {
    Ok(match y {
        Yaml::Value(s) => scalar(s),
        Yaml::Representation(text, ..) => Value::String(text.to_string()),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Mapping(map) => {
            let mut out = Map::new();
            let mut merged = Vec::new();
            for (k, v) in map {
                let key = match to_json(k)? {
                    Value::String(s) => s,
                    Value::Null => "null".into(),
                    other => other.to_string(),
                };
                if key == "<<" {
                    merged.push(to_json(v)?);
                    continue;
                }
                out.insert(key, to_json(v)?);
            }
            // `<<: *base` (or a list of them): keys written here win over merged ones.
            for m in merged {
                let maps = match m {
                    Value::Array(list) => list,
                    one => vec![one],
                };
                for m in maps {
                    let Value::Object(m) = m else {
                        return Err("'<<' must merge a mapping".into());
                    };
                    for (k, v) in m {
                        out.entry(k).or_insert(v);
                    }
                }
            }
            Value::Object(out)
        }
        Yaml::Tagged(_, inner) => to_json(inner)?,
        Yaml::Alias(_) => return Err("an alias that names no anchor".into()),
        Yaml::BadValue => return Err("a value that is not valid YAML".into()),
    })
}

fn scalar(s: &Scalar) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::from(*i),
        Scalar::FloatingPoint(f) => serde_json::Number::from_f64(f.into_inner())
            .map_or_else(|| Value::String(f.to_string()), Value::Number),
        Scalar::String(s) => Value::String(s.to_string()),
    }
}

/// Writes `value` as a YAML document in block style, after `header` (each line a comment).
pub fn emit(value: &Value, header: &[String]) -> String {
    let mut out = String::new();
    for line in header {
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
    }
    block(value, 0, &mut out);
    out
}

/// Writes several documents, separated by `---`.
pub fn emit_all(values: &[Value], header: &[String]) -> String {
    let mut out = emit(&Value::Null, header);
    out.truncate(out.len() - "null\n".len());
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        block(v, 0, &mut out);
    }
    out
}

/// `value` at `indent`, the caller having written nothing yet on its line.
fn block(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    pad(indent, out);
                }
                out.push_str(&key(k));
                out.push(':');
                nested(v, indent, out);
            }
        }
        Value::Array(list) if !list.is_empty() => {
            for (i, v) in list.iter().enumerate() {
                if i > 0 {
                    pad(indent, out);
                }
                out.push_str("- ");
                match v {
                    // A map in a list starts on the dash's line, its keys aligned after it.
                    Value::Object(m) if !m.is_empty() => block(v, indent + 2, out),
                    Value::Array(l) if !l.is_empty() => {
                        out.push('\n');
                        pad(indent + 2, out);
                        block(v, indent + 2, out);
                    }
                    _ => {
                        out.push_str(&inline(v));
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

/// The value of a key: on the same line if it is a scalar, else on the next lines.
fn nested(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            pad(indent + 2, out);
            block(v, indent + 2, out);
        }
        Value::Array(l) if !l.is_empty() => {
            out.push('\n');
            pad(indent, out);
            block(v, indent, out);
        }
        _ => {
            out.push(' ');
            out.push_str(&inline(v));
            out.push('\n');
        }
    }
}

fn pad(indent: usize, out: &mut String) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn inline(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn key(k: &str) -> String {
    string(k)
}

/// A string plain when no YAML 1.1 or 1.2 reader can take it for anything but that string;
/// otherwise double-quoted (JSON's escapes are YAML's).
fn string(s: &str) -> String {
    if plain_is_safe(s) {
        s.to_string()
    } else {
        Value::String(s.to_string()).to_string()
    }
}

fn plain_is_safe(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~",
    ];
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '/' || first == '_') {
        return false;
    }
    if WORDS.contains(&s.to_ascii_lowercase().as_str()) {
        return false;
    }
    // Letters, digits and a few marks that mean nothing in a plain scalar (`:` only where
    // no space follows it, which never happens here: spaces are not allowed at all).
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':' | '@'))
        && !s.ends_with(':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ambiguous_strings_are_quoted_and_the_rest_plain() {
        for (s, want) in [
            ("web", "web"),
            ("python3", "python3"),
            ("/usr/bin/env", "/usr/bin/env"),
            ("example/api:1.2", "example/api:1.2"),
            ("yes", "\"yes\""),
            ("On", "\"On\""),
            ("8080", "\"8080\""),
            ("1:30", "\"1:30\""),
            ("0x1F", "\"0x1F\""),
            ("", "\"\""),
            ("a b", "\"a b\""),
            ("-c", "\"-c\""),
            ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/"),
            ("say \"hi\"\n", "\"say \\\"hi\\\"\\n\""),
            ("key:", "\"key:\""),
        ] {
            assert_eq!(string(s), want, "{s:?}");
        }
    }

    #[test]
    fn what_is_emitted_reads_back_as_it_was() {
        let v = json!({
            "services": {
                "web": {
                    "command": ["python3", "-m", "http.server", "8000"],
                    "environment": {"A": "yes", "B": "1:30", "EMPTY": ""},
                    "healthcheck": {"test": ["CMD", "true"], "retries": 3, "interval": "1s"},
                    "list_of_maps": [{"a": 1, "b": [1, 2]}, {"c": {"d": null}}],
                    "nested_lists": [[1, 2], []],
                    "empty": {},
                    "flag": true,
                    "ratio": 0.5
                }
            }
        });
        let text = emit(&v, &["made by a test".into(), String::new()]);
        assert!(
            text.starts_with("# made by a test\n#\nservices:\n  web:\n"),
            "{text}"
        );
        assert_eq!(parse(&text).unwrap(), v, "{text}");
        let docs = emit_all(&[json!({"a": 1}), json!({"b": [2]})], &["two".into()]);
        assert_eq!(docs, "# two\na: 1\n---\nb:\n- 2\n");
    }

    #[test]
    fn anchors_merges_and_errors() {
        let v = parse("base: &b {x: 1, y: 2}\nthis:\n  <<: *b\n  y: 3\n1: one\n").unwrap();
        assert_eq!(
            v,
            json!({"base": {"x": 1, "y": 2}, "this": {"y": 3, "x": 1}, "1": "one"})
        );
        assert!(
            parse("a: [1, 2\n").unwrap_err().contains("line"),
            "one line with where"
        );
        assert!(
            parse("a: 1\n---\nb: 2\n")
                .unwrap_err()
                .contains("2 YAML documents")
        );
    }
}
