//! Builds the built-in verifiers and the test guests as `wasm32-wasip2` components, so that
//! a plain `cargo build` / `cargo test` at the workspace root does everything.
//!
//! A nested `cargo build --target wasm32-wasip2 --profile guest` runs on the guest crates
//! (workspace members) with its own target dir, `<workspace>/target/guests`, so that it
//! never waits on the outer build's lock, and with the outer build's flags removed from its
//! environment (they are for the host target). The paths of the built components are
//! handed to the host crate as `PYMANAGER_BUILTIN_<NAME>` (embedded with `include_bytes!`)
//! and `PYMANAGER_TEST_GUEST_<NAME>` (read by the tests).

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, exit};

const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "guest";

/// (package, lib name, env var) of each built-in verifier.
const BUILTINS: &[(&str, &str, &str)] = &[
    ("verifier-http", "verifier_http", "PYMANAGER_BUILTIN_HTTP"),
    (
        "verifier-exited",
        "verifier_exited",
        "PYMANAGER_BUILTIN_EXITED",
    ),
    ("verifier-tcp", "verifier_tcp", "PYMANAGER_BUILTIN_TCP"),
    (
        "verifier-output",
        "verifier_output",
        "PYMANAGER_BUILTIN_OUTPUT",
    ),
];

/// Test guests under tests/guests (package `guest-<name>`).
const TEST_GUESTS: &[&str] = &[
    "looper",
    "membomb",
    "trapper",
    "fileopen",
    "socket",
    "httpgrant",
    "good",
    "v100",
    "v110",
    "replayer",
];

/// Environment variables of the outer build that must not reach the nested one: they
/// describe the host target, the outer profile, or the outer package.
fn is_outer_only(key: &str) -> bool {
    const KEEP: &[&str] = &[
        "CARGO_HOME",
        "CARGO_MAKEFLAGS",
        "CARGO_NET_OFFLINE",
        "CARGO_TERM_COLOR",
        "CARGO_HTTP_TIMEOUT",
    ];
    if KEEP.contains(&key)
        || key.starts_with("CARGO_REGISTRIES_")
        || key.starts_with("CARGO_REGISTRY_")
        || key.starts_with("CARGO_HTTP_")
        || key.starts_with("CARGO_NET_")
    {
        return false;
    }
    key.starts_with("CARGO_")
        || matches!(
            key,
            "RUSTFLAGS"
                | "RUSTDOCFLAGS"
                | "RUSTC_WORKSPACE_WRAPPER"
                | "RUSTC_LINKER"
                | "OUT_DIR"
                | "TARGET"
                | "HOST"
                | "OPT_LEVEL"
                | "PROFILE"
                | "DEBUG"
                | "NUM_JOBS"
                | "CLIPPY_ARGS"
                | "__CARGO_FIX_PLZ"
        )
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("workspace root").to_path_buf();
    for dir in ["guest-sdk", "verifiers", "tests/guests", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.lock").display()
    );

    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if !target_installed(&rustc) {
        println!("cargo::error=the {TARGET} target is missing: run 'rustup target add {TARGET}'");
        exit(0);
    }

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = root.join("target").join("guests");
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "--target",
            TARGET,
            "--profile",
            PROFILE,
            "--target-dir",
        ])
        .arg(&target_dir);
    for (pkg, _, _) in BUILTINS {
        cmd.args(["-p", pkg]);
    }
    for g in TEST_GUESTS {
        cmd.args(["-p", &format!("guest-{g}")]);
    }
    for (key, _) in env::vars_os() {
        if key.to_str().is_some_and(is_outer_only) {
            cmd.env_remove(&key);
        }
    }
    // The outer rustc (maybe a rustup proxy) is the one whose sysroot has the target.
    cmd.env("RUSTC", &rustc);
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => {
            println!("cargo::error=could not run {cargo} to build the verifier components: {e}");
            exit(0);
        }
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
            println!("cargo::warning={line}");
        }
        println!(
            "cargo::error=building the verifier components for {TARGET} failed (see the warnings above)"
        );
        exit(0);
    }

    let built = target_dir.join(TARGET).join(PROFILE);
    for (_, lib, var) in BUILTINS {
        emit(var, &built.join(format!("{lib}.wasm")));
    }
    for g in TEST_GUESTS {
        emit(
            &format!("PYMANAGER_TEST_GUEST_{}", g.to_ascii_uppercase()),
            &built.join(format!("guest_{g}.wasm")),
        );
    }
}

fn emit(var: &str, path: &Path) {
    if !path.is_file() {
        println!("cargo::error={} was not built", path.display());
        exit(0);
    }
    println!("cargo:rustc-env={var}={}", path.display());
}

/// True when `rustc`'s sysroot has the standard library for the guest target.
fn target_installed(rustc: &str) -> bool {
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .join("lib")
        .is_dir()
}
