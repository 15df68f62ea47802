//! JPEG decoding equals libjpeg-turbo's, as `PIL.Image.open` returns it, to the byte.
//!
//! The JPEGs under `tests/golden/jpeg/` are written by [`fixtures`] below (the `jpeg-encoder`
//! crate: baseline and progressive, 4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1, gray, CMYK, YCCK,
//! restart markers, an EXIF orientation, several qualities, odd sizes). The expected pixels
//! beside them (`<name>.png`, decoded by PIL), the hash of PIL's pixels of the real photo
//! (`real_fixture.txt`) and the feature channels of one of them computed on OpenCV's pixels
//! (`*_features.npy`) were made by `tests/golden/make_jpeg_golden.py`, which also checks that
//! OpenCV's `imread` gives PIL's pixels. CI needs neither PIL nor OpenCV.
//!
//! To regenerate after changing the fixtures: `cargo test --release --test golden_jpeg --
//! --ignored write_fixtures`, then `python3 tests/golden/make_jpeg_golden.py`.

mod common;

use std::path::{Path, PathBuf};

use image::DynamicImage;
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use pixal::io::image::{load_dynamic, load_rgb8};
use sha2::{Digest, Sha256};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/jpeg")
}

/// Deterministic test content: gradients, a few sharp edges and pseudo-random texture, so
/// every DCT coefficient, the chroma upsampling and the colour conversion are exercised.
fn pattern(w: u16, h: u16, channels: usize) -> Vec<u8> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut noise = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 61) as i32 - 30
    };
    let (w, h) = (i32::from(w), i32::from(h));
    let mut out = Vec::with_capacity((w * h) as usize * channels);
    for y in 0..h {
        for x in 0..w {
            let edge = if (x / 11 + y / 7) % 3 == 0 { 90 } else { 0 };
            let base = [
                x * 255 / w,
                y * 255 / h,
                (x + y) * 128 / (w + h) + edge,
                ((x * y) % 97) * 2,
            ];
            for b in base.iter().take(channels) {
                out.push((b + noise()).clamp(0, 255) as u8);
            }
        }
    }
    out
}

/// One fixture: file stem and how it is written.
struct Spec {
    name: &'static str,
    size: (u16, u16),
    color: ColorType,
    sampling: SamplingFactor,
    quality: u8,
    progressive: bool,
    restart: Option<u16>,
    exif_orientation: Option<u16>,
}

const fn spec(
    name: &'static str,
    color: ColorType,
    sampling: SamplingFactor,
    quality: u8,
    progressive: bool,
) -> Spec {
    Spec {
        name,
        size: (93, 67),
        color,
        sampling,
        quality,
        progressive,
        restart: None,
        exif_orientation: None,
    }
}

fn specs() -> Vec<Spec> {
    use ColorType::{Cmyk, CmykAsYcck, Luma, Rgb};
    use SamplingFactor::{R_4_1_1, R_4_2_0, R_4_2_2, R_4_4_0, R_4_4_4};
    vec![
        spec("rgb444_q50", Rgb, R_4_4_4, 50, false),
        spec("rgb444_q92_prog", Rgb, R_4_4_4, 92, true),
        spec("rgb422_q75", Rgb, R_4_2_2, 75, false),
        spec("rgb422_q75_prog", Rgb, R_4_2_2, 75, true),
        spec("rgb420_q30", Rgb, R_4_2_0, 30, false),
        spec("rgb420_q75", Rgb, R_4_2_0, 75, false),
        spec("rgb420_q95", Rgb, R_4_2_0, 95, false),
        spec("rgb420_q75_prog", Rgb, R_4_2_0, 75, true),
        spec("rgb440_q80", Rgb, R_4_4_0, 80, false),
        spec("rgb411_q80", Rgb, R_4_1_1, 80, false),
        Spec {
            size: (64, 48),
            ..spec("rgb420_q85_16x16", Rgb, R_4_2_0, 85, false)
        },
        Spec {
            restart: Some(3),
            ..spec("rgb420_q85_restart", Rgb, R_4_2_0, 85, false)
        },
        Spec {
            exif_orientation: Some(6),
            ..spec("rgb420_q85_exif6", Rgb, R_4_2_0, 85, false)
        },
        spec("gray_q80", Luma, R_4_4_4, 80, false),
        spec("gray_q60_prog", Luma, R_4_4_4, 60, true),
        spec("cmyk_q90", Cmyk, R_4_4_4, 90, false),
        spec("ycck_q90", CmykAsYcck, R_4_4_4, 90, false),
    ]
}

/// A minimal little-endian EXIF block (the APP1 payload after `Exif\0\0`) holding one
/// Orientation entry.
fn exif_tiff(orientation: u16) -> Vec<u8> {
    let mut t = b"Exif\0\0II*\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes());
    t.extend_from_slice(&1u16.to_le_bytes());
    t.extend_from_slice(&0x0112u16.to_le_bytes());
    t.extend_from_slice(&3u16.to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&orientation.to_le_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_le_bytes());
    t
}

/// Every fixture's name and JPEG bytes, as the generator writes them.
fn fixtures() -> Vec<(&'static str, Vec<u8>)> {
    specs()
        .into_iter()
        .map(|s| {
            let channels = match s.color {
                ColorType::Luma => 1,
                ColorType::Cmyk | ColorType::CmykAsYcck => 4,
                _ => 3,
            };
            let data = pattern(s.size.0, s.size.1, channels);
            let mut out = Vec::new();
            let mut enc = Encoder::new(&mut out, s.quality);
            enc.set_sampling_factor(s.sampling);
            enc.set_progressive(s.progressive);
            if let Some(r) = s.restart {
                enc.set_restart_interval(r);
            }
            if let Some(o) = s.exif_orientation {
                enc.add_app_segment(1, &exif_tiff(o)).unwrap();
            }
            enc.encode(&data, s.size.0, s.size.1, s.color).unwrap();
            (s.name, out)
        })
        .collect()
}

