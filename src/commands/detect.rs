//! `pixal detect`: anomaly maps, scores and verdicts for preprocessed images (`out.npz` +
//! `metadata/preprocessing.yaml` of the validate tree), mapped back onto the photos, with the
//! original's figures, `scores.csv`, `summary.json`, `report.html`, and real metrics when ground
//! truth masks are given.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use ndarray::{Array2, Axis};
use rayon::prelude::*;
use serde::Serialize;

use super::{Summary, UsageError};
use crate::config::Config;
use crate::detect::maps::{Geometry, to_gray16, to_photo};
use crate::detect::metrics::{self, ScoredMask};
use crate::detect::score::{self, Calibration, PartGrid, ScoreSettings, Scoring, ThresholdMode};
use crate::io::metadata::{PreprocessingMetadata, RowSource, read_yaml};
use crate::io::npz::read_input;
use crate::model::TrainedModel;
use crate::report::html::{IndexEntry, ReportRow, RunInfo, index_page, page, utc_timestamp};
use crate::report::overlay::{OverlayFigure, gray_from_map, overlay_file_name, save_overlay};
use crate::report::plot::{self, Axes, Marker, Series};

/// One preprocessed input to detect on.
#[derive(Debug, Clone)]
pub struct DetectJob {
    /// Type name (None in one-hot mode).
    pub ty: Option<String>,
    /// The npz.
    pub npz: PathBuf,
    /// Its `preprocessing.yaml`.
    pub metadata: PathBuf,
    /// Where outputs go (the validate type folder).
    pub out_dir: PathBuf,
}

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

/// Writes `index.html` in a validate component folder: one line per type whose `summary.json`
/// it finds (linking that type's `report.html`), and this run's warnings and errors. A failure
/// to write it is a warning: the per-type reports are the results.
pub fn write_index(root: &Path, truth: Option<&Path>, summary: &mut Summary) {
    match index_entries(root) {
        Ok(entries) if !entries.is_empty() => {
            let component = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let run = RunInfo {
                date: utc_timestamp(std::time::SystemTime::now()),
                version: crate::VERSION.to_string(),
                inputs: vec![
                    ("validate folder".into(), root.display().to_string()),
                    (
                        "ground truth".into(),
                        truth.map_or("none given (pass --truth DIR)".into(), |t| {
                            t.display().to_string()
                        }),
                    ),
                ],
                warnings: summary.warnings.clone(),
                errors: summary.failed.iter().map(|f| f.error.clone()).collect(),
            };
            let path = root.join("index.html");
            match crate::io::atomic::write_bytes(
                &path,
                index_page(&component, &run, &entries).as_bytes(),
            ) {
                Ok(()) => {
                    summary.output(&path);
                    log::info!("report: {}", path.display());
                }
                Err(e) => summary.warn(format!("{}: index not written: {e}", path.display())),
            }
        }
        Ok(_) => {}
        Err(e) => summary.warn(format!(
            "{}: index not written: {}",
            root.display(),
            super::error_text(&e)
        )),
    }
}

