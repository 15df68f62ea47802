//! OpenCV's 8-bit colour conversions, bit for bit: HSV (`RGB2HSV_b`), YCrCb
//! (`RGB2YCrCb_i<uchar>`) and L\*a\*b\* (`RGB2Lab_b`, with OpenCV's sRGB gamma table and software
//! cube root), plus the 8-bit → [0, 1] tables.

use std::sync::LazyLock;

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
pub(super) static INV_255: [f32; 256] = unit_table(255.0);

/// `h / 179`, since OpenCV's 8-bit hue is 0..=179 (entries above 179 are never used).
pub(super) static INV_179: [f32; 256] = unit_table(179.0);

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
pub(super) fn hsv8(r: u8, g: u8, b: u8) -> [u8; 3] {
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
pub(super) fn ycrcb8(r: u8, g: u8, b: u8) -> [u8; 3] {
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
pub(super) const LAB_CBRT_TAB_SIZE: usize = 256 * 3 / 2 * (1 << GAMMA_SHIFT);

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
pub(super) static LAB_CBRT_TAB: LazyLock<[u16; LAB_CBRT_TAB_SIZE]> = LazyLock::new(|| {
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
pub(super) fn lab8(r: u8, g: u8, b: u8, cbrt: &[u16; LAB_CBRT_TAB_SIZE]) -> [u8; 3] {
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
pub(super) fn lab_l8(r: u8, g: u8, b: u8, cbrt: &[u16; LAB_CBRT_TAB_SIZE]) -> u8 {
    l8_from_fy(i32::from(cbrt[xyz_index(linear_rgb(r, g, b), 1)]))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
