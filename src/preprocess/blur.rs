//! The filtering building blocks, one copy each:
//!
//! - [`reflect101`], OpenCV's `BORDER_REFLECT_101` border rule (`dcb|abcd|cba`), used by the
//!   8-bit blur below and by the 3x3 spatial channels of [`super::features`];
//! - [`gaussian_blur`], a separable Gaussian blur of float maps with edge clamping, shared by the
//!   alignment gate (smoothing away noise and focus differences before comparing an aligned photo
//!   with the reference), detection (smoothing score maps), the classical background remover
//!   (softening the mask edge) and the demo's photos;
//! - [`gaussian_blur_u8`], OpenCV's fixed-point Gaussian blur of 8-bit images, bit for bit, for
//!   the ORB descriptors and alignment templates (7 taps) and rembg's mask post-processing
//!   (5 taps).

use crate::simd::{self, Avx2};
use rayon::prelude::*;

/// `BORDER_REFLECT_101` (`dcb|abcd|cba`): the index that index `i` reads on an axis of length
/// `n`, reflected without repeating the edge pixel as often as needed. An axis of length 0 or 1
/// reflects onto index 0.
#[inline]
pub fn reflect101(i: isize, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let n = n as isize;
    let mut i = i;
    // Only ever one or two steps for kernels shorter than the axis.
    while i < 0 || i >= n {
        i = if i < 0 { -i } else { 2 * (n - 1) - i };
    }
    i as usize
}

/// A separable Gaussian blur of a (h, w) map with standard deviation `sigma` (kernel radius
/// ⌈3σ⌉), edges clamped (the edge pixel repeats); sigma 0 (or a map of the wrong length)
/// copies. Taps are applied one at a time over a whole (padded) row, which the compiler
/// vectorises; every output is still `Σ_j k[j] · v[j]` summed in tap order from 0, so the
/// result does not depend on how rows are split over threads.
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
    let r = r as usize;
    let mut tmp = vec![0f32; h * w];
    tmp.par_chunks_mut(w).enumerate().for_each_init(
        || vec![0f32; w + 2 * r],
        |padded, (y, row)| {
            let src = &map[y * w..(y + 1) * w];
            padded[..r].fill(src[0]);
            padded[r..r + w].copy_from_slice(src);
            padded[r + w..].fill(src[w - 1]);
            for (j, &kv) in k.iter().enumerate() {
                row.iter_mut()
                    .zip(&padded[j..j + w])
                    .for_each(|(o, &v)| *o += kv * v);
            }
        },
    );
    let mut out = vec![0f32; h * w];
    out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        for (j, &kv) in k.iter().enumerate() {
            let yy = (y as isize + j as isize - r as isize).clamp(0, h as isize - 1) as usize;
            let src = &tmp[yy * w..(yy + 1) * w];
            for (o, &v) in row.iter_mut().zip(src) {
                *o += kv * v;
            }
        }
    });
    out
}

/// The 8-bit fixed-point kernel of [`gaussian_blur_u8`]: the Gaussian of `sigma` over `TAPS`
/// taps rounded to 8 fractional bits, the centre tap taking the rounding error so the weights
/// sum to exactly 2^8 (as OpenCV makes it; `[39, 57, 64, 57, 39]` for 5 taps and σ 2).
fn fixed_point_kernel<const TAPS: usize>(sigma: f64) -> [u32; TAPS] {
    let c = TAPS / 2;
    let raw: [f64; TAPS] = std::array::from_fn(|i| {
        let d = i as f64 - c as f64;
        (-d * d / (2.0 * sigma * sigma)).exp()
    });
    let sum: f64 = raw.iter().sum();
    let mut k: [u32; TAPS] = raw.map(|v| (v / sum * 256.0).round() as u32);
    let total: u32 = k.iter().sum();
    k[c] = (k[c] + 256).saturating_sub(total);
    k
}

