//! The per-pixel statistics model: the mean and standard deviation of every (pixel, channel)
//! over the good training images, in the scaled space `X / max(X)`. Its reconstruction is the
//! mean; its error map is the squared z-score averaged over channels. For aligned parts it is a
//! strong baseline that trains in seconds with no GPU.

use ndarray::{Array2, Array3, ArrayView3, Axis, Zip};

/// Fraction of the training data's range used as the smallest standard deviation, so a pixel
/// that never changes in the training images (background, saturated) does not give infinite
/// z-scores at detection.
pub const STD_FLOOR_FRACTION: f64 = 1e-3;

/// Smallest standard-deviation floor, for data with no range at all.
pub const MIN_STD_FLOOR: f64 = 1e-6;

/// Fitted statistics, all in the scaled space.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelStats {
    /// Mean of every (pixel, channel), shape (P, C).
    pub mean: Array2<f32>,
    /// Population standard deviation (numpy's `ddof=0`) of every (pixel, channel), (P, C).
    pub std: Array2<f32>,
    /// The floor applied to `std` in z-scores.
    pub std_floor: f32,
}

/// Fits mean and standard deviation over rows `rows` of `data` (N, P, C), each value divided by
/// `scale` first. Sums are accumulated in f64 in two passes (mean, then squared deviations), as
/// numpy does, so the result matches `np.mean`/`np.std` to float32 rounding. `rows` must not be
/// empty.
pub fn fit(data: ArrayView3<f32>, rows: &[usize], scale: f32) -> PixelStats {
    let (_, p, c) = data.dim();
    let inv = 1.0 / f64::from(scale);
    let n = rows.len().max(1) as f64;
    let mut sum = Array2::<f64>::zeros((p, c));
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for &r in rows {
        Zip::from(&mut sum)
            .and(data.index_axis(Axis(0), r))
            .for_each(|s, &x| *s += f64::from(x) * inv);
        for &x in data.index_axis(Axis(0), r) {
            let v = f64::from(x) * inv;
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    let mean = sum.mapv(|s| s / n);
    let mut sq = Array2::<f64>::zeros((p, c));
    for &r in rows {
        Zip::from(&mut sq)
            .and(&mean)
            .and(data.index_axis(Axis(0), r))
            .for_each(|q, &m, &x| {
                let d = f64::from(x) * inv - m;
                *q += d * d;
            });
    }
    let std = sq.mapv(|q| (q / n).sqrt() as f32);
    let range = if hi > lo { hi - lo } else { 0.0 };
    PixelStats {
        mean: mean.mapv(|m| m as f32),
        std,
        std_floor: (range * STD_FLOOR_FRACTION).max(MIN_STD_FLOOR) as f32,
    }
}

impl PixelStats {
    /// Squared z-scores `((x / scale - mean) / max(std, floor))^2` averaged over channels, one
    /// row per image: (N, P). `data` must be (N, P, C) with this model's P and C.
    pub fn error_maps(&self, data: ArrayView3<f32>, scale: f32) -> Array2<f32> {
        let (n, p, c) = data.dim();
        let inv = 1.0 / scale;
        let floor = self.std_floor;
        let mut out = Array2::<f32>::zeros((n, p));
        for (i, img) in data.outer_iter().enumerate() {
            for j in 0..p {
                let mut acc = 0.0f64;
                for k in 0..c {
                    let z = (img[[j, k]] * inv - self.mean[[j, k]]) / self.std[[j, k]].max(floor);
                    acc += f64::from(z) * f64::from(z);
                }
                out[[i, j]] = (acc / c as f64) as f32;
            }
        }
        out
    }

    /// The z-scores `(x / scale - mean) / max(std, floor)` of every (image, pixel, channel):
    /// (N, P, C), the residuals detection scores. `data` must be (N, P, C) with this model's P
    /// and C.
    pub fn residuals(&self, data: ArrayView3<f32>, scale: f32) -> Array3<f32> {
        let inv = 1.0 / scale;
        let floor = self.std_floor;
        let mut out = data.mapv(|x| x * inv);
        for mut img in out.outer_iter_mut() {
            Zip::from(&mut img)
                .and(&self.mean)
                .and(&self.std)
                .for_each(|v, &m, &s| *v = (*v - m) / s.max(floor));
        }
        out
    }

    /// The reconstruction of `n` images: the mean, repeated (N, P, C).
    pub fn reconstruct(&self, n: usize) -> Array3<f32> {
        let (p, c) = self.mean.dim();
        Array3::from_shape_fn((n, p, c), |(_, j, k)| self.mean[[j, k]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_std_and_z_scores() {
        // Two pixels, one channel, three images: 1, 2, 3 and a constant 5.
        let data = Array3::from_shape_vec((3, 2, 1), vec![1.0, 5.0, 2.0, 5.0, 3.0, 5.0]).unwrap();
        let s = fit(data.view(), &[0, 1, 2], 1.0);
        assert!((s.mean[[0, 0]] - 2.0).abs() < 1e-7);
        assert!((s.std[[0, 0]] - (2.0f32 / 3.0).sqrt()).abs() < 1e-6);
        assert_eq!(s.std[[1, 0]], 0.0);
        assert!((s.std_floor - 4e-3).abs() < 1e-9, "{}", s.std_floor);
        let e = s.error_maps(data.view(), 1.0);
        assert!((e[[0, 0]] - 1.5).abs() < 1e-5, "{e}");
        assert_eq!(e[[0, 1]], 0.0);
        // A constant pixel that changes gives a large but finite error.
        let mut odd = data.clone();
        odd[[0, 1, 0]] = 6.0;
        let e = s.error_maps(odd.view(), 1.0);
        assert!(e[[0, 1]].is_finite() && e[[0, 1]] > 1e4);
        // Only the listed rows count; scaling divides first.
        let s = fit(data.view(), &[2], 2.0);
        assert_eq!(s.mean[[0, 0]], 1.5);
        assert_eq!(s.reconstruct(2).dim(), (2, 2, 1));
    }
}
