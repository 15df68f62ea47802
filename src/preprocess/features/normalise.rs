//! Whole-image normalisation: each robust channel's small integer key space, the histograms
//! gathered in one pass, and the exact percentiles and maxima turned into key → value tables.

use rayon::prelude::*;

use super::colour::lab8;
use super::spatial::RowFilter;
use super::{EPS, Frame, Plan, chroma_key, opp_o1_key, opp_o2_key};

/// The integer key space of a robust channel; `value` maps a key to the channel's value
/// (non-decreasing, so the order statistics of keys are those of values).
pub(super) struct KeySpace {
    pub(super) min: i32,
    max: i32,
    value: fn(i32) -> f64,
}

impl KeySpace {
    fn bins(&self) -> usize {
        (self.max - self.min + 1) as usize
    }
}

/// LCh_C: key a\*² + b\*² with a\*, b\* ∈ −128..=127, value the chroma sqrt(key).
pub(super) static LCH_C_KEYS: KeySpace = KeySpace {
    min: 0,
    max: 2 * 128 * 128,
    value: |k| f64::from(k).sqrt(),
};

/// Opp_O1: key and value R − G.
pub(super) static OPP_O1_KEYS: KeySpace = KeySpace {
    min: -255,
    max: 255,
    value: f64::from,
};

/// Opp_O2: key R + G − 2B, value (R + G)/2 − B.
pub(super) static OPP_O2_KEYS: KeySpace = KeySpace {
    min: -510,
    max: 510,
    value: |k| f64::from(k) / 2.0,
};

/// Laplacian: key in 8-bit L units, value in LAB_L units.
pub(super) static LAPLACIAN_KEYS: KeySpace = KeySpace {
    min: -1020,
    max: 1020,
    value: |k| f64::from(k) / 255.0,
};

/// The whole-image statistics of one image, gathered by one parallel pass.
#[derive(Default)]
struct Stats {
    lch_c: Vec<u64>,
    opp_o1: Vec<u64>,
    opp_o2: Vec<u64>,
    laplacian: Vec<u64>,
    max_grad2: i32,
    max_dev2: i32,
}

impl Stats {
    /// Empty histograms for the channels `plan` requests (none for the others).
    fn empty(plan: &Plan) -> Self {
        let hist = |on: bool, keys: &KeySpace| if on { vec![0; keys.bins()] } else { Vec::new() };
        Stats {
            lch_c: hist(plan.lch_c, &LCH_C_KEYS),
            opp_o1: hist(plan.opp_o1, &OPP_O1_KEYS),
            opp_o2: hist(plan.opp_o2, &OPP_O2_KEYS),
            laplacian: hist(plan.laplacian, &LAPLACIAN_KEYS),
            max_grad2: 0,
            max_dev2: 0,
        }
    }

    fn merge(mut self, other: Stats) -> Self {
        for (a, b) in [
            (&mut self.lch_c, &other.lch_c),
            (&mut self.opp_o1, &other.opp_o1),
            (&mut self.opp_o2, &other.opp_o2),
            (&mut self.laplacian, &other.laplacian),
        ] {
            if a.is_empty() {
                a.clone_from(b);
            } else {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
            }
        }
        self.max_grad2 = self.max_grad2.max(other.max_grad2);
        self.max_dev2 = self.max_dev2.max(other.max_dev2);
        self
    }
}

/// Counts `key` in `hist` (a no-op for an unrequested, empty histogram).
#[inline]
fn count(hist: &mut [u64], key: i32, keys: &KeySpace) {
    if let Some(n) = usize::try_from(key - keys.min)
        .ok()
        .and_then(|i| hist.get_mut(i))
    {
        *n += 1;
    }
}

/// Everything the final pass needs from the whole image: a key → output table per robust
/// channel (empty if not requested) and the scale of each max-normalised channel.
#[derive(Default)]
pub(super) struct Normalisers {
    pub(super) lch_c: Vec<f32>,
    pub(super) opp_o1: Vec<f32>,
    pub(super) opp_o2: Vec<f32>,
    pub(super) laplacian: Vec<f32>,
    /// sqrt(grad2) · grad_scale = (|∇L8|/255) / (max(|∇L8|)/255 + 1e-7).
    pub(super) grad_scale: f32,
    /// sqrt(dev2) · std_scale = std(LAB_L) / (max std(LAB_L) + 1e-7).
    pub(super) std_scale: f32,
}

