//! Aligning a photo to a reference image: ORB keypoints ([`super::keypoints`]), brute-force
//! k=2 Hamming matching with Lowe's ratio test, a RANSAC homography ([`super::homography`]),
//! optional sub-pixel refinement by an intensity method, a bilinear warp into the reference
//! frame, and the quality scores ([`super::ssim`]).
//!
//! The refinement is a direct (intensity) method in the Lucas–Kanade family: Gauss–Newton on the
//! 8 homography parameters, each step composed onto the current warp, with the Jacobian of
//! efficient second-order minimisation (Benhimane & Malis 2004: the mean of the reference's and
//! the warped photo's gradients). It runs on both images smoothed by a 7x7 Gaussian (so the
//! linearisation holds over a pixel or two), on the reference's foreground pixels with the
//! strongest gradient (one per small cell, so the whole part counts), with a gain/bias fit per
//! step (lighting may differ between photos) and Huber weights (a defect must not pull the
//! fit). It converges in about five steps. The refined homography is kept only when its warp
//! scores a higher SSIM than the keypoint one.
//!
//! Everything here is pure: images and parameters in, an [`Aligned`] result or an
//! [`AlignError`] out. [`align_pair`] aligns to one reference; [`align_with_fallback`] tries a
//! list of references in order (the validation case).

use std::sync::OnceLock;

use image::{GrayImage, RgbaImage};
use nalgebra::{Matrix3, SMatrix, SVector};
use rayon::prelude::*;

use crate::simd::{self, Avx2, Popcnt};

use super::homography::{self, Homography, HomographyError, Point, RansacParams};
use super::keypoints::{self, Descriptor, Features, OrbParams};
use super::ssim::{GateImage, gray_of_rgba, photometric_mse, ssim};

/// Settings of an alignment (the `preprocessing.alignment` keys, plus what they imply).
#[derive(Debug, Clone, PartialEq)]
pub struct AlignParams {
    /// Lowe ratio: a match is good when its distance is below `knn_ratio` times the second best.
    pub knn_ratio: f64,
    /// More good matches than this are needed.
    pub number_of_points: usize,
    /// RANSAC reprojection threshold in pixels.
    pub ransac_threshold: f64,
    /// Minimum SSIM of an accepted alignment (`MIN_SCORE_THRESHOLD`).
    pub min_score: f64,
    /// Maximum grayscale MSE of an accepted alignment (`MAX_MSE_THRESHOLD`), measured after a
    /// gain and offset fit so that it measures alignment, not lighting.
    pub max_mse: f64,
    /// Minimum RANSAC inliers (`MIN_GOOD_MATCHES`).
    pub min_good_matches: usize,
    /// Keypoint detector settings.
    pub orb: OrbParams,
    /// Try the sub-pixel intensity refinement (kept only when it scores better).
    pub refine: bool,
    /// Seed of RANSAC's sampling.
    pub seed: u64,
    /// A pixel is foreground (used by the refinement) when one of R, G, B exceeds this and its
    /// alpha is at least 128.
    pub bg_threshold: u8,
}

impl Default for AlignParams {
    fn default() -> Self {
        AlignParams {
            knn_ratio: 0.8,
            number_of_points: 5,
            ransac_threshold: 7.0,
            min_score: 0.5,
            max_mse: 10.0,
            min_good_matches: 20,
            orb: OrbParams::default(),
            refine: true,
            seed: 101,
            bg_threshold: 15,
        }
    }
}

/// The image area `orb.n_features` is meant for: 1920x1080.
pub const REFERENCE_AREA: f64 = 1920.0 * 1080.0;

impl AlignParams {
    /// The detector settings for a `width` x `height` image: `orb.n_features` is the count for
    /// a 1920x1080 image and scales with the area (the same density of keypoints), never above
    /// `orb.n_features` and never below 1000 (or `orb.n_features` if that is smaller). Matching
    /// costs the square of the count, so a half-size photo is aligned 4x faster or more.
    pub fn orb_for(&self, width: u32, height: u32) -> OrbParams {
        let n = self.orb.n_features;
        let scaled = (n as f64 * f64::from(width) * f64::from(height) / REFERENCE_AREA).round();
        OrbParams {
            n_features: (scaled as usize).clamp(n.min(1000), n),
            ..self.orb.clone()
        }
    }

