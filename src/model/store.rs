//! The model folder on disk: [`load`] reads a trained model back, checking every file against
//! the checksums `model_config.json` records; [`write_files`] and then [`write_config`] write a
//! fitted one (`model_config.json` last, so a folder without it is not a model). The burn
//! record encoding of the weights lives here too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use ndarray::{Array2, Array3};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};

use super::autoencoder::{Autoencoder, AutoencoderConfig};
use super::device::CpuBackend;
use super::export::{self, NamedTensor};
use super::fit::Fitted;
use super::pixel_stats::{self, PixelStats};
use super::spec::{LossHistory, ModelSpec};
use super::standardize::Standardizer;
use super::trained::{Net, TrainedModel};
use super::{
    CALIBRATION_RESIDUALS_FILE, INPUT_MEAN_FILE, INPUT_STD_FILE, LOSS_HISTORY_FILE, MEAN_FILE,
    MODEL_CONFIG_FILE, MODEL_FORMAT, ModelError, ModelKind, PART_MASK_FILE, STD_FILE, sha256_hex,
};
use crate::config::resolved::InputNormalization;
use crate::io::{IoError, atomic};

/// Loads a trained model dir (see [`TrainedModel::load`]).
pub fn load(model_dir: &Path) -> Result<TrainedModel, ModelError> {
    let cfg_path = model_dir.join(MODEL_CONFIG_FILE);
    let text = std::fs::read_to_string(&cfg_path).map_err(|source| IoError::Read {
        path: cfg_path.clone(),
        source,
    })?;
    let spec: ModelSpec =
        serde_json::from_str(&text).map_err(|e| dir_err(&cfg_path, e.to_string()))?;
    if spec.format != MODEL_FORMAT {
        return Err(dir_err(
            &cfg_path,
            format!(
                "model format {} is not {MODEL_FORMAT}; retrain with this pixal",
                spec.format
            ),
        ));
    }
    let [p, c] = spec.input_shape;
    if spec.channels.len() != c || spec.weights.len() != c || p == 0 {
        return Err(dir_err(
            &cfg_path,
            "input_shape, channels and weights disagree",
        ));
    }
    if !(spec.data_max.is_finite() && spec.data_max > 0.0) {
        return Err(dir_err(&cfg_path, "data_max must be a positive number"));
    }
    // The calibration residuals are read (and checked) here, so a folder whose calibration
    // belongs to another run is refused before anything is scored.
    let cal_path = model_dir.join(CALIBRATION_RESIDUALS_FILE);
    let calibration = npy3_from(
        &read_verified(model_dir, &spec, CALIBRATION_RESIDUALS_FILE)?,
        &cal_path,
    )?;
    if (calibration.dim().1, calibration.dim().2) != (p, c) {
        return Err(dir_err(
            &cal_path,
            format!(
                "residuals are {}x{} per image but the model is {p}x{c}",
                calibration.dim().1,
                calibration.dim().2
            ),
        ));
    }
    let mask_path = model_dir.join(PART_MASK_FILE);
    let m = npy1_from(
        &read_verified(model_dir, &spec, PART_MASK_FILE)?,
        &mask_path,
    )?;
    if m.len() != p || m.iter().any(|v| !v.is_finite()) {
        return Err(dir_err(&mask_path, format!("must hold {p} finite values")));
    }
    let part_mask = m.to_vec();
    let net = match spec.kind {
        ModelKind::Autoencoder => {
            let (Some(ac), Some(file)) = (&spec.autoencoder, &spec.weights_file) else {
                return Err(dir_err(
                    &cfg_path,
                    "an autoencoder needs `autoencoder` and `weights_file`",
                ));
            };
            if ac.input_dim != p * c || ac.architecture.is_empty() {
                return Err(dir_err(&cfg_path, "autoencoder input_dim is not P x C"));
            }
            let wpath = model_dir.join(file);
            let bytes = read_verified(model_dir, &spec, file)?;
            let standardizer = match spec.input_normalization {
                InputNormalization::Scale => None,
                InputNormalization::Standardize => {
                    let (mean, std) =
                        read_mean_std(model_dir, &spec, INPUT_MEAN_FILE, INPUT_STD_FILE)?;
                    if std.iter().any(|v| *v <= 0.0) {
                        return Err(dir_err(model_dir, "input std holds values <= 0"));
                    }
                    let mask = part_mask.clone();
                    Some(Standardizer { mean, std, mask })
                }
            };
            Net::Autoencoder(
                Box::new(network_from_record(ac, bytes, &wpath)?),
                standardizer,
            )
        }
        ModelKind::PixelStats => {
            let (mean, std) = read_mean_std(model_dir, &spec, MEAN_FILE, STD_FILE)?;
            Net::PixelStats(PixelStats {
                mean,
                std,
                std_floor: spec.std_floor.unwrap_or(pixel_stats::MIN_STD_FLOOR as f32),
            })
        }
    };
    Ok(TrainedModel {
        spec,
        net,
        part_mask: Some(part_mask),
        calibration: Some(calibration),
    })
}

