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
    let (w, h) = img.dimensions();
    let mut out = GrayImage::new(w, h);
    out.par_chunks_mut(w.max(1) as usize)
        .zip(img.par_chunks(4 * w.max(1) as usize))
        .for_each(|(o, s)| {
            for (g, p) in o.iter_mut().zip(s.chunks_exact(4)) {
                *g = luma(p[0], p[1], p[2]);
            }
        });
    out
}

/// Gray version of an RGB image.
pub fn gray_of_rgb(img: &RgbImage) -> GrayImage {
    let (w, h) = img.dimensions();
    let mut out = GrayImage::new(w, h);
    out.par_chunks_mut(w.max(1) as usize)
        .zip(img.par_chunks(3 * w.max(1) as usize))
        .for_each(|(o, s)| {
            for (g, p) in o.iter_mut().zip(s.chunks_exact(3)) {
                *g = luma(p[0], p[1], p[2]);
            }
        });
    out
}

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
    const C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
    const C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);
    let (da, db) = (a.as_raw(), b.as_raw());
    let total: f64 = (1..h - 1)
        .into_par_iter()
        .map(|y| {
            // Column sums over the three rows y-1, y, y+1 (exact integers).
            let mut sa = vec![0u32; w];
            let mut sb = vec![0u32; w];
            let mut saa = vec![0u32; w];
            let mut sbb = vec![0u32; w];
            let mut sab = vec![0u32; w];
            for yy in y - 1..=y + 1 {
                let ra = &da[yy * w..(yy + 1) * w];
                let rb = &db[yy * w..(yy + 1) * w];
                for x in 0..w {
                    let (p, q) = (u32::from(ra[x]), u32::from(rb[x]));
                    sa[x] += p;
                    sb[x] += q;
                    saa[x] += p * p;
                    sbb[x] += q * q;
                    sab[x] += p * q;
                }
            }
            let mut row = 0.0;
            for x in 1..w - 1 {
                let s3 = |v: &[u32]| i64::from(v[x - 1] + v[x] + v[x + 1]);
                let (sx, sy) = (s3(&sa), s3(&sb));
                let (sxx, syy, sxy) = (s3(&saa), s3(&sbb), s3(&sab));
                let ux = sx as f64 / 9.0;
                let uy = sy as f64 / 9.0;
                // Sample (co)variances: (9 Σxy - Σx Σy) / (9 * 8), exact in integers.
                let vx = (9 * sxx - sx * sx) as f64 / 72.0;
                let vy = (9 * syy - sy * sy) as f64 / 72.0;
                let vxy = (9 * sxy - sx * sy) as f64 / 72.0;
                let num = (2.0 * ux * uy + C1) * (2.0 * vxy + C2);
                let den = (ux * ux + uy * uy + C1) * (vx + vy + C2);
                row += num / den;
            }
            row
        })
        .sum();
    Some(total / ((w - 2) * (h - 2)) as f64)
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

#[cfg(test)]
mod tests {
    use super::*;

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
            u.iter().zip(v).map(|(p, q)| (p - mu) * (q - mv)).sum::<f64>() / 8.0
        };
        let (vx, vy, vxy) = (cov(&xa, ux, &xa, ux), cov(&xb, uy, &xb, uy), cov(&xa, ux, &xb, uy));
        let (c1, c2) = (6.5025, 58.5225);
        let want = (2.0 * ux * uy + c1) * (2.0 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
        assert!((ssim(&a, &b).unwrap() - want).abs() < 1e-12);
    }
}
