//! The part mask and the photometric reference of a make_input build, learnt from the training
//! images or taken from the training build at validation, and every row fitted to it.

use ndarray::Array2;
use rayon::prelude::*;

use super::{Scanned, Target};
use crate::commands::UsageError;
use crate::config::Config;
use crate::io::npz::PartReference;
use crate::preprocess::crop::CropBox;
use crate::preprocess::photometric;

/// The part mask and photometric reference of a build, with every row fitted to the reference:
/// learnt from the images themselves in training, the training ones at validation.
///
/// Training: the mask is the majority foreground of the images; the reference is the per-pixel
/// median of the rows, taken again after one round of fitting (so one photo's lighting does
/// not set it). One-hot files mix types whose medians mean nothing together: they get the
/// mask but no normalisation.
pub(super) fn part_reference(
    cfg: &Config,
    target: &Target,
    pooled: (usize, usize),
    fractions: &[Vec<f32>],
    kept: &mut [(&Scanned, Option<CropBox>, Array2<f32>)],
) -> anyhow::Result<PartReference> {
    let pp = &cfg.params.preprocessing.preprocessor;
    let p = pooled.0 * pooled.1;
    let part = match &target.part {
        Some(part) => {
            if part.mask.len() != p {
                return Err(UsageError(format!(
                    "make_input {}: the training part mask has {} pooled pixels but these images give {}x{}; preprocess with the training settings",
                    target.label,
                    part.mask.len(),
                    pooled.0,
                    pooled.1
                ))
                .into());
            }
            part.clone()
        }
        None => {
            let mask = photometric::part_mask(fractions);
            let reference = (pp.photometric_normalization && target.ty.is_some()).then(|| {
                let fit_mask = photometric::erode(mask.as_slice().unwrap_or(&[]), pooled, 1);
                let raw: Vec<Array2<f32>> = kept.iter().map(|k| k.2.clone()).collect();
                let first = photometric::median_reference(
                    &raw.iter().map(|r| r.view()).collect::<Vec<_>>(),
                );
                let fitted: Vec<Array2<f32>> = raw
                    .iter()
                    .map(|r| {
                        let mut r = r.clone();
                        photometric::fit_to_reference(&mut r, first.view(), &fit_mask);
                        r
                    })
                    .collect();
                photometric::median_reference(&fitted.iter().map(|r| r.view()).collect::<Vec<_>>())
            });
            PartReference { mask, reference }
        }
    };
    // The reference decides, not today's configuration: validation rows must be normalised
    // exactly as the training rows were.
    if let Some(reference) = &part.reference {
        let fit_mask = photometric::erode(part.mask.as_slice().unwrap_or(&[]), pooled, 1);
        if fit_mask.iter().all(|&m| m < 0.5) {
            log::warn!(
                "make_input {}: the part mask is empty; photometric normalisation skipped",
                target.label
            );
        } else {
            kept.par_iter_mut().for_each(|k| {
                let fit = photometric::fit_to_reference(&mut k.2, reference.view(), &fit_mask);
                log::debug!(
                    "{}: photometric fit (gain, offset) {fit:?}",
                    k.0.path.display()
                );
            });
        }
    }
    Ok(part)
}
