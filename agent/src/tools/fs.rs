//! Files for the browser: listing, directory completion, previews and raw bytes, limited to
//! the agent's file roots (`--fs-root`, default the user's home) minus Piface's own private
//! directories (the coordinator's data dir, the agent's identity and state dir), which are never
//! listed or served even inside a root.
//!
//! Every path is resolved (`..`, symlinks) before it is checked, so neither `../` nor a symlink
//! inside a root reaches a file outside; then the checked path is opened beneath its root
//! without following any link ([`super::beneath`]), so a symlink swapped in after the check
//! makes the open fail instead of escaping. Listings report paths as the caller joined them
//! (not resolved), as the original does; names that are not UTF-8 are shown with replacement
//! characters.

use std::ffi::OsStr;
use std::io::{ErrorKind, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use piface_shared::protocol::{FileMeta, FromAgent, RequestId, ToolError};
use rustix::fs::OFlags;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

/// Largest code/Markdown preview (bytes).
pub const PREVIEW_MAX: u64 = 512 * 1024;
/// Largest raw file (bytes).
pub const RAW_MAX: u64 = 8 * 1024 * 1024;
/// Bytes per chunk when streaming a file.
const CHUNK: usize = 256 * 1024;
/// The one subdirectory of a private directory that is served: the original's default place for
/// worktrees (`~/.local/share/piface/worktrees/…`), which hold the user's projects.
pub const WORKTREES: &str = "worktrees";

/// The directories the file endpoints may reach, resolved, and the private ones they never do.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    roots: Vec<PathBuf>,
    private: Vec<PathBuf>,
}

/// A path checked against the roots: its canonical form and the root it lies in.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The canonical path.
    pub path: PathBuf,
    root: PathBuf,
}

impl Checked {
    /// Opens the checked path beneath its root, following no link (see [`super::beneath`]).
    pub fn open(&self, flags: OFlags) -> std::io::Result<OwnedFd> {
        let rel = self.path.strip_prefix(&self.root).unwrap_or(Path::new(""));
        super::beneath::open(&self.root, rel, flags)
    }
}

/// `path` made absolute and resolved as far as it exists: the canonical form of its nearest
/// existing ancestor joined with the rest, which must be plain names (no `..` after a missing
/// directory). `None` when nothing of it resolves.
pub fn resolve_lenient(path: &Path) -> Option<PathBuf> {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = std::fs::canonicalize(existing) {
            let rest: PathBuf = rest.iter().rev().collect();
            if !rest.as_os_str().is_empty() && !is_plain_relative(&rest) {
                return None;
            }
            return Some(c.join(rest));
        }
        rest.push(existing.file_name()?.to_os_string());
        existing = existing.parent()?;
    }
}

impl Roots {
    /// Roots from the configured paths; ones that do not exist are skipped (with a warning).
    /// `private`: directories never listed or served inside them (they need not exist yet).
    pub fn new(paths: &[PathBuf], private: &[PathBuf]) -> Roots {
        let mut roots = Vec::new();
        for p in paths {
            match std::fs::canonicalize(p) {
                Ok(c) => roots.push(c),
                Err(e) => tracing::warn!("file root {} skipped: {e}", p.display()),
            }
        }
        let private = private.iter().filter_map(|p| resolve_lenient(p)).collect();
        Roots { roots, private }
    }

    /// Adds `dir`, where Piface makes worktrees by default (`~/.local/share/piface/worktrees`,
    /// the original's place), as a root: a session in a project's worktree must run whatever
    /// `--fs-root` says, and what is there are checkouts of projects that were inside a root
    /// when Piface made them. It need not exist yet (a link put there later resolves elsewhere
    /// and is refused).
    pub fn with_worktrees(mut self, dir: &Path) -> Roots {
        if let Some(dir) = resolve_lenient(dir) {
            if !self.roots.iter().any(|r| dir.starts_with(r)) {
                self.roots.push(dir);
            }
        }
        self
    }

    /// The root the resolved path `p` lies in.
    fn root_of(&self, resolved: &Path) -> Option<&PathBuf> {
        self.roots.iter().find(|r| resolved.starts_with(r))
    }

