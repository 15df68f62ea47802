//! The realistic generator: photos of a real flex circuit as a microscope camera takes them.
//!
//! The part is a real photo (`assets/flex/part_rgb.jpg`, with rembg's cut-out as its opacity
//! `assets/flex/part_alpha.png`; `assets/flex/make_assets.py` made both from the 1920x1080
//! fixture). Each photo places it with a random pose (rotation, shift, scale, mild perspective)
//! over a round backlight of its type's colour with a vignette, changes the lighting (gain, bias,
//! white balance), sometimes blurs slightly, adds sensor noise and is saved as a JPEG. Defects
//! are drawn in part coordinates, so they move with the pose, and their ground-truth masks are
//! exact: a photo pixel is in the mask where the defect's opacity (averaged over the pixel) is at
//! least 0.5. The `contrast` knob scales how much a defect changes the pixels, not its mask.
//!
//! Rendering inverse-warps every photo pixel into part coordinates and samples the part
//! bilinearly, supersampling n x n per pixel when the part is shrunk (n = ceil(1 / scale)) so
//! the fine traces do not alias.
//!
//! The embedded part is in `part`, the defect kinds and their drawing in `defects`, pose,
//! lighting and the renderer in `render`; everything public is re-exported here.

mod defects;
mod part;
mod render;

pub use defects::{DEFECT_KINDS, Defect, DefectKind, random_defect};
pub use part::{Part, part};
pub use render::{Lighting, Pose, random_lighting, random_pose, render};

use std::path::Path;

use image::RgbImage;
use rayon::prelude::*;

use crate::demo::DemoData;
use crate::io::IoError;
use crate::io::image::save_png;
use crate::rng::SplitMix64 as Rng;
use render::photo_to_part;

/// Errors of the realistic generator.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The spec asks for something the generator cannot make.
    #[error("realistic demo data: {0}")]
    Spec(String),
    /// The embedded part images could not be decoded (a broken build).
    #[error("realistic demo data: embedded part image {name}: {reason}")]
    Asset {
        /// Which asset.
        name: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// A file could not be written.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// A backlight: the type of a photo is the colour of the light behind the part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backlight {
    /// Type name (sub-folder name).
    pub name: &'static str,
    /// Colour at the centre of the lit disk, 0-255 per channel.
    pub colour: [f32; 3],
}

/// The two backlights: the real photo's pink one, and a blue one.
pub const BACKLIGHTS: [Backlight; 2] = [
    Backlight {
        name: "pink_bg",
        colour: [250.0, 110.0, 88.0],
    },
    Backlight {
        name: "blue_bg",
        colour: [80.0, 135.0, 245.0],
    },
];

/// What to generate.
#[derive(Debug, Clone)]
pub struct RealisticSpec {
    /// Photo width in pixels.
    pub width: u32,
    /// Photo height in pixels.
    pub height: u32,
    /// The types (backlights), one sub-folder each.
    pub types: Vec<Backlight>,
    /// Good training photos per type.
    pub train_per_type: usize,
    /// Good validation photos per type.
    pub good_validate_per_type: usize,
    /// Defective validation photos per type (cycling through the defect kinds).
    pub defective_per_type: usize,
    /// Scale of each defect's change of the pixel values, in (0, 1]: 1 is clear and realistic,
    /// about 0.35 is subtle. The masks do not depend on it.
    pub contrast: f32,
    /// Seed of every random choice.
    pub seed: u64,
    /// JPEG quality of the photos (1-100).
    pub jpeg_quality: u8,
}

impl Default for RealisticSpec {
    fn default() -> Self {
        RealisticSpec {
            width: 480,
            height: 270,
            types: BACKLIGHTS.to_vec(),
            train_per_type: 60,
            good_validate_per_type: 20,
            defective_per_type: 20,
            contrast: 1.0,
            seed: 7,
            jpeg_quality: 92,
        }
    }
}

