//! The frame every figure shares: the embedded font, the palette, axes and their labels, the
//! legend column, value ranges, tick labels, and rendering a drawing into a PNG saved atomically.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::report::PlotError;

/// The font shipped in the binary, so figures draw the same on every machine.
const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

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
    pub(super) fn x_tick(&self, v: f64) -> String {
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
    pub(super) fn y_tick(&self, v: f64) -> String {
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
pub(super) fn range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
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

pub(super) fn no_data_note(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    empty: bool,
) -> Result<(), String> {
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
pub(super) const LEGEND_W: u32 = 250;

/// One legend entry: its text, colour, and whether it is a line (else a filled box).
pub(super) type LegendEntry = (String, RGBColor, bool);

/// Draws `entries` top-down in `area` (the column right of a chart).
pub(super) fn draw_legend(
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
pub(super) fn x_area(axes: &Axes, small: bool) -> u32 {
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

/// Colours of marker lines: dark and distinct from the data palette's first entries.
pub(super) const MARKER_COLOURS: [RGBColor; 4] = [
    RGBColor(0, 0, 0),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Two significant digits, for ticks of a log axis (3.2, 10, 320, 1.2e5).
pub(super) fn significant(v: f64) -> String {
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