    /// Whether the resolved path `p` lies inside a root.
    fn contains(&self, resolved: &Path) -> bool {
        self.root_of(resolved).is_some()
    }

    /// Whether the resolved path lies in one of Piface's private directories (and not in the
    /// worktrees directory of one).
    pub fn is_private(&self, resolved: &Path) -> bool {
        self.private.iter().any(|p| resolved.starts_with(p) && !resolved.starts_with(p.join(WORKTREES)))
    }

    /// `path` resolved, if it lies inside a root.
    pub fn check(&self, path: &str) -> Result<PathBuf, ToolError> {
        self.resolve(path, "Not found").map(|c| c.path)
    }

    /// `path` resolved, if it is a directory inside a root: 400 `Directory does not exist`
    /// when it is missing, 403 outside the roots.
    pub fn check_dir(&self, path: &str) -> Result<PathBuf, ToolError> {
        let checked = self.resolve(path, "Directory does not exist")?;
        if !checked.path.is_dir() {
            return Err(ToolError::new(400, format!("Directory does not exist: {path}")));
        }
        Ok(checked.path)
    }

    /// Checks a path that may not exist yet (a new worktree): as far as it exists it is
    /// resolved, and the result must lie inside a root and outside the private directories.
    pub fn check_new(&self, path: &Path) -> Result<PathBuf, ToolError> {
        let shown = path.display();
        let resolved =
            resolve_lenient(path).ok_or_else(|| ToolError::new(400, format!("Not a plain absolute path: {shown}")))?;
        if !self.contains(&resolved) {
            return Err(ToolError::new(403, format!("Outside the allowed file roots: {shown}")));
        }
        if self.is_private(&resolved) {
            return Err(ToolError::new(403, format!("Inside Piface's private files: {shown}")));
        }
        Ok(resolved)
    }

    /// Resolves `path` (absolute) and checks it against the roots and the private directories;
    /// `what` names the kind of path in the not-found error (`Not a file`, `Not a directory`).
    pub fn resolve(&self, path: &str, what: &str) -> Result<Checked, ToolError> {
        let p = Path::new(path);
        if !p.is_absolute() {
            return Err(ToolError::new(400, format!("Path must be absolute: {path}")));
        }
        let resolved = std::fs::canonicalize(p).map_err(|e| match e.kind() {
            ErrorKind::PermissionDenied => ToolError::new(403, format!("Permission denied: {path}")),
            _ => ToolError::new(400, format!("{what}: {path}")),
        })?;
        let Some(root) = self.root_of(&resolved).cloned() else {
            return Err(ToolError::new(403, format!("Outside the allowed file roots: {path}")));
        };
        if self.is_private(&resolved) {
            return Err(ToolError::new(403, format!("Inside Piface's private files: {path}")));
        }
        Ok(Checked { path: resolved, root })
    }
}

fn io_error(e: std::io::Error, path: &str, what: &str) -> ToolError {
    if super::beneath::is_swap(&e) {
        // A link appeared on the checked path between the check and the open.
        return ToolError::new(403, format!("Outside the allowed file roots: {path}"));
    }
    match e.kind() {
        ErrorKind::PermissionDenied => ToolError::new(403, format!("Permission denied: {path}")),
        _ => ToolError::new(400, format!("{what}: {path}")),
    }
}

