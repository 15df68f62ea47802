//! Anomaly maps back on the photo: undo the pooling (bilinear), place the map in the crop box,
//! and, when the image was aligned, warp it back from the reference frame to the photo with the
//! stored homography. Also the 16-bit PNG encoding of maps.

use ndarray::Array2;

use crate::preprocess::crop::CropBox;

/// Samples a (h, w) map bilinearly at continuous coordinates (x, y) in map pixels, clamped at
/// the edges.
fn bilinear(map: &[f32], (h, w): (usize, usize), x: f64, y: f64) -> f32 {
    let x = x.clamp(0.0, (w - 1) as f64);
    let y = y.clamp(0.0, (h - 1) as f64);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
    let a = map[y0 * w + x0] * (1.0 - fx) + map[y0 * w + x1] * fx;
    let b = map[y1 * w + x0] * (1.0 - fx) + map[y1 * w + x1] * fx;
    a * (1.0 - fy) + b * fy
}

/// Where a pooled map came from.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    /// Pooled (height, width).
    pub pooled: (usize, usize),
    /// Pool size.
    pub pool: usize,
    /// Crop box in the (aligned) image, if any.
    pub crop: Option<CropBox>,
    /// Size (width, height) of the image the crop box lives in (the aligned image or the photo).
    pub frame: (u32, u32),
    /// Homography from photo to reference frame (row-major), when the image was aligned.
    pub homography: Option<[f64; 9]>,
    /// Size (width, height) of the original photo.
    pub photo: (u32, u32),
}

/// Value of the pooled map at a pixel centre of the frame (the crop's image), or 0 outside the
/// crop box.
fn frame_value(map: &[f32], g: &Geometry, fx: f64, fy: f64) -> f32 {
    let (x0, y0, cw, ch) = match g.crop {
        Some(b) => (
            f64::from(b.x_min),
            f64::from(b.y_min),
            f64::from(b.width()),
            f64::from(b.height()),
        ),
        None => (0.0, 0.0, f64::from(g.frame.0), f64::from(g.frame.1)),
    };
    let (cx, cy) = (fx - x0, fy - y0);
    if cx < 0.0 || cy < 0.0 || cx >= cw || cy >= ch {
        return 0.0;
    }
    let k = g.pool as f64;
    bilinear(map, g.pooled, cx / k - 0.5, cy / k - 0.5)
}

/// The pooled map on the photo's pixel grid (photo height, width).
pub fn to_photo(map: &[f32], g: &Geometry) -> Array2<f32> {
    let (w, h) = (g.photo.0 as usize, g.photo.1 as usize);
    if map.len() != g.pooled.0 * g.pooled.1 || map.is_empty() {
        return Array2::zeros((h, w));
    }
    Array2::from_shape_fn((h, w), |(y, x)| {
        let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
        let (fx, fy) = match g.homography {
            Some(m) => {
                let d = m[6] * px + m[7] * py + m[8];
                if d.abs() < 1e-12 {
                    return 0.0;
                }
                (
                    (m[0] * px + m[1] * py + m[2]) / d,
                    (m[3] * px + m[4] * py + m[5]) / d,
                )
            }
            None => (px, py),
        };
        if fx < 0.0 || fy < 0.0 || fx >= f64::from(g.frame.0) || fy >= f64::from(g.frame.1) {
            return 0.0;
        }
        frame_value(map, g, fx, fy)
    })
}

/// Encodes a score map as 16-bit gray: `min(max(score, 0) / scale, 1) * 65535`, rounded.
pub fn to_gray16(map: &Array2<f32>, scale: f32) -> image::ImageBuffer<image::Luma<u16>, Vec<u16>> {
    let (h, w) = map.dim();
    let s = if scale > 0.0 && scale.is_finite() {
        scale
    } else {
        1.0
    };
    image::ImageBuffer::from_fn(w as u32, h as u32, |x, y| {
        let v = map[[y as usize, x as usize]];
        let v = if v.is_finite() {
            (v.max(0.0) / s).min(1.0)
        } else {
            0.0
        };
        image::Luma([(v * 65535.0).round() as u16])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsampling_places_the_map_in_the_crop() {
        // 2x2 pooled map, pool 2, crop at x 3..7, y 1..5 in a 10x8 photo.
        let map = [1.0, 2.0, 3.0, 4.0];
        let g = Geometry {
            pooled: (2, 2),
            pool: 2,
            crop: Some(CropBox {
                y_min: 1,
                y_max: 5,
                x_min: 3,
                x_max: 7,
                padding: 0,
            }),
            frame: (10, 8),
            homography: None,
            photo: (10, 8),
        };
        let m = to_photo(&map, &g);
        assert_eq!(m.dim(), (8, 10));
        assert_eq!(m[[0, 0]], 0.0);
        assert_eq!(m[[0, 3]], 0.0);
        // The top-left pixel of the crop is the centre-ish of pooled (0,0): clamped -> 1.
        assert_eq!(m[[1, 3]], 1.0);
        assert_eq!(m[[4, 6]], 4.0);
        // Between pooled pixels the map interpolates.
        let mid = m[[1, 4]];
        assert!(mid > 1.0 && mid < 2.0, "{mid}");
        assert_eq!(m[[5, 6]], 0.0);
    }

    #[test]
    fn homography_shift_moves_the_map() {
        // The photo is the reference shifted by +2 in x: H maps photo x to x - 2.
        let map = [0.0, 0.0, 0.0, 5.0];
        let g0 = Geometry {
            pooled: (2, 2),
            pool: 1,
            crop: None,
            frame: (2, 2),
            homography: None,
            photo: (4, 2),
        };
        let a = to_photo(&map, &g0);
        assert_eq!(a[[1, 1]], 5.0);
        let g = Geometry {
            homography: Some([1.0, 0.0, -2.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]),
            ..g0
        };
        let b = to_photo(&map, &g);
        assert_eq!(b[[1, 3]], 5.0);
        assert_eq!(b[[1, 1]], 0.0);
    }

    #[test]
    fn gray16_scaling() {
        let m = Array2::from_shape_vec((1, 4), vec![-1.0, 0.5, 1.0, f32::NAN]).unwrap();
        let g = to_gray16(&m, 1.0);
        assert_eq!(g.as_raw(), &vec![0, 32768, 65535, 0]);
    }
}
