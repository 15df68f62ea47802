//! ORB keypoints and descriptors (Rublee et al. 2011, as OpenCV's `cv::ORB` defines them).
//!
//! The steps, each as OpenCV does it unless said otherwise:
//!
//! 1. **Pyramid**: [`OrbParams::n_levels`] levels (8), each `1 / scale_factor` (1.2) the size of
//!    the one before, resized with bilinear interpolation from the previous level.
//! 2. **FAST-9** corners (16-pixel Bresenham circle of radius 3, 9 contiguous pixels all brighter
//!    or all darker than the centre by more than [`OrbParams::fast_threshold`]), with 3x3
//!    non-maximum suppression on the FAST score, away from the border by
//!    [`OrbParams::edge_threshold`].
//! 3. **Harris** response (7x7 block of Sobel gradients, k = 0.04) ranks the corners.
//! 4. **Spread** (pixal's addition): OpenCV keeps the strongest corners wherever they are, so a
//!    textured corner of the part can take all of them. Here each level is cut into cells and the
//!    corners are taken round-robin — the best of every cell first, then the second best, ... —
//!    until the level's share of [`OrbParams::n_features`] is reached. The shares follow OpenCV:
//!    a geometric series over the levels.
//! 5. **Orientation** by the intensity centroid of the circular patch of radius 15.
//! 6. **rBRIEF**: the 256 learned point pairs of OpenCV (`bit_pattern_31_`), rotated by the
//!    keypoint's angle, compared on the level image smoothed with a 7x7 Gaussian (sigma 2).
//!
//! Everything is pure (images in, keypoints out) and runs the levels and rows in parallel.

use crate::simd::{self, Avx2};
use image::GrayImage;
use rayon::prelude::*;

/// A 256-bit binary descriptor: bit `i` is 1 when the first point of pair `i` is darker than
/// the second (bit `i` of word `i / 64`).
pub type Descriptor = [u64; 4];

/// Parameters of the detector. The defaults are OpenCV's, except the number of features.
#[derive(Debug, Clone, PartialEq)]
pub struct OrbParams {
    /// How many keypoints to keep over all levels (OpenCV's default is 500, too few for the
    /// sub-pixel homographies of 1920x1080 photos).
    pub n_features: usize,
    /// Size ratio between two pyramid levels (> 1).
    pub scale_factor: f32,
    /// Number of pyramid levels (>= 1).
    pub n_levels: usize,
    /// Corners closer than this to a level's border are left out, so the oriented patch and
    /// the rotated BRIEF pattern stay inside the image.
    pub edge_threshold: usize,
    /// FAST intensity threshold (0..255).
    pub fast_threshold: u8,
}

impl Default for OrbParams {
    fn default() -> Self {
        OrbParams {
            n_features: 4000,
            scale_factor: 1.2,
            n_levels: 8,
            edge_threshold: 31,
            fast_threshold: 20,
        }
    }
}

/// One keypoint, in the coordinates of the full-resolution image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Keypoint {
    /// Column, pixel centres at integers.
    pub x: f32,
    /// Row, pixel centres at integers.
    pub y: f32,
    /// Pyramid level it was found on (0 = full resolution).
    pub level: u8,
    /// Size ratio of its level to the full image (1.2^level, up to rounding of the level size):
    /// its position is only known to about this many pixels.
    pub scale: f32,
    /// Orientation in radians (intensity centroid), in (-pi, pi].
    pub angle: f32,
    /// Harris response (ranking only; its scale is arbitrary).
    pub response: f32,
}

/// Keypoints and their descriptors, index for index.
#[derive(Debug, Clone, Default)]
pub struct Features {
    /// The keypoints.
    pub keypoints: Vec<Keypoint>,
    /// One descriptor per keypoint.
    pub descriptors: Vec<Descriptor>,
}

impl Features {
    /// Number of keypoints.
    pub fn len(&self) -> usize {
        self.keypoints.len()
    }

    /// True when no keypoint was found.
    pub fn is_empty(&self) -> bool {
        self.keypoints.is_empty()
    }
}

/// Hamming distance between two descriptors (number of differing bits, 0..=256).
#[inline]
pub fn hamming(a: &Descriptor, b: &Descriptor) -> u32 {
    (a[0] ^ b[0]).count_ones()
        + (a[1] ^ b[1]).count_ones()
        + (a[2] ^ b[2]).count_ones()
        + (a[3] ^ b[3]).count_ones()
}

/// Radius of the patch used for the orientation (OpenCV: patch size 31).
const HALF_PATCH: i32 = 15;
/// Harris block size and constant (OpenCV's `HarrisResponses`).
const HARRIS_BLOCK: i32 = 7;
const HARRIS_K: f32 = 0.04;

/// Offsets (dx, dy) of the 16 pixels of the FAST circle, in OpenCV's order.
const CIRCLE: [(i32, i32); 16] = [
    (0, 3),
    (1, 3),
    (2, 2),
    (3, 1),
    (3, 0),
    (3, -1),
    (2, -2),
    (1, -3),
    (0, -3),
    (-1, -3),
    (-2, -2),
    (-3, -1),
    (-3, 0),
    (-3, 1),
    (-2, 2),
    (-1, 3),
];

