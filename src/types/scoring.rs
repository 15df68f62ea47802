//! The vocabulary of the `detection:` settings: how pixel scores are made and which thresholds
//! decide the verdicts. The configuration validates them and `detect::score` acts on them.

use serde::Serialize;

/// How pixel scores are made from residuals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scoring {
    /// The mean squared residual (what the original thresholds).
    Raw,
    /// Squared z-scores against the out-of-fold residuals of the training photos.
    Standardized,
}

/// Which thresholds decide the verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdMode {
    /// The original's `plotting.loss_cut` (with `use_log_loss`) on the raw error.
    LossCut,
    /// Calibrated on the training photos' out-of-fold residuals.
    Auto,
}