/// Reads `name` from a model folder and checks it against the checksum `model_config.json`
/// recorded for it.
fn read_verified(model_dir: &Path, spec: &ModelSpec, name: &str) -> Result<Vec<u8>, ModelError> {
    let path = model_dir.join(name);
    let Some(want) = spec.checksums.get(name) else {
        return Err(dir_err(
            &model_dir.join(MODEL_CONFIG_FILE),
            format!("no checksum recorded for {name}; retrain this type"),
        ));
    };
    let bytes = std::fs::read(&path).map_err(|source| IoError::Read {
        path: path.clone(),
        source,
    })?;
    if sha256_hex(&bytes) != *want {
        return Err(dir_err(
            &path,
            format!(
                "checksum differs from the one in {MODEL_CONFIG_FILE}: this file does not belong to the model (an interrupted or mixed retrain, or a damaged file); retrain this type"
            ),
        ));
    }
    Ok(bytes)
}

fn dir_err(path: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::ModelDir {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn npy2_from(bytes: &[u8], path: &Path) -> Result<Array2<f32>, ModelError> {
    crate::io::npz::check_npy_size(bytes, path)?;
    Array2::<f32>::read_npy(bytes).map_err(|e| dir_err(path, format!("bad .npy: {e}")))
}

/// Reads a (P, C) mean and standard deviation pair from a model folder, checked against the
/// folder's checksums, the model's shape, and for finite values.
fn read_mean_std(
    model_dir: &Path,
    spec: &ModelSpec,
    mean_file: &str,
    std_file: &str,
) -> Result<(Array2<f32>, Array2<f32>), ModelError> {
    let [p, c] = spec.input_shape;
    let read = |name: &str| {
        npy2_from(
            &read_verified(model_dir, spec, name)?,
            &model_dir.join(name),
        )
    };
    let (mean, std) = (read(mean_file)?, read(std_file)?);
    if mean.dim() != (p, c) || std.dim() != (p, c) {
        return Err(dir_err(
            model_dir,
            format!("{mean_file} / {std_file} are not ({p}, {c})"),
        ));
    }
    if mean.iter().chain(std.iter()).any(|v| !v.is_finite()) {
        return Err(dir_err(
            model_dir,
            format!("{mean_file} / {std_file} hold values that are not finite numbers"),
        ));
    }
    Ok((mean, std))
}

fn npy1_from(bytes: &[u8], path: &Path) -> Result<ndarray::Array1<f32>, ModelError> {
    crate::io::npz::check_npy_size(bytes, path)?;
    ndarray::Array1::<f32>::read_npy(bytes).map_err(|e| dir_err(path, format!("bad .npy: {e}")))
}

fn npy3_from(bytes: &[u8], path: &Path) -> Result<Array3<f32>, ModelError> {
    crate::io::npz::check_npy_size(bytes, path)?;
    Array3::<f32>::read_npy(bytes).map_err(|e| dir_err(path, format!("bad .npy: {e}")))
}

/// Writes a float32 array as `.npy`, atomically.
pub fn write_npy<D: ndarray::Dimension>(
    path: &Path,
    a: &ndarray::Array<f32, D>,
) -> Result<(), ModelError> {
    atomic::write_with(path, |w| a.write_npy(w).map_err(|e| e.to_string()))?;
    Ok(())
}

fn recorder() -> NamedMpkBytesRecorder<FullPrecisionSettings> {
    NamedMpkBytesRecorder::<FullPrecisionSettings>::default()
}

/// The burn record of a network, as bytes (backend-independent).
pub fn record_bytes<B: burn::prelude::Backend>(
    model: &Autoencoder<B>,
    path: &Path,
) -> Result<Vec<u8>, ModelError> {
    Recorder::<B>::record(&recorder(), model.clone().into_record(), ()).map_err(|e| {
        ModelError::Weights {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    })
}

/// Rebuilds a CPU network from its config and record bytes.
pub fn network_from_record(
    config: &AutoencoderConfig,
    bytes: Vec<u8>,
    path: &Path,
) -> Result<Autoencoder<CpuBackend>, ModelError> {
    let device = Default::default();
    let record = Recorder::<CpuBackend>::load(&recorder(), bytes, &device).map_err(|e| {
        ModelError::Weights {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    })?;
    Ok(config.init_zeros::<CpuBackend>(&device).load_record(record))
}

/// Writes every file of a fitted model into `dir` except `model_config.json`: the input
/// standardisation or the pixel statistics, the calibration residuals, the part mask, the
/// safetensors export, the burn record of an autoencoder and the loss history. Returns the
/// files written, in that order.
pub fn write_files(dir: &Path, fitted: &Fitted) -> Result<Vec<PathBuf>, ModelError> {
    let model = &fitted.model;
    let spec = &model.spec;
    atomic::create_dir_all(dir)?;
    let mut outputs = Vec::new();
    let mut npy_pair = |names: [&str; 2], arrays: [&Array2<f32>; 2]| {
        for (name, a) in names.into_iter().zip(arrays) {
            let path = dir.join(name);
            write_npy(&path, a)?;
            outputs.push(path);
        }
        Ok::<(), ModelError>(())
    };
    match &model.net {
        Net::PixelStats(s) => npy_pair([MEAN_FILE, STD_FILE], [&s.mean, &s.std])?,
        Net::Autoencoder(_, Some(st)) => {
            npy_pair([INPUT_MEAN_FILE, INPUT_STD_FILE], [&st.mean, &st.std])?;
        }
        Net::Autoencoder(_, None) => {}
    }

    // Calibration data for detection: every image's out-of-fold residuals, and the part.
    if let Some(calibration) = &model.calibration {
        let cal_path = dir.join(CALIBRATION_RESIDUALS_FILE);
        write_npy(&cal_path, calibration)?;
        outputs.push(cal_path);
    }
    if let Some(mask) = &model.part_mask {
        let mask_path = dir.join(PART_MASK_FILE);
        write_npy(&mask_path, &ndarray::Array1::from(mask.clone()))?;
        outputs.push(mask_path);
    }

    // Weights for Python users.
    if let Some(name) = &spec.safetensors_file {
        let mut st_meta = BTreeMap::new();
        st_meta.insert("format".to_string(), "pixal".to_string());
        st_meta.insert("kind".to_string(), format!("{:?}", spec.kind));
        st_meta.insert("data_max".to_string(), spec.data_max.to_string());
        let tensors = tensors(model);
        let st_path = dir.join(name);
        let t = Instant::now();
        export::write_safetensors(&st_path, &tensors, &st_meta)?;
        log::trace!("safetensors written in {:.2} s", t.elapsed().as_secs_f64());
        drop(tensors);
        outputs.push(st_path);
    }
    if let (Some(name), Net::Autoencoder(net, _)) = (&spec.weights_file, &model.net) {
        let path = dir.join(name);
        let t = Instant::now();
        // Encoded from the CPU network: the weights are float32 on every backend, so this is
        // the record the training backend would write (burn's parameter ids are random anyway).
        let record = record_bytes(net.as_ref(), &path)?;
        atomic::write_bytes(&path, &record)?;
        log::trace!("weights written in {:.2} s", t.elapsed().as_secs_f64());
        outputs.push(path);
    }

    let hist = LossHistory::new(&fitted.history, fitted.best_epoch);
    let hist_path = dir.join(LOSS_HISTORY_FILE);
    let json = serde_json::to_vec_pretty(&hist).map_err(|e| IoError::Encode {
        path: hist_path.clone(),
        reason: e.to_string(),
    })?;
    atomic::write_bytes(&hist_path, &json)?;
    outputs.push(hist_path);
    Ok(outputs)
}

/// Writes `model_config.json` into `dir`: `spec` with the hash of every file loading reads
/// ([`ModelSpec::checksummed_files`], already in `dir`). Written last, it ties the files of one
/// training run together.
pub fn write_config(dir: &Path, spec: &ModelSpec) -> Result<PathBuf, ModelError> {
    let mut spec = spec.clone();
    for name in spec.checksummed_files() {
        let path = dir.join(&name);
        let bytes = std::fs::read(&path).map_err(|source| IoError::Read { path, source })?;
        spec.checksums.insert(name, sha256_hex(&bytes));
    }
    let cfg_path = dir.join(MODEL_CONFIG_FILE);
    let json = serde_json::to_vec_pretty(&spec).map_err(|e| IoError::Encode {
        path: cfg_path.clone(),
        reason: e.to_string(),
    })?;
    atomic::write_bytes(&cfg_path, &json)?;
    Ok(cfg_path)
}

/// The tensors of the safetensors export: the network's layers, or pixel_stats' mean and
/// standard deviation.
fn tensors(model: &TrainedModel) -> Vec<NamedTensor> {
    let [p, c] = model.spec.input_shape;
    match &model.net {
        Net::Autoencoder(net, _) => export::named_tensors(net.as_ref()),
        Net::PixelStats(s) => vec![
            NamedTensor {
                name: "mean".into(),
                shape: vec![p, c],
                values: s.mean.iter().copied().collect(),
            },
            NamedTensor {
                name: "std".into(),
                shape: vec![p, c],
                values: s.std.iter().copied().collect(),
            },
        ],
    }
}
