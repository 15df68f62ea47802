//! One alignment job of `pixal align`: a list of images aligned in parallel to a set of
//! references, each written (or refused) with its match and overlay figures, and the
//! `alignment.csv` rows and diagnostics of the job.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use image::{RgbImage, RgbaImage};
use rayon::prelude::*;

use super::aligned_name;
use super::figures::{
    MATCH_PANEL, OVERLAY_PANEL, draw_match_figure, draw_overlay, fit_rgb, write_metrics,
};
use crate::commands::Summary;
use crate::config::Config;
use crate::io::image::{load_rgba8, save_png};
use crate::io::stage::AlignmentRow;
use crate::preprocess::align::{AlignParams, Aligned, ReferenceSet, align_with_fallback};
use crate::preprocess::homography::Homography;

/// True when any pixel is not fully opaque (the image had an alpha channel worth keeping).
pub(super) fn has_alpha(img: &RgbaImage) -> bool {
    img.pixels().any(|p| p.0[3] != 255)
}

pub(super) fn drop_alpha(img: &RgbaImage) -> RgbImage {
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let p = img.get_pixel(x, y).0;
        image::Rgb([p[0], p[1], p[2]])
    })
}

/// Saves an aligned image: RGBA when its source had transparency, RGB otherwise.
pub(super) fn save_aligned(img: &RgbaImage, keep_alpha: bool, path: &Path) -> anyhow::Result<()> {
    if keep_alpha {
        save_png(img, path)?;
    } else {
        save_png(&drop_alpha(img), path)?;
    }
    Ok(())
}

/// What to do when no candidate reference passes the SSIM/MSE gates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OnGateFailure {
    /// A per-file error (training: a badly aligned image must not be trained on).
    Fail,
    /// Use the best alignment, with a warning (validation: defects lower the scores).
    UseBest,
}

/// One alignment job: a list of images, the references to align them to, and where outputs go.
pub(super) struct Job<'a> {
    pub(super) label: String,
    /// (index in the sorted source folder, path).
    pub(super) images: Vec<(usize, PathBuf)>,
    pub(super) references: &'a ReferenceSet<'a>,
    /// Index of each reference in its own sorted folder (the `j` of `match_<i>_<j>.png`).
    pub(super) reference_index: Vec<usize>,
    /// The reference's pixels, for the overlays and match figures.
    pub(super) reference_image: &'a RgbaImage,
    pub(super) out_dir: PathBuf,
    pub(super) metrics_dir: PathBuf,
    pub(super) on_gate_failure: OnGateFailure,
}

/// One image's outcome, for the tables and figures.
pub(super) struct Outcome {
    pub(super) index: usize,
    pub(super) source: PathBuf,
    pub(super) reference: usize,
    pub(super) aligned: Aligned,
    pub(super) accepted: bool,
    /// The aligned file's name; `None` when the gates refused it.
    pub(super) written: Option<String>,
    /// Match and overlay figures written for it.
    pub(super) figures: Vec<PathBuf>,
}

fn flat(h: &Homography) -> [f64; 9] {
    std::array::from_fn(|k| h[(k / 3, k % 3)])
}

