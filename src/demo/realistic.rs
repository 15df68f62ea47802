//! The realistic generator: photos of a real flex circuit as a microscope camera takes them.
//!
//! The part is a real photo (`assets/flex/part_rgb.jpg`, with rembg's cut-out as its opacity
//! `assets/flex/part_alpha.png`; `assets/flex/make_assets.py` made both from the 1920x1080
//! fixture). Each photo places it with a random pose (rotation, shift, scale, mild perspective)
//! over a round backlight of its type's colour with a vignette, changes the lighting (gain, bias,
//! white balance), sometimes blurs slightly, adds sensor noise and is saved as a JPEG. Defects
//! are drawn in part coordinates, so they move with the pose, and their ground-truth masks are
//! exact: a photo pixel is in the mask where the defect's opacity (averaged over the pixel) is at
//! least 0.5. The `contrast` knob scales how much a defect changes the pixels, not its mask.
//!
//! Rendering inverse-warps every photo pixel into part coordinates and samples the part
//! bilinearly, supersampling n x n per pixel when the part is shrunk (n = ceil(1 / scale)) so
//! the fine traces do not alias.

use std::path::Path;
use std::sync::OnceLock;

use image::{GrayImage, Luma, RgbImage};
use rayon::prelude::*;

use super::DemoData;
use crate::io::IoError;
use crate::io::image::save_png;
use crate::rng::SplitMix64 as Rng;

/// The part's colours (RGB), cropped around the part, at the 1920x1080 photo's scale.
const PART_RGB: &[u8] = include_bytes!("../../assets/flex/part_rgb.jpg");
/// The part's opacity (8-bit gray), same crop.
const PART_ALPHA: &[u8] = include_bytes!("../../assets/flex/part_alpha.png");

/// Photo width at which the part appears at its asset size (the fixture's resolution).
const NATIVE_WIDTH: f32 = 1920.0;
/// Defects stay this far (part pixels) inside the part's outline.
const INTERIOR_MARGIN: f32 = 10.0;

/// Errors of the realistic generator.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The spec asks for something the generator cannot make.
    #[error("realistic demo data: {0}")]
    Spec(String),
    /// The embedded part images could not be decoded (a broken build).
    #[error("realistic demo data: embedded part image {name}: {reason}")]
    Asset {
        /// Which asset.
        name: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// A file could not be written.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// A backlight: the type of a photo is the colour of the light behind the part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backlight {
    /// Type name (sub-folder name).
    pub name: &'static str,
    /// Colour at the centre of the lit disk, 0-255 per channel.
    pub colour: [f32; 3],
}

/// The two backlights: the real photo's pink one, and a blue one.
pub const BACKLIGHTS: [Backlight; 2] = [
    Backlight {
        name: "pink_bg",
        colour: [250.0, 110.0, 88.0],
    },
    Backlight {
        name: "blue_bg",
        colour: [80.0, 135.0, 245.0],
    },
];

/// What to generate.
#[derive(Debug, Clone)]
pub struct RealisticSpec {
    /// Photo width in pixels.
    pub width: u32,
    /// Photo height in pixels.
    pub height: u32,
    /// The types (backlights), one sub-folder each.
    pub types: Vec<Backlight>,
    /// Good training photos per type.
    pub train_per_type: usize,
    /// Good validation photos per type.
    pub good_validate_per_type: usize,
    /// Defective validation photos per type (cycling through the defect kinds).
    pub defective_per_type: usize,
    /// Scale of each defect's change of the pixel values, in (0, 1]: 1 is clear and realistic,
    /// about 0.35 is subtle. The masks do not depend on it.
    pub contrast: f32,
    /// Seed of every random choice.
    pub seed: u64,
    /// JPEG quality of the photos (1-100).
    pub jpeg_quality: u8,
}

impl Default for RealisticSpec {
    fn default() -> Self {
        RealisticSpec {
            width: 480,
            height: 270,
            types: BACKLIGHTS.to_vec(),
            train_per_type: 60,
            good_validate_per_type: 20,
            defective_per_type: 20,
            contrast: 1.0,
            seed: 7,
            jpeg_quality: 92,
        }
    }
}

impl RealisticSpec {
    /// Checks the spec; the error names the bad field.
    pub fn check(&self) -> Result<(), GenerateError> {
        if self.width < 64 || self.height < 36 || self.width > 8192 || self.height > 8192 {
            return Err(GenerateError::Spec(format!(
                "size {}x{} is outside 64x36 .. 8192x8192",
                self.width, self.height
            )));
        }
        if !(self.contrast > 0.0 && self.contrast <= 1.0) {
            return Err(GenerateError::Spec(format!(
                "contrast {} is outside (0, 1]",
                self.contrast
            )));
        }
        if !(1..=100).contains(&self.jpeg_quality) {
            return Err(GenerateError::Spec(format!(
                "JPEG quality {} is outside 1..=100",
                self.jpeg_quality
            )));
        }
        if self.types.is_empty() {
            return Err(GenerateError::Spec("no types".into()));
        }
        Ok(())
    }
}

/// The part: colours, opacity and how deep inside the outline each pixel lies.
#[derive(Debug)]
pub struct Part {
    /// Width in part pixels.
    pub w: usize,
    /// Height in part pixels.
    pub h: usize,
    rgb: Vec<[f32; 3]>,
    alpha: Vec<f32>,
    /// 1 where a defect may be drawn (at least [`INTERIOR_MARGIN`] inside the outline), 0 near
    /// and outside it, a short ramp between.
    interior: Vec<f32>,
    /// Centre of the solid part (part coordinates).
    pub centre: (f32, f32),
    /// Bounding box of the solid part: x0, y0, x1, y1.
    pub bbox: (f32, f32, f32, f32),
}

static PART: OnceLock<Result<Part, GenerateError>> = OnceLock::new();

/// The embedded part, decoded once.
pub fn part() -> Result<&'static Part, &'static GenerateError> {
    PART.get_or_init(decode_part).as_ref()
}

