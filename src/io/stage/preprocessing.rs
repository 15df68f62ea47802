//! `metadata/preprocessing.yaml`, make_input's record beside `out.npz`: the settings it was
//! made with, the crop box, the source of every row (photo, crop box, homography) and the
//! SHA-256 of the npz. train, detect and validate read it instead of today's configuration, so
//! a model is always used with the data layout it was trained on.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::io::IoError;
use crate::types::{Channel, CropBox};

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
    /// The make_input settings used (`ALL` expanded).
    pub preprocessor: PreprocessorSettings,
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
        if crate::io::sha256_file(npz)? != *want {
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

/// `preprocessor:` of `preprocessing.yaml`: the make_input settings a file was made with, so
/// later stages use the file's own channels, weights and pool size, not today's configuration.
/// It is written with the keys and spelling of `preprocessing.preprocessor` in
/// `parameters.yaml` (channel names as the original spells them, `ALL` expanded).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PreprocessorSettings {
    /// Name of the ML input file.
    pub file_name: String,
    /// Average-pooling block size, in pixels (pixel counts are `u32` here, as in the image
    /// sizes and the [`CropBox`]).
    pub pool_size: u32,
    /// The feature channels, in the order of the data's last axis.
    pub channels: Vec<Channel>,
    /// One loss weight per channel (the configuration's `f32` weights, widened: the file has
    /// always held the widened values).
    pub weights: Vec<f64>,
    /// The images were cropped to the union foreground box.
    pub zero_pruning: bool,
    /// Padding around the foreground box, in pixels.
    pub zero_pruning_padding: u32,
    /// A pixel is foreground when any channel exceeds this.
    pub bg_threshold: u8,
    /// Every photo's channels were fitted to the training reference inside the part.
    pub photometric_normalization: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::metadata::{read_yaml, write_yaml};

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
            preprocessor: PreprocessorSettings {
                file_name: "out.npz".into(),
                pool_size: 2,
                channels: vec![Channel::LabA, Channel::LabB],
                weights: vec![3.0, 0.10000000149011612],
                zero_pruning: true,
                zero_pruning_padding: 5,
                bg_threshold: 15,
                photometric_normalization: true,
            },
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

    #[test]
    fn settings_keep_the_configs_yaml_shape() {
        // The exact text the file has always held (the configuration's keys, channel names as
        // the original spells them, f32 weights widened), so older files read and new files
        // compare byte for byte.
        let t = PreprocessorSettings {
            file_name: "out.npz".into(),
            pool_size: 2,
            channels: vec![Channel::LabA, Channel::LabB],
            weights: vec![3.0, f64::from(0.1f32)],
            zero_pruning: true,
            zero_pruning_padding: 5,
            bg_threshold: 15,
            photometric_normalization: true,
        };
        let text = serde_saphyr::to_string(&t).unwrap();
        assert_eq!(
            text,
            "file_name: out.npz\npool_size: 2\nchannels:\n- LAB_a\n- LAB_b\nweights:\n- 3.0\n- 0.10000000149011612\nzero_pruning: true\nzero_pruning_padding: 5\nbg_threshold: 15\nphotometric_normalization: true\n"
        );
        let back: PreprocessorSettings = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back, t);
        let bad = text.replace("LAB_b", "LAB_x");
        let e = serde_saphyr::from_str::<PreprocessorSettings>(&bad).unwrap_err();
        assert!(e.to_string().contains("unknown channel `LAB_x`"), "{e}");
    }
}
