//! The command edge: one module per subcommand. Only this code walks folders, shows progress,
//! collects per-image failures, writes stage outputs and decides the exit code.

pub mod align;
pub mod demo;
pub mod detect;
pub mod init;
pub mod make_input;
pub mod preprocess;
pub mod remove_bg;
pub mod train;
pub mod validate;

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::cli::{Cli, Command};
use crate::config::{Config, ConfigError};

/// Exit code: everything worked.
pub const EXIT_OK: i32 = 0;
/// Exit code: some inputs failed; the rest were processed.
pub const EXIT_FAILED_INPUTS: i32 = 1;
/// Exit code: usage or configuration error, or a stage that is not built yet.
pub const EXIT_USAGE: i32 = 2;

/// An error in how pixal was called (bad argument, missing input folder, stage not built):
/// exit code 2, like configuration errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// One input that failed, with the reason.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The file (or folder) that failed.
    pub file: String,
    /// Why.
    pub error: String,
}

/// What a stage did: printed as JSON with `--json`, and summarised on stderr.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    /// The stage name.
    pub stage: String,
    /// Inputs processed successfully.
    pub processed: usize,
    /// Inputs that failed.
    pub failed: Vec<Failure>,
    /// Files written.
    pub outputs: Vec<String>,
    /// Warnings worth a look.
    pub warnings: Vec<String>,
}

impl Summary {
    /// An empty summary for `stage`.
    pub fn new(stage: &str) -> Summary {
        Summary {
            stage: stage.to_string(),
            ..Summary::default()
        }
    }

    /// Records a failed input and logs it.
    pub fn fail(&mut self, file: &Path, error: impl std::fmt::Display) {
        let error = error.to_string();
        log::error!("{error}");
        self.failed.push(Failure {
            file: file.display().to_string(),
            error,
        });
    }

    /// Records and logs a warning.
    pub fn warn(&mut self, message: impl Into<String>) {
        let m = message.into();
        log::warn!("{m}");
        self.warnings.push(m);
    }

    /// Records an output file.
    pub fn output(&mut self, path: &Path) {
        self.outputs.push(path.display().to_string());
    }

    /// Adds another stage's counts into this one (for `preprocess` and `demo`).
    pub fn absorb(&mut self, other: Summary) {
        self.processed += other.processed;
        self.failed.extend(other.failed);
        self.outputs.extend(other.outputs);
        self.warnings.extend(other.warnings);
    }

    /// 0 when nothing failed, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.failed.is_empty() {
            EXIT_OK
        } else {
            EXIT_FAILED_INPUTS
        }
    }
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    crate::logging::init(cli.verbose, cli.quiet);
    if let Some(n) = cli.threads
        && let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global()
    {
        log::debug!("thread pool already set up: {e}");
    }
    let json = cli.json;
    let result = dispatch(cli);
    crate::logging::close_log_file();
    match result {
        Ok(summary) => {
            report(&summary, json);
            summary.exit_code()
        }
        Err(e) => {
            let code = exit_code_of(&e);
            log::error!("{e:#}");
            if json {
                let s = serde_json::json!({ "ok": false, "error": format!("{e:#}"), "exit_code": code });
                println!("{s}");
            }
            code
        }
    }
}

/// 2 for usage and configuration errors, 1 for anything else.
pub fn exit_code_of(e: &anyhow::Error) -> i32 {
    if e.chain()
        .any(|c| c.is::<ConfigError>() || c.is::<UsageError>())
    {
        EXIT_USAGE
    } else {
        EXIT_FAILED_INPUTS
    }
}

