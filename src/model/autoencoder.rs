//! The dense autoencoder, exactly the original PIXAL's: an encoder layer per
//! `autoencoder_architecture[:-1]` entry, a latent layer of `architecture[-1]` units, the hidden
//! sizes mirrored in the decoder, leaky ReLU (slope 0.2) after every hidden layer, and an output
//! layer of the input size with the configured activation. In one-hot mode the labels go
//! through `Dense(label_latent_size, ReLU)` and are concatenated to the latent code before the
//! decoder. Weights start Glorot-uniform (drawn on the host from the seed, so every backend
//! starts from the same numbers), biases zero.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::Backend;
use burn::tensor::activation;
use burn::tensor::{Tensor, TensorData};

use super::dense::{DenseBackend, dense};
use crate::rng::SplitMix64;

/// Negative slope of the hidden layers' leaky ReLU (Keras' `LeakyReLU(negative_slope=0.2)`).
pub const LEAKY_SLOPE: f64 = 0.2;

/// Activation of the output layer: the configuration's `output_activation`, saved with the
/// network in `model_config.json`.
pub use crate::config::resolved::OutputActivation;

/// Everything needed to rebuild the network, saved beside the weights as JSON. Every field is
/// required when read back (burn's `Config` does not apply defaults when deserialising).
#[derive(Config, Debug, PartialEq)]
pub struct AutoencoderConfig {
    /// Values per image: pooled pixels x channels.
    pub input_dim: usize,
    /// Hidden sizes; the last is the latent size.
    pub architecture: Vec<usize>,
    /// Number of one-hot label columns; 0 without the label branch.
    pub label_dim: usize,
    /// Units of the label branch (used when `label_dim > 0`).
    pub label_latent_size: usize,
    /// Output layer activation.
    pub output_activation: OutputActivation,
    /// Negative slope of the hidden leaky ReLUs.
    pub leaky_slope: f64,
}

/// Activity regularisation coefficients (Keras' `activity_regularizer` on the encoder and
/// decoder hidden layers): `l1 * sum|a| + l2 * sum a^2` over each such layer's batch output.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ActivityRegularizer {
    /// L1 coefficient (0 = off).
    pub l1: f64,
    /// L2 coefficient (0 = off).
    pub l2: f64,
}

impl ActivityRegularizer {
    /// Whether any term is on.
    pub fn is_active(&self) -> bool {
        self.l1 > 0.0 || self.l2 > 0.0
    }

    fn penalty<B: Backend>(&self, a: &Tensor<B, 2>) -> Option<Tensor<B, 1>> {
        let mut out: Option<Tensor<B, 1>> = None;
        if self.l1 > 0.0 {
            out = Some(a.clone().abs().sum().mul_scalar(self.l1));
        }
        if self.l2 > 0.0 {
            let t = a.clone().square().sum().mul_scalar(self.l2);
            out = Some(match out {
                Some(o) => o + t,
                None => t,
            });
        }
        out
    }
}

/// The autoencoder network.
#[derive(Module, Debug)]
pub struct Autoencoder<B: Backend> {
    /// Encoder hidden layers (`architecture[:-1]`).
    pub encoder: Vec<Linear<B>>,
    /// The latent layer (`architecture[-1]` units).
    pub latent: Linear<B>,
    /// The label branch (one-hot mode only).
    pub label: Option<Linear<B>>,
    /// Decoder hidden layers (the encoder sizes reversed).
    pub decoder: Vec<Linear<B>>,
    /// The output layer (`input_dim` units).
    pub output: Linear<B>,
    /// Output activation (not a parameter).
    #[module(skip)]
    pub activation: OutputActivation,
    /// Leaky ReLU slope (not a parameter).
    #[module(skip)]
    pub slope: f64,
}

/// A dense layer with Glorot-uniform weights drawn from `rng` and zero biases.
fn glorot<B: Backend>(
    d_in: usize,
    d_out: usize,
    rng: &mut SplitMix64,
    device: &B::Device,
) -> Linear<B> {
    let limit = (6.0 / (d_in + d_out) as f64).sqrt();
    let w: Vec<f32> = (0..d_in * d_out)
        .map(|_| ((rng.next_f64() * 2.0 - 1.0) * limit) as f32)
        .collect();
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [d_in, d_out]), device)),
        bias: Some(Param::from_tensor(Tensor::zeros([d_out], device))),
    }
}

/// A layer of the right shape filled with zeros, to load saved weights into.
fn zeros<B: Backend>(d_in: usize, d_out: usize, device: &B::Device) -> Linear<B> {
    LinearConfig::new(d_in, d_out)
        .with_initializer(burn::nn::Initializer::Zeros)
        .init(device)
}

