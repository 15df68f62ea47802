//! The sub-pixel refinement of a keypoint homography by an intensity method, in the
//! Lucas–Kanade family: Gauss–Newton on the 8 homography parameters, each step composed onto
//! the current warp, with the Jacobian of efficient second-order minimisation (Benhimane &
//! Malis 2004: the mean of the reference's and the warped photo's gradients). It runs on both
//! images smoothed by a 7x7 Gaussian (so the linearisation holds over a pixel or two), on the
//! reference's foreground pixels with the strongest gradient (one per small cell, so the whole
//! part counts), with a gain/bias fit per step (lighting may differ between photos) and Huber
//! weights (a defect must not pull the fit). It converges in about five steps.

use image::{GrayImage, RgbaImage};
use nalgebra::{Matrix3, SMatrix, SVector};
use rayon::prelude::*;

use crate::preprocess::homography::{self, Homography};

/// One reference pixel the refinement compares: its place (pixels, and normalised), value and
/// gradient (gray levels per pixel).
#[derive(Debug, Clone, Copy)]
struct Sample {
    x: f32,
    y: f32,
    xn: f32,
    yn: f32,
    t: f32,
    gx: f32,
    gy: f32,
}

/// The reference side of the intensity refinement, computed once per reference.
#[derive(Debug, Clone)]
pub(super) struct Template {
    /// Pixel -> normalised coordinates (centre at 0, half the larger side = 1), which keeps
    /// the 8x8 normal equations well conditioned.
    norm: Matrix3<f64>,
    norm_inv: Matrix3<f64>,
    samples: Vec<Sample>,
    /// Reference size, for the convergence test.
    size: (f64, f64),
    /// Pixels per normalised unit.
    scale: f64,
}

/// Most samples the refinement uses: plenty for 8 parameters, and fast.
const MAX_SAMPLES: usize = 60_000;
/// Smallest gradient (gray levels per pixel, central difference on the smoothed reference)
/// worth a sample.
const MIN_GRADIENT: f32 = 4.0;

impl Template {
    /// Number of reference pixels the refinement compares.
    pub(super) fn sample_count(&self) -> usize {
        self.samples.len()
    }

    /// Samples of the reference `img`, whose gray image smoothed by the 7x7 Gaussian is
    /// `gray`; `None` when it has too little foreground or texture to refine on.
    pub(super) fn new(img: &RgbaImage, gray: &GrayImage, bg_threshold: u8) -> Option<Template> {
        let (w, h) = (gray.width() as usize, gray.height() as usize);
        if w < 8 || h < 8 {
            return None;
        }
        let g = gray.as_raw();
        let rgba = img.as_raw();
        let fg = |x: usize, y: usize| {
            let p = &rgba[(y * w + x) * 4..(y * w + x) * 4 + 4];
            p[3] >= 128 && p[..3].iter().any(|&v| v > bg_threshold)
        };
        let fg_count = (0..h)
            .into_par_iter()
            .map(|y| (0..w).filter(|&x| fg(x, y)).count())
            .sum::<usize>();
        if fg_count < 64 {
            return None;
        }
        // Cells of `cell` x `cell` pixels, one sample (the strongest gradient) per cell.
        let cell = ((fg_count as f64 / MAX_SAMPLES as f64).sqrt().ceil() as usize).clamp(2, 64);
        let scale = (w.max(h) as f64) / 2.0;
        let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
        let norm = Matrix3::new(
            1.0 / scale,
            0.0,
            -cx / scale,
            0.0,
            1.0 / scale,
            -cy / scale,
            0.0,
            0.0,
            1.0,
        );
        let norm_inv = norm.try_inverse()?;
        let margin = 2usize;
        let cells_y = (h - 2 * margin) / cell;
        let cells_x = (w - 2 * margin) / cell;
        let min_g2 = MIN_GRADIENT * MIN_GRADIENT;
        let samples: Vec<Sample> = (0..cells_y)
            .into_par_iter()
            .flat_map_iter(|cy_i| {
                let mut found = Vec::new();
                for cx_i in 0..cells_x {
                    let mut best: Option<(f32, usize, usize, f32, f32)> = None;
                    for y in margin + cy_i * cell..margin + (cy_i + 1) * cell {
                        for x in margin + cx_i * cell..margin + (cx_i + 1) * cell {
                            if !fg(x, y) {
                                continue;
                            }
                            let gx =
                                (f32::from(g[y * w + x + 1]) - f32::from(g[y * w + x - 1])) * 0.5;
                            let gy = (f32::from(g[(y + 1) * w + x])
                                - f32::from(g[(y - 1) * w + x]))
                                * 0.5;
                            let m2 = gx * gx + gy * gy;
                            if m2 >= min_g2 && best.is_none_or(|b| m2 > b.0) {
                                best = Some((m2, x, y, gx, gy));
                            }
                        }
                    }
                    if let Some((_, x, y, gx, gy)) = best {
                        found.push((x, y, gx, gy));
                    }
                }
                found
            })
            .map(|(x, y, gx, gy)| Sample {
                x: x as f32,
                y: y as f32,
                xn: ((x as f64 - cx) / scale) as f32,
                yn: ((y as f64 - cy) / scale) as f32,
                t: f32::from(g[y * w + x]),
                gx,
                gy,
            })
            .collect();
        if samples.len() < 32 {
            return None;
        }
        Some(Template {
            norm,
            norm_inv,
            samples,
            size: (w as f64, h as f64),
            scale,
        })
    }
}

