//! The guest SDK stands alone: its copy of the WIT is the repository's, it packages, and a
//! verifier builds against the packaged crate outside the workspace and runs.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::pymanager;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The SDK and each verifier example carry a copy of the WIT (so that each builds on its
/// own, anywhere); every copy is the repository's.
#[test]
fn every_copy_of_the_wit_is_the_repositorys() {
    let ours = std::fs::read(root().join("wit/verifier.wit")).unwrap();
    for copy in [
        "guest-sdk/wit/verifier.wit",
        "examples/python-verifier/wit/verifier.wit",
        "examples/js-verifier/wit/verifier.wit",
    ] {
        let theirs = std::fs::read(root().join(copy)).unwrap();
        assert!(
            ours == theirs,
            "{copy} differs from wit/verifier.wit: copy it over"
        );
    }
}

/// `cargo` with the outer build's settings removed (they describe the host target).
fn cargo(dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_") && key != "CARGO_HOME" || key.contains("RUSTFLAGS") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run cargo");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const VERIFIER: &str = r#"
use pymanager_guest::{Verifier, export_verifiers, process};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    after_year: u64,
}

/// Passes when the process runs and the wall clock is past `after_year`.
struct Clocked;
impl Verifier for Clocked {
    type Args = Args;
    fn verify(a: Args) -> Result<(), String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?;
        let year = 1970 + now.as_secs() / 31_557_600;
        if year < a.after_year {
            return Err(format!("the wall clock says {year}"));
        }
        match process::state() {
            process::State::Running(_) => Ok(()),
            s => Err(format!("process {s}")),
        }
    }
}

export_verifiers!(Clocked);
"#;

#[test]
fn a_verifier_builds_against_the_packaged_sdk_outside_the_workspace() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    // Packaged as crates.io would receive it, then unpacked away from the workspace.
    run(cargo(&root())
        .args(["package", "--offline", "--no-verify", "--allow-dirty", "-p"])
        .arg("pymanager-guest-sdk")
        .arg("--target-dir")
        .arg(&target));
    let krate = target.join("package/pymanager-guest-sdk-0.3.0.crate");
    let out = Command::new("tar")
        .arg("xzf")
        .arg(&krate)
        .arg("-C")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sdk = tmp.path().join("pymanager-guest-sdk-0.3.0");

    let mine = tmp.path().join("mine");
    std::fs::create_dir_all(mine.join("src")).unwrap();
    std::fs::write(
        mine.join("Cargo.toml"),
        format!(
            "[package]\nname = \"mine\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\n\
             pymanager-guest-sdk = {{ path = {:?} }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\n\n\
             [workspace]\n",
            sdk.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(mine.join("src/lib.rs"), VERIFIER).unwrap();
    run(cargo(&mine)
        .args([
            "build",
            "--offline",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target));
    let wasm = target.join("wasm32-wasip2/release/mine.wasm");
    assert!(wasm.is_file());

    // And it runs: the wall clock is there, not only elapsed time.
    let out = pymanager(&[])
        .args(["verify", "--module"])
        .arg(&wasm)
        .args(["--verifier", "Clocked", "--args", r#"{"after_year": 2024}"#])
        .env("XDG_CACHE_HOME", tmp.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