fn report(summary: &Summary, json: bool) {
    if json {
        let mut v = serde_json::to_value(summary).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "ok".into(),
                serde_json::Value::Bool(summary.failed.is_empty()),
            );
            o.insert("exit_code".into(), summary.exit_code().into());
        }
        println!("{v}");
    }
    if summary.failed.is_empty() {
        log::info!(
            "{}: {} input(s) processed, {} file(s) written",
            summary.stage,
            summary.processed,
            summary.outputs.len()
        );
    } else {
        log::error!(
            "{}: {} input(s) processed, {} FAILED:",
            summary.stage,
            summary.processed,
            summary.failed.len()
        );
        for f in &summary.failed {
            log::error!("  {}", f.error);
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<Summary> {
    match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Init(args) => init::run(&args, &cli.config),
        Command::Completions(args) => init::completions(&args),
        Command::Manpage(args) => init::manpage(&args),
        Command::MakeInput(args) => {
            let cfg = load_config(&cli.config)?;
            make_input::run(&cfg, args.input.as_deref())
        }
        Command::Preprocess(args) => {
            let cfg = load_config(&cli.config)?;
            preprocess::run(&cfg, args.input.as_deref())
        }
        Command::RemoveBg(args) => {
            let cfg = load_config(&cli.config)?;
            remove_bg::run(&cfg, args.input.as_deref(), args.only_mask)
        }
        Command::Align(args) => {
            let cfg = load_config(&cli.config)?;
            align::run(&cfg, args.input.as_deref())
        }
        Command::Train(args) => {
            let cfg = load_config(&cli.config)?;
            train::run(&cfg, args.input.as_deref())
        }
        Command::Validate(args) => {
            let cfg = load_config(&cli.config)?;
            validate::run(
                &cfg,
                args.input.as_deref(),
                args.image_type.as_deref(),
                args.truth.as_deref(),
            )
        }
        Command::Detect(args) => {
            let cfg = load_config(&cli.config)?;
            detect::run(&cfg, args.input.as_deref(), args.truth.as_deref())
        }
    }
}

/// Loads the configuration folder, with the folder named in the error. A missing folder or file
/// is a usage error that says how to create one (`pixal init`), naming the cause once.
pub fn load_config(dir: &Path) -> anyhow::Result<Config> {
    for file in ["parameters.yaml", "paths.yaml"] {
        let path = dir.join(file);
        if !path.is_file() {
            let what = if dir.is_dir() {
                format!("{} not found", path.display())
            } else {
                format!("configuration folder {} not found", dir.display())
            };
            return Err(UsageError(format!(
                "{what} (in {}). Create one with `pixal init path/to/photos` (writes {}/parameters.yaml and paths.yaml), or point at one with --config DIR",
                std::env::current_dir()
                    .map(|d| d.display().to_string())
                    .unwrap_or_else(|_| ".".into()),
                dir.display()
            ))
            .into());
        }
    }
    Config::load(dir).with_context(|| format!("loading the configuration from {}", dir.display()))
}

/// The image types of an input folder: its sub-folders that hold images, sorted by name; or,
/// when it holds images itself and no such sub-folder, the folder itself as one type named
/// after it.
pub fn discover_types(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    if !dir.is_dir() {
        return Err(UsageError(format!(
            "{}: input folder does not exist (or is not a folder)",
            dir.display()
        ))
        .into());
    }
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list folder", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    subdirs.sort();
    let mut types = Vec::new();
    for d in subdirs {
        if has_images(&d) {
            let name = d
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            types.push((name, d));
        }
    }
    if types.is_empty() && has_images(dir) {
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "images".to_string());
        types.push((name, dir.to_path_buf()));
    }
    if types.is_empty() {
        return Err(UsageError(format!(
            "{}: no images found (expected a component folder with one sub-folder of .jpg/.jpeg/.png/.webp/.tif images per type)",
            dir.display()
        ))
        .into());
    }
    Ok(types)
}

/// The (type, folder) pairs of the type sub-folders of `root`, sorted by name, where
/// `folder_of(type)` holds at least one image: how stages find their default input in the
/// output tree of an earlier stage.
pub fn type_image_folders(
    root: &Path,
    folder_of: impl Fn(&str) -> PathBuf,
) -> Vec<(String, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let dir = folder_of(&name);
            (name, dir)
        })
        .filter(|(_, dir)| crate::io::image::list_images(dir).is_ok_and(|v| !v.is_empty()))
        .collect()
}

fn has_images(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .any(|e| e.path().is_file() && crate::io::image::is_image_path(&e.path()))
        })
        .unwrap_or(false)
}
