//! Alignment quality: grayscale conversion, SSIM and MSE, as the original scores an alignment.
//!
//! * Gray is OpenCV's `cvtColor(BGR2GRAY)` in its 8-bit fixed-point form:
//!   `(4899 R + 9617 G + 1868 B + 8192) >> 14` (0.299, 0.587, 0.114).
//! * SSIM is scikit-image's `structural_similarity(a, b, win_size=3, data_range=255)`: a 3x3
//!   uniform window, `K1 = 0.01`, `K2 = 0.03`, sample covariance (`N / (N - 1)` with N = 9), and
//!   the mean taken over the image without its 1-pixel border (where the window does not fit).
//!   The window sums are exact integers here, so the result matches scikit-image to rounding.
//! * MSE is the mean squared difference of the gray values as floats (the original computed it
//!   on `uint8` arrays, where the differences wrap around modulo 256).

use crate::simd::{self, Avx2};
use image::{GrayImage, RgbImage, RgbaImage};
use rayon::prelude::*;

/// OpenCV's fixed-point luma of one 8-bit RGB pixel.
#[inline]
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((4899 * u32::from(r) + 9617 * u32::from(g) + 1868 * u32::from(b) + 8192) >> 14) as u8
}

/// Gray version of an RGBA image (alpha ignored: the colour values as stored, as OpenCV's
/// `imread` gives them).
pub fn gray_of_rgba(img: &RgbaImage) -> GrayImage {
    gray_of_pixels(img.as_raw(), img.dimensions(), 4)
}

/// Gray version of an RGB image.
pub fn gray_of_rgb(img: &RgbImage) -> GrayImage {
    gray_of_pixels(img.as_raw(), img.dimensions(), 3)
}

/// Gray version of `w x h` interleaved pixels of `channels` values, R, G, B first; rows in
/// parallel.
fn gray_of_pixels(data: &[u8], (w, h): (u32, u32), channels: usize) -> GrayImage {
    let mut out = GrayImage::new(w, h);
    out.par_chunks_mut(w.max(1) as usize)
        .zip(data.par_chunks(channels * w.max(1) as usize))
        .for_each(|(o, s)| {
            for (g, p) in o.iter_mut().zip(s.chunks_exact(channels)) {
                *g = luma(p[0], p[1], p[2]);
            }
        });
    out
}

const C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
const C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);

/// SSIM with a 3x3 uniform window over two gray images of the same size (see the module
/// documentation). `None` when the sizes differ or the images are smaller than 3x3 (scikit-image
/// refuses those too). 1.0 for identical images.
pub fn ssim(a: &GrayImage, b: &GrayImage) -> Option<f64> {
    if a.dimensions() != b.dimensions() {
        return None;
    }
    let (w, h) = (a.width() as usize, a.height() as usize);
    if w < 3 || h < 3 {
        return None;
    }
    let (da, db) = (a.as_raw(), b.as_raw());
    let avx2 = Avx2::detect();
    let total: f64 = (1..h - 1)
        .into_par_iter()
        .with_min_len(16)
        .map_init(
            || SsimRow::new(w),
            |buf, y| {
                let ra: [&[u8]; 3] = std::array::from_fn(|k| &da[(y - 1 + k) * w..(y + k) * w]);
                let rb: [&[u8]; 3] = std::array::from_fn(|k| &db[(y - 1 + k) * w..(y + k) * w]);
                simd::dispatch!(avx2, ssim_row(&ra, &rb, buf))
            },
        )
        .sum();
    Some(total / ((w - 2) * (h - 2)) as f64)
}

/// Scratch rows of one SSIM output row.
struct SsimRow {
    sx: Vec<i32>,
    sy: Vec<i32>,
    sxx: Vec<i32>,
    syy: Vec<i32>,
    sxy: Vec<i32>,
    out: Vec<f64>,
}

impl SsimRow {
    fn new(w: usize) -> SsimRow {
        SsimRow {
            sx: vec![0; w],
            sy: vec![0; w],
            sxx: vec![0; w],
            syy: vec![0; w],
            sxy: vec![0; w],
            out: vec![0.0; w],
        }
    }
}

