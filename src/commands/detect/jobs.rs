//! Which inputs `pixal detect` works on: the preprocessed `out.npz` of each type (or of all
//! types, one-hot) under a validate component folder, and the per-row sources and geometry its
//! metadata records.

use std::path::{Path, PathBuf};

use crate::commands::UsageError;
use crate::config::Config;
use crate::detect::maps::Geometry;
use crate::io::metadata::{PreprocessingMetadata, RowSource};

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
    } else {
        let dirs = crate::io::subfolder_names(root)
            .into_iter()
            .map(|n| root.join(n))
            .filter(|d| d.join(file).is_file());
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

/// The source of each of the `n` rows of the npz: the metadata's rows when there is one per
/// row, else rows built from its file list, row types, crop box and image size (no
/// homography: the map is placed on the image make_input read).
pub(super) fn rows(meta: &PreprocessingMetadata, n: usize) -> Vec<RowSource> {
    if meta.rows.len() == n {
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
    }
}

/// Where a row's pooled map came from: the pooled grid `shape` at pool size `pool`, and the
/// row's crop box, frame, homography and photo size.
pub(super) fn geometry(row: &RowSource, shape: (usize, usize), pool: usize) -> Geometry {
    Geometry {
        pooled: shape,
        pool,
        crop: row.crop_box,
        frame: (row.frame[0], row.frame[1]),
        homography: row.homography,
        photo: (row.photo_size[0], row.photo_size[1]),
    }
}
