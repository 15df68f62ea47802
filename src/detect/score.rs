//! Anomaly scores from a model's residuals, and the thresholds that turn them into verdicts.
//!
//! Every model hands detection a residual per (pooled pixel, channel): what the photo shows
//! minus what the model expected, in the model's units. Training also leaves the out-of-fold
//! residuals of every training photo (each photo scored by a model that never saw it), and those
//! calibrate everything here:
//!
//! - **standardized** scoring: each residual becomes a z-score with the mean and standard
//!   deviation of that (pixel, channel)'s out-of-fold residuals; the pixel's score is the mean
//!   of its squared z-scores over the channels, smoothed (Gaussian), minus 1 — the value a
//!   normal pixel has on average — and clamped at 0. So a map is >= 0, 0 means normal, and
//!   every pixel outside the part (the training photos' part mask) is exactly 0.
//! - **raw** scoring: the mean squared residual, smoothed, masked the same way.
//! - The **image score** is the maximum of the map inside the part shrunk by `part_erosion`
//!   pooled pixels: the outline, where sub-pixel misregistration lives, cannot dominate it.
//! - **Automatic thresholds**: the calibration photos are scored exactly as new photos are,
//!   each with statistics that leave it out. The image threshold is the (1 - false positive
//!   rate) quantile of a Gumbel distribution fitted to their image scores (an image score is a
//!   maximum over many pixels, which is what a Gumbel law describes), so it extrapolates past the
//!   largest of a few good photos instead of sitting on it. The pixel threshold is the
//!   `pixel_quantile` quantile of their in-part pixel scores.
//!
//! A non-finite residual or a degenerate threshold is an error, never a low score.

use ndarray::{ArrayView2, ArrayView3, Axis};
use serde::Serialize;

// The two settings' vocabularies live at the bottom of the crate, where the configuration reads them.
pub use crate::types::scoring::{Scoring, ThresholdMode};

/// Errors of scoring and calibration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    /// Residuals that are NaN or infinite.
    #[error("{what} holds a value that is not a finite number (NaN or infinite) at row {row}")]
    NotFinite {
        /// Which array.
        what: String,
        /// Its row.
        row: usize,
    },
    /// Arrays that do not fit each other.
    #[error("{0}")]
    Shape(String),
    /// Too few calibration photos for an automatic threshold.
    #[error(
        "automatic thresholds need the out-of-fold residuals of at least {needed} good training photos, the model has {found}; train on more good photos"
    )]
    TooFewImages {
        /// Photos needed.
        needed: usize,
        /// Photos available.
        found: usize,
    },
    /// A threshold that cannot separate anything.
    #[error(
        "the calibrated {which} threshold is {value}, which cannot separate good from anomalous; the training photos' out-of-fold scores are degenerate (all equal?)"
    )]
    Degenerate {
        /// `image` or `pixel`.
        which: &'static str,
        /// The threshold.
        value: f64,
    },
}

/// Smallest number of calibration photos for automatic thresholds.
pub const MIN_CALIBRATION_IMAGES: usize = 3;

/// A z-score's standard deviation is floored at this share of the median standard deviation
/// of its channel inside the part, so a pixel that barely changed in the training photos does
/// not turn a tiny difference into a huge score.
pub const SIGMA_FLOOR_FRACTION: f32 = 0.5;

/// Settings of scoring.
#[derive(Debug, Clone, Copy)]
pub struct ScoreSettings {
    /// Raw or standardised scores.
    pub scoring: Scoring,
    /// Gaussian sigma of the smoothing, in pooled pixels (0 = none).
    pub smoothing_sigma: f32,
    /// Quantile of calibration pixel scores used as the automatic pixel threshold.
    pub pixel_quantile: f64,
    /// Factor on the calibrated image threshold.
    pub image_margin: f64,
    /// Share of good photos the image threshold may flag.
    pub false_positive_rate: f64,
    /// Pooled pixels taken off the part outline for the image score.
    pub part_erosion: usize,
}

/// Where scores live: the pooled grid and the part on it.
#[derive(Debug, Clone)]
pub struct PartGrid {
    /// Pooled (height, width).
    pub shape: (usize, usize),
    /// 1.0 inside the part, else 0.0 (P).
    pub mask: Vec<f32>,
    /// The part shrunk by `part_erosion` (P): where the image score is taken.
    pub core: Vec<f32>,
}

