//! Speech-to-text with NVIDIA's Parakeet TDT (FastConformer encoder + token-and-duration transducer) in
//! candle, read straight from NeMo's `.nemo` archive or a safetensors conversion.
//!
//! ```no_run
//! use piface_speech::ParakeetModel;
//! let path = piface_speech::resolve(piface_speech::DEFAULT_MODEL)?;
//! let model = ParakeetModel::load(&path, &candle_core::Device::Cpu)?;
//! let samples: Vec<f32> = vec![0.0; 16_000]; // 16 kHz mono in [-1, 1]
//! println!("{}", model.transcribe(&samples)?.text);
//! # Ok::<(), piface_speech::SpeechError>(())
//! ```
//!
//! Pieces: [`mel`] (NeMo's front end), [`encoder`], [`decoder`] (prediction net, joint, greedy TDT),
//! [`tokenizer`] (SentencePiece pieces → text), [`loader`] (`.nemo` / safetensors, and
//! which file of a Hugging Face cache snapshot to load, through `piface-hub`), [`model`] (the pipeline and long-audio chunking). Weights run in f32 on any candle device; the `cuda`
//! feature enables candle's CUDA backend.

pub mod config;
pub mod decoder;
pub mod encoder;
pub mod error;
pub mod loader;
pub mod mel;
pub mod model;
pub mod tokenizer;

pub use error::{Result, SpeechError};
pub use loader::{resolve, resolve_in, DEFAULT_MODEL};
pub use model::{Chunking, ParakeetModel, Transcript};