fn lossy(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn joined(e: tokio::task::JoinError) -> ToolError {
    ToolError::new(500, e.to_string())
}

/// `GET /api/fs/list`: every child of a directory, sorted by path; Piface's private directories
/// are left out.
pub async fn list(roots: &Roots, path: &str) -> Result<serde_json::Value, ToolError> {
    let dir = roots.resolve(path, "Not a directory")?;
    let (roots, path) = (roots.clone(), path.to_string());
    tokio::task::spawn_blocking(move || list_blocking(&roots, &dir, &path)).await.map_err(joined)?
}

fn list_blocking(roots: &Roots, dir: &Checked, path: &str) -> Result<serde_json::Value, ToolError> {
    let fd = dir.open(OFlags::RDONLY | OFlags::DIRECTORY).map_err(|e| match e.raw_os_error() {
        Some(code) if code == rustix::io::Errno::NOTDIR.raw_os_error() => {
            ToolError::new(400, format!("Not a directory: {path}"))
        }
        _ => io_error(e, path, "Not a directory"),
    })?;
    let read = rustix::fs::Dir::read_from(&fd).map_err(|e| io_error(e.into(), path, "Not a directory"))?;
    let mut entries = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| io_error(e.into(), path, "Not a directory"))?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." || roots.is_private(&dir.path.join(name)) {
            continue;
        }
        // Follows symlinks, as a directory browser should show where a link leads.
        let is_dir = rustix::fs::statat(&fd, entry.file_name(), rustix::fs::AtFlags::empty())
            .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory);
        let joined = Path::new(path).join(name);
        entries.push((joined.into_os_string(), name.to_os_string(), is_dir));
    }
    // Byte order of the paths, as the original sorts.
    entries.sort_by(|a, b| a.0.as_encoded_bytes().cmp(b.0.as_encoded_bytes()));
    let entries: Vec<_> = entries
        .into_iter()
        .map(|(p, name, is_dir)| {
            json!({ "name": name.to_string_lossy(), "path": Path::new(&p).to_string_lossy(), "is_dir": is_dir })
        })
        .collect();
    Ok(json!({ "entries": entries }))
}

/// `GET /api/fs/complete`: directories in the prefix's parent whose name starts with its last
/// component. Never an error: anything unreadable or outside the roots completes to nothing.
pub async fn complete(roots: &Roots, prefix: &str) -> serde_json::Value {
    let trimmed = if prefix.len() > 1 { prefix.strip_suffix('/').unwrap_or(prefix) } else { prefix };
    let (parent, stem) = match trimmed.rfind('/') {
        Some(0) => ("/", &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => return json!({ "matches": [] }),
    };
    let mut matches = Vec::new();
    // Inside a root: every directory. Above the roots (`/`, `/home`): only the way down to them,
    // so typing a root's path from `/` completes without showing the rest of the machine.
    let dir = std::fs::canonicalize(parent).ok().filter(|d| d.is_absolute() && Path::new(parent).is_absolute());
    if let Some(dir) = dir.filter(|d| !roots.is_private(d)) {
        let inside = roots.contains(&dir);
        if inside || roots.roots.iter().any(|r| r.starts_with(&dir)) {
            if let Ok(mut read) = tokio::fs::read_dir(&dir).await {
                while let Ok(Some(e)) = read.next_entry().await {
                    let name = e.file_name();
                    if !name.as_encoded_bytes().starts_with(stem.as_bytes()) || roots.is_private(&e.path()) {
                        continue;
                    }
                    let leads_to_root = || roots.roots.iter().any(|r| r.starts_with(e.path()));
                    if (inside || leads_to_root()) && tokio::fs::metadata(e.path()).await.is_ok_and(|m| m.is_dir()) {
                        matches.push(lossy(&Path::new(parent).join(&name)));
                    }
                }
            }
        }
    }
    matches.sort();
    json!({ "matches": matches })
}

/// What a preview shows of a file, by name (the original's rules, first match wins).
pub fn kind_of(name: &str, mime: &str) -> &'static str {
    const CODE: &[&str] = &[
        ".txt",
        ".py",
        ".js",
        ".ts",
        ".tsx",
        ".jsx",
        ".json",
        ".yaml",
        ".yml",
        ".toml",
        ".ini",
        ".cfg",
        ".xml",
        ".css",
        ".scss",
        ".sql",
        ".sh",
        ".bash",
        ".zsh",
        ".go",
        ".rs",
        ".java",
        ".kt",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".swift",
        ".rb",
        ".php",
        ".svelte",
        ".vue",
        ".lock",
        ".gitignore",
        ".dockerignore",
        ".env",
    ];
    let lower = name.to_lowercase();
    let suffix = Path::new(&lower).extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    if mime.starts_with("image/") {
        "image"
    } else if [".md", ".markdown", ".mdx"].contains(&suffix.as_str()) {
        "markdown"
    } else if suffix == ".html" || suffix == ".htm" || mime == "text/html" {
        "html"
    } else if mime.starts_with("text/") || CODE.contains(&suffix.as_str()) || CODE.contains(&lower.as_str()) {
        "code"
    } else {
        "binary"
    }
}

