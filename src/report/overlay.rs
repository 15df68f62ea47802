//! Anomaly overlays: the photo with its anomaly heat map beside the pooled view the model saw,
//! drawn at display size. The heat map uses inferno (perceptually uniform) and stays visible
//! below the threshold, so a near miss shows; pixels at or above the pixel threshold are outlined
//! in cyan, and the true defect (ground truth) in green. A colour bar marks the threshold, and a
//! banner says when the verdict disagrees with the ground truth.
//!
//! Every function takes plain data (an image, a score map, a threshold, a mask): nothing here
//! knows how scores are computed.

use std::path::Path;

use image::{Rgb, RgbImage};
use ndarray::Array2;
use plotters::prelude::*;

use super::PlotError;
use super::colormap::inferno;
use super::plot::{format_tick, render};

/// Outline colour of the pixels at or above the pixel threshold.
pub const DETECTED: [u8; 3] = [0, 255, 255];
/// Outline colour of the true defect (ground truth).
pub const TRUTH: [u8; 3] = [60, 255, 60];
/// Scores below this share of the threshold are left transparent (background and clean part).
const TRANSPARENT_BELOW: f32 = 0.05;
/// The part of inferno the heat map uses: its black end would only darken the photo.
const CMAP_FLOOR: f32 = 0.15;

/// The file name of an image's overlay: `<index:03>_<stem>_overlay.png`, like its anomaly maps
/// (`<index:03>_<stem>_anomaly.png`), so files sort in row order and name their photo.
pub fn overlay_file_name(index: usize, photo: &str) -> String {
    let stem = Path::new(photo)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{index:03}_{stem}_overlay.png")
}

/// The heat colour of a score: inferno over [0, scale] (from its dark purple, not its black).
pub fn heat_colour(v: f32, scale: f32) -> [u8; 3] {
    let t = (v / scale.max(f32::MIN_POSITIVE)).clamp(0.0, 1.0);
    inferno(CMAP_FLOOR + (1.0 - CMAP_FLOOR) * t)
}

/// The opacity of the heat over the photo: 0 for scores under 5 % of the threshold, then
/// rising from 0.25 to 0.65 up to the threshold (so a score just below it is plainly visible),
/// 0.8 at and above it.
pub fn heat_alpha(v: f32, threshold: f32) -> f32 {
    if !v.is_finite() || v <= 0.0 {
        return 0.0;
    }
    let r = v / threshold.max(f32::MIN_POSITIVE);
    if r < TRANSPARENT_BELOW {
        0.0
    } else if r >= 1.0 {
        0.8
    } else {
        0.25 + 0.4 * r
    }
}

/// The source rows (or columns) of display row `d` of `dn` over a source of `sn`: the block it
/// covers when shrinking, the nearest one when enlarging.
fn block(d: u32, dn: u32, sn: usize) -> (usize, usize) {
    let a = (u64::from(d) * sn as u64 / u64::from(dn.max(1))) as usize;
    let b = (u64::from(d + 1) * sn as u64 / u64::from(dn.max(1))) as usize;
    (a.min(sn.saturating_sub(1)), b.clamp(a + 1, sn.max(1)))
}

/// The photo at display size `(dw, dh)` with the heat map blended over it, the pixels at or
/// above `threshold` outlined in cyan and the true defect (`truth`, on the map's grid) outlined
/// in green. Each display pixel shows the largest score of the map pixels it covers, so a
/// one-pixel defect is not averaged away when the photo is shrunk.
pub fn compose(
    photo: &RgbImage,
    map: &Array2<f32>,
    truth: Option<&[bool]>,
    scale: f32,
    threshold: f32,
    (dw, dh): (u32, u32),
) -> RgbImage {
    let (mh, mw) = map.dim();
    let filter = if dw >= photo.width() {
        image::imageops::FilterType::Nearest
    } else {
        image::imageops::FilterType::Triangle
    };
    let mut out = image::imageops::resize(photo, dw, dh, filter);
    let n = (dw * dh) as usize;
    let mut hot = vec![false; n];
    let mut true_defect = vec![false; n];
    let truth = truth.filter(|t| t.len() == mh * mw);
    if mh == 0 || mw == 0 {
        return out;
    }
    for y in 0..dh {
        let (y0, y1) = block(y, dh, mh);
        for x in 0..dw {
            let (x0, x1) = block(x, dw, mw);
            let mut v = f32::NEG_INFINITY;
            let mut t = false;
            for yy in y0..y1 {
                for xx in x0..x1 {
                    let s = map[[yy, xx]];
                    if s.is_finite() && s > v {
                        v = s;
                    }
                    if let Some(m) = truth {
                        t |= m[yy * mw + xx];
                    }
                }
            }
            let k = (y * dw + x) as usize;
            true_defect[k] = t;
            hot[k] = v >= threshold;
            let a = heat_alpha(v, threshold);
            if a > 0.0 {
                let c = heat_colour(v, scale);
                let p = out.get_pixel_mut(x, y);
                for (dst, &src) in p.0.iter_mut().zip(&c) {
                    *dst = (f32::from(*dst) * (1.0 - a) + f32::from(src) * a).round() as u8;
                }
            }
        }
    }
    outline(&mut out, &hot, DETECTED);
    outline(&mut out, &true_defect, TRUTH);
    out
}

