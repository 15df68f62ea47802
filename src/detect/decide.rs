//! The decisions of detection, as a pure core: which thresholds a run uses and how they were
//! chosen, which pooled pixels are anomalous, the verdict on an image, and its anomaly map on
//! the photo. Plain data in (one image's residuals and error map, the calibration, the score
//! settings, the geometry), typed results out; no files, no printing, no paths. The command
//! (`commands::detect`) finds the jobs, calls this and writes the files.
//!
//! Fail closed: a NaN or infinite residual, score or threshold is an error, never a good
//! verdict (every comparison with NaN is false, so a NaN would otherwise read as "below the
//! threshold").

use ndarray::{Array2, ArrayView1, ArrayView2};
use serde::Serialize;

use super::error::DetectError;
use super::finite::ensure_finite;
use super::maps::{Geometry, to_photo};
use super::score::{
    self, Calibration, PartGrid, ScoreSettings, Scoring, ThresholdMode, exceeds_loss_cut,
};

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
    /// with `use_log_loss`). A NaN is never anomalous here: [`Detector::judge`] refuses
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

/// Refuses a geometry whose photo or frame size is outside what pixal reads as an image,
/// before a map of that size is allocated.
pub fn check_geometry(g: &Geometry) -> Result<(), DetectError> {
    use crate::io::image::MAX_DIMENSION;
    for (what, (width, height)) in [("photo_size", g.photo), ("frame", g.frame)] {
        if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
            return Err(DetectError::Size {
                what,
                width,
                height,
                max: MAX_DIMENSION,
            });
        }
    }
    Ok(())
}

/// One image's data, as the model left it.
#[derive(Debug, Clone, Copy)]
pub struct ImageData<'a> {
    /// Names the image in errors (the photo as the metadata gives it).
    pub name: &'a str,
    /// The model's residuals (P, C): what the photo shows minus what the model expected.
    pub residuals: ArrayView2<'a, f32>,
    /// The raw error per pooled pixel (P): the mean squared residual over the channels, what
    /// `loss_cut` thresholds.
    pub errors: ArrayView1<'a, f32>,
}

/// What the core decided about one image.
#[derive(Debug, Clone)]
pub struct Judgement {
    /// Good or anomalous.
    pub verdict: Verdict,
    /// The image score: the maximum of the score map inside the part's core.
    pub score: f32,
    /// The mean of the score map inside the part.
    pub mean_score: f32,
    /// Pooled pixels over the pixel threshold.
    pub anomalous_pixels: usize,
    /// Their share of the pooled pixels, percent.
    pub anomalous_percent: f64,
    /// The image threshold the score was compared with (None: any anomalous pixel decides).
    pub image_threshold: Option<f64>,
    /// How the thresholds were chosen.
    pub origin: ThresholdOrigin,
    /// The pooled map the pixels were decided on (P): the score map (auto), or the raw error
    /// (loss_cut).
    pub map: Vec<f32>,
    /// That map on the photo's pixel grid (photo height, width), 0 outside the part.
    pub photo_map: Array2<f32>,
}

/// Everything the per-image decision needs besides the image: the grid, the score settings,
/// the calibration and the thresholds of the run.
#[derive(Debug, Clone, Copy)]
pub struct Detector<'a> {
    /// The pooled grid and the part on it.
    pub grid: &'a PartGrid,
    /// How scores are made.
    pub settings: &'a ScoreSettings,
    /// The calibration (standardized scores need it).
    pub calibration: Option<&'a Calibration>,
    /// The run's thresholds.
    pub thresholds: &'a Thresholds,
}

