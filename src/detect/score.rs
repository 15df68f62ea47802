//! Anomaly scores from error maps: standardisation against the error statistics of held-out good
//! images, light smoothing, image scores, and thresholds (the original's `loss_cut`, or automatic
//! ones calibrated on the held-out good images).

use ndarray::ArrayView2;
use serde::Serialize;

/// How pixel scores are made from error maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scoring {
    /// The error itself (what the original thresholds).
    Raw,
    /// (error - mean) / std of that pixel's error over held-out good images.
    Standardized,
}

/// Which thresholds decide the verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdMode {
    /// The original's `plotting.loss_cut` (with `use_log_loss`) on the raw error.
    LossCut,
    /// Calibrated on held-out good images.
    Auto,
}

/// Per-pixel statistics of the error of good images, and the thresholds derived from them.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// How many held-out good images the statistics come from.
    pub images: usize,
    /// Mean error per pooled pixel.
    #[serde(skip)]
    pub mean: Vec<f32>,
    /// Standard deviation per pooled pixel, floored at `std_floor`.
    #[serde(skip)]
    pub std: Vec<f32>,
    /// The floor of the per-pixel standard deviation: the median of the per-pixel standard
    /// deviations, so pixels that happened to be constant in the good images do not turn tiny
    /// differences into huge scores.
    pub std_floor: f32,
    /// Automatic pixel threshold: the `pixel_quantile` quantile of held-out pixel scores.
    pub pixel_threshold: f64,
    /// Automatic image threshold: the largest held-out image score times `image_margin`.
    pub image_threshold: f64,
    /// True when each held-out image was scored with statistics of the others (leave-one-out,
    /// needs 3+ images); false when they were scored with statistics that include themselves,
    /// which makes the thresholds optimistic.
    pub leave_one_out: bool,
}

/// Settings of scoring.
#[derive(Debug, Clone, Copy)]
pub struct ScoreSettings {
    /// Raw or standardised scores.
    pub scoring: Scoring,
    /// Gaussian sigma of the smoothing, in pooled pixels (0 = none).
    pub smoothing_sigma: f32,
    /// Quantile of held-out pixel scores used as the automatic pixel threshold.
    pub pixel_quantile: f64,
    /// Factor on the largest held-out image score for the automatic image threshold.
    pub image_margin: f64,
}

/// Per-pixel mean and standard deviation (population) over rows, f64 accumulation, leaving out
/// row `skip` when given.
fn pixel_stats(maps: ArrayView2<'_, f32>, skip: Option<usize>) -> (Vec<f32>, Vec<f32>) {
    let (n, p) = maps.dim();
    let mut sum = vec![0f64; p];
    let mut sq = vec![0f64; p];
    let mut count = 0usize;
    for (i, row) in maps.outer_iter().enumerate() {
        if Some(i) == skip {
            continue;
        }
        count += 1;
        for (j, &v) in row.iter().enumerate() {
            let v = f64::from(v);
            sum[j] += v;
            sq[j] += v * v;
        }
    }
    let c = count.max(1) as f64;
    let mean: Vec<f32> = sum.iter().map(|s| (s / c) as f32).collect();
    let std: Vec<f32> = sum
        .iter()
        .zip(&sq)
        .map(|(s, q)| ((q / c - (s / c) * (s / c)).max(0.0)).sqrt() as f32)
        .collect();
    let _ = n;
    (mean, std)
}

fn median(v: &[f32]) -> f32 {
    let mut s: Vec<f32> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return 0.0;
    }
    s.sort_by(f32::total_cmp);
    s[s.len() / 2]
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

/// Scores one error map: standardised with (mean, std) when scoring is standardised, then
/// smoothed. `shape` is the pooled (height, width).
pub fn score_map(
    error: &[f32],
    mean: &[f32],
    std: &[f32],
    shape: (usize, usize),
    s: &ScoreSettings,
) -> Vec<f32> {
    let z: Vec<f32> = match s.scoring {
        Scoring::Raw => error.to_vec(),
        Scoring::Standardized => error
            .iter()
            .zip(mean.iter().zip(std))
            .map(|(&e, (&m, &sd))| (e - m) / sd)
            .collect(),
    };
    gaussian_blur(&z, shape, s.smoothing_sigma)
}

/// Image score: the maximum of the smoothed map (and its mean, for reports).
pub fn image_score(map: &[f32]) -> (f32, f32) {
    let finite = map.iter().copied().filter(|v| v.is_finite());
    let max = finite.clone().fold(f32::NEG_INFINITY, f32::max);
    let (sum, n) = finite.fold((0f64, 0usize), |(s, n), v| (s + f64::from(v), n + 1));
    (
        if n == 0 { 0.0 } else { max },
        if n == 0 { 0.0 } else { (sum / n as f64) as f32 },
    )
}