    /// The parameters of a resolved configuration.
    pub fn from_config(cfg: &crate::config::Config) -> AlignParams {
        let a = &cfg.params.preprocessing.alignment;
        AlignParams {
            knn_ratio: a.knn_ratio,
            number_of_points: a.number_of_points,
            ransac_threshold: a.ransac_threshold,
            min_score: a.min_score_threshold,
            max_mse: a.max_mse_threshold,
            min_good_matches: a.min_good_matches,
            orb: OrbParams {
                n_features: a.n_features,
                ..OrbParams::default()
            },
            refine: a.refine,
            seed: cfg.params.model_training.seed,
            bg_threshold: cfg.params.preprocessing.preprocessor.bg_threshold,
        }
    }
}

/// Why an image could not be aligned to a reference.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlignError {
    /// Too little texture to find keypoints.
    #[error("too few keypoints ({photo} in the image, {reference} in the reference)")]
    TooFewKeypoints {
        /// Keypoints in the photo.
        photo: usize,
        /// Keypoints in the reference.
        reference: usize,
    },
    /// Not enough matches pass the ratio test.
    #[error(
        "{found} good matches after the ratio test (knn_ratio {ratio}); more than number_of_points = {needed} are needed"
    )]
    TooFewMatches {
        /// Good matches.
        found: usize,
        /// `number_of_points`.
        needed: usize,
        /// The ratio used.
        ratio: f64,
    },
    /// RANSAC found fewer inliers than `MIN_GOOD_MATCHES`.
    #[error(
        "{found} RANSAC inliers (ransac_threshold {threshold} px); MIN_GOOD_MATCHES = {needed} are needed"
    )]
    TooFewInliers {
        /// Inliers of the best model.
        found: usize,
        /// `MIN_GOOD_MATCHES`.
        needed: usize,
        /// The threshold used.
        threshold: f64,
    },
    /// The homography could not be estimated, or it folds the image.
    #[error("no usable homography: {0}")]
    Homography(#[from] HomographyError),
    /// The alignment's SSIM is below `MIN_SCORE_THRESHOLD`.
    #[error("SSIM {ssim:.4} is below MIN_SCORE_THRESHOLD {min}")]
    LowScore {
        /// The SSIM reached.
        ssim: f64,
        /// The threshold.
        min: f64,
    },
    /// The alignment's MSE is above `MAX_MSE_THRESHOLD`.
    #[error(
        "MSE {mse:.3} (after fitting gain and offset to the reference) is above MAX_MSE_THRESHOLD {max}: the part's texture does not line up"
    )]
    HighMse {
        /// The MSE reached.
        mse: f64,
        /// The threshold.
        max: f64,
    },
    /// A reference could not be prepared (e.g. its file could not be read).
    #[error("reference unavailable: {0}")]
    Reference(String),
}

/// One good match: `query` indexes the photo's keypoints, `train` the reference's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// Keypoint index in the photo.
    pub query: usize,
    /// Keypoint index in the reference.
    pub train: usize,
    /// Hamming distance of the descriptors.
    pub distance: u32,
}

/// Brute-force k=2 Hamming matching of every `query` descriptor against all `train`
/// descriptors, keeping the matches whose best distance is below `ratio` times the second best
/// (Lowe's test). Needs at least two `train` descriptors; the result is in `query` order.
pub fn match_knn(query: &[Descriptor], train: &[Descriptor], ratio: f64) -> Vec<Match> {
    if train.len() < 2 {
        return Vec::new();
    }
    // Matching is 25 million distances per pair; `popcnt` counts a word's bits in one
    // instruction where baseline x86-64 needs a dozen.
    let popcnt = Popcnt::detect();
    query
        .par_iter()
        .enumerate()
        .with_min_len(64)
        .filter_map(|(qi, q)| {
            let (d1, d2, i1) = simd::dispatch!(popcnt, best_two(q, train));
            (f64::from(d1) < ratio * f64::from(d2)).then_some(Match {
                query: qi,
                train: i1,
                distance: d1,
            })
        })
        .collect()
}

