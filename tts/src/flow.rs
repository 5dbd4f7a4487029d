//! The prior's normalising flow (`flow.*`), run backwards: residual coupling layers whose first half of the
//! channels drives a WaveNet (gated tanh·sigmoid units) that predicts a mean subtracted from the second half
//! (mean-only: the log-scale is zero), with the channel order reversed between layers.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::config::VitsConfig;
use crate::layers::{conv1d, conv1d_same, Conv1d};

/// Non-causal WaveNet without conditioning (`VitsWaveNet` for single-speaker models).
#[derive(Debug, Clone)]
struct WaveNet {
    in_layers: Vec<Conv1d>,
    res_skip_layers: Vec<Conv1d>,
    hidden: usize,
}

impl WaveNet {
    fn new(cfg: &VitsConfig, layers: usize, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        let mut in_layers = Vec::with_capacity(layers);
        let mut res_skip_layers = Vec::with_capacity(layers);
        for i in 0..layers {
            let dilation = cfg.wavenet_dilation_rate.pow(i as u32);
            in_layers.push(conv1d_same(vb.pp(format!("in_layers.{i}")), h, 2 * h, cfg.wavenet_kernel_size, dilation)?);
            // the last layer only feeds the skip sum
            let out = if i + 1 < layers { 2 * h } else { h };
            res_skip_layers.push(conv1d(vb.pp(format!("res_skip_layers.{i}")), h, out, 1, 1, 0)?);
        }
        Ok(Self { in_layers, res_skip_layers, hidden: h })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.hidden;
        let layers = self.in_layers.len();
        let mut x = x.clone();
        let mut skip: Option<Tensor> = None;
        for (i, (in_layer, res_skip)) in self.in_layers.iter().zip(&self.res_skip_layers).enumerate() {
            let a = in_layer.forward(&x)?;
            let acts = (a.narrow(1, 0, h)?.tanh()? * candle_nn::ops::sigmoid(&a.narrow(1, h, h)?)?)?;
            let rs = res_skip.forward(&acts)?;
            let skip_part = if i + 1 < layers {
                x = (x + rs.narrow(1, 0, h)?)?;
                rs.narrow(1, h, h)?
            } else {
                rs
            };
            skip = Some(match skip {
                Some(s) => (s + skip_part)?,
                None => skip_part,
            });
        }
        match skip {
            Some(s) => Ok(s),
            None => x.zeros_like(),
        }
    }
}

#[derive(Debug, Clone)]
struct CouplingLayer {
    conv_pre: Conv1d,
    wavenet: WaveNet,
    conv_post: Conv1d,
    half: usize,
}

impl CouplingLayer {
    fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let half = cfg.flow_size / 2;
        Ok(Self {
            conv_pre: conv1d(vb.pp("conv_pre"), half, cfg.hidden_size, 1, 1, 0)?,
            wavenet: WaveNet::new(cfg, cfg.prior_encoder_num_wavenet_layers, vb.pp("wavenet"))?,
            conv_post: conv1d(vb.pp("conv_post"), cfg.hidden_size, half, 1, 1, 0)?,
            half,
        })
    }

    fn reverse(&self, x: &Tensor) -> Result<Tensor> {
        let first = x.narrow(1, 0, self.half)?;
        let second = x.narrow(1, self.half, self.half)?;
        let mean = self.conv_post.forward(&self.wavenet.forward(&self.conv_pre.forward(&first)?)?)?;
        Tensor::cat(&[&first, &(second - mean)?], 1)
    }
}

/// `flow.*`: the residual coupling block.
#[derive(Debug, Clone)]
pub struct Flow {
    layers: Vec<CouplingLayer>,
    /// Index tensor reversing the channel order.
    flip: Tensor,
}

impl Flow {
    pub fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let layers = (0..cfg.prior_encoder_num_flows)
            .map(|i| CouplingLayer::new(cfg, vb.pp(format!("flows.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let flip: Vec<u32> = (0..cfg.flow_size as u32).rev().collect();
        Ok(Self { layers, flip: Tensor::new(flip.as_slice(), vb.device())? })
    }

    /// Prior latents `[1, flow_size, frames]` → spectrogram-side latents (the decoder's input).
    pub fn reverse(&self, z: &Tensor) -> Result<Tensor> {
        let mut z = z.clone();
        for layer in self.layers.iter().rev() {
            z = layer.reverse(&z.index_select(&self.flip, 1)?)?;
        }
        Ok(z)
    }
}
