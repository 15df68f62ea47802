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

use std::sync::LazyLock;

use ndarray::Array3;
use rayon::prelude::*;

use super::Channel;
use super::blur::reflect101;

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

// ---------------------------------------------------------------------------------------------
// 8-bit → [0, 1] tables
// ---------------------------------------------------------------------------------------------

/// `i / d` for every 8-bit `i`, computed at compile time (a table lookup beats a division).
const fn unit_table(d: f32) -> [f32; 256] {
    let mut t = [0.0f32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as f32 / d;
        i += 1;
    }
    t
}

/// `v / 255`, the normalisation of every 8-bit channel except hue.
static INV_255: [f32; 256] = unit_table(255.0);
/// `h / 179`, since OpenCV's 8-bit hue is 0..=179 (entries above 179 are never used).
static INV_179: [f32; 256] = unit_table(179.0);

// ---------------------------------------------------------------------------------------------
// HSV: OpenCV RGB2HSV_b (hue range 180)
// ---------------------------------------------------------------------------------------------

/// OpenCV's `hsv_shift`: the fixed-point precision of its 8-bit HSV tables.
const HSV_SHIFT: i32 = 12;

/// `n / d` rounded half to even, as `cvRound` of the (exactly representable) double quotient.
const fn div_round_half_even(n: i32, d: i32) -> i32 {
    let (q, r) = (n / d, n % d);
    if 2 * r > d || (2 * r == d && q % 2 == 1) {
        q + 1
    } else {
        q
    }
}

/// OpenCV's `sdiv_table` (`mul = 1`, `numer = 255 << 12`) or `hdiv_table180` (`mul = 6`,
/// `numer = 180 << 12`): `cvRound(numer / (mul * i))`, 0 at `i = 0`.
const fn hsv_div_table(numer: i32, mul: i32) -> [i32; 256] {
    let mut t = [0i32; 256];
    let mut i = 1;
    while i < 256 {
        t[i as usize] = div_round_half_even(numer, mul * i);
        i += 1;
    }
    t
}

static SDIV_TABLE: [i32; 256] = hsv_div_table(255 << HSV_SHIFT, 1);
static HDIV_TABLE: [i32; 256] = hsv_div_table(180 << HSV_SHIFT, 6);

/// OpenCV's 8-bit `COLOR_RGB2HSV` of one pixel: [H (0..=179), S, V].
#[inline]
fn hsv8(r: u8, g: u8, b: u8) -> [u8; 3] {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let v = r.max(g).max(b);
    let diff = v - r.min(g).min(b);
    let half = 1 << (HSV_SHIFT - 1);
    // v, diff ∈ 0..=255, so the table indices are in range.
    let s = (diff * SDIV_TABLE[v as usize] + half) >> HSV_SHIFT;
    // OpenCV tests "v is r" before "v is g", which decides ties (e.g. yellow counts as red).
    let h = if v == r {
        g - b
    } else if v == g {
        b - r + 2 * diff
    } else {
        r - g + 4 * diff
    };
    // Arithmetic shift of a negative numerator, exactly as the C code does.
    let mut h = (h * HDIV_TABLE[diff as usize] + half) >> HSV_SHIFT;
    if h < 0 {
        h += 180;
    }
    [sat_u8(h), sat_u8(s), sat_u8(v)]
}

// ---------------------------------------------------------------------------------------------
// YCrCb: OpenCV RGB2YCrCb_i<uchar>
// ---------------------------------------------------------------------------------------------

/// OpenCV's `yuv_shift`.
const YUV_SHIFT: i32 = 14;
/// OpenCV's integer YCrCb coefficients: R, G, B → Y, then Cr and Cb scales (BT.601, ·2^14).
const YCC_COEFFS: [i32; 5] = [4899, 9617, 1868, 11682, 9241];