/// Bilinear sample of a gray image at (x, y); `None` outside the interpolable area.
#[inline]
fn sample_gray(g: &[u8], w: usize, h: usize, x: f64, y: f64) -> Option<f32> {
    if !(x >= 0.0 && y >= 0.0 && x < (w - 1) as f64 && y < (h - 1) as f64) {
        return None;
    }
    let (x0, y0) = (x as usize, y as usize);
    let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
    let i = y0 * w + x0;
    let a = f32::from(g[i]) + (f32::from(g[i + 1]) - f32::from(g[i])) * fx;
    let b = f32::from(g[i + w]) + (f32::from(g[i + w + 1]) - f32::from(g[i + w])) * fx;
    Some(a + (b - a) * fy)
}

/// What the refinement reads of the photo at one template pixel: the value where the warp puts
/// it and the gradient of the warped photo there (in template pixels), or `None` outside.
#[inline]
fn warped_sample(g: &[u8], w: usize, h: usize, m: &Matrix3<f64>, s: &Sample) -> Option<[f32; 3]> {
    let at = |dx: f64, dy: f64| -> Option<f32> {
        let (x, y) = (f64::from(s.x) + dx, f64::from(s.y) + dy);
        let den = m[(2, 0)] * x + m[(2, 1)] * y + m[(2, 2)];
        if den <= 1e-12 {
            return None;
        }
        let u = (m[(0, 0)] * x + m[(0, 1)] * y + m[(0, 2)]) / den;
        let v = (m[(1, 0)] * x + m[(1, 1)] * y + m[(1, 2)]) / den;
        sample_gray(g, w, h, u, v)
    };
    let c = at(0.0, 0.0)?;
    let (l, r) = (at(-1.0, 0.0)?, at(1.0, 0.0)?);
    let (u, d) = (at(0.0, -1.0)?, at(0.0, 1.0)?);
    Some([c, (r - l) * 0.5, (d - u) * 0.5])
}

/// Normal equations of one refinement step: the upper triangle of JᵀWJ (36) and JᵀWe (8).
type Normal = [f64; 44];

