//! What the docs state as facts, checked against the code: the README's defaults are the
//! loader's, the paths it names exist, and the grants tables say what a module without a
//! grant reaches (`tests/grants.rs` shows the behaviour itself). The docs' commands are run
//! by `scripts/doc-commands.sh`, from a directory outside the checkout.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(file: &str) -> String {
    std::fs::read_to_string(root().join(file)).unwrap()
}

/// `text` with every run of white space one space, so that a phrase is found across the
/// lines it wraps over.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first fenced block of `lang` after `marker` in `text`.
fn block_after<'a>(text: &'a str, marker: &str, lang: &str) -> &'a str {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in the text"));
    let open = format!("```{lang}\n");
    let start = text[at..].find(&open).expect("a fenced block") + at + open.len();
    let end = text[start..].find("```").expect("its end") + start;
    &text[start..end]
}

fn config(json: &str) -> pymanager::config::Config {
    pymanager::config::parse(json.as_bytes(), Path::new("README.md"))
        .unwrap_or_else(|e| panic!("{e}: {json}"))
        .config
}

#[test]
fn the_readmes_defaults_are_the_loaders() {
    let readme = read("README.md");
    let shown = block_after(
        &readme,
        "Every key of the original, with its default",
        "json",
    );
    let shown = config(shown);
    // The same process, every key left out.
    let web = &shown.processes["web"];
    let bare = config(
        &serde_json::json!({"processes": {"web": {
            "executable": web.executable, "arguments": web.arguments}}})
        .to_string(),
    );
    let same = |what: &str, a: String, b: String| assert_eq!(a, b, "README.md shows {what}");
    same(
        "modules",
        format!("{:?}", shown.modules),
        format!("{:?}", bare.modules),
    );
    same(
        "http",
        format!("{:?}", shown.http),
        format!("{:?}", bare.http),
    );
    same(
        "keep-alive",
        shown.keep_alive.to_string(),
        bare.keep_alive.to_string(),
    );
    same(
        "graceful_time",
        format!("{:?}", shown.graceful_time),
        format!("{:?}", bare.graceful_time),
    );
    same(
        "default_shell",
        format!("{:?}", shown.default_shell),
        format!("{:?}", bare.default_shell),
    );
    same(
        "messages",
        format!("{:?}", shown.messages()),
        format!("{:?}", bare.messages()),
    );
    same(
        "options",
        format!("{:?}", web.options),
        format!("{:?}", bare.processes["web"].options),
    );
}

#[test]
fn the_paths_the_readmes_layout_names_exist() {
    let readme = read("README.md");
    let layout = block_after(&readme, "## Development", "text");
    let host = layout
        .lines()
        .find(|l| l.starts_with("host/"))
        .expect("the host/ line");
    let names: Vec<&str> = host
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .filter(|w| w.ends_with(".rs") || (w.ends_with('/') && *w != "host/"))
        .collect();
    assert!(names.len() >= 5, "{host}");
    for name in names {
        assert!(
            root().join("host/src").join(name).exists(),
            "README.md's layout names host/src/{name}, which does not exist: {host}"
        );
    }
}

/// The cells of the first table row of docs/verifiers.md that starts with `start`.
fn row(start: &str) -> Vec<String> {
    let doc = read("docs/verifiers.md");
    let line = doc
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("docs/verifiers.md: no row {start}"));
    line.split('|').map(|c| c.trim().to_string()).collect()
}

/// The row of the grants table whose first cell starts with `kind`.
fn grants_row(kind: &str) -> Vec<String> {
    row(&format!("| {kind}"))
}

#[test]
fn the_docs_say_a_module_without_a_grant_reaches_nothing() {
    // tests/grants.rs: an ungranted module reaches neither the API nor another loopback
    // port.
    let row = grants_row("a `.wasm` under `modules`");
    assert!(row[2].starts_with("nothing"), "docs/verifiers.md: {row:?}");
    let row = grants_row("`pymanager verify --module`");
    assert!(row[2].contains("nothing"), "docs/verifiers.md: {row:?}");
    let readme = read("README.md");
    let differences = &readme[readme.find("## Differences from the original").unwrap()..];
    assert!(
        flat(differences).contains("reaches nothing unless `allow.hosts`"),
        "README.md's differences"
    );
    assert!(
        flat(&read("guest-sdk/README.md")).contains("nothing by default"),
        "guest-sdk/README.md"
    );
}

/// The size a table row of docs/verifiers.md's **Measured** section gives the component
/// named in its first cell (`| \`pymutils.http_verifier\` | 179 KiB | …`), in KiB.
fn documented_kib(name: &str) -> u64 {
    let cells = row(&format!("| `{name}` |"));
    cells[2]
        .strip_suffix(" KiB")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("docs/verifiers.md: no size in KiB for {name}: {cells:?}"))
}

#[test]
fn the_component_sizes_the_docs_give_are_the_built_components() {
    let mut components: Vec<(&str, u64)> = pymanager::runtime::BUILTINS
        .iter()
        .filter_map(|b| Some((b.module, b.component?.len() as u64)))
        .collect();
    let good = std::fs::metadata(env!("PYMANAGER_TEST_GUEST_GOOD"))
        .unwrap()
        .len();
    components.push(("tests/guests/good", good));
    assert_eq!(components.len(), 5);
    for (name, bytes) in components {
        let kib = bytes / 1024;
        let shown = documented_kib(name);
        assert!(
            shown.abs_diff(kib) <= 2,
            "docs/verifiers.md gives {name} as {shown} KiB; it is {kib} KiB: measure again \
             (cargo bench -p pymanager --bench runtime) and write what it says"
        );
    }
}

/// Every command a README or doc shows is either run by `scripts/doc-commands.py` (in CI,
/// from a directory outside the checkout) or skipped there with its reason: a command
/// added to the docs without either fails here, at once.
#[test]
fn every_command_the_docs_show_is_run_or_skipped_by_the_doc_commands_script() {
    let out = std::process::Command::new("python3")
        .arg(root().join("scripts/doc-commands.py"))
        .arg("--check")
        .output()
        .expect("run python3 scripts/doc-commands.py --check");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
