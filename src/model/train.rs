//! The training loop, written out: seeded shuffles, mini-batches, forward with the activity
//! penalty, the weighted (masked) loss, backward, Adam; then validation, per-epoch metrics and
//! early stopping on the validation loss with `patience` and `min_delta`, keeping the best
//! weights in memory. Plain arrays in, a trained network and its history out; checkpoints and
//! progress are the caller's (through the `on_epoch` callback).

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::optim::Optimizer;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::prelude::Backend;
use burn::tensor::{Tensor, TensorData};
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::adam::KerasAdam;
use super::autoencoder::{ActivityRegularizer, Autoencoder, AutoencoderConfig};
use super::data::{batches, gather};
use super::dense::{DenseBackend, TrainBackend};
use super::loss::{LossSpec, weight_row};
use crate::rng::SplitMix64;

/// What early stopping says after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The validation loss improved by more than `min_delta`: these are the best weights.
    Improved,
    /// No improvement; training goes on.
    Wait,
    /// No improvement for `patience` epochs: stop.
    Stop,
}

/// Keras' `EarlyStopping(monitor="val_loss", patience, min_delta, restore_best_weights=True)`
/// as a pure state machine: an epoch improves when `val_loss + min_delta < best` (it beats
/// the best by more than `min_delta`); training
/// stops once `patience` epochs in a row have not improved (at once with `patience: 0`).
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopping {
    patience: usize,
    min_delta: f64,
    best: f64,
    best_epoch: Option<usize>,
    wait: usize,
}

impl EarlyStopping {
    /// A fresh state.
    pub fn new(patience: usize, min_delta: f64) -> EarlyStopping {
        EarlyStopping {
            patience,
            min_delta: min_delta.abs(),
            best: f64::INFINITY,
            best_epoch: None,
            wait: 0,
        }
    }

    /// Feeds the validation loss of `epoch` (0-based).
    pub fn update(&mut self, epoch: usize, val_loss: f64) -> Verdict {
        self.wait += 1;
        if val_loss + self.min_delta < self.best {
            self.best = val_loss;
            self.best_epoch = Some(epoch);
            self.wait = 0;
            return Verdict::Improved;
        }
        if self.wait >= self.patience && epoch > 0 {
            return Verdict::Stop;
        }
        Verdict::Wait
    }

    /// The best validation loss so far.
    pub fn best(&self) -> f64 {
        self.best
    }

    /// The epoch of the best validation loss.
    pub fn best_epoch(&self) -> Option<usize> {
        self.best_epoch
    }
}

/// Settings of one fit.
#[derive(Debug, Clone, PartialEq)]
pub struct FitSettings {
    /// Maximum epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Seed of the shuffles (the weights are seeded by the caller's init).
    pub seed: u64,
    /// The loss.
    pub loss: LossSpec,
    /// Activity regularisation.
    pub regularizer: ActivityRegularizer,
    /// Early-stopping patience.
    pub patience: usize,
    /// Early-stopping minimum improvement.
    pub min_delta: f64,
    /// One weight per channel.
    pub channel_weights: Vec<f32>,
}

/// The metrics of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 0-based epoch.
    pub epoch: usize,
    /// Training loss (mean over the epoch's batches, weighted by batch size; includes the
    /// activity penalty, as Keras reports it).
    pub loss: f64,
    /// Validation loss, the same way.
    pub val_loss: f64,
    /// Unweighted mean squared error on the training batches.
    pub mse: f64,
    /// Unweighted mean squared error on the validation set.
    pub val_mse: f64,
    /// Validation mean squared error per channel.
    pub val_mse_per_channel: Vec<f64>,
    /// Channel-weighted validation mse: the mean over elements of weight x d².
    pub val_weighted_total: f64,
    /// Each channel's share of `val_weighted_total` (they add up to it).
    pub val_weighted_per_channel: Vec<f64>,
    /// Seconds this epoch took (training and validation).
    pub seconds: f64,
}

