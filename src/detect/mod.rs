//! Detection: anomaly scores from a trained model's error maps, thresholds, the verdicts they
//! give, maps back to the photo, and metrics against ground truth when it is given.
//!
//! `decide` is the pure core (plain data in, typed verdicts out); `truth` finds ground-truth
//! masks; the command (`commands::detect`) finds jobs, calls these and writes the files.

pub mod decide;
pub mod error;
pub mod finite;
pub mod maps;
pub mod metrics;
pub mod score;
pub mod truth;

pub use decide::{Detector, ImageData, Judgement, ThresholdOrigin, Thresholds, Verdict};
pub use error::DetectError;
pub use truth::MaskIndex;