/// OpenCV's `GaussianBlur` of an 8-bit `w x h` image `src` into `out` with a `TAPS`-tap kernel
/// of standard deviation `sigma` (e.g. `GaussianBlur(src, (5, 5), 2, 2)`), bit for bit: OpenCV
/// blurs 8-bit images in fixed point with the Gaussian rounded to 8 fractional bits, keeps the
/// horizontal sums exact and rounds once at the end; borders are [`reflect101`]. Separable, rows
/// in parallel, the interior vectorised. `TAPS` is odd; `src` and `out` hold `w * h` values
/// (otherwise `out` is left as it is).
pub fn gaussian_blur_u8<const TAPS: usize>(
    src: &[u8],
    w: usize,
    h: usize,
    sigma: f64,
    out: &mut [u8],
) {
    if w == 0 || h == 0 || src.len() != w * h || out.len() != w * h {
        return;
    }
    let r = TAPS / 2;
    // Weights scaled to sum to 2^8 per pass (2^16 for both).
    let k = fixed_point_kernel::<TAPS>(sigma);
    let avx2 = Avx2::detect();
    // Horizontal pass into u16: value * 256 fits (255 * 256 < 65536), and so does every
    // partial sum.
    let mut tmp = vec![0u16; w * h];
    tmp.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        let src = &src[y * w..(y + 1) * w];
        if w >= TAPS {
            simd::dispatch!(avx2, blur_h_interior(src, &mut row[r..w - r], &k));
        }
        let edge: Vec<usize> = (0..w.min(r)).chain(w.saturating_sub(r).max(r)..w).collect();
        for x in edge {
            let mut a = 0u32;
            for (j, kj) in k.iter().enumerate() {
                a += kj * u32::from(src[reflect101(x as isize + j as isize - r as isize, w)]);
            }
            row[x] = a as u16;
        }
    });
    let tmp = &tmp;
    out.par_chunks_mut(w).enumerate().for_each_init(
        || vec![0u32; w],
        |acc, (y, row)| {
            let rows: [&[u16]; TAPS] = std::array::from_fn(|j| {
                let ry = reflect101(y as isize + j as isize - r as isize, h);
                &tmp[ry * w..(ry + 1) * w]
            });
            simd::dispatch!(avx2, blur_v_row(&rows, row, acc, &k));
        },
    );
}

/// Interior of one horizontal blur row: `out[i] = Σ k[j] src[i + j]`, tap by tap over the row
/// so it vectorises.
#[inline(always)]
fn blur_h_interior<const TAPS: usize>(src: &[u8], out: &mut [u16], k: &[u32; TAPS]) {
    let n = out.len();
    out.iter_mut().for_each(|o| *o = 0);
    for (j, &kj) in k.iter().enumerate() {
        let kj = kj as u16;
        for (a, &v) in out.iter_mut().zip(&src[j..j + n]) {
            *a += kj * u16::from(v);
        }
    }
}

/// One vertical blur row: `out[x] = round(Σ k[j] rows[j][x] / 2^16)`.
#[inline(always)]
fn blur_v_row<const TAPS: usize>(
    rows: &[&[u16]; TAPS],
    out: &mut [u8],
    acc: &mut [u32],
    k: &[u32; TAPS],
) {
    let n = out.len();
    let acc = &mut acc[..n];
    acc.iter_mut().for_each(|a| *a = 1 << 15);
    for (r, &kj) in rows.iter().zip(k) {
        for (a, &v) in acc.iter_mut().zip(&r[..n]) {
            *a += kj * u32::from(v);
        }
    }
    for (o, &a) in out.iter_mut().zip(acc.iter()) {
        *o = (a >> 16) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn blurs_keep_constants() {
        let c = vec![7f32; 30];
        assert!(
            gaussian_blur(&c, (5, 6), 1.5)
                .iter()
                .all(|v| (v - 7.0).abs() < 1e-5)
        );
        let u = vec![200u8; 30];
        let mut out = vec![0u8; 30];
        gaussian_blur_u8::<5>(&u, 6, 5, 2.0, &mut out);
        assert!(out.iter().all(|&v| v == 200));
        let mut one = [0u8];
        gaussian_blur_u8::<5>(&[9], 1, 1, 2.0, &mut one);
        assert_eq!(one, [9]);
    }

    #[test]
    fn fixed_point_kernel_is_opencvs() {
        assert_eq!(fixed_point_kernel::<5>(2.0), [39, 57, 64, 57, 39]);
    }

    #[test]
    fn reflect101_reflects_without_repeating_the_edge() {
        let got: Vec<usize> = (-3..7).map(|i| reflect101(i, 4)).collect();
        assert_eq!(got, [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        assert_eq!(reflect101(-5, 1), 0);
        assert_eq!(reflect101(9, 2), 1);
    }
}
