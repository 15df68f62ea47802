//! Plot functions: line charts, bar charts, histograms, scatter plots and images with a colour
//! bar. Every function takes the data and a path, draws into an RGB buffer with plotters, and
//! saves a PNG atomically. Empty or non-finite data gives a figure that says so, never a panic.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::PlotError;

/// The font shipped in the binary, so figures draw the same on every machine.
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Default figure size in pixels.
pub const SIZE: (u32, u32) = (960, 640);

/// A palette with good contrast for up to 10 series (matplotlib's tab10).
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for family in ["sans-serif", "DejaVu Sans"] {
            for style in [FontStyle::Normal, FontStyle::Bold] {
                // A failure here (impossible for the bundled font) only means text is missing.
                let _ = register_font(family, style, FONT);
            }
        }
    });
}

/// Titles and axis labels of a chart.
#[derive(Debug, Clone, Default)]
pub struct Axes {
    /// Figure title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// The x axis counts things (epochs, images): ticks only at whole numbers.
    pub integer_x: bool,
    /// The y axis counts things (images, pixels): ticks only at whole numbers.
    pub integer_y: bool,
    /// Names of the x positions 0, 1, 2, ... (e.g. file names), shown instead of numbers.
    pub x_names: Vec<String>,
    /// The x values are log10 of the quantity: ticks show the quantity (10^x).
    pub log10_x_values: bool,
}

impl Axes {
    /// Titles with a linear y axis.
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Axes {
        Axes {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            ..Axes::default()
        }
    }

    /// The same with a logarithmic y axis.
    pub fn log_y(mut self) -> Axes {
        self.log_y = true;
        self
    }

    /// The same with whole-number x ticks.
    pub fn integer_x(mut self) -> Axes {
        self.integer_x = true;
        self
    }

    /// The same with whole-number y ticks.
    pub fn integer_y(mut self) -> Axes {
        self.integer_y = true;
        self
    }

    /// The same with x positions 0, 1, 2, ... labelled by `names`.
    pub fn x_names(mut self, names: Vec<String>) -> Axes {
        self.x_names = names;
        self.integer_x = true;
        self
    }

    /// The text of an x tick at `v`.
    fn x_tick(&self, v: f64) -> String {
        if !self.x_names.is_empty() || self.integer_x {
            let r = v.round();
            if (v - r).abs() > 1e-6 {
                return String::new();
            }
            if self.x_names.is_empty() {
                return format!("{r:.0}");
            }
            return usize::try_from(r as i64)
                .ok()
                .and_then(|i| self.x_names.get(i))
                // Leading spaces keep the rotated name clear of the axis line.
                .map(|n| format!("{}{}", " ".repeat(8), shorten(n, 24)))
                .unwrap_or_default();
        }
        format_tick(v)
    }

    /// The text of a y tick at `v`.
    fn y_tick(&self, v: f64) -> String {
        if self.log_y {
            return log_tick(v);
        }
        if self.integer_y {
            let r = v.round();
            return if (v - r).abs() > 1e-6 {
                String::new()
            } else {
                format!("{r:.0}")
            };
        }
        format_tick(v)
    }
}

/// `s` cut to `max` characters with an ellipsis in the middle (file names keep their ends).
pub fn shorten(s: &str, max: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= max || max < 5 {
        return s.to_string();
    }
    let head = (max - 1) / 2;
    let tail = max - 1 - head;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// One named line of a line chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// Points in x order.
    pub points: Vec<(f64, f64)>,
}

/// A vertical marker line with a legend label (e.g. a threshold, the best epoch).
#[derive(Debug, Clone)]
pub struct Marker {
    /// X position.
    pub x: f64,
    /// Legend entry.
    pub label: String,
}

fn draw_err(path: &Path, e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Renders with `draw` into a buffer of `size` and saves it to `path`.
pub fn render<F>(path: &Path, size: (u32, u32), draw: F) -> Result<(), PlotError>
where
    F: FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), String>,
{
    ensure_font();
    let mut buf = vec![255u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
        draw(&root).map_err(|e| draw_err(path, e))?;
        root.present().map_err(|e| draw_err(path, e))?;
    }
    let img = image::RgbImage::from_raw(size.0, size.1, buf)
        .ok_or_else(|| draw_err(path, "buffer size mismatch"))?;
    save_figure_png(&img, path)
}

/// Saves a figure as PNG, atomically, with fast compression: figures are many and looked at
/// once, so encoding speed matters more than the last 20 % of file size.
pub fn save_figure_png(img: &image::RgbImage, path: &Path) -> Result<(), PlotError> {
    use image::ImageEncoder;
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    crate::io::atomic::write_with(path, |w| {
        PngEncoder::new_with_quality(w, CompressionType::Fast, FilterType::Sub)
            .write_image(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|e| e.to_string())
    })?;
    Ok(())
}

