//! Feature channels computed from 8-bit RGB pixels, bit-exact with OpenCV's 8-bit conversions.
//!
//! The original tool computed its ML input with `cv2.cvtColor` on `uint8` images, numpy and a
//! few `cv2` filters. The models it trained (and the thresholds users tuned) depend on those
//! exact numbers, so this module replicates OpenCV rather than textbook colour science:
//!
//! * **HSV, YCrCb and L\*a\*b\*** use OpenCV's 8-bit fixed-point integer paths
//!   (`RGB2HSV_b`, `RGB2YCrCb_i<uchar>`, `RGB2Lab_b`) with the same lookup tables, shifts and
//!   rounding, including OpenCV's own software cube root. They were checked against
//!   `cv2.cvtColor` (opencv-python 5.0) on all 2^24 RGB colours and match exactly.
//! * Every channel is a float map in [0, 1]. 8-bit values are divided by 255, OpenCV's 8-bit hue
//!   (0..=179) by 179.
//! * Every normalisation that divides adds `1e-7` to the denominator (like the original), so a
//!   constant image gives 0 instead of NaN.
//! * "robust(x)" clips `x` to its own 1st..99th percentile over the whole image (numpy's default
//!   linear interpolation) and maps that range to [0, 1]: `(x − p1) / (p99 − p1 + 1e-7)`.
//! * Spatial filters (Sobel, Laplacian, 3x3 box) use OpenCV's default border
//!   `BORDER_REFLECT_101` (`dcb|abcd|cba`; an axis of length 1 reflects onto itself).
//!
//! # The LAB_L fix
//!
//! The original divided OpenCV's 8-bit L (which is already L\*·255/100, in 0..=255) by 100 and
//! clipped to [0, 1], so every pixel with L\* above ~39 saturated at 1. Here `LAB_L` is the 8-bit
//! L / 255, i.e. L\*/100 as intended. The spatial channels (GradMag, Laplacian, LocalStd) are
//! computed from this fixed map.
//!
//! # How it is computed
//!
//! Only the colour spaces the requested channels need are computed, row by row across the rayon
//! pool, with per-thread row buffers and no per-pixel allocation:
//!
//! 1. If a spatial channel is requested, the 8-bit L plane of the whole image.
//! 2. If a channel needs a whole-image statistic (percentiles, maximum), one pass that gathers
//!    only those statistics. Every robust channel has a small integer key space (e.g. R − G in
//!    −255..=255, a\*² + b\*² in 0..=32768, the Laplacian of 8-bit L in −1020..=1020), so the
//!    percentiles are exact order statistics read off histograms, and each channel's whole
//!    normalisation becomes a key → value lookup table.
//! 3. One pass that writes every output value in its final form.
//!
//! The spatial channels work on integer 8-bit L values, so they are exact; in particular a flat
//! region has exactly 0 local deviation, where OpenCV's float box filter leaves ~1e-4 of noise.
//!
//! The colour conversions are in `colour`, the 3x3 filters in `spatial` and the whole-image
//! statistics in `normalise`; this file plans the passes and writes the channels.

mod colour;
mod normalise;
mod spatial;

use ndarray::Array3;
use rayon::prelude::*;

use crate::preprocess::Channel;
use colour::{INV_179, INV_255, LAB_CBRT_TAB, LAB_CBRT_TAB_SIZE, hsv8, lab_l8, lab8, ycrcb8};
use normalise::{LAPLACIAN_KEYS, LCH_C_KEYS, Normalisers, OPP_O1_KEYS, OPP_O2_KEYS};
use spatial::RowFilter;

/// Added to every normalising denominator, as the original does.
const EPS: f64 = 1e-7;

