//! Fetching a repo's files into the hub cache with `hf-hub`'s tokio client (feature `download`), so the cache
//! it fills is the one the Python tools and [`crate::HubCache`] read. `HF_ENDPOINT` points it at a mirror;
//! under `HF_HUB_OFFLINE` no client is made.
//!
//! What to fetch (which files make a model) and how progress is shown are the caller's: [`Remote::files`]
//! lists, [`Remote::download`] fetches one file, reporting to a [`Progress`].

use std::path::PathBuf;

use hf_hub::api::tokio::{ApiBuilder, ApiRepo};
use hf_hub::{Repo, RepoType};

use crate::{is_safe_file_name, offline, HubCache, ModelRef};

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// `HF_HUB_OFFLINE` is set.
    #[error("HF_HUB_OFFLINE is set: not fetching {0}")]
    Offline(ModelRef),
    /// The client could not be built.
    #[error("Hugging Face client: {0}")]
    Client(String),
    /// The repo's file list could not be had.
    #[error("cannot list {model} on the Hugging Face hub: {detail}")]
    List {
        /// The repo.
        model: ModelRef,
        /// The client's error.
        detail: String,
    },
    /// A file name that would land outside the snapshot folder.
    #[error("{model} on the Hugging Face hub names a file {file:?} that is not a plain relative path")]
    UnsafeName {
        /// The repo.
        model: ModelRef,
        /// The name.
        file: String,
    },
    /// A file could not be fetched.
    #[error("downloading {file} of {model}: {detail}")]
    Download {
        /// The repo.
        model: ModelRef,
        /// The file.
        file: String,
        /// The client's error.
        detail: String,
    },
}

/// Where a download stands, told by the client as it goes. The client fetches a large file in parallel
/// chunks, each with a clone of the progress: clones share their state.
pub trait Progress: Clone + Send + Sync + 'static {
    /// `file`, of `size` bytes, starts.
    fn start(&mut self, file: &str, size: u64);
    /// `bytes` more arrived.
    fn advance(&mut self, bytes: u64);
    /// A chunk (or the file) is complete.
    fn finish(&mut self);
}

/// `hf-hub`'s progress trait over ours, so callers need not name `hf-hub`.
#[derive(Clone)]
struct Reporter<P>(P);

impl<P: Progress> hf_hub::api::tokio::Progress for Reporter<P> {
    async fn init(&mut self, size: usize, filename: &str) {
        self.0.start(filename, size as u64);
    }

    async fn update(&mut self, size: usize) {
        self.0.advance(size as u64);
    }

    async fn finish(&mut self) {
        self.0.finish();
    }
}

/// One model repo on the hub, fetched into one cache.
pub struct Remote {
    model: ModelRef,
    cache: HubCache,
    repo: ApiRepo,
}

impl Remote {
    /// A client for `model` on the hub `HF_ENDPOINT` names (else huggingface.co), fetching into `cache`.
    /// Refused under `HF_HUB_OFFLINE`.
    pub fn new(cache: &HubCache, model: &ModelRef) -> Result<Remote, FetchError> {
        if offline() {
            return Err(FetchError::Offline(model.clone()));
        }
        Remote::at(std::env::var("HF_ENDPOINT").ok().as_deref(), cache, model)
    }

    /// [`Remote::new`] against `endpoint` (`None`: huggingface.co), whatever the environment says.
    pub fn at(endpoint: Option<&str>, cache: &HubCache, model: &ModelRef) -> Result<Remote, FetchError> {
        let mut builder = ApiBuilder::from_cache(hf_hub::Cache::new(cache.path().to_owned())).with_progress(false);
        if let Some(endpoint) = endpoint {
            builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_string());
        }
        let api = builder.build().map_err(|e| FetchError::Client(e.to_string()))?;
        let repo = api.repo(Repo::with_revision(model.repo().to_string(), RepoType::Model, model.revision().into()));
        Ok(Remote { model: model.clone(), cache: cache.clone(), repo })
    }

    /// The repo (and revision) it fetches.
    pub fn model(&self) -> &ModelRef {
        &self.model
    }

    /// The repo's files at the revision, as the hub lists them; names that are not plain relative paths
    /// are left out.
    pub async fn files(&self) -> Result<Vec<String>, FetchError> {
        let listing = self
            .repo
            .info()
            .await
            .map_err(|e| FetchError::List { model: self.model.clone(), detail: e.to_string() })?;
        Ok(listing.siblings.into_iter().map(|s| s.rfilename).filter(|f| is_safe_file_name(f)).collect())
    }

    /// `file` in the cache: already there, or fetched now, reporting to `progress`.
    pub async fn download(&self, file: &str, progress: impl Progress) -> Result<PathBuf, FetchError> {
        if !is_safe_file_name(file) {
            return Err(FetchError::UnsafeName { model: self.model.clone(), file: file.to_string() });
        }
        if let Some(path) = self.cache.get(&self.model, file) {
            return Ok(path);
        }
        self.repo.download_with_progress(file, Reporter(progress)).await.map_err(|e| FetchError::Download {
            model: self.model.clone(),
            file: file.to_string(),
            detail: e.to_string(),
        })
    }

    /// Whether `file` is in the cache already.
    pub fn is_cached(&self, file: &str) -> bool {
        self.cache.get(&self.model, file).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Silent;

    impl Progress for Silent {
        fn start(&mut self, _: &str, _: u64) {}
        fn advance(&mut self, _: u64) {}
        fn finish(&mut self) {}
    }

    #[tokio::test]
    async fn a_file_name_leaving_the_snapshot_is_refused_before_any_request() {
        let dir = tempfile::tempdir().unwrap();
        let model = ModelRef::parse("org/m").unwrap();
        // Port 9 (discard) on loopback: a request would fail with a connection error, not UnsafeName.
        let remote = Remote::at(Some("http://127.0.0.1:9"), &HubCache::new(dir.path()), &model).unwrap();
        for file in ["../../../../outside", "/etc/passwd", "a/../../b"] {
            let err = remote.download(file, Silent).await.unwrap_err();
            assert!(matches!(err, FetchError::UnsafeName { .. }), "{file}: {err}");
        }
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing written");
    }
}
