//! Tests of the validation of `parameters.yaml`.

use std::path::Path;

use crate::config::ConfigError;
use crate::config::resolved::*;
use crate::types::{Channel, Cutout, Method, Scoring, ThresholdMode};

const SHIPPED: &str = include_str!("../../../configs/parameters.yaml");

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
    let p =
        parse("preprocessing:\n  alignment:\n    MIN_GOOD_MATCHES: 30\n    MAX_MSE_THRESHOLD: 5\n")
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
    let p =
        parse("preprocessing:\n  alignment:\n    n_features: 800\n    refine: False\n").unwrap();
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
        e.contains("min_image_fraction 0.25 (3 images)") && e.contains("min_image_fraction: 0.22"),
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
    let p = parse("").unwrap();
    assert_eq!(p.detection.scoring, Scoring::Standardized);
    assert_eq!(p.detection.threshold, ThresholdMode::Auto);
    let p =
        parse("detection:\n  scoring: raw\n  threshold: loss_cut\n  smoothing_sigma: 0\n").unwrap();
    assert_eq!(p.detection.scoring, Scoring::Raw);
    assert_eq!(p.detection.threshold, ThresholdMode::LossCut);
    let msg = err("detection:\n  pixel_quantile: 1.5\n");
    assert!(msg.contains("`detection.pixel_quantile`"), "{msg}");
    let msg = err("detection:\n  threshold: lossCut\n");
    assert!(msg.contains("did you mean `loss_cut`"), "{msg}");
}

#[test]
fn remove_background_keys_have_defaults_and_are_checked() {
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
