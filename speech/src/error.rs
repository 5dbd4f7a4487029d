//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model archive {path}: {reason}")]
    Archive { path: PathBuf, reason: String },
    #[error("model_config.yaml: {0}")]
    Config(String),
    #[error("unsupported model: {0}")]
    Unsupported(String),
    #[error("weight {name}: {reason}")]
    Weight { name: String, reason: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("model {0} not found (local path or Hugging Face cache)")]
    NotFound(String),
    /// A model spec that names no file or folder and no cached Hugging Face repo.
    #[error(transparent)]
    Lookup(#[from] piface_hub::LookupError),
    #[error("audio: {0}")]
    Audio(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result with [`SpeechError`].
pub type Result<T, E = SpeechError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SpeechError {
    let path = path.into();
    move |source| SpeechError::Io { path, source }
}