/// OpenCV's 8-bit `COLOR_RGB2YCrCb` of one pixel: [Y, Cr, Cb].
#[inline]
fn ycrcb8(r: u8, g: u8, b: u8) -> [u8; 3] {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let [cr_, cg, cb_, c_cr, c_cb] = YCC_COEFFS;
    let half = 1 << (YUV_SHIFT - 1);
    let delta = 128 << YUV_SHIFT;
    let y = (r * cr_ + g * cg + b * cb_ + half) >> YUV_SHIFT;
    let cr = ((r - y) * c_cr + delta + half) >> YUV_SHIFT;
    let cb = ((b - y) * c_cb + delta + half) >> YUV_SHIFT;
    [sat_u8(y), sat_u8(cr), sat_u8(cb)]
}

/// `saturate_cast<uchar>` of an int.
#[inline]
fn sat_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

// ---------------------------------------------------------------------------------------------
// L*a*b*: OpenCV RGB2Lab_b (sRGB, D65)
// ---------------------------------------------------------------------------------------------

/// OpenCV's `lab_shift` (= `xyz_shift`).
const LAB_SHIFT: i32 = 12;
/// OpenCV's `gamma_shift`: the gamma table holds linear values ·255·2^3.
const GAMMA_SHIFT: i32 = 3;
/// OpenCV's `lab_shift2`.
const LAB_SHIFT2: i32 = LAB_SHIFT + GAMMA_SHIFT;
/// OpenCV's `LAB_CBRT_TAB_SIZE_B`.
const LAB_CBRT_TAB_SIZE: usize = 256 * 3 / 2 * (1 << GAMMA_SHIFT);

/// OpenCV's `sRGBGammaTab_b`: `cvRound(255·8·gamma(i/255))` with the sRGB transfer curve.
/// Hard-coded because OpenCV builds it with its own software `pow`, which a platform `powf` is
/// not guaranteed to reproduce; `tests::gamma_table_matches_the_srgb_curve` re-derives it.
const SRGB_GAMMA_TAB: [u16; 256] = [
    0, 1, 1, 2, 2, 3, 4, 4, 5, 6, 6, 7, 8, 8, 9, 10, //
    11, 11, 12, 13, 14, 15, 16, 17, 19, 20, 21, 22, 24, 25, 26, 28, //
    29, 31, 33, 34, 36, 38, 40, 41, 43, 45, 47, 49, 51, 54, 56, 58, //
    60, 63, 65, 68, 70, 73, 75, 78, 81, 83, 86, 89, 92, 95, 98, 101, //
    105, 108, 111, 115, 118, 121, 125, 129, 132, 136, 140, 144, 147, 151, 155, 160, //
    164, 168, 172, 176, 181, 185, 190, 194, 199, 204, 209, 213, 218, 223, 228, 233, //
    239, 244, 249, 255, 260, 265, 271, 277, 282, 288, 294, 300, 306, 312, 318, 324, //
    331, 337, 343, 350, 356, 363, 370, 376, 383, 390, 397, 404, 411, 418, 426, 433, //
    440, 448, 455, 463, 471, 478, 486, 494, 502, 510, 518, 527, 535, 543, 552, 560, //
    569, 578, 586, 595, 604, 613, 622, 631, 641, 650, 659, 669, 678, 688, 698, 707, //
    717, 727, 737, 747, 757, 768, 778, 788, 799, 809, 820, 831, 842, 852, 863, 875, //
    886, 897, 908, 920, 931, 943, 954, 966, 978, 990, 1002, 1014, 1026, 1038, 1050, 1063, //
    1075, 1088, 1101, 1113, 1126, 1139, 1152, 1165, 1178, 1192, 1205, 1218, 1232, 1245, 1259,
    1273, //
    1287, 1301, 1315, 1329, 1343, 1357, 1372, 1386, 1401, 1415, 1430, 1445, 1460, 1475, 1490,
    1505, //
    1521, 1536, 1551, 1567, 1583, 1598, 1614, 1630, 1646, 1662, 1678, 1695, 1711, 1728, 1744,
    1761, //
    1778, 1794, 1811, 1828, 1846, 1863, 1880, 1897, 1915, 1933, 1950, 1968, 1986, 2004, 2022,
    2040, //
];

