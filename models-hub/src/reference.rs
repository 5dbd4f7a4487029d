//! [`ModelRef`]: a repo on the Hugging Face hub and, optionally, a revision, written `id@rev`; the one place
//! that decides what a repo id and a revision may be.
//!
//! Both end up in paths (the cache's `models--<owner>--<name>/refs/<revision>`) and in URLs, so the rule is
//! the hub's own (`huggingface_hub.utils.validate_repo_id`) restricted to ASCII, and revisions are git-like
//! names that cannot leave their folder.

use std::fmt;
use std::str::FromStr;

/// The revision of a [`ModelRef`] written without one.
pub const DEFAULT_REVISION: &str = "main";
/// The longest repo id (the hub's limit).
pub const MAX_REPO_ID_LEN: usize = 96;
/// The longest revision: a branch or tag name, or a 40-digit commit.
pub const MAX_REVISION_LEN: usize = 255;

/// A model repo on the Hugging Face hub, at a revision: `name` or `owner/name`, then optionally `@revision`.
///
/// Repo ids take letters, digits, `.`, `_` and `-`; each part starts and ends with a letter, a digit or
/// `_`; `--` and `..` never occur (the cache folder joins owner and name with `--`, so `a--b/c` and
/// `a/b--c` would share one); no `.git` suffix; at most [`MAX_REPO_ID_LEN`] characters. Revisions take the
/// same characters and `/` (`refs/pr/1` is the hub's name for a pull request); every `/`-separated part is
/// non-empty and starts with a letter, a digit or `_`, and `..` never occurs, so a revision stays inside
/// `refs/`; at most [`MAX_REVISION_LEN`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelRef {
    repo: String,
    revision: Option<String>,
}

/// Why a spec is not a [`ModelRef`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// Nothing before the `@` (or nothing at all).
    #[error("the repo id is empty")]
    EmptyRepo,
    /// Over [`MAX_REPO_ID_LEN`].
    #[error("a repo id has at most {MAX_REPO_ID_LEN} characters")]
    RepoTooLong,
    /// A character other than letters, digits, `.`, `_`, `-` and the one `/`.
    #[error("{0:?} is not allowed in a repo id (letters, digits, '.', '_' and '-')")]
    RepoChar(char),
    /// More than one `/`, or an empty owner or name.
    #[error("a repo id is `name` or `owner/name`")]
    RepoParts,
    /// An owner or name that starts or ends with `.` or `-`.
    #[error("a repo id's owner and name start and end with a letter, a digit or '_'")]
    RepoEdge,
    /// `--` or `..` inside.
    #[error("'--' and '..' are not allowed in a repo id")]
    RepoSequence,
    /// A `.git` suffix.
    #[error("a repo id does not end in '.git'")]
    RepoGitSuffix,
    /// `id@` with nothing after the `@`.
    #[error("the revision after '@' is empty")]
    EmptyRevision,
    /// Over [`MAX_REVISION_LEN`].
    #[error("a revision has at most {MAX_REVISION_LEN} characters")]
    RevisionTooLong,
    /// A character other than letters, digits, `.`, `_`, `-` and `/` (a second `@`, say).
    #[error("{0:?} is not allowed in a revision (letters, digits, '.', '_', '-' and '/')")]
    RevisionChar(char),
    /// An empty part, a part starting with `.` or `-`, or `..`.
    #[error("a revision's parts are not empty, start with a letter, a digit or '_', and '..' does not occur")]
    RevisionPart,
}

impl ModelRef {
    /// Parses `name`, `owner/name`, `name@revision` or `owner/name@revision`.
    pub fn parse(spec: &str) -> Result<ModelRef, RefError> {
        let (repo, revision) = match spec.split_once('@') {
            Some((repo, revision)) => (repo, Some(revision)),
            None => (spec, None),
        };
        check_repo(repo)?;
        if let Some(revision) = revision {
            check_revision(revision)?;
        }
        Ok(ModelRef { repo: repo.to_string(), revision: revision.map(str::to_string) })
    }

    /// The repo id (`owner/name` or `name`).
    pub fn repo(&self) -> &str {
        &self.repo
    }

    /// The repo's name, without its owner.
    pub fn name(&self) -> &str {
        self.repo.rsplit('/').next().unwrap_or(&self.repo)
    }