/// One pyramid level: its pixels and the factors that map its coordinates to level 0.
struct Level {
    img: GrayImage,
    /// Full width / level width, full height / level height.
    sx: f32,
    sy: f32,
}

/// Detects ORB keypoints on `gray` and computes their rotated BRIEF descriptors.
///
/// Returns at most `params.n_features` keypoints (fewer on images with little texture; none on a
/// flat or tiny image). The result is deterministic.
pub fn detect_and_compute(gray: &GrayImage, params: &OrbParams) -> Features {
    let levels = pyramid(gray, params);
    let n_levels = levels.len();
    if n_levels == 0 || params.n_features == 0 {
        return Features::default();
    }
    let shares = level_shares(params.n_features, params.scale_factor, n_levels);
    let per_level: Vec<Features> = levels
        .par_iter()
        .enumerate()
        .map(|(l, level)| level_features(level, l as u8, shares[l], params))
        .collect();
    let mut out = Features::default();
    for f in per_level {
        out.keypoints.extend(f.keypoints);
        out.descriptors.extend(f.descriptors);
    }
    out
}

/// OpenCV's split of `n` features over the levels: a geometric series with ratio
/// `1 / scale_factor`, the last level taking what is left.
fn level_shares(n: usize, scale_factor: f32, n_levels: usize) -> Vec<usize> {
    let factor = 1.0 / f64::from(scale_factor.max(1.0001));
    let mut desired = n as f64 * (1.0 - factor) / (1.0 - factor.powi(n_levels as i32));
    let mut shares = Vec::with_capacity(n_levels);
    let mut sum = 0;
    for _ in 0..n_levels.saturating_sub(1) {
        let s = desired.round() as usize;
        shares.push(s);
        sum += s;
        desired *= factor;
    }
    shares.push(n.saturating_sub(sum));
    shares
}

/// The pyramid; levels too small to hold one keypoint are left out.
fn pyramid(gray: &GrayImage, params: &OrbParams) -> Vec<Level> {
    let (w0, h0) = gray.dimensions();
    let min_side = 2 * params.edge_threshold.max(HALF_PATCH as usize + 4) as u32 + 1;
    let mut levels: Vec<Level> = Vec::new();
    if w0 < min_side || h0 < min_side {
        return levels;
    }
    levels.push(Level {
        img: gray.clone(),
        sx: 1.0,
        sy: 1.0,
    });
    let scale = f64::from(params.scale_factor.max(1.0001));
    for l in 1..params.n_levels.max(1) {
        let s = scale.powi(l as i32);
        let w = (f64::from(w0) / s).round() as u32;
        let h = (f64::from(h0) / s).round() as u32;
        if w < min_side || h < min_side {
            break;
        }
        let prev = &levels[levels.len() - 1].img;
        let img = resize_bilinear(prev, w, h);
        levels.push(Level {
            img,
            sx: w0 as f32 / w as f32,
            sy: h0 as f32 / h as f32,
        });
    }
    levels
}

/// Bilinear resize with pixel centres aligned (OpenCV's `INTER_LINEAR` geometry), in 11-bit
/// fixed point, rows in parallel.
pub fn resize_bilinear(src: &GrayImage, w: u32, h: u32) -> GrayImage {
    const ONE: u32 = 1 << 11;
    let (sw, sh) = src.dimensions();
    let mut out = GrayImage::new(w, h);
    if w == 0 || h == 0 || sw == 0 || sh == 0 {
        return out;
    }
    let fx = f64::from(sw) / f64::from(w);
    let fy = f64::from(sh) / f64::from(h);
    // Source position of an output pixel centre: integer part and 11-bit fraction.
    let tap = |i: u32, f: f64, n: u32| -> (usize, usize, u32) {
        let s = ((f64::from(i) + 0.5) * f - 0.5).clamp(0.0, f64::from(n - 1));
        let i0 = s as usize;
        let i1 = (i0 + 1).min(n as usize - 1);
        let frac = (((s - i0 as f64) * f64::from(ONE)) + 0.5) as u32;
        (i0, i1, frac.min(ONE))
    };
    // Column taps are the same for every row: compute them once.
    let cols: Vec<(usize, usize, u32)> = (0..w).map(|x| tap(x, fx, sw)).collect();
    let sw = sw as usize;
    let data = src.as_raw();
    out.par_chunks_mut(w as usize)
        .enumerate()
        .for_each(|(y, row)| {
            let (y0, y1, wy) = tap(y as u32, fy, sh);
            let r0 = &data[y0 * sw..(y0 + 1) * sw];
            let r1 = &data[y1 * sw..(y1 + 1) * sw];
            for (o, &(x0, x1, wx)) in row.iter_mut().zip(&cols) {
                let a = u32::from(r0[x0]) * (ONE - wx) + u32::from(r0[x1]) * wx;
                let b = u32::from(r1[x0]) * (ONE - wx) + u32::from(r1[x1]) * wx;
                *o = ((a * (ONE - wy) + b * wy + (1 << 21)) >> 22) as u8;
            }
        });
    out
}

