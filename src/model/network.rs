//! One autoencoder fit on the selected backend: the settings and network the configuration
//! asks for, the inputs (scaled or standardised), and the backend job that runs the training
//! loop ([`super::train::fit`]) and reports its epochs and checkpoints to the caller's
//! [`FitProgress`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::autoencoder::{ActivityRegularizer, Autoencoder, AutoencoderConfig, LEAKY_SLOPE};
use super::data::TrainingData;
use super::device::{self, CpuBackend, Selected};
use super::fit::{FitProgress, FoldStart};
use super::loss::LossSpec;
use super::standardize::Standardizer;
use super::store::{network_from_record, record_bytes};
use super::train::{self, EpochRecord, FitOutcome, FitSettings, Rows};
use super::{ModelError, data, dense};
use crate::config::resolved::{InputNormalization, ModelTraining, Regularization};

/// The fit settings the configuration asks for.
pub fn fit_settings(m: &ModelTraining, channel_weights: &[f32]) -> FitSettings {
    let (l1, l2) = match m.regularization {
        Regularization::None => (0.0, 0.0),
        Regularization::L1 => (m.l1_regularization, 0.0),
        Regularization::L2 => (0.0, m.l2_regularization),
        Regularization::L1L2 => (m.l1_regularization, m.l2_regularization),
    };
    FitSettings {
        epochs: m.n_epochs,
        batch_size: m.batchsize,
        learning_rate: m.learning_rate,
        seed: m.seed,
        loss: LossSpec::from_config(m),
        regularizer: ActivityRegularizer { l1, l2 },
        patience: m.patience,
        min_delta: m.min_delta,
        channel_weights: channel_weights.to_vec(),
    }
}

/// The network the configuration asks for, for `input_dim` inputs and `label_dim` labels.
pub fn autoencoder_config(
    m: &ModelTraining,
    input_dim: usize,
    label_dim: usize,
) -> AutoencoderConfig {
    AutoencoderConfig::new(
        input_dim,
        m.autoencoder_architecture.clone(),
        label_dim,
        m.label_latent_size,
        m.output_activation,
        LEAKY_SLOPE,
    )
}

/// One trained network: how its fit went, with the best network on the CPU, and the input
/// standardisation it was trained with.
pub(crate) struct FoldNet {
    /// The fit and the network with the best validation loss.
    pub outcome: FitOutcome<Autoencoder<CpuBackend>>,
    /// The input standardisation (`input_normalization: standardize`).
    pub standardizer: Option<Standardizer>,
}

struct FitJob<'a> {
    config: &'a AutoencoderConfig,
    settings: FitSettings,
    seed: u64,
    train: Rows<'a>,
    val: Rows<'a>,
    /// The weights file's name, for errors while encoding them.
    weights_name: &'a Path,
    /// Whether the best weights are handed to `progress` for checkpoints (the deployed model
    /// only; the other folds' models live in memory).
    checkpoint: bool,
    progress: &'a mut dyn FitProgress,
}

impl device::BackendJob for FitJob<'_> {
    type Output = Result<FitOutcome<Vec<u8>>, ModelError>;

    fn run<B: dense::TrainBackend>(self, device: B::Device, host: bool) -> Self::Output {
        let model = self.config.init::<B>(self.seed, &device);
        let progress = self.progress;
        let (checkpoint, name) = (self.checkpoint, self.weights_name);
        let mut write_error: Option<ModelError> = None;
        let mut on_epoch = |r: &EpochRecord, best: Option<&Autoencoder<B::InnerBackend>>| {
            progress.epoch(r);
            // Checkpoint the best weights when they improve, as often as the caller wants
            // them (encoding them takes time).
            if let Some(best) = best
                && checkpoint
                && write_error.is_none()
                && progress.checkpoint_due()
                && let Err(e) = record_bytes(best, name).and_then(|b| progress.checkpoint(&b))
            {
                write_error = Some(e);
            }
        };
        let out = train::fit::<B>(
            model,
            self.config,
            self.train,
            self.val,
            &self.settings,
            &device,
            host,
            &mut on_epoch,
        );
        progress.fold_finished();
        if let Some(e) = write_error {
            return Err(e);
        }
        let t = Instant::now();
        let out = out.try_map_model(|model| record_bytes(&model, name))?;
        log::trace!("weights encoded in {:.2} s", t.elapsed().as_secs_f64());
        Ok(out)
    }
}

/// Trains the autoencoder `config` on rows `train_rows` of `data` with early stopping on
/// `val_rows`, on the `selected` backend; `fold` (0-based) of `folds` names it in progress and
/// messages, and fold 0 (the deployed model) hands its best weights to `progress` for
/// checkpoints. Returns its fit with the best network on the CPU, and the input
/// standardisation it was trained with.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_fold(
    m: &ModelTraining,
    data: &TrainingData,
    config: &AutoencoderConfig,
    selected: Selected,
    train_rows: &[usize],
    val_rows: &[usize],
    (fold, folds): (usize, usize),
    progress: &mut dyn FitProgress,
) -> Result<FoldNet, ModelError> {
    let prep = data;
    let label = format!("train {} fold {}/{}", data.name, fold + 1, folds);
    let standardizer = (m.input_normalization == InputNormalization::Standardize)
        .then(|| Standardizer::fit(prep.data.view(), train_rows, prep.data_max, &prep.part_mask));
    let rows_of = |rows: &[usize]| match &standardizer {
        Some(st) => st.rows(prep.data.view(), rows, prep.data_max),
        None => data::scaled_rows(prep.data.view(), rows, prep.data_max),
    };
    let x_train = rows_of(train_rows);
    let x_val = rows_of(val_rows);
    let l_train = prep
        .labels
        .as_ref()
        .map(|l| data::select_rows(l.view(), train_rows));
    let l_val = prep
        .labels
        .as_ref()
        .map(|l| data::select_rows(l.view(), val_rows));
    progress.fold_started(&FoldStart {
        label: label.clone(),
        fold,
        folds,
        device: selected.describe(),
        n_train: train_rows.len(),
        n_val: val_rows.len(),
        inputs: config.input_dim,
        standardized: standardizer.is_some(),
        num_params: config.num_params(),
        max_epochs: m.n_epochs,
    });
    let weights_name = PathBuf::from(format!("{}.mpk", m.model_name));
    let job = FitJob {
        config,
        settings: fit_settings(m, &prep.weights),
        seed: m.seed,
        train: Rows {
            x: x_train.view(),
            labels: l_train.as_ref().map(|l| l.view()),
        },
        val: Rows {
            x: x_val.view(),
            labels: l_val.as_ref().map(|l| l.view()),
        },
        weights_name: &weights_name,
        checkpoint: fold == 0,
        progress,
    };
    let outcome = device::run(selected, job)?;
    if let Some(a) = &outcome.aborted {
        // A fit whose loss stopped being a number has learnt nothing to trust.
        return Err(ModelError::Diverged(format!(
            "{label}: {a}; no model was written (the previous one, if any, is kept); lower model_training.learning_rate"
        )));
    }
    // The record carries the weights from the training backend to the CPU.
    let outcome =
        outcome.try_map_model(|bytes| network_from_record(config, bytes, &weights_name))?;
    Ok(FoldNet {
        outcome,
        standardizer,
    })
}