/// The sum of the SSIM map over one interior row, given the three image rows around it.
/// Column sums over the three rows (exact integers), then the 3-wide window sums and the SSIM
/// formula per pixel; written as plain loops over equal-length slices so they vectorise.
#[inline(always)]
fn ssim_row(a: &[&[u8]; 3], b: &[&[u8]; 3], buf: &mut SsimRow) -> f64 {
    let w = a[0].len();
    let n = w - 2;
    let (a0, a1, a2) = (&a[0][..w], &a[1][..w], &a[2][..w]);
    let (b0, b1, b2) = (&b[0][..w], &b[1][..w], &b[2][..w]);
    let SsimRow {
        sx,
        sy,
        sxx,
        syy,
        sxy,
        out,
    } = buf;
    let (sx, sy, sxx, syy, sxy) = (
        &mut sx[..w],
        &mut sy[..w],
        &mut sxx[..w],
        &mut syy[..w],
        &mut sxy[..w],
    );
    for x in 0..w {
        let (p0, p1, p2) = (i32::from(a0[x]), i32::from(a1[x]), i32::from(a2[x]));
        let (q0, q1, q2) = (i32::from(b0[x]), i32::from(b1[x]), i32::from(b2[x]));
        sx[x] = p0 + p1 + p2;
        sy[x] = q0 + q1 + q2;
        sxx[x] = p0 * p0 + p1 * p1 + p2 * p2;
        syy[x] = q0 * q0 + q1 * q1 + q2 * q2;
        sxy[x] = p0 * q0 + p1 * q1 + p2 * q2;
    }
    let out = &mut out[..n];
    for (i, o) in out.iter_mut().enumerate() {
        let s3 = |v: &[i32]| v[i] + v[i + 1] + v[i + 2];
        let (x, y) = (s3(sx), s3(sy));
        // Sample (co)variances times 72: 9 Σxy - Σx Σy (exact; at most 5.3e6, fits i32).
        let vx = (9 * s3(sxx) - x * x) as f64 / 72.0;
        let vy = (9 * s3(syy) - y * y) as f64 / 72.0;
        let vxy = (9 * s3(sxy) - x * y) as f64 / 72.0;
        let (ux, uy) = (f64::from(x) / 9.0, f64::from(y) / 9.0);
        let num = (2.0 * ux * uy + C1) * (2.0 * vxy + C2);
        let den = (ux * ux + uy * uy + C1) * (vx + vy + C2);
        *o = num / den;
    }
    // Four running sums, so the additions do not wait on each other.
    let mut acc = [0.0f64; 4];
    let chunks = out.chunks_exact(4);
    let rest: f64 = chunks.remainder().iter().sum();
    for c in chunks {
        for k in 0..4 {
            acc[k] += c[k];
        }
    }
    acc[0] + acc[1] + acc[2] + acc[3] + rest
}

/// Mean squared difference of two gray images as floats; `None` when the sizes differ or the
/// images are empty.
pub fn mse(a: &GrayImage, b: &GrayImage) -> Option<f64> {
    if a.dimensions() != b.dimensions() || a.as_raw().is_empty() {
        return None;
    }
    let sum: u64 = a
        .as_raw()
        .par_chunks(1 << 16)
        .zip(b.as_raw().par_chunks(1 << 16))
        .map(|(x, y)| {
            x.iter()
                .zip(y)
                .map(|(&p, &q)| {
                    let d = i32::from(p) - i32::from(q);
                    (d * d) as u64
                })
                .sum::<u64>()
        })
        .sum();
    Some(sum as f64 / a.as_raw().len() as f64)
}

/// Gaussian sigma (pixels) of the smoothing before the alignment gate compares an aligned
/// photo with the reference: it removes sensor noise and small focus differences, which are not
/// misalignment, while a shift of a pixel or more still leaves the part's texture mismatched.
/// Measured on realistic photos of the real flex at 960x540 (`bench/quality.sh` data): correct
/// alignments give at most 5.3, 1-pixel shifts at least 14.5, 2-pixel shifts at least 46.
pub const GATE_SMOOTHING_SIGMA: f32 = 1.5;

/// An image prepared for the alignment gate: its R, G, B channels smoothed by
/// [`GATE_SMOOTHING_SIGMA`], and where it is fully opaque (the part's interior in a cut-out).
#[derive(Debug, Clone)]
pub struct GateImage {
    width: u32,
    height: u32,
    channels: [Vec<f32>; 3],
    inside: Vec<bool>,
}

impl GateImage {
    /// Prepares an RGBA image (alpha 250 and above counts as inside).
    pub fn new(img: &image::RgbaImage) -> GateImage {
        let (w, h) = img.dimensions();
        let shape = (h as usize, w as usize);
        let raw = img.as_raw();
        let channel = |c: usize| -> Vec<f32> {
            let v: Vec<f32> = raw.chunks_exact(4).map(|p| f32::from(p[c])).collect();
            super::blur::gaussian_blur(&v, shape, GATE_SMOOTHING_SIGMA)
        };
        GateImage {
            width: w,
            height: h,
            channels: [channel(0), channel(1), channel(2)],
            inside: raw.chunks_exact(4).map(|p| p[3] >= 250).collect(),
        }
    }
}