fn decode_part() -> Result<Part, GenerateError> {
    let rgb = image::load_from_memory(PART_RGB)
        .map_err(|e| GenerateError::Asset {
            name: "part_rgb.jpg",
            reason: e.to_string(),
        })?
        .to_rgb8();
    let alpha = image::load_from_memory(PART_ALPHA)
        .map_err(|e| GenerateError::Asset {
            name: "part_alpha.png",
            reason: e.to_string(),
        })?
        .to_luma8();
    if rgb.dimensions() != alpha.dimensions() {
        return Err(GenerateError::Asset {
            name: "part_alpha.png",
            reason: format!(
                "size {:?} differs from part_rgb.jpg's {:?}",
                alpha.dimensions(),
                rgb.dimensions()
            ),
        });
    }
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let rgb: Vec<[f32; 3]> = rgb.pixels().map(|p| p.0.map(f32::from)).collect();
    let alpha: Vec<f32> = alpha.pixels().map(|p| f32::from(p.0[0]) / 255.0).collect();
    let dist = distance_to_outside(&alpha, w, h);
    let interior = dist
        .iter()
        .map(|&d| ((d - INTERIOR_MARGIN) / 4.0).clamp(0.0, 1.0))
        .collect();
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for y in 0..h {
        for x in 0..w {
            if alpha[y * w + x] >= 0.5 {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x + 1);
                y1 = y1.max(y + 1);
            }
        }
    }
    if x1 <= x0 || y1 <= y0 {
        return Err(GenerateError::Asset {
            name: "part_alpha.png",
            reason: "no solid part".into(),
        });
    }
    let bbox = (x0 as f32, y0 as f32, x1 as f32, y1 as f32);
    Ok(Part {
        w,
        h,
        rgb,
        alpha,
        interior,
        centre: ((bbox.0 + bbox.2) / 2.0, (bbox.1 + bbox.3) / 2.0),
        bbox,
    })
}

/// Chamfer distance (steps 1 and √2), in pixels, from each pixel to the nearest pixel with
/// alpha < 0.5; the crop's border counts as outside.
fn distance_to_outside(alpha: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut d: Vec<f32> = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            let border = x == 0 || y == 0 || x + 1 == w || y + 1 == h;
            if border || alpha[i] < 0.5 {
                0.0
            } else {
                f32::MAX / 4.0
            }
        })
        .collect();
    let b = std::f32::consts::SQRT_2;
    for y in 1..h.saturating_sub(1) {
        for x in 1..w - 1 {
            let i = y * w + x;
            let v = d[i]
                .min(d[i - 1] + 1.0)
                .min(d[i - w] + 1.0)
                .min(d[i - w - 1] + b)
                .min(d[i - w + 1] + b);
            d[i] = v;
        }
    }
    for y in (1..h.saturating_sub(1)).rev() {
        for x in (1..w - 1).rev() {
            let i = y * w + x;
            let v = d[i]
                .min(d[i + 1] + 1.0)
                .min(d[i + w] + 1.0)
                .min(d[i + w + 1] + b)
                .min(d[i + w - 1] + b);
            d[i] = v;
        }
    }
    d
}

impl Part {
    /// Bilinear sample of the colour at part coordinates (pixel centres at i + 0.5).
    fn rgb_at(&self, u: f32, v: f32) -> [f32; 3] {
        let (x, y) = (
            (u - 0.5).clamp(-1.0, self.w as f32),
            (v - 0.5).clamp(-1.0, self.h as f32),
        );
        // x, y ≥ -1 here: the shifted truncation is the floor.
        let (x0, y0) = (
            ((x + 1.0) as isize - 1) as f32,
            ((y + 1.0) as isize - 1) as f32,
        );
        let (fx, fy) = (x - x0, y - y0);
        let (w, h) = (self.w as isize, self.h as isize);
        let at = |xi: isize, yi: isize| {
            let xi = xi.clamp(0, w - 1) as usize;
            let yi = yi.clamp(0, h - 1) as usize;
            self.rgb[yi * self.w + xi]
        };
        let (xi, yi) = (x0 as isize, y0 as isize);
        let (p00, p10, p01, p11) = (
            at(xi, yi),
            at(xi + 1, yi),
            at(xi, yi + 1),
            at(xi + 1, yi + 1),
        );
        std::array::from_fn(|k| {
            let top = p00[k] + (p10[k] - p00[k]) * fx;
            let bot = p01[k] + (p11[k] - p01[k]) * fx;
            top + (bot - top) * fy
        })
    }

    /// Bilinear sample of the opacity (0 outside the crop).
    fn alpha_at(&self, u: f32, v: f32) -> f32 {
        bilinear1(&self.alpha, self.w, self.h, 0, 0, u, v)
    }

    fn luminance(&self, x: usize, y: usize) -> f32 {
        let p = self.rgb[y * self.w + x];
        0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
    }
}

/// Bilinear sample of a one-channel raster whose pixel (0, 0) sits at (x0, y0) of the sampling
/// coordinates (pixel centres at i + 0.5); 0 outside.
fn bilinear1(buf: &[f32], w: usize, h: usize, x0: i32, y0: i32, u: f32, v: f32) -> f32 {
    let (x, y) = (u - x0 as f32 - 0.5, v - y0 as f32 - 0.5);
    if !(x > -1.0 && y > -1.0 && x < w as f32 && y < h as f32) {
        return 0.0;
    }
    // x, y > -1 here: the shifted truncation is the floor.
    let (xi, yi) = ((x + 1.0) as isize - 1, (y + 1.0) as isize - 1);
    let (fx, fy) = (x - xi as f32, y - yi as f32);
    let at = |xx: isize, yy: isize| {
        if xx < 0 || yy < 0 || xx >= w as isize || yy >= h as isize {
            0.0
        } else {
            buf[yy as usize * w + xx as usize]
        }
    };
    let top = at(xi, yi) + (at(xi + 1, yi) - at(xi, yi)) * fx;
    let bot = at(xi, yi + 1) + (at(xi + 1, yi + 1) - at(xi, yi + 1)) * fx;
    top + (bot - top) * fy
}

