//! `pixal align`: every image of a type is aligned to that type's reference image.
//!
//! Training side: the first image of the type (sorted by name) is the reference, copied into
//! the aligned folder unchanged; every other image is aligned to it with
//! [`crate::preprocess::align`] and saved as `<stem>_aligned.png` (`no_bg` in the stem becomes
//! `aligned`), in the reference frame. An image that cannot be aligned, or whose alignment
//! misses the SSIM/MSE gates, is a per-file error; the batch goes on.
//!
//! Written per type:
//! * `preprocessed_images/aligned_images/*_aligned.png` and `alignment.csv` (image, reference,
//!   inliers, inlier ratio, SSIM, MSE, the photo -> reference homography h00..h22 row-major,
//!   and the source file), one row per aligned image, the reference included (identity);
//! * behind `save_metrics`: `figures/aligned_metrics/results.csv`, `alignment_score.png`,
//!   `mse.png`, `inlier_ratio.png`, `heatmap.png`;
//! * behind `draw_matches`: `figures/aligned_metrics/matches/match_<i>_<j>.png` (image i of the
//!   sorted folder against reference j, the 10 best inlier matches);
//! * behind `save_overlays`: `figures/aligned_metrics/overlay_diagnostics/diag_<stem>.png`
//!   (reference | aligned | 50/50 blend).
//!
//! Validation side ([`align_validation_type`]): new photos are aligned to the training
//! reference, falling back to the other aligned training images only when that fails its gates
//! (see [`crate::preprocess::align::align_with_fallback`]); when no candidate passes, the best
//! alignment is used with a warning, as the original did (a defect lowers the SSIM, and those
//! are the images validation is for).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use image::{RgbImage, RgbaImage};
use plotters::prelude::*;
use rayon::prelude::*;

use super::{Summary, UsageError, discover_types};
use crate::config::Config;
use crate::io::atomic;
use crate::io::image::{list_images, load_rgba8, save_png};
use crate::io::stage::{AlignmentRow, read_alignment_csv, write_alignment_csv};
use crate::preprocess::align::{AlignParams, Aligned, ReferenceSet, align_with_fallback};
use crate::preprocess::homography::Homography;
use crate::preprocess::keypoints::OrbParams;
use crate::report::colormap;
use crate::report::plot::{self, Axes, PALETTE, Series};

/// Runs align on `input` (a component folder with one sub-folder per type) or, without it, on
/// each type's background-removed folder under the component's output tree.
pub fn run(cfg: &Config, input: Option<&Path>) -> anyhow::Result<Summary> {
    let types = match input {
        Some(dir) => discover_types(dir)?,
        None => default_types(cfg)?,
    };
    let mut summary = Summary::new("align");
    align_types(cfg, &types, &mut summary)?;
    Ok(summary)
}

/// The background-removed folders of the types under the component's output tree.
fn default_types(cfg: &Config) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let root = cfg.layout.component_root();
    let out = super::type_image_folders(root, |name| cfg.layout.background_removed(Some(name)));
    if out.is_empty() {
        return Err(UsageError(format!(
            "no input given and no background-removed images found under {}; pass -i DIR (a component folder with one sub-folder per image type)",
            root.display()
        ))
        .into());
    }
    Ok(out)
}

/// Aligns the images of each (type, folder) pair into the type's aligned folder. Returns, per
/// type with at least one image there (the reference counts), the aligned folder: what
/// make_input reads next.
pub fn align_types(
    cfg: &Config,
    types: &[(String, PathBuf)],
    summary: &mut Summary,
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for (name, dir) in types {
        let log_path = cfg.layout.logs(Some(name)).join("preprocessing.log");
        if let Err(e) = crate::logging::set_log_file(&log_path) {
            summary.warn(format!("cannot open log file {e}"));
        }
        let r = align_training_type(cfg, name, dir, summary);
        crate::logging::close_log_file();
        if let Some(folder) = r? {
            out.push((name.clone(), folder));
        }
    }
    Ok(out)
}

/// The alignment settings of a resolved configuration: the `preprocessing.alignment` keys, the
/// run's seed (RANSAC's sampling) and make_input's `bg_threshold` (the refinement's foreground).
pub fn align_params(cfg: &Config) -> AlignParams {
    let a = &cfg.params.preprocessing.alignment;
    AlignParams {
        knn_ratio: a.knn_ratio,
        number_of_points: a.number_of_points,
        ransac_threshold: a.ransac_threshold,
        min_score: a.min_score_threshold,
        max_mse: a.max_mse_threshold,
        min_good_matches: a.min_good_matches,
        orb: OrbParams {
            n_features: a.n_features,
            ..OrbParams::default()
        },
        refine: a.refine,
        seed: cfg.params.model_training.seed,
        bg_threshold: cfg.params.preprocessing.preprocessor.bg_threshold,
    }
}