/// Computes the requested `channels` of an 8-bit RGB image: an array of shape (H, W, C), every
/// value in [0, 1], channel order as given.
///
/// A channel may be requested more than once; each occurrence gets its own (identical) plane.
/// An image with no pixels, or an empty `channels`, gives an empty array of the right shape.
pub fn compute_features(img: &image::RgbImage, channels: &[Channel]) -> Array3<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let c = channels.len();
    let mut out = Array3::<f32>::zeros((h, w, c));
    if w == 0 || h == 0 || c == 0 {
        return out;
    }
    // `ImageBuffer` guarantees at least w*h*3 bytes; the `get` only keeps this free of panics.
    let Some(src) = img.as_raw().get(..w * h * 3) else {
        return out;
    };
    let rgb: &[[u8; 3]] = src.as_chunks::<3>().0;
    // A fresh `zeros` array is in standard (row-major, contiguous) layout, so this is `Some`.
    let Some(data) = out.as_slice_mut() else {
        return out;
    };

    let plan = Plan::new(channels);
    // Only force the (lazily built) Lab table when some channel needs Lab.
    let cbrt: &[u16; LAB_CBRT_TAB_SIZE] = if plan.lab || plan.spatial {
        &LAB_CBRT_TAB
    } else {
        &[0; LAB_CBRT_TAB_SIZE]
    };

    // The spatial channels need the whole 8-bit L plane before any row can be filtered.
    let l_plane = if plan.spatial {
        let mut plane = vec![0u8; w * h];
        plane
            .par_chunks_mut(w)
            .zip(rgb.par_chunks(w))
            .for_each(|(dst, row)| {
                for (l, &[r, g, b]) in dst.iter_mut().zip(row) {
                    *l = lab_l8(r, g, b, cbrt);
                }
            });
        plane
    } else {
        Vec::new()
    };

    let frame = Frame {
        rgb,
        l_plane: &l_plane,
        w,
        h,
        cbrt,
    };
    let norm = Normalisers::measure(&frame, &plan);

    data.par_chunks_mut(w * c).enumerate().for_each_init(
        RowScratch::default,
        |scratch, (y, dst)| {
            scratch.fill(&frame, &plan, y);
            write_row(dst, frame.row(y), channels, scratch, &norm);
        },
    );
    out
}

/// The image being processed and what every row pass shares.
struct Frame<'a> {
    /// The RGB pixels, row-major, `w * h` of them.
    rgb: &'a [[u8; 3]],
    /// The 8-bit L plane (empty unless a spatial channel is requested).
    l_plane: &'a [u8],
    w: usize,
    h: usize,
    /// [`LAB_CBRT_TAB`] (a dummy unless Lab is needed).
    cbrt: &'a [u16; LAB_CBRT_TAB_SIZE],
}

impl Frame<'_> {
    /// Row `y` of the RGB pixels.
    fn row(&self, y: usize) -> &[[u8; 3]] {
        self.rgb.get(y * self.w..(y + 1) * self.w).unwrap_or(&[])
    }
}

/// What the requested channels need.
struct Plan {
    hsv: bool,
    ycc: bool,
    /// Full 8-bit Lab per pixel.
    lab: bool,
    /// The 8-bit L plane and its 3x3 filters (GradMag, Laplacian, LocalStd).
    spatial: bool,
    lch_c: bool,
    opp_o1: bool,
    opp_o2: bool,
    laplacian: bool,
}

impl Plan {
    fn new(channels: &[Channel]) -> Self {
        use Channel::*;
        let any = |set: &[Channel]| channels.iter().any(|c| set.contains(c));
        let spatial = any(&[GradMag, Laplacian, LocalStd]);
        Plan {
            hsv: any(&[H, S, V]),
            ycc: any(&[Y, Cr, Cb]),
            lab: any(&[LabL, LabA, LabB, LchC, LchSinH, LchCosH]),
            spatial,
            lch_c: any(&[LchC]),
            opp_o1: any(&[OppO1]),
            opp_o2: any(&[OppO2]),
            laplacian: any(&[Laplacian]),
        }
    }

    /// Whether any channel needs a whole-image statistic before it can be written.
    fn needs_stats(&self) -> bool {
        self.lch_c || self.opp_o1 || self.opp_o2 || self.spatial
    }
}

/// Per-thread buffers holding one row's colour conversions, so that each is computed once per
/// pixel however many channels use it, and the output is then written channel by channel in
/// tight loops (one `match` per row and channel, not per pixel).
#[derive(Default)]
struct RowScratch {
    hsv: Vec<[u8; 3]>,
    ycc: Vec<[u8; 3]>,
    lab: Vec<[u8; 3]>,
    spatial: RowFilter,
}

impl RowScratch {
    /// Converts row `y` of `frame` into whatever `plan` needs (buffers not needed are emptied).
    fn fill(&mut self, frame: &Frame<'_>, plan: &Plan, y: usize) {
        let row = frame.row(y);
        let cbrt = frame.cbrt;
        convert_row(&mut self.hsv, plan.hsv, row, hsv8);
        convert_row(&mut self.ycc, plan.ycc, row, ycrcb8);
        convert_row(&mut self.lab, plan.lab, row, |r, g, b| lab8(r, g, b, cbrt));
        self.spatial.out.clear();
        if plan.spatial {
            self.spatial.run(frame.l_plane, frame.w, frame.h, y);
        }
    }
}

