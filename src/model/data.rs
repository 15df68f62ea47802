//! Data handling for training: the training input a fit takes ([`TrainingData`]), the shuffled
//! train/validation split and the cross-validation folds (drawn from [`crate::rng::SplitMix64`]),
//! the `X / max(X)` scaling and mini-batch assembly. Plain data in, plain data out: no burn
//! types, no files.

use std::path::PathBuf;

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};

use super::ModelError;

use crate::rng::SplitMix64;

/// The training input, read and checked: make_input's images with what its metadata says
/// about them.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingData {
    /// What the data is called in progress labels and messages (the image type).
    pub name: String,
    /// The file the data was read from, named in errors.
    pub source: PathBuf,
    /// The images (N, P, C) as make_input wrote them (unscaled), every value finite.
    pub data: Array3<f32>,
    /// One-hot type labels (N, T), in one-hot mode.
    pub labels: Option<Array2<f32>>,
    /// Pooled (height, width) of one image; height * width = P.
    pub pooled: (usize, usize),
    /// Channel names, in data order.
    pub channels: Vec<String>,
    /// Loss weight of each channel.
    pub weights: Vec<f32>,
    /// The source file of each image (row).
    pub files: Vec<String>,
    /// Type names in one-hot label order (empty in per-type mode).
    pub label_types: Vec<String>,
    /// The scaling divisor `max(X)` (positive).
    pub data_max: f32,
    /// The part mask (P) of make_input (all ones for files without one).
    pub part_mask: Vec<f32>,
}

impl TrainingData {
    /// Checks that the parts agree: a file name per image, a name and weight per channel, a
    /// mask value per pixel, labels per image with a type name per column, something to
    /// scale by.
    pub fn check(&self) -> Result<(), ModelError> {
        let (n, p, c) = self.data.dim();
        let mut wrong = Vec::new();
        if self.files.len() != n {
            wrong.push(format!("{} file names for {n} images", self.files.len()));
        }
        if self.channels.len() != c || self.weights.len() != c {
            wrong.push(format!(
                "{} channel names and {} weights for {c} channels",
                self.channels.len(),
                self.weights.len()
            ));
        }
        if self.part_mask.len() != p || self.pooled.0 * self.pooled.1 != p {
            wrong.push(format!(
                "a part mask of {} and a pooled grid of {}x{} for {p} pixels",
                self.part_mask.len(),
                self.pooled.0,
                self.pooled.1
            ));
        }
        let label_dim = self.labels.as_ref().map_or((n, 0), |l| l.dim());
        if label_dim != (n, self.label_types.len()) {
            wrong.push(format!(
                "labels of {}x{} for {n} images of {} types",
                label_dim.0,
                label_dim.1,
                self.label_types.len()
            ));
        }
        if !(self.data_max.is_finite() && self.data_max > 0.0) {
            wrong.push(format!(
                "data_max {} is not a positive number",
                self.data_max
            ));
        }
        if wrong.is_empty() {
            return Ok(());
        }
        Err(ModelError::Input {
            path: self.source.clone(),
            reason: format!(
                "the training data does not fit together: {}",
                wrong.join("; ")
            ),
        })
    }
}

/// Row indices of the training and validation sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Training rows.
    pub train: Vec<usize>,
    /// Validation rows.
    pub validation: Vec<usize>,
    /// Set when there were too few images for two disjoint sets and the validation set
    /// reuses training rows (says why, for the metadata).
    pub note: Option<String>,
}

/// Fraction of the images held out for validation (the original's 80/20).
pub const VALIDATION_FRACTION: f64 = 0.2;

/// The seeded shuffled 80/20 split of `n` rows: `ceil(0.2 n)` validation rows (as
/// scikit-learn's `train_test_split(test_size=0.2)` takes), at least one training row. With a
/// single row there is no held-out image: that row serves as both, and `note` says so.
pub fn split(n: usize, seed: u64) -> Split {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64::new(seed ^ 0x5EED_5EED_0000_0001);
    rng.shuffle(&mut idx);
    if n < 2 {
        return Split {
            train: idx.clone(),
            validation: idx,
            note: Some(format!(
                "only {n} image(s): no image could be held out, so the validation set is the training set"
            )),
        };
    }
    let n_val = ((n as f64 * VALIDATION_FRACTION).ceil() as usize).clamp(1, n - 1);
    let validation = idx.split_off(n - n_val);
    let note = (validation.len() < 2 || idx.len() < 2).then(|| {
        format!(
            "few images: {} for training and {} for validation; statistics from so few images are rough",
            idx.len(),
            validation.len()
        )
    });
    Split {
        train: idx,
        validation,
        note,
    }
}

/// The seeded `k`-fold partition of `n` rows for cross-validation: the held-out rows of each
/// fold (shuffled, then dealt round-robin, so fold sizes differ by at most one). Fold 0 is the
/// same kind of 80/20 cut as [`split`] when `k` is 5. `k` is capped at `n`; `None` when `n < 2`
/// (no row can be held out while another trains).
pub fn folds(n: usize, k: usize, seed: u64) -> Option<Vec<Vec<usize>>> {
    if n < 2 {
        return None;
    }
    let k = k.clamp(2, n);
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64::new(seed ^ 0x5EED_5EED_0000_0001);
    rng.shuffle(&mut idx);
    let mut out = vec![Vec::new(); k];
    for (i, r) in idx.into_iter().enumerate() {
        out[i % k].push(r);
    }
    for f in &mut out {
        f.sort_unstable();
    }
    Some(out)
}

