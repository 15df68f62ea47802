//! Background removal: the pure cores behind `pixal remove_bg`.
//!
//! Two methods make a mask (8-bit, 255 = part, 0 = background) of the same size as the photo:
//!
//! * [`onnx`]: rembg's U2-Net contract run through ONNX Runtime, so a user's existing rembg
//!   models (`u2net`, `isnet-general-use` and the rest of [`models::MODELS`]) give the masks
//!   rembg gives.
//!   The pre- and post-processing follow rembg step by step, resizes included: [`resample`] is
//!   an exact port of PIL's Lanczos filter.
//! * [`classical`]: a model-free colour segmentation for parts photographed on a plain
//!   (back-lit) background: the background colours are learnt from the image border, every
//!   pixel is classified at reduced resolution, the mask is cleaned with [`morphology`], and its
//!   edge is refined at full resolution.
//!
//! [`cutout`] turns a photo and a mask into the RGBA image the next stage reads, in rembg's two
//! styles ([`Cutout`]); [`post_process_mask`] is rembg's optional mask clean-up.
//!
//! [`models`] is rembg's model table, the places rembg keeps models, and the download rembg
//! does on first use.
//!
//! Nothing here prints or touches paths, except [`onnx`], which loads the runtime library and
//! the model file it is given, and [`models`], which looks for and downloads model files.

pub mod classical;
pub mod models;
pub mod morphology;
pub mod onnx;
pub mod resample;

use std::path::PathBuf;

use image::{GrayImage, RgbImage, RgbaImage};

/// Errors of background removal. Each names what is needed to act on it.
#[derive(Debug, thiserror::Error)]
pub enum BackgroundError {
    /// The ONNX Runtime shared library could not be loaded.
    #[error("cannot load the ONNX Runtime library {path}: {reason}")]
    Runtime {
        /// The library file.
        path: PathBuf,
        /// What the loader said.
        reason: String,
    },
    /// The model file could not be opened as an ONNX model.
    #[error("cannot load the ONNX model {path}: {reason}")]
    Model {
        /// The model file.
        path: PathBuf,
        /// What ONNX Runtime said.
        reason: String,
    },
    /// The model does not have U2-Net's interface (one image input, a `[1, C, H, W]` output).
    #[error("{path}: not a rembg-style model: {reason}")]
    Interface {
        /// The model file.
        path: PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// Running the model failed.
    #[error("ONNX Runtime failed on this image: {0}")]
    Inference(String),
    /// The classical method found nothing that differs from the background.
    #[error(
        "no part found: nothing in the photo differs enough from the background colours learnt from its border (is the part touching the border on all sides, or is the background not plain?)"
    )]
    NoForeground,
    /// The image is too small to segment.
    #[error("image is {width}x{height}; background removal needs at least 8x8 pixels")]
    TooSmall {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
}

// The settings' vocabularies live at the bottom of the crate, where the configuration reads them.
pub use crate::types::background::{Cutout, Method};

/// Makes the RGBA cut-out of `rgb` through `mask` (same size; a mask of another size is a
/// programming error and yields a cut-out of the photo's size with the overlapping part used).
///
/// [`Cutout::Premultiplied`] reproduces PIL's `Image.composite(photo, transparent, mask)`
/// exactly, rounding included: `c' = (c * m + 128 + ((c * m + 128) >> 8)) >> 8`.
pub fn cutout(rgb: &RgbImage, mask: &GrayImage, style: Cutout) -> RgbaImage {
    let (w, h) = rgb.dimensions();
    let same = mask.dimensions() == (w, h);
    let mut out = vec![0u8; w as usize * h as usize * 4];
    for (i, (o, c)) in out
        .chunks_exact_mut(4)
        .zip(rgb.as_raw().chunks_exact(3))
        .enumerate()
    {
        let m = if same {
            mask.as_raw()[i]
        } else {
            let (x, y) = ((i % w as usize) as u32, (i / w as usize) as u32);
            if x < mask.width() && y < mask.height() {
                mask.get_pixel(x, y)[0]
            } else {
                0
            }
        };
        match style {
            Cutout::Premultiplied => {
                o[0] = div255(c[0], m);
                o[1] = div255(c[1], m);
                o[2] = div255(c[2], m);
            }
            Cutout::PutAlpha => o[..3].copy_from_slice(c),
        }
        o[3] = m;
    }
    RgbaImage::from_raw(w, h, out).unwrap_or_else(|| RgbaImage::new(w, h))
}

/// PIL's rounded `a * b / 255` for 8-bit values.
fn div255(a: u8, b: u8) -> u8 {
    let t = u32::from(a) * u32::from(b) + 128;
    (((t >> 8) + t) >> 8) as u8
}

/// rembg's optional mask post-processing (`post_process_mask=True`): an opening with OpenCV's
/// 3x3 elliptic element (a cross), a 5x5 Gaussian blur with σ 2 (OpenCV's bit-exact 8-bit
/// fixed-point filter, borders reflected without repeating the edge pixel), then every value
/// below 127 becomes 0 and the rest 255. Equal to rembg's output pixel for pixel (checked
/// against OpenCV by the tests).
pub fn post_process_mask(mask: &GrayImage) -> GrayImage {
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    let opened = morphology::open_gray_cross(mask.as_raw(), w, h);
    let mut blurred = vec![0u8; w * h];
    crate::preprocess::blur::gaussian_blur_u8::<5>(&opened, w, h, 2.0, &mut blurred);
    let data = blurred
        .into_iter()
        .map(|v| if v < 127 { 0 } else { 255 })
        .collect();
    GrayImage::from_raw(mask.width(), mask.height(), data)
        .unwrap_or_else(|| GrayImage::new(mask.width(), mask.height()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn div255_matches_pil_rounding() {
        // PIL's DIV255 is round(a*b/255) for every pair of 8-bit values.
        for a in 0..=255u32 {
            for b in 0..=255u32 {
                let exact = (a * b) as f64 / 255.0;
                assert_eq!(
                    u32::from(div255(a as u8, b as u8)),
                    exact.round() as u32,
                    "{a} {b}"
                );
            }
        }
    }

    #[test]
    fn cutout_styles() {
        let rgb = RgbImage::from_pixel(2, 1, image::Rgb([200, 100, 51]));
        let mask = GrayImage::from_raw(2, 1, vec![255, 128]).unwrap();
        let pre = cutout(&rgb, &mask, Cutout::Premultiplied);
        assert_eq!(pre.get_pixel(0, 0).0, [200, 100, 51, 255]);
        assert_eq!(pre.get_pixel(1, 0).0, [100, 50, 26, 128]);
        let put = cutout(&rgb, &mask, Cutout::PutAlpha);
        assert_eq!(put.get_pixel(1, 0).0, [200, 100, 51, 128]);
    }

    #[test]
    fn post_process_removes_specks_and_binarises() {
        let mut m = GrayImage::new(20, 20);
        for y in 5..15 {
            for x in 5..15 {
                m.put_pixel(x, y, image::Luma([200]));
            }
        }
        m.put_pixel(1, 1, image::Luma([255]));
        let p = post_process_mask(&m);
        assert_eq!(p.get_pixel(1, 1)[0], 0, "a one-pixel speck is opened away");
        assert_eq!(p.get_pixel(10, 10)[0], 255);
        assert!(p.pixels().all(|v| v[0] == 0 || v[0] == 255));
    }
}
