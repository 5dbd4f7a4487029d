//! The whole VITS pipeline: ids → text encoder → durations → length regulation → prior sample → flow (reverse)
//! → HiFi-GAN → waveform.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::config::VitsConfig;
use crate::duration::{self, DurationPredictor};
use crate::error::{Result, TtsError};
use crate::flow::Flow;
use crate::hifigan::HifiGan;
use crate::noise::{NoiseSource, SeededNoise};
use crate::text_encoder::TextEncoder;
use crate::weights;

/// The longest output, in spectrogram frames (about 27 minutes at 16 kHz with a hop of 256). Durations come from
/// the model, so noise or odd input can ask for more; beyond this a synthesis fails instead of exhausting memory.
/// Long texts should be synthesised sentence by sentence anyway (attention is quadratic in the ids).
pub const MAX_FRAMES: usize = 100_000;

/// How to synthesise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthOptions {
    /// Larger is faster; durations are multiplied by `1 / speaking_rate`.
    pub speaking_rate: f32,
    /// Scale of the prior noise (0: the prior's mean, the flattest voice).
    pub noise_scale: f32,
    /// Scale of the stochastic duration predictor's noise (0: its deterministic path). Plain predictors ignore it.
    pub noise_scale_duration: f32,
    /// Seed of the noise ([`SeededNoise`]); `None` draws a fresh one each time.
    pub seed: Option<u64>,
}

impl Default for SynthOptions {
    /// transformers' defaults: rate 1, noise 0.667, duration noise 0.8, unseeded.
    fn default() -> Self {
        Self { speaking_rate: 1.0, noise_scale: 0.667, noise_scale_duration: 0.8, seed: None }
    }
}

impl SynthOptions {
    /// The defaults a checkpoint's `config.json` sets.
    pub fn from_config(config: &VitsConfig) -> Self {
        Self {
            speaking_rate: config.speaking_rate as f32,
            noise_scale: config.noise_scale as f32,
            noise_scale_duration: config.noise_scale_duration as f32,
            seed: None,
        }
    }
}

/// Synthesised audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Synthesis {
    /// Mono samples in [-1, 1].
    pub waveform: Vec<f32>,
    pub sample_rate: u32,
    /// Spectrogram frames given to each input id (in order; blanks included).
    pub durations: Vec<u32>,
    /// Samples per frame: id `i` starts at sample `hop · sum(durations[..i])`.
    pub samples_per_frame: usize,
}

/// Everything one forward pass produces, for inspection and parity tests. Tensors are on the model's device.
#[derive(Debug, Clone)]
pub struct Inference {
    /// The duration predictor's output per id.
    pub log_durations: Vec<f32>,
    /// Frames per id.
    pub durations: Vec<u32>,
    /// The flow's output `[flow_size, frames]` (transformers calls it the spectrogram).
    pub spectrogram: Tensor,
    /// `[frames · hop]`.
    pub waveform: Tensor,
}

/// A loaded VITS checkpoint.
#[derive(Debug, Clone)]
pub struct VitsModel {
    config: VitsConfig,
    text_encoder: TextEncoder,
    duration_predictor: DurationPredictor,
    flow: Flow,
    decoder: HifiGan,
    device: Device,
}

impl VitsModel {
    /// Loads `config.json` and the weights (`model.safetensors`, a sharded set or `pytorch_model.bin`) from a
    /// model folder, such as a Hugging Face snapshot ([`crate::hub::resolve`] finds one).
    pub fn load(dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let dir = dir.as_ref();
        let config = VitsConfig::from_file(&dir.join("config.json"))?;
        let tensors = weights::load(dir)?;
        Self::from_tensors(config, tensors, device)
    }

