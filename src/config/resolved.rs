//! The validated, typed configuration: enums instead of strings, checked ranges. Built once from
//! [`super::raw`]; every error names the file, the key path and (when it can be found) the line.

use std::path::Path;

use serde::Serialize;

use super::raw::{ChannelList, RawParameters};
use super::{ConfigError, yaml};
use crate::preprocess::Channel;

/// Reconstruction loss of the autoencoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LossFunction {
    /// Squared error.
    Mse,
    /// Absolute error.
    Mae,
    /// Huber with `huber_delta`.
    Huber,
    /// sqrt(d² + 1e-6) - 1e-3.
    Charbonnier,
    /// Squared error over non-zero targets only.
    MaskedMse,
}

/// Activity regularisation on the hidden layers' outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Regularization {
    /// None.
    None,
    /// L1.
    L1,
    /// L2.
    L2,
    /// L1 + L2.
    L1L2,
}

/// Activation of the output layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputActivation {
    /// Logistic.
    Sigmoid,
    /// Softmax over the output vector.
    Softmax,
    /// Hyperbolic tangent.
    Tanh,
    /// Rectified linear.
    Relu,
    /// Identity.
    Linear,
}

/// Which model `pixal train` fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelType {
    /// The original's dense autoencoder.
    Autoencoder,
    /// Per-(pixel, channel) mean and standard deviation of the good images.
    PixelStats,
}

/// What the autoencoder sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputNormalization {
    /// The original's `X / max(X)`.
    Scale,
    /// `(X / max(X) - mean) / std` per (pixel, channel) over the training images.
    Standardize,
}

/// Where training runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainDevice {
    /// CUDA when built in and a GPU is present, else the CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// An NVIDIA GPU (needs the `cuda` build feature and a driver); an error otherwise.
    Cuda,
}

/// Settings of background removal.
#[derive(Debug, Clone, Serialize)]
pub struct RemoveBackground {
    /// Worker threads (>= 1).
    pub max_workers: usize,
    /// Segmentation method.
    pub method: crate::preprocess::background::Method,
    /// A rembg model name, or a path to a `.onnx` file (`~/` expanded).
    pub model: String,
    /// The ONNX Runtime library (file or folder) named in the config, `~/` expanded.
    pub onnxruntime: Option<std::path::PathBuf>,
    /// rembg's mask post-processing.
    pub post_process_mask: bool,
    /// Cut-out style.
    pub cutout: crate::preprocess::background::Cutout,
    /// Download a missing rembg model on first use (`PIXAL_NO_DOWNLOAD` forbids it too).
    pub download: bool,
    /// Base address of the model downloads, when not rembg's release (`PIXAL_MODEL_URL` wins).
    pub download_url: Option<String>,
}

/// Settings of alignment.
#[derive(Debug, Clone, Serialize)]
pub struct Alignment {
    /// Align before make_input.
    pub apply_alignment: bool,
    /// Lowe ratio, in (0, 1].
    pub knn_ratio: f64,
    /// More good matches than this are needed.
    pub number_of_points: usize,
    /// RANSAC threshold in pixels (> 0).
    pub ransac_threshold: f64,
    /// Minimum SSIM.
    pub min_score_threshold: f64,
    /// Maximum grayscale MSE.
    pub max_mse_threshold: f64,
    /// Minimum RANSAC inliers.
    pub min_good_matches: usize,
    /// ORB keypoints of a 1920x1080 image, scaled with the area (>= 100; pixal only).
    pub n_features: usize,
    /// Sub-pixel intensity refinement of each homography (pixal only).
    pub refine: bool,
    /// Training images tried as references for a validation photo, the training reference
    /// first (None: all of them, the original's behaviour; pixal only).
    pub max_references: Option<usize>,
}

/// Settings of make_input.
#[derive(Debug, Clone, Serialize)]
pub struct Preprocessor {
    /// Name of the ML input file (`out.npz`).
    pub file_name: String,
    /// Pooling block size (>= 1).
    pub pool_size: usize,
    /// The channels, in order (`ALL` expanded).
    #[serde(serialize_with = "channel_names")]
    pub channels: Vec<Channel>,
    /// One weight per channel.
    pub weights: Vec<f32>,
    /// Crop to the union foreground box.
    pub zero_pruning: bool,
    /// Padding of the box in pixels.
    pub zero_pruning_padding: usize,
    /// Foreground threshold (0..=255).
    pub bg_threshold: u8,
    /// Fit each photo's channels to the training reference inside the part.
    pub photometric_normalization: bool,
}

fn channel_names<S: serde::Serializer>(c: &[Channel], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(c.iter().map(|c| c.name()))
}

/// `preprocessing:`, validated.
#[derive(Debug, Clone, Serialize)]
pub struct Preprocessing {
    /// Background removal.
    pub remove_background: RemoveBackground,
    /// Alignment.
    pub alignment: Alignment,
    /// Save alignment metrics.
    pub save_metrics: bool,
    /// Save alignment overlays.
    pub save_overlays: bool,
    /// Draw matches.
    pub draw_matches: bool,
    /// make_input.
    pub preprocessor: Preprocessor,
    /// Rename outputs after the type folder.
    pub rename_images: bool,
}

