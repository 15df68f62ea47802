//! Fitting a model on training data in memory. [`fit`] takes the checked training array with
//! its channel weights and the resolved `model_training` settings (seed included) and returns
//! the [`Fitted`] model: the autoencoder's weights or the pixel statistics, the out-of-fold
//! calibration residuals, the history and the timings. It reads and writes no file and prints
//! nothing: progress, and checkpoints of the deployed network, go to the [`FitProgress`] the
//! caller passes in. `pixal train` (`commands::train`) reads the npz, shows the progress and
//! writes the model folder ([`super::store`]).

use std::time::Instant;

use ndarray::{Array2, Array3, Axis};

use super::data::TrainingData;
use super::spec::ModelSpec;
use super::train::EpochRecord;
use super::trained::{Net, TrainedModel, mean_square};
use super::{ModelError, ModelKind, calibrate, data, device, pixel_stats};
use crate::config::resolved::{InputNormalization, ModelTraining, ModelType};

/// What a fit tells its caller while it runs. Every method has a default that does nothing
/// ([`NoProgress`] keeps them all).
pub trait FitProgress {
    /// A network starts training (one per cross-validation fold of the autoencoder).
    fn fold_started(&mut self, _fold: &FoldStart) {}

    /// An epoch of the current network finished.
    fn epoch(&mut self, _record: &EpochRecord) {}

    /// Asked when the deployed network's best weights have just improved: whether to hand
    /// them to [`Self::checkpoint`] now (encoding them takes time, so the caller says how
    /// often).
    fn checkpoint_due(&mut self) -> bool {
        false
    }

    /// The deployed network's best weights so far, as burn record bytes. An error stops
    /// further checkpoints and fails the fit once the network has trained.
    fn checkpoint(&mut self, _record: &[u8]) -> Result<(), ModelError> {
        Ok(())
    }

    /// The current network finished training.
    fn fold_finished(&mut self) {}
}

/// A [`FitProgress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl FitProgress for NoProgress {}

/// A network about to train, as [`FitProgress::fold_started`] hears of it.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldStart {
    /// `train <name> fold <k>/<folds>`, for progress bars and messages.
    pub label: String,
    /// The fold (0-based; fold 0's network is the one deployed).
    pub fold: usize,
    /// Number of folds.
    pub folds: usize,
    /// Backend and device.
    pub device: String,
    /// Training images.
    pub n_train: usize,
    /// Validation images.
    pub n_val: usize,
    /// Values per image.
    pub inputs: usize,
    /// Whether the inputs are standardised (else scaled).
    pub standardized: bool,
    /// Trainable values.
    pub num_params: usize,
    /// Maximum epochs.
    pub max_epochs: usize,
}

/// A fitted model and how the fit went.
#[derive(Debug)]
pub struct Fitted {
    /// The model, ready for inference, with its part mask and out-of-fold calibration
    /// residuals. Its spec has no checksums yet: the model folder's writer adds them.
    pub model: TrainedModel,
    /// Fold 0's split: the rows the deployed autoencoder trained on, and the held-out rows its
    /// early stopping (and pixel_stats' validation loss) used.
    pub split: data::Split,
    /// One record per epoch of the deployed model (pixel_stats: one).
    pub history: Vec<EpochRecord>,
    /// 1-based epoch of the kept weights.
    pub best_epoch: usize,
    /// Validation loss of the kept weights (pixel_stats: mean squared z-score of the
    /// validation images).
    pub best_val_loss: f64,
    /// Whether early stopping ended the fit.
    pub stopped_early: bool,
    /// Seconds of the fit, every fold included.
    pub fit_seconds: f64,
    /// Where it trained.
    pub device: String,
}

impl Fitted {
    /// The model's description.
    pub fn spec(&self) -> &ModelSpec {
        self.model.spec()
    }

    /// Epochs run (1 for pixel_stats).
    pub fn epochs_run(&self) -> usize {
        self.history.len()
    }

    /// Mean seconds per epoch.
    pub fn seconds_per_epoch(&self) -> f64 {
        self.fit_seconds / self.epochs_run().max(1) as f64
    }
}

