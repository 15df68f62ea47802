//! `pixal train`: trains one model per image type (or one model over all types in one-hot
//! mode) from make_input's `out.npz`, one after another in this process. A type that fails is
//! reported and the others still train. This module finds the jobs; [`train_npz`] trains one
//! (reading the input, fitting with [`crate::model::fit()`], writing the model folder).

mod input;
mod model_dir;
mod progress;
mod record;

use std::path::{Path, PathBuf};

use super::{Summary, UsageError};
use crate::config::Config;
use crate::config::paths::{Folder, Side};
use crate::config::resolved::{ModelType, TrainDevice};
use crate::model::{ModelKind, device};

pub use model_dir::{Trained, train_npz};
pub use progress::CHECKPOINT_INTERVAL_S;

/// One model to train: its type (None in one-hot mode), its npz, and make_input's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The image type (None: the one-hot model of the component).
    pub ty: Option<String>,
    /// The ML input file.
    pub npz: PathBuf,
    /// make_input's `preprocessing.yaml`, when found.
    pub meta: Option<PathBuf>,
}

/// Runs training on `input` (a component output folder holding `<type>/out.npz`, or the folder
/// of one npz) or, without it, on the npz files paths.yaml points at.
pub fn run(cfg: &Config, input: Option<&Path>) -> anyhow::Result<Summary> {
    let jobs = match input {
        Some(dir) => jobs_from_dir(cfg, dir)?,
        None => default_jobs(cfg)?,
    };
    check_device(cfg)?;
    let mut summary = Summary::new("train");
    for job in &jobs {
        train_one(cfg, job, &mut summary);
    }
    Ok(summary)
}

/// Fails the run once, as a configuration error (exit 2), when the autoencoder is asked to
/// train on a device this build or machine cannot use: a build without the `cuda` feature, or
/// no usable GPU. Checked before any data is read; otherwise every type would read its npz and
/// then fail alone with the same message. `auto` never fails (it falls back to the CPU), and
/// pixel_stats trains no network.
fn check_device(cfg: &Config) -> anyhow::Result<()> {
    let m = &cfg.params.model_training;
    if m.model_type != ModelType::Autoencoder || m.device != TrainDevice::Cuda {
        return Ok(());
    }
    device::select(m.device).map_err(|e| {
        UsageError(format!(
            "{}: {e}",
            cfg.dir.join("parameters.yaml").display()
        ))
    })?;
    Ok(())
}

fn file_name(cfg: &Config) -> &str {
    &cfg.params.preprocessing.preprocessor.file_name
}

/// make_input's metadata for an npz: `metadata/preprocessing.yaml` beside it, else the
/// layout's metadata folder of the type.
fn find_meta(cfg: &Config, npz: &Path, ty: Option<&str>) -> Option<PathBuf> {
    let beside = npz
        .parent()
        .map(|d| d.join("metadata").join("preprocessing.yaml"));
    let layout = cfg
        .layout
        .dir(Side::Model, Folder::Metadata, ty)
        .join("preprocessing.yaml");
    beside.into_iter().chain([layout]).find(|p| p.is_file())
}

fn one_hot(cfg: &Config) -> bool {
    cfg.params.model_training.one_hot_encoding
}

/// The jobs for `-i DIR`.
pub fn jobs_from_dir(cfg: &Config, dir: &Path) -> anyhow::Result<Vec<Job>> {
    if !dir.is_dir() {
        return Err(UsageError(format!(
            "{}: input folder does not exist (or is not a folder)",
            dir.display()
        ))
        .into());
    }
    let name = file_name(cfg);
    let direct = dir.join(name);
    if direct.is_file() {
        let ty = if one_hot(cfg) {
            None
        } else {
            Some(
                dir.canonicalize()
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_else(|| "model".into()),
            )
        };
        let meta = find_meta(cfg, &direct, ty.as_deref());
        return Ok(vec![Job {
            ty,
            npz: direct,
            meta,
        }]);
    }
    if one_hot(cfg) {
        return Err(UsageError(format!(
            "{}: one_hot_encoding is on but there is no {name} here; run `pixal make_input` with one_hot_encoding: True (it writes one {name} for the whole component)",
            dir.display()
        ))
        .into());
    }
    let jobs = type_jobs(cfg, dir, |t| dir.join(t).join(name));
    if jobs.is_empty() {
        return Err(UsageError(format!(
            "{}: no {name} found, neither here nor in a type sub-folder; run `pixal make_input` first",
            dir.display()
        ))
        .into());
    }
    Ok(jobs)
}

