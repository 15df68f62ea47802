//! The crop box: the rectangle make_input cuts out of every image (zero pruning), recorded in
//! `preprocessing.yaml` and reused at validation and when maps go back to the photo. How it is
//! chosen is `preprocess::crop`.

use serde::{Deserialize, Serialize};

/// A crop rectangle in pixel coordinates. `y_max` and `x_max` are exclusive, so the crop is
/// `img[y_min..y_max, x_min..x_max]` (numpy's `img[y_min:y_max, x_min:x_max]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CropBox {
    /// First row.
    pub y_min: u32,
    /// One past the last row.
    pub y_max: u32,
    /// First column.
    pub x_min: u32,
    /// One past the last column.
    pub x_max: u32,
    /// The padding that was added around the foreground.
    pub padding: u32,
}

impl CropBox {
    /// The whole image.
    pub fn full(width: u32, height: u32) -> CropBox {
        CropBox {
            y_min: 0,
            y_max: height,
            x_min: 0,
            x_max: width,
            padding: 0,
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.x_max.saturating_sub(self.x_min)
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.y_max.saturating_sub(self.y_min)
    }

    /// True when the box lies inside an image of this size and is not empty.
    pub fn fits(&self, width: u32, height: u32) -> bool {
        self.x_min < self.x_max
            && self.y_min < self.y_max
            && self.x_max <= width
            && self.y_max <= height
    }
}
