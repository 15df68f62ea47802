//! Metadata files: YAML records written beside every stage's outputs (what was done, with which
//! settings, on which files, by which version), read back by later stages.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{IoError, atomic};
use crate::config::raw::RawPreprocessor;
use crate::types::CropBox;

/// `metadata/preprocessing.yaml`: how make_input turned images into `out.npz`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PreprocessingMetadata {
    /// Always `pixal`.
    pub tool: String,
    /// pixal's version.
    pub version: String,
    /// SHA-256 of the configuration files.
    pub config_hash: String,
    /// `per_type` or `one_hot`.
    pub mode: String,
    /// The image types in this file (one in per-type mode; label order in one-hot mode).
    pub types: Vec<String>,
    /// The make_input settings used (channels spelled as in the config, `ALL` expanded).
    pub preprocessor: RawPreprocessor,
    /// The crop box applied to every image (absent without zero pruning).
    pub crop_box: Option<CropBox>,
    /// Width and height of the input images.
    pub image_size: [u32; 2],
    /// Pooled (height, width).
    pub pooled_shape: [usize; 2],
    /// Values per image: pooled pixels x channels.
    pub input_dim: usize,
    /// The source image of every row of `data`, in order.
    pub files: Vec<String>,
    /// The type of every row of `data`, in order.
    pub row_types: Vec<String>,
    /// The alignment reference image, when alignment ran.
    pub reference_image: Option<String>,
    /// The ML input file, relative to the type folder.
    pub npz: String,
    /// Where every row of `data` came from, in order (photo, crop box, homography), so anomaly
    /// maps can be drawn back onto the photo.
    #[serde(default)]
    pub rows: Vec<RowSource>,
    /// SHA-256 of the npz this file describes: make_input writes the npz first and this file
    /// last, so a later stage can tell an npz from another (or an interrupted) run.
    #[serde(default)]
    pub npz_sha256: Option<String>,
}

impl PreprocessingMetadata {
    /// Checks that `npz` is the file this metadata (read from `meta_path`) describes.
    pub fn verify_npz(&self, npz: &Path, meta_path: &Path) -> Result<(), IoError> {
        let bad = |reason: String| IoError::Metadata {
            path: meta_path.to_path_buf(),
            reason,
        };
        let Some(want) = &self.npz_sha256 else {
            return Err(bad(format!(
                "it records no npz_sha256, so it cannot vouch for {} (written by an older pixal?); run make_input again",
                npz.display()
            )));
        };
        if super::sha256_file(npz)? != *want {
            return Err(bad(format!(
                "{} is not the file this metadata describes (its SHA-256 differs: they come from different make_input runs, e.g. one was interrupted); run make_input again",
                npz.display()
            )));
        }
        Ok(())
    }
}

/// The provenance of one row of `data`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RowSource {
    /// The image make_input read.
    pub file: String,
    /// The original photo (the same file when no earlier stage ran).
    pub photo: String,
    /// The image type.
    pub type_name: String,
    /// This row's crop box (at validation, the stored box re-centred on this image).
    pub crop_box: Option<CropBox>,
    /// Homography from the photo to the reference frame (row-major), when it was aligned.
    pub homography: Option<[f64; 9]>,
    /// Width and height of the image make_input read (the reference frame when aligned).
    pub frame: [u32; 2],
    /// Width and height of the original photo.
    pub photo_size: [u32; 2],
}

/// Writes any serialisable record as YAML, atomically.
pub fn write_yaml<T: Serialize>(path: &Path, value: &T) -> Result<(), IoError> {
    let text = serde_saphyr::to_string(value).map_err(|e| IoError::Encode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    atomic::write_bytes(path, text.as_bytes())
}

/// Reads a YAML record.
pub fn read_yaml<T: DeserializeOwned>(path: &Path) -> Result<T, IoError> {
    let text = std::fs::read_to_string(path).map_err(|source| IoError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_saphyr::from_str(&text).map_err(|e| IoError::Metadata {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preprocessing_metadata_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metadata/preprocessing.yaml");
        let m = PreprocessingMetadata {
            tool: "pixal".into(),
            version: crate::VERSION.into(),
            config_hash: "abc".into(),
            mode: "per_type".into(),
            types: vec!["front".into()],
            preprocessor: RawPreprocessor::default(),
            crop_box: Some(CropBox {
                y_min: 1,
                y_max: 9,
                x_min: 2,
                x_max: 8,
                padding: 5,
            }),
            image_size: [10, 12],
            pooled_shape: [4, 3],
            input_dim: 24,
            files: vec!["a.png".into(), "b: c.png".into()],
            row_types: vec!["front".into(), "front".into()],
            reference_image: None,
            npz: "out.npz".into(),
            npz_sha256: Some("ab".repeat(32)),
            rows: vec![RowSource {
                file: "a.png".into(),
                photo: "raw/a.jpg".into(),
                type_name: "front".into(),
                crop_box: None,
                homography: Some([1.0, 0.0, 2.5, 0.0, 1.0, -1.0, 0.0, 0.0, 1.0]),
                frame: [10, 12],
                photo_size: [10, 12],
            }],
        };
        write_yaml(&p, &m).unwrap();
        let back: PreprocessingMetadata = read_yaml(&p).unwrap();
        assert_eq!(back, m);
    }
}
