//! The JSON bodies the API answers with, in one place so that their shapes (and key order)
//! can be read and tested without a server.
//!
//! Two families: the original's (`GET /`, `GET /status`, `POST /restart/<id>`, `DELETE /`),
//! whose bytes scripts written for pymanager 0.2.6.1 parse or grep (`'"status": "running"'`)
//! and which therefore never change, and the `/api/v1/` ones, which say everything the
//! supervisor knows. The original's are hand-rolled `Serialize` impls, serialized by
//! [`to_legacy_string`] as Python's `json.dumps` wrote them; the `/api/v1/` ones are the types
//! of [`super::v1`], which clients read back, serialized compactly by [`to_string`].

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::process_view::ProcState;
use crate::supervisor::{Event, Phase, ProcessInfo, Snapshot};

/// One process as the original's `GET /` listed it: `id, command, status, pid|code`.
pub struct LegacyProcess<'a>(pub &'a ProcessInfo);

impl Serialize for LegacyProcess<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = self.0;
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("id", &p.id)?;
        m.serialize_entry("command", &p.command)?;
        m.serialize_entry("status", p.legacy_status())?;
        match p.state {
            ProcState::Running { pid } => m.serialize_entry("pid", &pid)?,
            // A process never started has no code: the original would have raised; null is
            // what a client can still parse.
            other => m.serialize_entry("code", &other.legacy_code())?,
        }
        m.end()
    }
}

/// The original's `GET /` body: `{"count": N, "processes": [...]}`.
pub struct LegacyList<'a>(pub &'a Snapshot);

impl Serialize for LegacyList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("count", &self.0.processes.len())?;
        m.serialize_entry(
            "processes",
            &self
                .0
                .processes
                .iter()
                .map(|p| LegacyProcess(p))
                .collect::<Vec<_>>(),
        )?;
        m.end()
    }
}

/// The original's answer to a restart: `{"success": true, "process": {...}}`.
#[derive(Serialize)]
pub struct LegacyRestarted<'a> {
    /// Always true; failures use the error body.
    pub success: bool,
    /// The process after its restart.
    pub process: LegacyProcess<'a>,
}

/// One process with everything the supervisor knows; the `/api/v1/` shape, written by
/// [`v1::Process`](super::v1::Process) (the type clients read it back with).
pub struct V1Process<'a>(pub &'a ProcessInfo);

impl Serialize for V1Process<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        super::v1::Process::from(self.0).serialize(s)
    }
}

/// The body of a successful `/api/v1/` command on one process.
#[derive(Serialize)]
pub struct V1Done<'a> {
    /// Always true; failures use the error body.
    pub success: bool,
    /// The process after the command.
    pub process: V1Process<'a>,
}

/// `GET /api/v1/status`: the phase and how many processes are where, written by
/// [`v1::Status`](super::v1::Status).
pub struct V1Status<'a>(pub &'a Snapshot);

impl Serialize for V1Status<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        super::v1::Status::from(self.0).serialize(s)
    }
}

/// An [`Event`] as the event stream sends it: the SSE event name, and its JSON data
/// (`{"event": name, ...}` with processes in the `/api/v1/` shape).
pub fn event_json(event: &Event) -> (&'static str, String) {
    let name = match event {
        Event::Phase { .. } => "phase",
        Event::Process { .. } => "process",
        Event::StartupFailed { .. } => "startup-failed",
    };
    (name, to_string(&super::v1::Event::from(event)))
}

/// The phase event the stream starts with, so a client needs no second request to know where
/// the manager is when it subscribes.
pub fn phase_event(phase: Phase) -> Event {
    Event::Phase { phase }
}

/// Serializes a value whose `Serialize` impl cannot fail (all of ours: no maps with non-string
/// keys, no I/O).
pub fn to_string<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| {
        // Unreachable for the types above; answer a valid body rather than panic.
        format!(r#"{{"success":false,"error":{{"message":"cannot encode the answer: {e}"}}}}"#)
    })
}

/// Serializes a body of one of the original's routes byte for byte as the original did:
/// Python's `json.dumps` with its defaults, which bottle used, i.e. `", "` between items,
/// `": "` after keys, and every character outside printable ASCII escaped (`é` is
/// `\u00e9`, an emoji a surrogate pair).
pub fn to_legacy_string<T: Serialize>(v: &T) -> String {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    match v.serialize(&mut ser) {
        // Everything outside ASCII was escaped, so the text is ASCII.
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(_) => to_string(v),
    }
}

