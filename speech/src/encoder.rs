//! NeMo's FastConformer encoder (`ConformerEncoder` with `dw_striding` subsampling and `rel_pos` attention)
//! for inference: batch size 1, full context.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{LayerNorm, Linear, VarBuilder};

use crate::config::EncoderConfig;
use crate::error::Result;

/// NeMo masks attention scores with this value (not -inf).
const MASK_VALUE: f64 = -10000.0;

fn linear(vb: &VarBuilder, din: usize, dout: usize, bias: bool) -> Result<Linear> {
    let w = vb.get((dout, din), "weight")?;
    let b = if bias { Some(vb.get(dout, "bias")?) } else { None };
    Ok(Linear::new(w, b))
}

fn layer_norm(vb: &VarBuilder, d: usize) -> Result<LayerNorm> {
    Ok(LayerNorm::new(vb.get(d, "weight")?, vb.get(d, "bias")?, 1e-5))
}

/// Depthwise convolution along one axis of `x` (`axis` is time for `[.., T, C]` layouts): zero padding
/// `pad`, stride `stride`, kernel taps `w` of shape `[C, K]` broadcast over the last dimension. Written as
/// K shifted multiply-adds because candle runs grouped convolutions as one convolution per group.
fn strided_taps(x: &Tensor, axis: usize, k: usize, pad: usize, stride: usize) -> Result<(Vec<Tensor>, usize)> {
    let len = x.dim(axis)?;
    let out_len = (len + 2 * pad - k) / stride + 1;
    // one extra zero row so every tap can take `stride * out_len` rows before subsampling
    let xp = x.pad_with_zeros(axis, pad, pad + stride)?;
    let mut taps = Vec::with_capacity(k);
    for a in 0..k {
        let t = xp.narrow(axis, a, stride * out_len)?;
        let t = if stride == 1 {
            t
        } else {
            let mut shape = t.dims().to_vec();
            shape[axis] = out_len;
            shape.insert(axis + 1, stride);
            t.reshape(shape)?.narrow(axis + 1, 0, 1)?.squeeze(axis + 1)?
        };
        taps.push(t);
    }
    Ok((taps, out_len))
}

/// `ConvSubsampling` with `dw_striding`: Conv2d(1→C, 3, s2) + ReLU, then (depthwise 3×3 s2, pointwise 1×1,
/// ReLU) until the factor is reached, then a Linear from C·F' to d_model.
struct Subsampling {
    first_w: Tensor,
    first_b: Tensor,
    stages: Vec<(Tensor, Tensor, Tensor, Tensor)>, // dw weight [C,3,3], dw bias, pw weight [C,C], pw bias
    out: Linear,
    stages_total: usize,
}

impl Subsampling {
    fn new(cfg: &EncoderConfig, vb: VarBuilder) -> Result<Self> {
        let c = cfg.conv_channels();
        let n = cfg.subsampling_factor.trailing_zeros() as usize;
        let conv = vb.pp("conv");
        let first_w = conv.get((c, 1, 3, 3), "0.weight")?;
        let first_b = conv.get(c, "0.bias")?;
        let mut stages = Vec::new();
        for i in 1..n {
            let (dw, pw) = (2 + 3 * (i - 1), 3 + 3 * (i - 1));
            stages.push((
                conv.get((c, 1, 3, 3), &format!("{dw}.weight"))?.reshape((c, 3, 3))?,
                conv.get(c, &format!("{dw}.bias"))?,
                conv.get((c, c, 1, 1), &format!("{pw}.weight"))?.reshape((c, c))?,
                conv.get(c, &format!("{pw}.bias"))?,
            ));
        }
        let f_out = cfg.feat_in >> n;
        let out = linear(&vb.pp("out"), c * f_out, cfg.d_model, true)?;
        Ok(Self { first_w, first_b, stages, out, stages_total: n })
    }

