//! Zero pruning: the crop box that holds the foreground of every image of a folder, with
//! padding, and its re-centring on a new image at validation time.

pub use crate::types::CropBox;

/// A bounding box of foreground pixels, max exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BBox {
    /// First row.
    pub y_min: u32,
    /// One past the last row.
    pub y_max: u32,
    /// First column.
    pub x_min: u32,
    /// One past the last column.
    pub x_max: u32,
}

/// The bounding box of pixels where any of R, G, B exceeds `threshold`; `None` when there are
/// none.
pub fn foreground_bbox(img: &image::RgbImage, threshold: u8) -> Option<BBox> {
    let (w, h) = img.dimensions();
    let mut bb: Option<BBox> = None;
    for y in 0..h {
        let mut row_min = None;
        let mut row_max = 0;
        for x in 0..w {
            let p = img.get_pixel(x, y).0;
            if p[0] > threshold || p[1] > threshold || p[2] > threshold {
                row_min.get_or_insert(x);
                row_max = x;
            }
        }
        if let Some(x0) = row_min {
            let b = bb.get_or_insert(BBox {
                y_min: y,
                y_max: y + 1,
                x_min: x0,
                x_max: row_max + 1,
            });
            b.y_max = y + 1;
            b.x_min = b.x_min.min(x0);
            b.x_max = b.x_max.max(row_max + 1);
        }
    }
    bb
}

/// The union of two boxes.
pub fn union(a: BBox, b: BBox) -> BBox {
    BBox {
        y_min: a.y_min.min(b.y_min),
        y_max: a.y_max.max(b.y_max),
        x_min: a.x_min.min(b.x_min),
        x_max: a.x_max.max(b.x_max),
    }
}

/// Pads a foreground box by `padding` on every side, clamped to the image.
pub fn padded(bb: BBox, padding: u32, width: u32, height: u32) -> CropBox {
    CropBox {
        y_min: bb.y_min.saturating_sub(padding),
        y_max: bb.y_max.saturating_add(padding).min(height),
        x_min: bb.x_min.saturating_sub(padding),
        x_max: bb.x_max.saturating_add(padding).min(width),
        padding,
    }
}

/// Re-centres a stored crop box on a new image: the box keeps its size (so the pooled grid
/// matches the trained model) and is centred on the new image's own foreground box, shifted
/// back inside the image where it would stick out. Without foreground the stored box is kept.
/// Returns `None` when the image is smaller than the box.
pub fn recenter(stored: &CropBox, fg: Option<BBox>, width: u32, height: u32) -> Option<CropBox> {
    let (bw, bh) = (stored.width(), stored.height());
    if bw > width || bh > height {
        return None;
    }
    let Some(fg) = fg else {
        return stored.fits(width, height).then_some(*stored);
    };
    let place = |lo: u32, hi: u32, size: u32, limit: u32| -> u32 {
        // Centre in doubled coordinates to avoid losing the half pixel.
        let centre2 = i64::from(lo) + i64::from(hi);
        let start = (centre2 - i64::from(size)).div_euclid(2);
        start.clamp(0, i64::from(limit - size)) as u32
    };
    let x0 = place(fg.x_min, fg.x_max, bw, width);
    let y0 = place(fg.y_min, fg.y_max, bh, height);
    Some(CropBox {
        y_min: y0,
        y_max: y0 + bh,
        x_min: x0,
        x_max: x0 + bw,
        padding: stored.padding,
    })
}

/// Copies the crop box out of an image. The box must fit (see [`CropBox::fits`]).
pub fn crop(img: &image::RgbImage, b: &CropBox) -> image::RgbImage {
    image::imageops::crop_imm(img, b.x_min, b.y_min, b.width(), b.height()).to_image()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn img_with(w: u32, h: u32, fg: &[(u32, u32)]) -> RgbImage {
        let mut img = RgbImage::new(w, h);
        for &(x, y) in fg {
            img.put_pixel(x, y, Rgb([0, 0, 16]));
        }
        img
    }

    #[test]
    fn bbox_threshold_is_strict_and_any_channel() {
        let mut img = img_with(10, 8, &[(2, 3), (7, 5)]);
        img.put_pixel(9, 7, Rgb([15, 15, 15]));
        assert_eq!(
            foreground_bbox(&img, 15),
            Some(BBox {
                y_min: 3,
                y_max: 6,
                x_min: 2,
                x_max: 8
            })
        );
        assert_eq!(foreground_bbox(&RgbImage::new(4, 4), 15), None);
        assert_eq!(foreground_bbox(&RgbImage::new(0, 0), 15), None);
    }

    #[test]
    fn padding_is_clamped() {
        let bb = BBox {
            y_min: 1,
            y_max: 6,
            x_min: 2,
            x_max: 8,
        };
        let c = padded(bb, 5, 10, 8);
        assert_eq!(
            (c.y_min, c.y_max, c.x_min, c.x_max, c.padding),
            (0, 8, 0, 10, 5)
        );
        let c = padded(bb, 1, 10, 8);
        assert_eq!((c.y_min, c.y_max, c.x_min, c.x_max), (0, 7, 1, 9));
    }

    #[test]
    fn union_covers_both() {
        let a = BBox {
            y_min: 1,
            y_max: 3,
            x_min: 5,
            x_max: 6,
        };
        let b = BBox {
            y_min: 2,
            y_max: 9,
            x_min: 0,
            x_max: 4,
        };
        assert_eq!(
            union(a, b),
            BBox {
                y_min: 1,
                y_max: 9,
                x_min: 0,
                x_max: 6
            }
        );
    }

    #[test]
    fn recenter_keeps_size_and_follows_the_part() {
        let stored = CropBox {
            y_min: 10,
            y_max: 30,
            x_min: 10,
            x_max: 50,
            padding: 2,
        };
        // Part moved right by 7 and down by 3.
        let fg = BBox {
            y_min: 15,
            y_max: 31,
            x_min: 19,
            x_max: 55,
        };
        let c = recenter(&stored, Some(fg), 100, 60).unwrap();
        assert_eq!((c.width(), c.height()), (40, 20));
        assert_eq!((c.x_min, c.y_min), (17, 13));
        // Near the border the box is shifted back inside.
        let fg = BBox {
            y_min: 50,
            y_max: 60,
            x_min: 90,
            x_max: 100,
        };
        let c = recenter(&stored, Some(fg), 100, 60).unwrap();
        assert_eq!((c.x_max, c.y_max), (100, 60));
        // Too small an image.
        assert!(recenter(&stored, Some(fg), 30, 60).is_none());
        // No foreground: stored box.
        assert_eq!(recenter(&stored, None, 100, 60), Some(stored));
    }

    #[test]
    fn crop_copies_the_region() {
        let img = img_with(10, 8, &[(4, 5)]);
        let c = crop(
            &img,
            &CropBox {
                y_min: 4,
                y_max: 7,
                x_min: 3,
                x_max: 6,
                padding: 0,
            },
        );
        assert_eq!(c.dimensions(), (3, 3));
        assert_eq!(c.get_pixel(1, 1).0, [0, 0, 16]);
    }
}
