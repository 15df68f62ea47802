//! The dense layer as a burn backend extension, so the CPU backend can use kernels made for the
//! autoencoder's shapes. The original's model has two layers of 85,680 x 512 weights and
//! trains on batches of at most 32 images: every matmul touching those layers has one tiny
//! dimension (the batch). General gemm packs the 175 MB weight matrix on every call and computes
//! the weight gradient (a rank-32 update) at a fraction of memory speed; the kernels here stream
//! the weights once and write the gradient once, blocked so the small operand stays in cache.
//!
//! [`DenseBackend::dense`] is `x @ w + b` with `w` stored (in, out) as burn's `Linear` stores
//! it. Every backend gets burn's own `linear` ops by default; flex overrides the forward and
//! the weight gradient when the batch is small and the layer large; `Autodiff<B>` records the
//! op and routes its backward through `B`'s versions.

use burn::backend::Flex;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::nn::Linear;
use burn::prelude::Backend;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ops::{FloatTensor, ModuleOps};
use burn::tensor::{DType, Tensor, TensorData, TensorMetadata, TensorPrimitive};
use burn_flex::FlexTensor;
use rayon::prelude::*;

/// Backends with a dense-layer op.
pub trait DenseBackend: Backend {
    /// `x (m, k) @ w (k, n) + b (n)`.
    fn dense(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
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
    fn dense(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
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
            OpsKind::UnTracked(prep) => prep.finish(B::dense(x.primitive, w.primitive, b.primitive)),
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
        let out = match (view2(&x), view2(&w)) {
            (Some((xs, m, k)), Some((ws, k2, n)))
                if k == k2 && m <= MAX_BATCH && k * n >= MIN_WEIGHTS =>
            {
                let bs = b.as_slice::<f32>().filter(|s| s.len() >= n && b.dtype() == DType::F32);
                bs.map(|bs| flex(xw_plus_b(xs, m, k, ws, n, &bs[..n]), m, n))
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

/// `a * b + c`, fused when the CPU has FMA (the caller's target features decide).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// Whether the AVX2+FMA versions can run here.
fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Columns of the output computed together in the forward kernel (m x JB accumulators).
const FWD_COLS: usize = 256;
/// Output rows per parallel task in the weight-gradient kernel.
const GRAD_ROWS: usize = 64;
/// Columns per block in the weight-gradient kernel (the m x block of `g` stays in cache).
const GRAD_COLS: usize = 2048;

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

#[inline(always)]
fn fwd_block<const FMA: bool>(
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
    for i in 0..k {
        let wseg = &w[i * n + j0..i * n + j0 + cols];
        let xcol = &xt[i * m..(i + 1) * m];
        for (r, &a) in xcol.iter().enumerate() {
            let row = &mut acc[r * cols..(r + 1) * cols];
            for (o, &wv) in row.iter_mut().zip(wseg) {
                *o = madd::<FMA>(a, wv, *o);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn fwd_block_fma(
    xt: &[f32],
    m: usize,
    k: usize,
    w: &[f32],
    n: usize,
    b: &[f32],
    j0: usize,
    acc: &mut [f32],
) {
    fwd_block::<true>(xt, m, k, w, n, b, j0, acc)
}

/// `x (m, k) @ w (k, n) + b (n)` for small m: the output is computed in column blocks, each
/// streaming its columns of `w` once with all m rows' accumulators in cache.
pub fn xw_plus_b(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, b: &[f32]) -> Vec<f32> {
    let xt = transpose(x, m, k);
    let fma = has_fma();
    let starts: Vec<usize> = (0..n).step_by(FWD_COLS).collect();
    let blocks: Vec<Vec<f32>> = starts
        .par_iter()
        .map(|&j0| {
            let cols = FWD_COLS.min(n - j0);
            let mut acc = vec![0.0f32; m * cols];
            #[cfg(target_arch = "x86_64")]
            if fma {
                // SAFETY: the CPU has AVX2 and FMA (checked by has_fma).
                unsafe { fwd_block_fma(&xt, m, k, w, n, b, j0, &mut acc) };
                return acc;
            }
            let _ = fma;
            fwd_block::<false>(&xt, m, k, w, n, b, j0, &mut acc);
            acc
        })
        .collect();
    let mut out = vec![0.0f32; m * n];
    for (&j0, block) in starts.iter().zip(&blocks) {
        let cols = FWD_COLS.min(n - j0);
        for r in 0..m {
            out[r * n + j0..r * n + j0 + cols].copy_from_slice(&block[r * cols..(r + 1) * cols]);
        }
    }
    out
}

#[inline(always)]
fn grad_rows<const FMA: bool>(at: &[f32], m: usize, g: &[f32], n: usize, i0: usize, out: &mut [f32]) {
    let rows = out.len() / n;
    let mut j0 = 0;
    while j0 < n {
        let cols = GRAD_COLS.min(n - j0);
        for r in 0..rows {
            let a = &at[(i0 + r) * m..(i0 + r + 1) * m];
            let orow = &mut out[r * n + j0..r * n + j0 + cols];
            let g0 = &g[j0..j0 + cols];
            for (o, &gv) in orow.iter_mut().zip(g0) {
                *o = a[0] * gv;
            }
            for (s, &av) in a.iter().enumerate().skip(1) {
                let gs = &g[s * n + j0..s * n + j0 + cols];
                for (o, &gv) in orow.iter_mut().zip(gs) {
                    *o = madd::<FMA>(av, gv, *o);
                }
            }
        }
        j0 += cols;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn grad_rows_fma(at: &[f32], m: usize, g: &[f32], n: usize, i0: usize, out: &mut [f32]) {
    grad_rows::<true>(at, m, g, n, i0, out)
}

/// `a^T (k, m) @ g (m, n)` for small m (the weight gradient of a dense layer with input `a`
/// (m, k) and output gradient `g` (m, n)): rows of the result are written once each, in blocks
/// whose slice of `g` stays in cache.
pub fn at_b(a: &[f32], m: usize, k: usize, g: &[f32], n: usize) -> Vec<f32> {
    let at = transpose(a, m, k);
    let fma = has_fma();
    let mut out = vec![0.0f32; k * n];
    if m == 0 {
        return out;
    }
    out.par_chunks_mut(GRAD_ROWS * n)
        .enumerate()
        .for_each(|(c, chunk)| {
            let i0 = c * GRAD_ROWS;
            #[cfg(target_arch = "x86_64")]
            if fma {
                // SAFETY: the CPU has AVX2 and FMA (checked by has_fma).
                unsafe { grad_rows_fma(&at, m, g, n, i0, chunk) };
                return;
            }
            let _ = fma;
            grad_rows::<false>(&at, m, g, n, i0, chunk);
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::data::SplitMix64;
    use burn::backend::Autodiff;
    use burn::tensor::Distribution;

    fn rand(n: usize, seed: u64) -> Vec<f32> {
        let mut r = SplitMix64::new(seed);
        (0..n).map(|_| (r.next_f64() * 2.0 - 1.0) as f32).collect()
    }

    #[test]
    fn kernels_match_naive_products() {
        for &(m, k, n) in &[(3usize, 5usize, 7usize), (32, 70, 600), (6, 300, 2100), (1, 1, 1)] {
            let x = rand(m * k, 1);
            let w = rand(k * n, 2);
            let b = rand(n, 3);
            let g = rand(m * n, 4);
            let y = xw_plus_b(&x, m, k, &w, n, &b);
            let dw = at_b(&x, m, k, &g, n);
            for r in 0..m {
                for j in 0..n {
                    let want: f64 = f64::from(b[j])
                        + (0..k).map(|i| f64::from(x[r * k + i]) * f64::from(w[i * n + j])).sum::<f64>();
                    assert!((f64::from(y[r * n + j]) - want).abs() < 1e-4, "y {m}x{k}x{n}");
                }
            }
            for i in 0..k {
                for j in 0..n {
                    let want: f64 =
                        (0..m).map(|r| f64::from(x[r * k + i]) * f64::from(g[r * n + j])).sum();
                    assert!((f64::from(dw[i * n + j]) - want).abs() < 1e-4, "dw {m}x{k}x{n}");
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
            let bias = burn::module::Param::from_tensor(Tensor::<Ad, 1>::random([n], Distribution::Default, &dev));
            let layer = Linear { weight: layer.weight, bias: Some(bias) };
            let x = Tensor::<Ad, 2>::random([5, k], Distribution::Default, &dev);
            let ours = dense(x.clone(), &layer);
            let theirs = layer.forward(x);
            let a = ours.clone().into_data().to_vec::<f32>().unwrap();
            let b = theirs.clone().into_data().to_vec::<f32>().unwrap();
            assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-4));
            let g1 = ours.square().sum().backward();
            let g2 = theirs.square().sum().backward();
            for (p, q) in [
                (layer.weight.grad(&g1).unwrap(), layer.weight.grad(&g2).unwrap()),
            ] {
                let (p, q) = (p.into_data().to_vec::<f32>().unwrap(), q.into_data().to_vec::<f32>().unwrap());
                assert!(p.iter().zip(&q).all(|(u, v)| (u - v).abs() < 1e-3 * v.abs().max(1.0)));
            }
            let bias = layer.bias.as_ref().unwrap();
            let (p, q) = (
                bias.grad(&g1).unwrap().into_data().to_vec::<f32>().unwrap(),
                bias.grad(&g2).unwrap().into_data().to_vec::<f32>().unwrap(),
            );
            assert!(p.iter().zip(&q).all(|(u, v)| (u - v).abs() < 1e-3 * v.abs().max(1.0)));
        }
    }
}