impl PartGrid {
    /// The grid of a part mask; a mask whose shrunk core is empty falls back to the mask itself
    /// (a very thin part), and an empty mask to the whole grid.
    pub fn new(shape: (usize, usize), mask: &[f32], erosion: usize) -> PartGrid {
        let p = shape.0 * shape.1;
        let mask: Vec<f32> = if mask.len() == p && mask.iter().any(|&m| m > 0.5) {
            mask.to_vec()
        } else {
            vec![1.0; p]
        };
        let core = crate::preprocess::photometric::erode(&mask, shape, erosion);
        let core = if core.iter().any(|&m| m > 0.5) {
            core
        } else {
            mask.clone()
        };
        PartGrid { shape, mask, core }
    }
}

/// What the calibration photos say: per-(pixel, channel) residual statistics and the
/// thresholds.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// How many photos the statistics come from.
    pub images: usize,
    /// Mean residual per (pixel, channel), row-major (P * C).
    #[serde(skip)]
    pub mean: Vec<f32>,
    /// Standard deviation per (pixel, channel), floored (P * C).
    #[serde(skip)]
    pub sigma: Vec<f32>,
    /// The floor of each channel's standard deviation.
    pub sigma_floor: Vec<f32>,
    /// The calibration photos' image scores, each scored leaving itself out.
    pub image_scores: Vec<f64>,
    /// Automatic pixel threshold.
    pub pixel_threshold: f64,
    /// Automatic image threshold.
    pub image_threshold: f64,
    /// Location and scale of the Gumbel law fitted to the image scores.
    pub gumbel: (f64, f64),
}

fn check_finite(what: &str, res: ArrayView3<'_, f32>) -> Result<(), ScoreError> {
    for (i, row) in res.outer_iter().enumerate() {
        if row.iter().any(|v| !v.is_finite()) {
            return Err(ScoreError::NotFinite {
                what: what.to_string(),
                row: i,
            });
        }
    }
    Ok(())
}

/// Per-(pixel, channel) sums and sums of squares of the residuals (f64).
fn moments(res: ArrayView3<'_, f32>) -> (Vec<f64>, Vec<f64>) {
    let (_, p, c) = res.dim();
    let mut s = vec![0f64; p * c];
    let mut q = vec![0f64; p * c];
    for row in res.outer_iter() {
        for ((a, b), &v) in s.iter_mut().zip(q.iter_mut()).zip(row.iter()) {
            let v = f64::from(v);
            *a += v;
            *b += v * v;
        }
    }
    (s, q)
}

/// Mean and standard deviation from sums over `n` rows, less the row `skip` when given.
fn stats_from(
    s: &[f64],
    q: &[f64],
    n: usize,
    skip: Option<ArrayView2<'_, f32>>,
) -> (Vec<f32>, Vec<f32>) {
    let m = (n - usize::from(skip.is_some())).max(1) as f64;
    let mut mean = Vec::with_capacity(s.len());
    let mut sd = Vec::with_capacity(s.len());
    let skip_vals: Option<Vec<f64>> = skip.map(|r| r.iter().map(|&v| f64::from(v)).collect());
    for j in 0..s.len() {
        let (mut a, mut b) = (s[j], q[j]);
        if let Some(v) = &skip_vals {
            a -= v[j];
            b -= v[j] * v[j];
        }
        let mu = a / m;
        mean.push(mu as f32);
        sd.push(((b / m - mu * mu).max(0.0)).sqrt() as f32);
    }
    (mean, sd)
}

/// Each channel's floor: [`SIGMA_FLOOR_FRACTION`] of the median standard deviation inside the
/// part (a tiny positive number when that is 0).
fn channel_floors(sd: &[f32], c: usize, mask: &[f32]) -> Vec<f32> {
    (0..c)
        .map(|k| {
            let mut v: Vec<f32> = sd
                .iter()
                .skip(k)
                .step_by(c)
                .zip(mask)
                .filter(|(_, m)| **m > 0.5)
                .map(|(s, _)| *s)
                .collect();
            v.sort_by(f32::total_cmp);
            let med = v.get(v.len() / 2).copied().unwrap_or(0.0);
            (med * SIGMA_FLOOR_FRACTION).max(1e-6)
        })
        .collect()
}

fn apply_floor(sd: &mut [f32], floors: &[f32]) {
    let c = floors.len().max(1);
    for (j, s) in sd.iter_mut().enumerate() {
        *s = s.max(floors[j % c]);
    }
}