impl RealisticSpec {
    /// Checks the spec; the error names the bad field.
    pub fn check(&self) -> Result<(), GenerateError> {
        if self.width < 64 || self.height < 36 || self.width > 8192 || self.height > 8192 {
            return Err(GenerateError::Spec(format!(
                "size {}x{} is outside 64x36 .. 8192x8192",
                self.width, self.height
            )));
        }
        if !(self.contrast > 0.0 && self.contrast <= 1.0) {
            return Err(GenerateError::Spec(format!(
                "contrast {} is outside (0, 1]",
                self.contrast
            )));
        }
        if !(1..=100).contains(&self.jpeg_quality) {
            return Err(GenerateError::Spec(format!(
                "JPEG quality {} is outside 1..=100",
                self.jpeg_quality
            )));
        }
        if self.types.is_empty() {
            return Err(GenerateError::Spec("no types".into()));
        }
        Ok(())
    }
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Encodes a photo as JPEG.
fn encode_jpeg(img: &RgbImage, quality: u8, path: &Path) -> Result<Vec<u8>, IoError> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .map_err(|e| IoError::Encode {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(out)
}

/// One photo to make: everything random about it comes from its own seed.
struct Job {
    /// Folder and stem of the photo.
    dir: std::path::PathBuf,
    stem: String,
    /// Where its mask goes (defective photos only).
    mask_dir: Option<std::path::PathBuf>,
    backlight: Backlight,
    defect: Option<DefectKind>,
    seed: u64,
}

/// Everything random about one photo, drawn from its seed.
fn draw_photo(
    part: &Part,
    spec: &RealisticSpec,
    kind: Option<DefectKind>,
    seed: u64,
) -> (Pose, Lighting, Option<Defect>) {
    let mut rng = Rng::new(seed);
    let pose = random_pose(&mut rng, spec.width);
    let light = random_lighting(&mut rng);
    let (_, scale) = photo_to_part(part, spec.width, spec.height, &pose);
    let defect = kind.map(|k| random_defect(&mut rng, k, part, scale));
    (pose, light, defect)
}

/// Generates the realistic data set under `dir`: `train/<type>/train_NNN.jpg` (good),
/// `validate/<type>/good_NNN.jpg` and `<kind>_NNN.jpg`, and `truth/<type>/<stem>_mask.png` for
/// the defective ones. Deterministic for a spec; photos are rendered in parallel.
pub fn generate(dir: &Path, spec: &RealisticSpec) -> Result<DemoData, GenerateError> {
    spec.check()?;
    let part = part().map_err(|e| GenerateError::Spec(e.to_string()))?;
    let data = DemoData {
        train: dir.join("train"),
        validate: dir.join("validate"),
        truth: dir.join("truth"),
    };
    let mut rng = Rng::new(spec.seed);
    let mut jobs = Vec::new();
    for bl in &spec.types {
        for i in 0..spec.train_per_type {
            jobs.push(Job {
                dir: data.train.join(bl.name),
                stem: format!("train_{i:03}"),
                mask_dir: None,
                backlight: *bl,
                defect: None,
                seed: rng.next_u64(),
            });
        }
        for i in 0..spec.good_validate_per_type {
            jobs.push(Job {
                dir: data.validate.join(bl.name),
                stem: format!("good_{i:03}"),
                mask_dir: None,
                backlight: *bl,
                defect: None,
                seed: rng.next_u64(),
            });
        }
        for i in 0..spec.defective_per_type {
            let kind = DEFECT_KINDS[i % DEFECT_KINDS.len()];
            jobs.push(Job {
                dir: data.validate.join(bl.name),
                stem: format!("{}_{i:03}", kind.name()),
                mask_dir: Some(data.truth.join(bl.name)),
                backlight: *bl,
                defect: Some(kind),
                seed: rng.next_u64(),
            });
        }
    }
    jobs.par_iter().try_for_each(|j| {
        let (pose, light, defect) = draw_photo(part, spec, j.defect, j.seed);
        let (img, mask) = render(
            part,
            spec.width,
            spec.height,
            &j.backlight,
            &pose,
            &light,
            defect.as_ref(),
            spec.contrast,
        );
        let path = j.dir.join(format!("{}.jpg", j.stem));
        let bytes = encode_jpeg(&img, spec.jpeg_quality, &path)?;
        crate::io::atomic::write_bytes(&path, &bytes)?;
        if let Some(md) = &j.mask_dir {
            save_png(&mask, &md.join(format!("{}_mask.png", j.stem)))?;
        }
        Ok::<(), GenerateError>(())
    })?;
    Ok(data)
}

#[cfg(test)]
mod tests;
