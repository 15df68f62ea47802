//! The dense layer as a burn backend extension, so the CPU backend can use kernels made for the
//! autoencoder's shapes. The original's model has two layers of 85,680 x 512 weights and
//! trains on batches of at most 32 images: every matmul touching those layers has one tiny
//! dimension (the batch). General gemm packs the 175 MB weight matrix on every call and computes
//! the weight gradient (a rank-32 update: 1.4 GFLOP written into 175 MB) far below memory
//! speed. The kernel here computes it in 4 x 16 register tiles, each column slice of the output
//! gradient staying in L1 while every row tile uses it, and writes each value once.
//!
//! [`DenseBackend::dense`] is `x @ w + b` with `w` stored (in, out) as burn's `Linear` stores
//! it. Every backend gets burn's own `linear` ops by default; flex overrides the weight gradient
//! when the batch is small and the layer large; `Autodiff<B>` records the op and routes its
//! backward through `B`'s version.

use burn::backend::Autodiff;
use burn::backend::Flex;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::nn::Linear;
use burn::prelude::Backend;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ops::{FloatTensor, ModuleOps};
use burn::tensor::{DType, Tensor, TensorData, TensorMetadata, TensorPrimitive};
use burn_flex::FlexTensor;
use rayon::prelude::*;

use crate::simd::{self, Avx2Fma, Avx512};

/// Backends with a dense-layer op.
pub trait DenseBackend: Backend {
    /// `x (m, k) @ w (k, n) + b (n)`.
    fn dense(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::linear(x, w, Some(b))
    }

    /// The weight gradient `x^T (k, m) @ grad (m, n)`.
    fn dense_weight_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::linear_weight_backward(x, grad)
    }
}

/// What training needs of a backend: autodiff, with the dense op on it and on its inner backend.
pub trait TrainBackend: AutodiffBackend<InnerBackend: DenseBackend> + DenseBackend {}

impl<T: AutodiffBackend<InnerBackend: DenseBackend> + DenseBackend> TrainBackend for T {}

/// Applies a `Linear` layer (with bias) through [`DenseBackend::dense`].
pub fn dense<B: DenseBackend>(x: Tensor<B, 2>, layer: &Linear<B>) -> Tensor<B, 2> {
    let Some(bias) = &layer.bias else {
        return layer.forward(x);
    };
    let out = B::dense(
        x.into_primitive().tensor(),
        layer.weight.val().into_primitive().tensor(),
        bias.val().into_primitive().tensor(),
    );
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

#[cfg(feature = "cuda")]
impl DenseBackend for burn::backend::Cuda {}

#[derive(Debug)]
struct DenseBackward;

impl<B: DenseBackend> Backward<B, 3> for DenseBackward {
    type State = (Option<NodeId>, Option<NodeId>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, w_state) = ops.state;
        let x = x_state.map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
        let w = w_state.map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
        if let (Some(node), Some(w)) = (node_x, w) {
            let g = <B as ModuleOps<B>>::linear_x_backward(w, grad.clone());
            grads.register::<B>(node.id, g);
        }
        if let (Some(node), Some(x)) = (node_w, x) {
            grads.register::<B>(node.id, B::dense_weight_backward(x, grad.clone()));
        }
        if let Some(node) = node_b {
            grads.register::<B>(node.id, <B as ModuleOps<B>>::linear_bias_backward(grad));
        }
    }
}

impl<B: DenseBackend, C: CheckpointStrategy> DenseBackend for Autodiff<B, C> {
    fn dense(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let x_tracked = x.is_tracked();
        let w_tracked = w.is_tracked();
        match DenseBackward
            .prepare::<C>([x.node.clone(), w.node.clone(), b.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                // x is needed only for the weight gradient, w only for x's.
                let x_state = w_tracked.then(|| prep.checkpoint(&x));
                let w_state = x_tracked.then(|| prep.checkpoint(&w));
                prep.finish(
                    (x_state, w_state),
                    B::dense(x.primitive, w.primitive, b.primitive),
                )
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::dense(x.primitive, w.primitive, b.primitive))
            }
        }
    }
}

/// The kernels pay off when the batch is small and the layer large.
const MAX_BATCH: usize = 256;
/// Smallest layer (weights) worth the kernels.
const MIN_WEIGHTS: usize = 1 << 18;

/// A contiguous f32 view of a flex tensor and its 2-D shape, if it has one.
fn view2(t: &FlexTensor) -> Option<(&[f32], usize, usize)> {
    let shape = t.shape();
    if t.dtype() != DType::F32
        || shape.num_dims() != 2
        || !t.is_contiguous()
        || t.layout().start_offset() != 0
    {
        return None;
    }
    let (r, c) = (shape[0], shape[1]);
    let s = t.as_slice::<f32>()?;
    (s.len() >= r * c).then(|| (&s[..r * c], r, c))
}