/// The kinds of defect, in the order the defective photos cycle through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefectKind {
    /// A thin bright or dark line, slightly curved.
    Scratch,
    /// A dark irregular blob with dust specks around it.
    Contamination,
    /// A patch where the copper traces are gone (substrate colour instead).
    MissingCopper,
    /// A soft-edged patch with a hue and brightness shift.
    Discolouration,
    /// A thin, long, curved dark filament.
    Fibre,
}

/// Every defect kind.
pub const DEFECT_KINDS: [DefectKind; 5] = [
    DefectKind::Scratch,
    DefectKind::Contamination,
    DefectKind::MissingCopper,
    DefectKind::Discolouration,
    DefectKind::Fibre,
];

impl DefectKind {
    /// Short name used in file names.
    pub fn name(self) -> &'static str {
        match self {
            DefectKind::Scratch => "scratch",
            DefectKind::Contamination => "contamination",
            DefectKind::MissingCopper => "missing_copper",
            DefectKind::Discolouration => "discolouration",
            DefectKind::Fibre => "fibre",
        }
    }
}

/// A defect as a raster in part coordinates: its opacity and its full-contrast change of the
/// colour (already weighted by the opacity), over a box of the part.
#[derive(Debug, Clone)]
pub struct Defect {
    /// The kind.
    pub kind: DefectKind,
    x0: i32,
    y0: i32,
    w: usize,
    h: usize,
    opacity: Vec<f32>,
    change: Vec<[f32; 3]>,
}

impl Defect {
    fn opacity_at(&self, u: f32, v: f32) -> f32 {
        bilinear1(&self.opacity, self.w, self.h, self.x0, self.y0, u, v)
    }

    fn change_at(&self, u: f32, v: f32) -> [f32; 3] {
        let (x, y) = (u - self.x0 as f32 - 0.5, v - self.y0 as f32 - 0.5);
        if !(x > -1.0 && y > -1.0 && x < self.w as f32 && y < self.h as f32) {
            return [0.0; 3];
        }
        // x, y > -1 here: the shifted truncation is the floor.
        let (xi, yi) = ((x + 1.0) as isize - 1, (y + 1.0) as isize - 1);
        let (fx, fy) = (x - xi as f32, y - yi as f32);
        std::array::from_fn(|k| {
            // Channel k of the change as a one-channel raster: sample it the same way.
            let at = |xx: isize, yy: isize| {
                if xx < 0 || yy < 0 || xx >= self.w as isize || yy >= self.h as isize {
                    0.0
                } else {
                    self.change[yy as usize * self.w + xx as usize][k]
                }
            };
            let top = at(xi, yi) + (at(xi + 1, yi) - at(xi, yi)) * fx;
            let bot = at(xi, yi + 1) + (at(xi + 1, yi + 1) - at(xi, yi + 1)) * fx;
            top + (bot - top) * fy
        })
    }

    /// Number of part pixels with opacity ≥ 0.5.
    pub fn area(&self) -> usize {
        self.opacity.iter().filter(|&&o| o >= 0.5).count()
    }
}

/// A canvas in part coordinates on which a defect's opacity is painted.
struct Canvas {
    x0: i32,
    y0: i32,
    w: usize,
    h: usize,
    opacity: Vec<f32>,
}

impl Canvas {
    /// A canvas covering the points' bounding box plus `margin`, clipped to the part.
    fn around(points: &[(f32, f32)], margin: f32, part: &Part) -> Canvas {
        let (mut ax, mut ay, mut bx, mut by) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for &(x, y) in points {
            ax = ax.min(x);
            ay = ay.min(y);
            bx = bx.max(x);
            by = by.max(y);
        }
        let x0 = ((ax - margin).floor() as i32).clamp(0, part.w as i32);
        let y0 = ((ay - margin).floor() as i32).clamp(0, part.h as i32);
        let x1 = ((bx + margin).ceil() as i32).clamp(x0, part.w as i32);
        let y1 = ((by + margin).ceil() as i32).clamp(y0, part.h as i32);
        let (w, h) = ((x1 - x0) as usize, (y1 - y0) as usize);
        Canvas {
            x0,
            y0,
            w,
            h,
            opacity: vec![0.0; w * h],
        }
    }

    /// Paints `f(x, y)` (at pixel centres, part coordinates) with max-compositing.
    fn paint(&mut self, f: impl Fn(f32, f32) -> f32) {
        for y in 0..self.h {
            for x in 0..self.w {
                let (u, v) = (
                    (self.x0 + x as i32) as f32 + 0.5,
                    (self.y0 + y as i32) as f32 + 0.5,
                );
                let o = f(u, v);
                let slot = &mut self.opacity[y * self.w + x];
                *slot = slot.max(o);
            }
        }
    }

    /// Paints an antialiased polyline of half-width `hw` and peak opacity `peak`.
    fn stroke(&mut self, line: &[(f32, f32)], hw: f32, peak: f32) {
        self.paint(|u, v| {
            let d = line
                .windows(2)
                .map(|s| super::dist_to_segment((u, v), s[0], s[1]))
                .fold(f32::MAX, f32::min);
            (hw + 0.5 - d).clamp(0.0, 1.0) * peak
        });
    }

    /// Turns the painted opacity into a defect: restricted to the part's interior, with the
    /// target colour `target(base, x, y)` at full opacity.
    fn finish(
        mut self,
        kind: DefectKind,
        part: &Part,
        target: impl Fn([f32; 3], usize, usize) -> [f32; 3],
    ) -> Defect {
        let mut change = vec![[0.0; 3]; self.w * self.h];
        for y in 0..self.h {
            for x in 0..self.w {
                let (px, py) = (self.x0 as usize + x, self.y0 as usize + y);
                let i = y * self.w + x;
                let o = self.opacity[i] * part.interior[py * part.w + px];
                self.opacity[i] = o;
                if o > 0.0 {
                    let base = part.rgb[py * part.w + px];
                    let t = target(base, px, py);
                    change[i] = std::array::from_fn(|k| o * (t[k] - base[k]));
                }
            }
        }
        Defect {
            kind,
            x0: self.x0,
            y0: self.y0,
            w: self.w,
            h: self.h,
            opacity: self.opacity,
            change,
        }
    }

