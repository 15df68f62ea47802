//! Tests of the realistic generator as a whole: the part, poses, lighting, noise, every defect
//! kind, determinism and refused specs.

use super::render::photo_to_part;
use super::*;
use image::GrayImage;

const PINK: Backlight = BACKLIGHTS[0];

fn the_part() -> &'static Part {
    part().expect("embedded part decodes")
}

/// The defect of `kind` drawn with `seed`, for a photo `width` pixels wide at the nominal pose.
fn defect(kind: DefectKind, seed: u64, width: u32, height: u32) -> Defect {
    let (_, scale) = photo_to_part(the_part(), width, height, &Pose::IDENTITY);
    random_defect(&mut Rng::new(seed), kind, the_part(), scale)
}

/// Mean absolute difference (over channels) between two photos inside and outside `mask`.
fn diff_in_out(a: &RgbImage, b: &RgbImage, mask: &GrayImage) -> (f64, f64) {
    let (mut din, mut nin, mut dout, mut nout) = (0.0, 0usize, 0.0, 0usize);
    for ((p, q), m) in a.pixels().zip(b.pixels()).zip(mask.pixels()) {
        let d: f64 = (0..3)
            .map(|k| (f64::from(p.0[k]) - f64::from(q.0[k])).abs())
            .sum::<f64>()
            / 3.0;
        if m.0[0] == 255 {
            din += d;
            nin += 1;
        } else {
            dout += d;
            nout += 1;
        }
    }
    (din / nin.max(1) as f64, dout / nout.max(1) as f64)
}

#[test]
fn embedded_part_is_the_flex_at_photo_scale() {
    let p = the_part();
    // The fixture's part is about 1296 x 349 pixels; the crop keeps a margin around it.
    let (bw, bh) = (p.bbox.2 - p.bbox.0, p.bbox.3 - p.bbox.1);
    assert!((1250.0..1340.0).contains(&bw), "{bw}");
    assert!((320.0..380.0).contains(&bh), "{bh}");
    assert!(p.w as f32 > bw && p.h as f32 > bh);
    // Interior is strictly inside the solid part.
    for (i, &v) in p.interior.iter().enumerate() {
        if v > 0.0 {
            assert!(p.alpha[i] >= 0.5);
        }
    }
}

#[test]
fn part_sits_on_the_backlight_at_two_thirds_of_the_width() {
    let (w, h) = (480, 270);
    let (img, mask) = render(
        the_part(),
        w,
        h,
        &PINK,
        &Pose::IDENTITY,
        &Lighting::NEUTRAL,
        None,
        1.0,
    );
    assert!(mask.pixels().all(|m| m.0[0] == 0));
    // Above the part, inside the lit disk: the pink backlight (with its vignette).
    let bg = img.get_pixel(w / 2, 25).0;
    assert!(
        bg[0] > 200 && bg[1] > 80 && bg[1] < 120 && bg[2] < 100,
        "{bg:?}"
    );
    // Outside the field of view: dark.
    assert!(img.get_pixel(2, 2).0.iter().all(|&v| v < 15));
    // The part's centre: yellow-green flex, not pink.
    let c = img.get_pixel(w / 2, h / 2).0;
    assert!(c[1] > c[2] + 40 && c[0] < 200, "{c:?}");
    // The part spans about 2/3 of the width along the middle row.
    let (inv, _) = photo_to_part(the_part(), w, h, &Pose::IDENTITY);
    let across = (0..w)
        .filter(|&x| {
            let (xf, yf) = (f64::from(x) + 0.5, f64::from(h) / 2.0);
            let d = inv[6] * xf + inv[7] * yf + inv[8];
            let u = ((inv[0] * xf + inv[1] * yf + inv[2]) / d) as f32;
            let v = ((inv[3] * xf + inv[4] * yf + inv[5]) / d) as f32;
            the_part().alpha_at(u, v) >= 0.5
        })
        .count() as f32
        / w as f32;
    assert!((0.62..0.72).contains(&across), "{across}");
}

