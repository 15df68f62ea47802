//! Models: training (`pixal train`) and the trained-model API the detection stage uses.
//!
//! Two kinds of model learn what good images look like, both in the scaled space `X / max(X)`
//! (the maximum of the training file, stored with the model and applied again at detection):
//! - [`ModelKind::Autoencoder`]: the original PIXAL's dense autoencoder ([`autoencoder`]),
//!   trained by the explicit loop in [`train`] on burn's CPU backend (or CUDA, see [`device`]).
//! - [`ModelKind::PixelStats`]: per-(pixel, channel) mean and standard deviation
//!   ([`pixel_stats`]), a baseline that trains in seconds.
//!
//! A model folder holds `model_config.json` (everything needed to rebuild the model), the
//! weights (`<model_name>.mpk` burn record and `<model_name>.safetensors` for the
//! autoencoder; `pixel_mean.npy` / `pixel_std.npy` for pixel_stats), `loss_history.json`,
//! `loss_plot.png` (autoencoder) and `validation_error_maps.npy`: the error maps of the
//! held-out validation images, which the detection stage calibrates its thresholds on.

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
use crate::config::resolved::{ModelTraining, ModelType, Regularization};
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
/// Error maps (float32, (N_val, P)) of the held-out validation images.
pub const VALIDATION_ERROR_MAPS_FILE: &str = "validation_error_maps.npy";
/// Per-epoch losses and metrics.
pub const LOSS_HISTORY_FILE: &str = "loss_history.json";
/// Training vs validation loss figure.
pub const LOSS_PLOT_FILE: &str = "loss_plot.png";
/// pixel_stats mean (float32, (P, C)).
pub const MEAN_FILE: &str = "pixel_mean.npy";
/// pixel_stats standard deviation (float32, (P, C)).
pub const STD_FILE: &str = "pixel_std.npy";
/// Version of the model folder layout.
pub const MODEL_FORMAT: u32 = 1;

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
    /// The source file of each row of `validation_error_maps.npy`.
    pub validation_files: Vec<String>,
}

enum Net {
    Autoencoder(Box<Autoencoder<CpuBackend>>),
    PixelStats(PixelStats),
}

/// A trained model, loaded for inference (on the CPU).
pub struct TrainedModel {
    spec: ModelSpec,
    net: Net,
}

