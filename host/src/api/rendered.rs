//! Answers that depend on nothing but the latest snapshot, rendered at most once per
//! snapshot: `GET /`, `GET /api/v1/processes` and `GET /api/v1/status`. Polling clients
//! (a script waiting for `running`, the Python API's waits, a dashboard's reload, `ctl`)
//! ask far more often than a process changes, and with 1000 processes a list takes
//! milliseconds to write.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::json;
use crate::supervisor::Snapshot;

/// The answers kept for the latest snapshot, one per kind.
#[derive(Default)]
pub struct Rendered {
    legacy_list: PerSnapshot,
    v1_list: PerSnapshot,
    v1_status: PerSnapshot,
}

/// Which answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `GET /`, in the original's bytes.
    LegacyList,
    /// `GET /api/v1/processes`.
    V1List,
    /// `GET /api/v1/status`.
    V1Status,
}

impl Rendered {
    /// The `which` body of `snap`: the one kept if it was rendered from this very snapshot,
    /// otherwise rendered now and kept.
    pub fn get(&self, snap: &Arc<Snapshot>, which: Body) -> Bytes {
        match which {
            Body::LegacyList => self
                .legacy_list
                .get(snap, |s| json::to_legacy_string(&json::LegacyList(s))),
            Body::V1List => self.v1_list.get(snap, |s| {
                json::to_string(&super::v1::List {
                    count: s.processes.len(),
                    processes: s
                        .processes
                        .iter()
                        .map(|p| super::v1::Process::from(&**p))
                        .collect(),
                })
            }),
            Body::V1Status => self
                .v1_status
                .get(snap, |s| json::to_string(&json::V1Status(s))),
        }
    }
}

/// One body and the snapshot it was rendered from. The snapshot is held, so no later one
/// can be allocated at its address and be taken for it.
#[derive(Default)]
struct PerSnapshot {
    last: Mutex<Option<(Arc<Snapshot>, Bytes)>>,
}

impl PerSnapshot {
    fn get(&self, snap: &Arc<Snapshot>, render: impl FnOnce(&Snapshot) -> String) -> Bytes {
        if let Some(body) = self.kept_for(snap) {
            return body;
        }
        // Rendered outside the lock: a worker asking for another kind's body, or for this
        // one a moment later, never waits for a 1000-row list to be written. Two workers
        // that miss at once both render; the later store wins, which at worst costs one
        // more rendering.
        let body = Bytes::from(render(snap));
        *self.lock() = Some((snap.clone(), body.clone()));
        body
    }

    fn kept_for(&self, snap: &Arc<Snapshot>) -> Option<Bytes> {
        match self.lock().as_ref() {
            Some((kept, body)) if Arc::ptr_eq(kept, snap) => Some(body.clone()),
            _ => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Arc<Snapshot>, Bytes)>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::json::tests::info;
    use crate::process_view::ProcState;
    use crate::supervisor::Phase;

    fn snapshot() -> Arc<Snapshot> {
        Arc::new(Snapshot {
            phase: Phase::Running,
            processes: vec![
                info(1, "web", ProcState::Running { pid: 41 }).into(),
                info(2, "db", ProcState::NotStarted).into(),
            ],
            startup_failure: None,
        })
    }

    #[test]
    fn a_body_is_rendered_once_per_snapshot() {
        let kept = PerSnapshot::default();
        let snap = snapshot();
        let mut renders = 0;
        let mut render = |_: &Snapshot| {
            renders += 1;
            format!("body {renders}")
        };
        assert_eq!(kept.get(&snap, &mut render), "body 1");
        assert_eq!(kept.get(&snap, &mut render), "body 1");
        // An equal snapshot that is another one is rendered again.
        let next = snapshot();
        assert_eq!(kept.get(&next, &mut render), "body 2");
        assert_eq!(kept.get(&next, &mut render), "body 2");
        assert_eq!(renders, 2);
    }

    #[test]
    fn each_kind_is_the_body_its_route_would_write() {
        let rendered = Rendered::default();
        let snap = snapshot();
        assert_eq!(
            rendered.get(&snap, Body::V1Status),
            json::to_string(&json::V1Status(&snap))
        );
        assert_eq!(
            rendered.get(&snap, Body::LegacyList),
            json::to_legacy_string(&json::LegacyList(&snap))
        );
        let list = rendered.get(&snap, Body::V1List);
        let web = json::to_string(&json::V1Process(&snap.processes[0]));
        let db = json::to_string(&json::V1Process(&snap.processes[1]));
        assert_eq!(list, format!(r#"{{"count":2,"processes":[{web},{db}]}}"#));
    }
}
