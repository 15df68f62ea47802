//! The description of a trained model: [`ModelSpec`], the contents of `model_config.json`
//! (everything needed to rebuild and use the model without the YAML), and [`LossHistory`],
//! `loss_history.json`. The training record (`metadata/<model_name>.yaml`) and `pixal train`'s
//! summary read the spec and the [`super::Fitted`] fit instead of keeping copies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::autoencoder::AutoencoderConfig;
use super::data::TrainingData;
use super::train::EpochRecord;
use super::{
    CALIBRATION_RESIDUALS_FILE, INPUT_MEAN_FILE, INPUT_STD_FILE, MEAN_FILE, MODEL_FORMAT,
    ModelKind, PART_MASK_FILE, STD_FILE,
};
use crate::config::resolved::{InputNormalization, ModelTraining};

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

impl ModelSpec {
    /// The spec of a model of `kind` fitted on `data`, without its files, floor, folds or
    /// checksums: enough to compute an autoencoder's residuals during cross-validation, and the
    /// base of the spec that is written.
    pub fn base(
        m: &ModelTraining,
        data: &TrainingData,
        kind: ModelKind,
        normalization: InputNormalization,
        config: Option<AutoencoderConfig>,
    ) -> ModelSpec {
        let (_, p, c) = data.data.dim();
        ModelSpec {
            format: MODEL_FORMAT,
            version: crate::VERSION.into(),
            kind,
            model_name: m.model_name.clone(),
            input_shape: [p, c],
            pooled_shape: [data.pooled.0, data.pooled.1],
            channels: data.channels.clone(),
            weights: data.weights.clone(),
            data_max: data.data_max,
            label_types: data.label_types.clone(),
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

    /// The files of the model folder that [`Self::checksums`] covers: every file loading reads,
    /// and the safetensors export.
    pub fn checksummed_files(&self) -> Vec<String> {
        let mut files = vec![
            CALIBRATION_RESIDUALS_FILE.to_string(),
            PART_MASK_FILE.to_string(),
        ];
        files.extend(self.safetensors_file.clone());
        if self.input_normalization == InputNormalization::Standardize {
            files.extend([INPUT_MEAN_FILE.to_string(), INPUT_STD_FILE.to_string()]);
        }
        match self.kind {
            ModelKind::Autoencoder => files.extend(self.weights_file.clone()),
            ModelKind::PixelStats => files.extend([MEAN_FILE.to_string(), STD_FILE.to_string()]),
        }
        files
    }

    /// Trainable values: the autoencoder's weights and biases, or pixel_stats' mean and
    /// standard deviation.
    pub fn num_params(&self) -> usize {
        let [p, c] = self.input_shape;
        self.autoencoder
            .as_ref()
            .map_or(2 * p * c, AutoencoderConfig::num_params)
    }
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

impl LossHistory {
    /// The history of a fit's epochs, `best_epoch` 1-based.
    pub fn new(epochs: &[EpochRecord], best_epoch: usize) -> LossHistory {
        LossHistory {
            train_loss: epochs.iter().map(|r| r.loss).collect(),
            val_loss: epochs.iter().map(|r| r.val_loss).collect(),
            best_epoch,
            epochs: epochs.to_vec(),
        }
    }
}