/// OpenCV's RGB → XYZ matrix for Lab, row-major (X, Y, Z rows; R, G, B columns):
/// `cvRound(2^12 · sRGB2XYZ_D65[i][j] / D65_white[i])`. Each row sums to 2^12, so white maps to
/// exactly 1. `tests::lab_coefficients_match_opencv_derivation` re-derives it.
const LAB_XYZ_COEFFS: [i32; 9] = [1777, 1541, 778, 871, 2929, 296, 73, 448, 3575];

/// OpenCV's `LabCbrtTab_b`: `cvRound(2^15 · f(i / 2040))` with the Lab companding
/// f(t) = t^(1/3) above (6/29)^3, else 7.787·t + 16/116, evaluated in f32 as OpenCV does.
static LAB_CBRT_TAB: LazyLock<[u16; LAB_CBRT_TAB_SIZE]> = LazyLock::new(|| {
    // OpenCV builds these from exact rationals in softfloat (IEEE f32, correctly rounded).
    let scale = 1.0f32 / (255.0 * (1 << GAMMA_SHIFT) as f32);
    let lthresh = 216.0f32 / 24389.0;
    let lscale = 841.0f32 / 108.0;
    let lbias = 16.0f32 / 116.0;
    let mut tab = [0u16; LAB_CBRT_TAB_SIZE];
    for (i, t) in tab.iter_mut().enumerate() {
        let x = scale * i as f32;
        let f = if x < lthresh {
            // softfloat's mulAdd is a fused multiply-add.
            x.mul_add(lscale, lbias)
        } else {
            opencv_cbrt(x)
        };
        // ≤ 2^15 · 1.145, so it fits in u16.
        *t = ((1 << LAB_SHIFT2) as f32 * f).round_ties_even() as u16;
    }
    tab
});

/// OpenCV's software `cbrt` for f32 (Ken Turkowski's rational approximation in f64, then the
/// mantissa is truncated, not rounded, to f32). A correctly rounded cube root differs from it
/// in a few table entries (e.g. i = 324), which changes L, a or b by 1 for ~20k colours.
fn opencv_cbrt(x: f32) -> f32 {
    const A: [u64; 9] = [
        0x4046a09e6653ba70,
        0x406808f46c6116e0,
        0x405dca97439cae14,
        0x402add70d2827500,
        0x3fc4f15f83f55d2d,
        0x402d9e20660edb21,
        0x4062ff15c0285815,
        0x406510d06a8112ce,
        0x4040fecbc9e2c375,
    ];
    if x.is_nan() || x.is_infinite() {
        return x;
    }
    let bits = x.to_bits();
    if bits & 0x7fff_ffff == 0 {
        return 0.0;
    }
    let a = A.map(f64::from_bits);
    let sign = bits >> 31;
    let mut ex = ((bits >> 23) & 0xff) as i32 - 127;
    let mut shx = ex % 3;
    shx -= if shx >= 0 { 3 } else { 0 };
    ex = (ex - shx) / 3 - 1;
    // 0.125 <= fr < 1
    let fr = f64::from_bits((((shx + 1023) as u64) << 52) | (u64::from(bits & 0x7f_ffff) << 29));
    let num = (((a[0] * fr + a[1]) * fr + a[2]) * fr + a[3]) * fr + a[4];
    let den = (((a[5] * fr + a[6]) * fr + a[7]) * fr + a[8]) * fr + 1.0;
    let fr = num / den;
    let mant = ((fr.to_bits() & ((1u64 << 52) - 1)) >> 29) as u32;
    f32::from_bits((sign << 31) | (((ex + 127) as u32 & 0xff) << 23) | mant)
}

/// Linear-light R, G, B (·2040) → index into [`LAB_CBRT_TAB`] for row `row` of the matrix.
#[inline]
fn xyz_index(lin: [i32; 3], row: usize) -> usize {
    let c = &LAB_XYZ_COEFFS[row * 3..row * 3 + 3];
    let v = (lin[0] * c[0] + lin[1] * c[1] + lin[2] * c[2] + (1 << (LAB_SHIFT - 1))) >> LAB_SHIFT;
    // Rows sum to 2^12, so v ≤ 2040 < table size; the clamp only proves it to the compiler.
    (v.max(0) as usize).min(LAB_CBRT_TAB_SIZE - 1)
}

