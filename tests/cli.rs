//! Command-line tests: the `pixal` binary run in temporary folders, checking exit codes, the
//! messages users see, and the files (with their values) that stages write.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use image::{Rgb, RgbImage};

use common::pixal_command as pixal;

/// A temp folder with a copy of the shipped configs whose output paths point inside it.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let dir = common::temp_project();
        Project { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn edit_params(&self, from: &str, to: &str) {
        common::edit_params(self.path(), from, to);
    }

    /// Runs pixal with the project folder as working directory.
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        common::run_pixal(self.path(), args)
    }

    fn component(&self) -> PathBuf {
        self.path().join("out/Data_set_R0_Triplet_Data_F1_2ps_6var")
    }
}

/// A 40x30 black image with a coloured rectangle at x 10..30, y 8..20 (exclusive).
fn part_image(colour: [u8; 3]) -> RgbImage {
    let mut img = RgbImage::new(40, 30);
    for y in 8..20 {
        for x in 10..30 {
            img.put_pixel(x, y, Rgb(colour));
        }
    }
    img
}

fn write_type(root: &Path, ty: &str, images: &[RgbImage]) {
    let d = root.join(ty);
    std::fs::create_dir_all(&d).unwrap();
    for (i, img) in images.iter().enumerate() {
        img.save(d.join(format!("img_{i:02}.png"))).unwrap();
    }
}

fn read_npz(path: &Path) -> pixal::io::npz::InputData {
    pixal::io::npz::read_input(path).unwrap()
}