/// The index lines of the types under `root` (and of `root` itself, for a one-hot model) that
/// have a `summary.json`, read back from it so the index covers earlier runs' types too.
fn index_entries(root: &Path) -> anyhow::Result<Vec<IndexEntry>> {
    let mut dirs = vec![root.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(root) {
        let mut sub: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        sub.sort();
        dirs.extend(sub);
    }
    let mut out = Vec::new();
    for d in dirs {
        let file = d.join("summary.json");
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not valid JSON", file.display()))?;
        let images = v["images"].as_array().cloned().unwrap_or_default();
        let anomalous = images
            .iter()
            .filter(|i| i["verdict"] == "anomalous")
            .count();
        let with_truth = images.iter().any(|i| i["truth"].is_boolean());
        let wrong = with_truth.then(|| {
            images
                .iter()
                .filter(|i| {
                    i["truth"]
                        .as_bool()
                        .is_some_and(|t| t != (i["verdict"] == "anomalous"))
                })
                .count()
        });
        let num =
            |x: &serde_json::Value| x.as_f64().map_or("n/a".to_string(), |f| format!("{f:.4}"));
        let t = &v["thresholds"];
        let m = &v["metrics"];
        let metrics = if m.is_object() {
            format!(
                "image AUROC {}, pixel AUROC {}, AUPRO {}",
                num(&m["image_auroc"]),
                num(&m["pixel_auroc"]),
                num(&m["aupro_0_3"])
            )
        } else {
            String::new()
        };
        let date = std::fs::metadata(&file)
            .and_then(|m| m.modified())
            .map(utc_timestamp)
            .unwrap_or_default();
        out.push(IndexEntry {
            type_name: v["type_name"].as_str().unwrap_or("all types").to_string(),
            report: pathdiff(&d.join("report.html"), root),
            date,
            images: images.len(),
            anomalous,
            wrong,
            thresholds: format!("pixel {}, image {}", num(&t["pixel"]), num(&t["image"])),
            metrics,
            model: format!(
                "{} ({})",
                v["model"].as_str().unwrap_or(""),
                v["model_kind"].as_str().unwrap_or("")
            ),
        });
    }
    Ok(out)
}

/// The (type, npz) pairs under a validate component folder.
pub fn find_jobs(cfg: &Config, root: &Path) -> anyhow::Result<Vec<DetectJob>> {
    let file = &cfg.params.preprocessing.preprocessor.file_name;
    let mut jobs = Vec::new();
    if cfg.params.model_training.one_hot_encoding {
        let npz = root.join(file);
        if npz.is_file() {
            jobs.push(DetectJob {
                ty: None,
                metadata: root.join("metadata/preprocessing.yaml"),
                out_dir: root.to_path_buf(),
                npz,
            });
        }
    } else if let Ok(rd) = std::fs::read_dir(root) {
        let mut dirs: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join(file).is_file())
            .collect();
        dirs.sort();
        for d in dirs {
            let ty = d.file_name().map(|n| n.to_string_lossy().into_owned());
            jobs.push(DetectJob {
                ty,
                npz: d.join(file),
                metadata: d.join("metadata/preprocessing.yaml"),
                out_dir: d,
            });
        }
    }
    if jobs.is_empty() {
        return Err(UsageError(format!(
            "{}: no preprocessed input found (expected <type>/{file} with metadata/preprocessing.yaml; run `pixal validate` or pass -i)",
            root.display()
        ))
        .into());
    }
    Ok(jobs)
}

/// The thresholds a run used.
#[derive(Debug, Clone, Serialize)]
pub struct Thresholds {
    /// `auto` or `loss_cut`.
    pub mode: ThresholdMode,
    /// `standardized` or `raw`.
    pub scoring: Scoring,
    /// Pixel threshold on the score (auto) or on the raw error (loss_cut).
    pub pixel: f64,
    /// Image threshold on the image score (auto); loss_cut: an image is anomalous when any
    /// pixel is.
    pub image: Option<f64>,
    /// Whether loss_cut compares log10 values (`use_log_loss`).
    pub use_log_loss: bool,
    /// Share of good photos the automatic image threshold may flag.
    pub false_positive_rate: f64,
    /// Calibration on the held-out good images of training.
    pub calibration: Option<Calibration>,
}

/// The result for one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageResult {
    /// Row index in the npz.
    pub index: usize,
    /// The original photo.
    pub photo: String,
    /// Image type.
    pub type_name: String,
    /// Max of the smoothed score map.
    pub score: f64,
    /// Mean of the score map.
    pub mean_score: f64,
    /// `anomalous` or `good`.
    pub verdict: String,
    /// Pooled pixels above the pixel threshold.
    pub anomalous_pixels: usize,
    /// Their share of the pooled pixels, percent.
    pub anomalous_percent: f64,
    /// The anomaly map on the photo grid, .npy (float32) and 16-bit PNG.
    pub map_npy: String,
    /// 16-bit PNG of the map: value = min(score / png_scale, 1) * 65535.
    pub map_png: String,
    /// Ground truth when given: true = the mask has anomalous pixels.
    pub truth: Option<bool>,
}

