//! Zero pruning: the crop box that holds the foreground of every image of a folder, with
//! padding, and its re-centring on a new image at validation time. The policy lives here, pure:
//! which images a training folder keeps (the common size), the box they share
//! ([`training_box`]), and where the stored box goes on a validation image ([`place_stored`]);
//! make_input applies it and reports what it refuses.

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

/// Where the stored training box goes on one image at validation. An aligned image is already
/// in the training reference frame: it keeps the training box to the pixel, or every edge of
/// the part would move against the model. Only unaligned images are re-centred on their own
/// foreground `fg` ([`recenter`]). `None` when the image (`width` x `height`) cannot hold the
/// box.
pub fn place_stored(
    stored: &CropBox,
    aligned: bool,
    fg: Option<BBox>,
    width: u32,
    height: u32,
) -> Option<CropBox> {
    if aligned {
        stored.fits(width, height).then_some(*stored)
    } else {
        recenter(stored, fg, width, height)
    }
}

/// The most common image size (ties: the first in sorted order), so one odd photo sorted first
/// does not reject all the others. The training images of a folder must all have it.
pub fn common_size(sizes: impl IntoIterator<Item = (u32, u32)>) -> Option<(u32, u32)> {
    let mut counts: Vec<((u32, u32), usize)> = Vec::new();
    for size in sizes {
        match counts.iter_mut().find(|(sz, _)| *sz == size) {
            Some((_, n)) => *n += 1,
            None => counts.push((size, 1)),
        }
    }
    let best = counts.iter().map(|(_, n)| *n).max()?;
    counts.iter().find(|(_, n)| *n == best).map(|(sz, _)| *sz)
}

/// The crop box the training images of a folder share (see [`training_box`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainingBox {
    /// No crop: zero pruning is off, or there are no images.
    None,
    /// The union of the images' foreground boxes, padded and clamped to the image.
    Foreground(CropBox),
    /// No pixel of any image is foreground: the whole image (worth a warning).
    Whole(CropBox),
}

impl TrainingBox {
    /// The box to crop every image with, if any.
    pub fn crop_box(self) -> Option<CropBox> {
        match self {
            TrainingBox::None => None,
            TrainingBox::Foreground(b) | TrainingBox::Whole(b) => Some(b),
        }
    }
}

/// The training side's crop box for images of size `width` x `height` whose foreground boxes
/// are `foregrounds` (one per image): with `zero_pruning`, the union of the boxes padded by
/// `padding` ([`union`], [`padded`]), so one box holds the part in every image.
pub fn training_box(
    foregrounds: &[Option<BBox>],
    zero_pruning: bool,
    padding: u32,
    width: u32,
    height: u32,
) -> TrainingBox {
    if !zero_pruning {
        return TrainingBox::None;
    }
    match foregrounds.iter().flatten().copied().reduce(union) {
        Some(bb) => TrainingBox::Foreground(padded(bb, padding, width, height)),
        None if foregrounds.is_empty() => TrainingBox::None,
        None => TrainingBox::Whole(CropBox::full(width, height)),
    }
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

    #[test]
    fn stored_box_stays_put_on_aligned_images_and_follows_unaligned_ones() {
        let stored = CropBox {
            y_min: 10,
            y_max: 30,
            x_min: 10,
            x_max: 50,
            padding: 2,
        };
        let fg = Some(BBox {
            y_min: 15,
            y_max: 31,
            x_min: 19,
            x_max: 55,
        });
        assert_eq!(place_stored(&stored, true, fg, 100, 60), Some(stored));
        assert_eq!(
            place_stored(&stored, false, fg, 100, 60),
            recenter(&stored, fg, 100, 60)
        );
        assert_ne!(place_stored(&stored, false, fg, 100, 60), Some(stored));
        // An aligned image that cannot hold the box, and an unaligned one too small for it.
        assert_eq!(place_stored(&stored, true, fg, 40, 60), None);
        assert_eq!(place_stored(&stored, false, fg, 30, 60), None);
    }

    #[test]
    fn common_size_is_the_most_frequent_first_on_ties() {
        assert_eq!(common_size([(4, 3), (5, 5), (5, 5)]), Some((5, 5)));
        assert_eq!(common_size([(4, 3), (5, 5)]), Some((4, 3)));
        assert_eq!(common_size([]), None);
    }

    #[test]
    fn training_box_is_the_padded_union_or_the_whole_image() {
        let a = BBox {
            y_min: 2,
            y_max: 4,
            x_min: 3,
            x_max: 5,
        };
        let b = BBox {
            y_min: 5,
            y_max: 6,
            x_min: 1,
            x_max: 2,
        };
        let fgs = [Some(a), None, Some(b)];
        assert_eq!(
            training_box(&fgs, true, 1, 10, 8),
            TrainingBox::Foreground(padded(union(a, b), 1, 10, 8))
        );
        assert_eq!(training_box(&fgs, false, 1, 10, 8), TrainingBox::None);
        assert_eq!(training_box(&[], true, 1, 10, 8), TrainingBox::None);
        let whole = training_box(&[None, None], true, 1, 10, 8);
        assert_eq!(whole, TrainingBox::Whole(CropBox::full(10, 8)));
        assert_eq!(whole.crop_box(), Some(CropBox::full(10, 8)));
    }
}
