//! The defects: each kind drawn in part coordinates as an opacity raster (so it moves with the
//! pose and its ground-truth mask is exact) and a colour change that the `contrast` knob scales.

use super::part::{Part, bilinear1};
use super::smoothstep;
use crate::rng::SplitMix64 as Rng;

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
    pub(super) fn opacity_at(&self, u: f32, v: f32) -> f32 {
        bilinear1(&self.opacity, self.w, self.h, self.x0, self.y0, u, v)
    }

    pub(super) fn change_at(&self, u: f32, v: f32) -> [f32; 3] {
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
                .map(|s| crate::demo::dist_to_segment((u, v), s[0], s[1]))
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