    fn opacity_sum(&self) -> f32 {
        self.opacity.iter().sum()
    }
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// A random point well inside the part (interior = 1), or the part's centre if none is found.
fn interior_point(rng: &mut Rng, part: &Part) -> (f32, f32) {
    for _ in 0..200 {
        let u = rng.uniform(part.bbox.0, part.bbox.2);
        let v = rng.uniform(part.bbox.1, part.bbox.3);
        let (x, y) = (u as usize, v as usize);
        if x < part.w && y < part.h && part.interior[y * part.w + x] >= 1.0 {
            return (u, v);
        }
    }
    part.centre
}

/// A quadratic Bézier from `a` to `b` bowed sideways by `bow` times the length, as a polyline.
fn bent_line(a: (f32, f32), b: (f32, f32), bow: f32, n: usize) -> Vec<(f32, f32)> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let c = ((a.0 + b.0) / 2.0 - dy * bow, (a.1 + b.1) / 2.0 + dx * bow);
    (0..=n)
        .map(|i| {
            let t = i as f32 / n as f32;
            let s = 1.0 - t;
            (
                s * s * a.0 + 2.0 * s * t * c.0 + t * t * b.0,
                s * s * a.1 + 2.0 * s * t * c.1 + t * t * b.1,
            )
        })
        .collect()
}

/// Draws a random defect of `kind` on the part. `px_per_part` is the photo's pixels per part
/// pixel, used to keep thin defects 1-3 photo pixels wide.
pub fn random_defect(rng: &mut Rng, kind: DefectKind, part: &Part, px_per_part: f32) -> Defect {
    // A defect mostly cut off by the outline is placed again (up to a few tries).
    let mut best: Option<(f32, Defect)> = None;
    for _ in 0..12 {
        let (canvas, kept) = draw_once(rng, kind, part, px_per_part);
        let d = canvas;
        let done = kept >= 0.8;
        if best.as_ref().is_none_or(|(k, _)| kept > *k) {
            best = Some((kept, d));
        }
        if done {
            break;
        }
    }
    match best {
        Some((_, d)) => d,
        None => draw_once(rng, kind, part, px_per_part).0,
    }
}

/// A defect's colour at full opacity from the part's colour there and its part pixel.
type Target = Box<dyn Fn([f32; 3], usize, usize) -> [f32; 3]>;

