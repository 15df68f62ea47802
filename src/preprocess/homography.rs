//! Plane homographies from point correspondences: normalised DLT, seeded RANSAC, weighted
//! least-squares re-fit and Levenberg–Marquardt polishing of the reprojection error.
//!
//! A homography `H` maps a point `p = (x, y)` of one image to `H p` (homogeneous coordinates,
//! divided by the third one) in the other. Everything here is pure and returns an error value
//! for degenerate input (too few points, collinear samples, no consensus); nothing panics.

use nalgebra::{DMatrix, Matrix3, SMatrix, SVector, Vector3};

/// A 3x3 homography, `H[(row, col)]`, normalised so that `H[(2, 2)] = 1` where possible.
pub type Homography = Matrix3<f64>;

/// A 2-D point.
pub type Point = [f64; 2];

/// Why no homography could be estimated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HomographyError {
    /// Fewer correspondences than the 4 a homography needs.
    #[error("{found} point correspondences, a homography needs at least {needed}")]
    TooFewPoints {
        /// How many were given.
        found: usize,
        /// How many are needed.
        needed: usize,
    },
    /// The points are (nearly) collinear or coincident, so they fix no homography.
    #[error("the points are degenerate (collinear or coincident)")]
    Degenerate,
    /// RANSAC found no sample whose model is supported by enough points.
    #[error("RANSAC found no consistent homography ({best} inliers at best, {needed} needed)")]
    NoConsensus {
        /// The largest consensus seen.
        best: usize,
        /// The consensus asked for.
        needed: usize,
    },
    /// Non-finite coordinates in the input.
    #[error("non-finite point coordinates")]
    NonFinite,
}

/// Applies `h` to `p`; `None` when the point maps to infinity.
#[inline]
pub fn project(h: &Homography, p: Point) -> Option<Point> {
    let w = h[(2, 0)] * p[0] + h[(2, 1)] * p[1] + h[(2, 2)];
    if w.abs() < 1e-12 || !w.is_finite() {
        return None;
    }
    Some([
        (h[(0, 0)] * p[0] + h[(0, 1)] * p[1] + h[(0, 2)]) / w,
        (h[(1, 0)] * p[0] + h[(1, 1)] * p[1] + h[(1, 2)]) / w,
    ])
}

/// Scales `h` so that its bottom-right entry is 1 (or its norm is 1 when that entry is ~0).
pub fn normalized(h: &Homography) -> Homography {
    let s = h[(2, 2)];
    if s.abs() > 1e-12 * h.norm() {
        h / s
    } else {
        h / h.norm()
    }
}

/// Hartley's normalisation: moves the centroid to the origin and scales the mean distance to
/// sqrt(2). Returns the 3x3 transform, or `None` when all points coincide.
fn normalizer(points: &[Point], weights: Option<&[f64]>) -> Option<Matrix3<f64>> {
    let mut sw = 0.0;
    let (mut cx, mut cy) = (0.0, 0.0);
    for (i, p) in points.iter().enumerate() {
        let w = weights.map_or(1.0, |w| w[i]);
        sw += w;
        cx += w * p[0];
        cy += w * p[1];
    }
    if sw <= 0.0 {
        return None;
    }
    cx /= sw;
    cy /= sw;
    let mut d = 0.0;
    for (i, p) in points.iter().enumerate() {
        let w = weights.map_or(1.0, |w| w[i]);
        d += w * ((p[0] - cx).powi(2) + (p[1] - cy).powi(2)).sqrt();
    }
    d /= sw;
    if d.is_nan() || d <= 1e-12 {
        return None;
    }
    let s = std::f64::consts::SQRT_2 / d;
    Some(Matrix3::new(
        s,
        0.0,
        -s * cx,
        0.0,
        s,
        -s * cy,
        0.0,
        0.0,
        1.0,
    ))
}

