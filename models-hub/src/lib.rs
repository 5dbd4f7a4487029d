//! Models on the Hugging Face hub, for both model crates (`piface-speech`, `piface-tts`) and the agent that
//! serves them: what a model spec names ([`ModelRef`], parsed from `id@rev` with one validation rule), where
//! the local hub cache keeps it ([`HubCache`], laid out as the Python tools lay it out), and, with the
//! `download` feature, fetching a repo's files into that cache ([`Remote`]).
//!
//! What it is not: it knows no model format. Which file of a snapshot is the model, and which files of a repo
//! to fetch, is each model crate's (and the agent's) business; this crate hands them the snapshot folder and
//! the file list. Without `download` it has no network client at all, so the model crates stay offline by
//! construction; `HF_HUB_OFFLINE` ([`offline`]) turns the client off at run time too.
//!
//! ```no_run
//! use piface_hub::{HubCache, Location};
//! let cache = HubCache::from_env();
//! match Location::of("nvidia/parakeet-tdt-0.6b-v3@main")? {
//!     Location::Path(path) => println!("a local model at {}", path.display()),
//!     Location::Repo(model) => println!("{model} cached: {:?}", cache.snapshot(&model)),
//! }
//! # Ok::<(), piface_hub::LookupError>(())
//! ```

#![warn(missing_docs)]

mod cache;
#[cfg(feature = "download")]
mod download;
mod reference;

pub use cache::{cache_dir, offline, resolve_in, HubCache, Location, LookupError};
#[cfg(feature = "download")]
pub use download::{FetchError, Progress, Remote};
pub use reference::{is_safe_file_name, ModelRef, RefError, DEFAULT_REVISION, MAX_REPO_ID_LEN, MAX_REVISION_LEN};