/// A FAST corner on one level before selection.
#[derive(Clone, Copy)]
struct Corner {
    x: i32,
    y: i32,
    score: u8,
    harris: f32,
}

fn level_features(level: &Level, l: u8, share: usize, params: &OrbParams) -> Features {
    let img = &level.img;
    let (w, h) = (img.width() as i32, img.height() as i32);
    let border = params.edge_threshold.max(HALF_PATCH as usize + 4) as i32;
    if share == 0 || w <= 2 * border || h <= 2 * border {
        return Features::default();
    }
    let mut corners = fast_corners(img, params.fast_threshold, border);
    // Like OpenCV, keep a bounded number of corners by FAST score before the (costlier) Harris
    // ranking; more than OpenCV's 2x, because the spreading below needs choice in every cell.
    let keep = share.saturating_mul(4).max(64);
    if corners.len() > keep {
        corners.select_nth_unstable_by(keep, |a, b| b.score.cmp(&a.score));
        corners.truncate(keep);
    }
    corners.par_iter_mut().for_each(|c| {
        c.harris = harris_response(img, c.x, c.y);
    });
    let chosen = spread(&corners, share, w, h);

    let blurred = gaussian_blur_7(img);
    let umax = umax_table();
    let mut out = Features {
        keypoints: Vec::with_capacity(chosen.len()),
        descriptors: Vec::with_capacity(chosen.len()),
    };
    let described: Vec<(Keypoint, Descriptor)> = chosen
        .par_iter()
        .map(|c| {
            let angle = ic_angle(img, c.x, c.y, &umax);
            let d = rbrief(&blurred, c.x, c.y, angle);
            let kp = Keypoint {
                x: (c.x as f32 + 0.5) * level.sx - 0.5,
                y: (c.y as f32 + 0.5) * level.sy - 0.5,
                level: l,
                scale: 0.5 * (level.sx + level.sy),
                angle,
                response: c.harris,
            };
            (kp, d)
        })
        .collect();
    for (kp, d) in described {
        out.keypoints.push(kp);
        out.descriptors.push(d);
    }
    out
}

/// FAST-9 corners with 3x3 non-maximum suppression, at least `border` pixels inside the image.
fn fast_corners(img: &GrayImage, threshold: u8, border: i32) -> Vec<Corner> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let b = border as usize;
    let data = img.as_raw();
    let offsets: [isize; 16] = CIRCLE.map(|(dx, dy)| dy as isize * w as isize + dx as isize);
    // Scores for rows b-1 ..= h-b (one row and column more than the corners, for the
    // suppression); 0 = not a corner.
    let mut scores = vec![0u8; w * h];
    let t = i16::from(threshold);
    let (x0, x1) = (b - 1, w - b + 1);
    let n = x1 - x0;
    let avx2 = Avx2::detect();
    scores[(b - 1) * w..(h - b + 1) * w]
        .par_chunks_mut(w)
        .enumerate()
        .for_each_init(
            || (vec![0u8; n], vec![0u8; n]),
            |(nb, nd), (i, row)| {
                let y = b - 1 + i;
                let at = |dx: isize, dy: isize| {
                    let start = ((y as isize + dy) * w as isize + x0 as isize + dx) as usize;
                    &data[start..start + n]
                };
                let ring = [
                    at(0, 3),
                    at(2, 2),
                    at(3, 0),
                    at(2, -2),
                    at(0, -3),
                    at(-2, -2),
                    at(-3, 0),
                    at(-2, 2),
                ];
                simd::dispatch!(avx2, fast_pretest(at(0, 0), &ring, threshold, nb, nd));
                for (k, (&b_, &d_)) in nb.iter().zip(nd.iter()).enumerate() {
                    if b_ >= 4 || d_ >= 4 {
                        let x = x0 + k;
                        row[x] = fast_score(data, y * w + x, &offsets, t);
                    }
                }
            },
        );
    let scores = &scores;
    ((b as i32)..(h as i32 - border))
        .into_par_iter()
        .flat_map_iter(|y| {
            let y = y as usize;
            let mut found = Vec::new();
            for x in b..(w - b) {
                let s = scores[y * w + x];
                if s == 0 {
                    continue;
                }
                let is_max = [
                    (y - 1) * w + x - 1,
                    (y - 1) * w + x,
                    (y - 1) * w + x + 1,
                    y * w + x - 1,
                    y * w + x + 1,
                    (y + 1) * w + x - 1,
                    (y + 1) * w + x,
                    (y + 1) * w + x + 1,
                ]
                .iter()
                .all(|&j| s > scores[j]);
                if is_max {
                    found.push(Corner {
                        x: x as i32,
                        y: y as i32,
                        score: s,
                        harris: 0.0,
                    });
                }
            }
            found
        })
        .collect()
}

