//! `pixal detect`: anomaly maps, scores and verdicts for preprocessed images (`out.npz` +
//! `metadata/preprocessing.yaml` of the validate tree), mapped back onto the photos, with the
//! original's figures, `scores.csv`, `summary.json`, `report.html`, and real metrics when ground
//! truth masks are given.
//!
//! The decisions are `crate::detect`'s (scores, thresholds, verdicts, maps on the photo, the
//! mask lookup); this command only finds the jobs (`jobs`), reads the model and the input,
//! calls the core per image (`image`) and writes the files: maps and overlays, figures
//! (`figures`), metrics against ground truth (`truth`), `scores.csv`, `summary.json` and the
//! reports (`outputs`, `index`).

mod figures;
mod image;
mod index;
mod jobs;
mod outputs;
mod truth;

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use rayon::prelude::*;

use super::Summary;
use crate::config::Config;
use crate::config::paths::{Folder, Side};
use crate::detect::decide::{self, ThresholdSettings, Thresholds};
use crate::detect::judge::Detector;
use crate::detect::score::{self, PartGrid, ScoreSettings};
use crate::detect::truth::MaskIndex;
use crate::io::metadata::{PreprocessingMetadata, read_yaml};
use crate::io::npz::read_input;
use crate::model::TrainedModel;
use crate::report::plot;

pub use crate::detect::truth::MASK_SUFFIXES;
pub use index::write_index;
pub use jobs::{DetectJob, find_jobs};
pub use outputs::{ImageResult, TypeSummary};
pub use truth::{GroundTruth, Metrics};

/// Runs detect on `input` (a validate component folder holding `<type>/out.npz`) or on the
/// validate tree paths.yaml gives.
pub fn run(cfg: &Config, input: Option<&Path>, truth: Option<&Path>) -> anyhow::Result<Summary> {
    let root = input.map_or_else(
        || cfg.layout.validate_component_root().to_path_buf(),
        Path::to_path_buf,
    );
    let jobs = find_jobs(cfg, &root)?;
    let mut summary = Summary::new("detect");
    for job in &jobs {
        if let Err(e) = detect_job(cfg, job, truth, &mut summary) {
            summary.fail(
                &job.npz,
                format!("{}: {}", job.npz.display(), super::error_text(&e)),
            );
        }
    }
    write_index(&root, truth, &mut summary);
    Ok(summary)
}

/// Detects on one npz; writes everything into the job's out_dir.
pub fn detect_job(
    cfg: &Config,
    job: &DetectJob,
    truth: Option<&Path>,
    summary: &mut Summary,
) -> anyhow::Result<TypeSummary> {
    let ty = job.ty.as_deref();
    let log_file = cfg
        .layout
        .dir(Side::Validate, Folder::Logs, ty)
        .join("detect.log");
    if let Err(e) = crate::logging::set_log_file(&log_file) {
        summary.warn(format!("cannot open log file {e}"));
    }
    let r = detect_logged(cfg, job, truth, summary);
    crate::logging::close_log_file();
    if let Ok(ts) = &r {
        record_verdicts(ts, summary);
    }
    r
}

/// Adds a type's verdicts (and metrics) to the run summary, for the stdout table and `--json`.
fn record_verdicts(ts: &TypeSummary, summary: &mut Summary) {
    for im in &ts.images {
        summary.images.push(super::Verdict {
            file: im.photo.clone(),
            type_name: im.type_name.clone(),
            score: im.score,
            threshold: ts.thresholds.image,
            verdict: im.verdict,
            anomalous_percent: im.anomalous_percent,
            truth: im.truth,
        });
    }
    if let Some(m) = &ts.metrics
        && let Ok(mut v) = serde_json::to_value(m)
    {
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "type".into(),
                ts.type_name
                    .clone()
                    .unwrap_or_else(|| "all types".into())
                    .into(),
            );
        }
        summary.metrics.push(v);
    }
}