impl AutoencoderConfig {
    /// The layer sizes as (input, output) pairs, in the order encoder, latent, label, decoder,
    /// output.
    fn shapes(&self) -> LayerShapes {
        let arch = &self.architecture;
        let (hidden, latent) = arch.split_at(arch.len().saturating_sub(1));
        let latent = latent.first().copied().unwrap_or(1);
        let mut encoder = Vec::new();
        let mut d = self.input_dim;
        for &h in hidden {
            encoder.push((d, h));
            d = h;
        }
        let latent_layer = (d, latent);
        let label = (self.label_dim > 0).then_some((self.label_dim, self.label_latent_size));
        let mut d = latent + label.map_or(0, |l| l.1);
        let mut decoder = Vec::new();
        for &h in hidden.iter().rev() {
            decoder.push((d, h));
            d = h;
        }
        LayerShapes {
            encoder,
            latent: latent_layer,
            label,
            decoder,
            output: (d, self.input_dim),
        }
    }

    /// Builds the network with Glorot-uniform weights drawn from `seed`.
    pub fn init<B: Backend>(&self, seed: u64, device: &B::Device) -> Autoencoder<B> {
        let mut rng = SplitMix64::new(seed ^ 0x1A17_0000_0000_0001);
        let s = self.shapes();
        let mut g = |(i, o): (usize, usize)| glorot::<B>(i, o, &mut rng, device);
        let encoder = s.encoder.iter().map(|&l| g(l)).collect();
        let latent = g(s.latent);
        let label = s.label.map(&mut g);
        let decoder = s.decoder.iter().map(|&l| g(l)).collect();
        let output = g(s.output);
        Autoencoder {
            encoder,
            latent,
            label,
            decoder,
            output,
            activation: self.output_activation,
            slope: self.leaky_slope,
        }
    }

    /// Builds the network with zero weights (to load a saved record into).
    pub fn init_zeros<B: Backend>(&self, device: &B::Device) -> Autoencoder<B> {
        let s = self.shapes();
        Autoencoder {
            encoder: s
                .encoder
                .iter()
                .map(|&(i, o)| zeros(i, o, device))
                .collect(),
            latent: zeros(s.latent.0, s.latent.1, device),
            label: s.label.map(|(i, o)| zeros(i, o, device)),
            decoder: s
                .decoder
                .iter()
                .map(|&(i, o)| zeros(i, o, device))
                .collect(),
            output: zeros(s.output.0, s.output.1, device),
            activation: self.output_activation,
            slope: self.leaky_slope,
        }
    }

    /// Number of trainable values.
    pub fn num_params(&self) -> usize {
        let s = self.shapes();
        s.encoder
            .iter()
            .chain(std::iter::once(&s.latent))
            .chain(s.label.iter())
            .chain(s.decoder.iter())
            .chain(std::iter::once(&s.output))
            .map(|(i, o)| i * o + o)
            .sum()
    }
}

struct LayerShapes {
    encoder: Vec<(usize, usize)>,
    latent: (usize, usize),
    label: Option<(usize, usize)>,
    decoder: Vec<(usize, usize)>,
    output: (usize, usize),
}

impl<B: DenseBackend> Autoencoder<B> {
    /// Reconstructs `x` (batch, input_dim); `labels` (batch, label_dim) is needed exactly when
    /// the network has the label branch (a missing one is treated as all-zero labels).
    pub fn forward(&self, x: Tensor<B, 2>, labels: Option<Tensor<B, 2>>) -> Tensor<B, 2> {
        self.forward_regularized(x, labels, &ActivityRegularizer::default())
            .0
    }