/// Normalised direct linear transform: the homography mapping `src[i]` to `dst[i]` that
/// minimises the algebraic error (exact for 4 points in general position). Optional
/// non-negative `weights` scale each correspondence's equations.
pub fn dlt(
    src: &[Point],
    dst: &[Point],
    weights: Option<&[f64]>,
) -> Result<Homography, HomographyError> {
    let n = src.len().min(dst.len());
    check_points(&src[..n], &dst[..n])?;
    let ts = normalizer(&src[..n], weights).ok_or(HomographyError::Degenerate)?;
    let td = normalizer(&dst[..n], weights).ok_or(HomographyError::Degenerate)?;
    // Two equations per correspondence; at least 9 rows so the SVD yields all 9 right
    // singular vectors (zero rows change nothing).
    let rows = (2 * n).max(9);
    let mut a = DMatrix::<f64>::zeros(rows, 9);
    for i in 0..n {
        let w = weights.map_or(1.0, |w| w[i].max(0.0).sqrt());
        let s = ts * Vector3::new(src[i][0], src[i][1], 1.0);
        let d = td * Vector3::new(dst[i][0], dst[i][1], 1.0);
        let (x, y) = (s[0], s[1]);
        let (u, v) = (d[0], d[1]);
        let r0 = [-x, -y, -1.0, 0.0, 0.0, 0.0, u * x, u * y, u];
        let r1 = [0.0, 0.0, 0.0, -x, -y, -1.0, v * x, v * y, v];
        for j in 0..9 {
            a[(2 * i, j)] = w * r0[j];
            a[(2 * i + 1, j)] = w * r1[j];
        }
    }
    let svd = a.svd(false, true);
    let v_t = svd.v_t.ok_or(HomographyError::Degenerate)?;
    let sv = &svd.singular_values;
    // nalgebra does not sort: find the smallest and second smallest singular values.
    let mut idx: Vec<usize> = (0..sv.len()).collect();
    idx.sort_by(|&i, &j| sv[i].total_cmp(&sv[j]));
    let (k, k2) = (idx[0], idx[1]);
    // A second (near) null vector means the points do not fix the model.
    if sv[k2] <= 1e-10 * sv[idx[idx.len() - 1]].max(1e-300) {
        return Err(HomographyError::Degenerate);
    }
    let hn = Matrix3::from_fn(|r, c| v_t[(k, 3 * r + c)]);
    let td_inv = td.try_inverse().ok_or(HomographyError::Degenerate)?;
    let h = td_inv * hn * ts;
    if !h.iter().all(|v| v.is_finite()) || h.determinant().abs() < 1e-300 {
        return Err(HomographyError::Degenerate);
    }
    Ok(normalized(&h))
}

/// Twice the signed area of the triangle (a, b, c).
#[inline]
fn area2(a: Point, b: Point, c: Point) -> f64 {
    (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
}

/// A minimal sample is usable when no three of its points are (nearly) collinear in either
/// image and every triangle keeps its orientation (a homography of a physical plane seen from
/// the front never mirrors), as OpenCV's `checkSubset` does.
pub fn sample_is_valid(src: &[Point; 4], dst: &[Point; 4]) -> bool {
    const TRIPLES: [[usize; 3]; 4] = [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]];
    let scale = |p: &[Point; 4]| {
        let mut m = 0.0f64;
        for a in p {
            for b in p {
                m = m.max((a[0] - b[0]).abs() + (a[1] - b[1]).abs());
            }
        }
        m
    };
    let (ls, ld) = (scale(src), scale(dst));
    if !(ls > 1e-9 && ld > 1e-9) {
        return false;
    }
    TRIPLES.iter().all(|t| {
        let a = area2(src[t[0]], src[t[1]], src[t[2]]);
        let b = area2(dst[t[0]], dst[t[1]], dst[t[2]]);
        // Relative to the sample's extent: a sliver triangle is as bad as a collinear one.
        a.abs() > 1e-3 * ls * ls && b.abs() > 1e-3 * ld * ld && (a > 0.0) == (b > 0.0)
    })
}

/// Settings of [`ransac`].
#[derive(Debug, Clone, PartialEq)]
pub struct RansacParams {
    /// A correspondence is an inlier when its reprojection error is at most this (pixels).
    pub threshold: f64,
    /// Upper bound on the iterations.
    pub max_iters: usize,
    /// Stop once a sample free of outliers was drawn with this probability.
    pub confidence: f64,
    /// Seed of the sampling, so results are reproducible.
    pub seed: u64,
}

