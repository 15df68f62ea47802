//! The synthetic demo component: flex-circuit-like parts (copper traces, pads and text-like
//! marks on an amber substrate) photographed on a black background with small random poses and
//! lighting, in two types. Good images for training; defective ones (scratch, spot, missing
//! trace, discolouration) with exact ground-truth masks for validation. Everything is drawn
//! analytically in part coordinates, so a defect moves with the part and its mask is exact.
//!
//! [`realistic`] is the second generator, the one `pixal demo` and `bench/quality.sh` use: photos
//! of a real flex circuit (embedded in `assets/flex/`) under realistic poses, lighting and noise.

pub mod realistic;

use std::path::{Path, PathBuf};

use image::{GrayImage, Luma, Rgb, RgbImage};
use rayon::prelude::*;

use crate::io::IoError;
use crate::io::image::save_png;

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoSpec {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Good training images per type.
    pub good_per_type: usize,
    /// Good validation images per type.
    pub good_validate_per_type: usize,
    /// Defective validation images per type (cycling through the defect kinds).
    pub defective_per_type: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for DemoSpec {
    fn default() -> Self {
        DemoSpec {
            width: 320,
            height: 240,
            good_per_type: 20,
            good_validate_per_type: 4,
            defective_per_type: 8,
            seed: 7,
        }
    }
}

/// Where the generated images went.
#[derive(Debug, Clone)]
pub struct DemoData {
    /// Good images, one sub-folder per type.
    pub train: PathBuf,
    /// Good and defective images, one sub-folder per type.
    pub validate: PathBuf,
    /// Ground-truth masks `<type>/<stem>_mask.png` for the defective validation images.
    pub truth: PathBuf,
}

/// The two part types of the demo.
pub const TYPES: [&str; 2] = ["front", "back"];

/// A defect drawn on a part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Defect {
    /// A thin bright line between two points (part coordinates).
    Scratch {
        /// Start.
        from: (f32, f32),
        /// End.
        to: (f32, f32),
    },
    /// A dark round contamination spot.
    Spot {
        /// Centre.
        at: (f32, f32),
        /// Radius.
        radius: f32,
    },
    /// A piece of copper trace missing between two u coordinates on one trace row.
    MissingTrace {
        /// Trace row index.
        row: usize,
        /// Start of the gap (u).
        u0: f32,
        /// End of the gap (u).
        u1: f32,
    },
    /// A discoloured round region.
    Discolour {
        /// Centre.
        at: (f32, f32),
        /// Radius.
        radius: f32,
    },
}

impl Defect {
    /// Short name used in file names.
    pub fn name(&self) -> &'static str {
        match self {
            Defect::Scratch { .. } => "scratch",
            Defect::Spot { .. } => "spot",
            Defect::MissingTrace { .. } => "missing_trace",
            Defect::Discolour { .. } => "discolour",
        }
    }
}

/// Placement and lighting of a part in one photo.
#[derive(Debug, Clone, Copy)]
pub struct Pose {
    /// Rotation in radians.
    pub angle: f32,
    /// Shift of the part centre from the image centre, pixels.
    pub shift: (f32, f32),
    /// Scale factor.
    pub scale: f32,
    /// Brightness gain.
    pub gain: f32,
    /// Seed of the sensor noise.
    pub noise_seed: u64,
}

/// Part size in part coordinates (pixels at scale 1).
const PART_W: f32 = 200.0;
const PART_H: f32 = 120.0;
const SUBSTRATE: [f32; 3] = [150.0, 95.0, 35.0];
const COPPER: [f32; 3] = [215.0, 140.0, 80.0];
const GOLD: [f32; 3] = [235.0, 195.0, 95.0];
const INK: [f32; 3] = [235.0, 235.0, 225.0];

// The demo's generator (seeded from `--seed`).
use crate::rng::SplitMix64 as Rng;

fn hash2(x: i64, y: i64, seed: u64) -> u64 {
    let mut r = Rng::new(
        seed ^ (x as u64).wrapping_mul(0x9E37_79B9) ^ (y as u64).wrapping_mul(0x85EB_CA6B) << 1,
    );
    r.next_u64()
}

