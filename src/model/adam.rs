//! Adam as Keras applies it (`m = b1 m + (1-b1) g`, `v = b2 v + (1-b2) g²`,
//! `p -= lr sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)`), with Keras' defaults beta 0.9/0.999
//! and eps 1e-7. On the CPU the update is one fused pass over each parameter, done in place in
//! the tensors' own buffers: burn's stock Adam makes about a dozen full-size temporary tensors
//! per step, which for the original's 88-million-weight model costs more than the matmuls.
//! On other devices the same formula runs as tensor operations.

use burn::optim::SimpleOptimizer;
use burn::prelude::Backend;
use burn::record::Record;
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

/// Keras' Adam defaults.
pub const BETA_1: f64 = 0.9;
/// Second-moment decay.
pub const BETA_2: f64 = 0.999;
/// Keras' epsilon (added to sqrt(v) before the division).
pub const EPSILON: f64 = 1e-7;

/// Chunk of elements one worker updates at a time.
const CHUNK: usize = 1 << 16;

/// The optimizer.
#[derive(Debug, Clone, Copy)]
pub struct KerasAdam {
    /// Update in host memory (CPU backend) instead of with tensor operations.
    pub host: bool,
}

/// Moments of one parameter.
#[derive(Record, Clone)]
pub struct AdamMoments<B: Backend, const D: usize> {
    /// Steps taken.
    pub time: usize,
    /// First moment.
    pub m: Tensor<B, D>,
    /// Second moment.
    pub v: Tensor<B, D>,
}

/// One fused Adam update of `p` with gradient `g` and moments `m`, `v` (all the same length).
pub fn fused_update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], lr: f64, time: usize) {
    let t = time as i32;
    let alpha = (lr * (1.0 - BETA_2.powi(t)).sqrt() / (1.0 - BETA_1.powi(t))) as f32;
    let (b1, b2, eps) = (BETA_1 as f32, BETA_2 as f32, EPSILON as f32);
    let (c1, c2) = (1.0 - b1, 1.0 - b2);
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), m), v)| {
            for i in 0..p.len() {
                let gi = g[i];
                let mi = b1 * m[i] + c1 * gi;
                let vi = b2 * v[i] + c2 * gi * gi;
                m[i] = mi;
                v[i] = vi;
                p[i] -= alpha * mi / (vi.sqrt() + eps);
            }
        });
}

/// A tensor's values in host memory as f32 (moved, not copied, for uniquely owned f32
/// tensors of the CPU backend).
fn host_f32<B: Backend, const D: usize>(t: Tensor<B, D>) -> TensorData {
    let d = t.into_data();
    if d.dtype == DType::F32 {
        d
    } else {
        d.convert::<f32>()
    }
}

/// The fused host update of one parameter; `None` (nothing changed) if a buffer cannot be
/// viewed as f32.
fn host_step(
    p: &mut TensorData,
    g: &TensorData,
    m: &mut TensorData,
    v: &mut TensorData,
    lr: f64,
    time: usize,
) -> Option<()> {
    let g = g.as_slice::<f32>().ok()?;
    let p = p.as_mut_slice::<f32>().ok()?;
    let m = m.as_mut_slice::<f32>().ok()?;
    let v = v.as_mut_slice::<f32>().ok()?;
    if g.len() != p.len() || m.len() != p.len() || v.len() != p.len() {
        return None;
    }
    fused_update(p, g, m, v, lr, time);
    Some(())
}

impl<B: Backend> SimpleOptimizer<B> for KerasAdam {
    type State<const D: usize> = AdamMoments<B, D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let device = tensor.device();
        let shape = tensor.shape();
        let (time, m, v) = match state {
            Some(s) => (s.time + 1, s.m, s.v),
            None => (1, grad.zeros_like(), grad.zeros_like()),
        };
        if self.host {
            let mut pd = host_f32(tensor);
            let gd = host_f32(grad);
            let mut md = host_f32(m);
            let mut vd = host_f32(v);
            let done = host_step(&mut pd, &gd, &mut md, &mut vd, lr, time).is_some();
            let back = |d: TensorData| Tensor::<B, D>::from_data(d, &device);
            let (p, g, m, v) = (back(pd), back(gd), back(md), back(vd));
            if done {
                return (p, Some(AdamMoments { time, m, v }));
            }
            debug_assert!(false, "fused Adam could not view a {shape:?} buffer as f32");
            return tensor_step(lr, p, g, m, v, time);
        }
        tensor_step(lr, tensor, grad, m, v, time)
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        state.m = state.m.to_device(device);
        state.v = state.v.to_device(device);
        state
    }
}

/// The same update with tensor operations (any device).
fn tensor_step<B: Backend, const D: usize>(
    lr: f64,
    tensor: Tensor<B, D>,
    grad: Tensor<B, D>,
    m: Tensor<B, D>,
    v: Tensor<B, D>,
    time: usize,
) -> (Tensor<B, D>, Option<AdamMoments<B, D>>) {
    let m = m.mul_scalar(BETA_1) + grad.clone().mul_scalar(1.0 - BETA_1);
    let v = v.mul_scalar(BETA_2) + grad.square().mul_scalar(1.0 - BETA_2);
    let t = time as i32;
    let alpha = lr * (1.0 - BETA_2.powi(t)).sqrt() / (1.0 - BETA_1.powi(t));
    let delta = m.clone().mul_scalar(alpha) / v.clone().sqrt().add_scalar(EPSILON);
    (tensor - delta, Some(AdamMoments { time, m, v }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    /// Keras' update written out in f64 for one value.
    fn reference(p: f64, grads: &[f64], lr: f64) -> f64 {
        let (mut p, mut m, mut v) = (p, 0.0, 0.0);
        for (i, g) in grads.iter().enumerate() {
            let t = (i + 1) as i32;
            m = BETA_1 * m + (1.0 - BETA_1) * g;
            v = BETA_2 * v + (1.0 - BETA_2) * g * g;
            p -= lr * (1.0 - BETA_2.powi(t)).sqrt() / (1.0 - BETA_1.powi(t)) * m
                / (v.sqrt() + EPSILON);
        }
        p
    }

    #[test]
    fn host_and_tensor_paths_match_keras() {
        let dev = Default::default();
        let grads = [[0.5f32, -1.0, 0.0], [0.25, -0.5, 1e-3], [-0.1, 2.0, 0.0]];
        for host in [true, false] {
            let opt = KerasAdam { host };
            let mut p = Tensor::<Flex, 1>::from_data([1.0f32, 2.0, -3.0], &dev);
            let mut state = None;
            for g in &grads {
                let gt = Tensor::<Flex, 1>::from_data(*g, &dev);
                let (np, ns) = SimpleOptimizer::<Flex>::step(&opt, 0.1, p, gt, state);
                p = np;
                state = ns;
            }
            let got = p.into_data().to_vec::<f32>().unwrap();
            for (k, start) in [1.0f64, 2.0, -3.0].iter().enumerate() {
                let gs: Vec<f64> = grads.iter().map(|g| f64::from(g[k])).collect();
                let want = reference(*start, &gs, 0.1);
                assert!(
                    (f64::from(got[k]) - want).abs() < 1e-5,
                    "host={host} k={k}: {} vs {want}",
                    got[k]
                );
            }
        }
    }
}
