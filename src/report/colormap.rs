//! Colour maps for heat maps: viridis and inferno (perceptually uniform: equal steps in score look
//! like equal steps in colour, and they stay readable in gray and for colour-blind readers) and
//! jet (what the original's overlays used; kept for comparison only).

/// Viridis control points (matplotlib's), sampled at 9 evenly spaced positions.
const VIRIDIS: [[f32; 3]; 9] = [
    [68.0, 1.0, 84.0],
    [71.0, 44.0, 122.0],
    [59.0, 81.0, 139.0],
    [44.0, 113.0, 142.0],
    [33.0, 144.0, 141.0],
    [39.0, 173.0, 129.0],
    [92.0, 200.0, 99.0],
    [170.0, 220.0, 50.0],
    [253.0, 231.0, 37.0],
];

/// Inferno control points (matplotlib's, as OpenCV's COLORMAP_INFERNO), 17 evenly spaced.
const INFERNO: [[f32; 3]; 17] = [
    [0.0, 0.0, 4.0],
    [11.0, 7.0, 36.0],
    [33.0, 12.0, 74.0],
    [61.0, 9.0, 101.0],
    [87.0, 16.0, 110.0],
    [113.0, 25.0, 110.0],
    [138.0, 34.0, 106.0],
    [163.0, 44.0, 97.0],
    [188.0, 55.0, 84.0],
    [208.0, 69.0, 69.0],
    [227.0, 89.0, 51.0],
    [241.0, 113.0, 31.0],
    [249.0, 140.0, 10.0],
    [252.0, 170.0, 15.0],
    [249.0, 201.0, 50.0],
    [242.0, 232.0, 101.0],
    [252.0, 255.0, 164.0],
];

fn sample(points: &[[f32; 3]], t: f32) -> [u8; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let x = t * (points.len() - 1) as f32;
    let i = (x.floor() as usize).min(points.len() - 2);
    let f = x - i as f32;
    let (a, b) = (points[i], points[i + 1]);
    [0, 1, 2].map(|k| (a[k] + (b[k] - a[k]) * f).round() as u8)
}

/// Inferno colour of `t` in [0, 1] (clamped; NaN maps to 0): black -> purple -> orange -> pale
/// yellow, with lightness rising steadily.
pub fn inferno(t: f32) -> [u8; 3] {
    sample(&INFERNO, t)
}

/// Viridis colour of `t` in [0, 1] (clamped; NaN maps to 0).
pub fn viridis(t: f32) -> [u8; 3] {
    sample(&VIRIDIS, t)
}

/// Jet colour of `t` in [0, 1] (clamped; NaN maps to 0), as matplotlib's `jet`.
pub fn jet(t: f32) -> [u8; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let ch = |x: f32| (1.5 - (4.0 * t - x).abs()).clamp(0.0, 1.0);
    [ch(3.0), ch(2.0), ch(1.0)].map(|v| (v * 255.0).round() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_middle() {
        assert_eq!(viridis(0.0), [68, 1, 84]);
        assert_eq!(viridis(1.0), [253, 231, 37]);
        assert_eq!(viridis(f32::NAN), viridis(0.0));
        assert_eq!(inferno(0.0), [0, 0, 4]);
        assert_eq!(inferno(0.5), [188, 55, 84]);
        assert_eq!(inferno(1.0), [252, 255, 164]);
        // Lightness (Rec. 601 luma) rises monotonically: equal score steps look like equal steps.
        let luma = |c: [u8; 3]| {
            0.299 * f32::from(c[0]) + 0.587 * f32::from(c[1]) + 0.114 * f32::from(c[2])
        };
        for k in 0..100 {
            assert!(luma(inferno(k as f32 / 100.0)) < luma(inferno((k + 1) as f32 / 100.0)));
        }
        assert_eq!(jet(0.0), [0, 0, 128]);
        assert_eq!(jet(0.5), [128, 255, 128]);
        assert_eq!(jet(1.0), [128, 0, 0]);
    }
}
