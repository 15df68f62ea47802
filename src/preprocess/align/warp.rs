//! The bilinear warp of an image into another frame through a homography, in 8-bit fixed
//! point (the alignment's last step, and the refinement's scoring of its candidates).

use image::{GrayImage, RgbaImage};
use rayon::prelude::*;

use crate::preprocess::homography::Homography;
use crate::simd::{self, Avx2};

/// Warps `src` into a `width` x `height` image: output pixel `(x, y)` takes the bilinear
/// interpolation of `src` at `m (x, y)` (so `m` maps the output frame to the source). Taps
/// outside `src` count as 0 (black, and transparent), like OpenCV's `BORDER_CONSTANT`. Rows run
/// in parallel.
pub fn warp_rgba(src: &RgbaImage, m: &Homography, width: u32, height: u32) -> RgbaImage {
    let mut out = RgbaImage::new(width, height);
    warp_raw::<4>(
        src.as_raw(),
        src.width() as usize,
        src.height() as usize,
        m,
        &mut out,
        width as usize,
    );
    out
}

/// [`warp_rgba`] for a gray image.
pub fn warp_gray(src: &GrayImage, m: &Homography, width: u32, height: u32) -> GrayImage {
    let mut out = GrayImage::new(width, height);
    warp_raw::<1>(
        src.as_raw(),
        src.width() as usize,
        src.height() as usize,
        m,
        &mut out,
        width as usize,
    );
    out
}

fn warp_raw<const C: usize>(
    src: &[u8],
    sw: usize,
    sh: usize,
    m: &Homography,
    out: &mut [u8],
    w: usize,
) {
    if w == 0 || sw == 0 || sh == 0 {
        return;
    }
    let avx2 = Avx2::detect();
    out.par_chunks_mut(w * C)
        .enumerate()
        .with_min_len(8)
        .for_each_init(
            || (vec![0.0f64; w], vec![0.0f64; w]),
            |(xs, ys), (y, row)| {
                simd::dispatch!(avx2, warp_row::<C>(src, sw, sh, m, y, row, xs, ys));
            },
        );
}

/// One output row of [`warp_raw`]: source coordinates for the whole row first (a loop that
/// vectorises, divisions included), then the bilinear taps.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn warp_row<const C: usize>(
    src: &[u8],
    sw: usize,
    sh: usize,
    m: &Homography,
    y: usize,
    row: &mut [u8],
    xs: &mut [f64],
    ys: &mut [f64],
) {
    let w = row.len() / C;
    let (xs, ys) = (&mut xs[..w], &mut ys[..w]);
    let yf = y as f64;
    let (bx, by, bw) = (
        m[(0, 1)] * yf + m[(0, 2)],
        m[(1, 1)] * yf + m[(1, 2)],
        m[(2, 1)] * yf + m[(2, 2)],
    );
    let (ax, ay, aw) = (m[(0, 0)], m[(1, 0)], m[(2, 0)]);
    for (x, (sx, sy)) in xs.iter_mut().zip(ys.iter_mut()).enumerate() {
        let xf = x as f64;
        let den = aw * xf + bw;
        // A point behind the camera (den <= 0) is sent far outside: black.
        let inv = if den > 1e-12 { 1.0 / den } else { f64::NAN };
        *sx = (ax * xf + bx) * inv;
        *sy = (ay * xf + by) * inv;
    }
    // Interpolation in fixed point: positions to 1/64 pixel (OpenCV uses 1/32), 12-bit weights.
    let (inner_w, inner_h) = ((sw - 1) as f64, (sh - 1) as f64);
    let (fw, fh) = (sw as f64, sh as f64);
    for ((px, &sx), &sy) in row.chunks_exact_mut(C).zip(xs.iter()).zip(ys.iter()) {
        if sx >= 0.0 && sy >= 0.0 && sx < inner_w && sy < inner_h {
            // All four taps inside (the common case).
            let xi = (sx * 64.0 + 0.5) as u32;
            let yi = (sy * 64.0 + 0.5) as u32;
            let (x0, y0) = ((xi >> 6) as usize, (yi >> 6) as usize);
            let (fx, fy) = (xi & 63, yi & 63);
            let w00 = (64 - fx) * (64 - fy);
            let w01 = fx * (64 - fy);
            let w10 = (64 - fx) * fy;
            let w11 = fx * fy;
            // Rounding sx * 64 up can reach the last column or row: clamp the far taps.
            let x1 = (x0 + 1).min(sw - 1) - x0;
            let y1 = (y0 + 1).min(sh - 1) - y0;
            let i00 = (y0 * sw + x0) * C;
            let i10 = i00 + y1 * sw * C;
            let (t0, t1) = (&src[i00..i00 + (x1 + 1) * C], &src[i10..i10 + (x1 + 1) * C]);
            for c in 0..C {
                let v = w00 * u32::from(t0[c])
                    + w01 * u32::from(t0[x1 * C + c])
                    + w10 * u32::from(t1[c])
                    + w11 * u32::from(t1[x1 * C + c]);
                px[c] = ((v + 2048) >> 12) as u8;
            }
        } else if sx > -1.0 && sy > -1.0 && sx < fw && sy < fh {
            // Near the border: taps outside the source count as 0.
            let x0 = if sx >= 0.0 { sx as isize } else { -1 };
            let y0 = if sy >= 0.0 { sy as isize } else { -1 };
            let fx = (((sx - x0 as f64) * 64.0 + 0.5) as u32).min(64);
            let fy = (((sy - y0 as f64) * 64.0 + 0.5) as u32).min(64);
            let wts = [
                (64 - fx) * (64 - fy),
                fx * (64 - fy),
                (64 - fx) * fy,
                fx * fy,
            ];
            let taps = [(x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)];
            for c in 0..C {
                let mut v = 0u32;
                for (&(xx, yy), &wt) in taps.iter().zip(&wts) {
                    if xx >= 0 && yy >= 0 && (xx as usize) < sw && (yy as usize) < sh {
                        v += wt * u32::from(src[(yy as usize * sw + xx as usize) * C + c]);
                    }
                }
                px[c] = ((v + 2048) >> 12) as u8;
            }
        } else {
            // Outside (or behind the camera: NaN fails every comparison): black, transparent.
            px.iter_mut().for_each(|v| *v = 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Matrix3;

    #[test]
    fn identity_warp_is_a_copy_and_shift_moves() {
        let img = RgbaImage::from_fn(9, 7, |x, y| {
            image::Rgba([x as u8 * 20, y as u8 * 30, 5, 255])
        });
        assert_eq!(warp_rgba(&img, &Matrix3::identity(), 9, 7), img);
        let shift = Matrix3::new(1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0);
        let out = warp_rgba(&img, &shift, 9, 7);
        assert_eq!(out.get_pixel(0, 0).0, img.get_pixel(1, 0).0);
        // The last column samples outside: black and transparent.
        assert_eq!(out.get_pixel(8, 3).0, [0, 0, 0, 0]);
        // Half a pixel: the mean of two neighbours.
        let half = Matrix3::new(1.0, 0.0, 0.5, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0);
        let g = GrayImage::from_fn(4, 1, |x, _| image::Luma([x as u8 * 10]));
        assert_eq!(warp_gray(&g, &half, 4, 1).as_raw(), &vec![5, 15, 25, 15]);
    }
}