#[inline]
fn linear_rgb(r: u8, g: u8, b: u8) -> [i32; 3] {
    [r, g, b].map(|v| i32::from(SRGB_GAMMA_TAB[usize::from(v)]))
}

/// OpenCV's 8-bit L from the companded Y.
#[inline]
fn l8_from_fy(fy: i32) -> u8 {
    // Lscale = (116·255 + 50)/100, Lshift = −(16·255·2^15 + 50)/100 (integer divisions).
    const L_SCALE: i32 = (116 * 255 + 50) / 100;
    const L_SHIFT: i32 = -((16 * 255 * (1 << LAB_SHIFT2) + 50) / 100);
    sat_u8((L_SCALE * fy + L_SHIFT + (1 << (LAB_SHIFT2 - 1))) >> LAB_SHIFT2)
}

/// OpenCV's 8-bit `COLOR_RGB2Lab` of one pixel: [L·255/100, a + 128, b + 128].
#[inline]
fn lab8(r: u8, g: u8, b: u8, cbrt: &[u16; LAB_CBRT_TAB_SIZE]) -> [u8; 3] {
    let lin = linear_rgb(r, g, b);
    let fx = i32::from(cbrt[xyz_index(lin, 0)]);
    let fy = i32::from(cbrt[xyz_index(lin, 1)]);
    let fz = i32::from(cbrt[xyz_index(lin, 2)]);
    let offset = (128 << LAB_SHIFT2) + (1 << (LAB_SHIFT2 - 1));
    let a = (500 * (fx - fy) + offset) >> LAB_SHIFT2;
    let b = (200 * (fy - fz) + offset) >> LAB_SHIFT2;
    [l8_from_fy(fy), sat_u8(a), sat_u8(b)]
}

/// Only the L of [`lab8`] (for the spatial channels' L plane).
#[inline]
fn lab_l8(r: u8, g: u8, b: u8, cbrt: &[u16; LAB_CBRT_TAB_SIZE]) -> u8 {
    l8_from_fy(i32::from(cbrt[xyz_index(linear_rgb(r, g, b), 1)]))
}

// ---------------------------------------------------------------------------------------------
// Spatial channels on the 8-bit L plane
// ---------------------------------------------------------------------------------------------

/// The 3x3 filter responses at one pixel, in integer 8-bit L units (all exact).
#[derive(Clone, Copy, Default)]
struct Spatial {
    /// gx² + gy² of OpenCV's 3x3 Sobel.
    grad2: i32,
    /// OpenCV's `Laplacian(ksize = 1)`: kernel [0 1 0; 1 −4 1; 0 1 0].
    laplacian: i32,
    /// 9·ΣL² − (ΣL)² over the 3x3 box = (9·255)²·(box3(LAB_L²) − box3(LAB_L)²).
    dev2: i32,
}

/// Reusable buffers for filtering one image row of the L plane.
#[derive(Default)]
struct RowFilter {
    /// The rows above, at and below, widened to i32 and padded by one reflected column on each
    /// side, so the inner loop needs no border logic.
    padded: [Vec<i32>; 3],
    /// The responses of the row's pixels.
    out: Vec<Spatial>,
}

impl RowFilter {
    /// Filters row `y` of the `w x h` plane into `self.out`.
    fn run(&mut self, plane: &[u8], w: usize, h: usize, y: usize) {
        let yi = y as isize;
        for (buf, yy) in self.padded.iter_mut().zip([yi - 1, yi, yi + 1]) {
            let ry = reflect101(yy, h);
            let row = plane.get(ry * w..ry * w + w).unwrap_or(&[]);
            let at = |x: isize| row.get(reflect101(x, w)).map_or(0, |&v| i32::from(v));
            buf.clear();
            buf.push(at(-1));
            buf.extend(row.iter().map(|&v| i32::from(v)));
            buf.push(at(w as isize));
        }
        let [up, mid, down] = &self.padded;
        self.out.clear();
        let blocks = up.windows(3).zip(mid.windows(3)).zip(down.windows(3));
        self.out.extend(blocks.map(|((u, m), d)| {
            let gx = (u[2] - u[0]) + 2 * (m[2] - m[0]) + (d[2] - d[0]);
            let gy = (d[0] - u[0]) + 2 * (d[1] - u[1]) + (d[2] - u[2]);
            let s1 = u[0] + u[1] + u[2] + m[0] + m[1] + m[2] + d[0] + d[1] + d[2];
            let s2 = u[0] * u[0]
                + u[1] * u[1]
                + u[2] * u[2]
                + m[0] * m[0]
                + m[1] * m[1]
                + m[2] * m[2]
                + d[0] * d[0]
                + d[1] * d[1]
                + d[2] * d[2];
            Spatial {
                grad2: gx * gx + gy * gy,
                laplacian: u[1] + d[1] + m[0] + m[2] - 4 * m[1],
                // Cauchy–Schwarz makes this ≥ 0; the max only guards the invariant.
                dev2: (9 * s2 - s1 * s1).max(0),
            }
        }));
    }
}