/// Fits the model `m` asks for on `data`, cross-validating for the calibration residuals:
/// the images are dealt into `calibration_folds` folds, and each is scored by a model fitted
/// without it. The deployed autoencoder is fold 0's network; pixel_stats is fitted on every
/// image. Fails when the parts of `data` disagree ([`TrainingData::check`]), when there are
/// fewer than 2 images, when a fold's training diverges, or when the residuals are not finite.
pub fn fit(
    data: &TrainingData,
    m: &ModelTraining,
    progress: &mut dyn FitProgress,
) -> Result<Fitted, ModelError> {
    data.check()?;
    let t0 = Instant::now();
    let n = data.data.dim().0;
    let folds = data::folds(n, m.calibration_folds, m.seed).ok_or_else(|| ModelError::Input {
        path: data.source.clone(),
        reason: format!(
            "{n} image(s): training needs at least 2 good images so that each can be scored by a model that did not see it"
        ),
    })?;
    // The deployed autoencoder is fold 0's model; pixel_stats is fitted on every image.
    let split = data::Split {
        train: data::complement(n, &folds[0]),
        validation: folds[0].clone(),
        note: None,
    };
    let (deployed, calibration, fold0, device) = match m.model_type {
        ModelType::PixelStats => {
            let calibration = calibrate::pixel_stats(data, &folds);
            let all: Vec<usize> = (0..n).collect();
            let stats = pixel_stats::fit(data.data.view(), &all, data.data_max);
            let spec = ModelSpec::base(
                m,
                data,
                ModelKind::PixelStats,
                InputNormalization::Scale,
                None,
            );
            let model = TrainedModel {
                spec,
                net: Net::PixelStats(stats),
                part_mask: None,
                calibration: None,
            };
            (
                model,
                calibration,
                None,
                "cpu (pixel statistics)".to_string(),
            )
        }
        ModelType::Autoencoder => {
            let selected = device::select(m.device)?;
            let (calibration, model, fit) =
                calibrate::autoencoder(m, data, &folds, m.input_normalization, selected, progress)?;
            (model, calibration, Some(fit), selected.describe())
        }
    };
    let fit_seconds = t0.elapsed().as_secs_f64();
    if let Some((i, _)) = calibration
        .outer_iter()
        .enumerate()
        .find(|(_, r)| r.iter().any(|v| !v.is_finite()))
    {
        return Err(ModelError::Input {
            path: data.source.clone(),
            reason: format!(
                "training diverged: the out-of-fold residuals of {} are not finite numbers; lower model_training.learning_rate",
                data.files.get(i).map_or("?", String::as_str)
            ),
        });
    }

    let kind = deployed.spec.kind;
    let spec = ModelSpec {
        weights_file: (kind == ModelKind::Autoencoder).then(|| format!("{}.mpk", m.model_name)),
        safetensors_file: Some(format!("{}.safetensors", m.model_name)),
        std_floor: match &deployed.net {
            Net::PixelStats(s) => Some(s.std_floor),
            Net::Autoencoder(..) => None,
        },
        validation_files: split
            .validation
            .iter()
            .filter_map(|&i| data.files.get(i).cloned())
            .collect(),
        calibration_folds: folds.len(),
        calibration_files: data.files.clone(),
        ..deployed.spec
    };
    let val_maps = mean_square(&calibration.select(Axis(0), &split.validation));
    let model = TrainedModel {
        spec,
        net: deployed.net,
        part_mask: Some(data.part_mask.clone()),
        calibration: Some(calibration),
    };
    let (history, best_epoch, best_val_loss, stopped_early) = match fold0 {
        Some(o) => (
            o.history,
            o.best_epoch + 1,
            o.best_val_loss,
            o.stopped_early,
        ),
        None => {
            let rec = pixel_stats_record(&model, data, &split, &val_maps, fit_seconds)?;
            let v = rec.val_loss;
            (vec![rec], 1, v, false)
        }
    };
    Ok(Fitted {
        model,
        split,
        history,
        best_epoch,
        best_val_loss,
        stopped_early,
        fit_seconds,
        device,
    })
}

