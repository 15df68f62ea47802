//! Detection metrics against ground truth: image AUROC, pixel AUROC, AUPRO (per-region overlap up
//! to a false-positive rate of 0.3, as in the MVTec AD paper), F1-max, and the ROC / PR curves
//! they come from. Pure functions over scores and boolean labels; ties are handled exactly (a
//! threshold never splits equal scores).

/// A point of a ROC curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RocPoint {
    /// Score threshold (a sample is positive when its score >= threshold).
    pub threshold: f64,
    /// False-positive rate.
    pub fpr: f64,
    /// True-positive rate (recall).
    pub tpr: f64,
}

/// A point of a precision–recall curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrPoint {
    /// Score threshold.
    pub threshold: f64,
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
}

/// The sort key of a score: NaN counts as the lowest score.
fn key(s: f64) -> f64 {
    if s.is_nan() { f64::NEG_INFINITY } else { s }
}

/// (score, label) pairs sorted by descending score (NaN lowest). The pairs are sorted in place,
/// unstably and in parallel: pixel metrics sort tens of millions of them (40 photos of
/// 960x540), where the earlier stable sort of indices into the score slice took most of
/// validate's time; ties need no order because every consumer treats equal scores as one step.
fn sorted_desc(scores: &[f64], labels: &[bool]) -> Vec<(f64, bool)> {
    use rayon::slice::ParallelSliceMut;
    let mut pairs: Vec<(f64, bool)> = scores
        .iter()
        .zip(labels)
        .map(|(&s, &l)| (key(s), l))
        .collect();
    pairs.par_sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    pairs
}

/// The ROC curve, from (0, 0) to (1, 1), one point per distinct score. `None` when there are no
/// positives or no negatives (the curve is undefined).
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Option<Vec<RocPoint>> {
    let n = scores.len().min(labels.len());
    let pos = labels[..n].iter().filter(|&&l| l).count();
    let neg = n - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut pts = vec![RocPoint {
        threshold: f64::INFINITY,
        fpr: 0.0,
        tpr: 0.0,
    }];
    pts.extend(
        sweep(&scores[..n], &labels[..n]).map(|(threshold, tp, fp)| RocPoint {
            threshold,
            fpr: fp as f64 / neg as f64,
            tpr: tp as f64 / pos as f64,
        }),
    );
    Some(pts)
}

/// Area under a curve given as (x, y) points sorted by x (trapezoids).
pub fn trapezoid(points: impl IntoIterator<Item = (f64, f64)>) -> f64 {
    let mut area = 0.0;
    let mut prev: Option<(f64, f64)> = None;
    for p in points {
        if let Some(q) = prev {
            area += (p.0 - q.0) * (p.1 + q.1) / 2.0;
        }
        prev = Some(p);
    }
    area
}

/// Area under the ROC curve (1.0 = every positive scores above every negative, 0.5 = chance).
pub fn auroc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    roc_curve(scores, labels).map(|c| area_under_roc(&c))
}

/// The precision–recall curve, one point per distinct score, by descending threshold. `None`
/// without positives.
pub fn pr_curve(scores: &[f64], labels: &[bool]) -> Option<Vec<PrPoint>> {
    let n = scores.len().min(labels.len());
    let pos = labels[..n].iter().filter(|&&l| l).count();
    if pos == 0 {
        return None;
    }
    Some(
        sweep(&scores[..n], &labels[..n])
            .map(|(threshold, tp, fp)| PrPoint {
                threshold,
                precision: tp as f64 / (tp + fp) as f64,
                recall: tp as f64 / pos as f64,
            })
            .collect(),
    )
}

