//! The figures of `pixal detect`: the score histograms behind the verdicts, the model's errors
//! and outputs, and the ROC / precision-recall curves and confusion matrix against ground
//! truth. Each takes its data and a folder; the plotting is `crate::report::plot`'s.

use std::path::{Path, PathBuf};

use ndarray::Axis;

use super::outputs::ImageResult;
use super::truth::{GroundTruth, Metrics};
use crate::commands::Summary;
use crate::config::Config;
use crate::detect::decide::Thresholds;
use crate::detect::metrics;
use crate::detect::score::ThresholdMode;
use crate::model::TrainedModel;
use crate::report::plot::{self, Axes, Marker, Series};

/// The data of `score_histograms.png`: the pixel and image scores the verdicts were decided
/// on, split by ground truth when it is given, with the thresholds.
pub(super) fn score_figure(
    label: &str,
    images: &[ImageResult],
    gts: &[GroundTruth],
    decision: &[f64],
    t: &Thresholds,
) -> plot::ScoreHistograms {
    let what = match t.mode {
        ThresholdMode::Auto => format!("{} score", format!("{:?}", t.scoring).to_lowercase()),
        ThresholdMode::LossCut => "model error (loss_cut)".to_string(),
    };
    let pixel = if gts.iter().any(|g| g.found) {
        let (mut normal, mut defect) = (Vec::new(), Vec::new());
        for g in gts {
            // Sub-sampled photo pixels: the shape of the distribution, not every pixel.
            let step = (g.scores.len() / 100_000).max(1);
            for (s, m) in g.scores.iter().zip(&g.mask).step_by(step) {
                if *m { &mut defect } else { &mut normal }.push(f64::from(*s));
            }
        }
        vec![
            ("normal pixels (truth)".to_string(), normal),
            ("defect pixels (truth)".to_string(), defect),
        ]
    } else {
        vec![("all pixels".to_string(), decision.to_vec())]
    };
    let scores = |want: Option<bool>| -> Vec<f64> {
        images
            .iter()
            .filter(|r| want.is_none() || r.truth == want)
            .map(|r| r.score)
            .collect()
    };
    let image = if images.iter().any(|r| r.truth.is_some()) {
        vec![
            ("good images (truth)".to_string(), scores(Some(false))),
            ("defective images (truth)".to_string(), scores(Some(true))),
        ]
    } else {
        vec![("images".to_string(), scores(None))]
    };
    plot::ScoreHistograms {
        title: format!("{label}: the scores behind the verdicts"),
        pixel_label: what,
        pixel,
        pixel_threshold: Some(t.pixel),
        image_label: match t.image {
            Some(_) => "image score".to_string(),
            None => "image score (loss_cut: any pixel over the cut decides)".to_string(),
        },
        image,
        image_threshold: t.image,
    }
}

/// The ROC and precision-recall curves (`plot_roc_recall_curve`) and the confusion matrix
/// (`plot_confusion_matrix`), each only when its switch is on.
pub(super) fn metric_figures(
    images: &[ImageResult],
    gts: &[GroundTruth],
    m: &Metrics,
    dir: &Path,
    (curves, confusion): (bool, bool),
) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if confusion {
        let cm = dir.join("confusion_matrix.png");
        plot::confusion_matrix(&cm, "Image verdicts vs ground truth", m.confusion)?;
        out.push(cm);
    }
    if !curves {
        return Ok(out);
    }
    let scores: Vec<f64> = images.iter().map(|r| r.score).collect();
    let labels: Vec<bool> = images.iter().map(|r| r.truth.unwrap_or(false)).collect();
    let mut px_scores = Vec::new();
    let mut px_labels = Vec::new();
    for g in gts {
        // Sub-sample the pixels for the curves' figure; the metrics use all of them.
        let step = (g.scores.len() / 200_000).max(1);
        px_scores.extend(g.scores.iter().step_by(step).map(|&v| f64::from(v)));
        px_labels.extend(g.mask.iter().step_by(step).copied());
    }
    let mut roc_series = Vec::new();
    let mut pr_series = Vec::new();
    for (name, sc, lb, auc) in [
        ("image", &scores, &labels, m.image_auroc),
        ("pixel", &px_scores, &px_labels, m.pixel_auroc),
    ] {
        if let Some(c) = metrics::roc_curve(sc, lb) {
            roc_series.push(Series {
                name: format!(
                    "{name} (AUROC {})",
                    auc.map_or("n/a".into(), |a| format!("{a:.3}"))
                ),
                points: c.iter().map(|p| (p.fpr, p.tpr)).collect(),
            });
        }
        if let Some(c) = metrics::pr_curve(sc, lb) {
            pr_series.push(Series {
                name: name.to_string(),
                points: c.iter().map(|p| (p.recall, p.precision)).collect(),
            });
        }
    }
    let roc = dir.join("roc_curve.png");
    plot::line_chart(
        &roc,
        &Axes::new(
            "ROC (ground truth masks)",
            "false positive rate",
            "true positive rate",
        ),
        &roc_series,
    )?;
    out.push(roc);
    let pr = dir.join("pr_curve.png");
    plot::line_chart(
        &pr,
        &Axes::new(
            "Precision-recall (ground truth masks)",
            "recall",
            "precision",
        ),
        &pr_series,
    )?;
    out.push(pr);
    Ok(out)
}

