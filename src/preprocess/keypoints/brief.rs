//! The descriptor of a keypoint: its orientation by the intensity centroid of the circular
//! patch, and OpenCV's rBRIEF (the 256 learned point pairs, rotated by that angle) on the blurred
//! level image.

use super::Descriptor;
use image::GrayImage;

/// Radius of the patch used for the orientation (OpenCV: patch size 31).
pub(super) const HALF_PATCH: i32 = 15;

/// Half-widths of the rows of the circular patch of radius 15 (OpenCV's `umax`, made symmetric).
pub(super) fn umax_table() -> [i32; HALF_PATCH as usize + 2] {
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
pub(super) fn ic_angle(img: &GrayImage, x: i32, y: i32, umax: &[i32]) -> f32 {
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
pub(super) fn rbrief(blurred: &GrayImage, x: i32, y: i32, angle: f32) -> Descriptor {
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