/// Cheap pre-test of FAST on a row, on the 8 even circle pixels: any arc of 9 contiguous
/// pixels of the 16 holds at least 4 of them, so a pixel with fewer than 4 of them beyond the
/// threshold on both sides (`nb`, `nd` below 4) is no corner. One pass per ring pixel, which
/// vectorises.
#[inline(always)]
fn fast_pretest(centre: &[u8], ring: &[&[u8]; 8], t: u8, nb: &mut [u8], nd: &mut [u8]) {
    let n = centre.len();
    let (nb, nd) = (&mut nb[..n], &mut nd[..n]);
    nb.iter_mut().for_each(|v| *v = 0);
    nd.iter_mut().for_each(|v| *v = 0);
    for r in ring {
        let r = &r[..n];
        for (((b, d), &v), &c) in nb.iter_mut().zip(nd.iter_mut()).zip(r).zip(centre) {
            *b += u8::from(v > c.saturating_add(t));
            *d += u8::from(v < c.saturating_sub(t));
        }
    }
}

/// The FAST score of one pixel: 0 when it is not a corner, else the largest threshold for which
/// it still is one (at least `t`), clamped to 1..=255.
#[inline]
fn fast_score(data: &[u8], centre: usize, offsets: &[isize; 16], t: i16) -> u8 {
    let c = i16::from(data[centre]);
    let mut diff = [0i16; 16];
    for (d, &o) in diff.iter_mut().zip(offsets) {
        *d = data
            .get(centre.wrapping_add_signed(o))
            .map_or(0, |&v| i16::from(v))
            - c;
    }
    let mut dark = 0u32;
    let mut bright = 0u32;
    for (k, &v) in diff.iter().enumerate() {
        dark |= u32::from(v < -t) << k;
        bright |= u32::from(v > t) << k;
    }
    if !has_run_of_9(dark) && !has_run_of_9(bright) {
        return 0;
    }
    // Largest t' with 9 contiguous pixels all beyond it: over the 16 arcs, the smallest
    // difference (brighter side) or the largest (darker side). Written as 9 passes over all 16
    // arcs at once on the doubled circle, which vectorises.
    let mut ring = [0i16; 32];
    for (k, r) in ring.iter_mut().enumerate() {
        *r = diff[k & 15];
    }
    let mut lo = [i16::MAX; 16];
    let mut hi = [i16::MIN; 16];
    for j in 0..9 {
        for k in 0..16 {
            lo[k] = lo[k].min(ring[k + j]);
            hi[k] = hi[k].max(ring[k + j]);
        }
    }
    let bright = lo.iter().copied().fold(i16::MIN, i16::max);
    let dark = -hi.iter().copied().fold(i16::MAX, i16::min);
    (bright.max(dark) - 1).clamp(1, 255) as u8
}

/// True when the 16-bit circular mask has 9 set bits in a row.
#[inline]
fn has_run_of_9(mask: u32) -> bool {
    let m = mask | (mask << 16);
    let mut r = m;
    for s in 1..9 {
        r &= m >> s;
    }
    r != 0
}

/// OpenCV's Harris response over a 7x7 block of 3x3 Sobel gradients centred on (x, y).
fn harris_response(img: &GrayImage, x: i32, y: i32) -> f32 {
    let w = img.width() as i32;
    let d = img.as_raw();
    let p = |xx: i32, yy: i32| i32::from(d[(yy * w + xx) as usize]);
    let r = HARRIS_BLOCK / 2;
    let (mut a, mut b, mut c) = (0i64, 0i64, 0i64);
    for yy in (y - r)..=(y + r) {
        for xx in (x - r)..=(x + r) {
            let ix = (p(xx + 1, yy) - p(xx - 1, yy)) * 2
                + (p(xx + 1, yy - 1) - p(xx - 1, yy - 1))
                + (p(xx + 1, yy + 1) - p(xx - 1, yy + 1));
            let iy = (p(xx, yy + 1) - p(xx, yy - 1)) * 2
                + (p(xx - 1, yy + 1) - p(xx - 1, yy - 1))
                + (p(xx + 1, yy + 1) - p(xx + 1, yy - 1));
            a += i64::from(ix * ix);
            b += i64::from(iy * iy);
            c += i64::from(ix * iy);
        }
    }
    // OpenCV's normalisation, so responses compare across levels.
    let scale = 1.0 / (4.0 * HARRIS_BLOCK as f64 * 255.0);
    let s4 = scale.powi(4);
    let (a, b, c) = (a as f64, b as f64, c as f64);
    ((a * b - c * c - f64::from(HARRIS_K) * (a + b) * (a + b)) * s4) as f32
}