/// Replaces `buf` by the per-pixel conversion `f` of `row` (or empties it if `on` is false).
/// Generic rather than `dyn` so that `f` is inlined into the loop.
#[inline]
fn convert_row(
    buf: &mut Vec<[u8; 3]>,
    on: bool,
    row: &[[u8; 3]],
    f: impl Fn(u8, u8, u8) -> [u8; 3],
) {
    buf.clear();
    if on {
        buf.extend(row.iter().map(|&[r, g, b]| f(r, g, b)));
    }
}

/// Writes `f(src[x])` into column `k` of an interleaved row with `c` channels per pixel.
#[inline]
fn put<T: Copy>(dst: &mut [f32], c: usize, k: usize, src: &[T], f: impl Fn(T) -> f32) {
    for (o, &s) in dst.iter_mut().skip(k).step_by(c).zip(src) {
        *o = f(s);
    }
}

/// Looks up a normalisation table; keys are in range by construction (0 keeps it panic-free).
#[inline]
fn lut(table: &[f32], key: i32, min: i32) -> f32 {
    usize::try_from(key - min)
        .ok()
        .and_then(|i| table.get(i))
        .copied()
        .unwrap_or(0.0)
}

/// Computes one output row (`row.len()` pixels × `channels.len()` values).
fn write_row(
    dst: &mut [f32],
    row: &[[u8; 3]],
    channels: &[Channel],
    s: &RowScratch,
    norm: &Normalisers,
) {
    let c = channels.len();
    let unit = |v: u8| INV_255[usize::from(v)];
    for (k, ch) in channels.iter().enumerate() {
        match ch {
            Channel::R => put(dst, c, k, row, |p| unit(p[0])),
            Channel::G => put(dst, c, k, row, |p| unit(p[1])),
            Channel::B => put(dst, c, k, row, |p| unit(p[2])),
            Channel::H => put(dst, c, k, &s.hsv, |p| INV_179[usize::from(p[0])]),
            Channel::S => put(dst, c, k, &s.hsv, |p| unit(p[1])),
            Channel::V => put(dst, c, k, &s.hsv, |p| unit(p[2])),
            Channel::Y => put(dst, c, k, &s.ycc, |p| unit(p[0])),
            Channel::Cr => put(dst, c, k, &s.ycc, |p| unit(p[1])),
            Channel::Cb => put(dst, c, k, &s.ycc, |p| unit(p[2])),
            Channel::LabL => put(dst, c, k, &s.lab, |p| unit(p[0])),
            Channel::LabA => put(dst, c, k, &s.lab, |p| unit(p[1])),
            Channel::LabB => put(dst, c, k, &s.lab, |p| unit(p[2])),
            Channel::LchC => put(dst, c, k, &s.lab, |p| {
                lut(&norm.lch_c, chroma_key(p), LCH_C_KEYS.min)
            }),
            Channel::LchSinH => put(dst, c, k, &s.lab, |p| hue_sin_cos(p).0 * 0.5 + 0.5),
            Channel::LchCosH => put(dst, c, k, &s.lab, |p| hue_sin_cos(p).1 * 0.5 + 0.5),
            // The same f32 arithmetic as the numpy original (the 1e-7 only matters for black).
            Channel::RChroma => put(dst, c, k, row, |[r, g, b]| {
                f32::from(r) / (f32::from(r) + f32::from(g) + f32::from(b) + 1e-7)
            }),
            Channel::GChroma => put(dst, c, k, row, |[r, g, b]| {
                f32::from(g) / (f32::from(r) + f32::from(g) + f32::from(b) + 1e-7)
            }),
            Channel::OppO1 => put(dst, c, k, row, |p| {
                lut(&norm.opp_o1, opp_o1_key(p), OPP_O1_KEYS.min)
            }),
            Channel::OppO2 => put(dst, c, k, row, |p| {
                lut(&norm.opp_o2, opp_o2_key(p), OPP_O2_KEYS.min)
            }),
            Channel::OppO3 => put(dst, c, k, row, |[r, g, b]| {
                ((f32::from(r) + f32::from(g) + f32::from(b)) / 3.0) / 255.0
            }),
            Channel::GradMag => put(dst, c, k, &s.spatial.out, |sp| {
                (sp.grad2 as f32).sqrt() * norm.grad_scale
            }),
            Channel::Laplacian => put(dst, c, k, &s.spatial.out, |sp| {
                lut(&norm.laplacian, sp.laplacian, LAPLACIAN_KEYS.min)
            }),
            Channel::LocalStd => put(dst, c, k, &s.spatial.out, |sp| {
                (sp.dev2 as f32).sqrt() * norm.std_scale
            }),
        }
    }
}

