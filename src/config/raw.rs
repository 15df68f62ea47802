//! Serde structs that mirror `parameters.yaml` key for key, as the original spells them, with the
//! original's defaults for keys a file leaves out. Unknown keys are rejected
//! (`deny_unknown_fields`); numbers written as strings (PyYAML reads `1e-4` as a string, so the
//! original's files carry such values) are accepted where a number is expected.

use serde::{Deserialize, Deserializer, Serialize};

/// Accepts a number or a string holding a number (YAML 1.1 reads `1e-4` as a string).
fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(f64),
        Str(String),
    }
    match NumOrStr::deserialize(d)? {
        NumOrStr::Num(x) => Ok(x),
        NumOrStr::Str(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| serde::de::Error::custom(format!("expected a number, found \"{s}\""))),
    }
}

/// A list of channel names, or the single word `ALL` (bare or as a one-element list).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ChannelList {
    /// `channels: ALL`.
    Word(String),
    /// `channels: [LAB_a, LAB_b]`.
    List(Vec<String>),
}

/// The whole `parameters.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawParameters {
    /// Experiment name (the original logs runs to MLflow under it).
    #[serde(rename = "experimentName")]
    pub experiment_name: String,
    /// `preprocessing:`.
    pub preprocessing: RawPreprocessing,
    /// `model_training:`.
    pub model_training: RawModelTraining,
    /// `plotting:`.
    pub plotting: RawPlotting,
    /// `detection:` (pixal only).
    pub detection: RawDetection,
    /// `quality_gates:` (pixal only).
    pub quality_gates: RawQualityGates,
}

/// `quality_gates:` (pixal only): how many images a type needs before pixal trusts it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawQualityGates {
    /// Fewest images a type may train on.
    pub min_images: i64,
    /// Smallest share of a type's images that must come through a stage.
    #[serde(deserialize_with = "lenient_f64")]
    pub min_image_fraction: f64,
}

impl Default for RawQualityGates {
    fn default() -> Self {
        RawQualityGates {
            min_images: 5,
            min_image_fraction: 0.5,
        }
    }
}

/// `preprocessing:`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPreprocessing {
    /// `remove_background:`.
    pub remove_background: RawRemoveBackground,
    /// `alignment:`.
    pub alignment: RawAlignment,
    /// Save alignment metrics.
    pub save_metrics: bool,
    /// Save alignment overlay diagnostics.
    pub save_overlays: bool,
    /// Draw keypoint matches.
    pub draw_matches: bool,
    /// `preprocessor:` (make_input).
    pub preprocessor: RawPreprocessor,
    /// Rename background-removed images after their type folder.
    pub rename_images: bool,
}

impl Default for RawPreprocessing {
    fn default() -> Self {
        RawPreprocessing {
            remove_background: RawRemoveBackground::default(),
            alignment: RawAlignment::default(),
            save_metrics: true,
            save_overlays: true,
            draw_matches: true,
            preprocessor: RawPreprocessor::default(),
            rename_images: true,
        }
    }
}

/// `preprocessing.remove_background:`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRemoveBackground {
    /// Worker threads for background removal.
    pub max_workers: i64,
    /// `auto`, `onnx` or `classical` (pixal; not in the original).
    pub method: String,
    /// A rembg model name (`u2net`, `u2netp`, `silueta`, `isnet-general-use`) or a `.onnx` path.
    pub model: String,
    /// The ONNX Runtime shared library (a file, or a folder holding it); null = look for it.
    pub onnxruntime: Option<String>,
    /// rembg's mask post-processing (opening, blur, binarisation at 127).
    pub post_process_mask: bool,
    /// `premultiplied` (rembg's `naive_cutout`) or `putalpha`.
    pub cutout: String,
    /// Download a missing rembg model on first use, as rembg does (pixal).
    pub download: bool,
    /// Base address models are downloaded from; null = rembg's GitHub release (pixal).
    pub download_url: Option<String>,
}

impl Default for RawRemoveBackground {
    fn default() -> Self {
        RawRemoveBackground {
            max_workers: 8,
            method: "auto".into(),
            model: "u2net".into(),
            onnxruntime: None,
            post_process_mask: false,
            cutout: "premultiplied".into(),
            download: true,
            download_url: None,
        }
    }
}