/// The result of a fit: the network with the best validation loss (`M`: the network on the
/// training backend, or its backend-independent burn record) and how the fit went.
#[derive(Debug, Clone, PartialEq)]
pub struct FitOutcome<M> {
    /// The network with the best validation loss.
    pub model: M,
    /// One record per epoch run.
    pub history: Vec<EpochRecord>,
    /// 0-based epoch of the best weights.
    pub best_epoch: usize,
    /// Its validation loss.
    pub best_val_loss: f64,
    /// Whether early stopping ended the fit before `epochs`.
    pub stopped_early: bool,
    /// Why the fit ended early for another reason (a non-finite loss).
    pub aborted: Option<String>,
}

impl<M> FitOutcome<M> {
    /// The network, and the fit without it.
    pub fn into_parts(self) -> (M, FitOutcome<()>) {
        let FitOutcome {
            model,
            history,
            best_epoch,
            best_val_loss,
            stopped_early,
            aborted,
        } = self;
        let rest = FitOutcome {
            model: (),
            history,
            best_epoch,
            best_val_loss,
            stopped_early,
            aborted,
        };
        (model, rest)
    }

    /// The same fit with the network converted by `f` (to another backend, or to bytes).
    pub fn try_map_model<N, E>(
        self,
        f: impl FnOnce(M) -> Result<N, E>,
    ) -> Result<FitOutcome<N>, E> {
        let (model, rest) = self.into_parts();
        Ok(rest.with_model(f(model)?))
    }
}

impl FitOutcome<()> {
    /// The fit with `model` as its network.
    pub fn with_model<N>(self, model: N) -> FitOutcome<N> {
        FitOutcome {
            model,
            history: self.history,
            best_epoch: self.best_epoch,
            best_val_loss: self.best_val_loss,
            stopped_early: self.stopped_early,
            aborted: self.aborted,
        }
    }
}

/// Scaled images as a row-major (N, D) matrix plus optional one-hot labels (N, T).
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    /// Scaled images.
    pub x: ArrayView2<'a, f32>,
    /// Labels, in one-hot mode.
    pub labels: Option<ArrayView2<'a, f32>>,
}