/// a\*² + b\*² of an 8-bit Lab pixel, with a\*, b\* = 8-bit a, b − 128 as the original has it.
#[inline]
fn chroma_key(lab: [u8; 3]) -> i32 {
    let a = i32::from(lab[1]) - 128;
    let b = i32::from(lab[2]) - 128;
    a * a + b * b
}

/// sin and cos of the hue angle atan2(b\*, a\*), i.e. b\*/C and a\*/C; atan2(0, 0) = 0 gives
/// (0, 1) for achromatic pixels, as numpy does.
#[inline]
fn hue_sin_cos(lab: [u8; 3]) -> (f32, f32) {
    let a = f32::from(lab[1]) - 128.0;
    let b = f32::from(lab[2]) - 128.0;
    let chroma = (a * a + b * b).sqrt();
    if chroma > 0.0 {
        (b / chroma, a / chroma)
    } else {
        (0.0, 1.0)
    }
}

/// Opp_O1 key: R − G.
#[inline]
fn opp_o1_key([r, g, _]: [u8; 3]) -> i32 {
    i32::from(r) - i32::from(g)
}

/// Opp_O2 key: R + G − 2B = 2·((R + G)/2 − B).
#[inline]
fn opp_o2_key([r, g, b]: [u8; 3]) -> i32 {
    i32::from(r) + i32::from(g) - 2 * i32::from(b)
}

#[cfg(test)]
mod tests {
    use super::colour::{LAB_CBRT_TAB, hsv8, lab_l8, lab8, ycrcb8};
    use super::normalise::hist_percentile;
    use super::*;
    use image::{Rgb, RgbImage};

    const TOL: f32 = 1e-6;

    /// (RGB, OpenCV [H, S, V], [Y, Cr, Cb], [L, a, b]).
    type ColourCase = ([u8; 3], [u8; 3], [u8; 3], [u8; 3]);
    /// (RGB, r_chroma, g_chroma, Opp_O3, LCh_sinH, LCh_cosH).
    type DerivedCase = ([u8; 3], f32, f32, f32, f32, f32);

    fn solid(w: u32, h: u32, rgb: [u8; 3]) -> RgbImage {
        RgbImage::from_pixel(w, h, Rgb(rgb))
    }

    /// Every channel of a single-pixel image.
    fn pixel_features(rgb: [u8; 3]) -> Vec<f32> {
        let f = compute_features(&solid(1, 1, rgb), &Channel::ALL);
        f.iter().copied().collect()
    }