    /// [`Self::forward`], also returning the activity penalty of the encoder and decoder hidden
    /// layers (None when `reg` is off or there are no hidden layers).
    pub fn forward_regularized(
        &self,
        x: Tensor<B, 2>,
        labels: Option<Tensor<B, 2>>,
        reg: &ActivityRegularizer,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 1>>) {
        let slope = self.slope;
        let mut penalty: Option<Tensor<B, 1>> = None;
        let mut add = |a: &Tensor<B, 2>| {
            if let Some(p) = reg.penalty(a) {
                penalty = Some(match penalty.take() {
                    Some(q) => q + p,
                    None => p,
                });
            }
        };
        let mut h = x;
        for layer in &self.encoder {
            h = activation::leaky_relu(dense(h, layer), slope);
            add(&h);
        }
        h = activation::leaky_relu(dense(h, &self.latent), slope);
        if let Some(branch) = &self.label {
            let [batch, _] = h.dims();
            let l = match labels {
                Some(l) => l,
                None => {
                    let [d_in, _] = branch.weight.dims();
                    Tensor::zeros([batch, d_in], &h.device())
                }
            };
            let l = activation::relu(dense(l, branch));
            h = Tensor::cat(vec![h, l], 1);
        }
        for layer in &self.decoder {
            h = activation::leaky_relu(dense(h, layer), slope);
            add(&h);
        }
        let y = dense(h, &self.output);
        let y = match self.activation {
            OutputActivation::Sigmoid => activation::sigmoid(y),
            OutputActivation::Softmax => activation::softmax(y, 1),
            OutputActivation::Tanh => activation::tanh(y),
            OutputActivation::Relu => activation::relu(y),
            OutputActivation::Linear => y,
        };
        (y, penalty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    fn cfg(label_dim: usize) -> AutoencoderConfig {
        AutoencoderConfig::new(
            12,
            vec![8, 4, 2],
            label_dim,
            3,
            OutputActivation::Sigmoid,
            LEAKY_SLOPE,
        )
    }

    #[test]
    fn layer_sizes_mirror_the_architecture() {
        let m = cfg(0).init::<Flex>(1, &Default::default());
        let dims: Vec<[usize; 2]> = m.encoder.iter().map(|l| l.weight.dims()).collect();
        assert_eq!(dims, vec![[12, 8], [8, 4]]);
        assert_eq!(m.latent.weight.dims(), [4, 2]);
        let dims: Vec<[usize; 2]> = m.decoder.iter().map(|l| l.weight.dims()).collect();
        assert_eq!(dims, vec![[2, 4], [4, 8]]);
        assert_eq!(m.output.weight.dims(), [8, 12]);
        assert!(m.label.is_none());
        assert_eq!(
            cfg(0).num_params(),
            12 * 8 + 8 + 8 * 4 + 4 + 4 * 2 + 2 + 2 * 4 + 4 + 4 * 8 + 8 + 8 * 12 + 12
        );

        let m = cfg(2).init::<Flex>(1, &Default::default());
        assert_eq!(m.label.as_ref().map(|l| l.weight.dims()), Some([2, 3]));
        assert_eq!(m.decoder[0].weight.dims(), [5, 4]);
        let y = m.forward(
            Tensor::ones([3, 12], &Default::default()),
            Some(Tensor::ones([3, 2], &Default::default())),
        );
        assert_eq!(y.dims(), [3, 12]);
    }

    #[test]
    fn glorot_limits_zero_bias_and_seed() {
        let c = AutoencoderConfig::new(300, vec![100], 0, 1, OutputActivation::Linear, 0.2);
        let weights =
            |m: &Autoencoder<Flex>| m.latent.weight.val().into_data().to_vec::<f32>().unwrap();
        let m = c.init::<Flex>(5, &Default::default());
        let w = weights(&m);
        let limit = (6.0f32 / 400.0).sqrt();
        assert!(w.iter().all(|v| v.abs() <= limit));
        let max = w.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        assert!(max > 0.95 * limit, "{max} vs {limit}");
        let b = m
            .latent
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert!(b.iter().all(|&v| v == 0.0));
        assert_eq!(w, weights(&c.init::<Flex>(5, &Default::default())));
        assert_ne!(w, weights(&c.init::<Flex>(6, &Default::default())));
    }

    #[test]
    fn output_activations_and_regularizer() {
        let dev = Default::default();
        for (act, check) in [
            (OutputActivation::Sigmoid, (0.0f32, 1.0f32)),
            (OutputActivation::Tanh, (-1.0, 1.0)),
            (OutputActivation::Relu, (0.0, f32::INFINITY)),
        ] {
            let mut c = cfg(0);
            c.output_activation = act;
            let m = c.init::<Flex>(2, &dev);
            let y = m.forward(
                Tensor::random([4, 12], burn::tensor::Distribution::Default, &dev),
                None,
            );
            let v = y.into_data().to_vec::<f32>().unwrap();
            assert!(v.iter().all(|x| *x >= check.0 && *x <= check.1), "{act:?}");
        }
        let mut c = cfg(0);
        c.output_activation = OutputActivation::Softmax;
        let m = c.init::<Flex>(2, &dev);
        let y = m.forward(Tensor::ones([2, 12], &dev), None);
        let sums = y.sum_dim(1).into_data().to_vec::<f32>().unwrap();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");
        // The penalty is l2 * sum of squares of the hidden outputs (2 encoder + 2 decoder
        // layers, not the latent layer).
        let m = cfg(0).init::<Flex>(3, &dev);
        let x = Tensor::<Flex, 2>::ones([2, 12], &dev);
        let reg = ActivityRegularizer { l1: 0.0, l2: 0.5 };
        let (_, p) = m.forward_regularized(x.clone(), None, &reg);
        let p = p.unwrap().into_scalar();
        let mut h = x;
        let mut want = 0.0f32;
        for l in &m.encoder {
            h = activation::leaky_relu(l.forward(h), 0.2);
            want += h.clone().square().sum().into_scalar() * 0.5;
        }
        h = activation::leaky_relu(m.latent.forward(h), 0.2);
        for l in &m.decoder {
            h = activation::leaky_relu(l.forward(h), 0.2);
            want += h.clone().square().sum().into_scalar() * 0.5;
        }
        assert!(
            (p - want).abs() < 1e-5 * want.abs().max(1.0),
            "{p} vs {want}"
        );
        let (_, none) = m.forward_regularized(
            Tensor::ones([1, 12], &dev),
            None,
            &ActivityRegularizer::default(),
        );
        assert!(none.is_none());
    }
}
