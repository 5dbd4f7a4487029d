//! Duration predictors: log-durations (in spectrogram frames) of each input symbol from the text encoder's
//! hidden state.
//!
//! - [`StochasticDurationPredictor`] (VITS' default) runs a normalising flow backwards: noise `[2, T]` through
//!   an element-wise affine flow and rational-quadratic spline flows conditioned on the text, built from dilated
//!   depth-separable convolutions. At inference the reference skips the first spline flow, and so does this.
//! - [`PlainDurationPredictor`] is two convolutions with ReLU and layer norm, deterministic.

use candle_core::{Device, Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::config::VitsConfig;
use crate::layers::{conv1d, conv1d_same, ChannelNorm, Conv1d, DepthwiseConv1d};
use crate::spline;

/// Dilated depth-separable convolutions: per layer a depthwise convolution (dilation `k^i`), layer norm, GELU, a
/// pointwise convolution, layer norm, GELU, added to the input.
#[derive(Debug, Clone)]
struct DilatedDepthSeparable {
    layers: Vec<(DepthwiseConv1d, ChannelNorm, Conv1d, ChannelNorm)>,
}

impl DilatedDepthSeparable {
    fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let (c, k) = (cfg.hidden_size, cfg.duration_predictor_kernel_size);
        let layers = (0..cfg.depth_separable_num_layers)
            .map(|i| {
                let dilation = k.pow(i as u32);
                Ok((
                    DepthwiseConv1d::new(vb.pp(format!("convs_dilated.{i}")), c, k, dilation)?,
                    // nn.LayerNorm's default eps, not config.layer_norm_eps
                    ChannelNorm::new(vb.pp(format!("norms_1.{i}")), c, 1e-5)?,
                    conv1d(vb.pp(format!("convs_pointwise.{i}")), c, c, 1, 1, 0)?,
                    ChannelNorm::new(vb.pp(format!("norms_2.{i}")), c, 1e-5)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers })
    }

    fn forward(&self, x: &Tensor, condition: Option<&Tensor>) -> Result<Tensor> {
        let mut x = match condition {
            Some(c) => (x + c)?,
            None => x.clone(),
        };
        for (dilated, norm_1, pointwise, norm_2) in &self.layers {
            let h = norm_1.forward(&dilated.forward(&x)?)?.gelu_erf()?;
            let h = norm_2.forward(&pointwise.forward(&h)?)?.gelu_erf()?;
            x = (x + h)?;
        }
        Ok(x)
    }
}

/// `(z - translate) · exp(-log_scale)`: the element-wise affine flow, backwards.
#[derive(Debug, Clone)]
struct ElementwiseAffine {
    translate: Tensor,
    inverse_scale: Tensor,
}

impl ElementwiseAffine {
    fn new(channels: usize, vb: VarBuilder) -> Result<Self> {
        let translate = vb.get((channels, 1), "translate")?.unsqueeze(0)?;
        let inverse_scale = vb.get((channels, 1), "log_scale")?.neg()?.exp()?.unsqueeze(0)?;
        Ok(Self { translate, inverse_scale })
    }

    fn reverse(&self, z: &Tensor) -> Result<Tensor> {
        z.broadcast_sub(&self.translate)?.broadcast_mul(&self.inverse_scale)
    }
}

/// A spline coupling flow: the first channel conditions the spline applied to the second.
#[derive(Debug, Clone)]
struct ConvFlow {
    conv_pre: Conv1d,
    conv_dds: DilatedDepthSeparable,
    conv_proj: Conv1d,
    bins: usize,
    /// √filter_channels, which widths and heights are divided by.
    param_scale: f32,
    tail_bound: f32,
}

impl ConvFlow {
    fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let filter = cfg.hidden_size;
        let bins = cfg.duration_predictor_flow_bins;
        Ok(Self {
            conv_pre: conv1d(vb.pp("conv_pre"), 1, filter, 1, 1, 0)?,
            conv_dds: DilatedDepthSeparable::new(cfg, vb.pp("conv_dds"))?,
            conv_proj: conv1d(vb.pp("conv_proj"), filter, 3 * bins - 1, 1, 1, 0)?,
            bins,
            param_scale: (filter as f64).sqrt() as f32,
            tail_bound: cfg.duration_predictor_tail_bound as f32,
        })
    }

    /// `z`: `[1, 2, T]`; `condition`: the projected text hidden state `[1, hidden, T]`.
    fn reverse(&self, z: &Tensor, condition: &Tensor) -> Result<Tensor> {
        let first = z.narrow(1, 0, 1)?;
        let second = z.narrow(1, 1, 1)?;
        let h = self.conv_pre.forward(&first)?;
        let h = self.conv_dds.forward(&h, Some(condition))?;
        // [1, 3n-1, T] → per token the n widths, n heights and n-1 inner derivatives
        let params = self.conv_proj.forward(&h)?.squeeze(0)?.t()?.to_device(&Device::Cpu)?.to_vec2::<f32>()?;
        let ys = second.flatten_all()?.to_device(&Device::Cpu)?.to_vec1::<f32>()?;
        let n = self.bins;
        let xs: Vec<f32> = ys
            .iter()
            .zip(&params)
            .map(|(&y, p)| {
                let widths: Vec<f32> = p[..n].iter().map(|v| v / self.param_scale).collect();
                let heights: Vec<f32> = p[n..2 * n].iter().map(|v| v / self.param_scale).collect();
                spline::inverse(y, &widths, &heights, &p[2 * n..], self.tail_bound)
            })
            .collect();
        let len = xs.len();
        let second = Tensor::from_vec(xs, (1, 1, len), z.device())?;
        Tensor::cat(&[&first, &second], 1)
    }
}

/// `duration_predictor.*` with `use_stochastic_duration_prediction`.
#[derive(Debug, Clone)]
pub struct StochasticDurationPredictor {
    conv_pre: Conv1d,
    conv_dds: DilatedDepthSeparable,
    conv_proj: Conv1d,
    affine: ElementwiseAffine,
    /// The spline flows used at inference, in the order they run: `flows.N` down to `flows.2` (`flows.0` is the
    /// affine flow, `flows.1` is the one inference skips).
    flows: Vec<ConvFlow>,
    /// Index tensor that swaps the two latent channels.
    swap: Tensor,
}

impl StochasticDurationPredictor {
    pub fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let c = cfg.hidden_size;
        let flows = (2..=cfg.duration_predictor_num_flows)
            .rev()
            .map(|i| ConvFlow::new(cfg, vb.pp(format!("flows.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            conv_pre: conv1d(vb.pp("conv_pre"), c, c, 1, 1, 0)?,
            conv_dds: DilatedDepthSeparable::new(cfg, vb.pp("conv_dds"))?,
            conv_proj: conv1d(vb.pp("conv_proj"), c, c, 1, 1, 0)?,
            affine: ElementwiseAffine::new(cfg.depth_separable_channels, vb.pp("flows.0"))?,
            flows,
            swap: Tensor::new(&[1u32, 0], vb.device())?,
        })
    }

    /// Log-durations `[T]` for the hidden state `[1, hidden, T]`; `noise` is `[1, 2, T]` standard normal noise,
    /// already multiplied by the noise scale.
    pub fn forward(&self, hidden: &Tensor, noise: &Tensor) -> Result<Tensor> {
        let x = self.conv_pre.forward(hidden)?;
        let x = self.conv_dds.forward(&x, None)?;
        let condition = self.conv_proj.forward(&x)?;
        let mut z = noise.clone();
        for flow in &self.flows {
            z = flow.reverse(&z.index_select(&self.swap, 1)?, &condition)?;
        }
        let z = self.affine.reverse(&z.index_select(&self.swap, 1)?)?;
        z.narrow(1, 0, 1)?.flatten_all()
    }
}

/// `duration_predictor.*` without `use_stochastic_duration_prediction`.
#[derive(Debug, Clone)]
pub struct PlainDurationPredictor {
    conv_1: Conv1d,
    norm_1: ChannelNorm,
    conv_2: Conv1d,
    norm_2: ChannelNorm,
    proj: Conv1d,
}

impl PlainDurationPredictor {
    pub fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let (k, f, eps) =
            (cfg.duration_predictor_kernel_size, cfg.duration_predictor_filter_channels, cfg.layer_norm_eps);
        Ok(Self {
            conv_1: conv1d_same(vb.pp("conv_1"), cfg.hidden_size, f, k, 1)?,
            norm_1: ChannelNorm::new(vb.pp("norm_1"), f, eps)?,
            conv_2: conv1d_same(vb.pp("conv_2"), f, f, k, 1)?,
            norm_2: ChannelNorm::new(vb.pp("norm_2"), f, eps)?,
            proj: conv1d(vb.pp("proj"), f, 1, 1, 1, 0)?,
        })
    }

    /// Log-durations `[T]` for the hidden state `[1, hidden, T]`.
    pub fn forward(&self, hidden: &Tensor) -> Result<Tensor> {
        let x = self.norm_1.forward(&self.conv_1.forward(hidden)?.relu()?)?;
        let x = self.norm_2.forward(&self.conv_2.forward(&x)?.relu()?)?;
        self.proj.forward(&x)?.flatten_all()
    }
}

/// Either predictor.
#[derive(Debug, Clone)]
pub enum DurationPredictor {
    Stochastic(StochasticDurationPredictor),
    Plain(PlainDurationPredictor),
}

impl DurationPredictor {
    pub fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        Ok(if cfg.use_stochastic_duration_prediction {
            Self::Stochastic(StochasticDurationPredictor::new(cfg, vb)?)
        } else {
            Self::Plain(PlainDurationPredictor::new(cfg, vb)?)
        })
    }
}

/// Frames per symbol: `ceil(exp(logw) · length_scale)`, computed in f32 as the reference does.
pub fn durations(log_durations: &[f32], length_scale: f32) -> Vec<f32> {
    log_durations.iter().map(|l| (l.exp() * length_scale).ceil()).collect()
}