/// Sub-pixel refinement of `start` (photo -> reference) on the image intensities: Gauss–Newton
/// on the 8 homography parameters, composed onto the current warp each step, with the
/// Jacobian of efficient second-order minimisation (the mean of the reference's and the warped
/// photo's gradients, which converges in a few steps even when the photo is smoother than the
/// reference), a gain/bias fit per step, and Huber weights. Returns the refined photo ->
/// reference homography, or `None` when it cannot run or loses the image.
pub(super) fn refine_intensity(
    tpl: &Template,
    photo: &GrayImage,
    start: &Homography,
) -> Option<Homography> {
    let (w, h) = (photo.width() as usize, photo.height() as usize);
    if w < 3 || h < 3 {
        return None;
    }
    let g = photo.as_raw();
    // Reference -> photo: the warp that samples the photo at reference pixels.
    let mut m = start.try_inverse()?;
    let n = tpl.samples.len();
    let scale = tpl.scale as f32;
    let mut seen: Vec<Option<[f32; 3]>> = vec![None; n];
    let mut weights = vec![1.0f32; n];
    let mut abs_err: Vec<f32> = Vec::with_capacity(n);
    for _ in 0..30 {
        seen.par_iter_mut()
            .zip(tpl.samples.par_iter())
            .with_min_len(2048)
            .for_each(|(v, s)| *v = warped_sample(g, w, h, &m, s));
        let valid = seen.iter().filter(|v| v.is_some()).count();
        if valid < 32 || valid * 2 < n {
            return None;
        }
        // Gain and bias: photo ≈ a * reference + b (weighted least squares).
        let (mut sw, mut st, mut si, mut stt, mut sti) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
        for ((s, v), &wt) in tpl.samples.iter().zip(&seen).zip(&weights) {
            let Some([i, _, _]) = v else {
                continue;
            };
            let (t, i, wt) = (f64::from(s.t), f64::from(*i), f64::from(wt));
            sw += wt;
            st += wt * t;
            si += wt * i;
            stt += wt * t * t;
            sti += wt * t * i;
        }
        let var_t = stt * sw - st * st;
        let (mut a, mut b) = (1.0, (si - st) / sw);
        if var_t > 1e-9 * sw * sw {
            a = (sti * sw - st * si) / var_t;
            b = (si - a * st) / sw;
        }
        if !(a > 0.2 && a < 5.0) {
            a = 1.0;
            b = (si - st) / sw;
        }
        let (a, b) = (a as f32, b as f32);
        // Residuals in reference units, and Huber weights from their robust spread.
        abs_err.clear();
        for (s, v) in tpl.samples.iter().zip(&seen) {
            if let Some([i, _, _]) = v {
                abs_err.push(((i - b) / a - s.t).abs());
            }
        }
        let mid = abs_err.len() / 2;
        let (_, med, _) = abs_err.select_nth_unstable_by(mid, |p, q| p.total_cmp(q));
        let k = 1.345 * (1.4826 * *med).max(0.5);
        for (wt, (s, v)) in weights.iter_mut().zip(tpl.samples.iter().zip(&seen)) {
            if let Some([i, _, _]) = v {
                let e = ((i - b) / a - s.t).abs();
                *wt = if e <= k { 1.0 } else { k / e };
            }
        }
        let normal: Normal = tpl
            .samples
            .par_iter()
            .zip(seen.par_iter())
            .zip(weights.par_iter())
            .with_min_len(2048)
            .fold(
                || [0.0f64; 44],
                |mut acc, ((s, v), &wt)| {
                    let Some([i, ix, iy]) = v else {
                        return acc;
                    };
                    let e = (i - b) / a - s.t;
                    // Mean gradient, per normalised unit.
                    let gx = 0.5 * (s.gx + ix / a) * scale;
                    let gy = 0.5 * (s.gy + iy / a) * scale;
                    let r = gx * s.xn + gy * s.yn;
                    let j = [
                        gx * s.xn,
                        gx * s.yn,
                        gx,
                        gy * s.xn,
                        gy * s.yn,
                        gy,
                        -s.xn * r,
                        -s.yn * r,
                    ];
                    let mut k = 0;
                    for (p, &jp) in j.iter().enumerate() {
                        let wp = wt * jp;
                        for &jq in &j[p..] {
                            acc[k] += f64::from(wp * jq);
                            k += 1;
                        }
                        acc[36 + p] += f64::from(wp * e);
                    }
                    acc
                },
            )
            .reduce(
                || [0.0f64; 44],
                |mut x, y| {
                    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
                    x
                },
            );
        let mut jtj = SMatrix::<f64, 8, 8>::zeros();
        let mut k = 0;
        for p in 0..8 {
            for q in p..8 {
                jtj[(p, q)] = normal[k];
                jtj[(q, p)] = normal[k];
                k += 1;
            }
        }
        let jte = SVector::<f64, 8>::from_fn(|p, _| normal[36 + p]);
        let dp = jtj.cholesky()?.solve(&jte);
        if !dp.iter().all(|v| v.is_finite()) {
            return None;
        }
        let inc = Matrix3::new(
            1.0 + dp[0],
            dp[1],
            dp[2],
            dp[3],
            1.0 + dp[4],
            dp[5],
            dp[6],
            dp[7],
            1.0,
        );
        let inc_px = tpl.norm_inv * inc * tpl.norm;
        m = homography::normalized(&(m * inc_px.try_inverse()?));
        // Converged when the step moves no corner of the reference by 1/200 px.
        let move_px =
            homography::corner_error(&inc_px, &Matrix3::identity(), tpl.size.0, tpl.size.1);
        if move_px < 5e-3 {
            break;
        }
    }
    let out = homography::normalized(&m.try_inverse()?);
    out.iter().all(|v| v.is_finite()).then_some(out)
}
