//! The one error type of detection's core: what went wrong with one image's numbers, its
//! geometry, the thresholds, or the ground truth, with the values needed to act on it. The
//! command edge adds which file and folder it was reading.

use std::path::PathBuf;

use super::finite::NonFinite;
use crate::io::IoError;

/// Errors of detection's core: the per-image decision and the ground-truth lookup.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// An image's residuals, score map or image score hold NaN or infinity: no verdict is
    /// given (a NaN compares as "not above the threshold", which would read as good).
    #[error(transparent)]
    NotFinite(#[from] NonFinite),
    /// An array that does not cover the pooled grid it is scored on.
    #[error("{what} has {found} pooled pixel(s) but the grid is {}x{} ({expected})", grid.0, grid.1)]
    Shape {
        /// Which array (`residuals`, `error map`).
        what: &'static str,
        /// Its pooled pixels.
        found: usize,
        /// The grid's pooled pixels.
        expected: usize,
        /// The grid (height, width).
        grid: (usize, usize),
    },
    /// A size of the geometry outside what pixal reads as an image: a map of that size would
    /// be allocated (a damaged metadata file could otherwise ask for terabytes).
    #[error(
        "{what} {width}x{height}, outside 1..={max} pixels per side; the metadata is damaged (run validate again)"
    )]
    Size {
        /// `photo_size` or `frame`.
        what: &'static str,
        /// The width given.
        width: u32,
        /// The height given.
        height: u32,
        /// The largest side pixal reads.
        max: u32,
    },
    /// A threshold that is not a finite number: every comparison with it would be false, and
    /// every photo would come out good.
    #[error(
        "the {which} threshold is {value}, not a finite number, so no verdict can be given (check plotting.loss_cut)"
    )]
    Threshold {
        /// `pixel` or `image`.
        which: &'static str,
        /// The threshold.
        value: f64,
    },
    /// The ground-truth folder given does not exist.
    #[error("{}: ground-truth folder does not exist", dir.display())]
    NoTruthFolder {
        /// The folder.
        dir: PathBuf,
    },
    /// No photo of the run finds its mask in the ground-truth folder: metrics computed as if
    /// every photo were good would be silently wrong.
    #[error(transparent)]
    NoMaskMatches(Box<NoMaskMatch>),
    /// A mask file that cannot be read as an image.
    #[error(transparent)]
    MaskUnreadable(#[from] IoError),
    /// A mask whose size is not the photo's.
    #[error("{}: mask is {}x{} but the photo is {}x{}", path.display(), mask.0, mask.1, photo.0, photo.1)]
    MaskSize {
        /// The mask file.
        path: PathBuf,
        /// Its (width, height).
        mask: (u32, u32),
        /// The photo's (width, height).
        photo: (u32, u32),
    },
}

impl DetectError {
    /// Whether the error is in how pixal was called (a ground-truth folder that is missing or
    /// matches no photo), which the command edge reports as a usage error (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            DetectError::NoTruthFolder { .. } | DetectError::NoMaskMatches(_)
        )
    }
}

/// No photo of a run finds its mask in the ground-truth folder; says what was looked for.
#[derive(Debug, thiserror::Error)]
#[error(
    "--truth {dir}: no ground-truth mask matches any of the {photos} photo(s); for {photo} pixal looks for {dir}/{stem}_mask.png, {dir}/{stem}_defect.png, {dir}/{type_name}/{stem}_mask.png or the MVTec layout {dir}/<defect folder>/{stem}_mask.png; {there}",
    dir = dir.display(),
    there = if examples.is_empty() {
        "the folder holds no *_mask.png or *_defect.png at all".to_string()
    } else {
        format!("it holds e.g. {}", examples.join(", "))
    }
)]
pub struct NoMaskMatch {
    /// The ground-truth folder.
    pub dir: PathBuf,
    /// How many photos looked for a mask.
    pub photos: usize,
    /// The first photo.
    pub photo: String,
    /// Its type.
    pub type_name: String,
    /// Its file stem (what mask names must start with).
    pub stem: String,
    /// A few mask files the folder does hold (empty: none).
    pub examples: Vec<String>,
}
