use super::*;

fn grid(n: usize, w: f64, h: f64, rng: &mut SplitMix64) -> Vec<Point> {
    (0..n)
        .map(|_| [rng.next_f64() * w, rng.next_f64() * h])
        .collect()
}

#[test]
fn dlt_is_exact_on_four_exact_points() {
    let truth = compose([320.0, 240.0], 4.0, 1.03, [12.5, -7.25], [2e-5, -1e-5]);
    let src = [[10.0, 20.0], [600.0, 35.0], [580.0, 450.0], [30.0, 470.0]];
    let dst: Vec<Point> = src.iter().map(|p| project(&truth, *p).unwrap()).collect();
    let h = dlt(&src, &dst, None).unwrap();
    for (s, d) in src.iter().zip(&dst) {
        let p = project(&h, *s).unwrap();
        assert!((p[0] - d[0]).abs() < 1e-8 && (p[1] - d[1]).abs() < 1e-8);
    }
    assert!(corner_error(&h, &truth, 640.0, 480.0) < 1e-8);
}

#[test]
fn degenerate_inputs_are_errors() {
    let line = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]];
    let sq = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
    assert_eq!(dlt(&line, &sq, None), Err(HomographyError::Degenerate));
    assert_eq!(dlt(&sq, &line, None), Err(HomographyError::Degenerate));
    assert_eq!(
        dlt(&sq[..3], &sq[..3], None),
        Err(HomographyError::TooFewPoints {
            found: 3,
            needed: 4
        })
    );
    let same = [[5.0, 5.0]; 4];
    assert_eq!(dlt(&same, &sq, None), Err(HomographyError::Degenerate));
    let nan = [[f64::NAN, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
    assert_eq!(dlt(&nan, &sq, None), Err(HomographyError::NonFinite));
    assert!(!sample_is_valid(&line, &sq));
    assert!(sample_is_valid(&sq, &sq));
    // A mirror flips the orientation of every triangle.
    let mirror = sq.map(|p| [-p[0], p[1]]);
    assert!(!sample_is_valid(&sq, &mirror));
    let p = RansacParams::default();
    assert!(ransac(&line, &sq, None, &p, 4).is_err());
    assert!(ransac(&[], &[], None, &p, 4).is_err());
}

#[test]
fn ransac_finds_the_model_with_half_outliers() {
    let truth = compose([960.0, 540.0], -3.0, 0.97, [35.0, -20.0], [1e-6, 2e-6]);
    for seed in 0..5u64 {
        let mut rng = SplitMix64::new(1000 + seed);
        let src = grid(400, 1920.0, 1080.0, &mut rng);
        let mut dst: Vec<Point> = src.iter().map(|p| project(&truth, *p).unwrap()).collect();
        // Half the points are outliers; the rest carry 0.3 px of noise.
        for (i, d) in dst.iter_mut().enumerate() {
            if i % 2 == 0 {
                *d = [rng.next_f64() * 1920.0, rng.next_f64() * 1080.0];
            } else {
                d[0] += (rng.next_f64() - 0.5) * 0.6;
                d[1] += (rng.next_f64() - 0.5) * 0.6;
            }
        }
        let params = RansacParams {
            threshold: 3.0,
            seed,
            ..RansacParams::default()
        };
        let e = ransac(&src, &dst, None, &params, 20).unwrap();
        let err = corner_error(&e.h, &truth, 1920.0, 1080.0);
        assert!(err < 0.2, "seed {seed}: corner error {err}");
        assert!((195..=205).contains(&e.n_inliers), "{}", e.n_inliers);
        for (i, &inl) in e.inliers.iter().enumerate() {
            if i % 2 == 1 {
                assert!(inl, "true point {i} rejected");
            }
        }
        // The same seed gives the same answer.
        let again = ransac(&src, &dst, None, &params, 20).unwrap();
        assert_eq!(e, again);
    }
}

#[test]
fn ransac_reports_missing_consensus() {
    let mut rng = SplitMix64::new(3);
    let src = grid(50, 100.0, 100.0, &mut rng);
    let dst = grid(50, 100.0, 100.0, &mut rng);
    match ransac(&src, &dst, None, &RansacParams::default(), 40) {
        Err(HomographyError::NoConsensus { best, needed: 40 }) => assert!(best < 40),
        other => panic!("{other:?}"),
    }
}

#[test]
fn lm_reduces_the_reprojection_error() {
    let truth = compose([500.0, 400.0], 2.0, 1.01, [3.0, 4.0], [5e-6, 0.0]);
    let mut rng = SplitMix64::new(9);
    let src = grid(200, 1000.0, 800.0, &mut rng);
    let dst: Vec<Point> = src.iter().map(|p| project(&truth, *p).unwrap()).collect();
    let start = compose([500.0, 400.0], 2.2, 1.0, [4.0, 3.0], [0.0, 0.0]);
    let h = levenberg_marquardt(&start, &src, &dst, None, 20);
    assert!(corner_error(&h, &truth, 1000.0, 800.0) < 1e-6);
}
