//! `pixal make_input`: images -> `out.npz` + `metadata/preprocessing.yaml` + `crop_preview.png`,
//! per type (default) or for all types together with one-hot labels. The same builder serves
//! validation, where the stored crop box is re-centred on each new image and the rows remember
//! the photo and homography they came from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use ndarray::{Array2, Array3};
use rayon::prelude::*;

use super::{Summary, UsageError, discover_types};
use crate::config::Config;
use crate::config::paths::{Folder, Side};
use crate::io::image::{list_images, load_rgb8, save_png};
use crate::io::metadata::write_yaml;
use crate::io::npz::{InputData, PartReference, write_input};
use crate::io::stage::{PreprocessingMetadata, PreprocessorSettings, RowSource};
use crate::preprocess::crop::{self, BBox, CropBox, TrainingBox};
use crate::preprocess::input::image_rows;
use crate::preprocess::photometric;

/// Decoded images are kept between the two passes (crop box, then features) while they fit in
/// this many bytes; past it they are decoded again, so memory stays bounded on big folders.
const IMAGE_CACHE_BYTES: usize = 2 << 30;

mod reference;

use reference::part_reference;

/// Runs make_input on `input` (a component folder) or, without it, on the folders paths.yaml
/// gives (aligned images when alignment is on, else background-removed images).
pub fn run(cfg: &Config, input: Option<&Path>) -> anyhow::Result<Summary> {
    let types = match input {
        Some(dir) => discover_types(dir)?,
        None => default_types(cfg)?,
    };
    let mut summary = Summary::new("make_input");
    run_types(cfg, &types, &mut summary)?;
    Ok(summary)
}

/// Builds the training-side ML input of these (type, folder) pairs: one file per type, or one
/// for all in one-hot mode.
pub fn run_types(
    cfg: &Config,
    types: &[(String, PathBuf)],
    summary: &mut Summary,
) -> anyhow::Result<()> {
    if cfg.params.model_training.one_hot_encoding {
        build(cfg, &Target::training(cfg, None), types, summary)?;
    } else {
        for t in types {
            build(
                cfg,
                &Target::training(cfg, Some(&t.0)),
                std::slice::from_ref(t),
                summary,
            )?;
        }
    }
    Ok(())
}

/// The per-type input folders under the component's output tree.
fn default_types(cfg: &Config) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let root = cfg.layout.component_root();
    let aligned = cfg.params.preprocessing.alignment.apply_alignment;
    let out = super::type_image_folders(root, |name| {
        if aligned {
            cfg.layout
                .dir(Side::Model, Folder::AlignedImages, Some(name))
        } else {
            cfg.layout
                .dir(Side::Model, Folder::BackgroundRemoved, Some(name))
        }
    });
    if out.is_empty() {
        return Err(UsageError(format!(
            "no input given and no {} images found under {}; pass -i DIR (a component folder with one sub-folder per image type)",
            if aligned { "aligned" } else { "background-removed" },
            root.display()
        ))
        .into());
    }
    Ok(out)
}

/// Where one ML input goes and how its crop box is chosen.
#[derive(Debug, Clone)]
pub struct Target {
    /// Human label for logs (`front`, `all types (one-hot)`).
    pub label: String,
    /// The type name in per-type mode.
    pub ty: Option<String>,
    /// Folder of the npz.
    pub root: PathBuf,
    /// Folder of `preprocessing.yaml`.
    pub metadata_dir: PathBuf,
    /// Folder of `crop_preview.png`.
    pub preview_dir: PathBuf,
    /// The stage log file.
    pub log_file: PathBuf,
    /// At validation: the training crop box, re-centred on each image.
    pub stored_crop: Option<CropBox>,
    /// At validation: one-hot label order of the trained model.
    pub label_types: Option<Vec<String>>,
    /// Photo and homography of each input file, when earlier stages know them.
    pub provenance: HashMap<PathBuf, Provenance>,
    /// At validation: the training files' part mask and photometric reference.
    pub part: Option<PartReference>,
    /// Training side: the quality gates (minimum image counts) apply.
    pub training: bool,
}

/// What earlier stages know about an image make_input reads.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// The original photo.
    pub photo: PathBuf,
    /// Photo -> reference frame homography, when aligned.
    pub homography: Option<[f64; 9]>,
    /// The photo's width and height.
    pub photo_size: (u32, u32),
}

impl Target {
    /// The training-side target of a type (or of the component in one-hot mode).
    pub fn training(cfg: &Config, ty: Option<&str>) -> Target {
        let l = &cfg.layout;
        Target {
            label: ty.unwrap_or("all types (one-hot)").to_string(),
            ty: ty.map(str::to_string),
            root: l.type_root(ty),
            metadata_dir: l.dir(Side::Model, Folder::Metadata, ty),
            preview_dir: l.dir(Side::Model, Folder::PreprocessedImages, ty),
            log_file: l
                .dir(Side::Model, Folder::Logs, ty)
                .join("preprocessing.log"),
            stored_crop: None,
            label_types: None,
            provenance: HashMap::new(),
            part: None,
            training: true,
        }
    }