/// `model_training:`, validated.
#[derive(Debug, Clone, Serialize)]
pub struct ModelTraining {
    /// Model file name stem.
    pub model_name: String,
    /// Seed of every random choice.
    pub seed: u64,
    /// One model for all types with one-hot labels.
    pub one_hot_encoding: bool,
    /// Hidden sizes; the last is the latent size.
    pub autoencoder_architecture: Vec<usize>,
    /// Label branch size.
    pub label_latent_size: usize,
    /// Maximum epochs.
    pub n_epochs: usize,
    /// Mini-batch size.
    pub batchsize: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Activity regularisation.
    pub regularization: Regularization,
    /// L1 coefficient.
    pub l1_regularization: f64,
    /// L2 coefficient.
    pub l2_regularization: f64,
    /// Loss.
    pub loss_function: LossFunction,
    /// Huber delta.
    pub huber_delta: f64,
    /// Masked loss.
    pub masked_loss: bool,
    /// Output activation.
    pub output_activation: OutputActivation,
    /// Early-stopping patience.
    pub patience: usize,
    /// Early-stopping minimum improvement.
    pub min_delta: f64,
    /// Mixed precision.
    pub mixed_precision: bool,
    /// CPU threads the original was told to use.
    pub available_cpu: usize,
    /// Which model to train.
    pub model_type: ModelType,
    /// Where to train.
    pub device: TrainDevice,
    /// What the autoencoder sees.
    pub input_normalization: InputNormalization,
    /// Cross-validation folds for the out-of-fold calibration errors (>= 2).
    pub calibration_folds: usize,
}

/// `plotting:`, validated.
#[derive(Debug, Clone, Serialize)]
pub struct Plotting {
    /// Loss plot.
    pub plot_loss: bool,
    /// Accuracy plot.
    pub plot_accuracy: bool,
    /// Confusion matrix.
    pub plot_confusion_matrix: bool,
    /// ROC/PR curves.
    pub plot_roc_recall_curve: bool,
    /// Anomaly overlays.
    pub plot_anomaly_heatmap: bool,
    /// Absolute loss figures.
    pub plot_abs_loss_per_pixel: bool,
    /// Squared loss figures.
    pub plot_mse_per_pixel: bool,
    /// Prediction scatter.
    pub plot_pixel_predictions: bool,
    /// Distribution histograms.
    pub plot_distributions: bool,
    /// Threshold on log10 loss.
    pub use_log_loss: bool,
    /// Per-pixel threshold.
    pub loss_cut: f64,
}

/// `detection:`, validated (pixal only).
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    /// Raw or standardised pixel scores.
    pub scoring: crate::detect::score::Scoring,
    /// Automatic thresholds or the original's loss_cut.
    pub threshold: crate::detect::score::ThresholdMode,
    /// Quantile for the automatic pixel threshold, in (0, 1].
    pub pixel_quantile: f64,
    /// Factor for the automatic image threshold (> 0).
    pub image_margin: f64,
    /// Gaussian sigma of score smoothing in pooled pixels (>= 0).
    pub smoothing_sigma: f32,
    /// Share of good photos the automatic image threshold may flag, in (0, 0.5).
    pub false_positive_rate: f64,
    /// Pooled pixels taken off the part's outline for the image score.
    pub part_erosion: usize,
}

/// `quality_gates:`, validated (pixal only): below these a type fails instead of training on
/// (or being judged by) too few images.
#[derive(Debug, Clone, Serialize)]
pub struct QualityGates {
    /// Fewest images a type may train on (>= 1).
    pub min_images: usize,
    /// Smallest share of a type's images that must come through make_input, in [0, 1].
    pub min_image_fraction: f64,
}

impl QualityGates {
    /// Checks `kept` of `total` images of `what` against the gates; the error names the gate,
    /// the counts and the setting to change.
    pub fn check(&self, what: &str, kept: usize, total: usize) -> Result<(), String> {
        if kept < self.min_images {
            return Err(format!(
                "{what}: only {kept} of {total} image(s) usable, below quality_gates.min_images {} (see the refused images above; to accept so few, set quality_gates.min_images: {kept} in parameters.yaml)",
                self.min_images
            ));
        }
        let need = (self.min_image_fraction * total as f64).ceil() as usize;
        if kept < need {
            return Err(format!(
                "{what}: only {kept} of {total} image(s) usable, below quality_gates.min_image_fraction {} ({need} images) (see the refused images above; to accept this, set quality_gates.min_image_fraction: {:.2} in parameters.yaml)",
                self.min_image_fraction,
                (kept as f64 / total.max(1) as f64 - 0.005).max(0.0)
            ));
        }
        Ok(())
    }
}

/// The validated `parameters.yaml`.
#[derive(Debug, Clone, Serialize)]
pub struct Parameters {
    /// Experiment name.
    pub experiment_name: String,
    /// Preprocessing.
    pub preprocessing: Preprocessing,
    /// Model training.
    pub model_training: ModelTraining,
    /// Plotting.
    pub plotting: Plotting,
    /// Detection.
    pub detection: Detection,
    /// Minimum image counts.
    pub quality_gates: QualityGates,
    /// One message per key of the original that this file sets to a value that has no effect
    /// in pixal (see [`inert_settings`]); commands log them once per run.
    pub inert: Vec<String>,
}

/// Builds errors that point at a key of one file.
struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let parts: Vec<&str> = key.split('.').collect();
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: yaml::find_key_line(self.text, &parts),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn count(&self, key: &str, v: i64, min: i64) -> Result<usize, ConfigError> {
        if v < min {
            return Err(self.invalid(key, format!("must be at least {min}, found {v}")));
        }
        usize::try_from(v).map_err(|_| self.invalid(key, format!("{v} is too large")))
    }

    fn positive(&self, key: &str, v: f64) -> Result<f64, ConfigError> {
        if !(v.is_finite() && v > 0.0) {
            return Err(self.invalid(key, format!("must be a number > 0, found {v}")));
        }
        Ok(v)
    }

    fn non_negative(&self, key: &str, v: f64) -> Result<f64, ConfigError> {
        if !(v.is_finite() && v >= 0.0) {
            return Err(self.invalid(key, format!("must be a number >= 0, found {v}")));
        }
        Ok(v)
    }

    fn choice<T: Copy>(&self, key: &str, v: &str, options: &[(&str, T)]) -> Result<T, ConfigError> {
        let norm = v.trim().to_ascii_lowercase();
        if let Some((_, t)) = options.iter().find(|(name, _)| *name == norm) {
            return Ok(*t);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let hint = closest(&norm, &names)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        Err(self.invalid(
            key,
            format!(
                "unknown value `{v}`{hint}; expected one of: {}",
                names.join(", ")
            ),
        ))
    }
}