/// The material at part coordinates (u, v), or `None` outside the part.
fn material(ty: usize, u: f32, v: f32, defect: Option<&Defect>) -> Option<[f32; 3]> {
    if !(0.0..PART_W).contains(&u) || !(0.0..PART_H).contains(&v) {
        return None;
    }
    let mut c = SUBSTRATE;
    // Traces: horizontal rows (front) or rows with a diagonal jog (back).
    let pitch = 12.0;
    let row = ((v - 10.0) / pitch).floor();
    let in_rows = v >= 10.0 && row < 8.0;
    let rv = v - 10.0 - row * pitch;
    let jog = if ty == 1 {
        ((u - 100.0).max(0.0) * 0.25).min(4.0)
    } else {
        0.0
    };
    let on_trace = in_rows && (rv - jog) >= 0.0 && (rv - jog) < 4.5 && (30.0..175.0).contains(&u);
    if on_trace {
        let missing = matches!(defect, Some(Defect::MissingTrace { row: r, u0, u1 })
            if *r as f32 == row && u >= *u0 && u < *u1);
        if !missing {
            c = COPPER;
        }
    }
    // Pads at the trace ends.
    if in_rows
        && rv < 7.0
        && ((178.0..188.0).contains(&u) || (ty == 1 && (16.0..26.0).contains(&u)))
    {
        c = GOLD;
    }
    // A vertical bus on the front.
    if ty == 0 && (20.0..25.0).contains(&u) && (8.0..108.0).contains(&v) {
        c = COPPER;
    }
    // Text-like marks: a dot-matrix block of glyphs along the bottom edge.
    if (108.0..116.0).contains(&v) && (40.0..160.0).contains(&u) {
        let gx = ((u - 40.0) / 2.0) as i64;
        let gy = ((v - 108.0) / 2.0) as i64;
        if gx % 4 != 3 && hash2(gx, gy, 11 + ty as u64).is_multiple_of(3) {
            c = INK;
        }
    }
    // Mounting holes.
    for (hx, hy) in [(8.0, 8.0), (192.0, 8.0), (8.0, 112.0), (192.0, 112.0)] {
        if (u - hx).powi(2) + (v - hy).powi(2) < 9.0 {
            return None;
        }
    }
    match defect {
        Some(Defect::Scratch { from, to }) if dist_to_segment((u, v), *from, *to) < 0.9 => {
            c = [245.0, 245.0, 240.0];
        }
        Some(Defect::Spot { at, radius })
            if (u - at.0).powi(2) + (v - at.1).powi(2) < radius * radius =>
        {
            c = [45.0, 35.0, 25.0];
        }
        Some(Defect::Discolour { at, radius })
            if (u - at.0).powi(2) + (v - at.1).powi(2) < radius * radius =>
        {
            c = [c[0] * 0.6, c[1] * 0.9, (c[2] * 2.2).min(255.0)];
        }
        _ => {}
    }
    Some(c)
}

/// Distance from `p` to the segment `a`-`b` (both demo generators draw scratches with it).
fn dist_to_segment(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    ((p.0 - a.0 - t * dx).powi(2) + (p.1 - a.1 - t * dy).powi(2)).sqrt()
}

/// Renders one photo of a part of type `ty` (0 or 1), with an optional defect. Returns the image
/// and the defect's mask (255 where the defect changed the part).
pub fn render(
    width: u32,
    height: u32,
    ty: usize,
    pose: &Pose,
    defect: Option<&Defect>,
) -> (RgbImage, GrayImage) {
    let (cx, cy) = (
        width as f32 / 2.0 + pose.shift.0,
        height as f32 / 2.0 + pose.shift.1,
    );
    let (s, c) = pose.angle.sin_cos();
    // Image -> part coordinates (the inverse of the pose).
    let to_part = |x: f32, y: f32| {
        let (dx, dy) = ((x - cx) / pose.scale, (y - cy) / pose.scale);
        (
            c * dx + s * dy + PART_W / 2.0,
            -s * dx + c * dy + PART_H / 2.0,
        )
    };
    let mut img = RgbImage::new(width, height);
    let mut mask = GrayImage::new(width, height);
    const SUB: [f32; 2] = [0.25, 0.75];
    for y in 0..height {
        for x in 0..width {
            let mut acc = [0f32; 3];
            for sy in SUB {
                for sx in SUB {
                    let (u, v) = to_part(x as f32 + sx, y as f32 + sy);
                    if let Some(m) = material(ty, u, v, defect) {
                        for k in 0..3 {
                            acc[k] += m[k] * pose.gain;
                        }
                    }
                }
            }
            let n = hash2(i64::from(x), i64::from(y), pose.noise_seed);
            let noise = (n % 7) as f32 - 3.0;
            let px = acc.map(|a| {
                (a / 4.0 + if a > 0.0 { noise } else { (n % 5) as f32 }).clamp(0.0, 255.0) as u8
            });
            img.put_pixel(x, y, Rgb(px));
            if let Some(d) = defect {
                let (u, v) = to_part(x as f32 + 0.5, y as f32 + 0.5);
                if material(ty, u, v, Some(d)) != material(ty, u, v, None) {
                    mask.put_pixel(x, y, Luma([255]));
                }
            }
        }
    }
    (img, mask)
}

/// A random pose: rotation within ±2°, shift within ±5 px, scale within ±2%, gain within ±8%.
pub fn random_pose(rng: &mut Rng) -> Pose {
    Pose {
        angle: rng.uniform(-2.0, 2.0).to_radians(),
        shift: (rng.uniform(-5.0, 5.0), rng.uniform(-5.0, 5.0)),
        scale: rng.uniform(0.98, 1.02),
        gain: rng.uniform(0.92, 1.08),
        noise_seed: rng.next_u64(),
    }
}

