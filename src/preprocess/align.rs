//! Aligning a photo to a reference image: ORB keypoints ([`super::keypoints`]), brute-force
//! k=2 Hamming matching with Lowe's ratio test, a RANSAC homography ([`super::homography`]),
//! optional sub-pixel refinement by an intensity method, a bilinear warp into the reference
//! frame, and the quality scores ([`super::ssim`]).
//!
//! The refinement (`align/refine.rs`, where its method is described) is a direct intensity
//! method; the refined homography is kept only when its warp scores a higher SSIM than the
//! keypoint one. The warp is in `align/warp.rs`, the validation's reference set in
//! `align/fallback.rs`.
//!
//! Everything here is pure: images and parameters in, an [`Aligned`] result or an
//! [`AlignError`] out. [`align_pair`] aligns to one reference; [`align_with_fallback`] tries a
//! list of references in order (the validation case).

mod fallback;
mod refine;
mod warp;

use image::{GrayImage, RgbaImage};
use rayon::prelude::*;

use crate::simd::{self, Popcnt};

use super::homography::{self, Homography, HomographyError, Point, RansacParams};
use super::keypoints::{self, Descriptor, Features, OrbParams};
use super::ssim::{GateImage, gray_of_rgba, photometric_mse, ssim};

pub use fallback::{AlignFailure, Chosen, ReferenceSet, align_with_fallback};
use refine::{Template, refine_intensity};
pub use warp::{warp_gray, warp_rgba};

/// Settings of an alignment (the `preprocessing.alignment` keys, plus what they imply).
#[derive(Debug, Clone, PartialEq)]
pub struct AlignParams {
    /// Lowe ratio: a match is good when its distance is below `knn_ratio` times the second best.
    pub knn_ratio: f64,
    /// More good matches than this are needed.
    pub number_of_points: usize,
    /// RANSAC reprojection threshold in pixels.
    pub ransac_threshold: f64,
    /// Minimum SSIM of an accepted alignment (`MIN_SCORE_THRESHOLD`).
    pub min_score: f64,
    /// Maximum grayscale MSE of an accepted alignment (`MAX_MSE_THRESHOLD`), measured after a
    /// gain and offset fit so that it measures alignment, not lighting.
    pub max_mse: f64,
    /// Minimum RANSAC inliers (`MIN_GOOD_MATCHES`).
    pub min_good_matches: usize,
    /// Keypoint detector settings.
    pub orb: OrbParams,
    /// Try the sub-pixel intensity refinement (kept only when it scores better).
    pub refine: bool,
    /// Seed of RANSAC's sampling.
    pub seed: u64,
    /// A pixel is foreground (used by the refinement) when one of R, G, B exceeds this and its
    /// alpha is at least 128.
    pub bg_threshold: u8,
}

impl Default for AlignParams {
    fn default() -> Self {
        AlignParams {
            knn_ratio: 0.8,
            number_of_points: 5,
            ransac_threshold: 7.0,
            min_score: 0.5,
            max_mse: 10.0,
            min_good_matches: 20,
            orb: OrbParams::default(),
            refine: true,
            seed: 101,
            bg_threshold: 15,
        }
    }
}

/// The image area `orb.n_features` is meant for: 1920x1080.
pub const REFERENCE_AREA: f64 = 1920.0 * 1080.0;

impl AlignParams {
    /// The detector settings for a `width` x `height` image: `orb.n_features` is the count for
    /// a 1920x1080 image and scales with the area (the same density of keypoints), never above
    /// `orb.n_features` and never below 1000 (or `orb.n_features` if that is smaller). Matching
    /// costs the square of the count, so a half-size photo is aligned 4x faster or more.
    pub fn orb_for(&self, width: u32, height: u32) -> OrbParams {
        let n = self.orb.n_features;
        let scaled = (n as f64 * f64::from(width) * f64::from(height) / REFERENCE_AREA).round();
        OrbParams {
            n_features: (scaled as usize).clamp(n.min(1000), n),
            ..self.orb.clone()
        }
    }
}