impl Default for RansacParams {
    fn default() -> Self {
        RansacParams {
            threshold: 3.0,
            max_iters: 4000,
            confidence: 0.999,
            seed: 101,
        }
    }
}

/// The model RANSAC found, re-fitted on its inliers.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// The homography mapping `src` to `dst`.
    pub h: Homography,
    /// Which correspondences are within the threshold of the final model.
    pub inliers: Vec<bool>,
    /// Number of `true` in `inliers`.
    pub n_inliers: usize,
    /// RANSAC iterations run.
    pub iterations: usize,
    /// Root-mean-square reprojection error of the inliers (pixels).
    pub rms: f64,
}

use crate::rng::SplitMix64;

/// Squared reprojection error of one correspondence (infinite when `h` sends it to infinity).
#[inline]
fn err2(h: &Homography, s: Point, d: Point) -> f64 {
    match project(h, s) {
        Some(p) => (p[0] - d[0]).powi(2) + (p[1] - d[1]).powi(2),
        None => f64::INFINITY,
    }
}

fn count_inliers(h: &Homography, src: &[Point], dst: &[Point], t2: f64) -> usize {
    src.iter()
        .zip(dst)
        .filter(|(s, d)| err2(h, **s, **d) <= t2)
        .count()
}

/// RANSAC over 4-point samples (degenerate ones rejected), then a weighted least-squares re-fit
/// on the inliers and a Levenberg–Marquardt polish of the reprojection error, repeated until the
/// inlier set settles.
///
/// `weights` (optional, one per correspondence, > 0) say how much each point can be trusted in
/// the re-fit — e.g. `1 / scale²` for a keypoint found on a coarse pyramid level. At least
/// `min_inliers` (and at least 4) inliers are required.
pub fn ransac(
    src: &[Point],
    dst: &[Point],
    weights: Option<&[f64]>,
    params: &RansacParams,
    min_inliers: usize,
) -> Result<Estimate, HomographyError> {
    let n = src.len().min(dst.len());
    let needed = min_inliers.max(4);
    check_points(&src[..n], &dst[..n])?;
    let (src, dst) = (&src[..n], &dst[..n]);
    let t2 = params.threshold * params.threshold;
    let mut rng = SplitMix64::new(params.seed);
    let mut best: Option<(Homography, usize)> = None;
    let mut max_iters = params.max_iters.max(1);
    let mut iterations = 0;
    let mut attempts = 0;
    while iterations < max_iters && attempts < 20 * params.max_iters.max(1) {
        attempts += 1;
        let mut idx = [0usize; 4];
        let mut k = 0;
        while k < 4 {
            let i = rng.below(n);
            if !idx[..k].contains(&i) {
                idx[k] = i;
                k += 1;
            }
        }
        let s4 = idx.map(|i| src[i]);
        let d4 = idx.map(|i| dst[i]);
        if !sample_is_valid(&s4, &d4) {
            continue;
        }
        iterations += 1;
        let Ok(h) = dlt(&s4, &d4, None) else {
            continue;
        };
        let c = count_inliers(&h, src, dst, t2);
        if best.as_ref().is_none_or(|b| c > b.1) {
            best = Some((h, c));
            // Adaptive stop: iterations needed to draw one all-inlier sample with the asked
            // confidence, given the inlier ratio seen so far.
            let ratio = c as f64 / n as f64;
            let p_good = ratio.powi(4);
            if p_good >= 1.0 - 1e-12 {
                max_iters = iterations;
            } else if p_good > 0.0 {
                let need = ((1.0 - params.confidence).ln() / (1.0 - p_good).ln()).ceil();
                if need.is_finite() && need >= 0.0 {
                    max_iters = max_iters.min(need as usize);
                }
            }
        }
    }
    let Some((mut h, best_count)) = best else {
        return Err(HomographyError::Degenerate);
    };
    if best_count < needed {
        return Err(HomographyError::NoConsensus {
            best: best_count,
            needed,
        });
    }
    // Re-fit on the inliers until the set stops changing (a few rounds at most).
    let mut inliers: Vec<bool> = src
        .iter()
        .zip(dst)
        .map(|(s, d)| err2(&h, *s, *d) <= t2)
        .collect();
    for _ in 0..4 {
        let (s_in, d_in, w_in) = select(src, dst, weights, &inliers);
        if s_in.len() < 4 {
            break;
        }
        if let Ok(h2) = dlt(&s_in, &d_in, Some(&w_in)) {
            h = levenberg_marquardt(&h2, &s_in, &d_in, Some(&w_in), 10);
        }
        let next: Vec<bool> = src
            .iter()
            .zip(dst)
            .map(|(s, d)| err2(&h, *s, *d) <= t2)
            .collect();
        if next == inliers {
            break;
        }
        inliers = next;
    }
    let n_inliers = inliers.iter().filter(|&&b| b).count();
    if n_inliers < needed {
        return Err(HomographyError::NoConsensus {
            best: n_inliers,
            needed,
        });
    }
    let mut sum = 0.0;
    for ((s, d), &ok) in src.iter().zip(dst).zip(&inliers) {
        if ok {
            sum += err2(&h, *s, *d);
        }
    }
    Ok(Estimate {
        h,
        rms: (sum / n_inliers as f64).sqrt(),
        inliers,
        n_inliers,
        iterations,
    })
}

