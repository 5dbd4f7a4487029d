//! Small building blocks shared by the VITS modules: convolutions with PyTorch's "same" padding, layer norm over
//! the channel axis of `[batch, channels, time]` tensors, a depthwise convolution, activations.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{Conv1d, Conv1dConfig, LayerNorm, LayerNormConfig, VarBuilder};

/// A `Conv1d(cin, cout, k, dilation=d, padding=p)` with a bias.
pub fn conv1d(vb: VarBuilder, cin: usize, cout: usize, k: usize, dilation: usize, padding: usize) -> Result<Conv1d> {
    let cfg = Conv1dConfig { padding, dilation, ..Default::default() };
    candle_nn::conv1d(cin, cout, k, cfg, vb)
}

/// A `Conv1d(cin, cout, k, dilation=d)` padded so that the output keeps the input's length (odd `k`).
pub fn conv1d_same(vb: VarBuilder, cin: usize, cout: usize, k: usize, dilation: usize) -> Result<Conv1d> {
    conv1d(vb, cin, cout, k, dilation, (k * dilation - dilation) / 2)
}

/// `nn.LayerNorm(channels)` applied to the channel axis of a `[batch, channels, time]` tensor.
#[derive(Debug, Clone)]
pub struct ChannelNorm(LayerNorm);

impl ChannelNorm {
    pub fn new(vb: VarBuilder, channels: usize, eps: f64) -> Result<Self> {
        let cfg = LayerNormConfig { eps, ..Default::default() };
        Ok(Self(candle_nn::layer_norm(channels, cfg, vb)?))
    }
}

impl Module for ChannelNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.0.forward(&x.transpose(1, 2)?)?.transpose(1, 2)
    }
}

/// `Conv1d(c, c, k, groups=c, dilation=d)` with "same" padding. candle runs grouped convolutions one group at a
/// time, so this sums the `k` shifted, scaled copies of the input instead.
#[derive(Debug, Clone)]
pub struct DepthwiseConv1d {
    /// `[k]` tensors of shape `[1, c, 1]`.
    taps: Vec<Tensor>,
    bias: Tensor,
    dilation: usize,
}

impl DepthwiseConv1d {
    pub fn new(vb: VarBuilder, channels: usize, k: usize, dilation: usize) -> Result<Self> {
        let weight = vb.get((channels, 1, k), "weight")?;
        let taps = (0..k).map(|i| weight.narrow(2, i, 1)?.reshape((1, channels, 1))).collect::<Result<Vec<_>>>()?;
        let bias = vb.get(channels, "bias")?.reshape((1, channels, 1))?;
        Ok(Self { taps, bias, dilation })
    }
}

impl Module for DepthwiseConv1d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let len = x.dim(D::Minus1)?;
        let pad = (self.taps.len() - 1) * self.dilation / 2;
        let padded = x.pad_with_zeros(D::Minus1, pad, pad)?;
        let mut out = self.bias.broadcast_as(x.shape())?.contiguous()?;
        for (i, tap) in self.taps.iter().enumerate() {
            out = (out + padded.narrow(D::Minus1, i * self.dilation, len)?.broadcast_mul(tap)?)?;
        }
        Ok(out)
    }
}

/// PyTorch's `leaky_relu` for a slope below 1: `max(x, slope·x)`.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    x.maximum(&(x * slope)?)
}

/// The text encoder's feed-forward activation (`config.hidden_act`, checked by `VitsConfig::validate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Relu,
    /// Exact (erf) GELU, transformers' `gelu`.
    Gelu,
    /// tanh-approximated GELU (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    Silu,
}

impl Activation {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "relu" => Some(Self::Relu),
            "gelu" => Some(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Some(Self::GeluTanh),
            "silu" | "swish" => Some(Self::Silu),
            _ => None,
        }
    }

    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Relu => x.relu(),
            Self::Gelu => x.gelu_erf(),
            Self::GeluTanh => x.gelu(),
            Self::Silu => x.silu(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use std::collections::HashMap;

    #[test]
    fn depthwise_matches_a_grouped_convolution() {
        let dev = Device::Cpu;
        let (c, k, d, t) = (3, 3, 2, 7);
        let w = Tensor::arange(0f32, (c * k) as f32, &dev).unwrap().reshape((c, 1, k)).unwrap();
        let b = Tensor::new(&[0.5f32, -1., 2.], &dev).unwrap();
        let x = Tensor::arange(0f32, (c * t) as f32, &dev).unwrap().reshape((1, c, t)).unwrap().sin().unwrap();
        let map = HashMap::from([("weight".to_owned(), w.clone()), ("bias".to_owned(), b.clone())]);
        let vb = VarBuilder::from_tensors(map, DType::F32, &dev);
        let ours = DepthwiseConv1d::new(vb, c, k, d).unwrap().forward(&x).unwrap();
        let theirs = x.conv1d(&w, (k - 1) * d / 2, 1, d, c).unwrap().broadcast_add(&b.reshape((1, c, 1)).unwrap());
        let diff = (ours - theirs.unwrap()).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-5, "{diff}");
    }

    #[test]
    fn leaky_relu_matches_the_definition() {
        let x = Tensor::new(&[-2f32, 0., 3.], &Device::Cpu).unwrap();
        assert_eq!(leaky_relu(&x, 0.1).unwrap().to_vec1::<f32>().unwrap(), vec![-0.2, 0., 3.]);
    }
}
