//! `pixal validate`: new photos are preprocessed exactly as the training images were (the
//! stored crop box re-centred, the same channels, pool size and scaling; background removal and
//! alignment to the training reference when they are configured), then `detect` runs on them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::align;
use super::make_input::{Provenance, Target, build};
use super::remove_bg;
use super::{Summary, UsageError, detect, discover_types};
use crate::config::Config;
use crate::config::paths::{Folder, Side};
use crate::io::metadata::{PreprocessingMetadata, read_yaml};

/// The images validated together: one type, or all types for the one-hot model (`None`).
type Group = (Option<String>, Vec<(String, PathBuf)>);

/// Runs validation on `input`: a folder of type folders, a folder of images (one type), or one
/// image file with `image_type`.
pub fn run(
    cfg: &Config,
    input: Option<&Path>,
    image_type: Option<&str>,
    truth: Option<&Path>,
) -> anyhow::Result<Summary> {
    let Some(input) = input else {
        return Err(UsageError("validate needs -i PATH: a folder with one sub-folder of new photos per type, or one photo with --type NAME".into()).into());
    };
    if let Some(t) = image_type {
        check_type_name(cfg, t)?;
    }
    let types: Vec<(String, PathBuf)> = if input.is_file() {
        let Some(t) = image_type else {
            return Err(UsageError(format!(
                "{}: a single image needs --type NAME (the trained type to compare it with)",
                input.display()
            ))
            .into());
        };
        vec![(t.to_string(), input.to_path_buf())]
    } else {
        let mut t = discover_types(input)?;
        if let Some(only) = image_type {
            t.retain(|(n, _)| n == only);
            if t.is_empty() {
                return Err(
                    UsageError(format!("{}: no sub-folder named {only}", input.display())).into(),
                );
            }
        }
        t
    };
    let mut summary = Summary::new("validate");
    let one_hot = cfg.params.model_training.one_hot_encoding;
    let groups: Vec<Group> = if one_hot {
        vec![(None, types)]
    } else {
        types
            .into_iter()
            .map(|t| (Some(t.0.clone()), vec![t]))
            .collect()
    };
    for (ty, sources) in groups {
        let label = ty.clone().unwrap_or_else(|| "all types".into());
        match validate_group(cfg, ty.as_deref(), &sources, truth, &mut summary) {
            Ok(()) => {}
            Err(e) => {
                let dir = sources.first().map(|s| s.1.clone()).unwrap_or_default();
                summary.fail(&dir, format!("validate {label}: {}", super::error_text(&e)));
            }
        }
    }
    detect::write_index(cfg.layout.validate_component_root(), truth, &mut summary);
    Ok(summary)
}

fn validate_group(
    cfg: &Config,
    ty: Option<&str>,
    sources: &[(String, PathBuf)],
    truth: Option<&Path>,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let train_meta_path = cfg
        .layout
        .dir(Side::Model, Folder::Metadata, ty)
        .join("preprocessing.yaml");
    let train_meta: PreprocessingMetadata = read_yaml(&train_meta_path).with_context(|| {
        format!(
            "reading the training metadata of {} (preprocess and train this type first)",
            ty.unwrap_or("the one-hot model")
        )
    })?;
    check_same_settings(cfg, &train_meta, &train_meta_path)?;
    // A missing model is found before any photo is preprocessed.
    let model_cfg = cfg.layout.model(ty).join(crate::model::MODEL_CONFIG_FILE);
    if !model_cfg.is_file() {
        return Err(anyhow::anyhow!(
            "no trained model for {} ({} is missing); run `pixal train` first",
            ty.unwrap_or("the one-hot model"),
            model_cfg.display()
        ));
    }
    let label_types = ty.is_none().then(|| train_meta.types.clone());
    let mut target = Target::validation(cfg, ty, train_meta.crop_box, label_types);
    let train_npz = cfg
        .layout
        .type_root(ty)
        .join(&cfg.params.preprocessing.preprocessor.file_name);
    target.part = crate::io::npz::read_part(&train_npz).with_context(|| {
        format!(
            "reading the part mask of the training input {}",
            train_npz.display()
        )
    })?;
    let mut prepared = Vec::new();
    for (name, src) in sources {
        let (folder, prov) = prepare(cfg, name, src, summary)?;
        target.provenance.extend(prov);
        prepared.push((name.clone(), folder));
    }
    // Images are counted once, by detect.
    let before = summary.processed;
    let built = build(cfg, &target, &prepared, summary)?;
    summary.processed = before;
    let Some(built) = built else {
        return Ok(());
    };
    let job = detect::DetectJob {
        ty: ty.map(str::to_string),
        npz: built.npz,
        metadata: target.metadata_dir.join("preprocessing.yaml"),
        out_dir: target.root.clone(),
    };
    detect::detect_job(cfg, &job, truth, summary)?;
    Ok(())
}

