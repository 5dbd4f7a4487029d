//! Small building blocks shared by the VITS modules: convolutions (with PyTorch's "same" padding where asked),
//! layer norm over the channel axis of `[batch, channels, time]` tensors, a depthwise convolution, activations.
//!
//! The convolutions are written as matrix products because candle's CPU kernels are slow for this model's shapes:
//! its `conv1d` gathers an im2col matrix element by element and transposes the result, and its
//! `conv_transpose1d` falls back to a direct loop when there is padding (HiFi-GAN's upsamplers always have
//! some). On a long input, a sum of one product per kernel tap reads the input in place; a transposed
//! convolution is one product followed by an overlap-add of the kernel's taps.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{LayerNorm, LayerNormConfig, VarBuilder};

/// Inputs at least this long are convolved tap by tap; shorter ones (text-rate tensors) use candle's `conv1d`,
/// whose fixed costs are lower.
const TAPS_MIN_LEN: usize = 1024;

/// `nn.Conv1d(cin, cout, k, dilation=d, padding=p)`, stride 1, one group, with a bias or not.
#[derive(Debug, Clone)]
pub struct Conv1d {
    /// `[cout, cin, k]`.
    weight: Tensor,
    /// `weight[:, :, i]` as contiguous `[cout, cin]` matrices.
    taps: Vec<Tensor>,
    /// `[1, cout, 1]`.
    bias: Option<Tensor>,
    padding: usize,
    dilation: usize,
}

impl Conv1d {
    pub fn new(weight: Tensor, bias: Option<Tensor>, padding: usize, dilation: usize) -> Result<Self> {
        let (cout, _, k) = weight.dims3()?;
        let taps = (0..k).map(|i| weight.narrow(2, i, 1)?.squeeze(2)?.contiguous()).collect::<Result<Vec<_>>>()?;
        let bias = bias.map(|b| b.reshape((1, cout, 1))).transpose()?;
        Ok(Self { weight, taps, bias, padding, dilation })
    }
}

impl Module for Conv1d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, _, len) = x.dims3()?;
        let k = self.taps.len();
        let y = if b == 1 && k == 1 && self.padding == 0 {
            self.taps[0].matmul(&x.squeeze(0)?)?.unsqueeze(0)?
        } else if b == 1 && len >= TAPS_MIN_LEN {
            let out_len = (len + 2 * self.padding)
                .checked_sub(self.dilation * (k - 1))
                .ok_or_else(|| candle_core::Error::Msg(format!("conv1d: input of {len} shorter than the kernel")))?;
            let x = x.squeeze(0)?.pad_with_zeros(D::Minus1, self.padding, self.padding)?;
            let mut y: Option<Tensor> = None;
            for (i, tap) in self.taps.iter().enumerate() {
                let part = tap.matmul(&x.narrow(D::Minus1, i * self.dilation, out_len)?)?;
                y = Some(match y {
                    Some(y) => (y + part)?,
                    None => part,
                });
            }
            match y {
                Some(y) => y.unsqueeze(0)?,
                None => candle_core::bail!("conv1d without taps"),
            }
        } else {
            x.conv1d(&self.weight, self.padding, 1, self.dilation, 1)?
        };
        match &self.bias {
            Some(bias) => y.broadcast_add(bias),
            None => Ok(y),
        }
    }
}

/// A `Conv1d(cin, cout, k, dilation=d, padding=p)` with a bias.
pub fn conv1d(vb: VarBuilder, cin: usize, cout: usize, k: usize, dilation: usize, padding: usize) -> Result<Conv1d> {
    let weight = vb.get((cout, cin, k), "weight")?;
    let bias = vb.get(cout, "bias")?;
    Conv1d::new(weight, Some(bias), padding, dilation)
}

/// A `Conv1d(cin, cout, k, dilation=d)` padded so that the output keeps the input's length (odd `k`).
pub fn conv1d_same(vb: VarBuilder, cin: usize, cout: usize, k: usize, dilation: usize) -> Result<Conv1d> {
    conv1d(vb, cin, cout, k, dilation, (k * dilation - dilation) / 2)
}

/// `nn.ConvTranspose1d(cin, cout, k, stride=s, padding=p)` with a bias (no dilation, output padding or groups).
#[derive(Debug, Clone)]
pub struct ConvTranspose1d {
    /// `[cout · j · s, cin]`: tap `j·s + r` of output channel `o` in row `(o·j + j)·s + r`, the kernel padded with
    /// zero taps to `j·s`.
    weight: Tensor,
    bias: Tensor,
    cout: usize,
    /// Kernel taps per stride after padding (`ceil(k / s)`).
    j: usize,
    stride: usize,
    kernel: usize,
    padding: usize,
}