    /// Builds the model from a configuration and its tensors (weight norm already folded; see
    /// [`weights::fold_weight_norm`]).
    pub fn from_tensors(
        config: VitsConfig,
        tensors: std::collections::HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let weight_err = |e: candle_core::Error| TtsError::Weight { name: "model".into(), reason: e.to_string() };
        Ok(Self {
            text_encoder: TextEncoder::new(&config, vb.pp("text_encoder")).map_err(weight_err)?,
            duration_predictor: DurationPredictor::new(&config, vb.pp("duration_predictor")).map_err(weight_err)?,
            flow: Flow::new(&config, vb.pp("flow")).map_err(weight_err)?,
            decoder: HifiGan::new(&config, vb.pp("decoder")).map_err(weight_err)?,
            config,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &VitsConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn sample_rate(&self) -> u32 {
        self.config.sampling_rate
    }

    /// Synthesises `ids` with noise from [`SeededNoise`] (`opts.seed`, or fresh entropy).
    pub fn synthesize(&self, ids: &[u32], opts: &SynthOptions) -> Result<Synthesis> {
        let mut noise = match opts.seed {
            Some(seed) => SeededNoise::new(seed),
            None => SeededNoise::from_entropy(),
        };
        let out = self.infer(ids, opts, &mut noise)?;
        Ok(Synthesis {
            waveform: out.waveform.to_device(&Device::Cpu)?.to_vec1::<f32>()?,
            sample_rate: self.sample_rate(),
            durations: out.durations,
            samples_per_frame: self.config.hop_length(),
        })
    }

    /// One forward pass with noise from `noise` (`opts.seed` is not used).
    pub fn infer(&self, ids: &[u32], opts: &SynthOptions, noise: &mut dyn NoiseSource) -> Result<Inference> {
        self.check_input(ids, opts)?;
        let n = ids.len();
        let ids_t = Tensor::from_slice(ids, (1, n), &self.device)?;
        let text = self.text_encoder.forward(&ids_t)?;

        let log_durations = match &self.duration_predictor {
            DurationPredictor::Stochastic(sdp) => {
                let z = (self.noise(noise, 2, n)? * f64::from(opts.noise_scale_duration))?;
                sdp.forward(&text.hidden, &z)?
            }
            DurationPredictor::Plain(dp) => dp.forward(&text.hidden)?,
        };
        let log_durations = log_durations.to_device(&Device::Cpu)?.to_vec1::<f32>()?;
        // length_scale = 1 / speaking_rate, worked out in double as Python does, used in f32 by the tensor op
        let length_scale = (1.0 / f64::from(opts.speaking_rate)) as f32;
        let frames_f = duration::durations(&log_durations, length_scale);
        if let Some(bad) = frames_f.iter().find(|d| !d.is_finite()) {
            return Err(TtsError::Input(format!("the duration predictor gave a non-finite duration ({bad})")));
        }
        let total: f64 = frames_f.iter().map(|&d| f64::from(d)).sum();
        if total > MAX_FRAMES as f64 {
            return Err(TtsError::Input(format!("{total} frames asked for, more than the limit of {MAX_FRAMES}")));
        }
        let durations: Vec<u32> = frames_f.iter().map(|&d| d as u32).collect();

        // Length regulation: frame f takes the statistics of the id whose span covers it. When every duration
        // rounds to 0 the reference still makes one frame, of zero mean and unit variance.
        let index: Vec<u32> =
            durations.iter().enumerate().flat_map(|(i, &d)| std::iter::repeat_n(i as u32, d as usize)).collect();
        let (means, log_variances) = if index.is_empty() {
            let zeros = Tensor::zeros((1, self.config.flow_size, 1), DType::F32, &self.device)?;
            (zeros.clone(), zeros)
        } else {
            let index = Tensor::from_vec(index, durations.iter().map(|&d| d as usize).sum::<usize>(), &self.device)?;
            (text.means.index_select(&index, 2)?, text.log_variances.index_select(&index, 2)?)
        };
        let frames = means.dim(2)?;
        let eps = self.noise(noise, self.config.flow_size, frames)?;
        let prior = (&means + ((eps * log_variances.exp()?)? * f64::from(opts.noise_scale))?)?;
        let spectrogram = self.flow.reverse(&prior)?;
        let waveform = self.decoder.forward(&spectrogram)?.flatten_all()?;
        Ok(Inference { log_durations, durations, spectrogram: spectrogram.squeeze(0)?, waveform })
    }

    fn noise(&self, noise: &mut dyn NoiseSource, rows: usize, cols: usize) -> Result<Tensor> {
        let t = noise.sample(rows, cols)?;
        if t.dims() != [rows, cols] {
            return Err(TtsError::Input(format!("noise of shape {:?}, expected [{rows}, {cols}]", t.dims())));
        }
        Ok(t.to_dtype(DType::F32)?.to_device(&self.device)?.unsqueeze(0)?)
    }

    fn check_input(&self, ids: &[u32], opts: &SynthOptions) -> Result<()> {
        if ids.is_empty() {
            return Err(TtsError::Input("no input ids (empty text?)".into()));
        }
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.config.vocab_size) {
            return Err(TtsError::Input(format!("id {bad} is outside the vocabulary of {}", self.config.vocab_size)));
        }
        if !(opts.speaking_rate.is_finite() && opts.speaking_rate > 0.0) {
            return Err(TtsError::Input(format!("speaking_rate {} (must be positive)", opts.speaking_rate)));
        }
        for (name, v) in [("noise_scale", opts.noise_scale), ("noise_scale_duration", opts.noise_scale_duration)] {
            if !v.is_finite() || v < 0.0 {
                return Err(TtsError::Input(format!("{name} {v} (must be finite and not negative)")));
            }
        }
        Ok(())
    }
}
