//! Figures of 2-D data: the confusion matrix and images with a colour bar.

use std::path::Path;

use plotters::prelude::*;

use super::frame::{format_tick, render};
use crate::report::PlotError;

/// A 2x2 confusion matrix `[[tn, fp], [fn, tp]]` with counts and row percentages.
pub fn confusion_matrix(path: &Path, title: &str, m: [[u64; 2]; 2]) -> Result<(), PlotError> {
    render(path, (640, 560), |root| {
        root.draw(&Text::new(
            title.to_string(),
            (16, 12),
            ("sans-serif", 24).into_font(),
        ))
        .map_err(|e| e.to_string())?;
        let (x0, y0, cell) = (170i32, 110i32, 200i32);
        let max = m.iter().flatten().copied().max().unwrap_or(0).max(1) as f32;
        let names = ["good", "anomalous"];
        for (r, row) in m.iter().enumerate() {
            let total: u64 = row.iter().sum();
            for (c, &v) in row.iter().enumerate() {
                let t = v as f32 / max;
                let col = crate::report::colormap::viridis(t);
                let (x, y) = (x0 + c as i32 * cell, y0 + r as i32 * cell);
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    RGBColor(col[0], col[1], col[2]).filled(),
                ))
                .map_err(|e| e.to_string())?;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    BLACK.stroke_width(1),
                ))
                .map_err(|e| e.to_string())?;
                let pct = if total > 0 {
                    100.0 * v as f64 / total as f64
                } else {
                    0.0
                };
                let text_col = if t > 0.6 { BLACK } else { WHITE };
                root.draw(&Text::new(
                    format!("{v}"),
                    (x + cell / 2 - 20, y + cell / 2 - 24),
                    ("sans-serif", 34).into_font().color(&text_col),
                ))
                .map_err(|e| e.to_string())?;
                root.draw(&Text::new(
                    format!("{pct:.1}%"),
                    (x + cell / 2 - 28, y + cell / 2 + 16),
                    ("sans-serif", 18).into_font().color(&text_col),
                ))
                .map_err(|e| e.to_string())?;
            }
            root.draw(&Text::new(
                names[r],
                (x0 - 110, y0 + r as i32 * cell + cell / 2 - 10),
                ("sans-serif", 20).into_font(),
            ))
            .map_err(|e| e.to_string())?;
        }
        for (c, n) in names.iter().enumerate() {
            root.draw(&Text::new(
                *n,
                (x0 + c as i32 * cell + cell / 2 - 40, y0 - 30),
                ("sans-serif", 20).into_font(),
            ))
            .map_err(|e| e.to_string())?;
        }
        root.draw(&Text::new(
            "predicted",
            (x0 + cell - 40, y0 - 62),
            ("sans-serif", 20).into_font(),
        ))
        .map_err(|e| e.to_string())?;
        root.draw(&Text::new(
            "true",
            (20, y0 + cell - 10),
            ("sans-serif", 20).into_font(),
        ))
        .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// An image (already coloured, e.g. a heat map) with a title and a vertical colour bar labelled
/// from `lo` to `hi` with `bar_label`, drawn with `cmap`.
pub fn image_with_colorbar(
    path: &Path,
    title: &str,
    img: &image::RgbImage,
    cmap: fn(f32) -> [u8; 3],
    (lo, hi): (f64, f64),
    bar_label: &str,
) -> Result<(), PlotError> {
    let (iw, ih) = img.dimensions();
    // Fit the image into at most 1200x800, keeping its aspect ratio.
    let scale = (1200.0 / iw.max(1) as f64)
        .min(800.0 / ih.max(1) as f64)
        .min(4.0);
    let (dw, dh) = (
        ((iw as f64 * scale) as u32).max(1),
        ((ih as f64 * scale) as u32).max(1),
    );
    let shown = image::imageops::resize(img, dw, dh, image::imageops::FilterType::Triangle);
    let size = (dw + 200, dh + 90);
    render(path, size, |root| {
        root.draw(&Text::new(
            title.to_string(),
            (20, 16),
            ("sans-serif", 26).into_font(),
        ))
        .map_err(|e| e.to_string())?;
        let (ox, oy) = (20i32, 60i32);
        let el = BitMapElement::<(i32, i32)>::with_owned_buffer(
            (ox, oy),
            shown.dimensions(),
            shown.as_raw().clone(),
        )
        .ok_or("bitmap size mismatch")?;
        root.draw(&el).map_err(|e| e.to_string())?;
        // Colour bar.
        let bx = ox + dw as i32 + 30;
        let bh = dh as i32;
        for y in 0..bh {
            let t = 1.0 - y as f32 / (bh - 1).max(1) as f32;
            let c = cmap(t);
            root.draw(&Rectangle::new(
                [(bx, oy + y), (bx + 24, oy + y + 1)],
                RGBColor(c[0], c[1], c[2]).filled(),
            ))
            .map_err(|e| e.to_string())?;
        }
        root.draw(&Rectangle::new(
            [(bx, oy), (bx + 24, oy + bh)],
            BLACK.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
        for k in 0..=4 {
            let t = k as f64 / 4.0;
            let y = oy + ((1.0 - t) * (bh - 1) as f64) as i32;
            let v = lo + (hi - lo) * t;
            root.draw(&Text::new(
                format_tick(v),
                (bx + 30, y - 8),
                ("sans-serif", 15).into_font(),
            ))
            .map_err(|e| e.to_string())?;
        }
        root.draw(&Text::new(
            bar_label.to_string(),
            (bx - 10, oy + bh + 10),
            ("sans-serif", 16).into_font(),
        ))
        .map_err(|e| e.to_string())?;
        Ok(())
    })
}
