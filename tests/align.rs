//! Alignment tests: homography recovery on a generated textured image (random homographies)
//! and on the real photo (known homographies), SSIM and MSE against scikit-image, the
//! validation fallback, and the `align` command's files.
//!
//! `sweep_real_photo` (ignored) is the benchmark behind `bench/align.sh`: it prints accuracy
//! and timing over many homographies.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use image::{GrayImage, Rgba, RgbaImage};
use pixal::config::paths::{Folder, Side};
use pixal::config::{Config, Layout};
use pixal::preprocess::align::{
    AlignError, AlignParams, Reference, ReferenceSet, align_pair, align_with_fallback, warp_rgba,
};
use pixal::preprocess::homography::{Homography, compose, corner_error};
use pixal::preprocess::ssim::{mse, ssim};
use pixal::rng::SplitMix64;

/// The real fixture photo, or `None` where the shared fixtures are absent and not required
/// (see [`common::real_fixture`]).
fn load_real(name: &str) -> Option<RgbaImage> {
    let p = common::real_fixture(name)?;
    Some(pixal::io::image::load_rgba8(&p).unwrap())
}

/// The photo a camera would see if `truth` maps its pixels to the reference: the reference
/// sampled at `truth(y)` for every photo pixel y.
fn photo_of(reference: &RgbaImage, truth: &Homography) -> RgbaImage {
    warp_rgba(reference, truth, reference.width(), reference.height())
}

/// A random homography about the image centre: rotation up to `rot` degrees, shift up to
/// `shift` px, scale within 1 ± `scale`, perspective terms up to `persp` (relative change of
/// the projective denominator across half the image).
fn random_truth(
    rng: &mut SplitMix64,
    (w, h): (f64, f64),
    rot: f64,
    shift: f64,
    scale: f64,
    persp: f64,
) -> Homography {
    let mut u = || 2.0 * rng.next_f64() - 1.0;
    compose(
        [w / 2.0, h / 2.0],
        rot * u(),
        1.0 + scale * u(),
        [shift * u(), shift * u()],
        [2.0 * persp * u() / w, 2.0 * persp * u() / h],
    )
}

/// A deterministic "part" on a dark background: a shaded board with many rectangles, discs
/// and thin strokes of different colours (corners and blobs at every scale), like a flex.
fn textured(w: u32, h: u32, seed: u64) -> RgbaImage {
    let mut rng = SplitMix64::new(seed);
    let mut img = RgbaImage::from_pixel(w, h, Rgba([12, 12, 12, 255]));
    let (fw, fh) = (w as f64, h as f64);
    let (x0, y0, x1, y1) = (0.12 * fw, 0.15 * fh, 0.88 * fw, 0.85 * fh);
    for y in y0 as u32..y1 as u32 {
        for x in x0 as u32..x1 as u32 {
            let s =
                (60.0 + 30.0 * ((x as f64) / 37.0).sin() + 20.0 * ((y as f64) / 23.0).cos()) as u8;
            img.put_pixel(x, y, Rgba([s, s / 2 + 40, 30, 255]));
        }
    }
    for k in 0..260 {
        let cx = x0 + rng.next_f64() * (x1 - x0);
        let cy = y0 + rng.next_f64() * (y1 - y0);
        let c = [
            (rng.below(200) + 55) as u8,
            (rng.below(200) + 55) as u8,
            (rng.below(200) + 55) as u8,
            255,
        ];
        let size = 3.0 + rng.next_f64() * 0.04 * fw;
        match k % 3 {
            0 => {
                let (rw, rh) = (size, size * (0.3 + rng.next_f64()));
                for y in (cy - rh).max(0.0) as u32..((cy + rh) as u32).min(h) {
                    for x in (cx - rw).max(0.0) as u32..((cx + rw) as u32).min(w) {
                        img.put_pixel(x, y, Rgba(c));
                    }
                }
            }
            1 => {
                let r = size * 0.7;
                for y in (cy - r).max(0.0) as u32..((cy + r) as u32).min(h) {
                    for x in (cx - r).max(0.0) as u32..((cx + r) as u32).min(w) {
                        let (dx, dy) = (x as f64 - cx, y as f64 - cy);
                        if dx * dx + dy * dy <= r * r {
                            img.put_pixel(x, y, Rgba(c));
                        }
                    }
                }
            }
            _ => {
                let len = size * 3.0;
                let (s, co) = (rng.next_f64() * std::f64::consts::PI).sin_cos();
                for t in 0..(len as i32) {
                    for o in -1..=1 {
                        let x = cx + co * t as f64 - s * o as f64;
                        let y = cy + s * t as f64 + co * o as f64;
                        if x >= 0.0 && y >= 0.0 && (x as u32) < w && (y as u32) < h {
                            img.put_pixel(x as u32, y as u32, Rgba(c));
                        }
                    }
                }
            }
        }
    }
    img
}