// ---------------------------------------------------------------------------------------------
// Whole-image normalisations
// ---------------------------------------------------------------------------------------------

/// The integer key space of a robust channel; `value` maps a key to the channel's value
/// (non-decreasing, so the order statistics of keys are those of values).
struct KeySpace {
    min: i32,
    max: i32,
    value: fn(i32) -> f64,
}

impl KeySpace {
    fn bins(&self) -> usize {
        (self.max - self.min + 1) as usize
    }
}

/// LCh_C: key a\*² + b\*² with a\*, b\* ∈ −128..=127, value the chroma sqrt(key).
static LCH_C_KEYS: KeySpace = KeySpace {
    min: 0,
    max: 2 * 128 * 128,
    value: |k| f64::from(k).sqrt(),
};
/// Opp_O1: key and value R − G.
static OPP_O1_KEYS: KeySpace = KeySpace {
    min: -255,
    max: 255,
    value: f64::from,
};
/// Opp_O2: key R + G − 2B, value (R + G)/2 − B.
static OPP_O2_KEYS: KeySpace = KeySpace {
    min: -510,
    max: 510,
    value: |k| f64::from(k) / 2.0,
};
/// Laplacian: key in 8-bit L units, value in LAB_L units.
static LAPLACIAN_KEYS: KeySpace = KeySpace {
    min: -1020,
    max: 1020,
    value: |k| f64::from(k) / 255.0,
};

/// The whole-image statistics of one image, gathered by one parallel pass.
#[derive(Default)]
struct Stats {
    lch_c: Vec<u64>,
    opp_o1: Vec<u64>,
    opp_o2: Vec<u64>,
    laplacian: Vec<u64>,
    max_grad2: i32,
    max_dev2: i32,
}

impl Stats {
    /// Empty histograms for the channels `plan` requests (none for the others).
    fn empty(plan: &Plan) -> Self {
        let hist = |on: bool, keys: &KeySpace| if on { vec![0; keys.bins()] } else { Vec::new() };
        Stats {
            lch_c: hist(plan.lch_c, &LCH_C_KEYS),
            opp_o1: hist(plan.opp_o1, &OPP_O1_KEYS),
            opp_o2: hist(plan.opp_o2, &OPP_O2_KEYS),
            laplacian: hist(plan.laplacian, &LAPLACIAN_KEYS),
            max_grad2: 0,
            max_dev2: 0,
        }
    }

    fn merge(mut self, other: Stats) -> Self {
        for (a, b) in [
            (&mut self.lch_c, &other.lch_c),
            (&mut self.opp_o1, &other.opp_o1),
            (&mut self.opp_o2, &other.opp_o2),
            (&mut self.laplacian, &other.laplacian),
        ] {
            if a.is_empty() {
                a.clone_from(b);
            } else {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
            }
        }
        self.max_grad2 = self.max_grad2.max(other.max_grad2);
        self.max_dev2 = self.max_dev2.max(other.max_dev2);
        self
    }
}

/// Counts `key` in `hist` (a no-op for an unrequested, empty histogram).
#[inline]
fn count(hist: &mut [u64], key: i32, keys: &KeySpace) {
    if let Some(n) = usize::try_from(key - keys.min)
        .ok()
        .and_then(|i| hist.get_mut(i))
    {
        *n += 1;
    }
}