/// One job per sub-folder of `root` whose npz (given by `npz_of`) exists, sorted by name.
fn type_jobs(cfg: &Config, root: &Path, npz_of: impl Fn(&str) -> PathBuf) -> Vec<Job> {
    crate::io::subfolder_names(root)
        .into_iter()
        .filter_map(|t| {
            let npz = npz_of(&t);
            npz.is_file().then(|| Job {
                meta: find_meta(cfg, &npz, Some(&t)),
                ty: Some(t),
                npz,
            })
        })
        .collect()
}

/// The jobs paths.yaml implies.
pub fn default_jobs(cfg: &Config) -> anyhow::Result<Vec<Job>> {
    let name = file_name(cfg);
    let root = cfg.layout.component_root();
    if one_hot(cfg) {
        let npz = cfg.layout.type_root(None).join(name);
        if !npz.is_file() {
            return Err(UsageError(format!(
                "no input given and {} does not exist; run `pixal make_input` with one_hot_encoding: True first, or pass -i DIR",
                npz.display()
            ))
            .into());
        }
        let meta = find_meta(cfg, &npz, None);
        return Ok(vec![Job {
            ty: None,
            npz,
            meta,
        }]);
    }
    let jobs = type_jobs(cfg, root, |t| cfg.layout.type_root(Some(t)).join(name));
    if jobs.is_empty() {
        return Err(UsageError(format!(
            "no input given and no <type>/{name} under {}; run `pixal make_input` first, or pass -i DIR",
            root.display()
        ))
        .into());
    }
    Ok(jobs)
}

fn train_one(cfg: &Config, job: &Job, summary: &mut Summary) {
    let ty = job.ty.as_deref();
    let label = ty.unwrap_or("all types (one-hot)");
    let log_path = cfg
        .layout
        .dir(Side::Model, Folder::Logs, ty)
        .join("train_model.log");
    if let Err(e) = crate::logging::set_log_file(&log_path) {
        summary.warn(format!("cannot open log file {e}"));
    }
    let model_dir = cfg.layout.model(ty);
    let metadata_dir = cfg.layout.dir(Side::Model, Folder::Metadata, ty);
    // make_input's metadata names the channels and vouches for the npz: without it the model
    // could be trained under the wrong channel names.
    if job.meta.is_none() {
        summary.fail(
            &job.npz,
            format!(
                "train {label}: {} has no make_input metadata (metadata/preprocessing.yaml beside it or {}); run make_input again",
                job.npz.display(),
                metadata_dir.join("preprocessing.yaml").display()
            ),
        );
        crate::logging::close_log_file();
        return;
    }
    log::info!(
        "train {label}: {} -> {}{}",
        job.npz.display(),
        model_dir.display(),
        job.meta
            .as_ref()
            .map(|m| format!(" (make_input metadata {})", m.display()))
            .unwrap_or_default()
    );
    match train_npz(
        &cfg.params,
        &job.npz,
        job.meta.as_deref(),
        &model_dir,
        &metadata_dir,
    ) {
        Ok(r) => {
            for w in &r.warnings {
                summary.warn(format!("train {label}: {w}"));
            }
            let f = &r.fitted;
            match f.spec().kind {
                ModelKind::Autoencoder => log::info!(
                    "train {label}: {} epoch(s){} in {:.1} s ({:.3} s/epoch) on {}; best epoch {} val_loss {:.4e}",
                    f.epochs_run(),
                    if f.stopped_early { " (early stop)" } else { "" },
                    f.fit_seconds,
                    f.seconds_per_epoch(),
                    f.device,
                    f.best_epoch,
                    f.best_val_loss
                ),
                ModelKind::PixelStats => log::info!(
                    "train {label}: pixel statistics of {} image(s) in {:.2} s; validation mean squared z-score {:.4}",
                    f.split.train.len(),
                    f.fit_seconds,
                    f.best_val_loss
                ),
            }
            for o in &r.outputs {
                summary.output(o);
            }
            summary.processed += 1;
        }
        Err(e) => summary.fail(&job.npz, format!("train {label}: {e}")),
    }
    crate::logging::close_log_file();
}
