//! The JSON Schema of `pymanager.json`, so that editors complete and check a config as it is
//! typed. It is written next to the config types and a test holds the two together: every
//! key the types accept is in the schema and every key in the schema is accepted, and
//! `docs/pymanager.schema.json` is exactly what [`document`] returns.

use serde_json::{Value, json};

/// Where the schema is published, relative to the repository root.
pub const PUBLISHED: &str = "docs/pymanager.schema.json";

/// Seconds as the config reads them: a non-negative number or a numeric string.
fn seconds(description: &str) -> Value {
    json!({
        "description": description,
        "anyOf": [
            {"type": "number", "minimum": 0},
            {"type": "string", "pattern": "^\\s*[0-9]+(\\.[0-9]*)?\\s*$"}
        ]
    })
}

/// A flag as the config reads it: `true`/`false`, `0`/`1`, or `"true"`/`"false"`.
fn flag(description: &str) -> Value {
    json!({
        "description": description,
        "anyOf": [
            {"type": "boolean"},
            {"enum": [0, 1, "true", "false"]}
        ]
    })
}

/// A verifier: a type and its arguments (what `verifier` and `liveness` share).
fn verifier_properties() -> Value {
    json!({
        "type": {
            "description": "module.Name (pymutils.http_verifier.HttpOkVerifier), a built-in name (HttpOkVerifier) or a short name (http).",
            "type": "string",
            "minLength": 1
        },
        "arguments": {
            "description": "Handed to the verifier; each verifier documents its own.",
            "type": "object"
        }
    })
}

/// The arguments of the `exec` verifier, which applies when a verifier's `type` names it:
/// the one built-in whose arguments the schema can check, since it runs natively.
fn exec_arguments() -> Value {
    use crate::config::exec::{MODULE, NAME, SHORT};
    json!({
        "if": {
            "required": ["type"],
            "properties": {"type": {"enum": [SHORT, NAME, format!("{MODULE}.{NAME}"), format!("pymanager.{NAME}")]}}
        },
        "then": {
            "required": ["arguments"],
            "properties": {"arguments": {"$ref": "#/$defs/exec_arguments"}}
        }
    })
}

