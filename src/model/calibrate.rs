//! Cross-validation for the calibration residuals: the training images are dealt into folds
//! ([`data::folds`]) and each fold is scored by a model fitted without it, so every image gets
//! an out-of-fold residual (N, P, C) in the model's units. Detection calibrates its scores and
//! thresholds on them, so they come from models made exactly like the deployed one.

use ndarray::{Array3, ArrayView3, Axis};

use super::data::TrainingData;
use super::device::Selected;
use super::fit::FitProgress;
use super::network::{FoldNet, autoencoder_config, train_fold};
use super::pixel_stats;
use super::spec::ModelSpec;
use super::train::FitOutcome;
use super::trained::{Net, TrainedModel};
use super::{ModelError, ModelKind, data};
use crate::config::resolved::{InputNormalization, ModelTraining};

/// Copies the residuals `r` of the rows `fold` into their rows of `calibration`.
fn assign(calibration: &mut Array3<f32>, fold: &[usize], r: ArrayView3<f32>) {
    for (o, &row) in fold.iter().enumerate() {
        calibration
            .index_axis_mut(Axis(0), row)
            .assign(&r.index_axis(Axis(0), o));
    }
}

/// pixel_stats: every fold's z-scores under the statistics of the other folds.
pub fn pixel_stats(data: &TrainingData, folds: &[Vec<usize>]) -> Array3<f32> {
    let (n, p, c) = data.data.dim();
    let mut calibration = Array3::<f32>::zeros((n, p, c));
    for fold in folds {
        let s = pixel_stats::fit(data.data.view(), &data::complement(n, fold), data.data_max);
        let r = s.residuals(data.data.select(Axis(0), fold).view(), data.data_max);
        assign(&mut calibration, fold, r.view());
    }
    calibration
}

/// The autoencoder: one network per fold, trained on the other folds with early stopping on
/// its own, on the `selected` backend. Returns the residuals, fold 0's model (the one deployed)
/// and fold 0's fit.
pub(crate) fn autoencoder(
    m: &ModelTraining,
    data: &TrainingData,
    folds: &[Vec<usize>],
    normalization: InputNormalization,
    selected: Selected,
    progress: &mut dyn FitProgress,
) -> Result<(Array3<f32>, TrainedModel, FitOutcome<()>), ModelError> {
    let (n, p, c) = data.data.dim();
    let label_dim = data.labels.as_ref().map_or(0, |l| l.ncols());
    let config = autoencoder_config(m, p * c, label_dim);
    let mut calibration = Array3::<f32>::zeros((n, p, c));
    let mut deployed = None;
    for (k, fold) in folds.iter().enumerate() {
        let train_rows = data::complement(n, fold);
        let FoldNet {
            outcome,
            standardizer,
        } = train_fold(
            m,
            data,
            &config,
            selected,
            &train_rows,
            fold,
            (k, folds.len()),
            progress,
        )?;
        let (net, fit) = outcome.into_parts();
        let fold_model = TrainedModel {
            spec: ModelSpec::base(
                m,
                data,
                ModelKind::Autoencoder,
                normalization,
                Some(config.clone()),
            ),
            net: Net::Autoencoder(Box::new(net), standardizer),
            part_mask: None,
            calibration: None,
        };
        let labels = data.labels.as_ref().map(|l| l.select(Axis(0), fold));
        let r = fold_model.residuals(
            data.data.select(Axis(0), fold).view(),
            labels.as_ref().map(|l| l.view()),
        )?;
        assign(&mut calibration, fold, r.view());
        if k == 0 {
            deployed = Some((fold_model, fit));
        }
    }
    let Some((model, fit)) = deployed else {
        return Err(ModelError::Shape("no fold was trained".into()));
    };
    Ok((calibration, model, fit))
}
