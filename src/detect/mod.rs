//! Detection: anomaly scores from a trained model's error maps, thresholds, the verdicts they
//! give, maps back to the photo, and metrics against ground truth when it is given.
//!
//! `decide` (thresholds and verdicts) and `judge` (one image through score, decide and maps)
//! are the pure core: plain data in, typed verdicts out, errors in [`DetectError`]. `truth`
//! finds ground-truth masks. The command (`commands::detect`) finds jobs, calls these and
//! writes the files.

pub mod decide;
pub mod error;
pub mod finite;
pub mod judge;
pub mod maps;
pub mod metrics;
pub mod score;
pub mod truth;

pub use decide::{ThresholdOrigin, Thresholds, Verdict};
pub use error::DetectError;
pub use judge::{Detector, ImageData, Judgement};
pub use truth::MaskIndex;
