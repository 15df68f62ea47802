//! Validation of `parameters.yaml`: [`Parameters::from_yaml`] reads the file into the raw
//! structs ([`super::raw`]), then each section is checked and turned into its typed form
//! ([`super::resolved`]).

use std::path::Path;

use super::check::{Ctx, closest, deser_error};
use super::inert::inert_settings;
use super::raw::{
    ChannelList, RawDetection, RawModelTraining, RawParameters, RawPlotting, RawPreprocessing,
    RawQualityGates,
};
use super::resolved::{
    Alignment, Detection, InputNormalization, LossFunction, ModelTraining, ModelType,
    OutputActivation, Parameters, Plotting, Preprocessing, Preprocessor, QualityGates,
    Regularization, RemoveBackground, TrainDevice,
};
use super::{ConfigError, yaml};
use crate::types::{Channel, Cutout, Method, Scoring, ThresholdMode};

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
        // Section by section, in the order the keys have always been checked, so a file with
        // several mistakes still reports the same one first.
        let preprocessing = resolve_preprocessing(&cx, &raw.preprocessing)?;
        let model_training = resolve_model_training(&cx, &raw.model_training)?;
        let plotting = resolve_plotting(&cx, &raw.plotting)?;
        let detection = resolve_detection(&cx, &raw.detection)?;
        let quality_gates = resolve_quality_gates(&cx, &raw.quality_gates)?;
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

/// `preprocessing:`, validated.
fn resolve_preprocessing(cx: &Ctx<'_>, p: &RawPreprocessing) -> Result<Preprocessing, ConfigError> {
    let pp = &p.preprocessor;
    let channels = resolve_channels(cx, &pp.channels)?;
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
    Ok(Preprocessing {
        remove_background: resolve_remove_background(cx, &p.remove_background)?,
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
    })
}

/// `model_training:`, validated (with the one check across its keys).
fn resolve_model_training(
    cx: &Ctx<'_>,
    m: &RawModelTraining,
) -> Result<ModelTraining, ConfigError> {
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
        model_name: nonempty(cx, "model_training.model_name", &m.model_name)?,
        seed: m.seed,
        one_hot_encoding: m.one_hot_encoding,
        autoencoder_architecture: arch,
        label_latent_size: cx.count("model_training.label_latent_size", m.label_latent_size, 1)?,
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
        calibration_folds: cx.count("model_training.calibration_folds", m.calibration_folds, 2)?,
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
    Ok(model_training)
}

/// `plotting:`, validated.
fn resolve_plotting(cx: &Ctx<'_>, pl: &RawPlotting) -> Result<Plotting, ConfigError> {
    if pl.use_log_loss && pl.loss_cut <= 0.0 {
        return Err(cx.invalid(
            "plotting.loss_cut",
            format!(
                "must be > 0 with use_log_loss (log10 of it is taken), found {}",
                pl.loss_cut
            ),
        ));
    }
    // Nothing to resolve beyond that check: the validated form is the raw struct.
    Ok(pl.clone())
}

/// `detection:`, validated.
fn resolve_detection(cx: &Ctx<'_>, d: &RawDetection) -> Result<Detection, ConfigError> {
    if !(d.pixel_quantile > 0.0 && d.pixel_quantile <= 1.0) {
        return Err(cx.invalid(
            "detection.pixel_quantile",
            format!("must be in (0, 1], found {}", d.pixel_quantile),
        ));
    }
    Ok(Detection {
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
        smoothing_sigma: cx.non_negative("detection.smoothing_sigma", d.smoothing_sigma)? as f32,
        false_positive_rate: if d.false_positive_rate > 0.0 && d.false_positive_rate < 0.5 {
            d.false_positive_rate
        } else {
            return Err(cx.invalid(
                "detection.false_positive_rate",
                format!("must be in (0, 0.5), found {}", d.false_positive_rate),
            ));
        },
        part_erosion: cx.count("detection.part_erosion", d.part_erosion, 0)?,
    })
}

/// `quality_gates:`, validated.
fn resolve_quality_gates(cx: &Ctx<'_>, g: &RawQualityGates) -> Result<QualityGates, ConfigError> {
    if !(0.0..=1.0).contains(&g.min_image_fraction) {
        return Err(cx.invalid(
            "quality_gates.min_image_fraction",
            format!("must be in [0, 1], found {}", g.min_image_fraction),
        ));
    }
    Ok(QualityGates {
        min_images: cx.count("quality_gates.min_images", g.min_images, 1)?,
        min_image_fraction: g.min_image_fraction,
    })
}

/// `preprocessing.remove_background`, validated.
fn resolve_remove_background(
    cx: &Ctx<'_>,
    r: &super::raw::RawRemoveBackground,
) -> Result<RemoveBackground, ConfigError> {
    use crate::types::background::{KNOWN_MODELS, is_model_path};
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
    let model = if is_model_path(model) {
        expand_home(model).display().to_string()
    } else {
        cx.choice(
            &format!("{KEY}.model"),
            model,
            &KNOWN_MODELS.map(|m| (m, m)),
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

#[cfg(test)]
mod tests;