/// The figures of the model's errors and outputs (`plot_mse_per_pixel`, `plot_abs_loss_per_pixel`,
/// `plot_distributions`, `plot_pixel_predictions`), each only when its switch is on.
pub(super) fn write_figures(
    cfg: &Config,
    model: &TrainedModel,
    input: &crate::io::npz::InputData,
    decision: &[f64],
    t: &Thresholds,
    dir: &Path,
    summary: &mut Summary,
) -> anyhow::Result<Vec<PathBuf>> {
    let pl = &cfg.params.plotting;
    let mut out = Vec::new();
    // The histograms show the score the verdicts were decided on, with the threshold applied.
    let what = match t.mode {
        ThresholdMode::Auto => format!("{} score", format!("{:?}", t.scoring).to_lowercase()),
        ThresholdMode::LossCut => "model error (loss_cut)".to_string(),
    };
    let thr = [Marker {
        x: t.pixel,
        label: format!("pixel threshold {}", plot::format_tick(t.pixel)),
    }];
    if pl.plot_mse_per_pixel {
        let p = dir.join("pixel_loss_histogram.png");
        plot::histogram(
            &p,
            &Axes::new(&format!("Per-pixel {what}"), &what, "pixels").log_y(),
            decision,
            100,
            &thr,
        )?;
        out.push(p);
        let logs: Vec<f64> = decision
            .iter()
            .filter(|v| **v > 0.0)
            .map(|v| v.log10())
            .collect();
        let lm = [Marker {
            x: t.pixel.max(1e-30).log10(),
            label: format!("log10 pixel threshold {}", plot::format_tick(t.pixel)),
        }];
        let p = dir.join("pixel_loss_log_histogram.png");
        plot::histogram(
            &p,
            &Axes::new(
                &format!("Per-pixel {what} (log10, scores > 0)"),
                &format!("log10 {what}"),
                "pixels",
            )
            .log_y(),
            &logs,
            100,
            &lm,
        )?;
        out.push(p);
    }
    // The model's own output: what an autoencoder reconstructs, or pixel_stats' per-pixel mean.
    let model_says = match model.kind() {
        crate::model::ModelKind::Autoencoder => "autoencoder reconstruction",
        _ => "pixel_stats mean",
    };
    let need_recon =
        pl.plot_abs_loss_per_pixel || pl.plot_distributions || pl.plot_pixel_predictions;
    if need_recon {
        let labels = input.labels.as_ref().map(|l| l.view());
        let (recon, scaled) = model.reconstruct_scaled(input.data.view(), labels)?;
        let names = model.channels().to_vec();
        if pl.plot_abs_loss_per_pixel {
            let panels: Vec<(String, Vec<f64>)> = names
                .iter()
                .enumerate()
                .map(|(ch, n)| {
                    let v: Vec<f64> = scaled
                        .index_axis(Axis(2), ch)
                        .iter()
                        .zip(recon.index_axis(Axis(2), ch).iter())
                        .map(|(a, b)| f64::from((a - b) * (a - b)))
                        .collect();
                    (n.clone(), v)
                })
                .collect();
            let p = dir.join("combined_channel_loss_histogram.png");
            plot::panel_histograms(
                &p,
                &format!("Per-channel squared error of the {model_says} (not the score)"),
                &Axes::new("", "squared error", "pixels").log_y(),
                &panels,
                100,
            )?;
            out.push(p);
        }
        let tv: Vec<f64> = scaled.iter().map(|&v| f64::from(v)).collect();
        let pv: Vec<f64> = recon.iter().map(|&v| f64::from(v)).collect();
        if pl.plot_distributions {
            for (file, title, sets) in [
                (
                    "prediction_distribution_log.png",
                    "Predicted values (model output)",
                    vec![(model_says.to_string(), pv.clone())],
                ),
                (
                    "truth_distribution_log.png",
                    "True (input) values",
                    vec![("true".to_string(), tv.clone())],
                ),
                (
                    "combined_distribution_log.png",
                    "True (input) vs predicted values",
                    vec![
                        ("true (input)".to_string(), tv.clone()),
                        (model_says.to_string(), pv.clone()),
                    ],
                ),
            ] {
                let p = dir.join(file);
                plot::overlaid_histograms(
                    &p,
                    &Axes::new(title, "value (scaled)", "count").log_y(),
                    &sets,
                    100,
                )?;
                out.push(p);
            }
        }
        if pl.plot_pixel_predictions {
            let pts: Vec<(f64, f64)> = tv.iter().copied().zip(pv.iter().copied()).collect();
            let p = dir.join("pixel_predictions.png");
            plot::scatter(
                &p,
                &Axes::new(
                    &format!("True vs predicted values ({model_says})"),
                    "true (scaled input)",
                    model_says,
                ),
                &pts,
                true,
                20_000,
            )?;
            out.push(p);
        }
    }
    for f in &out {
        summary.output(f);
    }
    Ok(out)
}
