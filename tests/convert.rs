//! `pymanager export` and `pymanager import`, end to end with the real binary: golden files
//! of every mapping (the warnings included), `--strict`, the targets' own validators on
//! every example (docker-compose 1.29.2 and the compose-spec schema, kubernetes-validate,
//! systemd-analyze), imported configs run for real, and import → export → import.
//!
//! The validators come from `scripts/test-deps.sh` (under `target/validators`). Without
//! them a test says so and passes, except in CI (`CI` set), where it fails.
//! `PYMANAGER_WRITE_GOLDEN=1` rewrites the golden files.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/convert")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `pymanager <args>` in `dir`, with a fixed environment for `${env.…}`.
/// `pymanager <args...>` in `dir`, with the environment the kitchen-sink config reads.
fn run(dir: &Path, args: &[&str]) -> Output {
    output_of(pymanager(args).current_dir(dir).env("KITCHEN_MODE", "prod"))
}

/// The stdout of a command that must have succeeded.
fn ok(out: &Output) -> String {
    assert_code(out, 0);
    stdout(out)
}

fn golden(name: &str, have: &str) {
    let path = fixtures().join("golden").join(name);
    if std::env::var_os("PYMANAGER_WRITE_GOLDEN").is_some() {
        std::fs::write(&path, have).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        want == have,
        "{name} differs from {} (PYMANAGER_WRITE_GOLDEN=1 rewrites it):\n{have}",
        path.display()
    );
}

/// A validator under target/validators, or `None` (and a line saying so) outside CI.
fn validator(rel: &str) -> Option<PathBuf> {
    let path = repo().join("target/validators").join(rel);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: scripts/test-deps.sh installs it",
        path.display()
    );
    eprintln!(
        "skipped: {} is missing (scripts/test-deps.sh installs it)",
        path.display()
    );
    None
}

/// The systemd units of `out_dir`, one after another, for a golden file.
fn units_text(dir: &Path, launch: &Path) -> String {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut all = String::new();
    for n in names {
        all.push_str(&format!("### {n}\n"));
        all.push_str(&std::fs::read_to_string(dir.join(&n)).unwrap());
    }
    all.replace(&launch.to_string_lossy().into_owned(), "/launch")
        .replace(&bin().to_string_lossy().into_owned(), "/usr/bin/pymanager")
}

/// Exports the kitchen-sink config to `target` (in the fixtures' directory, where its
/// environment file is); the output and the warnings.
fn export_kitchen(target: &str) -> (String, String) {
    let dir = fixtures();
    let out = match target {
        "systemd" => {
            let units = tempfile::tempdir().unwrap();
            let o = units.path().join("units");
            let out = run(
                &dir,
                &[
                    "export",
                    "systemd",
                    "-f",
                    "kitchen.json",
                    "-o",
                    o.to_str().unwrap(),
                    "--pymanager",
                    bin().to_str().unwrap(),
                ],
            );
            ok(&out);
            return (units_text(&o, &dir.canonicalize().unwrap()), stderr(&out));
        }
        "compose" | "k8s" => run(
            &dir,
            &[
                "export",
                target,
                "-f",
                "kitchen.json",
                "--image",
                "example/app:2",
            ],
        ),
        _ => run(&dir, &["export", target, "-f", "kitchen.json"]),
    };
    (ok(&out), stderr(&out))
}

#[test]
fn every_mapping_of_the_kitchen_sink_config_and_every_warning_are_as_recorded() {
    for (target, ext) in [
        ("compose", "compose.yaml"),
        ("k8s", "k8s.yaml"),
        ("systemd", "systemd"),
        ("procfile", "Procfile"),
        ("process-compose", "process-compose.yaml"),
    ] {
        let (output, warnings) = export_kitchen(target);
        golden(&format!("kitchen.{ext}"), &output);
        golden(&format!("kitchen.{ext}.warnings"), &warnings);
        for line in warnings.lines() {
            assert!(line.starts_with("[WARNING] processes."), "{target}: {line}");
        }
    }
}

