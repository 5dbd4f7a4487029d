//! The TDT decoder: the LSTM prediction network, the joint network, and NeMo's greedy TDT search
//! (`GreedyTDTInfer._greedy_decode`, batch size 1).

use candle_core::{Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder};

use crate::config::ModelConfig;
use crate::error::Result;

/// One LSTM layer (PyTorch's gate order i, f, g, o; both biases).
struct LstmLayer {
    w_ih: Tensor, // [4H, In] transposed to [In, 4H]
    w_hh: Tensor,
    bias: Tensor, // b_ih + b_hh
    hidden: usize,
}

impl LstmLayer {
    fn new(vb: &VarBuilder, layer: usize, input: usize, hidden: usize) -> Result<Self> {
        let w_ih = vb.get((4 * hidden, input), &format!("weight_ih_l{layer}"))?.t()?.contiguous()?;
        let w_hh = vb.get((4 * hidden, hidden), &format!("weight_hh_l{layer}"))?.t()?.contiguous()?;
        let bias =
            (vb.get(4 * hidden, &format!("bias_ih_l{layer}"))? + vb.get(4 * hidden, &format!("bias_hh_l{layer}"))?)?;
        Ok(Self { w_ih, w_hh, bias, hidden })
    }

    /// `x`, `h`, `c`: `[1, In]`, `[1, H]`, `[1, H]` → new (h, c).
    fn step(&self, x: &Tensor, h: &Tensor, c: &Tensor) -> Result<(Tensor, Tensor)> {
        let gates = (x.matmul(&self.w_ih)? + h.matmul(&self.w_hh)?)?.broadcast_add(&self.bias)?;
        let hs = self.hidden;
        let i = candle_nn::ops::sigmoid(&gates.narrow(1, 0, hs)?)?;
        let f = candle_nn::ops::sigmoid(&gates.narrow(1, hs, hs)?)?;
        let g = gates.narrow(1, 2 * hs, hs)?.tanh()?;
        let o = candle_nn::ops::sigmoid(&gates.narrow(1, 3 * hs, hs)?)?;
        let c = ((f * c)? + (i * g)?)?;
        let h = (o * c.tanh()?)?;
        Ok((h, c))
    }
}

/// The LSTM state of the prediction network.
#[derive(Clone)]
pub struct PredState {
    h: Vec<Tensor>,
    c: Vec<Tensor>,
}

/// `RNNTDecoder`: embedding (blank = last row, used as padding) + stacked LSTM.
pub struct PredictionNet {
    embed: Tensor, // [V+1, H]
    layers: Vec<LstmLayer>,
    hidden: usize,
}

impl PredictionNet {
    pub fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.decoder.prednet.pred_hidden;
        let v = cfg.decoder.vocab_size;
        let embed = vb.get((v + 1, h), "prediction.embed.weight")?;
        let lstm = vb.pp("prediction.dec_rnn.lstm");
        let layers =
            (0..cfg.decoder.prednet.pred_rnn_layers).map(|l| LstmLayer::new(&lstm, l, h, h)).collect::<Result<_>>()?;
        Ok(Self { embed, layers, hidden: h })
    }

    pub fn zero_state(&self, device: &Device) -> Result<PredState> {
        let z = Tensor::zeros((1, self.hidden), crate::encoder::DTYPE, device)?;
        Ok(PredState { h: vec![z.clone(); self.layers.len()], c: vec![z; self.layers.len()] })
    }

    /// One step: `label` None is the start of sequence (a zero input, as NeMo's `predict(None)`).
    pub fn step(&self, label: Option<u32>, state: &PredState) -> Result<(Tensor, PredState)> {
        let mut x = match label {
            Some(l) => self.embed.narrow(0, l as usize, 1)?,
            None => Tensor::zeros((1, self.hidden), self.embed.dtype(), self.embed.device())?,
        };
        let mut next = PredState { h: Vec::with_capacity(self.layers.len()), c: Vec::with_capacity(self.layers.len()) };
        for (i, layer) in self.layers.iter().enumerate() {
            let (h, c) = layer.step(&x, &state.h[i], &state.c[i])?;
            x = h.clone();
            next.h.push(h);
            next.c.push(c);
        }
        Ok((x, next))
    }
}

