//! Standardised autoencoder inputs (`input_normalization: standardize`): each (pixel, channel)
//! of the scaled image `x / data_max` minus its mean over the training images, divided by its
//! standard deviation. Fitted with the network, stored beside it and applied again at
//! detection.

use ndarray::{Array2, ArrayView3, Axis};

use super::pixel_stats;

/// Per-(pixel, channel) standardisation of autoencoder inputs: `(x / data_max - mean) / std`,
/// and exactly 0 outside the part (so the masked loss skips those values).
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    /// Mean (P, C) of the scaled training rows.
    pub mean: Array2<f32>,
    /// Standard deviation (P, C), floored.
    pub std: Array2<f32>,
    /// Part mask (P).
    pub mask: Vec<f32>,
}

impl Standardizer {
    /// Fits on rows `rows` of `data` (N, P, C) scaled by `1 / data_max`.
    pub fn fit(data: ArrayView3<f32>, rows: &[usize], data_max: f32, mask: &[f32]) -> Standardizer {
        let s = pixel_stats::fit(data, rows, data_max);
        let floor = s.std_floor;
        Standardizer {
            mean: s.mean,
            std: s.std.mapv(|v| v.max(floor)),
            mask: mask.to_vec(),
        }
    }

    /// Rows `rows` of `data`, standardised and flattened to (rows, P * C).
    pub fn rows(&self, data: ArrayView3<f32>, rows: &[usize], data_max: f32) -> Array2<f32> {
        let (_, p, c) = data.dim();
        let inv = 1.0 / data_max;
        let mut out = Array2::<f32>::zeros((rows.len(), p * c));
        for (o, &r) in rows.iter().enumerate() {
            let src = data.index_axis(Axis(0), r);
            let mut dst = out.row_mut(o);
            for j in 0..p {
                if self.mask.get(j).is_some_and(|&m| m <= 0.5) {
                    continue;
                }
                for k in 0..c {
                    dst[j * c + k] = (src[[j, k]] * inv - self.mean[[j, k]]) / self.std[[j, k]];
                }
            }
        }
        out
    }
}
