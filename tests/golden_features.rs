//! Golden test of `compute_features` against OpenCV/numpy.
//!
//! The fixtures in `tests/golden/features/` (small PNGs and the 23 channels OpenCV computed for
//! them, as float32 `.npy`) were written by `tests/golden/make_features_golden.py`, the reference
//! implementation of the channel definitions. This test reads only those committed files, so it
//! needs no OpenCV. Run with `--nocapture` to see the max error per channel.

use std::path::{Path, PathBuf};

use ndarray::Array3;
use ndarray_npy::read_npy;
use pixal::preprocess::Channel;
use pixal::preprocess::features::compute_features;

/// One 8-bit step, plus room for f32 rounding.
const TOL_8BIT: f32 = 1.0 / 255.0 + 1e-5;
/// The robust-normalised channels: percentile interpolation may differ slightly.
const TOL_ROBUST: f32 = 0.02;

fn tolerance(ch: Channel) -> f32 {
    match ch {
        Channel::LchC | Channel::OppO1 | Channel::OppO2 | Channel::Laplacian => TOL_ROBUST,
        _ => TOL_8BIT,
    }
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/features")
}

/// The fixture pairs `img_<i>.png` / `img_<i>.npy`, in index order.
fn fixtures() -> Vec<(PathBuf, PathBuf)> {
    let dir = fixture_dir();
    let mut out = Vec::new();
    for i in 0.. {
        let png = dir.join(format!("img_{i}.png"));
        if !png.exists() {
            break;
        }
        out.push((png, dir.join(format!("img_{i}.npy"))));
    }
    out
}

/// Largest error of one channel and where it occurred.
#[derive(Clone, Copy, Default)]
struct Worst {
    err: f32,
    at: (usize, usize),
    expected: f32,
    got: f32,
}

#[test]
fn features_match_opencv_golden() {
    let fixtures = fixtures();
    assert!(
        fixtures.len() >= 3,
        "expected fixtures in {}",
        fixture_dir().display()
    );

    let mut overall = [0f32; 23];
    let mut failures = Vec::new();
    for (png, npy) in &fixtures {
        let img = image::open(png)
            .unwrap_or_else(|e| panic!("{}: {e}", png.display()))
            .to_rgb8();
        let expected: Array3<f32> =
            read_npy(npy).unwrap_or_else(|e| panic!("{}: {e}", npy.display()));
        let got = compute_features(&img, &Channel::ALL);
        assert_eq!(got.dim(), expected.dim(), "{}", png.display());

        let (h, w, _) = got.dim();
        let name = png
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!("{name} ({w}x{h}):");
        for (k, &ch) in Channel::ALL.iter().enumerate() {
            let mut worst = Worst::default();
            for y in 0..h {
                for x in 0..w {
                    let (e, g) = (expected[[y, x, k]], got[[y, x, k]]);
                    let err = (e - g).abs();
                    if err > worst.err || err.is_nan() {
                        worst = Worst {
                            err,
                            at: (y, x),
                            expected: e,
                            got: g,
                        };
                    }
                }
            }
            overall[k] = overall[k].max(worst.err);
            let ok = worst.err <= tolerance(ch);
            println!(
                "  {:<10} max err {:.2e}{}",
                ch.name(),
                worst.err,
                if ok { "" } else { "  <-- FAIL" }
            );
            if !ok {
                failures.push(format!(
                    "{name}: {} at (y={}, x={}): expected {}, got {} (err {:.3e} > {:.3e})",
                    ch.name(),
                    worst.at.0,
                    worst.at.1,
                    worst.expected,
                    worst.got,
                    worst.err,
                    tolerance(ch)
                ));
            }
        }
    }
    println!("max error per channel over all fixtures:");
    for (ch, err) in Channel::ALL.iter().zip(overall) {
        println!("  {:<10} {err:.2e}", ch.name());
    }
    assert!(
        failures.is_empty(),
        "channels differ from OpenCV:\n{}",
        failures.join("\n")
    );
}