fn detect_logged(
    cfg: &Config,
    job: &DetectJob,
    truth: Option<&Path>,
    summary: &mut Summary,
) -> anyhow::Result<TypeSummary> {
    let ty = job.ty.as_deref();
    let label = ty.unwrap_or("all types");
    // This job's warnings and errors go into its report.
    let (warnings_from, failures_from) = (summary.warnings.len(), summary.failed.len());
    let meta: PreprocessingMetadata = read_yaml(&job.metadata)?;
    meta.verify_npz(&job.npz, &job.metadata)?;
    let input = read_input(&job.npz)?;
    let model_dir = cfg.layout.model(ty);
    let model = TrainedModel::load(&model_dir).with_context(|| {
        format!(
            "loading the model for {label} from {} (train it first)",
            model_dir.display()
        )
    })?;
    let (n, p, c) = input.data.dim();
    if model.input_shape() != (p, c) {
        return Err(anyhow!(
            "{}: {p} pixels x {c} channels per image, but the model in {} expects {} x {} (preprocess with the training settings)",
            job.npz.display(),
            model_dir.display(),
            model.input_shape().0,
            model.input_shape().1
        ));
    }
    let shape = input.shape;
    log::info!(
        "detect {label}: {n} image(s), model {} ({:?})",
        model_dir.display(),
        model.kind()
    );
    let labels = input.labels.as_ref().map(|l| l.view());
    let residuals = model.residuals(input.data.view(), labels)?;
    let errors = crate::model::mean_square(&residuals);

    // Scoring and thresholds, calibrated on the training photos' out-of-fold residuals.
    let d = &cfg.params.detection;
    let pl = &cfg.params.plotting;
    let settings = ScoreSettings {
        scoring: d.scoring,
        smoothing_sigma: d.smoothing_sigma,
        pixel_quantile: d.pixel_quantile,
        image_margin: d.image_margin,
        false_positive_rate: d.false_positive_rate,
        part_erosion: d.part_erosion,
    };
    let mask = model
        .part_mask()
        .map_or_else(|| vec![1.0; p], <[f32]>::to_vec);
    let grid = PartGrid::new(shape, &mask, d.part_erosion);
    let calibration = if decide::needs_calibration(d.threshold, d.scoring) {
        let res = model.calibration_residuals().ok_or_else(|| {
            anyhow!(
                "the model in {} has no calibration residuals (retrain it with this pixal)",
                model_dir.display()
            )
        })?;
        Some(
            score::calibrate(res.view(), &grid, &settings)
                .with_context(|| format!("calibrating on the model in {}", model_dir.display()))?,
        )
    } else {
        None
    };
    let thresholds = Thresholds::choose(
        &ThresholdSettings {
            mode: d.threshold,
            scoring: d.scoring,
            loss_cut: pl.loss_cut,
            use_log_loss: pl.use_log_loss,
            false_positive_rate: d.false_positive_rate,
        },
        calibration,
    )?;
    let png_scale = (2.0 * thresholds.pixel).max(1e-12);
    log::info!(
        "detect {label}: {:?} scoring, {:?} thresholds: pixel {:.4}{}",
        thresholds.scoring,
        thresholds.mode,
        thresholds.pixel,
        thresholds
            .image
            .map(|t| format!(", image {t:.4}"))
            .unwrap_or_default()
    );

    let figures_dir = cfg.layout.dir(Side::Validate, Folder::Figures, ty);
    let maps_dir = job.out_dir.join("anomaly_maps");
    let rows = jobs::rows(&meta, n);
    let truth_index = truth
        .map(|t| {
            let idx = MaskIndex::new(t)?;
            let photos: Vec<(&str, &str)> = rows
                .iter()
                .map(|r| (r.photo.as_str(), r.type_name.as_str()))
                .collect();
            idx.check_any_match(&photos)?;
            Ok(idx)
        })
        .transpose()
        .map_err(truth::usage)?;

    outputs::remove_stale_figures(&figures_dir, &maps_dir);
    // Per image: score map, verdict, photo map, overlay.
    let pass = image::ImagePass {
        job,
        input: &input,
        residuals: &residuals,
        errors: &errors,
        rows: &rows,
        detector: Detector {
            grid: &grid,
            settings: &settings,
            calibration: thresholds.calibration.as_ref(),
            thresholds: &thresholds,
        },
        pool: meta.preprocessor.pool_size.max(1) as usize,
        png_scale,
        truth: truth_index.as_ref(),
        maps_dir: &maps_dir,
        overlays: pl.plot_anomaly_heatmap.then_some(figures_dir.as_path()),
    };
    let bar = crate::logging::progress(n as u64, &format!("detect {label}"));
    let per_image: Vec<anyhow::Result<image::PerImage>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let r = pass.run(i);
            if r.is_ok() {
                bar.inc(1);
            }
            r
        })
        .collect();
    bar.finish_and_clear();

    let mut images = Vec::new();
    let mut gts = Vec::new();
    // The pooled maps the verdicts were decided on, for the score histograms.
    let mut decision: Vec<f64> = Vec::new();
    for (i, r) in per_image.into_iter().enumerate() {
        match r {
            Ok((res, gt, shown)) => {
                decision.extend(shown.iter().map(|&v| f64::from(v)));
                summary.processed += 1;
                images.push(res);
                if let Some(g) = gt {
                    gts.push(g);
                }
            }
            Err(e) => summary.fail(
                Path::new(&rows[i].photo),
                format!("{}: {}", rows[i].photo, super::error_text(&e)),
            ),
        }
    }
    for im in &images {
        summary.output(Path::new(&im.map_npy));
    }

    let mut figures: Vec<PathBuf> = Vec::new();
    figures.extend(figures::write_figures(
        cfg,
        &model,
        &input,
        &decision,
        &thresholds,
        &figures_dir,
        summary,
    )?);
    if pl.plot_mse_per_pixel || pl.plot_distributions {
        let p = figures_dir.join("score_histograms.png");
        plot::score_histograms(
            &p,
            &figures::score_figure(label, &images, &gts, &decision, &thresholds),
        )?;
        summary.output(&p);
        figures.insert(0, p);
    }
    let metrics = if truth.is_some() {
        let m = truth::compute_metrics(&images, &gts);
        if pl.plot_roc_recall_curve || pl.plot_confusion_matrix {
            figures.extend(figures::metric_figures(
                &images,
                &gts,
                &m,
                &figures_dir,
                (pl.plot_roc_recall_curve, pl.plot_confusion_matrix),
            )?);
        }
        Some(m)
    } else {
        None
    };

    let ts = TypeSummary {
        type_name: job.ty.clone(),
        model: model_dir.display().to_string(),
        model_kind: format!("{:?}", model.kind()),
        thresholds,
        png_scale,
        images,
        metrics,
        version: crate::VERSION.into(),
    };
    outputs::write_outputs(
        cfg,
        job,
        &ts,
        &figures,
        summary,
        (warnings_from, failures_from, truth),
    )?;
    Ok(ts)
}
