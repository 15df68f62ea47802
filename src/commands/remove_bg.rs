//! `pixal remove_bg`: photos -> RGBA cut-outs (`<stem>_no_bg.png`, or with `rename_images`
//! `<type>_<index:03>_no_bg.png`) in each type's `preprocessed_images/background_removed`, the
//! size of the photo; `--only-mask` writes the 8-bit masks (`..._mask.png`) to
//! `preprocessed_images/masks` instead.
//!
//! Unlike the original, outputs are **not** resized to the first image's size: a cut-out keeps
//! its photo's pixels and geometry (so alignment and the anomaly maps can go back to photo
//! coordinates); photos of another size are named in a warning, and make_input refuses them
//! with a clear message unless alignment brings them to the reference frame.
//!
//! This module also finds what the ONNX method needs, and says where it looked when it finds
//! nothing:
//! * the model: `preprocessing.remove_background.model`, a path, or a rembg name looked up in
//!   rembg's places, in rembg's order (`<home>/models/<name>/<name>.onnx` with `<home>` =
//!   `$U2NET_HOME`, `$REMBG_HOME`, `$XDG_DATA_HOME/rembg` or `~/.rembg`, then the old flat
//!   `$U2NET_HOME`, `$XDG_DATA_HOME/.u2net` or `~/.u2net`; see
//!   [`crate::preprocess::background::models`]). A missing model of rembg's table is
//!   downloaded on first use as rembg does (same address, same checksum, into rembg's folder)
//!   unless `preprocessing.remove_background.download: False` or `PIXAL_NO_DOWNLOAD` forbids
//!   it; `PIXAL_MODEL_URL` (or `download_url`) replaces the release address, for a mirror;
//! * the ONNX Runtime library: `preprocessing.remove_background.onnxruntime`, else
//!   `$ORT_DYLIB_PATH`, else the `onnxruntime` Python package's `capi/` folder (found by asking
//!   `python3`).
//!
//! With `method: auto`, a run that cannot use the model (missing and not downloadable, no
//! runtime) falls back to the classical method with one warning per run, however many types
//! it processes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use image::GrayImage;
use rayon::prelude::*;

mod setup;

use setup::load_onnx;
pub use setup::{
    MissingModel, download_base, download_forbidden, find_runtime, locate_model, model_places,
    obtain_model,
};

use super::{Summary, UsageError, discover_types};
use crate::config::Config;
use crate::config::paths::{Folder, Side};
use crate::io::image::{list_images, load_rgb8, save_png};
use crate::preprocess::background::onnx::OnnxRemover;
use crate::preprocess::background::{self, BackgroundError, Method, classical};

/// Runs remove_bg on `input` (a component folder, or one folder of photos).
pub fn run(cfg: &Config, input: Option<&Path>, only_mask: bool) -> anyhow::Result<Summary> {
    let Some(input) = input else {
        return Err(UsageError(
            "remove_bg needs -i DIR: a component folder with one sub-folder of photos per image type"
                .into(),
        )
        .into());
    };
    let types = discover_types(input)?;
    let (summary, _) = run_types(cfg, &types, Side::Model, only_mask)?;
    Ok(summary)
}

/// Removes the background of every photo of these (type, folder) pairs. Returns the summary
/// and, per type that produced at least one output, the folder the outputs are in (what
/// make_input, or alignment, reads next).
pub fn run_types(
    cfg: &Config,
    types: &[(String, PathBuf)],
    side: Side,
    only_mask: bool,
) -> anyhow::Result<(Summary, Vec<(String, PathBuf)>)> {
    let mut summary = Summary::new("remove_bg");
    let rb = &cfg.params.preprocessing.remove_background;
    let mut listed: Vec<(String, PathBuf, Vec<PathBuf>)> = Vec::new();
    for (name, dir) in types {
        match list_images(dir) {
            Ok(files) if files.is_empty() => summary.fail(
                dir,
                format!("{}: no images in folder (type {name})", dir.display()),
            ),
            Ok(files) => listed.push((name.clone(), dir.clone(), files)),
            Err(e) => summary.fail(dir, e),
        }
    }
    let total: usize = listed.iter().map(|(_, _, f)| f.len()).sum();
    if total == 0 {
        return Ok((summary, Vec::new()));
    }
    let workers = rb.max_workers.min(rayon::current_num_threads()).max(1);
    let remover = choose_remover(cfg, total, workers, &mut summary)?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(workers).build();

    let mut produced = Vec::new();
    for (name, _dir, files) in &listed {
        let log_path = logs_dir(cfg, side, name).join("preprocessing.log");
        if let Err(e) = crate::logging::set_log_file(&log_path) {
            summary.warn(format!("cannot open log file {e}"));
        }
        let dest = out_dir(cfg, side, name, only_mask);
        let result = run_type(
            cfg,
            name,
            files,
            &dest,
            &remover,
            only_mask,
            pool.as_ref().ok(),
            &mut summary,
        );
        crate::logging::close_log_file();
        if result? > 0 {
            produced.push((name.clone(), dest));
        }
    }
    Ok((summary, produced))
}

