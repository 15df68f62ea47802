//! Ground truth in `pixal detect`: each image's photo-grid scores beside its mask, and the
//! metrics of a job against them (the mask lookup itself is `crate::detect::truth`).

use serde::Serialize;

use super::outputs::ImageResult;
use crate::commands::UsageError;
use crate::detect::DetectError;
use crate::detect::metrics::{self, ScoredMask};

/// Metrics against ground truth.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Metrics {
    /// Image AUROC (image score = max of the map).
    pub image_auroc: Option<f64>,
    /// Pixel AUROC over all photo pixels.
    pub pixel_auroc: Option<f64>,
    /// AUPRO up to FPR 0.3, normalised.
    pub aupro_0_3: Option<f64>,
    /// Best pixel F1 over thresholds.
    pub pixel_f1_max: Option<f64>,
    /// Best image F1 over thresholds.
    pub image_f1_max: Option<f64>,
    /// Images with a ground-truth mask found (the rest count as good).
    pub masks_found: usize,
    /// Image confusion matrix at the used image threshold [[tn, fp], [fn, tp]].
    pub confusion: [[u64; 2]; 2],
}

/// One image's photo-grid scores and ground truth.
pub struct GroundTruth {
    /// Score per photo pixel.
    pub scores: Vec<f32>,
    /// Mask per photo pixel.
    pub mask: Vec<bool>,
    /// Whether a mask file was found (else the image counts as good).
    pub found: bool,
    /// Photo width.
    pub width: usize,
}

/// The metrics of a job's images against their ground truth.
pub(super) fn compute_metrics(images: &[ImageResult], gts: &[GroundTruth]) -> Metrics {
    let scores: Vec<f64> = images.iter().map(|r| r.score).collect();
    let labels: Vec<bool> = images.iter().map(|r| r.truth.unwrap_or(false)).collect();
    let mut px_scores = Vec::new();
    let mut px_labels = Vec::new();
    for g in gts {
        px_scores.extend(g.scores.iter().map(|&v| f64::from(v)));
        px_labels.extend(g.mask.iter().copied());
    }
    let masks: Vec<ScoredMask<'_>> = gts
        .iter()
        .map(|g| ScoredMask {
            scores: &g.scores,
            mask: &g.mask,
            width: g.width,
        })
        .collect();
    let mut confusion = [[0u64; 2]; 2];
    for r in images {
        let truth = usize::from(r.truth.unwrap_or(false));
        let pred = usize::from(r.verdict.is_anomalous());
        confusion[truth][pred] += 1;
    }
    // Both pixel curves from one sort of the (millions of) photo pixels.
    let (px_roc, px_pr) = metrics::curves(&px_scores, &px_labels);
    Metrics {
        image_auroc: metrics::auroc(&scores, &labels),
        pixel_auroc: px_roc.as_deref().map(metrics::area_under_roc),
        aupro_0_3: metrics::aupro(&masks, 0.3),
        pixel_f1_max: px_pr.as_deref().and_then(metrics::best_f1).map(|x| x.0),
        image_f1_max: metrics::f1_max(&scores, &labels).map(|x| x.0),
        masks_found: gts.iter().filter(|g| g.found).count(),
        confusion,
    }
}

/// A ground-truth error as the command reports it: a missing folder or one that matches no
/// photo is a usage error (exit code 2), like a bad argument.
pub(super) fn usage(e: DetectError) -> anyhow::Error {
    if e.is_usage() {
        UsageError(e.to_string()).into()
    } else {
        e.into()
    }
}
