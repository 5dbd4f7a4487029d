//! The local Hugging Face hub cache, read the way the Python tools write it (`$HF_HUB_CACHE`, else
//! `$HF_HOME/hub`, else `~/.cache/huggingface/hub`): `models--<owner>--<name>/refs/<revision>` holds a
//! commit, `snapshots/<commit>/` that revision's files (links into `blobs/`).
//!
//! Reading only: nothing here downloads or writes.

use std::path::{Path, PathBuf};

use crate::reference::{is_safe_file_name, ModelRef, RefError};

/// `HF_HUB_OFFLINE` set to a true value (`1`, `true`, `yes`, `on`): nothing may touch the network.
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// The hub cache folder the Python tools use: `$HF_HUB_CACHE` (or its old name `$HUGGINGFACE_HUB_CACHE`),
/// else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE").or_else(|| std::env::var_os("HUGGINGFACE_HUB_CACHE")) {
        return PathBuf::from(p);
    }
    hf_hub::Cache::from_env().path().clone()
}

/// A hub cache folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubCache {
    dir: PathBuf,
}

impl HubCache {
    /// The cache in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> HubCache {
        HubCache { dir: dir.into() }
    }

    /// The cache [`cache_dir`] names.
    pub fn from_env() -> HubCache {
        HubCache::new(cache_dir())
    }

    /// Its folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `model`'s folder in the cache (whether or not it exists).
    pub fn repo_dir(&self, model: &ModelRef) -> PathBuf {
        self.dir.join(model.folder_name())
    }

    /// The folder of `model`'s revision, when the cache has it: the commit its ref names, or the revision
    /// itself when it is a full commit hash (the Python tools write no ref for those).
    pub fn snapshot(&self, model: &ModelRef) -> Option<PathBuf> {
        let base = self.repo_dir(model);
        let commit = match std::fs::read_to_string(base.join("refs").join(model.revision())) {
            Ok(commit) => commit.trim().to_string(),
            Err(_) if is_commit_hash(model.revision()) => model.revision().to_string(),
            Err(_) => return None,
        };
        // The ref file is data like any other: a commit that is not one plain name is no snapshot.
        if !is_safe_file_name(&commit) || commit.contains('/') {
            return None;
        }
        let dir = base.join("snapshots").join(commit);
        dir.is_dir().then_some(dir)
    }

    /// `file` of `model`'s revision, when cached.
    pub fn get(&self, model: &ModelRef, file: &str) -> Option<PathBuf> {
        if !is_safe_file_name(file) {
            return None;
        }
        let path = self.snapshot(model)?.join(file);
        path.exists().then_some(path)
    }

    fn not_cached(&self, spec: &str, model: &ModelRef) -> LookupError {
        LookupError::NotCached {
            spec: spec.to_string(),
            cache: self.dir.clone(),
            command: model.download_command(),
            offline: offline(),
        }
    }
}

fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a model spec names: something on disk, or a repo on the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file or folder that exists.
    Path(PathBuf),
    /// A repo id (`owner/name[@revision]`).
    Repo(ModelRef),
}

impl Location {
    /// A spec is a path when something exists there (so a local folder `org/name` wins over the repo),
    /// else it must be a repo id.
    pub fn of(spec: &str) -> Result<Location, LookupError> {
        let path = Path::new(spec);
        if path.exists() {
            return Ok(Location::Path(path.to_owned()));
        }
        ModelRef::parse(spec)
            .map(Location::Repo)
            .map_err(|reason| LookupError::NotARepo { spec: spec.to_string(), reason })
    }
}

/// Why a model spec names nothing on this machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No file or folder of that name, and not a repo id either.
    #[error("{spec}: no such file or folder, and not a Hugging Face repo id ({reason})")]
    NotARepo {
        /// As written.
        spec: String,
        /// Why it is not a repo id.
        reason: RefError,
    },
    /// A repo whose revision is not in the cache (or lacks the model's files there).
    #[error(
        "{spec}: not in the Hugging Face cache {} (fetch it with `{command}`){}",
        .cache.display(),
        if *.offline { "; HF_HUB_OFFLINE is set" } else { "" }
    )]
    NotCached {
        /// As written.
        spec: String,
        /// The cache looked in.
        cache: PathBuf,
        /// The command that fetches it.
        command: String,
        /// Whether `HF_HUB_OFFLINE` was set (so the agent would not fetch it either).
        offline: bool,
    },
}

