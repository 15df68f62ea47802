//! Model-free background removal for parts photographed on a plain, evenly lit background
//! (a back-lit stage, a light box, a cloth), in tens of milliseconds per 1920x1080 photo.
//!
//! The steps, each chosen for a reason that shows on such photos:
//!
//! 1. **Work small.** The photo is averaged down in blocks so its long side is about 480 pixels;
//!    the averaging also removes JPEG and sensor noise. Colours are compared in CIE L\*a\*b\*
//!    (D65), where distances follow perceived differences.
//! 2. **Learn the background from the border.** The pixels of a thin frame (3 % of the short
//!    side) are clustered with k-means (k = 4); every cluster holding at least 1 % of the frame
//!    is a background colour ("prototype"). A photo of a back-lit stage has several: the lit
//!    disc, the dark surround, the rim between them.
//! 3. **Classify.** A pixel's distance to the background is its distance to the nearest
//!    prototype *or to the segment between two prototypes*, so the blurred transitions between
//!    background colours (the rim of a lit disc) are background too. The threshold is Otsu's
//!    on these distances (at least 8). Specks are opened away, gaps closed, the largest
//!    component kept (with any other at least a tenth of its size), and holes filled.
//! 4. **Use the local background.** A part's edge is often a darker or translucent version of
//!    the background colour (a flex circuit's bare polyimide margin looks like dim pink on a pink
//!    stage), which the mixture segments of step 3 would call background. So the mask is grown
//!    (at most 6 pixels) into every pixel that differs from the *local* mean of the nearby pure
//!    background pixels of each colour by more than half the threshold: near the part only the
//!    colours actually present around it count. A colour is present only where its pure pixels
//!    form a region of at least the mixing window's area: a dark trace along the part's edge,
//!    which the global test calls background, is a sliver, and must not make itself (and the
//!    margin beyond it) background by standing in for a dark background next to the part.
//! 5. **Refine at full resolution.** In a band of ±2 work pixels around the mask edge, every
//!    full-resolution pixel is classified again against the local background (interpolated),
//!    cleaned with a small opening and closing, holes filled.
//! 6. **Soften the edge.** The outermost pixels of a part mix with the background (optics,
//!    demosaicing, JPEG), so the mask is feathered inward: eroded by 2 pixels and blurred with a
//!    Gaussian of σ 1.5 (radius 5). Alpha is about 10 % at the detected edge, 50 % 2 pixels
//!    inside it (which is also where rembg's U2-Net puts the edge on the reference photo: IoU
//!    0.984 with rembg's mask there, see tests/remove_bg.rs), above 250 from 5 pixels inside
//!    and exactly 255 from 7 pixels inside.
//!
//! Limits: parts touching the border on all sides, backgrounds with strong texture or several
//! colours that appear on the part, and see-through holes in a part (they are filled) call for
//! the ONNX method.

use image::{GrayImage, RgbImage};
use serde::Serialize;

use super::BackgroundError;
use super::morphology::{self, Bitmap};

/// Long side of the working image, in pixels.
const WORK_LONG_SIDE: f64 = 480.0;
/// Width of the border frame the background is learnt from, as a share of the short side.
const BORDER_SHARE: f64 = 0.03;
/// k of the k-means on the border.
const CLUSTERS: usize = 4;
/// A border cluster must hold this share of the frame to count as a background colour.
const MIN_CLUSTER_SHARE: f64 = 0.01;
/// Lowest accepted background/part threshold (ΔE units).
const MIN_THRESHOLD: f32 = 8.0;
/// Radius (working pixels) of the window over which the local background colour is averaged.
const LOCAL_RADIUS: usize = 8;
/// Radius (working pixels) within which two background colours must both occur for their
/// mixtures to count as background near a part.
const MIX_RADIUS: usize = 3;
/// Smallest region (working pixels, 8-connected) of one background colour's pure pixels that
/// counts as that colour being present nearby: the mixing window's area.
const MIN_PURE_AREA: usize = (2 * MIX_RADIUS + 1) * (2 * MIX_RADIUS + 1);
/// Most working pixels the mask may grow into the local-background test's candidates.
const GROW_STEPS: usize = 6;
/// Half-width (working pixels) of the band refined at full resolution.
const BAND: usize = 2;
/// Components smaller than this share of the largest are dropped.
const MIN_COMPONENT_SHARE: f64 = 0.1;
/// Inward feathering: erosion (full-resolution pixels) and Gaussian σ of the soft edge.
const EDGE_INSET: usize = 2;
const EDGE_SIGMA: f32 = 1.5;

