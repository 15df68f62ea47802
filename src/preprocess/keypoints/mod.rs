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
//!
//! Steps 2 and 3 are in `fast`, steps 5 and 6 in `brief`; this file holds the types, the
//! pyramid, the spreading and the per-level driver.

mod brief;
mod fast;

use brief::{HALF_PATCH, ic_angle, rbrief, umax_table};
use fast::{Corner, fast_corners, harris_response};
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

/// 7x7 Gaussian blur, sigma 2, border reflected (OpenCV's `BORDER_REFLECT_101`): the shared
/// fixed-point 8-bit blur [`crate::preprocess::blur::gaussian_blur_u8`] on a gray image.
pub fn gaussian_blur_7(img: &GrayImage) -> GrayImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = GrayImage::new(img.width(), img.height());
    crate::preprocess::blur::gaussian_blur_u8::<7>(img.as_raw(), w, h, 2.0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::brief::umax_table;
    use super::fast::has_run_of_9;
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
