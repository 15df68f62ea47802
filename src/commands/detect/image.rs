//! The per-image pass of `pixal detect`: checks the row, hands the image to the core
//! (`crate::detect::decide`), and writes what the core decided: the anomaly map on the photo
//! (`.npy` and 16-bit PNG), the overlay figure, and the photo-grid scores with the ground truth
//! for the metrics.

use std::path::Path;

use anyhow::anyhow;
use ndarray::{Array2, Array3, Axis};

use super::DetectJob;
use super::jobs;
use super::outputs::{self, ImageResult};
use super::truth::GroundTruth;
use crate::detect::judge::{self, Detector, ImageData, Judgement};
use crate::detect::truth::MaskIndex;
use crate::io::metadata::RowSource;
use crate::io::npz::InputData;
use crate::report::overlay::{OverlayFigure, gray_from_map, overlay_file_name, save_overlay};

/// What the per-image pass hands back: the result, the photo-grid scores with the ground truth
/// (when given), and the pooled map the verdict was decided on.
pub(super) type PerImage = (ImageResult, Option<GroundTruth>, Vec<f32>);

/// What every image of one job shares.
pub(super) struct ImagePass<'a> {
    /// The job (its npz and metadata name the rows in errors).
    pub job: &'a DetectJob,
    /// The preprocessed images (N, P, C).
    pub input: &'a InputData,
    /// The model's residuals (N, P, C).
    pub residuals: &'a Array3<f32>,
    /// The raw error per pooled pixel (N, P).
    pub errors: &'a Array2<f32>,
    /// Where each row came from.
    pub rows: &'a [RowSource],
    /// The core, with the run's grid, settings, calibration and thresholds.
    pub detector: Detector<'a>,
    /// Pool size of the preprocessing.
    pub pool: usize,
    /// Scale of the 16-bit PNG maps.
    pub png_scale: f64,
    /// The ground-truth masks, when given.
    pub truth: Option<&'a MaskIndex>,
    /// Where the maps go.
    pub maps_dir: &'a Path,
    /// Where the overlays go, when `plot_anomaly_heatmap` asks for them.
    pub overlays: Option<&'a Path>,
}

impl ImagePass<'_> {
    /// Detects on row `i` and writes its map (and overlay).
    pub fn run(&self, i: usize) -> anyhow::Result<PerImage> {
        let row = &self.rows[i];
        let shape = self.detector.grid.shape;
        let geometry = jobs::geometry(row, shape, self.pool);
        // Before the photo-sized map is allocated: a damaged file could otherwise ask for
        // terabytes.
        judge::check_geometry(&geometry).map_err(|e| {
            anyhow!(
                "{}: the row of {} gives {e}",
                self.job.metadata.display(),
                row.photo
            )
        })?;
        crate::detect::finite::ensure_finite(self.input.data.index_axis(Axis(0), i), || {
            format!(
                "{}: the preprocessed image (row {i} of {})",
                row.photo,
                self.job.npz.display()
            )
        })?;
        let j = self.detector.judge(
            &ImageData {
                name: &row.photo,
                residuals: self.residuals.index_axis(Axis(0), i),
                errors: self.errors.row(i),
            },
            &geometry,
        )?;
        let (npy, png) =
            outputs::write_map(self.maps_dir, i, &row.photo, &j.photo_map, self.png_scale)?;
        // The true defect, when ground truth is given: outlined in the overlay, scored below.
        let mask = match self.truth {
            Some(idx) => Some(idx.mask_for(&row.photo, &row.type_name, geometry.photo)?),
            None => None,
        };
        let truth_label = mask
            .as_ref()
            .map(|m| m.as_ref().is_some_and(|m| m.iter().any(|&b| b)));
        if let Some(dir) = self.overlays {
            self.overlay(
                i,
                &j,
                mask.as_ref().and_then(|m| m.as_deref()),
                truth_label,
                dir,
            )?;
        }
        let gt = mask.map(|mask| {
            let found = mask.is_some();
            GroundTruth {
                scores: j.photo_map.iter().copied().collect(),
                mask: mask.unwrap_or_else(|| vec![false; j.photo_map.len()]),
                found,
                width: geometry.photo.0 as usize,
            }
        });
        Ok((
            ImageResult {
                index: i,
                photo: row.photo.clone(),
                type_name: row.type_name.clone(),
                score: f64::from(j.score),
                mean_score: f64::from(j.mean_score),
                verdict: j.verdict,
                anomalous_pixels: j.anomalous_pixels,
                anomalous_percent: j.anomalous_percent,
                map_npy: npy.display().to_string(),
                map_png: png.display().to_string(),
                truth: truth_label,
            },
            gt,
            j.map,
        ))
    }

    /// The overlay figure of row `i`: the photo with the map and the true defect's outline,
    /// beside the pooled view of the input and the pooled map.
    fn overlay(
        &self,
        i: usize,
        j: &Judgement,
        truth: Option<&[bool]>,
        truth_label: Option<bool>,
        dir: &Path,
    ) -> anyhow::Result<()> {
        let row = &self.rows[i];
        let shape = self.detector.grid.shape;
        let size = (row.photo_size[0], row.photo_size[1]);
        let photo = crate::io::image::load_rgb8(Path::new(&row.photo))
            .or_else(|_| crate::io::image::load_rgb8(Path::new(&row.file)))?;
        let photo = if photo.dimensions() == size {
            photo
        } else {
            image::imageops::resize(
                &photo,
                size.0,
                size.1,
                image::imageops::FilterType::Triangle,
            )
        };
        let gray: Vec<f32> = self
            .input
            .data
            .index_axis(Axis(0), i)
            .rows()
            .into_iter()
            .map(|r| r.mean().unwrap_or(0.0))
            .collect();
        // Min-max, so the pooled view shows the part's structure whatever the channels.
        let gmin = gray.iter().copied().fold(f32::INFINITY, f32::min);
        let gmax = gray.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let span = (gmax - gmin).max(1e-6);
        let gray: Vec<f32> = gray.iter().map(|v| (v - gmin) / span).collect();
        let pooled_map = Array2::from_shape_vec(shape, j.map.clone()).map_err(|e| anyhow!(e))?;
        let anomalous = j.verdict.is_anomalous();
        let title = format!(
            "{} [{}]  score {:.3}  {}  ({} anomalous pooled px, {:.2}%)",
            Path::new(&row.photo)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            row.type_name,
            j.score,
            if anomalous { "ANOMALOUS" } else { "good" },
            j.anomalous_pixels,
            j.anomalous_percent
        );
        save_overlay(
            &dir.join(overlay_file_name(i, &row.photo)),
            &OverlayFigure {
                title,
                photo: &photo,
                map: &j.photo_map,
                truth,
                pooled: &gray_from_map(&gray, shape),
                pooled_map: &pooled_map,
                scale: self.png_scale as f32,
                threshold: self.detector.thresholds.pixel as f32,
                anomalous,
                truth_label,
            },
        )?;
        Ok(())
    }
}