/// The name of an image's aligned copy: `no_bg` in the stem becomes `aligned`, otherwise
/// `_aligned` is appended; always `.png`.
pub fn aligned_name(source: &Path) -> String {
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    if stem.contains("no_bg") {
        format!("{}.png", stem.replace("no_bg", "aligned"))
    } else {
        format!("{stem}_aligned.png")
    }
}

/// The training images of a type as candidate references for validation: the training
/// reference first (the `alignment.csv` row aligned to itself), then the other aligned training
/// images in file order, each read from disk only if it is needed, at most
/// `alignment.max_references` of them. The cap matters for speed: a defective photo misses the
/// MSE gate against every reference (its defect does not line up with anything), and trying
/// all 60 training images of a type for each such photo took most of validate's time.
pub fn training_references(
    cfg: &Config,
    ty: Option<&str>,
) -> anyhow::Result<ReferenceSet<'static>> {
    let dir = cfg.layout.aligned_images(ty);
    let csv = dir.join("alignment.csv");
    if !csv.exists() {
        return Err(UsageError(format!(
            "{} not found: preprocess the training images with apply_alignment: True first",
            csv.display()
        ))
        .into());
    }
    let rows = read_alignment_csv(&csv)?;
    let Some(first) = rows.iter().find(|r| r.image == r.reference) else {
        return Err(anyhow::anyhow!(
            "{}: no reference row (an image aligned to itself)",
            csv.display()
        ));
    };
    let mut names = vec![first.image.clone()];
    names.extend(
        rows.iter()
            .filter(|r| r.image != first.image)
            .map(|r| r.image.clone()),
    );
    if let Some(max) = cfg.params.preprocessing.alignment.max_references {
        names.truncate(max);
    }
    let mut set = ReferenceSet::new();
    for name in names {
        let path = dir.join(&name);
        set.push_loader(name, move || load_rgba8(&path).map_err(|e| e.to_string()));
    }
    Ok(set)
}

/// True when any pixel is not fully opaque (the image had an alpha channel worth keeping).
fn has_alpha(img: &RgbaImage) -> bool {
    img.pixels().any(|p| p.0[3] != 255)
}

fn drop_alpha(img: &RgbaImage) -> RgbImage {
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let p = img.get_pixel(x, y).0;
        image::Rgb([p[0], p[1], p[2]])
    })
}

/// Saves an aligned image: RGBA when its source had transparency, RGB otherwise.
fn save_aligned(img: &RgbaImage, keep_alpha: bool, path: &Path) -> anyhow::Result<()> {
    if keep_alpha {
        save_png(img, path)?;
    } else {
        save_png(&drop_alpha(img), path)?;
    }
    Ok(())
}

/// What to do when no candidate reference passes the SSIM/MSE gates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnGateFailure {
    /// A per-file error (training: a badly aligned image must not be trained on).
    Fail,
    /// Use the best alignment, with a warning (validation: defects lower the scores).
    UseBest,
}

/// One alignment job: a list of images, the references to align them to, and where outputs go.
struct Job<'a> {
    label: String,
    /// (index in the sorted source folder, path).
    images: Vec<(usize, PathBuf)>,
    references: &'a ReferenceSet<'a>,
    /// Index of each reference in its own sorted folder (the `j` of `match_<i>_<j>.png`).
    reference_index: Vec<usize>,
    /// The reference's pixels, for the overlays and match figures.
    reference_image: &'a RgbaImage,
    out_dir: PathBuf,
    metrics_dir: PathBuf,
    on_gate_failure: OnGateFailure,
}

/// One image's outcome, for the tables and figures.
struct Outcome {
    index: usize,
    source: PathBuf,
    reference: usize,
    aligned: Aligned,
    accepted: bool,
    /// The aligned file's name; `None` when the gates refused it.
    written: Option<String>,
    /// Match and overlay figures written for it.
    figures: Vec<PathBuf>,
}