/// The output of Python's `json.dumps(v)`: serde_json already escapes `"`, `\` and control
/// characters as Python does (`\n`, `\u001b`, lower-case hex); this adds the separators
/// and `ensure_ascii`.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut plain = 0;
        for (i, c) in fragment.char_indices() {
            // Printable ASCII is written as it is; DEL and everything above are escaped.
            if (c as u32) < 0x7f {
                continue;
            }
            w.write_all(&fragment.as_bytes()[plain..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            plain = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[plain..])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::supervisor::{Lifecycle, VerifierInfo, VerifierOutcome};

    /// A process record as the supervisor would publish it.
    pub(crate) fn info(id: u32, name: &str, state: ProcState) -> ProcessInfo {
        ProcessInfo {
            id,
            name: name.to_string(),
            command: format!("sleep {id}"),
            state,
            lifecycle: match state {
                ProcState::NotStarted => Lifecycle::Pending,
                ProcState::Running { .. } => Lifecycle::Ready,
                _ => Lifecycle::Exited,
            },
            restarts: 0,
            started_at: None,
            verifier: None,
            error: None,
            waiting_for: Vec::new(),
            last_exit: None,
            next_attempt: None,
            liveness: None,
            ports: Default::default(),
        }
    }

    #[test]
    fn legacy_list_has_the_originals_keys_in_order() {
        let snap = Snapshot {
            phase: Phase::Running,
            processes: vec![
                info(1, "a", ProcState::Running { pid: 42 }).into(),
                info(2, "b", ProcState::Exited { code: 3 }).into(),
                info(3, "c", ProcState::Signaled { signal: 15 }).into(),
                info(4, "d", ProcState::NotStarted).into(),
            ],
            startup_failure: None,
        };
        assert_eq!(
            to_legacy_string(&LegacyList(&snap)),
            concat!(
                r#"{"count": 4, "processes": ["#,
                r#"{"id": 1, "command": "sleep 1", "status": "running", "pid": 42}, "#,
                r#"{"id": 2, "command": "sleep 2", "status": "terminated", "code": 3}, "#,
                r#"{"id": 3, "command": "sleep 3", "status": "terminated", "code": -15}, "#,
                r#"{"id": 4, "command": "sleep 4", "status": "terminated", "code": null}"#,
                "]}"
            )
        );
        let empty = Snapshot {
            phase: Phase::Running,
            processes: vec![],
            startup_failure: None,
        };
        assert_eq!(
            to_legacy_string(&LegacyList(&empty)),
            r#"{"count": 0, "processes": []}"#
        );
    }

    #[test]
    fn legacy_restart_body() {
        let p = info(2, "b", ProcState::Running { pid: 7 });
        assert_eq!(
            to_legacy_string(&LegacyRestarted {
                success: true,
                process: LegacyProcess(&p)
            }),
            r#"{"success": true, "process": {"id": 2, "command": "sleep 2", "status": "running", "pid": 7}}"#
        );
    }

    /// What Python 3's `json.dumps` writes for the same value (checked against it):
    /// escapes of quotes, backslashes and control characters, `ensure_ascii`, surrogate
    /// pairs, and a slash left alone.
    #[test]
    fn legacy_strings_are_escaped_as_python_escapes_them() {
        let mut p = info(1, "a", ProcState::Signaled { signal: 15 });
        p.command = "echo caf\u{e9} \"q\" \\ \t\n\x1b\x7f \u{1F600} /".into();
        assert_eq!(
            to_legacy_string(&LegacyProcess(&p)),
            r#"{"id": 1, "command": "echo caf\u00e9 \"q\" \\ \t\n\u001b\u007f \ud83d\ude00 /", "status": "terminated", "code": -15}"#
        );
        assert_eq!(
            to_legacy_string(&serde_json::json!({"e": [], "o": {}, "n": null, "t": true})),
            r#"{"e": [], "o": {}, "n": null, "t": true}"#
        );
    }

    #[test]
    fn v1_process_flattens_state_and_formats_time() {
        let mut p = info(1, "web", ProcState::Signaled { signal: 9 });
        p.started_at = Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123));
        p.restarts = 2;
        p.verifier = Some(VerifierInfo {
            kind: "pymutils.http_verifier.HttpOkVerifier".into(),
            outcome: VerifierOutcome::Failed,
            message: Some("connection refused".into()),
        });
        assert_eq!(
            to_string(&V1Process(&p)),
            concat!(
                r#"{"id":1,"name":"web","command":"sleep 1","state":"signaled","pid":null,"#,
                r#""exit_code":null,"signal":9,"status":"terminated","lifecycle":"exited","#,
                r#""restarts":2,"started_at":"2023-11-14T22:13:20.123Z","#,
                r#""verifier":{"type":"pymutils.http_verifier.HttpOkVerifier","outcome":"failed","#,
                r#""message":"connection refused"},"error":null,"waiting_for":null,"last_exit":null,"#,
                r#""next_attempt":null,"liveness":null,"ports":{}}"#
            )
        );
    }

    #[test]
    fn v1_status_counts() {
        let snap = Snapshot {
            phase: Phase::Launching,
            processes: vec![
                info(1, "a", ProcState::Running { pid: 1 }).into(),
                info(2, "b", ProcState::NotStarted).into(),
            ],
            startup_failure: None,
        };
        assert_eq!(
            to_string(&V1Status(&snap)),
            concat!(
                r#"{"status":"launching processes","shutting_down":false,"total":2,"running":1,"#,
                r#""lifecycle":{"pending":1,"starting":0,"verifying":0,"ready":1,"unhealthy":0,"#,
                r#""stopping":0,"stopped":0,"exited":0,"backing-off":0,"failed":0},"#,
                r#""startup_failure":null}"#
            )
        );
    }

    #[test]
    fn events_are_named_and_tagged() {
        let (name, data) = event_json(&Event::Phase {
            phase: Phase::ForceShutdown,
        });
        assert_eq!(name, "phase");
        assert_eq!(data, r#"{"event":"phase","phase":"force shutdown"}"#);
        let (name, data) = event_json(&Event::StartupFailed {
            message: "web: verifier failed".into(),
        });
        assert_eq!(name, "startup-failed");
        assert_eq!(
            data,
            r#"{"event":"startup-failed","message":"web: verifier failed"}"#
        );
        let (name, data) = event_json(&Event::Process {
            process: std::sync::Arc::new(info(1, "a", ProcState::Exited { code: 0 })),
        });
        assert_eq!(name, "process");
        assert!(data.starts_with(r#"{"event":"process","process":{"id":1,"name":"a""#));
    }

    /// What the server writes, `ctl` reads back into the same [`v1`](crate::api::v1) types.
    mod read_back {
        use std::time::{Duration, UNIX_EPOCH};

        use crate::api::json::{V1Process, V1Status, event_json, to_string};
        use crate::api::v1::{Event, Phase, Process, State, Status};
        use crate::process_view::ProcState;
        use crate::supervisor::{self as sv, ProcessInfo, Snapshot, VerifierInfo, VerifierOutcome};

        fn full_info() -> ProcessInfo {
            ProcessInfo {
                id: 2,
                name: "web".into(),
                command: "sh -c x".into(),
                state: ProcState::Signaled { signal: 15 },
                lifecycle: sv::Lifecycle::Stopped,
                restarts: 1,
                started_at: Some(UNIX_EPOCH + Duration::from_millis(1_000_250)),
                verifier: Some(VerifierInfo {
                    kind: "http".into(),
                    outcome: VerifierOutcome::Passed,
                    message: None,
                }),
                error: None,
                waiting_for: vec![("db".into(), "verified")],
                last_exit: Some(ProcState::Exited { code: 3 }),
                next_attempt: None,
                liveness: None,
                ports: vec![crate::plan::Port {
                    name: "http".into(),
                    number: 8080,
                }]
                .into(),
            }
        }

        #[test]
        fn what_the_server_writes_a_client_reads_back() {
            let p = full_info();
            let text = to_string(&V1Process(&p));
            let back: Process<'static> = serde_json::from_str(&text).unwrap();
            assert_eq!(back, Process::from(&p));
            assert_eq!(back.state, State::Signaled);
            assert_eq!(back.signal, Some(15));
            assert_eq!(back.started_at.as_deref(), Some("1970-01-01T00:16:40.250Z"));

            let snap = Snapshot {
                phase: sv::Phase::Running,
                processes: vec![p.into()],
                startup_failure: None,
            };
            let back: Status = serde_json::from_str(&to_string(&V1Status(&snap))).unwrap();
            assert_eq!(back.status, Phase::Running);
            assert_eq!(back.lifecycle.stopped, 1);
            assert_eq!(back.total, 1);

            let e = sv::Event::StartupFailed {
                message: "web: no".into(),
            };
            let (name, data) = event_json(&e);
            let back: Event<'static> = serde_json::from_str(&data).unwrap();
            assert_eq!(name, "startup-failed");
            assert_eq!(
                back,
                Event::StartupFailed {
                    message: "web: no".into()
                }
            );
        }
    }
}