#[test]
fn poses_and_lighting_stay_in_their_ranges() {
    let mut rng = Rng::new(1);
    let mut blurred = 0;
    for _ in 0..2000 {
        let p = random_pose(&mut rng, 960);
        assert!(p.angle_deg.abs() <= 3.0);
        assert!(p.shift.0.abs() <= 20.0 && p.shift.1.abs() <= 20.0, "{p:?}");
        assert!((0.97..=1.03).contains(&p.scale));
        assert!(p.perspective.0.abs() <= 0.01 && p.perspective.1.abs() <= 0.01);
        let l = random_lighting(&mut rng);
        assert!((0.88..=1.12).contains(&l.gain));
        assert!(l.bias.abs() <= 8.0);
        assert!(l.white_balance.iter().all(|g| (0.95..=1.05).contains(g)));
        assert!(l.blur == 0.0 || (0.4..=0.9).contains(&l.blur));
        blurred += usize::from(l.blur > 0.0);
        assert_eq!(l.noise, 2.0);
    }
    // Blur "sometimes": about a third of the photos.
    assert!((500..830).contains(&blurred), "{blurred}");
    // Shifts scale with the photo: ±40 px at 1920.
    let big = (0..500)
        .map(|_| random_pose(&mut rng, 1920).shift.0.abs())
        .fold(0.0f32, f32::max);
    assert!((35.0..=40.0).contains(&big), "{big}");
}

#[test]
fn sensor_noise_has_the_stated_spread() {
    let l = Lighting {
        noise: 2.0,
        noise_seed: 5,
        ..Lighting::NEUTRAL
    };
    let render_with = |light: &Lighting| {
        render(
            the_part(),
            320,
            180,
            &PINK,
            &Pose::IDENTITY,
            light,
            None,
            1.0,
        )
        .0
    };
    let (a, b) = (render_with(&Lighting::NEUTRAL), render_with(&l));
    let d: Vec<f64> = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .filter(|(x, _)| (10..245).contains(*x))
        .map(|(x, y)| f64::from(*y) - f64::from(*x))
        .collect();
    let sd = (d.iter().map(|v| v * v).sum::<f64>() / d.len() as f64).sqrt();
    assert!((1.8..2.3).contains(&sd), "{sd}");
}

#[test]
fn every_defect_changes_the_pixels_of_its_mask_only_inside_the_part() {
    let (w, h) = (480, 270);
    let part = the_part();
    let light = Lighting {
        noise: 2.0,
        noise_seed: 11,
        ..Lighting::NEUTRAL
    };
    for (i, kind) in DEFECT_KINDS.iter().enumerate() {
        for seed in 0..3u64 {
            let d = defect(*kind, 100 * i as u64 + seed, w, h);
            let pose = Pose {
                angle_deg: 2.0,
                shift: (5.0, -4.0),
                ..Pose::IDENTITY
            };
            let (good, empty) = render(part, w, h, &PINK, &pose, &light, None, 1.0);
            let (bad, mask) = render(part, w, h, &PINK, &pose, &light, Some(&d), 1.0);
            assert!(empty.pixels().all(|m| m.0[0] == 0));
            let n = mask.pixels().filter(|m| m.0[0] == 255).count();
            assert!(n >= 4, "{}: mask of {n} pixels", kind.name());
            let (din, dout) = diff_in_out(&good, &bad, &mask);
            assert!(din > 12.0, "{}: change inside the mask {din}", kind.name());
            assert!(
                dout < 0.2,
                "{}: change outside the mask {dout}",
                kind.name()
            );
            // No pixel changes visibly farther than the defect's soft edge from its mask.
            for (x, y, p) in good.enumerate_pixels() {
                let q = bad.get_pixel(x, y);
                if (0..3).any(|k| p.0[k].abs_diff(q.0[k]) > 3) {
                    let near = (y.saturating_sub(5)..(y + 6).min(h)).any(|yy| {
                        (x.saturating_sub(5)..(x + 6).min(w))
                            .any(|xx| mask.get_pixel(xx, yy).0[0] == 255)
                    });
                    assert!(
                        near,
                        "{}: ({x}, {y}) changed far from the mask",
                        kind.name()
                    );
                }
            }
            // The mask lies inside the part, away from its outline.
            let (inv, _) = photo_to_part(part, w, h, &pose);
            for (x, y, m) in mask.enumerate_pixels() {
                if m.0[0] == 255 {
                    let (xf, yf) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
                    let dd = inv[6] * xf + inv[7] * yf + inv[8];
                    let u = ((inv[0] * xf + inv[1] * yf + inv[2]) / dd) as f32;
                    let v = ((inv[3] * xf + inv[4] * yf + inv[5]) / dd) as f32;
                    assert!(
                        part.alpha_at(u, v) > 0.99,
                        "{}: mask on the outline",
                        kind.name()
                    );
                }
            }
        }
    }
}