    #[test]
    fn known_colours_match_opencv() {
        // Expected 8-bit values are cv2.cvtColor outputs (opencv-python 5.0) on uint8 pixels.
        // (rgb, [H, S, V], [Y, Cr, Cb], [L, a, b])
        #[rustfmt::skip]
        let cases: &[ColourCase] = &[
            ([255, 0, 0],     [0, 255, 255],   [76, 255, 85],   [136, 208, 195]),
            ([0, 255, 0],     [60, 255, 255],  [150, 21, 43],   [224, 42, 211]),
            ([0, 0, 255],     [120, 255, 255], [29, 107, 255],  [82, 207, 20]),
            ([255, 255, 255], [0, 0, 255],     [255, 128, 128], [255, 128, 128]),
            ([0, 0, 0],       [0, 0, 0],       [0, 128, 128],   [0, 128, 128]),
            ([128, 128, 128], [0, 0, 128],     [128, 128, 128], [137, 128, 128]),
            ([255, 255, 0],   [30, 255, 255],  [226, 149, 1],   [248, 106, 223]),
            ([255, 128, 0],   [15, 255, 255],  [151, 202, 43],  [171, 171, 202]),
            ([10, 200, 90],   [73, 242, 200],  [131, 42, 105],  [181, 63, 171]),
        ];
        for &(rgb, hsv, ycc, lab) in cases {
            let [r, g, b] = rgb;
            assert_eq!(hsv8(r, g, b), hsv, "HSV of {rgb:?}");
            assert_eq!(ycrcb8(r, g, b), ycc, "YCrCb of {rgb:?}");
            assert_eq!(lab8(r, g, b, &LAB_CBRT_TAB), lab, "Lab of {rgb:?}");
            assert_eq!(lab_l8(r, g, b, &LAB_CBRT_TAB), lab[0], "L of {rgb:?}");

            // And through the public function, normalised.
            let f = pixel_features(rgb);
            let expect = [
                (Channel::H, f32::from(hsv[0]) / 179.0),
                (Channel::S, f32::from(hsv[1]) / 255.0),
                (Channel::V, f32::from(hsv[2]) / 255.0),
                (Channel::Y, f32::from(ycc[0]) / 255.0),
                (Channel::Cr, f32::from(ycc[1]) / 255.0),
                (Channel::Cb, f32::from(ycc[2]) / 255.0),
                (Channel::LabL, f32::from(lab[0]) / 255.0),
                (Channel::LabA, f32::from(lab[1]) / 255.0),
                (Channel::LabB, f32::from(lab[2]) / 255.0),
                (Channel::R, f32::from(r) / 255.0),
                (Channel::G, f32::from(g) / 255.0),
                (Channel::B, f32::from(b) / 255.0),
            ];
            for (ch, want) in expect {
                let i = Channel::ALL
                    .iter()
                    .position(|&c| c == ch)
                    .unwrap_or(usize::MAX);
                assert!(
                    (f[i] - want).abs() < TOL,
                    "{ch} of {rgb:?}: {} vs {want}",
                    f[i]
                );
            }
        }
    }

    #[test]
    fn derived_colour_channels_of_known_pixels() {
        let idx = |ch: Channel| {
            Channel::ALL
                .iter()
                .position(|&c| c == ch)
                .unwrap_or(usize::MAX)
        };
        // (rgb, r_chroma, g_chroma, Opp_O3, LCh_sinH, LCh_cosH)
        #[rustfmt::skip]
        let cases: &[DerivedCase] = &[
            ([0, 0, 0], 0.0, 0.0, 0.0, 0.5, 1.0),           // atan2(0, 0) = 0
            ([255, 255, 255], 1.0 / 3.0, 1.0 / 3.0, 1.0, 0.5, 1.0),
            ([255, 0, 0], 1.0, 0.0, 1.0 / 3.0,
             // a* = 80, b* = 67
             67.0 / (80.0f32.hypot(67.0)) * 0.5 + 0.5, 80.0 / (80.0f32.hypot(67.0)) * 0.5 + 0.5),
            ([0, 0, 255], 0.0, 0.0, 1.0 / 3.0,
             // a* = 79, b* = −108
             -108.0 / (79.0f32.hypot(108.0)) * 0.5 + 0.5, 79.0 / (79.0f32.hypot(108.0)) * 0.5 + 0.5),
        ];
        for &(rgb, rc, gc, o3, sin, cos) in cases {
            let f = pixel_features(rgb);
            for (ch, want) in [
                (Channel::RChroma, rc),
                (Channel::GChroma, gc),
                (Channel::OppO3, o3),
                (Channel::LchSinH, sin),
                (Channel::LchCosH, cos),
            ] {
                assert!(
                    (f[idx(ch)] - want).abs() < TOL,
                    "{ch} of {rgb:?}: {} vs {want}",
                    f[idx(ch)]
                );
            }
        }
    }

    #[test]
    fn robust_matches_numpy_percentiles() {
        // Opp_O1 = R − G over 1..=100 (a 10x10 image with R = v, G = 0):
        // numpy.percentile(1..=100, [1, 99]) = [1.99, 99.01].
        let img = RgbImage::from_fn(10, 10, |x, y| Rgb([(y * 10 + x + 1) as u8, 0, 0]));
        let f = compute_features(&img, &[Channel::OppO1]);
        let (p1, p99) = (1.99f64, 99.01f64);
        for (i, &v) in f.iter().enumerate() {
            let x = (i + 1) as f64;
            let want = ((x.clamp(p1, p99) - p1) / (p99 - p1 + 1e-7)) as f32;
            assert!((v - want).abs() < 1e-6, "pixel {i}: {v} vs {want}");
        }
        assert_eq!(f[[0, 0, 0]], 0.0);
        assert!((f[[9, 9, 0]] - 1.0).abs() < 1e-6);

        // Hand-computed percentile cases, including interpolation from the upper end.
        let hist = [1u64, 0, 2, 1]; // values {0, 2, 2, 3}
        let v = |i: usize| i as f64;
        // index 0.03 → 0 + 2·0.03; index 2.97 → 3 − 1·0.03
        assert!((hist_percentile(&hist, 1.0, v).unwrap_or(f64::NAN) - 0.06).abs() < 1e-12);
        assert!((hist_percentile(&hist, 99.0, v).unwrap_or(f64::NAN) - 2.97).abs() < 1e-12);
        assert_eq!(hist_percentile(&[0, 0], 50.0, v), None);
    }