/// The unsmoothed pixel scores of one photo's residuals (P, C): the mean squared z-score over
/// channels (standardized) or the mean squared residual (raw).
fn pixel_scores(
    res: ArrayView2<'_, f32>,
    mean: &[f32],
    sigma: &[f32],
    scoring: Scoring,
) -> Vec<f32> {
    let c = res.ncols().max(1);
    res.outer_iter()
        .enumerate()
        .map(|(j, r)| {
            let acc: f64 = r
                .iter()
                .enumerate()
                .map(|(k, &v)| {
                    let d = match scoring {
                        Scoring::Raw => f64::from(v),
                        Scoring::Standardized => {
                            f64::from(v - mean[j * c + k]) / f64::from(sigma[j * c + k])
                        }
                    };
                    d * d
                })
                .sum();
            (acc / c as f64) as f32
        })
        .collect()
}

/// The score map of one photo's residuals (P, C) on the pooled grid: pixel scores, smoothed,
/// less the normal level 1 (standardized), clamped at 0, and 0 outside the part.
pub fn score_map(
    res: ArrayView2<'_, f32>,
    cal: Option<&Calibration>,
    grid: &PartGrid,
    s: &ScoreSettings,
) -> Vec<f32> {
    let (scoring, mean, sigma) = match (s.scoring, cal) {
        (Scoring::Standardized, Some(c)) => (Scoring::Standardized, &c.mean[..], &c.sigma[..]),
        _ => (Scoring::Raw, &[][..], &[][..]),
    };
    finish_map(pixel_scores(res, mean, sigma, scoring), scoring, grid, s)
}

fn finish_map(raw: Vec<f32>, scoring: Scoring, grid: &PartGrid, s: &ScoreSettings) -> Vec<f32> {
    let shift = if scoring == Scoring::Standardized {
        1.0
    } else {
        0.0
    };
    // Outside the part there is nothing to score, and nothing may bleed into the part's edge:
    // the smoothing is a normalised convolution over the part's pixels only.
    let masked: Vec<f32> = raw
        .iter()
        .zip(&grid.mask)
        .map(|(&v, &m)| if m > 0.5 { v } else { 0.0 })
        .collect();
    let num = gaussian_blur(&masked, grid.shape, s.smoothing_sigma);
    let den = gaussian_blur(&grid.mask, grid.shape, s.smoothing_sigma);
    num.into_iter()
        .zip(den)
        .zip(&grid.mask)
        .map(|((v, d), &m)| {
            if m > 0.5 && d > 1e-6 {
                (v / d - shift).max(0.0)
            } else {
                0.0
            }
        })
        .collect()
}

/// Image score: the maximum of the map inside the part's core.
pub fn image_score(map: &[f32], grid: &PartGrid) -> f32 {
    map.iter()
        .zip(&grid.core)
        .filter(|(_, c)| **c > 0.5)
        .map(|(v, _)| *v)
        .fold(0.0, f32::max)
}

/// The mean of the map inside the part (for reports).
pub fn mean_score(map: &[f32], grid: &PartGrid) -> f32 {
    let (s, n) = map
        .iter()
        .zip(&grid.mask)
        .filter(|(_, m)| **m > 0.5)
        .fold((0f64, 0usize), |(s, n), (v, _)| (s + f64::from(*v), n + 1));
    if n == 0 { 0.0 } else { (s / n as f64) as f32 }
}

/// The `q` quantile (linear interpolation, as numpy's default) of finite values; 0 when empty.
pub fn quantile(values: &[f32], q: f64) -> f64 {
    let mut s: Vec<f32> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return 0.0;
    }
    s.sort_by(f32::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let f = pos - lo as f64;
    f64::from(s[lo]) * (1.0 - f) + f64::from(s[hi]) * f
}

/// Euler–Mascheroni constant (the mean of a standard Gumbel law).
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Location and scale of the Gumbel law fitted to the sample's quartiles, and its `1 - fpr`
/// quantile. Quartiles, not the mean and standard deviation: one odd training photo (a scratch
/// nobody saw, a pixel only a few photos cover) must not stretch the law and lift the threshold
/// over every defect; with fewer than 4 scores the moments are used.
pub fn gumbel_threshold(scores: &[f64], fpr: f64) -> ((f64, f64), f64) {
    // The Gumbel quantile function is Q(p) = mu - beta ln(-ln p).
    let q = |p: f64| -(-p.ln()).ln();
    let (mu, beta) = if scores.len() >= 4 {
        let v: Vec<f32> = scores.iter().map(|&x| x as f32).collect();
        let (q1, q2, q3) = (quantile(&v, 0.25), quantile(&v, 0.5), quantile(&v, 0.75));
        let beta = (q3 - q1) / (q(0.75) - q(0.25));
        (q2 - beta * q(0.5), beta)
    } else {
        let n = scores.len().max(1) as f64;
        let mean = scores.iter().sum::<f64>() / n;
        let var = scores.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        let beta = var.sqrt() * 6f64.sqrt() / std::f64::consts::PI;
        (mean - EULER_GAMMA * beta, beta)
    };
    ((mu, beta), mu + beta * q(1.0 - fpr))
}

