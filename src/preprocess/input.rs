//! The ML input of one image: crop, feature channels, pooling, and the pixel-major (P, C) rows
//! that go into `out.npz` (row by row, channel-minor, as the original lays them out).

use ndarray::Array2;

use super::crop::{self, CropBox};
use super::{Channel, features, pool};

/// Turns one 8-bit RGB image into its (P, C) rows: crop (when a box is given), compute the
/// channels on the cropped image, average-pool by `pool_size`, flatten pixel-major. Returns the
/// rows and the pooled (height, width).
pub fn image_rows(
    img: &image::RgbImage,
    crop_box: Option<&CropBox>,
    channels: &[Channel],
    pool_size: usize,
) -> (Array2<f32>, (usize, usize)) {
    let cropped;
    let src = match crop_box {
        Some(b) => {
            cropped = crop::crop(img, b);
            &cropped
        }
        None => img,
    };
    let feats = features::compute_features(src, channels);
    let pooled = pool::average_pool(feats.view(), pool_size);
    let (ph, pw, c) = pooled.dim();
    let rows = Array2::from_shape_fn((ph * pw, c), |(p, ch)| pooled[[p / pw, p % pw, ch]]);
    (rows, (ph, pw))
}