/// Metrics against ground truth.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Metrics {
    /// Image AUROC (image score = max of the map).
    pub image_auroc: Option<f64>,
    /// Pixel AUROC over all photo pixels.
    pub pixel_auroc: Option<f64>,
    /// AUPRO up to FPR 0.3, normalised.
    pub aupro_0_3: Option<f64>,
    /// Best pixel F1 over thresholds.
    pub pixel_f1_max: Option<f64>,
    /// Best image F1 over thresholds.
    pub image_f1_max: Option<f64>,
    /// Images with a ground-truth mask found (the rest count as good).
    pub masks_found: usize,
    /// Image confusion matrix at the used image threshold [[tn, fp], [fn, tp]].
    pub confusion: [[u64; 2]; 2],
}

/// The summary of one detect run of one type.
#[derive(Debug, Clone, Serialize)]
pub struct TypeSummary {
    /// Type (None in one-hot mode).
    pub type_name: Option<String>,
    /// The model dir used.
    pub model: String,
    /// The model kind.
    pub model_kind: String,
    /// Thresholds used.
    pub thresholds: Thresholds,
    /// Scale of the 16-bit PNG maps.
    pub png_scale: f64,
    /// Per image.
    pub images: Vec<ImageResult>,
    /// Metrics, when ground truth was given.
    pub metrics: Option<Metrics>,
    /// pixal version.
    pub version: String,
}