/// Finite range of values, widened when empty or flat so axes are always drawable.
fn range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return if log { (0.1, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        if hi <= lo {
            return (lo / 10.0, hi * 10.0);
        }
        return (lo / 1.5, hi * 1.5);
    }
    if hi <= lo {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return (lo - pad, hi + pad);
    }
    let pad = (hi - lo) * 0.05;
    (lo - pad, hi + pad)
}

fn no_data_note(root: &DrawingArea<BitMapBackend<'_>, Shift>, empty: bool) -> Result<(), String> {
    if empty {
        let (w, h) = root.dim_in_pixel();
        root.draw(&Text::new(
            "no data",
            (w as i32 / 2 - 40, h as i32 / 2),
            ("sans-serif", 28).into_font().color(&RED),
        ))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Width of the legend column right of a chart: legends never cover data.
const LEGEND_W: u32 = 250;

/// One legend entry: its text, colour, and whether it is a line (else a filled box).
type LegendEntry = (String, RGBColor, bool);

/// Draws `entries` top-down in `area` (the column right of a chart).
fn draw_legend(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    entries: &[LegendEntry],
    top: i32,
    font: u32,
) -> Result<(), String> {
    let step = font as i32 + 10;
    for (k, (text, c, line)) in entries.iter().enumerate() {
        let y = top + k as i32 * step;
        if *line {
            area.draw(&PathElement::new(
                vec![(6, y + font as i32 / 2), (34, y + font as i32 / 2)],
                c.stroke_width(3),
            ))
            .map_err(|e| e.to_string())?;
        } else {
            area.draw(&Rectangle::new(
                [(6, y + 2), (34, y + font as i32 - 2)],
                c.mix(0.7).filled(),
            ))
            .map_err(|e| e.to_string())?;
        }
        area.draw(&Text::new(
            shorten(text, 26),
            (40, y),
            ("sans-serif", font).into_font(),
        ))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Room under the x axis: more for rotated file names.
fn x_area(axes: &Axes, small: bool) -> u32 {
    if axes.x_names.is_empty() {
        if small { 36 } else { 48 }
    } else {
        let longest = axes
            .x_names
            .iter()
            .map(|n| n.chars().count().min(24))
            .max()
            .unwrap_or(4);
        (longest as u32 * 8 + 40).min(240)
    }
}

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

/// Colours of marker lines: dark and distinct from the data palette's first entries.
const MARKER_COLOURS: [RGBColor; 4] = [
    RGBColor(0, 0, 0),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

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
fn log_x_if_wide(
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

/// Two significant digits, for ticks of a log axis (3.2, 10, 320, 1.2e5).
fn significant(v: f64) -> String {
    if !(v.is_finite() && v > 0.0) {
        return String::new();
    }
    let digits = (1 - v.log10().floor() as i32).max(0) as usize;
    if !(1e-3..1e5).contains(&v) {
        return format!("{v:.1e}").replace(".0e", "e");
    }
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
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
                let col = super::colormap::viridis(t);
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

/// Short tick text: plain for ordinary magnitudes (no trailing zeros), scientific for tiny or
/// huge ones.
pub fn format_tick(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}").replace(".0e", "e")
    } else {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" { "0".into() } else { s.to_string() }
    }
}

/// Tick text on a log axis: 1, 10, 100, 1000, then 1e4, 1e5, ... (never "100000.0").
pub fn log_tick(v: f64) -> String {
    if !(v.is_finite() && v > 0.0) {
        return String::new();
    }
    if (1e-2..1e4).contains(&v) {
        format_tick(v)
    } else {
        format!("{v:.0e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_read_as_numbers_people_write() {
        assert_eq!(format_tick(10.0), "10");
        assert_eq!(format_tick(0.25), "0.25");
        assert_eq!(format_tick(0.0), "0");
        assert_eq!(format_tick(123456.0), "1.2e5");
        assert_eq!(log_tick(100000.0), "1e5");
        assert_eq!(log_tick(1000.0), "1000");
        assert_eq!(log_tick(0.001), "1e-3");
        let a = Axes::new("", "", "").integer_x();
        assert_eq!(a.x_tick(10.0), "10");
        assert_eq!(a.x_tick(2.5), "");
        let a = Axes::new("", "", "").x_names(vec!["a.png".into(), "b.png".into()]);
        assert_eq!(a.x_tick(1.0).trim_start(), "b.png");
        assert_eq!(a.x_tick(0.5), "");
        assert_eq!(shorten("abcdefghijklmnopqrstuvwxyz.png", 11), "abcde…z.png");
        assert_eq!(significant(3.16227), "3.2");
        assert_eq!(significant(316.227), "316");
        assert_eq!(significant(0.0316227), "0.032");
    }

    #[test]
    fn wide_scores_are_binned_on_log10_with_the_threshold() {
        let sets = vec![
            ("good".to_string(), vec![0.0, 1.0, 2.0]),
            ("bad".to_string(), vec![100.0, 400.0]),
        ];
        let (logged, thr, axes) = log_x_if_wide(&sets, Some(10.0), "t", "score", "n");
        assert!(axes.log10_x_values);
        assert_eq!(thr, Some((1.0, 10.0)));
        assert_eq!(logged[0].0, "good (1 ≤ 0 not shown)");
        assert_eq!(logged[0].1, vec![0.0, 2f64.log10()]);
        // Narrow ranges stay linear.
        let (same, thr, axes) = log_x_if_wide(&sets[..1], Some(1.5), "t", "score", "n");
        assert!(!axes.log10_x_values);
        assert_eq!(thr, Some((1.5, 1.5)));
        assert_eq!(same, sets[..1].to_vec());
    }

    #[test]
    fn bins_count_every_finite_value() {
        let (lo, hi, c) = bin_counts(&[0.0, 0.5, 1.0, f64::NAN, 0.26], 4);
        assert_eq!((lo, hi), (0.0, 1.0));
        assert_eq!(c, vec![1, 1, 1, 1]);
        let (_, _, c) = bin_counts(&[], 3);
        assert_eq!(c, vec![0, 0, 0]);
    }

    #[test]
    fn figures_are_written_even_for_degenerate_data() {
        let tmp = tempfile::tempdir().unwrap();
        // PIXAL_PLOT_DIR keeps the figures for a person to look at.
        let keep = std::env::var_os("PIXAL_PLOT_DIR").map(std::path::PathBuf::from);
        let dir = keep.as_deref().unwrap_or(tmp.path());
        let a = Axes::new("Loss", "epoch", "loss");
        line_chart(
            &dir.join("l.png"),
            &a,
            &[Series {
                name: "train".into(),
                points: vec![(1.0, 0.5), (2.0, 0.25)],
            }],
        )
        .unwrap();
        line_chart(&dir.join("e.png"), &a.clone().log_y(), &[]).unwrap();
        histogram(
            &dir.join("h.png"),
            &a,
            &[1.0; 10],
            20,
            &[Marker {
                x: 1.0,
                label: "cut".into(),
            }],
        )
        .unwrap();
        histogram(&dir.join("hl.png"), &a.clone().log_y(), &[], 20, &[]).unwrap();
        bar_chart(
            &dir.join("b.png"),
            &a,
            &["a".into(), "b".into()],
            &[1.0, f64::NAN],
        )
        .unwrap();
        scatter(
            &dir.join("s.png"),
            &a,
            &[(0.1, 0.2), (0.3, 0.3)],
            true,
            1000,
        )
        .unwrap();
        let img = image::RgbImage::from_fn(30, 20, |x, _| {
            image::Rgb(super::super::colormap::viridis(x as f32 / 29.0))
        });
        image_with_colorbar(
            &dir.join("c.png"),
            "map",
            &img,
            super::super::colormap::viridis,
            (0.0, 2.5),
            "error",
        )
        .unwrap();
        let sets = vec![
            ("true".to_string(), vec![0.1, 0.2, 0.2, 0.5]),
            ("predicted".to_string(), vec![0.15, 0.2, 0.4]),
        ];
        overlaid_histograms(&dir.join("o.png"), &a.clone().log_y(), &sets, 20).unwrap();
        panel_histograms(
            &dir.join("p.png"),
            "per channel",
            &Axes::new("", "error", "pixels").log_y(),
            &sets,
            20,
        )
        .unwrap();
        confusion_matrix(&dir.join("m.png"), "confusion", [[8, 1], [2, 5]]).unwrap();
        loss_curve(
            &dir.join("lc.png"),
            &LossCurve {
                type_name: "front".into(),
                model_name: "testModel".into(),
                train: vec![1.0, 0.5, 0.3, 0.35, 0.4],
                validation: vec![1.1, 0.6, 0.2, 0.3, 0.5],
                best_epoch: 3,
                stopped_early: true,
            },
        )
        .unwrap();
        score_histograms(
            &dir.join("sh.png"),
            &ScoreHistograms {
                title: "front".into(),
                pixel_label: "score".into(),
                pixel: vec![
                    (
                        "normal".into(),
                        (0..500).map(|i| f64::from(i) / 100.0).collect(),
                    ),
                    ("defect".into(), vec![40.0, 60.0, 80.0]),
                ],
                pixel_threshold: Some(4.5),
                image_label: "image score".into(),
                image: vec![
                    ("good".into(), vec![2.0, 3.0]),
                    ("defective".into(), vec![50.0]),
                ],
                image_threshold: Some(4.0),
            },
        )
        .unwrap();
        // The marker lines are drawn in their colours: best epoch black, early stop red.
        let lc = image::open(dir.join("lc.png")).unwrap().to_rgb8();
        assert!(lc.pixels().any(|p| p.0 == [0, 0, 0]));
        assert!(lc.pixels().any(|p| p.0 == [214, 39, 40]));
        for f in [
            "l", "e", "h", "hl", "b", "s", "c", "o", "p", "m", "lc", "sh",
        ] {
            let img = image::open(dir.join(format!("{f}.png"))).unwrap().to_rgb8();
            // Something other than white was drawn.
            assert!(
                img.pixels().any(|p| p.0 != [255, 255, 255]),
                "{f}.png is blank"
            );
        }
    }
}
