//! `~` in paths, expanded where the files are: on the agent, with the agent's `HOME`. The
//! original stored session files as `~/…`, workspace files name worktree roots so, and a remote
//! agent's home is not the coordinator's, so nothing above the agent expands them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// `path` with a leading `~` or `~/` replaced by this process's `HOME`; unchanged otherwise
/// (including `~user/…`, and when `HOME` is unset or empty).
pub fn expand_home(path: impl AsRef<Path>) -> PathBuf {
    expand_home_in(path.as_ref(), std::env::var_os("HOME").as_deref())
}

/// [`expand_home`] with a given home.
pub fn expand_home_in(path: &Path, home: Option<&OsStr>) -> PathBuf {
    let bytes = path.as_os_str().as_encoded_bytes();
    match home.filter(|h| !h.is_empty()) {
        Some(home) if bytes == b"~" => PathBuf::from(home),
        Some(home) if bytes.starts_with(b"~/") => PathBuf::from(home).join(path.strip_prefix("~").unwrap_or(path)),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leading_tilde_is_the_home_and_nothing_else_is() {
        let home = Some(OsStr::new("/home/me"));
        assert_eq!(expand_home_in(Path::new("~/s/x.jsonl"), home), Path::new("/home/me/s/x.jsonl"));
        assert_eq!(expand_home_in(Path::new("~"), home), Path::new("/home/me"));
        assert_eq!(expand_home_in(Path::new("/abs/x.jsonl"), home), Path::new("/abs/x.jsonl"));
        assert_eq!(expand_home_in(Path::new("~other/x"), home), Path::new("~other/x"));
        assert_eq!(expand_home_in(Path::new("a/~/x"), home), Path::new("a/~/x"));
        assert_eq!(expand_home_in(Path::new("~/x"), None), Path::new("~/x"));
        assert_eq!(expand_home_in(Path::new("~/x"), Some(OsStr::new(""))), Path::new("~/x"));
    }
}
