//! The whole model: audio → features → encoder → greedy TDT → text, with long recordings encoded in
//! overlapping chunks.

use std::ops::Range;
use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;

use crate::config::ModelConfig;
use crate::decoder::{greedy_tdt, Decoded, Joint, PredictionNet};
use crate::encoder::{Encoder, DTYPE};
use crate::error::{Result, SpeechError};
use crate::loader::{self, ModelFiles};
use crate::mel::{Mel, MelFrontend};
use crate::tokenizer::Tokenizer;

/// A transcription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    pub text: String,
    pub token_ids: Vec<u32>,
    /// Encoder frame of each token (multiply by [`ParakeetModel::frame_seconds`] for a time).
    pub token_frames: Vec<usize>,
    /// Predicted duration (in encoder frames) of each token.
    pub token_durations: Vec<usize>,
}

/// How long recordings are encoded: windows of `chunk_frames` encoder frames that are kept, each seen with
/// `context_frames` more on both sides that are computed and dropped. The kept frames tile the recording
/// exactly, so one greedy search runs over the stitched encoder output (the prediction network's state flows
/// across chunk boundaries; no token merging is needed). Memory grows with `chunk + 2·context` squared
/// (attention) instead of the recording's length squared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunking {
    pub chunk_frames: usize,
    pub context_frames: usize,
}

impl Default for Chunking {
    /// 120 s kept, 15 s of context each side (an encoder frame is 80 ms for Parakeet): a 10-minute
    /// recording becomes 5 windows of 150 s, whose attention scores need about 0.3 GB at d_model 1024 / 8 heads.
    fn default() -> Self {
        Self { chunk_frames: 1500, context_frames: 188 }
    }
}

/// One encoder window: encoder frames `window` are computed, `keep` (a sub-range of it) are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkPlan {
    pub window: Range<usize>,
    pub keep: Range<usize>,
}

/// Splits `frames` encoder frames into windows; a single window when everything fits in one.
pub fn plan_chunks(frames: usize, chunking: Chunking) -> Vec<ChunkPlan> {
    let Chunking { chunk_frames, context_frames } = chunking;
    if frames <= chunk_frames + 2 * context_frames || chunk_frames == 0 {
        return vec![ChunkPlan { window: 0..frames, keep: 0..frames }];
    }
    (0..frames)
        .step_by(chunk_frames)
        .map(|s| {
            let e = (s + chunk_frames).min(frames);
            ChunkPlan { window: s.saturating_sub(context_frames)..(e + context_frames).min(frames), keep: s..e }
        })
        .collect()
}

pub struct ParakeetModel {
    config: ModelConfig,
    frontend: MelFrontend,
    encoder: Encoder,
    pred: PredictionNet,
    joint: Joint,
    tokenizer: Tokenizer,
    device: Device,
    chunking: Chunking,
}