fn flex(values: Vec<f32>, rows: usize, cols: usize) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, [rows, cols]))
}

impl DenseBackend for Flex {
    fn dense(x: FlexTensor, w: FlexTensor, b: FlexTensor) -> FlexTensor {
        let out = match (view2(&x), view2(&w), b.as_slice::<f32>()) {
            (Some((xs, m, k)), Some((ws, k2, n)), Some(bs))
                if k == k2 && bs.len() == n && m <= MAX_BATCH && k * n >= MIN_WEIGHTS =>
            {
                Some(flex(xw_plus_b(xs, m, k, ws, n, bs), m, n))
            }
            _ => None,
        };
        match out {
            Some(t) => t,
            None => <Flex as ModuleOps<Flex>>::linear(x, w, Some(b)),
        }
    }

    fn dense_weight_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        let out = match (view2(&x), view2(&grad)) {
            (Some((xs, m, k)), Some((gs, m2, n)))
                if m == m2 && m <= MAX_BATCH && k * n >= MIN_WEIGHTS =>
            {
                Some(flex(at_b(xs, m, k, gs, n), k, n))
            }
            _ => None,
        };
        match out {
            Some(t) => t,
            None => <Flex as ModuleOps<Flex>>::linear_weight_backward(x, grad),
        }
    }
}

/// `a * b + c`, fused when `FMA` (only kernels run with an FMA token set it: without the
/// instruction, `mul_add` is a slow library call).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// Output rows per parallel task in the weight-gradient kernel.
const GRAD_ROWS: usize = 64;

/// The transpose of a row-major (r, c) matrix.
fn transpose(a: &[f32], r: usize, c: usize) -> Vec<f32> {
    let mut t = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            t[j * r + i] = a[i * c + j];
        }
    }
    t
}

/// One 4 x 16 tile of `a^T g`: rows `a0..a3` of `a^T` (each m long) times columns
/// `j0..j0 + 16` of `g`, accumulated in registers over the m products.
#[inline(always)]
fn tile_4x16<const FMA: bool>(a: [&[f32]; 4], g: &[f32], n: usize, j0: usize) -> [[f32; 16]; 4] {
    let mut c = [[0.0f32; 16]; 4];
    let m = a[0].len();
    for s in 0..m {
        let mut gs = [0.0f32; 16];
        gs.copy_from_slice(&g[s * n + j0..s * n + j0 + 16]);
        let av = [a[0][s], a[1][s], a[2][s], a[3][s]];
        for (row, &ar) in c.iter_mut().zip(&av) {
            for (o, &gv) in row.iter_mut().zip(&gs) {
                *o = madd::<FMA>(ar, gv, *o);
            }
        }
    }
    c
}

/// Rows `i0..i0 + out.len() / n` of `a^T g` into `out`.
#[inline(always)]
fn grad_rows<const FMA: bool>(
    at: &[f32],
    m: usize,
    g: &[f32],
    n: usize,
    i0: usize,
    out: &mut [f32],
) {
    let rows = out.len() / n;
    let row = |r: usize| &at[(i0 + r) * m..(i0 + r + 1) * m];
    let full_rows = rows / 4 * 4;
    let full_cols = n / 16 * 16;
    // Column tiles outside, row tiles inside: the m x 16 slice of g stays in L1 while every
    // row tile of the chunk uses it.
    for j0 in (0..full_cols).step_by(16) {
        for r0 in (0..full_rows).step_by(4) {
            let c = tile_4x16::<FMA>([row(r0), row(r0 + 1), row(r0 + 2), row(r0 + 3)], g, n, j0);
            for (r, cr) in c.iter().enumerate() {
                out[(r0 + r) * n + j0..(r0 + r) * n + j0 + 16].copy_from_slice(cr);
            }
        }
    }
    // Edges: the last rows (fewer than 4) and columns (fewer than 16).
    for r in 0..rows {
        let a = row(r);
        let cols = if r < full_rows { full_cols..n } else { 0..n };
        for j in cols {
            let mut acc = 0.0f32;
            for (s, &av) in a.iter().enumerate() {
                acc = madd::<FMA>(av, g[s * n + j], acc);
            }
            out[r * n + j] = acc;
        }
    }
}

/// Output columns per parallel task of the forward kernel.
const FWD_COLS: usize = 256;
/// Weight rows per step of the forward kernel (a 16-column slice of them stays in L1).
const FWD_ROWS: usize = 64;