/// One try at a defect: the defect and the share of its painted opacity that survived the
/// restriction to the part's interior (for missing copper: the share of the region on copper).
fn draw_once(rng: &mut Rng, kind: DefectKind, part: &Part, px_per_part: f32) -> (Defect, f32) {
    let c = interior_point(rng, part);
    let thin = |rng: &mut Rng, lo: f32, hi: f32| {
        // Half-width in part pixels of a line lo..hi photo pixels wide (at least 1 part px).
        (rng.uniform(lo, hi) / px_per_part).max(1.0) / 2.0
    };
    let (canvas, target): (Canvas, Target) = match kind {
        DefectKind::Scratch => {
            let len = rng.uniform(60.0, 220.0);
            let ang = rng.uniform(0.0, std::f32::consts::PI);
            let (dx, dy) = (ang.cos() * len / 2.0, ang.sin() * len / 2.0);
            let line = bent_line(
                (c.0 - dx, c.1 - dy),
                (c.0 + dx, c.1 + dy),
                rng.uniform(-0.12, 0.12),
                24,
            );
            let hw = thin(rng, 1.0, 3.0);
            let mut cv = Canvas::around(&line, hw + 2.0, part);
            cv.stroke(&line, hw, 1.0);
            let bright = rng.next_u64().is_multiple_of(2);
            let t: Target = if bright {
                Box::new(|b, _, _| {
                    std::array::from_fn(|k| b[k] + ([235.0, 240.0, 225.0][k] - b[k]) * 0.8)
                })
            } else {
                Box::new(|b, _, _| b.map(|x| x * 0.3))
            };
            (cv, t)
        }
        DefectKind::Contamination => {
            let r = rng.uniform(7.0, 20.0);
            let harm: Vec<(f32, f32, f32)> = [(2.0, 0.25), (3.0, 0.15), (5.0, 0.08)]
                .iter()
                .map(|&(k, a)| {
                    (
                        k,
                        a * rng.uniform(0.5, 1.0),
                        rng.uniform(0.0, std::f32::consts::TAU),
                    )
                })
                .collect();
            // Specks at least a photo pixel in radius: a smaller one would change pixels
            // without covering half of any, so the mask would miss it.
            let specks: Vec<(f32, f32, f32)> = (0..3 + rng.below(6))
                .map(|_| {
                    let a = rng.uniform(0.0, std::f32::consts::TAU);
                    let d = rng.uniform(1.5, 3.5) * r;
                    (
                        c.0 + a.cos() * d,
                        c.1 + a.sin() * d,
                        rng.uniform(1.5, 4.0).max(1.0 / px_per_part),
                    )
                })
                .collect();
            let reach = 3.5 * r + 5.0;
            let mut cv = Canvas::around(
                &[(c.0 - reach, c.1 - reach), (c.0 + reach, c.1 + reach)],
                1.0,
                part,
            );
            let peak = rng.uniform(0.85, 0.95);
            cv.paint(|u, v| {
                let (dx, dy) = (u - c.0, v - c.1);
                let th = dy.atan2(dx);
                let rr = r
                    * (1.0
                        + harm
                            .iter()
                            .map(|&(k, a, p)| a * (k * th + p).sin())
                            .sum::<f32>());
                let mut o = (rr + 0.75 - (dx * dx + dy * dy).sqrt()).clamp(0.0, 1.5) / 1.5;
                for &(sx, sy, sr) in &specks {
                    let d = ((u - sx).powi(2) + (v - sy).powi(2)).sqrt();
                    o = o.max((sr + 0.5 - d).clamp(0.0, 1.0));
                }
                o * peak
            });
            let tint = [
                rng.uniform(35.0, 55.0),
                rng.uniform(30.0, 45.0),
                rng.uniform(22.0, 35.0),
            ];
            (cv, Box::new(move |_, _, _| tint))
        }
        DefectKind::MissingCopper => {
            let a = rng.uniform(18.0, 45.0);
            let b = rng.uniform(10.0, 28.0);
            let ang = rng.uniform(0.0, std::f32::consts::PI);
            let (sn, cs) = ang.sin_cos();
            let mut cv = Canvas::around(&[(c.0 - a, c.1 - a), (c.0 + a, c.1 + a)], 2.0, part);
            // The substrate colour and the copper level around the region, robustly: the
            // darker 30 % and the brighter 20 % of the part pixels in a window 3x its size.
            let (sub, sub_l, cu_l) = local_levels(part, c, 3.0 * a);
            let region = |u: f32, v: f32| {
                let (dx, dy) = (u - c.0, v - c.1);
                let (p, q) = (cs * dx + sn * dy, -sn * dx + cs * dy);
                let r = ((p / a).powi(2) + (q / b).powi(2)).sqrt();
                (1.0 - smoothstep(0.85, 1.0, r)).clamp(0.0, 1.0)
            };
            let copper = |x: usize, y: usize| {
                let l = part.luminance(x, y);
                smoothstep(0.3, 0.55, (l - sub_l) / (cu_l - sub_l).max(1.0))
            };
            let (x0, y0, w) = (cv.x0, cv.y0, cv.w);
            cv.paint(region);
            let mut covered = 0.0;
            let mut on = 0.0;
            for (i, o) in cv.opacity.iter_mut().enumerate() {
                covered += *o;
                let (x, y) = (
                    (x0 + (i % w) as i32) as usize,
                    (y0 + (i / w) as i32) as usize,
                );
                *o *= copper(x, y);
                on += *o;
            }
            let share = if covered > 0.0 { on / covered } else { 0.0 };
            let d = cv.finish(kind, part, move |_, _, _| sub);
            // Accept the region when a fair share of it is copper and it stays inside.
            let ok = if share >= 0.2 { 1.0 } else { share };
            return (d, ok);
        }
        DefectKind::Discolouration => {
            let a = rng.uniform(18.0, 55.0);
            let b = a * rng.uniform(0.5, 1.0);
            let ang = rng.uniform(0.0, std::f32::consts::PI);
            let (sn, cs) = ang.sin_cos();
            let peak = rng.uniform(0.85, 1.0);
            let mut cv = Canvas::around(&[(c.0 - a, c.1 - a), (c.0 + a, c.1 + a)], 2.0, part);
            cv.paint(|u, v| {
                let (dx, dy) = (u - c.0, v - c.1);
                let (p, q) = (cs * dx + sn * dy, -sn * dx + cs * dy);
                let r = ((p / a).powi(2) + (q / b).powi(2)).sqrt();
                (1.0 - smoothstep(0.45, 1.0, r)) * peak
            });
            let t: Target = match rng.below(3) {
                // A brown stain.
                0 => Box::new(|b, _, _| [b[0] * 0.85, b[1] * 0.6, b[2] * 0.45]),
                // Oxidation: purple-blue.
                1 => Box::new(|b, _, _| [b[0] * 0.8 + 30.0, b[1] * 0.65, b[2] * 0.8 + 60.0]),
                // A dark, dull patch.
                _ => Box::new(|b, _, _| [b[0] * 0.62, b[1] * 0.6, b[2] * 0.7 + 10.0]),
            };
            (cv, t)
        }
        DefectKind::Fibre => {
            let len = rng.uniform(150.0, 420.0);
            let mut th = rng.uniform(0.0, std::f32::consts::TAU);
            let mut turn = 0.0f32;
            let step = 4.0;
            let n = (len / step) as usize;
            let mut p = (c.0 - th.cos() * len / 2.0, c.1 - th.sin() * len / 2.0);
            let mut line = vec![p];
            for _ in 0..n {
                turn = 0.85 * turn + rng.uniform(-0.05, 0.05);
                th += turn;
                p = (p.0 + th.cos() * step, p.1 + th.sin() * step);
                line.push(p);
            }
            let hw = thin(rng, 1.0, 2.2);
            let mut cv = Canvas::around(&line, hw + 2.0, part);
            cv.stroke(&line, hw, rng.uniform(0.8, 0.92));
            let tone = rng.uniform(25.0, 45.0);
            (cv, Box::new(move |_, _, _| [tone, tone * 0.95, tone * 0.9]))
        }
    };
    let painted = canvas.opacity_sum();
    let d = canvas.finish(kind, part, target);
    let kept: f32 = d.opacity.iter().sum();
    let share = if painted > 0.0 { kept / painted } else { 0.0 };
    (d, share)
}