fn tensor<B: Backend>(v: Vec<f32>, rows: usize, device: &B::Device) -> Tensor<B, 2> {
    let cols = v.len() / rows.max(1);
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

/// Sums of squared differences per channel of a (batch, P*C) difference, on the host.
fn channel_sq_sums<B: Backend>(d: Tensor<B, 2>, channels: usize) -> Vec<f64> {
    let [b, dim] = d.dims();
    let p = dim / channels.max(1);
    let s = d
        .square()
        .reshape([b * p, channels])
        .sum_dim(0)
        .into_data()
        .convert::<f32>();
    s.as_slice::<f32>()
        .map(|v| v.iter().map(|&x| f64::from(x)).collect())
        .unwrap_or_else(|_| vec![f64::NAN; channels])
}

/// Loss and per-channel squared-error sums of `model` over `rows`, in batches, without
/// gradients.
fn evaluate<B: DenseBackend>(
    model: &Autoencoder<B>,
    rows: &Rows<'_>,
    s: &FitSettings,
    weights: &Tensor<B, 2>,
    device: &B::Device,
) -> (f64, Vec<f64>) {
    let n = rows.x.nrows();
    let c = s.channel_weights.len();
    let order: Vec<usize> = (0..n).collect();
    let mut loss_sum = 0.0;
    let mut sq = vec![0.0; c];
    for batch in batches(&order, s.batch_size) {
        let x = tensor::<B>(gather(rows.x, &batch), batch.len(), device);
        let l = rows
            .labels
            .map(|l| tensor::<B>(gather(l, &batch), batch.len(), device));
        let (y, penalty) = model.forward_regularized(x.clone(), l, &s.regularizer);
        let mut loss = s.loss.batch_loss(y.clone(), x.clone(), weights.clone());
        if let Some(p) = penalty {
            loss = loss + p;
        }
        loss_sum += f64::from(loss.into_scalar().to_f32_lossy()) * batch.len() as f64;
        for (a, b) in sq.iter_mut().zip(channel_sq_sums(y - x, c)) {
            *a += b;
        }
    }
    (loss_sum / n.max(1) as f64, sq)
}

trait ToF32 {
    fn to_f32_lossy(self) -> f32;
}

impl<E: burn::tensor::ElementConversion> ToF32 for E {
    fn to_f32_lossy(self) -> f32 {
        self.elem::<f32>()
    }
}

/// Called after each epoch with its record and, when it improved, the new best network.
pub type EpochCallback<'a, B> = dyn FnMut(&EpochRecord, Option<&Autoencoder<B>>) + 'a;

/// Trains `model` on `train`, validating on `val` after every epoch. `on_epoch` is called after
/// each epoch with its record and, when the epoch improved, the new best network (to
/// checkpoint); `host` selects the in-place CPU optimizer.
#[allow(clippy::too_many_arguments)]
pub fn fit<B: TrainBackend>(
    model: Autoencoder<B>,
    config: &AutoencoderConfig,
    train: Rows<'_>,
    val: Rows<'_>,
    s: &FitSettings,
    device: &B::Device,
    host: bool,
    on_epoch: &mut EpochCallback<'_, B::InnerBackend>,
) -> FitOutcome<Autoencoder<B::InnerBackend>> {
    let c = s.channel_weights.len().max(1);
    let p = config.input_dim / c;
    let w_row = weight_row(&s.channel_weights, p);
    let weights_ad = tensor::<B>(w_row.clone(), 1, device);
    let weights_inner = tensor::<B::InnerBackend>(w_row, 1, device);
    let mut optim: OptimizerAdaptor<KerasAdam, Autoencoder<B>, B> =
        OptimizerAdaptor::from(KerasAdam { host });
    let mut rng = SplitMix64::new(s.seed ^ 0x5417_FF1E_0000_0001);
    let mut stopper = EarlyStopping::new(s.patience, s.min_delta);
    let mut model = model;
    let mut best: Option<Autoencoder<B::InnerBackend>> = None;
    let mut history = Vec::new();
    let mut stopped_early = false;
    let mut aborted = None;
    let n_train = train.x.nrows();
    let n_val = val.x.nrows();
    let elems = |n: usize| (n * config.input_dim).max(1) as f64;
    let mut order: Vec<usize> = (0..n_train).collect();

    for epoch in 0..s.epochs {
        let t0 = Instant::now();
        rng.shuffle(&mut order);
        let mut loss_sum = 0.0;
        let mut sq_sum = 0.0;
        for batch in batches(&order, s.batch_size) {
            let x = tensor::<B>(gather(train.x, &batch), batch.len(), device);
            let l = train
                .labels
                .map(|l| tensor::<B>(gather(l, &batch), batch.len(), device));
            let ta = Instant::now();
            let (y, penalty) = model.forward_regularized(x.clone(), l, &s.regularizer);
            let sq = y.clone().detach().sub(x.clone().detach()).square().sum();
            let mut loss = s.loss.batch_loss(y, x, weights_ad.clone());
            if let Some(p) = penalty {
                loss = loss + p;
            }
            loss_sum += f64::from(loss.clone().into_scalar().to_f32_lossy()) * batch.len() as f64;
            let tb = Instant::now();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            sq_sum += f64::from(sq.into_scalar().to_f32_lossy());
            let tc = Instant::now();
            model = optim.step(s.learning_rate, model, grads);
            log::trace!(
                "batch of {}: forward {:.3} s, backward {:.3} s, optimizer {:.3} s",
                batch.len(),
                (tb - ta).as_secs_f64(),
                (tc - tb).as_secs_f64(),
                tc.elapsed().as_secs_f64()
            );
        }
        let train_loss = loss_sum / n_train.max(1) as f64;
        let tv = Instant::now();
        let inner = model.valid();
        let (val_loss, val_sq) = evaluate(&inner, &val, s, &weights_inner, device);
        drop(inner);
        log::trace!("validation {:.3} s", tv.elapsed().as_secs_f64());
        let denom = (n_val * p).max(1) as f64;
        let val_mse_per_channel: Vec<f64> = val_sq.iter().map(|q| q / denom).collect();
        let val_weighted_per_channel: Vec<f64> = val_mse_per_channel
            .iter()
            .zip(&s.channel_weights)
            .map(|(m, w)| m * f64::from(*w) / c as f64)
            .collect();
        let record = EpochRecord {
            epoch,
            loss: train_loss,
            val_loss,
            mse: sq_sum / elems(n_train),
            val_mse: val_sq.iter().sum::<f64>() / elems(n_val),
            val_mse_per_channel,
            val_weighted_total: val_weighted_per_channel.iter().sum(),
            val_weighted_per_channel,
            seconds: t0.elapsed().as_secs_f64(),
        };
        let verdict = stopper.update(epoch, val_loss);
        if verdict == Verdict::Improved {
            best = Some(model.valid());
        }
        on_epoch(
            &record,
            if verdict == Verdict::Improved {
                best.as_ref()
            } else {
                None
            },
        );
        history.push(record);
        if !(train_loss.is_finite() && val_loss.is_finite()) {
            aborted = Some(format!(
                "the loss became {} at epoch {}; training stopped (try a smaller learning_rate)",
                if train_loss.is_finite() {
                    val_loss
                } else {
                    train_loss
                },
                epoch + 1
            ));
            break;
        }
        if verdict == Verdict::Stop {
            stopped_early = epoch + 1 < s.epochs;
            break;
        }
    }
    let best_epoch = stopper.best_epoch().unwrap_or(0);
    FitOutcome {
        model: best.unwrap_or_else(|| model.valid()),
        history,
        best_epoch,
        best_val_loss: stopper.best(),
        stopped_early,
        aborted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a crafted validation curve through the stopper; returns (epochs run, best epoch).
    fn run(curve: &[f64], patience: usize, min_delta: f64) -> (usize, Option<usize>) {
        let mut s = EarlyStopping::new(patience, min_delta);
        for (e, &v) in curve.iter().enumerate() {
            if s.update(e, v) == Verdict::Stop {
                return (e + 1, s.best_epoch());
            }
        }
        (curve.len(), s.best_epoch())
    }

    #[test]
    fn early_stopping_on_crafted_curves() {
        // Best at epoch 2; patience 3 -> stops after epoch 5 (three epochs without gain).
        let curve = [1.0, 0.8, 0.5, 0.6, 0.55, 0.52, 0.1, 0.1];
        assert_eq!(run(&curve, 3, 0.0), (6, Some(2)));
        // Gains smaller than min_delta do not count: 0.5 -> 0.495 -> 0.49 are "no gain" with
        // min_delta 0.01, so it stops 2 epochs after epoch 2.
        let curve = [1.0, 0.7, 0.5, 0.495, 0.49, 0.3];
        assert_eq!(run(&curve, 2, 0.01), (5, Some(2)));
        // Without min_delta the same curve keeps improving.
        assert_eq!(run(&curve, 2, 0.0), (6, Some(5)));
        // Patience 0 stops at the first epoch without gain.
        assert_eq!(run(&[1.0, 0.9, 0.95, 0.1], 0, 0.0), (3, Some(1)));
        // A NaN never improves.
        assert_eq!(run(&[1.0, f64::NAN, f64::NAN], 2, 0.0), (3, Some(0)));
        // Never stopping when it always improves.
        assert_eq!(run(&[5.0, 4.0, 3.0, 2.0], 1, 0.5), (4, Some(3)));
    }
}