/// Property test: random homographies near identity (±5° rotation, ±50 px shift, ±5 % scale,
/// mild perspective) applied to a generated textured image are recovered to under 0.5 px mean
/// corner error: with the default settings (refinement on), and by the keypoints alone at the
/// density of 3000 keypoints for this 800x600 image.
#[test]
fn random_homographies_on_a_textured_image_are_recovered() {
    let reference = textured(800, 600, 7);
    let dims = (800.0, 600.0);
    let params = AlignParams::default();
    let keypoints_only = AlignParams {
        refine: false,
        orb: pixal::preprocess::keypoints::OrbParams {
            n_features: 13_000,
            ..Default::default()
        },
        ..AlignParams::default()
    };
    assert_eq!(keypoints_only.orb_for(800, 600).n_features, 3009);
    let prepared = Reference::new(&reference, &params);
    let dense = Reference::new(&reference, &keypoints_only);
    let mut rng = SplitMix64::new(2024);
    let mut worst: f64 = 0.0;
    for case in 0..8 {
        let truth = random_truth(&mut rng, dims, 5.0, 50.0, 0.05, 0.01);
        let photo = photo_of(&reference, &truth);
        let a0 = align_pair(&photo, &dense, &keypoints_only).unwrap();
        let a1 = align_pair(&photo, &prepared, &params).unwrap();
        let e0 = corner_error(&a0.homography, &truth, dims.0, dims.1);
        let e1 = corner_error(&a1.homography, &truth, dims.0, dims.1);
        eprintln!(
            "case {case}: keypoints {e0:.3} px ({} inliers), default {e1:.3} px (refined: {})",
            a0.inliers, a1.refined
        );
        assert!(e0 < 0.5, "case {case}: keypoint corner error {e0}");
        assert!(e1 < 0.5, "case {case}: corner error {e1}");
        worst = worst.max(e0).max(e1);
    }
    eprintln!("worst corner error {worst:.3} px");
}

/// The real 1920x1080 photo warped by known homographies (rotation up to 3°, shift up to
/// 40 px, scale ±3 %): mean corner error at most 0.5 px from the keypoints and 0.3 px after
/// refinement. A few homographies only; `bench/align.sh` runs a larger sweep.
#[test]
fn real_photo_known_homographies_are_recovered() {
    let Some(reference) = load_real("flex_f1_front_raw.jpg") else {
        return;
    };
    let dims = (f64::from(reference.width()), f64::from(reference.height()));
    let params = AlignParams::default();
    let keypoints_only = AlignParams {
        refine: false,
        ..params.clone()
    };
    let prepared = Reference::new(&reference, &params);
    let truths = [
        compose([960.0, 540.0], 3.0, 1.03, [40.0, -25.0], [0.0, 0.0]),
        compose([960.0, 540.0], -2.0, 0.97, [-30.0, 40.0], [0.0, 0.0]),
        compose([900.0, 600.0], 1.2, 1.01, [12.5, 7.25], [0.0, 0.0]),
    ];
    let (mut sum0, mut sum1) = (0.0, 0.0);
    for (i, truth) in truths.iter().enumerate() {
        let photo = photo_of(&reference, truth);
        let a0 = align_pair(&photo, &prepared, &keypoints_only).unwrap();
        let a1 = align_pair(&photo, &prepared, &params).unwrap();
        let e0 = corner_error(&a0.homography, truth, dims.0, dims.1);
        let e1 = corner_error(&a1.homography, truth, dims.0, dims.1);
        eprintln!(
            "real {i}: keypoints {e0:.3} px ({}/{} inliers), refined {e1:.3} px, SSIM {:.4}",
            a0.inliers, a0.good_matches, a1.ssim
        );
        sum0 += e0;
        sum1 += e1;
    }
    let (m0, m1) = (sum0 / truths.len() as f64, sum1 / truths.len() as f64);
    eprintln!("real photo mean corner error: keypoints {m0:.3} px, refined {m1:.3} px");
    assert!(m0 <= 0.5, "keypoint mean corner error {m0}");
    assert!(m1 <= 0.3, "refined mean corner error {m1}");
}