/// Paints the 2-pixel-wide border of `mask` (pixels of the mask with a 4-neighbour outside it,
/// and their inner neighbours) in `colour`.
fn outline(img: &mut RgbImage, mask: &[bool], colour: [u8; 3]) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let inside = |x: isize, y: isize| {
        x >= 0
            && y >= 0
            && (x as usize) < w
            && (y as usize) < h
            && mask[y as usize * w + x as usize]
    };
    let edge_at = |x: isize, y: isize| {
        inside(x, y)
            && (!inside(x - 1, y) || !inside(x + 1, y) || !inside(x, y - 1) || !inside(x, y + 1))
    };
    let mut paint = Vec::new();
    for y in 0..h as isize {
        for x in 0..w as isize {
            if !inside(x, y) {
                continue;
            }
            // The edge itself and one pixel further in, so the line survives viewing scaled down.
            let near_edge = edge_at(x, y)
                || edge_at(x - 1, y)
                || edge_at(x + 1, y)
                || edge_at(x, y - 1)
                || edge_at(x, y + 1);
            if near_edge {
                paint.push((x as u32, y as u32));
            }
        }
    }
    for (x, y) in paint {
        img.put_pixel(x, y, Rgb(colour));
    }
}

/// A gray image of a pooled (h, w) map of values in [0, 1].
pub fn gray_from_map(values: &[f32], (h, w): (usize, usize)) -> RgbImage {
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let v = values
            .get(y as usize * w + x as usize)
            .copied()
            .unwrap_or(0.0);
        let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        Rgb([g, g, g])
    })
}

/// Everything one overlay figure shows.
pub struct OverlayFigure<'a> {
    /// Title (image name, type, score, verdict).
    pub title: String,
    /// The photo.
    pub photo: &'a RgbImage,
    /// The score map on the photo's pixel grid (h, w).
    pub map: &'a Array2<f32>,
    /// The true defect on the photo's pixel grid (row-major), when ground truth is given.
    pub truth: Option<&'a [bool]>,
    /// The pooled view the model saw (gray).
    pub pooled: &'a RgbImage,
    /// The score map on the pooled grid.
    pub pooled_map: &'a Array2<f32>,
    /// Score at the top of the colour bar.
    pub scale: f32,
    /// The pixel threshold (drawn on the colour bar, outlined in the images).
    pub threshold: f32,
    /// Whether the image was judged anomalous.
    pub anomalous: bool,
    /// The ground-truth label, when known: true = defective.
    pub truth_label: Option<bool>,
}

/// Display size of an image fitted into `max_w` x `max_h`, keeping its aspect ratio.
fn fit_size((w, h): (u32, u32), max_w: u32, max_h: u32) -> (u32, u32) {
    let s = (f64::from(max_w) / f64::from(w.max(1))).min(f64::from(max_h) / f64::from(h.max(1)));
    (
        ((f64::from(w) * s) as u32).max(1),
        ((f64::from(h) * s) as u32).max(1),
    )
}

/// The verdict banner: text and colour; a wrong verdict (against ground truth) in red.
pub fn verdict_banner(anomalous: bool, truth: Option<bool>) -> (String, [u8; 3]) {
    match (anomalous, truth) {
        (true, Some(false)) => ("WRONG: good part flagged anomalous".into(), [200, 0, 0]),
        (false, Some(true)) => ("WRONG: defect missed (judged good)".into(), [200, 0, 0]),
        (true, Some(true)) => ("correct: defect found".into(), [0, 120, 0]),
        (false, Some(false)) => ("correct: good".into(), [0, 120, 0]),
        (true, None) => ("ANOMALOUS".into(), [200, 90, 0]),
        (false, None) => ("good".into(), [0, 120, 0]),
    }
}

