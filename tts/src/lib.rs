//! Text-to-speech with VITS in candle, reading Hugging Face `VitsModel` checkpoints (`config.json`,
//! `model.safetensors`, `vocab.json`, `tokenizer_config.json`) as transformers writes them.
//!
//! ```no_run
//! use piface_tts::{SynthOptions, Voice};
//! let dir = piface_tts::resolve("facebook/mms-tts-eng")?; // or a model folder
//! let voice = Voice::load(&dir, &candle_core::Device::Cpu)?;
//! let audio = voice.speak("Hello world.", &SynthOptions { seed: Some(1), ..Default::default() })?;
//! println!("{} samples at {} Hz", audio.waveform.len(), audio.sample_rate);
//! # Ok::<(), piface_tts::TtsError>(())
//! ```
//!
//! # What is supported
//!
//! - Single-speaker VITS as transformers 5 implements it: relative-position text encoder, stochastic or plain
//!   duration predictor, residual coupling flow, HiFi-GAN; inference only, one utterance at a time, f32 weights
//!   on any candle device (checkpoints in f16/bf16 are widened); the `cuda` feature enables candle's CUDA backend.
//! - Weight-norm layers under either name (`weight_g`/`weight_v` of hub checkpoints, `parametrizations.weight.
//!   original0/1` of transformers 5); the training-only posterior encoder is not loaded.
//! - Tokenizers: character vocabularies (MMS-TTS: `normalize` lower-cases and drops what the vocabulary lacks) and
//!   phoneme input (`phonemize`, vits-ljs), produced by the `espeak-ng` program the way phonemizer's espeak backend
//!   does ([`phonemize`]). Ids equal transformers' `VitsTokenizer`, quirks included (the pad token is a special
//!   token, so in MMS vocabularies where it is a letter, such as "k" in English, that letter gets no blanks).
//! - Noise: injectable ([`NoiseSource`]); [`SynthOptions::seed`] makes synthesis deterministic ([`SeededNoise`]).
//!   Given the same noise, transformers' outputs are reproduced within 2e-5 (log-durations) and 3e-6
//!   (spectrogram, waveform) on the CPU, durations exactly (`tests/parity.rs`).
//!
//! Not supported: multi-speaker checkpoints (`num_speakers > 1`, e.g. `kakao-enterprise/vits-vctk`), `uroman`
//! romanisation for non-Latin MMS languages, batching.
//!
//! # Candidate default voices and their licences
//!
//! - `kakao-enterprise/vits-ljs`: **MIT** (the model card's licence tag); the original VITS weights trained on
//!   LJ Speech (public domain). English, 22.05 kHz, phoneme input, so espeak-ng (GPL-3.0, run as a separate
//!   program, not linked) must be installed. [`DEFAULT_MODEL`].
//! - `facebook/mms-tts-eng`: **CC-BY-NC 4.0** (stated in the model card: non-commercial use only). English,
//!   16 kHz, character input, no extra programs.
//!
//! Modules: [`config`], [`weights`] (checkpoint reading), [`text_encoder`], [`duration`] (and [`spline`]),
//! [`flow`], [`hifigan`], [`model`] (the pipeline), [`noise`], [`tokenizer`], [`phonemize`]; [`resolve`] finds a
//! voice (a folder, or a repo in the Hugging Face cache through `piface-hub`; nothing here downloads).

pub mod config;
pub mod duration;
pub mod error;
pub mod flow;
pub mod hifigan;
mod layers;
pub mod model;
pub mod noise;
pub mod phonemize;
pub mod spline;
pub mod text_encoder;
pub mod tokenizer;
pub mod weights;

use std::path::{Path, PathBuf};

pub use config::VitsConfig;
pub use error::{Result, TtsError};
pub use model::{Inference, SynthOptions, Synthesis, VitsModel, MAX_FRAMES};
pub use noise::{NoiseSource, RecordedNoise, SeededNoise};
pub use phonemize::Espeak;
pub use tokenizer::VitsTokenizer;

/// A permissively licensed English voice (MIT): VITS trained on LJ Speech, phoneme input (needs espeak-ng).
pub const DEFAULT_MODEL: &str = "kakao-enterprise/vits-ljs";

/// Resolves `spec` (a model folder, or `owner/name[@revision]`) to a folder [`VitsModel::load`] and
/// [`VitsTokenizer::load`] read, looking repo ids up in the hub cache ([`piface_hub::cache_dir`]).
pub fn resolve(spec: &str) -> Result<PathBuf> {
    resolve_in(spec, &piface_hub::cache_dir())
}

/// [`resolve`] against an explicit cache directory.
pub fn resolve_in(spec: &str, cache: &Path) -> Result<PathBuf> {
    let path = Path::new(spec);
    if path.exists() && !path.is_dir() {
        return Err(TtsError::NotFound(format!("{spec} is a file; a VITS model is a folder with config.json")));
    }
    // A snapshot is a voice when it has the config; the weights' absence is `VitsModel::load`'s error.
    let voice = |dir: &Path, _: &piface_hub::ModelRef| dir.join("config.json").exists().then(|| dir.to_owned());
    Ok(piface_hub::resolve_in(spec, &piface_hub::HubCache::new(cache), voice)?)
}

/// A model with its tokenizer: text in, audio out.
#[derive(Debug, Clone)]
pub struct Voice {
    pub model: VitsModel,
    pub tokenizer: VitsTokenizer,
}

impl Voice {
    /// Loads the model and tokenizer of a model folder.
    pub fn load(dir: impl AsRef<Path>, device: &candle_core::Device) -> Result<Self> {
        let dir = dir.as_ref();
        Ok(Self { model: VitsModel::load(dir, device)?, tokenizer: VitsTokenizer::load(dir)? })
    }

    /// Synthesises `text`; a text with nothing the voice can say (empty, or only unknown characters) is an
    /// [`TtsError::Input`] error.
    pub fn speak(&self, text: &str, opts: &SynthOptions) -> Result<Synthesis> {
        let ids = self.tokenizer.encode(text)?;
        if ids.is_empty() {
            return Err(TtsError::Input(format!("nothing to say in {text:?}")));
        }
        self.model.synthesize(&ids, opts)
    }
}
