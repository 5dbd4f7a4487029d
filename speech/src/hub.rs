//! Finding a model: a local path, or a Hugging Face repo id looked up in the local hub cache
//! (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`), as the Python tools lay it out:
//! `models--<org>--<name>/refs/<revision>` holds a commit, `snapshots/<commit>/` the files.
//!
//! Nothing here downloads: a repo missing from the cache is [`SpeechError::NotFound`], with the command that
//! fetches it. (Downloading with progress belongs to the agent, which can honour `HF_HUB_OFFLINE`; see
//! [`offline`].)

use std::path::{Path, PathBuf};

use hf_hub::{Cache, Repo, RepoType};

use crate::error::{Result, SpeechError};

/// The model the original runs.
pub const DEFAULT_MODEL: &str = "nvidia/parakeet-tdt-0.6b-v3";

/// `HF_HUB_OFFLINE` set to a true value (`1`, `true`, `yes`, `on`).
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// The hub cache directory the Python tools use.
pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE").or_else(|| std::env::var_os("HUGGINGFACE_HUB_CACHE")) {
        return PathBuf::from(p);
    }
    Cache::from_env().path().clone()
}

/// Resolves `spec` (a path to a `.nemo` or a model folder, or `org/name[@revision]`) to something
/// [`crate::ParakeetModel::load`] reads, looking repo ids up in [`cache_dir`].
pub fn resolve(spec: &str) -> Result<PathBuf> {
    resolve_in(spec, &cache_dir())
}

/// [`resolve`] against an explicit cache directory.
pub fn resolve_in(spec: &str, cache: &Path) -> Result<PathBuf> {
    let path = Path::new(spec);
    if path.exists() {
        return Ok(path.to_owned());
    }
    let (id, revision) = spec.split_once('@').unwrap_or((spec, "main"));
    if id.split('/').count() != 2 || id.starts_with('/') || id.starts_with('.') {
        return Err(SpeechError::NotFound(format!("{spec} (no such file, and not a repo id org/name)")));
    }
    let repo =
        Cache::new(cache.to_owned()).repo(Repo::with_revision(id.to_owned(), RepoType::Model, revision.to_owned()));
    let name = id.rsplit('/').next().unwrap_or(id);
    if let Some(p) = repo.get(&format!("{name}.nemo")) {
        return Ok(p);
    }
    if let Some(config) = repo.get("model_config.yaml") {
        if let Some(dir) = config.parent() {
            return Ok(dir.to_owned());
        }
    }
    // any .nemo in the snapshot (some repos name the archive differently)
    if let Some(dir) = repo.get(".").or_else(|| snapshot_dir(cache, id, revision)) {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut nemos: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "nemo"))
                .collect();
            nemos.sort();
            if let Some(p) = nemos.into_iter().next() {
                return Ok(p);
            }
        }
    }
    Err(SpeechError::NotFound(format!(
        "{spec}: not in the Hugging Face cache {} (fetch it with `hf download {id}`{})",
        cache.display(),
        if offline() { "; HF_HUB_OFFLINE is set" } else { "" }
    )))
}

fn snapshot_dir(cache: &Path, id: &str, revision: &str) -> Option<PathBuf> {
    let base = cache.join(format!("models--{}", id.replace('/', "--")));
    let commit = std::fs::read_to_string(base.join("refs").join(revision)).ok()?;
    let dir = base.join("snapshots").join(commit.trim());
    dir.is_dir().then_some(dir)
}