/// The background-removed cut-out (RGBA, transparent background): alignment works on the part
/// alone, and the refinement samples only its foreground.
#[test]
fn real_cutout_is_aligned_on_its_foreground() {
    let Some(reference) = load_real("flex_f1_front_rembg.png") else {
        return;
    };
    let dims = (f64::from(reference.width()), f64::from(reference.height()));
    let params = AlignParams::default();
    let prepared = Reference::new(&reference, &params);
    assert!(prepared.refinement_samples() > 1000);
    let truth = compose([960.0, 540.0], -2.5, 1.02, [-35.0, 20.0], [0.0, 0.0]);
    let photo = photo_of(&reference, &truth);
    let a = align_pair(&photo, &prepared, &params).unwrap();
    let e = corner_error(&a.homography, &truth, dims.0, dims.1);
    eprintln!(
        "cut-out: {e:.3} px, {} inliers, SSIM {:.4}, MSE {:.2}",
        a.inliers, a.ssim, a.mse
    );
    assert!(e <= 0.3, "corner error {e}");
    // Outside the warped photo the result is transparent.
    assert_eq!(a.image.get_pixel(0, 0).0[3], 0);
}

/// SSIM and MSE equal scikit-image's / numpy's on the fixtures of
/// `tests/golden/make_ssim_golden.py`.
#[test]
fn ssim_and_mse_match_scikit_image() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/ssim");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let pairs = expected["pairs"].as_array().unwrap();
    assert!(pairs.len() >= 6);
    for p in pairs {
        let i = p["index"].as_u64().unwrap();
        let load = |s: &str| -> GrayImage {
            image::open(dir.join(format!("pair_{i}_{s}.png")))
                .unwrap()
                .to_luma8()
        };
        let (a, b) = (load("a"), load("b"));
        let want_s = p["ssim"].as_f64().unwrap();
        let want_m = p["mse"].as_f64().unwrap();
        let got_s = ssim(&a, &b).unwrap();
        let got_m = mse(&a, &b).unwrap();
        eprintln!(
            "{i} {}: ssim {got_s:.12} (skimage {want_s:.12})",
            p["label"]
        );
        assert!(
            (got_s - want_s).abs() < 1e-9,
            "pair {i}: {got_s} vs {want_s}"
        );
        assert!(
            (got_m - want_m).abs() < 1e-9,
            "pair {i}: {got_m} vs {want_m}"
        );
    }
}

