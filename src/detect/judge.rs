//! One image through the core: its residuals scored (`score`), its pixels and verdict decided
//! (`decide`), and its decided map put back on the photo (`maps`). Plain data in (the image's
//! residuals and error map, the grid, the score settings, the calibration, the thresholds, the
//! geometry), a typed [`Judgement`] out; no files, no printing, no paths.
//!
//! Fail closed: a NaN or infinite residual or score is an error, never a good verdict.

use ndarray::{Array2, ArrayView1, ArrayView2};

use super::decide::{ThresholdOrigin, Thresholds, Verdict};
use super::error::DetectError;
use super::finite::ensure_finite;
use super::maps::{Geometry, to_photo};
use super::score::{self, Calibration, PartGrid, ScoreSettings, ThresholdMode};

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
    use crate::detect::decide::tests::{calibration, settings};
    use crate::detect::score::Scoring;
    use ndarray::{Array1, Array2};

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
    fn standardized_scores_use_the_calibration() {
        let grid = grid();
        let s = ScoreSettings {
            scoring: Scoring::Standardized,
            ..score_settings()
        };
        // Every (pixel, channel) has mean 1 and spread 2: a residual of 7 is 3 standard
        // deviations, which scores 3^2 - 1 = 8 (the normal level 1 taken off); 1 scores 0.
        let cal = Calibration {
            mean: vec![1.0; 16],
            sigma: vec![2.0; 16],
            ..calibration(4.0, 8.0)
        };
        let t = Thresholds::choose(&settings(ThresholdMode::Auto, 0.1, false), Some(cal)).unwrap();
        let d = Detector {
            grid: &grid,
            settings: &s,
            calibration: t.calibration.as_ref(),
            thresholds: &t,
        };
        let mut res = residuals(7.0);
        res.mapv_inplace(|v| if v == 0.0 { 1.0 } else { v });
        let errors = res.column(0).mapv(|v| v * v);
        let j = d
            .judge(
                &ImageData {
                    name: "a.png",
                    residuals: res.view(),
                    errors: errors.view(),
                },
                &geometry(),
            )
            .unwrap();
        assert_eq!((j.score, j.map[5], j.map[0]), (8.0, 8.0, 0.0));
        assert_eq!((j.verdict, j.anomalous_pixels), (Verdict::Anomalous, 1));
        assert_eq!(j.origin, ThresholdOrigin::Calibrated);
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
}
