//! A verifier written in JavaScript (examples/js-verifier, built with ComponentizeJS from
//! its lockfile by its build.sh) verifies a real process under the real binary, and a
//! throw fails the verification with its message instead of crashing the component.

mod common;

use std::path::{Path, PathBuf};

use common::{BUILD_WAIT, Manager, build_example, config_dir, free_port, wait_until};
use serde_json::json;

fn build_js_verifier() -> PathBuf {
    build_example("js-verifier")
}

/// True once pymanager listens, or once it has said why it never will.
fn listening_or_failed(m: &Manager) -> bool {
    let out = m.output();
    out.contains("REST API listening") || out.contains("[ERROR]")
}

/// Waits (through the first compile of the component) until `m` listens; fails with its
/// output if it fails first.
fn wait_listening(m: &Manager) {
    assert!(
        wait_until(BUILD_WAIT, || listening_or_failed(m))
            && m.output().contains("REST API listening"),
        "{}",
        m.output()
    );
}

/// A config in a fresh directory running `server` (a node one-liner) verified by the JS
/// example's JsonField, with the component copied beside it.
fn config(wasm: &Path, port: u16, server: &str) -> tempfile::TempDir {
    let cfg = json!({
        "modules": { "jsverify": { "path": "verifier.wasm", "allow": { "hosts": [format!("127.0.0.1:{port}")] } } },
        "messages": ["verifier.fail"],
        "http": { "enabled": true },
        "processes": {
            "api": {
                "executable": "node",
                "arguments": ["-e", server, port.to_string()],
                "verifier": {
                    "type": "jsverify.JsonField",
                    "arguments": { "url": format!("http://127.0.0.1:{port}/health"), "field": "status",
                                   "equals": "ok", "timeout": 60, "interval": 0.1 }
                }
            }
        }
    });
    let dir = config_dir(&cfg);
    std::fs::copy(wasm, dir.path().join("verifier.wasm")).unwrap();
    dir
}

/// Answers `{"status": "starting"}` twice, then `{"status": "ok"}`.
const HEALTHY: &str = "let n = 0; require('http').createServer((q, s) => { n += 1; \
    s.setHeader('content-type', 'application/json'); \
    s.end(JSON.stringify({status: n > 2 ? 'ok' : 'starting'})); \
    }).listen(Number(process.argv[1]), '127.0.0.1');";

/// Answers HTML: the verifier's JSON.parse throws a SyntaxError.
const HTML: &str = "require('http').createServer((q, s) => s.end('<html>hello</html>'))\
    .listen(Number(process.argv[1]), '127.0.0.1');";

#[test]
fn a_javascript_verifier_verifies_a_real_process_and_fails_with_a_throws_message() {
    let wasm = build_js_verifier();

    // Passes once the real server says "ok"; -d returns 0 only then.
    let port = free_port();
    let mut m = Manager::start_in(config(&wasm, port, HEALTHY), &["-v"]);
    wait_listening(&m);
    m.wait_status("running");
    assert!(
        m.output()
            .contains("status is \"starting\", expected \"ok\""),
        "{}",
        m.output()
    );
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0, "{}", m.output());

    // A thrown Error fails the verification with its message (exit 5), not a crash.
    let port = free_port();
    let mut m = Manager::start_in(config(&wasm, port, HTML), &[]);
    let status = m.wait_exit_within(BUILD_WAIT).map(|s| s.code());
    assert_eq!(status, Some(Some(5)), "{}", m.output());
    let out = m.output();
    assert!(
        out.contains(&format!(
            "http://127.0.0.1:{port}/health did not answer JSON (JSON.parse: unexpected character"
        )),
        "{out}"
    );
    assert!(!out.contains("unreachable"), "{out}");
}

/// The RSS of the manager (the child of the guardian `pymanager` starts), in KiB.
fn manager_rss_kib(guardian: u32) -> u64 {
    let children = std::fs::read_to_string(format!("/proc/{guardian}/task/{guardian}/children"))
        .unwrap_or_default();
    let manager = children
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("the guardian {guardian} has no child"));
    let status = std::fs::read_to_string(format!("/proc/{manager}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// Runs a manager that loads the JS component (compiling it or reading it from `cache`),
/// waits until it runs, and returns its RSS in KiB and whether it compiled.
fn rss_after_load(wasm: &Path, cache: &Path) -> (u64, bool) {
    let cfg = json!({
        "modules": { "jsverify": { "path": "verifier.wasm" } },
        "http": { "enabled": true },
        "processes": { "idle": { "executable": "sleep", "arguments": ["600"] } }
    });
    let dir = config_dir(&cfg);
    std::fs::copy(wasm, dir.path().join("verifier.wasm")).unwrap();
    let m = Manager::start_env(dir, &["-v"], &[("XDG_CACHE_HOME", cache)]);
    wait_listening(&m);
    m.wait_status("running");
    let rss = manager_rss_kib(m.pid());
    let compiled = m.output().contains("jsverify") && m.output().contains(") compiled in");
    m.signal(libc::SIGTERM);
    (rss, compiled)
}

#[test]
fn compiling_a_large_component_leaves_the_manager_as_small_as_the_cache_does() {
    let wasm = build_js_verifier();
    let cache = tempfile::tempdir().unwrap();
    let (after_compile, compiled) = rss_after_load(&wasm, cache.path());
    assert!(compiled, "the first run compiles");
    let (from_cache, compiled) = rss_after_load(&wasm, cache.path());
    assert!(!compiled, "the second run reads the cache");
    let (a, c) = (after_compile / 1024, from_cache / 1024);
    eprintln!("RSS after compiling: {a} MiB; after loading from the cache: {c} MiB");
    // The compile runs in a child process that fills the cache; the manager then maps the
    // entry as a later run does, so it must end up (nearly) as small.
    assert!(
        after_compile <= from_cache + 10 * 1024,
        "RSS after compiling {a} MiB, from the cache {c} MiB"
    );
}

/// The glue's `message` (what a throw becomes) run by node on its own, its WIT imports
/// stubbed by a loader hook: a plain object reads as JSON, not `[object Object]`; an
/// object's `message` is its message; what JSON cannot show falls back to `String()`.
#[test]
fn a_thrown_object_reads_as_json_not_object_object() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stub.mjs"),
        "export async function resolve(spec, ctx, next) {\n\
         if (spec.startsWith('pymanager:')) return { url: 'data:text/javascript,export {}', shortCircuit: true };\n\
         return next(spec, ctx);\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("register.mjs"),
        "import { register } from 'node:module';\nregister(new URL('./stub.mjs', import.meta.url));\n",
    )
    .unwrap();
    let glue = common::example_dir("js-verifier").join("src/pymanager.js");
    let script = format!(
        "const m = await import({glue:?}); const cyc = {{}}; cyc.self = cyc;\n\
         for (const v of [{{a: 1}}, {{message: 'no db'}}, [1, 'b'], cyc, new TypeError('t')])\n\
         console.log(m.message(v));"
    );
    let out = std::process::Command::new("node")
        .current_dir(dir.path())
        .args([
            "--import",
            "./register.mjs",
            "--input-type=module",
            "-e",
            &script,
        ])
        .output()
        .expect("node");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"a\":1}\nno db\n[1,\"b\"]\n[object Object]\nTypeError: t\n"
    );
}
