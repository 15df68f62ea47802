//! Bar charts and histograms: plain, overlaid and one panel per group, and the score
//! histograms with their thresholds (binned on log10 when the scores span decades).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::frame::{
    Axes, LEGEND_W, LegendEntry, MARKER_COLOURS, Marker, PALETTE, SIZE, draw_legend, format_tick,
    no_data_note, range, render, shorten, significant,
};
use crate::report::PlotError;

/// A bar chart with one bar per label (labels written vertically when there are many).
pub fn bar_chart(
    path: &Path,
    axes: &Axes,
    labels: &[String],
    values: &[f64],
) -> Result<(), PlotError> {
    let n = labels.len().min(values.len());
    let (_, y1) = range(values.iter().copied().chain([0.0]), false);
    let rotate = n > 8;
    let longest = labels
        .iter()
        .map(|l| l.chars().count().min(24))
        .max()
        .unwrap_or(1) as u32;
    let x_area = if rotate {
        (longest * 8 + 40).min(240)
    } else {
        60
    };
    let size = (SIZE.0.max(n as u32 * 22 + 120), SIZE.1 + x_area - 60);
    render(path, size, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&axes.title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(x_area)
            .y_label_area_size(84)
            .build_cartesian_2d((0..n.max(1)).into_segmented(), 0.0..y1.max(1e-12))
            .map_err(|e| e.to_string())?;
        let shown: Vec<String> = labels
            .iter()
            .map(|l| {
                if rotate {
                    format!("  {}", shorten(l, 24))
                } else {
                    shorten(l, 24)
                }
            })
            .collect();
        let style = if rotate {
            ("sans-serif", 14)
                .into_font()
                .transform(FontTransform::Rotate90)
        } else {
            ("sans-serif", 15).into_font()
        };
        chart
            .configure_mesh()
            .x_desc(axes.x_label.as_str())
            .y_desc(axes.y_label.as_str())
            .label_style(("sans-serif", 15))
            .x_label_style(style)
            .axis_desc_style(("sans-serif", 20))
            .x_labels(n.clamp(1, 80))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => shown.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_label_formatter(&|v| axes.y_tick(*v))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(PALETTE[0].filled())
                    .margin(4)
                    .data((0..n).map(|i| {
                        (
                            i,
                            if values[i].is_finite() {
                                values[i]
                            } else {
                                0.0
                            },
                        )
                    })),
            )
            .map_err(|e| e.to_string())?;
        no_data_note(root, n == 0)
    })
}

/// Bin edges and counts of a histogram over the finite values.
pub fn bin_counts(values: &[f64], bins: usize) -> (f64, f64, Vec<u64>) {
    let bins = bins.max(1);
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0, vec![0; bins]);
    }
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let mut counts = vec![0u64; bins];
    for &v in values.iter().filter(|v| v.is_finite()) {
        let i = (((v - lo) / (hi - lo)) * bins as f64) as usize;
        counts[i.min(bins - 1)] += 1;
    }
    (lo, hi, counts)
}

/// A histogram of `values` in `bins` equal bins, with optional vertical markers (thresholds).
/// With `axes.log_y` the counts are drawn on a log axis (empty bins left out).
pub fn histogram(
    path: &Path,
    axes: &Axes,
    values: &[f64],
    bins: usize,
    markers: &[Marker],
) -> Result<(), PlotError> {
    let sets = [(
        format!("{} values", values.iter().filter(|v| v.is_finite()).count()),
        values.to_vec(),
    )];
    render(path, SIZE, |root| {
        draw_histograms(root, axes, &sets, bins, markers, 26)
    })
}

/// Several histograms over one shared bin range, drawn semi-transparent on the same axes (for
/// comparing distributions, e.g. true vs predicted values).
pub fn overlaid_histograms(
    path: &Path,
    axes: &Axes,
    sets: &[(String, Vec<f64>)],
    bins: usize,
) -> Result<(), PlotError> {
    render(path, SIZE, |root| {
        draw_histograms(root, axes, sets, bins, &[], 26)
    })
}