/// Resolves `spec` against `cache`: a path that exists is taken as it is; a repo id's snapshot folder is
/// handed to `find`, which returns what the model crate loads from it (the folder, or a file in it), or
/// `None` when the snapshot lacks the model.
pub fn resolve_in(
    spec: &str,
    cache: &HubCache,
    find: impl FnOnce(&Path, &ModelRef) -> Option<PathBuf>,
) -> Result<PathBuf, LookupError> {
    match Location::of(spec)? {
        Location::Path(path) => Ok(path),
        Location::Repo(model) => {
            cache.snapshot(&model).and_then(|dir| find(&dir, &model)).ok_or_else(|| cache.not_cached(spec, &model))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    /// A cache holding `models--org--voice` at [`COMMIT`], with `refs/main` (and `refs/<more>`) naming it.
    fn cache_with_voice(more_refs: &[&str]) -> (tempfile::TempDir, HubCache, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("models--org--voice");
        let snap = base.join("snapshots").join(COMMIT);
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::write(snap.join("config.json"), "{}").unwrap();
        for name in ["main"].iter().chain(more_refs) {
            let file = base.join("refs").join(name);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            // The Python tools write the bare commit; tolerate a newline from a hand-made one.
            std::fs::write(file, format!("{COMMIT}\n")).unwrap();
        }
        let cache = HubCache::new(dir.path());
        (dir, cache, snap)
    }

    fn config_folder(dir: &Path, _: &ModelRef) -> Option<PathBuf> {
        dir.join("config.json").exists().then(|| dir.to_owned())
    }

    #[test]
    fn a_revision_is_found_through_its_ref_or_as_a_commit_hash() {
        let (_dir, cache, snap) = cache_with_voice(&["refs/pr/1"]);
        let at = |spec: &str| cache.snapshot(&ModelRef::parse(spec).unwrap());
        assert_eq!(at("org/voice"), Some(snap.clone()));
        assert_eq!(at("org/voice@main"), Some(snap.clone()));
        assert_eq!(at("org/voice@refs/pr/1"), Some(snap.clone()), "a ref with slashes lives in folders");
        assert_eq!(at(&format!("org/voice@{COMMIT}")), Some(snap.clone()), "a commit needs no ref");
        assert_eq!(at("org/voice@v2"), None);
        assert_eq!(at("org/other"), None);
        let voice = ModelRef::parse("org/voice").unwrap();
        assert_eq!(cache.get(&voice, "config.json"), Some(snap.join("config.json")));
        assert_eq!(cache.get(&voice, "model.safetensors"), None);
        assert_eq!(cache.get(&voice, "../../../models--org--voice/refs/main"), None, "no way out of the snapshot");
    }

    #[test]
    fn a_ref_naming_something_other_than_a_commit_folder_is_no_snapshot() {
        let (dir, cache, _snap) = cache_with_voice(&[]);
        let refs = dir.path().join("models--org--voice/refs");
        std::fs::write(refs.join("evil"), "../../../elsewhere").unwrap();
        std::fs::write(refs.join("empty"), "").unwrap();
        for spec in ["org/voice@evil", "org/voice@empty"] {
            assert_eq!(cache.snapshot(&ModelRef::parse(spec).unwrap()), None, "{spec}");
        }
    }

    #[test]
    fn resolving_takes_paths_as_they_are_and_looks_repo_ids_up() {
        let (dir, cache, snap) = cache_with_voice(&[]);
        assert_eq!(resolve_in("org/voice", &cache, config_folder), Ok(snap.clone()));
        let local = dir.path().display().to_string();
        assert_eq!(resolve_in(&local, &cache, |_, _| unreachable!("not a repo")), Ok(dir.path().to_owned()));
        // A snapshot without the model's files is as good as none.
        let err = resolve_in("org/voice", &cache, |_, _| None).unwrap_err();
        assert!(matches!(err, LookupError::NotCached { .. }), "{err}");
        let err = resolve_in("org/other@v2", &cache, config_folder).unwrap_err().to_string();
        assert!(err.contains("hf download org/other --revision v2"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "names the cache: {err}");
        let err = resolve_in("/no/such/model.nemo", &cache, config_folder).unwrap_err();
        assert_eq!(
            err,
            LookupError::NotARepo { spec: "/no/such/model.nemo".into(), reason: RefError::RepoParts },
            "{err}"
        );
    }

    #[test]
    fn the_cache_folder_comes_from_the_environment() {
        // Only reads: the variables are the process's, so this test sets none.
        let dir = cache_dir();
        match std::env::var_os("HF_HUB_CACHE").or_else(|| std::env::var_os("HUGGINGFACE_HUB_CACHE")) {
            Some(set) => assert_eq!(dir, PathBuf::from(set)),
            None => assert!(dir.ends_with("hub"), "{}", dir.display()),
        }
        assert_eq!(HubCache::from_env().path(), dir);
    }
}
