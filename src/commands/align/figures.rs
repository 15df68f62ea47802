//! align's diagnostics: `results.csv` with the metric figures (SSIM, MSE, inlier ratio, the
//! heat map of the aligned images), and the per-image match and overlay figures.

use std::path::Path;

use image::{RgbImage, RgbaImage};
use plotters::prelude::*;

use super::job::{Job, Outcome, drop_alpha};
use crate::commands::Summary;
use crate::io::atomic;
use crate::preprocess::align::{AlignParams, Aligned};
use crate::report::colormap;
use crate::report::plot::{self, Axes, PALETTE, Series};

/// Display size of each image of a match figure: drawing at full size would cost more than
/// the alignment itself.
pub(super) const MATCH_PANEL: (u32, u32) = (560, 360);
/// Display size of each of the four panels of an overlay diagnostic.
pub(super) const OVERLAY_PANEL: (u32, u32) = (480, 320);

/// `results.csv` and the metric figures.
pub(super) fn write_metrics(
    job: &Job<'_>,
    params: &AlignParams,
    outcomes: &[Outcome],
    heat: &[u32],
    heat_n: usize,
    (w, h): (u32, u32),
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let dir = &job.metrics_dir;
    let mut sorted: Vec<&Outcome> = outcomes.iter().collect();
    sorted.sort_by_key(|o| o.index);
    let records = sorted.iter().map(|o| {
        vec![
            o.source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            format!("{:.6}", o.aligned.ssim),
            format!("{:.4}", o.aligned.mse),
            o.aligned.inliers.to_string(),
            format!("{:.6}", o.aligned.inlier_ratio),
            job.reference_index
                .get(o.reference)
                .copied()
                .unwrap_or(o.reference)
                .to_string(),
            o.accepted.to_string(),
            o.aligned.refined.to_string(),
        ]
    });
    let text = crate::io::table::to_csv(
        &[
            "image",
            "score",
            "mse",
            "inliers",
            "inlier_ratio",
            "reference",
            "accepted",
            "refined",
        ],
        records,
    )?;
    let csv = dir.join("results.csv");
    atomic::write_bytes(&csv, &text)?;
    summary.output(&csv);

    // One x position per image, labelled with its file name.
    let names: Vec<String> = sorted
        .iter()
        .map(|o| {
            o.source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let xs: Vec<f64> = (0..sorted.len()).map(|k| k as f64).collect();
    let line = |name: &str, ys: Vec<f64>| Series {
        name: name.into(),
        points: xs.iter().copied().zip(ys).collect(),
    };
    let flat_line = |name: String, y: f64| Series {
        name,
        points: if xs.is_empty() {
            vec![]
        } else {
            vec![(xs[0], y), (xs[xs.len() - 1], y)]
        },
    };
    let p = dir.join("alignment_score.png");
    plot::line_chart(
        &p,
        &Axes::new(
            &format!("Alignment score (SSIM) — {}", job.label),
            "image",
            "SSIM",
        )
        .x_names(names.clone()),
        &[
            line("SSIM", sorted.iter().map(|o| o.aligned.ssim).collect()),
            flat_line(
                format!(
                    "MIN_SCORE_THRESHOLD {}",
                    plot::format_tick(params.min_score)
                ),
                params.min_score,
            ),
        ],
    )?;
    summary.output(&p);
    let p = dir.join("mse.png");
    plot::line_chart(
        &p,
        &Axes::new(&format!("Gray MSE — {}", job.label), "image", "MSE").x_names(names.clone()),
        &[
            line("MSE", sorted.iter().map(|o| o.aligned.mse).collect()),
            flat_line(
                format!("MAX_MSE_THRESHOLD {}", plot::format_tick(params.max_mse)),
                params.max_mse,
            ),
        ],
    )?;
    summary.output(&p);
    let p = dir.join("inlier_ratio.png");
    plot::bar_chart(
        &p,
        &Axes::new(
            &format!("RANSAC inlier ratio — {}", job.label),
            "image",
            "inliers / good matches",
        ),
        &names,
        &sorted
            .iter()
            .map(|o| o.aligned.inlier_ratio)
            .collect::<Vec<_>>(),
    )?;
    summary.output(&p);

    // Heat map of the stacked V channel, min-max normalised.
    let (lo, hi) = heat
        .iter()
        .fold((u32::MAX, 0u32), |(a, b), &v| (a.min(v), b.max(v)));
    let span = hi.saturating_sub(lo).max(1) as f32;
    let img = RgbImage::from_fn(w, h, |x, y| {
        let v = heat[(y * w + x) as usize];
        image::Rgb(colormap::viridis((v.saturating_sub(lo)) as f32 / span))
    });
    let p = dir.join("heatmap.png");
    plot::image_with_colorbar(
        &p,
        &format!(
            "Sum of HSV V over {heat_n} aligned image(s) — {}",
            job.label
        ),
        &img,
        colormap::viridis,
        (0.0, 1.0),
        "normalised",
    )?;
    summary.output(&p);
    Ok(())
}

/// `img` scaled to fit in `max_w` x `max_h` (never enlarged), as packed RGB bytes: each output
/// pixel is the plain average of the input pixels whose block it covers. Figures are looked at,
/// not measured, and this is several times faster than a filtered resize, which kept the
/// diagnostics from costing more than the alignment.
pub(super) fn fit_rgb(img: &RgbaImage, max_w: u32, max_h: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let s = (f64::from(max_w) / f64::from(w.max(1)))
        .min(f64::from(max_h) / f64::from(h.max(1)))
        .min(1.0);
    let (dw, dh) = (
        ((f64::from(w) * s).round() as u32).max(1),
        ((f64::from(h) * s).round() as u32).max(1),
    );
    if (dw, dh) == (w, h) {
        return drop_alpha(img);
    }
    let edges = |d: u32, dn: u32, n: u32| {
        let a = (u64::from(d) * u64::from(n) / u64::from(dn)) as u32;
        let b = (u64::from(d + 1) * u64::from(n) / u64::from(dn)) as u32;
        (a.min(n - 1), b.clamp(a + 1, n))
    };
    let cols: Vec<(u32, u32)> = (0..dw).map(|x| edges(x, dw, w)).collect();
    RgbImage::from_fn(dw, dh, |x, y| {
        let (y0, y1) = edges(y, dh, h);
        let (x0, x1) = cols[x as usize];
        let mut acc = [0u32; 3];
        for yy in y0..y1 {
            for xx in x0..x1 {
                let p = img.get_pixel(xx, yy).0;
                for c in 0..3 {
                    acc[c] += u32::from(p[c]);
                }
            }
        }
        let n = (y1 - y0) * (x1 - x0);
        image::Rgb(acc.map(|v| ((v + n / 2) / n) as u8))
    })
}

fn blit(
    root: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    img: &RgbImage,
    at: (i32, i32),
) -> Result<(), String> {
    let el =
        BitMapElement::<(i32, i32)>::with_owned_buffer(at, img.dimensions(), img.as_raw().clone())
            .ok_or("bitmap size mismatch")?;
    root.draw(&el).map_err(|e| e.to_string())
}

/// Photo (left) and reference (right, already at display size; `ref_size` its full size)
/// with lines between the best matches, titled with both file names.
pub(super) fn draw_match_figure(
    path: &Path,
    photo: &RgbaImage,
    reference: &RgbImage,
    ref_size: (u32, u32),
    aligned: &Aligned,
    (name, ref_name): (&str, &str),
) -> anyhow::Result<()> {
    let a = fit_rgb(photo, MATCH_PANEL.0, MATCH_PANEL.1);
    let b = reference;
    let sa = f64::from(a.width()) / f64::from(photo.width().max(1));
    let sb = f64::from(b.width()) / f64::from(ref_size.0.max(1));
    let top = 70i32;
    let gap = 10i32;
    let size = (
        a.width() + b.width() + gap as u32,
        a.height().max(b.height()) + top as u32 + 10,
    );
    let title = format!(
        "{} best of {} inliers ({} good matches)",
        aligned.best_matches.len(),
        aligned.inliers,
        aligned.good_matches
    );
    plot::render(path, size, |root| {
        blit(root, &a, (0, top))?;
        let bx = a.width() as i32 + gap;
        blit(root, b, (bx, top))?;
        for (k, (p, q)) in aligned.best_matches.iter().enumerate() {
            let c = PALETTE[k % PALETTE.len()];
            let pa = ((p[0] * sa) as i32, top + (p[1] * sa) as i32);
            let pb = (bx + (q[0] * sb) as i32, top + (q[1] * sb) as i32);
            root.draw(&PathElement::new(vec![pa, pb], c.stroke_width(2)))
                .map_err(|e| e.to_string())?;
            for pt in [pa, pb] {
                root.draw(&Circle::new(pt, 6, c.stroke_width(2)))
                    .map_err(|e| e.to_string())?;
            }
        }
        root.draw(&Text::new(
            title.clone(),
            (10, 8),
            ("sans-serif", 20).into_font(),
        ))
        .map_err(|e| e.to_string())?;
        for (text, x) in [
            (format!("image: {name}"), 6),
            (format!("reference: {ref_name}"), bx + 6),
        ] {
            root.draw(&Text::new(text, (x, 40), ("sans-serif", 17).into_font()))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })?;
    Ok(())
}

/// |reference - aligned| (gray, max over channels), amplified 4x and coloured with inferno:
/// a misalignment shows as bright double edges, a good alignment as a dark image.
pub fn difference_image(reference: &RgbImage, aligned: &RgbImage) -> RgbImage {
    RgbImage::from_fn(reference.width(), reference.height(), |x, y| {
        let p = reference.get_pixel(x, y).0;
        let q = aligned
            .get_pixel(
                x.min(aligned.width().saturating_sub(1)),
                y.min(aligned.height().saturating_sub(1)),
            )
            .0;
        let d = (0..3).map(|c| p[c].abs_diff(q[c])).max().unwrap_or(0);
        image::Rgb(colormap::inferno((f32::from(d) * 4.0 / 255.0).min(1.0)))
    })
}

/// Reference | aligned over 50/50 blend | difference, in a 2x2 grid at display size, titled
/// with the file names.
pub(super) fn draw_overlay(
    path: &Path,
    reference: &RgbImage,
    aligned: &Aligned,
    (name, ref_name): (&str, &str),
) -> anyhow::Result<()> {
    let r = reference;
    let a = fit_rgb(&aligned.image, OVERLAY_PANEL.0, OVERLAY_PANEL.1);
    let blend = RgbImage::from_fn(r.width(), r.height(), |x, y| {
        let p = r.get_pixel(x, y).0;
        let q = a.get_pixel(x.min(a.width() - 1), y.min(a.height() - 1)).0;
        image::Rgb(std::array::from_fn(|c| {
            (u16::from(p[c]) + u16::from(q[c])).div_ceil(2) as u8
        }))
    });
    let diff = difference_image(r, &a);
    let head = 40i32;
    let cap = 28i32;
    let gap = 10i32;
    let (pw, ph) = (r.width() as i32, r.height() as i32);
    let size = ((2 * pw + gap) as u32, (head + 2 * (cap + ph) + gap) as u32);
    let title = format!(
        "{name} aligned to {ref_name}: SSIM {:.3}, MSE {:.1}{}",
        aligned.ssim,
        aligned.mse,
        if aligned.refined { ", refined" } else { "" }
    );
    let panels: [(&RgbImage, String); 4] = [
        (r, format!("reference {ref_name}")),
        (&a, format!("aligned {name}")),
        (&blend, "50/50 blend".to_string()),
        (&diff, "difference |reference - aligned| x4".to_string()),
    ];
    plot::render(path, size, |root| {
        root.draw(&Text::new(
            title.clone(),
            (6, 8),
            ("sans-serif", 21).into_font(),
        ))
        .map_err(|e| e.to_string())?;
        for (k, (img, caption)) in panels.iter().enumerate() {
            let x = (k as i32 % 2) * (pw + gap);
            let y = head + (k as i32 / 2) * (cap + ph + gap);
            root.draw(&Text::new(
                caption.clone(),
                (x + 4, y + 4),
                ("sans-serif", 17).into_font(),
            ))
            .map_err(|e| e.to_string())?;
            blit(root, img, (x, y + cap))?;
        }
        Ok(())
    })?;
    Ok(())
}
