//! What `pixal detect` writes per job: the per-image results and the type summary
//! (`summary.json`), the anomaly maps (`.npy` and 16-bit PNG), `scores.csv` and `report.html`,
//! and the clean-up of an earlier run's maps and figures.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use ndarray::Array2;
use serde::Serialize;

use super::DetectJob;
use super::truth::Metrics;
use crate::commands::Summary;
use crate::config::Config;
use crate::config::paths::{Folder, Side};
use crate::detect::decide::{Thresholds, Verdict};
use crate::detect::maps::to_gray16;
use crate::detect::score::ThresholdMode;
use crate::report::html::{ReportRow, RunInfo, page, utc_timestamp};
use crate::report::overlay::overlay_file_name;

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
    /// Good or anomalous (written `good` / `anomalous`).
    pub verdict: Verdict,
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

/// Writes row `index`'s map on the photo grid into `dir` as `<index>_<stem>_anomaly.npy`
/// (float32) and `.png` (16-bit, `min(score / png_scale, 1) * 65535`); returns both paths.
pub(super) fn write_map(
    dir: &Path,
    index: usize,
    photo: &str,
    map: &Array2<f32>,
    png_scale: f64,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let stem = format!("{:03}_{}", index, file_stem(photo));
    let npy = dir.join(format!("{stem}_anomaly.npy"));
    let png = dir.join(format!("{stem}_anomaly.png"));
    crate::io::atomic::write_with(&npy, |w| {
        use ndarray_npy::WriteNpyExt;
        map.write_npy(w).map_err(|e| e.to_string())
    })?;
    crate::io::image::save_png(&to_gray16(map, png_scale as f32), &png)?;
    Ok((npy, png))
}

/// Writes `scores.csv`, `summary.json` and `report.html` of one job into its out_dir.
pub(super) fn write_outputs(
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
            im.verdict.to_string(),
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
    let overlays_dir = cfg
        .layout
        .dir(Side::Validate, Folder::Figures, job.ty.as_deref());
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
                verdict: im.verdict.to_string(),
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
pub(super) fn remove_stale_figures(figures: &Path, maps: &Path) {
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
pub(super) fn pathdiff(p: &Path, base: &Path) -> String {
    match p.strip_prefix(base) {
        Ok(r) => r.display().to_string(),
        Err(_) => std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string(),
    }
}
