//! The command edge: one module per subcommand. Only this code walks folders, shows progress,
//! collects per-image failures, writes stage outputs and decides the exit code.

pub mod align;
pub mod demo;
pub mod detect;
pub mod doctor;
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
/// Exit code of `validate`/`detect --fail-on-anomaly`: every photo was judged and at least one
/// is anomalous.
pub const EXIT_ANOMALY: i32 = 3;
/// Exit code of an internal error (a panic): a bug in pixal.
pub const EXIT_PANIC: i32 = 101;

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

/// The verdict on one photo, as `validate` and `detect` print it on stdout.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The photo, as the user named it.
    pub file: String,
    /// Its image type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The image score (max of the smoothed score map).
    pub score: f64,
    /// The image threshold the score was compared with (None: loss_cut mode, where any
    /// anomalous pixel makes the photo anomalous).
    pub threshold: Option<f64>,
    /// Good or anomalous (written `good` / `anomalous`).
    pub verdict: crate::detect::Verdict,
    /// Share of the pooled pixels above the pixel threshold, percent.
    pub anomalous_percent: f64,
    /// Ground truth, when masks were given: true = the mask marks a defect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth: Option<bool>,
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
    /// Per-photo verdicts (validate, detect).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Verdict>,
    /// Metrics against ground truth per type, when masks were given (validate, detect).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<serde_json::Value>,
    /// `--fail-on-anomaly`: an anomalous verdict makes the exit code 3.
    #[serde(skip)]
    pub fail_on_anomaly: bool,
    /// A command's own findings (`pixal doctor`'s report), in the JSON summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
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
        self.images.extend(other.images);
        self.metrics.extend(other.metrics);
    }

    /// 1 when something failed (the results are incomplete), else 3 when `--fail-on-anomaly`
    /// is on and a photo is anomalous, else 0.
    pub fn exit_code(&self) -> i32 {
        if !self.failed.is_empty() {
            EXIT_FAILED_INPUTS
        } else if self.fail_on_anomaly && self.images.iter().any(|v| v.verdict.is_anomalous()) {
            EXIT_ANOMALY
        } else {
            EXIT_OK
        }
    }

    /// The verdict table printed on stdout: one line per photo, columns as wide as their
    /// widest cell.
    pub fn verdict_table(&self) -> String {
        let mut rows: Vec<[String; 5]> = vec![[
            "file".into(),
            "type".into(),
            "score".into(),
            "threshold".into(),
            "verdict".into(),
        ]];
        for v in &self.images {
            rows.push([
                v.file.clone(),
                v.type_name.clone(),
                format!("{:.4}", v.score),
                v.threshold
                    .map_or("any pixel".to_string(), |t| format!("{t:.4}")),
                if v.verdict.is_anomalous() {
                    "ANOMALOUS".to_string()
                } else {
                    v.verdict.to_string()
                },
            ]);
        }
        let mut width = [0usize; 5];
        for r in &rows {
            for (w, cell) in width.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for r in &rows {
            let line = format!(
                "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {}",
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                w0 = width[0],
                w1 = width[1],
                w2 = width[2],
                w3 = width[3]
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Whether `--json` is among the arguments (before a `--`), for the exit paths that run
/// before or outside the parsed command line: clap's usage errors and panics.
pub fn json_requested<I: IntoIterator<Item = std::ffi::OsString>>(args: I) -> bool {
    args.into_iter()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// The JSON line of a run that ended in an error.
pub fn error_json(error: &str, code: i32) -> String {
    serde_json::json!({ "ok": false, "error": error, "exit_code": code }).to_string()
}

/// Installs a panic hook that, after the usual message, prints the `--json` error summary on
/// stdout (once), so a script always gets a JSON line.
pub fn install_json_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        static PRINTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !PRINTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let what = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            println!(
                "{}",
                error_json(
                    &format!("internal error (a bug in pixal, please report it): {what}{at}"),
                    EXIT_PANIC
                )
            );
        }
    }));
}

/// Most worker threads `--threads` may ask for per core: more only adds overhead.
pub const MAX_THREADS_PER_CORE: usize = 4;

