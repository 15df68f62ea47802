//! A photo of the part: the random pose and lighting, the photo-to-part mapping, the backlight
//! with its vignette, and rendering (supersampled inverse warp, defect, blur, sensor noise).

use image::{GrayImage, Luma, RgbImage};

use super::defects::Defect;
use super::part::Part;
use super::{Backlight, smoothstep};
use crate::rng::SplitMix64 as Rng;

/// Photo width at which the part appears at its asset size (the fixture's resolution).
const NATIVE_WIDTH: f32 = 1920.0;

/// Placement of the part in one photo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    /// Rotation in degrees.
    pub angle_deg: f32,
    /// Shift of the part centre from the photo centre, photo pixels.
    pub shift: (f32, f32),
    /// Scale relative to the nominal size (part at 2/3 of the width or so).
    pub scale: f32,
    /// Perspective terms: the projective denominator is 1 + px·u + py·v with (u, v) the
    /// part coordinates from its centre divided by the part's half width.
    pub perspective: (f32, f32),
}

/// Lighting and camera of one photo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lighting {
    /// Overall gain.
    pub gain: f32,
    /// Offset in levels.
    pub bias: f32,
    /// Per-channel gain (white balance).
    pub white_balance: [f32; 3],
    /// Gaussian blur σ in photo pixels (0: sharp).
    pub blur: f32,
    /// Sensor noise σ in levels.
    pub noise: f32,
    /// Seed of the sensor noise.
    pub noise_seed: u64,
}

impl Pose {
    /// The identity pose.
    pub const IDENTITY: Pose = Pose {
        angle_deg: 0.0,
        shift: (0.0, 0.0),
        scale: 1.0,
        perspective: (0.0, 0.0),
    };
}

impl Lighting {
    /// Neutral lighting, no blur and no noise.
    pub const NEUTRAL: Lighting = Lighting {
        gain: 1.0,
        bias: 0.0,
        white_balance: [1.0; 3],
        blur: 0.0,
        noise: 0.0,
        noise_seed: 0,
    };
}

/// A random pose for a photo `width` pixels wide: rotation within ±3°, shift within ±40 px at
/// 1920 (scaled with the width), scale within ±3 %, perspective up to 1 % across the part.
pub fn random_pose(rng: &mut Rng, width: u32) -> Pose {
    let s = width as f32 / NATIVE_WIDTH;
    Pose {
        angle_deg: rng.uniform(-3.0, 3.0),
        shift: (rng.uniform(-40.0, 40.0) * s, rng.uniform(-40.0, 40.0) * s),
        scale: rng.uniform(0.97, 1.03),
        perspective: (rng.uniform(-0.01, 0.01), rng.uniform(-0.01, 0.01)),
    }
}

/// Random lighting: gain ±12 %, bias ±8 levels, white balance ±5 % per channel, blur
/// (σ 0.4-0.9 px) in about a third of the photos, sensor noise σ 2 levels.
pub fn random_lighting(rng: &mut Rng) -> Lighting {
    Lighting {
        gain: rng.uniform(0.88, 1.12),
        bias: rng.uniform(-8.0, 8.0),
        white_balance: [
            rng.uniform(0.95, 1.05),
            rng.uniform(0.95, 1.05),
            rng.uniform(0.95, 1.05),
        ],
        blur: if rng.below(3) == 0 {
            rng.uniform(0.4, 0.9)
        } else {
            0.0
        },
        noise: 2.0,
        noise_seed: rng.next_u64(),
    }
}

/// The photo -> part mapping of a pose: a 3x3 homography (row-major) and the nominal scale.
pub(super) fn photo_to_part(part: &Part, width: u32, height: u32, pose: &Pose) -> ([f64; 9], f32) {
    let nominal = (width as f32 / NATIVE_WIDTH).min(height as f32 / (NATIVE_WIDTH * 9.0 / 16.0));
    let s = f64::from(nominal * pose.scale);
    let (sn, cs) = f64::from(pose.angle_deg).to_radians().sin_cos();
    let half = f64::from((part.bbox.2 - part.bbox.0) / 2.0);
    let (pcx, pcy) = (f64::from(part.centre.0), f64::from(part.centre.1));
    let (px, py) = (
        f64::from(pose.perspective.0) / half,
        f64::from(pose.perspective.1) / half,
    );
    // part -> photo: T(centre + shift) · R · S · P · T(-part centre), P = [1 0 0; 0 1 0; px py 1].
    let tx = f64::from(width) / 2.0 + f64::from(pose.shift.0);
    let ty = f64::from(height) / 2.0 + f64::from(pose.shift.1);
    let a = [s * cs, -s * sn, tx, s * sn, s * cs, ty, 0.0, 0.0, 1.0];
    let p = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, px, py, 1.0];
    let t = [1.0, 0.0, -pcx, 0.0, 1.0, -pcy, 0.0, 0.0, 1.0];
    let fwd = mul3(&mul3(&a, &p), &t);
    (inv3(&fwd), nominal * pose.scale)
}