    /// The validation-side target of a type, re-using the training crop box.
    pub fn validation(
        cfg: &Config,
        ty: Option<&str>,
        stored_crop: Option<CropBox>,
        label_types: Option<Vec<String>>,
    ) -> Target {
        let l = &cfg.layout;
        Target {
            label: format!("validate {}", ty.unwrap_or("all types (one-hot)")),
            ty: ty.map(str::to_string),
            root: l.validate_type_root(ty),
            metadata_dir: l.dir(Side::Validate, Folder::Metadata, ty),
            preview_dir: l.dir(Side::Validate, Folder::PreprocessedImages, ty),
            log_file: l
                .dir(Side::Validate, Folder::Logs, ty)
                .join("validation.log"),
            stored_crop,
            label_types,
            provenance: HashMap::new(),
            part: None,
            training: false,
        }
    }
}

/// One image after the first pass.
struct Scanned {
    type_index: usize,
    path: PathBuf,
    size: (u32, u32),
    fg: Option<BBox>,
    image: Option<image::RgbImage>,
}

/// One image's (P, C) rows, its pooled (height, width) and the foreground fraction of each
/// pooled pixel.
type Rows = (Array2<f32>, (usize, usize), Vec<f32>);

/// What a build wrote.
#[derive(Debug, Clone)]
pub struct Built {
    /// The npz.
    pub npz: PathBuf,
    /// Its metadata.
    pub metadata: PreprocessingMetadata,
}

/// Builds one `out.npz` from the images of `sources` (one type, or all types in one-hot mode).
pub fn build(
    cfg: &Config,
    target: &Target,
    sources: &[(String, PathBuf)],
    summary: &mut Summary,
) -> anyhow::Result<Option<Built>> {
    if let Err(e) = crate::logging::set_log_file(&target.log_file) {
        summary.warn(format!("cannot open log file {e}"));
    }
    let result = build_logged(cfg, target, sources, summary);
    crate::logging::close_log_file();
    result
}