fn file_stem(p: &str) -> String {
    Path::new(p)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Detects on one npz; writes everything into the job's out_dir.
pub fn detect_job(
    cfg: &Config,
    job: &DetectJob,
    truth: Option<&Path>,
    summary: &mut Summary,
) -> anyhow::Result<TypeSummary> {
    let ty = job.ty.as_deref();
    let log_file = cfg.layout.validate_logs(ty).join("detect.log");
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
            verdict: im.verdict.clone(),
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
    let needs_calibration =
        d.threshold == ThresholdMode::Auto || d.scoring == Scoring::Standardized;
    let calibration = if needs_calibration {
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
    let (mode, scoring) = (d.threshold, d.scoring);
    let thresholds = Thresholds {
        mode,
        scoring,
        pixel: match (mode, &calibration) {
            (ThresholdMode::Auto, Some(cal)) => cal.pixel_threshold,
            _ => pl.loss_cut,
        },
        image: match (mode, &calibration) {
            (ThresholdMode::Auto, Some(cal)) => Some(cal.image_threshold),
            _ => None,
        },
        use_log_loss: pl.use_log_loss,
        false_positive_rate: d.false_positive_rate,
        calibration: calibration.clone(),
    };
    let pixel_thr = thresholds.pixel as f32;
    let png_scale = (2.0 * thresholds.pixel).max(1e-12);
    log::info!(
        "detect {label}: {:?} scoring, {:?} thresholds: pixel {:.4}{}",
        scoring,
        mode,
        thresholds.pixel,
        thresholds
            .image
            .map(|t| format!(", image {t:.4}"))
            .unwrap_or_default()
    );

    let figures_dir = cfg.layout.validate_figures(ty);
    let maps_dir = job.out_dir.join("anomaly_maps");
    let pool = meta.preprocessor.pool_size.max(1) as usize;
    let rows: Vec<RowSource> = if meta.rows.len() == n {
        meta.rows.clone()
    } else {
        (0..n)
            .map(|i| RowSource {
                file: meta.files.get(i).cloned().unwrap_or_default(),
                photo: meta.files.get(i).cloned().unwrap_or_default(),
                type_name: meta.row_types.get(i).cloned().unwrap_or_default(),
                crop_box: meta.crop_box,
                homography: None,
                frame: meta.image_size,
                photo_size: meta.image_size,
            })
            .collect()
    };
    let truth_index = truth.map(MaskIndex::new).transpose()?;
    if let Some(idx) = &truth_index {
        idx.check_any_match(&rows)?;
    }

    remove_stale_figures(&figures_dir, &maps_dir);
    // Per image: score map, verdict, photo map, overlay.
    let bar = crate::logging::progress(n as u64, &format!("detect {label}"));
    let per_image: Vec<anyhow::Result<PerImage>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let e = errors.row(i).to_vec();
            let name = || rows[i].photo.clone();
            check_row_sizes(&rows[i], &job.metadata)?;
            crate::detect::finite::ensure_finite(input.data.index_axis(Axis(0), i), || {
                format!(
                    "{}: the preprocessed image (row {i} of {})",
                    name(),
                    job.npz.display()
                )
            })?;
            let r = residuals.index_axis(Axis(0), i);
            crate::detect::finite::ensure_finite(r.iter(), || {
                format!(
                    "{}: the model's residuals (the model is broken; retrain it)",
                    name()
                )
            })?;
            let smap = score::score_map(r, calibration.as_ref(), &grid, &settings);
            let (img_score, img_mean) = (
                score::image_score(&smap, &grid),
                score::mean_score(&smap, &grid),
            );
            crate::detect::finite::ensure_finite(smap.iter().chain([&img_score]), || {
                format!("{}: the score map", name())
            })?;
            let decide: Vec<bool> = match mode {
                ThresholdMode::Auto => smap.iter().map(|&v| v >= pixel_thr).collect(),
                ThresholdMode::LossCut => e
                    .iter()
                    .map(|&v| score::exceeds_loss_cut(v, pl.loss_cut, pl.use_log_loss))
                    .collect(),
            };
            let count = decide.iter().filter(|&&b| b).count();
            let anomalous = match (mode, thresholds.image) {
                (ThresholdMode::Auto, Some(t)) => f64::from(img_score) >= t,
                _ => count > 0,
            };
            let shown = if mode == ThresholdMode::LossCut {
                &e
            } else {
                &smap
            };
            let row = &rows[i];
            let geometry = Geometry {
                pooled: shape,
                pool,
                crop: row.crop_box,
                frame: (row.frame[0], row.frame[1]),
                homography: row.homography,
                photo: (row.photo_size[0], row.photo_size[1]),
            };
            let photo_map = to_photo(shown, &geometry);
            let stem = format!("{:03}_{}", i, file_stem(&row.photo));
            let npy = maps_dir.join(format!("{stem}_anomaly.npy"));
            let png = maps_dir.join(format!("{stem}_anomaly.png"));
            crate::io::atomic::write_with(&npy, |w| {
                use ndarray_npy::WriteNpyExt;
                photo_map.write_npy(w).map_err(|e| e.to_string())
            })?;
            crate::io::image::save_png(&to_gray16(&photo_map, png_scale as f32), &png)?;
            // The true defect, when ground truth is given: outlined in the overlay, scored below.
            let mask = match &truth_index {
                Some(idx) => Some(idx.mask_for(&row.photo, &row.type_name, geometry.photo)?),
                None => None,
            };
            let truth_label = mask
                .as_ref()
                .map(|m| m.as_ref().is_some_and(|m| m.iter().any(|&b| b)));
            if pl.plot_anomaly_heatmap {
                let photo = crate::io::image::load_rgb8(Path::new(&row.photo))
                    .or_else(|_| crate::io::image::load_rgb8(Path::new(&row.file)))?;
                let photo = if photo.dimensions() == geometry.photo {
                    photo
                } else {
                    image::imageops::resize(
                        &photo,
                        geometry.photo.0,
                        geometry.photo.1,
                        image::imageops::FilterType::Triangle,
                    )
                };
                let gray: Vec<f32> = input
                    .data
                    .index_axis(Axis(0), i)
                    .rows()
                    .into_iter()
                    .map(|r| r.mean().unwrap_or(0.0))
                    .collect();
                // Min-max, so the pooled view shows the part's structure whatever the channels.
                let gmin = gray.iter().copied().fold(f32::INFINITY, f32::min);
                let gmax = gray.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let span = (gmax - gmin).max(1e-6);
                let gray: Vec<f32> = gray.iter().map(|v| (v - gmin) / span).collect();
                let pooled_map =
                    Array2::from_shape_vec(shape, shown.clone()).map_err(|e| anyhow!(e))?;
                let title = format!(
                    "{} [{}]  score {:.3}  {}  ({} anomalous pooled px, {:.2}%)",
                    Path::new(&row.photo)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    row.type_name,
                    img_score,
                    if anomalous { "ANOMALOUS" } else { "good" },
                    count,
                    100.0 * count as f64 / p.max(1) as f64
                );
                save_overlay(
                    &figures_dir.join(overlay_file_name(i, &row.photo)),
                    &OverlayFigure {
                        title,
                        photo: &photo,
                        map: &photo_map,
                        truth: mask.as_ref().and_then(|m| m.as_deref()),
                        pooled: &gray_from_map(&gray, shape),
                        pooled_map: &pooled_map,
                        scale: png_scale as f32,
                        threshold: pixel_thr,
                        anomalous,
                        truth_label,
                    },
                )?;
            }
            let gt = mask.map(|mask| {
                let found = mask.is_some();
                GroundTruth {
                    scores: photo_map.iter().copied().collect(),
                    mask: mask.unwrap_or_else(|| vec![false; photo_map.len()]),
                    found,
                    width: geometry.photo.0 as usize,
                }
            });
            bar.inc(1);
            Ok((
                ImageResult {
                    index: i,
                    photo: row.photo.clone(),
                    type_name: row.type_name.clone(),
                    score: f64::from(img_score),
                    mean_score: f64::from(img_mean),
                    verdict: if anomalous { "anomalous" } else { "good" }.into(),
                    anomalous_pixels: count,
                    anomalous_percent: 100.0 * count as f64 / p.max(1) as f64,
                    map_npy: npy.display().to_string(),
                    map_png: png.display().to_string(),
                    truth: truth_label,
                },
                gt,
                shown.clone(),
            ))
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
    figures.extend(write_figures(
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
            &score_figure(label, &images, &gts, &decision, &thresholds),
        )?;
        summary.output(&p);
        figures.insert(0, p);
    }
    let metrics = if truth.is_some() {
        let m = compute_metrics(&images, &gts);
        if pl.plot_roc_recall_curve || pl.plot_confusion_matrix {
            figures.extend(metric_figures(
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
    write_outputs(
        cfg,
        job,
        &ts,
        &figures,
        summary,
        (warnings_from, failures_from, truth),
    )?;
    Ok(ts)
}

/// Refuses a metadata row whose sizes are outside what pixal reads as an image, before the
/// photo-sized map is allocated (a damaged file could otherwise ask for terabytes).
fn check_row_sizes(row: &RowSource, meta_path: &Path) -> anyhow::Result<()> {
    use crate::io::image::MAX_DIMENSION;
    for (what, [w, h]) in [("photo_size", row.photo_size), ("frame", row.frame)] {
        if w == 0 || h == 0 || w > MAX_DIMENSION || h > MAX_DIMENSION {
            return Err(anyhow!(
                "{}: the row of {} gives {what} {w}x{h}, outside 1..={MAX_DIMENSION} pixels per side; the metadata is damaged (run validate again)",
                meta_path.display(),
                row.photo
            ));
        }
    }
    Ok(())
}

/// The file-name endings of ground-truth masks: pixal's and anomalib's `_mask.png`, and
/// `_defect.png`.
pub const MASK_SUFFIXES: [&str; 2] = ["_mask.png", "_defect.png"];

/// Finds ground-truth masks: `<dir>/<stem>_mask.png`, `<dir>/<type>/<stem>_mask.png`, or the
/// MVTec / anomalib layout `<dir>/<defect>/<stem>_mask.png` where `<defect>` is the photo's
/// folder name; otherwise a unique `<stem>_mask.png` anywhere below `<dir>`. `_defect.png`
/// works wherever `_mask.png` does.
pub struct MaskIndex {
    dir: PathBuf,
    by_stem: HashMap<String, Vec<PathBuf>>,
}

impl MaskIndex {
    /// Indexes every `*_mask.png` below `dir`.
    pub fn new(dir: &Path) -> anyhow::Result<MaskIndex> {
        if !dir.is_dir() {
            return Err(UsageError(format!(
                "{}: ground-truth folder does not exist",
                dir.display()
            ))
            .into());
        }
        let mut by_stem: HashMap<String, Vec<PathBuf>> = HashMap::new();
        for p in crate::io::files_under(dir) {
            if let Some(name) = p.file_name().and_then(|n| n.to_str())
                && let Some(stem) = MASK_SUFFIXES.iter().find_map(|s| name.strip_suffix(s))
            {
                by_stem.entry(stem.to_string()).or_default().push(p.clone());
            }
        }
        for v in by_stem.values_mut() {
            v.sort();
        }
        Ok(MaskIndex {
            dir: dir.to_path_buf(),
            by_stem,
        })
    }

    fn find(&self, photo: &str, type_name: &str) -> Option<PathBuf> {
        let p = Path::new(photo);
        let stem = file_stem(photo);
        let mut folders = vec![self.dir.clone(), self.dir.join(type_name)];
        if let Some(parent) = p.parent().and_then(|d| d.file_name()) {
            folders.push(self.dir.join(parent));
        }
        let stem_ref = &stem;
        let mut candidates = folders.iter().flat_map(|d| {
            MASK_SUFFIXES
                .iter()
                .map(move |s| d.join(format!("{stem_ref}{s}")))
        });
        if let Some(c) = candidates.find(|c| c.is_file()) {
            return Some(c);
        }
        match self.by_stem.get(&stem) {
            Some(v) if v.len() == 1 => Some(v[0].clone()),
            _ => None,
        }
    }

    /// Refuses a ground-truth folder in which no photo of `rows` finds its mask: metrics
    /// computed as if every photo were good would be silently wrong. The error names the file
    /// names that were looked for.
    pub fn check_any_match(&self, rows: &[RowSource]) -> anyhow::Result<()> {
        if rows.is_empty()
            || rows
                .iter()
                .any(|r| self.find(&r.photo, &r.type_name).is_some())
        {
            return Ok(());
        }
        let r = &rows[0];
        let stem = file_stem(&r.photo);
        let mut found: Vec<String> = self
            .by_stem
            .values()
            .flatten()
            .take(3)
            .map(|p| p.display().to_string())
            .collect();
        found.sort();
        Err(UsageError(format!(
            "--truth {dir}: no ground-truth mask matches any of the {n} photo(s); for {photo} pixal looks for {dir}/{stem}_mask.png, {dir}/{stem}_defect.png, {dir}/{ty}/{stem}_mask.png or the MVTec layout {dir}/<defect folder>/{stem}_mask.png; {there}",
            dir = self.dir.display(),
            n = rows.len(),
            photo = r.photo,
            ty = r.type_name,
            there = if found.is_empty() {
                "the folder holds no *_mask.png or *_defect.png at all".to_string()
            } else {
                format!("it holds e.g. {}", found.join(", "))
            }
        ))
        .into())
    }

    /// The mask of a photo as booleans on the photo grid (`None` when there is no mask: a good
    /// image). A mask of another size is an error naming it.
    pub fn mask_for(
        &self,
        photo: &str,
        type_name: &str,
        size: (u32, u32),
    ) -> anyhow::Result<Option<Vec<bool>>> {
        let Some(path) = self.find(photo, type_name) else {
            return Ok(None);
        };
        let img = crate::io::image::load_rgb8(&path)?;
        if img.dimensions() != size {
            return Err(anyhow!(
                "{}: mask is {}x{} but the photo is {}x{}",
                path.display(),
                img.width(),
                img.height(),
                size.0,
                size.1
            ));
        }
        Ok(Some(img.pixels().map(|p| p.0[0] > 127).collect()))
    }
}

/// What the per-image pass hands back: the result, the photo-grid scores with the ground truth
/// (when given), and the pooled map the verdict was decided on.
type PerImage = (ImageResult, Option<GroundTruth>, Vec<f32>);

/// One image's photo-grid scores and ground truth.
pub struct GroundTruth {
    /// Score per photo pixel.
    pub scores: Vec<f32>,
    /// Mask per photo pixel.
    pub mask: Vec<bool>,
    /// Whether a mask file was found (else the image counts as good).
    pub found: bool,
    /// Photo width.
    pub width: usize,
}

fn compute_metrics(images: &[ImageResult], gts: &[GroundTruth]) -> Metrics {
    let scores: Vec<f64> = images.iter().map(|r| r.score).collect();
    let labels: Vec<bool> = images.iter().map(|r| r.truth.unwrap_or(false)).collect();
    let mut px_scores = Vec::new();
    let mut px_labels = Vec::new();
    for g in gts {
        px_scores.extend(g.scores.iter().map(|&v| f64::from(v)));
        px_labels.extend(g.mask.iter().copied());
    }
    let masks: Vec<ScoredMask<'_>> = gts
        .iter()
        .map(|g| ScoredMask {
            scores: &g.scores,
            mask: &g.mask,
            width: g.width,
        })
        .collect();
    let mut confusion = [[0u64; 2]; 2];
    for r in images {
        let truth = usize::from(r.truth.unwrap_or(false));
        let pred = usize::from(r.verdict == "anomalous");
        confusion[truth][pred] += 1;
    }
    // Both pixel curves from one sort of the (millions of) photo pixels.
    let (px_roc, px_pr) = metrics::curves(&px_scores, &px_labels);
    Metrics {
        image_auroc: metrics::auroc(&scores, &labels),
        pixel_auroc: px_roc.as_deref().map(metrics::area_under_roc),
        aupro_0_3: metrics::aupro(&masks, 0.3),
        pixel_f1_max: px_pr.as_deref().and_then(metrics::best_f1).map(|x| x.0),
        image_f1_max: metrics::f1_max(&scores, &labels).map(|x| x.0),
        masks_found: gts.iter().filter(|g| g.found).count(),
        confusion,
    }
}

/// The data of `score_histograms.png`: the pixel and image scores the verdicts were decided
/// on, split by ground truth when it is given, with the thresholds.
fn score_figure(
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
fn metric_figures(
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

fn write_figures(
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

fn write_outputs(
    cfg: &Config,
    job: &DetectJob,
    ts: &TypeSummary,
    figures: &[PathBuf],
    summary: &mut Summary,
    (warnings_from, failures_from, truth): (usize, usize, Option<&Path>),
) -> anyhow::Result<()> {
    let dir = &job.out_dir;
    let header = [
        "file",
        "type",
        "image_score",
        "mean_score",
        "verdict",
        "anomalous_pixels",
        "anomalous_percent",
        "threshold_mode",
        "pixel_threshold",
        "image_threshold",
    ];
    let mode = match ts.thresholds.mode {
        ThresholdMode::Auto => "auto",
        ThresholdMode::LossCut => "loss_cut",
    };
    let records = ts.images.iter().map(|im| {
        vec![
            im.photo.clone(),
            im.type_name.clone(),
            format!("{:.6}", im.score),
            format!("{:.6}", im.mean_score),
            im.verdict.clone(),
            im.anomalous_pixels.to_string(),
            format!("{:.4}", im.anomalous_percent),
            mode.to_string(),
            format!("{:.6}", ts.thresholds.pixel),
            ts.thresholds
                .image
                .map(|v| format!("{v:.6}"))
                .unwrap_or_default(),
        ]
    });
    let csv = crate::io::table::to_csv(&header, records)?;
    let csv_path = dir.join("scores.csv");
    crate::io::atomic::write_bytes(&csv_path, &csv)?;
    summary.output(&csv_path);
    let json_path = dir.join("summary.json");
    let json = serde_json::to_string_pretty(ts).map_err(|e| anyhow!(e))?;
    crate::io::atomic::write_bytes(&json_path, json.as_bytes())?;
    summary.output(&json_path);

    // The HTML page links figures relative to itself.
    let rel = |p: &Path| pathdiff(p, dir);
    let overlays_dir = cfg.layout.validate_figures(job.ty.as_deref());
    let rows: Vec<ReportRow> = ts
        .images
        .iter()
        .map(|im| {
            let o = overlays_dir.join(overlay_file_name(im.index, &im.photo));
            ReportRow {
                name: Path::new(&im.photo)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                type_name: im.type_name.clone(),
                score: im.score,
                mean: im.mean_score,
                verdict: im.verdict.clone(),
                anomalous_percent: im.anomalous_percent,
                overlay: o.is_file().then(|| rel(&o)),
                truth: im.truth,
            }
        })
        .collect();
    let t = &ts.thresholds;
    let mut facts = vec![
        (
            "model".to_string(),
            format!("{} ({})", ts.model, ts.model_kind),
        ),
        (
            "scoring".to_string(),
            format!("{:?}", t.scoring).to_lowercase(),
        ),
        (
            "threshold mode".to_string(),
            format!("{:?}", t.mode).to_lowercase(),
        ),
        ("pixel threshold".to_string(), format!("{:.4}", t.pixel)),
        (
            "image threshold".to_string(),
            t.image
                .map_or("any anomalous pixel".into(), |v| format!("{v:.4}")),
        ),
    ];
    if let Some(c) = &t.calibration {
        facts.push((
            "calibration".to_string(),
            format!(
                "out-of-fold residuals of {} good training image(s); image threshold = the {:.1} % false-positive quantile of a Gumbel law (location {:.3}, scale {:.3}) fitted to their scores",
                c.images,
                100.0 * t.false_positive_rate,
                c.gumbel.0,
                c.gumbel.1
            ),
        ));
    }
    if let Some(m) = &ts.metrics {
        let f = |v: Option<f64>| v.map_or("n/a".to_string(), |x| format!("{x:.4}"));
        facts.push(("image AUROC".into(), f(m.image_auroc)));
        facts.push(("pixel AUROC".into(), f(m.pixel_auroc)));
        facts.push(("AUPRO (FPR <= 0.3)".into(), f(m.aupro_0_3)));
        facts.push(("pixel F1-max".into(), f(m.pixel_f1_max)));
        facts.push(("image F1-max".into(), f(m.image_f1_max)));
        facts.push(("masks found".into(), m.masks_found.to_string()));
    } else {
        facts.push((
            "ground truth".into(),
            "none given (pass --truth DIR for ROC/PR/AUPRO)".into(),
        ));
    }
    let figs: Vec<String> = figures.iter().map(|f| rel(f)).collect();
    let config_text = std::fs::read_to_string(cfg.dir.join("parameters.yaml")).unwrap_or_default();
    let mut photo_dirs: Vec<String> = ts
        .images
        .iter()
        .filter_map(|im| {
            Path::new(&im.photo)
                .parent()
                .map(|p| p.display().to_string())
        })
        .collect();
    photo_dirs.sort();
    photo_dirs.dedup();
    let run = RunInfo {
        date: utc_timestamp(std::time::SystemTime::now()),
        version: ts.version.clone(),
        inputs: vec![
            ("photos".into(), photo_dirs.join(", ")),
            ("preprocessed input".into(), job.npz.display().to_string()),
            ("model".into(), format!("{} ({})", ts.model, ts.model_kind)),
            (
                "ground truth".into(),
                truth.map_or("none given".into(), |t| t.display().to_string()),
            ),
            ("configuration".into(), cfg.dir.display().to_string()),
        ],
        warnings: summary
            .warnings
            .get(warnings_from..)
            .unwrap_or_default()
            .to_vec(),
        errors: summary
            .failed
            .get(failures_from..)
            .unwrap_or_default()
            .iter()
            .map(|f| f.error.clone())
            .collect(),
    };
    let html = page(
        &format!(
            "pixal detect — {}",
            job.ty.as_deref().unwrap_or("all types")
        ),
        &run,
        &facts,
        &rows,
        &figs,
        &config_text,
    );
    let html_path = dir.join("report.html");
    crate::io::atomic::write_bytes(&html_path, html.as_bytes())?;
    summary.output(&html_path);
    log::info!(
        "detect {}: report {}",
        job.ty.as_deref().unwrap_or("all types"),
        html_path.display()
    );
    Ok(())
}

/// Deletes the overlays, maps and ROC/PR/confusion figures an earlier run left in pixal's own
/// output folders (this run writes its own, when ground truth and the plotting switches ask for
/// them), so a folder never mixes two runs.
fn remove_stale_figures(figures: &Path, maps: &Path) {
    let remove_if = |dir: &Path, stale: &dyn Fn(&str) -> bool| {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if stale(&e.file_name().to_string_lossy()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    };
    remove_if(figures, &|name| {
        (name.starts_with("anomaly_overlay_") && name.ends_with(".png"))
            || name.ends_with("_overlay.png")
            || ["roc_curve.png", "pr_curve.png", "confusion_matrix.png"].contains(&name)
    });
    remove_if(maps, &|name| {
        name.ends_with("_anomaly.npy") || name.ends_with("_anomaly.png")
    });
}

/// `p` relative to `base` when it lies below it (the common case), else `p` as given.
fn pathdiff(p: &Path, base: &Path) -> String {
    match p.strip_prefix(base) {
        Ok(r) => r.display().to_string(),
        Err(_) => std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string(),
    }
}
