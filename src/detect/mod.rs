//! Detection: anomaly scores from a trained model's error maps, thresholds, maps back to the
//! photo, and metrics against ground truth when it is given.

pub mod finite;
pub mod maps;
pub mod metrics;
pub mod score;
