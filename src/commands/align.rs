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
//!
//! This file decides what is aligned to what and where it goes; `align/job.rs` runs one job
//! (the images in parallel, each written or refused) and `align/figures.rs` draws the
//! diagnostics. `alignment.csv` itself is a stage contract ([`crate::io::stage::alignment`]).

mod figures;
mod job;

use std::path::{Path, PathBuf};

use anyhow::Context;
use image::RgbaImage;

use super::{Summary, UsageError, discover_types};
use crate::config::Config;
use crate::config::paths::{Folder, Side};
use crate::io::image::{list_images, load_rgba8};
use crate::io::stage::{AlignmentRow, read_alignment_csv, write_alignment_csv};
use crate::preprocess::align::{AlignParams, ReferenceSet};
use crate::preprocess::keypoints::OrbParams;

pub use figures::difference_image;
use job::{Job, OnGateFailure, has_alpha, run_job, save_aligned};

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
    let out = super::type_image_folders(root, |name| {
        cfg.layout
            .dir(Side::Model, Folder::BackgroundRemoved, Some(name))
    });
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
        let log_path = cfg
            .layout
            .dir(Side::Model, Folder::Logs, Some(name))
            .join("preprocessing.log");
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
    let dir = cfg.layout.dir(Side::Model, Folder::AlignedImages, ty);
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
    let out_dir = cfg
        .layout
        .dir(Side::Model, Folder::AlignedImages, Some(name));
    let metrics_dir = cfg
        .layout
        .dir(Side::Model, Folder::AlignedMetrics, Some(name));
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
        .dir(Side::Model, Folder::AlignedImages, Some(ty))
        .join(set.name(0).unwrap_or_default());
    let ref_img = load_rgba8(&ref_path)?;
    let out_dir = cfg
        .layout
        .dir(Side::Validate, Folder::AlignedImages, Some(ty));
    let job = Job {
        label: format!("validate {ty}"),
        images: files.into_iter().enumerate().collect(),
        references: &set,
        reference_index: (0..set.len()).collect(),
        reference_image: &ref_img,
        out_dir: out_dir.clone(),
        metrics_dir: cfg
            .layout
            .dir(Side::Validate, Folder::AlignedMetrics, Some(ty)),
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
