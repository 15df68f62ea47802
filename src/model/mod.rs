//! Models: training (`pixal train`) and the trained-model API the detection stage uses.
//!
//! Two kinds of model learn what good images look like, both in the scaled space `X / max(X)`
//! (the maximum of the training file, stored with the model and applied again at detection):
//! - [`ModelKind::Autoencoder`]: the original PIXAL's dense autoencoder ([`autoencoder`]),
//!   trained by the explicit loop in [`train`] on burn's CPU backend (or CUDA, see [`device`]).
//! - [`ModelKind::PixelStats`]: per-(pixel, channel) mean and standard deviation
//!   ([`pixel_stats`]), a baseline that trains in seconds.
//!
//! Both hand detection a residual per (image, pixel, channel) in the model's units (see
//! [`TrainedModel::residuals`]). Training cross-validates: the photos are dealt into
//! `calibration_folds` folds and each fold is scored by a model fitted without it, so every
//! training photo gets an out-of-fold residual (`calibration_residuals.npy`) that detection
//! calibrates its scores and thresholds on. The deployed autoencoder is the fold-0 model (so the
//! calibration residuals come from models made exactly like it); pixel_stats deploys the
//! statistics of all photos.
//!
//! A model folder holds `model_config.json` (everything needed to rebuild the model), the
//! weights (`<model_name>.mpk` burn record and `<model_name>.safetensors` for the
//! autoencoder, with `input_mean.npy` / `input_std.npy` when its inputs are standardised;
//! `pixel_mean.npy` / `pixel_std.npy` for pixel_stats), `part_mask.npy` (the training photos'
//! part on the pooled grid), `calibration_residuals.npy`, `loss_history.json` and
//! `loss_plot.png` (autoencoder).

pub mod adam;
pub mod autoencoder;
pub mod data;
pub mod dense;
pub mod device;
pub mod export;
pub mod loss;
pub mod pixel_stats;
pub mod train;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::{Tensor, TensorData};
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use serde::{Deserialize, Serialize};

use crate::config::Parameters;
use crate::config::resolved::{InputNormalization, ModelTraining, ModelType, Regularization};
use crate::io::metadata::{PreprocessingMetadata, read_yaml, write_yaml};
use crate::io::{IoError, atomic};
use autoencoder::{ActivityRegularizer, Autoencoder, AutoencoderConfig, LEAKY_SLOPE};
use device::CpuBackend;
use export::NamedTensor;
use loss::LossSpec;
use pixel_stats::PixelStats;
use train::{EpochRecord, FitSettings, Rows};

/// `model_config.json`: how to rebuild the model.
pub const MODEL_CONFIG_FILE: &str = "model_config.json";
/// Out-of-fold residuals (float32, (N, P, C)) of every training image.
pub const CALIBRATION_RESIDUALS_FILE: &str = "calibration_residuals.npy";
/// The part mask (float32, (P,)) of the training images.
pub const PART_MASK_FILE: &str = "part_mask.npy";
/// Standardised autoencoder inputs: per-(pixel, channel) mean (float32, (P, C)).
pub const INPUT_MEAN_FILE: &str = "input_mean.npy";
/// Standardised autoencoder inputs: per-(pixel, channel) standard deviation (float32, (P, C)).
pub const INPUT_STD_FILE: &str = "input_std.npy";
/// Per-epoch losses and metrics.
pub const LOSS_HISTORY_FILE: &str = "loss_history.json";
/// Training vs validation loss figure.
pub const LOSS_PLOT_FILE: &str = "loss_plot.png";
/// pixel_stats mean (float32, (P, C)).
pub const MEAN_FILE: &str = "pixel_mean.npy";
/// pixel_stats standard deviation (float32, (P, C)).
pub const STD_FILE: &str = "pixel_std.npy";
/// Version of the model folder layout.
/// Format 2 added the `checksums` that tie a folder's files together.
pub const MODEL_FORMAT: u32 = 2;

/// Seconds between two best-weights checkpoints during training: improving epochs in between
/// only mark the checkpoint stale, so a fast fit does not spend its time writing hundreds of
/// megabytes per epoch (the final best weights are always written at the end).
pub const CHECKPOINT_INTERVAL_S: f64 = 30.0;

/// Rows per forward pass at inference.
const INFER_BATCH: usize = 64;

/// Errors of training and using models.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The training input is unusable.
    #[error("{path}: {reason}")]
    Input {
        /// The npz or metadata file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Data given to a trained model does not fit it.
    #[error("{0}")]
    Shape(String),
    /// The requested device cannot be used.
    #[error("{0}")]
    Device(String),
    /// Weights could not be encoded or decoded.
    #[error("{path}: weights: {reason}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A model folder is incomplete or inconsistent.
    #[error("{path}: not a usable pixal model folder: {reason}")]
    ModelDir {
        /// The folder or file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A figure could not be drawn.
    #[error(transparent)]
    Plot(#[from] crate::report::PlotError),
    /// Training diverged (a loss or an error map that is not a finite number): no model is
    /// written, since its scores would mean nothing.
    #[error("training diverged: {0}")]
    Diverged(String),
}

/// Which model a trained model dir holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// The dense autoencoder.
    Autoencoder,
    /// Per-pixel mean and standard deviation.
    PixelStats,
}

/// `model_config.json`: everything needed to rebuild and use a trained model, without the YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Layout version ([`MODEL_FORMAT`]).
    pub format: u32,
    /// pixal's version that trained it.
    pub version: String,
    /// The model kind.
    pub kind: ModelKind,
    /// `model_training.model_name`.
    pub model_name: String,
    /// (P pooled pixels, C channels) of one image.
    pub input_shape: [usize; 2],
    /// Pooled (height, width); height * width = P.
    pub pooled_shape: [usize; 2],
    /// Channel names, in data order.
    pub channels: Vec<String>,
    /// Loss weight of each channel.
    pub weights: Vec<f32>,
    /// The divisor of the scaling `X / data_max`.
    pub data_max: f32,
    /// Type names in one-hot label order (empty in per-type mode).
    pub label_types: Vec<String>,
    /// The network (autoencoder only).
    pub autoencoder: Option<AutoencoderConfig>,
    /// burn record of the weights (autoencoder only).
    pub weights_file: Option<String>,
    /// safetensors export of the weights.
    pub safetensors_file: Option<String>,
    /// pixel_stats: the floor of the standard deviation in z-scores.
    pub std_floor: Option<f32>,
    /// The images held out while the deployed weights were fitted (autoencoder: fold 0).
    pub validation_files: Vec<String>,
    /// What the autoencoder sees (pixel_stats: `scale`).
    pub input_normalization: InputNormalization,
    /// Cross-validation folds of the calibration residuals.
    pub calibration_folds: usize,
    /// The source file of each row of `calibration_residuals.npy`.
    pub calibration_files: Vec<String>,
    /// SHA-256 (hex) of the folder's other files, by file name. `model_config.json` is
    /// written last, so these tie the files of one training run together: loading refuses a
    /// file whose hash differs (an interrupted or mixed retrain, a damaged file).
    #[serde(default)]
    pub checksums: BTreeMap<String, String>,
}