/// `RNNTJoint`: `Linear(relu(enc(f) + pred(g)))` → token logits (vocab + blank) then duration logits.
pub struct Joint {
    enc: Linear,
    pred: Linear,
    out: Linear,
}

impl Joint {
    pub fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let jh = cfg.joint.jointnet.joint_hidden;
        let lin = |name: &str, din: usize, dout: usize| -> Result<Linear> {
            Ok(Linear::new(
                vb.get((dout, din), &format!("{name}.weight"))?,
                Some(vb.get(dout, &format!("{name}.bias"))?),
            ))
        };
        let n_out = cfg.joint.num_classes + 1 + cfg.joint.num_extra_outputs;
        Ok(Self {
            enc: lin("enc", cfg.encoder.d_model, jh)?,
            pred: lin("pred", cfg.decoder.prednet.pred_hidden, jh)?,
            out: lin("joint_net.2", jh, n_out)?,
        })
    }

    /// Projects every encoder frame once: `[1, T, D]` → `[T, J]`.
    pub fn project_encoder(&self, enc: &Tensor) -> Result<Tensor> {
        Ok(self.enc.forward(&enc.squeeze(0)?)?)
    }

    pub fn project_prediction(&self, g: &Tensor) -> Result<Tensor> {
        Ok(self.pred.forward(g)?)
    }

    /// `f`: one projected frame `[1, J]`, `g`: projected prediction `[1, J]` → logits `[N]`.
    pub fn logits(&self, f: &Tensor, g: &Tensor) -> Result<Tensor> {
        Ok(self.out.forward(&(f + g)?.relu()?)?.squeeze(0)?)
    }
}

/// The greedy result: tokens with the encoder frame each was emitted at and the duration predicted with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    pub token_ids: Vec<u32>,
    pub frames: Vec<usize>,
    pub durations: Vec<usize>,
}

/// NeMo's greedy TDT search over `frames` projected encoder frames (`[T, J]`).
///
/// Per frame, up to `max_symbols` joint evaluations: the token is the argmax over vocab + blank, the
/// duration the argmax over the duration logits; a non-blank token is emitted and advances the prediction
/// network; time moves by the duration; the inner loop continues only while the duration is 0; when
/// `max_symbols` were spent on a frame, time moves one more frame.
pub fn greedy_tdt(
    pred: &PredictionNet,
    joint: &Joint,
    enc_proj: &Tensor,
    frames: usize,
    blank: u32,
    durations: &[usize],
    max_symbols: Option<usize>,
) -> Result<Decoded> {
    let device = enc_proj.device().clone();
    let mut out = Decoded::default();
    let mut state = pred.zero_state(&device)?;
    let mut last: Option<u32> = None;
    // the prediction for the current (label, state): recomputed only after an emission
    let (g, mut next_state) = pred.step(last, &state)?;
    let mut g_proj = joint.project_prediction(&g)?;
    let n_tokens = blank as usize + 1;
    let mut t = 0usize;
    while t < frames {
        let f = enc_proj.narrow(0, t, 1)?;
        let mut symbols = 0usize;
        loop {
            let logits = joint.logits(&f, &g_proj)?.to_vec1::<f32>()?;
            let k = argmax(&logits[..n_tokens]) as u32;
            let skip = durations[argmax(&logits[n_tokens..])];
            symbols += 1;
            if k != blank {
                out.token_ids.push(k);
                out.frames.push(t);
                out.durations.push(skip);
                state = next_state;
                last = Some(k);
                let (g, ns) = pred.step(last, &state)?;
                next_state = ns;
                g_proj = joint.project_prediction(&g)?;
            } else if skip == 0 {
                // a blank with duration 0 repeats identically until max_symbols: same outcome as one more frame
                t += 1;
                break;
            }
            t += skip;
            if skip != 0 || max_symbols.is_some_and(|m| symbols >= m) {
                if max_symbols.is_some_and(|m| symbols >= m) {
                    t += 1;
                }
                break;
            }
        }
    }
    Ok(out)
}

fn argmax(v: &[f32]) -> usize {
    // first maximum, as torch.max
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