/// Validation: the first reference is used when it passes; a failing first reference (here a
/// flat image) falls back to the next candidate; nothing passing gives the best attempt.
#[test]
fn validation_falls_back_only_when_the_first_reference_fails() {
    let good = textured(480, 360, 3);
    let truth = compose([240.0, 180.0], 2.0, 1.01, [6.0, -4.0], [0.0, 0.0]);
    let photo = photo_of(&good, &truth);
    let params = AlignParams {
        max_mse: 1e9,
        ..AlignParams::default()
    };
    let flat = RgbaImage::from_pixel(480, 360, Rgba([90, 90, 90, 255]));

    let mut first_good = ReferenceSet::new();
    first_good.push_image("good", good.clone());
    first_good.push_loader("never read", || panic!("the fallback must not be prepared"));
    let c = align_with_fallback(&photo, &first_good, &params).unwrap();
    assert_eq!(c.reference, 0);
    assert!(c.passed_over.is_empty());
    assert!(corner_error(&c.aligned.homography, &truth, 480.0, 360.0) < 0.5);

    let mut flat_first = ReferenceSet::new();
    flat_first.push_image("flat", flat.clone());
    flat_first.push_image("good", good.clone());
    let c = align_with_fallback(&photo, &flat_first, &params).unwrap();
    assert_eq!(c.reference, 1);
    assert_eq!(c.passed_over.len(), 1);

    let strict = AlignParams {
        min_score: 1.01,
        ..params.clone()
    };
    let f = align_with_fallback(&photo, &flat_first, &strict).unwrap_err();
    assert_eq!(f.attempts.len(), 2);
    assert!(matches!(f.attempts[1].1, AlignError::LowScore { .. }));
    assert!(f.to_string().contains("MIN_SCORE_THRESHOLD"), "{f}");
    let (best, aligned) = f.best.unwrap();
    assert_eq!(best, 1);
    assert!(aligned.ssim > 0.5);
}

// ---------------------------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------------------------

/// A temp folder with the shipped configs (outputs go inside it).
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

    fn run(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_pixal"))
            .current_dir(self.path())
            // A test never downloads a rembg model (method auto would fetch u2net).
            .env("PIXAL_NO_DOWNLOAD", "1")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The configuration, with its output tree inside the temp folder.
    fn config(&self) -> Config {
        let mut cfg = Config::load(&self.path().join("configs")).unwrap();
        let comp = |side: &str| {
            let root = if side == "out" {
                cfg.layout.component_root()
            } else {
                cfg.layout.validate_component_root()
            };
            self.path().join(root)
        };
        cfg.layout = Layout::rooted(&comp("out"), &comp("validate"));
        cfg
    }
}