#[test]
fn help_lists_the_original_subcommands() {
    let out = pixal().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "preprocess",
        "remove_bg",
        "align",
        "make_input",
        "train",
        "validate",
        "detect",
        "demo",
    ] {
        assert!(text.contains(cmd), "help lacks {cmd}:\n{text}");
    }
    for flag in ["--config", "--json", "--quiet", "--verbose"] {
        assert!(text.contains(flag), "help lacks {flag}");
    }
    let out = pixal().args(["make_input", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--input"));
    let out = pixal().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_exit_2() {
    let out = pixal().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let p = Project::new();
    let (code, _, err) = p.run(&["make_input", "-i", "does/not/exist"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("does/not/exist") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn stages_without_their_input_say_so_and_exit_2() {
    let p = Project::new();
    let cases = [
        ("remove_bg", "needs -i DIR"),
        ("validate", "needs -i PATH"),
        ("detect", "no preprocessed input found"),
        ("train", "run `pixal make_input` first"),
    ];
    for (stage, want) in cases {
        let (code, out, err) = p.run(&[stage]);
        assert_eq!(code, 2, "{stage}: {err}");
        assert!(err.contains(want), "{stage}: {err}");
        assert!(out.is_empty());
    }
    let (code, out, _) = p.run(&["--json", "train"]);
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 2);
}

#[test]
fn config_errors_name_file_line_and_key() {
    let p = Project::new();
    p.edit_params("    pool_size: 2", "    pool_sise: 2");
    let (code, _, err) = p.run(&["make_input", "-i", "."]);
    assert_eq!(code, 2, "{err}");
    let line = std::fs::read_to_string(p.path().join("configs/parameters.yaml"))
        .unwrap()
        .lines()
        .position(|l| l.contains("pool_sise"))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!(
            "parameters.yaml:{line}: unknown key `preprocessing.preprocessor.pool_sise`"
        )),
        "{err}"
    );
    assert!(err.contains("did you mean `pool_size`"), "{err}");

    let p = Project::new();
    p.edit_params("weights: [3.0, 3.0]", "weights: [3.0]");
    let (code, _, err) = p.run(&["make_input", "-i", "."]);
    assert_eq!(code, 2);
    assert!(err.contains("preprocessing.preprocessor.weights"), "{err}");

    let (code, _, err) = p.run(&["--config", "nowhere", "make_input", "-i", "."]);
    assert_eq!(code, 2);
    assert!(err.contains("nowhere/parameters.yaml"), "{err}");
}

#[test]
fn make_input_writes_npz_with_the_expected_values() {
    let p = Project::new();
    p.edit_params(
        "channels: [\"LAB_a\", \"LAB_b\"]",
        "channels: [\"R\", \"G\", \"B\", \"LAB_L\"]",
    );
    p.edit_params("weights: [3.0, 3.0]", "weights: [1, 1, 1, 2]");
    p.edit_params("zero_pruning_padding: 5", "zero_pruning_padding: 2");
    let input = p.path().join("component");
    write_type(
        &input,
        "typeA",
        &[part_image([200, 100, 50]), part_image([100, 200, 50])],
    );
    write_type(&input, "typeB", &[part_image([10, 20, 250])]);
    let before = std::fs::read(input.join("typeA/img_00.png")).unwrap();

    let (code, out, err) = p.run(&["--json", "make_input", "-i", "component"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["processed"], 3);
    assert_eq!(v["ok"], true);

    let a = read_npz(&p.component().join("typeA/out.npz"));
    // Crop: x 10..30, y 8..20 padded by 2 -> 24x16; pooled by 2 -> 12x8.
    assert_eq!(a.shape, (8, 12));
    assert_eq!(a.data.dim(), (2, 96, 4));
    assert!(a.labels.is_none());
    // Pooled pixel (row 0, col 0) covers the padding only: black.
    assert_eq!(a.data[[0, 0, 0]], 0.0);
    // The crop starts at x 8, y 6. Pooled pixel (row 1, col 1) covers x 10..12, y 8..10:
    // inside the part.
    let px = 12 + 1;
    assert!((a.data[[0, px, 0]] - 200.0 / 255.0).abs() < 1e-6);
    assert!((a.data[[0, px, 1]] - 100.0 / 255.0).abs() < 1e-6);
    assert!((a.data[[0, px, 2]] - 50.0 / 255.0).abs() < 1e-6);
    assert!((a.data[[1, px, 1]] - 200.0 / 255.0).abs() < 1e-6);
    // Pooled row 0 covers y 6..8: padding only.
    assert!(a.data[[0, 1, 0]] == 0.0);
    let b = read_npz(&p.component().join("typeB/out.npz"));
    assert_eq!(b.data.dim(), (1, 96, 4));

    let meta =
        std::fs::read_to_string(p.component().join("typeA/metadata/preprocessing.yaml")).unwrap();
    for want in [
        "crop_box:",
        "y_min: 6",
        "y_max: 22",
        "x_min: 8",
        "x_max: 32",
        "padding: 2",
        "- LAB_L",
        "img_01.png",
        "pooled_shape:",
        "version:",
    ] {
        assert!(meta.contains(want), "metadata lacks {want}:\n{meta}");
    }
    let preview = image::open(
        p.component()
            .join("typeA/preprocessed_images/crop_preview.png"),
    )
    .unwrap();
    assert_eq!((preview.width(), preview.height()), (24, 16));
    assert!(p.component().join("typeA/logs/preprocessing.log").exists());
    assert_eq!(
        std::fs::read(input.join("typeA/img_00.png")).unwrap(),
        before,
        "input was modified"
    );
}

#[test]
fn one_hot_mode_writes_one_file_with_labels() {
    let p = Project::new();
    p.edit_params("one_hot_encoding: False", "one_hot_encoding: True");
    let input = p.path().join("component");
    write_type(
        &input,
        "a",
        &[part_image([200, 100, 50]), part_image([200, 100, 50])],
    );
    write_type(&input, "b", &[part_image([20, 100, 250])]);
    let (code, _, err) = p.run(&["make_input", "-i", "component"]);
    assert_eq!(code, 0, "{err}");
    let d = read_npz(&p.component().join("out.npz"));
    let labels = d.labels.unwrap();
    assert_eq!(labels.dim(), (3, 2));
    assert_eq!(labels.row(0).to_vec(), vec![1.0, 0.0]);
    assert_eq!(labels.row(2).to_vec(), vec![0.0, 1.0]);
    assert!(p.component().join("metadata/preprocessing.yaml").exists());
}

#[test]
fn bad_inputs_are_reported_by_name_and_the_batch_goes_on() {
    let p = Project::new();
    let input = p.path().join("component");
    write_type(
        &input,
        "t",
        &[part_image([200, 100, 50]), part_image([150, 100, 60])],
    );
    let d = input.join("t");
    // A truncated PNG, a text file named .jpg, an empty file, and an image of another size.
    let good = std::fs::read(d.join("img_00.png")).unwrap();
    std::fs::write(d.join("cut.png"), &good[..good.len() / 2]).unwrap();
    std::fs::write(d.join("notes.jpg"), b"this is not an image").unwrap();
    std::fs::write(d.join("empty.png"), b"").unwrap();
    RgbImage::from_pixel(20, 20, Rgb([90, 90, 90]))
        .save(d.join("small.png"))
        .unwrap();
    let (code, out, err) = p.run(&["--json", "make_input", "-i", "component"]);
    assert_eq!(code, 1, "{err}");
    for name in ["cut.png", "notes.jpg", "empty.png", "small.png"] {
        assert!(
            err.lines().any(|l| l.contains(name)),
            "no message names {name}:\n{err}"
        );
    }
    assert!(err.contains("20x20"), "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["processed"], 2);
    assert_eq!(v["failed"].as_array().unwrap().len(), 4);
    let data = read_npz(&p.component().join("t/out.npz"));
    assert_eq!(data.data.dim().0, 2);
    let meta =
        std::fs::read_to_string(p.component().join("t/metadata/preprocessing.yaml")).unwrap();
    assert!(
        meta.contains("img_00.png") && meta.contains("img_01.png") && !meta.contains("cut.png")
    );
    // Inputs untouched.
    assert_eq!(
        std::fs::read(d.join("notes.jpg")).unwrap(),
        b"this is not an image"
    );
}

#[test]
fn quiet_silences_stderr_but_keeps_the_log_file() {
    let p = Project::new();
    let input = p.path().join("component");
    write_type(&input, "t", &[part_image([200, 100, 50])]);
    let (code, out, err) = p.run(&["-q", "make_input", "-i", "component"]);
    assert_eq!(code, 0);
    assert!(
        out.is_empty() && err.is_empty(),
        "stdout {out:?} stderr {err:?}"
    );
    let log = std::fs::read_to_string(p.component().join("t/logs/preprocessing.log")).unwrap();
    assert!(log.contains("make_input t: 1 image(s)"), "{log}");
}

#[test]
fn preprocess_removes_backgrounds_and_aligns() {
    let p = Project::new();
    let input = p.path().join("component");
    write_type(&input, "t", &[part_image([200, 100, 50])]);
    let (code, _, err) = p.run(&["preprocess", "-i", "component"]);
    assert_eq!(code, 0, "{err}");
    // No rembg model in a test: `method: auto` falls back to the classical segmentation, says
    // so, and make_input reads the cut-outs.
    assert!(
        err.contains("using the classical colour segmentation"),
        "{err}"
    );
    let cut = p
        .component()
        .join("t/preprocessed_images/background_removed/t_000_no_bg.png");
    let cut = image::open(&cut).unwrap().to_rgba8();
    assert_eq!(cut.dimensions(), (40, 30));
    assert!(
        cut.get_pixel(20, 14)[3] > 250,
        "the part is opaque (feathered edge aside)"
    );
    assert_eq!(cut.get_pixel(2, 2).0, [0, 0, 0, 0]);
    assert!(p.component().join("t/out.npz").exists());
    let meta =
        std::fs::read_to_string(p.component().join("t/metadata/preprocessing.yaml")).unwrap();
    assert!(meta.contains("t_000_no_bg.png"), "{meta}");
    p.edit_params("apply_alignment: False", "apply_alignment: True");
    let (code, _, err) = p.run(&["preprocess", "-i", "component"]);
    // One image: it is the reference, copied into the aligned folder, and make_input reads it.
    assert_eq!(code, 0, "{err}");
    let aligned = p.component().join("t/preprocessed_images/aligned_images");
    let csv = std::fs::read_to_string(aligned.join("alignment.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(p.component().join("t/out.npz").exists());
}

#[test]
fn make_input_default_input_is_the_background_removed_tree() {
    let p = Project::new();
    let (code, _, err) = p.run(&["make_input"]);
    assert_eq!(code, 2);
    assert!(err.contains("pass -i DIR"), "{err}");
    let bg = p
        .component()
        .join("t1/preprocessed_images/background_removed");
    std::fs::create_dir_all(&bg).unwrap();
    part_image([200, 100, 50])
        .save(bg.join("t1_000_no_bg.png"))
        .unwrap();
    // A folder of pixal's tree counts only once the stage that writes it has finished.
    let (code, _, err) = p.run(&["make_input"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("did not finish"), "{err}");
    finish_stage(&bg, "remove_bg", &["t1_000_no_bg.png"]);
    let (code, _, err) = p.run(&["make_input"]);
    assert_eq!(code, 0, "{err}");
    assert!(p.component().join("t1/out.npz").exists());
}

/// Writes the completion record a finished `stage` leaves in `dir`.
fn finish_stage(dir: &Path, stage: &str, outputs: &[&str]) {
    pixal::io::stage::finish(
        dir,
        &pixal::io::stage::StageRecord {
            stage: stage.into(),
            version: "test".into(),
            finished: "now".into(),
            config_hash: String::new(),
            inputs: outputs.len(),
            photos: outputs.len(),
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            failed: Vec::new(),
        },
    )
    .unwrap();
}

/// numpy must read what make_input writes. CI installs numpy and sets PIXAL_REQUIRE_NUMPY=1, so
/// there this test cannot be skipped.
#[test]
fn numpy_reads_the_npz() {
    let have_numpy = Command::new("python3")
        .args(["-c", "import numpy"])
        .status()
        .is_ok_and(|s| s.success());
    if !have_numpy {
        assert!(
            std::env::var_os("PIXAL_REQUIRE_NUMPY").is_none(),
            "numpy is required but missing"
        );
        eprintln!("skipped: python3 with numpy not found");
        return;
    }
    let p = Project::new();
    p.edit_params("one_hot_encoding: False", "one_hot_encoding: True");
    let input = p.path().join("component");
    write_type(&input, "a", &[part_image([200, 100, 50])]);
    write_type(&input, "b", &[part_image([20, 100, 250])]);
    let (code, _, err) = p.run(&["make_input", "-i", "component"]);
    assert_eq!(code, 0, "{err}");
    let script = "import numpy as np, sys\n\
z = np.load(sys.argv[1])\n\
assert z['data'].dtype == np.float32 and z['data'].shape == (2, 165, 2), z['data'].shape\n\
assert z['shape'].dtype == np.int64 and list(z['shape']) == [11, 15]\n\
assert z['labels'].shape == (2, 2) and z['labels'][1, 1] == 1\n\
print('numpy ok', z['data'].max())\n";
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            p.component().join("out.npz").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn make_input_on_the_real_photo() {
    let (Some(raw), Some(rembg)) = (
        common::real_fixture("flex_f1_front_raw.jpg"),
        common::real_fixture("flex_f1_front_rembg.png"),
    ) else {
        return;
    };
    let p = Project::new();
    let d = p.path().join("component/F1_Front");
    std::fs::create_dir_all(&d).unwrap();
    for i in 0..3 {
        std::fs::copy(&rembg, d.join(format!("photo_{i}.png"))).unwrap();
    }
    std::fs::copy(&raw, p.path().join("component/raw.jpg")).unwrap();
    let (code, _, err) = p.run(&["make_input", "-i", "component"]);
    assert_eq!(code, 0, "{err}");
    let data = read_npz(&p.component().join("F1_Front/out.npz"));
    let meta = std::fs::read_to_string(p.component().join("F1_Front/metadata/preprocessing.yaml"))
        .unwrap();
    assert!(
        meta.contains("- 1920\n- 1080") || meta.contains("1920"),
        "{meta}"
    );
    let (h, w) = data.shape;
    assert!(h > 100 && w > 100 && h < 540 && w <= 960, "pooled {h}x{w}");
    assert_eq!(data.data.dim(), (3, h * w, 2));
    // Identical photos give identical rows; values are in [0, 1].
    assert_eq!(
        data.data.index_axis(ndarray::Axis(0), 0),
        data.data.index_axis(ndarray::Axis(0), 2)
    );
    assert!(data.data.iter().all(|v| (0.0..=1.0).contains(v)));
}

/// The whole pipeline on the generated demo component: preprocess (background removal,
/// alignment, make_input) -> train (the default pixel_stats model) -> validate with ground truth.
/// Every output exists, the defects outrank the good images, and the highest-scoring pixel of a
/// defective photo lies on its defect.
#[test]
fn demo_runs_the_whole_pipeline_and_finds_the_defects() {
    let dir = tempfile::tempdir().unwrap();
    let out = pixal()
        .current_dir(dir.path())
        // The cartoon part: detection on the realistic photos does not yet meet this test's
        // bars (issue 9); bench/quality.sh measures it.
        .args(["--json", "demo", "--synthetic", "-o", "demo"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(v["ok"], true);
    let root = dir.path().join("demo");
    // The component's index links both types' reports.
    let index =
        std::fs::read_to_string(root.join("validate/demo_flex_validate/index.html")).unwrap();
    for ty in ["front", "back"] {
        assert!(
            index.contains(&format!("<a href=\"{ty}/report.html\">{ty}</a>")),
            "{index}"
        );
    }
    for ty in ["front", "back"] {
        let model = root.join("out/demo_flex").join(ty).join("model");
        for f in ["loss_history.json", "calibration_residuals.npy"] {
            assert!(model.join(f).is_file(), "{ty}: missing model/{f}");
        }
        let vdir = root.join("validate/demo_flex_validate").join(ty);
        for f in [
            "scores.csv",
            "summary.json",
            "report.html",
            "out.npz",
            "metadata/preprocessing.yaml",
            "preprocessed_images/aligned_images/alignment.csv",
            "figures/score_histograms.png",
            "figures/pixel_loss_histogram.png",
            "figures/pixel_loss_log_histogram.png",
            "figures/combined_channel_loss_histogram.png",
            "figures/prediction_distribution_log.png",
            "figures/truth_distribution_log.png",
            "figures/combined_distribution_log.png",
            "figures/pixel_predictions.png",
            "figures/roc_curve.png",
            "figures/pr_curve.png",
        ] {
            assert!(vdir.join(f).is_file(), "{ty}: missing {f}");
        }
        // The shipped plot_confusion_matrix: False is honoured (it was drawn with the ROC).
        assert!(!vdir.join("figures/confusion_matrix.png").exists());
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(vdir.join("summary.json")).unwrap())
                .unwrap();
        let m = &s["metrics"];
        assert!(m["pixel_auroc"].as_f64().unwrap() >= 0.95, "{ty}: {m}");
        assert!(m["image_auroc"].as_f64().unwrap() >= 0.9, "{ty}: {m}");
        let images = s["images"].as_array().unwrap();
        assert_eq!(images.len(), 12);
        let best_good = images
            .iter()
            .filter(|i| i["truth"] == false)
            .map(|i| i["score"].as_f64().unwrap())
            .fold(f64::MIN, f64::max);
        let spot = images
            .iter()
            .find(|i| i["photo"].as_str().unwrap().contains("_spot_"))
            .unwrap();
        assert!(
            spot["score"].as_f64().unwrap() > best_good,
            "{ty}: spot {spot} vs good {best_good}"
        );
        // The spot photo's highest-scoring pixel lies on the spot.
        let map: ndarray::Array2<f32> =
            ndarray_npy::read_npy(spot["map_npy"].as_str().unwrap()).unwrap();
        let (mut best, mut at) = (f32::MIN, (0, 0));
        for ((y, x), &v) in map.indexed_iter() {
            if v > best {
                best = v;
                at = (y, x);
            }
        }
        let stem = std::path::Path::new(spot["photo"].as_str().unwrap())
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mask = image::open(
            root.join("data/ground_truth")
                .join(ty)
                .join(format!("{stem}_mask.png")),
        )
        .unwrap()
        .to_luma8();
        // Allow the smoothing's reach: within 3 pixels of the mask.
        let near = (at.0.saturating_sub(3)..=at.0 + 3).any(|y| {
            (at.1.saturating_sub(3)..=at.1 + 3).any(|x| {
                mask.get_pixel_checked(x as u32, y as u32)
                    .is_some_and(|p| p.0[0] > 127)
            })
        });
        assert!(near, "{ty}: top pixel {at:?} is not on the spot");
        let csv = std::fs::read_to_string(vdir.join("scores.csv")).unwrap();
        assert_eq!(csv.lines().count(), 13);
        // One overlay per photo, named <index:03>_<stem>_overlay.png, each linked by the report,
        // which checks every verdict against the ground truth.
        let html = std::fs::read_to_string(vdir.join("report.html")).unwrap();
        for (k, im) in images.iter().enumerate() {
            let stem = std::path::Path::new(im["photo"].as_str().unwrap())
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let name = format!("{:03}_{stem}_overlay.png", im["index"].as_u64().unwrap());
            assert!(
                vdir.join("figures").join(&name).is_file(),
                "{ty}: missing {name} ({k})"
            );
            assert!(
                html.contains(&format!("href=\"figures/{name}\"")),
                "{ty}: {name} not linked"
            );
        }
        let wrong = images
            .iter()
            .filter(|i| i["truth"].as_bool().unwrap() != (i["verdict"] == "anomalous"))
            .count();
        assert!(
            html.contains(&format!("<b>{wrong}</b> wrong verdict(s)")),
            "{ty}"
        );
        assert!(html.contains("pixal</th><td>") && html.contains("ground truth</th>"));
        assert!(csv.starts_with("file,type,image_score"));
    }

    // One photo, as lab scripts call it; the user's photo is left as it was.
    let cfg = root.join("configs");
    let photo = root.join("data/validate/front/front_spot_001.png");
    let before = std::fs::read(&photo).unwrap();
    let run = |args: &[&str]| {
        let o = pixal()
            .current_dir(dir.path())
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&[
        "--json",
        "validate",
        "-i",
        photo.to_str().unwrap(),
        "--type",
        "front",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["processed"], 1);
    let s: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("validate/demo_flex_validate/front/summary.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(s["images"].as_array().unwrap().len(), 1);
    assert_eq!(s["images"][0]["verdict"], "anomalous");
    assert!(s["metrics"].is_null(), "no ground truth given, no metrics");
    // The earlier run's ROC figure must not outlive it: without ground truth there is none.
    assert!(
        !root
            .join("validate/demo_flex_validate/front/figures/roc_curve.png")
            .exists()
    );
    // Nor its overlays: only this photo's is left.
    let overlays: Vec<String> =
        std::fs::read_dir(root.join("validate/demo_flex_validate/front/figures"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with("_overlay.png"))
            .collect();
    assert_eq!(overlays, vec!["000_front_spot_001_overlay.png".to_string()]);
    assert_eq!(std::fs::read(&photo).unwrap(), before);
    let (code, _, err) = run(&["validate", "-i", photo.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--type"), "{err}");

    // detect alone, with the original's loss_cut threshold instead of the calibrated one.
    let params = cfg.join("parameters.yaml");
    let text = std::fs::read_to_string(&params)
        .unwrap()
        .replace("threshold: \"auto\"", "threshold: \"loss_cut\"");
    std::fs::write(&params, text).unwrap();
    let (code, _, err) = run(&["detect"]);
    assert_eq!(code, Some(0), "{err}");
    let s: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("validate/demo_flex_validate/front/summary.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(s["thresholds"]["mode"], "loss_cut");
    assert_eq!(s["thresholds"]["pixel"], 0.1);
}
