//! Times in verifier arguments: seconds, as the original pymanager's verifiers took them,
//! with the default in the type so that a verifier declares a time argument in one line:
//! `#[serde(default)] timeout: Timeout<30_000>`.
//!
//! Both types take a number of seconds (fractions allowed) or a string holding one
//! (`"2.5"`), and refuse negative numbers, NaN and anything else with the field named.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Unexpected, Visitor};

/// A duration of `s` seconds (negative or not-a-number counts as zero).
pub fn secs(s: f64) -> Duration {
    if s.is_finite() && s > 0.0 {
        Duration::from_secs_f64(s.min(1e9))
    } else {
        Duration::ZERO
    }
}

/// `30 s`, `1.5 s`, `100 ms`: durations as users wrote them.
pub fn format_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// How long a verifier may take: `DEFAULT_MS` milliseconds when the argument is absent,
/// `0` or more seconds, and `null` for no limit (the original handed `None` to Python's
/// `wait()`, which waits for ever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout<const DEFAULT_MS: u64>(Option<Duration>);

impl<const DEFAULT_MS: u64> Timeout<DEFAULT_MS> {
    /// The limit, `None` for none.
    pub fn limit(self) -> Option<Duration> {
        self.0
    }

    /// The limit as a duration to wait; no limit is [`Duration::MAX`] (host calls clamp it
    /// to their longest wait).
    pub fn duration(self) -> Duration {
        self.0.unwrap_or(Duration::MAX)
    }
}

impl<const DEFAULT_MS: u64> Default for Timeout<DEFAULT_MS> {
    fn default() -> Self {
        Timeout(Some(Duration::from_millis(DEFAULT_MS)))
    }
}

impl<const DEFAULT_MS: u64> fmt::Display for Timeout<DEFAULT_MS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(d) => f.write_str(&format_duration(d)),
            None => f.write_str("no limit"),
        }
    }
}

impl<'de, const DEFAULT_MS: u64> Deserialize<'de> for Timeout<DEFAULT_MS> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecondsVisitor {
            null_ok: true,
            zero_ok: true,
        })
        .map(Timeout)
    }
}

/// The pause between attempts: `DEFAULT_MS` milliseconds when absent or `null`, else a
/// number of seconds above 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval<const DEFAULT_MS: u64>(Duration);

impl<const DEFAULT_MS: u64> Interval<DEFAULT_MS> {
    /// The pause.
    pub fn duration(self) -> Duration {
        self.0
    }
}

impl<const DEFAULT_MS: u64> Default for Interval<DEFAULT_MS> {
    fn default() -> Self {
        Interval(Duration::from_millis(DEFAULT_MS))
    }
}

impl<const DEFAULT_MS: u64> fmt::Display for Interval<DEFAULT_MS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl<'de, const DEFAULT_MS: u64> Deserialize<'de> for Interval<DEFAULT_MS> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let d = d.deserialize_any(SecondsVisitor {
            null_ok: true,
            zero_ok: false,
        })?;
        Ok(d.map_or_else(Self::default, Interval))
    }
}

/// Reads a number of seconds (or a string holding one); `None` for `null`.
struct SecondsVisitor {
    null_ok: bool,
    zero_ok: bool,
}

impl SecondsVisitor {
    fn check<E: de::Error>(
        &self,
        s: f64,
        unexpected: Unexpected<'_>,
    ) -> Result<Option<Duration>, E> {
        let ok = s.is_finite() && s < 1e9 && (s > 0.0 || (self.zero_ok && s == 0.0));
        if ok {
            Ok(Some(Duration::from_secs_f64(s)))
        } else {
            Err(E::invalid_value(unexpected, self))
        }
    }
}

impl<'de> Visitor<'de> for SecondsVisitor {
    type Value = Option<Duration>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.zero_ok, self.null_ok) {
            (true, true) => f.write_str("a number of seconds (0 or more), or null for no limit"),
            (true, false) => f.write_str("a number of seconds (0 or more)"),
            (false, _) => f.write_str("a number of seconds above 0"),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.check(v as f64, Unexpected::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.check(v as f64, Unexpected::Signed(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.check(v, Unexpected::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match v.trim().parse::<f64>() {
            Ok(s) => self.check(s, Unexpected::Str(v)),
            Err(_) => Err(E::invalid_type(Unexpected::Str(v), &self)),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        if self.null_ok {
            Ok(None)
        } else {
            Err(E::invalid_type(Unexpected::Unit, &self))
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::parse_args;

    #[derive(Deserialize, Debug)]
    struct Args {
        #[serde(default)]
        timeout: Timeout<30_000>,
        #[serde(default)]
        interval: Interval<100>,
    }

    fn parse(json: &str) -> Result<(Option<Duration>, Duration), String> {
        parse_args::<Args>(json).map(|a| (a.timeout.limit(), a.interval.duration()))
    }

    #[test]
    fn defaults_numbers_strings_and_null() {
        assert_eq!(
            parse("{}").unwrap(),
            (Some(Duration::from_secs(30)), Duration::from_millis(100))
        );
        assert_eq!(
            parse(r#"{"timeout": 2.5, "interval": 1}"#).unwrap(),
            (Some(Duration::from_millis(2500)), Duration::from_secs(1))
        );
        assert_eq!(
            parse(r#"{"timeout": " 5 ", "interval": "0.5"}"#).unwrap(),
            (Some(Duration::from_secs(5)), Duration::from_millis(500))
        );
        assert_eq!(
            parse(r#"{"timeout": null, "interval": null}"#).unwrap(),
            (None, Duration::from_millis(100))
        );
        assert_eq!(parse(r#"{"timeout": 0}"#).unwrap().0, Some(Duration::ZERO));
    }

    #[test]
    fn refusals_name_the_field_and_the_rule() {
        assert_eq!(
            parse(r#"{"timeout": -1}"#).unwrap_err(),
            "timeout: expected a number of seconds (0 or more), or null for no limit, got integer `-1`"
        );
        assert_eq!(
            parse(r#"{"timeout": "soon"}"#).unwrap_err(),
            "timeout: expected a number of seconds (0 or more), or null for no limit, got string \"soon\""
        );
        assert_eq!(
            parse(r#"{"interval": 0}"#).unwrap_err(),
            "interval: expected a number of seconds above 0, got integer `0`"
        );
        assert_eq!(
            parse(r#"{"interval": true}"#).unwrap_err(),
            "interval: expected a number of seconds above 0, got boolean `true`"
        );
    }

    #[test]
    fn durations_read_as_written() {
        assert_eq!(format_duration(Duration::from_secs(30)), "30 s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(format_duration(Duration::from_millis(100)), "100 ms");
        assert_eq!(Timeout::<1000>(None).to_string(), "no limit");
        assert_eq!(secs(-1.0), Duration::ZERO);
    }
}
