//! Training one npz into its model folder: read the input, fit with progress on the terminal,
//! write the folder (through a staging folder that replaces it whole), the loss plot and the
//! training record.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::progress::BarProgress;
use super::record::{RunPaths, training_record};
use crate::config::Parameters;
use crate::config::resolved::ModelTraining;
use crate::io::atomic;
use crate::io::metadata::write_yaml;
use crate::model::{self, Fitted, LOSS_PLOT_FILE, ModelError, ModelKind, store};

/// What training one npz did.
#[derive(Debug)]
pub struct Trained {
    /// The fit: the model, its history and timings.
    pub fitted: Fitted,
    /// Files written.
    pub outputs: Vec<PathBuf>,
    /// Things worth a look (few images, a setting pixal does not support).
    pub warnings: Vec<String>,
}

/// Trains on one npz and writes everything into `model_dir` (+ the metadata YAML into
/// `metadata_dir`). `preprocessing_meta` is make_input's `preprocessing.yaml` for this file
/// (channel names and weights, source file names, one-hot type names); without it the
/// configuration's channels and weights are used.
///
/// The model is trained into a staging folder beside `model_dir` that replaces it as a whole
/// only when everything is written: an interrupted or failed retrain leaves the previous model
/// untouched, and no file of the previous model (of another kind, say) survives a retrain.
pub fn train_npz(
    params: &Parameters,
    npz: &Path,
    preprocessing_meta: Option<&Path>,
    model_dir: &Path,
    metadata_dir: &Path,
) -> Result<Trained, ModelError> {
    let t0 = Instant::now();
    let staging = atomic::staging_dir(model_dir, "model")?;
    let mut trained = train_into(params, npz, preprocessing_meta, staging.path(), model_dir)?;
    let staged = staging.keep();
    atomic::replace_dir(&staged, model_dir)?;
    for o in &mut trained.outputs {
        if let Ok(rel) = o.strip_prefix(&staged) {
            *o = model_dir.join(rel);
        }
    }
    // The record of the run is written once the model it describes is in place.
    let paths = RunPaths {
        npz,
        preprocessing_metadata: preprocessing_meta,
        model_dir,
    };
    let record = training_record(
        params,
        &trained.fitted,
        &paths,
        &trained.warnings,
        t0.elapsed().as_secs_f64(),
    );
    let meta_path = metadata_dir.join(format!("{}.yaml", params.model_training.model_name));
    write_yaml(&meta_path, &record)?;
    trained.outputs.push(meta_path);
    Ok(trained)
}

/// Trains into `work_dir` (an empty folder); `model_dir` is where it will live.
fn train_into(
    params: &Parameters,
    npz: &Path,
    preprocessing_meta: Option<&Path>,
    work_dir: &Path,
    model_dir: &Path,
) -> Result<Trained, ModelError> {
    let m = &params.model_training;
    let name = type_label(model_dir, &m.model_name);
    let data = super::input::read(params, npz, preprocessing_meta, name)?;
    let warnings = warnings(npz, data.data.dim().0, m);
    let mut progress = BarProgress::new(work_dir.join(format!("{}.mpk", m.model_name)));
    let fitted = model::fit(&data, m, &mut progress)?;
    drop(data);
    let mut outputs = store::write_files(work_dir, &fitted)?;
    if fitted.spec().kind == ModelKind::Autoencoder && params.plotting.plot_loss {
        let plot_path = work_dir.join(LOSS_PLOT_FILE);
        plot_history(&plot_path, npz, &m.model_name, &fitted)?;
        outputs.push(plot_path);
    }
    // Written last, with the hash of every file loading reads.
    outputs.push(store::write_config(work_dir, fitted.spec())?);
    Ok(Trained {
        fitted,
        outputs,
        warnings,
    })
}

/// What is worth a look before training `n` images with `m`.
fn warnings(npz: &Path, n: usize, m: &ModelTraining) -> Vec<String> {
    let mut warnings = Vec::new();
    if n < 10 {
        warnings.push(format!(
            "{}: only {n} images; thresholds calibrated on so few good photos are rough",
            npz.display()
        ));
    }
    if m.mixed_precision {
        warnings.push("mixed_precision is not supported by pixal; training in float32".into());
    }
    warnings
}

/// The type a model folder belongs to, for progress bars: the folder's parent (`<type>/model`),
/// else the model name.
fn type_label(model_dir: &Path, model_name: &str) -> String {
    model_dir.parent().and_then(|d| d.file_name()).map_or_else(
        || model_name.to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The training and validation loss per epoch of `fitted`, as a figure.
fn plot_history(
    path: &Path,
    npz: &Path,
    model_name: &str,
    fitted: &Fitted,
) -> Result<(), ModelError> {
    // The type is the npz's folder (out/<component>/<type>/out.npz; one-hot: the component).
    let type_name = npz
        .parent()
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::report::plot::loss_curve(
        path,
        &crate::report::plot::LossCurve {
            type_name,
            model_name: model_name.to_string(),
            train: fitted.history.iter().map(|r| r.loss).collect(),
            validation: fitted.history.iter().map(|r| r.val_loss).collect(),
            best_epoch: fitted.best_epoch,
            stopped_early: fitted.stopped_early,
        },
    )?;
    Ok(())
}