/// The rows of `0..n` that are not in `held_out` (sorted).
pub fn complement(n: usize, held_out: &[usize]) -> Vec<usize> {
    (0..n).filter(|i| !held_out.contains(i)).collect()
}

/// The largest value of the data, the divisor of the original's `X / max(X)` scaling.
/// `None` when the data is empty, not finite or has no positive value (nothing to scale by).
pub fn data_max(data: ArrayView3<f32>) -> Option<f32> {
    let mut max = f32::NEG_INFINITY;
    for &v in data.iter() {
        if !v.is_finite() {
            return None;
        }
        max = max.max(v);
    }
    (max > 0.0).then_some(max)
}

/// Rows `rows` of `data` (N, P, C), scaled by `1 / max`, flattened to (rows, P*C) in (pixel,
/// channel) order, so element `p * C + c` is pixel p, channel c.
pub fn scaled_rows(data: ArrayView3<f32>, rows: &[usize], max: f32) -> Array2<f32> {
    let (_, p, c) = data.dim();
    let inv = 1.0 / max;
    let mut out = Array2::<f32>::zeros((rows.len(), p * c));
    for (o, &r) in rows.iter().enumerate() {
        let src = data.index_axis(Axis(0), r);
        let mut dst = out.row_mut(o);
        for (d, s) in dst.iter_mut().zip(src.iter()) {
            *d = s * inv;
        }
    }
    out
}

/// Rows `rows` of a 2-D array, in that order.
pub fn select_rows(a: ArrayView2<f32>, rows: &[usize]) -> Array2<f32> {
    a.select(Axis(0), rows)
}

/// The mini-batches of one epoch: `order` cut into consecutive chunks of `batch` rows (the last
/// may be shorter).
pub fn batches(order: &[usize], batch: usize) -> Vec<Vec<usize>> {
    order.chunks(batch.max(1)).map(<[usize]>::to_vec).collect()
}

/// Copies rows `rows` of a row-major (N, D) matrix into one contiguous buffer.
pub fn gather(rows_of: ArrayView2<f32>, rows: &[usize]) -> Vec<f32> {
    let d = rows_of.ncols();
    let mut out = Vec::with_capacity(rows.len() * d);
    for &r in rows {
        out.extend(rows_of.row(r).iter().copied());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn split_is_seeded_disjoint_and_complete() {
        for n in [2usize, 3, 5, 10, 48] {
            let s = split(n, 7);
            assert_eq!(s, split(n, 7));
            let mut all: Vec<usize> = s.train.iter().chain(&s.validation).copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..n).collect::<Vec<_>>(), "n={n}");
            assert_eq!(
                s.validation.len(),
                ((n as f64 * 0.2).ceil() as usize).min(n - 1)
            );
        }
        assert_eq!(split(48, 1).validation.len(), 10);
        assert_ne!(split(48, 1), split(48, 2));
        let one = split(1, 3);
        assert_eq!(
            (one.train.clone(), one.validation.clone()),
            (vec![0], vec![0])
        );
        assert!(one.note.is_some());
        assert!(split(2, 3).note.is_some());
        assert!(split(20, 3).note.is_none());
    }

    #[test]
    fn folds_partition_the_rows() {
        assert_eq!(folds(1, 5, 1), None);
        for (n, k) in [(2usize, 5usize), (7, 3), (60, 5), (20, 5)] {
            let f = folds(n, k, 9).unwrap();
            assert_eq!(f.len(), k.min(n));
            let mut all: Vec<usize> = f.iter().flatten().copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..n).collect::<Vec<_>>());
            let sizes: Vec<usize> = f.iter().map(Vec::len).collect();
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
            assert_eq!(f, folds(n, k, 9).unwrap());
            assert_eq!(complement(n, &f[0]).len() + f[0].len(), n);
        }
        assert_ne!(folds(60, 5, 1), folds(60, 5, 2));
    }

    #[test]
    fn scaling_and_rows() {
        let data = Array3::from_shape_fn((3, 2, 2), |(n, p, c)| (n * 4 + p * 2 + c) as f32);
        assert_eq!(data_max(data.view()), Some(11.0));
        let x = scaled_rows(data.view(), &[2, 0], 11.0);
        assert_eq!(x.dim(), (2, 4));
        assert!((x[[0, 3]] - 1.0).abs() < 1e-7);
        assert_eq!(x[[1, 1]], 1.0 / 11.0);
        assert_eq!(
            gather(x.view(), &[1]),
            vec![0.0, 1.0 / 11.0, 2.0 / 11.0, 3.0 / 11.0]
        );
        assert_eq!(data_max(Array3::<f32>::zeros((1, 1, 1)).view()), None);
        let mut bad = Array3::<f32>::ones((1, 1, 2));
        bad[[0, 0, 1]] = f32::NAN;
        assert_eq!(data_max(bad.view()), None);
        assert_eq!(
            batches(&[4, 3, 2, 1, 0], 2),
            vec![vec![4, 3], vec![2, 1], vec![0]]
        );
    }
}
