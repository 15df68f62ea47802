//! Alignment tests: homography recovery on generated and real images, SSIM against
//! scikit-image, and the `align` command's outputs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::{GrayImage, RgbaImage};
use pixal::preprocess::align::{
    AlignParams, Reference, align_pair, match_knn, warp_gray, warp_rgba,
};
use pixal::preprocess::homography::{self, Homography, SplitMix64, compose, corner_error};
use pixal::preprocess::keypoints;
use pixal::preprocess::ssim::gray_of_rgba;

fn real_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/real")
}

fn load_real(name: &str) -> Option<RgbaImage> {
    let p = real_dir().join(name);
    p.exists().then(|| pixal::io::image::load_rgba8(&p).unwrap())
}

/// The photo a camera would see if `truth` maps its pixels to the reference: sampling the
/// reference at `truth(y)` for every photo pixel y.
fn photo_of(reference: &RgbaImage, truth: &Homography) -> RgbaImage {
    warp_rgba(reference, truth, reference.width(), reference.height())
}

fn random_truth(rng: &mut SplitMix64, w: f64, h: f64, rot: f64, shift: f64, scale: f64, persp: f64) -> Homography {
    let mut u = || 2.0 * rng.unit() - 1.0;
    compose(
        [w / 2.0, h / 2.0],
        rot * u(),
        1.0 + scale * u(),
        [shift * u(), shift * u()],
        [persp * u() / w, persp * u() / h],
    )
}

#[test]
#[ignore = "benchmark sweep; run by bench/align.sh"]
fn sweep_real_photo() {
    let Some(reference) = load_real(&std::env::var("PIXAL_ALIGN_IMAGE").unwrap_or("flex_f1_front_raw.jpg".into())) else {
        eprintln!("no fixture");
        return;
    };
    let n: usize = std::env::var("PIXAL_ALIGN_N").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let scale_down: u32 = std::env::var("PIXAL_ALIGN_DOWN").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let reference = if scale_down > 1 {
        image::imageops::resize(&reference, reference.width() / scale_down, reference.height() / scale_down, image::imageops::FilterType::Triangle)
    } else {
        reference
    };
    let (w, h) = (reference.width() as f64, reference.height() as f64);
    let mut params = AlignParams::default();
    if let Some(nf) = std::env::var("PIXAL_ALIGN_NF").ok().and_then(|v| v.parse().ok()) {
        params.orb.n_features = nf;
    }
    let t = Instant::now();
    let prepared = Reference::new(&reference, &params);
    let t_ref = t.elapsed().as_secs_f64();
    println!(
        "reference {}x{}: {} keypoints, {} refinement samples, prepared in {:.3} s",
        w, h, prepared.features().len(), prepared.refinement_samples(), t_ref
    );
    let mut rng = SplitMix64::new(42);
    let mut errs_kp = Vec::new();
    let mut errs = Vec::new();
    let mut times = Vec::new();
    for i in 0..n {
        let truth = random_truth(&mut rng, w, h, 3.0, 40.0 / scale_down as f64, 0.03, 0.0);
        let photo = photo_of(&reference, &truth);
        // Stage timing.
        let t0 = Instant::now();
        let gray = gray_of_rgba(&photo);
        let t1 = Instant::now();
        let f = keypoints::detect_and_compute(&gray, &params.orb);
        let t2 = Instant::now();
        let m = match_knn(&f.descriptors, &prepared.features().descriptors, params.knn_ratio);
        let t3 = Instant::now();
        let _ = warp_gray(&gray, &truth, gray.width(), gray.height());
        let t4 = Instant::now();
        println!(
            "  stages: gray {:.1} ms, orb {:.1} ms ({} kp), match {:.1} ms ({} good), gray warp {:.1} ms",
            (t1 - t0).as_secs_f64() * 1e3,
            (t2 - t1).as_secs_f64() * 1e3,
            f.len(),
            (t3 - t2).as_secs_f64() * 1e3,
            m.len(),
            (t4 - t3).as_secs_f64() * 1e3
        );
        let mut p0 = params.clone();
        p0.refine = false;
        let r0 = Reference::new(&reference, &p0);
        let a0 = align_pair(&photo, &r0, &p0).unwrap();
        let t = Instant::now();
        let a = align_pair(&photo, &prepared, &params).unwrap();
        let dt = t.elapsed().as_secs_f64();
        let e0 = corner_error(&a0.homography, &truth, w, h);
        let e = corner_error(&a.homography, &truth, w, h);
        println!(
            "{i}: keypoints {:.3} px, refined {:.3} px (kept refined: {}), inliers {}/{} rms {:.2}, ssim {:.4} mse {:.2}, {:.3} s",
            e0, e, a.refined, a.inliers, a.good_matches, a.rms, a.ssim, a.mse, dt
        );
        errs_kp.push(e0);
        errs.push(e);
        times.push(dt);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "mean corner error: keypoints {:.3} px, refined {:.3} px; mean time {:.3} s per pair",
        mean(&errs_kp),
        mean(&errs),
        mean(&times)
    );
    let _ = homography::project;
}

#[allow(dead_code)]
fn unused(_: &GrayImage) {}