/// Picks `n` corners spread over the image: the level is cut into square cells, the corners of
/// each cell are ranked by Harris response, and the picks go round-robin over the cells (rank 0
/// of every cell, strongest first, then rank 1, ...).
fn spread(corners: &[Corner], n: usize, w: i32, h: i32) -> Vec<Corner> {
    if corners.len() <= n {
        return corners.to_vec();
    }
    // About n/4 cells: dense where the texture is, yet no cell can take everything.
    let cell = (((w as f64 * h as f64) / (n as f64 / 4.0).max(1.0)).sqrt() as i32).max(8);
    let cols = (w + cell - 1) / cell;
    let mut ranked: Vec<(usize, usize)> = Vec::with_capacity(corners.len());
    let mut order: Vec<usize> = (0..corners.len()).collect();
    order.sort_by(|&i, &j| {
        corners[j]
            .harris
            .total_cmp(&corners[i].harris)
            .then(corners[i].y.cmp(&corners[j].y))
            .then(corners[i].x.cmp(&corners[j].x))
    });
    let rows = (h + cell - 1) / cell;
    let mut seen = vec![0usize; (cols * rows) as usize];
    for i in order {
        let c = &corners[i];
        let k = ((c.y / cell) * cols + c.x / cell) as usize;
        ranked.push((seen[k], i));
        seen[k] += 1;
    }
    // Stable sort by rank keeps the Harris order inside each rank.
    ranked.sort_by_key(|&(rank, _)| rank);
    ranked.iter().take(n).map(|&(_, i)| corners[i]).collect()
}

/// Half-widths of the rows of the circular patch of radius 15 (OpenCV's `umax`, made symmetric).
fn umax_table() -> [i32; HALF_PATCH as usize + 2] {
    let hp = HALF_PATCH;
    let mut umax = [0i32; HALF_PATCH as usize + 2];
    let vmax = (f64::from(hp) * std::f64::consts::SQRT_2 / 2.0 + 1.0).floor() as i32;
    let vmin = (f64::from(hp) * std::f64::consts::SQRT_2 / 2.0).ceil() as i32;
    for v in 0..=vmax {
        umax[v as usize] = (f64::from(hp * hp - v * v)).sqrt().round() as i32;
    }
    let mut v0 = 0usize;
    let mut v = hp;
    while v >= vmin {
        while umax[v0] == umax[v0 + 1] {
            v0 += 1;
        }
        umax[v as usize] = v0 as i32;
        v0 += 1;
        v -= 1;
    }
    umax
}

/// Orientation by the intensity centroid: atan2(m01, m10) over the circular patch.
fn ic_angle(img: &GrayImage, x: i32, y: i32, umax: &[i32]) -> f32 {
    let w = img.width() as usize;
    let d = img.as_raw();
    let (x, y) = (x as usize, y as usize);
    let hp = HALF_PATCH as usize;
    let mut m01 = 0i32;
    let mut m10 = 0i32;
    let centre = &d[y * w + x - hp..=y * w + x + hp];
    for (u, &v) in (-HALF_PATCH..=HALF_PATCH).zip(centre) {
        m10 += u * i32::from(v);
    }
    for v in 1..=hp {
        let du = umax[v] as usize;
        let plus = &d[(y + v) * w + x - du..=(y + v) * w + x + du];
        let minus = &d[(y - v) * w + x - du..=(y - v) * w + x + du];
        let mut v_sum = 0i32;
        for ((u, &p), &m) in (-(du as i32)..=du as i32).zip(plus).zip(minus) {
            let (p, m) = (i32::from(p), i32::from(m));
            v_sum += p - m;
            m10 += u * (p + m);
        }
        m01 += v as i32 * v_sum;
    }
    (m01 as f32).atan2(m10 as f32)
}

/// The 256 rotated BRIEF comparisons around (x, y) on the smoothed level.
fn rbrief(blurred: &GrayImage, x: i32, y: i32, angle: f32) -> Descriptor {
    let w = blurred.width() as isize;
    let d = blurred.as_raw();
    let centre = y as isize * w + x as isize;
    let (b, a) = angle.sin_cos();
    // The level border (>= 19 px) keeps every rotated point (at most 13 * sqrt(2) < 18.4 px
    // away) inside the image; `get` only guards against a mistake.
    let sample = |px: i8, py: i8| -> u8 {
        let (px, py) = (f32::from(px), f32::from(py));
        let ix = round_i32(px * a - py * b) as isize;
        let iy = round_i32(px * b + py * a) as isize;
        usize::try_from(centre + iy * w + ix)
            .ok()
            .and_then(|i| d.get(i).copied())
            .unwrap_or(0)
    };
    let mut desc = [0u64; 4];
    for (word, pairs) in desc.iter_mut().zip(BIT_PATTERN_31.chunks_exact(64)) {
        let mut bits = 0u64;
        for (i, p) in pairs.iter().enumerate() {
            bits |= u64::from(sample(p[0], p[1]) < sample(p[2], p[3])) << i;
        }
        *word = bits;
    }
    desc
}

