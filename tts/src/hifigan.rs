//! The HiFi-GAN generator (`decoder.*`): latents → waveform. A 7-tap input convolution, then per stage a leaky
//! ReLU, a transposed convolution that upsamples by the stage's rate and the average of the multi-receptive-field
//! residual blocks; a final leaky ReLU (PyTorch's default slope 0.01, not the configured one), a 7-tap
//! convolution to one channel and tanh.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::config::VitsConfig;
use crate::layers::{conv1d, conv1d_same, leaky_relu, Conv1d, ConvTranspose1d};

/// Slope of the last leaky ReLU, `nn.functional.leaky_relu`'s default.
const FINAL_SLOPE: f64 = 0.01;

#[derive(Debug, Clone)]
struct ResidualBlock {
    /// `(convs1[i], convs2[i])`: dilated, then undilated.
    convs: Vec<(Conv1d, Conv1d)>,
    slope: f64,
}

impl ResidualBlock {
    fn new(channels: usize, kernel: usize, dilations: &[usize], slope: f64, vb: VarBuilder) -> Result<Self> {
        let convs = dilations
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                Ok((
                    conv1d_same(vb.pp(format!("convs1.{i}")), channels, channels, kernel, d)?,
                    conv1d_same(vb.pp(format!("convs2.{i}")), channels, channels, kernel, 1)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { convs, slope })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        for (c1, c2) in &self.convs {
            let h = c1.forward(&leaky_relu(&x, self.slope)?)?;
            let h = c2.forward(&leaky_relu(&h, self.slope)?)?;
            x = (h + x)?;
        }
        Ok(x)
    }
}

/// `decoder.*`.
#[derive(Debug, Clone)]
pub struct HifiGan {
    conv_pre: Conv1d,
    upsamplers: Vec<ConvTranspose1d>,
    /// `resblocks[stage]`: one block per configured kernel size.
    resblocks: Vec<Vec<ResidualBlock>>,
    conv_post: Conv1d,
    slope: f64,
}

impl HifiGan {
    pub fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let c0 = cfg.upsample_initial_channel;
        let kernels = cfg.resblock_kernel_sizes.len();
        let mut upsamplers = Vec::new();
        let mut resblocks = Vec::new();
        for (i, (&rate, &k)) in cfg.upsample_rates.iter().zip(&cfg.upsample_kernel_sizes).enumerate() {
            let (cin, cout) = (c0 >> i, c0 >> (i + 1));
            let padding = k.saturating_sub(rate) / 2;
            upsamplers.push(ConvTranspose1d::new(vb.pp(format!("upsampler.{i}")), cin, cout, k, rate, padding)?);
            let blocks = cfg
                .resblock_kernel_sizes
                .iter()
                .zip(&cfg.resblock_dilation_sizes)
                .enumerate()
                .map(|(j, (&rk, dilations))| {
                    let name = format!("resblocks.{}", i * kernels + j);
                    ResidualBlock::new(cout, rk, dilations, cfg.leaky_relu_slope, vb.pp(name))
                })
                .collect::<Result<Vec<_>>>()?;
            resblocks.push(blocks);
        }
        let last = c0 >> cfg.upsample_rates.len();
        Ok(Self {
            conv_pre: conv1d(vb.pp("conv_pre"), cfg.flow_size, c0, 7, 1, 3)?,
            upsamplers,
            resblocks,
            conv_post: Conv1d::new(vb.pp("conv_post").get((1, last, 7), "weight")?, None, 3, 1)?,
            slope: cfg.leaky_relu_slope,
        })
    }

    /// `[1, flow_size, frames]` → `[1, 1, frames · hop]`, in [-1, 1].
    pub fn forward(&self, spectrogram: &Tensor) -> Result<Tensor> {
        let mut x = self.conv_pre.forward(spectrogram)?;
        for (up, blocks) in self.upsamplers.iter().zip(&self.resblocks) {
            x = up.forward(&leaky_relu(&x, self.slope)?)?;
            let mut sum: Option<Tensor> = None;
            for block in blocks {
                let y = block.forward(&x)?;
                sum = Some(match sum {
                    Some(s) => (s + y)?,
                    None => y,
                });
            }
            if let Some(sum) = sum {
                x = (sum / blocks.len() as f64)?;
            }
        }
        self.conv_post.forward(&leaky_relu(&x, FINAL_SLOPE)?)?.tanh()
    }
}