pub use crate::io::sha256_hex;

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

/// Per-(pixel, channel) standardisation of autoencoder inputs: `(x / data_max - mean) / std`,
/// and exactly 0 outside the part (so the masked loss skips those values).
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    /// Mean (P, C) of the scaled training rows.
    pub mean: Array2<f32>,
    /// Standard deviation (P, C), floored.
    pub std: Array2<f32>,
    /// Part mask (P).
    pub mask: Vec<f32>,
}

impl Standardizer {
    /// Fits on rows `rows` of `data` (N, P, C) scaled by `1 / data_max`.
    pub fn fit(data: ArrayView3<f32>, rows: &[usize], data_max: f32, mask: &[f32]) -> Standardizer {
        let s = pixel_stats::fit(data, rows, data_max);
        let floor = s.std_floor;
        Standardizer {
            mean: s.mean,
            std: s.std.mapv(|v| v.max(floor)),
            mask: mask.to_vec(),
        }
    }

    /// Rows `rows` of `data`, standardised and flattened to (rows, P * C).
    pub fn rows(&self, data: ArrayView3<f32>, rows: &[usize], data_max: f32) -> Array2<f32> {
        let (_, p, c) = data.dim();
        let inv = 1.0 / data_max;
        let mut out = Array2::<f32>::zeros((rows.len(), p * c));
        for (o, &r) in rows.iter().enumerate() {
            let src = data.index_axis(Axis(0), r);
            let mut dst = out.row_mut(o);
            for j in 0..p {
                if self.mask.get(j).is_some_and(|&m| m <= 0.5) {
                    continue;
                }
                for k in 0..c {
                    dst[j * c + k] = (src[[j, k]] * inv - self.mean[[j, k]]) / self.std[[j, k]];
                }
            }
        }
        out
    }
}

enum Net {
    Autoencoder(Box<Autoencoder<CpuBackend>>, Option<Standardizer>),
    PixelStats(PixelStats),
}

/// A trained model, loaded for inference (on the CPU).
pub struct TrainedModel {
    spec: ModelSpec,
    net: Net,
    part_mask: Option<Vec<f32>>,
    calibration: Option<Array3<f32>>,
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

/// The network's tensors with their names, for the safetensors export.
pub fn named_tensors<B: burn::prelude::Backend>(model: &Autoencoder<B>) -> Vec<NamedTensor> {
    let mut out = Vec::new();
    let mut push = |name: String, l: &burn::nn::Linear<B>| {
        let w = l.weight.val();
        out.push(NamedTensor {
            name: format!("{name}.weight"),
            shape: w.dims().to_vec(),
            values: w
                .into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .unwrap_or_default(),
        });
        if let Some(b) = &l.bias {
            let b = b.val();
            out.push(NamedTensor {
                name: format!("{name}.bias"),
                shape: b.dims().to_vec(),
                values: b
                    .into_data()
                    .convert::<f32>()
                    .to_vec::<f32>()
                    .unwrap_or_default(),
            });
        }
    };
    for (i, l) in model.encoder.iter().enumerate() {
        push(format!("encoder.{i}"), l);
    }
    push("latent".into(), &model.latent);
    if let Some(l) = &model.label {
        push("label".into(), l);
    }
    for (i, l) in model.decoder.iter().enumerate() {
        push(format!("decoder.{i}"), l);
    }
    push("output".into(), &model.output);
    out
}

impl TrainedModel {
    /// Loads a trained model dir (the layout's `model/` folder of a type, or of the component
    /// in one-hot mode).
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

    /// The training images' part mask on the pooled grid (P), when training had one.
    pub fn part_mask(&self) -> Option<&[f32]> {
        self.part_mask.as_deref()
    }

    /// The out-of-fold residuals (N, P, C) of the training images (checked against the
    /// model's checksum when it was loaded).
    pub fn calibration_residuals(&self) -> Option<&Array3<f32>> {
        self.calibration.as_ref()
    }

    /// The model kind.
    pub fn kind(&self) -> ModelKind {
        self.spec.kind
    }

    /// Everything `model_config.json` says.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// (P pooled pixels, C channels) the model expects.
    pub fn input_shape(&self) -> (usize, usize) {
        (self.spec.input_shape[0], self.spec.input_shape[1])
    }

    /// Type names in one-hot label order (empty in per-type mode).
    pub fn label_types(&self) -> &[String] {
        &self.spec.label_types
    }

    /// Channel names recorded at training.
    pub fn channels(&self) -> &[String] {
        &self.spec.channels
    }

    /// Per-channel loss weights recorded at training.
    pub fn weights(&self) -> &[f32] {
        &self.spec.weights
    }

    /// Pooled (H, W) recorded at training.
    pub fn pooled_shape(&self) -> (usize, usize) {
        (self.spec.pooled_shape[0], self.spec.pooled_shape[1])
    }

    /// The scaling divisor (`X / data_max`).
    pub fn data_max(&self) -> f32 {
        self.spec.data_max
    }