/// The training side for one type. Returns the aligned folder, or `None` when no image of the
/// type could be read.
fn align_training_type(
    cfg: &Config,
    name: &str,
    dir: &Path,
    summary: &mut Summary,
) -> anyhow::Result<Option<PathBuf>> {
    let files = match list_images(dir) {
        Ok(f) if f.is_empty() => {
            summary.fail(
                dir,
                format!("{}: no images in folder (type {name})", dir.display()),
            );
            return Ok(None);
        }
        Ok(f) => f,
        Err(e) => {
            summary.fail(dir, e);
            return Ok(None);
        }
    };
    // Inside pixal's tree, read only what a finished remove_bg wrote.
    let in_tree = crate::io::stage::in_tree(dir, &[cfg.layout.component_root()]);
    let (files, upstream) = match crate::io::stage::completed_files(dir, files, in_tree) {
        Ok(f) => f,
        Err(e) => {
            summary.fail(dir, e);
            return Ok(None);
        }
    };
    if files.is_empty() {
        summary.fail(
            dir,
            format!("{}: no images in folder (type {name})", dir.display()),
        );
        return Ok(None);
    }
    let photos = upstream.as_ref().map_or(files.len(), |r| r.photos);
    let params = align_params(cfg);
    let out_dir = cfg.layout.aligned_images(Some(name));
    let metrics_dir = cfg.layout.aligned_metrics(Some(name));
    crate::io::atomic::create_dir_all(&out_dir)?;
    // Until this run's record is written, the folder counts as incomplete.
    crate::io::stage::start(&out_dir)?;
    // The reference is the first image (sorted) that can be read.
    let mut reference: Option<(usize, RgbaImage)> = None;
    for (i, f) in files.iter().enumerate() {
        match load_rgba8(f) {
            Ok(img) => {
                reference = Some((i, img));
                break;
            }
            Err(e) => summary.fail(f, format!("{e} (so it cannot be the reference either)")),
        }
    }
    let Some((ref_index, ref_img)) = reference else {
        return Ok(None);
    };
    let ref_path = &files[ref_index];
    let ref_name = aligned_name(ref_path);
    log::info!(
        "align {name}: {} image(s), reference {}",
        files.len(),
        ref_path.display()
    );
    let ref_out = out_dir.join(&ref_name);
    save_aligned(&ref_img, has_alpha(&ref_img), &ref_out)
        .with_context(|| format!("copying the reference of {name}"))?;
    summary.output(&ref_out);
    summary.processed += 1;

    let mut set = ReferenceSet::new();
    set.push_image(ref_name.clone(), ref_img.clone());
    let job = Job {
        label: name.to_string(),
        images: files
            .iter()
            .enumerate()
            .skip(ref_index + 1)
            .map(|(i, p)| (i, p.clone()))
            .collect(),
        references: &set,
        reference_index: vec![ref_index],
        reference_image: &ref_img,
        out_dir: out_dir.clone(),
        metrics_dir,
        on_gate_failure: OnGateFailure::Fail,
    };
    let mut rows = vec![AlignmentRow {
        image: ref_name.clone(),
        reference: ref_name,
        inliers: 0,
        inlier_ratio: 0.0,
        ssim: 1.0,
        mse: 0.0,
        homography: identity9(),
        source: ref_path.display().to_string(),
    }];
    rows.extend(run_job(cfg, &job, &params, summary)?);
    let csv = out_dir.join("alignment.csv");
    write_alignment_csv(&csv, &rows)?;
    summary.output(&csv);
    let mut outputs: Vec<String> = rows.iter().map(|r| r.image.clone()).collect();
    outputs.sort();
    let failed = files
        .iter()
        .map(|f| f.display().to_string())
        .filter(|f| !rows.iter().any(|r| &r.source == f))
        .collect();
    crate::io::stage::finish(
        &out_dir,
        &crate::io::stage::StageRecord {
            stage: "align".into(),
            version: crate::VERSION.into(),
            finished: crate::logging::utc_now(),
            config_hash: cfg.hash.clone(),
            inputs: files.len(),
            photos,
            outputs,
            failed,
        },
    )?;
    Ok(Some(out_dir))
}