fn mul3(a: &[f64; 9], b: &[f64; 9]) -> [f64; 9] {
    std::array::from_fn(|i| {
        let (r, c) = (i / 3, i % 3);
        (0..3).map(|k| a[r * 3 + k] * b[k * 3 + c]).sum()
    })
}

fn inv3(m: &[f64; 9]) -> [f64; 9] {
    let det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6])
        + m[2] * (m[3] * m[7] - m[4] * m[6]);
    let d = 1.0 / det;
    [
        (m[4] * m[8] - m[5] * m[7]) * d,
        (m[2] * m[7] - m[1] * m[8]) * d,
        (m[1] * m[5] - m[2] * m[4]) * d,
        (m[5] * m[6] - m[3] * m[8]) * d,
        (m[0] * m[8] - m[2] * m[6]) * d,
        (m[2] * m[3] - m[0] * m[5]) * d,
        (m[3] * m[7] - m[4] * m[6]) * d,
        (m[1] * m[6] - m[0] * m[7]) * d,
        (m[0] * m[4] - m[1] * m[3]) * d,
    ]
}

/// The backlight at a photo pixel: a lit disk (radius 0.41 of the width) with a vignette and a
/// soft edge, dark outside, like a microscope's field of view.
fn backlight_at(colour: [f32; 3], width: u32, height: u32, x: f32, y: f32) -> [f32; 3] {
    let w = width as f32;
    let (dx, dy) = (x - w / 2.0, y - height as f32 / 2.0);
    let r = (dx * dx + dy * dy).sqrt() / (0.41 * w);
    let lit = (1.0 - 0.22 * r * r) * (1.0 - smoothstep(0.96, 1.04, r));
    colour.map(|c| c * lit + 4.0 * (1.0 - lit).max(0.0))
}

/// The optics' falloff on the part itself (milder than the backlight's vignette).
fn part_vignette(width: u32, height: u32, x: f32, y: f32) -> f32 {
    let w = width as f32;
    let (dx, dy) = (x - w / 2.0, y - height as f32 / 2.0);
    let r2 = (dx * dx + dy * dy) / (0.41 * w).powi(2);
    1.0 - 0.06 * r2
}