#[test]
fn align_command_writes_images_tables_and_figures() {
    let p = Project::new();
    p.edit_params("MAX_MSE_THRESHOLD: 10.0", "MAX_MSE_THRESHOLD: 5000.0");
    let t = p.path().join("component/front");
    std::fs::create_dir_all(&t).unwrap();
    let reference = textured(480, 360, 11);
    let truths = [
        compose([240.0, 180.0], 3.0, 1.02, [10.0, -6.0], [0.0, 0.0]),
        compose([240.0, 180.0], -2.0, 0.98, [-8.0, 5.0], [1e-5, 0.0]),
    ];
    reference.save(t.join("a_no_bg.png")).unwrap();
    for (i, truth) in truths.iter().enumerate() {
        photo_of(&reference, truth)
            .save(t.join(format!("b{i}_no_bg.png")))
            .unwrap();
    }
    // An image with nothing to match: a per-file error, the batch goes on.
    RgbaImage::from_pixel(480, 360, Rgba([70, 70, 70, 255]))
        .save(t.join("c_flat.png"))
        .unwrap();
    let (code, err) = p.run(&["align", "-i", "component"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("c_flat.png"), "{err}");
    assert!(err.contains("too few keypoints"), "{err}");

    let cfg = p.config();
    let aligned = cfg
        .layout
        .dir(Side::Model, Folder::AlignedImages, Some("front"));
    for f in [
        "a_aligned.png",
        "b0_aligned.png",
        "b1_aligned.png",
        "alignment.csv",
    ] {
        assert!(aligned.join(f).exists(), "{f} missing");
    }
    assert!(!aligned.join("c_flat_aligned.png").exists());
    // The reference is copied unchanged; the transparent parts of a cut-out stay transparent.
    let copy = image::open(aligned.join("a_aligned.png"))
        .unwrap()
        .to_rgba8();
    assert_eq!(copy, reference);
    let rows = pixal::io::stage::read_alignment_csv(&aligned.join("alignment.csv")).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].image, "a_aligned.png");
    assert_eq!(rows[0].reference, "a_aligned.png");
    for (row, truth) in rows[1..].iter().zip(&truths) {
        assert_eq!(row.reference, "a_aligned.png");
        let h = Homography::from_row_slice(&row.homography);
        let e = corner_error(&h, truth, 480.0, 360.0);
        assert!(e < 0.5, "{}: corner error {e}", row.image);
        assert!(row.inliers >= 20 && row.ssim > 0.5);
    }

    let metrics = cfg
        .layout
        .dir(Side::Model, Folder::AlignedMetrics, Some("front"));
    for f in [
        "results.csv",
        "alignment_score.png",
        "mse.png",
        "inlier_ratio.png",
        "heatmap.png",
        "matches/match_1_0.png",
        "matches/match_2_0.png",
        "overlay_diagnostics/diag_b0_aligned.png",
    ] {
        assert!(metrics.join(f).exists(), "{f} missing");
    }
    let results = std::fs::read_to_string(metrics.join("results.csv")).unwrap();
    assert!(results.starts_with("image,score,mse,inliers,inlier_ratio,reference"));
    assert_eq!(results.lines().count(), 3, "{results}");

    // The quality gates are per-file errors too, and a stale output is removed.
    p.edit_params("MAX_MSE_THRESHOLD: 5000.0", "MAX_MSE_THRESHOLD: 0.001");
    let (code, err) = p.run(&["align", "-i", "component"]);
    assert_eq!(code, 1);
    assert!(err.contains("MAX_MSE_THRESHOLD"), "{err}");
    assert!(!aligned.join("b0_aligned.png").exists());
    // The refused alignments are still in the metrics, marked as not accepted.
    let results = std::fs::read_to_string(metrics.join("results.csv")).unwrap();
    assert_eq!(results.matches(",false,").count(), 2, "{results}");
    let rows = pixal::io::stage::read_alignment_csv(&aligned.join("alignment.csv")).unwrap();
    assert_eq!(rows.len(), 1);

    // Validation: new photos aligned to the training reference (first run's outputs).
    p.edit_params("MAX_MSE_THRESHOLD: 0.001", "MAX_MSE_THRESHOLD: 5000.0");
    let (code, err) = p.run(&["align", "-i", "component"]);
    assert_eq!(code, 1, "{err}");
    let new = p.path().join("new");
    std::fs::create_dir_all(&new).unwrap();
    let vtruth = compose([240.0, 180.0], 1.5, 1.0, [4.0, 9.0], [0.0, 0.0]);
    photo_of(&reference, &vtruth)
        .save(new.join("n.png"))
        .unwrap();
    let mut summary = pixal::commands::Summary::new("validate");
    let (dir, rows) =
        pixal::commands::align::align_validation_type(&cfg, "front", &new, &mut summary).unwrap();
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].reference, "a_aligned.png");
    let h = Homography::from_row_slice(&rows[0].homography);
    assert!(corner_error(&h, &vtruth, 480.0, 360.0) < 0.5);
    assert!(dir.join("n_aligned.png").exists());
}

