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
    // The pooled map is freshly allocated in standard layout, so this reshape never copies; the
    // fallback only guards the impossible case.
    let rows = match pooled.into_shape_with_order((ph * pw, c)) {
        Ok(r) => r,
        Err(e) => unreachable_layout(e, ph * pw, c),
    };
    (rows, (ph, pw))
}

#[cold]
fn unreachable_layout(e: ndarray::ShapeError, p: usize, c: usize) -> Array2<f32> {
    log::error!("internal: pooled map could not be reshaped to ({p}, {c}): {e}");
    Array2::from_elem((p, c), f32::NAN)
}
