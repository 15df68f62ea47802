//! `metadata/<model_name>.yaml`: the record of a training run. It is a view of the fitted
//! model's spec and fit, plus what only the command knows (the input files, the model folder,
//! the time taken), so no field of the model is kept twice. The keys and their order are the
//! file's format.

use std::path::Path;

use serde::Serialize;

use crate::config::Parameters;
use crate::config::resolved::ModelTraining;
use crate::model::loss::LossSpec;
use crate::model::{Fitted, ModelKind};

/// The record, as written.
#[derive(Debug, Serialize)]
pub(super) struct TrainingRecord<'a> {
    /// Always `pixal`.
    tool: &'static str,
    /// pixal's version.
    version: &'a str,
    /// When training finished (UTC).
    created: String,
    /// `experimentName` of parameters.yaml (the original tracked experiments by it).
    experiment_name: &'a str,
    model_type: ModelKind,
    /// The ML input file.
    npz: String,
    /// make_input's metadata, when given.
    preprocessing_metadata: Option<String>,
    /// Every `model_training` parameter as resolved.
    parameters: &'a ModelTraining,
    /// The loss actually used.
    loss: LossSpec,
    /// Values per image (P x C).
    input_dim: usize,
    input_shape: [usize; 2],
    pooled_shape: [usize; 2],
    channels: &'a [String],
    weights: &'a [f32],
    data_max: f32,
    label_types: &'a [String],
    /// Trainable values.
    num_params: usize,
    /// Images in the file.
    n_images: usize,
    /// Training images' source files.
    train_files: Vec<&'a str>,
    /// Images held out while the deployed weights were fitted.
    validation_files: &'a [String],
    epochs_run: usize,
    /// 1-based.
    best_epoch: usize,
    best_val_loss: f64,
    stopped_early: bool,
    fit_seconds: f64,
    seconds_per_epoch: f64,
    /// Seconds of the whole run (reading, training, writing).
    total_training_seconds: f64,
    /// Backend and device.
    device: &'a str,
    /// The model folder.
    model_dir: String,
    /// Warnings and notes (few images, early stop, ...).
    notes: Vec<String>,
}

/// The paths a training run read and wrote, as the record names them.
pub(super) struct RunPaths<'a> {
    /// The ML input file.
    pub npz: &'a Path,
    /// make_input's metadata, when given.
    pub preprocessing_metadata: Option<&'a Path>,
    /// Where the model folder lives.
    pub model_dir: &'a Path,
}

/// The record of `fitted`, trained with `params` on `paths.npz` in `total_seconds`, with the
/// run's `warnings` among its notes.
pub(super) fn training_record<'a>(
    params: &'a Parameters,
    fitted: &'a Fitted,
    paths: &RunPaths<'_>,
    warnings: &[String],
    total_seconds: f64,
) -> TrainingRecord<'a> {
    let m = &params.model_training;
    let spec = fitted.spec();
    let [p, c] = spec.input_shape;
    let mut notes = warnings.to_vec();
    if fitted.stopped_early {
        notes.push(format!(
            "early stopping after epoch {} (patience {}, min_delta {}); kept epoch {}",
            fitted.epochs_run(),
            m.patience,
            m.min_delta,
            fitted.best_epoch
        ));
    }
    if spec.kind == ModelKind::PixelStats {
        notes.push(format!(
            "mean/std fitted on all {} image(s); calibration_residuals.npy holds each image scored by the statistics of the other folds ({} folds)",
            spec.calibration_files.len(),
            spec.calibration_folds
        ));
    }
    TrainingRecord {
        tool: "pixal",
        version: &spec.version,
        created: crate::logging::utc_now(),
        experiment_name: &params.experiment_name,
        model_type: spec.kind,
        npz: paths.npz.display().to_string(),
        preprocessing_metadata: paths
            .preprocessing_metadata
            .map(|p| p.display().to_string()),
        parameters: m,
        loss: LossSpec::from_config(m),
        input_dim: p * c,
        input_shape: spec.input_shape,
        pooled_shape: spec.pooled_shape,
        channels: &spec.channels,
        weights: &spec.weights,
        data_max: spec.data_max,
        label_types: &spec.label_types,
        num_params: spec.num_params(),
        n_images: spec.calibration_files.len(),
        train_files: fitted
            .split
            .train
            .iter()
            .filter_map(|&i| spec.calibration_files.get(i).map(String::as_str))
            .collect(),
        validation_files: &spec.validation_files,
        epochs_run: fitted.epochs_run(),
        best_epoch: fitted.best_epoch,
        best_val_loss: fitted.best_val_loss,
        stopped_early: fitted.stopped_early,
        fit_seconds: fitted.fit_seconds,
        seconds_per_epoch: fitted.seconds_per_epoch(),
        total_training_seconds: total_seconds,
        device: &fitted.device,
        model_dir: paths.model_dir.display().to_string(),
        notes,
    }
}