/// Calibrates on the held-out good images' error maps (N, P).
pub fn calibrate(
    val: ArrayView2<'_, f32>,
    shape: (usize, usize),
    s: &ScoreSettings,
) -> Calibration {
    let n = val.dim().0;
    let (mean, raw_std) = pixel_stats(val, None);
    let floor = median(&raw_std).max(1e-12);
    let std: Vec<f32> = raw_std.iter().map(|&v| v.max(floor)).collect();
    let leave_one_out = n >= 3;
    let mut pixel_scores = Vec::new();
    let mut image_scores = Vec::new();
    for (i, row) in val.outer_iter().enumerate() {
        let e: Vec<f32> = row.to_vec();
        let map = if leave_one_out && s.scoring == Scoring::Standardized {
            let (m, sd) = pixel_stats(val, Some(i));
            let sd: Vec<f32> = sd.iter().map(|&v| v.max(floor)).collect();
            score_map(&e, &m, &sd, shape, s)
        } else {
            score_map(&e, &mean, &std, shape, s)
        };
        image_scores.push(image_score(&map).0);
        pixel_scores.extend(map);
    }
    let max_image = image_scores
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    Calibration {
        images: n,
        pixel_threshold: quantile(&pixel_scores, s.pixel_quantile),
        image_threshold: if n == 0 {
            f64::INFINITY
        } else {
            f64::from(max_image) * s.image_margin
        },
        mean,
        std,
        std_floor: floor,
        leave_one_out,
    }
}

/// A separable Gaussian blur of a (h, w) map with edge clamping; sigma 0 copies.
pub fn gaussian_blur(map: &[f32], (h, w): (usize, usize), sigma: f32) -> Vec<f32> {
    if sigma <= 0.0 || h * w == 0 || map.len() != h * w {
        return map.to_vec();
    }
    let r = (3.0 * sigma).ceil() as i64;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let ks: f32 = k.iter().sum();
    let k: Vec<f32> = k.iter().map(|v| v / ks).collect();
    let mut tmp = vec![0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (j, kv) in k.iter().enumerate() {
                let xx = (x as i64 + j as i64 - r).clamp(0, w as i64 - 1) as usize;
                acc += kv * map[y * w + xx];
            }
            tmp[y * w + x] = acc;
        }
    }
    let mut out = vec![0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (j, kv) in k.iter().enumerate() {
                let yy = (y as i64 + j as i64 - r).clamp(0, h as i64 - 1) as usize;
                acc += kv * tmp[yy * w + x];
            }
            out[y * w + x] = acc;
        }
    }
    out
}

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
mod tests {
    use super::*;
    use ndarray::Array2;

    fn settings(scoring: Scoring) -> ScoreSettings {
        ScoreSettings {
            scoring,
            smoothing_sigma: 0.0,
            pixel_quantile: 0.99,
            image_margin: 1.0,
        }
    }

    #[test]
    fn quantile_matches_numpy_linear() {
        // numpy.quantile([1, 2, 3, 4], 0.25) == 1.75
        assert!((quantile(&[4.0, 1.0, 3.0, 2.0], 0.25) - 1.75).abs() < 1e-12);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }

    #[test]
    fn standardised_scores_use_per_pixel_stats() {
        // 4 good maps of 3 pixels: pixel 0 constant 1, pixel 1 in {0, 2}, pixel 2 in {0, 4}.
        let val =
            Array2::from_shape_vec((4, 3), vec![1., 0., 0., 1., 2., 4., 1., 0., 0., 1., 2., 4.])
                .unwrap();
        let cal = calibrate(val.view(), (1, 3), &settings(Scoring::Standardized));
        assert_eq!(cal.mean, vec![1.0, 1.0, 2.0]);
        // std: 0, 1, 2 -> floor = median = 1 -> 1, 1, 2.
        assert_eq!(cal.std_floor, 1.0);
        assert_eq!(cal.std, vec![1.0, 1.0, 2.0]);
        assert!(cal.leave_one_out);
        let z = score_map(
            &[2.0, 3.0, 2.0],
            &cal.mean,
            &cal.std,
            (1, 3),
            &settings(Scoring::Standardized),
        );
        assert_eq!(z, vec![1.0, 2.0, 0.0]);
        assert_eq!(image_score(&z), (2.0, 1.0));
    }

    #[test]
    fn blur_preserves_constants_and_mass_in_the_middle() {
        let m = vec![3.0f32; 25];
        assert!(
            gaussian_blur(&m, (5, 5), 1.0)
                .iter()
                .all(|v| (v - 3.0).abs() < 1e-5)
        );
        let mut d = vec![0f32; 81];
        d[40] = 1.0;
        let b = gaussian_blur(&d, (9, 9), 0.8);
        assert!((b.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        assert!(b[40] < 1.0 && b[40] > b[41] && (b[41] - b[39]).abs() < 1e-7);
    }

    #[test]
    fn loss_cut_rule() {
        assert!(exceeds_loss_cut(0.1, 0.1, false));
        assert!(!exceeds_loss_cut(0.09, 0.1, false));
        assert!(exceeds_loss_cut(0.2, 0.1, true));
        assert!(!exceeds_loss_cut(0.0, 0.1, true));
    }
}