/// Calibrates on the out-of-fold residuals (M, P, C) of good training photos: residual
/// statistics for standardized scores, and automatic thresholds from the photos scored exactly
/// as new photos are (each leaving itself out of the statistics).
pub fn calibrate(
    res: ArrayView3<'_, f32>,
    grid: &PartGrid,
    s: &ScoreSettings,
) -> Result<Calibration, ScoreError> {
    let (m, p, c) = res.dim();
    if p != grid.shape.0 * grid.shape.1 || grid.mask.len() != p {
        return Err(ScoreError::Shape(format!(
            "calibration residuals have {p} pixels per image but the grid is {}x{}",
            grid.shape.0, grid.shape.1
        )));
    }
    check_finite("the calibration residuals", res)?;
    if m < MIN_CALIBRATION_IMAGES {
        return Err(ScoreError::TooFewImages {
            needed: MIN_CALIBRATION_IMAGES,
            found: m,
        });
    }
    let (sum, sq) = moments(res);
    let (mean, mut sigma) = stats_from(&sum, &sq, m, None);
    let floors = channel_floors(&sigma, c, &grid.mask);
    apply_floor(&mut sigma, &floors);
    let mut image_scores = Vec::with_capacity(m);
    let mut in_part = Vec::new();
    for row in res.outer_iter() {
        let map = match s.scoring {
            Scoring::Standardized => {
                let (mu, mut sd) = stats_from(&sum, &sq, m, Some(row));
                apply_floor(&mut sd, &floors);
                finish_map(
                    pixel_scores(row, &mu, &sd, Scoring::Standardized),
                    Scoring::Standardized,
                    grid,
                    s,
                )
            }
            Scoring::Raw => finish_map(
                pixel_scores(row, &[], &[], Scoring::Raw),
                Scoring::Raw,
                grid,
                s,
            ),
        };
        image_scores.push(f64::from(image_score(&map, grid)));
        in_part.extend(
            map.iter()
                .zip(&grid.mask)
                .filter(|(_, m)| **m > 0.5)
                .map(|(v, _)| *v),
        );
    }
    let (gumbel, thr) = gumbel_threshold(&image_scores, s.false_positive_rate);
    let image_threshold = thr * s.image_margin;
    if !(image_threshold.is_finite() && image_threshold > 0.0) {
        return Err(ScoreError::Degenerate {
            which: "image",
            value: image_threshold,
        });
    }
    let pixel_threshold = quantile(&in_part, s.pixel_quantile);
    if !(pixel_threshold.is_finite() && pixel_threshold > 0.0) {
        return Err(ScoreError::Degenerate {
            which: "pixel",
            value: pixel_threshold,
        });
    }
    Ok(Calibration {
        images: m,
        mean,
        sigma,
        sigma_floor: floors,
        image_scores,
        pixel_threshold,
        image_threshold,
        gumbel,
    })
}

/// Checks one photo's residuals before scoring: a NaN must fail the photo, never score 0.
pub fn check_residuals(res: ArrayView3<'_, f32>, what: &str) -> Result<(), ScoreError> {
    check_finite(what, res)
}

/// The z-scores of one photo's residuals (P, C) against the calibration, inside the part: for
/// checking that good photos come out standard (mean about 0, spread about 1).
pub fn z_scores(res: ArrayView2<'_, f32>, cal: &Calibration, grid: &PartGrid) -> Vec<f32> {
    let c = res.ncols().max(1);
    let mut out = Vec::new();
    for (j, r) in res.axis_iter(Axis(0)).enumerate() {
        if grid.mask[j] <= 0.5 {
            continue;
        }
        for (k, &v) in r.iter().enumerate() {
            out.push((v - cal.mean[j * c + k]) / cal.sigma[j * c + k]);
        }
    }
    out
}

use crate::preprocess::blur::gaussian_blur;

/// Whether a pixel is anomalous under the original's rule: error >= loss_cut, or with
/// `use_log_loss` log10(error) >= log10(loss_cut).
pub fn exceeds_loss_cut(error: f32, loss_cut: f64, use_log_loss: bool) -> bool {
    if use_log_loss {
        error > 0.0 && f64::from(error).log10() >= loss_cut.log10()
    } else {
        f64::from(error) >= loss_cut
    }
}

#[cfg(test)]
mod tests;