/// The closest of `candidates` to `word`, when it is close enough to be a plausible typo.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| {
            (
                strsim::jaro_winkler(&word.to_lowercase(), &c.to_lowercase()),
                *c,
            )
        })
        .filter(|(score, _)| *score >= 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

impl Parameters {
    /// Parses and validates the text of a `parameters.yaml` (`path` is used in messages).
    pub fn from_yaml(text: &str, path: &Path) -> Result<Parameters, ConfigError> {
        let value = yaml::parse(text, path)?;
        let raw: RawParameters = match serde_path_to_error::deserialize(value) {
            Ok(raw) => raw,
            Err(e) => return Err(deser_error(e, text, path)),
        };
        Parameters::from_raw(&raw, text, path)
    }

    /// Validates already-parsed raw parameters.
    pub fn from_raw(
        raw: &RawParameters,
        text: &str,
        path: &Path,
    ) -> Result<Parameters, ConfigError> {
        let cx = Ctx { path, text };
        let p = &raw.preprocessing;
        let pp = &p.preprocessor;
        let channels = resolve_channels(&cx, &pp.channels)?;
        if pp.weights.len() != channels.len() {
            return Err(cx.invalid(
                "preprocessing.preprocessor.weights",
                format!(
                    "has {} entries but `channels` selects {} ({}); give one weight per channel",
                    pp.weights.len(),
                    channels.len(),
                    channels
                        .iter()
                        .map(|c| c.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        for (i, w) in pp.weights.iter().enumerate() {
            if !(w.is_finite() && *w >= 0.0) {
                return Err(cx.invalid(
                    "preprocessing.preprocessor.weights",
                    format!("entry {i} is {w}; weights must be finite and >= 0"),
                ));
            }
        }
        if pp.file_name.trim().is_empty() || pp.file_name.contains('/') {
            return Err(cx.invalid(
                "preprocessing.preprocessor.file_name",
                "must be a plain file name such as out.npz",
            ));
        }
        if !(0..=255).contains(&pp.bg_threshold) {
            return Err(cx.invalid(
                "preprocessing.preprocessor.bg_threshold",
                format!("must be in 0..=255, found {}", pp.bg_threshold),
            ));
        }
        let a = &p.alignment;
        if !(a.knn_ratio > 0.0 && a.knn_ratio <= 1.0) {
            return Err(cx.invalid(
                "preprocessing.alignment.knn_ratio",
                format!("must be in (0, 1], found {}", a.knn_ratio),
            ));
        }
        let preprocessing = Preprocessing {
            remove_background: resolve_remove_background(&cx, &p.remove_background)?,
            alignment: Alignment {
                apply_alignment: a.apply_alignment,
                knn_ratio: a.knn_ratio,
                number_of_points: cx.count(
                    "preprocessing.alignment.number_of_points",
                    a.number_of_points,
                    0,
                )?,
                ransac_threshold: cx.positive(
                    "preprocessing.alignment.ransac_threshold",
                    a.ransac_threshold,
                )?,
                min_score_threshold: a.min_score_threshold,
                max_mse_threshold: cx.non_negative(
                    "preprocessing.alignment.MAX_MSE_THRESHOLD",
                    a.max_mse_threshold,
                )?,
                min_good_matches: cx.count(
                    "preprocessing.alignment.MIN_GOOD_MATCHES",
                    a.min_good_matches,
                    4,
                )?,
                n_features: cx.count("preprocessing.alignment.n_features", a.n_features, 100)?,
                refine: a.refine,
                max_references: a
                    .max_references
                    .map(|v| cx.count("preprocessing.alignment.max_references", v, 1))
                    .transpose()?,
            },
            save_metrics: p.save_metrics,
            save_overlays: p.save_overlays,
            draw_matches: p.draw_matches,
            preprocessor: Preprocessor {
                file_name: pp.file_name.clone(),
                pool_size: cx.count("preprocessing.preprocessor.pool_size", pp.pool_size, 1)?,
                weights: pp.weights.iter().map(|w| *w as f32).collect(),
                channels,
                zero_pruning: pp.zero_pruning,
                zero_pruning_padding: cx.count(
                    "preprocessing.preprocessor.zero_pruning_padding",
                    pp.zero_pruning_padding,
                    0,
                )?,
                bg_threshold: pp.bg_threshold as u8,
                photometric_normalization: pp.photometric_normalization,
            },
            rename_images: p.rename_images,
        };

        let m = &raw.model_training;
        if m.autoencoder_architecture.is_empty() {
            return Err(cx.invalid(
                "model_training.autoencoder_architecture",
                "must list at least one layer size (the last is the latent size)",
            ));
        }
        let mut arch = Vec::with_capacity(m.autoencoder_architecture.len());
        for &n in &m.autoencoder_architecture {
            arch.push(cx.count("model_training.autoencoder_architecture", n, 1)?);
        }
        let regularization = match m.regularization.as_deref().map(str::trim) {
            None | Some("") => Regularization::None,
            Some(r) => cx.choice(
                "model_training.regularization",
                r,
                &[
                    ("none", Regularization::None),
                    ("l1", Regularization::L1),
                    ("l2", Regularization::L2),
                    ("l1_l2", Regularization::L1L2),
                ],
            )?,
        };
        let model_training = ModelTraining {
            model_name: nonempty(&cx, "model_training.model_name", &m.model_name)?,
            seed: m.seed,
            one_hot_encoding: m.one_hot_encoding,
            autoencoder_architecture: arch,
            label_latent_size: cx.count(
                "model_training.label_latent_size",
                m.label_latent_size,
                1,
            )?,
            n_epochs: cx.count("model_training.n_epochs", m.n_epochs, 1)?,
            batchsize: cx.count("model_training.batchsize", m.batchsize, 1)?,
            learning_rate: cx.positive("model_training.learning_rate", m.learning_rate)?,
            regularization,
            l1_regularization: cx
                .non_negative("model_training.l1_regularization", m.l1_regularization)?,
            l2_regularization: cx
                .non_negative("model_training.l2_regularization", m.l2_regularization)?,
            loss_function: cx.choice(
                "model_training.loss_function",
                &m.loss_function,
                &[
                    ("mse", LossFunction::Mse),
                    ("mae", LossFunction::Mae),
                    ("huber", LossFunction::Huber),
                    ("charbonnier", LossFunction::Charbonnier),
                    ("masked_mse", LossFunction::MaskedMse),
                ],
            )?,
            huber_delta: cx.positive("model_training.huber_delta", m.huber_delta)?,
            masked_loss: m.masked_loss,
            output_activation: cx.choice(
                "model_training.output_activation",
                &m.output_activation,
                &[
                    ("sigmoid", OutputActivation::Sigmoid),
                    ("softmax", OutputActivation::Softmax),
                    ("tanh", OutputActivation::Tanh),
                    ("relu", OutputActivation::Relu),
                    ("linear", OutputActivation::Linear),
                ],
            )?,
            patience: cx.count("model_training.patience", m.patience, 0)?,
            min_delta: cx.non_negative("model_training.min_delta", m.min_delta)?,
            mixed_precision: m.mixed_precision,
            available_cpu: cx.count("model_training.Available_CPU", m.available_cpu, 1)?,
            model_type: cx.choice(
                "model_training.model_type",
                &m.model_type,
                &[
                    ("autoencoder", ModelType::Autoencoder),
                    ("pixel_stats", ModelType::PixelStats),
                ],
            )?,
            device: cx.choice(
                "model_training.device",
                &m.device,
                &[
                    ("auto", TrainDevice::Auto),
                    ("cpu", TrainDevice::Cpu),
                    ("cuda", TrainDevice::Cuda),
                ],
            )?,
            input_normalization: cx.choice(
                "model_training.input_normalization",
                &m.input_normalization,
                &[
                    ("scale", InputNormalization::Scale),
                    ("standardize", InputNormalization::Standardize),
                ],
            )?,
            calibration_folds: cx.count(
                "model_training.calibration_folds",
                m.calibration_folds,
                2,
            )?,
        };
        if model_training.input_normalization == InputNormalization::Standardize
            && !matches!(
                model_training.output_activation,
                OutputActivation::Linear | OutputActivation::Tanh
            )
        {
            return Err(cx.invalid(
                "model_training.output_activation",
                format!(
                    "must be linear (or tanh) with input_normalization: standardize, whose inputs are z-scores that a {} output cannot reach; found {}",
                    m.output_activation, m.output_activation
                ),
            ));
        }

        let pl = &raw.plotting;
        if pl.use_log_loss && pl.loss_cut <= 0.0 {
            return Err(cx.invalid(
                "plotting.loss_cut",
                format!(
                    "must be > 0 with use_log_loss (log10 of it is taken), found {}",
                    pl.loss_cut
                ),
            ));
        }
        let plotting = Plotting {
            plot_loss: pl.plot_loss,
            plot_accuracy: pl.plot_accuracy,
            plot_confusion_matrix: pl.plot_confusion_matrix,
            plot_roc_recall_curve: pl.plot_roc_recall_curve,
            plot_anomaly_heatmap: pl.plot_anomaly_heatmap,
            plot_abs_loss_per_pixel: pl.plot_abs_loss_per_pixel,
            plot_mse_per_pixel: pl.plot_mse_per_pixel,
            plot_pixel_predictions: pl.plot_pixel_predictions,
            plot_distributions: pl.plot_distributions,
            use_log_loss: pl.use_log_loss,
            loss_cut: pl.loss_cut,
        };
        let d = &raw.detection;
        use crate::detect::score::{Scoring, ThresholdMode};
        if !(d.pixel_quantile > 0.0 && d.pixel_quantile <= 1.0) {
            return Err(cx.invalid(
                "detection.pixel_quantile",
                format!("must be in (0, 1], found {}", d.pixel_quantile),
            ));
        }
        let detection = Detection {
            scoring: cx.choice(
                "detection.scoring",
                &d.scoring,
                &[
                    ("standardized", Scoring::Standardized),
                    ("raw", Scoring::Raw),
                ],
            )?,
            threshold: cx.choice(
                "detection.threshold",
                &d.threshold,
                &[
                    ("auto", ThresholdMode::Auto),
                    ("loss_cut", ThresholdMode::LossCut),
                ],
            )?,
            pixel_quantile: d.pixel_quantile,
            image_margin: cx.positive("detection.image_margin", d.image_margin)?,
            smoothing_sigma: cx.non_negative("detection.smoothing_sigma", d.smoothing_sigma)?
                as f32,
            false_positive_rate: if d.false_positive_rate > 0.0 && d.false_positive_rate < 0.5 {
                d.false_positive_rate
            } else {
                return Err(cx.invalid(
                    "detection.false_positive_rate",
                    format!("must be in (0, 0.5), found {}", d.false_positive_rate),
                ));
            },
            part_erosion: cx.count("detection.part_erosion", d.part_erosion, 0)?,
        };
        let g = &raw.quality_gates;
        if !(0.0..=1.0).contains(&g.min_image_fraction) {
            return Err(cx.invalid(
                "quality_gates.min_image_fraction",
                format!("must be in [0, 1], found {}", g.min_image_fraction),
            ));
        }
        let quality_gates = QualityGates {
            min_images: cx.count("quality_gates.min_images", g.min_images, 1)?,
            min_image_fraction: g.min_image_fraction,
        };
        Ok(Parameters {
            inert: inert_settings(raw),
            experiment_name: raw.experiment_name.clone(),
            preprocessing,
            model_training,
            plotting,
            detection,
            quality_gates,
        })
    }
}

/// Keys of the original that pixal accepts (so its files load) but that change nothing here,
/// each with its reason; a file that sets one to anything but the original's default gets a
/// message, since its author expects an effect. README lists them.
pub fn inert_settings(raw: &RawParameters) -> Vec<String> {
    let m = &raw.model_training;
    let d = crate::config::raw::RawModelTraining::default();
    let tf = "a TensorFlow switch of the original";
    let table: [(bool, &str, &str); 10] = [
        (
            m.enable_memory_growth != d.enable_memory_growth,
            "model_training.enable_memory_growth",
            tf,
        ),
        (
            m.tf_gpu_allocator != d.tf_gpu_allocator,
            "model_training.TF_GPU_ALLOCATOR",
            tf,
        ),
        (
            m.cpu_multi_threading != d.cpu_multi_threading,
            "model_training.CPU_MULTI_THREADING",
            tf,
        ),
        (
            m.hybrid_mode != d.hybrid_mode,
            "model_training.HYBRID_MODE",
            tf,
        ),
        (
            m.use_gradient_tape != d.use_gradient_tape,
            "model_training.use_gradient_tape",
            "pixal has one training loop",
        ),
        (
            m.available_cpu != d.available_cpu,
            "model_training.Available_CPU",
            "pixal uses every core; limit it with --threads N",
        ),
        (
            m.metric_accuracy != d.metric_accuracy,
            "model_training.metric_accuracy",
            "pixal records no accuracy metric (an autoencoder's outputs are not classes)",
        ),
        (
            m.model_file_extension != d.model_file_extension,
            "model_training.model_file_extension",
            "pixal writes <model_name>.mpk and .safetensors",
        ),
        (
            m.model_type.trim() == "pixel_stats" && m.device.trim() == "cuda",
            "model_training.device: cuda",
            "pixel_stats computes on the CPU (only the autoencoder uses a GPU)",
        ),
        (
            raw.plotting.plot_accuracy != crate::config::raw::RawPlotting::default().plot_accuracy,
            "plotting.plot_accuracy",
            "there is no accuracy to plot",
        ),
    ];
    table
        .iter()
        .filter(|(set, _, _)| *set)
        .map(|(_, key, why)| format!("{key} has no effect in pixal: {why}"))
        .collect()
}

/// `preprocessing.remove_background`, validated.
fn resolve_remove_background(
    cx: &Ctx<'_>,
    r: &super::raw::RawRemoveBackground,
) -> Result<RemoveBackground, ConfigError> {
    use crate::preprocess::background::{Cutout, Method, onnx};
    const KEY: &str = "preprocessing.remove_background";
    let method = cx.choice(
        &format!("{KEY}.method"),
        &r.method,
        &[
            ("auto", Method::Auto),
            ("onnx", Method::Onnx),
            ("classical", Method::Classical),
        ],
    )?;
    let cutout = cx.choice(
        &format!("{KEY}.cutout"),
        &r.cutout,
        &[
            ("premultiplied", Cutout::Premultiplied),
            ("putalpha", Cutout::PutAlpha),
        ],
    )?;
    let model = r.model.trim();
    let model = if onnx::is_model_path(model) {
        expand_home(model).display().to_string()
    } else {
        cx.choice(
            &format!("{KEY}.model"),
            model,
            &onnx::KNOWN_MODELS.map(|m| (m, m)),
        )
        .map_err(|e| match e {
            ConfigError::Invalid {
                path,
                line,
                key,
                message,
            } => ConfigError::Invalid {
                path,
                line,
                key,
                message: format!("{message}, or a path to a .onnx file"),
            },
            other => other,
        })?
        .to_string()
    };
    let onnxruntime = match r.onnxruntime.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(p) => Some(expand_home(p)),
    };
    Ok(RemoveBackground {
        max_workers: cx.count(&format!("{KEY}.max_workers"), r.max_workers, 1)?,
        method,
        model,
        onnxruntime,
        post_process_mask: r.post_process_mask,
        cutout,
        download: r.download,
        download_url: r
            .download_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string),
    })
}

/// `~/x` -> `$HOME/x`; anything else unchanged.
fn expand_home(p: &str) -> std::path::PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => std::path::PathBuf::from(home).join(rest),
        _ => std::path::PathBuf::from(p),
    }
}

fn nonempty(cx: &Ctx<'_>, key: &str, v: &str) -> Result<String, ConfigError> {
    let t = v.trim();
    if t.is_empty() || t.contains('/') {
        return Err(cx.invalid(key, "must be a non-empty name without `/`"));
    }
    Ok(t.to_string())
}

fn resolve_channels(cx: &Ctx<'_>, list: &ChannelList) -> Result<Vec<Channel>, ConfigError> {
    const KEY: &str = "preprocessing.preprocessor.channels";
    let names: Vec<String> = match list {
        ChannelList::Word(w) => vec![w.clone()],
        ChannelList::List(l) => l.clone(),
    };
    if names.len() == 1 && names[0].trim().eq_ignore_ascii_case("all") {
        return Ok(Channel::ALL.to_vec());
    }
    if names.is_empty() {
        return Err(cx.invalid(KEY, "must name at least one channel (or ALL)"));
    }
    let mut out = Vec::with_capacity(names.len());
    for n in &names {
        let c: Channel = match n.trim().parse() {
            Ok(c) => c,
            Err(_) => {
                let all = Channel::names();
                let hint = closest(n, &all)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(cx.invalid(
                    KEY,
                    format!(
                        "unknown channel `{n}`{hint}; valid channels: {} or ALL",
                        all.join(" ")
                    ),
                ));
            }
        };
        if out.contains(&c) {
            return Err(cx.invalid(KEY, format!("channel `{n}` is listed twice")));
        }
        out.push(c);
    }
    Ok(out)
}

/// Turns a serde error at a key path into an unknown-key or invalid-value error.
pub(crate) fn deser_error(
    e: serde_path_to_error::Error<serde_json::Error>,
    text: &str,
    path: &Path,
) -> ConfigError {
    let mut parts: Vec<String> = e
        .path()
        .iter()
        .filter_map(|seg| match seg {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
            _ => None,
        })
        .collect();
    let msg = e.inner().to_string();
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default().to_string();
        // serde lists the expected fields in backticks after the word "expected".
        let expected: Vec<&str> = msg
            .split_once("expected")
            .map(|(_, tail)| tail.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        if parts.last() != Some(&field) {
            parts.push(field.clone());
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        return ConfigError::UnknownKey {
            path: path.to_path_buf(),
            line: yaml::find_key_line(text, &refs),
            key: parts.join("."),
            suggestion: closest(&field, &expected).map(str::to_string),
        };
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let line = (1..=refs.len())
        .rev()
        .find_map(|n| yaml::find_key_line(text, &refs[..n]));
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        key: parts.join("."),
        message: msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../configs/parameters.yaml");

    fn parse(text: &str) -> Result<Parameters, ConfigError> {
        Parameters::from_yaml(text, Path::new("parameters.yaml"))
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn shipped_file_has_the_original_keys_with_pixals_detection_defaults() {
        let p = parse(SHIPPED).unwrap();
        let pp = &p.preprocessing.preprocessor;
        // Lightness defects need LAB_L; photos are aligned and normalised photometrically.
        assert_eq!(
            pp.channels,
            vec![Channel::LabL, Channel::LabA, Channel::LabB]
        );
        assert_eq!(pp.weights, vec![3.0, 3.0, 3.0]);
        assert!(pp.photometric_normalization);
        assert!(p.preprocessing.alignment.apply_alignment);
        assert_eq!(
            (pp.pool_size, pp.zero_pruning_padding, pp.bg_threshold),
            (2, 5, 15)
        );
        let m = &p.model_training;
        assert_eq!(p.preprocessing.alignment.max_references, Some(5));
        assert_eq!(m.autoencoder_architecture, vec![32]);
        assert_eq!(m.patience, 10);
        assert_eq!(m.loss_function, LossFunction::Huber);
        assert_eq!(m.regularization, Regularization::L2);
        assert_eq!(m.input_normalization, InputNormalization::Standardize);
        assert_eq!(m.output_activation, OutputActivation::Linear);
        assert_eq!(m.calibration_folds, 5);
        assert_eq!(p.preprocessing.alignment.min_good_matches, 20);
        assert!((p.plotting.loss_cut - 0.1).abs() < 1e-12);
        assert!((p.detection.false_positive_rate - 0.02).abs() < 1e-12);
        assert_eq!(p.detection.part_erosion, 2);
    }

    #[test]
    fn missing_keys_keep_the_originals_meaning() {
        // A file without pixal's keys (the original's) behaves as the original did.
        let p = parse("").unwrap();
        let pp = &p.preprocessing.preprocessor;
        assert_eq!(pp.channels, vec![Channel::LabA, Channel::LabB]);
        assert!(!p.preprocessing.alignment.apply_alignment);
        assert_eq!(
            p.model_training.input_normalization,
            InputNormalization::Scale
        );
        assert_eq!(
            p.model_training.output_activation,
            OutputActivation::Sigmoid
        );
        assert!((p.model_training.learning_rate - 1e-4).abs() < 1e-12);
        let msg = err("model_training:\n  input_normalization: standardize\n");
        assert!(msg.contains("output_activation"), "{msg}");
        let msg = err("detection:\n  false_positive_rate: 0.7\n");
        assert!(msg.contains("false_positive_rate"), "{msg}");
    }

    #[test]
    fn original_file_is_accepted_unchanged() {
        let Some((original, text)) = crate::config::original_config("parameters.yaml") else {
            return;
        };
        let p = Parameters::from_yaml(&text, &original).unwrap();
        assert!((p.model_training.learning_rate - 1e-4).abs() < 1e-12);
        assert_eq!(p.experiment_name, "Test_Experiment");
        assert!(!p.preprocessing.alignment.apply_alignment);
        // Its no-op keys keep the original's defaults: nothing to say about them.
        assert_eq!(p.inert, Vec::<String>::new());
    }

    #[test]
    fn keys_without_effect_are_named_when_set() {
        assert!(parse("").unwrap().inert.is_empty());
        let shipped = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/parameters.yaml"),
        )
        .unwrap();
        assert!(parse(&shipped).unwrap().inert.is_empty());
        let p = parse(
            "model_training:\n  Available_CPU: 4\n  HYBRID_MODE: True\nplotting:\n  plot_accuracy: False\n",
        )
        .unwrap();
        assert_eq!(p.inert.len(), 3, "{:?}", p.inert);
        assert!(p.inert[0].starts_with("model_training.HYBRID_MODE has no effect"));
        assert!(p.inert[1].contains("Available_CPU") && p.inert[1].contains("--threads"));
        assert!(p.inert[2].starts_with("plotting.plot_accuracy"));
    }

    #[test]
    fn empty_file_means_all_defaults() {
        let p = parse("").unwrap();
        assert_eq!(p.model_training.n_epochs, 500);
        assert_eq!(p.preprocessing.preprocessor.file_name, "out.npz");
    }

    #[test]
    fn unknown_key_names_file_line_and_closest_key() {
        let text = SHIPPED.replace("    pool_size: 2", "    pool_sise: 2");
        let line = text.lines().position(|l| l.contains("pool_sise")).unwrap() + 1;
        let msg = err(&text);
        assert!(
            msg.starts_with(&format!(
                "parameters.yaml:{line}: unknown key `preprocessing.preprocessor.pool_sise`"
            )),
            "{msg}"
        );
        assert!(msg.contains("did you mean `pool_size`"), "{msg}");

        let msg = err("model_training:\n  min_good_matches: 3\n");
        assert!(msg.contains("parameters.yaml:2"), "{msg}");
        assert!(msg.contains("`model_training.min_good_matches`"), "{msg}");

        let msg = err("plotting:\n  zzz: 1\n");
        assert!(msg.contains("unknown key `plotting.zzz`"), "{msg}");
        assert!(!msg.contains("did you mean"), "{msg}");
    }

    #[test]
    fn uppercase_keys_are_known() {
        let p = parse(
            "preprocessing:\n  alignment:\n    MIN_GOOD_MATCHES: 30\n    MAX_MSE_THRESHOLD: 5\n",
        )
        .unwrap();
        assert_eq!(p.preprocessing.alignment.min_good_matches, 30);
        assert_eq!(p.preprocessing.alignment.max_mse_threshold, 5.0);
    }

    #[test]
    fn alignment_keys_of_pixal_have_defaults_and_ranges() {
        let p = parse("preprocessing:\n  alignment:\n    knn_ratio: 0.7\n").unwrap();
        assert_eq!(p.preprocessing.alignment.n_features, 4000);
        assert!(p.preprocessing.alignment.refine);
        // Without the key every training image is a candidate reference, as in the original.
        assert_eq!(p.preprocessing.alignment.max_references, None);
        let p = parse("preprocessing:\n  alignment:\n    max_references: 2\n").unwrap();
        assert_eq!(p.preprocessing.alignment.max_references, Some(2));
        assert!(parse("preprocessing:\n  alignment:\n    max_references: 0\n").is_err());
        let p = parse("preprocessing:\n  alignment:\n    n_features: 800\n    refine: False\n")
            .unwrap();
        assert_eq!(p.preprocessing.alignment.n_features, 800);
        assert!(!p.preprocessing.alignment.refine);
        let msg = parse("preprocessing:\n  alignment:\n    n_features: 10\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("`preprocessing.alignment.n_features`"),
            "{msg}"
        );
    }

    #[test]
    fn range_and_type_errors_name_the_key() {
        let cases: &[(&str, &str)] = &[
            (
                "preprocessing:\n  preprocessor:\n    pool_size: 0\n",
                "`preprocessing.preprocessor.pool_size`: must be at least 1",
            ),
            (
                "preprocessing:\n  preprocessor:\n    channels: [R, G]\n    weights: [1.0]\n",
                "`preprocessing.preprocessor.weights`: has 1 entries",
            ),
            (
                "preprocessing:\n  preprocessor:\n    channels: [LAB_a, LAB_bb]\n",
                "unknown channel `LAB_bb` (did you mean `LAB_b`?)",
            ),
            (
                "preprocessing:\n  preprocessor:\n    zero_pruning_padding: -3\n",
                "`preprocessing.preprocessor.zero_pruning_padding`: must be at least 0",
            ),
            (
                "preprocessing:\n  preprocessor:\n    bg_threshold: 300\n",
                "must be in 0..=255",
            ),
            (
                "model_training:\n  n_epochs: ten\n",
                "`model_training.n_epochs`",
            ),
            (
                "model_training:\n  loss_function: hubber\n",
                "did you mean `huber`",
            ),
            (
                "model_training:\n  learning_rate: fast\n",
                "`model_training.learning_rate`",
            ),
            (
                "model_training:\n  autoencoder_architecture: []\n",
                "at least one layer",
            ),
        ];
        for (text, want) in cases {
            let msg = err(text);
            assert!(msg.contains(want), "for {text:?}: {msg}");
            assert!(msg.starts_with("parameters.yaml:"), "{msg}");
        }
        // Lines are found for nested keys.
        let msg = err("preprocessing:\n  preprocessor:\n    pool_size: 0\n");
        assert!(msg.starts_with("parameters.yaml:3:"), "{msg}");
    }

    #[test]
    fn all_word_and_string_numbers_and_aliases() {
        let p = parse(
            "preprocessing:\n  preprocessor:\n    channels: ALL\n    weights: &w [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]\nmodel_training:\n  learning_rate: 1e-4\n  l1_regularization: \"2e-3\"\n",
        )
        .unwrap();
        assert_eq!(p.preprocessing.preprocessor.channels.len(), 23);
        assert!((p.model_training.learning_rate - 1e-4).abs() < 1e-12);
        assert!((p.model_training.l1_regularization - 2e-3).abs() < 1e-12);
        let p = parse("x_defaults: &d\n  patience: 7\n");
        assert!(p.is_err(), "unknown top-level key must be refused");
        let p = parse("model_training: &m\n  patience: 7\n  min_delta: 0.5\n").unwrap();
        assert_eq!(p.model_training.patience, 7);
        let p = parse(
            "plotting:\n  loss_cut: &cut 0.25\n  use_log_loss: false\nmodel_training:\n  huber_delta: *cut\n",
        )
        .unwrap();
        assert_eq!(p.model_training.huber_delta, 0.25);
        let p = parse("preprocessing:\n  preprocessor:\n    channels: [\"ALL\"]\n    weights: [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]\n").unwrap();
        assert_eq!(p.preprocessing.preprocessor.channels, Channel::ALL.to_vec());
    }

    #[test]
    fn model_type_and_device_keys() {
        let p = parse("").unwrap();
        assert_eq!(p.model_training.model_type, ModelType::Autoencoder);
        assert_eq!(p.model_training.device, TrainDevice::Auto);
        let p = parse("model_training:\n  model_type: pixel_stats\n  device: CPU\n").unwrap();
        assert_eq!(p.model_training.model_type, ModelType::PixelStats);
        assert_eq!(p.model_training.device, TrainDevice::Cpu);
        let msg = err("model_training:\n  model_type: pixelstats\n");
        assert!(msg.contains("did you mean `pixel_stats`"), "{msg}");
        let msg = err("model_training:\n  device: gpu\n");
        assert!(msg.contains("`model_training.device`"), "{msg}");
    }

    #[test]
    fn quality_gates_keys_and_messages() {
        let p = parse("").unwrap();
        assert_eq!(p.quality_gates.min_images, 5);
        assert_eq!(p.quality_gates.min_image_fraction, 0.5);
        let g = parse("quality_gates:\n  min_images: 2\n  min_image_fraction: 0.25\n")
            .unwrap()
            .quality_gates;
        assert!(g.check("t", 2, 8).is_ok());
        let e = g.check("t", 1, 8).unwrap_err();
        assert!(
            e.contains("only 1 of 8") && e.contains("min_images: 1"),
            "{e}"
        );
        let e = g.check("t", 2, 9).unwrap_err();
        assert!(
            e.contains("min_image_fraction 0.25 (3 images)")
                && e.contains("min_image_fraction: 0.22"),
            "{e}"
        );
        assert!(err("quality_gates:\n  min_images: 0\n").contains("`quality_gates.min_images`"));
        assert!(
            err("quality_gates:\n  min_image_fraction: 1.5\n")
                .contains("`quality_gates.min_image_fraction`")
        );
    }

    #[test]
    fn detection_keys() {
        use crate::detect::score::{Scoring, ThresholdMode};
        let p = parse("").unwrap();
        assert_eq!(p.detection.scoring, Scoring::Standardized);
        assert_eq!(p.detection.threshold, ThresholdMode::Auto);
        let p = parse("detection:\n  scoring: raw\n  threshold: loss_cut\n  smoothing_sigma: 0\n")
            .unwrap();
        assert_eq!(p.detection.scoring, Scoring::Raw);
        assert_eq!(p.detection.threshold, ThresholdMode::LossCut);
        let msg = err("detection:\n  pixel_quantile: 1.5\n");
        assert!(msg.contains("`detection.pixel_quantile`"), "{msg}");
        let msg = err("detection:\n  threshold: lossCut\n");
        assert!(msg.contains("did you mean `loss_cut`"), "{msg}");
    }

    #[test]
    fn remove_background_keys_have_defaults_and_are_checked() {
        use crate::preprocess::background::{Cutout, Method};
        let r = parse("").unwrap().preprocessing.remove_background;
        assert_eq!(r.method, Method::Auto);
        assert_eq!(r.model, "u2net");
        assert_eq!(r.onnxruntime, None);
        assert!(!r.post_process_mask);
        assert_eq!(r.cutout, Cutout::Premultiplied);
        let shipped = parse(SHIPPED).unwrap().preprocessing.remove_background;
        assert_eq!((shipped.method, shipped.max_workers), (Method::Auto, 8));
        let r = parse(
            "preprocessing:\n  remove_background:\n    method: Classical\n    model: models/my.onnx\n    onnxruntime: /opt/ort/lib\n    post_process_mask: true\n    cutout: putalpha\n",
        )
        .unwrap()
        .preprocessing
        .remove_background;
        assert_eq!(r.method, Method::Classical);
        assert_eq!(r.model, "models/my.onnx");
        assert_eq!(r.onnxruntime.as_deref(), Some(Path::new("/opt/ort/lib")));
        assert!(r.post_process_mask);
        assert_eq!(r.cutout, Cutout::PutAlpha);
        let msg = err("preprocessing:\n  remove_background:\n    model: u2nett\n");
        assert!(msg.contains("did you mean `u2net`"), "{msg}");
        assert!(msg.contains("or a path to a .onnx file"), "{msg}");
        assert!(msg.starts_with("parameters.yaml:3:"), "{msg}");
        let msg = err("preprocessing:\n  remove_background:\n    method: rembg\n");
        assert!(
            msg.contains("expected one of: auto, onnx, classical"),
            "{msg}"
        );
        let msg = err("preprocessing:\n  remove_background:\n    cutout: naive\n");
        assert!(msg.contains("premultiplied, putalpha"), "{msg}");
    }

    #[test]
    fn regularization_none_forms() {
        for v in ["null", "None", "'none'", "''"] {
            let p = parse(&format!("model_training:\n  regularization: {v}\n")).unwrap();
            assert_eq!(p.model_training.regularization, Regularization::None, "{v}");
        }
    }
}
