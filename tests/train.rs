//! Training tests: the autoencoder and pixel_stats models trained on small generated npz files
//! (loss goes down, seeds reproduce, one-hot trains, saved models reload and give the same
//! maps), pixel_stats against numpy, and `pixal train` on make_input's output.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};

use ndarray::{Array2, Array3, Axis};
use ndarray_npy::ReadNpyExt;
use pixal::commands::train::train_npz;
use pixal::config::Parameters;
use pixal::io::npz::{InputData, write_input};
use pixal::model::{self, LossHistory, ModelKind, TrainedModel};

fn params(extra: &str) -> Parameters {
    let text = format!(
        "preprocessing:\n  preprocessor:\n    channels: [LAB_a, LAB_b]\n    weights: [3.0, 1.0]\nmodel_training:\n  autoencoder_architecture: [16, 8]\n  n_epochs: 12\n  batchsize: 4\n  learning_rate: 0.01\n  patience: 50\n  seed: 7\n{extra}"
    );
    Parameters::from_yaml(&text, Path::new("parameters.yaml")).unwrap()
}

/// `n` images of 6x4 pooled pixels x 2 channels: a smooth part whose brightness varies a
/// little from image to image, on a zero background (so the masked loss has zeros to skip).
fn images(n: usize, labels: Option<usize>) -> InputData {
    let (h, w) = (6, 4);
    let data = Array3::from_shape_fn((n, h * w, 2), |(i, p, c)| {
        let (y, x) = (p / w, p % w);
        if y == 0 {
            return 0.0;
        }
        let base = 60.0 + 20.0 * x as f32 + 10.0 * y as f32 + 30.0 * c as f32;
        base + ((i * 7 + p * 3 + c) % 5) as f32
    });
    let labels =
        labels.map(|t| Array2::from_shape_fn((n, t), |(i, k)| f32::from(u8::from(i % t == k))));
    InputData {
        data,
        shape: (h, w),
        labels,
        part: None,
    }
}

fn write(dir: &Path, input: &InputData) -> PathBuf {
    let p = dir.join("out.npz");
    write_input(&p, input).unwrap();
    p
}

fn npy3(path: &Path) -> Array3<f32> {
    Array3::<f32>::read_npy(File::open(path).unwrap()).unwrap()
}

fn npy2(p: &Path) -> Array2<f32> {
    Array2::<f32>::read_npy(File::open(p).unwrap()).unwrap()
}

fn history(model_dir: &Path) -> LossHistory {
    serde_json::from_slice(&std::fs::read(model_dir.join(model::LOSS_HISTORY_FILE)).unwrap())
        .unwrap()
}

#[test]
fn pixel_stats_matches_numpy() {
    let g = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/pixel_stats");
    let data = Array3::<f32>::read_npy(File::open(g.join("data.npy")).unwrap()).unwrap();
    let want_mean = npy2(&g.join("mean.npy"));
    let want_std = npy2(&g.join("std.npy"));
    let max = model::data::data_max(data.view()).unwrap();
    let rows: Vec<usize> = (0..data.dim().0).collect();
    let s = model::pixel_stats::fit(data.view(), &rows, max);
    for (got, want) in [(&s.mean, &want_mean), (&s.std, &want_std)] {
        assert_eq!(got.dim(), want.dim());
        for (a, b) in got.iter().zip(want.iter()) {
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1e-3),
                "{a} vs numpy {b}"
            );
        }
    }
    assert_eq!(s.std[[3, 0]], 0.0);
}

