//! The embedded part: the real flex's colours and opacity decoded once, how deep inside the
//! outline each pixel lies (where defects may go), and bilinear sampling of its rasters.

use std::sync::OnceLock;

use super::GenerateError;

/// The part's colours (RGB), cropped around the part, at the 1920x1080 photo's scale.
const PART_RGB: &[u8] = include_bytes!("../../../assets/flex/part_rgb.jpg");

/// The part's opacity (8-bit gray), same crop.
const PART_ALPHA: &[u8] = include_bytes!("../../../assets/flex/part_alpha.png");

/// Defects stay this far (part pixels) inside the part's outline.
const INTERIOR_MARGIN: f32 = 10.0;

/// The part: colours, opacity and how deep inside the outline each pixel lies.
#[derive(Debug)]
pub struct Part {
    /// Width in part pixels.
    pub w: usize,
    /// Height in part pixels.
    pub h: usize,
    pub(super) rgb: Vec<[f32; 3]>,
    pub(super) alpha: Vec<f32>,
    /// 1 where a defect may be drawn (at least [`INTERIOR_MARGIN`] inside the outline), 0 near
    /// and outside it, a short ramp between.
    pub(super) interior: Vec<f32>,
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
    pub(super) fn rgb_at(&self, u: f32, v: f32) -> [f32; 3] {
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
    pub(super) fn alpha_at(&self, u: f32, v: f32) -> f32 {
        bilinear1(&self.alpha, self.w, self.h, 0, 0, u, v)
    }

    pub(super) fn luminance(&self, x: usize, y: usize) -> f32 {
        let p = self.rgb[y * self.w + x];
        0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
    }
}

/// Bilinear sample of a one-channel raster whose pixel (0, 0) sits at (x0, y0) of the sampling
/// coordinates (pixel centres at i + 0.5); 0 outside.
pub(super) fn bilinear1(buf: &[f32], w: usize, h: usize, x0: i32, y0: i32, u: f32, v: f32) -> f32 {
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
