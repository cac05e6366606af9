//! The command line of `export` and `import`: reads the input, calls the conversion,
//! prints the losses on stderr, and writes the output (a file, a directory of units, or
//! stdout).

use std::path::{Path, PathBuf};

use super::source::{self, Inputs};
use super::{ConvertError, Losses};

/// The targets of `pymanager export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// A docker compose file.
    Compose,
    /// Kubernetes manifests.
    K8s,
    /// systemd units and a target grouping them (into the directory -o names).
    Systemd,
    /// A Procfile (foreman, honcho).
    Procfile,
    /// A process-compose.yaml.
    ProcessCompose,
}

/// `pymanager export TARGET`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// What to write.
    #[arg(value_enum)]
    pub target: Target,
    /// Where (a file; a directory for systemd) [default: stdout].
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// The image of every process without its own export.image (compose, k8s).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// The namespace of every object (k8s).
    #[arg(long, value_name = "NAME")]
    pub namespace: Option<String>,
    /// Put before every unit's name (systemd).
    #[arg(long, value_name = "PREFIX", default_value = "")]
    pub unit_prefix: String,
    /// The pymanager binary the units run their checks with (systemd)
    /// [default: this binary].
    #[arg(long, value_name = "PATH")]
    pub pymanager: Option<PathBuf>,
    /// The first number for ports written as 0 (picked at start-up by pymanager).
    #[arg(long, value_name = "PORT", default_value_t = 8000)]
    pub port_base: u16,
    /// Exit 5, writing nothing, if anything cannot be carried over.
    #[arg(long)]
    pub strict: bool,
}

/// The formats of `pymanager import`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A Procfile (foreman, honcho), with the .env beside it.
    Procfile,
    /// A process-compose.yaml.
    ProcessCompose,
}

/// `pymanager import FORMAT FILE`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// What FILE is.
    #[arg(value_enum)]
    pub format: Format,
    /// The file to read.
    #[arg(value_name = "FILE")]
    pub input: PathBuf,
    /// The first process's PORT, as foreman's --port (Procfile; each next one 100 more).
    #[arg(long, value_name = "PORT", default_value_t = 5000)]
    pub port_base: u16,
    /// Exit 5, writing nothing, if anything cannot be carried over.
    #[arg(long)]
    pub strict: bool,
}

/// Runs `pymanager export`; the exit code.
pub fn export(args: &ExportArgs, file: &Path) -> Result<i32, ConvertError> {
    let loaded = crate::config::load(file)?;
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    let env = |name: &str| std::env::var(name).ok();
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read {}: {}",
                path.display(),
                crate::error_text::io(&e)
            )
        })
    };
    let inputs = Inputs {
        env: &env,
        read: &read,
        port_base: args.port_base,
    };
    let from = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string());
    let mut losses = Losses::default();
    let src = source::resolve(&loaded.config, &inputs, &mut losses)?;
    check_flags(args)?;
    let output = match args.target {
        Target::Compose => Output::Text(super::compose::export(
            &src,
            &super::compose::Options {
                image: args.image.as_deref(),
                from: &from,
            },
            &mut losses,
        )?),
        Target::K8s => Output::Text(super::k8s::export(
            &src,
            &super::k8s::Options {
                image: args.image.as_deref(),
                namespace: args.namespace.as_deref(),
                from: &from,
            },
            &mut losses,
        )?),
        Target::Systemd => {
            let cwd = std::env::current_dir().map_err(|e| ConvertError::Usage(e.to_string()))?;
            let pymanager = match &args.pymanager {
                Some(p) => p.clone(),
                None => std::env::current_exe().map_err(|e| ConvertError::Usage(e.to_string()))?,
            };
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "pymanager".into());
            Output::Files(super::systemd::export(
                &src,
                &super::systemd::Options {
                    prefix: &args.unit_prefix,
                    target: &stem,
                    pymanager: &pymanager.to_string_lossy(),
                    launch_dir: &cwd,
                    config_dir: &cwd.join(&loaded.dir).components().collect::<PathBuf>(),
                    from: &from,
                },
                &mut losses,
            ))
        }
        Target::Procfile => Output::Text(super::procfile::export(&src, &mut losses)),
        Target::ProcessCompose => Output::Text(super::process_compose::export(&src, &mut losses)),
    };
    finish(&losses, args.strict, "export")?;
    write(output, args.output.as_deref())?;
    Ok(0)
}