/// The schema, as JSON.
pub fn document() -> Value {
    let mut liveness = verifier_properties();
    let live = liveness.as_object_mut().expect("an object");
    live.insert(
        "period".into(),
        seconds("Seconds from the end of one check to the start of the next (10); above 0."),
    );
    live.insert(
        "failures".into(),
        json!({
            "description": "Failed checks in a row that make the process unhealthy (3).",
            "type": "integer",
            "minimum": 1
        }),
    );
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "pymanager.json",
        "description": "The processes pymanager starts, how it checks them, and how it stops them.",
        "type": "object",
        "required": ["processes"],
        "properties": {
            "modules": {
                "description": "Verifier modules: built-in ones by name, external WebAssembly components by path.",
                "type": "object",
                "additionalProperties": {"$ref": "#/$defs/module"}
            },
            "http": {
                "description": "The REST interface.",
                "type": "object",
                "properties": {
                    "enabled": flag("Serve the REST interface (false)."),
                    "port": {
                        "description": "Port (5001); 0 picks a free one and announces it.",
                        "type": "integer", "minimum": 0, "maximum": 65535
                    },
                    "host": {
                        "description": "Address to bind (127.0.0.1).",
                        "type": "string"
                    },
                    "token": {
                        "description": "Bearer token every request must carry; \"auto\" makes one.",
                        "type": ["string", "null"]
                    }
                }
            },
            "keep-alive": flag("Stay up after every process has ended (false)."),
            "keep_alive": flag("The same as keep-alive."),
            "graceful_time": seconds("Seconds between the stop signal and SIGKILL at shutdown (10)."),
            "default_shell": {
                "description": "The shell for shell: true and environment_file; true means the user's shell.",
                "type": ["boolean", "string"]
            },
            "messages": {
                "description": "Extra messages to print.",
                "type": "array",
                "items": {"enum": ["process.exit", "verifier.fail", "verifier.verbose"]}
            },
            "startup": {
                "description": "ordered (default): config order, each process verified before the next starts. parallel: each process starts as soon as what it depends on holds.",
                "enum": ["ordered", "parallel"]
            },
            "processes": {
                "description": "The processes, by name, in config order.",
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"$ref": "#/$defs/process"}
            }
        },
        "$defs": {
            "module": {
                "type": "object",
                "properties": {
                    "verifiers": {
                        "description": "The verifiers used from the module (checked against what it provides).",
                        "type": "array", "items": {"type": "string"}
                    },
                    "path": {
                        "description": "A .wasm component, relative to the config file; absent for built-in modules.",
                        "type": "string"
                    },
                    "allow": {
                        "description": "What the module may reach.",
                        "type": "object",
                        "properties": {
                            "hosts": {
                                "description": "What its HTTP and TCP calls may reach, each a host:port ([v6]:port); without it, nothing.",
                                "type": "array", "items": {"type": "string", "pattern": ":[0-9]+$"}
                            }
                        }
                    },
                    "limits": {
                        "description": "Resource caps for its verifier calls.",
                        "type": "object",
                        "properties": {
                            "memory_mb": {"description": "Linear memory in MiB (64).", "type": "integer", "minimum": 1},
                            "cpu_ms": {"description": "Guest CPU time per call in ms (5000).", "type": "integer", "minimum": 1},
                            "timeout_s": {"description": "Wall-clock bound per call in seconds (3600).", "type": "integer", "minimum": 1},
                            "build_s": {"description": "Wall-clock bound on building a Python module with componentize-py, in seconds (600); the build is stopped after it.", "type": "integer", "minimum": 1}
                        }
                    }
                }
            },
            "process": {
                "type": "object",
                "required": ["executable", "arguments"],
                "properties": {
                    "executable": {
                        "description": "The program; relative names are looked up in working_directory, then where pymanager started.",
                        "type": "string", "minLength": 1
                    },
                    "arguments": {
                        "description": "Its arguments (required, may be empty).",
                        "type": "array", "items": {"type": ["string", "number", "boolean"]}
                    },
                    "ports": {
                        "description": "Its named ports: a number is fixed; 0 is a free loopback port picked at start-up and kept across restarts. Used as ${ports.<process>.<name>} in arguments, environment and verifier arguments; given to it as PORT (the first) and PYMANAGER_PORT_<PROCESS>_<NAME>.",
                        "type": "object",
                        "propertyNames": {"pattern": "^[A-Za-z0-9_-]+$"},
                        "additionalProperties": {
                            "oneOf": [
                                {"type": "integer", "minimum": 0, "maximum": 65535},
                                {"type": "string", "pattern": "^[0-9]+$"}
                            ]
                        }
                    },
                    "environment": {
                        "description": "Variables set over the inherited environment and environment_file. Values may use ${ports.<process>.<name>}, ${env.NAME} and ${env.NAME:-default}; $$ is a literal $.",
                        "type": "object",
                        "additionalProperties": {"type": ["string", "number", "boolean"]}
                    },
                    "options": {
                        "type": "object",
                        "properties": {
                            "suppress_output": flag("Keep its output off pymanager's stdout (not with redirect_output)."),
                            "redirect_output": {"description": "Write its output to this file instead.", "type": "string"},
                            "working_directory": {"description": "Run it in this directory.", "type": "string"},
                            "environment_file": {"description": "Source this file in the default shell and use the environment it makes.", "type": "string"},
                            "shell": {"description": "true: run the command line through default_shell; or a shell's name.", "type": ["boolean", "string", "null"]}
                        }
                    },
                    "verifier": {
                        "description": "What must hold before the process counts as started (and, in an ordered start-up, before the next one starts).",
                        "type": "object",
                        "required": ["type"],
                        "properties": verifier_properties(),
                        "allOf": [exec_arguments()]
                    },
                    "depends_on": {
                        "description": "What must hold in other processes before this one starts: names (each meaning verified) or name: condition.",
                        "oneOf": [
                            {"type": "array", "items": {"type": "string"}},
                            {"type": "object", "additionalProperties": {"$ref": "#/$defs/condition"}}
                        ]
                    },
                    "restart": {
                        "description": "When the process is started again by itself: a policy name, or the policy with its backoff.",
                        "oneOf": [
                            {"$ref": "#/$defs/policy"},
                            {
                                "type": "object",
                                "additionalProperties": false,
                                "properties": {
                                    "policy": {"$ref": "#/$defs/policy"},
                                    "backoff": seconds("Seconds before the first restart in a row; doubles with each further one (0.5)."),
                                    "max_backoff": seconds("The longest wait in seconds (30); at least backoff."),
                                    "max_restarts": {
                                        "description": "Restarts in a row after which the process is failed (10).",
                                        "type": "integer", "minimum": 0
                                    }
                                }
                            }
                        ]
                    },
                    "liveness": {
                        "description": "A verifier run again every period once the process is verified; failures in a row make it unhealthy (and restart it, under a restart policy).",
                        "type": "object",
                        "required": ["type"],
                        "additionalProperties": false,
                        "properties": liveness,
                        "allOf": [exec_arguments()]
                    },
                    "stop_signal": {
                        "description": "The signal that asks the process to stop (SIGTERM): a name (SIGINT, INT) or a number; not SIGKILL or SIGSTOP.",
                        "type": ["string", "integer"]
                    },
                    "graceful_time": seconds("Seconds between its stop signal and SIGKILL, instead of the global graceful_time."),
                    "export": {
                        "description": "Read only by pymanager export.",
                        "type": "object",
                        "properties": {
                            "image": {"description": "The container image that runs this process (compose, Kubernetes), instead of --image; it must contain pymanager for the health checks.", "type": "string", "minLength": 1}
                        }
                    }
                }
            },
            "exec_arguments": {
                "description": "The exec verifier: runs command natively, with the process's environment and working directory, until it exits 0.",
                "type": "object",
                "required": ["command"],
                "properties": {
                    "command": {
                        "description": "A list of arguments (the first looked up in PATH), or a command line run by the default shell.",
                        "oneOf": [
                            {"type": "array", "minItems": 1, "items": {"type": "string"}},
                            {"type": "string", "minLength": 1}
                        ]
                    },
                    "timeout": {
                        "description": "Seconds to keep trying (30); 0: one run; null: until the process ends.",
                        "anyOf": [{"type": "number", "minimum": 0}, {"type": "string"}, {"type": "null"}]
                    },
                    "interval": seconds("Seconds between the end of one run and the start of the next (1)."),
                    "run_timeout": seconds("Seconds one run may take before it is killed with its process group (timeout, or 30 when that is 0 or null).")
                }
            },
            "condition": {
                "description": "started: spawned. verified: its verifier passed (spawned, without one). exited: ended with any code. exited_ok: ended with code 0.",
                "enum": ["started", "verified", "exited", "exited_ok"]
            },
            "policy": {
                "description": "never (default), on-failure (after a failed run or a non-zero end), always (after every end).",
                "enum": ["never", "on-failure", "always"]
            }
        }
    })
}