/// Draws the overlay figure and saves it.
pub fn save_overlay(path: &Path, f: &OverlayFigure<'_>) -> Result<(), PlotError> {
    let (lw, lh) = fit_size(f.photo.dimensions(), 1000, 640);
    let left = compose(f.photo, f.map, f.truth, f.scale, f.threshold, (lw, lh));
    let (rw, rh) = fit_size(f.pooled.dimensions(), 560, lh.max(240));
    let right = compose(f.pooled, f.pooled_map, None, f.scale, f.threshold, (rw, rh));
    let y0 = 96i32;
    let panel_h = lh.max(rh);
    let size = (lw + rw + 250, panel_h + y0 as u32 + 64);
    let (banner, banner_colour) = verdict_banner(f.anomalous, f.truth_label);
    render(path, size, |root| {
        let text = |s: String, at: (i32, i32), px: u32, c: RGBColor| {
            root.draw(&Text::new(s, at, ("sans-serif", px).into_font().color(&c)))
                .map_err(|e| e.to_string())
        };
        text(f.title.clone(), (16, 10), 24, BLACK)?;
        let bc = RGBColor(banner_colour[0], banner_colour[1], banner_colour[2]);
        text(banner, (16, 40), 22, bc)?;
        let panels = [
            (&left, 16i32, "photo"),
            (&right, 16 + lw as i32 + 30, "pooled input the model saw"),
        ];
        for (img, x0, caption) in panels {
            text(caption.to_string(), (x0, y0 - 26), 17, BLACK)?;
            let el = BitMapElement::<(i32, i32)>::with_owned_buffer(
                (x0, y0),
                img.dimensions(),
                img.as_raw().clone(),
            )
            .ok_or("bitmap size mismatch")?;
            root.draw(&el).map_err(|e| e.to_string())?;
        }
        // Key under the panels.
        let ky = y0 + panel_h as i32 + 14;
        let mut kx = 16;
        let swatch = |x: i32, c: [u8; 3]| {
            root.draw(&Rectangle::new(
                [(x, ky + 2), (x + 26, ky + 16)],
                RGBColor(c[0], c[1], c[2]).filled(),
            ))
            .map_err(|e| e.to_string())
        };
        swatch(kx, DETECTED)?;
        text(
            format!("score ≥ threshold {}", format_tick(f64::from(f.threshold))),
            (kx + 32, ky),
            16,
            BLACK,
        )?;
        kx += 290;
        if f.truth.is_some() {
            swatch(kx, TRUTH)?;
            text(
                "true defect (ground truth)".into(),
                (kx + 32, ky),
                16,
                BLACK,
            )?;
            kx += 290;
        }
        text(
            format!(
                "heat: score, transparent below {}",
                format_tick(f64::from(f.threshold * TRANSPARENT_BELOW))
            ),
            (kx, ky),
            16,
            BLACK,
        )?;
        // Colour bar from 0 to scale, with the threshold marked.
        let bx = 16 + lw as i32 + 30 + rw as i32 + 50;
        let bh = panel_h as i32;
        for y in 0..bh {
            let t = 1.0 - y as f32 / (bh - 1).max(1) as f32;
            let c = heat_colour(t * f.scale, f.scale);
            root.draw(&Rectangle::new(
                [(bx, y0 + y), (bx + 24, y0 + y + 1)],
                RGBColor(c[0], c[1], c[2]).filled(),
            ))
            .map_err(|e| e.to_string())?;
        }
        root.draw(&Rectangle::new(
            [(bx, y0), (bx + 24, y0 + bh)],
            BLACK.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
        let y_of =
            |v: f32| y0 + ((1.0 - v / f.scale.max(f32::MIN_POSITIVE)) * (bh - 1) as f32) as i32;
        for k in 0..=4 {
            let v = k as f32 / 4.0 * f.scale;
            text(format_tick(f64::from(v)), (bx + 30, y_of(v) - 8), 14, BLACK)?;
        }
        if f.threshold > 0.0 && f.threshold <= f.scale {
            let ty = y_of(f.threshold);
            let c = RGBColor(DETECTED[0], DETECTED[1], DETECTED[2]);
            root.draw(&Rectangle::new(
                [(bx - 6, ty - 2), (bx + 30, ty + 2)],
                c.filled(),
            ))
            .map_err(|e| e.to_string())?;
            root.draw(&Rectangle::new(
                [(bx - 6, ty - 2), (bx + 30, ty + 2)],
                BLACK.stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
            text("threshold".into(), (bx + 30, ty + 8), 14, BLACK)?;
        }
        text("score".into(), (bx - 4, y0 - 26), 16, BLACK)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_is_visible_below_the_threshold_and_outlined_above() {
        // A 40x20 gray photo; scores rise left to right from 0 to 2x the threshold (1.0).
        let photo = RgbImage::from_pixel(40, 20, Rgb([100, 100, 100]));
        let map = Array2::from_shape_fn((20, 40), |(_, x)| x as f32 / 20.0);
        let out = compose(&photo, &map, None, 2.0, 1.0, (40, 20));
        // Score 0: the photo untouched.
        assert_eq!(out.get_pixel(0, 10).0, [100, 100, 100]);
        // Score 0.5 (half the threshold): tinted, clearly.
        let p = out.get_pixel(10, 10).0;
        let diff: i32 = p.iter().map(|&c| (i32::from(c) - 100).abs()).sum();
        assert!(diff > 40, "heat at half the threshold is visible: {p:?}");
        // The boundary of the region at/above the threshold (x = 20) is cyan; far inside it is heat.
        assert_eq!(out.get_pixel(20, 10).0, DETECTED);
        assert_eq!(out.get_pixel(21, 10).0, DETECTED);
        assert_ne!(out.get_pixel(30, 10).0, DETECTED);
        // No truth outline without truth.
        assert!(!out.pixels().any(|p| p.0 == TRUTH));
    }

    #[test]
    fn truth_is_outlined_and_small_defects_survive_shrinking() {
        let photo = RgbImage::from_pixel(100, 100, Rgb([50, 50, 50]));
        let mut map = Array2::<f32>::zeros((100, 100));
        map[[51, 51]] = 5.0; // one hot pixel
        let mut truth = vec![false; 100 * 100];
        for y in 20..40 {
            for x in 20..40 {
                truth[y * 100 + x] = true;
            }
        }
        let out = compose(&photo, &map, Some(&truth), 2.0, 1.0, (25, 25));
        // The hot pixel is kept by the block maximum at 1/4 size.
        assert_eq!(out.get_pixel(12, 12).0, DETECTED);
        // The 20x20 true defect becomes 5x5 at display size, outlined in green.
        assert_eq!(out.get_pixel(5, 5).0, TRUTH);
        assert_eq!(out.get_pixel(5, 7).0, TRUTH);
        assert_eq!(out.get_pixel(3, 3).0, [50, 50, 50]);
    }

    #[test]
    fn names_are_padded_and_banners_flag_wrong_verdicts() {
        assert_eq!(
            overlay_file_name(7, "/x/front/part_07.jpg"),
            "007_part_07_overlay.png"
        );
        assert!(verdict_banner(true, Some(false)).0.starts_with("WRONG"));
        assert!(verdict_banner(false, Some(true)).0.starts_with("WRONG"));
        assert!(!verdict_banner(true, Some(true)).0.starts_with("WRONG"));
    }

    #[test]
    fn overlay_figure_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let keep = std::env::var_os("PIXAL_PLOT_DIR").map(std::path::PathBuf::from);
        let dir = keep.as_deref().unwrap_or(tmp.path());
        let photo = RgbImage::from_fn(320, 200, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, 120])
        });
        let map = Array2::from_shape_fn((200, 320), |(y, x)| {
            let d = ((x as f32 - 200.0).powi(2) + (y as f32 - 100.0).powi(2)).sqrt();
            (8.0 - d / 10.0).max(0.0)
        });
        let truth: Vec<bool> = (0..200 * 320)
            .map(|k| {
                let (y, x) = (k / 320, k % 320);
                (180..220).contains(&x) && (80..120).contains(&y)
            })
            .collect();
        let pooled = gray_from_map(&vec![0.5; 100 * 160], (100, 160));
        let pooled_map = Array2::from_shape_fn((100, 160), |(y, x)| map[[y * 2, x * 2]]);
        let path = dir.join("overlay.png");
        save_overlay(
            &path,
            &OverlayFigure {
                title: "part_07.jpg [front] score 8.0".into(),
                photo: &photo,
                map: &map,
                truth: Some(&truth),
                pooled: &pooled,
                pooled_map: &pooled_map,
                scale: 8.0,
                threshold: 4.0,
                anomalous: false,
                truth_label: Some(true),
            },
        )
        .unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        // The photo panel is enlarged to fit 1000x640: 1000x625 plus the bar and the pooled view.
        assert!(img.width() > 1000 && img.height() > 625);
        assert!(img.pixels().any(|p| p.0 == TRUTH));
        assert!(img.pixels().any(|p| p.0 == DETECTED));
        // The red "WRONG" banner is drawn.
        assert!(
            img.pixels()
                .any(|p| p.0[0] > 150 && p.0[1] < 40 && p.0[2] < 40)
        );
    }
}