/// One histogram panel per (name, values), in a grid, each with its own axes; the panel's name
/// is its title.
pub fn panel_histograms(
    path: &Path,
    title: &str,
    axes: &Axes,
    panels: &[(String, Vec<f64>)],
    bins: usize,
) -> Result<(), PlotError> {
    let n = panels.len().max(1);
    let cols = if n <= 2 { n } else { 3 };
    let rows = n.div_ceil(cols);
    let size = (420 * cols as u32 + 40, 330 * rows as u32 + 60);
    render(path, size, |root| {
        let (top, body) = root.split_vertically(50);
        top.draw(&Text::new(
            title.to_string(),
            (16, 12),
            ("sans-serif", 26).into_font(),
        ))
        .map_err(|e| e.to_string())?;
        let areas = body.split_evenly((rows, cols));
        for ((name, values), area) in panels.iter().zip(areas.iter()) {
            let a = Axes {
                title: name.clone(),
                ..axes.clone()
            };
            let sets = [(format!("{} values", values.len()), values.clone())];
            draw_histograms(area, &a, &sets, bins, &[], 18)?;
        }
        no_data_note(root, panels.is_empty())
    })
}

/// Draws histograms of `sets` over a shared bin range into `area`, the markers as vertical
/// lines, the legend in a column on the right.
fn draw_histograms(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    axes: &Axes,
    sets: &[(String, Vec<f64>)],
    bins: usize,
    markers: &[Marker],
    title_size: u32,
) -> Result<(), String> {
    let all: Vec<f64> = sets.iter().flat_map(|(_, v)| v.iter().copied()).collect();
    let (lo, hi, _) = bin_counts(&all, bins);
    let bins = bins.max(1);
    let width = (hi - lo) / bins as f64;
    let counts: Vec<Vec<u64>> = sets
        .iter()
        .map(|(_, v)| {
            let mut c = vec![0u64; bins];
            for &x in v.iter().filter(|x| x.is_finite()) {
                let i = (((x - lo) / (hi - lo)) * bins as f64) as usize;
                c[i.min(bins - 1)] += 1;
            }
            c
        })
        .collect();
    let (x0, x1) = range(markers.iter().map(|m| m.x).chain([lo, hi]), false);
    let max_count = counts.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
    let empty = counts.iter().flatten().all(|&c| c == 0);
    let small = title_size < 24;
    let (w, _) = area.dim_in_pixel();
    let legend_w = if small { 190 } else { LEGEND_W };
    let (plot_area, legend_area) = area.split_horizontally(w.saturating_sub(legend_w));
    let mut legend: Vec<LegendEntry> = Vec::new();
    let mut b = ChartBuilder::on(&plot_area);
    b.caption(&axes.title, ("sans-serif", title_size))
        .margin(if small { 8 } else { 16 })
        .x_label_area_size(if small { 36 } else { 48 })
        .y_label_area_size(if small { 64 } else { 84 });
    let alpha = if sets.len() > 1 { 0.5 } else { 0.8 };
    // Counts are whole numbers: with few of them, one tick per count.
    let y_ticks = if axes.log_y {
        10
    } else {
        (max_count as usize + 1).clamp(2, 10)
    };
    macro_rules! body {
        ($chart:expr, $floor:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(axes.x_label.as_str())
                .y_desc(axes.y_label.as_str())
                .label_style(("sans-serif", if small { 12 } else { 16 }))
                .axis_desc_style(("sans-serif", if small { 14 } else { 20 }))
                .x_labels(if small { 5 } else { 10 })
                .y_labels(y_ticks)
                .x_label_formatter(&|v| {
                    if axes.log10_x_values {
                        significant(10f64.powf(*v))
                    } else {
                        format_tick(*v)
                    }
                })
                .y_label_formatter(&|v| axes.y_tick(*v))
                .draw()
                .map_err(|e| e.to_string())?;
            for (k, ((name, _), c)) in sets.iter().zip(&counts).enumerate() {
                let colour = PALETTE[k % PALETTE.len()];
                chart
                    .draw_series(
                        c.iter()
                            .enumerate()
                            .filter(|(_, n)| **n > 0)
                            .map(|(i, &n)| {
                                let xa = lo + i as f64 * width;
                                Rectangle::new(
                                    [(xa, $floor), (xa + width, n as f64)],
                                    colour.mix(alpha).filled(),
                                )
                            }),
                    )
                    .map_err(|e| e.to_string())?;
                legend.push((name.clone(), colour, false));
            }
            for (i, m) in markers.iter().enumerate() {
                let c = MARKER_COLOURS[i % MARKER_COLOURS.len()];
                chart
                    .draw_series(LineSeries::new(
                        vec![(m.x, $floor), (m.x, max_count * 1.05)],
                        c.stroke_width(3),
                    ))
                    .map_err(|e| e.to_string())?;
                legend.push((m.label.clone(), c, true));
            }
        }};
    }
    if axes.log_y {
        body!(
            b.build_cartesian_2d(x0..x1, (0.5..max_count * 2.0).log_scale())
                .map_err(|e| e.to_string())?,
            0.5
        );
    } else {
        body!(
            b.build_cartesian_2d(x0..x1, 0.0..max_count * 1.08)
                .map_err(|e| e.to_string())?,
            0.0
        );
    }
    draw_legend(
        &legend_area,
        &legend,
        if small { 40 } else { 60 },
        if small { 13 } else { 16 },
    )?;
    no_data_note(area, empty)
}

