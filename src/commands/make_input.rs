//! `pixal make_input`: images -> `out.npz` + `metadata/preprocessing.yaml` + `crop_preview.png`,
//! per type (default) or for all types together with one-hot labels.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use ndarray::{Array2, Array3};
use rayon::prelude::*;

use super::{Summary, UsageError, discover_types};
use crate::config::Config;
use crate::config::raw::{ChannelList, RawPreprocessor};
use crate::io::image::{list_images, load_rgb8, save_png};
use crate::io::metadata::{PreprocessingMetadata, write_yaml};
use crate::io::npz::{InputData, write_input};
use crate::preprocess::crop::{self, BBox, CropBox};
use crate::preprocess::input::image_rows;

/// Decoded images are kept between the two passes (crop box, then features) while they fit in
/// this many bytes; past it they are decoded again, so memory stays bounded on big folders.
const IMAGE_CACHE_BYTES: usize = 2 << 30;

/// Runs make_input on `input` (a component folder) or, without it, on the folders paths.yaml
/// gives (aligned images when alignment is on, else background-removed images).
pub fn run(cfg: &Config, input: Option<&Path>) -> anyhow::Result<Summary> {
    let types = match input {
        Some(dir) => discover_types(dir)?,
        None => default_types(cfg)?,
    };
    let mut summary = Summary::new("make_input");
    if cfg.params.model_training.one_hot_encoding {
        build(cfg, None, &types, &mut summary)?;
    } else {
        for t in &types {
            build(cfg, Some(&t.0), std::slice::from_ref(t), &mut summary)?;
        }
    }
    Ok(summary)
}

/// The per-type input folders under the component's output tree.
fn default_types(cfg: &Config) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let root = cfg.layout.component_root();
    let aligned = cfg.params.preprocessing.alignment.apply_alignment;
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root) {
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let dir = if aligned {
                cfg.layout.aligned_images(Some(&name))
            } else {
                cfg.layout.background_removed(Some(&name))
            };
            if list_images(&dir).is_ok_and(|v| !v.is_empty()) {
                out.push((name, dir));
            }
        }
    }
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

/// One image's (P, C) rows and its pooled (height, width).
type Rows = (Array2<f32>, (usize, usize));

/// One image after the first pass.
struct Scanned {
    type_index: usize,
    path: PathBuf,
    size: (u32, u32),
    fg: Option<BBox>,
    image: Option<image::RgbImage>,
}

/// Builds one `out.npz` from the images of `sources` (one type, or all types in one-hot mode).
fn build(
    cfg: &Config,
    out_ty: Option<&str>,
    sources: &[(String, PathBuf)],
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let log_path = cfg.layout.logs(out_ty).join("preprocessing.log");
    if let Err(e) = crate::logging::set_log_file(&log_path) {
        summary.warn(format!("cannot open log file {e}"));
    }
    let result = build_logged(cfg, out_ty, sources, summary);
    crate::logging::close_log_file();
    result
}