/// What the classical method found, for the log.
#[derive(Debug, Clone, Serialize)]
pub struct ClassicalReport {
    /// Block size of the working image (1 = full resolution).
    pub scale: usize,
    /// Background colours learnt from the border, in L\*a\*b\*.
    pub prototypes: Vec<[f32; 3]>,
    /// Background/part threshold (ΔE).
    pub threshold: f32,
    /// Threshold against the local background at the edge (ΔE).
    pub edge_threshold: f32,
    /// Share of the photo's pixels with alpha above 127.
    pub foreground_share: f64,
}

/// The mask of the part in `img` (255 = part), the size of `img`, with what was found.
///
/// # Errors
///
/// [`BackgroundError::TooSmall`] below 8x8 pixels, [`BackgroundError::NoForeground`] when
/// nothing differs from the background.
pub fn segment(img: &RgbImage) -> Result<(GrayImage, ClassicalReport), BackgroundError> {
    let (width, height) = img.dimensions();
    if width < 8 || height < 8 {
        return Err(BackgroundError::TooSmall { width, height });
    }
    let (fw, fh) = (width as usize, height as usize);
    let f = ((fw.max(fh) as f64 / WORK_LONG_SIDE).round() as usize).max(1);
    let (w, h) = (fw.div_ceil(f), fh.div_ceil(f));
    let lin = linear_lut();
    let lab = downsample_lab(img, f, w, h, &lin);

    // 2. Background colours from the border frame.
    let b = ((BORDER_SHARE * w.min(h) as f64).round() as usize).max(1);
    let border: Vec<[f32; 3]> = (0..w * h)
        .filter(|&i| {
            let (x, y) = (i % w, i / w);
            x < b || y < b || x + b >= w || y + b >= h
        })
        .map(|i| lab[i])
        .collect();
    let protos = background_colours(&border);
    let k = protos.len();
    let all: Vec<bool> = vec![true; k];

    // 3. Global classification.
    let d_global: Vec<f32> = lab
        .iter()
        .map(|p| distance_to_background(p, &protos, &all))
        .collect();
    let t = otsu(&d_global).max(MIN_THRESHOLD);
    let min_area = ((w * h) as f64 * 0.0005).ceil() as usize;
    let core = Bitmap::from_fn(w, h, |i| d_global[i] > t);
    let core = morphology::close(&morphology::open(&core, 1), 2);
    let core = morphology::keep_large_components(&core, MIN_COMPONENT_SHARE, min_area.max(4));
    if core.count() == 0 {
        return Err(BackgroundError::NoForeground);
    }
    let core = morphology::fill_holes(&core);

    // 4. Local background colours: mean of the pure background pixels of each prototype nearby.
    let near_core = morphology::dilate(&core, 3);
    let mut nearest = vec![0usize; w * h];
    let mut pure = vec![false; w * h];
    for i in 0..w * h {
        let (j, d) = nearest_prototype(&lab[i], &protos);
        nearest[i] = j;
        pure[i] = d < t * 0.5 && near_core.data[i] == 0;
    }
    let local = LocalBackground::new(&lab, &pure, &nearest, &protos, w, h);
    let t_edge = t * 0.5;
    let d_local = |p: &[f32; 3], i: usize| -> f32 { local.distance(p, i, |j| local.means[j][i]) };
    let candidate = Bitmap::from_fn(w, h, |i| d_local(&lab[i], i) > t_edge);
    let mut grown = core;
    for _ in 0..GROW_STEPS {
        let step = morphology::dilate_square(&grown, 1);
        let next = Bitmap::from_fn(w, h, |i| {
            grown.data[i] != 0 || (step.data[i] != 0 && candidate.data[i] != 0)
        });
        if next == grown {
            break;
        }
        grown = next;
    }
    let grown = morphology::fill_holes(&morphology::close(&grown, 2));

    // 5. Full-resolution refinement in the band around the edge.
    let inner = morphology::erode(&grown, BAND);
    let outer = morphology::dilate(&grown, BAND);
    let Some((bx0, by0, bx1, by1)) = outer.bbox() else {
        return Err(BackgroundError::NoForeground);
    };
    let margin = EDGE_INSET + (3.0 * EDGE_SIGMA).ceil() as usize + 2;
    let x0 = (bx0 * f).saturating_sub(margin);
    let y0 = (by0 * f).saturating_sub(margin);
    let x1 = (bx1 * f + margin).min(fw);
    let y1 = (by1 * f + margin).min(fh);
    let (rw, rh) = (x1 - x0, y1 - y0);
    let raw = img.as_raw();
    let mut roi = Bitmap::new(rw, rh);
    for ry in 0..rh {
        let y = y0 + ry;
        let ly = (y / f).min(h - 1);
        // Bilinear position of this row in the working image.
        let gy = ((y as f32 + 0.5) / f as f32 - 0.5).clamp(0.0, (h - 1) as f32);
        for rx in 0..rw {
            let x = x0 + rx;
            let li = ly * w + (x / f).min(w - 1);
            let v = if inner.data[li] != 0 {
                1
            } else if outer.data[li] != 0 {
                let o = (y * fw + x) * 3;
                let p = lab_from_linear(
                    lin[raw[o] as usize],
                    lin[raw[o + 1] as usize],
                    lin[raw[o + 2] as usize],
                );
                let gx = ((x as f32 + 0.5) / f as f32 - 0.5).clamp(0.0, (w - 1) as f32);
                let d = local.distance(&p, li, |j| bilinear(&local.means[j], w, h, gx, gy));
                u8::from(d > t_edge)
            } else {
                0
            };
            roi.data[ry * rw + rx] = v;
        }
    }
    let roi = morphology::close(&morphology::open(&roi, 1), 1);
    let roi = morphology::keep_large_components(&roi, MIN_COMPONENT_SHARE, 1);
    let roi = morphology::fill_holes(&roi);

    // 6. Inward feathering.
    let inset = morphology::erode(&roi, EDGE_INSET);
    let soft: Vec<f32> = inset.data.iter().map(|&v| f32::from(v)).collect();
    let soft = crate::preprocess::blur::gaussian_blur(&soft, (rh, rw), EDGE_SIGMA);
    let mut out = vec![0u8; fw * fh];
    let mut fg = 0usize;
    for ry in 0..rh {
        let dst = &mut out[(y0 + ry) * fw + x0..(y0 + ry) * fw + x0 + rw];
        for (d, &v) in dst.iter_mut().zip(&soft[ry * rw..(ry + 1) * rw]) {
            let a = (v * 255.0).round().clamp(0.0, 255.0) as u8;
            fg += usize::from(a > 127);
            *d = a;
        }
    }
    let mask =
        GrayImage::from_raw(width, height, out).unwrap_or_else(|| GrayImage::new(width, height));
    if fg == 0 {
        return Err(BackgroundError::NoForeground);
    }
    Ok((
        mask,
        ClassicalReport {
            scale: f,
            prototypes: protos,
            threshold: t,
            edge_threshold: t_edge,
            foreground_share: fg as f64 / (fw * fh) as f64,
        },
    ))
}