/// The mean squared difference left after fitting `a` to `b` with a gain and an offset per
/// colour channel (least squares), over the pixels inside both, averaged over R, G and B. A
/// change of lighting — gain, bias, white balance — leaves it near 0, while a misalignment
/// moves the part's texture against the reference and raises it: so it measures alignment, not
/// lighting. `None` for images of different sizes or with fewer than 16 shared pixels.
pub fn photometric_mse(a: &GateImage, b: &GateImage) -> Option<f64> {
    if (a.width, a.height) != (b.width, b.height) {
        return None;
    }
    let mut total = 0.0;
    for c in 0..3 {
        let (ya, xb) = (&a.channels[c], &b.channels[c]);
        let mut s = [0f64; 6];
        for i in 0..ya.len() {
            if !(a.inside[i] && b.inside[i]) {
                continue;
            }
            let (x, y) = (f64::from(xb[i]), f64::from(ya[i]));
            s[0] += 1.0;
            s[1] += x;
            s[2] += y;
            s[3] += x * x;
            s[4] += x * y;
            s[5] += y * y;
        }
        let [n, sx, sy, sxx, sxy, syy] = s;
        if n < 16.0 {
            return None;
        }
        let vx = sxx - sx * sx / n;
        let vy = syy - sy * sy / n;
        let cxy = sxy - sx * sy / n;
        // Residual sum of squares of y on x: vy - cxy^2 / vx.
        let rss = if vx > 1e-9 { vy - cxy * cxy / vx } else { vy };
        total += (rss / n).max(0.0);
    }
    Some(total / 3.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photometric_mse_ignores_lighting_but_not_shifts() {
        let tex = |x: u32, y: u32, c: usize| {
            60.0 + 40.0 * ((x as f64 * 0.7 + c as f64).sin() + (y as f64 * 0.45).cos())
        };
        let img = |dx: u32, gain: [f64; 3], bias: f64| {
            image::RgbaImage::from_fn(64, 48, |x, y| {
                let v = |c: usize| (tex(x + dx, y, c) * gain[c] + bias).clamp(0.0, 255.0) as u8;
                let a = if (4..60).contains(&x) && (4..44).contains(&y) {
                    255
                } else {
                    0
                };
                image::Rgba([v(0), v(1), v(2), a])
            })
        };
        let a = GateImage::new(&img(0, [1.0; 3], 0.0));
        // Gain 1.15 with white balance and bias +10: hardly anything left.
        let lit = GateImage::new(&img(0, [1.15, 1.1, 1.2], 10.0));
        let m = photometric_mse(&lit, &a).unwrap();
        assert!(m < 1.0, "{m}");
        // A 2-pixel shift is a misalignment: large.
        let shifted = GateImage::new(&img(2, [1.0; 3], 0.0));
        assert!(photometric_mse(&shifted, &a).unwrap() > 50.0);
        let small = GateImage::new(&image::RgbaImage::new(3, 3));
        assert_eq!(photometric_mse(&a, &small), None);
    }

    #[test]
    fn luma_is_opencvs() {
        assert_eq!(luma(255, 255, 255), 255);
        assert_eq!(luma(0, 0, 0), 0);
        assert_eq!(luma(255, 0, 0), 76);
        assert_eq!(luma(0, 255, 0), 150);
        assert_eq!(luma(0, 0, 255), 29);
        assert_eq!(luma(10, 200, 30), 124);
    }

    #[test]
    fn identical_images_score_one_and_zero() {
        let a = GrayImage::from_fn(17, 9, |x, y| image::Luma([(x * 13 + y * 7) as u8]));
        assert!((ssim(&a, &a).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(mse(&a, &a), Some(0.0));
        let flat = GrayImage::new(5, 5);
        assert!((ssim(&flat, &flat).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn mismatched_or_tiny_images_have_no_score() {
        let a = GrayImage::new(5, 5);
        let b = GrayImage::new(5, 6);
        assert_eq!(ssim(&a, &b), None);
        assert_eq!(mse(&a, &b), None);
        assert_eq!(ssim(&GrayImage::new(2, 5), &GrayImage::new(2, 5)), None);
    }

    #[test]
    fn mse_does_not_wrap() {
        let a = GrayImage::from_pixel(4, 4, image::Luma([0]));
        let b = GrayImage::from_pixel(4, 4, image::Luma([200]));
        assert_eq!(mse(&a, &b), Some(40000.0));
    }

    /// A hand-computed 3x3 case: only the centre window counts.
    #[test]
    fn single_window_by_hand() {
        let a = GrayImage::from_raw(3, 3, vec![0, 10, 20, 30, 40, 50, 60, 70, 80]).unwrap();
        let b = GrayImage::from_raw(3, 3, vec![5, 10, 20, 30, 45, 50, 60, 70, 90]).unwrap();
        let (xa, xb): (Vec<f64>, Vec<f64>) = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(&p, &q)| (f64::from(p), f64::from(q)))
            .unzip();
        let m = |v: &[f64]| v.iter().sum::<f64>() / 9.0;
        let (ux, uy) = (m(&xa), m(&xb));
        let cov = |u: &[f64], mu: f64, v: &[f64], mv: f64| {
            u.iter()
                .zip(v)
                .map(|(p, q)| (p - mu) * (q - mv))
                .sum::<f64>()
                / 8.0
        };
        let (vx, vy, vxy) = (
            cov(&xa, ux, &xa, ux),
            cov(&xb, uy, &xb, uy),
            cov(&xa, ux, &xb, uy),
        );
        let (c1, c2) = (6.5025, 58.5225);
        let want =
            (2.0 * ux * uy + c1) * (2.0 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
        assert!((ssim(&a, &b).unwrap() - want).abs() < 1e-12);
    }
}
