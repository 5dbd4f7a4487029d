//! Reading a model: a NeMo `.nemo` archive, or a folder with a safetensors conversion.
//!
//! A `.nemo` is an uncompressed tar holding `model_config.yaml`, `model_weights.ckpt` (a `torch.save` zip of
//! the state dict) and the tokenizer files, named `<hex>_tokenizer.model` and referred to from the config as
//! `nemo:<hex>_tokenizer.model`. A safetensors folder holds `model_config.yaml`, one or more `*.safetensors`
//! with NeMo's key names and PyTorch layouts, and `tokenizer.model` (or the config's `joint.vocabulary`).
//!
//! Finding one ([`resolve`]): a local path, or a Hugging Face repo id looked up in the hub cache by
//! `piface-hub`; this module only says which file of the repo's snapshot is the model. Nothing here downloads
//! (the agent does, with `piface-hub`'s `download` feature).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::config::ModelConfig;
use crate::error::{io_err, Result, SpeechError};
use crate::tokenizer::Tokenizer;

/// The model the original runs.
pub const DEFAULT_MODEL: &str = "nvidia/parakeet-tdt-0.6b-v3";

/// Resolves `spec` (a path to a `.nemo` or a model folder, or `owner/name[@revision]`) to something
/// [`crate::ParakeetModel::load`] reads, looking repo ids up in the hub cache ([`piface_hub::cache_dir`]).
pub fn resolve(spec: &str) -> Result<PathBuf> {
    resolve_in(spec, &piface_hub::cache_dir())
}

/// [`resolve`] against an explicit cache directory.
pub fn resolve_in(spec: &str, cache: &Path) -> Result<PathBuf> {
    Ok(piface_hub::resolve_in(spec, &piface_hub::HubCache::new(cache), model_in_snapshot)?)
}

/// The model in a repo's snapshot folder: the `.nemo` named after the repo, else a safetensors conversion
/// (the folder, with `model_config.yaml`), else the first `.nemo` by name (some repos name the archive
/// differently).
fn model_in_snapshot(dir: &Path, model: &piface_hub::ModelRef) -> Option<PathBuf> {
    let named = dir.join(format!("{}.nemo", model.name()));
    if named.exists() {
        return Some(named);
    }
    if dir.join("model_config.yaml").exists() {
        return Some(dir.to_owned());
    }
    let mut nemos: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "nemo"))
        .collect();
    nemos.sort();
    nemos.into_iter().next()
}

/// Everything a model is built from, with the weights on the CPU.
pub struct ModelFiles {
    pub config: ModelConfig,
    pub tensors: HashMap<String, Tensor>,
    pub tokenizer: Tokenizer,
    /// Where it came from (for logs and errors).
    pub source: PathBuf,
}

/// Loads a `.nemo` file or a safetensors folder.
pub fn load(path: &Path) -> Result<ModelFiles> {
    if path.is_dir() {
        load_dir(path)
    } else {
        load_nemo(path)
    }
}

/// Members of an archive smaller than this are kept in memory (configs, tokenizers); the checkpoint is not.
const SMALL_MEMBER: u64 = 64 << 20;

pub fn load_nemo(path: &Path) -> Result<ModelFiles> {
    let archive_err = |reason: String| SpeechError::Archive { path: path.to_owned(), reason };
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut small: HashMap<String, Vec<u8>> = HashMap::new();
    let mut ckpt: Option<tempfile::NamedTempFile> = None;
    for entry in archive.entries().map_err(|e| archive_err(format!("not a tar archive: {e}")))? {
        let mut entry = entry.map_err(|e| archive_err(e.to_string()))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(|e| archive_err(e.to_string()))?.to_string_lossy().into_owned();
        let name = name.trim_start_matches("./").to_owned();
        if name.ends_with("model_weights.ckpt") {
            // candle's pickle reader opens a zip by path: spill the member to a temporary file
            let mut tmp = tempfile::NamedTempFile::new().map_err(io_err(std::env::temp_dir()))?;
            std::io::copy(&mut entry, &mut tmp).map_err(io_err(tmp.path()))?;
            ckpt = Some(tmp);
        } else if entry.size() < SMALL_MEMBER {
            let mut buf = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut buf).map_err(|e| archive_err(format!("{name}: {e}")))?;
            small.insert(name, buf);
        }
    }
    let yaml = small.get("model_config.yaml").ok_or_else(|| archive_err("no model_config.yaml".into()))?;
    let config = ModelConfig::from_yaml(&String::from_utf8_lossy(yaml))?;
    let ckpt = ckpt.ok_or_else(|| archive_err("no model_weights.ckpt".into()))?;
    let tensors = candle_core::pickle::read_all(ckpt.path())?.into_iter().collect();
    drop(ckpt);

    let wanted = config.tokenizer.model_path.as_deref().map(|p| p.trim_start_matches("nemo:"));
    let model_bytes = wanted
        .and_then(|w| small.get(w))
        .or_else(|| small.iter().find(|(n, _)| n.ends_with("tokenizer.model")).map(|(_, b)| b));
    let tokenizer = match model_bytes {
        Some(bytes) => Tokenizer::from_model_bytes(bytes)?,
        None => vocabulary_tokenizer(&config)?,
    };
    Ok(ModelFiles { config, tensors, tokenizer, source: path.to_owned() })
}

pub fn load_dir(dir: &Path) -> Result<ModelFiles> {
    let config_path = dir.join("model_config.yaml");
    let yaml = std::fs::read_to_string(&config_path).map_err(io_err(&config_path))?;
    let config = ModelConfig::from_yaml(&yaml)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(SpeechError::NotFound(format!("*.safetensors in {}", dir.display())));
    }
    let mut tensors = HashMap::new();
    for f in &files {
        tensors.extend(candle_core::safetensors::load(f, &Device::Cpu)?);
    }
    let tok_path = dir.join(config.tokenizer.model_path.as_deref().unwrap_or("tokenizer.model"));
    let tokenizer = match std::fs::read(&tok_path) {
        Ok(bytes) => Tokenizer::from_model_bytes(&bytes)?,
        Err(_) => vocabulary_tokenizer(&config)?,
    };
    Ok(ModelFiles { config, tensors, tokenizer, source: dir.to_owned() })
}

fn vocabulary_tokenizer(config: &ModelConfig) -> Result<Tokenizer> {
    if config.joint.vocabulary.is_empty() {
        return Err(SpeechError::Tokenizer("no tokenizer.model and no joint.vocabulary in the config".into()));
    }
    Ok(Tokenizer::from_pieces(&config.joint.vocabulary))
}