/// Around `c` (window half-size `r`): the substrate colour (per-channel median of the darker
/// 30 % of the part's interior pixels), its luminance, and the copper luminance (the 80th
/// percentile).
fn local_levels(part: &Part, c: (f32, f32), r: f32) -> ([f32; 3], f32, f32) {
    let x0 = (c.0 - r).max(0.0) as usize;
    let y0 = (c.1 - r).max(0.0) as usize;
    let x1 = ((c.0 + r) as usize).min(part.w);
    let y1 = ((c.1 + r) as usize).min(part.h);
    let mut px: Vec<(f32, [f32; 3])> = Vec::new();
    for y in y0..y1 {
        for x in x0..x1 {
            if part.interior[y * part.w + x] > 0.0 {
                px.push((part.luminance(x, y), part.rgb[y * part.w + x]));
            }
        }
    }
    if px.is_empty() {
        return ([90.0, 90.0, 20.0], 80.0, 160.0);
    }
    px.sort_by(|a, b| a.0.total_cmp(&b.0));
    let dark = &px[..(px.len() * 3 / 10).max(1)];
    let sub = std::array::from_fn(|k| {
        let mut ch: Vec<f32> = dark.iter().map(|p| p.1[k]).collect();
        ch.sort_by(f32::total_cmp);
        ch[ch.len() / 2]
    });
    let sub_l = dark[dark.len() / 2].0;
    let cu_l = px[(px.len() * 8 / 10).min(px.len() - 1)].0;
    (sub, sub_l, cu_l)
}

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
fn photo_to_part(part: &Part, width: u32, height: u32, pose: &Pose) -> ([f64; 9], f32) {
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

/// Encodes a photo as JPEG.
fn encode_jpeg(img: &RgbImage, quality: u8, path: &Path) -> Result<Vec<u8>, IoError> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .map_err(|e| IoError::Encode {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(out)
}

/// One photo to make: everything random about it comes from its own seed.
struct Job {
    /// Folder and stem of the photo.
    dir: std::path::PathBuf,
    stem: String,
    /// Where its mask goes (defective photos only).
    mask_dir: Option<std::path::PathBuf>,
    backlight: Backlight,
    defect: Option<DefectKind>,
    seed: u64,
}

/// Everything random about one photo, drawn from its seed.
fn draw_photo(
    part: &Part,
    spec: &RealisticSpec,
    kind: Option<DefectKind>,
    seed: u64,
) -> (Pose, Lighting, Option<Defect>) {
    let mut rng = Rng::new(seed);
    let pose = random_pose(&mut rng, spec.width);
    let light = random_lighting(&mut rng);
    let (_, scale) = photo_to_part(part, spec.width, spec.height, &pose);
    let defect = kind.map(|k| random_defect(&mut rng, k, part, scale));
    (pose, light, defect)
}

/// Generates the realistic data set under `dir`: `train/<type>/train_NNN.jpg` (good),
/// `validate/<type>/good_NNN.jpg` and `<kind>_NNN.jpg`, and `truth/<type>/<stem>_mask.png` for
/// the defective ones. Deterministic for a spec; photos are rendered in parallel.
pub fn generate(dir: &Path, spec: &RealisticSpec) -> Result<DemoData, GenerateError> {
    spec.check()?;
    let part = part().map_err(|e| GenerateError::Spec(e.to_string()))?;
    let data = DemoData {
        train: dir.join("train"),
        validate: dir.join("validate"),
        truth: dir.join("truth"),
    };
    let mut rng = Rng::new(spec.seed);
    let mut jobs = Vec::new();
    for bl in &spec.types {
        for i in 0..spec.train_per_type {
            jobs.push(Job {
                dir: data.train.join(bl.name),
                stem: format!("train_{i:03}"),
                mask_dir: None,
                backlight: *bl,
                defect: None,
                seed: rng.next_u64(),
            });
        }
        for i in 0..spec.good_validate_per_type {
            jobs.push(Job {
                dir: data.validate.join(bl.name),
                stem: format!("good_{i:03}"),
                mask_dir: None,
                backlight: *bl,
                defect: None,
                seed: rng.next_u64(),
            });
        }
        for i in 0..spec.defective_per_type {
            let kind = DEFECT_KINDS[i % DEFECT_KINDS.len()];
            jobs.push(Job {
                dir: data.validate.join(bl.name),
                stem: format!("{}_{i:03}", kind.name()),
                mask_dir: Some(data.truth.join(bl.name)),
                backlight: *bl,
                defect: Some(kind),
                seed: rng.next_u64(),
            });
        }
    }
    jobs.par_iter().try_for_each(|j| {
        let (pose, light, defect) = draw_photo(part, spec, j.defect, j.seed);
        let (img, mask) = render(
            part,
            spec.width,
            spec.height,
            &j.backlight,
            &pose,
            &light,
            defect.as_ref(),
            spec.contrast,
        );
        let path = j.dir.join(format!("{}.jpg", j.stem));
        let bytes = encode_jpeg(&img, spec.jpeg_quality, &path)?;
        crate::io::atomic::write_bytes(&path, &bytes)?;
        if let Some(md) = &j.mask_dir {
            save_png(&mask, &md.join(format!("{}_mask.png", j.stem)))?;
        }
        Ok::<(), GenerateError>(())
    })?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PINK: Backlight = BACKLIGHTS[0];

    fn the_part() -> &'static Part {
        part().expect("embedded part decodes")
    }

    /// The defect of `kind` drawn with `seed`, for a photo `width` pixels wide at the nominal pose.
    fn defect(kind: DefectKind, seed: u64, width: u32, height: u32) -> Defect {
        let (_, scale) = photo_to_part(the_part(), width, height, &Pose::IDENTITY);
        random_defect(&mut Rng::new(seed), kind, the_part(), scale)
    }

    /// Mean absolute difference (over channels) between two photos inside and outside `mask`.
    fn diff_in_out(a: &RgbImage, b: &RgbImage, mask: &GrayImage) -> (f64, f64) {
        let (mut din, mut nin, mut dout, mut nout) = (0.0, 0usize, 0.0, 0usize);
        for ((p, q), m) in a.pixels().zip(b.pixels()).zip(mask.pixels()) {
            let d: f64 = (0..3)
                .map(|k| (f64::from(p.0[k]) - f64::from(q.0[k])).abs())
                .sum::<f64>()
                / 3.0;
            if m.0[0] == 255 {
                din += d;
                nin += 1;
            } else {
                dout += d;
                nout += 1;
            }
        }
        (din / nin.max(1) as f64, dout / nout.max(1) as f64)
    }

    #[test]
    fn embedded_part_is_the_flex_at_photo_scale() {
        let p = the_part();
        // The fixture's part is about 1296 x 349 pixels; the crop keeps a margin around it.
        let (bw, bh) = (p.bbox.2 - p.bbox.0, p.bbox.3 - p.bbox.1);
        assert!((1250.0..1340.0).contains(&bw), "{bw}");
        assert!((320.0..380.0).contains(&bh), "{bh}");
        assert!(p.w as f32 > bw && p.h as f32 > bh);
        // Interior is strictly inside the solid part.
        for (i, &v) in p.interior.iter().enumerate() {
            if v > 0.0 {
                assert!(p.alpha[i] >= 0.5);
            }
        }
    }

    #[test]
    fn part_sits_on_the_backlight_at_two_thirds_of_the_width() {
        let (w, h) = (480, 270);
        let (img, mask) = render(
            the_part(),
            w,
            h,
            &PINK,
            &Pose::IDENTITY,
            &Lighting::NEUTRAL,
            None,
            1.0,
        );
        assert!(mask.pixels().all(|m| m.0[0] == 0));
        // Above the part, inside the lit disk: the pink backlight (with its vignette).
        let bg = img.get_pixel(w / 2, 25).0;
        assert!(
            bg[0] > 200 && bg[1] > 80 && bg[1] < 120 && bg[2] < 100,
            "{bg:?}"
        );
        // Outside the field of view: dark.
        assert!(img.get_pixel(2, 2).0.iter().all(|&v| v < 15));
        // The part's centre: yellow-green flex, not pink.
        let c = img.get_pixel(w / 2, h / 2).0;
        assert!(c[1] > c[2] + 40 && c[0] < 200, "{c:?}");
        // The part spans about 2/3 of the width along the middle row.
        let (inv, _) = photo_to_part(the_part(), w, h, &Pose::IDENTITY);
        let across = (0..w)
            .filter(|&x| {
                let (xf, yf) = (f64::from(x) + 0.5, f64::from(h) / 2.0);
                let d = inv[6] * xf + inv[7] * yf + inv[8];
                let u = ((inv[0] * xf + inv[1] * yf + inv[2]) / d) as f32;
                let v = ((inv[3] * xf + inv[4] * yf + inv[5]) / d) as f32;
                the_part().alpha_at(u, v) >= 0.5
            })
            .count() as f32
            / w as f32;
        assert!((0.62..0.72).contains(&across), "{across}");
    }

    #[test]
    fn poses_and_lighting_stay_in_their_ranges() {
        let mut rng = Rng::new(1);
        let mut blurred = 0;
        for _ in 0..2000 {
            let p = random_pose(&mut rng, 960);
            assert!(p.angle_deg.abs() <= 3.0);
            assert!(p.shift.0.abs() <= 20.0 && p.shift.1.abs() <= 20.0, "{p:?}");
            assert!((0.97..=1.03).contains(&p.scale));
            assert!(p.perspective.0.abs() <= 0.01 && p.perspective.1.abs() <= 0.01);
            let l = random_lighting(&mut rng);
            assert!((0.88..=1.12).contains(&l.gain));
            assert!(l.bias.abs() <= 8.0);
            assert!(l.white_balance.iter().all(|g| (0.95..=1.05).contains(g)));
            assert!(l.blur == 0.0 || (0.4..=0.9).contains(&l.blur));
            blurred += usize::from(l.blur > 0.0);
            assert_eq!(l.noise, 2.0);
        }
        // Blur "sometimes": about a third of the photos.
        assert!((500..830).contains(&blurred), "{blurred}");
        // Shifts scale with the photo: ±40 px at 1920.
        let big = (0..500)
            .map(|_| random_pose(&mut rng, 1920).shift.0.abs())
            .fold(0.0f32, f32::max);
        assert!((35.0..=40.0).contains(&big), "{big}");
    }

    #[test]
    fn sensor_noise_has_the_stated_spread() {
        let l = Lighting {
            noise: 2.0,
            noise_seed: 5,
            ..Lighting::NEUTRAL
        };
        let render_with = |light: &Lighting| {
            render(
                the_part(),
                320,
                180,
                &PINK,
                &Pose::IDENTITY,
                light,
                None,
                1.0,
            )
            .0
        };
        let (a, b) = (render_with(&Lighting::NEUTRAL), render_with(&l));
        let d: Vec<f64> = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .filter(|(x, _)| (10..245).contains(*x))
            .map(|(x, y)| f64::from(*y) - f64::from(*x))
            .collect();
        let sd = (d.iter().map(|v| v * v).sum::<f64>() / d.len() as f64).sqrt();
        assert!((1.8..2.3).contains(&sd), "{sd}");
    }

    #[test]
    fn every_defect_changes_the_pixels_of_its_mask_only_inside_the_part() {
        let (w, h) = (480, 270);
        let part = the_part();
        let light = Lighting {
            noise: 2.0,
            noise_seed: 11,
            ..Lighting::NEUTRAL
        };
        for (i, kind) in DEFECT_KINDS.iter().enumerate() {
            for seed in 0..3u64 {
                let d = defect(*kind, 100 * i as u64 + seed, w, h);
                let pose = Pose {
                    angle_deg: 2.0,
                    shift: (5.0, -4.0),
                    ..Pose::IDENTITY
                };
                let (good, empty) = render(part, w, h, &PINK, &pose, &light, None, 1.0);
                let (bad, mask) = render(part, w, h, &PINK, &pose, &light, Some(&d), 1.0);
                assert!(empty.pixels().all(|m| m.0[0] == 0));
                let n = mask.pixels().filter(|m| m.0[0] == 255).count();
                assert!(n >= 4, "{}: mask of {n} pixels", kind.name());
                let (din, dout) = diff_in_out(&good, &bad, &mask);
                assert!(din > 12.0, "{}: change inside the mask {din}", kind.name());
                assert!(
                    dout < 0.2,
                    "{}: change outside the mask {dout}",
                    kind.name()
                );
                // No pixel changes visibly farther than the defect's soft edge from its mask.
                for (x, y, p) in good.enumerate_pixels() {
                    let q = bad.get_pixel(x, y);
                    if (0..3).any(|k| p.0[k].abs_diff(q.0[k]) > 3) {
                        let near = (y.saturating_sub(5)..(y + 6).min(h)).any(|yy| {
                            (x.saturating_sub(5)..(x + 6).min(w))
                                .any(|xx| mask.get_pixel(xx, yy).0[0] == 255)
                        });
                        assert!(
                            near,
                            "{}: ({x}, {y}) changed far from the mask",
                            kind.name()
                        );
                    }
                }
                // The mask lies inside the part, away from its outline.
                let (inv, _) = photo_to_part(part, w, h, &pose);
                for (x, y, m) in mask.enumerate_pixels() {
                    if m.0[0] == 255 {
                        let (xf, yf) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
                        let dd = inv[6] * xf + inv[7] * yf + inv[8];
                        let u = ((inv[0] * xf + inv[1] * yf + inv[2]) / dd) as f32;
                        let v = ((inv[3] * xf + inv[4] * yf + inv[5]) / dd) as f32;
                        assert!(
                            part.alpha_at(u, v) > 0.99,
                            "{}: mask on the outline",
                            kind.name()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn contrast_scales_the_change_but_not_the_mask() {
        let (w, h) = (480, 270);
        for (i, kind) in DEFECT_KINDS.iter().enumerate() {
            let d = defect(*kind, 7 + i as u64, w, h);
            let r = |c: f32, def: Option<&Defect>| {
                render(
                    the_part(),
                    w,
                    h,
                    &PINK,
                    &Pose::IDENTITY,
                    &Lighting::NEUTRAL,
                    def,
                    c,
                )
            };
            let (good, _) = r(1.0, None);
            let (full, m1) = r(1.0, Some(&d));
            let (soft, m2) = r(0.35, Some(&d));
            assert_eq!(m1, m2, "{}: the mask depends on the contrast", kind.name());
            let (a, _) = diff_in_out(&good, &full, &m1);
            let (b, _) = diff_in_out(&good, &soft, &m1);
            let ratio = b / a;
            assert!(
                (0.3..0.4).contains(&ratio),
                "{}: {b} / {a} = {ratio}",
                kind.name()
            );
        }
    }

    #[test]
    fn defects_move_with_the_part() {
        let (w, h) = (480, 270);
        let d = defect(DefectKind::Contamination, 3, w, h);
        let centroid = |pose: &Pose| {
            let (_, m) = render(
                the_part(),
                w,
                h,
                &PINK,
                pose,
                &Lighting::NEUTRAL,
                Some(&d),
                1.0,
            );
            let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
            for (x, y, p) in m.enumerate_pixels() {
                if p.0[0] == 255 {
                    sx += f64::from(x);
                    sy += f64::from(y);
                    n += 1.0;
                }
            }
            (sx / n, sy / n)
        };
        let a = centroid(&Pose::IDENTITY);
        let b = centroid(&Pose {
            shift: (10.0, -6.0),
            ..Pose::IDENTITY
        });
        assert!(
            (b.0 - a.0 - 10.0).abs() < 0.6 && (b.1 - a.1 + 6.0).abs() < 0.6,
            "{a:?} {b:?}"
        );
    }

    #[test]
    fn generation_is_deterministic_and_complete() {
        let spec = RealisticSpec {
            width: 192,
            height: 108,
            train_per_type: 2,
            good_validate_per_type: 1,
            defective_per_type: 5,
            ..RealisticSpec::default()
        };
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        generate(a.path(), &spec).unwrap();
        generate(b.path(), &spec).unwrap();
        let mut files = Vec::new();
        for sub in ["train", "validate", "truth"] {
            for bl in &spec.types {
                let dir = a.path().join(sub).join(bl.name);
                let mut names: Vec<_> = std::fs::read_dir(&dir)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                files.extend(names.iter().map(|n| (sub, bl.name, n.clone())));
            }
        }
        // 2 types x (2 train + 6 validate + 5 masks).
        assert_eq!(files.len(), 26, "{files:?}");
        for (sub, ty, name) in &files {
            let rel = Path::new(sub).join(ty).join(name);
            let x = std::fs::read(a.path().join(&rel)).unwrap();
            assert_eq!(x, std::fs::read(b.path().join(&rel)).unwrap(), "{rel:?}");
            if *sub == "truth" {
                let m = image::load_from_memory(&x).unwrap().to_luma8();
                assert!(m.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
                assert!(m.pixels().any(|p| p.0[0] == 255), "{rel:?} is empty");
                let stem = name.trim_end_matches("_mask.png");
                assert!(
                    a.path()
                        .join("validate")
                        .join(ty)
                        .join(format!("{stem}.jpg"))
                        .is_file()
                );
            } else {
                let img = image::load_from_memory(&x).unwrap();
                assert_eq!((img.width(), img.height()), (192, 108));
            }
        }
        // A different seed gives different photos.
        let c = tempfile::tempdir().unwrap();
        generate(
            c.path(),
            &RealisticSpec {
                seed: 8,
                ..spec.clone()
            },
        )
        .unwrap();
        let rel = Path::new("train/pink_bg/train_000.jpg");
        assert_ne!(
            std::fs::read(a.path().join(rel)).unwrap(),
            std::fs::read(c.path().join(rel)).unwrap()
        );
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        let bad = [
            RealisticSpec {
                contrast: 0.0,
                ..RealisticSpec::default()
            },
            RealisticSpec {
                contrast: 1.5,
                ..RealisticSpec::default()
            },
            RealisticSpec {
                width: 10,
                ..RealisticSpec::default()
            },
            RealisticSpec {
                jpeg_quality: 0,
                ..RealisticSpec::default()
            },
            RealisticSpec {
                types: vec![],
                ..RealisticSpec::default()
            },
        ];
        for s in bad {
            let e = s.check().unwrap_err().to_string();
            assert!(e.starts_with("realistic demo data:"), "{e}");
        }
    }
}