/// Why an image could not be aligned to a reference.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlignError {
    /// Too little texture to find keypoints.
    #[error("too few keypoints ({photo} in the image, {reference} in the reference)")]
    TooFewKeypoints {
        /// Keypoints in the photo.
        photo: usize,
        /// Keypoints in the reference.
        reference: usize,
    },
    /// Not enough matches pass the ratio test.
    #[error(
        "{found} good matches after the ratio test (knn_ratio {ratio}); more than number_of_points = {needed} are needed"
    )]
    TooFewMatches {
        /// Good matches.
        found: usize,
        /// `number_of_points`.
        needed: usize,
        /// The ratio used.
        ratio: f64,
    },
    /// RANSAC found fewer inliers than `MIN_GOOD_MATCHES`.
    #[error(
        "{found} RANSAC inliers (ransac_threshold {threshold} px); MIN_GOOD_MATCHES = {needed} are needed"
    )]
    TooFewInliers {
        /// Inliers of the best model.
        found: usize,
        /// `MIN_GOOD_MATCHES`.
        needed: usize,
        /// The threshold used.
        threshold: f64,
    },
    /// The homography could not be estimated, or it folds the image.
    #[error("no usable homography: {0}")]
    Homography(#[from] HomographyError),
    /// The alignment's SSIM is below `MIN_SCORE_THRESHOLD`.
    #[error("SSIM {ssim:.4} is below MIN_SCORE_THRESHOLD {min}")]
    LowScore {
        /// The SSIM reached.
        ssim: f64,
        /// The threshold.
        min: f64,
    },
    /// The alignment's MSE is above `MAX_MSE_THRESHOLD`.
    #[error(
        "MSE {mse:.3} (after fitting gain and offset to the reference) is above MAX_MSE_THRESHOLD {max}: the part's texture does not line up"
    )]
    HighMse {
        /// The MSE reached.
        mse: f64,
        /// The threshold.
        max: f64,
    },
    /// A reference could not be prepared (e.g. its file could not be read).
    #[error("reference unavailable: {0}")]
    Reference(String),
}

/// One good match: `query` indexes the photo's keypoints, `train` the reference's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// Keypoint index in the photo.
    pub query: usize,
    /// Keypoint index in the reference.
    pub train: usize,
    /// Hamming distance of the descriptors.
    pub distance: u32,
}

/// Brute-force k=2 Hamming matching of every `query` descriptor against all `train`
/// descriptors, keeping the matches whose best distance is below `ratio` times the second best
/// (Lowe's test). Needs at least two `train` descriptors; the result is in `query` order.
pub fn match_knn(query: &[Descriptor], train: &[Descriptor], ratio: f64) -> Vec<Match> {
    if train.len() < 2 {
        return Vec::new();
    }
    // Matching is 25 million distances per pair; `popcnt` counts a word's bits in one
    // instruction where baseline x86-64 needs a dozen.
    let popcnt = Popcnt::detect();
    query
        .par_iter()
        .enumerate()
        .with_min_len(64)
        .filter_map(|(qi, q)| {
            let (d1, d2, i1) = simd::dispatch!(popcnt, best_two(q, train));
            (f64::from(d1) < ratio * f64::from(d2)).then_some(Match {
                query: qi,
                train: i1,
                distance: d1,
            })
        })
        .collect()
}

/// The two smallest distances from `q` to `train` and the index of the smallest (the first
/// one on ties). Distances are computed 8 at a time and the running best two are touched only
/// when a block holds a distance below the second best: most blocks do not, and the
/// independent distances of a block keep the processor busy instead of waiting on the
/// comparisons of the previous one.
#[inline(always)]
fn best_two(q: &Descriptor, train: &[Descriptor]) -> (u32, u32, usize) {
    let (mut d1, mut d2, mut i1) = (u32::MAX, u32::MAX, 0usize);
    let mut update = |d: u32, ti: usize, d1: &mut u32, d2: &mut u32| {
        if d < *d2 {
            if d < *d1 {
                *d2 = *d1;
                *d1 = d;
                i1 = ti;
            } else {
                *d2 = d;
            }
        }
    };
    let blocks = train.chunks_exact(8);
    let rest = blocks.remainder();
    let rest_start = train.len() - rest.len();
    for (b, block) in blocks.enumerate() {
        let d: [u32; 8] = std::array::from_fn(|k| keypoints::hamming(q, &block[k]));
        let low = d[0]
            .min(d[1])
            .min(d[2].min(d[3]))
            .min(d[4].min(d[5]).min(d[6].min(d[7])));
        if low < d2 {
            for (k, &dk) in d.iter().enumerate() {
                update(dk, b * 8 + k, &mut d1, &mut d2);
            }
        }
    }
    for (k, t) in rest.iter().enumerate() {
        update(keypoints::hamming(q, t), rest_start + k, &mut d1, &mut d2);
    }
    (d1, d2, i1)
}