#[test]
fn strict_makes_a_loss_exit_5_and_writes_nothing() {
    let dir = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("out.yaml");
    let out = run(
        &dir,
        &[
            "export",
            "compose",
            "-f",
            "kitchen.json",
            "--image",
            "x",
            "--strict",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(!file.exists(), "nothing written");
    let err = stderr(&out);
    assert!(err.contains("[WARNING] processes.db.liveness: "), "{err}");
    assert!(
        err.lines().last().unwrap().starts_with("[ERROR] export: ")
            && err.contains("not carried over (--strict makes each loss an error)"),
        "{err}"
    );
    let out = run(
        &dir,
        &[
            "import",
            "process-compose",
            "process-compose.yaml",
            "--strict",
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(out.stdout.is_empty());
    // Nothing lost: --strict changes nothing.
    let cfg = tmp.path().join("plain.json");
    std::fs::write(
        &cfg,
        json!({"processes": {"job": {"executable": "sleep", "arguments": ["1"]}}}).to_string(),
    )
    .unwrap();
    let out = run(
        tmp.path(),
        &[
            "export",
            "compose",
            "-f",
            "plain.json",
            "--image",
            "busybox",
            "--strict",
        ],
    );
    assert!(ok(&out).contains("  job:\n    image: busybox\n"));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}

#[test]
fn wrong_flags_and_missing_images_are_one_line() {
    let dir = fixtures();
    let out = run(&dir, &["export", "compose", "-f", "kitchen.json"]);
    assert_eq!(out.status.code(), Some(5));
    assert!(
        stderr(&out).contains("processes.migrate.export.image: no image to run it in: give --image IMAGE, or set this key"),
        "{}",
        stderr(&out)
    );
    let out = run(
        &dir,
        &["export", "procfile", "-f", "kitchen.json", "--image", "x"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "[ERROR] export: --image applies to compose and k8s only\n"
    );
    let out = run(&dir, &["export", "systemd", "-f", "kitchen.json"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&dir, &["import", "procfile", "no-such-Procfile"]);
    assert_eq!(out.status.code(), Some(1));
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("bad.yaml"), "processes: [1, 2\n").unwrap();
    let out = run(tmp.path(), &["import", "process-compose", "bad.yaml"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    std::fs::write(
        tmp.path().join("pc.yaml"),
        "processes:\n  a:\n    command: x\n    depends_on:\n      b:\n        condition: process_done\n",
    )
    .unwrap();
    let out = run(tmp.path(), &["import", "process-compose", "pc.yaml"]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(
        stderr(&out),
        "[ERROR] import: pc.yaml: processes.a.depends_on.b.condition: unknown condition \"process_done\"\n"
    );
}

/// Every example config, and the kitchen sink.
fn configs() -> Vec<(PathBuf, String)> {
    let mut list = vec![(fixtures(), "kitchen.json".to_string())];
    let ex = repo().join("examples");
    for entry in std::fs::read_dir(&ex).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            list.push((
                repo(),
                format!("examples/{}", path.file_name().unwrap().to_string_lossy()),
            ));
        } else if path.join("pymanager.json").is_file() {
            list.push((
                repo(),
                format!(
                    "examples/{}/pymanager.json",
                    path.file_name().unwrap().to_string_lossy()
                ),
            ));
        }
    }
    assert!(list.len() >= 4, "{list:?}");
    list
}

#[test]
fn every_example_exported_to_compose_is_accepted_by_docker_compose_and_the_compose_spec_schema() {
    let Some(compose) = validator("compose/bin/docker-compose") else {
        return;
    };
    let python = repo().join("target/validators/compose/bin/python");
    let tmp = tempfile::tempdir().unwrap();
    for (dir, file) in configs() {
        let out_file = tmp.path().join("docker-compose.yml");
        ok(&run(
            &dir,
            &[
                "export",
                "compose",
                "-f",
                &file,
                "--image",
                "example/env:1",
                "-o",
                out_file.to_str().unwrap(),
            ],
        ));
        let check = Command::new(&compose)
            .args(["-f", out_file.to_str().unwrap(), "config", "-q"])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{file}: docker-compose config: {}",
            stderr(&check)
        );
        // The compose-spec schema docker-compose ships, checked on its own.
        let script = "import json, sys, yaml, jsonschema, compose.config as c, os\n\
                      schema = json.load(open(os.path.join(os.path.dirname(c.__file__), 'compose_spec.json')))\n\
                      jsonschema.validate(yaml.safe_load(open(sys.argv[1])), schema)\n";
        let check = Command::new(&python)
            .args(["-c", script, out_file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{file}: compose-spec schema: {}",
            stderr(&check)
        );
    }
    // And the validator does refuse what is not a compose file.
    std::fs::write(
        tmp.path().join("bad.yml"),
        "services:\n  a:\n    image: x\n    restart: sometimes\n    bogus: 1\n",
    )
    .unwrap();
    let check = Command::new(&compose)
        .args(["-f", "bad.yml", "config", "-q"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(!check.status.success());
}

#[test]
fn every_example_exported_to_k8s_is_accepted_by_kubernetes_validate_strict() {
    let Some(validate) = validator("k8s/bin/kubernetes-validate") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for (dir, file) in configs() {
        let out_file = tmp.path().join("k8s.yaml");
        ok(&run(
            &dir,
            &[
                "export",
                "k8s",
                "-f",
                &file,
                "--image",
                "example/env:1",
                "--namespace",
                "ci",
                "-o",
                out_file.to_str().unwrap(),
            ],
        ));
        let check = Command::new(&validate)
            .args([
                "--strict",
                "--kubernetes-version",
                "1.31.0",
                out_file.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{file}: {}{}",
            stdout(&check),
            stderr(&check)
        );
        assert!(stdout(&check).contains("passed"), "{}", stdout(&check));
    }
    std::fs::write(
        tmp.path().join("bad.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {portz: []}\n",
    )
    .unwrap();
    let check = Command::new(&validate)
        .args(["--strict", "--kubernetes-version", "1.31.0", "bad.yaml"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(!check.status.success());
}

#[test]
fn every_example_exported_to_systemd_is_accepted_by_systemd_analyze_verify() {
    let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let Some(analyze) = analyze else {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is missing (Debian's systemd package)"
        );
        eprintln!("skipped: no systemd-analyze here");
        return;
    };
    for (dir, file) in configs() {
        let tmp = tempfile::tempdir().unwrap();
        let units = tmp.path().join("units");
        ok(&run(
            &dir,
            &[
                "export",
                "systemd",
                "-f",
                &file,
                "-o",
                units.to_str().unwrap(),
                "--pymanager",
                bin().to_str().unwrap(),
                "--unit-prefix",
                "ci-",
            ],
        ));
        let mut files: Vec<PathBuf> = std::fs::read_dir(&units)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(
            files
                .iter()
                .all(|f| f.file_name().unwrap().to_string_lossy().starts_with("ci-"))
        );
        let check = Command::new(&analyze)
            .arg("verify")
            .args(&files)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            check.status.success() && check.stderr.is_empty(),
            "{file}: {}{}",
            stdout(&check),
            stderr(&check)
        );
    }
}

#[test]
fn imports_of_a_procfile_and_a_process_compose_file_are_as_recorded() {
    let dir = fixtures();
    let out = run(&dir, &["import", "procfile", "Procfile"]);
    golden("Procfile.json", &ok(&out));
    golden("Procfile.warnings", &stderr(&out));
    let out = run(&dir, &["import", "process-compose", "process-compose.yaml"]);
    golden("process-compose.json", &ok(&out));
    golden("process-compose.warnings", &stderr(&out));
}

/// Starts `cfg` (an imported config, with the API turned on) in `dir` and waits until
/// everything is started and verified.
fn run_for_real(dir: tempfile::TempDir, mut cfg: Value) -> Manager {
    cfg["http"] = json!({"enabled": true, "port": 0});
    std::fs::write(dir.path().join("pymanager.json"), cfg.to_string()).unwrap();
    let m = Manager::start_in(dir, &[]);
    m.wait_status("running");
    m
}

fn get(url: &str) -> bool {
    client()
        .get(url)
        .send()
        .is_ok_and(|r| r.status().is_success())
}

#[test]
fn an_imported_procfile_runs_with_foremans_ports_and_its_env() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_port_trio();
    std::fs::copy(fixtures().join("Procfile"), dir.path().join("Procfile")).unwrap();
    std::fs::copy(fixtures().join(".env"), dir.path().join(".env")).unwrap();
    let out = run(
        dir.path(),
        &[
            "import",
            "procfile",
            "Procfile",
            "--port-base",
            &base.to_string(),
        ],
    );
    let cfg: Value = serde_json::from_str(&ok(&out)).unwrap();
    let m = run_for_real(dir, cfg);
    // web got PORT = the base, as foreman gives the first process type.
    assert!(wait_until(WAIT, || get(&format!(
        "http://127.0.0.1:{base}/"
    ))));
    assert!(m.wait_output("working in staging"), "{}", m.output());
    assert!(
        m.wait_output(&format!("tick from hello world on {}", base + 200)),
        "{}",
        m.output()
    );
    let mut m = m;
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0, "{}", m.output());
}

/// The process-compose fixture with its two fixed ports replaced by free ones.
fn process_compose_on_free_ports() -> (String, u16, u16) {
    let (a, b) = (free_port(), free_port());
    let text = std::fs::read_to_string(fixtures().join("process-compose.yaml"))
        .unwrap()
        .replace("18461", &a.to_string())
        .replace("18462", &b.to_string());
    (text, a, b)
}

#[test]
fn an_imported_process_compose_file_starts_and_verifies_for_real() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("work")).unwrap();
    let (yaml, db, api) = process_compose_on_free_ports();
    std::fs::write(dir.path().join("process-compose.yaml"), yaml).unwrap();
    let out = run(
        dir.path(),
        &["import", "process-compose", "process-compose.yaml"],
    );
    let cfg: Value = serde_json::from_str(&ok(&out)).unwrap();
    let m = run_for_real(dir, cfg);
    let v1 = |name: &str| m.v1_process(name);
    for name in ["db", "api", "logger"] {
        assert_eq!(
            v1(name)["verifier"]["outcome"],
            "passed",
            "{name}: {}",
            v1(name)
        );
    }
    assert!(
        m.path("work/migrated").exists(),
        "migrate ran in its working_dir"
    );
    assert!(get(&format!("http://127.0.0.1:{db}/")) && get(&format!("http://127.0.0.1:{api}/")));
    assert!(m.wait_output("migrating demo"), "{}", m.output());
    assert!(m.wait_output("report done"), "{}", m.output());
    assert_eq!(v1("db")["liveness"]["type"], "http");
    let mut m = m;
    m.signal(libc::SIGTERM);
    assert_eq!(m.wait_exit(), 0, "{}", m.output());
}

#[test]
fn import_then_export_then_import_keeps_what_both_sides_express() {
    let dir = tempfile::tempdir().unwrap();
    let (yaml, ..) = process_compose_on_free_ports();
    std::fs::write(dir.path().join("first.yaml"), yaml).unwrap();
    let first = ok(&run(
        dir.path(),
        &["import", "process-compose", "first.yaml"],
    ));
    std::fs::write(dir.path().join("first.json"), &first).unwrap();
    ok(&run(
        dir.path(),
        &[
            "export",
            "process-compose",
            "-f",
            "first.json",
            "-o",
            "second.yaml",
        ],
    ));
    let second = ok(&run(
        dir.path(),
        &["import", "process-compose", "second.yaml"],
    ));
    let (a, b): (Value, Value) = (
        serde_json::from_str(&first).unwrap(),
        serde_json::from_str(&second).unwrap(),
    );
    assert_eq!(
        a,
        b,
        "second.yaml:\n{}",
        std::fs::read_to_string(dir.path().join("second.yaml")).unwrap()
    );

    // A Procfile (and the .env beside it) the same way.
    std::fs::copy(fixtures().join("Procfile"), dir.path().join("Procfile")).unwrap();
    std::fs::copy(fixtures().join(".env"), dir.path().join(".env")).unwrap();
    let first = ok(&run(dir.path(), &["import", "procfile", "Procfile"]));
    std::fs::write(dir.path().join("procfile.json"), &first).unwrap();
    std::fs::create_dir(dir.path().join("again")).unwrap();
    std::fs::copy(fixtures().join(".env"), dir.path().join("again/.env")).unwrap();
    ok(&run(
        dir.path(),
        &[
            "export",
            "procfile",
            "-f",
            "procfile.json",
            "-o",
            "again/Procfile",
        ],
    ));
    let second = ok(&run(dir.path(), &["import", "procfile", "again/Procfile"]));
    assert_eq!(
        serde_json::from_str::<Value>(&first).unwrap(),
        serde_json::from_str::<Value>(&second).unwrap()
    );
}

#[test]
fn the_moving_on_page_shows_what_export_writes_and_warns() {
    let page = std::fs::read_to_string(repo().join("docs/moving-on.md")).unwrap();
    for target in ["compose", "process-compose"] {
        let mut args = vec!["export", target, "-f", "examples/orchestration.json"];
        if target == "compose" {
            args.extend(["--image", "example/env:1"]);
        }
        let out = run(&repo(), &args);
        let written = ok(&out);
        assert!(
            page.contains(&written),
            "docs/moving-on.md lacks the {target} export of examples/orchestration.json:\n{written}"
        );
        assert!(
            page.contains(&stderr(&out)),
            "docs/moving-on.md lacks the {target} warnings"
        );
    }
}
