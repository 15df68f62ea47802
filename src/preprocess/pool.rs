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
    if ph == 0 || pw == 0 || c == 0 {
        return out;
    }
    // Work on contiguous rows when the input has the standard layout (it does when it comes from
    // the feature maps): this is the hot loop of make_input.
    let owned;
    let src = match src.as_slice() {
        Some(s) => s,
        None => {
            owned = src.as_standard_layout().into_owned();
            owned.as_slice().unwrap_or(&[])
        }
    };
    let Some(dst) = out.as_slice_mut() else {
        return out;
    };
    // Accumulate in f64 so the mean of large blocks does not drift.
    let scale = 1.0 / (k * k) as f64;
    let mut acc = vec![0f64; pw * c];
    let row_len = w * c;
    for py in 0..ph {
        acc.iter_mut().for_each(|a| *a = 0.0);
        for y in py * k..py * k + k {
            let row = &src[y * row_len..y * row_len + pw * k * c];
            for (px, block) in row.chunks_exact(k * c).enumerate() {
                let a = &mut acc[px * c..px * c + c];
                for pixel in block.chunks_exact(c) {
                    for (s, v) in a.iter_mut().zip(pixel) {
                        *s += f64::from(*v);
                    }
                }
            }
        }
        for (d, a) in dst[py * pw * c..(py + 1) * pw * c].iter_mut().zip(&acc) {
            *d = (*a * scale) as f32;
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
