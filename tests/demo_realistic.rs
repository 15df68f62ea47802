//! `pixal demo --generate-only`: the realistic data set on disk (layout, sizes, masks) as the
//! quality benchmark reads it, and the options' errors.

use std::path::Path;
use std::process::Command;

fn pixal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pixal"))
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn generate_only_writes_photos_and_masks_in_the_benchmark_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = pixal()
        .current_dir(dir.path())
        .args([
            "--json",
            "demo",
            "--generate-only",
            "--size",
            "320x180",
            "--subtle",
            "--train",
            "3",
            "--good",
            "2",
            "--defective",
            "5",
            "-o",
            "d",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let data = dir.path().join("d/data");
    for ty in ["pink_bg", "blue_bg"] {
        assert_eq!(
            names(&data.join("train").join(ty)),
            ["train_000.jpg", "train_001.jpg", "train_002.jpg"]
        );
        assert_eq!(
            names(&data.join("validate").join(ty)),
            [
                "contamination_001.jpg",
                "discolouration_003.jpg",
                "fibre_004.jpg",
                "good_000.jpg",
                "good_001.jpg",
                "missing_copper_002.jpg",
                "scratch_000.jpg",
            ]
        );
        let masks = names(&data.join("truth").join(ty));
        assert_eq!(masks.len(), 5, "{masks:?}");
        for m in &masks {
            let stem = m.strip_suffix("_mask.png").unwrap();
            assert!(!stem.starts_with("good_"));
            let photo =
                image::open(data.join("validate").join(ty).join(format!("{stem}.jpg"))).unwrap();
            assert_eq!((photo.width(), photo.height()), (320, 180));
            let mask = image::open(data.join("truth").join(ty).join(m))
                .unwrap()
                .to_luma8();
            assert_eq!(mask.dimensions(), (320, 180));
            let on = mask.pixels().filter(|p| p.0[0] == 255).count();
            assert!(on > 0, "{ty}/{m} is empty");
            assert!(on < 320 * 180 / 20, "{ty}/{m}: {on} pixels is not a defect");
            assert!(mask.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
        }
        // The two types differ by their backlight: the top-middle pixel is pink or blue.
        let p = image::open(data.join("train").join(ty).join("train_000.jpg"))
            .unwrap()
            .to_rgb8()
            .get_pixel(160, 12)
            .0;
        if ty == "pink_bg" {
            assert!(p[0] > p[2] + 80, "{ty}: {p:?}");
        } else {
            assert!(p[2] > p[0] + 80, "{ty}: {p:?}");
        }
    }
    // Nothing else ran: no configs, no model outputs.
    assert!(!dir.path().join("d/configs").exists());
    assert!(!dir.path().join("d/out").exists());
}

#[test]
fn bad_demo_options_are_refused_with_the_reason() {
    for (args, needle) in [
        (&["--size", "960"][..], "WIDTHxHEIGHT"),
        (&["--size", "10x10"][..], "outside"),
        (&["--contrast", "0"][..], "outside (0, 1]"),
        (&["--contrast", "x"][..], "not a number"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = pixal()
            .current_dir(dir.path())
            .args(["demo", "--generate-only", "-o", "d"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!dir.path().join("d").exists());
    }
}