/// `preprocessing.alignment:`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAlignment {
    /// Align images before make_input.
    pub apply_alignment: bool,
    /// Lowe ratio for k=2 matching.
    #[serde(deserialize_with = "lenient_f64")]
    pub knn_ratio: f64,
    /// More good matches than this are needed.
    pub number_of_points: i64,
    /// RANSAC reprojection threshold in pixels.
    #[serde(deserialize_with = "lenient_f64")]
    pub ransac_threshold: f64,
    /// Minimum SSIM of an accepted alignment.
    #[serde(rename = "MIN_SCORE_THRESHOLD", deserialize_with = "lenient_f64")]
    pub min_score_threshold: f64,
    /// Maximum grayscale MSE of an accepted alignment.
    #[serde(rename = "MAX_MSE_THRESHOLD", deserialize_with = "lenient_f64")]
    pub max_mse_threshold: f64,
    /// Minimum RANSAC inliers.
    #[serde(rename = "MIN_GOOD_MATCHES")]
    pub min_good_matches: i64,
    /// pixal only: ORB keypoints of a 1920x1080 image, scaled with the image area (the original
    /// used SIFT and had no such key).
    pub n_features: i64,
    /// pixal only: refine each homography to sub-pixel accuracy on the image intensities
    /// (kept only when it scores a higher SSIM).
    pub refine: bool,
    /// pixal only: at most this many training images are tried as references for a validation
    /// photo (the training reference first); null tries them all, as the original did.
    pub max_references: Option<i64>,
}

impl Default for RawAlignment {
    fn default() -> Self {
        RawAlignment {
            apply_alignment: false,
            knn_ratio: 0.8,
            number_of_points: 5,
            ransac_threshold: 7.0,
            min_score_threshold: 0.5,
            max_mse_threshold: 10.0,
            min_good_matches: 20,
            n_features: 4000,
            refine: true,
            max_references: None,
        }
    }
}

/// `preprocessing.preprocessor:` (make_input).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawPreprocessor {
    /// Name of the ML input file.
    pub file_name: String,
    /// Average-pooling block size.
    pub pool_size: i64,
    /// Feature channels, or `ALL`.
    pub channels: ChannelList,
    /// One loss weight per channel.
    pub weights: Vec<f64>,
    /// Crop every image to the union foreground box.
    pub zero_pruning: bool,
    /// Padding around the foreground box, in pixels.
    pub zero_pruning_padding: i64,
    /// A pixel is foreground when any channel exceeds this.
    pub bg_threshold: i64,
    /// pixal only: fit every photo's channels to the training reference (gain and offset per
    /// channel, inside the part) before anything learns from them or scores them.
    pub photometric_normalization: bool,
}

impl Default for RawPreprocessor {
    fn default() -> Self {
        RawPreprocessor {
            file_name: "out.npz".into(),
            pool_size: 2,
            channels: ChannelList::List(vec!["LAB_a".into(), "LAB_b".into()]),
            weights: vec![3.0, 3.0],
            zero_pruning: true,
            zero_pruning_padding: 5,
            bg_threshold: 15,
            photometric_normalization: true,
        }
    }
}

/// `model_training:`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawModelTraining {
    /// TensorFlow GPU memory growth (accepted for compatibility; no effect in pixal).
    pub enable_memory_growth: bool,
    /// TensorFlow allocator switch (accepted for compatibility; no effect in pixal).
    #[serde(rename = "TF_GPU_ALLOCATOR")]
    pub tf_gpu_allocator: bool,
    /// Mixed precision training.
    pub mixed_precision: bool,
    /// CPU threads available.
    #[serde(rename = "Available_CPU")]
    pub available_cpu: i64,
    /// TensorFlow CPU multi-threading switch (accepted for compatibility).
    #[serde(rename = "CPU_MULTI_THREADING")]
    pub cpu_multi_threading: bool,
    /// TensorFlow hybrid CPU+GPU switch (accepted for compatibility).
    #[serde(rename = "HYBRID_MODE")]
    pub hybrid_mode: bool,
    /// Name of the model files.
    pub model_name: String,
    /// The original's weights file extension.
    pub model_file_extension: String,
    /// Seed of every random choice.
    pub seed: u64,
    /// Train one model over all types with one-hot labels.
    pub one_hot_encoding: bool,
    /// Hidden layer sizes; the last is the latent size.
    pub autoencoder_architecture: Vec<i64>,
    /// Size of the label branch in one-hot mode.
    pub label_latent_size: i64,
    /// The original's custom-loop switch (accepted for compatibility).
    pub use_gradient_tape: bool,
    /// Maximum epochs.
    pub n_epochs: i64,
    /// Mini-batch size.
    pub batchsize: i64,
    /// Adam learning rate.
    #[serde(deserialize_with = "lenient_f64")]
    pub learning_rate: f64,
    /// `l1`, `l2`, `l1_l2` or none.
    pub regularization: Option<String>,
    /// L1 activity coefficient.
    #[serde(deserialize_with = "lenient_f64")]
    pub l1_regularization: f64,
    /// L2 activity coefficient.
    #[serde(deserialize_with = "lenient_f64")]
    pub l2_regularization: f64,
    /// mse, mae, huber, charbonnier, masked_mse.
    pub loss_function: String,
    /// Huber transition point.
    #[serde(deserialize_with = "lenient_f64")]
    pub huber_delta: f64,
    /// Only non-zero targets count in the loss.
    pub masked_loss: bool,
    /// The original's Keras accuracy metric name (accepted for compatibility).
    pub metric_accuracy: String,
    /// sigmoid, softmax, tanh, relu, linear.
    pub output_activation: String,
    /// Early-stopping patience in epochs.
    pub patience: i64,
    /// Minimum improvement of the validation loss.
    #[serde(deserialize_with = "lenient_f64")]
    pub min_delta: f64,
    /// pixal only: `autoencoder` (the original's model) or `pixel_stats` (per-pixel mean/std).
    pub model_type: String,
    /// pixal only: where to train: `auto`, `cpu` or `cuda`.
    pub device: String,
    /// pixal only: what the autoencoder sees: `scale` (the original's X / max(X)) or
    /// `standardize` (each (pixel, channel) standardised by the training images' mean and std).
    pub input_normalization: String,
    /// pixal only: folds of the cross-validation that gives every training image an
    /// out-of-fold error for calibrating the thresholds.
    pub calibration_folds: i64,
}

