//! Ground truth: where the defect mask of a photo lies in a ground-truth folder, and the mask
//! itself on the photo's grid. This reads directory listings and mask files; it decides
//! nothing (the verdicts are in `decide`, the metrics in `metrics`).
//!
//! The layouts looked at, in this order (`_defect.png` works wherever `_mask.png` does, and
//! within one folder `_mask.png` is tried first):
//! 1. `<dir>/<stem>_mask.png`: every mask in one folder;
//! 2. `<dir>/<type>/<stem>_mask.png`: one folder per image type (pixal's demo);
//! 3. `<dir>/<defect>/<stem>_mask.png`, where `<defect>` is the name of the photo's folder: the
//!    MVTec AD / anomalib layout (`test/<defect>/<stem>.png` with
//!    `ground_truth/<defect>/<stem>_mask.png`);
//! 4. otherwise a `<stem>_mask.png` anywhere below `<dir>`, when exactly one has that stem and
//!    the photo is not in a folder named `good` (MVTec's good test photos share their names
//!    with the defect folders' photos).
//!
//! A photo with no mask is a good image.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::{DetectError, NoMaskMatch};

/// The file-name endings of ground-truth masks: pixal's and anomalib's `_mask.png`, and
/// `_defect.png`.
pub const MASK_SUFFIXES: [&str; 2] = ["_mask.png", "_defect.png"];

