//! The text encoder: symbol embeddings scaled by √hidden, post-norm transformer layers whose self-attention adds
//! windowed relative-position terms (`emb_rel_k` to the logits, `emb_rel_v` to the output) and whose
//! feed-forward is a pair of convolutions over time, then a 1×1 projection to the prior's means and
//! log-variances.
//!
//! One utterance at a time: with no padding, every mask of the reference implementation is all ones and is left
//! out here.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{Embedding, LayerNorm, LayerNormConfig, Linear, VarBuilder};

use crate::config::VitsConfig;
use crate::layers::{conv1d, Activation, Conv1d};

/// What the text encoder hands on, all `[1, channels, tokens]`.
#[derive(Debug, Clone)]
pub struct TextEncoding {
    /// The last hidden state (input of the duration predictor).
    pub hidden: Tensor,
    /// Means of the prior, `flow_size` channels.
    pub means: Tensor,
    /// Log-variances of the prior (log standard deviations in the original paper's terms).
    pub log_variances: Tensor,
}

#[derive(Debug, Clone)]
struct RelativeAttention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
    head_dim: usize,
    scaling: f64,
    /// `window`, `emb_rel_k` and `emb_rel_v` (`[2·window + 1, head_dim]`).
    relative: Option<(usize, Tensor, Tensor)>,
}

fn linear(vb: VarBuilder, d: usize, bias: bool) -> Result<Linear> {
    if bias {
        candle_nn::linear(d, d, vb)
    } else {
        candle_nn::linear_no_bias(d, d, vb)
    }
}

impl RelativeAttention {
    fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.hidden_size;
        let heads = cfg.num_attention_heads;
        let head_dim = d / heads;
        let relative = match cfg.window_size {
            Some(w) if w > 0 => {
                let k = vb.get((1, 2 * w + 1, head_dim), "emb_rel_k")?.squeeze(0)?;
                let v = vb.get((1, 2 * w + 1, head_dim), "emb_rel_v")?.squeeze(0)?;
                Some((w, k, v))
            }
            _ => None,
        };
        Ok(Self {
            q: linear(vb.pp("q_proj"), d, cfg.use_bias)?,
            k: linear(vb.pp("k_proj"), d, cfg.use_bias)?,
            v: linear(vb.pp("v_proj"), d, cfg.use_bias)?,
            out: linear(vb.pp("out_proj"), d, cfg.use_bias)?,
            heads,
            head_dim,
            scaling: (head_dim as f64).powf(-0.5),
            relative,
        })
    }

    /// `x`: `[1, T, D]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let (h, dh) = (self.heads, self.head_dim);
        let split = |y: Tensor| y.reshape((b, t, h, dh))?.transpose(1, 2)?.contiguous()?.reshape((b * h, t, dh));
        let q = split((self.q.forward(x)? * self.scaling)?)?;
        let k = split(self.k.forward(x)?)?;
        let v = split(self.v.forward(x)?)?;
        let mut scores = q.matmul(&k.t()?)?;
        if let Some((w, rel_k, _)) = &self.relative {
            let rel_k = window_embeddings(rel_k, *w, t)?;
            // every head shares the embeddings: one [B·H·T, dh] × [dh, 2T-1] product
            let logits = q.reshape((b * h * t, dh))?.matmul(&rel_k.t()?)?.reshape((b * h, t, 2 * t - 1))?;
            scores = (scores + relative_to_absolute(&logits)?)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let mut out = probs.matmul(&v)?;
        if let Some((w, _, rel_v)) = &self.relative {
            let rel_v = window_embeddings(rel_v, *w, t)?;
            let weights = absolute_to_relative(&probs)?.reshape((b * h * t, 2 * t - 1))?;
            out = (out + weights.matmul(&rel_v)?.reshape((b * h, t, dh))?)?;
        }
        let out = out.reshape((b, h, t, dh))?.transpose(1, 2)?.reshape((b, t, d))?;
        self.out.forward(&out)
    }
}

/// The `2T - 1` relative-position embeddings for offsets `-(T-1)..=T-1` from the `2w + 1` learnt ones (offsets
/// beyond the window get zeros).
fn window_embeddings(emb: &Tensor, window: usize, t: usize) -> Result<Tensor> {
    let pad = t.saturating_sub(window + 1);
    let emb = emb.pad_with_zeros(0, pad, pad)?;
    let start = (window + 1).saturating_sub(t);
    emb.narrow(0, start, 2 * t - 1)?.contiguous()
}

/// `[B, T, 2T-1]` logits indexed by relative offset → `[B, T, T]` indexed by key position, with the pad-and-reshape
/// trick of the reference implementation.
fn relative_to_absolute(x: &Tensor) -> Result<Tensor> {
    let (b, t, _) = x.dims3()?;
    let x = x.pad_with_zeros(D::Minus1, 0, 1)?.reshape((b, 2 * t * t))?;
    let x = x.pad_with_zeros(D::Minus1, 0, t - 1)?.reshape((b, t + 1, 2 * t - 1))?;
    x.narrow(1, 0, t)?.narrow(2, t - 1, t)
}

/// The inverse of [`relative_to_absolute`]: `[B, T, T]` → `[B, T, 2T-1]`.
fn absolute_to_relative(x: &Tensor) -> Result<Tensor> {
    let (b, t, _) = x.dims3()?;
    let x = x.pad_with_zeros(D::Minus1, 0, t - 1)?.reshape((b, t * (2 * t - 1)))?;
    let x = x.pad_with_zeros(D::Minus1, t, 0)?.reshape((b, t, 2 * t))?;
    x.narrow(2, 1, 2 * t - 1)
}