/// The folder a type's outputs go to.
fn out_dir(cfg: &Config, side: Side, ty: &str, only_mask: bool) -> PathBuf {
    if only_mask {
        cfg.layout
            .dir(side, Folder::PreprocessedImages, Some(ty))
            .join("masks")
    } else {
        cfg.layout.dir(side, Folder::BackgroundRemoved, Some(ty))
    }
}

fn logs_dir(cfg: &Config, side: Side, ty: &str) -> PathBuf {
    cfg.layout.dir(side, Folder::Logs, Some(ty))
}

/// The segmentation in use for a run.
enum Remover {
    Onnx(OnnxRemover),
    Classical,
}

impl Remover {
    fn mask(&self, img: &image::RgbImage) -> Result<GrayImage, BackgroundError> {
        match self {
            Remover::Onnx(m) => m.mask(img),
            Remover::Classical => classical::segment(img).map(|(mask, rep)| {
                log::debug!(
                    "classical: scale 1/{}, {} background colour(s), threshold {:.1} (edge {:.1}), part {:.1} % of the photo",
                    rep.scale,
                    rep.prototypes.len(),
                    rep.threshold,
                    rep.edge_threshold,
                    rep.foreground_share * 100.0
                );
                mask
            }),
        }
    }
}

/// The output file name of the `index`-th photo (in sorted order) of type `ty`:
/// `<type>_<index:03>_<suffix>.png` with `rename_images`, else `<stem>_<suffix>.png`.
pub fn output_name(ty: &str, index: usize, photo: &Path, rename: bool, suffix: &str) -> String {
    if rename {
        format!("{ty}_{index:03}_{suffix}.png")
    } else {
        let stem = photo
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{stem}_{suffix}.png")
    }
}

/// One photo's outcome: the output written and the photo's size, or an error naming the file.
type Outcome = Result<(PathBuf, (u32, u32)), String>;

#[allow(clippy::too_many_arguments)]
fn run_type(
    cfg: &Config,
    name: &str,
    files: &[PathBuf],
    dest: &Path,
    remover: &Remover,
    only_mask: bool,
    pool: Option<&rayon::ThreadPool>,
    summary: &mut Summary,
) -> anyhow::Result<usize> {
    let pp = &cfg.params.preprocessing;
    let rb = &pp.remove_background;
    let suffix = if only_mask { "mask" } else { "no_bg" };
    let mut names: Vec<Option<String>> = Vec::with_capacity(files.len());
    let mut seen = HashSet::new();
    for (i, f) in files.iter().enumerate() {
        let out = output_name(name, i, f, pp.rename_images, suffix);
        if seen.insert(out.clone()) {
            names.push(Some(out));
        } else {
            summary.fail(
                f,
                format!(
                    "{}: its output {out} would overwrite another photo's (same file stem); rename it or set rename_images: True",
                    f.display()
                ),
            );
            names.push(None);
        }
    }
    crate::io::atomic::create_dir_all(dest)?;
    // Until this run's record is written, the folder counts as incomplete.
    crate::io::stage::start(dest)?;
    log::info!(
        "remove_bg {name}: {} photo(s) -> {}",
        files.len(),
        dest.display()
    );
    let bar = crate::logging::progress(files.len() as u64, &format!("remove_bg {name}"));
    let work = |(f, out): (&PathBuf, &Option<String>)| -> Option<Outcome> {
        let out = out.as_ref()?;
        let r = process_one(
            f,
            &dest.join(out),
            remover,
            rb.post_process_mask,
            rb.cutout,
            only_mask,
        );
        bar.inc(1);
        Some(r)
    };
    let outcomes: Vec<Option<Outcome>> = match pool {
        Some(p) => p.install(|| files.par_iter().zip(&names).map(work).collect()),
        None => files.par_iter().zip(&names).map(work).collect(),
    };
    bar.finish_and_clear();

    let mut written = HashSet::new();
    let mut failed: Vec<String> = Vec::new();
    let mut first_size: Option<(u32, u32)> = None;
    let mut odd: Vec<String> = Vec::new();
    for (f, o) in files.iter().zip(outcomes) {
        if !matches!(o, Some(Ok(_))) {
            failed.push(f.display().to_string());
        }
        match o {
            None => {}
            Some(Ok((out, size))) => {
                summary.processed += 1;
                summary.output(&out);
                written.insert(out);
                match first_size {
                    None => first_size = Some(size),
                    Some(s) if s != size => odd.push(format!(
                        "{} ({}x{})",
                        f.file_name().unwrap_or_default().to_string_lossy(),
                        size.0,
                        size.1
                    )),
                    Some(_) => {}
                }
            }
            Some(Err(e)) => summary.fail(f, e),
        }
    }
    if let (Some(s), false) = (first_size, odd.is_empty()) {
        summary.warn(format!(
            "remove_bg {name}: {} photo(s) differ in size from the first ({}x{}): {}; outputs keep each photo's size (align them, or make_input will refuse the odd ones)",
            odd.len(),
            s.0,
            s.1,
            odd.join(", ")
        ));
    }
    remove_stale(dest, suffix, &written);
    let mut outputs: Vec<String> = written
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    outputs.sort();
    crate::io::stage::finish(
        dest,
        &crate::io::stage::StageRecord {
            stage: "remove_bg".into(),
            version: crate::VERSION.into(),
            finished: crate::logging::utc_now(),
            config_hash: cfg.hash.clone(),
            inputs: files.len(),
            photos: files.len(),
            outputs,
            failed,
        },
    )?;
    Ok(written.len())
}