/// Writes the fixtures into `tests/golden/jpeg/` (run by hand, then the Python script).
#[test]
#[ignore = "regenerates the committed fixtures"]
fn write_fixtures() {
    let dir = golden_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in fixtures() {
        std::fs::write(dir.join(format!("{name}.jpg")), bytes).unwrap();
    }
}

/// The committed JPEGs are the generator's: the goldens describe what the tests write.
#[test]
fn committed_fixtures_are_the_generators() {
    let all = fixtures();
    assert!(all.len() >= 17);
    for (name, bytes) in all {
        let p = golden_dir().join(format!("{name}.jpg"));
        let committed = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(
            committed == bytes,
            "{}: the generator now writes other bytes (jpeg-encoder changed?); regenerate the \
             fixtures and goldens as the module documentation says",
            p.display()
        );
    }
}

/// Counts differing samples and the largest difference, for a readable failure.
fn compare(got: &[u8], want: &[u8]) -> (usize, u8) {
    got.iter()
        .zip(want)
        .filter(|(a, b)| a != b)
        .fold((0, 0), |(n, m), (a, b)| (n + 1, m.max(a.abs_diff(*b))))
}

#[test]
fn every_fixture_decodes_to_pils_pixels() {
    let mut checked = 0;
    for (name, _) in fixtures() {
        let jpg = golden_dir().join(format!("{name}.jpg"));
        let png = golden_dir().join(format!("{name}.png"));
        let want = load_dynamic(&png).unwrap();
        let got = load_dynamic(&jpg).unwrap();
        assert_eq!(
            got.dimensions_tuple(),
            want.dimensions_tuple(),
            "{name}: size"
        );
        let (g, w): (Vec<u8>, Vec<u8>) = match &want {
            DynamicImage::ImageLuma8(w) => {
                let DynamicImage::ImageLuma8(g) = &got else {
                    panic!("{name}: decoded as {:?}, PIL gives gray", got.color());
                };
                (g.as_raw().clone(), w.as_raw().clone())
            }
            DynamicImage::ImageRgb8(w) => {
                let DynamicImage::ImageRgb8(g) = &got else {
                    panic!("{name}: decoded as {:?}, PIL gives RGB", got.color());
                };
                (g.as_raw().clone(), w.as_raw().clone())
            }
            other => panic!("{name}: unexpected golden colour type {:?}", other.color()),
        };
        let (n, max) = compare(&g, &w);
        assert!(
            n == 0,
            "{name}: {n} of {} samples differ from PIL's (largest difference {max})",
            w.len()
        );
        checked += 1;
    }
    assert_eq!(checked, specs().len());
}

trait Dims {
    fn dimensions_tuple(&self) -> (u32, u32);
}

impl Dims for DynamicImage {
    fn dimensions_tuple(&self) -> (u32, u32) {
        (self.width(), self.height())
    }
}

/// The real microscope photo (1920x1080, from a camera) decodes to PIL's pixels: same SHA-256
/// of the RGB bytes. Skipped when the shared fixtures are not next to the crate (failed where
/// `PIXAL_REQUIRE_FIXTURES` is set).
#[test]
fn real_photo_decodes_to_pils_pixels() {
    let text = std::fs::read_to_string(golden_dir().join("real_fixture.txt")).unwrap();
    let mut fields = text.split_whitespace();
    let (Some(file), Some(hash), Some(w), Some(h)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        panic!("real_fixture.txt: expected `<file> <sha256> <width> <height>`");
    };
    let Some(p) = common::real_fixture(file) else {
        return;
    };
    let img = load_rgb8(&p).unwrap();
    assert_eq!(
        (img.width().to_string(), img.height().to_string()),
        (w.to_string(), h.to_string())
    );
    let got: String = Sha256::digest(img.as_raw())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(got, hash, "{}: pixels differ from PIL's", p.display());
}

/// Feature channels computed from a JPEG equal OpenCV's computed on `cv2.imread`'s pixels, to
/// the tolerance of tests/golden_features.rs (one 8-bit step; 0.02 for the robust-normalised
/// channels): the decoder no longer adds its own differences.
#[test]
fn features_from_jpeg_equal_opencvs_on_imread() {
    use ndarray::Array3;
    use pixal::preprocess::Channel;
    use pixal::preprocess::features::compute_features;
    let img = load_rgb8(&golden_dir().join("rgb420_q85_16x16.jpg")).unwrap();
    let npy = golden_dir().join("rgb420_q85_16x16_features.npy");
    let expected: Array3<f32> = ndarray_npy::read_npy(&npy).unwrap();
    let got = compute_features(&img, &Channel::ALL);
    assert_eq!(got.dim(), expected.dim());
    let mut failures = Vec::new();
    for (k, &ch) in Channel::ALL.iter().enumerate() {
        let tol = match ch {
            Channel::LchC | Channel::OppO1 | Channel::OppO2 | Channel::Laplacian => 0.02,
            _ => 1.0 / 255.0 + 1e-5,
        };
        let worst = got
            .index_axis(ndarray::Axis(2), k)
            .iter()
            .zip(expected.index_axis(ndarray::Axis(2), k).iter())
            .map(|(g, e)| (g - e).abs())
            .fold(
                0f32,
                |m, e| if e.is_nan() { f32::INFINITY } else { m.max(e) },
            );
        if worst > tol {
            failures.push(format!("{}: max error {worst:.3e} > {tol:.3e}", ch.name()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