/// Rounds half away from zero with a plain conversion: `f32::round` is a library call on
/// baseline x86-64, and this runs 512 times per keypoint.
#[inline]
fn round_i32(v: f32) -> i32 {
    if v >= 0.0 {
        (v + 0.5) as i32
    } else {
        (v - 0.5) as i32
    }
}

/// 7x7 Gaussian blur, sigma 2, border reflected (OpenCV's `BORDER_REFLECT_101`): the shared
/// fixed-point 8-bit blur [`super::blur::gaussian_blur_u8`] on a gray image.
pub fn gaussian_blur_7(img: &GrayImage) -> GrayImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = GrayImage::new(img.width(), img.height());
    super::blur::gaussian_blur_u8::<7>(img.as_raw(), w, h, 2.0, &mut out);
    out
}

/// OpenCV's learned rBRIEF test pairs for a 31x31 patch (`bit_pattern_31_` in
/// `modules/features2d/src/orb.cpp`): x1, y1, x2, y2 of each of the 256 comparisons.
#[rustfmt::skip]
const BIT_PATTERN_31: [[i8; 4]; 256] = [
    [8,-3,9,5], [4,2,7,-12], [-11,9,-8,2], [7,-12,12,-13],
    [2,-13,2,12], [1,-7,1,6], [-2,-10,-2,-4], [-13,-13,-11,-8],
    [-13,-3,-12,-9], [10,4,11,9], [-13,-8,-8,-9], [-11,7,-9,12],
    [7,7,12,6], [-4,-5,-3,0], [-13,2,-12,-3], [-9,0,-7,5],
    [12,-6,12,-1], [-3,6,-2,12], [-6,-13,-4,-8], [11,-13,12,-8],
    [4,7,5,1], [5,-3,10,-3], [3,-7,6,12], [-8,-7,-6,-2],
    [-2,11,-1,-10], [-13,12,-8,10], [-7,3,-5,-3], [-4,2,-3,7],
    [-10,-12,-6,11], [5,-12,6,-7], [5,-6,7,-1], [1,0,4,-5],
    [9,11,11,-13], [4,7,4,12], [2,-1,4,4], [-4,-12,-2,7],
    [-8,-5,-7,-10], [4,11,9,12], [0,-8,1,-13], [-13,-2,-8,2],
    [-3,-2,-2,3], [-6,9,-4,-9], [8,12,10,7], [0,9,1,3],
    [7,-5,11,-10], [-13,-6,-11,0], [10,7,12,1], [-6,-3,-6,12],
    [10,-9,12,-4], [-13,8,-8,-12], [-13,0,-8,-4], [3,3,7,8],
    [5,7,10,-7], [-1,7,1,-12], [3,-10,5,6], [2,-4,3,-10],
    [-13,0,-13,5], [-13,-7,-12,12], [-13,3,-11,8], [-7,12,-4,7],
    [6,-10,12,8], [-9,-1,-7,-6], [-2,-5,0,12], [-12,5,-7,5],
    [3,-10,8,-13], [-7,-7,-4,5], [-3,-2,-1,-7], [2,9,5,-11],
    [-11,-13,-5,-13], [-1,6,0,-1], [5,-3,5,2], [-4,-13,-4,12],
    [-9,-6,-9,6], [-12,-10,-8,-4], [10,2,12,-3], [7,12,12,12],
    [-7,-13,-6,5], [-4,9,-3,4], [7,-1,12,2], [-7,6,-5,1],
    [-13,11,-12,5], [-3,7,-2,-6], [7,-8,12,-7], [-13,-7,-11,-12],
    [1,-3,12,12], [2,-6,3,0], [-4,3,-2,-13], [-1,-13,1,9],
    [7,1,8,-6], [1,-1,3,12], [9,1,12,6], [-1,-9,-1,3],
    [-13,-13,-10,5], [7,7,10,12], [12,-5,12,9], [6,3,7,11],
    [5,-13,6,10], [2,-12,2,3], [3,8,4,-6], [2,6,12,-13],
    [9,-12,10,3], [-8,4,-7,9], [-11,12,-4,-6], [1,12,2,-8],
    [6,-9,7,-4], [2,3,3,-2], [6,3,11,0], [3,-3,8,-8],
    [7,8,9,3], [-11,-5,-6,-4], [-10,11,-5,10], [-5,-8,-3,12],
    [-10,5,-9,0], [8,-1,12,-6], [4,-6,6,-11], [-10,12,-8,7],
    [4,-2,6,7], [-2,0,-2,12], [-5,-8,-5,2], [7,-6,10,12],
    [-9,-13,-8,-8], [-5,-13,-5,-2], [8,-8,9,-13], [-9,-11,-9,0],
    [1,-8,1,-2], [7,-4,9,1], [-2,1,-1,-4], [11,-6,12,-11],
    [-12,-9,-6,4], [3,7,7,12], [5,5,10,8], [0,-4,2,8],
    [-9,12,-5,-13], [0,7,2,12], [-1,2,1,7], [5,11,7,-9],
    [3,5,6,-8], [-13,-4,-8,9], [-5,9,-3,-3], [-4,-7,-3,-12],
    [6,5,8,0], [-7,6,-6,12], [-13,6,-5,-2], [1,-10,3,10],
    [4,1,8,-4], [-2,-2,2,-13], [2,-12,12,12], [-2,-13,0,-6],
    [4,1,9,3], [-6,-10,-3,-5], [-3,-13,-1,1], [7,5,12,-11],
    [4,-2,5,-7], [-13,9,-9,-5], [7,1,8,6], [7,-8,7,6],
    [-7,-4,-7,1], [-8,11,-7,-8], [-13,6,-12,-8], [2,4,3,9],
    [10,-5,12,3], [-6,-5,-6,7], [8,-3,9,-8], [2,-12,2,8],
    [-11,-2,-10,3], [-12,-13,-7,-9], [-11,0,-10,-5], [5,-3,11,8],
    [-2,-13,-1,12], [-1,-8,0,9], [-13,-11,-12,-5], [-10,-2,-10,11],
    [-3,9,-2,-13], [2,-3,3,2], [-9,-13,-4,0], [-4,6,-3,-10],
    [-4,12,-2,-7], [-6,-11,-4,9], [6,-3,6,11], [-13,11,-5,5],
    [11,11,12,6], [7,-5,12,-2], [-1,12,0,7], [-4,-8,-3,-2],
    [-7,1,-6,7], [-13,-12,-8,-13], [-7,-2,-6,-8], [-8,5,-6,-9],
    [-5,-1,-4,5], [-13,7,-8,10], [1,5,5,-13], [1,0,10,-13],
    [9,12,10,-1], [5,-8,10,-9], [-1,11,1,-13], [-9,-3,-6,2],
    [-1,-10,1,12], [-13,1,-8,-10], [8,-11,10,-6], [2,-13,3,-6],
    [7,-13,12,-9], [-10,-10,-5,-7], [-10,-8,-8,-13], [4,-6,8,5],
    [3,12,8,-13], [-4,2,-3,-3], [5,-13,10,-12], [4,-13,5,-1],
    [-9,9,-4,3], [0,3,3,-9], [-12,1,-6,1], [3,2,4,-8],
    [-10,-10,-10,9], [8,-13,12,12], [-8,-12,-6,-5], [2,2,3,7],
    [10,6,11,-8], [6,8,8,-12], [-7,10,-6,5], [-3,-9,-3,9],
    [-1,-13,-1,5], [-3,-7,-3,4], [-8,-2,-8,3], [4,2,12,12],
    [2,-5,3,11], [6,-9,11,-13], [3,-1,7,12], [11,-1,12,4],
    [-3,0,-3,6], [4,-11,4,12], [2,-4,2,1], [-10,-6,-8,1],
    [-13,7,-11,1], [-13,12,-11,-13], [6,0,11,-13], [0,-1,1,4],
    [-13,3,-9,-2], [-9,8,-6,-3], [-13,-6,-8,-2], [5,-9,8,10],
    [2,7,3,-9], [-1,-6,-1,-1], [9,5,11,-2], [11,-3,12,-8],
    [3,0,3,5], [-1,4,0,10], [3,-6,4,5], [-13,0,-10,5],
    [5,8,12,11], [8,9,9,-6], [7,-4,8,-12], [-10,4,-10,9],
    [7,3,12,4], [9,-7,10,-2], [7,0,12,-2], [-1,-6,0,-11],
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic textured image: blobs and edges at many scales.
    fn texture(w: u32, h: u32, seed: u64) -> GrayImage {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let blobs: Vec<(f32, f32, f32, f32)> = (0..120)
            .map(|_| {
                let x = (next() % u64::from(w)) as f32;
                let y = (next() % u64::from(h)) as f32;
                let r = 3.0 + (next() % 25) as f32;
                let v = (next() % 200) as f32 - 100.0;
                (x, y, r, v)
            })
            .collect();
        GrayImage::from_fn(w, h, |x, y| {
            let mut v = 128.0;
            for &(bx, by, r, a) in &blobs {
                let (dx, dy) = (x as f32 - bx, y as f32 - by);
                if dx.abs() < r && dy.abs() < r * 0.7 {
                    v += a;
                }
            }
            image::Luma([v.clamp(0.0, 255.0) as u8])
        })
    }

    #[test]
    fn hamming_counts_differing_bits() {
        assert_eq!(hamming(&[0; 4], &[0; 4]), 0);
        assert_eq!(hamming(&[0; 4], &[u64::MAX; 4]), 256);
        assert_eq!(hamming(&[1, 0, 0, 3], &[0, 0, 0, 1]), 2);
    }

    #[test]
    fn level_shares_add_up() {
        for n in [0, 1, 500, 5000] {
            let s = level_shares(n, 1.2, 8);
            assert_eq!(s.len(), 8);
            assert_eq!(s.iter().sum::<usize>(), n, "{s:?}");
            assert!(s.windows(2).take(6).all(|w| w[0] >= w[1]), "{s:?}");
        }
        assert_eq!(level_shares(500, 1.2, 8)[0], 109);
    }

    #[test]
    fn runs_of_nine_wrap_around() {
        assert!(has_run_of_9(0b1_1111_1111));
        assert!(!has_run_of_9(0b1111_1111));
        assert!(has_run_of_9(0b1111_0000_0001_1111)); // 4 + 5 across the wrap
        assert!(!has_run_of_9(0b0111_0000_0001_1111));
    }

    #[test]
    fn umax_is_opencvs() {
        let u = umax_table();
        assert_eq!(
            &u[..16],
            &[15, 15, 15, 15, 14, 14, 14, 13, 13, 12, 11, 10, 9, 8, 6, 3]
        );
    }

    #[test]
    fn a_square_has_corners_at_its_corners() {
        // Blurred: on a perfectly sharp square the FAST scores tie and suppress each other
        // (in OpenCV too).
        let img = gaussian_blur_7(&GrayImage::from_fn(120, 120, |x, y| {
            image::Luma([if (40..80).contains(&x) && (40..80).contains(&y) {
                200
            } else {
                30
            }])
        }));
        let f = detect_and_compute(&img, &OrbParams::default());
        let level0: Vec<&Keypoint> = f.keypoints.iter().filter(|k| k.level == 0).collect();
        assert!(!level0.is_empty());
        for k in level0 {
            let near = [(40.0, 40.0), (79.0, 40.0), (40.0, 79.0), (79.0, 79.0)]
                .iter()
                .any(|&(cx, cy): &(f32, f32)| (k.x - cx).abs() <= 3.0 && (k.y - cy).abs() <= 3.0);
            assert!(near, "corner at {}, {}", k.x, k.y);
        }
    }

    #[test]
    fn flat_and_tiny_images_have_no_keypoints() {
        let flat = GrayImage::from_pixel(200, 200, image::Luma([90]));
        assert!(detect_and_compute(&flat, &OrbParams::default()).is_empty());
        let tiny = GrayImage::from_pixel(10, 10, image::Luma([90]));
        assert!(detect_and_compute(&tiny, &OrbParams::default()).is_empty());
    }

    #[test]
    fn keypoints_are_capped_and_deterministic() {
        let img = texture(400, 300, 3);
        let p = OrbParams {
            n_features: 300,
            ..OrbParams::default()
        };
        let a = detect_and_compute(&img, &p);
        let b = detect_and_compute(&img, &p);
        assert!(a.len() <= 300 && a.len() > 100, "{}", a.len());
        assert_eq!(a.keypoints, b.keypoints);
        assert_eq!(a.descriptors, b.descriptors);
        assert!(a.keypoints.iter().any(|k| k.level > 0));
    }

    /// Rotating the image by 90 degrees keeps the descriptors (up to a few bits): the
    /// orientation and the rotated pattern do their job.
    #[test]
    fn descriptors_survive_a_quarter_turn() {
        let img = texture(300, 300, 11);
        // (x, y) -> (h-1-y, x): a quarter turn clockwise.
        let rot = GrayImage::from_fn(300, 300, |x, y| *img.get_pixel(y, 299 - x));
        let p = OrbParams {
            n_features: 400,
            ..OrbParams::default()
        };
        let a = detect_and_compute(&img, &p);
        let b = detect_and_compute(&rot, &p);
        let mut pairs = 0;
        let mut close = 0;
        for (ka, da) in a.keypoints.iter().zip(&a.descriptors) {
            if ka.level != 0 {
                continue;
            }
            let (ex, ey) = (299.0 - ka.y, ka.x);
            if let Some((_, db)) =
                b.keypoints.iter().zip(&b.descriptors).find(|(kb, _)| {
                    kb.level == 0 && (kb.x - ex).abs() < 0.5 && (kb.y - ey).abs() < 0.5
                })
            {
                pairs += 1;
                if hamming(da, db) < 40 {
                    close += 1;
                }
            }
        }
        assert!(pairs >= 20, "{pairs} pairs");
        assert!(close * 10 >= pairs * 8, "{close} of {pairs} close");
    }

    #[test]
    fn blur_keeps_flat_images_and_mean() {
        let flat = GrayImage::from_pixel(20, 9, image::Luma([77]));
        assert_eq!(gaussian_blur_7(&flat), flat);
        let img = texture(64, 48, 5);
        let b = gaussian_blur_7(&img);
        let m =
            |g: &GrayImage| g.as_raw().iter().map(|&v| f64::from(v)).sum::<f64>() / g.len() as f64;
        assert!((m(&img) - m(&b)).abs() < 2.0);
    }

    #[test]
    fn resize_halves_a_ramp() {
        let img = GrayImage::from_fn(8, 2, |x, _| image::Luma([(x * 10) as u8]));
        let r = resize_bilinear(&img, 4, 1);
        assert_eq!(r.as_raw(), &vec![5, 25, 45, 65]);
    }
}