/// Two convolutions over time with the activation between; `(k-1)/2` zeros on the left and `k/2` on the right
/// keep the length for even kernels too.
#[derive(Debug, Clone)]
struct FeedForward {
    conv_1: Conv1d,
    conv_2: Conv1d,
    act: Activation,
    pad: (usize, usize),
}

impl FeedForward {
    fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let k = cfg.ffn_kernel_size;
        let act = Activation::from_name(&cfg.hidden_act)
            .ok_or_else(|| candle_core::Error::Msg(format!("hidden_act {}", cfg.hidden_act)))?;
        Ok(Self {
            conv_1: conv1d(vb.pp("conv_1"), cfg.hidden_size, cfg.ffn_dim, k, 1, 0)?,
            conv_2: conv1d(vb.pp("conv_2"), cfg.ffn_dim, cfg.hidden_size, k, 1, 0)?,
            act,
            pad: ((k - 1) / 2, k / 2),
        })
    }

    /// `x`: `[1, T, D]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (l, r) = self.pad;
        let x = x.transpose(1, 2)?.pad_with_zeros(D::Minus1, l, r)?;
        let x = self.act.apply(&self.conv_1.forward(&x)?)?;
        let x = self.conv_2.forward(&x.pad_with_zeros(D::Minus1, l, r)?)?;
        x.transpose(1, 2)
    }
}

#[derive(Debug, Clone)]
struct EncoderLayer {
    attention: RelativeAttention,
    layer_norm: LayerNorm,
    feed_forward: FeedForward,
    final_layer_norm: LayerNorm,
}

impl EncoderLayer {
    fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let ln = LayerNormConfig { eps: cfg.layer_norm_eps, ..Default::default() };
        Ok(Self {
            attention: RelativeAttention::new(cfg, vb.pp("attention"))?,
            layer_norm: candle_nn::layer_norm(cfg.hidden_size, ln, vb.pp("layer_norm"))?,
            feed_forward: FeedForward::new(cfg, vb.pp("feed_forward"))?,
            final_layer_norm: candle_nn::layer_norm(cfg.hidden_size, ln, vb.pp("final_layer_norm"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.layer_norm.forward(&(x + self.attention.forward(x)?)?)?;
        self.final_layer_norm.forward(&(&x + self.feed_forward.forward(&x)?)?)
    }
}

/// `text_encoder.*`.
#[derive(Debug, Clone)]
pub struct TextEncoder {
    embed_tokens: Embedding,
    layers: Vec<EncoderLayer>,
    project: Conv1d,
    embed_scale: f64,
    flow_size: usize,
}

impl TextEncoder {
    pub fn new(cfg: &VitsConfig, vb: VarBuilder) -> Result<Self> {
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| EncoderLayer::new(cfg, vb.pp(format!("encoder.layers.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embed_tokens: candle_nn::embedding(cfg.vocab_size, cfg.hidden_size, vb.pp("embed_tokens"))?,
            layers,
            project: conv1d(vb.pp("project"), cfg.hidden_size, 2 * cfg.flow_size, 1, 1, 0)?,
            embed_scale: (cfg.hidden_size as f64).sqrt(),
            flow_size: cfg.flow_size,
        })
    }

    /// `ids`: `[1, T]` (u32).
    pub fn forward(&self, ids: &Tensor) -> Result<TextEncoding> {
        let mut x = (self.embed_tokens.forward(ids)? * self.embed_scale)?;
        for layer in &self.layers {
            x = layer.forward(&x)?;
        }
        let hidden = x.transpose(1, 2)?.contiguous()?;
        let stats = self.project.forward(&hidden)?;
        Ok(TextEncoding {
            means: stats.narrow(1, 0, self.flow_size)?,
            log_variances: stats.narrow(1, self.flow_size, self.flow_size)?,
            hidden,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn relative_and_absolute_indexing_agree() {
        // rel[i][j - i + T - 1] == abs[i][j]
        let t = 4;
        let rel = Tensor::arange(0f32, (t * (2 * t - 1)) as f32, &Device::Cpu).unwrap().reshape((1, t, 2 * t - 1));
        let rel = rel.unwrap();
        let abs = relative_to_absolute(&rel).unwrap().squeeze(0).unwrap().to_vec2::<f32>().unwrap();
        let r = rel.squeeze(0).unwrap().to_vec2::<f32>().unwrap();
        for i in 0..t {
            for j in 0..t {
                assert_eq!(abs[i][j], r[i][j + t - 1 - i]);
            }
        }
        // and back: entries outside the band are zero
        let back = absolute_to_relative(&relative_to_absolute(&rel).unwrap()).unwrap();
        let back = back.squeeze(0).unwrap().to_vec2::<f32>().unwrap();
        for i in 0..t {
            for o in 0..2 * t - 1 {
                let j = o as isize - (t as isize - 1) + i as isize;
                let expect = if (0..t as isize).contains(&j) { r[i][o] } else { 0. };
                assert_eq!(back[i][o], expect);
            }
        }
    }

    #[test]
    fn window_embeddings_pad_or_crop() {
        let emb = Tensor::arange(1f32, 6., &Device::Cpu).unwrap().reshape((5, 1)).unwrap(); // window 2
        let long = window_embeddings(&emb, 2, 5).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(long, vec![0., 0., 1., 2., 3., 4., 5., 0., 0.]);
        let short = window_embeddings(&emb, 2, 2).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(short, vec![2., 3., 4.]);
    }
}