impl Normalisers {
    /// Gathers the statistics the requested channels need in one pass over the image.
    pub(super) fn measure(frame: &Frame<'_>, plan: &Plan) -> Self {
        if !plan.needs_stats() {
            return Normalisers::default();
        }
        let Frame {
            rgb,
            l_plane,
            w,
            h,
            cbrt,
        } = *frame;
        let stats = rgb
            .par_chunks(w)
            .enumerate()
            .fold(
                || (Stats::empty(plan), RowFilter::default()),
                |(mut st, mut filter), (y, row)| {
                    for &p in row {
                        if plan.lch_c {
                            let key = chroma_key(lab8(p[0], p[1], p[2], cbrt));
                            count(&mut st.lch_c, key, &LCH_C_KEYS);
                        }
                        if plan.opp_o1 {
                            count(&mut st.opp_o1, opp_o1_key(p), &OPP_O1_KEYS);
                        }
                        if plan.opp_o2 {
                            count(&mut st.opp_o2, opp_o2_key(p), &OPP_O2_KEYS);
                        }
                    }
                    if plan.spatial {
                        filter.run(l_plane, w, h, y);
                        for sp in &filter.out {
                            count(&mut st.laplacian, sp.laplacian, &LAPLACIAN_KEYS);
                            st.max_grad2 = st.max_grad2.max(sp.grad2);
                            st.max_dev2 = st.max_dev2.max(sp.dev2);
                        }
                    }
                    (st, filter)
                },
            )
            .map(|(st, _)| st)
            .reduce(|| Stats::empty(plan), Stats::merge);

        // Max normalisation as the original: (v / unit) / (max / unit + 1e-7).
        let max_scale =
            |max2: i32, unit: f64| (1.0 / unit / (f64::from(max2).sqrt() / unit + EPS)) as f32;
        Normalisers {
            lch_c: robust_table(&stats.lch_c, &LCH_C_KEYS),
            opp_o1: robust_table(&stats.opp_o1, &OPP_O1_KEYS),
            opp_o2: robust_table(&stats.opp_o2, &OPP_O2_KEYS),
            laplacian: robust_table(&stats.laplacian, &LAPLACIAN_KEYS),
            // The Sobel magnitude is in 8-bit L units; LAB_L = L8 / 255.
            grad_scale: max_scale(stats.max_grad2, 255.0),
            // sqrt(dev2) = 9·255·std(LAB_L).
            std_scale: max_scale(stats.max_dev2, 9.0 * 255.0),
        }
    }
}

/// robust() as a key → output table: `(clip(v, p1, p99) − p1) / (p99 − p1 + 1e-7)` with p1, p99
/// the numpy (linear) 1st and 99th percentiles of the image's values. Empty for an empty
/// histogram (channel not requested).
fn robust_table(hist: &[u64], keys: &KeySpace) -> Vec<f32> {
    let value_of_bin = |i: usize| (keys.value)(i as i32 + keys.min);
    let (Some(p1), Some(p99)) = (
        hist_percentile(hist, 1.0, value_of_bin),
        hist_percentile(hist, 99.0, value_of_bin),
    ) else {
        return Vec::new();
    };
    let denom = p99 - p1 + EPS;
    // max/min rather than clamp: clamp would panic if p1 > p99 (impossible, but input-adjacent).
    (0..hist.len())
        .map(|i| ((value_of_bin(i).max(p1).min(p99) - p1) / denom) as f32)
        .collect()
}

/// `numpy.percentile(values, q)` (method "linear") of the multiset whose per-bin counts are
/// `hist`; `value` maps a bin to its value (non-decreasing). `None` if the multiset is empty.
pub(super) fn hist_percentile(hist: &[u64], q: f64, value: impl Fn(usize) -> f64) -> Option<f64> {
    let n: u64 = hist.iter().sum();
    if n == 0 {
        return None;
    }
    // The k-th smallest element (0-based).
    let kth = |k: u64| {
        let mut seen = 0u64;
        for (i, &count) in hist.iter().enumerate() {
            seen += count;
            if seen > k {
                return value(i);
            }
        }
        value(hist.len().saturating_sub(1))
    };
    // numpy's virtual index for alpha = beta = 1, in the same floating-point order.
    let qf = q / 100.0;
    let virtual_index = (n as f64 * qf + (1.0 - qf)) - 1.0;
    let prev = virtual_index.floor();
    let t = virtual_index - prev;
    let lo = (prev.max(0.0) as u64).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    let (a, b) = (kth(lo), kth(hi));
    // numpy's _lerp: interpolate from the nearer end.
    let d = b - a;
    Some(if t >= 0.5 {
        b - d * (1.0 - t)
    } else {
        a + d * t
    })
}