/// sRGB 8-bit value -> linear light, for every value.
fn linear_lut() -> [f32; 256] {
    let mut lut = [0f32; 256];
    for (i, v) in lut.iter_mut().enumerate() {
        *v = srgb_to_linear(i as f32 / 255.0);
    }
    lut
}

fn srgb_to_linear(c: f32) -> f32 {
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// CIE L\*a\*b\* (D65) of a linear-light RGB colour.
fn lab_from_linear(r: f32, g: f32, b: f32) -> [f32; 3] {
    let x = (0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b) / 0.950_47;
    let y = 0.212_672_9 * r + 0.715_152_2 * g + 0.072_175 * b;
    let z = (0.019_333_9 * r + 0.119_192 * g + 0.950_304_1 * b) / 1.088_83;
    let f = |t: f32| {
        if t > 0.008_856 {
            t.cbrt()
        } else {
            7.787 * t + 16.0 / 116.0
        }
    };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// Block-averaged (in sRGB values, rounded to 8 bits) working image, as L\*a\*b\*.
fn downsample_lab(img: &RgbImage, f: usize, w: usize, h: usize, lin: &[f32; 256]) -> Vec<[f32; 3]> {
    let (fw, fh) = (img.width() as usize, img.height() as usize);
    let raw = img.as_raw();
    let mut sums = vec![[0u32; 3]; w * h];
    for y in 0..fh {
        let row = &raw[y * fw * 3..(y + 1) * fw * 3];
        let srow = &mut sums[(y / f) * w..(y / f + 1) * w];
        for (s, block) in srow.iter_mut().zip(row.chunks(f * 3)) {
            for px in block.chunks_exact(3) {
                s[0] += u32::from(px[0]);
                s[1] += u32::from(px[1]);
                s[2] += u32::from(px[2]);
            }
        }
    }
    (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            let n = ((fw - x * f).min(f) * (fh - y * f).min(f)) as u32;
            let s = sums[i];
            let avg = |v: u32| lin[((v + n / 2) / n).min(255) as usize];
            lab_from_linear(avg(s[0]), avg(s[1]), avg(s[2]))
        })
        .collect()
}

fn dist(a: &[f32; 3], b: &[f32; 3]) -> f32 {
    let (d0, d1, d2) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    (d0 * d0 + d1 * d1 + d2 * d2).sqrt()
}

/// Distance from `p` to the segment `a`-`b`.
fn segment_distance(p: &[f32; 3], a: &[f32; 3], b: &[f32; 3]) -> f32 {
    let v = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
    let vv = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
    if vv <= f32::EPSILON {
        return dist(p, a);
    }
    let t =
        (((p[0] - a[0]) * v[0] + (p[1] - a[1]) * v[1] + (p[2] - a[2]) * v[2]) / vv).clamp(0.0, 1.0);
    dist(p, &[a[0] + t * v[0], a[1] + t * v[1], a[2] + t * v[2]])
}

/// Distance to the background model: the nearest prototype or mixture of two prototypes among
/// those `present`.
fn distance_to_background(p: &[f32; 3], protos: &[[f32; 3]], present: &[bool]) -> f32 {
    let mut d = f32::INFINITY;
    for i in 0..protos.len() {
        if !present[i] {
            continue;
        }
        d = d.min(dist(p, &protos[i]));
        for j in i + 1..protos.len() {
            if present[j] {
                d = d.min(segment_distance(p, &protos[i], &protos[j]));
            }
        }
    }
    d
}

fn nearest_prototype(p: &[f32; 3], protos: &[[f32; 3]]) -> (usize, f32) {
    protos
        .iter()
        .enumerate()
        .map(|(j, q)| (j, dist(p, q)))
        .fold((0, f32::INFINITY), |a, b| if b.1 < a.1 { b } else { a })
}

/// k-means (farthest-point start, so it is deterministic) on the border colours; the clusters
/// with at least [`MIN_CLUSTER_SHARE`] of the samples, largest first.
fn background_colours(samples: &[[f32; 3]]) -> Vec<[f32; 3]> {
    let n = samples.len();
    if n == 0 {
        return vec![[0.0; 3]];
    }
    let mut mean = [0f64; 3];
    for s in samples {
        for c in 0..3 {
            mean[c] += f64::from(s[c]);
        }
    }
    let mut centres = vec![[
        (mean[0] / n as f64) as f32,
        (mean[1] / n as f64) as f32,
        (mean[2] / n as f64) as f32,
    ]];
    let mut mind: Vec<f32> = samples.iter().map(|s| dist(s, &centres[0])).collect();
    while centres.len() < CLUSTERS.min(n) {
        let Some((far, &d)) = mind.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)) else {
            break;
        };
        if d <= 0.0 {
            break;
        }
        let c = samples[far];
        centres.push(c);
        for (m, s) in mind.iter_mut().zip(samples) {
            *m = m.min(dist(s, &c));
        }
    }
    let k = centres.len();
    let mut assign = vec![0usize; n];
    for _ in 0..25 {
        let mut changed = false;
        for (a, s) in assign.iter_mut().zip(samples) {
            let (j, _) = nearest_prototype(s, &centres);
            changed |= *a != j;
            *a = j;
        }
        let mut sums = vec![[0f64; 4]; k];
        for (a, s) in assign.iter().zip(samples) {
            for c in 0..3 {
                sums[*a][c] += f64::from(s[c]);
            }
            sums[*a][3] += 1.0;
        }
        for (c, s) in centres.iter_mut().zip(&sums) {
            if s[3] > 0.0 {
                *c = [
                    (s[0] / s[3]) as f32,
                    (s[1] / s[3]) as f32,
                    (s[2] / s[3]) as f32,
                ];
            }
        }
        if !changed {
            break;
        }
    }
    let mut counts = vec![0usize; k];
    for &a in &assign {
        counts[a] += 1;
    }
    let mut kept: Vec<(usize, [f32; 3])> = centres
        .into_iter()
        .zip(counts)
        .filter(|(_, c)| *c as f64 >= MIN_CLUSTER_SHARE * n as f64)
        .map(|(p, c)| (c, p))
        .collect();
    kept.sort_by_key(|k| std::cmp::Reverse(k.0));
    let protos: Vec<[f32; 3]> = kept.into_iter().map(|(_, p)| p).collect();
    if protos.is_empty() {
        vec![samples[0]]
    } else {
        protos
    }
}

