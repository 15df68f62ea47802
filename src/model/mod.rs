//! Models: fitting them ([`fit()`]), their folder ([`store`]) and the trained-model API the
//! detection stage uses ([`TrainedModel`]).
//!
//! Two kinds of model learn what good images look like, both in the scaled space `X / max(X)`
//! (the maximum of the training file, stored with the model and applied again at detection):
//! - [`ModelKind::Autoencoder`]: the original PIXAL's dense autoencoder ([`autoencoder`]),
//!   trained by the explicit loop in [`mod@train`] on burn's CPU backend (or CUDA, see
//!   [`device`]).
//! - [`ModelKind::PixelStats`]: per-(pixel, channel) mean and standard deviation
//!   ([`pixel_stats`]), a baseline that trains in seconds.
//!
//! Both hand detection a residual per (image, pixel, channel) in the model's units (see
//! [`TrainedModel::residuals`]). Training cross-validates: the photos are dealt into
//! `calibration_folds` folds and each fold is scored by a model fitted without it, so every
//! training photo gets an out-of-fold residual (`calibration_residuals.npy`, see [`calibrate`])
//! that detection calibrates its scores and thresholds on. The deployed autoencoder is the
//! fold-0 model (so the calibration residuals come from models made exactly like it);
//! pixel_stats deploys the statistics of all photos.
//!
//! A model folder holds `model_config.json` (everything needed to rebuild the model), the
//! weights (`<model_name>.mpk` burn record and `<model_name>.safetensors` for the
//! autoencoder, with `input_mean.npy` / `input_std.npy` when its inputs are standardised;
//! `pixel_mean.npy` / `pixel_std.npy` for pixel_stats), `part_mask.npy` (the training photos'
//! part on the pooled grid), `calibration_residuals.npy`, `loss_history.json` and
//! `loss_plot.png` (autoencoder).
//!
//! [`fit()`] works on data in memory and neither reads, writes nor prints: `pixal train`
//! (`commands::train`) reads make_input's npz, shows the progress [`FitProgress`] reports and
//! writes the folder with [`store`]. [`ModelSpec`] is the one description of a model: what
//! `model_config.json` holds, and what the training record and the command's summary read.

pub mod adam;
pub mod autoencoder;
pub mod calibrate;
pub mod data;
pub mod dense;
pub mod device;
pub mod export;
pub mod fit;
pub mod loss;
mod network;
pub mod pixel_stats;
pub mod spec;
pub mod standardize;
pub mod store;
pub mod train;
pub mod trained;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::io::IoError;

pub use crate::io::sha256_hex;
pub use data::TrainingData;
pub use fit::{FitProgress, Fitted, FoldStart, NoProgress, fit};
pub use spec::{LossHistory, ModelSpec};
pub use standardize::Standardizer;
pub use store::write_npy;
pub use trained::{TrainedModel, mean_square};

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