type Selected = (Vec<Point>, Vec<Point>, Vec<f64>);

fn select(src: &[Point], dst: &[Point], weights: Option<&[f64]>, keep: &[bool]) -> Selected {
    let mut s = Vec::new();
    let mut d = Vec::new();
    let mut w = Vec::new();
    for i in 0..src.len() {
        if keep[i] {
            s.push(src[i]);
            d.push(dst[i]);
            w.push(weights.map_or(1.0, |w| w[i].max(0.0)));
        }
    }
    (s, d, w)
}

/// Levenberg–Marquardt on the (weighted) squared reprojection error `Σ w |H s - d|²`, with the
/// 8 free entries of `H` (bottom-right fixed at 1), in Hartley-normalised coordinates so the
/// steps are well conditioned. Returns the input unchanged when it cannot improve it.
pub fn levenberg_marquardt(
    h: &Homography,
    src: &[Point],
    dst: &[Point],
    weights: Option<&[f64]>,
    iterations: usize,
) -> Homography {
    let n = src.len().min(dst.len());
    if n < 4 {
        return *h;
    }
    let (Some(ts), Some(td)) = (normalizer(&src[..n], None), normalizer(&dst[..n], None)) else {
        return *h;
    };
    let Some(td_inv) = td.try_inverse() else {
        return *h;
    };
    // The normalisers only scale and shift each axis.
    let apply = |t: &Matrix3<f64>, pts: &[Point]| -> Vec<Point> {
        pts.iter()
            .map(|p| [t[(0, 0)] * p[0] + t[(0, 2)], t[(1, 1)] * p[1] + t[(1, 2)]])
            .collect()
    };
    let sn = apply(&ts, &src[..n]);
    let dn = apply(&td, &dst[..n]);
    let w: Vec<f64> = (0..n)
        .map(|i| weights.map_or(1.0, |w| w[i].max(0.0)))
        .collect();
    let Some(ts_inv) = ts.try_inverse() else {
        return *h;
    };
    let hn = td * h * ts_inv;
    if hn[(2, 2)].abs() < 1e-9 * hn.norm() {
        return *h;
    }
    let hn = hn / hn[(2, 2)];
    let mut p = SVector::<f64, 8>::from_fn(|i, _| hn[(i / 3, i % 3)]);
    let to_h =
        |p: &SVector<f64, 8>| Matrix3::new(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], 1.0);
    let cost = |p: &SVector<f64, 8>| -> f64 {
        let hh = to_h(p);
        let mut c = 0.0;
        for i in 0..n {
            c += w[i] * err2(&hh, sn[i], dn[i]);
        }
        c
    };
    let mut c = cost(&p);
    if !c.is_finite() {
        return *h;
    }
    let mut lambda = 1e-3;
    for _ in 0..iterations {
        let mut jtj = SMatrix::<f64, 8, 8>::zeros();
        let mut jtr = SVector::<f64, 8>::zeros();
        for i in 0..n {
            let [x, y] = sn[i];
            let den = p[6] * x + p[7] * y + 1.0;
            if den.abs() < 1e-12 {
                continue;
            }
            let u = (p[0] * x + p[1] * y + p[2]) / den;
            let v = (p[3] * x + p[4] * y + p[5]) / den;
            let ju = SVector::<f64, 8>::from_column_slice(&[
                x / den,
                y / den,
                1.0 / den,
                0.0,
                0.0,
                0.0,
                -u * x / den,
                -u * y / den,
            ]);
            let jv = SVector::<f64, 8>::from_column_slice(&[
                0.0,
                0.0,
                0.0,
                x / den,
                y / den,
                1.0 / den,
                -v * x / den,
                -v * y / den,
            ]);
            let (ru, rv) = (u - dn[i][0], v - dn[i][1]);
            jtj += w[i] * (ju * ju.transpose() + jv * jv.transpose());
            jtr += w[i] * (ju * ru + jv * rv);
        }
        let mut improved = false;
        for _ in 0..8 {
            let mut a = jtj;
            for k in 0..8 {
                a[(k, k)] += lambda * jtj[(k, k)].max(1e-12);
            }
            let Some(chol) = a.cholesky() else {
                lambda *= 10.0;
                continue;
            };
            let step = chol.solve(&(-jtr));
            let cand = p + step;
            let cc = cost(&cand);
            if cc.is_finite() && cc < c {
                let small = step.norm() < 1e-12 * (1.0 + p.norm());
                p = cand;
                c = cc;
                lambda = (lambda / 10.0).max(1e-12);
                improved = !small;
                break;
            }
            lambda *= 10.0;
        }
        if !improved {
            break;
        }
    }
    let out = td_inv * to_h(&p) * ts;
    if out.iter().all(|v| v.is_finite()) {
        normalized(&out)
    } else {
        *h
    }
}