#[test]
fn contrast_scales_the_change_but_not_the_mask() {
    let (w, h) = (480, 270);
    for (i, kind) in DEFECT_KINDS.iter().enumerate() {
        let d = defect(*kind, 7 + i as u64, w, h);
        let r = |c: f32, def: Option<&Defect>| {
            render(
                the_part(),
                w,
                h,
                &PINK,
                &Pose::IDENTITY,
                &Lighting::NEUTRAL,
                def,
                c,
            )
        };
        let (good, _) = r(1.0, None);
        let (full, m1) = r(1.0, Some(&d));
        let (soft, m2) = r(0.35, Some(&d));
        assert_eq!(m1, m2, "{}: the mask depends on the contrast", kind.name());
        let (a, _) = diff_in_out(&good, &full, &m1);
        let (b, _) = diff_in_out(&good, &soft, &m1);
        let ratio = b / a;
        assert!(
            (0.3..0.4).contains(&ratio),
            "{}: {b} / {a} = {ratio}",
            kind.name()
        );
    }
}

#[test]
fn defects_move_with_the_part() {
    let (w, h) = (480, 270);
    let d = defect(DefectKind::Contamination, 3, w, h);
    let centroid = |pose: &Pose| {
        let (_, m) = render(
            the_part(),
            w,
            h,
            &PINK,
            pose,
            &Lighting::NEUTRAL,
            Some(&d),
            1.0,
        );
        let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
        for (x, y, p) in m.enumerate_pixels() {
            if p.0[0] == 255 {
                sx += f64::from(x);
                sy += f64::from(y);
                n += 1.0;
            }
        }
        (sx / n, sy / n)
    };
    let a = centroid(&Pose::IDENTITY);
    let b = centroid(&Pose {
        shift: (10.0, -6.0),
        ..Pose::IDENTITY
    });
    assert!(
        (b.0 - a.0 - 10.0).abs() < 0.6 && (b.1 - a.1 + 6.0).abs() < 0.6,
        "{a:?} {b:?}"
    );
}

#[test]
fn generation_is_deterministic_and_complete() {
    let spec = RealisticSpec {
        width: 192,
        height: 108,
        train_per_type: 2,
        good_validate_per_type: 1,
        defective_per_type: 5,
        ..RealisticSpec::default()
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(a.path(), &spec).unwrap();
    generate(b.path(), &spec).unwrap();
    let mut files = Vec::new();
    for sub in ["train", "validate", "truth"] {
        for bl in &spec.types {
            let dir = a.path().join(sub).join(bl.name);
            let mut names: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            files.extend(names.iter().map(|n| (sub, bl.name, n.clone())));
        }
    }
    // 2 types x (2 train + 6 validate + 5 masks).
    assert_eq!(files.len(), 26, "{files:?}");
    for (sub, ty, name) in &files {
        let rel = Path::new(sub).join(ty).join(name);
        let x = std::fs::read(a.path().join(&rel)).unwrap();
        assert_eq!(x, std::fs::read(b.path().join(&rel)).unwrap(), "{rel:?}");
        if *sub == "truth" {
            let m = image::load_from_memory(&x).unwrap().to_luma8();
            assert!(m.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
            assert!(m.pixels().any(|p| p.0[0] == 255), "{rel:?} is empty");
            let stem = name.trim_end_matches("_mask.png");
            assert!(
                a.path()
                    .join("validate")
                    .join(ty)
                    .join(format!("{stem}.jpg"))
                    .is_file()
            );
        } else {
            let img = image::load_from_memory(&x).unwrap();
            assert_eq!((img.width(), img.height()), (192, 108));
        }
    }
    // A different seed gives different photos.
    let c = tempfile::tempdir().unwrap();
    generate(
        c.path(),
        &RealisticSpec {
            seed: 8,
            ..spec.clone()
        },
    )
    .unwrap();
    let rel = Path::new("train/pink_bg/train_000.jpg");
    assert_ne!(
        std::fs::read(a.path().join(rel)).unwrap(),
        std::fs::read(c.path().join(rel)).unwrap()
    );
}

#[test]
fn bad_specs_are_refused_with_the_reason() {
    let bad = [
        RealisticSpec {
            contrast: 0.0,
            ..RealisticSpec::default()
        },
        RealisticSpec {
            contrast: 1.5,
            ..RealisticSpec::default()
        },
        RealisticSpec {
            width: 10,
            ..RealisticSpec::default()
        },
        RealisticSpec {
            jpeg_quality: 0,
            ..RealisticSpec::default()
        },
        RealisticSpec {
            types: vec![],
            ..RealisticSpec::default()
        },
    ];
    for s in bad {
        let e = s.check().unwrap_err().to_string();
        assert!(e.starts_with("realistic demo data:"), "{e}");
    }
}