impl ConvTranspose1d {
    pub fn new(vb: VarBuilder, cin: usize, cout: usize, k: usize, stride: usize, padding: usize) -> Result<Self> {
        let w = vb.get((cin, cout, k), "weight")?;
        let bias = vb.get(cout, "bias")?.reshape((1, cout, 1))?;
        let j = k.div_ceil(stride);
        let w = w.pad_with_zeros(2, 0, j * stride - k)?;
        let weight = w.permute((1, 2, 0))?.contiguous()?.reshape((cout * j * stride, cin))?;
        Ok(Self { weight, bias, cout, j, stride, kernel: k, padding })
    }
}

impl Module for ConvTranspose1d {
    /// Output sample `t·s + k - p` gets input `t` through tap `k`. One product gives every tap's contribution,
    /// `[cout, j, s, len]`; tap `q·s + r` lands in phase `r` of frame `t + q`, so shifting each `q` slice by `q`
    /// frames and summing gives `[cout, s, len + j - 1]`, which interleaved and cropped by `p` is the output.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, _, len) = x.dims3()?;
        if b != 1 {
            candle_core::bail!("ConvTranspose1d: one utterance at a time (batch {b})");
        }
        if len == 0 {
            candle_core::bail!("ConvTranspose1d: empty input");
        }
        let (j, s) = (self.j, self.stride);
        let cols = self.weight.matmul(&x.squeeze(0)?)?.reshape((self.cout, j, s, len))?;
        let mut frames: Option<Tensor> = None;
        for q in 0..j {
            let part = cols.narrow(1, q, 1)?.squeeze(1)?.pad_with_zeros(D::Minus1, q, j - 1 - q)?;
            frames = Some(match frames {
                Some(f) => (f + part)?,
                None => part,
            });
        }
        let Some(frames) = frames else { candle_core::bail!("ConvTranspose1d without taps") };
        let full = frames.transpose(1, 2)?.reshape((1, self.cout, (len + j - 1) * s))?;
        let out_len = ((len - 1) * s + self.kernel)
            .checked_sub(2 * self.padding)
            .ok_or_else(|| candle_core::Error::Msg(format!("conv_transpose1d: padding {} too large", self.padding)))?;
        full.narrow(D::Minus1, self.padding, out_len)?.broadcast_add(&self.bias)
    }
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

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
    }

    fn randn(shape: &[usize], seed: u64) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|i| ((i as u64 * 2654435761 + seed * 97) % 1000) as f32 / 500.0 - 1.0).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn convolutions_match_candles_on_short_and_long_inputs() {
        for (cin, cout, k, d, len) in [(3, 4, 5, 2, 50), (3, 4, 5, 2, 1500), (6, 2, 1, 1, 2000), (4, 4, 3, 1, 7)] {
            let w = randn(&[cout, cin, k], 1);
            let b = randn(&[cout], 2);
            let x = randn(&[1, cin, len], 3);
            let pad = (k - 1) * d / 2;
            let ours = Conv1d::new(w.clone(), Some(b.clone()), pad, d).unwrap().forward(&x).unwrap();
            let theirs = x.conv1d(&w, pad, 1, d, 1).unwrap().broadcast_add(&b.reshape((1, cout, 1)).unwrap()).unwrap();
            assert!(max_diff(&ours, &theirs) < 1e-4, "conv1d {cin} {cout} {k} {d} {len}");
        }
        for (cin, cout, k, s, len) in [(4, 3, 16, 8, 9), (4, 3, 4, 2, 30), (2, 5, 7, 3, 11), (3, 2, 3, 3, 5)] {
            let w = randn(&[cin, cout, k], 4);
            let b = randn(&[cout], 5);
            let x = randn(&[1, cin, len], 6);
            let pad = (k - s) / 2;
            let map = HashMap::from([("weight".to_owned(), w.clone()), ("bias".to_owned(), b.clone())]);
            let vb = VarBuilder::from_tensors(map, DType::F32, &Device::Cpu);
            let ours = ConvTranspose1d::new(vb, cin, cout, k, s, pad).unwrap().forward(&x).unwrap();
            let theirs = x.conv_transpose1d(&w, pad, 0, s, 1, 1).unwrap();
            let theirs = theirs.broadcast_add(&b.reshape((1, cout, 1)).unwrap()).unwrap();
            assert!(max_diff(&ours, &theirs) < 1e-4, "conv_transpose1d {cin} {cout} {k} {s} {len}");
        }
    }

    #[test]
    fn leaky_relu_matches_the_definition() {
        let x = Tensor::new(&[-2f32, 0., 3.], &Device::Cpu).unwrap();
        assert_eq!(leaky_relu(&x, 0.1).unwrap().to_vec1::<f32>().unwrap(), vec![-0.2, 0., 3.]);
    }
}