#[test]
fn autoencoder_trains_reloads_and_reproduces() {
    let tmp = tempfile::tempdir().unwrap();
    let npz = write(tmp.path(), &images(20, None));
    let p = params("  loss_function: mse\n  masked_loss: false\n  regularization: l2\n");
    let dir_a = tmp.path().join("a/model");
    let r = train_npz(&p, &npz, None, &dir_a, &tmp.path().join("a/metadata"))
        .unwrap()
        .fitted;
    assert_eq!(r.spec().kind, ModelKind::Autoencoder);
    assert_eq!(
        (
            r.split.train.len(),
            r.split.validation.len(),
            r.epochs_run()
        ),
        (16, 4, 12)
    );

    // The loss goes down.
    let h = history(&dir_a);
    assert_eq!(h.train_loss.len(), 12);
    assert!(
        h.train_loss[11] < 0.5 * h.train_loss[0],
        "{:?}",
        h.train_loss
    );
    assert!(h.val_loss[11] < h.val_loss[0], "{:?}", h.val_loss);
    assert_eq!(h.epochs[0].val_mse_per_channel.len(), 2);
    let e = &h.epochs[3];
    let sum: f64 = e.val_weighted_per_channel.iter().sum();
    assert!((sum - e.val_weighted_total).abs() < 1e-12);

    // Every file is there.
    for f in [
        "testModel.mpk",
        "testModel.safetensors",
        model::MODEL_CONFIG_FILE,
        model::LOSS_HISTORY_FILE,
        model::LOSS_PLOT_FILE,
        model::CALIBRATION_RESIDUALS_FILE,
        model::PART_MASK_FILE,
    ] {
        assert!(dir_a.join(f).is_file(), "{f} missing");
    }
    let meta = std::fs::read_to_string(tmp.path().join("a/metadata/testModel.yaml")).unwrap();
    for key in [
        "data_max:",
        "input_dim: 48",
        "best_epoch:",
        "total_training_seconds:",
        "validation_files:",
        "learning_rate: 0.01",
    ] {
        assert!(meta.contains(key), "{key} not in metadata:\n{meta}");
    }

    // The reloaded model gives exactly the maps computed right after training.
    let m = TrainedModel::load(&dir_a).unwrap();
    assert_eq!(m.kind(), ModelKind::Autoencoder);
    assert_eq!(m.input_shape(), (24, 2));
    assert_eq!(m.pooled_shape(), (6, 4));
    assert_eq!(m.weights(), &[3.0, 1.0]);
    let input = images(20, None);
    // The deployed weights are fold 0's: its held-out rows' calibration residuals are exactly
    // what the reloaded model computes for them.
    let val_rows: Vec<usize> = model::data::folds(20, 5, 7).unwrap()[0].clone();
    let val = input.data.select(Axis(0), &val_rows);
    let cal = npy3(&dir_a.join(model::CALIBRATION_RESIDUALS_FILE));
    assert_eq!(cal.dim(), (20, 24, 2));
    assert!(cal.iter().all(|v| v.is_finite()));
    assert_eq!(
        m.residuals(val.view(), None).unwrap(),
        cal.select(Axis(0), &val_rows)
    );
    let saved = model::mean_square(&cal.select(Axis(0), &val_rows));
    assert_eq!(m.error_maps(val.view(), None).unwrap(), saved);
    let (recon, scaled) = m.reconstruct_scaled(val.view(), None).unwrap();
    assert_eq!(recon.dim(), (4, 24, 2));
    let again = TrainedModel::load(&dir_a).unwrap();
    assert_eq!(again.reconstruct_scaled(val.view(), None).unwrap().0, recon);
    let max = input.data.iter().copied().fold(0.0f32, f32::max);
    assert!((scaled[[0, 5, 1]] - val[[0, 5, 1]] / max).abs() < 1e-7);
    // Reconstructions are close to the inputs after training.
    let err = saved.mean().unwrap();
    assert!(err < 0.05, "mean validation error {err}");
    // Wrong shapes are refused with a clear message.
    let e = m
        .error_maps(Array3::<f32>::zeros((1, 5, 2)).view(), None)
        .unwrap_err();
    assert!(e.to_string().contains("5 pixels"), "{e}");

    // Same seed, same weights; another seed, other weights.
    let dir_b = tmp.path().join("b/model");
    train_npz(&p, &npz, None, &dir_b, &tmp.path().join("b/metadata")).unwrap();
    let read =
        |d: &Path| model::export::read_safetensors(&d.join("testModel.safetensors")).unwrap();
    assert_eq!(read(&dir_a), read(&dir_b));
    let mut p2 = p.clone();
    p2.model_training.seed = 8;
    let dir_c = tmp.path().join("c/model");
    train_npz(&p2, &npz, None, &dir_c, &tmp.path().join("c/metadata")).unwrap();
    assert_ne!(read(&dir_a), read(&dir_c));
}