/// Otsu's threshold of non-negative values (256 bins over `0..=max`).
fn otsu(values: &[f32]) -> f32 {
    let max = values.iter().copied().fold(0f32, f32::max);
    // `fold` from 0 with f32::max ignores NaN, so max is a number >= 0 here.
    if max <= 0.0 {
        return 0.0;
    }
    let bins = 256usize;
    let mut hist = vec![0f64; bins];
    for &v in values {
        let b = ((v / max) * (bins as f32 - 1.0)).round() as usize;
        hist[b.min(bins - 1)] += 1.0;
    }
    let centre = |b: usize| (b as f64) * f64::from(max) / (bins as f64 - 1.0);
    let total: f64 = hist.iter().sum();
    let sum_all: f64 = hist.iter().enumerate().map(|(b, n)| centre(b) * n).sum();
    let (mut w0, mut s0) = (0f64, 0f64);
    let (mut best, mut best_t) = (-1f64, 0f64);
    for (b, &n) in hist.iter().enumerate().take(bins - 1) {
        w0 += n;
        s0 += centre(b) * n;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let m0 = s0 / w0;
        let m1 = (sum_all - s0) / w1;
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            // Threshold halfway between this bin and the next.
            best_t = (centre(b) + centre(b + 1)) * 0.5;
        }
    }
    best_t as f32
}

