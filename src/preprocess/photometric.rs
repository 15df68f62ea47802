//! The part mask and photometric normalisation of make_input, on the pooled grid.
//!
//! Lighting (gain, bias, white balance) changes every colour channel of a photo almost
//! uniformly, and a per-pixel model trained on photos taken under one light flags every pixel
//! of a photo taken under another. make_input therefore fits each photo's channels to a
//! reference (the per-pixel median of the training photos) with a gain and an offset per
//! channel, by least squares inside the part, before anything learns from them. Two numbers per
//! channel cannot imitate a local defect, so defects survive the fit; a second fit without the
//! worst-fitting pixels keeps large defects from pulling it.
//!
//! The part mask says which pooled pixels belong to the part in the training photos (at least
//! half of the pooling block is foreground in at least half of the photos). Detection scores
//! only those pixels; everything outside the part scores 0.

use ndarray::{Array1, Array2, ArrayView2, Axis};

/// Fraction of foreground pixels (any of R, G, B above `threshold`) in each `pool x pool` block
/// of `img`, row-major over the pooled grid, with the same cut to multiples of the pool size as
/// [`super::pool::average_pool`].
pub fn foreground_fraction(img: &image::RgbImage, threshold: u8, pool: usize) -> Vec<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (ph, pw) = super::pool::pooled_dims(h, w, pool);
    let mut out = vec![0f32; ph * pw];
    if ph == 0 || pw == 0 {
        return out;
    }
    let raw = img.as_raw();
    let inv = 1.0 / (pool * pool) as f32;
    for py in 0..ph {
        for px in 0..pw {
            let mut n = 0u32;
            for y in py * pool..py * pool + pool {
                let row = &raw[(y * w + px * pool) * 3..(y * w + px * pool + pool) * 3];
                n += row
                    .chunks_exact(3)
                    .filter(|p| p[0] > threshold || p[1] > threshold || p[2] > threshold)
                    .count() as u32;
            }
            out[py * pw + px] = n as f32 * inv;
        }
    }
    out
}

/// The part mask of a set of photos: pooled pixels at least half foreground in at least half
/// of the photos (1.0 in the mask, 0.0 outside). `fractions` holds one
/// [`foreground_fraction`] map per photo, all of the same length.
pub fn part_mask(fractions: &[Vec<f32>]) -> Array1<f32> {
    let p = fractions.first().map_or(0, Vec::len);
    let n = fractions.len();
    Array1::from_shape_fn(p, |j| {
        let inside = fractions.iter().filter(|f| f[j] >= 0.5).count();
        f32::from(u8::from(2 * inside >= n && n > 0))
    })
}

/// Shrinks a (h, w) 0/1 mask by `r` pixels (a pixel stays when every pixel within Chebyshev
/// distance `r` is in the mask; pixels beyond the border count as outside).
pub fn erode(mask: &[f32], (h, w): (usize, usize), r: usize) -> Vec<f32> {
    if r == 0 || mask.len() != h * w {
        return mask.to_vec();
    }
    // Separable: a horizontal then a vertical minimum.
    let min_along = |src: &[f32], along_x: bool| -> Vec<f32> {
        let mut out = vec![0f32; h * w];
        for y in 0..h {
            for x in 0..w {
                let (c, n) = if along_x { (x, w) } else { (y, h) };
                let ok = c >= r
                    && c + r < n
                    && (c - r..=c + r).all(|k| {
                        let i = if along_x { y * w + k } else { k * w + x };
                        src[i] > 0.5
                    });
                out[y * w + x] = f32::from(u8::from(ok));
            }
        }
        out
    };
    let tmp = min_along(mask, true);
    min_along(&tmp, false)
}