fn dir_err(path: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::ModelDir {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_npy2(path: &Path) -> Result<Array2<f32>, ModelError> {
    let f = std::fs::File::open(path).map_err(|source| IoError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Array2::<f32>::read_npy(f).map_err(|e| dir_err(path, format!("bad .npy: {e}")))
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
                let bytes = std::fs::read(&wpath).map_err(|source| IoError::Read {
                    path: wpath.clone(),
                    source,
                })?;
                Net::Autoencoder(Box::new(network_from_record(ac, bytes, &wpath)?))
            }
            ModelKind::PixelStats => {
                let mean = read_npy2(&model_dir.join(MEAN_FILE))?;
                let std = read_npy2(&model_dir.join(STD_FILE))?;
                if mean.dim() != (p, c) || std.dim() != (p, c) {
                    return Err(dir_err(model_dir, "mean/std arrays are not (P, C)"));
                }
                Net::PixelStats(PixelStats {
                    mean,
                    std,
                    std_floor: spec.std_floor.unwrap_or(pixel_stats::MIN_STD_FLOOR as f32),
                })
            }
        };
        Ok(TrainedModel { spec, net })
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
            Net::Autoencoder(m) => {
                let device = Default::default();
                let flat = scaled
                    .view()
                    .into_shape_with_order((n, p * c))
                    .map_err(|e| ModelError::Shape(e.to_string()))?;
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
                Array3::from_shape_vec((n, p, c), out)
                    .map_err(|e| ModelError::Shape(e.to_string()))?
            }
        };
        Ok((recon, scaled))
    }

    /// Per-pixel error maps (N, P) of raw npz data (N, P, C); the model applies its stored
    /// scaling X / data_max itself. Autoencoder: squared error between scaled input and
    /// reconstruction, averaged over channels; pixel_stats: squared z-score
    /// ((x - mean) / std)^2 averaged over channels (std floored at `std_floor`). `labels`
    /// (N, types) is required in one-hot mode.
    pub fn error_maps(
        &self,
        data: ArrayView3<f32>,
        labels: Option<ArrayView2<f32>>,
    ) -> Result<Array2<f32>, ModelError> {
        if let Net::PixelStats(s) = &self.net {
            self.check(&data, &labels)?;
            return Ok(s.error_maps(data, self.spec.data_max));
        }
        let (recon, scaled) = self.reconstruct_scaled(data, labels)?;
        let c = scaled.dim().2 as f32;
        let mut out = Array2::<f32>::zeros((scaled.dim().0, scaled.dim().1));
        ndarray::Zip::from(&mut out)
            .and(scaled.lanes(Axis(2)))
            .and(recon.lanes(Axis(2)))
            .for_each(|o, x, r| {
                *o = x
                    .iter()
                    .zip(r.iter())
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>()
                    / c;
            });
        Ok(out)
    }
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
    /// Validation images' source files (rows of `validation_error_maps.npy`).
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
    let meta: Option<PreprocessingMetadata> = match meta_path {
        Some(m) => Some(read_yaml(m)?),
        None => None,
    };
    let pp = &params.preprocessing.preprocessor;
    let (channels, weights): (Vec<String>, Vec<f32>) = match &meta {
        Some(m) => (
            match &m.preprocessor.channels {
                crate::config::raw::ChannelList::List(l) => l.clone(),
                crate::config::raw::ChannelList::Word(w) => vec![w.clone()],
            },
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
    Ok(Prepared {
        data: input.data,
        labels,
        pooled: input.shape,
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
pub fn train_npz(
    params: &Parameters,
    npz: &Path,
    preprocessing_meta: Option<&Path>,
    model_dir: &Path,
    metadata_dir: &Path,
) -> Result<TrainReport, ModelError> {
    let t0 = Instant::now();
    let m = &params.model_training;
    let prep = prepare(params, npz, preprocessing_meta)?;
    let (n, p, c) = prep.data.dim();
    let split = data::split(n, m.seed);
    let mut warnings = Vec::new();
    if let Some(note) = &split.note {
        warnings.push(format!("{}: {note}", npz.display()));
    }
    if m.mixed_precision {
        warnings.push("mixed_precision is not supported by pixal; training in float32".into());
    }
    atomic::create_dir_all(model_dir)?;
    let mut outputs = Vec::new();
    let fit_t0 = Instant::now();

    let (kind, net, outcome) = match m.model_type {
        ModelType::PixelStats => {
            let stats = pixel_stats::fit(prep.data.view(), &split.train, prep.data_max);
            let mean_path = model_dir.join(MEAN_FILE);
            let std_path = model_dir.join(STD_FILE);
            write_npy(&mean_path, &stats.mean)?;
            write_npy(&std_path, &stats.std)?;
            outputs.push(mean_path);
            outputs.push(std_path);
            (ModelKind::PixelStats, Net::PixelStats(stats), None)
        }
        ModelType::Autoencoder => {
            let (net, outcome) = train_autoencoder(m, &prep, &split, model_dir, &mut warnings)?;
            (
                ModelKind::Autoencoder,
                Net::Autoencoder(Box::new(net)),
                Some(outcome),
            )
        }
    };
    let fit_seconds = fit_t0.elapsed().as_secs_f64();

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
        Net::Autoencoder(_) => None,
    };
    let ae_config = outcome.as_ref().map(|o| o.config.clone());
    let spec = ModelSpec {
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
        autoencoder: ae_config.clone(),
        weights_file: (kind == ModelKind::Autoencoder).then(|| weights_file.clone()),
        safetensors_file: Some(safetensors_file.clone()),
        std_floor,
        validation_files: validation_files.clone(),
    };
    let model = TrainedModel {
        spec: spec.clone(),
        net,
    };

    // Calibration data for detection: the error maps of the held-out images.
    let val_data = select3(&prep.data, &split.validation);
    let val_labels = prep
        .labels
        .as_ref()
        .map(|l| l.select(Axis(0), &split.validation));
    let val_maps = model.error_maps(val_data.view(), val_labels.as_ref().map(|l| l.view()))?;
    let maps_path = model_dir.join(VALIDATION_ERROR_MAPS_FILE);
    write_npy(&maps_path, &val_maps)?;
    outputs.push(maps_path);

    // Weights for Python users.
    let mut st_meta = BTreeMap::new();
    st_meta.insert("format".to_string(), "pixal".to_string());
    st_meta.insert("kind".to_string(), format!("{kind:?}"));
    st_meta.insert("data_max".to_string(), prep.data_max.to_string());
    let tensors = match &model.net {
        Net::Autoencoder(net) => named_tensors(net.as_ref()),
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
    let st_path = model_dir.join(&safetensors_file);
    let t = Instant::now();
    export::write_safetensors(&st_path, &tensors, &st_meta)?;
    log::trace!("safetensors written in {:.2} s", t.elapsed().as_secs_f64());
    drop(tensors);
    outputs.push(st_path);
    if kind == ModelKind::Autoencoder {
        outputs.push(model_dir.join(&weights_file));
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
    let hist_path = model_dir.join(LOSS_HISTORY_FILE);
    let json = serde_json::to_vec_pretty(&hist).map_err(|e| IoError::Encode {
        path: hist_path.clone(),
        reason: e.to_string(),
    })?;
    atomic::write_bytes(&hist_path, &json)?;
    outputs.push(hist_path);
    if kind == ModelKind::Autoencoder {
        let plot_path = model_dir.join(LOSS_PLOT_FILE);
        plot_history(&plot_path, npz, &m.model_name, &hist, stopped_early)?;
        outputs.push(plot_path);
    }

    let cfg_path = model_dir.join(MODEL_CONFIG_FILE);
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
            "mean/std fitted on the {} training image(s); the {} validation image(s) give validation_error_maps.npy",
            split.train.len(),
            split.validation.len()
        ));
    }
    let total = t0.elapsed().as_secs_f64();
    let meta = TrainingMetadata {
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
    let meta_path = metadata_dir.join(format!("{}.yaml", m.model_name));
    write_yaml(&meta_path, &meta)?;
    outputs.push(meta_path);

    Ok(TrainReport {
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
    })
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

/// Trains the autoencoder on the split, writes its final best weights (burn record) and
/// returns the CPU network with its history.
fn train_autoencoder(
    m: &ModelTraining,
    prep: &Prepared,
    split: &data::Split,
    model_dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<(Autoencoder<CpuBackend>, AeOutcome), ModelError> {
    let (_, p, c) = prep.data.dim();
    let label_dim = prep.labels.as_ref().map_or(0, |l| l.ncols());
    let config = autoencoder_config(m, p * c, label_dim);
    let selected = device::select(m.device)?;
    let device_name = selected.describe();
    let x_train = data::scaled_rows(prep.data.view(), &split.train, prep.data_max);
    let x_val = data::scaled_rows(prep.data.view(), &split.validation, prep.data_max);
    let l_train = prep
        .labels
        .as_ref()
        .map(|l| data::select_rows(l.view(), &split.train));
    let l_val = prep
        .labels
        .as_ref()
        .map(|l| data::select_rows(l.view(), &split.validation));
    log::info!(
        "training {} on {}: {} train / {} validation images, {} inputs, {} weights, {} epochs max",
        m.model_name,
        device_name,
        split.train.len(),
        split.validation.len(),
        p * c,
        config.num_params(),
        m.n_epochs
    );
    let weights_path = model_dir.join(format!("{}.mpk", m.model_name));
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
        label: m.model_name.clone(),
    };
    let r = device::run(selected, job)?;
    if let Some(a) = &r.aborted {
        warnings.push(a.clone());
    }
    let t = Instant::now();
    atomic::write_bytes(&weights_path, &r.bytes)?;
    log::trace!("weights written in {:.2} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let net = network_from_record(&config, r.bytes, &weights_path)?;
    log::trace!("weights decoded in {:.2} s", t.elapsed().as_secs_f64());
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
    ))
}
