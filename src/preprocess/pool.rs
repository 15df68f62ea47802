//! Average pooling of feature maps: the height and width are cut down to multiples of the pool
//! size (the remainder at the bottom and right is dropped, as the original does), then every
//! `k x k` block is averaged per channel.

use ndarray::{Array3, ArrayView3};

/// The pooled (height, width) of an `h x w` map.
pub fn pooled_dims(h: usize, w: usize, k: usize) -> (usize, usize) {
    match (h.checked_div(k), w.checked_div(k)) {
        (Some(ph), Some(pw)) => (ph, pw),
        _ => (0, 0),
    }
}

/// Averages `k x k` blocks of an (H, W, C) map into an (H/k, W/k, C) map. `k = 1` copies.
pub fn average_pool(src: ArrayView3<'_, f32>, k: usize) -> Array3<f32> {
    let (h, w, c) = src.dim();
    let (ph, pw) = pooled_dims(h, w, k);
    let mut out = Array3::<f32>::zeros((ph, pw, c));
    if ph == 0 || pw == 0 {
        return out;
    }
    // Accumulate in f64 so the mean of large blocks does not drift.
    let scale = 1.0 / (k * k) as f64;
    let mut acc = vec![0f64; pw * c];
    for py in 0..ph {
        acc.iter_mut().for_each(|a| *a = 0.0);
        for y in py * k..py * k + k {
            for px in 0..pw {
                for x in px * k..px * k + k {
                    for ch in 0..c {
                        acc[px * c + ch] += f64::from(src[[y, x, ch]]);
                    }
                }
            }
        }
        for px in 0..pw {
            for ch in 0..c {
                out[[py, px, ch]] = (acc[px * c + ch] * scale) as f32;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_blocks_and_drops_remainder() {
        // 5x4 map, 2 channels: channel 0 = row*10+col, channel 1 = 1.
        let x = Array3::from_shape_fn(
            (5, 4, 2),
            |(y, x, c)| if c == 0 { (y * 10 + x) as f32 } else { 1.0 },
        );
        let p = average_pool(x.view(), 2);
        assert_eq!(p.dim(), (2, 2, 2));
        assert_eq!(p[[0, 0, 0]], (0.0 + 1.0 + 10.0 + 11.0) / 4.0);
        assert_eq!(p[[1, 1, 0]], (22.0 + 23.0 + 32.0 + 33.0) / 4.0);
        assert_eq!(p[[1, 0, 1]], 1.0);
        let same = average_pool(x.view(), 1);
        assert_eq!(same, x);
        assert_eq!(average_pool(x.view(), 6).dim(), (0, 0, 2));
    }
}