/// Flags that name another target's options are refused, not ignored.
fn check_flags(args: &ExportArgs) -> Result<(), ConvertError> {
    let t = args.target;
    let refuse = |flag: &str, applies: &str| {
        Err(ConvertError::Usage(format!(
            "export: {flag} applies to {applies} only"
        )))
    };
    if args.image.is_some() && !matches!(t, Target::Compose | Target::K8s) {
        return refuse("--image", "compose and k8s");
    }
    if args.namespace.is_some() && t != Target::K8s {
        return refuse("--namespace", "k8s");
    }
    if (!args.unit_prefix.is_empty() || args.pymanager.is_some()) && t != Target::Systemd {
        return refuse("--unit-prefix and --pymanager", "systemd");
    }
    if t == Target::Systemd && args.output.is_none() {
        return Err(ConvertError::Usage(
            "export systemd: -o DIR names the directory the units are written to".into(),
        ));
    }
    Ok(())
}

/// Prints the losses; with `strict`, any is an error.
fn finish(losses: &Losses, strict: bool, what: &str) -> Result<(), ConvertError> {
    for l in losses.lines() {
        eprintln!("{l}");
    }
    if strict && !losses.is_empty() {
        return Err(ConvertError::Strict(format!(
            "{what}: {} {} not carried over",
            losses.lines().len(),
            if losses.lines().len() == 1 {
                "thing is"
            } else {
                "things are"
            }
        )));
    }
    Ok(())
}

/// What a conversion produced.
enum Output {
    /// One document.
    Text(String),
    /// Files by name (systemd units).
    Files(Vec<(String, String)>),
}

fn write(output: Output, to: Option<&Path>) -> Result<(), ConvertError> {
    let fail = |path: &Path, e: std::io::Error| ConvertError::Write {
        path: path.display().to_string(),
        reason: crate::error_text::io(&e),
    };
    match (output, to) {
        (Output::Text(text), None) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            // A closed stdout (`| head`) is a normal end.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        }
        (Output::Text(text), Some(path)) => write_file(path, &text).map_err(|e| fail(path, e))?,
        (Output::Files(files), Some(dir)) => {
            std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
            for (name, text) in files {
                let path = dir.join(&name);
                write_file(&path, &text).map_err(|e| fail(&path, e))?;
                println!("{}", path.display());
            }
        }
        (Output::Files(_), None) => unreachable!("checked by check_flags"),
    }
    Ok(())
}

/// Writes a file the user named, as every output file is opened (a symbolic link another
/// user planted there is refused: see `private_files::open_output`).
fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    crate::private_files::open_output(path, crate::private_files::Output::Replace)?
        .write_all(text.as_bytes())
}

/// Runs `pymanager import`: the pymanager.json on stdout; the exit code.
pub fn import(args: &ImportArgs) -> Result<i32, ConvertError> {
    let path = &args.input;
    let text = std::fs::read_to_string(path).map_err(|e| ConvertError::Import {
        code: if e.kind() == std::io::ErrorKind::NotFound {
            1
        } else {
            2
        },
        message: format!(
            "cannot read {}: {}",
            path.display(),
            crate::error_text::io(&e)
        ),
    })?;
    let mut losses = Losses::default();
    let config = match args.format {
        Format::Procfile => {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let dotenv = std::fs::read_to_string(dir.join(".env")).ok();
            super::procfile::import(&text, dotenv.as_deref(), args.port_base, &mut losses).map_err(
                |message| ConvertError::Import {
                    code: 5,
                    message: format!("{}: {message}", path.display()),
                },
            )?
        }
        Format::ProcessCompose => {
            super::process_compose::import(&text, &mut losses).map_err(|(code, message)| {
                ConvertError::Import {
                    code,
                    message: format!("{}: {message}", path.display()),
                }
            })?
        }
    };
    finish(&losses, args.strict, "import")?;
    let mut text = serde_json::to_string_pretty(&config).expect("a JSON value prints");
    text.push('\n');
    write(Output::Text(text), None)?;
    Ok(0)
}
