//! A trained model at work: [`TrainedModel`] turns raw npz data into reconstructions,
//! residuals and error maps in the model's units, for detection and for the cross-validation
//! of training.

use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};

use super::autoencoder::Autoencoder;
use super::data;
use super::device::CpuBackend;
use super::pixel_stats::PixelStats;
use super::spec::ModelSpec;
use super::standardize::Standardizer;
use super::{ModelError, ModelKind};

/// Rows per forward pass at inference.
const INFER_BATCH: usize = 64;

/// The fitted numbers of a model.
#[derive(Debug)]
pub(crate) enum Net {
    /// The network on the CPU, and the input standardisation it was trained with.
    Autoencoder(Box<Autoencoder<CpuBackend>>, Option<Standardizer>),
    /// Per-pixel statistics.
    PixelStats(PixelStats),
}

/// A trained model, for inference (on the CPU): loaded from its folder, or just fitted.
#[derive(Debug)]
pub struct TrainedModel {
    /// What `model_config.json` says (a fitted model's spec has no checksums yet: the folder's
    /// writer adds them).
    pub(crate) spec: ModelSpec,
    pub(crate) net: Net,
    /// The training images' part mask (P).
    pub(crate) part_mask: Option<Vec<f32>>,
    /// Out-of-fold residuals (N, P, C) of the training images.
    pub(crate) calibration: Option<Array3<f32>>,
}

impl TrainedModel {
    /// Loads a trained model dir (the layout's `model/` folder of a type, or of the component
    /// in one-hot mode), checking every file against the checksums of `model_config.json`.
    pub fn load(model_dir: &Path) -> Result<TrainedModel, ModelError> {
        super::store::load(model_dir)
    }

    /// The training images' part mask on the pooled grid (P), when training had one.
    pub fn part_mask(&self) -> Option<&[f32]> {
        self.part_mask.as_deref()
    }

    /// The out-of-fold residuals (N, P, C) of the training images (checked against the
    /// model's checksum when it was loaded).
    pub fn calibration_residuals(&self) -> Option<&Array3<f32>> {
        self.calibration.as_ref()
    }

    /// The model kind.
    pub fn kind(&self) -> ModelKind {
        self.spec.kind
    }

    /// Everything `model_config.json` says.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// (P pooled pixels, C channels) the model expects.
    pub fn input_shape(&self) -> (usize, usize) {
        (self.spec.input_shape[0], self.spec.input_shape[1])
    }

    /// Type names in one-hot label order (empty in per-type mode).
    pub fn label_types(&self) -> &[String] {
        &self.spec.label_types
    }

    /// Channel names recorded at training.
    pub fn channels(&self) -> &[String] {
        &self.spec.channels
    }

    /// Per-channel loss weights recorded at training.
    pub fn weights(&self) -> &[f32] {
        &self.spec.weights
    }

    /// Pooled (H, W) recorded at training.
    pub fn pooled_shape(&self) -> (usize, usize) {
        (self.spec.pooled_shape[0], self.spec.pooled_shape[1])
    }

    /// The scaling divisor (`X / data_max`).
    pub fn data_max(&self) -> f32 {
        self.spec.data_max
    }