/// The schema as it is published: pretty-printed, one newline at the end.
pub fn published_text() -> String {
    let mut text = serde_json::to_string_pretty(&document()).expect("a JSON value prints");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde::Deserialize;
    use serde::de::{self, Deserializer, Visitor};

    use super::*;
    use crate::config::{
        AllowConfig, Config, ExportConfig, HttpConfig, LimitsConfig, LivenessConfig, ModuleConfig,
        ProcessConfig, ProcessOptions, VerifierConfig,
    };

    /// A deserializer that only records the field names a derived `Deserialize` asks for.
    struct Fields(Option<&'static [&'static str]>);

    #[derive(Debug)]
    struct Stop;

    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }

    impl std::error::Error for Stop {}

    impl de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }

    impl<'de> Deserializer<'de> for &mut Fields {
        type Error = Stop;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    /// The keys a config type accepts, aliases included.
    fn keys<T: for<'de> Deserialize<'de>>() -> BTreeSet<String> {
        let mut f = Fields(None);
        let _ = T::deserialize(&mut f);
        f.0.expect("a derived struct")
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn properties(at: &[&str]) -> BTreeSet<String> {
        let doc = document();
        let mut v = &doc;
        for k in at {
            v = &v[*k];
        }
        v["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no properties at {at:?}"))
            .keys()
            .cloned()
            .collect()
    }

    #[test]
    fn every_key_of_the_config_types_is_in_the_schema_and_no_other() {
        let cases: [(&str, BTreeSet<String>, BTreeSet<String>); 10] = [
            ("top level", keys::<Config>(), properties(&[])),
            (
                "http",
                keys::<HttpConfig>(),
                properties(&["properties", "http"]),
            ),
            (
                "modules.*",
                keys::<ModuleConfig>(),
                properties(&["$defs", "module"]),
            ),
            (
                "modules.*.allow",
                keys::<AllowConfig>(),
                properties(&["$defs", "module", "properties", "allow"]),
            ),
            (
                "modules.*.limits",
                keys::<LimitsConfig>(),
                properties(&["$defs", "module", "properties", "limits"]),
            ),
            (
                "processes.*",
                keys::<ProcessConfig>(),
                properties(&["$defs", "process"]),
            ),
            (
                "processes.*.options",
                keys::<ProcessOptions>(),
                properties(&["$defs", "process", "properties", "options"]),
            ),
            (
                "processes.*.verifier",
                keys::<VerifierConfig>(),
                properties(&["$defs", "process", "properties", "verifier"]),
            ),
            (
                "processes.*.export",
                keys::<ExportConfig>(),
                properties(&["$defs", "process", "properties", "export"]),
            ),
            (
                "processes.*.liveness",
                keys::<LivenessConfig>(),
                properties(&["$defs", "process", "properties", "liveness"]),
            ),
        ];
        for (at, accepted, described) in cases {
            assert_eq!(accepted, described, "{at}");
        }
    }

    #[test]
    fn the_exec_arguments_of_the_schema_are_those_it_takes() {
        let described = properties(&["$defs", "exec_arguments"]);
        let taken: BTreeSet<String> = crate::config::exec::KNOWN
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(described, taken);
        for name in
            document()["$defs"]["process"]["properties"]["verifier"]["allOf"][0]["if"]["properties"]
                ["type"]["enum"]
                .as_array()
                .unwrap()
        {
            assert!(crate::config::exec::names(name.as_str().unwrap()), "{name}");
        }
    }

    #[test]
    fn every_restart_key_of_the_schema_is_accepted() {
        let restart = &document()["$defs"]["process"]["properties"]["restart"]["oneOf"][1];
        let mut value = serde_json::Map::new();
        for (k, _) in restart["properties"].as_object().unwrap() {
            let v = match k.as_str() {
                "policy" => json!("on-failure"),
                "max_restarts" => json!(3),
                _ => json!(1),
            };
            value.insert(k.clone(), v);
        }
        let config = json!({"processes": {"a": {"executable": "true", "arguments": [],
            "restart": value}}});
        let loaded = crate::config::parse(config.to_string().as_bytes(), "t".as_ref())
            .expect("every key the schema names is accepted");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        // And one key more is refused, as the schema says (no additional properties).
        value.insert("backof".into(), json!(1));
        let config = json!({"processes": {"a": {"executable": "true", "arguments": [],
            "restart": value}}});
        assert!(crate::config::parse(config.to_string().as_bytes(), "t".as_ref()).is_err());
    }

    #[test]
    fn every_enum_of_the_schema_is_accepted() {
        for startup in document()["properties"]["startup"]["enum"]
            .as_array()
            .unwrap()
        {
            let cfg = json!({"startup": startup, "processes": {"a": {"executable": "true", "arguments": []}}});
            crate::config::parse(cfg.to_string().as_bytes(), "t".as_ref()).unwrap();
        }
        for condition in document()["$defs"]["condition"]["enum"].as_array().unwrap() {
            let cfg = json!({"startup": "parallel", "processes": {
                "a": {"executable": "true", "arguments": []},
                "b": {"executable": "true", "arguments": [], "depends_on": {"a": condition}}}});
            crate::config::parse(cfg.to_string().as_bytes(), "t".as_ref()).unwrap();
        }
        for policy in document()["$defs"]["policy"]["enum"].as_array().unwrap() {
            let cfg = json!({"processes": {"a": {"executable": "true", "arguments": [], "restart": policy}}});
            crate::config::parse(cfg.to_string().as_bytes(), "t".as_ref()).unwrap();
        }
    }

    /// The published file is the schema above. `PYMANAGER_WRITE_SCHEMA=1` rewrites it.
    #[test]
    fn the_published_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(PUBLISHED);
        let want = published_text();
        if std::env::var_os("PYMANAGER_WRITE_SCHEMA").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{PUBLISHED} is out of date: run PYMANAGER_WRITE_SCHEMA=1 cargo test -p pymanager --lib schema"
        );
    }
}