impl Detector<'_> {
    /// Scores one image, decides its pixels and its verdict, and maps the decided map onto
    /// the photo with `geometry`. Non-finite residuals or scores, arrays that do not cover the
    /// grid and an unreadable geometry are errors; no verdict is given then.
    pub fn judge(
        &self,
        image: &ImageData<'_>,
        geometry: &Geometry,
    ) -> Result<Judgement, DetectError> {
        check_geometry(geometry)?;
        let grid = self.grid;
        let p = grid.shape.0 * grid.shape.1;
        for (what, found) in [
            ("residuals", image.residuals.nrows()),
            ("error map", image.errors.len()),
        ] {
            if found != p {
                return Err(DetectError::Shape {
                    what,
                    found,
                    expected: p,
                    grid: grid.shape,
                });
            }
        }
        ensure_finite(image.residuals.iter(), || {
            format!(
                "{}: the model's residuals (the model is broken; retrain it)",
                image.name
            )
        })?;
        let smap = score::score_map(image.residuals, self.calibration, grid, self.settings);
        let (score, mean_score) = (
            score::image_score(&smap, grid),
            score::mean_score(&smap, grid),
        );
        ensure_finite(smap.iter().chain([&score]), || {
            format!("{}: the score map", image.name)
        })?;
        let t = self.thresholds;
        let count = smap
            .iter()
            .zip(image.errors.iter())
            .filter(|&(&s, &e)| t.pixel_is_anomalous(s, e))
            .count();
        let verdict = t.verdict(score, count)?;
        // What the pixels were decided on is what the maps show.
        let map = match t.mode {
            ThresholdMode::LossCut => image.errors.to_vec(),
            ThresholdMode::Auto => smap,
        };
        let photo_map = to_photo(&map, geometry);
        Ok(Judgement {
            verdict,
            score,
            mean_score,
            anomalous_pixels: count,
            anomalous_percent: 100.0 * count as f64 / p.max(1) as f64,
            image_threshold: t.image,
            origin: t.origin(),
            map,
            photo_map,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2};

    fn calibration(pixel: f64, image: f64) -> Calibration {
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

    fn settings(mode: ThresholdMode, loss_cut: f64, use_log_loss: bool) -> ThresholdSettings {
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

    /// A 4x4 grid, the whole of it the part, no smoothing, no erosion.
    fn grid() -> PartGrid {
        PartGrid::new((4, 4), &[1.0; 16], 0)
    }

    fn score_settings() -> ScoreSettings {
        ScoreSettings {
            scoring: Scoring::Raw,
            smoothing_sigma: 0.0,
            pixel_quantile: 0.99,
            image_margin: 1.0,
            false_positive_rate: 0.02,
            part_erosion: 0,
        }
    }

    fn geometry() -> Geometry {
        Geometry {
            pooled: (4, 4),
            pool: 1,
            crop: None,
            frame: (4, 4),
            homography: None,
            photo: (4, 4),
        }
    }

    /// One channel of residuals: 0 everywhere, `peak` at pooled pixel 5.
    fn residuals(peak: f32) -> Array2<f32> {
        let mut r = Array2::zeros((16, 1));
        r[[5, 0]] = peak;
        r
    }

    #[test]
    fn judging_an_image_scores_decides_and_maps_it() {
        use ThresholdMode::{Auto, LossCut};
        let grid = grid();
        let s = score_settings();
        // Raw scoring: the score is the squared residual, so a peak of 3 scores 9.
        let res = residuals(3.0);
        let errors: Array1<f32> = res.column(0).mapv(|v| v * v);
        // (mode, calibration (pixel, image), loss_cut) -> (verdict, anomalous pixels)
        let cases = [
            (Auto, Some((4.0, 9.0)), 0.1, Verdict::Anomalous, 1),
            (Auto, Some((4.0, 9.5)), 0.1, Verdict::Good, 1),
            (Auto, Some((10.0, 20.0)), 0.1, Verdict::Good, 0),
            (Auto, None, 9.0, Verdict::Anomalous, 1),
            (Auto, None, 9.5, Verdict::Good, 0),
            (LossCut, None, 9.0, Verdict::Anomalous, 1),
            (LossCut, None, 0.0, Verdict::Anomalous, 16),
            (LossCut, None, 10.0, Verdict::Good, 0),
        ];
        for (mode, cal, cut, want, count) in cases {
            let t = Thresholds::choose(
                &settings(mode, cut, false),
                cal.map(|(p, i)| calibration(p, i)),
            )
            .unwrap();
            let d = Detector {
                grid: &grid,
                settings: &s,
                calibration: None,
                thresholds: &t,
            };
            let image = ImageData {
                name: "a.png",
                residuals: res.view(),
                errors: errors.view(),
            };
            let j = d.judge(&image, &geometry()).unwrap();
            let case = format!("{mode:?} {cal:?} {cut}");
            assert_eq!(j.verdict, want, "{case}");
            assert_eq!(j.anomalous_pixels, count, "{case}");
            assert_eq!(j.anomalous_percent, 100.0 * count as f64 / 16.0, "{case}");
            assert_eq!(j.score, 9.0, "{case}");
            assert_eq!(j.mean_score, 9.0 / 16.0, "{case}");
            assert_eq!(j.image_threshold, t.image, "{case}");
            assert_eq!(j.origin, t.origin(), "{case}");
            assert_eq!(j.map[5], 9.0, "{case}");
            assert_eq!(j.photo_map.dim(), (4, 4), "{case}");
            // Pooled pixel 5 is (row 1, col 1): at pool 1 the photo pixel (1, 1).
            assert_eq!(j.photo_map[[1, 1]], j.map[5], "{case}");
            assert_eq!(j.photo_map[[0, 0]], j.map[0], "{case}");
        }
    }

    #[test]
    fn judging_refuses_what_it_cannot_know() {
        let grid = grid();
        let s = score_settings();
        let t = Thresholds::choose(
            &settings(ThresholdMode::Auto, 0.1, false),
            Some(calibration(1.0, 1.0)),
        )
        .unwrap();
        let d = Detector {
            grid: &grid,
            settings: &s,
            calibration: None,
            thresholds: &t,
        };
        let good = residuals(0.0);
        let errors = Array1::<f32>::zeros(16);
        let judge = |res: &Array2<f32>, errors: &Array1<f32>, g: Geometry| {
            d.judge(
                &ImageData {
                    name: "a.png",
                    residuals: res.view(),
                    errors: errors.view(),
                },
                &g,
            )
        };
        assert_eq!(
            judge(&good, &errors, geometry()).unwrap().verdict,
            Verdict::Good
        );
        // NaN and infinity in the residuals: an error naming the image, never "good".
        for bad in [f32::NAN, f32::INFINITY] {
            let e = judge(&residuals(bad), &errors, geometry()).unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, DetectError::NotFinite(_)), "{msg}");
            assert!(msg.starts_with("a.png: the model's residuals"), "{msg}");
        }
        // A residual whose square overflows: the score map is not finite.
        let e = judge(&residuals(1e30), &errors, geometry()).unwrap_err();
        assert!(e.to_string().starts_with("a.png: the score map"), "{e}");
        // Arrays that do not cover the grid.
        let short = Array2::<f32>::zeros((15, 1));
        assert!(matches!(
            judge(&short, &errors, geometry()),
            Err(DetectError::Shape {
                what: "residuals",
                found: 15,
                ..
            })
        ));
        let e = judge(&good, &Array1::zeros(3), geometry()).unwrap_err();
        assert!(
            matches!(
                e,
                DetectError::Shape {
                    what: "error map",
                    ..
                }
            ),
            "{e}"
        );
        // Sizes no image has.
        let cases = [
            ((0, 4), (4, 4), "photo_size"),
            ((4, 4), (4, 0), "frame"),
            ((20_001, 4), (4, 4), "photo_size"),
            ((4, 4), (4, 20_001), "frame"),
        ];
        for (photo, frame, want) in cases {
            let g = Geometry {
                photo,
                frame,
                ..geometry()
            };
            let e = judge(&good, &errors, g).unwrap_err();
            assert!(
                matches!(e, DetectError::Size { what, .. } if what == want),
                "{photo:?} {frame:?}: {e}"
            );
            assert!(check_geometry(&g).is_err());
        }
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