/// Everything the final pass needs from the whole image: a key → output table per robust
/// channel (empty if not requested) and the scale of each max-normalised channel.
#[derive(Default)]
struct Normalisers {
    lch_c: Vec<f32>,
    opp_o1: Vec<f32>,
    opp_o2: Vec<f32>,
    laplacian: Vec<f32>,
    /// sqrt(grad2) · grad_scale = (|∇L8|/255) / (max(|∇L8|)/255 + 1e-7).
    grad_scale: f32,
    /// sqrt(dev2) · std_scale = std(LAB_L) / (max std(LAB_L) + 1e-7).
    std_scale: f32,
}

impl Normalisers {
    /// Gathers the statistics the requested channels need in one pass over the image.
    fn measure(frame: &Frame<'_>, plan: &Plan) -> Self {
        if !plan.needs_stats() {
            return Normalisers::default();
        }
        let Frame {
            rgb,
            l_plane,
            w,
            h,
            cbrt,
        } = *frame;
        let stats = rgb
            .par_chunks(w)
            .enumerate()
            .fold(
                || (Stats::empty(plan), RowFilter::default()),
                |(mut st, mut filter), (y, row)| {
                    for &p in row {
                        if plan.lch_c {
                            let key = chroma_key(lab8(p[0], p[1], p[2], cbrt));
                            count(&mut st.lch_c, key, &LCH_C_KEYS);
                        }
                        if plan.opp_o1 {
                            count(&mut st.opp_o1, opp_o1_key(p), &OPP_O1_KEYS);
                        }
                        if plan.opp_o2 {
                            count(&mut st.opp_o2, opp_o2_key(p), &OPP_O2_KEYS);
                        }
                    }
                    if plan.spatial {
                        filter.run(l_plane, w, h, y);
                        for sp in &filter.out {
                            count(&mut st.laplacian, sp.laplacian, &LAPLACIAN_KEYS);
                            st.max_grad2 = st.max_grad2.max(sp.grad2);
                            st.max_dev2 = st.max_dev2.max(sp.dev2);
                        }
                    }
                    (st, filter)
                },
            )
            .map(|(st, _)| st)
            .reduce(|| Stats::empty(plan), Stats::merge);

        // Max normalisation as the original: (v / unit) / (max / unit + 1e-7).
        let max_scale =
            |max2: i32, unit: f64| (1.0 / unit / (f64::from(max2).sqrt() / unit + EPS)) as f32;
        Normalisers {
            lch_c: robust_table(&stats.lch_c, &LCH_C_KEYS),
            opp_o1: robust_table(&stats.opp_o1, &OPP_O1_KEYS),
            opp_o2: robust_table(&stats.opp_o2, &OPP_O2_KEYS),
            laplacian: robust_table(&stats.laplacian, &LAPLACIAN_KEYS),
            // The Sobel magnitude is in 8-bit L units; LAB_L = L8 / 255.
            grad_scale: max_scale(stats.max_grad2, 255.0),
            // sqrt(dev2) = 9·255·std(LAB_L).
            std_scale: max_scale(stats.max_dev2, 9.0 * 255.0),
        }
    }
}

/// robust() as a key → output table: `(clip(v, p1, p99) − p1) / (p99 − p1 + 1e-7)` with p1, p99
/// the numpy (linear) 1st and 99th percentiles of the image's values. Empty for an empty
/// histogram (channel not requested).
fn robust_table(hist: &[u64], keys: &KeySpace) -> Vec<f32> {
    let value_of_bin = |i: usize| (keys.value)(i as i32 + keys.min);
    let (Some(p1), Some(p99)) = (
        hist_percentile(hist, 1.0, value_of_bin),
        hist_percentile(hist, 99.0, value_of_bin),
    ) else {
        return Vec::new();
    };
    let denom = p99 - p1 + EPS;
    // max/min rather than clamp: clamp would panic if p1 > p99 (impossible, but input-adjacent).
    (0..hist.len())
        .map(|i| ((value_of_bin(i).max(p1).min(p99) - p1) / denom) as f32)
        .collect()
}