/// Columns `j0..j0 + acc.len() / m` of `x @ w + b` into `acc` (m x cols, row-major), with `xt`
/// the transpose of x.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn fwd_cols<const FMA: bool>(
    xt: &[f32],
    m: usize,
    k: usize,
    w: &[f32],
    n: usize,
    b: &[f32],
    j0: usize,
    acc: &mut [f32],
) {
    let cols = acc.len() / m;
    for r in 0..m {
        acc[r * cols..(r + 1) * cols].copy_from_slice(&b[j0..j0 + cols]);
    }
    let full_cols = cols / 16 * 16;
    let mut i0 = 0;
    while i0 < k {
        let i1 = (i0 + FWD_ROWS).min(k);
        for c0 in (0..full_cols).step_by(16) {
            let mut r0 = 0;
            while r0 + 4 <= m {
                fwd_tile::<FMA, 4>(
                    xt,
                    m,
                    w,
                    n,
                    j0 + c0,
                    i0..i1,
                    r0,
                    &mut acc[r0 * cols + c0..],
                    cols,
                );
                r0 += 4;
            }
            while r0 < m {
                fwd_tile::<FMA, 1>(
                    xt,
                    m,
                    w,
                    n,
                    j0 + c0,
                    i0..i1,
                    r0,
                    &mut acc[r0 * cols + c0..],
                    cols,
                );
                r0 += 1;
            }
        }
        // Edge: the last columns (fewer than 16).
        for r in 0..m {
            for cc in full_cols..cols {
                let mut a = acc[r * cols + cc];
                for i in i0..i1 {
                    a = madd::<FMA>(xt[i * m + r], w[i * n + j0 + cc], a);
                }
                acc[r * cols + cc] = a;
            }
        }
        i0 = i1;
    }
}

/// Adds rows `is` of `w` (columns `j..j + 16`) times rows `r0..r0 + R` of x to an R x 16 tile
/// of the accumulator (`acc` starts at the tile, rows `stride` apart), in registers.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn fwd_tile<const FMA: bool, const R: usize>(
    xt: &[f32],
    m: usize,
    w: &[f32],
    n: usize,
    j: usize,
    is: std::ops::Range<usize>,
    r0: usize,
    acc: &mut [f32],
    stride: usize,
) {
    let mut c = [[0.0f32; 16]; R];
    for (r, cr) in c.iter_mut().enumerate() {
        cr.copy_from_slice(&acc[r * stride..r * stride + 16]);
    }
    for i in is {
        let mut ws = [0.0f32; 16];
        ws.copy_from_slice(&w[i * n + j..i * n + j + 16]);
        let xs = &xt[i * m + r0..i * m + r0 + R];
        for (row, &xv) in c.iter_mut().zip(xs) {
            for (o, &wv) in row.iter_mut().zip(&ws) {
                *o = madd::<FMA>(xv, wv, *o);
            }
        }
    }
    for (r, cr) in c.iter().enumerate() {
        acc[r * stride..r * stride + 16].copy_from_slice(cr);
    }
}

/// `x (m, k) @ w (k, n) + b (n)` for small m: each task computes a block of output columns,
/// streaming those columns of `w` once while all m rows accumulate in cache.
pub fn xw_plus_b(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, b: &[f32]) -> Vec<f32> {
    xw_plus_b_with(Simd::best(), x, m, k, w, n, b)
}

/// [`xw_plus_b`] with a given instruction set ([`Simd::supported`] lists this CPU's).
pub fn xw_plus_b_with(
    simd: Simd,
    x: &[f32],
    m: usize,
    k: usize,
    w: &[f32],
    n: usize,
    b: &[f32],
) -> Vec<f32> {
    let mut out = vec![0.0f32; m * n];
    if m == 0 || n == 0 {
        return out;
    }
    let xt = transpose(x, m, k);
    let starts: Vec<usize> = (0..n).step_by(FWD_COLS).collect();
    let blocks: Vec<Vec<f32>> = starts
        .par_iter()
        .map(|&j0| {
            let mut acc = vec![0.0f32; m * FWD_COLS.min(n - j0)];
            match simd {
                Simd::Avx512(cpu) => {
                    simd::run!(cpu, fwd_cols::<true>(&xt, m, k, w, n, b, j0, &mut acc))
                }
                Simd::Avx2(cpu) => {
                    simd::run!(cpu, fwd_cols::<true>(&xt, m, k, w, n, b, j0, &mut acc))
                }
                Simd::Baseline => fwd_cols::<false>(&xt, m, k, w, n, b, j0, &mut acc),
            }
            acc
        })
        .collect();
    for (&j0, block) in starts.iter().zip(&blocks) {
        let cols = FWD_COLS.min(n - j0);
        for r in 0..m {
            out[r * n + j0..r * n + j0 + cols].copy_from_slice(&block[r * cols..(r + 1) * cols]);
        }
    }
    out
}