/// `preprocess` with `apply_alignment`: background removal, then alignment of the cut-outs,
/// then make_input on the aligned images.
#[test]
fn preprocess_aligns_the_cutouts_before_make_input() {
    let p = Project::new();
    p.edit_params("apply_alignment: False", "apply_alignment: True");
    p.edit_params("MAX_MSE_THRESHOLD: 10.0", "MAX_MSE_THRESHOLD: 5000.0");
    let t = p.path().join("component/top");
    std::fs::create_dir_all(&t).unwrap();
    let reference = textured(400, 300, 21);
    reference.save(t.join("p0.png")).unwrap();
    let truth = compose([200.0, 150.0], 2.0, 1.01, [5.0, -3.0], [0.0, 0.0]);
    photo_of(&reference, &truth).save(t.join("p1.png")).unwrap();
    let (code, err) = p.run(&["preprocess", "-i", "component"]);
    assert_eq!(code, 0, "{err}");
    let cfg = p.config();
    let csv = cfg
        .layout
        .dir(Side::Model, Folder::AlignedImages, Some("top"))
        .join("alignment.csv");
    let rows = pixal::io::stage::read_alignment_csv(&csv).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let meta = std::fs::read_to_string(
        cfg.layout
            .dir(Side::Model, Folder::Metadata, Some("top"))
            .join("preprocessing.yaml"),
    )
    .unwrap();
    assert!(
        meta.contains("_aligned.png"),
        "make_input read the aligned images: {meta}"
    );
    assert!(cfg.layout.type_root(Some("top")).join("out.npz").exists());
}

