//! Config-shaped JSON into the parser. Raw bytes seldom get past the JSON syntax; this
//! target builds objects from the config's own keys with values of every JSON type, so
//! the checks behind the syntax (types, defaults, both keep-alive spellings, mutually
//! exclusive options, unknown keys) are what gets exercised. Same oracle as `config`.
#![no_main]

use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};

const TOP: &[&str] = &[
    "modules", "http", "keep-alive", "keep_alive", "graceful_time", "default_shell", "messages",
    "processes", "verbose", "logfile",
];
const HTTP: &[&str] = &["enabled", "port", "host", "token"];
const PROCESS: &[&str] = &["executable", "arguments", "options", "verifier"];
const OPTIONS: &[&str] = &[
    "suppress_output", "redirect_output", "working_directory", "environment_file", "shell",
];
const VERIFIER: &[&str] = &["type", "arguments"];
const MODULE: &[&str] = &["verifiers", "path", "allow", "limits"];
const LIMITS: &[&str] = &["memory_mb", "cpu_ms", "timeout_s"];
const WORDS: &[&str] = &[
    "", "true", "false", "sh", "/bin/sh", "process.exit", "verifier.fail", "verifier.verbose",
    "pymutils.http_verifier.HttpOkVerifier", "pymutils.exited_verifier.ExitedVerifier",
    "pymutils.http_verifier", "HttpOkVerifier", "http", "exited", "127.0.0.1", "*", "0", "-1",
    "1e999", "processes.web", "\u{0}", "é", "\n",
];

/// A JSON value of bounded depth whose object keys come mostly from `keys`.
fn value(u: &mut Unstructured, keys: &[&[&str]], depth: u32) -> arbitrary::Result<Value> {
    let choice = if depth == 0 { u.int_in_range(0..=5)? } else { u.int_in_range(0..=7)? };
    Ok(match choice {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::Number(Number::from(u.arbitrary::<i64>()?)),
        3 => Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
        4 => Value::String((*u.choose(WORDS)?).to_owned()),
        5 => Value::String(u.arbitrary()?),
        6 => {
            let n = u.int_in_range(0..=4)?;
            let mut a = Vec::new();
            for _ in 0..n {
                a.push(value(u, keys, depth - 1)?);
            }
            Value::Array(a)
        }
        _ => object(u, keys, depth - 1)?,
    })
}

fn object(u: &mut Unstructured, keys: &[&[&str]], depth: u32) -> arbitrary::Result<Value> {
    let mut m = Map::new();
    let n = u.int_in_range(0..=6)?;
    let own = keys.first().copied().unwrap_or(&[]);
    let below = keys.get(1..).unwrap_or(&[]);
    for _ in 0..n {
        let k = if !own.is_empty() && u.ratio(7, 8)? {
            (*u.choose(own)?).to_owned()
        } else {
            u.arbitrary::<String>()?
        };
        m.insert(k, value(u, below, depth)?);
    }
    Ok(Value::Object(m))
}

#[derive(Debug)]
struct Doc(Value);

impl<'a> Arbitrary<'a> for Doc {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut top = match object(u, &[TOP], 0)? {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        // Shape the keys that have a known structure; anything else stays random.
        if u.ratio(7, 8)? {
            let mut procs = Map::new();
            for i in 0..u.int_in_range(0..=3)? {
                let opts = object(u, &[OPTIONS], 1)?;
                let ver = object(u, &[VERIFIER, &["url", "timeout", "interval", "headers", "expect_code"]], 2)?;
                let mut p = match object(u, &[PROCESS], 1)? {
                    Value::Object(m) => m,
                    _ => unreachable!(),
                };
                if u.arbitrary()? {
                    p.insert("options".into(), opts);
                }
                if u.arbitrary()? {
                    p.insert("verifier".into(), ver);
                }
                procs.insert(format!("p{i}"), Value::Object(p));
            }
            top.insert("processes".into(), Value::Object(procs));
        }
        if u.arbitrary()? {
            top.insert("http".into(), object(u, &[HTTP], 1)?);
        }
        if u.arbitrary()? {
            let mut mods = Map::new();
            mods.insert((*u.choose(WORDS)?).to_owned(), object(u, &[MODULE, LIMITS], 2)?);
            top.insert("modules".into(), Value::Object(mods));
        }
        Ok(Doc(Value::Object(top)))
    }
}

fuzz_target!(|doc: Doc| {
    let text = serde_json::to_vec(&doc.0).expect("a Value always serializes");
    match pymanager::config::parse(&text, Path::new("pymanager.json")) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                assert!(!w.contains('\n'), "multi-line warning: {w:?}");
            }
        }
        Err(e) => {
            let line = e.to_string();
            assert!(!line.contains('\n'), "multi-line error: {line:?}");
            // Valid JSON: never a syntax error, and never "not found"/"unreadable".
            assert!(matches!(e.exit_code(), 4 | 5), "exit {} for valid JSON: {line}", e.exit_code());
        }
    }
});