/// The types with a trained model (a `model_config.json`), sorted.
pub fn trained_types(cfg: &Config) -> Vec<String> {
    let root = cfg.layout.component_root();
    crate::io::subfolder_names(root)
        .into_iter()
        .filter(|n| {
            cfg.layout
                .model(Some(n))
                .join(crate::model::MODEL_CONFIG_FILE)
                .is_file()
        })
        .collect()
}

/// `--type` is a name, never a path (a path would send the outputs into the training tree):
/// no separators, no `.`/`..`, no leading dot; in per-type mode it must be a trained type.
fn check_type_name(cfg: &Config, t: &str) -> anyhow::Result<()> {
    let plain = !t.is_empty()
        && !t.starts_with('.')
        && !t.contains(['/', '\\', '\0'])
        && std::path::Path::new(t).components().count() == 1;
    if !plain {
        return Err(UsageError(format!(
            "--type {t:?}: a type is a plain name such as `front` (no path separators, no leading dot or `..`)"
        ))
        .into());
    }
    if cfg.params.model_training.one_hot_encoding {
        return Ok(());
    }
    let trained = trained_types(cfg);
    if !trained.iter().any(|n| n == t) {
        return Err(UsageError(format!(
            "--type {t}: no trained model of that type under {}; trained types: {}",
            cfg.layout.component_root().display(),
            if trained.is_empty() {
                "none (run `pixal train` first)".to_string()
            } else {
                trained.join(", ")
            }
        ))
        .into());
    }
    Ok(())
}

/// Refuses validation when the configuration's make_input settings differ from those the model
/// was trained with (the pooled grid or channels would not match).
fn check_same_settings(
    cfg: &Config,
    meta: &PreprocessingMetadata,
    path: &Path,
) -> anyhow::Result<()> {
    let pp = &cfg.params.preprocessing.preprocessor;
    let now: Vec<String> = pp.channels.iter().map(|c| c.name().to_string()).collect();
    let then: Vec<String> = meta
        .preprocessor
        .channels
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    if now != then || pp.pool_size != meta.preprocessor.pool_size as usize {
        return Err(UsageError(format!(
            "the configuration's channels {now:?} / pool_size {} differ from the training ones {then:?} / {} recorded in {}",
            pp.pool_size,
            meta.preprocessor.pool_size,
            path.display()
        ))
        .into());
    }
    Ok(())
}

/// Runs the preprocessing stages before make_input on one type's new photos (background
/// removal into the validate tree, then alignment to the training reference when it is on) and
/// returns the folder make_input reads, with each of its files' photo and homography.
fn prepare(
    cfg: &Config,
    ty: &str,
    src: &Path,
    summary: &mut Summary,
) -> anyhow::Result<(PathBuf, HashMap<PathBuf, Provenance>)> {
    // A single photo is copied into the validate tree (the user's file is never touched), so
    // every stage works on a folder.
    let user_photo = src.is_file().then(|| src.to_path_buf());
    let src = if src.is_file() {
        let stage = cfg.layout.validate_type_root(Some(ty)).join("input");
        crate::io::atomic::create_dir_all(&stage)?;
        let name = src
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        let bytes =
            std::fs::read(src).with_context(|| format!("{}: cannot read", src.display()))?;
        crate::io::atomic::write_bytes(&stage.join(&name), &bytes)?;
        stage
    } else {
        src.to_path_buf()
    };
    let photos = crate::io::image::list_images(&src)?;
    let before = summary.processed;
    let (removed, folders) =
        remove_bg::run_types(cfg, &[(ty.to_string(), src.clone())], Side::Validate, false)?;
    summary.absorb(removed);
    summary.processed = before;
    let Some((_, bg_dir)) = folders.into_iter().next() else {
        return Err(anyhow::anyhow!(
            "no photo of {} came through background removal",
            src.display()
        ));
    };
    // Background removal keeps each photo's (oriented) size, so its outputs stand for the photos.
    let mut by_output: HashMap<PathBuf, Provenance> = HashMap::new();
    for (i, photo) in photos.iter().enumerate() {
        let out = bg_dir.join(remove_bg::output_name(
            ty,
            i,
            photo,
            cfg.params.preprocessing.rename_images,
            "no_bg",
        ));
        if let Ok(size) = image::image_dimensions(&out) {
            by_output.insert(
                out,
                Provenance {
                    // The user's own path, not the internal copy, so results name their file.
                    photo: user_photo.clone().unwrap_or_else(|| photo.clone()),
                    homography: None,
                    photo_size: size,
                },
            );
        }
    }
    if !cfg.params.preprocessing.alignment.apply_alignment {
        return Ok((bg_dir, by_output));
    }
    let before = summary.processed;
    let (aligned_dir, rows) = align::align_validation_type(cfg, ty, &bg_dir, summary)?;
    summary.processed = before;
    let mut prov = HashMap::new();
    for row in rows {
        let Some(p) = by_output.get(Path::new(&row.source)) else {
            continue;
        };
        prov.insert(
            aligned_dir.join(&row.image),
            Provenance {
                photo: p.photo.clone(),
                homography: Some(row.homography),
                photo_size: p.photo_size,
            },
        );
    }
    Ok((aligned_dir, prov))
}
