//! A verifier's JSON arguments: parsed into the verifier's own type, with errors that name
//! the field, and keys the type does not know reported (not refused), as the original
//! pymanager ignored them.

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};

/// Arguments parsed, and the keys the verifier does not take.
pub(crate) struct Parsed<T> {
    pub args: T,
    /// Paths of keys nobody read (`description`, `headers.x.y`), in document order.
    pub unknown: Vec<String>,
}

/// Parses a verifier's JSON arguments into `T`; the error names the field first, e.g.
/// `url: missing field`, `timeout: expected a number of seconds, got string "x"`. Keys that
/// `T` does not take are ignored here; the export macro reports them while validating.
pub fn parse_args<T: DeserializeOwned>(json: &str) -> Result<T, String> {
    parse(json).map(|p| p.args)
}

pub(crate) fn parse<T: DeserializeOwned>(json: &str) -> Result<Parsed<T>, String> {
    let value: serde_json::Value = if json.trim().is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        serde_json::from_str(json).map_err(|e| format!("arguments are not valid JSON: {e}"))?
    };
    if !value.is_object() {
        return Err("arguments: expected an object".into());
    }
    let mut unknown = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(value, &mut track);
    let args = serde_ignored::deserialize(de, |path| unknown.push(path.to_string()))
        .map_err(|e| describe_error(&track.path().to_string(), &e.to_string()))?;
    Ok(Parsed { args, unknown })
}

/// The warning for a key the verifier does not take: `description: unknown argument,
/// ignored (expected one of url, timeout)`. The field comes first, so that the host can
/// place it under the process's `verifier.arguments`.
pub(crate) fn unknown_warning<T: DeserializeOwned>(path: &str) -> String {
    match field_names::<T>() {
        Some(fields) if !fields.is_empty() && !path.contains('.') => format!(
            "{path}: unknown argument, ignored (expected one of {})",
            fields.join(", ")
        ),
        _ => format!("{path}: unknown argument, ignored"),
    }
}

/// Rewrites serde's messages into `field: what is wrong`.
pub(crate) fn describe_error(path: &str, msg: &str) -> String {
    let quoted = |m: &str| -> Option<String> {
        let start = m.find('`')? + 1;
        let len = m[start..].find('`')?;
        Some(m[start..start + len].to_string())
    };
    let field = |name: String| {
        if path == "." || path.is_empty() {
            name
        } else {
            format!("{path}.{name}")
        }
    };
    if msg.starts_with("missing field")
        && let Some(name) = quoted(msg)
    {
        return format!("{}: missing field", field(name));
    }
    if msg.starts_with("unknown field")
        && let Some(name) = quoted(msg)
    {
        // Only a verifier that asks for it (`deny_unknown_fields`) refuses unknown keys.
        let expected = msg
            .split_once(", expected ")
            .map(|(_, e)| e.replace('`', ""))
            .map(|e| format!(" (expected {e})"))
            .unwrap_or_default();
        // serde_path_to_error's path already ends with the unknown key.
        let at = if path.ends_with(&name) {
            path.to_string()
        } else {
            field(name)
        };
        return format!("{at}: unknown argument{expected}");
    }
    let place = if path == "." || path.is_empty() {
        "arguments".to_string()
    } else {
        path.to_string()
    };
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = msg.strip_prefix(prefix)
            && let Some((got, expected)) = rest.rsplit_once(", expected ")
        {
            return format!("{place}: expected {}, got {got}", friendly(expected));
        }
    }
    format!("{place}: {msg}")
}

fn friendly(expected: &str) -> String {
    match expected {
        "f64" | "f32" => "a number".into(),
        "u8" | "u16" | "u32" | "u64" | "usize" => "a non-negative integer".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".into(),
        "a string" | "a borrowed string" => "a string".into(),
        e => e.to_string(),
    }
}

/// The field names a struct `T` deserialises, asked of its `Deserialize` impl itself (it
/// names them when it asks for a struct); `None` for anything but a plain struct.
fn field_names<T: DeserializeOwned>() -> Option<&'static [&'static str]> {
    let mut fields = None;
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

/// A deserializer that only records the field list a struct asks for, then stops.
struct FieldNames<'a>(&'a mut Option<&'static [&'static str]>);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field names recorded")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = Some(fields);
        Err(Stop)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// For `#[serde(deserialize_with = "pymanager_guest::number_or_string")]`: a number, or a
/// string holding one (`"8080"`), as configs written from templates often have.
pub fn number_or_string<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + std::str::FromStr,
{
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| de::Error::invalid_value(de::Unexpected::Str(&s), &"a number")),
        other => T::deserialize(other).map_err(de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Deserialize, Debug)]
    struct Args {
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default, deserialize_with = "number_or_string")]
        port: u16,
    }

    #[test]
    fn unknown_keys_are_collected_not_refused() {
        let p = parse::<Args>(r#"{"url": "u", "description": "x", "more": 1}"#).unwrap();
        assert_eq!(p.args.url, "u");
        assert!(p.args.headers.is_empty());
        assert_eq!(p.unknown, ["description", "more"]);
        assert_eq!(
            unknown_warning::<Args>("description"),
            "description: unknown argument, ignored (expected one of url, headers, port)"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse::<Args>("{}").err().unwrap();
        assert_eq!(e, "url: missing field");
        let e = parse::<Args>(r#"{"url": 5}"#).err().unwrap();
        assert_eq!(e, "url: expected a string, got integer `5`");
        let e = parse::<Args>(r#"{"url": "u", "headers": {"a": 1}}"#)
            .err()
            .unwrap();
        assert_eq!(e, "headers.a: expected a string, got integer `1`");
        let e = parse::<Args>("[1]").err().unwrap();
        assert_eq!(e, "arguments: expected an object");
    }

    #[test]
    fn numbers_may_be_strings() {
        let p = parse::<Args>(r#"{"url": "u", "port": " 8080 "}"#).unwrap();
        assert_eq!(p.args.port, 8080);
        let p = parse::<Args>(r#"{"url": "u", "port": 81}"#).unwrap();
        assert_eq!(p.args.port, 81);
        let e = parse::<Args>(r#"{"url": "u", "port": "http"}"#)
            .err()
            .unwrap();
        assert_eq!(e, r#"port: expected a number, got string "http""#);
        let e = parse::<Args>(r#"{"url": "u", "port": 70000}"#)
            .err()
            .unwrap();
        assert_eq!(
            e,
            "port: expected a non-negative integer, got integer `70000`"
        );
    }

    #[test]
    fn field_names_only_for_structs() {
        assert_eq!(field_names::<Args>(), Some(&["url", "headers", "port"][..]));
        assert_eq!(field_names::<BTreeMap<String, String>>(), None);
    }
}