#[test]
fn default_masked_huber_and_early_stopping() {
    let tmp = tempfile::tempdir().unwrap();
    let npz = write(tmp.path(), &images(10, None));
    // The shipped loss (masked huber, l2 activity) with a min_delta no epoch can beat: stops
    // after `patience` epochs past the first, keeping epoch 1.
    let mut p = params("  min_delta: 100.0\n");
    p.model_training.patience = 3;
    let dir = tmp.path().join("model");
    let r = train_npz(&p, &npz, None, &dir, &tmp.path().join("metadata"))
        .unwrap()
        .fitted;
    assert!(r.stopped_early);
    assert_eq!((r.epochs_run(), r.best_epoch), (4, 1));
    assert!(r.best_val_loss.is_finite());
}

#[test]
fn one_hot_model_trains_and_needs_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let input = images(12, Some(3));
    let npz = write(tmp.path(), &input);
    let p = params("  one_hot_encoding: true\n  label_latent_size: 4\n");
    let dir = tmp.path().join("model");
    let r = train_npz(&p, &npz, None, &dir, &tmp.path().join("metadata"))
        .unwrap()
        .fitted;
    let h = history(&dir);
    assert!(
        h.train_loss[r.epochs_run() - 1] < h.train_loss[0],
        "{:?}",
        h.train_loss
    );
    let m = TrainedModel::load(&dir).unwrap();
    assert_eq!(m.label_types(), &["type_0", "type_1", "type_2"]);
    let labels = input.labels.clone().unwrap();
    let maps = m
        .error_maps(input.data.view(), Some(labels.view()))
        .unwrap();
    assert_eq!(maps.dim(), (12, 24));
    let e = m.error_maps(input.data.view(), None).unwrap_err();
    assert!(e.to_string().contains("needs labels"), "{e}");
    // A one-hot config on a file without labels is refused by name.
    let plain = tmp.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let npz2 = write(&plain, &images(5, None));
    let e = train_npz(&p, &npz2, None, &plain.join("m"), &plain.join("md")).unwrap_err();
    assert!(e.to_string().contains("labels"), "{e}");
}