/// The validation side for one type: aligns `photos` (a folder, or one file) to the training
/// references of `ty` ([`training_references`]) into the validate side's aligned folder, with
/// the same diagnostics and `alignment.csv`. Returns that folder and its rows (whose
/// homographies map each photo to the training reference frame).
pub fn align_validation_type(
    cfg: &Config,
    ty: &str,
    photos: &Path,
    summary: &mut Summary,
) -> anyhow::Result<(PathBuf, Vec<AlignmentRow>)> {
    let files = if photos.is_file() {
        vec![photos.to_path_buf()]
    } else {
        list_images(photos)?
    };
    let params = align_params(cfg);
    let set = training_references(cfg, Some(ty))?;
    let ref_path = cfg
        .layout
        .aligned_images(Some(ty))
        .join(set.name(0).unwrap_or_default());
    let ref_img = load_rgba8(&ref_path)?;
    let out_dir = cfg.layout.validate_aligned_images(Some(ty));
    let job = Job {
        label: format!("validate {ty}"),
        images: files.into_iter().enumerate().collect(),
        references: &set,
        reference_index: (0..set.len()).collect(),
        reference_image: &ref_img,
        out_dir: out_dir.clone(),
        metrics_dir: cfg.layout.validate_aligned_metrics(Some(ty)),
        on_gate_failure: OnGateFailure::UseBest,
    };
    let rows = run_job(cfg, &job, &params, summary)?;
    let csv = out_dir.join("alignment.csv");
    write_alignment_csv(&csv, &rows)?;
    summary.output(&csv);
    Ok((out_dir, rows))
}