/// Renders one photo: the part under `pose` over the backlight, with an optional defect at
/// `contrast`, then the lighting, blur and noise. Returns the photo and the defect's mask in
/// photo coordinates (255 where the defect's opacity averaged over the pixel is ≥ 0.5; empty
/// without a defect).
#[allow(clippy::too_many_arguments)]
pub fn render(
    part: &Part,
    width: u32,
    height: u32,
    backlight: &Backlight,
    pose: &Pose,
    light: &Lighting,
    defect: Option<&Defect>,
    contrast: f32,
) -> (RgbImage, GrayImage) {
    let (inv, scale) = photo_to_part(part, width, height, pose);
    let n = (1.0 / scale).ceil().clamp(1.0, 6.0) as usize;
    let (w, h) = (width as usize, height as usize);
    let mut buf = vec![[0f32; 3]; w * h];
    let mut mask = GrayImage::new(width, height);
    let to_part = |x: f64, y: f64| {
        let d = inv[6] * x + inv[7] * y + inv[8];
        (
            ((inv[0] * x + inv[1] * y + inv[2]) / d) as f32,
            ((inv[3] * x + inv[4] * y + inv[5]) / d) as f32,
        )
    };
    // The part's footprint in the photo (with a margin), to skip the plain background quickly.
    let (mut fx0, mut fy0, mut fx1, mut fy1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    {
        let fwd = inv3(&inv);
        for (u, v) in [
            (0.0, 0.0),
            (part.w as f64, 0.0),
            (0.0, part.h as f64),
            (part.w as f64, part.h as f64),
        ] {
            let d = fwd[6] * u + fwd[7] * v + fwd[8];
            let x = (fwd[0] * u + fwd[1] * v + fwd[2]) / d;
            let y = (fwd[3] * u + fwd[4] * v + fwd[5]) / d;
            fx0 = fx0.min(x);
            fy0 = fy0.min(y);
            fx1 = fx1.max(x);
            fy1 = fy1.max(y);
        }
    }
    let inv_n = 1.0 / n as f64;
    let inv_nn = 1.0 / (n * n) as f32;
    for y in 0..h {
        for x in 0..w {
            let (xc, yc) = (x as f32 + 0.5, y as f32 + 0.5);
            let bg = backlight_at(backlight.colour, width, height, xc, yc);
            let xf = x as f64;
            let yf = y as f64;
            if xf + 1.0 < fx0 || xf > fx1 || yf + 1.0 < fy0 || yf > fy1 {
                buf[y * w + x] = bg;
                continue;
            }
            let vig = part_vignette(width, height, xc, yc);
            let mut acc = [0f32; 3];
            let mut cover = 0f32;
            for sy in 0..n {
                for sx in 0..n {
                    let (u, v) = to_part(
                        xf + (sx as f64 + 0.5) * inv_n,
                        yf + (sy as f64 + 0.5) * inv_n,
                    );
                    let a = part.alpha_at(u, v);
                    if a <= 0.0 {
                        for k in 0..3 {
                            acc[k] += bg[k];
                        }
                        continue;
                    }
                    let mut col = part.rgb_at(u, v);
                    if let Some(d) = defect {
                        // Defects lie inside the part (opacity 0 where alpha < 1).
                        let ch = d.change_at(u, v);
                        for k in 0..3 {
                            col[k] += contrast * ch[k];
                        }
                        cover += d.opacity_at(u, v);
                    }
                    for k in 0..3 {
                        acc[k] += a * col[k] * vig + (1.0 - a) * bg[k];
                    }
                }
            }
            buf[y * w + x] = acc.map(|c| c * inv_nn);
            if cover * inv_nn >= 0.5 {
                mask.put_pixel(x as u32, y as u32, Luma([255]));
            }
        }
    }
    if light.blur > 0.0 {
        gaussian_blur(&mut buf, w, h, light.blur);
    }
    let mut rng = Rng::new(light.noise_seed);
    let mut img = RgbImage::new(width, height);
    for (p, out) in buf.iter().zip(img.pixels_mut()) {
        for ((o, &c), wb) in out.0.iter_mut().zip(p).zip(light.white_balance) {
            let noise = if light.noise > 0.0 {
                light.noise * gaussian(&mut rng)
            } else {
                0.0
            };
            let v = c * light.gain * wb + light.bias + noise;
            *o = (v.clamp(0.0, 255.0) + 0.5) as u8;
        }
    }
    (img, mask)
}

/// A near-normal deviate with mean 0 and variance 1: the sum of four uniforms (Irwin–Hall, from
/// one 64-bit draw), scaled. Its tails stop at ±3.5σ, which is fine for sensor noise, and it is
/// several times cheaper than Box–Muller on the millions of draws a photo needs.
fn gaussian(rng: &mut Rng) -> f32 {
    let r = rng.next_u64();
    let sum: u32 = (0..4).map(|i| ((r >> (16 * i)) & 0xFFFF) as u32).sum();
    // Four uniforms on [0, 1) sum to mean 2, variance 1/3.
    (sum as f32 - 4.0 * 32767.5) * (3.0f32.sqrt() / 65536.0)
}

/// Separable Gaussian blur in place (edges clamped), channel by channel, with the shared
/// float blur.
fn gaussian_blur(buf: &mut [[f32; 3]], w: usize, h: usize, sigma: f32) {
    for c in 0..3 {
        let ch: Vec<f32> = buf.iter().map(|p| p[c]).collect();
        let blurred = crate::preprocess::blur::gaussian_blur(&ch, (h, w), sigma);
        for (p, v) in buf.iter_mut().zip(blurred) {
            p[c] = v;
        }
    }
}
