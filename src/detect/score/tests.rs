use super::*;
use crate::rng::SplitMix64;
use ndarray::Array3;

fn settings(scoring: Scoring) -> ScoreSettings {
    ScoreSettings {
        scoring,
        smoothing_sigma: 0.0,
        pixel_quantile: 0.999,
        image_margin: 1.0,
        false_positive_rate: 0.02,
        part_erosion: 1,
    }
}

/// Gaussian residuals (m, h*w, c) with a per-(pixel, channel) spread and offset, zero
/// outside a centred rectangle that is the part.
fn residuals(m: usize, (h, w): (usize, usize), c: usize, seed: u64) -> (Array3<f32>, Vec<f32>) {
    let mut rng = SplitMix64::new(seed);
    let mask: Vec<f32> = (0..h * w)
        .map(|j| {
            let (y, x) = (j / w, j % w);
            f32::from(u8::from(y >= 2 && y + 2 < h && x >= 2 && x + 2 < w))
        })
        .collect();
    let res = Array3::from_shape_fn((m, h * w, c), |(_, j, k)| {
        if mask[j] < 0.5 {
            return 0.0;
        }
        // Box-Muller from two uniforms.
        let u1 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let g = (-2.0 * (u1.max(1e-300)).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let spread = 0.5 + (j % 7) as f64 * 0.3 + k as f64;
        (0.1 * k as f64 + spread * g) as f32
    });
    (res, mask)
}

#[test]
fn quantile_matches_numpy_linear() {
    // numpy.quantile([1, 2, 3, 4], 0.25) == 1.75
    assert!((quantile(&[4.0, 1.0, 3.0, 2.0], 0.25) - 1.75).abs() < 1e-12);
    assert_eq!(quantile(&[], 0.5), 0.0);
}

#[test]
fn good_photos_come_out_standard_through_the_detection_path() {
    let shape = (12, 16);
    let (cal_res, mask) = residuals(40, shape, 2, 1);
    let grid = PartGrid::new(shape, &mask, 1);
    let cal = calibrate(cal_res.view(), &grid, &settings(Scoring::Standardized)).unwrap();
    // New good photos from the same law: z-scores with mean ~0 and spread ~1.
    let (new, _) = residuals(20, shape, 2, 2);
    let z: Vec<f32> = new
        .outer_iter()
        .flat_map(|r| z_scores(r, &cal, &grid))
        .collect();
    let n = z.len() as f64;
    let mean = z.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let sd = (z
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    assert!(mean.abs() < 0.05, "mean {mean}");
    assert!((sd - 1.0).abs() < 0.1, "spread {sd}");
    // Maps are >= 0 and exactly 0 outside the part.
    for r in new.outer_iter() {
        let map = score_map(r, Some(&cal), &grid, &settings(Scoring::Standardized));
        assert!(map.iter().all(|&v| v >= 0.0 && v.is_finite()));
        assert!(map.iter().zip(&mask).all(|(&v, &m)| m > 0.5 || v == 0.0));
    }
}

#[test]
fn a_defect_outscores_every_good_photo_and_crosses_the_threshold() {
    let shape = (12, 16);
    let (cal_res, mask) = residuals(30, shape, 2, 3);
    let grid = PartGrid::new(shape, &mask, 1);
    let s = settings(Scoring::Standardized);
    let cal = calibrate(cal_res.view(), &grid, &s).unwrap();
    assert_eq!(cal.image_scores.len(), 30);
    let max_good = cal.image_scores.iter().copied().fold(0.0, f64::max);
    // The Gumbel quantile at 2 % lies above the typical good score.
    assert!(
        cal.image_threshold
            > quantile(
                &cal.image_scores
                    .iter()
                    .map(|&v| v as f32)
                    .collect::<Vec<_>>(),
                0.5
            )
    );
    let (mut bad, _) = residuals(1, shape, 2, 4);
    // A 2x2 defect of 8 standard deviations in channel 0.
    for (y, x) in [(5, 7), (5, 8), (6, 7), (6, 8)] {
        let j = y * 16 + x;
        let spread = 0.5 + (j % 7) as f32 * 0.3;
        bad[[0, j, 0]] += 8.0 * spread;
    }
    let map = score_map(bad.index_axis(Axis(0), 0), Some(&cal), &grid, &s);
    let score = f64::from(image_score(&map, &grid));
    assert!(
        score > max_good && score > cal.image_threshold,
        "{score} vs {max_good} / {}",
        cal.image_threshold
    );
    let worst = map
        .iter()
        .enumerate()
        .fold((0, 0.0f32), |b, (j, &v)| if v > b.1 { (j, v) } else { b });
    assert!([(5 * 16 + 7), (5 * 16 + 8), (6 * 16 + 7), (6 * 16 + 8)].contains(&worst.0));
}

#[test]
fn nan_residuals_and_too_few_photos_are_errors() {
    let shape = (6, 6);
    let (mut res, mask) = residuals(5, shape, 1, 5);
    let grid = PartGrid::new(shape, &mask, 0);
    res[[3, 14, 0]] = f32::NAN;
    let e = calibrate(res.view(), &grid, &settings(Scoring::Standardized)).unwrap_err();
    assert_eq!(
        e,
        ScoreError::NotFinite {
            what: "the calibration residuals".into(),
            row: 3
        }
    );
    let (res, _) = residuals(2, shape, 1, 6);
    assert!(matches!(
        calibrate(res.view(), &grid, &settings(Scoring::Standardized)),
        Err(ScoreError::TooFewImages { found: 2, .. })
    ));
    // All-zero residuals give degenerate thresholds, not "everything is good".
    let zero = Array3::<f32>::zeros((5, 36, 1));
    assert!(matches!(
        calibrate(zero.view(), &grid, &settings(Scoring::Raw)),
        Err(ScoreError::Degenerate { .. })
    ));
}

#[test]
fn gumbel_quantile_of_a_known_sample() {
    // Three scores: moments. Mean 10, sample sd 2 -> beta = 2 sqrt(6) / pi.
    let ((mu, beta), t) = gumbel_threshold(&[8.0, 10.0, 12.0], 0.02);
    let b = 2.0 * 6f64.sqrt() / std::f64::consts::PI;
    assert!((beta - b).abs() < 1e-12);
    assert!((mu - (10.0 - EULER_GAMMA * b)).abs() < 1e-12);
    assert!((t - (mu + b * 3.901_938_2)).abs() < 1e-4, "{t}");
    // Quartiles of a Gumbel sample give back its law; one wild score does not move it.
    let (m0, b0) = (5.0, 2.0);
    let mut sample: Vec<f64> = (1..=99)
        .map(|i| m0 - b0 * (-(f64::from(i) / 100.0).ln()).ln())
        .collect();
    let ((mu, beta), _) = gumbel_threshold(&sample, 0.02);
    assert!(
        (mu - m0).abs() < 0.05 && (beta - b0).abs() < 0.05,
        "{mu} {beta}"
    );
    sample[50] = 1e4;
    let (_, t) = gumbel_threshold(&sample, 0.02);
    assert!((t - (m0 + b0 * 3.901_938_2)).abs() < 0.3, "{t}");
}

#[test]
fn the_outline_does_not_set_the_image_score() {
    let shape = (8, 8);
    let mask: Vec<f32> = (0..64)
        .map(|j| {
            f32::from(u8::from(
                (1..7).contains(&(j / 8)) && (1..7).contains(&(j % 8)),
            ))
        })
        .collect();
    let grid = PartGrid::new(shape, &mask, 1);
    let mut map = vec![0.0f32; 64];
    map[9] = 100.0; // on the outline (row 1, col 1)
    map[27] = 2.0; // inside the core
    assert_eq!(image_score(&map, &grid), 2.0);
}

#[test]
fn loss_cut_rule() {
    assert!(exceeds_loss_cut(0.1, 0.1, false));
    assert!(!exceeds_loss_cut(0.09, 0.1, false));
    assert!(exceeds_loss_cut(0.2, 0.1, true));
    assert!(!exceeds_loss_cut(0.0, 0.1, true));
}