    /// NeMo's `calc_length`: each stage maps L to floor((L + 2 - 3) / 2) + 1.
    fn out_len(&self, mut len: usize) -> usize {
        for _ in 0..self.stages_total {
            len = (len + 2 - 3) / 2 + 1;
        }
        len
    }

    /// `mel`: `[1, F, T]` → `[1, T', d_model]`.
    fn forward(&self, mel: &Tensor) -> Result<Tensor> {
        let x = mel.transpose(1, 2)?.unsqueeze(1)?; // [1, 1, T, F]
        let x = x.conv2d(&self.first_w, 1, 2, 1, 1)?;
        let mut x = x.broadcast_add(&self.first_b.reshape((1, (), 1, 1))?)?.relu()?;
        for (dw_w, dw_b, pw_w, pw_b) in &self.stages {
            let c = dw_w.dim(0)?;
            // depthwise 3x3 stride 2 over [1, C, T, F]: taps over T, then over F
            let (rows, _) = strided_taps(&x, 2, 3, 1, 2)?;
            let mut acc: Option<Tensor> = None;
            for (a, r) in rows.iter().enumerate() {
                let (cols, _) = strided_taps(r, 3, 3, 1, 2)?;
                for (b, col) in cols.iter().enumerate() {
                    let w = dw_w.narrow(1, a, 1)?.narrow(2, b, 1)?.reshape((1, c, 1, 1))?;
                    let term = col.broadcast_mul(&w)?;
                    acc = Some(match acc {
                        Some(s) => (s + term)?,
                        None => term,
                    });
                }
            }
            let y = acc.expect("3x3 kernel").broadcast_add(&dw_b.reshape((1, c, 1, 1))?)?;
            // pointwise 1x1: channels mixed with a matmul over [T*F, C]
            let (_, _, t, f) = y.dims4()?;
            let y = y.reshape((c, t * f))?.t()?.matmul(&pw_w.t()?)?.broadcast_add(pw_b)?; // [T*F, C]
            x = y.t()?.reshape((1, c, t, f))?.relu()?;
        }
        let (_, c, t, f) = x.dims4()?;
        let x = x.transpose(1, 2)?.reshape((1, t, c * f))?;
        Ok(self.out.forward(&x)?)
    }
}

/// Transformer-XL relative positions `L-1 .. -(L-1)` as NeMo's `RelPositionalEncoding` builds them (f32).
fn rel_positions(len: usize, d_model: usize, device: &Device) -> Result<Tensor> {
    let scale = -(10000f64.ln() / d_model as f64) as f32;
    let div: Vec<f32> = (0..d_model).step_by(2).map(|i| (i as f32 * scale).exp()).collect();
    let n = 2 * len - 1;
    let mut pe = vec![0f32; n * d_model];
    for (row, p) in pe.chunks_mut(d_model).zip((0..n).map(|i| (len as f32 - 1.0) - i as f32)) {
        for (j, d) in div.iter().enumerate() {
            let arg = p * d;
            row[2 * j] = arg.sin();
            if 2 * j + 1 < d_model {
                row[2 * j + 1] = arg.cos();
            }
        }
    }
    Ok(Tensor::from_vec(pe, (1, n, d_model), device)?)
}

struct FeedForward {
    linear1: Linear,
    linear2: Linear,
}

impl FeedForward {
    fn new(cfg: &EncoderConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.d_model;
        let h = d * cfg.ff_expansion_factor;
        Ok(Self {
            linear1: linear(&vb.pp("linear1"), d, h, cfg.use_bias)?,
            linear2: linear(&vb.pp("linear2"), h, d, cfg.use_bias)?,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.linear2.forward(&candle_nn::ops::silu(&self.linear1.forward(x)?)?)?)
    }
}

struct RelPosAttention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    pos: Linear,
    bias_u: Tensor, // [H, dk]
    bias_v: Tensor,
    heads: usize,
}