/// The data of the figure that shows how the verdicts were reached: the score that decides,
/// per class, with the thresholds.
#[derive(Debug, Clone, Default)]
pub struct ScoreHistograms {
    /// Figure title.
    pub title: String,
    /// Name of the pixel score (e.g. "pixel score (standardized)").
    pub pixel_label: String,
    /// Pixel scores per class, e.g. ("normal pixels", ..), ("defect pixels", ..).
    pub pixel: Vec<(String, Vec<f64>)>,
    /// The pixel threshold.
    pub pixel_threshold: Option<f64>,
    /// Name of the image score (e.g. "image score (max of the smoothed map)").
    pub image_label: String,
    /// Image scores per class, e.g. ("good images", ..), ("defective images", ..).
    pub image: Vec<(String, Vec<f64>)>,
    /// The image threshold.
    pub image_threshold: Option<f64>,
}

/// Two panels side by side: pixel scores (log counts) and image scores (whole-number counts),
/// each class in its own colour, each threshold as a vertical line.
pub fn score_histograms(path: &Path, f: &ScoreHistograms) -> Result<(), PlotError> {
    render(path, (1500, 620), |root| {
        let (top, body) = root.split_vertically(46);
        top.draw(&Text::new(
            f.title.clone(),
            (16, 10),
            ("sans-serif", 26).into_font(),
        ))
        .map_err(|e| e.to_string())?;
        let (left, right) = body.split_horizontally(750);
        let n_images: usize = f.image.iter().map(|(_, v)| v.len()).sum();
        let panels = [
            (
                &left,
                "Pixels",
                &f.pixel_label,
                "pixels",
                &f.pixel,
                f.pixel_threshold,
                "pixel",
                80,
            ),
            (
                &right,
                "Images",
                &f.image_label,
                "images",
                &f.image,
                f.image_threshold,
                "image",
                (n_images / 2).clamp(16, 40),
            ),
        ];
        for (area, title, x_label, y_label, sets, threshold, what, bins) in panels {
            let (sets, threshold, axes) = log_x_if_wide(sets, threshold, title, x_label, y_label);
            let axes = if what == "pixel" {
                axes.log_y()
            } else {
                axes.integer_y()
            };
            let markers: Vec<Marker> = threshold
                .map(|(x, t)| Marker {
                    x,
                    label: format!("{what} threshold {}", format_tick(t)),
                })
                .into_iter()
                .collect();
            draw_histograms(area, &axes, &sets, bins, &markers, 20)?;
        }
        Ok(())
    })
}

/// Scores spanning more than a factor 20 are binned on log10 (ticks still read as scores), so
/// the threshold's neighbourhood is not squeezed into one bin by a long tail. Scores <= 0
/// cannot be shown then; their count goes into the legend.
#[allow(clippy::type_complexity)]
pub(super) fn log_x_if_wide(
    sets: &[(String, Vec<f64>)],
    threshold: Option<f64>,
    title: &str,
    x_label: &str,
    y_label: &str,
) -> (Vec<(String, Vec<f64>)>, Option<(f64, f64)>, Axes) {
    let positive = || {
        sets.iter()
            .flat_map(|(_, v)| v.iter().copied())
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    let lo = positive().fold(f64::INFINITY, f64::min);
    let hi = positive().fold(f64::NEG_INFINITY, f64::max);
    let wide = lo.is_finite() && hi / lo > 20.0 && threshold.is_none_or(|t| t > 0.0);
    if !wide {
        return (
            sets.to_vec(),
            threshold.map(|t| (t, t)),
            Axes::new(title, x_label, y_label),
        );
    }
    let logged = sets
        .iter()
        .map(|(name, v)| {
            let shown: Vec<f64> = v
                .iter()
                .filter(|x| x.is_finite() && **x > 0.0)
                .map(|x| x.log10())
                .collect();
            let left_out = v.len() - shown.len();
            let name = if left_out > 0 {
                format!("{name} ({left_out} ≤ 0 not shown)")
            } else {
                name.clone()
            };
            (name, shown)
        })
        .collect();
    let mut axes = Axes::new(title, &format!("{x_label} (log scale)"), y_label);
    axes.log10_x_values = true;
    (logged, threshold.map(|t| (t.log10(), t)), axes)
}