/// The MIME type guessed from a file name.
pub fn mime_of(name: &str) -> String {
    mime_guess::from_path(name).first_raw().unwrap_or("application/octet-stream").to_string()
}

/// `path` percent-encoded for a query string, `/` left as is.
fn query_encode(path: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(path, SET).to_string()
}

/// Opens a checked file for reading: a regular file, or an error. `O_NONBLOCK` so a FIFO
/// planted under a previewed name cannot hang the open (it is then refused as not a file).
fn open_file(file: &Checked, path: &str) -> Result<(std::fs::File, std::fs::Metadata), ToolError> {
    let fd = file.open(OFlags::RDONLY | OFlags::NONBLOCK).map_err(|e| io_error(e, path, "Not a file"))?;
    let file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(|e| io_error(e, path, "Not a file"))?;
    if !meta.is_file() {
        return Err(ToolError::new(400, format!("Not a file: {path}")));
    }
    Ok((file, meta))
}

/// `GET /api/fs/file`: metadata, and the text of code and Markdown files.
pub async fn file(roots: &Roots, path: &str) -> Result<serde_json::Value, ToolError> {
    let checked = roots.resolve(path, "Not a file")?;
    let path = path.to_string();
    tokio::task::spawn_blocking(move || file_blocking(&checked, &path)).await.map_err(joined)?
}