/// pixel_stats' one "epoch": the training images' mean squared z-score under the deployed
/// statistics as the loss, the validation images' out-of-fold `val_maps` as the validation
/// loss, and the reconstruction errors of both.
fn pixel_stats_record(
    model: &TrainedModel,
    data: &TrainingData,
    split: &data::Split,
    val_maps: &Array2<f32>,
    fit_seconds: f64,
) -> Result<EpochRecord, ModelError> {
    let c = data.data.dim().2;
    let labels_of = |rows: &[usize]| data.labels.as_ref().map(|l| l.select(Axis(0), rows));
    let train_data = data.data.select(Axis(0), &split.train);
    let train_labels = labels_of(&split.train);
    let train_maps =
        model.error_maps(train_data.view(), train_labels.as_ref().map(|l| l.view()))?;
    let (mse, _) = mean_reconstruction_mse(model, &train_data, train_labels.as_ref())?;
    let val_data = data.data.select(Axis(0), &split.validation);
    let val_labels = labels_of(&split.validation);
    let (val_mse, per_channel) = mean_reconstruction_mse(model, &val_data, val_labels.as_ref())?;
    let weighted: Vec<f64> = per_channel
        .iter()
        .zip(&data.weights)
        .map(|(m, w)| m * f64::from(*w) / c as f64)
        .collect();
    Ok(EpochRecord {
        epoch: 0,
        loss: f64::from(train_maps.mean().unwrap_or(0.0)),
        val_loss: f64::from(val_maps.mean().unwrap_or(0.0)),
        mse,
        val_mse,
        val_mse_per_channel: per_channel,
        val_weighted_total: weighted.iter().sum(),
        val_weighted_per_channel: weighted,
        seconds: fit_seconds,
    })
}