impl RelPosAttention {
    fn new(cfg: &EncoderConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.d_model;
        let b = cfg.use_bias;
        let dk = d / cfg.n_heads;
        Ok(Self {
            q: linear(&vb.pp("linear_q"), d, d, b)?,
            k: linear(&vb.pp("linear_k"), d, d, b)?,
            v: linear(&vb.pp("linear_v"), d, d, b)?,
            out: linear(&vb.pp("linear_out"), d, d, b)?,
            pos: linear(&vb.pp("linear_pos"), d, d, false)?,
            bias_u: vb.get((cfg.n_heads, dk), "pos_bias_u")?,
            bias_v: vb.get((cfg.n_heads, dk), "pos_bias_v")?,
            heads: cfg.n_heads,
        })
    }

    /// `x`: `[1, T, D]`, `pos`: `[1, 2T-1, D]`, `mask`: `[T, T]` additive-style boolean (1 = masked) or None.
    fn forward(&self, x: &Tensor, pos: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (_, t, d) = x.dims3()?;
        let h = self.heads;
        let dk = d / h;
        let q = self.q.forward(x)?.reshape((1, t, h, dk))?;
        let k = self.k.forward(x)?.reshape((1, t, h, dk))?.transpose(1, 2)?.contiguous()?;
        let v = self.v.forward(x)?.reshape((1, t, h, dk))?.transpose(1, 2)?.contiguous()?;
        let p = self.pos.forward(pos)?.reshape((1, 2 * t - 1, h, dk))?.transpose(1, 2)?.contiguous()?;
        let q_u = q.broadcast_add(&self.bias_u)?.transpose(1, 2)?.contiguous()?;
        let q_v = q.broadcast_add(&self.bias_v)?.transpose(1, 2)?.contiguous()?;
        let ac = q_u.matmul(&k.t()?)?; // [1, H, T, T]
        let bd = q_v.matmul(&p.t()?)?; // [1, H, T, 2T-1]
                                       // rel_shift: row i takes columns (T-1-i)..(2T-1-i), i.e. relative position i - j
        let bd = bd
            .pad_with_zeros(3, 1, 0)?
            .reshape((1, h, 2 * t, t))?
            .narrow(2, 1, 2 * t - 1)?
            .reshape((1, h, t, 2 * t - 1))?
            .narrow(3, 0, t)?;
        let scores = ((ac + bd)? / (dk as f64).sqrt())?;
        let attn = match mask {
            None => candle_nn::ops::softmax_last_dim(&scores)?,
            Some(m) => {
                let m = m.broadcast_as(scores.shape())?;
                let fill = Tensor::full(MASK_VALUE as f32, scores.shape(), scores.device())?;
                let a = candle_nn::ops::softmax_last_dim(&m.where_cond(&fill, &scores)?)?;
                m.where_cond(&a.zeros_like()?, &a)?
            }
        };
        let o = attn.matmul(&v)?.transpose(1, 2)?.reshape((1, t, d))?;
        Ok(self.out.forward(&o)?)
    }
}

struct ConvModule {
    pw1: Linear,
    dw: Tensor, // [K, D]
    dw_b: Option<Tensor>,
    bn_scale: Tensor,
    bn_shift: Tensor,
    pw2: Linear,
    kernel: usize,
}

impl ConvModule {
    fn new(cfg: &EncoderConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.d_model;
        let k = cfg.conv_kernel_size;
        let b = cfg.use_bias;
        let pw = |name: &str, dout: usize| -> Result<Linear> {
            let w = vb.get((dout, d, 1), &format!("{name}.weight"))?.squeeze(2)?;
            let bias = if b { Some(vb.get(dout, &format!("{name}.bias"))?) } else { None };
            Ok(Linear::new(w, bias))
        };
        let bn = vb.pp("batch_norm");
        let var = bn.get(d, "running_var")?;
        let scale = bn.get(d, "weight")?.div(&(var + 1e-5)?.sqrt()?)?;
        let shift = (bn.get(d, "bias")? - bn.get(d, "running_mean")?.mul(&scale)?)?;
        Ok(Self {
            pw1: pw("pointwise_conv1", 2 * d)?,
            dw: vb.get((d, 1, k), "depthwise_conv.weight")?.squeeze(1)?.t()?.contiguous()?,
            dw_b: if b { Some(vb.get(d, "depthwise_conv.bias")?) } else { None },
            bn_scale: scale,
            bn_shift: shift,
            pw2: pw("pointwise_conv2", d)?,
            kernel: k,
        })
    }