#[test]
fn align_without_input_reads_the_background_removed_tree() {
    let p = Project::new();
    let (code, err) = p.run(&["align"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("pass -i DIR"), "{err}");
    let cfg = p.config();
    let bg = cfg
        .layout
        .dir(Side::Model, Folder::BackgroundRemoved, Some("t"));
    std::fs::create_dir_all(&bg).unwrap();
    textured(320, 240, 5)
        .save(bg.join("t_000_no_bg.png"))
        .unwrap();
    // The record a finished remove_bg leaves: align reads pixal's tree only after it.
    pixal::io::stage::finish(
        &bg,
        &pixal::io::stage::StageRecord {
            stage: "remove_bg".into(),
            version: "test".into(),
            finished: "now".into(),
            config_hash: String::new(),
            inputs: 1,
            photos: 1,
            outputs: vec!["t_000_no_bg.png".into()],
            failed: Vec::new(),
        },
    )
    .unwrap();
    let (code, err) = p.run(&["align"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        cfg.layout
            .dir(Side::Model, Folder::AlignedImages, Some("t"))
            .join("t_000_aligned.png")
            .exists()
    );
}

/// CPU time used by this process so far (user + system), in seconds; `None` off Linux. Unlike
/// wall time, it does not grow when other processes compete for the cores.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // Linux reports clock ticks of 1/100 s (USER_HZ) here.
    Some(ticks / 100.0)
}

/// Benchmark sweep on the real photo (run by `bench/align.sh`): accuracy without and with
/// refinement, and the time of one alignment (minimum and median over the homographies).
/// Environment: `PIXAL_ALIGN_IMAGE` (file in ../shared/fixtures/real), `PIXAL_ALIGN_N`
/// (homographies), `PIXAL_ALIGN_DOWN` (downscale factor, 2 for 960x540), `PIXAL_ALIGN_NF`
/// (keypoints per image).
#[test]
#[ignore = "benchmark sweep; run by bench/align.sh"]
fn sweep_real_photo() {
    let name = std::env::var("PIXAL_ALIGN_IMAGE").unwrap_or("flex_f1_front_raw.jpg".into());
    let Some(full) = load_real(&name) else {
        return;
    };
    let n: usize = std::env::var("PIXAL_ALIGN_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let down: u32 = std::env::var("PIXAL_ALIGN_DOWN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let reference = if down > 1 {
        image::imageops::resize(
            &full,
            full.width() / down,
            full.height() / down,
            image::imageops::FilterType::Triangle,
        )
    } else {
        full
    };
    let dims = (f64::from(reference.width()), f64::from(reference.height()));
    let mut params = AlignParams::default();
    if let Some(nf) = std::env::var("PIXAL_ALIGN_NF")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        params.orb.n_features = nf;
    }
    let keypoints_only = AlignParams {
        refine: false,
        ..params.clone()
    };
    let t = Instant::now();
    let prepared = Reference::new(&reference, &params);
    let t_ref = t.elapsed().as_secs_f64();
    println!(
        "{name} at {}x{} ({} threads): reference prepared in {:.3} s ({} keypoints, {} refinement samples)",
        dims.0,
        dims.1,
        rayon::current_num_threads(),
        t_ref,
        prepared.features().len(),
        prepared.refinement_samples()
    );
    let mut rng = SplitMix64::new(42);
    // Stage times on one pair (the minimum of 5 runs each).
    {
        let truth = random_truth(
            &mut rng.clone(),
            dims,
            3.0,
            40.0 / f64::from(down),
            0.03,
            0.0,
        );
        let photo = photo_of(&reference, &truth);
        let gray = pixal::preprocess::ssim::gray_of_rgba(&photo);
        let min_of = |f: &mut dyn FnMut()| {
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_secs_f64() * 1e3
                })
                .fold(f64::INFINITY, f64::min)
        };
        let mut feats = None;
        let t_orb = min_of(&mut || {
            feats = Some(pixal::preprocess::keypoints::detect_and_compute(
                &gray,
                &params.orb,
            ));
        });
        let feats = feats.unwrap();
        let t_match = min_of(&mut || {
            let _ = pixal::preprocess::align::match_knn(
                &feats.descriptors,
                &prepared.features().descriptors,
                params.knn_ratio,
            );
        });
        let inv = truth.try_inverse().unwrap();
        let mut warped = None;
        let t_warp = min_of(&mut || {
            warped = Some(warp_rgba(
                &photo,
                &inv,
                reference.width(),
                reference.height(),
            ))
        });
        let g = pixal::preprocess::ssim::gray_of_rgba(&warped.unwrap());
        let t_ssim = min_of(&mut || {
            let _ = ssim(&g, prepared.gray());
        });
        println!(
            "stages (min of 5): ORB {t_orb:.1} ms, matching {t_match:.1} ms, RGBA warp {t_warp:.1} ms, SSIM {t_ssim:.1} ms"
        );
    }
    let (mut e0s, mut e1s, mut t0s, mut t1s) = (vec![], vec![], vec![], vec![]);
    let (mut cpu0, mut cpu1) = (0.0, 0.0);
    for i in 0..n {
        let truth = random_truth(&mut rng, dims, 3.0, 40.0 / f64::from(down), 0.03, 0.0);
        let photo = photo_of(&reference, &truth);
        let (c0, t) = (cpu_seconds(), Instant::now());
        let a0 = align_pair(&photo, &prepared, &keypoints_only).unwrap();
        t0s.push(t.elapsed().as_secs_f64());
        let (c1, t) = (cpu_seconds(), Instant::now());
        let a1 = align_pair(&photo, &prepared, &params).unwrap();
        t1s.push(t.elapsed().as_secs_f64());
        let c2 = cpu_seconds();
        if let (Some(c0), Some(c1), Some(c2)) = (c0, c1, c2) {
            cpu0 += c1 - c0;
            cpu1 += c2 - c1;
        }
        let e0 = corner_error(&a0.homography, &truth, dims.0, dims.1);
        let e1 = corner_error(&a1.homography, &truth, dims.0, dims.1);
        println!(
            "{i:3}: keypoints {e0:.3} px, refined {e1:.3} px (kept {}), {}/{} inliers, SSIM {:.4}, {:.3} s / {:.3} s",
            a1.refined, a0.inliers, a0.good_matches, a1.ssim, t0s[i], t1s[i]
        );
        e0s.push(e0);
        e1s.push(e1);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[0], v[v.len() / 2])
    };
    let (min0, med0) = stats(&mut t0s);
    let (min1, med1) = stats(&mut t1s);
    println!(
        "corner error over {n}: keypoints mean {:.3} max {:.3} px; refined mean {:.3} max {:.3} px",
        mean(&e0s),
        max(&e0s),
        mean(&e1s),
        max(&e1s)
    );
    println!(
        "time per pair: keypoints only min {min0:.3} s median {med0:.3} s; with refinement min {min1:.3} s median {med1:.3} s"
    );
    println!(
        "CPU time per pair (all threads): keypoints only {:.3} s, with refinement {:.3} s",
        cpu0 / n as f64,
        cpu1 / n as f64
    );
}