/// Mean squared error between scaled images and their reconstructions: overall and per
/// channel.
fn mean_reconstruction_mse(
    model: &TrainedModel,
    data: &Array3<f32>,
    labels: Option<&Array2<f32>>,
) -> Result<(f64, Vec<f64>), ModelError> {
    let (recon, scaled) = model.reconstruct_scaled(data.view(), labels.map(|l| l.view()))?;
    let c = scaled.dim().2;
    let mut per = vec![0.0f64; c];
    for (k, acc) in per.iter_mut().enumerate() {
        let (a, b) = (scaled.index_axis(Axis(2), k), recon.index_axis(Axis(2), k));
        let n = a.len().max(1) as f64;
        *acc = a
            .iter()
            .zip(b.iter())
            .map(|(x, y)| f64::from(x - y).powi(2))
            .sum::<f64>()
            / n;
    }
    let all = per.iter().sum::<f64>() / c.max(1) as f64;
    Ok((all, per))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::config::Parameters;
    use crate::model::export::{NamedTensor, named_tensors};
    use crate::model::store::network_from_record;

    fn settings(extra: &str) -> ModelTraining {
        let text = format!(
            "model_training:\n  autoencoder_architecture: [4]\n  n_epochs: 15\n  batchsize: 4\n  learning_rate: 0.01\n  patience: 50\n  seed: 7\n  device: cpu\n{extra}"
        );
        Parameters::from_yaml(&text, Path::new("parameters.yaml"))
            .unwrap()
            .model_training
    }

    /// `n` images of 2x3 pooled pixels x 2 channels that differ a little from image to image.
    fn images(n: usize) -> TrainingData {
        let (h, w) = (2, 3);
        let data = Array3::from_shape_fn((n, h * w, 2), |(i, p, k)| {
            10.0 + 5.0 * p as f32 + 3.0 * k as f32 + ((i * 7 + p * 3 + k) % 5) as f32
        });
        let data_max = data.iter().copied().fold(0.0f32, f32::max);
        TrainingData {
            name: "t".into(),
            source: PathBuf::from("t/out.npz"),
            data,
            labels: None,
            pooled: (h, w),
            channels: vec!["a".into(), "b".into()],
            weights: vec![3.0, 1.0],
            files: (0..n).map(|i| format!("img{i}.png")).collect(),
            label_types: Vec::new(),
            data_max,
            part_mask: vec![1.0; h * w],
        }
    }

    /// numpy's `x.mean(0)` and `x.std(0)` (ddof 0) of (pixel, channel) `(j, k)` over `rows` of
    /// `x = data / data.max()`, in float64.
    fn mean_std(d: &TrainingData, rows: &[usize], j: usize, k: usize) -> (f64, f64) {
        let xs: Vec<f64> = rows
            .iter()
            .map(|&i| f64::from(d.data[[i, j, k]]) / f64::from(d.data_max))
            .collect();
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-3)
    }

    #[test]
    fn pixel_stats_are_numpy_mean_and_std_with_out_of_fold_calibration() {
        let d = images(10);
        let m = settings("  model_type: pixel_stats\n  calibration_folds: 3\n");
        let f = fit(&d, &m, &mut NoProgress).unwrap();
        let Net::PixelStats(s) = &f.model.net else {
            panic!("not a pixel_stats model");
        };
        let all: Vec<usize> = (0..10).collect();
        for j in 0..6 {
            for k in 0..2 {
                let (mean, std) = mean_std(&d, &all, j, k);
                assert!(close(f64::from(s.mean[[j, k]]), mean, 1e-6), "{j} {k}");
                assert!(close(f64::from(s.std[[j, k]]), std, 1e-5), "{j} {k}");
            }
        }
        // Each image's calibration residual is its z-score under the other folds' statistics.
        let cal = f.model.calibration_residuals().unwrap();
        assert_eq!(cal.dim(), (10, 6, 2));
        let folds = data::folds(10, 3, 7).unwrap();
        for fold in &folds {
            let rest = data::complement(10, fold);
            for &i in fold {
                for j in 0..6 {
                    for k in 0..2 {
                        let (mean, std) = mean_std(&d, &rest, j, k);
                        let x = f64::from(d.data[[i, j, k]]) / f64::from(d.data_max);
                        let z = (x - mean) / std.max(1e-6);
                        // float32 arithmetic on values near the mean: an absolute tolerance.
                        let got = f64::from(cal[[i, j, k]]);
                        assert!((got - z).abs() < 1e-4, "{i} {j} {k}: {got} vs {z}");
                    }
                }
            }
        }
        // The description and the one "epoch": the validation loss is fold 0's mean squared
        // out-of-fold z-score.
        let spec = f.spec();
        assert_eq!(spec.kind, ModelKind::PixelStats);
        assert_eq!(spec.std_floor, Some(s.std_floor));
        assert_eq!(spec.calibration_folds, 3);
        assert_eq!(spec.calibration_files, d.files);
        let want: Vec<String> = folds[0].iter().map(|&i| d.files[i].clone()).collect();
        assert_eq!(spec.validation_files, want);
        assert_eq!(spec.weights_file, None);
        assert_eq!(
            spec.safetensors_file.as_deref(),
            Some("testModel.safetensors")
        );
        assert!(spec.checksums.is_empty());
        assert_eq!(
            (f.epochs_run(), f.best_epoch, f.stopped_early),
            (1, 1, false)
        );
        let val = mean_square(&cal.select(Axis(0), &folds[0]));
        assert_eq!(f.best_val_loss, f64::from(val.mean().unwrap()));
        assert_eq!(f.history[0].val_loss, f.best_val_loss);
        assert_eq!(f.split.train, data::complement(10, &folds[0]));
    }

    /// Records what a fit reports, and asks for every checkpoint.
    #[derive(Default)]
    struct Recorder {
        started: Vec<FoldStart>,
        epochs: usize,
        finished: usize,
        checkpoints: Vec<(usize, Vec<u8>)>,
    }

    impl FitProgress for Recorder {
        fn fold_started(&mut self, f: &FoldStart) {
            self.started.push(f.clone());
        }
        fn epoch(&mut self, _: &EpochRecord) {
            self.epochs += 1;
        }
        fn checkpoint_due(&mut self) -> bool {
            true
        }
        fn checkpoint(&mut self, record: &[u8]) -> Result<(), ModelError> {
            let fold = self.started.last().map_or(usize::MAX, |f| f.fold);
            self.checkpoints.push((fold, record.to_vec()));
            Ok(())
        }
        fn fold_finished(&mut self) {
            self.finished += 1;
        }
    }

    fn tensors(f: &Fitted) -> Vec<NamedTensor> {
        match &f.model.net {
            Net::Autoencoder(net, None) => named_tensors(net.as_ref()),
            _ => panic!("not a scaled-input autoencoder"),
        }
    }

    #[test]
    fn tiny_autoencoder_learns_reproduces_and_reports_progress() {
        let d = images(20);
        let m = settings(
            "  loss_function: mse\n  masked_loss: false\n  regularization: none\n  input_normalization: scale\n  calibration_folds: 2\n",
        );
        let mut progress = Recorder::default();
        let a = fit(&d, &m, &mut progress).unwrap();

        // The loss goes down; the kept epoch is the best validation loss.
        let h = &a.history;
        assert_eq!((a.epochs_run(), a.stopped_early), (15, false));
        assert!(h[14].loss < h[0].loss, "{h:?}");
        assert!(h[14].val_loss < h[0].val_loss, "{h:?}");
        let best = h
            .iter()
            .min_by(|x, y| x.val_loss.total_cmp(&y.val_loss))
            .unwrap();
        assert_eq!(a.best_epoch, best.epoch + 1);
        assert_eq!(a.best_val_loss, best.val_loss);

        // Two folds trained, each reported; only fold 0's (deployed) weights were
        // checkpointed, and the last checkpoint is the deployed network.
        let folds: Vec<usize> = progress.started.iter().map(|f| f.fold).collect();
        assert_eq!(folds, [0, 1]);
        assert_eq!(
            (progress.started[0].n_train, progress.started[0].n_val),
            (10, 10)
        );
        assert_eq!((progress.epochs, progress.finished), (30, 2));
        assert!(progress.checkpoints.iter().all(|(fold, _)| *fold == 0));
        let (_, last) = progress.checkpoints.last().unwrap();
        let config = a.spec().autoencoder.clone().unwrap();
        assert_eq!(config.architecture, [4]);
        assert_eq!(config.input_dim, 12);
        let restored = network_from_record(&config, last.clone(), Path::new("x.mpk")).unwrap();
        assert_eq!(named_tensors(&restored), tensors(&a));

        // Fold 0's calibration rows are the deployed model's residuals.
        let fold0 = &a.split.validation;
        let cal = a.model.calibration_residuals().unwrap();
        let r = a
            .model
            .residuals(d.data.select(Axis(0), fold0).view(), None)
            .unwrap();
        assert_eq!(r, cal.select(Axis(0), fold0));
        assert_eq!(a.spec().weights_file.as_deref(), Some("testModel.mpk"));

        // Same seed, same weights and residuals; another seed, other weights.
        let b = fit(&d, &m, &mut NoProgress).unwrap();
        assert_eq!(tensors(&a), tensors(&b));
        assert_eq!(
            a.model.calibration_residuals(),
            b.model.calibration_residuals()
        );
        let mut m2 = m.clone();
        m2.seed = 8;
        let c = fit(&d, &m2, &mut NoProgress).unwrap();
        assert_ne!(tensors(&a), tensors(&c));
    }

    #[test]
    fn parts_that_disagree_are_refused() {
        let m = settings("  model_type: pixel_stats\n");
        let mut d = images(4);
        d.files.pop();
        d.weights.push(1.0);
        let e = fit(&d, &m, &mut NoProgress).unwrap_err().to_string();
        assert!(
            e.contains("3 file names for 4 images")
                && e.contains("2 channel names and 3 weights for 2 channels"),
            "{e}"
        );
    }

    #[test]
    fn one_image_cannot_be_cross_validated() {
        let m = settings("  model_type: pixel_stats\n");
        let e = fit(&images(1), &m, &mut NoProgress)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t/out.npz") && e.contains("at least 2 good images"),
            "{e}"
        );
    }
}
