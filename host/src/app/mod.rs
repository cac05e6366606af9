//! The edge of the program: flags in, exit code out. [`try_main`] returns the exit code or
//! an [`AppError`]; `main.rs` prints the error, once. Nothing below prints an error and
//! returns a code.
//!
//! [`run`] runs a config (detaching, the guardian, the manager's life), [`signals`] turns
//! signals into shutdown requests; `check` and `ctl` are here, being short.

mod command;
mod error;
mod report;
mod run;
mod signals;

use std::path::Path;

use clap::Parser;
use clap::error::ErrorKind;

pub use error::{AppError, SetupError};

use crate::cli::{Cli, Sub};
use crate::config::{self, Loaded};
use crate::plan::{self, EnvFiles, Plan};
use crate::runtime::{Runtime, RuntimeOptions};

/// Runs pymanager with the process's arguments: its exit code, or why it stopped short.
pub fn try_main() -> Result<i32, AppError> {
    // First, while single-threaded: the token must not reach any child process.
    crate::token::take_from_env();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            // Asked for: not an error.
            let _ = e.print();
            return Ok(0);
        }
        Err(e) => return Err(e.into()),
    };
    if cli.version {
        println!("{}", crate::cli::version());
        return Ok(0);
    }
    let file = cli.config_file();
    for word in cli.ignored_words() {
        eprintln!(
            "[WARNING] ignoring the argument {} ({} is the config).",
            word.display(),
            file.display()
        );
    }
    match &cli.command {
        Some(Sub::Run(_)) if cli.daemon => Err(clap::Error::raw(
            ErrorKind::ArgumentConflict,
            "pymanager run does not go to the background: drop -d (or use -d without run)\n",
        )
        .into()),
        Some(Sub::Run(args)) => run::run(&cli, file, Some(args)),
        Some(Sub::Check) => check(file),
        // `ctl -f x` or `-f x ctl`: either names the manager's config.
        Some(Sub::Ctl(args)) => ctl(args, args.config().unwrap_or(file)),
        Some(Sub::Verify(args)) => verify(args),
        Some(Sub::Export(args)) => Ok(crate::convert::cli::export(args, file)?),
        Some(Sub::Import(args)) => Ok(crate::convert::cli::import(args)?),
        Some(Sub::CompileComponent(args)) => Ok(crate::runtime::compile_child::child_main(args)),
        None => run::run(&cli, file, None),
    }
}

/// Loads the config and resolves it, printing its warnings.
fn load(file: &Path, env_files: EnvFiles) -> Result<(Loaded, Plan), AppError> {
    let loaded = config::load(file)?;
    let mut warnings = Vec::new();
    let plan = plan::build(&loaded, env_files, &mut warnings)?;
    for w in loaded.warnings.iter().chain(&warnings) {
        eprintln!("{w}");
    }
    Ok((loaded, plan))
}

/// `pymanager ctl`: a client of a running manager.
fn ctl(args: &crate::ctl::CtlArgs, file: &Path) -> Result<i32, AppError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(SetupError::AsyncRuntime)?;
    rt.block_on(crate::ctl::run(args, file))?;
    Ok(0)
}

/// `pymanager verify`: one verifier, once. Its log goes to stdout as it runs, then
/// `passed`; a failure is an [`AppError::Verify`].
fn verify(args: &crate::verify::VerifyArgs) -> Result<i32, AppError> {
    use crate::verify::ProbeError;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| {
            ProbeError::Usage(format!(
                "cannot start the async runtime: {}",
                crate::error_text::io(&e)
            ))
        })?;
    rt.block_on(crate::verify::run(args))?;
    println!("passed");
    Ok(0)
}

/// `pymanager check`: everything up to the first spawn, executing nothing (environment
/// files are only opened, not sourced; Python modules are found and read, not built).
fn check(file: &Path) -> Result<i32, AppError> {
    let (_, plan) = load(file, EnvFiles::CheckReadable)?;
    async_runtime()?.block_on(async {
        let runtime = verifier_runtime()?;
        if let Some(w) = runtime.cache_warning() {
            eprintln!("[WARNING] {w}");
        }
        for w in plan::prepare_without_builds(&plan, &runtime).await? {
            eprintln!("{w}");
        }
        println!(
            "{}: ok ({} processes, {} with verifiers)",
            file.display(),
            plan.processes.len(),
            plan.processes
                .iter()
                .filter(|p| p.verifier.is_some())
                .count()
        );
        print!("{}", plan::start_plan(&plan));
        Ok(0)
    })
}

/// The manager's async runtime: two workers are plenty (everything waits on events), and
/// they live as long as the manager, which the children's parent-death signal relies on.
fn async_runtime() -> Result<tokio::runtime::Runtime, SetupError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(SetupError::AsyncRuntime)
}

/// The WebAssembly runtime the verifiers run in. Components missing from the disk cache
/// are compiled by a child `pymanager` (see [`crate::runtime::compile_child`]), so that the
/// compiler's memory never stays with this process.
pub(crate) fn verifier_runtime() -> Result<Runtime, SetupError> {
    let runtime =
        Runtime::new(RuntimeOptions::default()).map_err(|e| SetupError::Runtime(e.to_string()))?;
    if let Ok(exe) = std::env::current_exe() {
        runtime.compile_in_child(exe);
    }
    Ok(runtime)
}