fn build_logged(
    cfg: &Config,
    out_ty: Option<&str>,
    sources: &[(String, PathBuf)],
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let layout = &cfg.layout;
    let pp = &cfg.params.preprocessing.preprocessor;
    let label = out_ty.unwrap_or("all types (one-hot)");

    let mut files: Vec<(usize, PathBuf)> = Vec::new();
    for (i, (name, dir)) in sources.iter().enumerate() {
        match list_images(dir) {
            Ok(list) if list.is_empty() => summary.fail(
                dir,
                format!("{}: no images in folder (type {name})", dir.display()),
            ),
            Ok(list) => files.extend(list.into_iter().map(|p| (i, p))),
            Err(e) => summary.fail(dir, e),
        }
    }
    if files.is_empty() {
        return Ok(());
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
    // The most common size is the type's size (ties: the first in sorted order), so one odd
    // photo sorted first does not reject all the others.
    let mut counts: Vec<((u32, u32), usize)> = Vec::new();
    for s in &good {
        match counts.iter_mut().find(|(sz, _)| *sz == s.size) {
            Some((_, n)) => *n += 1,
            None => counts.push((s.size, 1)),
        }
    }
    let best = counts.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let Some(size) = counts.iter().find(|(_, n)| *n == best).map(|(sz, _)| *sz) else {
        summary.warn(format!(
            "make_input {label}: no image could be read; no output written"
        ));
        return Ok(());
    };
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

    let crop_box = if pp.zero_pruning {
        match good.iter().filter_map(|s| s.fg).reduce(crop::union) {
            Some(bb) => Some(crop::padded(
                bb,
                pp.zero_pruning_padding as u32,
                size.0,
                size.1,
            )),
            None => {
                summary.warn(format!(
                    "make_input {label}: no pixel above bg_threshold {} in any image; using the whole image",
                    pp.bg_threshold
                ));
                Some(CropBox::full(size.0, size.1))
            }
        }
    } else {
        None
    };
    if let Some(b) = &crop_box {
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
    let (cw, ch) = crop_box.map_or(size, |b| (b.width(), b.height()));
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
        .map(|s| {
            let img = match s.image.take() {
                Some(img) => Ok(img),
                None => load_rgb8(&s.path),
            };
            let r = img.map(|img| image_rows(&img, crop_box.as_ref(), &pp.channels, pp.pool_size));
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();

    let mut kept: Vec<(&Scanned, Array2<f32>)> = Vec::new();
    let mut pooled = (0, 0);
    for (s, r) in good.iter().zip(rows) {
        match r {
            Ok((rows, shape)) => {
                pooled = shape;
                kept.push((s, rows));
            }
            Err(e) => summary.fail(&s.path, e),
        }
    }
    if kept.is_empty() {
        return Ok(());
    }
    let (p, c) = kept[0].1.dim();
    let mut data = Array3::<f32>::zeros((kept.len(), p, c));
    for (i, (_, r)) in kept.iter().enumerate() {
        data.index_axis_mut(ndarray::Axis(0), i).assign(r);
    }
    let labels = out_ty.is_none().then(|| {
        Array2::from_shape_fn((kept.len(), sources.len()), |(i, t)| {
            f32::from(u8::from(kept[i].0.type_index == t))
        })
    });

    let type_root = layout.type_root(out_ty);
    let npz_path = type_root.join(&pp.file_name);
    write_input(
        &npz_path,
        &InputData {
            data,
            shape: pooled,
            labels,
        },
    )
    .with_context(|| format!("writing the ML input for {label}"))?;
    summary.output(&npz_path);

    // The first image cropped, so a person can check the crop at a glance.
    let first = kept[0].0;
    let preview_path = layout.preprocessed_images(out_ty).join("crop_preview.png");
    match load_rgb8(&first.path) {
        Ok(img) => {
            let shown = match &crop_box {
                Some(b) => crop::crop(&img, b),
                None => img,
            };
            save_png(&shown, &preview_path)?;
            summary.output(&preview_path);
        }
        Err(e) => summary.fail(&first.path, e),
    }

    let meta = PreprocessingMetadata {
        tool: "pixal".into(),
        version: crate::VERSION.into(),
        config_hash: cfg.hash.clone(),
        mode: if out_ty.is_some() {
            "per_type"
        } else {
            "one_hot"
        }
        .into(),
        types: sources.iter().map(|(n, _)| n.clone()).collect(),
        preprocessor: RawPreprocessor {
            file_name: pp.file_name.clone(),
            pool_size: pp.pool_size as i64,
            channels: ChannelList::List(pp.channels.iter().map(|c| c.name().to_string()).collect()),
            weights: pp.weights.iter().map(|&w| f64::from(w)).collect(),
            zero_pruning: pp.zero_pruning,
            zero_pruning_padding: pp.zero_pruning_padding as i64,
            bg_threshold: i64::from(pp.bg_threshold),
        },
        crop_box,
        image_size: [size.0, size.1],
        pooled_shape: [pooled.0, pooled.1],
        input_dim: p * c,
        files: kept
            .iter()
            .map(|(s, _)| s.path.display().to_string())
            .collect(),
        row_types: kept
            .iter()
            .map(|(s, _)| sources[s.type_index].0.clone())
            .collect(),
        reference_image: None,
        npz: pp.file_name.clone(),
    };
    let meta_path = layout.metadata(out_ty).join("preprocessing.yaml");
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
    Ok(())
}
