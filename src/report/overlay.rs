//! Anomaly overlays: the photo with its anomaly heat map (transparent where the score is low,
//! jet where it is high) and the anomalous pixels in red, beside the pooled view the model saw,
//! with a title and a colour bar.

use std::path::Path;

use image::{Rgb, RgbImage};
use ndarray::Array2;
use plotters::prelude::*;

use super::PlotError;
use super::colormap::jet;
use super::plot::{format_tick, render};

/// Blends the heat map over an image: alpha grows with the normalised score (so low scores leave
/// the photo visible), pixels at or above `threshold` are painted red.
pub fn blend(img: &RgbImage, map: &Array2<f32>, scale: f32, threshold: f32) -> RgbImage {
    let (h, w) = map.dim();
    let mut out = img.clone();
    for (x, y, p) in out.enumerate_pixels_mut() {
        let (xs, ys) = (x as usize, y as usize);
        if ys >= h || xs >= w {
            continue;
        }
        let v = map[[ys, xs]];
        if !v.is_finite() || v <= 0.0 {
            continue;
        }
        if v >= threshold {
            *p = Rgb([255, 0, 0]);
            continue;
        }
        let t = (v / scale).clamp(0.0, 1.0);
        let c = jet(t);
        let a = 0.6 * t;
        for (dst, &src) in p.0.iter_mut().zip(&c) {
            *dst = (f32::from(*dst) * (1.0 - a) + f32::from(src) * a).round() as u8;
        }
    }
    out
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
    /// Title (image name, score, verdict).
    pub title: String,
    /// The photo with the blended map.
    pub photo: &'a RgbImage,
    /// The pooled view with the blended map.
    pub pooled: &'a RgbImage,
    /// Score at the top of the colour bar.
    pub scale: f32,
    /// The pixel threshold (drawn on the colour bar).
    pub threshold: f32,
}

fn fit(img: &RgbImage, max_w: u32, max_h: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let s = (f64::from(max_w) / f64::from(w.max(1))).min(f64::from(max_h) / f64::from(h.max(1)));
    let (nw, nh) = (
        ((f64::from(w) * s) as u32).max(1),
        ((f64::from(h) * s) as u32).max(1),
    );
    let filter = if s > 1.0 {
        image::imageops::FilterType::Nearest
    } else {
        image::imageops::FilterType::Triangle
    };
    image::imageops::resize(img, nw, nh, filter)
}

/// Draws the overlay figure and saves it.
pub fn save_overlay(path: &Path, f: &OverlayFigure<'_>) -> Result<(), PlotError> {
    let left = fit(f.photo, 900, 600);
    let right = fit(f.pooled, 600, left.height().max(200));
    let (lw, lh) = left.dimensions();
    let (rw, rh) = right.dimensions();
    let size = (lw + rw + 200, lh.max(rh) + 110);
    render(path, size, |root| {
        root.draw(&Text::new(
            f.title.clone(),
            (16, 12),
            ("sans-serif", 24).into_font(),
        ))
        .map_err(|e| e.to_string())?;
        let y0 = 80i32;
        let panels = [
            (&left, 16i32, "photo: heat map, red = anomalous"),
            (&right, 16 + lw as i32 + 30, "pooled input the model saw"),
        ];
        for (img, x0, caption) in panels {
            root.draw(&Text::new(
                caption,
                (x0, y0 - 26),
                ("sans-serif", 17).into_font(),
            ))
            .map_err(|e| e.to_string())?;
            for (x, y, p) in img.enumerate_pixels() {
                root.draw_pixel(
                    (x0 + x as i32, y0 + y as i32),
                    &RGBColor(p.0[0], p.0[1], p.0[2]),
                )
                .map_err(|e| e.to_string())?;
            }
        }
        // Colour bar from 0 to scale, with the threshold marked.
        let bx = 16 + lw as i32 + 30 + rw as i32 + 40;
        let bh = lh.max(rh) as i32;
        for y in 0..bh {
            let t = 1.0 - y as f32 / (bh - 1).max(1) as f32;
            let v = t * f.scale;
            let c = if v >= f.threshold {
                [255, 0, 0]
            } else {
                jet(t)
            };
            root.draw(&Rectangle::new(
                [(bx, y0 + y), (bx + 22, y0 + y + 1)],
                RGBColor(c[0], c[1], c[2]).filled(),
            ))
            .map_err(|e| e.to_string())?;
        }
        root.draw(&Rectangle::new(
            [(bx, y0), (bx + 22, y0 + bh)],
            BLACK.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
        for k in 0..=4 {
            let t = k as f32 / 4.0;
            let y = y0 + ((1.0 - t) * (bh - 1) as f32) as i32;
            root.draw(&Text::new(
                format_tick(f64::from(t * f.scale)),
                (bx + 28, y - 8),
                ("sans-serif", 14).into_font(),
            ))
            .map_err(|e| e.to_string())?;
        }
        root.draw(&Text::new(
            "score",
            (bx - 4, y0 - 26),
            ("sans-serif", 16).into_font(),
        ))
        .map_err(|e| e.to_string())?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blend_paints_red_above_threshold_and_leaves_zero_untouched() {
        let img = RgbImage::from_pixel(3, 1, Rgb([100, 100, 100]));
        let map = Array2::from_shape_vec((1, 3), vec![0.0, 0.5, 2.0]).unwrap();
        let out = blend(&img, &map, 1.0, 1.5);
        assert_eq!(out.get_pixel(0, 0).0, [100, 100, 100]);
        assert_ne!(out.get_pixel(1, 0).0, [100, 100, 100]);
        assert_eq!(out.get_pixel(2, 0).0, [255, 0, 0]);
    }
}