    /// The revision asked for, or [`DEFAULT_REVISION`].
    pub fn revision(&self) -> &str {
        self.revision.as_deref().unwrap_or(DEFAULT_REVISION)
    }

    /// The revision as written, if one was.
    pub fn explicit_revision(&self) -> Option<&str> {
        self.revision.as_deref()
    }

    /// The repo's folder in the hub cache: `models--<owner>--<name>`.
    pub fn folder_name(&self) -> String {
        format!("models--{}", self.repo.replace('/', "--"))
    }

    /// The command that fetches this model with the hub's own tool, for error messages.
    pub fn download_command(&self) -> String {
        match self.revision.as_deref() {
            Some(revision) if revision != DEFAULT_REVISION => {
                format!("hf download {} --revision {revision}", self.repo)
            }
            _ => format!("hf download {}", self.repo),
        }
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.revision {
            Some(revision) => write!(f, "{}@{revision}", self.repo),
            None => f.write_str(&self.repo),
        }
    }
}

impl FromStr for ModelRef {
    type Err = RefError;

    fn from_str(spec: &str) -> Result<ModelRef, RefError> {
        ModelRef::parse(spec)
    }
}

/// Whether `c` may start or end a repo part, or start a revision part (`\w` in the hub's ASCII rule).
fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_name_char(c: char) -> bool {
    is_word(c) || c == '.' || c == '-'
}

fn check_repo(repo: &str) -> Result<(), RefError> {
    if repo.is_empty() {
        return Err(RefError::EmptyRepo);
    }
    if repo.len() > MAX_REPO_ID_LEN {
        return Err(RefError::RepoTooLong);
    }
    if let Some(c) = repo.chars().find(|&c| !is_name_char(c) && c != '/') {
        return Err(RefError::RepoChar(c));
    }
    let parts: Vec<&str> = repo.split('/').collect();
    if parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
        return Err(RefError::RepoParts);
    }
    if !parts.iter().all(|p| p.starts_with(is_word) && p.ends_with(is_word)) {
        return Err(RefError::RepoEdge);
    }
    if repo.contains("--") || repo.contains("..") {
        return Err(RefError::RepoSequence);
    }
    if repo.ends_with(".git") {
        return Err(RefError::RepoGitSuffix);
    }
    Ok(())
}

fn check_revision(revision: &str) -> Result<(), RefError> {
    if revision.is_empty() {
        return Err(RefError::EmptyRevision);
    }
    if revision.len() > MAX_REVISION_LEN {
        return Err(RefError::RevisionTooLong);
    }
    if let Some(c) = revision.chars().find(|&c| !is_name_char(c) && c != '/') {
        return Err(RefError::RevisionChar(c));
    }
    if revision.contains("..") || !revision.split('/').all(|p| p.starts_with(is_word)) {
        return Err(RefError::RevisionPart);
    }
    Ok(())
}

