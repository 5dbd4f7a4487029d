//! Files for the browser: listing, directory completion, previews and raw bytes, limited to
//! the agent's file roots (`--fs-root`, default the user's home).
//!
//! Every path is resolved (`..`, symlinks) before it is checked against the roots, so neither
//! `../` nor a symlink inside a root reaches a file outside. Listings report paths as the
//! caller joined them (not resolved), as the original does; names that are not UTF-8 are shown
//! with replacement characters.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use piface_shared::protocol::{FileMeta, FromAgent, RequestId, ToolError};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

/// Largest code/Markdown preview (bytes).
pub const PREVIEW_MAX: u64 = 512 * 1024;
/// Largest raw file (bytes).
pub const RAW_MAX: u64 = 8 * 1024 * 1024;
/// Bytes per chunk when streaming a file.
const CHUNK: usize = 256 * 1024;

/// The directories the file endpoints may reach, resolved.
#[derive(Debug, Clone)]
pub struct Roots(Vec<PathBuf>);

impl Roots {
    /// Roots from the configured paths; ones that do not exist are skipped (with a warning).
    pub fn new(paths: &[PathBuf]) -> Roots {
        let mut roots = Vec::new();
        for p in paths {
            match std::fs::canonicalize(p) {
                Ok(c) => roots.push(c),
                Err(e) => tracing::warn!("file root {} skipped: {e}", p.display()),
            }
        }
        Roots(roots)
    }

    /// Whether the resolved path `p` lies inside a root.
    fn contains(&self, resolved: &Path) -> bool {
        self.0.iter().any(|r| resolved.starts_with(r))
    }

    /// `path` resolved, if it lies inside a root.
    pub fn check(&self, path: &str) -> Result<PathBuf, ToolError> {
        self.resolve(path, "Not found")
    }

    /// Resolves `path` (absolute) and checks it against the roots; `what` names the kind of
    /// path in the not-found error (`Not a file`, `Not a directory`).
    fn resolve(&self, path: &str, what: &str) -> Result<PathBuf, ToolError> {
        let p = Path::new(path);
        if !p.is_absolute() {
            return Err(ToolError::new(400, format!("Path must be absolute: {path}")));
        }
        let resolved = std::fs::canonicalize(p).map_err(|e| match e.kind() {
            ErrorKind::PermissionDenied => ToolError::new(403, format!("Permission denied: {path}")),
            _ => ToolError::new(400, format!("{what}: {path}")),
        })?;
        if !self.contains(&resolved) {
            return Err(ToolError::new(403, format!("Outside the allowed file roots: {path}")));
        }
        Ok(resolved)
    }
}

fn io_error(e: std::io::Error, path: &str, what: &str) -> ToolError {
    match e.kind() {
        ErrorKind::PermissionDenied => ToolError::new(403, format!("Permission denied: {path}")),
        _ => ToolError::new(400, format!("{what}: {path}")),
    }
}

fn lossy(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `GET /api/fs/list`: every child of a directory, sorted by path.
pub async fn list(roots: &Roots, path: &str) -> Result<serde_json::Value, ToolError> {
    let dir = roots.resolve(path, "Not a directory")?;
    if !dir.is_dir() {
        return Err(ToolError::new(400, format!("Not a directory: {path}")));
    }
    let mut read = tokio::fs::read_dir(&dir).await.map_err(|e| io_error(e, path, "Not a directory"))?;
    let mut entries = Vec::new();
    loop {
        match read.next_entry().await {
            Ok(Some(e)) => {
                let joined = Path::new(path).join(e.file_name());
                // Follows symlinks, as a directory browser should show where a link leads.
                let is_dir = tokio::fs::metadata(e.path()).await.is_ok_and(|m| m.is_dir());
                entries.push((joined.into_os_string(), e.file_name(), is_dir));
            }
            Ok(None) => break,
            Err(e) => return Err(io_error(e, path, "Not a directory")),
        }
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
    if let Some(dir) = dir {
        let inside = roots.contains(&dir);
        if inside || roots.0.iter().any(|r| r.starts_with(&dir)) {
            if let Ok(mut read) = tokio::fs::read_dir(&dir).await {
                while let Ok(Some(e)) = read.next_entry().await {
                    let name = e.file_name();
                    if !name.as_encoded_bytes().starts_with(stem.as_bytes()) {
                        continue;
                    }
                    let leads_to_root = || roots.0.iter().any(|r| r.starts_with(e.path()));
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

/// `GET /api/fs/file`: metadata, and the text of code and Markdown files.
pub async fn file(roots: &Roots, path: &str) -> Result<serde_json::Value, ToolError> {
    let resolved = roots.resolve(path, "Not a file")?;
    let meta = tokio::fs::metadata(&resolved).await.map_err(|e| io_error(e, path, "Not a file"))?;
    if !meta.is_file() {
        return Err(ToolError::new(400, format!("Not a file: {path}")));
    }
    let name = Path::new(path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mime = mime_of(&name);
    let kind = kind_of(&name, &mime);
    let content = if kind == "code" || kind == "markdown" {
        if meta.len() > PREVIEW_MAX {
            return Err(ToolError::new(413, format!("File too large to preview. Max {PREVIEW_MAX} bytes.")));
        }
        let bytes = tokio::fs::read(&resolved).await.map_err(|e| io_error(e, path, "Not a file"))?;
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
        let resolved = roots.resolve(&path, "Not a file")?;
        let file = tokio::fs::File::open(&resolved).await.map_err(|e| io_error(e, &path, "Not a file"))?;
        let meta = file.metadata().await.map_err(|e| io_error(e, &path, "Not a file"))?;
        if !meta.is_file() {
            return Err(ToolError::new(400, format!("Not a file: {path}")));
        }
        if meta.len() > max {
            return Err(ToolError::new(413, format!("File too large to preview. Max {max} bytes.")));
        }
        let modified =
            meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs());
        let name = Path::new(&path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok((file, FileMeta { size: meta.len(), mime_type: mime_of(&name), modified }))
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
}
