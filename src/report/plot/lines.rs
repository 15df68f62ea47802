//! Line and point figures: line charts with marker lines, the training loss curve, scatter
//! plots.

use std::path::Path;

use plotters::prelude::*;

use super::frame::{
    Axes, LEGEND_W, LegendEntry, MARKER_COLOURS, Marker, PALETTE, SIZE, Series, draw_legend,
    format_tick, no_data_note, range, render, x_area,
};
use crate::report::PlotError;

/// A line chart of one or more series, the legend beside it.
pub fn line_chart(path: &Path, axes: &Axes, series: &[Series]) -> Result<(), PlotError> {
    line_chart_marked(path, axes, series, &[])
}

/// A line chart of one or more series with vertical markers (e.g. the best epoch), the legend
/// beside it.
pub fn line_chart_marked(
    path: &Path,
    axes: &Axes,
    series: &[Series],
    markers: &[Marker],
) -> Result<(), PlotError> {
    let xs = || {
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .chain(markers.iter().map(|m| m.x))
    };
    let ys = || series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (mut x0, mut x1) = range(xs(), false);
    if axes.integer_x && x1 - x0 < 2.0 {
        // Room for a whole-number tick on each side of a single point.
        x0 = x0.floor() - 0.5;
        x1 = x1.ceil() + 0.5;
    }
    let (y0, y1) = range(ys(), axes.log_y);
    let empty = series.iter().all(|s| s.points.is_empty());
    let size = if axes.x_names.is_empty() {
        SIZE
    } else {
        (
            SIZE.0.max(axes.x_names.len() as u32 * 22 + LEGEND_W + 120),
            SIZE.1 + x_area(axes, false) - 48,
        )
    };
    render(path, size, |root| {
        let (plot_area, legend_area) = root.split_horizontally(size.0 - LEGEND_W);
        let mut legend: Vec<LegendEntry> = Vec::new();
        let mut b = ChartBuilder::on(&plot_area);
        b.caption(&axes.title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(x_area(axes, false))
            .y_label_area_size(84);
        let n_names = axes.x_names.len();
        macro_rules! body {
            ($chart:expr, $floor:expr, $ceil:expr) => {{
                let mut chart = $chart;
                let x_fmt = |v: &f64| axes.x_tick(*v);
                let y_fmt = |v: &f64| axes.y_tick(*v);
                let mut mesh = chart.configure_mesh();
                mesh.x_desc(axes.x_label.as_str())
                    .y_desc(axes.y_label.as_str())
                    .label_style(("sans-serif", 16))
                    .axis_desc_style(("sans-serif", 20))
                    .x_label_formatter(&x_fmt)
                    .y_label_formatter(&y_fmt);
                if n_names > 0 {
                    mesh.x_labels(n_names.clamp(1, 60) * 2 + 1).x_label_style(
                        ("sans-serif", 14)
                            .into_font()
                            .transform(FontTransform::Rotate90),
                    );
                } else if axes.integer_x {
                    mesh.x_labels(((x1 - x0).ceil() as usize + 1).clamp(2, 12));
                }
                mesh.draw().map_err(|e| e.to_string())?;
                for (i, s) in series.iter().enumerate() {
                    let c = PALETTE[i % PALETTE.len()];
                    let pts: Vec<(f64, f64)> = s
                        .points
                        .iter()
                        .copied()
                        .filter(|p| {
                            p.0.is_finite() && p.1.is_finite() && (!axes.log_y || p.1 > 0.0)
                        })
                        .collect();
                    chart
                        .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                        .map_err(|e| e.to_string())?;
                    if pts.len() <= 60 {
                        chart
                            .draw_series(pts.iter().map(|p| Circle::new(*p, 3, c.filled())))
                            .map_err(|e| e.to_string())?;
                    }
                    legend.push((s.name.clone(), c, true));
                }
                for (i, m) in markers.iter().enumerate() {
                    let c = MARKER_COLOURS[i % MARKER_COLOURS.len()];
                    chart
                        .draw_series(LineSeries::new(
                            vec![(m.x, $floor), (m.x, $ceil)],
                            c.stroke_width(2),
                        ))
                        .map_err(|e| e.to_string())?;
                    legend.push((m.label.clone(), c, true));
                }
            }};
        }
        if axes.log_y {
            body!(
                b.build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                    .map_err(|e| e.to_string())?,
                y0,
                y1
            );
        } else {
            body!(
                b.build_cartesian_2d(x0..x1, y0..y1)
                    .map_err(|e| e.to_string())?,
                y0,
                y1
            );
        }
        draw_legend(&legend_area, &legend, 60, 16)?;
        no_data_note(root, empty)
    })
}

/// The data of a training loss figure.
#[derive(Debug, Clone, Default)]
pub struct LossCurve {
    /// The image type the model is for (the figure's title).
    pub type_name: String,
    /// The model's name (`model_name` in parameters.yaml).
    pub model_name: String,
    /// Training loss per epoch (epoch 1 first).
    pub train: Vec<f64>,
    /// Validation loss per epoch.
    pub validation: Vec<f64>,
    /// 1-based epoch of the kept weights.
    pub best_epoch: usize,
    /// Whether early stopping ended the training (at the last epoch).
    pub stopped_early: bool,
}

/// The loss per epoch, titled with the type, whole-number epoch ticks, the best epoch and the
/// early stop marked; a log axis when the loss spans more than a factor 20.
pub fn loss_curve(path: &Path, f: &LossCurve) -> Result<(), PlotError> {
    let pts = |v: &[f64]| -> Vec<(f64, f64)> {
        v.iter()
            .enumerate()
            .map(|(i, &y)| ((i + 1) as f64, y))
            .collect()
    };
    let (lo, hi) = f
        .train
        .iter()
        .chain(&f.validation)
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let mut axes = Axes::new(
        &format!("{}: loss per epoch (model {})", f.type_name, f.model_name),
        "epoch",
        "loss",
    )
    .integer_x();
    if lo > 0.0 && hi / lo > 20.0 {
        axes = axes.log_y();
    }
    let mut markers = Vec::new();
    if f.best_epoch > 0 {
        let best = f
            .validation
            .get(f.best_epoch - 1)
            .copied()
            .unwrap_or(f64::NAN);
        markers.push(Marker {
            x: f.best_epoch as f64,
            label: format!("best epoch {} (val {})", f.best_epoch, format_tick(best)),
        });
    }
    let epochs = f.train.len().max(f.validation.len());
    if f.stopped_early && epochs > 0 {
        markers.push(Marker {
            x: epochs as f64,
            label: format!("early stop at {epochs}"),
        });
    }
    line_chart_marked(
        path,
        &axes,
        &[
            Series {
                name: "training".into(),
                points: pts(&f.train),
            },
            Series {
                name: "validation".into(),
                points: pts(&f.validation),
            },
        ],
        &markers,
    )
}

/// A scatter plot of (x, y) points (at most `max_points` drawn, evenly sub-sampled), optionally
/// with the y = x diagonal.
pub fn scatter(
    path: &Path,
    axes: &Axes,
    points: &[(f64, f64)],
    diagonal: bool,
    max_points: usize,
) -> Result<(), PlotError> {
    let step = (points.len() / max_points.max(1)).max(1);
    let shown: Vec<(f64, f64)> = points
        .iter()
        .step_by(step)
        .copied()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    let (mut x0, mut x1) = range(shown.iter().map(|p| p.0), false);
    let (mut y0, mut y1) = range(shown.iter().map(|p| p.1), false);
    if diagonal {
        x0 = x0.min(y0);
        y0 = x0;
        x1 = x1.max(y1);
        y1 = x1;
    }
    render(path, SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&axes.title, ("sans-serif", 26))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(84)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(axes.x_label.as_str())
            .y_desc(axes.y_label.as_str())
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 20))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                shown
                    .iter()
                    .map(|p| Circle::new(*p, 2, PALETTE[0].mix(0.35).filled())),
            )
            .map_err(|e| e.to_string())?
            .label(format!("{} points", shown.len()))
            .legend(|(x, y)| Circle::new((x + 10, y), 4, PALETTE[0].filled()));
        if diagonal {
            chart
                .draw_series(LineSeries::new(
                    vec![(x0, x0), (x1, x1)],
                    PALETTE[3].stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label("y = x")
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], PALETTE[3].stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 18))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| e.to_string())?;
        no_data_note(root, shown.is_empty())
    })
}