fn build_logged(
    cfg: &Config,
    target: &Target,
    sources: &[(String, PathBuf)],
    summary: &mut Summary,
) -> anyhow::Result<Option<Built>> {
    let pp = &cfg.params.preprocessing.preprocessor;
    let label = target.label.as_str();
    let mut files: Vec<(usize, PathBuf)> = Vec::new();
    // Photos of these types at the start of the chain (before earlier stages refused some).
    let mut photos = 0;
    for (i, (name, dir)) in sources.iter().enumerate() {
        // A single image file is a one-image source (validate -i photo.jpg --type NAME).
        let mut listed = if dir.is_file() {
            Ok(vec![dir.clone()])
        } else {
            list_images(dir)
        };
        // When earlier stages said which files they produced (validation), read only those: the
        // folder may still hold an earlier run's images.
        if !target.provenance.is_empty()
            && let Ok(list) = listed.as_mut()
        {
            list.retain(|p| target.provenance.contains_key(p));
        }
        // In training, a folder of pixal's tree is read only when the stage that wrote it
        // finished, and only the files that stage wrote.
        listed = match listed {
            Ok(list) if target.training && dir.is_dir() => {
                let in_tree = crate::io::stage::in_tree(dir, &[cfg.layout.component_root()]);
                match crate::io::stage::completed_files(dir, list, in_tree) {
                    Ok((list, record)) => {
                        photos += record.map_or(list.len(), |r| r.photos);
                        Ok(list)
                    }
                    Err(e) => {
                        summary.fail(dir, e);
                        continue;
                    }
                }
            }
            Ok(list) => {
                photos += list.len();
                Ok(list)
            }
            Err(e) => Err(e),
        };
        match listed {
            Ok(list) if list.is_empty() => summary.fail(
                dir,
                format!("{}: no images in folder (type {name})", dir.display()),
            ),
            Ok(list) => files.extend(list.into_iter().map(|p| (i, p))),
            Err(e) => summary.fail(dir, e),
        }
    }
    if files.is_empty() {
        return Ok(None);
    }
    log::info!("make_input {label}: {} image(s)", files.len());

    // Pass 1: decode, find each image's foreground box.
    let budget = AtomicUsize::new(IMAGE_CACHE_BYTES);
    let bar = crate::logging::progress(files.len() as u64, &format!("scan {label}"));
    let threshold = pp.bg_threshold;
    let scanned: Vec<Result<Scanned, crate::io::IoError>> = files
        .par_iter()
        .map(|(ti, path)| {
            let r = load_rgb8(path).map(|img| {
                let bytes = img.as_raw().len();
                let keep = budget
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                        b.checked_sub(bytes)
                    })
                    .is_ok();
                Scanned {
                    type_index: *ti,
                    path: path.clone(),
                    size: img.dimensions(),
                    fg: crop::foreground_bbox(&img, threshold),
                    image: keep.then_some(img),
                }
            });
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();

    let mut good: Vec<Scanned> = Vec::new();
    for r in scanned {
        match r {
            Ok(s) => good.push(s),
            Err(e) => summary.fail(e.path(), &e),
        }
    }

    // Per-image crop boxes: at validation the stored box placed on each image; in training
    // the box the folder's images share, for images of the folder's common size.
    let mut boxes: Vec<Option<CropBox>> = Vec::new();
    if let Some(stored) = target.stored_crop {
        good.retain(|s| {
            let aligned = target
                .provenance
                .get(&s.path)
                .is_some_and(|p| p.homography.is_some());
            match crop::place_stored(&stored, aligned, s.fg, s.size.0, s.size.1) {
                Some(b) => {
                    boxes.push(Some(b));
                    true
                }
                None => {
                    summary.fail(
                        &s.path,
                        format!(
                            "{}: image is {}x{}, smaller than the training crop box {}x{}",
                            s.path.display(),
                            s.size.0,
                            s.size.1,
                            stored.width(),
                            stored.height()
                        ),
                    );
                    false
                }
            }
        });
    } else {
        let size = crop::common_size(good.iter().map(|s| s.size)).unwrap_or((0, 0));
        good.retain(|s| {
            if s.size == size {
                return true;
            }
            summary.fail(
                &s.path,
                format!(
                    "{}: image is {}x{} but most images of this type are {}x{}; all images of a type must have the same size (align them first)",
                    s.path.display(),
                    s.size.0,
                    s.size.1,
                    size.0,
                    size.1
                ),
            );
            false
        });
        let foregrounds: Vec<Option<BBox>> = good.iter().map(|s| s.fg).collect();
        let shared = crop::training_box(
            &foregrounds,
            pp.zero_pruning,
            pp.zero_pruning_padding as u32,
            size.0,
            size.1,
        );
        if let TrainingBox::Whole(_) = shared {
            summary.warn(format!(
                "make_input {label}: no pixel above bg_threshold {} in any image; using the whole image",
                pp.bg_threshold
            ));
        }
        boxes = vec![shared.crop_box(); good.len()];
    }
    if good.is_empty() {
        summary.warn(format!(
            "make_input {label}: no usable image; no output written"
        ));
        return Ok(None);
    }
    if let Some(Some(b)) = boxes.first() {
        log::info!(
            "crop box x {}..{} y {}..{} ({}x{}, padding {})",
            b.x_min,
            b.x_max,
            b.y_min,
            b.y_max,
            b.width(),
            b.height(),
            b.padding
        );
    }
    let (cw, ch) = boxes[0].map_or(good[0].size, |b| (b.width(), b.height()));
    if (cw as usize) < pp.pool_size || (ch as usize) < pp.pool_size {
        return Err(UsageError(format!(
            "make_input {label}: the cropped image ({cw}x{ch}) is smaller than pool_size {}",
            pp.pool_size
        ))
        .into());
    }

    // Pass 2: channels and pooling.
    let bar = crate::logging::progress(good.len() as u64, &format!("features {label}"));
    let rows: Vec<Result<Rows, crate::io::IoError>> = good
        .par_iter_mut()
        .zip(boxes.par_iter())
        .map(|(s, b)| {
            let img = match s.image.take() {
                Some(img) => Ok(img),
                None => load_rgb8(&s.path),
            };
            let r = img.map(|img| {
                let (rows, shape) = image_rows(&img, b.as_ref(), &pp.channels, pp.pool_size);
                let fg = match b {
                    Some(b) => photometric::foreground_fraction(
                        &crop::crop(&img, b),
                        pp.bg_threshold,
                        pp.pool_size,
                    ),
                    None => photometric::foreground_fraction(&img, pp.bg_threshold, pp.pool_size),
                };
                (rows, shape, fg)
            });
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();

    let mut kept: Vec<(&Scanned, Option<CropBox>, Array2<f32>)> = Vec::new();
    let mut fractions: Vec<Vec<f32>> = Vec::new();
    let mut pooled = (0, 0);
    for ((s, b), r) in good.iter().zip(&boxes).zip(rows) {
        match r {
            Ok((rows, shape, fg)) => {
                pooled = shape;
                kept.push((s, *b, rows));
                fractions.push(fg);
            }
            Err(e) => summary.fail(&s.path, e),
        }
    }
    if kept.is_empty() {
        return Ok(None);
    }
    if target.training
        && let Err(e) = cfg.params.quality_gates.check(
            &format!("make_input {label}"),
            kept.len(),
            photos.max(files.len()),
        )
    {
        // The type fails as a whole: no out.npz is written, so train cannot use a stale or
        // thin one by mistake.
        let dir = sources.first().map_or_else(PathBuf::new, |s| s.1.clone());
        summary.fail(&dir, e);
        return Ok(None);
    }
    let part = part_reference(cfg, target, pooled, &fractions, &mut kept)?;
    let (p, c) = kept[0].2.dim();
    let mut data = Array3::<f32>::zeros((kept.len(), p, c));
    for (i, (_, _, r)) in kept.iter().enumerate() {
        data.index_axis_mut(ndarray::Axis(0), i).assign(r);
    }
    let type_names: Vec<String> = match &target.label_types {
        Some(t) => t.clone(),
        None => sources.iter().map(|(n, _)| n.clone()).collect(),
    };
    let labels = target.ty.is_none().then(|| {
        Array2::from_shape_fn((kept.len(), type_names.len()), |(i, t)| {
            f32::from(u8::from(sources[kept[i].0.type_index].0 == type_names[t]))
        })
    });

    let npz_path = target.root.join(&pp.file_name);
    write_input(
        &npz_path,
        &InputData {
            data,
            shape: pooled,
            labels,
            part: Some(part),
        },
    )
    .with_context(|| format!("writing the ML input for {label}"))?;
    summary.output(&npz_path);

    // The first image cropped, so a person can check the crop at a glance.
    let (first, first_box, _) = &kept[0];
    let preview_path = target.preview_dir.join("crop_preview.png");
    match load_rgb8(&first.path) {
        Ok(img) => {
            let shown = match first_box {
                Some(b) => crop::crop(&img, b),
                None => img,
            };
            save_png(&shown, &preview_path)?;
            summary.output(&preview_path);
        }
        Err(e) => summary.fail(&first.path, e),
    }

    let rows_meta: Vec<RowSource> = kept
        .iter()
        .map(|(s, b, _)| {
            let prov = target.provenance.get(&s.path);
            RowSource {
                file: s.path.display().to_string(),
                photo: prov.map_or_else(
                    || s.path.display().to_string(),
                    |p| p.photo.display().to_string(),
                ),
                type_name: sources[s.type_index].0.clone(),
                crop_box: *b,
                homography: prov.and_then(|p| p.homography),
                frame: [s.size.0, s.size.1],
                photo_size: prov.map_or([s.size.0, s.size.1], |p| [p.photo_size.0, p.photo_size.1]),
            }
        })
        .collect();
    let meta = PreprocessingMetadata {
        tool: "pixal".into(),
        version: crate::VERSION.into(),
        config_hash: cfg.hash.clone(),
        mode: if target.ty.is_some() {
            "per_type"
        } else {
            "one_hot"
        }
        .into(),
        types: type_names,
        preprocessor: PreprocessorSettings {
            file_name: pp.file_name.clone(),
            // Both fit: pool_size is at most the cropped image's side (checked above), and a
            // padding past u32::MAX pixels pads to the image's border either way.
            pool_size: u32::try_from(pp.pool_size).unwrap_or(u32::MAX),
            channels: pp.channels.clone(),
            weights: pp.weights.iter().map(|&w| f64::from(w)).collect(),
            zero_pruning: pp.zero_pruning,
            zero_pruning_padding: u32::try_from(pp.zero_pruning_padding).unwrap_or(u32::MAX),
            bg_threshold: pp.bg_threshold,
            photometric_normalization: pp.photometric_normalization,
        },
        crop_box: target.stored_crop.or(kept[0].1),
        image_size: [kept[0].0.size.0, kept[0].0.size.1],
        pooled_shape: [pooled.0, pooled.1],
        input_dim: p * c,
        files: rows_meta.iter().map(|r| r.file.clone()).collect(),
        row_types: rows_meta.iter().map(|r| r.type_name.clone()).collect(),
        reference_image: None,
        npz: pp.file_name.clone(),
        rows: rows_meta,
        npz_sha256: Some(crate::io::sha256_file(&npz_path)?),
    };
    let meta_path = target.metadata_dir.join("preprocessing.yaml");
    write_yaml(&meta_path, &meta)?;
    summary.output(&meta_path);
    summary.processed += kept.len();
    log::info!(
        "make_input {label}: {} image(s) -> {} (data {}x{}x{}, pooled {}x{})",
        kept.len(),
        npz_path.display(),
        kept.len(),
        p,
        c,
        pooled.0,
        pooled.1
    );
    Ok(Some(Built {
        npz: npz_path,
        metadata: meta,
    }))
}