/// The homography of a similarity-plus-perspective change, for tests and benchmarks: rotation
/// `angle_deg` about `centre`, uniform `scale`, shift `(tx, ty)` and perspective terms `(px, py)`
/// (per pixel, relative to the centre).
pub fn compose(
    centre: Point,
    angle_deg: f64,
    scale: f64,
    shift: Point,
    perspective: Point,
) -> Homography {
    let (s, c) = angle_deg.to_radians().sin_cos();
    let to_origin = Matrix3::new(1.0, 0.0, -centre[0], 0.0, 1.0, -centre[1], 0.0, 0.0, 1.0);
    let back = Matrix3::new(
        1.0,
        0.0,
        centre[0] + shift[0],
        0.0,
        1.0,
        centre[1] + shift[1],
        0.0,
        0.0,
        1.0,
    );
    let rs = Matrix3::new(
        scale * c,
        -scale * s,
        0.0,
        scale * s,
        scale * c,
        0.0,
        perspective[0],
        perspective[1],
        1.0,
    );
    normalized(&(back * rs * to_origin))
}

/// Mean distance between where `a` and `b` send the four corners of a `w` x `h` image: the
/// accuracy measure of alignment tests (pixels; infinite if either sends a corner to infinity).
pub fn corner_error(a: &Homography, b: &Homography, w: f64, h: f64) -> f64 {
    let corners = [
        [0.0, 0.0],
        [w - 1.0, 0.0],
        [w - 1.0, h - 1.0],
        [0.0, h - 1.0],
    ];
    let mut sum = 0.0;
    for c in corners {
        match (project(a, c), project(b, c)) {
            (Some(p), Some(q)) => sum += ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt(),
            _ => return f64::INFINITY,
        }
    }
    sum / 4.0
}

/// At least 4 correspondences, all finite: what every estimator needs before it starts.
fn check_points(src: &[Point], dst: &[Point]) -> Result<(), HomographyError> {
    if src.len() < 4 {
        return Err(HomographyError::TooFewPoints {
            found: src.len(),
            needed: 4,
        });
    }
    if src
        .iter()
        .chain(dst)
        .any(|p| !p[0].is_finite() || !p[1].is_finite())
    {
        return Err(HomographyError::NonFinite);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