    fn check(
        &self,
        data: &ArrayView3<f32>,
        labels: &Option<ArrayView2<f32>>,
    ) -> Result<(), ModelError> {
        let (n, p, c) = data.dim();
        let (mp, mc) = self.input_shape();
        if (p, c) != (mp, mc) {
            return Err(ModelError::Shape(format!(
                "the data has {p} pixels x {c} channels per image but the model was trained on {mp} x {mc} (pooled {}x{}, channels {}); preprocess the images with the training run's settings",
                self.spec.pooled_shape[0],
                self.spec.pooled_shape[1],
                self.spec.channels.join(", ")
            )));
        }
        let t = self.spec.label_types.len();
        if t > 0 {
            match labels {
                None => {
                    return Err(ModelError::Shape(format!(
                        "this one-hot model needs labels (one column per type: {})",
                        self.spec.label_types.join(", ")
                    )));
                }
                Some(l) if l.dim() != (n, t) => {
                    return Err(ModelError::Shape(format!(
                        "labels are {}x{} but the data has {n} images and the model {t} types",
                        l.nrows(),
                        l.ncols()
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The scaled input `X / data_max`, (N, P, C).
    fn scaled(&self, data: &ArrayView3<f32>) -> Array3<f32> {
        let inv = 1.0 / self.spec.data_max;
        data.mapv(|v| v * inv)
    }

    /// Reconstructions (N, P, C) in the SCALED space (X / data_max), and the scaled input, for
    /// figures (true vs predicted). `labels` (N, types) is required in one-hot mode.
    pub fn reconstruct_scaled(
        &self,
        data: ArrayView3<f32>,
        labels: Option<ArrayView2<f32>>,
    ) -> Result<(Array3<f32>, Array3<f32>), ModelError> {
        self.check(&data, &labels)?;
        let scaled = self.scaled(&data);
        let (n, p, c) = scaled.dim();
        let recon = match &self.net {
            Net::PixelStats(s) => s.reconstruct(n),
            Net::Autoencoder(m, st) => {
                let device = Default::default();
                let all_rows: Vec<usize> = (0..n).collect();
                let standardized = st
                    .as_ref()
                    .map(|st| st.rows(data.view(), &all_rows, self.spec.data_max));
                let flat = match &standardized {
                    Some(z) => z.view(),
                    None => scaled
                        .view()
                        .into_shape_with_order((n, p * c))
                        .map_err(|e| ModelError::Shape(e.to_string()))?,
                };
                let mut out: Vec<f32> = Vec::with_capacity(n * p * c);
                let all: Vec<usize> = (0..n).collect();
                for chunk in all.chunks(INFER_BATCH) {
                    let x = Tensor::<CpuBackend, 2>::from_data(
                        TensorData::new(data::gather(flat, chunk), [chunk.len(), p * c]),
                        &device,
                    );
                    let l = labels.map(|l| {
                        Tensor::<CpuBackend, 2>::from_data(
                            TensorData::new(data::gather(l, chunk), [chunk.len(), l.ncols()]),
                            &device,
                        )
                    });
                    let y = m.forward(x, l).into_data().convert::<f32>();
                    let y = y
                        .as_slice::<f32>()
                        .map_err(|e| ModelError::Shape(format!("{e:?}")))?;
                    // Chunks come in row order, so appending keeps rows in place.
                    out.extend_from_slice(y);
                }
                let mut recon = Array3::from_shape_vec((n, p, c), out)
                    .map_err(|e| ModelError::Shape(e.to_string()))?;
                // Standardised outputs back to the scaled space.
                if let Some(st) = st {
                    for mut img in recon.outer_iter_mut() {
                        ndarray::Zip::from(&mut img)
                            .and(&st.mean)
                            .and(&st.std)
                            .for_each(|v, &mu, &sd| *v = *v * sd + mu);
                    }
                }
                recon
            }
        };
        Ok((recon, scaled))
    }

    /// Residuals (N, P, C) of raw npz data in the model's units: `(x / data_max - recon) / d`
    /// with `d` the per-(pixel, channel) standard deviation of the training images for
    /// pixel_stats (floored) and for a standardising autoencoder, else 1 (the original's
    /// reconstruction error). `labels` (N, types) is required in one-hot mode.
    pub fn residuals(
        &self,
        data: ArrayView3<f32>,
        labels: Option<ArrayView2<f32>>,
    ) -> Result<Array3<f32>, ModelError> {
        if let Net::PixelStats(s) = &self.net {
            self.check(&data, &labels)?;
            return Ok(s.residuals(data, self.spec.data_max));
        }
        let (recon, mut res) = self.reconstruct_scaled(data, labels)?;
        res -= &recon;
        if let Net::Autoencoder(_, Some(st)) = &self.net {
            for mut img in res.outer_iter_mut() {
                img /= &st.std;
            }
        }
        Ok(res)
    }

    /// Per-pixel error maps (N, P) of raw npz data: the squared [`Self::residuals`] averaged
    /// over channels (the autoencoder's squared reconstruction error in the scaled space, or
    /// the squared z-score for pixel_stats and standardised inputs).
    pub fn error_maps(
        &self,
        data: ArrayView3<f32>,
        labels: Option<ArrayView2<f32>>,
    ) -> Result<Array2<f32>, ModelError> {
        Ok(mean_square(&self.residuals(data, labels)?))
    }
}

/// The mean of the squares over the last axis: (N, P, C) -> (N, P).
pub fn mean_square(res: &Array3<f32>) -> Array2<f32> {
    let c = res.dim().2.max(1) as f32;
    res.map_axis(Axis(2), |r| r.iter().map(|v| v * v).sum::<f32>() / c)
}
