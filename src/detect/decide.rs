//! The decisions of detection, as a pure core: which thresholds a run uses and how they were
//! chosen, which pooled pixels are anomalous, and the verdict on an image. Plain data in,
//! typed results out; no files, no printing, no paths. `judge` applies them to one image; the
//! command (`commands::detect`) finds the jobs, calls the core and writes the files.
//!
//! Fail closed: a NaN or infinite score or threshold is an error, never a good verdict (every
//! comparison with NaN is false, so a NaN would otherwise read as "below the threshold").

use serde::Serialize;

use super::error::DetectError;
use super::finite::ensure_finite;
use super::score::{Calibration, Scoring, ThresholdMode, exceeds_loss_cut};

/// The verdict on one image; written as `good` or `anomalous`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing over the thresholds.
    Good,
    /// Over the image threshold (auto), or a pixel over the loss cut (loss_cut).
    Anomalous,
}

impl Verdict {
    /// `good` or `anomalous`, as the CSV, JSON and report write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Good => "good",
            Verdict::Anomalous => "anomalous",
        }
    }

    /// Whether this is [`Verdict::Anomalous`].
    pub fn is_anomalous(self) -> bool {
        self == Verdict::Anomalous
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run's thresholds were chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdOrigin {
    /// `auto` with a calibration: the calibrated pixel quantile on the score map, and the
    /// Gumbel image threshold on the image score.
    Calibrated,
    /// `loss_cut`: the configured cut on the raw model error (log10 values with
    /// `use_log_loss`); an image is anomalous when any pooled pixel is.
    LossCut,
    /// `auto` without a calibration: the configured loss cut is used as the pixel threshold on
    /// the score map, and an image is anomalous when any pooled pixel is. (The command always
    /// calibrates in `auto` mode or stops, so this is the core's answer to a caller that does
    /// not.)
    AutoWithoutCalibration,
}

/// The threshold settings of a run, as the configuration gives them.
#[derive(Debug, Clone, Copy)]
pub struct ThresholdSettings {
    /// `auto` or `loss_cut`.
    pub mode: ThresholdMode,
    /// How pixel scores are made (reported with the thresholds).
    pub scoring: Scoring,
    /// The original's `plotting.loss_cut`.
    pub loss_cut: f64,
    /// The original's `plotting.use_log_loss`: loss_cut compares log10 values.
    pub use_log_loss: bool,
    /// Share of good photos the automatic image threshold may flag (reported).
    pub false_positive_rate: f64,
}

/// Whether a run needs a calibration: automatic thresholds come from it, and standardized
/// scores need its per-(pixel, channel) statistics.
pub fn needs_calibration(mode: ThresholdMode, scoring: Scoring) -> bool {
    mode == ThresholdMode::Auto || scoring == Scoring::Standardized
}

/// The thresholds a run used (written as `thresholds` in `summary.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Thresholds {
    /// `auto` or `loss_cut`.
    pub mode: ThresholdMode,
    /// `standardized` or `raw`.
    pub scoring: Scoring,
    /// Pixel threshold on the score (auto) or on the raw error (loss_cut).
    pub pixel: f64,
    /// Image threshold on the image score (auto); loss_cut: an image is anomalous when any
    /// pixel is.
    pub image: Option<f64>,
    /// Whether loss_cut compares log10 values (`use_log_loss`).
    pub use_log_loss: bool,
    /// Share of good photos the automatic image threshold may flag.
    pub false_positive_rate: f64,
    /// Calibration on the held-out good images of training.
    pub calibration: Option<Calibration>,
}

impl Thresholds {
    /// The thresholds of `settings`: in `auto` mode with a calibration, the calibrated pixel
    /// and image thresholds; otherwise the loss cut as the pixel threshold and no image
    /// threshold (an image is anomalous when any pixel is). A threshold that is not a finite
    /// number is an error.
    pub fn choose(
        settings: &ThresholdSettings,
        calibration: Option<Calibration>,
    ) -> Result<Thresholds, DetectError> {
        let (pixel, image) = match (settings.mode, &calibration) {
            (ThresholdMode::Auto, Some(cal)) => (cal.pixel_threshold, Some(cal.image_threshold)),
            _ => (settings.loss_cut, None),
        };
        let t = Thresholds {
            mode: settings.mode,
            scoring: settings.scoring,
            pixel,
            image,
            use_log_loss: settings.use_log_loss,
            false_positive_rate: settings.false_positive_rate,
            calibration,
        };
        t.check()?;
        Ok(t)
    }

    /// Refuses thresholds that are not finite numbers.
    fn check(&self) -> Result<(), DetectError> {
        for (which, value) in [("pixel", Some(self.pixel)), ("image", self.image)] {
            if let Some(value) = value
                && !value.is_finite()
            {
                return Err(DetectError::Threshold { which, value });
            }
        }
        Ok(())
    }