/// The per-pixel, per-channel median of `rows` (each (P, C)); the mean of the two middle values
/// for an even count.
pub fn median_reference(rows: &[ArrayView2<'_, f32>]) -> Array2<f32> {
    let (p, c) = rows.first().map_or((0, 0), |r| r.dim());
    let mut out = Array2::<f32>::zeros((p, c));
    let mut buf = Vec::with_capacity(rows.len());
    for j in 0..p {
        for k in 0..c {
            buf.clear();
            buf.extend(rows.iter().map(|r| r[[j, k]]));
            buf.sort_by(f32::total_cmp);
            let n = buf.len();
            out[[j, k]] = if n == 0 {
                0.0
            } else if n % 2 == 1 {
                buf[n / 2]
            } else {
                0.5 * (buf[n / 2 - 1] + buf[n / 2])
            };
        }
    }
    out
}

/// Share of the part's pixels left out of the second least-squares fit (the worst-fitting
/// ones), so a large defect does not pull the gain and offset.
const TRIM_FRACTION: f64 = 0.1;

/// Gain and offset `(a, b)` minimising `sum (a x + b - y)^2` over the pairs; `None` when `x` is
/// (nearly) constant.
fn least_squares(pairs: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = pairs.len() as f64;
    if pairs.len() < 2 {
        return None;
    }
    let (sx, sy) = pairs
        .iter()
        .fold((0.0, 0.0), |(a, b), &(x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for &(x, y) in pairs {
        sxx += (x - mx) * (x - mx);
        sxy += (x - mx) * (y - my);
    }
    if sxx.is_nan() || sxx <= 1e-12 * n {
        return None;
    }
    let a = sxy / sxx;
    Some((a, my - a * mx))
}

/// Fits every channel of one photo's rows (P, C) to the reference (P, C) with a gain and an
/// offset, by least squares over the pixels where `mask` > 0.5, refitted once without the
/// worst-fitting 10 %; returns the fitted (gain, offset) per channel. A channel that is
/// constant inside the part, or whose fitted gain is not positive, is left unchanged (gain 1,
/// offset 0): a fit that inverts a channel would hide its structure, not normalise it.
pub fn fit_to_reference(
    rows: &mut Array2<f32>,
    reference: ArrayView2<'_, f32>,
    mask: &[f32],
) -> Vec<(f32, f32)> {
    let mut out = Vec::with_capacity(rows.ncols());
    for (k, mut col) in rows.axis_iter_mut(Axis(1)).enumerate() {
        let pairs: Vec<(f64, f64)> = col
            .iter()
            .zip(reference.column(k))
            .zip(mask)
            .filter(|(_, m)| **m > 0.5)
            .map(|((&x, &y), _)| (f64::from(x), f64::from(y)))
            .collect();
        let fit = least_squares(&pairs).and_then(|(a, b)| {
            let mut res: Vec<(f64, (f64, f64))> = pairs
                .iter()
                .map(|&(x, y)| ((a * x + b - y).abs(), (x, y)))
                .collect();
            res.sort_by(|u, v| u.0.total_cmp(&v.0));
            let keep = ((1.0 - TRIM_FRACTION) * res.len() as f64).ceil() as usize;
            let kept: Vec<(f64, f64)> = res[..keep.min(res.len())].iter().map(|r| r.1).collect();
            least_squares(&kept).or(Some((a, b)))
        });
        let (a, b) = match fit {
            Some((a, b)) if a > 0.0 && a.is_finite() && b.is_finite() => (a as f32, b as f32),
            _ => (1.0, 0.0),
        };
        col.mapv_inplace(|x| a * x + b);
        out.push((a, b));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn foreground_fraction_counts_blocks() {
        let mut img = image::RgbImage::new(5, 4);
        img.put_pixel(0, 0, image::Rgb([200, 0, 0]));
        img.put_pixel(1, 1, image::Rgb([0, 0, 16]));
        img.put_pixel(3, 2, image::Rgb([15, 15, 15])); // not above 15
        let f = foreground_fraction(&img, 15, 2);
        assert_eq!(f, vec![0.5, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn mask_is_the_majority_and_erosion_shrinks_it() {
        let f = vec![
            vec![1.0, 0.5, 0.0],
            vec![1.0, 0.0, 1.0],
            vec![0.6, 0.4, 0.0],
        ];
        assert_eq!(part_mask(&f).to_vec(), vec![1.0, 0.0, 0.0]);
        let m: Vec<f32> = (0..25).map(|i| f32::from(u8::from(i % 5 > 0))).collect();
        let e = erode(&m, (5, 5), 1);
        let expect: Vec<f32> = (0..25)
            .map(|i| {
                f32::from(u8::from(
                    (2..=3).contains(&(i % 5)) && (1..=3).contains(&(i / 5)),
                ))
            })
            .collect();
        assert_eq!(e, expect);
    }

    #[test]
    fn gain_and_offset_are_undone_and_a_defect_survives() {
        let p = 200;
        let reference =
            Array2::from_shape_fn((p, 2), |(j, k)| 0.2 + 0.003 * j as f32 + 0.1 * k as f32);
        // The photo: gain 1.15 and offset -0.04 on channel 0, 0.9 / +0.03 on channel 1, and a
        // defect (+0.3) on 8 pixels of channel 0.
        let mut rows = Array2::from_shape_fn((p, 2), |(j, k)| {
            let (a, b) = if k == 0 { (1.15, -0.04) } else { (0.9, 0.03) };
            a * reference[[j, k]] + b
        });
        for j in 50..58 {
            rows[[j, 0]] += 0.3;
        }
        let mask = vec![1.0; p];
        let fit = fit_to_reference(&mut rows, reference.view(), &mask);
        assert!((fit[1].0 - 1.0 / 0.9).abs() < 1e-3, "{fit:?}");
        for j in 0..p {
            let d0 = rows[[j, 0]] - reference[[j, 0]];
            if (50..58).contains(&j) {
                assert!(d0 > 0.2, "defect lost at {j}: {d0}");
            } else {
                assert!(d0.abs() < 2e-3, "pixel {j}: {d0}");
            }
            assert!((rows[[j, 1]] - reference[[j, 1]]).abs() < 1e-4);
        }
    }

    #[test]
    fn constant_channels_are_left_alone() {
        let reference = Array2::from_elem((10, 1), 0.5f32);
        let mut rows = Array2::from_elem((10, 1), 0.3f32);
        let fit = fit_to_reference(&mut rows, reference.view(), &[1.0; 10]);
        assert_eq!(fit, vec![(1.0, 0.0)]);
        assert_eq!(rows[[0, 0]], 0.3);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        let a = Array2::from_elem((1, 1), 1.0f32);
        let b = Array2::from_elem((1, 1), 5.0f32);
        let c = Array2::from_elem((1, 1), 2.0f32);
        assert_eq!(
            median_reference(&[a.view(), b.view(), c.view()])[[0, 0]],
            2.0
        );
        assert_eq!(median_reference(&[a.view(), b.view()])[[0, 0]], 3.0);
    }
}