    /// `x`: `[1, T, D]`; `keep`: `[1, T, 1]` 1/0 for valid/padded frames, or None when all are valid.
    fn forward(&self, x: &Tensor, keep: Option<&Tensor>) -> Result<Tensor> {
        let d = x.dim(2)?;
        let y = self.pw1.forward(x)?;
        let y = y.narrow(2, 0, d)?.mul(&candle_nn::ops::sigmoid(&y.narrow(2, d, d)?)?)?; // GLU
        let y = match keep {
            Some(k) => y.broadcast_mul(k)?,
            None => y,
        };
        let pad = (self.kernel - 1) / 2;
        let (taps, _) = strided_taps(&y, 1, self.kernel, pad, 1)?;
        let mut acc = taps[0].broadcast_mul(&self.dw.get(0)?)?;
        for (i, tap) in taps.iter().enumerate().skip(1) {
            acc = (acc + tap.broadcast_mul(&self.dw.get(i)?)?)?;
        }
        if let Some(b) = &self.dw_b {
            acc = acc.broadcast_add(b)?;
        }
        let y = acc.broadcast_mul(&self.bn_scale)?.broadcast_add(&self.bn_shift)?;
        Ok(self.pw2.forward(&candle_nn::ops::silu(&y)?)?)
    }
}

struct ConformerLayer {
    norm_ff1: LayerNorm,
    ff1: FeedForward,
    norm_att: LayerNorm,
    att: RelPosAttention,
    norm_conv: LayerNorm,
    conv: ConvModule,
    norm_ff2: LayerNorm,
    ff2: FeedForward,
    norm_out: LayerNorm,
}

impl ConformerLayer {
    fn new(cfg: &EncoderConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.d_model;
        Ok(Self {
            norm_ff1: layer_norm(&vb.pp("norm_feed_forward1"), d)?,
            ff1: FeedForward::new(cfg, vb.pp("feed_forward1"))?,
            norm_att: layer_norm(&vb.pp("norm_self_att"), d)?,
            att: RelPosAttention::new(cfg, vb.pp("self_attn"))?,
            norm_conv: layer_norm(&vb.pp("norm_conv"), d)?,
            conv: ConvModule::new(cfg, vb.pp("conv"))?,
            norm_ff2: layer_norm(&vb.pp("norm_feed_forward2"), d)?,
            ff2: FeedForward::new(cfg, vb.pp("feed_forward2"))?,
            norm_out: layer_norm(&vb.pp("norm_out"), d)?,
        })
    }

    fn forward(&self, x: &Tensor, pos: &Tensor, mask: Option<&Tensor>, keep: Option<&Tensor>) -> Result<Tensor> {
        let x = (x + (self.ff1.forward(&self.norm_ff1.forward(x)?)? * 0.5)?)?;
        let x = (&x + self.att.forward(&self.norm_att.forward(&x)?, pos, mask)?)?;
        let x = (&x + self.conv.forward(&self.norm_conv.forward(&x)?, keep)?)?;
        let x = (&x + (self.ff2.forward(&self.norm_ff2.forward(&x)?)? * 0.5)?)?;
        Ok(self.norm_out.forward(&x)?)
    }
}

pub struct Encoder {
    subsampling: Subsampling,
    layers: Vec<ConformerLayer>,
    xscale: Option<f64>,
    d_model: usize,
}