/// `numpy.percentile(values, q)` (method "linear") of the multiset whose per-bin counts are
/// `hist`; `value` maps a bin to its value (non-decreasing). `None` if the multiset is empty.
fn hist_percentile(hist: &[u64], q: f64, value: impl Fn(usize) -> f64) -> Option<f64> {
    let n: u64 = hist.iter().sum();
    if n == 0 {
        return None;
    }
    // The k-th smallest element (0-based).
    let kth = |k: u64| {
        let mut seen = 0u64;
        for (i, &count) in hist.iter().enumerate() {
            seen += count;
            if seen > k {
                return value(i);
            }
        }
        value(hist.len().saturating_sub(1))
    };
    // numpy's virtual index for alpha = beta = 1, in the same floating-point order.
    let qf = q / 100.0;
    let virtual_index = (n as f64 * qf + (1.0 - qf)) - 1.0;
    let prev = virtual_index.floor();
    let t = virtual_index - prev;
    let lo = (prev.max(0.0) as u64).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    let (a, b) = (kth(lo), kth(hi));
    // numpy's _lerp: interpolate from the nearer end.
    let d = b - a;
    Some(if t >= 0.5 {
        b - d * (1.0 - t)
    } else {
        a + d * t
    })
}

#[cfg(test)]
mod tests {
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
    fn hsv_tables_match_opencv_definition() {
        for i in 1..256 {
            let s = ((255 << 12) as f64 / i as f64).round_ties_even() as i32;
            let h = ((180 << 12) as f64 / (6 * i) as f64).round_ties_even() as i32;
            assert_eq!(SDIV_TABLE[i], s);
            assert_eq!(HDIV_TABLE[i], h);
        }
        assert_eq!((SDIV_TABLE[0], HDIV_TABLE[0]), (0, 0));
    }

    #[test]
    fn gamma_table_matches_the_srgb_curve() {
        for (i, &t) in SRGB_GAMMA_TAB.iter().enumerate() {
            let x = f64::from(i as f32 / 255.0);
            let lin = if x <= 809.0 / 20000.0 {
                x / (323.0 / 25.0)
            } else {
                ((x + 11.0 / 200.0) / (1.0 + 11.0 / 200.0)).powf(12.0 / 5.0)
            };
            let want = (2040.0f32 * lin as f32).round_ties_even() as u16;
            assert_eq!(t, want, "gamma[{i}]");
        }
    }

    #[test]
    fn lab_coefficients_match_opencv_derivation() {
        // sRGB2XYZ_D65 and the D65 white point, bit for bit as OpenCV stores them.
        let m = [
            0x3fda65a14488c60d_u64,
            0x3fd6e297396d0918,
            0x3fc71819d2391d58,
            0x3fcb38cda6e75ff6,
            0x3fe6e297396d0918,
            0x3fb279aae6c8f755,
            0x3f93cc4ac6cdaf4b,
            0x3fbe836eb4e98138,
            0x3fee68427418d691,
        ]
        .map(f64::from_bits);
        let white = [
            f64::from_bits(0x3fee6a22b3892ee8),
            1.0,
            f64::from_bits(0x3ff16b8950763a19),
        ];
        for (i, &c) in LAB_XYZ_COEFFS.iter().enumerate() {
            let want = (4096.0 * m[i] / white[i / 3]).round_ties_even() as i32;
            assert_eq!(c, want, "coefficient {i}");
        }
    }

    #[test]
    fn opencv_cbrt_truncates() {
        assert_eq!(opencv_cbrt(0.0), 0.0);
        assert_eq!(opencv_cbrt(1.0), 1.0);
        assert!((opencv_cbrt(0.125) - 0.5).abs() < 1e-7);
        assert!((opencv_cbrt(0.5) - 0.5f32.cbrt()).abs() < 2e-7);
        // The entry where truncation differs from a correctly rounded cube root.
        assert_eq!(LAB_CBRT_TAB[324], 17745);
        assert_eq!(LAB_CBRT_TAB[0], 4520);
        assert_eq!(LAB_CBRT_TAB[2040], 32768);
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
