//! Runs a lab can trust (issue 10): pixal never says "good" when it does not know. Each test
//! reproduces one fail-open path, crash or unusable result of the issue on small generated
//! photos and checks that it is now refused with a clear error, or reported as it should be.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use image::{Rgb, RgbImage};
use ndarray::Axis;
use pixal::commands::train::train_npz;
use pixal::io::metadata::{PreprocessingMetadata, read_yaml, write_yaml};
use pixal::io::npz::{read_input, write_input};
use pixal::model::{self, ModelKind, TrainedModel};

fn pixal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pixal"))
}

/// A temp project (shipped configs, outputs inside it) with model-free background removal and
/// a small fast model.
struct Project {
    dir: tempfile::TempDir,
}

/// What one pixal run gave back.
struct Run {
    code: i32,
    out: String,
    err: String,
}

impl Run {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.out.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}):\n{}", self.out))
    }
}

impl Project {
    fn new(model_type: &str) -> Project {
        let dir = common::temp_project();
        let p = Project { dir };
        p.edit("method: auto ", "method: classical ");
        p.edit(
            "autoencoder_architecture: [32]",
            "autoencoder_architecture: [16, 8]",
        );
        p.edit("n_epochs: 500", "n_epochs: 3");
        p.edit(
            "model_type: \"pixel_stats\"",
            &format!("model_type: \"{model_type}\""),
        );
        p
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn edit(&self, from: &str, to: &str) {
        common::edit_params(self.path(), from, to);
    }

    fn run(&self, args: &[&str]) -> Run {
        let o = pixal()
            .current_dir(self.path())
            .args(args)
            .output()
            .unwrap();
        Run {
            code: o.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&o.stdout).into_owned(),
            err: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    fn component(&self) -> PathBuf {
        self.path().join("out/Data_set_R0_Triplet_Data_F1_2ps_6var")
    }

    fn validate_root(&self) -> PathBuf {
        self.path()
            .join("validate/Data_set_R0_Triplet_Data_F1_d1_2ps_6var")
    }

    fn model_dir(&self, ty: &str) -> PathBuf {
        self.component().join(ty).join("model")
    }

    /// Writes `n` good photos of type `front` under `photos/` and preprocesses and trains them.
    fn trained(model_type: &str, n: u32) -> Project {
        let p = Project::new(model_type);
        write_photos(&p.path().join("photos/front"), 0..n, None);
        let r = p.run(&["preprocess", "-i", "photos"]);
        assert_eq!(r.code, 0, "{}", r.err);
        let r = p.run(&["train"]);
        assert_eq!(r.code, 0, "{}", r.err);
        p
    }
}

/// A 40x30 photo: dark background, a copper-coloured part whose texture varies with `i`, and
/// optionally a cyan 4x4 defect at (x, y).
fn photo(i: u32, defect: Option<(u32, u32)>) -> RgbImage {
    let mut img = RgbImage::from_pixel(40, 30, Rgb([4, 4, 4]));
    // The part fills most of the frame, so the cropped images are mostly part.
    for y in 3..27 {
        for x in 3..37 {
            let k = ((x * 3 + y * 5 + i * 7) % 11) as u8;
            img.put_pixel(x, y, Rgb([180 + k, 110 + k / 2, 60 + (k % 3)]));
        }
    }
    if let Some((dx, dy)) = defect {
        for y in dy..dy + 4 {
            for x in dx..dx + 4 {
                img.put_pixel(x, y, Rgb([40, 200, 250]));
            }
        }
    }
    img
}

fn write_photos(dir: &Path, range: std::ops::Range<u32>, defect: Option<(u32, u32)>) {
    std::fs::create_dir_all(dir).unwrap();
    for i in range {
        photo(i, defect)
            .save(dir.join(format!("img_{i:02}.png")))
            .unwrap();
    }
}

// ---- 1. NaN never means "good" ----

#[test]
fn nan_in_the_validate_input_fails_the_image_instead_of_calling_it_good() {
    let p = Project::trained("pixel_stats", 8);
    write_photos(&p.path().join("new/front"), 20..23, None);
    let r = p.run(&["validate", "-i", "new"]);
    assert_eq!(r.code, 0, "{}", r.err);
    // Damage one row of the preprocessed validation input, then detect on it.
    let npz = p.validate_root().join("front/out.npz");
    let mut input = read_input(&npz).unwrap();
    input.data.index_axis_mut(Axis(0), 1).fill(f32::NAN);
    write_input(&npz, &input).unwrap();
    // ...and declare an absurd photo size for another (it used to abort allocating 40 GB).
    let meta_path = p.validate_root().join("front/metadata/preprocessing.yaml");
    let mut meta: PreprocessingMetadata = read_yaml(&meta_path).unwrap();
    meta.rows[2].photo_size = [100_000, 100_000];
    // The metadata vouches for this npz, as if make_input itself had produced the NaN.
    meta.npz_sha256 = Some(pixal::io::sha256_file(&npz).unwrap());
    write_yaml(&meta_path, &meta).unwrap();
    let r = p.run(&["--json", "detect"]);
    assert_eq!(r.code, 1, "{}", r.err);
    let v = r.json();
    let failed = v["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{v}");
    let msg = failed[0]["error"].as_str().unwrap();
    assert!(
        msg.contains("img_21") && msg.contains("not finite numbers"),
        "{msg}"
    );
    let msg = failed[1]["error"].as_str().unwrap();
    assert!(
        msg.contains("img_22") && msg.contains("photo_size 100000x100000"),
        "{msg}"
    );
    // The intact photo still gets its verdict; the damaged ones get none.
    let images = v["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{v}");
    assert!(images[0]["file"].as_str().unwrap().contains("img_20"));
}

#[test]
fn diverging_training_fails_and_keeps_the_previous_model() {
    let tmp = tempfile::tempdir().unwrap();
    let npz = tmp.path().join("out.npz");
    let input = pixal::io::npz::InputData {
        data: ndarray::Array3::from_shape_fn((10, 24, 2), |(i, p, c)| {
            50.0 + (p * 3 + c * 7 + i) as f32 % 17.0
        }),
        shape: (6, 4),
        labels: None,
        part: None,
    };
    write_input(&npz, &input).unwrap();
    let yaml = |extra: &str| {
        pixal::config::Parameters::from_yaml(
            &format!(
                "preprocessing:\n  preprocessor:\n    weights: [1.0, 1.0]\nmodel_training:\n  autoencoder_architecture: [16, 8]\n  n_epochs: 30\n  batchsize: 4\n{extra}"
            ),
            Path::new("parameters.yaml"),
        )
        .unwrap()
    };
    let dir = tmp.path().join("model");
    let md = tmp.path().join("metadata");
    train_npz(&yaml("  model_type: pixel_stats\n"), &npz, None, &dir, &md).unwrap();
    let before = std::fs::read(dir.join(model::MODEL_CONFIG_FILE)).unwrap();
    let e = train_npz(&yaml("  learning_rate: 1.0e12\n"), &npz, None, &dir, &md)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("training diverged") && e.contains("learning_rate"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(dir.join(model::MODEL_CONFIG_FILE)).unwrap(),
        before
    );
    assert_eq!(
        TrainedModel::load(&dir).unwrap().kind(),
        ModelKind::PixelStats
    );
    assert!(!dir.join("testModel.mpk").exists());
}

#[test]
fn a_weight_file_that_does_not_match_its_checksum_is_refused() {
    let p = Project::trained("autoencoder", 8);
    let model = p.model_dir("front");
    TrainedModel::load(&model).unwrap();
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("model_config.json")).unwrap()).unwrap();
    assert_eq!(
        spec["checksums"]["testModel.mpk"].as_str().unwrap().len(),
        64
    );
    // Random bytes in the weights, as a damaged disk or a half-copied folder gives.
    let mpk = model.join("testModel.mpk");
    let mut bytes = std::fs::read(&mpk).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    std::fs::write(&mpk, &bytes).unwrap();
    let e = TrainedModel::load(&model)
        .expect_err("damaged weights must not load")
        .to_string();
    assert!(e.contains("testModel.mpk") && e.contains("checksum"), "{e}");
    write_photos(&p.path().join("new/front"), 20..21, None);
    let r = p.run(&["--json", "validate", "-i", "new"]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(
        r.json()["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("checksum")
    );
    assert!(r.json()["images"].is_null());
}

// ---- 2. Whole models ----

#[test]
fn killed_retrain_leaves_the_previous_model_whole_and_the_next_run_cleans_up() {
    let p = Project::trained("pixel_stats", 8);
    let model = p.model_dir("front");
    let config_before = std::fs::read(model.join("model_config.json")).unwrap();
    // A long autoencoder retrain, killed once it has written a checkpoint of new weights.
    p.edit("model_type: \"pixel_stats\"", "model_type: \"autoencoder\"");
    p.edit("n_epochs: 3", "n_epochs: 1000000");
    p.edit("patience: 10 ", "patience: 1000000 ");
    let mut child = pixal()
        .current_dir(p.path())
        .args(["-q", "train"])
        .spawn()
        .unwrap();
    let front = p.component().join("front");
    let start = std::time::Instant::now();
    let staged = loop {
        let found = std::fs::read_dir(&front).unwrap().flatten().find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".pixal-tmp-model")
                && e.path().join("testModel.mpk").is_file()
        });
        if let Some(e) = found {
            break e.path();
        }
        assert!(
            start.elapsed().as_secs() < 120,
            "no checkpoint written in 120 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    // The model folder is the old one, whole.
    assert_eq!(
        std::fs::read(model.join("model_config.json")).unwrap(),
        config_before
    );
    assert!(!model.join("testModel.mpk").exists());
    assert_eq!(
        TrainedModel::load(&model).unwrap().kind(),
        ModelKind::PixelStats
    );
    assert!(staged.exists());
    // The next run removes the interrupted run's staging folder.
    p.edit("n_epochs: 1000000", "n_epochs: 2");
    let r = p.run(&["train"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(!staged.exists(), "stale staging folder left behind");
    // Retrained as an autoencoder: the pixel_stats files are gone with the old folder.
    assert!(model.join("testModel.mpk").is_file());
    assert!(!model.join(model::MEAN_FILE).exists());
    assert_eq!(
        TrainedModel::load(&model).unwrap().kind(),
        ModelKind::Autoencoder
    );
    // Back to pixel_stats: the 'mpk' of the autoencoder does not stay behind.
    p.edit("model_type: \"autoencoder\"", "model_type: \"pixel_stats\"");
    let r = p.run(&["train"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(!model.join("testModel.mpk").exists());
    assert!(model.join(model::MEAN_FILE).is_file());
}

#[test]
fn files_of_two_training_runs_are_refused_together() {
    let p = Project::trained("pixel_stats", 8);
    let model = p.model_dir("front");
    let old_mean = std::fs::read(model.join(model::MEAN_FILE)).unwrap();
    // Retrain on other photos, then put one file of the first run back: a mixed model.
    write_photos(&p.path().join("photos/front"), 30..38, Some((12, 12)));
    assert_eq!(p.run(&["preprocess", "-i", "photos"]).code, 0);
    assert_eq!(p.run(&["train"]).code, 0);
    std::fs::write(model.join(model::MEAN_FILE), old_mean).unwrap();
    let e = TrainedModel::load(&model)
        .expect_err("a mixed model must not load")
        .to_string();
    assert!(
        e.contains("pixel_mean.npy") && e.contains("does not belong to the model"),
        "{e}"
    );
}

// ---- 3. An incomplete earlier stage is named by the next ----

#[test]
fn an_interrupted_earlier_stage_is_named_by_the_next_and_stale_files_are_not_read() {
    let p = Project::new("pixel_stats");
    write_photos(&p.path().join("photos/front"), 0..6, None);
    let r = p.run(&["remove_bg", "-i", "photos"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let bg = p
        .component()
        .join("front/preprocessed_images/background_removed");
    let record = bg.join(pixal::io::stage::RECORD_FILE);
    assert!(record.is_file());
    // A file an earlier run left, not in this run's record: not read.
    std::fs::copy(
        bg.join("front_000_no_bg.png"),
        bg.join("front_099_no_bg.png"),
    )
    .unwrap();
    let r = p.run(&["--json", "make_input"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.json()["processed"], 6);
    // Files the record lists are gone (a killed re-run, a cleanup): named.
    std::fs::remove_file(bg.join("front_002_no_bg.png")).unwrap();
    let r = p.run(&["make_input"]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(
        r.err
            .contains("1 of the 6 file(s) remove_bg wrote here are missing")
            && r.err.contains("front_002_no_bg.png"),
        "{}",
        r.err
    );
    // No record at all (killed before it finished): named, nothing built.
    std::fs::remove_file(&record).unwrap();
    let npz = p.component().join("front/out.npz");
    let before = std::fs::read(&npz).unwrap();
    let r = p.run(&["make_input"]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(r.err.contains("did not finish"), "{}", r.err);
    assert_eq!(std::fs::read(&npz).unwrap(), before);

    // An npz that its metadata does not describe (make_input killed between the two).
    let mut other = read_input(&npz).unwrap();
    other.data.mapv_inplace(|v| v * 0.5);
    write_input(&npz, &other).unwrap();
    let r = p.run(&["train"]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(
        r.err.contains("is not the file this metadata describes"),
        "{}",
        r.err
    );
    // No metadata at all: not trained under guessed channel names.
    std::fs::remove_file(p.component().join("front/metadata/preprocessing.yaml")).unwrap();
    let r = p.run(&["train"]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(r.err.contains("has no make_input metadata"), "{}", r.err);
    assert!(!p.model_dir("front").exists());
}

// ---- 4. Too few images, degenerate calibration, ground truth that matches nothing ----

#[test]
fn too_few_images_fail_the_type_naming_the_gate_and_the_setting() {
    let p = Project::new("pixel_stats");
    common::strict_gates(p.path());
    write_photos(&p.path().join("photos/front"), 0..3, None);
    write_photos(&p.path().join("photos/back"), 0..6, None);
    let r = p.run(&["make_input", "-i", "photos"]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(
        r.err
            .contains("make_input front: only 3 of 3 image(s) usable")
            && r.err.contains("quality_gates.min_images 5")
            && r.err.contains("min_images: 3"),
        "{}",
        r.err
    );
    assert!(!p.component().join("front/out.npz").exists());
    assert!(p.component().join("back/out.npz").is_file());
    // Half of the type refused (undecodable files): the fraction gate.
    let back = p.path().join("photos/back");
    for i in 0..7 {
        std::fs::write(back.join(format!("broken_{i}.png")), b"not a png").unwrap();
    }
    let r = p.run(&["make_input", "-i", "photos"]);
    assert_eq!(r.code, 1);
    // Each refused photo is reported once, and the stage ends with one counting line.
    assert_eq!(r.err.matches("broken_3.png").count(), 1, "{}", r.err);
    assert_eq!(r.err.matches("FAILED").count(), 1, "{}", r.err);
    assert!(
        r.err
            .contains("make_input back: only 6 of 13 image(s) usable")
            && r.err.contains("quality_gates.min_image_fraction 0.5"),
        "{}",
        r.err
    );
}

#[test]
fn identical_training_images_give_a_degenerate_calibration_error() {
    let p = Project::new("pixel_stats");
    let dir = p.path().join("photos/front");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..8 {
        photo(0, None)
            .save(dir.join(format!("img_{i:02}.png")))
            .unwrap();
    }
    assert_eq!(p.run(&["preprocess", "-i", "photos"]).code, 0);
    assert_eq!(p.run(&["train"]).code, 0);
    write_photos(&p.path().join("new/front"), 0..1, Some((12, 12)));
    let r = p.run(&["--json", "validate", "-i", "new"]);
    assert_eq!(r.code, 1, "{}", r.err);
    let msg = r.json()["failed"][0]["error"].as_str().unwrap().to_string();
    assert!(
        msg.contains("degenerate") && msg.contains("threshold is 0"),
        "{msg}"
    );
}

#[test]
fn ground_truth_names_are_recognised_and_a_folder_matching_nothing_is_an_error() {
    let p = Project::trained("pixel_stats", 8);
    write_photos(&p.path().join("new/front"), 20..22, None);
    write_photos(&p.path().join("new/front"), 22..23, Some((12, 12)));
    let mut mask = image::GrayImage::new(40, 30);
    for y in 12..16 {
        for x in 12..16 {
            mask.put_pixel(x, y, image::Luma([255]));
        }
    }
    // A folder whose masks belong to other photos.
    let wrong = p.path().join("gt_wrong");
    std::fs::create_dir_all(&wrong).unwrap();
    mask.save(wrong.join("other_mask.png")).unwrap();
    let r = p.run(&["validate", "-i", "new", "--truth", "gt_wrong"]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(
        r.err.contains("no ground-truth mask matches")
            && r.err.contains("img_20_mask.png")
            && r.err.contains("img_20_defect.png")
            && r.err.contains("other_mask.png"),
        "{}",
        r.err
    );
    // `<stem>_defect.png` is found.
    let gt = p.path().join("gt");
    std::fs::create_dir_all(&gt).unwrap();
    mask.save(gt.join("img_22_defect.png")).unwrap();
    let r = p.run(&["--json", "validate", "-i", "new", "--truth", "gt"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let v = r.json();
    assert_eq!(v["metrics"][0]["masks_found"], 1, "{v}");
    // The MVTec layout: test/<defect>/<stem>.png with ground_truth/<defect>/<stem>_mask.png.
    let test = p.path().join("mvtec/test/spot");
    write_photos(&test, 22..23, Some((12, 12)));
    let gtm = p.path().join("mvtec/ground_truth/spot");
    std::fs::create_dir_all(&gtm).unwrap();
    mask.save(gtm.join("img_22_mask.png")).unwrap();
    let r = p.run(&[
        "--json",
        "validate",
        "-i",
        "mvtec/test/spot/img_22.png",
        "--type",
        "front",
        "--truth",
        "mvtec/ground_truth",
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    let v = r.json();
    assert_eq!(v["metrics"][0]["masks_found"], 1, "{v}");
    assert_eq!(v["images"][0]["truth"], true, "{v}");
}

// ---- 5/10. One run per tree, stale temporary files ----

#[test]
fn a_second_run_on_the_same_tree_refuses_and_stale_temps_are_removed() {
    let p = Project::new("pixel_stats");
    write_photos(&p.path().join("photos/front"), 0..6, None);
    let root = p.component();
    let held = pixal::io::lock::lock_tree(&root).unwrap();
    let r = p.run(&["--json", "make_input", "-i", "photos"]);
    assert_eq!(r.code, 2, "{}", r.err);
    let v = r.json();
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("another pixal run is writing here")
            && msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    assert!(!root.join("front/out.npz").exists());
    drop(held);
    // Temporary files of an interrupted run are removed by the next run on the tree.
    let stale = root.join("front/.pixal-tmp-abc123");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, vec![0u8; 1000]).unwrap();
    let r = p.run(&["make_input", "-i", "photos"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(!stale.exists());
    assert!(root.join("front/out.npz").is_file());
}

// ---- 6/7. Type names are names; the input is not the output ----

#[test]
fn type_must_be_a_trained_name_and_input_must_not_be_the_output_tree() {
    let p = Project::trained("pixel_stats", 8);
    write_photos(&p.path().join("new/front"), 20..21, None);
    let npz = p.component().join("front/out.npz");
    let before = std::fs::read(&npz).unwrap();
    let front = p.component().join("front");
    for bad in [front.to_str().unwrap(), "../front", "..", ".hidden", "a/b"] {
        let r = p.run(&[
            "--json",
            "validate",
            "-i",
            "new/front/img_20.png",
            "--type",
            bad,
        ]);
        assert_eq!(r.code, 2, "{bad}: {}", r.err);
        assert!(
            r.json()["error"].as_str().unwrap().contains("plain name"),
            "{bad}: {}",
            r.out
        );
    }
    assert_eq!(std::fs::read(&npz).unwrap(), before);
    let r = p.run(&["validate", "-i", "new/front/img_20.png", "--type", "back"]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.contains("trained types: front"), "{}", r.err);
    // The output tree as input.
    let r = p.run(&["remove_bg", "-i", p.component().to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.contains("lies in pixal's output tree"), "{}", r.err);
}

// ---- 14. A missing model is found before anything is preprocessed ----

#[test]
fn validate_without_a_trained_model_stops_before_preprocessing() {
    let p = Project::new("pixel_stats");
    write_photos(&p.path().join("photos/front"), 0..6, None);
    assert_eq!(p.run(&["preprocess", "-i", "photos"]).code, 0);
    write_photos(&p.path().join("new/front"), 20..22, None);
    let r = p.run(&["validate", "-i", "new"]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(
        r.err.contains("no trained model for front") && r.err.contains("pixal train"),
        "{}",
        r.err
    );
    // Nothing was preprocessed for it.
    assert!(
        !p.validate_root()
            .join("front/preprocessed_images/background_removed")
            .exists()
    );
}

// ---- 9/11. --threads is capped; --json on every exit path ----

#[test]
fn absurd_thread_counts_are_capped_with_a_warning() {
    let p = Project::new("pixel_stats");
    write_photos(&p.path().join("photos/front"), 0..6, None);
    let r = p.run(&["--threads", "100000", "make_input", "-i", "photos"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let cores = std::thread::available_parallelism().unwrap().get();
    assert!(
        r.err.contains(&format!(
            "--threads 100000 is more than 4 per core on this {cores}-core machine; using {}",
            cores * 4
        )),
        "{}",
        r.err
    );
}

#[test]
fn json_is_printed_for_usage_errors_and_panics() {
    for args in [
        vec!["--json", "bogus"],
        vec!["train", "--json", "--no-such-flag"],
        vec!["--json"],
    ] {
        let o = pixal().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["exit_code"], 2);
        assert!(v["error"].as_str().unwrap().contains("error"), "{v}");
    }
    // Help and version stay plain text with exit 0.
    let o = pixal().args(["--json", "--version"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("pixal "));
    // A panic (forced by the test hook) still ends in a JSON line.
    let o = pixal()
        .env("PIXAL_TEST_PANIC", "1")
        .args(["--json", "train"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(101));
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    assert_eq!(v["exit_code"], 101);
    assert!(v["error"].as_str().unwrap().contains("internal error"));
}

// ---- 12/13. Verdicts on stdout, exit 3 on request, the user's path ----

#[test]
fn validate_prints_verdicts_and_fails_on_anomaly_when_asked() {
    let p = Project::trained("pixel_stats", 10);
    // Two held-out images calibrate this small model: a wide margin keeps the verdicts of the
    // good photos about the verdict plumbing, not the calibration (the defect scores ~10^4).
    p.edit("image_margin: 1.0", "image_margin: 20.0");
    write_photos(&p.path().join("new/front"), 20..22, None);
    write_photos(&p.path().join("new/front"), 40..41, Some((14, 12)));
    let r = p.run(&["-q", "validate", "-i", "new"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let lines: Vec<&str> = r.out.lines().collect();
    assert_eq!(lines.len(), 4, "{}", r.out);
    assert!(
        lines[0].contains("file") && lines[0].contains("threshold") && lines[0].contains("verdict"),
        "{}",
        r.out
    );
    let defect = lines.iter().find(|l| l.contains("img_40")).unwrap();
    assert!(defect.ends_with("ANOMALOUS"), "{}", r.out);
    assert!(
        lines
            .iter()
            .filter(|l| l.contains("img_2"))
            .all(|l| l.ends_with("good")),
        "{}",
        r.out
    );
    assert!(r.err.is_empty(), "-q: {}", r.err);
    let r = p.run(&["--json", "validate", "-i", "new", "--fail-on-anomaly"]);
    assert_eq!(r.code, 3, "{}", r.err);
    let v = r.json();
    assert_eq!(v["exit_code"], 3);
    let images = v["images"].as_array().unwrap();
    assert_eq!(images.len(), 3);
    for im in images {
        assert!(im["score"].as_f64().unwrap().is_finite());
        assert!(im["threshold"].as_f64().unwrap() > 0.0);
    }
    // Only good photos: exit 0 even with --fail-on-anomaly.
    let r = p.run(&[
        "validate",
        "-i",
        "new/front/img_20.png",
        "--type",
        "front",
        "--fail-on-anomaly",
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    // scores.csv names the user's photo, not an internal copy.
    let csv = std::fs::read_to_string(p.validate_root().join("front/scores.csv")).unwrap();
    let row = csv.lines().nth(1).unwrap();
    assert!(row.starts_with("new/front/img_20.png,"), "{csv}");
    // Runs with their own --output keep each other's results.
    let r = p.run(&["validate", "-i", "new", "--output", "runs/a"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let r = p.run(&[
        "validate",
        "-i",
        "new/front/img_21.png",
        "--type",
        "front",
        "-o",
        "runs/b",
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    let a = std::fs::read_to_string(p.path().join("runs/a/front/scores.csv")).unwrap();
    let b = std::fs::read_to_string(p.path().join("runs/b/front/scores.csv")).unwrap();
    assert_eq!((a.lines().count(), b.lines().count()), (4, 2), "{a}\n{b}");
    assert!(p.path().join("runs/a/front/report.html").is_file());
    assert_eq!(
        std::fs::read_dir(p.path().join("runs/a/front/anomaly_maps"))
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".npy"))
            .count(),
        3
    );
}