#[test]
fn pixel_stats_model_files_and_calibration() {
    let tmp = tempfile::tempdir().unwrap();
    let input = images(10, None);
    let npz = write(tmp.path(), &input);
    let p = params("  model_type: pixel_stats\n");
    let dir = tmp.path().join("model");
    let r = train_npz(&p, &npz, None, &dir, &tmp.path().join("metadata"))
        .unwrap()
        .fitted;
    assert_eq!(
        (r.spec().kind, r.split.train.len(), r.split.validation.len()),
        (ModelKind::PixelStats, 8, 2)
    );
    for f in [
        model::MEAN_FILE,
        model::STD_FILE,
        model::CALIBRATION_RESIDUALS_FILE,
        model::PART_MASK_FILE,
        model::MODEL_CONFIG_FILE,
        model::LOSS_HISTORY_FILE,
        "testModel.safetensors",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let m = TrainedModel::load(&dir).unwrap();
    assert_eq!(m.kind(), ModelKind::PixelStats);
    let h = history(&dir);
    assert_eq!(h.epochs.len(), 1);
    assert_eq!(h.epochs[0].val_mse_per_channel.len(), 2);
    // Each fold's calibration residuals come from the statistics of the other folds.
    let max = input.data.iter().copied().fold(0.0f32, f32::max);
    let cal = npy3(&dir.join(model::CALIBRATION_RESIDUALS_FILE));
    assert_eq!(cal.dim(), (10, 24, 2));
    for fold in model::data::folds(10, 5, 7).unwrap() {
        let rest = model::data::complement(10, &fold);
        let s = model::pixel_stats::fit(input.data.view(), &rest, max);
        let want = s.residuals(input.data.select(Axis(0), &fold).view(), max);
        assert_eq!(cal.select(Axis(0), &fold), want);
    }
    // The deployed reconstruction is the mean of all the images.
    let (recon, _) = m.reconstruct_scaled(input.data.view(), None).unwrap();
    let mean = input
        .data
        .index_axis(Axis(1), 7)
        .index_axis(Axis(1), 0)
        .iter()
        .map(|v| f64::from(v / max))
        .sum::<f64>()
        / 10.0;
    assert!((f64::from(recon[[1, 7, 0]]) - mean).abs() < 1e-6);

    // One image is below the default gate (5 images): refused, naming the gate and the
    // setting, and nothing is written.
    let one = tmp.path().join("one");
    std::fs::create_dir_all(&one).unwrap();
    let npz1 = write(&one, &images(1, None));
    let e = train_npz(&p, &npz1, None, &one.join("model"), &one.join("metadata"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("only 1 of 1 image(s)")
            && e.contains("quality_gates.min_images 5")
            && e.contains("min_images: 1"),
        "{e}"
    );
    assert!(!one.join("model").exists());
    // Even with the gate lowered, one image cannot be scored by a model that did not see it.
    let p = params("  model_type: pixel_stats\nquality_gates:\n  min_images: 1\n");
    let e = train_npz(&p, &npz1, None, &one.join("model"), &one.join("metadata")).unwrap_err();
    assert!(e.to_string().contains("at least 2 good images"), "{e}");
    assert!(!one.join("model").join(model::MODEL_CONFIG_FILE).exists());
}

// ---- the command line ----

/// Runs pixal in `dir`: (exit code, stderr).
fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    let (code, _, err) = common::run_pixal(dir, args);
    (code, err)
}

/// A 40x30 image: dark background, a coloured block that shifts a little with `i`.
fn part_image(i: u32, colour: [u8; 3]) -> image::RgbImage {
    let mut img = image::RgbImage::new(40, 30);
    for y in 8..20 {
        for x in (10 + i % 3)..(30 + i % 2) {
            let k = ((x + y + i) % 7) as u8;
            img.put_pixel(
                x,
                y,
                image::Rgb([
                    colour[0].saturating_add(k),
                    colour[1],
                    colour[2].saturating_sub(k),
                ]),
            );
        }
    }
    img
}

#[test]
fn cli_trains_every_type_from_make_input_output() {
    let tmp = common::temp_project();
    let root = tmp.path();
    let cfg = root.join("configs");
    let pf = cfg.join("parameters.yaml");
    let text = std::fs::read_to_string(&pf)
        .unwrap()
        .replacen(
            "autoencoder_architecture: [32]",
            "autoencoder_architecture: [16, 8]",
            1,
        )
        .replacen("n_epochs: 500", "n_epochs: 4", 1)
        .replacen(
            "model_type: \"pixel_stats\"",
            "model_type: \"autoencoder\"",
            1,
        );
    std::fs::write(&pf, text).unwrap();
    for (ty, colour) in [("front", [200u8, 60, 40]), ("back", [40, 90, 200])] {
        let d = root.join("photos").join(ty);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..6 {
            part_image(i, colour)
                .save(d.join(format!("img_{i}.png")))
                .unwrap();
        }
    }
    let (code, err) = run(root, &["make_input", "-i", "photos"]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = run(root, &["train"]);
    assert_eq!(code, 0, "{err}");
    let comp = root.join("out/Data_set_R0_Triplet_Data_F1_2ps_6var");
    for ty in ["front", "back"] {
        let model_dir = comp.join(ty).join("model");
        for f in [
            "testModel.mpk",
            "testModel.safetensors",
            "model_config.json",
            "loss_history.json",
            "loss_plot.png",
            "calibration_residuals.npy",
        ] {
            assert!(
                model_dir.join(f).is_file(),
                "{ty}/{f} missing; stderr:\n{err}"
            );
        }
        assert!(comp.join(ty).join("metadata/testModel.yaml").is_file());
        assert!(comp.join(ty).join("logs/train_model.log").is_file());
        let m = TrainedModel::load(&model_dir).unwrap();
        // The validation rows are named after the source photos.
        assert_eq!(m.spec().validation_files.len(), 2);
        assert!(
            m.spec()
                .validation_files
                .iter()
                .all(|f| f.contains(ty) && f.ends_with(".png")),
            "{:?}",
            m.spec().validation_files
        );
        assert_eq!(m.channels(), &["LAB_a", "LAB_b"]);
    }
    assert!(
        err.contains("train front") && err.contains("train back"),
        "{err}"
    );

    // plot_loss: False is honoured; a key without effect in pixal is named once per run.
    let text = std::fs::read_to_string(&pf)
        .unwrap()
        .replacen("plot_loss: True", "plot_loss: False", 1)
        .replacen("Available_CPU: 24", "Available_CPU: 4", 1);
    std::fs::write(&pf, text).unwrap();
    let (code, err) = run(root, &["train"]);
    assert_eq!(code, 0, "{err}");
    assert!(!comp.join("front/model/loss_plot.png").exists());
    assert!(comp.join("front/model/loss_history.json").is_file());
    assert_eq!(
        err.matches("model_training.Available_CPU has no effect")
            .count(),
        1,
        "{err}"
    );
    let meta = std::fs::read_to_string(comp.join("front/metadata/testModel.yaml")).unwrap();
    assert!(meta.contains("experiment_name: Test_Experiment"), "{meta}");

    // -i on one type's folder, pixel_stats; a broken npz fails alone (exit 1), the other trains.
    let text = std::fs::read_to_string(&pf).unwrap().replacen(
        "model_type: \"autoencoder\"",
        "model_type: \"pixel_stats\"",
        1,
    );
    std::fs::write(&pf, text).unwrap();
    std::fs::write(comp.join("back/out.npz"), b"not an npz").unwrap();
    let (code, err) = run(root, &["train", "-i", comp.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("back") && err.contains("bad npz"), "{err}");
    let m = TrainedModel::load(&comp.join("front/model")).unwrap();
    assert_eq!(m.kind(), ModelKind::PixelStats);

    // Nothing to train: exit 2 with a hint.
    let (code, err) = run(root, &["train", "-i", "photos"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("make_input"), "{err}");
}

/// `device: cuda` where CUDA cannot be used is a configuration error, never a panic: exit 2
/// with one message naming the key (and, in a build without the `cuda` feature, the feature to
/// build with), before any type reads its data, so no model is written. Where a CUDA build
/// finds a driver (a GPU machine, or a driver without a GPU) the run may train or fail, but
/// still never with a panic (exit 101).
#[test]
fn cli_device_cuda_without_cuda_is_a_clear_error() {
    use pixal::model::device::{CUDA_BUILT, driver_library_present};
    let tmp = common::temp_project();
    let root = tmp.path();
    common::edit_params(
        root,
        "autoencoder_architecture: [32]",
        "autoencoder_architecture: [16, 8]",
    );
    common::edit_params(root, "n_epochs: 500", "n_epochs: 2");
    common::edit_params(
        root,
        "model_type: \"pixel_stats\"",
        "model_type: \"autoencoder\"",
    );
    common::edit_params(root, "device: \"auto\"", "device: \"cuda\"");
    let d = root.join("photos/front");
    std::fs::create_dir_all(&d).unwrap();
    for i in 0..4 {
        part_image(i, [200, 60, 40])
            .save(d.join(format!("img_{i}.png")))
            .unwrap();
    }
    let (code, err) = run(root, &["make_input", "-i", "photos"]);
    assert_eq!(code, 0, "{err}");

    let (code, err) = run(root, &["train"]);
    assert_ne!(code, 101, "pixal panicked:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    if CUDA_BUILT && driver_library_present() {
        // The probe decides; either way the answer is not a crash.
        assert!(code == 0 || code == 2, "exit {code}:\n{err}");
        return;
    }
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("model_training.device") && err.contains("parameters.yaml"),
        "{err}"
    );
    if CUDA_BUILT {
        assert!(err.contains("driver"), "{err}");
    } else {
        assert!(err.contains("--features cuda"), "{err}");
    }
    // One message for the run, not one per type, and nothing trained.
    assert_eq!(err.matches("model_training.device").count(), 1, "{err}");
    let comp = root.join("out/Data_set_R0_Triplet_Data_F1_2ps_6var");
    assert!(!comp.join("front/model").exists());
}