impl Default for RawModelTraining {
    fn default() -> Self {
        RawModelTraining {
            enable_memory_growth: false,
            tf_gpu_allocator: false,
            mixed_precision: false,
            available_cpu: 24,
            cpu_multi_threading: false,
            hybrid_mode: false,
            model_name: "testModel".into(),
            model_file_extension: "h5".into(),
            seed: 101,
            one_hot_encoding: false,
            autoencoder_architecture: vec![512, 256, 128, 64],
            label_latent_size: 16,
            use_gradient_tape: false,
            n_epochs: 500,
            batchsize: 32,
            learning_rate: 1e-4,
            regularization: Some("l2".into()),
            l1_regularization: 1e-4,
            l2_regularization: 1e-5,
            loss_function: "huber".into(),
            huber_delta: 0.25,
            masked_loss: true,
            metric_accuracy: "SparseCategoricalAccuracy".into(),
            output_activation: "sigmoid".into(),
            patience: 30,
            min_delta: 0.001,
            model_type: "autoencoder".into(),
            device: "auto".into(),
            input_normalization: "scale".into(),
            calibration_folds: 5,
        }
    }
}

/// `plotting:`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPlotting {
    /// Loss curve plot.
    pub plot_loss: bool,
    /// Accuracy plot.
    pub plot_accuracy: bool,
    /// Confusion matrix (needs ground truth in pixal).
    pub plot_confusion_matrix: bool,
    /// ROC and PR curves (need ground truth in pixal).
    pub plot_roc_recall_curve: bool,
    /// Anomaly overlays.
    pub plot_anomaly_heatmap: bool,
    /// Absolute loss per pixel figures.
    pub plot_abs_loss_per_pixel: bool,
    /// Squared loss per pixel figures.
    pub plot_mse_per_pixel: bool,
    /// True vs predicted scatter.
    pub plot_pixel_predictions: bool,
    /// Value distribution histograms.
    pub plot_distributions: bool,
    /// Threshold log10 of the loss instead of the loss.
    pub use_log_loss: bool,
    /// Per-pixel anomaly threshold.
    #[serde(deserialize_with = "lenient_f64")]
    pub loss_cut: f64,
}

impl Default for RawPlotting {
    fn default() -> Self {
        RawPlotting {
            plot_loss: true,
            plot_accuracy: true,
            plot_confusion_matrix: false,
            plot_roc_recall_curve: true,
            plot_anomaly_heatmap: true,
            plot_abs_loss_per_pixel: true,
            plot_mse_per_pixel: true,
            plot_pixel_predictions: true,
            plot_distributions: true,
            use_log_loss: false,
            loss_cut: 0.1,
        }
    }
}

/// `detection:` (pixal only: how anomaly scores and verdicts are made).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDetection {
    /// `standardized` or `raw`.
    pub scoring: String,
    /// `auto` or `loss_cut`.
    pub threshold: String,
    /// Quantile of held-out good pixel scores used as the automatic pixel threshold.
    #[serde(deserialize_with = "lenient_f64")]
    pub pixel_quantile: f64,
    /// Factor on the largest held-out good image score for the automatic image threshold.
    #[serde(deserialize_with = "lenient_f64")]
    pub image_margin: f64,
    /// Gaussian smoothing of score maps, in pooled pixels (0 = none).
    #[serde(deserialize_with = "lenient_f64")]
    pub smoothing_sigma: f64,
    /// Share of good photos the automatic image threshold may flag.
    #[serde(deserialize_with = "lenient_f64")]
    pub false_positive_rate: f64,
    /// Pooled pixels taken off the part's outline before the image score (its maximum) is
    /// taken, so the outline and sub-pixel misregistration cannot dominate it.
    pub part_erosion: i64,
}

impl Default for RawDetection {
    fn default() -> Self {
        RawDetection {
            scoring: "standardized".into(),
            threshold: "auto".into(),
            pixel_quantile: 0.999,
            image_margin: 1.0,
            smoothing_sigma: 1.0,
            false_positive_rate: 0.02,
            part_erosion: 2,
        }
    }
}