fn file_blocking(checked: &Checked, path: &str) -> Result<serde_json::Value, ToolError> {
    let (file, meta) = open_file(checked, path)?;
    let name = Path::new(path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mime = mime_of(&name);
    let kind = kind_of(&name, &mime);
    let content = if kind == "code" || kind == "markdown" {
        if meta.len() > PREVIEW_MAX {
            return Err(ToolError::new(413, format!("File too large to preview. Max {PREVIEW_MAX} bytes.")));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(PREVIEW_MAX).read_to_end(&mut bytes).map_err(|e| io_error(e, path, "Not a file"))?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    } else {
        None
    };
    let raw_url = (kind == "html" || kind == "image").then(|| format!("/api/fs/raw?path={}", query_encode(path)));
    Ok(json!({
        "path": path,
        "name": name,
        "size": meta.len(),
        "mime_type": mime,
        "kind": kind,
        "content": content,
        "raw_url": raw_url,
    }))
}

/// `GET /api/fs/raw`: streams a file on `out` (head, chunks, end), without holding it whole.
pub async fn read_raw(roots: Roots, req: RequestId, path: String, max: u64, out: mpsc::Sender<FromAgent>) {
    let opened = async {
        let checked = roots.resolve(&path, "Not a file")?;
        let p = path.clone();
        let (file, meta) = tokio::task::spawn_blocking(move || open_file(&checked, &p)).await.map_err(joined)??;
        if meta.len() > max {
            return Err(ToolError::new(413, format!("File too large to preview. Max {max} bytes.")));
        }
        let modified =
            meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs());
        let name = Path::new(&path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok((tokio::fs::File::from_std(file), FileMeta { size: meta.len(), mime_type: mime_of(&name), modified }))
    }
    .await;
    let (mut file, meta) = match opened {
        Ok(x) => x,
        Err(e) => {
            let _ = out.send(FromAgent::FileHead { req, result: Err(e) }).await;
            return;
        }
    };
    let size = meta.size;
    if out.send(FromAgent::FileHead { req, result: Ok(meta) }).await.is_err() {
        return;
    }
    let mut sent = 0u64;
    let error = loop {
        // Never more than the size announced: a file growing meanwhile would break the length.
        let want = CHUNK.min((size - sent) as usize);
        if want == 0 {
            break None;
        }
        let mut buf = vec![0u8; want];
        match file.read(&mut buf).await {
            Ok(0) => break Some(format!("{path} shrank while being read")),
            Ok(n) => {
                buf.truncate(n);
                sent += n as u64;
                if out.send(FromAgent::FileChunk { req, data: Bytes::from(buf) }).await.is_err() {
                    return; // the reader went away
                }
            }
            Err(e) => break Some(e.to_string()),
        }
    };
    let _ = out.send(FromAgent::FileEnd { req, error }).await;
}

/// Whether `rel` is a relative path that stays inside wherever it is joined (no `..`, not
/// absolute).
pub fn is_plain_relative(rel: &Path) -> bool {
    !rel.as_os_str().is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_original_rules() {
        for (name, kind) in [
            ("a.png", "image"),
            ("README.md", "markdown"),
            ("x.MDX", "markdown"),
            ("page.html", "html"),
            ("main.rs", "code"),
            ("notes.txt", "code"),
            ("Cargo.lock", "code"),
            (".gitignore", "code"),
            (".env", "code"),
            ("style.css", "code"),
            ("blob.bin", "binary"),
            ("archive.tar.gz", "binary"),
        ] {
            assert_eq!(kind_of(name, &mime_of(name)), kind, "{name}");
        }
    }

    #[test]
    fn raw_urls_escape_all_but_slashes() {
        assert_eq!(query_encode("/a b/c&d=é.txt"), "/a%20b/c%26d%3D%C3%A9.txt");
    }

    /// A root with `a/f.txt` inside and `f.txt` ("SECRET") in a directory outside it.
    fn swap_fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("a/f.txt"), "inside").unwrap();
        std::fs::write(outside.join("f.txt"), "SECRET").unwrap();
        (tmp, root, outside)
    }

    /// Replaces `root/a` by a symlink to `outside` (the real directory kept as `a.real`), or back.
    fn swap(root: &Path, outside: &Path, to_link: bool) {
        if to_link {
            std::fs::rename(root.join("a"), root.join("a.real")).unwrap();
            std::os::unix::fs::symlink(outside, root.join("a")).unwrap();
        } else {
            std::fs::remove_file(root.join("a")).unwrap();
            std::fs::rename(root.join("a.real"), root.join("a")).unwrap();
        }
    }

    #[test]
    fn a_symlink_swapped_in_after_the_check_is_not_followed() {
        let (_tmp, root, outside) = swap_fixture();
        let roots = Roots::new(std::slice::from_ref(&root), &[]);
        let path = root.join("a/f.txt");
        let checked = roots.resolve(path.to_str().unwrap(), "Not a file").unwrap();
        swap(&root, &outside, true); // between the check and the open
        let e = file_blocking(&checked, path.to_str().unwrap()).unwrap_err();
        assert_eq!(e.status, 403, "{e:?}");
        // Resolved now, the link leads outside: refused by the check itself.
        assert_eq!(roots.resolve(path.to_str().unwrap(), "Not a file").unwrap_err().status, 403);
        swap(&root, &outside, false);
        assert_eq!(file_blocking(&checked, path.to_str().unwrap()).unwrap()["content"], "inside");
    }

    #[test]
    fn reads_racing_a_symlink_swap_never_see_outside() {
        let (_tmp, root, outside) = swap_fixture();
        let roots = Roots::new(std::slice::from_ref(&root), &[]);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let swapper = {
            let (root, outside, stop) = (root.clone(), outside.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    swap(&root, &outside, true);
                    swap(&root, &outside, false);
                    n += 1;
                }
                n
            })
        };
        let path = root.join("a/f.txt");
        let path = path.to_str().unwrap();
        let (mut inside, mut refused) = (0, 0);
        for _ in 0..20_000 {
            match roots.resolve(path, "Not a file").and_then(|c| file_blocking(&c, path)) {
                Ok(v) => {
                    assert_eq!(v["content"], "inside", "a read escaped the root");
                    inside += 1;
                }
                Err(_) => refused += 1,
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let swaps = swapper.join().unwrap();
        assert!(inside > 0 && swaps > 0, "inside {inside}, refused {refused}, swaps {swaps}");
    }

    #[tokio::test]
    async fn the_default_worktrees_folder_is_a_root_even_when_the_roots_are_narrowed() {
        let home = tempfile::tempdir().unwrap();
        let h = std::fs::canonicalize(home.path()).unwrap();
        let projects = h.join("src");
        std::fs::create_dir_all(&projects).unwrap();
        std::fs::write(h.join("secret.txt"), "no").unwrap();
        let data = h.join(".local/share/piface");
        let worktrees = data.join(WORKTREES);
        // Not there yet when the agent starts.
        let roots = Roots::new(std::slice::from_ref(&projects), &[data.clone()]).with_worktrees(&worktrees);
        let s = |p: &Path| p.to_str().unwrap().to_string();
        assert!(roots.check_new(&worktrees.join("proj/wt")).is_ok());
        std::fs::create_dir_all(worktrees.join("proj/wt")).unwrap();
        std::fs::write(worktrees.join("proj/wt/main.rs"), "fn main() {}").unwrap();
        assert_eq!(list(&roots, &s(&worktrees.join("proj/wt"))).await.unwrap()["entries"][0]["name"], "main.rs");
        // The rest of the home and the data dir stay out.
        assert_eq!(file(&roots, &s(&h.join("secret.txt"))).await.unwrap_err().status, 403);
        assert_eq!(roots.check_new(&data.join("auth/new")).unwrap_err().status, 403);
        // A link planted in the worktrees folder resolves outside it and is refused.
        std::os::unix::fs::symlink(&h, worktrees.join("escape")).unwrap();
        assert_eq!(file(&roots, &s(&worktrees.join("escape/secret.txt"))).await.unwrap_err().status, 403);
    }

    #[tokio::test]
    async fn private_directories_inside_a_root_are_neither_listed_nor_served() {
        let home = tempfile::tempdir().unwrap();
        let h = std::fs::canonicalize(home.path()).unwrap();
        let data = h.join(".local/share/piface");
        std::fs::create_dir_all(data.join("auth")).unwrap();
        std::fs::write(data.join("auth/token"), "t0ken").unwrap();
        std::fs::create_dir_all(data.join("worktrees/p/w")).unwrap();
        std::fs::write(data.join("worktrees/p/w/main.rs"), "fn main() {}").unwrap();
        std::fs::write(h.join("notes.md"), "# notes").unwrap();
        std::os::unix::fs::symlink(&data, h.join("sneaky")).unwrap();
        // The agent's dir does not exist yet: it is private all the same once made.
        let agent_dir = h.join(".local/share/piface-agent");
        let roots = Roots::new(std::slice::from_ref(&h), &[data.clone(), agent_dir.clone()]);
        std::fs::create_dir_all(&agent_dir).unwrap();
        std::fs::write(agent_dir.join("agent.key"), "key").unwrap();

        let s = |p: &Path| p.to_str().unwrap().to_string();
        for p in [data.clone(), data.join("auth"), agent_dir.clone(), h.join("sneaky")] {
            assert_eq!(list(&roots, &s(&p)).await.unwrap_err().status, 403, "{}", p.display());
        }
        for p in [data.join("auth/token"), agent_dir.join("agent.key"), h.join("sneaky/auth/token")] {
            assert_eq!(file(&roots, &s(&p)).await.unwrap_err().status, 403, "{}", p.display());
        }
        let listed = list(&roots, &s(&h.join(".local/share"))).await.unwrap();
        assert_eq!(listed["entries"], json!([]), "private entries are left out: {listed}");
        assert!(complete(&roots, &s(&h.join(".local/share/pi"))).await["matches"].as_array().unwrap().is_empty());
        assert_eq!(file(&roots, &s(&h.join("notes.md"))).await.unwrap()["content"], "# notes");
        // Worktrees under the data dir are the user's projects.
        let wt = data.join("worktrees/p/w");
        assert_eq!(list(&roots, &s(&wt)).await.unwrap()["entries"][0]["name"], "main.rs");
        assert!(roots.check_new(&wt.join("new")).is_ok());
        assert_eq!(roots.check_new(&data.join("auth/new")).unwrap_err().status, 403);
        assert_eq!(roots.check_new(Path::new("/etc/piface-new")).unwrap_err().status, 403);
        assert_eq!(roots.check_new(&h.join("missing/../../etc")).unwrap_err().status, 400);
    }
}
