//! Lenient readers for values the original accepted loosely (Python is forgiving about
//! `"10"` for a number or `1` for a flag), and the wording of parse errors.

use std::time::Duration;

use serde::{Deserialize, Deserializer, de::Error as _};
use serde_json::Value;

/// A flag: `true`/`false`, `0`/`1`, or the strings `"true"`/`"false"`.
pub(super) fn bool_like<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
        Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        Value::Null => Ok(false),
        other => Err(D::Error::custom(format!(
            "expected true or false, found {}",
            describe(&other)
        ))),
    }
}

/// A duration in seconds: a non-negative number or a numeric string.
pub(super) fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let v = Value::deserialize(d)?;
    let secs = match &v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match secs {
        Some(s) if (0.0..1e9).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(D::Error::custom(format!(
            "expected a number of seconds, found {}",
            describe(&v)
        ))),
    }
}

/// An optional duration in seconds (absent or `null`: none).
pub(super) fn optional_seconds<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    seconds(v).map(Some).map_err(D::Error::custom)
}

/// A list of strings; numbers and booleans in it are taken as their text.
pub(super) fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Value::deserialize(d)?;
    let Value::Array(items) = v else {
        return Err(D::Error::custom(format!(
            "expected a list of strings, found {}",
            describe(&v)
        )));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(D::Error::custom(format!(
                "item {i}: expected a string, found {}",
                describe(&other)
            ))),
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
pub(super) fn describe(v: &Value) -> String {
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