    fn check(
        &self,
        data: &ArrayView3<f32>,
        labels: &Option<ArrayView2<f32>>,
    ) -> Result<(), ModelError> {
        let (n, p, c) = data.dim();
        let (mp, mc) = self.input_shape();
        if (p, c) != (mp, mc) {
            return Err(ModelError::Shape(format!(
                "the data has {p} pixels x {c} channels per image but the model was trained on {mp} x {mc} (pooled {}x{}, channels {}); preprocess the images with the training run's settings",
                self.spec.pooled_shape[0],
                self.spec.pooled_shape[1],
                self.spec.channels.join(", ")
            )));
        }
        let t = self.spec.label_types.len();
        if t > 0 {
            match labels {
                None => {
                    return Err(ModelError::Shape(format!(
                        "this one-hot model needs labels (one column per type: {})",
                        self.spec.label_types.join(", ")
                    )));
                }
                Some(l) if l.dim() != (n, t) => {
                    return Err(ModelError::Shape(format!(
                        "labels are {}x{} but the data has {n} images and the model {t} types",
                        l.nrows(),
                        l.ncols()
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The scaled input `X / data_max`, (N, P, C).
    fn scaled(&self, data: &ArrayView3<f32>) -> Array3<f32> {
        let inv = 1.0 / self.spec.data_max;
        data.mapv(|v| v * inv)
    }

    /// Reconstructions (N, P, C) in the SCALED space (X / data_max), and the scaled input, for
    /// figures (true vs predicted). `labels` (N, types) is required in one-hot mode.
    pub fn reconstruct_scaled(
        &self,
        data: ArrayView3<f32>,
        labels: Option<ArrayView2<f32>>,
    ) -> Result<(Array3<f32>, Array3<f32>), ModelError> {
        self.check(&data, &labels)?;
        let scaled = self.scaled(&data);
        let (n, p, c) = scaled.dim();
        let recon = match &self.net {
            Net::PixelStats(s) => s.reconstruct(n),
            Net::Autoencoder(m, st) => {
                let device = Default::default();
                let all_rows: Vec<usize> = (0..n).collect();
                let standardized = st
                    .as_ref()
                    .map(|st| st.rows(data.view(), &all_rows, self.spec.data_max));
                let flat = match &standardized {
                    Some(z) => z.view(),
                    None => scaled
                        .view()
                        .into_shape_with_order((n, p * c))
                        .map_err(|e| ModelError::Shape(e.to_string()))?,
                };
                let mut out: Vec<f32> = Vec::with_capacity(n * p * c);
                let all: Vec<usize> = (0..n).collect();
                for chunk in all.chunks(INFER_BATCH) {
                    let x = Tensor::<CpuBackend, 2>::from_data(
                        TensorData::new(data::gather(flat, chunk), [chunk.len(), p * c]),
                        &device,
                    );
                    let l = labels.map(|l| {
                        Tensor::<CpuBackend, 2>::from_data(
                            TensorData::new(data::gather(l, chunk), [chunk.len(), l.ncols()]),
                            &device,
                        )
                    });
                    let y = m.forward(x, l).into_data().convert::<f32>();
                    let y = y
                        .as_slice::<f32>()
                        .map_err(|e| ModelError::Shape(format!("{e:?}")))?;
                    // Chunks come in row order, so appending keeps rows in place.
                    out.extend_from_slice(y);
                }
                let mut recon = Array3::from_shape_vec((n, p, c), out)
                    .map_err(|e| ModelError::Shape(e.to_string()))?;
                // Standardised outputs back to the scaled space.
                if let Some(st) = st {
                    for mut img in recon.outer_iter_mut() {
                        ndarray::Zip::from(&mut img)
                            .and(&st.mean)
                            .and(&st.std)
                            .for_each(|v, &mu, &sd| *v = *v * sd + mu);
                    }
                }
                recon
            }
        };
        Ok((recon, scaled))
    }

    /// Residuals (N, P, C) of raw npz data in the model's units: `(x / data_max - recon) / d`
    /// with `d` the per-(pixel, channel) standard deviation of the training images for
    /// pixel_stats (floored) and for a standardising autoencoder, else 1 (the original's
    /// reconstruction error). `labels` (N, types) is required in one-hot mode.
    pub fn residuals(
        &self,
        data: ArrayView3<f32>,
        labels: Option<ArrayView2<f32>>,
    ) -> Result<Array3<f32>, ModelError> {
        if let Net::PixelStats(s) = &self.net {
            self.check(&data, &labels)?;
            return Ok(s.residuals(data, self.spec.data_max));
        }
        let (recon, mut res) = self.reconstruct_scaled(data, labels)?;
        res -= &recon;
        if let Net::Autoencoder(_, Some(st)) = &self.net {
            for mut img in res.outer_iter_mut() {
                img /= &st.std;
            }
        }
        Ok(res)
    }

    /// Per-pixel error maps (N, P) of raw npz data: the squared [`Self::residuals`] averaged
    /// over channels (the autoencoder's squared reconstruction error in the scaled space, or
    /// the squared z-score for pixel_stats and standardised inputs).
    pub fn error_maps(
        &self,
        data: ArrayView3<f32>,
        labels: Option<ArrayView2<f32>>,
    ) -> Result<Array2<f32>, ModelError> {
        Ok(mean_square(&self.residuals(data, labels)?))
    }
}

/// The mean of the squares over the last axis: (N, P, C) -> (N, P).
pub fn mean_square(res: &Array3<f32>) -> Array2<f32> {
    let c = res.dim().2.max(1) as f32;
    res.map_axis(Axis(2), |r| r.iter().map(|v| v * v).sum::<f32>() / c)
}

/// What a training run did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// The model kind.
    pub kind: ModelKind,
    /// Epochs run (1 for pixel_stats).
    pub epochs_run: usize,
    /// 1-based epoch of the kept weights.
    pub best_epoch: usize,
    /// Validation loss of the kept weights (pixel_stats: mean squared z-score of the
    /// validation images).
    pub best_val_loss: f64,
    /// Wall-clock seconds of the whole run (reading, training, writing).
    pub seconds: f64,
    /// Seconds of the fit itself.
    pub fit_seconds: f64,
    /// Training images.
    pub n_train: usize,
    /// Validation images.
    pub n_val: usize,
    /// Where it trained.
    pub device: String,
    /// Whether early stopping ended it.
    pub stopped_early: bool,
    /// Files written.
    pub outputs: Vec<PathBuf>,
    /// Things worth a look (few images, a loss that diverged...).
    pub warnings: Vec<String>,
}

/// `metadata/<model_name>.yaml`: the record of a training run.
#[derive(Debug, Clone, Serialize)]
pub struct TrainingMetadata {
    /// Always `pixal`.
    pub tool: String,
    /// pixal's version.
    pub version: String,
    /// When training finished (UTC).
    pub created: String,
    /// `experimentName` of parameters.yaml (the original tracked experiments by it).
    pub experiment_name: String,
    /// The model kind.
    pub model_type: ModelKind,
    /// The ML input file.
    pub npz: String,
    /// make_input's metadata, when given.
    pub preprocessing_metadata: Option<String>,
    /// Every `model_training` parameter as resolved.
    pub parameters: ModelTraining,
    /// The loss actually used.
    pub loss: LossSpec,
    /// Values per image (P x C).
    pub input_dim: usize,
    /// (P, C).
    pub input_shape: [usize; 2],
    /// Pooled (H, W).
    pub pooled_shape: [usize; 2],
    /// Channel names.
    pub channels: Vec<String>,
    /// Channel weights.
    pub weights: Vec<f32>,
    /// The scaling divisor.
    pub data_max: f32,
    /// One-hot label order (empty in per-type mode).
    pub label_types: Vec<String>,
    /// Trainable values (autoencoder).
    pub num_params: usize,
    /// Images in the file.
    pub n_images: usize,
    /// Training images' source files.
    pub train_files: Vec<String>,
    /// Images held out while the deployed weights were fitted.
    pub validation_files: Vec<String>,
    /// Epochs run.
    pub epochs_run: usize,
    /// 1-based best epoch.
    pub best_epoch: usize,
    /// Its validation loss.
    pub best_val_loss: f64,
    /// Whether early stopping ended the fit.
    pub stopped_early: bool,
    /// Seconds of the fit.
    pub fit_seconds: f64,
    /// Mean seconds per epoch.
    pub seconds_per_epoch: f64,
    /// Seconds of the whole run.
    pub total_training_seconds: f64,
    /// Backend and device.
    pub device: String,
    /// The model folder.
    pub model_dir: String,
    /// Notes (few images, early stop, ...).
    pub notes: Vec<String>,
}

/// `loss_history.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LossHistory {
    /// Training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Validation loss per epoch.
    pub val_loss: Vec<f64>,
    /// 1-based epoch of the kept weights.
    pub best_epoch: usize,
    /// Every metric of every epoch.
    pub epochs: Vec<EpochRecord>,
}

/// The training input, read and checked.
struct Prepared {
    data: Array3<f32>,
    labels: Option<Array2<f32>>,
    pooled: (usize, usize),
    channels: Vec<String>,
    weights: Vec<f32>,
    files: Vec<String>,
    label_types: Vec<String>,
    data_max: f32,
    /// The part mask of make_input (all ones for files without one).
    part_mask: Vec<f32>,
}

fn prepare(
    params: &Parameters,
    npz: &Path,
    meta_path: Option<&Path>,
) -> Result<Prepared, ModelError> {
    let input = crate::io::npz::read_input(npz)?;
    let bad = |reason: String| ModelError::Input {
        path: npz.to_path_buf(),
        reason,
    };
    let (n, p, c) = input.data.dim();
    if n == 0 || p == 0 || c == 0 {
        return Err(bad(format!(
            "the data is empty ({n} images x {p} pixels x {c} channels)"
        )));
    }
    params
        .quality_gates
        .check("training input", n, n)
        .map_err(bad)?;
    let meta: Option<PreprocessingMetadata> = match meta_path {
        Some(m) => {
            let meta: PreprocessingMetadata = read_yaml(m)?;
            meta.verify_npz(npz, m)?;
            Some(meta)
        }
        None => None,
    };
    let pp = &params.preprocessing.preprocessor;
    let (channels, weights): (Vec<String>, Vec<f32>) = match &meta {
        Some(m) => (
            m.preprocessor
                .channels
                .iter()
                .map(|ch| ch.name().to_string())
                .collect(),
            m.preprocessor.weights.iter().map(|&w| w as f32).collect(),
        ),
        None => (
            pp.channels.iter().map(|ch| ch.name().to_string()).collect(),
            pp.weights.clone(),
        ),
    };
    if channels.len() != c || weights.len() != c {
        return Err(bad(format!(
            "the data has {c} channel(s) but {} lists {} channel(s) ({}) and {} weight(s); pass the make_input metadata of this file or fix preprocessing.preprocessor",
            meta_path.map_or("parameters.yaml".to_string(), |m| m.display().to_string()),
            channels.len(),
            channels.join(", "),
            weights.len()
        )));
    }
    let files: Vec<String> = match &meta {
        Some(m) if m.files.len() == n => m.files.clone(),
        _ => (0..n).map(|i| format!("row {i}")).collect(),
    };
    let one_hot = params.model_training.one_hot_encoding;
    let (labels, label_types) = if one_hot {
        let Some(l) = input.labels.clone() else {
            return Err(bad(
                "one_hot_encoding is on but the file has no `labels` array; run make_input with one_hot_encoding: True".into(),
            ));
        };
        let t = l.ncols();
        let types = match &meta {
            Some(m) if m.types.len() == t => m.types.clone(),
            _ => (0..t).map(|i| format!("type_{i}")).collect(),
        };
        (Some(l), types)
    } else {
        (None, Vec::new())
    };
    let data_max = data::data_max(input.data.view()).ok_or_else(|| {
        bad("the data has no positive value or a value that is not finite; nothing to scale by (X / max(X))".into())
    })?;
    if let Some((i, _)) = input
        .data
        .outer_iter()
        .enumerate()
        .find(|(_, r)| r.iter().any(|v| !v.is_finite()))
    {
        return Err(bad(format!(
            "image {} ({}) holds a value that is not a finite number (NaN or infinite); run make_input again",
            i,
            files.get(i).map_or("?", String::as_str)
        )));
    }
    let part_mask = match &input.part {
        Some(part) => part.mask.to_vec(),
        None => vec![1.0; p],
    };
    Ok(Prepared {
        data: input.data,
        labels,
        pooled: input.shape,
        part_mask,
        channels,
        weights,
        files,
        label_types,
        data_max,
    })
}

fn select3(a: &Array3<f32>, rows: &[usize]) -> Array3<f32> {
    a.select(Axis(0), rows)
}

/// Trains on one npz and writes everything into `model_dir` (+ the metadata YAML into
/// `metadata_dir`); returns a summary of the run. `preprocessing_meta` is make_input's
/// `preprocessing.yaml` for this file (channel names and weights, source file names, one-hot
/// type names); without it the configuration's channels and weights are used.
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
) -> Result<TrainReport, ModelError> {
    let staging = atomic::staging_dir(model_dir, "model")?;
    let (mut report, meta) =
        train_into(params, npz, preprocessing_meta, staging.path(), model_dir)?;
    let staged = staging.keep();
    atomic::replace_dir(&staged, model_dir)?;
    for o in &mut report.outputs {
        if let Ok(rel) = o.strip_prefix(&staged) {
            *o = model_dir.join(rel);
        }
    }
    // The record of the run is written once the model it describes is in place.
    let meta_path = metadata_dir.join(format!("{}.yaml", params.model_training.model_name));
    write_yaml(&meta_path, &meta)?;
    report.outputs.push(meta_path);
    Ok(report)
}

/// Trains into `work_dir` (an empty folder); `model_dir` is where it will live, as recorded
/// in the training metadata.
fn train_into(
    params: &Parameters,
    npz: &Path,
    preprocessing_meta: Option<&Path>,
    work_dir: &Path,
    model_dir: &Path,
) -> Result<(TrainReport, TrainingMetadata), ModelError> {
    let t0 = Instant::now();
    let m = &params.model_training;
    let prep = prepare(params, npz, preprocessing_meta)?;
    let (n, p, c) = prep.data.dim();
    let folds = data::folds(n, m.calibration_folds, m.seed).ok_or_else(|| ModelError::Input {
        path: npz.to_path_buf(),
        reason: format!(
            "{n} image(s): training needs at least 2 good images so that each can be scored by a model that did not see it"
        ),
    })?;
    // The deployed autoencoder is fold 0's model; pixel_stats is fitted on every image.
    let split = data::Split {
        train: data::complement(n, &folds[0]),
        validation: folds[0].clone(),
        note: None,
    };
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
    atomic::create_dir_all(work_dir)?;
    let mut outputs = Vec::new();
    let fit_t0 = Instant::now();
    let labels_of = |rows: &[usize]| prep.labels.as_ref().map(|l| l.select(Axis(0), rows));
    let mut calibration = Array3::<f32>::zeros((n, p, c));
    let normalization = match m.model_type {
        ModelType::PixelStats => InputNormalization::Scale,
        ModelType::Autoencoder => m.input_normalization,
    };

    let (kind, net, outcome) = match m.model_type {
        ModelType::PixelStats => {
            for fold in &folds {
                let s =
                    pixel_stats::fit(prep.data.view(), &data::complement(n, fold), prep.data_max);
                let r = s.residuals(select3(&prep.data, fold).view(), prep.data_max);
                for (o, &row) in fold.iter().enumerate() {
                    calibration
                        .index_axis_mut(Axis(0), row)
                        .assign(&r.index_axis(Axis(0), o));
                }
            }
            let all: Vec<usize> = (0..n).collect();
            let stats = pixel_stats::fit(prep.data.view(), &all, prep.data_max);
            let mean_path = work_dir.join(MEAN_FILE);
            let std_path = work_dir.join(STD_FILE);
            write_npy(&mean_path, &stats.mean)?;
            write_npy(&std_path, &stats.std)?;
            outputs.push(mean_path);
            outputs.push(std_path);
            (ModelKind::PixelStats, Net::PixelStats(stats), None)
        }
        ModelType::Autoencoder => {
            let mut deployed = None;
            for (k, fold) in folds.iter().enumerate() {
                let train_rows = data::complement(n, fold);
                let (net, outcome, st) = train_autoencoder(
                    m,
                    &prep,
                    &train_rows,
                    fold,
                    (k == 0).then(|| work_dir.join(format!("{}.mpk", m.model_name))),
                    &format!(
                        "train {} fold {}/{}",
                        type_label(model_dir, &m.model_name),
                        k + 1,
                        folds.len()
                    ),
                )?;
                let fold_model = TrainedModel {
                    spec: base_spec(
                        m,
                        &prep,
                        ModelKind::Autoencoder,
                        normalization,
                        Some(outcome.config.clone()),
                    ),
                    net: Net::Autoencoder(Box::new(net), st),
                    part_mask: None,
                    calibration: None,
                };
                let r = fold_model.residuals(
                    select3(&prep.data, fold).view(),
                    labels_of(fold).as_ref().map(|l| l.view()),
                )?;
                for (o, &row) in fold.iter().enumerate() {
                    calibration
                        .index_axis_mut(Axis(0), row)
                        .assign(&r.index_axis(Axis(0), o));
                }
                if k == 0 {
                    deployed = Some((fold_model.net, outcome));
                }
            }
            let Some((net, outcome)) = deployed else {
                return Err(ModelError::Shape("no fold was trained".into()));
            };
            if let Net::Autoencoder(_, Some(st)) = &net {
                let mean_path = work_dir.join(INPUT_MEAN_FILE);
                let std_path = work_dir.join(INPUT_STD_FILE);
                write_npy(&mean_path, &st.mean)?;
                write_npy(&std_path, &st.std)?;
                outputs.push(mean_path);
                outputs.push(std_path);
            }
            (ModelKind::Autoencoder, net, Some(outcome))
        }
    };
    let fit_seconds = fit_t0.elapsed().as_secs_f64();
    if let Some((i, _)) = calibration
        .outer_iter()
        .enumerate()
        .find(|(_, r)| r.iter().any(|v| !v.is_finite()))
    {
        return Err(ModelError::Input {
            path: npz.to_path_buf(),
            reason: format!(
                "training diverged: the out-of-fold residuals of {} are not finite numbers; lower model_training.learning_rate",
                prep.files[i]
            ),
        });
    }

    let validation_files: Vec<String> = split
        .validation
        .iter()
        .map(|&i| prep.files[i].clone())
        .collect();
    let train_files: Vec<String> = split.train.iter().map(|&i| prep.files[i].clone()).collect();
    let weights_file = format!("{}.mpk", m.model_name);
    let safetensors_file = format!("{}.safetensors", m.model_name);
    let std_floor = match &net {
        Net::PixelStats(s) => Some(s.std_floor),
        Net::Autoencoder(..) => None,
    };
    let ae_config = outcome.as_ref().map(|o| o.config.clone());
    let spec = ModelSpec {
        weights_file: (kind == ModelKind::Autoencoder).then(|| weights_file.clone()),
        safetensors_file: Some(safetensors_file.clone()),
        std_floor,
        validation_files: validation_files.clone(),
        calibration_folds: folds.len(),
        calibration_files: prep.files.clone(),
        ..base_spec(m, &prep, kind, normalization, ae_config.clone())
    };
    let model = TrainedModel {
        spec: spec.clone(),
        net,
        part_mask: Some(prep.part_mask.clone()),
        calibration: None,
    };

    // Calibration data for detection: every image's out-of-fold residuals, and the part.
    let cal_path = work_dir.join(CALIBRATION_RESIDUALS_FILE);
    write_npy(&cal_path, &calibration)?;
    outputs.push(cal_path);
    let mask_path = work_dir.join(PART_MASK_FILE);
    write_npy(&mask_path, &ndarray::Array1::from(prep.part_mask.clone()))?;
    outputs.push(mask_path);
    let val_data = select3(&prep.data, &split.validation);
    let val_labels = labels_of(&split.validation);
    let val_maps = mean_square(&calibration.select(Axis(0), &split.validation));

    // Weights for Python users.
    let mut st_meta = BTreeMap::new();
    st_meta.insert("format".to_string(), "pixal".to_string());
    st_meta.insert("kind".to_string(), format!("{kind:?}"));
    st_meta.insert("data_max".to_string(), prep.data_max.to_string());
    let tensors = match &model.net {
        Net::Autoencoder(net, _) => named_tensors(net.as_ref()),
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
    };
    let st_path = work_dir.join(&safetensors_file);
    let t = Instant::now();
    export::write_safetensors(&st_path, &tensors, &st_meta)?;
    log::trace!("safetensors written in {:.2} s", t.elapsed().as_secs_f64());
    drop(tensors);
    outputs.push(st_path);
    if kind == ModelKind::Autoencoder {
        outputs.push(work_dir.join(&weights_file));
    }

    // History and figure.
    let (history, best_epoch, best_val_loss, stopped_early, epochs_run) = match &outcome {
        Some(o) => (
            o.history.clone(),
            o.best_epoch + 1,
            o.best_val_loss,
            o.stopped_early,
            o.history.len(),
        ),
        None => {
            let train_data = select3(&prep.data, &split.train);
            let train_labels = prep
                .labels
                .as_ref()
                .map(|l| l.select(Axis(0), &split.train));
            let train_maps =
                model.error_maps(train_data.view(), train_labels.as_ref().map(|l| l.view()))?;
            let (mse, _) = mean_reconstruction_mse(&model, &train_data, train_labels.as_ref())?;
            let (val_mse, per_channel) =
                mean_reconstruction_mse(&model, &val_data, val_labels.as_ref())?;
            let weighted: Vec<f64> = per_channel
                .iter()
                .zip(&prep.weights)
                .map(|(m, w)| m * f64::from(*w) / c as f64)
                .collect();
            let rec = EpochRecord {
                epoch: 0,
                loss: f64::from(train_maps.mean().unwrap_or(0.0)),
                val_loss: f64::from(val_maps.mean().unwrap_or(0.0)),
                mse,
                val_mse,
                val_mse_per_channel: per_channel,
                val_weighted_total: weighted.iter().sum(),
                val_weighted_per_channel: weighted,
                seconds: fit_seconds,
            };
            let v = rec.val_loss;
            (vec![rec], 1, v, false, 1)
        }
    };
    let hist = LossHistory {
        train_loss: history.iter().map(|r| r.loss).collect(),
        val_loss: history.iter().map(|r| r.val_loss).collect(),
        best_epoch,
        epochs: history.clone(),
    };
    let hist_path = work_dir.join(LOSS_HISTORY_FILE);
    let json = serde_json::to_vec_pretty(&hist).map_err(|e| IoError::Encode {
        path: hist_path.clone(),
        reason: e.to_string(),
    })?;
    atomic::write_bytes(&hist_path, &json)?;
    outputs.push(hist_path);
    if kind == ModelKind::Autoencoder && params.plotting.plot_loss {
        let plot_path = work_dir.join(LOSS_PLOT_FILE);
        plot_history(&plot_path, npz, &m.model_name, &hist, stopped_early)?;
        outputs.push(plot_path);
    }

    // Written last, with the hash of every file loading reads.
    let mut spec = spec;
    let mut hashed = vec![
        CALIBRATION_RESIDUALS_FILE.to_string(),
        PART_MASK_FILE.to_string(),
        safetensors_file.clone(),
    ];
    if normalization == InputNormalization::Standardize {
        hashed.extend([INPUT_MEAN_FILE.to_string(), INPUT_STD_FILE.to_string()]);
    }
    match kind {
        ModelKind::Autoencoder => hashed.push(weights_file.clone()),
        ModelKind::PixelStats => hashed.extend([MEAN_FILE.to_string(), STD_FILE.to_string()]),
    }
    for name in hashed {
        let path = work_dir.join(&name);
        let bytes = std::fs::read(&path).map_err(|source| IoError::Read { path, source })?;
        spec.checksums.insert(name, sha256_hex(&bytes));
    }
    let cfg_path = work_dir.join(MODEL_CONFIG_FILE);
    let json = serde_json::to_vec_pretty(&spec).map_err(|e| IoError::Encode {
        path: cfg_path.clone(),
        reason: e.to_string(),
    })?;
    atomic::write_bytes(&cfg_path, &json)?;
    outputs.push(cfg_path);

    let device = outcome.as_ref().map_or_else(
        || "cpu (pixel statistics)".to_string(),
        |o| o.device.clone(),
    );
    let mut notes = warnings.clone();
    if stopped_early {
        notes.push(format!(
            "early stopping after epoch {epochs_run} (patience {}, min_delta {}); kept epoch {best_epoch}",
            m.patience, m.min_delta
        ));
    }
    if kind == ModelKind::PixelStats {
        notes.push(format!(
            "mean/std fitted on all {n} image(s); calibration_residuals.npy holds each image scored by the statistics of the other folds ({} folds)",
            folds.len()
        ));
    }
    let total = t0.elapsed().as_secs_f64();
    let meta = TrainingMetadata {
        experiment_name: params.experiment_name.clone(),
        tool: "pixal".into(),
        version: crate::VERSION.into(),
        created: crate::logging::utc_now(),
        model_type: kind,
        npz: npz.display().to_string(),
        preprocessing_metadata: preprocessing_meta.map(|p| p.display().to_string()),
        parameters: m.clone(),
        loss: LossSpec::from_config(m),
        input_dim: p * c,
        input_shape: [p, c],
        pooled_shape: [prep.pooled.0, prep.pooled.1],
        channels: prep.channels.clone(),
        weights: prep.weights.clone(),
        data_max: prep.data_max,
        label_types: prep.label_types.clone(),
        num_params: ae_config
            .as_ref()
            .map_or(2 * p * c, AutoencoderConfig::num_params),
        n_images: n,
        train_files,
        validation_files,
        epochs_run,
        best_epoch,
        best_val_loss,
        stopped_early,
        fit_seconds,
        seconds_per_epoch: fit_seconds / epochs_run.max(1) as f64,
        total_training_seconds: total,
        device: device.clone(),
        model_dir: model_dir.display().to_string(),
        notes,
    };
    Ok((
        TrainReport {
            kind,
            epochs_run,
            best_epoch,
            best_val_loss,
            seconds: t0.elapsed().as_secs_f64(),
            fit_seconds,
            n_train: split.train.len(),
            n_val: split.validation.len(),
            device,
            stopped_early,
            outputs,
            warnings,
        },
        meta,
    ))
}

/// Mean squared error between scaled images and their reconstructions: overall and per
/// channel.
fn mean_reconstruction_mse(
    model: &TrainedModel,
    data: &Array3<f32>,
    labels: Option<&Array2<f32>>,
) -> Result<(f64, Vec<f64>), ModelError> {
    let (recon, scaled) = model.reconstruct_scaled(data.view(), labels.map(|l| l.view()))?;
    let c = scaled.dim().2;
    let mut per = vec![0.0f64; c];
    for (k, acc) in per.iter_mut().enumerate() {
        let (a, b) = (scaled.index_axis(Axis(2), k), recon.index_axis(Axis(2), k));
        let n = a.len().max(1) as f64;
        *acc = a
            .iter()
            .zip(b.iter())
            .map(|(x, y)| f64::from(x - y).powi(2))
            .sum::<f64>()
            / n;
    }
    let all = per.iter().sum::<f64>() / c.max(1) as f64;
    Ok((all, per))
}

fn plot_history(
    path: &Path,
    npz: &Path,
    model_name: &str,
    h: &LossHistory,
    stopped_early: bool,
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
            train: h.train_loss.clone(),
            validation: h.val_loss.clone(),
            best_epoch: h.best_epoch,
            stopped_early,
        },
    )?;
    Ok(())
}

/// What the autoencoder fit hands back to [`train_npz`].
struct AeOutcome {
    config: AutoencoderConfig,
    history: Vec<EpochRecord>,
    best_epoch: usize,
    best_val_loss: f64,
    stopped_early: bool,
    device: String,
}

/// The fit settings the configuration asks for.
pub fn fit_settings(m: &ModelTraining, channel_weights: &[f32]) -> FitSettings {
    let (l1, l2) = match m.regularization {
        Regularization::None => (0.0, 0.0),
        Regularization::L1 => (m.l1_regularization, 0.0),
        Regularization::L2 => (0.0, m.l2_regularization),
        Regularization::L1L2 => (m.l1_regularization, m.l2_regularization),
    };
    FitSettings {
        epochs: m.n_epochs,
        batch_size: m.batchsize,
        learning_rate: m.learning_rate,
        seed: m.seed,
        loss: LossSpec::from_config(m),
        regularizer: ActivityRegularizer { l1, l2 },
        patience: m.patience,
        min_delta: m.min_delta,
        channel_weights: channel_weights.to_vec(),
    }
}

/// The network the configuration asks for, for `input_dim` inputs and `label_dim` labels.
pub fn autoencoder_config(
    m: &ModelTraining,
    input_dim: usize,
    label_dim: usize,
) -> AutoencoderConfig {
    AutoencoderConfig::new(
        input_dim,
        m.autoencoder_architecture.clone(),
        label_dim,
        m.label_latent_size,
        m.output_activation.into(),
        LEAKY_SLOPE,
    )
}

/// A finished fit, backend-independent: the best weights as burn record bytes.
struct FitResult {
    bytes: Vec<u8>,
    history: Vec<EpochRecord>,
    best_epoch: usize,
    best_val_loss: f64,
    stopped_early: bool,
    aborted: Option<String>,
}

struct FitJob<'a> {
    config: &'a AutoencoderConfig,
    settings: FitSettings,
    seed: u64,
    train: Rows<'a>,
    val: Rows<'a>,
    weights_path: PathBuf,
    /// Whether best weights are checkpointed to `weights_path` during the fit (the deployed
    /// model only; the other folds' models live in memory).
    checkpoint: bool,
    label: String,
}

impl device::BackendJob for FitJob<'_> {
    type Output = Result<FitResult, ModelError>;