impl Encoder {
    /// `vb` points at the `encoder.` weights.
    pub fn new(cfg: &EncoderConfig, vb: VarBuilder) -> Result<Self> {
        let subsampling = Subsampling::new(cfg, vb.pp("pre_encode"))?;
        let layers =
            (0..cfg.n_layers).map(|i| ConformerLayer::new(cfg, vb.pp(format!("layers.{i}")))).collect::<Result<_>>()?;
        let xscale = cfg.xscaling.then(|| (cfg.d_model as f64).sqrt());
        Ok(Self { subsampling, layers, xscale, d_model: cfg.d_model })
    }

    /// Encoder frames for `mel_valid` valid mel frames.
    pub fn out_len(&self, mel_valid: usize) -> usize {
        self.subsampling.out_len(mel_valid)
    }

    pub fn set_xscaling(&mut self, on: bool) {
        self.xscale = on.then(|| (self.d_model as f64).sqrt());
    }

    /// The subsampling front (`pre_encode`) alone: `[1, F, T]` → `[1, T', D]`. Local in time, so chunked and
    /// whole outputs agree away from chunk edges (what the chunking tests check).
    pub fn subsample(&self, mel: &Tensor) -> Result<Tensor> {
        self.subsampling.forward(mel)
    }

    /// `mel`: `[1, F, T]` with `mel_valid` valid frames → (`[1, T', D]`, valid encoder frames).
    pub fn forward(&self, mel: &Tensor, mel_valid: usize) -> Result<(Tensor, usize)> {
        let mut x = self.subsampling.forward(mel)?;
        let t = x.dim(1)?;
        let valid = self.out_len(mel_valid).min(t);
        if let Some(s) = self.xscale {
            x = (x * s)?;
        }
        let device = x.device().clone();
        let pos = rel_positions(t, self.d_model, &device)?;
        let (mask, keep) = if valid < t {
            let keep: Vec<f32> = (0..t).map(|i| if i < valid { 1.0 } else { 0.0 }).collect();
            let keep = Tensor::from_vec(keep, (1, t, 1), &device)?;
            let masked: Vec<u8> = (0..t * t).map(|i| u8::from(i / t >= valid || i % t >= valid)).collect();
            (Some(Tensor::from_vec(masked, (t, t), &device)?), Some(keep))
        } else {
            (None, None)
        };
        for layer in &self.layers {
            x = layer.forward(&x, &pos, mask.as_ref(), keep.as_ref())?;
        }
        Ok((x, valid))
    }
}

/// The dtype every weight is loaded in (f32; see the crate docs).
pub const DTYPE: DType = DType::F32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_taps_match_a_direct_convolution() {
        let x = Tensor::arange(0f32, 7.0, &Device::Cpu).unwrap().reshape((1, 7, 1)).unwrap();
        let (taps, n) = strided_taps(&x, 1, 3, 1, 2).unwrap();
        assert_eq!(n, 4);
        let got: Vec<Vec<f32>> = taps.iter().map(|t| t.flatten_all().unwrap().to_vec1().unwrap()).collect();
        // padded: 0 | 0 1 2 3 4 5 6 | 0 ; outputs centred on 0, 2, 4, 6
        assert_eq!(got, vec![vec![0., 1., 3., 5.], vec![0., 2., 4., 6.], vec![1., 3., 5., 0.]]);
    }

    #[test]
    fn rel_positions_run_from_l_minus_1_down() {
        let pe = rel_positions(3, 4, &Device::Cpu).unwrap().squeeze(0).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(pe.len(), 5);
        assert!((pe[0][0] - 2f32.sin()).abs() < 1e-7 && (pe[2][0]).abs() < 1e-7 && (pe[2][1] - 1.0).abs() < 1e-7);
        assert!((pe[4][0] + 2f32.sin()).abs() < 1e-7);
    }
}
