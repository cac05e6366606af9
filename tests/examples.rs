//! The verifier examples build and run from a copy anywhere, as their READMEs say: each
//! carries what it builds against (its own copy of the WIT), so `build.sh` in a copy of
//! the folder, run from yet another directory, makes a component the copied config runs.

mod common;

use std::path::Path;
use std::process::Command;

use common::{BUILD_WAIT, Manager, build_example, example_dir, wait_until};

/// What the build makes or fetches, which the copy does not take.
const BUILT: &[&str] = &[".venv", "node_modules", "verifier.wasm", "__pycache__"];

/// Copies the example `name` into a fresh directory (modification times kept, so that the
/// build sees the same "up to date" as in the checkout), except what its build makes;
/// its installed tools (`tools`: the venv, node_modules) are linked, not copied, so that
/// the copy builds without downloading them again.
fn copy_of(name: &str, tools: &str) -> tempfile::TempDir {
    build_example(name);
    let from = example_dir(name);
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        let file = entry.file_name();
        let file = file.to_str().unwrap();
        if BUILT.contains(&file) || file.ends_with(".tmp") {
            continue;
        }
        let st = Command::new("cp")
            .arg("-Rp")
            .arg(entry.path())
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "cp {file}");
    }
    std::os::unix::fs::symlink(from.join(tools), dir.path().join(tools)).unwrap();
    dir
}

/// Runs the copy's `build.sh` from another directory; panics with its output if it fails.
fn build_in(copy: &Path) {
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new("sh")
        .arg(copy.join("build.sh"))
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "build.sh in a copy failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(copy.join("verifier.wasm").is_file());
}

/// Runs the copied config until its process is verified.
fn runs(copy: tempfile::TempDir) {
    let mut m = Manager::start_in(copy, &["-v"]);
    let out = || m.output();
    assert!(
        wait_until(BUILD_WAIT, || out()
            .contains("[INFO] all processes are running")
            || out().contains("[ERROR]")),
        "{}",
        out()
    );
    assert!(
        out().contains("[INFO] all processes are running"),
        "{}",
        out()
    );
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0, "{}", m.output());
}

#[test]
fn the_python_example_builds_and_runs_from_a_copy_elsewhere() {
    let copy = copy_of("python-verifier", ".venv");
    build_in(copy.path());
    runs(copy);
}

#[test]
fn the_javascript_example_builds_and_runs_from_a_copy_elsewhere() {
    let copy = copy_of("js-verifier", "node_modules");
    build_in(copy.path());
    runs(copy);
}
