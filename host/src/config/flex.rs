//! Lenient readers for values the original accepted loosely (Python is forgiving about
//! `"10"` for a number, `1` for a flag or a string for a list), and the wording of parse
//! errors.

use std::time::Duration;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, de::Error as _};
use serde_json::Value;

/// A flag, read as the original read it (Python's truth value) where that is what a config
/// means: `true`/`false`, a number (0 is false), `null` (false), and the strings
/// `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0` and `""` (false). Other strings are
/// refused: Python took any non-empty string for true, `"false"` included, which no config
/// means.
pub(super) fn bool_like<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = Value::deserialize(d)?;
    truth(&v)
        .ok_or_else(|| D::Error::custom(format!("expected true or false, found {}", describe(&v))))
}

/// [`bool_like`] for a key that may be absent.
pub(super) fn opt_bool_like<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    bool_like(d).map(Some)
}

fn truth(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Null => Some(false),
        Value::Number(n) => Some(n.as_f64() != Some(0.0)),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Some(true),
            "false" | "no" | "off" | "0" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A duration in seconds: a number or a numeric string; `Err(n)` for a negative number,
/// which the original warned about and replaced by its default.
pub(super) fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Result<Duration, f64>, D::Error> {
    let v = Value::deserialize(d)?;
    let secs = match &v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match secs {
        Some(s) if (0.0..1e9).contains(&s) => Ok(Ok(Duration::from_secs_f64(s))),
        Some(s) if s < 0.0 => Ok(Err(s)),
        _ => Err(D::Error::custom(format!(
            "expected a number of seconds, found {}",
            describe(&v)
        ))),
    }
}

/// A duration in seconds that must not be negative (the keys the original did not have:
/// there is no default of the original's to fall back to).
pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    seconds(d)?.map_err(|n| {
        D::Error::custom(format!(
            "expected a number of seconds of 0 or more, found {n}"
        ))
    })
}

/// An optional [`duration`] (absent or `null`: none).
pub(super) fn optional_seconds<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    duration(v).map(Some).map_err(D::Error::custom)
}

/// A port: a number, or a string holding one (configs written from templates).
pub(super) fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let v = Value::deserialize(d)?;
    let n = match &v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    n.and_then(|n| u16::try_from(n).ok()).ok_or_else(|| {
        D::Error::custom(format!(
            "expected a port number (0-65535), found {}",
            describe(&v)
        ))
    })
}

/// `ports`: named ports, each a number (0 picks a free one at start-up) or a string holding
/// one; `null` for none.
pub(super) fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<IndexMap<String, u16>, D::Error> {
    let v = Value::deserialize(d)?;
    let Value::Object(map) = v else {
        if v.is_null() {
            return Ok(IndexMap::new());
        }
        return Err(D::Error::custom(format!(
            "expected an object of named ports, e.g. {{\"http\": 0}}, found {}",
            describe(&v)
        )));
    };
    map.into_iter()
        .map(|(name, v)| {
            port(v)
                .map(|n| (name.clone(), n))
                .map_err(|e| D::Error::custom(format!("{name}: {e}")))
        })
        .collect()
}

/// `environment`: variable names and their values; numbers and booleans are taken as their
/// text (`{"DEBUG": 1}`), `null` for none.
pub(super) fn environment<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IndexMap<String, String>, D::Error> {
    let v = Value::deserialize(d)?;
    let Value::Object(map) = v else {
        if v.is_null() {
            return Ok(IndexMap::new());
        }
        return Err(D::Error::custom(format!(
            "expected an object of variables, e.g. {{\"DEBUG\": \"1\"}}, found {}",
            describe(&v)
        )));
    };
    map.into_iter()
        .map(|(key, v)| match v {
            Value::String(s) => Ok((key, s)),
            Value::Number(n) => Ok((key, n.to_string())),
            Value::Bool(b) => Ok((key, b.to_string())),
            other => Err(D::Error::custom(format!(
                "{key}: expected a string, found {}",
                describe(&other)
            ))),
        })
        .collect()
}

/// `messages`: a list of message types; or, as the original tested `"x" in messages`, a
/// string, which then names every type written in it (`"process.exit"`,
/// `"process.exit verifier.fail"`); `null` for none.
pub(super) fn message_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => {
            let named: Vec<String> = super::MESSAGE_TYPES
                .iter()
                .filter(|t| s.contains(*t))
                .map(|t| t.to_string())
                .collect();
            // A string naming none is kept whole, so that it is warned about.
            Ok(if named.is_empty() { vec![s] } else { named })
        }
        other => string_list(other).map_err(D::Error::custom),
    }
}

/// A verifier's `arguments`: an object, or `null` for none.
pub(super) fn arguments<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Value::Object(Default::default())),
        v => Ok(v),
    }
}

/// A list of strings; numbers and booleans in it are taken as their text.
pub(super) fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    string_list(Value::deserialize(d)?).map_err(D::Error::custom)
}

fn string_list(v: Value) -> Result<Vec<String>, String> {
    let Value::Array(items) = v else {
        return Err(format!(
            "expected a list of strings, found {}",
            describe(&v)
        ));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(format!(
                "item {i}: expected a string, found {}",
                describe(&other)
            )),
        })
        .collect()
}

/// `default_shell`: `true` (the user's shell), or a shell's name or path.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged, expecting = "expected true or the name of a shell")]
pub enum StringOrBool {
    /// `true` (or `false`, treated alike: there must be some shell).
    Bool(bool),
    /// A shell such as `bash` or `/bin/zsh`.
    String(String),
}

/// A process's `shell` option.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ShellChoice {
    /// No shell: the executable is run directly (the default).
    #[default]
    None,
    /// `true`: the `default_shell`.
    Default,
    /// A named shell.
    Named(String),
}

impl<'de> Deserialize<'de> for ShellChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(false) | Value::Null => Ok(ShellChoice::None),
            Value::Bool(true) => Ok(ShellChoice::Default),
            Value::String(s) if s.trim().is_empty() => Err(D::Error::custom(
                "expected true, false or the name of a shell, found an empty string",
            )),
            Value::String(s) => Ok(ShellChoice::Named(s)),
            other => Err(D::Error::custom(format!(
                "expected true, false or the name of a shell, found {}",
                describe(&other)
            ))),
        }
    }
}

/// A JSON value's kind and, when short, the value, for error messages.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.len() <= 40 => format!("the string {s:?}"),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// The field path as a user reads it; the root is `(top level)`.
pub(super) fn path_of(p: &serde_path_to_error::Path) -> String {
    let s = p.to_string();
    if s == "." || s.is_empty() {
        "(top level)".into()
    } else {
        s
    }
}

/// A serde message in the words of a config file rather than of Rust types:
/// `invalid type: string "x", expected u16` becomes `expected u16, found string "x"`.
pub(super) fn clean(e: &impl std::fmt::Display) -> String {
    let s = e.to_string().replace('`', "\"");
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = s.strip_prefix(prefix)
            && let Some((found, expected)) = rest.split_once(", expected ")
        {
            let found = found
                .replace("map", "an object")
                .replace("sequence", "a list");
            let expected = expected
                .replace("u16", "a port number (0-65535)")
                .replace("u32", "a whole number")
                .replace("u64", "a whole number")
                .replace("a sequence", "a list")
                .replace("struct ", "an object ");
            return format!("expected {expected}, found {found}");
        }
    }
    s
}

/// The reason part of a JSON syntax error, without serde's own position suffix.
pub(super) fn json_reason(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