/// Lowers the threshold through every distinct score (ties kept together, NaN lowest, reported
/// as -inf) and yields (threshold, true positives, false positives) at each: the counts both
/// curves are made of.
fn sweep(scores: &[f64], labels: &[bool]) -> impl Iterator<Item = (f64, usize, usize)> {
    let pairs = sorted_desc(scores, labels);
    let (mut i, mut tp, mut fp) = (0usize, 0usize, 0usize);
    std::iter::from_fn(move || {
        let s = pairs.get(i)?.0;
        while i < pairs.len() && pairs[i].0 == s {
            if pairs[i].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        Some((s, tp, fp))
    })
}

/// The ROC and precision-recall curves from one sort (what [`roc_curve`] and [`pr_curve`]
/// return), for callers that need both of millions of pixels.
pub fn curves(scores: &[f64], labels: &[bool]) -> (Option<Vec<RocPoint>>, Option<Vec<PrPoint>>) {
    let n = scores.len().min(labels.len());
    let pos = labels[..n].iter().filter(|&&l| l).count();
    let neg = n - pos;
    if pos == 0 {
        return (None, None);
    }
    let steps: Vec<(f64, usize, usize)> = sweep(&scores[..n], &labels[..n]).collect();
    let roc = (neg > 0).then(|| {
        let mut pts = vec![RocPoint {
            threshold: f64::INFINITY,
            fpr: 0.0,
            tpr: 0.0,
        }];
        pts.extend(steps.iter().map(|&(threshold, tp, fp)| RocPoint {
            threshold,
            fpr: fp as f64 / neg as f64,
            tpr: tp as f64 / pos as f64,
        }));
        pts
    });
    let pr = steps
        .iter()
        .map(|&(threshold, tp, fp)| PrPoint {
            threshold,
            precision: tp as f64 / (tp + fp) as f64,
            recall: tp as f64 / pos as f64,
        })
        .collect();
    (roc, Some(pr))
}

/// Area under a ROC curve of [`roc_curve`].
pub fn area_under_roc(curve: &[RocPoint]) -> f64 {
    trapezoid(curve.iter().map(|p| (p.fpr, p.tpr)))
}

/// The best F1 of a precision-recall curve of [`pr_curve`], and the threshold that reaches it.
pub fn best_f1(curve: &[PrPoint]) -> Option<(f64, f64)> {
    curve
        .iter()
        .map(|p| {
            let f1 = if p.precision + p.recall > 0.0 {
                2.0 * p.precision * p.recall / (p.precision + p.recall)
            } else {
                0.0
            };
            (f1, p.threshold)
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// The best F1 over all thresholds, and the threshold that reaches it.
pub fn f1_max(scores: &[f64], labels: &[bool]) -> Option<(f64, f64)> {
    best_f1(&pr_curve(scores, labels)?)
}

/// Labels the 8-connected components of a boolean mask (row-major, `w` wide). Returns one
/// label per pixel (0 = background, components numbered from 1) and the component count.
pub fn connected_components(mask: &[bool], w: usize) -> (Vec<u32>, usize) {
    let h = mask.len().checked_div(w).unwrap_or(0);
    let mut labels = vec![0u32; mask.len()];
    let mut count = 0u32;
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !mask[start] || labels[start] != 0 {
            continue;
        }
        count += 1;
        labels[start] = count;
        stack.push(start);
        while let Some(p) = stack.pop() {
            let (x, y) = ((p % w) as i64, (p / w) as i64);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                        continue;
                    }
                    let q = ny as usize * w + nx as usize;
                    if mask[q] && labels[q] == 0 {
                        labels[q] = count;
                        stack.push(q);
                    }
                }
            }
        }
    }
    (labels, count as usize)
}

/// One image's pixel scores and ground-truth mask, row-major, `width` wide.
#[derive(Debug, Clone)]
pub struct ScoredMask<'a> {
    /// Anomaly score per pixel.
    pub scores: &'a [f32],
    /// Ground truth per pixel (true = anomalous).
    pub mask: &'a [bool],
    /// Image width.
    pub width: usize,
}

