//! Attacks on the Python verifier path with the real componentize-py, done as another
//! local user would: components planted in a shared temporary directory for the pids to
//! come, a poisoned cache of built components, a module that loops at import, and the
//! default grant against a second pymanager on the machine.
//!
//! The hostile component is the test guest `httpgrant`: it exports a verifier named as the
//! user's (`HttpAnywhere`) and makes the request its arguments name, which the user's own
//! module never does; a request reaching the recorder is the proof that a component not
//! built from the user's module ran.
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use serde_json::json;

/// The user's module: `HttpAnywhere` passes without a request; `Probe` passes if its URL
/// answers, and fails with the reason if it cannot be reached.
const CHECKS_PY: &str = r#"
import requests
from requests import exceptions as reqexcept
from pymutils.verifier import Verifier


class HttpAnywhere(Verifier):
    def __init__(self, **kwargs):
        self.url = kwargs["url"]

    def run(self, proc):
        return True


class Probe(Verifier):
    def __init__(self, **kwargs):
        self.url = kwargs["url"]

    def run(self, proc):
        try:
            requests.get(self.url, timeout=5)
            return True
        except reqexcept.ConnectionError as e:
            self.log_fail("cannot reach: {0}".format(e))
            return False
"#;

/// A config directory with `checks.py` and a job verified by `checks.<verifier>` with
/// `url`, to be run as `pymanager run -- true` (see [`run`]): a verifier passes only for a
/// process that is still there, so the job stays until `true` has run.
fn config(verifier: &str, url: &str) -> tempfile::TempDir {
    let dir = config_dir(&json!({
        "modules": {"checks": {"verifiers": ["HttpAnywhere", "Probe"]}},
        "processes": {"job": {"executable": "sleep", "arguments": ["1000"],
            "verifier": {"type": format!("checks.{verifier}"), "arguments": {"url": url}}}}
    }));
    std::fs::write(dir.path().join("checks.py"), CHECKS_PY).unwrap();
    dir
}

/// Runs `pymanager run -- true` on `dir` with these environment variables: the start-up,
/// then everything stopped; its exit code (`true`'s 0, or 5 when the start-up failed) and
/// output.
fn run(dir: &Path, env: &[(&str, &Path)]) -> (Option<i32>, String) {
    run_within(
        pymanager(&["run", "--", "true"])
            .current_dir(dir)
            .envs(env.iter().copied())
            .env("PYMANAGER_COMPONENTIZE_PY", componentize_py())
            .env("NO_COLOR", "1"),
        BUILD_WAIT,
    )
}

/// A first, honest run: the user's cache (`cache`, `state`) holds the built component, and
/// its key (the hash of what went into the build) is what an attacker computes too.
struct Honest {
    home: tempfile::TempDir,
    key: String,
}

impl Honest {
    fn cache(&self) -> PathBuf {
        self.home.path().join("cache")
    }

    fn state(&self) -> PathBuf {
        self.home.path().join("state")
    }
}

fn honest() -> &'static Honest {
    static HONEST: OnceLock<Honest> = OnceLock::new();
    HONEST.get_or_init(|| {
        let home = tempfile::tempdir().unwrap();
        let dir = config("HttpAnywhere", "http://127.0.0.1:9/");
        let (code, out) = run_in(dir.path(), home.path());
        assert_eq!(code, Some(0), "{out}");
        let key = built_entries(&home.path().join("cache"))
            .first()
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.trim_start_matches("python-")
                    .trim_end_matches(".wasm")
                    .to_string()
            })
            .expect("a built component in the cache");
        Honest { home, key }
    })
}

/// The built Python components in a cache directory (`$XDG_CACHE_HOME`), wherever this
/// version keeps them.
fn built_entries(cache: &Path) -> Vec<PathBuf> {
    let dir = cache.join("pymanager");
    let mut found = Vec::new();
    for d in [dir.clone(), dir.join("python")] {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".wasm") && (d != dir || name.starts_with("python-")) {
                found.push(e.path());
            }
        }
    }
    found
}

/// A copy of the honest run's cache and key, for a test to use (or spoil) alone.
fn honest_copy() -> tempfile::TempDir {
    let honest = honest();
    let home = tempfile::tempdir().unwrap();
    copy_tree(&honest.cache(), &home.path().join("cache"));
    copy_tree(&honest.state(), &home.path().join("state"));
    home
}

/// [`run`] with the cache and key of `home`.
fn run_in(dir: &Path, home: &Path) -> (Option<i32>, String) {
    run(
        dir,
        &[
            ("XDG_CACHE_HOME", &home.join("cache")),
            ("XDG_STATE_HOME", &home.join("state")),
        ],
    )
}

fn hostile() -> Vec<u8> {
    std::fs::read(env!("PYMANAGER_TEST_GUEST_HTTPGRANT")).unwrap()
}

fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn components_planted_in_a_shared_temporary_directory_are_never_loaded() {
    let Some(other) =
        as_other_user("components_planted_in_a_shared_temporary_directory_are_never_loaded")
    else {
        return;
    };
    let honest = honest();
    let recorder = Squatter::start(&[], 0);
    // A shared temporary directory (as /tmp), and a shared cache directory in which the
    // other user made `pymanager` first: the user's cache cannot be used.
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let tmp = shared.path().join("tmp");
    let cache = shared.path().join("cache");
    for d in [&tmp, &cache] {
        std::fs::create_dir(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o1777)).unwrap();
    }
    let planted = shared.path().join("hostile.wasm");
    std::fs::write(&planted, hostile()).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o644)).unwrap();
    run_as_other(
        &other,
        &["mkdir", &cache.join("pymanager").display().to_string()],
    );
    // The component, under the expected name, for the next few thousand pids.
    let next: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    run_as_other(
        &other,
        &[
            system_python(),
            "-c",
            "import os, shutil, sys\n\
             tmp, key, src, first = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])\n\
             own = os.path.join(tmp, 'hostile.wasm')\n\
             shutil.copy(src, own)\n\
             for pid in range(first, first + 3000):\n\
             \x20   d = os.path.join(tmp, 'pymanager-%d' % pid, 'python')\n\
             \x20   os.makedirs(d)\n\
             \x20   os.link(own, os.path.join(d, key + '.wasm'))\n",
            &tmp.display().to_string(),
            &honest.key,
            &planted.display().to_string(),
            &(next + 1).to_string(),
        ],
    );
    let planted_entries = std::fs::read_dir(&tmp).unwrap().count();
    let dir = config(
        "HttpAnywhere",
        &format!("http://127.0.0.1:{}/planted-component-ran", recorder.port),
    );
    let (code, out) = run(
        dir.path(),
        &[
            ("TMPDIR", &tmp),
            ("XDG_CACHE_HOME", &cache),
            ("XDG_STATE_HOME", &honest.state()),
        ],
    );
    assert!(
        out.contains("compiled verifiers are not cached on disk this run"),
        "{out}"
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(recorder.heads().is_empty(), "{:?}", recorder.heads());
    // Built in a private directory of its own, removed after: nothing else is left.
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), planted_entries);
    let _ = Command::new("rm").arg("-rf").arg(shared.path()).status();
}

#[test]
fn a_poisoned_cache_of_built_components_is_rebuilt_never_run() {
    let recorder = Squatter::start(&[], 0);
    // A cache restored from elsewhere (a CI cache another job could write): the user's
    // own files, with a built component swapped for a hostile one.
    let home = honest_copy();
    let entries = built_entries(&home.path().join("cache"));
    assert!(!entries.is_empty());
    for e in &entries {
        std::fs::write(e, hostile()).unwrap();
    }
    let dir = config(
        "HttpAnywhere",
        &format!("http://127.0.0.1:{}/poisoned-cache-ran", recorder.port),
    );
    let (code, out) = run_in(dir.path(), home.path());
    assert_eq!(code, Some(0), "{out}");
    assert!(recorder.heads().is_empty(), "{:?}", recorder.heads());
}

#[test]
fn a_python_modules_default_grant_never_reaches_another_pymanager() {
    let other = Manager::start(json!({"http": {"enabled": true}, "keep-alive": true,
        "processes": {"a": sh("exec sleep 100")}}));
    other.wait_status("running");
    let home = honest_copy();
    let dir = config("Probe", &format!("{}/status", other.url()));
    let (code, out) = run_in(dir.path(), home.path());
    assert_eq!(code, Some(5), "{out}");
    assert!(
        out.contains("is the REST API of another pymanager")
            && out.contains("to modules.checks.allow.hosts"),
        "{out}"
    );
    // The other manager is untouched.
    other.wait_status("running");
}

#[test]
fn a_module_that_loops_at_import_is_stopped_at_its_build_limit() {
    let dir = config_dir(&json!({
        "modules": {"loops": {"verifiers": ["Up"], "limits": {"build_s": 5}}},
        "processes": {"job": {"executable": "sh", "arguments": ["-c", "echo ran > ran.txt"],
            "verifier": {"type": "loops.Up"}}}
    }));
    std::fs::write(
        dir.path().join("loops.py"),
        "from pymutils.verifier import Verifier\n\nwhile True:\n    pass\n\n\nclass Up(Verifier):\n    def run(self, proc):\n        return True\n",
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let (code, out) = run_in(dir.path(), home.path());
    assert_eq!(code, Some(5), "{out}");
    assert!(
        out.contains("did not finish within 5 s (modules.loops.limits.build_s), so it was stopped"),
        "{out}"
    );
    assert!(!dir.path().join("ran.txt").exists());
}