/// The two smallest distances from `q` to `train` and the index of the smallest (the first
/// one on ties). Distances are computed 8 at a time and the running best two are touched only
/// when a block holds a distance below the second best: most blocks do not, and the
/// independent distances of a block keep the processor busy instead of waiting on the
/// comparisons of the previous one.
#[inline(always)]
fn best_two(q: &Descriptor, train: &[Descriptor]) -> (u32, u32, usize) {
    let (mut d1, mut d2, mut i1) = (u32::MAX, u32::MAX, 0usize);
    let mut update = |d: u32, ti: usize, d1: &mut u32, d2: &mut u32| {
        if d < *d2 {
            if d < *d1 {
                *d2 = *d1;
                *d1 = d;
                i1 = ti;
            } else {
                *d2 = d;
            }
        }
    };
    let blocks = train.chunks_exact(8);
    let rest = blocks.remainder();
    let rest_start = train.len() - rest.len();
    for (b, block) in blocks.enumerate() {
        let d: [u32; 8] = std::array::from_fn(|k| keypoints::hamming(q, &block[k]));
        let low = d[0]
            .min(d[1])
            .min(d[2].min(d[3]))
            .min(d[4].min(d[5]).min(d[6].min(d[7])));
        if low < d2 {
            for (k, &dk) in d.iter().enumerate() {
                update(dk, b * 8 + k, &mut d1, &mut d2);
            }
        }
    }
    for (k, t) in rest.iter().enumerate() {
        update(keypoints::hamming(q, t), rest_start + k, &mut d1, &mut d2);
    }
    (d1, d2, i1)
}

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
struct Template {
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
    /// Samples of the reference `img`, whose gray image smoothed by the 7x7 Gaussian is
    /// `gray`; `None` when it has too little foreground or texture to refine on.
    fn new(img: &RgbaImage, gray: &GrayImage, bg_threshold: u8) -> Option<Template> {
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
fn refine_intensity(tpl: &Template, photo: &GrayImage, start: &Homography) -> Option<Homography> {
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

/// A reference image prepared for alignment: its gray image, keypoints and descriptors, and
/// (with refinement on) the samples of the intensity refinement.
#[derive(Debug, Clone)]
pub struct Reference {
    width: u32,
    height: u32,
    gray: GrayImage,
    gate: GateImage,
    features: Features,
    template: Option<Template>,
}

impl Reference {
    /// Prepares `img` (RGBA; alpha marks the background for the refinement) with `params`.
    pub fn new(img: &RgbaImage, params: &AlignParams) -> Reference {
        let gray = gray_of_rgba(img);
        let features =
            keypoints::detect_and_compute(&gray, &params.orb_for(img.width(), img.height()));
        let template = if params.refine {
            Template::new(img, &keypoints::gaussian_blur_7(&gray), params.bg_threshold)
        } else {
            None
        };
        Reference {
            width: img.width(),
            height: img.height(),
            gray,
            gate: GateImage::new(img),
            features,
            template,
        }
    }

    /// Width and height of the reference frame.
    pub fn dimensions(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The reference's gray image.
    pub fn gray(&self) -> &GrayImage {
        &self.gray
    }

    /// Its keypoints and descriptors.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// Number of samples the intensity refinement uses (0 when it is off or impossible).
    pub fn refinement_samples(&self) -> usize {
        self.template.as_ref().map_or(0, |t| t.samples.len())
    }
}

/// An image aligned to a reference.
#[derive(Debug, Clone)]
pub struct Aligned {
    /// The image warped into the reference frame (reference size; black and transparent where
    /// the photo does not reach).
    pub image: RgbaImage,
    /// The homography from photo pixels to reference pixels.
    pub homography: Homography,
    /// Keypoints found in the photo.
    pub keypoints: usize,
    /// Matches that passed the ratio test.
    pub good_matches: usize,
    /// RANSAC inliers among them.
    pub inliers: usize,
    /// `inliers / good_matches`.
    pub inlier_ratio: f64,
    /// Root-mean-square reprojection error of the inliers under the keypoint homography (px).
    pub rms: f64,
    /// SSIM of the aligned image against the reference (gray, 3x3 window).
    pub ssim: f64,
    /// Gray MSE of the aligned image against the reference after fitting it to the reference
    /// with a gain and an offset, over the pixels both show ([`super::ssim::photometric_mse`]).
    pub mse: f64,
    /// True when the intensity refinement was kept (it scored a higher SSIM).
    pub refined: bool,
    /// The (up to) 10 inlier matches with the smallest descriptor distance, as
    /// (photo point, reference point), for drawing.
    pub best_matches: Vec<(Point, Point)>,
}

impl Aligned {
    /// Checks the quality gates: SSIM at least `min_score`, MSE at most `max_mse`.
    pub fn check_gates(&self, params: &AlignParams) -> Result<(), AlignError> {
        if self.ssim.is_nan() || self.ssim < params.min_score {
            return Err(AlignError::LowScore {
                ssim: self.ssim,
                min: params.min_score,
            });
        }
        if self.mse.is_nan() || self.mse > params.max_mse {
            return Err(AlignError::HighMse {
                mse: self.mse,
                max: params.max_mse,
            });
        }
        Ok(())
    }
}

/// True when `h` (photo -> reference) is usable: finite, and the reference frame's corners map
/// back to finite points in front of the camera (no fold through infinity).
fn usable(h: &Homography, reference: (u32, u32)) -> bool {
    let Some(inv) = h.try_inverse() else {
        return false;
    };
    let (w, hh) = (f64::from(reference.0), f64::from(reference.1));
    h.iter().all(|v| v.is_finite())
        && [[0.0, 0.0], [w, 0.0], [w, hh], [0.0, hh]].iter().all(|c| {
            let d = inv[(2, 0)] * c[0] + inv[(2, 1)] * c[1] + inv[(2, 2)];
            d > 1e-9
        })
}

/// Aligns `photo` to `reference`: keypoints, matching, RANSAC, warp, and — with
/// `params.refine` — the intensity refinement, keeping whichever warp has the higher SSIM.
///
/// The quality gates are not applied here (see [`Aligned::check_gates`]); the errors are the
/// cases where no alignment exists at all: too few keypoints, matches or inliers, or a
/// degenerate homography.
pub fn align_pair(
    photo: &RgbaImage,
    reference: &Reference,
    params: &AlignParams,
) -> Result<Aligned, AlignError> {
    let gray = gray_of_rgba(photo);
    let feats =
        keypoints::detect_and_compute(&gray, &params.orb_for(photo.width(), photo.height()));
    let rf = &reference.features;
    if feats.len() < 4 || rf.len() < 4 {
        return Err(AlignError::TooFewKeypoints {
            photo: feats.len(),
            reference: rf.len(),
        });
    }
    let matches = match_knn(&feats.descriptors, &rf.descriptors, params.knn_ratio);
    if matches.len() <= params.number_of_points || matches.len() < 4 {
        return Err(AlignError::TooFewMatches {
            found: matches.len(),
            needed: params.number_of_points.max(3),
            ratio: params.knn_ratio,
        });
    }
    let mut src = Vec::with_capacity(matches.len());
    let mut dst = Vec::with_capacity(matches.len());
    let mut wts = Vec::with_capacity(matches.len());
    for m in &matches {
        let a = feats.keypoints[m.query];
        let b = rf.keypoints[m.train];
        src.push([f64::from(a.x), f64::from(a.y)]);
        dst.push([f64::from(b.x), f64::from(b.y)]);
        // A keypoint from a coarse level is only known to about its level's pixel size.
        wts.push(2.0 / (f64::from(a.scale).powi(2) + f64::from(b.scale).powi(2)));
    }
    let ransac = RansacParams {
        threshold: params.ransac_threshold,
        seed: params.seed,
        ..RansacParams::default()
    };
    let est = homography::ransac(&src, &dst, Some(&wts), &ransac, params.min_good_matches)
        .map_err(|e| match e {
            HomographyError::NoConsensus { best, needed } => AlignError::TooFewInliers {
                found: best,
                needed,
                threshold: params.ransac_threshold,
            },
            other => AlignError::Homography(other),
        })?;
    let dims = reference.dimensions();
    if !usable(&est.h, dims) {
        return Err(AlignError::Homography(HomographyError::Degenerate));
    }
    let mut candidates = vec![(est.h, false)];
    if params.refine
        && let Some(tpl) = &reference.template
        // The photo smoothed like the reference's template.
        && let Some(h) = refine_intensity(tpl, &keypoints::gaussian_blur_7(&gray), &est.h)
        && usable(&h, dims)
    {
        candidates.push((h, true));
    }
    // Score each candidate on the gray image (a quarter of the warping work), then warp the
    // colour image once with the winner and score that exactly as the gates define it.
    let mut best: Option<(Homography, bool, f64)> = None;
    if candidates.len() > 1 {
        for (h, refined) in candidates {
            let Some(inv) = h.try_inverse() else {
                continue;
            };
            let warped = warp_gray(&gray, &inv, dims.0, dims.1);
            let Some(s) = ssim(&warped, &reference.gray) else {
                continue;
            };
            if best.as_ref().is_none_or(|b| s > b.2) {
                best = Some((h, refined, s));
            }
        }
    } else {
        best = candidates.pop().map(|(h, r)| (h, r, f64::NAN));
    }
    let Some((h, refined, _)) = best else {
        return Err(AlignError::Homography(HomographyError::Degenerate));
    };
    let inv = h
        .try_inverse()
        .ok_or(AlignError::Homography(HomographyError::Degenerate))?;
    let image = warp_rgba(photo, &inv, dims.0, dims.1);
    let g = gray_of_rgba(&image);
    let (Some(s), Some(e)) = (
        ssim(&g, &reference.gray),
        photometric_mse(&GateImage::new(&image), &reference.gate),
    ) else {
        return Err(AlignError::Homography(HomographyError::Degenerate));
    };
    let mut inlier_matches: Vec<&Match> = matches
        .iter()
        .zip(&est.inliers)
        .filter(|(_, ok)| **ok)
        .map(|(m, _)| m)
        .collect();
    inlier_matches.sort_by_key(|m| (m.distance, m.query));
    let best_matches = inlier_matches
        .iter()
        .take(10)
        .map(|m| (src_of(&feats, m.query), src_of(rf, m.train)))
        .collect();
    Ok(Aligned {
        image,
        homography: h,
        keypoints: feats.len(),
        good_matches: matches.len(),
        inliers: est.n_inliers,
        inlier_ratio: est.n_inliers as f64 / matches.len() as f64,
        rms: est.rms,
        ssim: s,
        mse: e,
        refined,
        best_matches,
    })
}

fn src_of(f: &Features, i: usize) -> Point {
    let k = f.keypoints[i];
    [f64::from(k.x), f64::from(k.y)]
}

/// Where a candidate reference's pixels come from.
enum Source<'a> {
    Image(RgbaImage),
    Loader(Box<dyn Fn() -> Result<RgbaImage, String> + Send + Sync + 'a>),
}

/// An ordered list of candidate references (the first is the one to use; the others are
/// fallbacks), each prepared on first use and kept, so a validation run prepares only the
/// fallbacks it needs. Safe to share between threads.
#[derive(Default)]
pub struct ReferenceSet<'a> {
    names: Vec<String>,
    sources: Vec<Source<'a>>,
    prepared: Vec<OnceLock<Result<Reference, String>>>,
}

impl<'a> ReferenceSet<'a> {
    /// An empty set.
    pub fn new() -> Self {
        ReferenceSet {
            names: Vec::new(),
            sources: Vec::new(),
            prepared: Vec::new(),
        }
    }

    /// Appends a candidate given by its pixels.
    pub fn push_image(&mut self, name: impl Into<String>, img: RgbaImage) {
        self.names.push(name.into());
        self.sources.push(Source::Image(img));
        self.prepared.push(OnceLock::new());
    }

    /// Appends a candidate read on first use by `load` (e.g. from a file); an `Err` message
    /// makes that candidate fail, and the next one is tried.
    pub fn push_loader<F>(&mut self, name: impl Into<String>, load: F)
    where
        F: Fn() -> Result<RgbaImage, String> + Send + Sync + 'a,
    {
        self.names.push(name.into());
        self.sources.push(Source::Loader(Box::new(load)));
        self.prepared.push(OnceLock::new());
    }

    /// Number of candidates.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True without candidates.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Name of candidate `i`.
    pub fn name(&self, i: usize) -> Option<&str> {
        self.names.get(i).map(String::as_str)
    }

    /// Candidate `i`, prepared with `params` on first use (later calls reuse that preparation,
    /// so pass the same `params` every time).
    pub fn get(&self, i: usize, params: &AlignParams) -> Result<&Reference, AlignError> {
        let Some(slot) = self.prepared.get(i) else {
            return Err(AlignError::Reference(format!("no reference number {i}")));
        };
        slot.get_or_init(|| match &self.sources[i] {
            Source::Image(img) => Ok(Reference::new(img, params)),
            Source::Loader(load) => load().map(|img| Reference::new(&img, params)),
        })
        .as_ref()
        .map_err(|e| AlignError::Reference(e.clone()))
    }
}

/// The result of [`align_with_fallback`].
#[derive(Debug, Clone)]
pub struct Chosen {
    /// Index of the reference used in the [`ReferenceSet`].
    pub reference: usize,
    /// The alignment to it.
    pub aligned: Aligned,
    /// The candidates tried before it and why each was passed over.
    pub passed_over: Vec<(usize, AlignError)>,
}

/// No candidate reference passed the gates.
#[derive(Debug, Clone)]
pub struct AlignFailure {
    /// Every candidate tried, with why it failed.
    pub attempts: Vec<(usize, AlignError)>,
    /// The alignment with the highest SSIM among those that produced one (the original PIXAL
    /// used it anyway; the caller decides).
    pub best: Option<(usize, Box<Aligned>)>,
}

impl std::fmt::Display for AlignFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.attempts.is_empty() {
            return write!(f, "no reference to align to");
        }
        write!(f, "could not be aligned to ")?;
        if self.attempts.len() == 1 {
            write!(f, "the reference: {}", self.attempts[0].1)
        } else {
            write!(f, "any of {} references:", self.attempts.len())?;
            for (i, e) in &self.attempts {
                write!(f, " [{i}] {e};")?;
            }
            Ok(())
        }
    }
}

impl std::error::Error for AlignFailure {}

/// Aligns `photo` to the first candidate of `references` (the training reference); only when
/// that fails — no alignment, or one that misses the SSIM/MSE gates — are the other candidates
/// tried, in order, and the first that passes is taken. The homography maps the photo to the
/// reference frame whichever candidate was used, since every candidate is already in it.
pub fn align_with_fallback(
    photo: &RgbaImage,
    references: &ReferenceSet<'_>,
    params: &AlignParams,
) -> Result<Chosen, AlignFailure> {
    let mut attempts: Vec<(usize, AlignError)> = Vec::new();
    let mut best: Option<(usize, Box<Aligned>)> = None;
    for i in 0..references.len() {
        let r = references
            .get(i, params)
            .and_then(|r| align_pair(photo, r, params));
        match r {
            Ok(a) => match a.check_gates(params) {
                Ok(()) => {
                    return Ok(Chosen {
                        reference: i,
                        aligned: a,
                        passed_over: attempts,
                    });
                }
                Err(e) => {
                    attempts.push((i, e));
                    if best.as_ref().is_none_or(|b| a.ssim > b.1.ssim) {
                        best = Some((i, Box::new(a)));
                    }
                }
            },
            Err(e) => attempts.push((i, e)),
        }
    }
    Err(AlignFailure { attempts, best })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knn_ratio_test_keeps_distinct_matches() {
        let a: Descriptor = [0, 0, 0, 0];
        let b: Descriptor = [u64::MAX, 0, 0, 0];
        let c: Descriptor = [0, u64::MAX, u64::MAX, 0];
        let near_a: Descriptor = [0b111, 0, 0, 0];
        let m = match_knn(&[near_a, b], &[a, b, c], 0.8);
        assert_eq!(
            m,
            vec![
                Match {
                    query: 0,
                    train: 0,
                    distance: 3
                },
                Match {
                    query: 1,
                    train: 1,
                    distance: 0
                }
            ]
        );
        // Two equally good candidates: ambiguous, dropped.
        assert!(match_knn(&[a], &[b, b], 0.8).is_empty());
        assert!(match_knn(&[a], &[a], 0.8).is_empty());
    }

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

    #[test]
    fn keypoint_count_follows_the_area() {
        let p = AlignParams::default();
        assert_eq!(p.orb_for(1920, 1080).n_features, 4000);
        assert_eq!(p.orb_for(3840, 2160).n_features, 4000);
        assert_eq!(p.orb_for(1280, 720).n_features, 1778);
        assert_eq!(p.orb_for(960, 540).n_features, 1000);
        assert_eq!(p.orb_for(100, 100).n_features, 1000);
        let few = AlignParams {
            orb: OrbParams {
                n_features: 300,
                ..OrbParams::default()
            },
            ..AlignParams::default()
        };
        assert_eq!(few.orb_for(640, 480).n_features, 300);
    }

    #[test]
    fn gates_reject_low_ssim_and_high_mse() {
        let a = Aligned {
            image: RgbaImage::new(1, 1),
            homography: Matrix3::identity(),
            keypoints: 0,
            good_matches: 0,
            inliers: 0,
            inlier_ratio: 0.0,
            rms: 0.0,
            ssim: 0.6,
            mse: 12.0,
            refined: false,
            best_matches: vec![],
        };
        let p = AlignParams::default();
        assert!(matches!(a.check_gates(&p), Err(AlignError::HighMse { .. })));
        let lo = Aligned {
            ssim: 0.4,
            ..a.clone()
        };
        assert!(matches!(
            lo.check_gates(&p),
            Err(AlignError::LowScore { .. })
        ));
        let nan = Aligned {
            ssim: f64::NAN,
            ..a.clone()
        };
        assert!(nan.check_gates(&p).is_err());
        let ok = Aligned { mse: 3.0, ..a };
        assert!(ok.check_gates(&p).is_ok());
    }

    #[test]
    fn a_flat_photo_is_an_error_not_a_panic() {
        let flat = RgbaImage::from_pixel(200, 150, image::Rgba([80, 80, 80, 255]));
        let r = Reference::new(&flat, &AlignParams::default());
        assert!(matches!(
            align_pair(&flat, &r, &AlignParams::default()),
            Err(AlignError::TooFewKeypoints { .. })
        ));
        let mut set = ReferenceSet::new();
        set.push_loader("missing", || Err("no such file".to_string()));
        set.push_image("flat", flat.clone());
        let e = align_with_fallback(&flat, &set, &AlignParams::default()).unwrap_err();
        assert_eq!(e.attempts.len(), 2);
        assert!(e.best.is_none());
        assert!(e.to_string().contains("no such file"), "{e}");
    }
}