impl ParakeetModel {
    /// Loads a `.nemo` archive or a safetensors folder (see [`loader`]) onto `device`.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        Self::from_files(loader::load(path.as_ref())?, device)
    }

    pub fn from_files(files: ModelFiles, device: &Device) -> Result<Self> {
        let ModelFiles { config, mut tensors, tokenizer, .. } = files;
        let take = |t: Option<Tensor>| -> Result<Option<Vec<f32>>> {
            t.map(|t| Ok(t.to_dtype(DTYPE)?.flatten_all()?.to_vec1::<f32>()?)).transpose()
        };
        let window = take(tensors.remove("preprocessor.featurizer.window"))?;
        let fb = take(tensors.remove("preprocessor.featurizer.fb"))?;
        let frontend = MelFrontend::new(&config.preprocessor, window, fb)?;
        if frontend.n_mels() != config.encoder.feat_in {
            return Err(SpeechError::Config("preprocessor.features != encoder.feat_in".into()));
        }
        let vb = VarBuilder::from_tensors(tensors, DTYPE, device);
        let encoder = Encoder::new(&config.encoder, vb.pp("encoder"))?;
        let pred = PredictionNet::new(&config, vb.pp("decoder"))?;
        let joint = Joint::new(&config, vb.pp("joint"))?;
        if tokenizer.vocab_size() != config.joint.num_classes {
            return Err(SpeechError::Tokenizer(format!(
                "{} pieces for {} classes",
                tokenizer.vocab_size(),
                config.joint.num_classes
            )));
        }
        Ok(Self {
            config,
            frontend,
            encoder,
            pred,
            joint,
            tokenizer,
            device: device.clone(),
            chunking: Chunking::default(),
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }
    pub fn device(&self) -> &Device {
        &self.device
    }
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }
    pub fn encoder_mut(&mut self) -> &mut Encoder {
        &mut self.encoder
    }
    pub fn sample_rate(&self) -> usize {
        self.config.preprocessor.sample_rate
    }
    /// Seconds per encoder frame (80 ms for Parakeet).
    pub fn frame_seconds(&self) -> f64 {
        self.config.preprocessor.window_stride * self.config.encoder.subsampling_factor as f64
    }
    pub fn set_chunking(&mut self, chunking: Chunking) {
        self.chunking = chunking;
    }

    /// Log-mel features of 16 kHz mono samples.
    pub fn features(&self, samples: &[f32]) -> Result<Mel> {
        self.frontend.compute(samples)
    }

    /// Encodes features in one pass: (`[1, T', D]`, valid frames).
    pub fn encode(&self, mel: &Mel) -> Result<(Tensor, usize)> {
        self.encoder.forward(&mel.to_tensor(&self.device)?, mel.valid_frames)
    }

    /// Encodes features window by window ([`Chunking`]) and stitches the kept frames: `[1, valid, D]`.
    pub fn encode_chunked(&self, mel: &Mel, chunking: Chunking) -> Result<Tensor> {
        let factor = self.config.encoder.subsampling_factor;
        let total = self.encoder.out_len(mel.valid_frames);
        let plans = plan_chunks(total, chunking);
        if plans.len() == 1 {
            let (enc, valid) = self.encode(mel)?;
            return Ok(enc.narrow(1, 0, valid)?);
        }
        let full = mel.to_tensor(&self.device)?;
        let mut kept = Vec::with_capacity(plans.len());
        for plan in &plans {
            let start = plan.window.start * factor;
            let last = plan.window.end == total;
            // the last window runs to the end of the features, like the unchunked pass
            let end = if last { mel.frames } else { (plan.window.end * factor).min(mel.frames) };
            let valid = if last { mel.valid_frames - start } else { end - start };
            let (enc, n) = self.encoder.forward(&full.narrow(2, start, end - start)?, valid)?;
            let from = plan.keep.start - plan.window.start;
            let len = plan.keep.len().min(n.saturating_sub(from));
            kept.push(enc.narrow(1, from, len)?);
        }
        Ok(Tensor::cat(&kept, 1)?)
    }

    /// Greedy TDT over `[1, T, D]` encoder output (its first `frames` frames).
    pub fn decode(&self, enc: &Tensor, frames: usize) -> Result<Decoded> {
        let proj = self.joint.project_encoder(enc)?;
        let blank = self.config.joint.num_classes as u32;
        greedy_tdt(
            &self.pred,
            &self.joint,
            &proj,
            frames,
            blank,
            self.config.durations(),
            self.config.decoding.greedy.max_symbols,
        )
    }

    /// Transcribes 16 kHz mono samples in [-1, 1]; long recordings are chunked ([`Self::set_chunking`]).
    pub fn transcribe(&self, samples: &[f32]) -> Result<Transcript> {
        let mel = self.features(samples)?;
        let enc = self.encode_chunked(&mel, self.chunking)?;
        let frames = enc.dim(1)?;
        Ok(self.transcript(self.decode(&enc, frames)?))
    }

    pub fn transcript(&self, d: Decoded) -> Transcript {
        Transcript {
            text: self.tokenizer.decode(&d.token_ids),
            token_ids: d.token_ids,
            token_frames: d.frames,
            token_durations: d.durations,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_tile_the_frames() {
        let c = Chunking { chunk_frames: 10, context_frames: 3 };
        assert_eq!(plan_chunks(16, c), vec![ChunkPlan { window: 0..16, keep: 0..16 }]);
        let plans = plan_chunks(25, c);
        assert_eq!(
            plans,
            vec![
                ChunkPlan { window: 0..13, keep: 0..10 },
                ChunkPlan { window: 7..23, keep: 10..20 },
                ChunkPlan { window: 17..25, keep: 20..25 },
            ]
        );
    }
}
