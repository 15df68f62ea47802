//! The validated, typed configuration: enums instead of strings, checked ranges. Built once from
//! [`super::raw`] by [`Parameters::from_yaml`] (in `config/resolve.rs`); every error names the
//! file, the key path and (when it can be found) the line.

use serde::Serialize;

use super::raw::RawPlotting;
use crate::types::{Channel, Cutout, Method, Scoring, ThresholdMode};

pub use super::inert::inert_settings;

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
    pub method: Method,
    /// A rembg model name, or a path to a `.onnx` file (`~/` expanded).
    pub model: String,
    /// The ONNX Runtime library (file or folder) named in the config, `~/` expanded.
    pub onnxruntime: Option<std::path::PathBuf>,
    /// rembg's mask post-processing.
    pub post_process_mask: bool,
    /// Cut-out style.
    pub cutout: Cutout,
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
    /// The channels, in order (`ALL` expanded), written by name.
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

/// `plotting:`, validated: the raw struct itself, since its keys need no resolution (only the
/// check that `loss_cut` > 0 with `use_log_loss`).
pub type Plotting = RawPlotting;

/// `detection:`, validated (pixal only).
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    /// Raw or standardised pixel scores.
    pub scoring: Scoring,
    /// Automatic thresholds or the original's loss_cut.
    pub threshold: ThresholdMode,
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
