//! Finding a voice: a local model folder, or a Hugging Face repo id looked up in the local hub cache
//! (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`), laid out as the Python tools do:
//! `models--<org>--<name>/refs/<revision>` holds a commit, `snapshots/<commit>/` the files.
//!
//! Nothing here downloads: a repo missing from the cache is [`TtsError::NotFound`], with the command that
//! fetches it.

use std::path::{Path, PathBuf};

use hf_hub::{Cache, Repo, RepoType};

use crate::error::{Result, TtsError};

/// A permissively licensed English voice (MIT): VITS trained on LJ Speech, phoneme input (needs espeak-ng).
pub const DEFAULT_MODEL: &str = "kakao-enterprise/vits-ljs";

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

/// Resolves `spec` (a model folder, or `org/name[@revision]`) to a folder [`crate::VitsModel::load`] and
/// [`crate::VitsTokenizer::load`] read, looking repo ids up in [`cache_dir`].
pub fn resolve(spec: &str) -> Result<PathBuf> {
    resolve_in(spec, &cache_dir())
}

/// [`resolve`] against an explicit cache directory.
pub fn resolve_in(spec: &str, cache: &Path) -> Result<PathBuf> {
    let path = Path::new(spec);
    if path.is_dir() {
        return Ok(path.to_owned());
    }
    if path.exists() {
        return Err(TtsError::NotFound(format!("{spec} is a file; a VITS model is a folder with config.json")));
    }
    let (id, revision) = spec.split_once('@').unwrap_or((spec, "main"));
    if id.split('/').count() != 2 || id.split('/').any(str::is_empty) || id.starts_with('.') {
        return Err(TtsError::NotFound(format!("{spec} (no such folder, and not a repo id org/name)")));
    }
    let repo =
        Cache::new(cache.to_owned()).repo(Repo::with_revision(id.to_owned(), RepoType::Model, revision.to_owned()));
    if let Some(dir) = repo.get("config.json").as_deref().and_then(Path::parent) {
        return Ok(dir.to_owned());
    }
    Err(TtsError::NotFound(format!(
        "{spec}: not in the Hugging Face cache {} (fetch it with `hf download {id}{}`{})",
        cache.display(),
        if revision == "main" { String::new() } else { format!(" --revision {revision}") },
        if offline() { "; HF_HUB_OFFLINE is set" } else { "" }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_snapshot_by_ref_and_names_the_download_command_otherwise() {
        let cache = std::env::temp_dir().join(format!("piface-tts-hub-{}", std::process::id()));
        let base = cache.join("models--org--voice");
        let snap = base.join("snapshots").join("abc123");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::create_dir_all(base.join("refs")).unwrap();
        std::fs::write(base.join("refs").join("main"), "abc123").unwrap();
        std::fs::write(snap.join("config.json"), "{}").unwrap();
        assert_eq!(resolve_in("org/voice", &cache).unwrap(), snap);
        let err = resolve_in("org/other@v2", &cache).unwrap_err().to_string();
        assert!(err.contains("hf download org/other --revision v2"), "{err}");
        assert!(matches!(resolve_in("not-a-repo", &cache), Err(TtsError::NotFound(_))));
        std::fs::remove_dir_all(&cache).unwrap();
    }
}