/// Whether `name` (a file of a repo, as the hub lists it, or a commit read from the cache) is a relative path
/// that stays where it is put: `/`-separated parts, none empty, `.` or `..`, no `\` and no control character.
/// A hub listing is another party's data; a name that fails this is never fetched or looked up.
pub fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(['\\', '\0'])
        && !name.chars().any(char::is_control)
        && name.split('/').all(|p| !p.is_empty() && p != "." && p != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `spec` parses to `(repo, revision)`.
    #[track_caller]
    fn accepts(spec: &str, repo: &str, revision: &str) {
        let model = ModelRef::parse(spec).unwrap_or_else(|e| panic!("{spec:?} refused: {e}"));
        assert_eq!((model.repo(), model.revision()), (repo, revision), "{spec:?}");
        assert_eq!(model.to_string(), spec, "written back as it was");
    }

    #[track_caller]
    fn refuses(spec: &str, why: RefError) {
        assert_eq!(ModelRef::parse(spec), Err(why), "{spec:?}");
    }

    #[test]
    fn repo_ids_are_name_or_owner_slash_name_with_an_optional_revision() {
        accepts("nvidia/parakeet-tdt-0.6b-v3", "nvidia/parakeet-tdt-0.6b-v3", "main");
        accepts("kakao-enterprise/vits-ljs@main", "kakao-enterprise/vits-ljs", "main");
        accepts("facebook/mms-tts-eng@v2.0", "facebook/mms-tts-eng", "v2.0");
        accepts("gpt2", "gpt2", "main");
        accepts("_private/x_", "_private/x_", "main");
        accepts("org/m@0123456789abcdef0123456789abcdef01234567", "org/m", "0123456789abcdef0123456789abcdef01234567");
        accepts("org/m@refs/pr/1", "org/m", "refs/pr/1");
    }

    #[test]
    fn the_longest_repo_id_and_revision_are_accepted_and_one_more_is_refused() {
        let longest = format!("o/{}", "n".repeat(MAX_REPO_ID_LEN - 2));
        assert!(ModelRef::parse(&longest).is_ok());
        refuses(&format!("{longest}n"), RefError::RepoTooLong);
        let revision = "r".repeat(MAX_REVISION_LEN);
        assert!(ModelRef::parse(&format!("o/n@{revision}")).is_ok());
        refuses(&format!("o/n@{revision}r"), RefError::RevisionTooLong);
    }

    #[test]
    fn specs_the_old_copies_disagreed_on_are_refused() {
        // speech/src/hub.rs took an empty name ("org/"), `..` as a name, and any revision (`../../x`);
        // tts/src/hub.rs refused the empty parts but took `..` as a name and any revision;
        // agent/src/models.rs refused `..` parts and `~` but took any character and any revision.
        refuses("org/", RefError::RepoParts);
        refuses("/name", RefError::RepoParts);
        refuses("a/..", RefError::RepoEdge);
        refuses("../x", RefError::RepoEdge);
        refuses("org/m@../../../etc/passwd", RefError::RevisionPart);
        refuses("org/m@refs/../../x", RefError::RevisionPart);
        refuses("~/models", RefError::RepoChar('~'));
        refuses("org/my model", RefError::RepoChar(' '));
        refuses("org/modèle", RefError::RepoChar('è'));
    }

    #[test]
    fn paths_and_malformed_ids_are_not_repo_ids() {
        refuses("", RefError::EmptyRepo);
        refuses("@main", RefError::EmptyRepo);
        refuses("/models/x.nemo", RefError::RepoParts);
        refuses("./x/y", RefError::RepoParts);
        refuses("a/b/c", RefError::RepoParts);
        refuses(".hidden/x", RefError::RepoEdge);
        refuses("org/-x", RefError::RepoEdge);
        refuses("org/x.", RefError::RepoEdge);
        refuses("a--b/c", RefError::RepoSequence);
        refuses("org/a..b", RefError::RepoSequence);
        refuses("org/repo.git", RefError::RepoGitSuffix);
        refuses("org/m@", RefError::EmptyRevision);
        refuses("org/m@v1@v2", RefError::RevisionChar('@'));
        refuses("org/m@a b", RefError::RevisionChar(' '));
        refuses("org/m@/main", RefError::RevisionPart);
        refuses("org/m@main/", RefError::RevisionPart);
        refuses("org/m@a//b", RefError::RevisionPart);
        refuses("org/m@.hidden", RefError::RevisionPart);
        refuses("org/m@-rf", RefError::RevisionPart);
    }

    #[test]
    fn a_ref_knows_its_cache_folder_and_download_command() {
        let model = ModelRef::parse("org/voice@v2").unwrap();
        assert_eq!((model.name(), model.folder_name()), ("voice", "models--org--voice".to_string()));
        assert_eq!(model.download_command(), "hf download org/voice --revision v2");
        assert_eq!(ModelRef::parse("gpt2@main").unwrap().download_command(), "hf download gpt2");
        assert_eq!("gpt2".parse::<ModelRef>().unwrap().folder_name(), "models--gpt2");
        assert_eq!(ModelRef::parse("gpt2").unwrap().explicit_revision(), None);
    }

    #[test]
    fn file_names_from_a_listing_stay_inside_their_folder() {
        for ok in ["model.safetensors", "sub/dir/x.nemo", ".gitattributes", "a..b"] {
            assert!(is_safe_file_name(ok), "{ok}");
        }
        for bad in ["", "/etc/passwd", "../x.nemo", "a/../../x", "a//b", "./x", "a\\b", "x\n", "a/"] {
            assert!(!is_safe_file_name(bad), "{bad:?}");
        }
    }
}