    #[test]
    fn constant_images_have_no_structure() {
        let chans = [
            Channel::GradMag,
            Channel::LocalStd,
            Channel::Laplacian,
            Channel::OppO1,
        ];
        for rgb in [[0, 0, 0], [200, 10, 30], [255, 255, 255]] {
            let f = compute_features(&solid(7, 5, rgb), &chans);
            assert!(f.iter().all(|&v| v == 0.0), "{rgb:?}: {f:?}");
        }
    }

    #[test]
    fn spatial_channels_on_a_step_edge() {
        // Left half black, right half white: the gradient peaks at the edge columns.
        let img = RgbImage::from_fn(6, 4, |x, _| if x < 3 { Rgb([0; 3]) } else { Rgb([255; 3]) });
        let f = compute_features(&img, &[Channel::GradMag, Channel::LocalStd]);
        for y in 0..4 {
            let g: Vec<f32> = (0..6).map(|x| f[[y, x, 0]]).collect();
            assert_eq!(g[0], 0.0);
            assert_eq!(g[5], 0.0);
            // Columns 2 and 3 both see the full step: |gx| = 4·255.
            assert!(
                (g[2] - 1.0).abs() < 1e-6 && (g[3] - 1.0).abs() < 1e-6,
                "{g:?}"
            );
            assert_eq!(f[[y, 0, 1]], 0.0);
            assert!(f[[y, 2, 1]] > 0.9);
        }
    }

    #[test]
    fn channel_order_follows_the_request() {
        let img = RgbImage::from_fn(5, 3, |x, y| Rgb([(x * 50) as u8, (y * 100) as u8, 77]));
        let all = compute_features(&img, &Channel::ALL);
        let pick = [
            Channel::LocalStd,
            Channel::B,
            Channel::H,
            Channel::B,
            Channel::LchC,
        ];
        let some = compute_features(&img, &pick);
        assert_eq!(some.dim(), (3, 5, pick.len()));
        for (k, ch) in pick.iter().enumerate() {
            let j = Channel::ALL
                .iter()
                .position(|c| c == ch)
                .unwrap_or(usize::MAX);
            for y in 0..3 {
                for x in 0..5 {
                    assert_eq!(some[[y, x, k]], all[[y, x, j]], "{ch} at ({y}, {x})");
                }
            }
        }
    }

    #[test]
    fn every_value_is_in_unit_range_for_any_size() {
        for (w, h) in [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (1, 7), (9, 4)] {
            let img = RgbImage::from_fn(w, h, |x, y| {
                Rgb([
                    (x * 97 + y * 13) as u8,
                    (x * 31 + y * 211) as u8,
                    (x * y * 7 + 5) as u8,
                ])
            });
            let f = compute_features(&img, &Channel::ALL);
            assert_eq!(f.dim(), (h as usize, w as usize, 23));
            assert!(f.iter().all(|v| (0.0..=1.0).contains(v)), "{w}x{h}");
        }
    }

    #[test]
    fn empty_inputs_give_empty_arrays() {
        assert_eq!(
            compute_features(&RgbImage::new(0, 0), &Channel::ALL).dim(),
            (0, 0, 23)
        );
        assert_eq!(
            compute_features(&RgbImage::new(4, 0), &Channel::ALL).dim(),
            (0, 4, 23)
        );
        assert_eq!(
            compute_features(&RgbImage::new(0, 3), &[Channel::R]).dim(),
            (3, 0, 1)
        );
        assert_eq!(
            compute_features(&solid(2, 2, [1, 2, 3]), &[]).dim(),
            (2, 2, 0)
        );
    }
}