    /// How these thresholds were chosen.
    pub fn origin(&self) -> ThresholdOrigin {
        match (self.mode, &self.calibration) {
            (ThresholdMode::LossCut, _) => ThresholdOrigin::LossCut,
            (ThresholdMode::Auto, Some(_)) => ThresholdOrigin::Calibrated,
            (ThresholdMode::Auto, None) => ThresholdOrigin::AutoWithoutCalibration,
        }
    }

    /// Whether one pooled pixel is anomalous: in `auto` mode its score is at or above the
    /// pixel threshold; in `loss_cut` mode its raw error is at or above the cut (log10 values
    /// with `use_log_loss`). A NaN is never anomalous here: [`super::judge::Detector::judge`] refuses
    /// non-finite maps before it counts.
    pub fn pixel_is_anomalous(&self, score: f32, error: f32) -> bool {
        match self.mode {
            ThresholdMode::Auto => score >= self.pixel as f32,
            ThresholdMode::LossCut => exceeds_loss_cut(error, self.pixel, self.use_log_loss),
        }
    }

    /// The verdict on an image from its image score and its count of anomalous pooled pixels:
    /// with an image threshold (`auto`), the score at or above it; without one, any anomalous
    /// pixel. A score that is not a finite number is an error (fail closed), in every mode.
    pub fn verdict(&self, score: f32, anomalous_pixels: usize) -> Result<Verdict, DetectError> {
        ensure_finite([&score], || "the image score".to_string())?;
        let anomalous = match (self.mode, self.image) {
            (ThresholdMode::Auto, Some(t)) => f64::from(score) >= t,
            _ => anomalous_pixels > 0,
        };
        Ok(if anomalous {
            Verdict::Anomalous
        } else {
            Verdict::Good
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A calibration that only sets the thresholds.
    pub(crate) fn calibration(pixel: f64, image: f64) -> Calibration {
        Calibration {
            images: 3,
            mean: vec![],
            sigma: vec![],
            sigma_floor: vec![],
            image_scores: vec![],
            pixel_threshold: pixel,
            image_threshold: image,
            gumbel: (0.0, 1.0),
        }
    }

    /// Threshold settings with raw scoring.
    pub(crate) fn settings(
        mode: ThresholdMode,
        loss_cut: f64,
        use_log_loss: bool,
    ) -> ThresholdSettings {
        ThresholdSettings {
            mode,
            scoring: Scoring::Raw,
            loss_cut,
            use_log_loss,
            false_positive_rate: 0.02,
        }
    }

    #[test]
    fn every_threshold_mode_chooses_its_thresholds() {
        use ThresholdMode::{Auto, LossCut};
        // (mode, calibration (pixel, image), loss_cut) -> (pixel, image, origin)
        let cases = [
            (
                Auto,
                Some((2.5, 7.0)),
                0.1,
                2.5,
                Some(7.0),
                ThresholdOrigin::Calibrated,
            ),
            (
                Auto,
                None,
                0.1,
                0.1,
                None,
                ThresholdOrigin::AutoWithoutCalibration,
            ),
            (LossCut, None, 0.25, 0.25, None, ThresholdOrigin::LossCut),
            // loss_cut ignores a calibration (standardized scores still need it).
            (
                LossCut,
                Some((2.5, 7.0)),
                0.25,
                0.25,
                None,
                ThresholdOrigin::LossCut,
            ),
            (LossCut, None, 0.0, 0.0, None, ThresholdOrigin::LossCut),
        ];
        for (mode, cal, cut, pixel, image, origin) in cases {
            let cal = cal.map(|(p, i)| calibration(p, i));
            let had_cal = cal.is_some();
            let t = Thresholds::choose(&settings(mode, cut, false), cal).unwrap();
            let case = format!("{mode:?} cal {had_cal} cut {cut}");
            assert_eq!(t.pixel, pixel, "{case}");
            assert_eq!(t.image, image, "{case}");
            assert_eq!(t.origin(), origin, "{case}");
            assert_eq!(t.mode, mode, "{case}");
            assert_eq!(t.calibration.is_some(), had_cal, "{case}");
        }
    }

    #[test]
    fn a_threshold_that_is_not_a_number_is_refused() {
        use ThresholdMode::{Auto, LossCut};
        let cases = [
            (LossCut, None, f64::NAN, "pixel"),
            (LossCut, None, f64::INFINITY, "pixel"),
            (Auto, None, f64::NAN, "pixel"),
            (Auto, Some((f64::NAN, 1.0)), 0.1, "pixel"),
            (Auto, Some((1.0, f64::INFINITY)), 0.1, "image"),
        ];
        for (mode, cal, cut, want) in cases {
            let e = Thresholds::choose(
                &settings(mode, cut, false),
                cal.map(|(p, i)| calibration(p, i)),
            )
            .unwrap_err();
            assert!(
                matches!(e, DetectError::Threshold { which, .. } if which == want),
                "{mode:?} {cut}: {e}"
            );
        }
    }

    #[test]
    fn pixels_are_decided_at_and_around_the_threshold() {
        use ThresholdMode::{Auto, LossCut};
        let auto =
            Thresholds::choose(&settings(Auto, 0.1, false), Some(calibration(2.0, 5.0))).unwrap();
        let fallback = Thresholds::choose(&settings(Auto, 0.1, false), None).unwrap();
        let cut = Thresholds::choose(&settings(LossCut, 0.1, false), None).unwrap();
        let log_cut = Thresholds::choose(&settings(LossCut, 0.1, true), None).unwrap();
        let below = 2.0f32 - 1e-6;
        // (thresholds, score, raw error) -> anomalous
        let cases: [(&Thresholds, f32, f32, bool); 16] = [
            // auto: the score decides, the raw error does not.
            (&auto, 2.0, 0.0, true),
            (&auto, 2.5, 0.0, true),
            (&auto, below, 99.0, false),
            (&auto, 0.0, 0.0, false),
            (&auto, f32::NAN, 0.0, false),
            // auto without calibration: the loss cut on the score.
            (&fallback, 0.1, 0.0, true),
            (&fallback, 0.09, 99.0, false),
            // loss_cut: the raw error decides, the score does not.
            (&cut, 0.0, 0.1, true),
            (&cut, 99.0, 0.09, false),
            (&cut, 0.0, 1.0, true),
            (&cut, 0.0, f32::NAN, false),
            // loss_cut with use_log_loss: log10(error) >= log10(cut); 0 has no log.
            (&log_cut, 0.0, 0.1, true),
            (&log_cut, 0.0, 0.2, true),
            (&log_cut, 0.0, 0.09, false),
            (&log_cut, 0.0, 0.0, false),
            (&log_cut, 0.0, -1.0, false),
        ];
        for (i, (t, score, error, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                t.pixel_is_anomalous(score, error),
                want,
                "case {i}: {:?} score {score} error {error}",
                t.origin()
            );
        }
    }

    #[test]
    fn images_are_decided_at_and_around_the_threshold() {
        use ThresholdMode::{Auto, LossCut};
        use Verdict::{Anomalous, Good};
        let auto =
            Thresholds::choose(&settings(Auto, 0.1, false), Some(calibration(2.0, 5.0))).unwrap();
        let fallback = Thresholds::choose(&settings(Auto, 0.1, false), None).unwrap();
        let cut = Thresholds::choose(&settings(LossCut, 0.1, false), None).unwrap();
        // (thresholds, image score, anomalous pixels) -> verdict
        let cases: [(&Thresholds, f32, usize, Verdict); 10] = [
            // auto: the image score against the image threshold; pixels do not decide.
            (&auto, 5.0, 0, Anomalous),
            (&auto, 5.5, 0, Anomalous),
            (&auto, 5.0 - 1e-5, 10, Good),
            (&auto, 0.0, 0, Good),
            // no image threshold: any anomalous pixel decides, the score does not.
            (&fallback, 99.0, 0, Good),
            (&fallback, 0.0, 1, Anomalous),
            (&cut, 99.0, 0, Good),
            (&cut, 0.0, 1, Anomalous),
            (&cut, 0.0, 1000, Anomalous),
            (&cut, 0.0, 0, Good),
        ];
        for (i, (t, score, count, want)) in cases.into_iter().enumerate() {
            assert_eq!(t.verdict(score, count).unwrap(), want, "case {i}");
        }
        // Not a number: no verdict in any mode, never "good".
        for t in [&auto, &fallback, &cut] {
            for score in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let e = t.verdict(score, 0).unwrap_err();
                assert!(matches!(e, DetectError::NotFinite(_)), "{e}");
            }
        }
        assert_eq!(Anomalous.to_string(), "anomalous");
        assert_eq!(Good.as_str(), "good");
        assert_eq!(serde_json::to_string(&Good).unwrap(), "\"good\"");
        assert_eq!(serde_json::to_string(&Anomalous).unwrap(), "\"anomalous\"");
    }

    #[test]
    fn calibration_is_needed_for_auto_or_standardized() {
        use ThresholdMode::{Auto, LossCut};
        let cases = [
            (Auto, Scoring::Raw, true),
            (Auto, Scoring::Standardized, true),
            (LossCut, Scoring::Standardized, true),
            (LossCut, Scoring::Raw, false),
        ];
        for (mode, scoring, want) in cases {
            assert_eq!(
                needs_calibration(mode, scoring),
                want,
                "{mode:?} {scoring:?}"
            );
        }
    }
}