/// A random defect of kind `k % 4`, placed on the part.
pub fn random_defect(rng: &mut Rng, k: usize) -> Defect {
    match k % 4 {
        0 => {
            let from = (rng.uniform(40.0, 100.0), rng.uniform(15.0, 60.0));
            Defect::Scratch {
                from,
                to: (
                    from.0 + rng.uniform(30.0, 60.0),
                    from.1 + rng.uniform(15.0, 40.0),
                ),
            }
        }
        1 => Defect::Spot {
            at: (rng.uniform(40.0, 160.0), rng.uniform(20.0, 95.0)),
            radius: rng.uniform(4.0, 7.0),
        },
        2 => {
            let u0 = rng.uniform(50.0, 120.0);
            Defect::MissingTrace {
                row: (rng.next_u64() % 8) as usize,
                u0,
                u1: u0 + rng.uniform(15.0, 35.0),
            }
        }
        _ => Defect::Discolour {
            at: (rng.uniform(50.0, 150.0), rng.uniform(25.0, 90.0)),
            radius: rng.uniform(10.0, 14.0),
        },
    }
}

/// One image to write.
struct Job {
    path: PathBuf,
    mask_path: Option<PathBuf>,
    ty: usize,
    pose: Pose,
    defect: Option<Defect>,
}

/// Generates the whole demo dataset under `dir`: `train/<type>/`, `validate/<type>/` and
/// `ground_truth/<type>/<stem>_mask.png`. Deterministic for a spec.
pub fn generate(dir: &Path, spec: &DemoSpec) -> Result<DemoData, IoError> {
    let data = DemoData {
        train: dir.join("train"),
        validate: dir.join("validate"),
        truth: dir.join("ground_truth"),
    };
    let mut rng = Rng::new(spec.seed);
    let mut jobs = Vec::new();
    for (ty, name) in TYPES.iter().enumerate() {
        for i in 0..spec.good_per_type {
            jobs.push(Job {
                path: data.train.join(name).join(format!("{name}_{i:03}.png")),
                mask_path: None,
                ty,
                pose: random_pose(&mut rng),
                defect: None,
            });
        }
        for i in 0..spec.good_validate_per_type {
            jobs.push(Job {
                path: data
                    .validate
                    .join(name)
                    .join(format!("{name}_good_{i:03}.png")),
                mask_path: None,
                ty,
                pose: random_pose(&mut rng),
                defect: None,
            });
        }
        for i in 0..spec.defective_per_type {
            let d = random_defect(&mut rng, i);
            let stem = format!("{name}_{}_{i:03}", d.name());
            jobs.push(Job {
                path: data.validate.join(name).join(format!("{stem}.png")),
                mask_path: Some(data.truth.join(name).join(format!("{stem}_mask.png"))),
                ty,
                pose: random_pose(&mut rng),
                defect: Some(d),
            });
        }
    }
    jobs.par_iter().try_for_each(|j| {
        let (img, mask) = render(spec.width, spec.height, j.ty, &j.pose, j.defect.as_ref());
        save_png(&img, &j.path)?;
        if let Some(m) = &j.mask_path {
            save_png(&mask, m)?;
        }
        Ok::<(), IoError>(())
    })?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pose() -> Pose {
        Pose {
            angle: 0.0,
            shift: (0.0, 0.0),
            scale: 1.0,
            gain: 1.0,
            noise_seed: 1,
        }
    }

    #[test]
    fn part_sits_on_a_dark_background() {
        let (img, mask) = render(320, 240, 0, &pose(), None);
        assert!(img.get_pixel(2, 2).0.iter().all(|&v| v < 15));
        // Substrate at the part centre-ish (between traces) is amber.
        let p = img.get_pixel(160, 120).0;
        assert!(p[0] > 120 && p[2] < 90, "{p:?}");
        assert!(mask.pixels().all(|m| m.0[0] == 0));
    }

    #[test]
    fn defects_change_exactly_their_masked_pixels() {
        let mut rng = Rng::new(3);
        for k in 0..4 {
            let d = random_defect(&mut rng, k);
            let (good, _) = render(320, 240, k % 2, &pose(), None);
            let (bad, mask) = render(320, 240, k % 2, &pose(), Some(&d));
            let masked = mask.pixels().filter(|m| m.0[0] == 255).count();
            assert!(masked > 20, "{} mask has {masked} pixels", d.name());
            let changed = good
                .pixels()
                .zip(bad.pixels())
                .filter(|(a, b)| a != b)
                .count();
            assert!(changed > 20, "{} changed {changed} pixels", d.name());
        }
    }

    #[test]
    fn generation_is_deterministic() {
        let mut a = Rng::new(9);
        let mut b = Rng::new(9);
        assert_eq!(
            random_pose(&mut a).noise_seed,
            random_pose(&mut b).noise_seed
        );
        let (x, _) = render(64, 48, 1, &random_pose(&mut a), None);
        let (y, _) = render(64, 48, 1, &random_pose(&mut b), None);
        assert_eq!(x, y);
    }
}