/// The background around each working pixel: per background colour, the mean of its pure
/// pixels within [`LOCAL_RADIUS`], whether there are any (`present`), and whether there are any
/// within [`MIX_RADIUS`] (`close`, which allows mixtures of two such colours: the blur between
/// two background colours lies only where both are close by).
struct LocalBackground<'a> {
    protos: &'a [[f32; 3]],
    means: Vec<Vec<[f32; 3]>>,
    present: Vec<Vec<bool>>,
    close: Vec<Vec<bool>>,
}

impl<'a> LocalBackground<'a> {
    fn new(
        lab: &[[f32; 3]],
        pure: &[bool],
        nearest: &[usize],
        protos: &'a [[f32; 3]],
        w: usize,
        h: usize,
    ) -> LocalBackground<'a> {
        let mut means = Vec::new();
        let mut present = Vec::new();
        let mut close = Vec::new();
        for (j, &proto) in protos.iter().enumerate() {
            // A colour's pure pixels count only in regions of at least MIN_PURE_AREA: a dark
            // trace along the part's edge, cut off by the global test, is a sliver that must not
            // pass for a dark background next to the part (it would then be background itself).
            let ind = Bitmap::from_fn(w, h, |i| pure[i] && nearest[i] == j);
            let ind: Vec<f32> = morphology::keep_large_components(&ind, 0.0, MIN_PURE_AREA)
                .data
                .iter()
                .map(|&v| f32::from(v))
                .collect();
            let count = morphology::box_sum(&ind, w, h, LOCAL_RADIUS);
            let near = morphology::box_sum(&ind, w, h, MIX_RADIUS);
            let sums: Vec<Vec<f32>> = (0..3)
                .map(|c| {
                    let ch: Vec<f32> = lab.iter().zip(&ind).map(|(p, &m)| p[c] * m).collect();
                    morphology::box_sum(&ch, w, h, LOCAL_RADIUS)
                })
                .collect();
            means.push(
                (0..w * h)
                    .map(|i| {
                        if count[i] >= 0.5 {
                            [
                                sums[0][i] / count[i],
                                sums[1][i] / count[i],
                                sums[2][i] / count[i],
                            ]
                        } else {
                            proto
                        }
                    })
                    .collect(),
            );
            present.push(count.iter().map(|&c| c >= 0.5).collect());
            close.push(near.iter().map(|&c| c >= 0.5).collect());
        }
        LocalBackground {
            protos,
            means,
            present,
            close,
        }
    }

    /// Distance of colour `p` at working pixel `i` to the background there: to the local mean
    /// of each colour present, or to a mixture of two colours both close by; to the global
    /// colours where none is present (inside a large part).
    fn distance(&self, p: &[f32; 3], i: usize, mean: impl Fn(usize) -> [f32; 3]) -> f32 {
        let k = self.protos.len();
        let mut d = f32::INFINITY;
        let mut any = false;
        for a in 0..k {
            if !self.present[a][i] {
                continue;
            }
            any = true;
            let ma = mean(a);
            d = d.min(dist(p, &ma));
            if self.close[a][i] {
                for b in a + 1..k {
                    if self.close[b][i] {
                        d = d.min(segment_distance(p, &ma, &mean(b)));
                    }
                }
            }
        }
        if any {
            d
        } else {
            self.protos
                .iter()
                .map(|q| dist(p, q))
                .fold(f32::INFINITY, f32::min)
        }
    }
}

/// Bilinear sample of a colour map at working-image coordinates (already clamped).
fn bilinear(m: &[[f32; 3]], w: usize, h: usize, x: f32, y: f32) -> [f32; 3] {
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let mut out = [0f32; 3];
    for (c, o) in out.iter_mut().enumerate() {
        let top = m[y0 * w + x0][c] * (1.0 - fx) + m[y0 * w + x1][c] * fx;
        let bot = m[y1 * w + x0][c] * (1.0 - fx) + m[y1 * w + x1][c] * fx;
        *o = top * (1.0 - fy) + bot * fy;
    }
    out
}

#[cfg(test)]
mod tests;
