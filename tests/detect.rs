//! Detection geometry and calibration end to end, with the shipped configuration: good photos —
//! the training photos themselves and one of them shifted by 2 px — are validated against a
//! model trained on them, and must come out good, with no band of high scores along the part's
//! outline (the stored crop box is kept for aligned photos, and the outline cannot set the image
//! score).

mod common;

use std::path::Path;

/// Runs pixal in `dir`: (exit code, stderr).
fn pixal(dir: &Path, args: &[&str]) -> (i32, String) {
    let (code, _, err) = common::run_pixal(dir, args);
    (code, err)
}

/// The photo moved by (dx, dy) pixels, the border repeated.
fn shifted(img: &image::RgbImage, dx: i64, dy: i64) -> image::RgbImage {
    let (w, h) = img.dimensions();
    image::RgbImage::from_fn(w, h, |x, y| {
        let sx = (i64::from(x) - dx).clamp(0, i64::from(w) - 1) as u32;
        let sy = (i64::from(y) - dy).clamp(0, i64::from(h) - 1) as u32;
        *img.get_pixel(sx, sy)
    })
}

#[test]
fn training_photos_and_a_shifted_one_are_good_with_no_edge_band() {
    let proj = common::shipped_project();
    let root = proj.path();
    common::edit_params(
        root,
        "model_type: \"autoencoder\"",
        "model_type: \"pixel_stats\"",
    );
    common::edit_params(root, "method: auto ", "method: classical ");
    let spec = pixal::demo::DemoSpec {
        width: 320,
        height: 240,
        good_per_type: 16,
        good_validate_per_type: 0,
        defective_per_type: 0,
        seed: 11,
    };
    let data = pixal::demo::generate(&root.join("data"), &spec).unwrap();
    let front = data.train.join("front");
    let mut photos: Vec<_> = std::fs::read_dir(&front)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    photos.sort();
    // Train on one type only.
    let train = root.join("train/front");
    std::fs::create_dir_all(&train).unwrap();
    for p in &photos {
        std::fs::copy(p, train.join(p.file_name().unwrap())).unwrap();
    }
    let (code, err) = pixal(root, &["preprocess", "-i", "train"]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = pixal(root, &["train"]);
    assert_eq!(code, 0, "{err}");

    // Validate four training photos and the first one shifted by 2 px right and 1 px down.
    let val = root.join("val/front");
    std::fs::create_dir_all(&val).unwrap();
    for p in &photos[..4] {
        std::fs::copy(p, val.join(p.file_name().unwrap())).unwrap();
    }
    let first = image::open(&photos[0]).unwrap().to_rgb8();
    shifted(&first, 2, 1)
        .save(val.join("shifted_by_2px.png"))
        .unwrap();
    let (code, err) = pixal(root, &["validate", "-i", "val"]);
    assert_eq!(code, 0, "{err}");
    let vdir = root.join("validate/Data_set_R0_Triplet_Data_F1_d1_2ps_6var/front");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(vdir.join("summary.json")).unwrap()).unwrap();
    let images = s["images"].as_array().unwrap();
    assert_eq!(images.len(), 5, "{s}");
    let thr = s["thresholds"]["image"].as_f64().unwrap();
    for im in images {
        assert_eq!(im["verdict"], "good", "{im} (image threshold {thr})");
        // An edge band would put a few percent of the part above the pixel threshold.
        let pct = im["anomalous_percent"].as_f64().unwrap();
        assert!(pct < 0.2, "{im}");
        // Maps are >= 0, finite, and 0 far from the part (the photo's corners).
        let map: ndarray::Array2<f32> =
            ndarray_npy::read_npy(root.join(im["map_npy"].as_str().unwrap())).unwrap();
        assert!(map.iter().all(|v| v.is_finite() && *v >= 0.0));
        assert_eq!(map[[0, 0]], 0.0);
        let (h, w) = map.dim();
        assert_eq!(map[[h - 1, w - 1]], 0.0);
    }

    // A defective photo misses the MSE gate against every reference (the defect does not line
    // up with anything): validate tries at most `max_references` of them (shipped 5), then
    // uses the best alignment with a warning, and the defect is found.
    common::edit_params(root, "max_references: 5 ", "max_references: 3 ");
    let bad = root.join("bad/front");
    std::fs::create_dir_all(&bad).unwrap();
    let mut defect = first.clone();
    let (w, h) = defect.dimensions();
    for y in h / 2 - 12..h / 2 + 12 {
        for x in w / 2 - 20..w / 2 + 20 {
            defect.put_pixel(x, y, image::Rgb([10, 10, 10]));
        }
    }
    defect.save(bad.join("blob.png")).unwrap();
    let (code, err) = pixal(root, &["validate", "-i", "bad", "-o", "bad_out"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("any of 3 references"), "{err}");
    assert!(!err.contains("[3]"), "{err}");
    let s: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("bad_out/front/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(s["images"][0]["verdict"], "anomalous", "{s}");
}