    fn run<B: dense::TrainBackend>(self, device: B::Device, host: bool) -> Self::Output {
        let model = self.config.init::<B>(self.seed, &device);
        let bar = crate::logging::progress(self.settings.epochs as u64, &self.label);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{prefix} epoch {pos}/{len} [{bar:24}] {msg} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(self.label.clone());
        let mut last_write: Option<Instant> = None;
        let mut write_error: Option<ModelError> = None;
        let path = self.weights_path.clone();
        let mut on_epoch = |r: &EpochRecord, best: Option<&Autoencoder<B::InnerBackend>>| {
            bar.set_position(r.epoch as u64 + 1);
            bar.set_message(format!("loss {:.4e} val_loss {:.4e}", r.loss, r.val_loss));
            log::debug!(
                "epoch {}: loss {:.6e} val_loss {:.6e} mse {:.6e} val_mse {:.6e} ({:.2} s)",
                r.epoch + 1,
                r.loss,
                r.val_loss,
                r.mse,
                r.val_mse,
                r.seconds
            );
            // Checkpoint the best weights when they improve, at most every
            // CHECKPOINT_INTERVAL_S seconds.
            if let Some(best) = best
                && self.checkpoint
                && write_error.is_none()
                && last_write.is_none_or(|t| t.elapsed().as_secs_f64() >= CHECKPOINT_INTERVAL_S)
            {
                match record_bytes(best, &path)
                    .and_then(|b| atomic::write_bytes(&path, &b).map_err(Into::into))
                {
                    Ok(()) => last_write = Some(Instant::now()),
                    Err(e) => write_error = Some(e),
                }
            }
        };
        let out = train::fit::<B>(
            model,
            self.config,
            self.train,
            self.val,
            &self.settings,
            &device,
            host,
            &mut on_epoch,
        );
        bar.finish_and_clear();
        if let Some(e) = write_error {
            return Err(e);
        }
        let t = Instant::now();
        let bytes = record_bytes(&out.model, &self.weights_path)?;
        log::trace!("weights encoded in {:.2} s", t.elapsed().as_secs_f64());
        Ok(FitResult {
            bytes,
            history: out.history,
            best_epoch: out.best_epoch,
            best_val_loss: out.best_val_loss,
            stopped_early: out.stopped_early,
            aborted: out.aborted,
        })
    }
}

/// The type a model folder belongs to, for progress bars: the folder's parent (`<type>/model`),
/// else the model name.
fn type_label(model_dir: &Path, model_name: &str) -> String {
    model_dir.parent().and_then(|d| d.file_name()).map_or_else(
        || model_name.to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The spec of a model of `kind` fitted on `prep`, without its files, floor, folds or checksums:
/// enough to compute an autoencoder's residuals during cross-validation, and the base of the
/// spec that is written.
fn base_spec(
    m: &ModelTraining,
    prep: &Prepared,
    kind: ModelKind,
    normalization: InputNormalization,
    config: Option<AutoencoderConfig>,
) -> ModelSpec {
    let (_, p, c) = prep.data.dim();
    ModelSpec {
        format: MODEL_FORMAT,
        version: crate::VERSION.into(),
        kind,
        model_name: m.model_name.clone(),
        input_shape: [p, c],
        pooled_shape: [prep.pooled.0, prep.pooled.1],
        channels: prep.channels.clone(),
        weights: prep.weights.clone(),
        data_max: prep.data_max,
        label_types: prep.label_types.clone(),
        autoencoder: config,
        weights_file: None,
        safetensors_file: None,
        std_floor: None,
        validation_files: Vec::new(),
        input_normalization: normalization,
        calibration_folds: 0,
        calibration_files: Vec::new(),
        checksums: BTreeMap::new(),
    }
}

/// Trains the autoencoder on rows `train_rows` with early stopping on `val_rows`; with
/// `weights_path`, checkpoints and finally writes its best weights (burn record) there. Returns
/// the CPU network, its history and the input standardisation it was trained with.
fn train_autoencoder(
    m: &ModelTraining,
    prep: &Prepared,
    train_rows: &[usize],
    val_rows: &[usize],
    weights_path: Option<PathBuf>,
    label: &str,
) -> Result<(Autoencoder<CpuBackend>, AeOutcome, Option<Standardizer>), ModelError> {
    let (_, p, c) = prep.data.dim();
    let label_dim = prep.labels.as_ref().map_or(0, |l| l.ncols());
    let config = autoencoder_config(m, p * c, label_dim);
    let selected = device::select(m.device)?;
    let device_name = selected.describe();
    let standardizer = (m.input_normalization == InputNormalization::Standardize)
        .then(|| Standardizer::fit(prep.data.view(), train_rows, prep.data_max, &prep.part_mask));
    let rows_of = |rows: &[usize]| match &standardizer {
        Some(st) => st.rows(prep.data.view(), rows, prep.data_max),
        None => data::scaled_rows(prep.data.view(), rows, prep.data_max),
    };
    let x_train = rows_of(train_rows);
    let x_val = rows_of(val_rows);
    let l_train = prep
        .labels
        .as_ref()
        .map(|l| data::select_rows(l.view(), train_rows));
    let l_val = prep
        .labels
        .as_ref()
        .map(|l| data::select_rows(l.view(), val_rows));
    log::info!(
        "training {label} on {}: {} train / {} validation images, {} inputs ({}), {} weights, {} epochs max",
        device_name,
        train_rows.len(),
        val_rows.len(),
        p * c,
        if standardizer.is_some() {
            "standardised"
        } else {
            "scaled"
        },
        config.num_params(),
        m.n_epochs
    );
    let checkpoint = weights_path.is_some();
    let weights_path = weights_path.unwrap_or_else(|| PathBuf::from(format!("{label}.mpk")));
    let job = FitJob {
        config: &config,
        settings: fit_settings(m, &prep.weights),
        seed: m.seed,
        train: Rows {
            x: x_train.view(),
            labels: l_train.as_ref().map(|l| l.view()),
        },
        val: Rows {
            x: x_val.view(),
            labels: l_val.as_ref().map(|l| l.view()),
        },
        weights_path: weights_path.clone(),
        checkpoint,
        label: label.to_string(),
    };
    let r = device::run(selected, job)?;
    if let Some(a) = &r.aborted {
        // A fit whose loss stopped being a number has learnt nothing to trust.
        return Err(ModelError::Diverged(format!(
            "{label}: {a}; no model was written (the previous one, if any, is kept); lower model_training.learning_rate"
        )));
    }
    if checkpoint {
        let t = Instant::now();
        atomic::write_bytes(&weights_path, &r.bytes)?;
        log::trace!("weights written in {:.2} s", t.elapsed().as_secs_f64());
    }
    let net = network_from_record(&config, r.bytes, &weights_path)?;
    Ok((
        net,
        AeOutcome {
            config,
            history: r.history,
            best_epoch: r.best_epoch,
            best_val_loss: r.best_val_loss,
            stopped_early: r.stopped_early,
            device: device_name,
        },
        standardizer,
    ))
}