/// `--threads N` capped at the cores x [`MAX_THREADS_PER_CORE`], with a warning when capped.
pub fn capped_threads(n: usize) -> (usize, Option<String>) {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let cap = cores * MAX_THREADS_PER_CORE;
    if n > cap {
        (
            cap,
            Some(format!(
                "--threads {n} is more than {MAX_THREADS_PER_CORE} per core on this {cores}-core machine; using {cap}"
            )),
        )
    } else {
        (n.max(1), None)
    }
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    crate::logging::init(cli.verbose, cli.quiet);
    if let Some(n) = cli.threads {
        let (n, note) = capped_threads(n);
        if let Some(note) = note {
            log::warn!("{note}");
        }
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
        {
            log::debug!("thread pool already set up: {e}");
        }
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
            log::error!("{}", error_text(&e));
            if json {
                println!("{}", error_json(&error_text(&e), code));
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
    } else if !summary.images.is_empty() {
        // Results go to stdout (logs stay on stderr), so `-q` and scripts still get them.
        print!("{}", summary.verdict_table());
    }
    if summary.failed.is_empty() {
        log::info!(
            "{}: {} input(s) processed, {} file(s) written",
            summary.stage,
            summary.processed,
            summary.outputs.len()
        );
    } else {
        // Each failure was logged once when it happened; this line only counts them.
        log::error!(
            "{}: {} input(s) processed, {} FAILED (see the errors above{})",
            summary.stage,
            summary.processed,
            summary.failed.len(),
            if json { "" } else { "; --json lists them" }
        );
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<Summary> {
    // These need no configuration (doctor reports on it, so it must run when loading fails).
    match &cli.command {
        Command::Demo(args) => return demo::run(args),
        Command::Doctor => return doctor::run(&cli.config, cli.json),
        Command::Init(args) => return init::run(args, &cli.config),
        Command::Completions(args) => return init::completions(args),
        Command::Manpage(args) => return init::manpage(args),
        _ => {}
    }
    let mut cfg = load_config(&cli.config)?;
    if let Command::Validate(a) = &cli.command
        && let Some(dir) = &a.output
    {
        cfg.layout = cfg.layout.with_validate_root(dir);
    }
    let _lock = lock_output_tree(&cfg, &cli.command)?;
    match cli.command {
        Command::Demo(_)
        | Command::Doctor
        | Command::Init(_)
        | Command::Completions(_)
        | Command::Manpage(_) => Err(anyhow::anyhow!("internal: this command is run above")),
        Command::MakeInput(args) => make_input::run(&cfg, args.input.as_deref()),
        Command::Preprocess(args) => preprocess::run(&cfg, args.input.as_deref()),
        Command::RemoveBg(args) => remove_bg::run(&cfg, args.input.as_deref(), args.only_mask),
        Command::Align(args) => align::run(&cfg, args.input.as_deref()),
        Command::Train(args) => train::run(&cfg, args.input.as_deref()),
        Command::Validate(args) => {
            let mut s = validate::run(
                &cfg,
                args.input.as_deref(),
                args.image_type.as_deref(),
                args.truth.as_deref(),
            )?;
            s.fail_on_anomaly = args.fail_on_anomaly;
            Ok(s)
        }
        Command::Detect(args) => {
            let mut s = detect::run(&cfg, args.input.as_deref(), args.truth.as_deref())?;
            s.fail_on_anomaly = args.fail_on_anomaly;
            Ok(s)
        }
    }
}

/// Refuses an input folder that is (or lies inside) an output tree pixal writes, for the
/// stages that read photos: each re-run would read its own outputs as new photos.
fn refuse_output_as_input(cfg: &Config, command: &Command) -> anyhow::Result<()> {
    let input = match command {
        // align and make_input read pixal's own earlier outputs; these read photos.
        Command::Preprocess(a) => a.input.as_deref(),
        Command::RemoveBg(a) => a.input.as_deref(),
        Command::Validate(a) => a.input.as_deref(),
        _ => None,
    };
    let Some(input) = input else {
        return Ok(());
    };
    let norm = |p: &Path| {
        p.canonicalize()
            .or_else(|_| std::path::absolute(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let inp = norm(input);
    for root in [
        cfg.layout.component_root(),
        cfg.layout.validate_component_root(),
    ] {
        let out = norm(root);
        if inp.starts_with(&out) {
            return Err(UsageError(format!(
                "{}: this input lies in pixal's output tree {} (paths.yaml), so every run would read its own outputs as new photos; keep the photos in a folder of their own",
                input.display(),
                root.display()
            ))
            .into());
        }
    }
    Ok(())
}

/// Takes the lock of the output tree the command writes (see [`crate::io::lock`]) and removes
/// the temporary files an interrupted run left there. The lock is held until the returned value
/// drops (the end of the run).
fn lock_output_tree(cfg: &Config, command: &Command) -> anyhow::Result<crate::io::lock::TreeLock> {
    refuse_output_as_input(cfg, command)?;
    let root = match command {
        Command::Validate(_) | Command::Detect(_) => cfg.layout.validate_component_root(),
        _ => cfg.layout.component_root(),
    };
    let lock = crate::io::lock::lock_tree(root).map_err(|e| UsageError(e.to_string()))?;
    let removed = crate::io::atomic::remove_stale_temps(root);
    if !removed.is_empty() {
        log::info!(
            "removed {} temporary file(s) an interrupted run left under {}",
            removed.len(),
            root.display()
        );
    }
    Ok(lock)
}

/// Loads the configuration folder, with the folder named in the error. A missing folder or file
/// is a usage error that says how to create one (`pixal init`), naming the cause once.
/// An error and its causes on one line, as `{:#}` writes them, but without a cause whose text
/// the line already holds (pixal's file errors name their OS error in their own message, so
/// `{:#}` printed "No such file or directory" twice).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let t = cause.to_string();
        if t.is_empty() || out.contains(&t) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&t);
    }
    out
}

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
    let cfg = Config::load(dir)
        .with_context(|| format!("loading the configuration from {}", dir.display()))?;
    // Keys of the original set to a value that changes nothing here: said once per run.
    for msg in &cfg.params.inert {
        log::warn!("{}: {msg}", dir.join("parameters.yaml").display());
    }
    Ok(cfg)
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
    crate::io::subfolder_names(root)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_names_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let e = anyhow::Error::new(crate::io::IoError::Read {
            path: "a/b.yaml".into(),
            source: io,
        })
        .context("reading the training metadata of front");
        assert_eq!(
            error_text(&e),
            "reading the training metadata of front: a/b.yaml: cannot read file: No such file or directory"
        );
        // What `{:#}` printed: the OS error twice.
        assert_eq!(format!("{e:#}").matches("No such file").count(), 2);
    }
}
