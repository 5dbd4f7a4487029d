//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while loading a voice, turning text into ids or synthesising.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("unsupported model: {0}")]
    Unsupported(String),
    #[error("weight {name}: {reason}")]
    Weight { name: String, reason: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The espeak-ng step of phoneme input (binary missing, failed, or unreadable output).
    #[error("phonemizer: {0}")]
    Phonemizer(String),
    #[error("model {0} not found (local path or Hugging Face cache)")]
    NotFound(String),
    /// A model spec that names no folder and no cached Hugging Face repo.
    #[error(transparent)]
    Lookup(#[from] piface_hub::LookupError),
    /// Input the model cannot synthesise (no ids, an id outside the vocabulary, a bad option).
    #[error("input: {0}")]
    Input(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result with [`TtsError`].
pub type Result<T, E = TtsError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TtsError {
    let path = path.into();
    move |source| TtsError::Io { path, source }
}
