//! Reconstruction losses, as the original PIXAL defines them, on the flattened (pixel, channel)
//! view of each image: an element loss of the difference d = prediction - target (mse d²,
//! mae |d|, huber 0.5 d² for |d| <= delta else delta (|d| - 0.5 delta), charbonnier
//! sqrt(d² + 1e-6) - 1e-3), multiplied by the weight of the element's channel, averaged over all
//! elements; the masked variant averages over the elements whose target is non-zero only.

use burn::prelude::Backend;
use burn::tensor::Tensor;
use serde::Serialize;

use crate::config::resolved::{LossFunction, ModelTraining};

/// The element loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ElementLoss {
    /// d².
    Mse,
    /// |d|.
    Mae,
    /// Huber with `delta`.
    Huber,
    /// sqrt(d² + eps²) - eps with eps = 1e-3.
    Charbonnier,
}

/// Charbonnier's epsilon (its square, 1e-6, is added under the root).
pub const CHARBONNIER_EPS: f64 = 1e-3;

/// A fully specified loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LossSpec {
    /// Element loss.
    pub element: ElementLoss,
    /// Only elements with a non-zero target count.
    pub masked: bool,
    /// Huber's transition point.
    pub huber_delta: f64,
}

impl LossSpec {
    /// The loss the configuration asks for: `loss_function: masked_mse` is mse with the mask,
    /// and `masked_loss: true` masks any loss.
    pub fn from_config(m: &ModelTraining) -> LossSpec {
        let (element, masked) = match m.loss_function {
            LossFunction::Mse => (ElementLoss::Mse, false),
            LossFunction::Mae => (ElementLoss::Mae, false),
            LossFunction::Huber => (ElementLoss::Huber, false),
            LossFunction::Charbonnier => (ElementLoss::Charbonnier, false),
            LossFunction::MaskedMse => (ElementLoss::Mse, true),
        };
        LossSpec {
            element,
            masked: masked || m.masked_loss,
            huber_delta: m.huber_delta,
        }
    }

    /// The element loss of one difference, in f64 (the reference the tensor version is tested
    /// against).
    pub fn element_value(&self, d: f64) -> f64 {
        match self.element {
            ElementLoss::Mse => d * d,
            ElementLoss::Mae => d.abs(),
            ElementLoss::Huber => {
                let a = d.abs();
                if a <= self.huber_delta {
                    0.5 * d * d
                } else {
                    self.huber_delta * (a - 0.5 * self.huber_delta)
                }
            }
            ElementLoss::Charbonnier => {
                (d * d + CHARBONNIER_EPS * CHARBONNIER_EPS).sqrt() - CHARBONNIER_EPS
            }
        }
    }

    /// The element losses of `d` as a tensor of the same shape.
    pub fn elements<B: Backend>(&self, d: Tensor<B, 2>) -> Tensor<B, 2> {
        match self.element {
            ElementLoss::Mse => d.square(),
            ElementLoss::Mae => d.abs(),
            ElementLoss::Huber => {
                // With q = min(|d|, delta): 0.5 q² + delta (|d| - q) is 0.5 d² inside the
                // transition and delta (|d| - 0.5 delta) outside, with no branch.
                let a = d.abs();
                let q = a.clone().clamp_max(self.huber_delta);
                q.clone().square().mul_scalar(0.5) + (a - q).mul_scalar(self.huber_delta)
            }
            ElementLoss::Charbonnier => d
                .square()
                .add_scalar(CHARBONNIER_EPS * CHARBONNIER_EPS)
                .sqrt()
                .sub_scalar(CHARBONNIER_EPS),
        }
    }

    /// The weighted loss of a batch: `pred` and `target` (batch, D), `weights` (1, D) holding
    /// each element's channel weight. Returns a one-element tensor.
    pub fn batch_loss<B: Backend>(
        &self,
        pred: Tensor<B, 2>,
        target: Tensor<B, 2>,
        weights: Tensor<B, 2>,
    ) -> Tensor<B, 1> {
        let weighted = self.elements(pred - target.clone()) * weights;
        if self.masked {
            let mask = target.not_equal_elem(0.0).float();
            let count = mask.clone().sum().clamp_min(1.0);
            (weighted * mask).sum() / count
        } else {
            weighted.mean()
        }
    }

    /// The weighted loss of a batch on the host, in f64: `pred`/`target` row-major (batch, D),
    /// `weights` one per channel (element `i` has channel `i % weights.len()`).
    pub fn host_loss(&self, pred: &[f32], target: &[f32], weights: &[f32]) -> f64 {
        let c = weights.len().max(1);
        let mut sum = 0.0;
        let mut count = 0usize;
        for (i, (&p, &t)) in pred.iter().zip(target).enumerate() {
            if self.masked && t == 0.0 {
                continue;
            }
            sum += self.element_value(f64::from(p) - f64::from(t)) * f64::from(weights[i % c]);
            count += 1;
        }
        if self.masked {
            sum / count.max(1) as f64
        } else {
            sum / pred.len().max(1) as f64
        }
    }
}