/// Deletes outputs of an earlier run (files named `*_<suffix>.png` in pixal's own output folder)
/// that this run did not write, so the next stage does not read photos that are gone.
fn remove_stale(dest: &Path, suffix: &str, written: &HashSet<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dest) else {
        return;
    };
    let tail = format!("_{suffix}.png");
    let mut removed = 0;
    for e in rd.filter_map(|e| e.ok()) {
        let p = e.path();
        let is_ours = p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with(&tail));
        if is_ours && p.is_file() && !written.contains(&p) && std::fs::remove_file(&p).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        log::info!(
            "removed {removed} output(s) of an earlier run from {} (their photos are gone or failed)",
            dest.display()
        );
    }
}

fn process_one(
    photo: &Path,
    out: &Path,
    remover: &Remover,
    post_process: bool,
    style: background::Cutout,
    only_mask: bool,
) -> Outcome {
    let rgb = load_rgb8(photo).map_err(|e| e.to_string())?;
    let mask = remover
        .mask(&rgb)
        .map_err(|e| format!("{}: {e}", photo.display()))?;
    let mask = if post_process {
        background::post_process_mask(&mask)
    } else {
        mask
    };
    let saved = if only_mask {
        save_png(&mask, out)
    } else {
        save_png(&background::cutout(&rgb, &mask, style), out)
    };
    saved.map_err(|e| format!("{}: {e}", photo.display()))?;
    Ok((out.to_path_buf(), rgb.dimensions()))
}

/// Picks the method: the ONNX model when asked for (or found, with `auto`), else classical.
fn choose_remover(
    cfg: &Config,
    images: usize,
    workers: usize,
    summary: &mut Summary,
) -> anyhow::Result<Remover> {
    let rb = &cfg.params.preprocessing.remove_background;
    let params = cfg.dir.join("parameters.yaml");
    match rb.method {
        Method::Classical => {
            log::info!("remove_bg: classical colour segmentation (method: classical)");
            Ok(Remover::Classical)
        }
        Method::Onnx => match load_onnx(cfg, images, workers) {
            Ok(r) => Ok(Remover::Onnx(r)),
            Err(why) => Err(UsageError(format!(
                "remove_bg (method: onnx in {}): {why}",
                params.display()
            ))
            .into()),
        },
        Method::Auto => {
            // One warning per run: validate calls this once per type, and a model that could
            // not be found or downloaded for the first type will not appear for the next.
            let mut fell_back = AUTO_FALLBACK.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(why) = fell_back.as_ref() {
                log::debug!("remove_bg: classical colour segmentation ({why})");
                return Ok(Remover::Classical);
            }
            match load_onnx(cfg, images, workers) {
                Ok(r) => Ok(Remover::Onnx(r)),
                Err(why) => {
                    summary.warn(format!(
                        "remove_bg: using the classical colour segmentation, because {why} (set preprocessing.remove_background.method: classical in {} to silence this)",
                        params.display()
                    ));
                    *fell_back = Some(why);
                    Ok(Remover::Classical)
                }
            }
        }
    }
}

/// Why `method: auto` fell back to the classical method earlier in this process, if it did.
static AUTO_FALLBACK: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