/// Instruction sets the kernels have versions for. The AVX variants carry the token that
/// detection makes, so a value names only a set this CPU runs and the kernels stay safe to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simd {
    /// Whatever the build targets (SSE2 on x86-64).
    Baseline,
    /// AVX2 with FMA.
    Avx2(Avx2Fma),
    /// AVX-512F.
    Avx512(Avx512),
}

impl Simd {
    /// The best version this CPU runs.
    pub fn best() -> Simd {
        if let Some(cpu) = Avx512::detect() {
            return Simd::Avx512(cpu);
        }
        if let Some(cpu) = Avx2Fma::detect() {
            return Simd::Avx2(cpu);
        }
        Simd::Baseline
    }

    /// Every version this CPU runs, baseline first.
    pub fn supported() -> Vec<Simd> {
        let mut all = vec![Simd::Baseline];
        all.extend(Avx2Fma::detect().map(Simd::Avx2));
        all.extend(Avx512::detect().map(Simd::Avx512));
        all
    }
}

/// `a^T (k, m) @ g (m, n)` for small m (the weight gradient of a dense layer with input `a`
/// (m, k) and output gradient `g` (m, n)): rows of the result are written once each, in blocks
/// whose slice of `g` stays in cache.
pub fn at_b(a: &[f32], m: usize, k: usize, g: &[f32], n: usize) -> Vec<f32> {
    at_b_with(Simd::best(), a, m, k, g, n)
}

/// [`at_b`] with a given instruction set ([`Simd::supported`] lists this CPU's).
pub fn at_b_with(simd: Simd, a: &[f32], m: usize, k: usize, g: &[f32], n: usize) -> Vec<f32> {
    let at = transpose(a, m, k);
    let mut out = vec![0.0f32; k * n];
    if m == 0 || n == 0 {
        return out;
    }
    out.par_chunks_mut(GRAD_ROWS * n)
        .enumerate()
        .for_each(|(c, chunk)| {
            let i0 = c * GRAD_ROWS;
            match simd {
                Simd::Avx512(cpu) => simd::run!(cpu, grad_rows::<true>(&at, m, g, n, i0, chunk)),
                Simd::Avx2(cpu) => simd::run!(cpu, grad_rows::<true>(&at, m, g, n, i0, chunk)),
                Simd::Baseline => grad_rows::<false>(&at, m, g, n, i0, chunk),
            }
        });
    out
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod probe {
    use super::*;

    /// Times the kernels against burn's gemm path at the benchmark's sizes (run by hand).
    #[test]
    #[ignore]
    fn kernel_timings() {
        use std::time::Instant;
        crate::model::device::keep_freed_memory();
        let (m, k, n) = (32usize, 85680usize, 512usize);
        let x = vec![0.5f32; m * k];
        let w = vec![0.25f32; k * n];
        let h = vec![0.5f32; m * n];
        let time = |name: &str, f: &mut dyn FnMut() -> usize| {
            f();
            let t = Instant::now();
            let mut s = 0;
            for _ in 0..3 {
                s += f();
            }
            eprintln!("{name}: {:.4} s ({s})", t.elapsed().as_secs_f64() / 3.0);
        };
        for simd in Simd::supported() {
            time(&format!("fwd 6x85680x512 {simd:?}"), &mut || {
                xw_plus_b_with(simd, &x[..6 * k], 6, k, &w, n, &vec![0.0; n]).len()
            });
            time(&format!("fwd 32x85680x512 {simd:?}"), &mut || {
                xw_plus_b_with(simd, &x, m, k, &w, n, &vec![0.0; n]).len()
            });
            time(&format!("fwd 32x512x85680 {simd:?}"), &mut || {
                xw_plus_b_with(simd, &h, m, n, &w, k, &vec![0.0; k]).len()
            });
            time(&format!("dW1 85680x512 {simd:?}"), &mut || {
                at_b_with(simd, &x, m, k, &h, n).len()
            });
            time(&format!("dW2 512x85680 {simd:?}"), &mut || {
                at_b_with(simd, &h, m, n, &x, k).len()
            });
        }
        let (xt, ht, wt) = (
            flex(x.clone(), m, k),
            flex(h.clone(), m, n),
            flex(w.clone(), k, n),
        );
        time("gemm fwd", &mut || {
            <Flex as ModuleOps<Flex>>::linear(xt.clone(), wt.clone(), None)
                .shape()
                .num_elements()
        });
        time("gemm dW1", &mut || {
            <Flex as ModuleOps<Flex>>::linear_weight_backward(xt.clone(), ht.clone())
                .shape()
                .num_elements()
        });
    }
}