/// The per-element weight row (1, P*C) for channel weights `w` over `p` pixels.
pub fn weight_row(w: &[f32], p: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(w.len() * p);
    for _ in 0..p {
        out.extend_from_slice(w);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::TensorData;

    fn t(v: &[f32], rows: usize) -> Tensor<Flex, 2> {
        Tensor::from_data(
            TensorData::new(v.to_vec(), [rows, v.len() / rows]),
            &Default::default(),
        )
    }

    fn spec(element: ElementLoss, masked: bool) -> LossSpec {
        LossSpec {
            element,
            masked,
            huber_delta: 0.25,
        }
    }

    /// Two images of 2 pixels x 2 channels, channel weights 3 and 1.
    const PRED: [f32; 8] = [0.5, 0.2, 0.0, 1.0, 0.1, 0.1, 0.9, 0.3];
    const TARGET: [f32; 8] = [0.0, 0.4, 0.0, 0.5, 0.1, 0.0, 0.2, 0.3];
    const W: [f32; 2] = [3.0, 1.0];

    fn tensor_loss(s: LossSpec) -> f64 {
        let w = weight_row(&W, 2);
        f64::from(
            s.batch_loss(t(&PRED, 2), t(&TARGET, 2), t(&w, 1))
                .into_scalar(),
        )
    }

    #[test]
    fn losses_match_hand_computed_values() {
        // d = pred - target = [0.5, -0.2, 0, 0.5, 0, 0.1, 0.7, 0]; weights 3,1,3,1,3,1,3,1.
        // mse: 3*.25 + .04 + 0 + .25 + 0 + .01 + 3*.49 + 0 = 2.52, / 8.
        let cases = [
            (spec(ElementLoss::Mse, false), 2.52 / 8.0),
            // mae: 1.5 + .2 + 0 + .5 + 0 + .1 + 2.1 + 0 = 4.4.
            (spec(ElementLoss::Mae, false), 4.4 / 8.0),
            // huber (delta .25): |.5| -> .25*(.5-.125)=.09375 (x3 = .28125); .2 -> .02;
            // .5 -> .09375; .1 -> .005; .7 -> .25*(.7-.125)=.14375 (x3 = .43125).
            (
                spec(ElementLoss::Huber, false),
                (0.28125 + 0.02 + 0.09375 + 0.005 + 0.43125) / 8.0,
            ),
            // masked mse: targets non-zero at indices 1, 3, 4, 6, 7 -> .04 + .25 + 0 + 1.47 + 0.
            (spec(ElementLoss::Mse, true), 1.76 / 5.0),
        ];
        for (s, want) in cases {
            let got = tensor_loss(s);
            assert!((got - want).abs() < 1e-6, "{s:?}: {got} vs {want}");
            let host = s.host_loss(&PRED, &TARGET, &W);
            assert!((host - want).abs() < 1e-6, "{s:?} host: {host} vs {want}");
        }
        // Charbonnier: sqrt(d² + 1e-6) - 1e-3 per element.
        let s = spec(ElementLoss::Charbonnier, false);
        let d = [0.5f64, -0.2, 0.0, 0.5, 0.0, 0.1, 0.7, 0.0];
        let want: f64 = d
            .iter()
            .enumerate()
            .map(|(i, d)| ((d * d + 1e-6).sqrt() - 1e-3) * [3.0, 1.0][i % 2])
            .sum::<f64>()
            / 8.0;
        assert!((tensor_loss(s) - want).abs() < 1e-6);
        assert_eq!(s.element_value(0.0), 0.0);
        // Huber's two pieces meet at delta.
        let h = spec(ElementLoss::Huber, false);
        assert!((h.element_value(0.25) - 0.03125).abs() < 1e-12);
        assert!((h.element_value(-0.2500001) - 0.03125).abs() < 1e-7);
    }

    #[test]
    fn all_zero_targets_under_the_mask_give_zero() {
        let s = spec(ElementLoss::Mse, true);
        let w = weight_row(&W, 1);
        let l = s
            .batch_loss(t(&[0.3, 0.1], 1), t(&[0.0, 0.0], 1), t(&w, 1))
            .into_scalar();
        assert_eq!(l, 0.0);
    }

    #[test]
    fn config_mapping() {
        let mut m = crate::config::Parameters::from_yaml("", std::path::Path::new("p.yaml"))
            .unwrap()
            .model_training;
        let s = LossSpec::from_config(&m);
        assert_eq!((s.element, s.masked), (ElementLoss::Huber, true));
        m.masked_loss = false;
        m.loss_function = LossFunction::MaskedMse;
        let s = LossSpec::from_config(&m);
        assert_eq!((s.element, s.masked), (ElementLoss::Mse, true));
        m.loss_function = LossFunction::Mae;
        assert!(!LossSpec::from_config(&m).masked);
    }
}