/// AUPRO up to `max_fpr` (0.3 in the MVTec AD paper), normalised by `max_fpr` so 1.0 is perfect:
/// the area under the curve of the mean per-region overlap (over every 8-connected ground-truth
/// region of every image) against the pixel false-positive rate (over all normal pixels of all
/// images). `None` without regions or without normal pixels.
pub fn aupro(images: &[ScoredMask<'_>], max_fpr: f64) -> Option<f64> {
    // Every pixel: (score, region id or None).
    let mut pixels: Vec<(f32, Option<u32>)> = Vec::new();
    let mut region_sizes: Vec<usize> = Vec::new();
    for im in images {
        let n = im.scores.len().min(im.mask.len());
        let (lab, count) = connected_components(&im.mask[..n], im.width);
        let base = region_sizes.len() as u32;
        region_sizes.extend(std::iter::repeat_n(0, count));
        for (&l, &score) in lab.iter().zip(&im.scores[..n]) {
            let region = (l > 0).then(|| base + l - 1);
            if let Some(r) = region {
                region_sizes[r as usize] += 1;
            }
            let s = if score.is_nan() {
                f32::NEG_INFINITY
            } else {
                score
            };
            pixels.push((s, region));
        }
    }
    let regions = region_sizes.len();
    let negatives = pixels.iter().filter(|p| p.1.is_none()).count();
    if regions == 0 || negatives == 0 || max_fpr <= 0.0 {
        return None;
    }
    // Unstable and parallel: equal scores are one step of the curve whatever their order.
    {
        use rayon::slice::ParallelSliceMut;
        pixels.par_sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    }
    let mut curve = vec![(0.0f64, 0.0f64)];
    let (mut fp, mut pro_sum) = (0usize, 0.0f64);
    let mut i = 0;
    while i < pixels.len() {
        let s = pixels[i].0;
        while i < pixels.len() && pixels[i].0 == s {
            match pixels[i].1 {
                None => fp += 1,
                Some(r) => pro_sum += 1.0 / region_sizes[r as usize] as f64,
            }
            i += 1;
        }
        let fpr = fp as f64 / negatives as f64;
        let pro = pro_sum / regions as f64;
        if fpr > max_fpr {
            // Interpolate the curve at exactly max_fpr.
            let (x0, y0) = *curve.last().unwrap_or(&(0.0, 0.0));
            let y = if fpr > x0 {
                y0 + (pro - y0) * (max_fpr - x0) / (fpr - x0)
            } else {
                pro
            };
            curve.push((max_fpr, y));
            break;
        }
        curve.push((fpr, pro));
    }
    Some(trapezoid(curve) / max_fpr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_of_hand_cases() {
        // Perfect separation.
        assert_eq!(
            auroc(&[0.9, 0.8, 0.1, 0.2], &[true, true, false, false]),
            Some(1.0)
        );
        // Perfectly wrong.
        assert_eq!(
            auroc(&[0.1, 0.2, 0.9, 0.8], &[true, true, false, false]),
            Some(0.0)
        );
        // One of four pairs mis-ordered: 3/4.
        assert_eq!(
            auroc(&[0.9, 0.3, 0.5, 0.1], &[true, true, false, false]),
            Some(0.75)
        );
        // All tied: chance.
        assert_eq!(auroc(&[0.5; 4], &[true, false, true, false]), Some(0.5));
        // Undefined without both classes.
        assert_eq!(auroc(&[0.5, 0.6], &[true, true]), None);
    }

    #[test]
    fn auroc_equals_mann_whitney_on_random_data() {
        let mut r = crate::rng::SplitMix64::new(5);
        let scores: Vec<f64> = (0..300)
            .map(|_| (r.uniform(0.0, 10.0) as f64).round())
            .collect();
        let labels: Vec<bool> = (0..300)
            .map(|i| r.uniform(0.0, 1.0) < 0.3 + (scores[i] / 30.0) as f32)
            .collect();
        let (mut wins, mut pairs) = (0.0, 0.0);
        for i in 0..300 {
            for j in 0..300 {
                if labels[i] && !labels[j] {
                    pairs += 1.0;
                    wins += if scores[i] > scores[j] {
                        1.0
                    } else if scores[i] == scores[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        let a = auroc(&scores, &labels).unwrap();
        assert!((a - wins / pairs).abs() < 1e-12, "{a} vs {}", wins / pairs);
        // One sort for both curves gives the same curves and summaries (ties, NaN lowest).
        let mut with_nan = scores.clone();
        with_nan[3] = f64::NAN;
        with_nan[7] = f64::NAN;
        let (roc, pr) = curves(&with_nan, &labels);
        let (roc, pr) = (roc.unwrap(), pr.unwrap());
        assert_eq!(roc, roc_curve(&with_nan, &labels).unwrap());
        assert_eq!(pr, pr_curve(&with_nan, &labels).unwrap());
        assert_eq!(area_under_roc(&roc), auroc(&with_nan, &labels).unwrap());
        assert_eq!(best_f1(&pr), f1_max(&with_nan, &labels));
        let last = roc.last().unwrap();
        assert_eq!(
            (last.threshold, last.fpr, last.tpr),
            (f64::NEG_INFINITY, 1.0, 1.0)
        );
        assert_eq!(curves(&scores, &[false; 300]), (None, None));
    }

    #[test]
    fn f1_max_of_a_hand_case() {
        // Threshold 0.8 -> tp 2, fp 0, fn 1: P 1, R 2/3, F1 0.8. Threshold 0.3 -> tp 3 fp 1:
        // P 0.75, R 1, F1 6/7 = 0.857.
        let (f1, t) = f1_max(
            &[0.9, 0.8, 0.4, 0.3, 0.1],
            &[true, true, false, true, false],
        )
        .unwrap();
        assert!((f1 - 6.0 / 7.0).abs() < 1e-12);
        assert_eq!(t, 0.3);
    }

    #[test]
    fn components_are_8_connected() {
        #[rustfmt::skip]
        let m = [
            true,  false, false, true,
            false, true,  false, false,
            false, false, false, true,
        ];
        let (lab, n) = connected_components(&m, 4);
        assert_eq!(n, 3);
        assert_eq!(lab[0], lab[5]); // diagonal neighbours join
        assert_ne!(lab[3], lab[11]);
    }

    #[test]
    fn aupro_of_hand_cases() {
        // Two regions of sizes 2 and 1; scores rank region pixels above every normal pixel:
        // PRO reaches 1 at FPR 0, so AUPRO = 1.
        let mask = [true, true, false, false, false, false, false, true, false];
        let scores = [0.9, 0.8, 0.1, 0.2, 0.1, 0.0, 0.3, 0.95, 0.05];
        let im = ScoredMask {
            scores: &scores,
            mask: &mask,
            width: 3,
        };
        assert!((aupro(std::slice::from_ref(&im), 0.3).unwrap() - 1.0).abs() < 1e-12);
        // Region scores all below every normal pixel: PRO stays 0 until FPR = 1 -> AUPRO 0.
        let low = [0.0, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.0, 0.5];
        let im = ScoredMask {
            scores: &low,
            mask: &mask,
            width: 3,
        };
        assert_eq!(aupro(&[im], 0.3).unwrap(), 0.0);
        // Half of the 2-pixel region above all normals, the rest below: PRO = (0.5 + 0) / 2 =
        // 0.25 at FPR 0 until FPR 1 -> normalised AUPRO 0.25.
        let half = [0.9, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.0, 0.5];
        let im = ScoredMask {
            scores: &half,
            mask: &mask,
            width: 3,
        };
        assert!((aupro(&[im], 0.3).unwrap() - 0.25).abs() < 1e-12);
        // No regions: undefined.
        let none = [false; 9];
        assert!(
            aupro(
                &[ScoredMask {
                    scores: &scores,
                    mask: &none,
                    width: 3
                }],
                0.3
            )
            .is_none()
        );
    }

    #[test]
    fn aupro_interpolates_at_the_fpr_limit() {
        // 10 normal pixels with descending scores, one 1-pixel region scored between the 4th
        // and 5th normal pixel: PRO jumps to 1 at FPR 0.4 > 0.3, so the area up to 0.3 is 0.
        let mut scores = vec![1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1];
        let mut mask = vec![false; 10];
        scores.push(0.65);
        mask.push(true);
        let im = ScoredMask {
            scores: &scores,
            mask: &mask,
            width: 11,
        };
        assert_eq!(aupro(&[im], 0.3).unwrap(), 0.0);
        // Region between the 2nd and 3rd: PRO 1 from FPR 0.2 to 0.3 -> area 0.1 / 0.3.
        let mut s2 = scores.clone();
        s2[10] = 0.85;
        let im = ScoredMask {
            scores: &s2,
            mask: &mask,
            width: 11,
        };
        assert!((aupro(&[im], 0.3).unwrap() - 1.0 / 3.0).abs() < 1e-9);
    }
}