/// Aligns the job's images in parallel, writes them and the diagnostics, and returns the
/// `alignment.csv` rows of the images written.
pub(super) fn run_job(
    cfg: &Config,
    job: &Job<'_>,
    params: &AlignParams,
    summary: &mut Summary,
) -> anyhow::Result<Vec<AlignmentRow>> {
    let pp = &cfg.params.preprocessing;
    let (rw, rh) = job.reference_image.dimensions();
    // Sum of the HSV V channel (max of R, G, B) over the aligned images, reference included.
    let heat = Mutex::new(
        job.reference_image
            .pixels()
            .map(|p| u32::from(p.0[0].max(p.0[1]).max(p.0[2])))
            .collect::<Vec<u32>>(),
    );
    let heat_count = std::sync::atomic::AtomicUsize::new(1);
    // The reference at display size, once per job rather than once per figure.
    let diag = Diagnostics {
        matches: pp.draw_matches,
        overlays: pp.save_overlays,
        reference_match: if pp.draw_matches {
            fit_rgb(job.reference_image, MATCH_PANEL.0, MATCH_PANEL.1)
        } else {
            RgbImage::new(0, 0)
        },
        reference_overlay: if pp.save_overlays {
            fit_rgb(job.reference_image, OVERLAY_PANEL.0, OVERLAY_PANEL.1)
        } else {
            RgbImage::new(0, 0)
        },
    };
    let bar = crate::logging::progress(job.images.len() as u64, &format!("align {}", job.label));
    type Attempt = Result<(Outcome, Vec<String>), Rejected>;
    let attempts: Vec<Attempt> = job
        .images
        .par_iter()
        .map(|(index, path)| {
            let r = align_one(job, params, &diag, *index, path);
            if let Ok((o, _)) = &r
                && o.written.is_some()
            {
                if let Ok(mut h) = heat.lock() {
                    for (acc, p) in h.iter_mut().zip(o.aligned.image.pixels()) {
                        *acc += u32::from(p.0[0].max(p.0[1]).max(p.0[2]));
                    }
                }
                heat_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();

    let mut outcomes = Vec::new();
    for a in attempts {
        match a {
            Ok((o, warnings)) => {
                for w in warnings {
                    summary.warn(w);
                }
                if let Some(name) = &o.written {
                    summary.output(&job.out_dir.join(name));
                    summary.processed += 1;
                }
                for f in &o.figures {
                    summary.output(f);
                }
                outcomes.push(o);
            }
            Err(Rejected {
                path,
                error,
                outcome,
            }) => {
                summary.fail(&path, error);
                // Scores of an alignment the gates refused still belong in the metrics.
                outcomes.extend(outcome.map(|o| *o));
                // A stale aligned copy from an earlier run must not reach make_input.
                let stale = job.out_dir.join(aligned_name(&path));
                if stale.exists() && std::fs::remove_file(&stale).is_ok() {
                    log::info!("removed the stale {}", stale.display());
                }
            }
        }
    }
    let rows: Vec<AlignmentRow> = outcomes
        .iter()
        .filter_map(|o| {
            o.written.as_ref().map(|name| AlignmentRow {
                image: name.clone(),
                reference: job
                    .references
                    .name(o.reference)
                    .unwrap_or_default()
                    .to_string(),
                inliers: o.aligned.inliers,
                inlier_ratio: o.aligned.inlier_ratio,
                ssim: o.aligned.ssim,
                mse: o.aligned.mse,
                homography: flat(&o.aligned.homography),
                source: o.source.display().to_string(),
            })
        })
        .collect();
    log::info!(
        "align {}: {} of {} image(s) aligned ({} refined to sub-pixel)",
        job.label,
        rows.len(),
        job.images.len(),
        outcomes
            .iter()
            .filter(|o| o.written.is_some() && o.aligned.refined)
            .count()
    );
    if pp.save_metrics {
        let heat = heat.into_inner().unwrap_or_default();
        let n = heat_count.load(std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = write_metrics(job, params, &outcomes, &heat, n, (rw, rh), summary) {
            summary.warn(format!(
                "align {}: diagnostics not written: {}",
                job.label,
                crate::commands::error_text(&e)
            ));
        }
    }
    Ok(rows)
}

/// An image that failed: the file, why, and the alignment the gates refused (if any).
struct Rejected {
    path: PathBuf,
    error: String,
    outcome: Option<Box<Outcome>>,
}

/// Which per-image figures to draw, with the reference already at display size.
struct Diagnostics {
    /// `draw_matches`.
    matches: bool,
    /// `save_overlays`.
    overlays: bool,
    /// The reference fitted into [`MATCH_PANEL`].
    reference_match: RgbImage,
    /// The reference fitted into [`OVERLAY_PANEL`].
    reference_overlay: RgbImage,
}

/// Loads, aligns, gates and writes one image (and its match and overlay figures).
fn align_one(
    job: &Job<'_>,
    params: &AlignParams,
    diag: &Diagnostics,
    index: usize,
    path: &Path,
) -> Result<(Outcome, Vec<String>), Rejected> {
    let fail = |error: String| Rejected {
        path: path.to_path_buf(),
        error,
        outcome: None,
    };
    let photo = load_rgba8(path).map_err(|e| fail(e.to_string()))?;
    let mut warnings = Vec::new();
    let (reference, aligned, accepted) = match align_with_fallback(&photo, job.references, params) {
        Ok(c) => (c.reference, c.aligned, true),
        Err(f) => match (job.on_gate_failure, f.best.clone()) {
            (OnGateFailure::UseBest, Some((r, a))) => {
                warnings.push(format!(
                    "{}: {f}; using the best alignment (SSIM {:.3}, MSE {:.2})",
                    path.display(),
                    a.ssim,
                    a.mse
                ));
                (r, *a, false)
            }
            (_, best) => {
                return Err(Rejected {
                    path: path.to_path_buf(),
                    error: format!("{}: {f}", path.display()),
                    outcome: best.map(|(r, a)| {
                        Box::new(Outcome {
                            index,
                            source: path.to_path_buf(),
                            reference: r,
                            aligned: *a,
                            accepted: false,
                            written: None,
                            figures: Vec::new(),
                        })
                    }),
                });
            }
        },
    };
    let name = aligned_name(path);
    let out = job.out_dir.join(&name);
    save_aligned(&aligned.image, has_alpha(&photo), &out)
        .map_err(|e| fail(crate::commands::error_text(&e)))?;
    let stem = Path::new(&name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut figures = Vec::new();
    let source_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let reference_name = job
        .references
        .name(reference)
        .unwrap_or_default()
        .to_string();
    if diag.matches {
        let j = job
            .reference_index
            .get(reference)
            .copied()
            .unwrap_or(reference);
        let p = job
            .metrics_dir
            .join("matches")
            .join(format!("match_{index}_{j}.png"));
        let names = (source_name.as_str(), reference_name.as_str());
        match draw_match_figure(
            &p,
            &photo,
            &diag.reference_match,
            job.reference_image.dimensions(),
            &aligned,
            names,
        ) {
            Ok(()) => figures.push(p),
            Err(e) => warnings.push(format!("{}: {e}", p.display())),
        }
    }
    if diag.overlays {
        let p = job
            .metrics_dir
            .join("overlay_diagnostics")
            .join(format!("diag_{stem}.png"));
        let names = (source_name.as_str(), reference_name.as_str());
        match draw_overlay(&p, &diag.reference_overlay, &aligned, names) {
            Ok(()) => figures.push(p),
            Err(e) => warnings.push(format!("{}: {e}", p.display())),
        }
    }
    Ok((
        Outcome {
            index,
            source: path.to_path_buf(),
            reference,
            aligned,
            accepted,
            written: Some(name),
            figures,
        },
        warnings,
    ))
}