/// A reference image prepared for alignment: its gray image, keypoints and descriptors, and
/// (with refinement on) the samples of the intensity refinement.
#[derive(Debug, Clone)]
pub struct Reference {
    width: u32,
    height: u32,
    gray: GrayImage,
    gate: GateImage,
    features: Features,
    template: Option<Template>,
}

impl Reference {
    /// Prepares `img` (RGBA; alpha marks the background for the refinement) with `params`.
    pub fn new(img: &RgbaImage, params: &AlignParams) -> Reference {
        let gray = gray_of_rgba(img);
        let features =
            keypoints::detect_and_compute(&gray, &params.orb_for(img.width(), img.height()));
        let template = if params.refine {
            Template::new(img, &keypoints::gaussian_blur_7(&gray), params.bg_threshold)
        } else {
            None
        };
        Reference {
            width: img.width(),
            height: img.height(),
            gray,
            gate: GateImage::new(img),
            features,
            template,
        }
    }

    /// Width and height of the reference frame.
    pub fn dimensions(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The reference's gray image.
    pub fn gray(&self) -> &GrayImage {
        &self.gray
    }

    /// Its keypoints and descriptors.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// Number of samples the intensity refinement uses (0 when it is off or impossible).
    pub fn refinement_samples(&self) -> usize {
        self.template.as_ref().map_or(0, |t| t.sample_count())
    }
}

/// An image aligned to a reference.
#[derive(Debug, Clone)]
pub struct Aligned {
    /// The image warped into the reference frame (reference size; black and transparent where
    /// the photo does not reach).
    pub image: RgbaImage,
    /// The homography from photo pixels to reference pixels.
    pub homography: Homography,
    /// Keypoints found in the photo.
    pub keypoints: usize,
    /// Matches that passed the ratio test.
    pub good_matches: usize,
    /// RANSAC inliers among them.
    pub inliers: usize,
    /// `inliers / good_matches`.
    pub inlier_ratio: f64,
    /// Root-mean-square reprojection error of the inliers under the keypoint homography (px).
    pub rms: f64,
    /// SSIM of the aligned image against the reference (gray, 3x3 window).
    pub ssim: f64,
    /// Gray MSE of the aligned image against the reference after fitting it to the reference
    /// with a gain and an offset, over the pixels both show ([`super::ssim::photometric_mse`]).
    pub mse: f64,
    /// True when the intensity refinement was kept (it scored a higher SSIM).
    pub refined: bool,
    /// The (up to) 10 inlier matches with the smallest descriptor distance, as
    /// (photo point, reference point), for drawing.
    pub best_matches: Vec<(Point, Point)>,
}

impl Aligned {
    /// Checks the quality gates: SSIM at least `min_score`, MSE at most `max_mse`.
    pub fn check_gates(&self, params: &AlignParams) -> Result<(), AlignError> {
        if self.ssim.is_nan() || self.ssim < params.min_score {
            return Err(AlignError::LowScore {
                ssim: self.ssim,
                min: params.min_score,
            });
        }
        if self.mse.is_nan() || self.mse > params.max_mse {
            return Err(AlignError::HighMse {
                mse: self.mse,
                max: params.max_mse,
            });
        }
        Ok(())
    }
}

/// True when `h` (photo -> reference) is usable: finite, and the reference frame's corners map
/// back to finite points in front of the camera (no fold through infinity).
fn usable(h: &Homography, reference: (u32, u32)) -> bool {
    let Some(inv) = h.try_inverse() else {
        return false;
    };
    let (w, hh) = (f64::from(reference.0), f64::from(reference.1));
    h.iter().all(|v| v.is_finite())
        && [[0.0, 0.0], [w, 0.0], [w, hh], [0.0, hh]].iter().all(|c| {
            let d = inv[(2, 0)] * c[0] + inv[(2, 1)] * c[1] + inv[(2, 2)];
            d > 1e-9
        })
}

/// Aligns `photo` to `reference`: keypoints, matching, RANSAC, warp, and — with
/// `params.refine` — the intensity refinement, keeping whichever warp has the higher SSIM.
///
/// The quality gates are not applied here (see [`Aligned::check_gates`]); the errors are the
/// cases where no alignment exists at all: too few keypoints, matches or inliers, or a
/// degenerate homography.
pub fn align_pair(
    photo: &RgbaImage,
    reference: &Reference,
    params: &AlignParams,
) -> Result<Aligned, AlignError> {
    let gray = gray_of_rgba(photo);
    let feats =
        keypoints::detect_and_compute(&gray, &params.orb_for(photo.width(), photo.height()));
    let rf = &reference.features;
    if feats.len() < 4 || rf.len() < 4 {
        return Err(AlignError::TooFewKeypoints {
            photo: feats.len(),
            reference: rf.len(),
        });
    }
    let matches = match_knn(&feats.descriptors, &rf.descriptors, params.knn_ratio);
    if matches.len() <= params.number_of_points || matches.len() < 4 {
        return Err(AlignError::TooFewMatches {
            found: matches.len(),
            needed: params.number_of_points.max(3),
            ratio: params.knn_ratio,
        });
    }
    let mut src = Vec::with_capacity(matches.len());
    let mut dst = Vec::with_capacity(matches.len());
    let mut wts = Vec::with_capacity(matches.len());
    for m in &matches {
        let a = feats.keypoints[m.query];
        let b = rf.keypoints[m.train];
        src.push([f64::from(a.x), f64::from(a.y)]);
        dst.push([f64::from(b.x), f64::from(b.y)]);
        // A keypoint from a coarse level is only known to about its level's pixel size.
        wts.push(2.0 / (f64::from(a.scale).powi(2) + f64::from(b.scale).powi(2)));
    }
    let ransac = RansacParams {
        threshold: params.ransac_threshold,
        seed: params.seed,
        ..RansacParams::default()
    };
    let est = homography::ransac(&src, &dst, Some(&wts), &ransac, params.min_good_matches)
        .map_err(|e| match e {
            HomographyError::NoConsensus { best, needed } => AlignError::TooFewInliers {
                found: best,
                needed,
                threshold: params.ransac_threshold,
            },
            other => AlignError::Homography(other),
        })?;
    let dims = reference.dimensions();
    if !usable(&est.h, dims) {
        return Err(AlignError::Homography(HomographyError::Degenerate));
    }
    let mut candidates = vec![(est.h, false)];
    if params.refine
        && let Some(tpl) = &reference.template
        // The photo smoothed like the reference's template.
        && let Some(h) = refine_intensity(tpl, &keypoints::gaussian_blur_7(&gray), &est.h)
        && usable(&h, dims)
    {
        candidates.push((h, true));
    }
    // Score each candidate on the gray image (a quarter of the warping work), then warp the
    // colour image once with the winner and score that exactly as the gates define it.
    let mut best: Option<(Homography, bool, f64)> = None;
    if candidates.len() > 1 {
        for (h, refined) in candidates {
            let Some(inv) = h.try_inverse() else {
                continue;
            };
            let warped = warp_gray(&gray, &inv, dims.0, dims.1);
            let Some(s) = ssim(&warped, &reference.gray) else {
                continue;
            };
            if best.as_ref().is_none_or(|b| s > b.2) {
                best = Some((h, refined, s));
            }
        }
    } else {
        best = candidates.pop().map(|(h, r)| (h, r, f64::NAN));
    }
    let Some((h, refined, _)) = best else {
        return Err(AlignError::Homography(HomographyError::Degenerate));
    };
    let inv = h
        .try_inverse()
        .ok_or(AlignError::Homography(HomographyError::Degenerate))?;
    let image = warp_rgba(photo, &inv, dims.0, dims.1);
    let g = gray_of_rgba(&image);
    let (Some(s), Some(e)) = (
        ssim(&g, &reference.gray),
        photometric_mse(&GateImage::new(&image), &reference.gate),
    ) else {
        return Err(AlignError::Homography(HomographyError::Degenerate));
    };
    let mut inlier_matches: Vec<&Match> = matches
        .iter()
        .zip(&est.inliers)
        .filter(|(_, ok)| **ok)
        .map(|(m, _)| m)
        .collect();
    inlier_matches.sort_by_key(|m| (m.distance, m.query));
    let best_matches = inlier_matches
        .iter()
        .take(10)
        .map(|m| (src_of(&feats, m.query), src_of(rf, m.train)))
        .collect();
    Ok(Aligned {
        image,
        homography: h,
        keypoints: feats.len(),
        good_matches: matches.len(),
        inliers: est.n_inliers,
        inlier_ratio: est.n_inliers as f64 / matches.len() as f64,
        rms: est.rms,
        ssim: s,
        mse: e,
        refined,
        best_matches,
    })
}

fn src_of(f: &Features, i: usize) -> Point {
    let k = f.keypoints[i];
    [f64::from(k.x), f64::from(k.y)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Matrix3;

    #[test]
    fn knn_ratio_test_keeps_distinct_matches() {
        let a: Descriptor = [0, 0, 0, 0];
        let b: Descriptor = [u64::MAX, 0, 0, 0];
        let c: Descriptor = [0, u64::MAX, u64::MAX, 0];
        let near_a: Descriptor = [0b111, 0, 0, 0];
        let m = match_knn(&[near_a, b], &[a, b, c], 0.8);
        assert_eq!(
            m,
            vec![
                Match {
                    query: 0,
                    train: 0,
                    distance: 3
                },
                Match {
                    query: 1,
                    train: 1,
                    distance: 0
                }
            ]
        );
        // Two equally good candidates: ambiguous, dropped.
        assert!(match_knn(&[a], &[b, b], 0.8).is_empty());
        assert!(match_knn(&[a], &[a], 0.8).is_empty());
    }

    #[test]
    fn keypoint_count_follows_the_area() {
        let p = AlignParams::default();
        assert_eq!(p.orb_for(1920, 1080).n_features, 4000);
        assert_eq!(p.orb_for(3840, 2160).n_features, 4000);
        assert_eq!(p.orb_for(1280, 720).n_features, 1778);
        assert_eq!(p.orb_for(960, 540).n_features, 1000);
        assert_eq!(p.orb_for(100, 100).n_features, 1000);
        let few = AlignParams {
            orb: OrbParams {
                n_features: 300,
                ..OrbParams::default()
            },
            ..AlignParams::default()
        };
        assert_eq!(few.orb_for(640, 480).n_features, 300);
    }

    #[test]
    fn gates_reject_low_ssim_and_high_mse() {
        let a = Aligned {
            image: RgbaImage::new(1, 1),
            homography: Matrix3::identity(),
            keypoints: 0,
            good_matches: 0,
            inliers: 0,
            inlier_ratio: 0.0,
            rms: 0.0,
            ssim: 0.6,
            mse: 12.0,
            refined: false,
            best_matches: vec![],
        };
        let p = AlignParams::default();
        assert!(matches!(a.check_gates(&p), Err(AlignError::HighMse { .. })));
        let lo = Aligned {
            ssim: 0.4,
            ..a.clone()
        };
        assert!(matches!(
            lo.check_gates(&p),
            Err(AlignError::LowScore { .. })
        ));
        let nan = Aligned {
            ssim: f64::NAN,
            ..a.clone()
        };
        assert!(nan.check_gates(&p).is_err());
        let ok = Aligned { mse: 3.0, ..a };
        assert!(ok.check_gates(&p).is_ok());
    }

    #[test]
    fn a_flat_photo_is_an_error_not_a_panic() {
        let flat = RgbaImage::from_pixel(200, 150, image::Rgba([80, 80, 80, 255]));
        let r = Reference::new(&flat, &AlignParams::default());
        assert!(matches!(
            align_pair(&flat, &r, &AlignParams::default()),
            Err(AlignError::TooFewKeypoints { .. })
        ));
        let mut set = ReferenceSet::new();
        set.push_loader("missing", || Err("no such file".to_string()));
        set.push_image("flat", flat.clone());
        let e = align_with_fallback(&flat, &set, &AlignParams::default()).unwrap_err();
        assert_eq!(e.attempts.len(), 2);
        assert!(e.best.is_none());
        assert!(e.to_string().contains("no such file"), "{e}");
    }
}