fn identity9() -> [f64; 9] {
    [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
}

fn flat(h: &Homography) -> [f64; 9] {
    std::array::from_fn(|k| h[(k / 3, k % 3)])
}

/// Aligns the job's images in parallel, writes them and the diagnostics, and returns the
/// `alignment.csv` rows of the images written.
fn run_job(
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
                super::error_text(&e)
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

/// Display size of each image of a match figure: drawing at full size would cost more than
/// the alignment itself.
const MATCH_PANEL: (u32, u32) = (560, 360);
/// Display size of each of the four panels of an overlay diagnostic.
const OVERLAY_PANEL: (u32, u32) = (480, 320);

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
        .map_err(|e| fail(super::error_text(&e)))?;
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

/// `results.csv` and the metric figures.
fn write_metrics(
    job: &Job<'_>,
    params: &AlignParams,
    outcomes: &[Outcome],
    heat: &[u32],
    heat_n: usize,
    (w, h): (u32, u32),
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let dir = &job.metrics_dir;
    let mut sorted: Vec<&Outcome> = outcomes.iter().collect();
    sorted.sort_by_key(|o| o.index);
    let records = sorted.iter().map(|o| {
        vec![
            o.source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            format!("{:.6}", o.aligned.ssim),
            format!("{:.4}", o.aligned.mse),
            o.aligned.inliers.to_string(),
            format!("{:.6}", o.aligned.inlier_ratio),
            job.reference_index
                .get(o.reference)
                .copied()
                .unwrap_or(o.reference)
                .to_string(),
            o.accepted.to_string(),
            o.aligned.refined.to_string(),
        ]
    });
    let text = crate::io::table::to_csv(
        &[
            "image",
            "score",
            "mse",
            "inliers",
            "inlier_ratio",
            "reference",
            "accepted",
            "refined",
        ],
        records,
    )?;
    let csv = dir.join("results.csv");
    atomic::write_bytes(&csv, &text)?;
    summary.output(&csv);

    // One x position per image, labelled with its file name.
    let names: Vec<String> = sorted
        .iter()
        .map(|o| {
            o.source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let xs: Vec<f64> = (0..sorted.len()).map(|k| k as f64).collect();
    let line = |name: &str, ys: Vec<f64>| Series {
        name: name.into(),
        points: xs.iter().copied().zip(ys).collect(),
    };
    let flat_line = |name: String, y: f64| Series {
        name,
        points: if xs.is_empty() {
            vec![]
        } else {
            vec![(xs[0], y), (xs[xs.len() - 1], y)]
        },
    };
    let p = dir.join("alignment_score.png");
    plot::line_chart(
        &p,
        &Axes::new(
            &format!("Alignment score (SSIM) — {}", job.label),
            "image",
            "SSIM",
        )
        .x_names(names.clone()),
        &[
            line("SSIM", sorted.iter().map(|o| o.aligned.ssim).collect()),
            flat_line(
                format!(
                    "MIN_SCORE_THRESHOLD {}",
                    plot::format_tick(params.min_score)
                ),
                params.min_score,
            ),
        ],
    )?;
    summary.output(&p);
    let p = dir.join("mse.png");
    plot::line_chart(
        &p,
        &Axes::new(&format!("Gray MSE — {}", job.label), "image", "MSE").x_names(names.clone()),
        &[
            line("MSE", sorted.iter().map(|o| o.aligned.mse).collect()),
            flat_line(
                format!("MAX_MSE_THRESHOLD {}", plot::format_tick(params.max_mse)),
                params.max_mse,
            ),
        ],
    )?;
    summary.output(&p);
    let p = dir.join("inlier_ratio.png");
    plot::bar_chart(
        &p,
        &Axes::new(
            &format!("RANSAC inlier ratio — {}", job.label),
            "image",
            "inliers / good matches",
        ),
        &names,
        &sorted
            .iter()
            .map(|o| o.aligned.inlier_ratio)
            .collect::<Vec<_>>(),
    )?;
    summary.output(&p);

    // Heat map of the stacked V channel, min-max normalised.
    let (lo, hi) = heat
        .iter()
        .fold((u32::MAX, 0u32), |(a, b), &v| (a.min(v), b.max(v)));
    let span = hi.saturating_sub(lo).max(1) as f32;
    let img = RgbImage::from_fn(w, h, |x, y| {
        let v = heat[(y * w + x) as usize];
        image::Rgb(colormap::viridis((v.saturating_sub(lo)) as f32 / span))
    });
    let p = dir.join("heatmap.png");
    plot::image_with_colorbar(
        &p,
        &format!(
            "Sum of HSV V over {heat_n} aligned image(s) — {}",
            job.label
        ),
        &img,
        colormap::viridis,
        (0.0, 1.0),
        "normalised",
    )?;
    summary.output(&p);
    Ok(())
}

/// `img` scaled to fit in `max_w` x `max_h` (never enlarged), as packed RGB bytes: each output
/// pixel is the plain average of the input pixels whose block it covers. Figures are looked at,
/// not measured, and this is several times faster than a filtered resize, which kept the
/// diagnostics from costing more than the alignment.
fn fit_rgb(img: &RgbaImage, max_w: u32, max_h: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let s = (f64::from(max_w) / f64::from(w.max(1)))
        .min(f64::from(max_h) / f64::from(h.max(1)))
        .min(1.0);
    let (dw, dh) = (
        ((f64::from(w) * s).round() as u32).max(1),
        ((f64::from(h) * s).round() as u32).max(1),
    );
    if (dw, dh) == (w, h) {
        return drop_alpha(img);
    }
    let edges = |d: u32, dn: u32, n: u32| {
        let a = (u64::from(d) * u64::from(n) / u64::from(dn)) as u32;
        let b = (u64::from(d + 1) * u64::from(n) / u64::from(dn)) as u32;
        (a.min(n - 1), b.clamp(a + 1, n))
    };
    let cols: Vec<(u32, u32)> = (0..dw).map(|x| edges(x, dw, w)).collect();
    RgbImage::from_fn(dw, dh, |x, y| {
        let (y0, y1) = edges(y, dh, h);
        let (x0, x1) = cols[x as usize];
        let mut acc = [0u32; 3];
        for yy in y0..y1 {
            for xx in x0..x1 {
                let p = img.get_pixel(xx, yy).0;
                for c in 0..3 {
                    acc[c] += u32::from(p[c]);
                }
            }
        }
        let n = (y1 - y0) * (x1 - x0);
        image::Rgb(acc.map(|v| ((v + n / 2) / n) as u8))
    })
}

fn blit(
    root: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    img: &RgbImage,
    at: (i32, i32),
) -> Result<(), String> {
    let el =
        BitMapElement::<(i32, i32)>::with_owned_buffer(at, img.dimensions(), img.as_raw().clone())
            .ok_or("bitmap size mismatch")?;
    root.draw(&el).map_err(|e| e.to_string())
}

/// Photo (left) and reference (right, already at display size; `ref_size` its full size)
/// with lines between the best matches, titled with both file names.
fn draw_match_figure(
    path: &Path,
    photo: &RgbaImage,
    reference: &RgbImage,
    ref_size: (u32, u32),
    aligned: &Aligned,
    (name, ref_name): (&str, &str),
) -> anyhow::Result<()> {
    let a = fit_rgb(photo, MATCH_PANEL.0, MATCH_PANEL.1);
    let b = reference;
    let sa = f64::from(a.width()) / f64::from(photo.width().max(1));
    let sb = f64::from(b.width()) / f64::from(ref_size.0.max(1));
    let top = 70i32;
    let gap = 10i32;
    let size = (
        a.width() + b.width() + gap as u32,
        a.height().max(b.height()) + top as u32 + 10,
    );
    let title = format!(
        "{} best of {} inliers ({} good matches)",
        aligned.best_matches.len(),
        aligned.inliers,
        aligned.good_matches
    );
    plot::render(path, size, |root| {
        blit(root, &a, (0, top))?;
        let bx = a.width() as i32 + gap;
        blit(root, b, (bx, top))?;
        for (k, (p, q)) in aligned.best_matches.iter().enumerate() {
            let c = PALETTE[k % PALETTE.len()];
            let pa = ((p[0] * sa) as i32, top + (p[1] * sa) as i32);
            let pb = (bx + (q[0] * sb) as i32, top + (q[1] * sb) as i32);
            root.draw(&PathElement::new(vec![pa, pb], c.stroke_width(2)))
                .map_err(|e| e.to_string())?;
            for pt in [pa, pb] {
                root.draw(&Circle::new(pt, 6, c.stroke_width(2)))
                    .map_err(|e| e.to_string())?;
            }
        }
        root.draw(&Text::new(
            title.clone(),
            (10, 8),
            ("sans-serif", 20).into_font(),
        ))
        .map_err(|e| e.to_string())?;
        for (text, x) in [
            (format!("image: {name}"), 6),
            (format!("reference: {ref_name}"), bx + 6),
        ] {
            root.draw(&Text::new(text, (x, 40), ("sans-serif", 17).into_font()))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })?;
    Ok(())
}

/// |reference - aligned| (gray, max over channels), amplified 4x and coloured with inferno:
/// a misalignment shows as bright double edges, a good alignment as a dark image.
pub fn difference_image(reference: &RgbImage, aligned: &RgbImage) -> RgbImage {
    RgbImage::from_fn(reference.width(), reference.height(), |x, y| {
        let p = reference.get_pixel(x, y).0;
        let q = aligned
            .get_pixel(
                x.min(aligned.width().saturating_sub(1)),
                y.min(aligned.height().saturating_sub(1)),
            )
            .0;
        let d = (0..3).map(|c| p[c].abs_diff(q[c])).max().unwrap_or(0);
        image::Rgb(colormap::inferno((f32::from(d) * 4.0 / 255.0).min(1.0)))
    })
}

/// Reference | aligned over 50/50 blend | difference, in a 2x2 grid at display size, titled
/// with the file names.
fn draw_overlay(
    path: &Path,
    reference: &RgbImage,
    aligned: &Aligned,
    (name, ref_name): (&str, &str),
) -> anyhow::Result<()> {
    let r = reference;
    let a = fit_rgb(&aligned.image, OVERLAY_PANEL.0, OVERLAY_PANEL.1);
    let blend = RgbImage::from_fn(r.width(), r.height(), |x, y| {
        let p = r.get_pixel(x, y).0;
        let q = a.get_pixel(x.min(a.width() - 1), y.min(a.height() - 1)).0;
        image::Rgb(std::array::from_fn(|c| {
            (u16::from(p[c]) + u16::from(q[c])).div_ceil(2) as u8
        }))
    });
    let diff = difference_image(r, &a);
    let head = 40i32;
    let cap = 28i32;
    let gap = 10i32;
    let (pw, ph) = (r.width() as i32, r.height() as i32);
    let size = ((2 * pw + gap) as u32, (head + 2 * (cap + ph) + gap) as u32);
    let title = format!(
        "{name} aligned to {ref_name}: SSIM {:.3}, MSE {:.1}{}",
        aligned.ssim,
        aligned.mse,
        if aligned.refined { ", refined" } else { "" }
    );
    let panels: [(&RgbImage, String); 4] = [
        (r, format!("reference {ref_name}")),
        (&a, format!("aligned {name}")),
        (&blend, "50/50 blend".to_string()),
        (&diff, "difference |reference - aligned| x4".to_string()),
    ];
    plot::render(path, size, |root| {
        root.draw(&Text::new(
            title.clone(),
            (6, 8),
            ("sans-serif", 21).into_font(),
        ))
        .map_err(|e| e.to_string())?;
        for (k, (img, caption)) in panels.iter().enumerate() {
            let x = (k as i32 % 2) * (pw + gap);
            let y = head + (k as i32 / 2) * (cap + ph + gap);
            root.draw(&Text::new(
                caption.clone(),
                (x + 4, y + 4),
                ("sans-serif", 17).into_font(),
            ))
            .map_err(|e| e.to_string())?;
            blit(root, img, (x, y + cap))?;
        }
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_names_follow_the_original() {
        assert_eq!(
            aligned_name(Path::new("a/t_000_no_bg.png")),
            "t_000_aligned.png"
        );
        assert_eq!(aligned_name(Path::new("photo.JPG")), "photo_aligned.png");
    }
}
