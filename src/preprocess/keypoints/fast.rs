//! Corner detection on one pyramid level: FAST-9 on the 16-pixel Bresenham circle (a vectorised
//! pre-test, then the full test and OpenCV's score) and the Harris response that ranks the corners.

use crate::simd::{self, Avx2};
use image::GrayImage;
use rayon::prelude::*;

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

/// A FAST corner on one level before selection.
#[derive(Clone, Copy)]
pub(super) struct Corner {
    pub(super) x: i32,
    pub(super) y: i32,
    pub(super) score: u8,
    pub(super) harris: f32,
}

/// FAST-9 corners with 3x3 non-maximum suppression, at least `border` pixels inside the image.
pub(super) fn fast_corners(img: &GrayImage, threshold: u8, border: i32) -> Vec<Corner> {
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
pub(super) fn has_run_of_9(mask: u32) -> bool {
    let m = mask | (mask << 16);
    let mut r = m;
    for s in 1..9 {
        r &= m >> s;
    }
    r != 0
}

/// OpenCV's Harris response over a 7x7 block of 3x3 Sobel gradients centred on (x, y).
pub(super) fn harris_response(img: &GrayImage, x: i32, y: i32) -> f32 {
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
