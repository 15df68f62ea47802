use super::*;
use crate::rng::SplitMix64;
use burn::backend::Autodiff;
use burn::tensor::Distribution;

fn rand(n: usize, seed: u64) -> Vec<f32> {
    let mut r = SplitMix64::new(seed);
    (0..n).map(|_| (r.next_f64() * 2.0 - 1.0) as f32).collect()
}

#[test]
fn kernels_match_naive_products() {
    // Shapes with and without full 4 x 16 tiles, one and several row chunks.
    for &(m, k, n) in &[
        (3usize, 5usize, 7usize),
        (32, 70, 600),
        (6, 300, 2100),
        (1, 1, 1),
        (5, 130, 33),
    ] {
        let x = rand(m * k, 1);
        let g = rand(m * n, 4);
        let dw = at_b(&x, m, k, &g, n);
        let w = rand(k * n, 2);
        let b = rand(n, 3);
        let y = xw_plus_b(&x, m, k, &w, n, &b);
        for r in 0..m {
            for j in 0..n {
                let want: f64 = f64::from(b[j])
                    + (0..k)
                        .map(|i| f64::from(x[r * k + i]) * f64::from(w[i * n + j]))
                        .sum::<f64>();
                assert!(
                    (f64::from(y[r * n + j]) - want).abs() < 1e-4,
                    "y {m}x{k}x{n}"
                );
            }
        }
        for i in 0..k {
            for j in 0..n {
                let want: f64 = (0..m)
                    .map(|r| f64::from(x[r * k + i]) * f64::from(g[r * n + j]))
                    .sum();
                assert!(
                    (f64::from(dw[i * n + j]) - want).abs() < 1e-4,
                    "dw {m}x{k}x{n}"
                );
            }
        }
    }
}

/// Every version this CPU runs against the baseline one, on shapes with every kind of tail
/// (rows short of a 4-row tile, columns short of 16, partial row chunks and column blocks).
/// The versions differ only in fused multiply-adds, so each entry may differ by the
/// rounding of its sum: a few ulps per term of `sum |products|`.
#[test]
fn every_supported_variant_matches_the_baseline() {
    let variants = Simd::supported();
    eprintln!("variants run: {variants:?}");
    for &(m, k, n) in &[
        (1usize, 1usize, 1usize),
        (3, 5, 7),
        (5, 130, 33),
        (13, 301, 517),
        (33, 67, 300),
    ] {
        let x = rand(m * k, 11);
        let w = rand(k * n, 12);
        let b = rand(n, 13);
        let g = rand(m * n, 14);
        let y0 = xw_plus_b_with(Simd::Baseline, &x, m, k, &w, n, &b);
        let dw0 = at_b_with(Simd::Baseline, &x, m, k, &g, n);
        // Bounds from the sums of absolute terms, computed in f64.
        let eps = 4.0 * f64::from(f32::EPSILON);
        let y_tol = |r: usize, j: usize| {
            let abs: f64 = f64::from(b[j].abs())
                + (0..k)
                    .map(|i| f64::from((x[r * k + i] * w[i * n + j]).abs()))
                    .sum::<f64>();
            eps * (k as f64 + 1.0) * abs
        };
        let dw_tol = |i: usize, j: usize| {
            let abs: f64 = (0..m)
                .map(|r| f64::from((x[r * k + i] * g[r * n + j]).abs()))
                .sum();
            eps * m as f64 * abs
        };
        for &simd in &variants {
            let y = xw_plus_b_with(simd, &x, m, k, &w, n, &b);
            let dw = at_b_with(simd, &x, m, k, &g, n);
            assert_eq!((y.len(), dw.len()), (m * n, k * n), "{simd:?} {m}x{k}x{n}");
            for r in 0..m {
                for j in 0..n {
                    let d = f64::from((y[r * n + j] - y0[r * n + j]).abs());
                    assert!(
                        d <= y_tol(r, j),
                        "y {simd:?} {m}x{k}x{n} at ({r}, {j}): {d}"
                    );
                }
            }
            for i in 0..k {
                for j in 0..n {
                    let d = f64::from((dw[i * n + j] - dw0[i * n + j]).abs());
                    assert!(
                        d <= dw_tol(i, j),
                        "dw {simd:?} {m}x{k}x{n} at ({i}, {j}): {d}"
                    );
                }
            }
        }
    }
}

#[test]
fn dense_op_and_gradients_match_burn_linear() {
    type Ad = Autodiff<Flex>;
    let dev = Default::default();
    // Big enough for the kernels (600 x 500 weights), and a small layer that falls back.
    for (k, n) in [(600usize, 500usize), (4, 3)] {
        let layer = burn::nn::LinearConfig::new(k, n).init::<Ad>(&dev);
        let bias = burn::module::Param::from_tensor(Tensor::<Ad, 1>::random(
            [n],
            Distribution::Default,
            &dev,
        ));
        let layer = Linear {
            weight: layer.weight,
            bias: Some(bias),
        };
        let x = Tensor::<Ad, 2>::random([5, k], Distribution::Default, &dev);
        let ours = dense(x.clone(), &layer);
        let theirs = layer.forward(x);
        let a = ours.clone().into_data().to_vec::<f32>().unwrap();
        let b = theirs.clone().into_data().to_vec::<f32>().unwrap();
        assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-4));
        let g1 = ours.square().sum().backward();
        let g2 = theirs.square().sum().backward();
        let p = layer
            .weight
            .grad(&g1)
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let q = layer
            .weight
            .grad(&g2)
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert!(
            p.iter()
                .zip(&q)
                .all(|(u, v)| (u - v).abs() < 1e-3 * v.abs().max(1.0))
        );
        let bias = layer.bias.as_ref().unwrap();
        let (p, q) = (
            bias.grad(&g1).unwrap().into_data().to_vec::<f32>().unwrap(),
            bias.grad(&g2).unwrap().into_data().to_vec::<f32>().unwrap(),
        );
        assert!(
            p.iter()
                .zip(&q)
                .all(|(u, v)| (u - v).abs() < 1e-3 * v.abs().max(1.0))
        );
    }
}