/// The file stem of a photo path as the metadata gives it ("" when it has none).
fn file_stem(p: &str) -> String {
    Path::new(p)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Finds ground-truth masks: `<dir>/<stem>_mask.png`, `<dir>/<type>/<stem>_mask.png`, or the
/// MVTec / anomalib layout `<dir>/<defect>/<stem>_mask.png` where `<defect>` is the photo's
/// folder name; otherwise a unique `<stem>_mask.png` anywhere below `<dir>`. `_defect.png`
/// works wherever `_mask.png` does.
#[derive(Debug, Clone)]
pub struct MaskIndex {
    dir: PathBuf,
    by_stem: HashMap<String, Vec<PathBuf>>,
}

impl MaskIndex {
    /// Indexes every `*_mask.png` and `*_defect.png` below `dir`; a folder that does not exist
    /// is an error.
    pub fn new(dir: &Path) -> Result<MaskIndex, DetectError> {
        if !dir.is_dir() {
            return Err(DetectError::NoTruthFolder {
                dir: dir.to_path_buf(),
            });
        }
        let mut by_stem: HashMap<String, Vec<PathBuf>> = HashMap::new();
        for p in crate::io::files_under(dir) {
            if let Some(name) = p.file_name().and_then(|n| n.to_str())
                && let Some(stem) = MASK_SUFFIXES.iter().find_map(|s| name.strip_suffix(s))
            {
                by_stem.entry(stem.to_string()).or_default().push(p.clone());
            }
        }
        for v in by_stem.values_mut() {
            v.sort();
        }
        Ok(MaskIndex {
            dir: dir.to_path_buf(),
            by_stem,
        })
    }

    /// The mask file of `photo` (of image type `type_name`), if the folder holds one.
    pub fn find(&self, photo: &str, type_name: &str) -> Option<PathBuf> {
        let p = Path::new(photo);
        let stem = file_stem(photo);
        let mut folders = vec![self.dir.clone(), self.dir.join(type_name)];
        if let Some(parent) = p.parent().and_then(|d| d.file_name()) {
            folders.push(self.dir.join(parent));
        }
        let stem_ref = &stem;
        let mut candidates = folders.iter().flat_map(|d| {
            MASK_SUFFIXES
                .iter()
                .map(move |s| d.join(format!("{stem_ref}{s}")))
        });
        if let Some(c) = candidates.find(|c| c.is_file()) {
            return Some(c);
        }
        // A photo in a `good` folder (MVTec AD / anomalib: `test/good/000.png`) has no mask by
        // that convention; a unique `000_mask.png` below `<dir>` belongs to a defect folder's
        // photo of the same name, never to it.
        let in_good_folder = p
            .parent()
            .and_then(|d| d.file_name())
            .is_some_and(|n| n.eq_ignore_ascii_case("good"));
        match self.by_stem.get(&stem) {
            Some(v) if v.len() == 1 && !in_good_folder => Some(v[0].clone()),
            _ => None,
        }
    }

    /// Refuses a ground-truth folder in which no photo of `photos` (photo, type) finds its
    /// mask: metrics computed as if every photo were good would be silently wrong. The error
    /// names the file names that were looked for.
    pub fn check_any_match(&self, photos: &[(&str, &str)]) -> Result<(), DetectError> {
        let Some(&(photo, type_name)) = photos.first() else {
            return Ok(());
        };
        if photos.iter().any(|&(p, t)| self.find(p, t).is_some()) {
            return Ok(());
        }
        let mut examples: Vec<String> = self
            .by_stem
            .values()
            .flatten()
            .take(3)
            .map(|p| p.display().to_string())
            .collect();
        examples.sort();
        Err(DetectError::NoMaskMatches(Box::new(NoMaskMatch {
            dir: self.dir.clone(),
            photos: photos.len(),
            photo: photo.to_string(),
            type_name: type_name.to_string(),
            stem: file_stem(photo),
            examples,
        })))
    }

    /// The mask of a photo as booleans on the photo grid (`None` when there is no mask: a good
    /// image). A mask of another size is an error naming it.
    pub fn mask_for(
        &self,
        photo: &str,
        type_name: &str,
        size: (u32, u32),
    ) -> Result<Option<Vec<bool>>, DetectError> {
        let Some(path) = self.find(photo, type_name) else {
            return Ok(None);
        };
        let img = crate::io::image::load_rgb8(&path)?;
        if img.dimensions() != size {
            return Err(DetectError::MaskSize {
                path,
                mask: img.dimensions(),
                photo: size,
            });
        }
        Ok(Some(img.pixels().map(|p| p.0[0] > 127).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ground-truth folder holding `files` (paths relative to it; mask files get a 2x1
    /// mask with one defect pixel).
    fn folder(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            image::GrayImage::from_raw(2, 1, vec![255, 0])
                .unwrap()
                .save(&p)
                .unwrap();
        }
        dir
    }

    #[test]
    fn every_supported_layout_finds_its_mask() {
        // (mask files in the folder, photo, type) -> the mask found (relative), or None
        let cases: &[(&[&str], &str, &str, Option<&str>)] = &[
            // 1. all masks in the folder itself.
            (&["a_mask.png"], "/photos/a.png", "t", Some("a_mask.png")),
            (
                &["a_defect.png"],
                "/photos/a.jpg",
                "t",
                Some("a_defect.png"),
            ),
            // 2. one folder per type.
            (
                &["t/a_mask.png"],
                "/photos/a.png",
                "t",
                Some("t/a_mask.png"),
            ),
            (
                &["t/a_defect.png"],
                "/photos/a.png",
                "t",
                Some("t/a_defect.png"),
            ),
            // 3. MVTec: test/<defect>/<stem>.png with ground_truth/<defect>/<stem>_mask.png;
            // the stems repeat across defect folders, the photo's folder picks one.
            (
                &["crack/000_mask.png", "scratch/000_mask.png"],
                "/mvtec/bottle/test/crack/000.png",
                "bottle",
                Some("crack/000_mask.png"),
            ),
            (
                &["crack/000_mask.png", "scratch/000_mask.png"],
                "/mvtec/bottle/test/scratch/000.png",
                "bottle",
                Some("scratch/000_mask.png"),
            ),
            // 4. a unique stem anywhere below the folder.
            (
                &["deep/er/a_mask.png"],
                "/photos/a.png",
                "t",
                Some("deep/er/a_mask.png"),
            ),
            // Order: the folder itself before the type folder before the photo's folder, and
            // `_mask.png` before `_defect.png` in one folder.
            (
                &["a_mask.png", "t/a_mask.png", "photos/a_mask.png"],
                "/photos/a.png",
                "t",
                Some("a_mask.png"),
            ),
            (
                &["t/a_mask.png", "photos/a_mask.png"],
                "/photos/a.png",
                "t",
                Some("t/a_mask.png"),
            ),
            (
                &["a_defect.png", "a_mask.png"],
                "/photos/a.png",
                "t",
                Some("a_mask.png"),
            ),
            (
                &["a_defect.png", "t/a_mask.png"],
                "/photos/a.png",
                "t",
                Some("a_defect.png"),
            ),
            // No mask: a good image.
            (&[], "/photos/a.png", "t", None),
            (&["b_mask.png"], "/photos/a.png", "t", None),
            (&["a.png", "a_mask.jpg"], "/photos/a.png", "t", None),
            // MVTec `good` photos: no `good` folder, and the stem is in several defect folders.
            (
                &["crack/000_mask.png", "scratch/000_mask.png"],
                "/mvtec/bottle/test/good/000.png",
                "bottle",
                None,
            ),
            // ... and when only one defect folder holds that stem.
            (
                &["scratch/000_mask.png"],
                "/mvtec/bottle/test/good/000.png",
                "bottle",
                None,
            ),
            // The same unique stem for a photo outside a `good` folder is its mask.
            (
                &["scratch/000_mask.png"],
                "/elsewhere/000.png",
                "bottle",
                Some("scratch/000_mask.png"),
            ),
            // A stem found in two unrelated folders is ambiguous, not guessed.
            (
                &["x/a_mask.png", "y/a_mask.png"],
                "/photos/a.png",
                "t",
                None,
            ),
        ];
        for (i, &(files, photo, ty, want)) in cases.iter().enumerate() {
            let dir = folder(files);
            let idx = MaskIndex::new(dir.path()).unwrap();
            let got = idx.find(photo, ty);
            assert_eq!(
                got.as_deref(),
                want.map(|w| dir.path().join(w)).as_deref(),
                "case {i}: {files:?} {photo} {ty}"
            );
            // A folder where nothing matches is refused; one match is enough.
            let check = idx.check_any_match(&[("/elsewhere/zzz.png", "t"), (photo, ty)]);
            assert_eq!(check.is_ok(), want.is_some(), "case {i}");
        }
    }

    #[test]
    fn masks_are_read_on_the_photo_grid() {
        let dir = folder(&["a_mask.png"]);
        let idx = MaskIndex::new(dir.path()).unwrap();
        assert_eq!(
            idx.mask_for("/p/a.png", "t", (2, 1)).unwrap(),
            Some(vec![true, false])
        );
        assert_eq!(idx.mask_for("/p/b.png", "t", (2, 1)).unwrap(), None);
        let e = idx.mask_for("/p/a.png", "t", (4, 4)).unwrap_err();
        assert!(
            matches!(
                e,
                DetectError::MaskSize {
                    mask: (2, 1),
                    photo: (4, 4),
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string().ends_with("mask is 2x1 but the photo is 4x4"),
            "{e}"
        );
        // A file named like a mask that is not an image.
        std::fs::write(dir.path().join("c_mask.png"), b"not a png").unwrap();
        let idx = MaskIndex::new(dir.path()).unwrap();
        assert!(matches!(
            idx.mask_for("/p/c.png", "t", (2, 1)),
            Err(DetectError::MaskUnreadable(_))
        ));
    }

    #[test]
    fn a_missing_or_unmatched_folder_says_what_was_looked_for() {
        let dir = tempfile::tempdir().unwrap();
        let e = MaskIndex::new(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(e, DetectError::NoTruthFolder { .. }) && e.is_usage());
        let idx = MaskIndex::new(dir.path()).unwrap();
        // No photos: nothing to check.
        assert!(idx.check_any_match(&[]).is_ok());
        let e = idx.check_any_match(&[("/p/img_20.png", "t")]).unwrap_err();
        let msg = e.to_string();
        assert!(e.is_usage());
        assert!(
            msg.contains("img_20_mask.png") && msg.contains("t/img_20_mask.png"),
            "{msg}"
        );
        assert!(
            msg.ends_with("holds no *_mask.png or *_defect.png at all"),
            "{msg}"
        );
        let dir = folder(&["other_mask.png"]);
        let idx = MaskIndex::new(dir.path()).unwrap();
        let msg = idx
            .check_any_match(&[("/p/img_20.png", "t")])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("it holds e.g. ") && msg.contains("other_mask.png"),
            "{msg}"
        );
    }
}
