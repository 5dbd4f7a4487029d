//! Git status and diffs of a session's directory, through the real `git` (each command limited
//! to [`GIT_TIMEOUT`]).

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use piface_shared::protocol::ToolError;
use serde_json::json;

/// Longest run of one git command.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(8);
/// Longest diff text returned (bytes of UTF-8).
pub const DIFF_MAX: usize = 512 * 1024;

struct Output {
    ok: bool,
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

async fn git(dir: &str, args: &[&str]) -> Result<Output, ToolError> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("-C")
        .arg(dir)
        .args(args)
        // Read-only commands must not take the index lock from a git the user is running.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = match tokio::time::timeout(GIT_TIMEOUT, cmd.output()).await {
        Err(_) => return Err(ToolError::new(504, "Command timed out")),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ToolError::new(500, "git is not installed on this agent"))
        }
        Ok(Err(e)) => return Err(ToolError::new(500, format!("git: {e}"))),
        Ok(Ok(out)) => out,
    };
    Ok(Output {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The work tree's root, or `None` when `dir` is not in one.
async fn repo_root(dir: &str) -> Result<Option<String>, ToolError> {
    let inside = git(dir, &["rev-parse", "--is-inside-work-tree"]).await?;
    if !inside.ok || text(&inside) != "true" {
        return Ok(None);
    }
    let top = git(dir, &["rev-parse", "--show-toplevel"]).await?;
    Ok(top.ok.then(|| text(&top)))
}

/// `GET /api/sessions/{id}/git/status`.
pub async fn status(dir: &str) -> Result<serde_json::Value, ToolError> {
    let Some(root) = repo_root(dir).await? else {
        return Ok(json!({ "is_repo": false, "repo_root": null, "branch": null, "head": null, "files": [] }));
    };
    let branch = git(dir, &["rev-parse", "--abbrev-ref", "HEAD"]).await?;
    let head = git(dir, &["rev-parse", "--short", "HEAD"]).await?;
    let st = git(&root, &["status", "--porcelain=v1", "-z"]).await?;
    if !st.ok {
        return Err(ToolError::new(500, st.stderr));
    }
    let mut files = parse_porcelain(&st.stdout);
    files.sort_by_key(|f| f.path.to_lowercase());
    let files: Vec<_> = files
        .into_iter()
        .map(|f| {
            let (x, y) = (f.code[0], f.code[1]);
            json!({
                "path": f.path,
                "status": String::from_utf8_lossy(&f.code),
                "staged": x != b' ' && x != b'?',
                "unstaged": y != b' ' && y != b'?',
                "untracked": &f.code == b"??",
                "old_path": f.old_path,
            })
        })
        .collect();
    Ok(json!({
        "is_repo": true,
        "repo_root": root,
        "branch": branch.ok.then(|| text(&branch)),
        "head": head.ok.then(|| text(&head)),
        "files": files,
    }))
}

#[derive(Debug, PartialEq)]
struct StatusEntry {
    code: [u8; 2],
    path: String,
    old_path: Option<String>,
}

/// Entries of `git status --porcelain=v1 -z`: `XY path\0`, and for renames and copies the
/// source path as the next field.
fn parse_porcelain(out: &[u8]) -> Vec<StatusEntry> {
    let mut fields = out.split(|&b| b == 0).filter(|f| !f.is_empty());
    let mut entries = Vec::new();
    while let Some(f) = fields.next() {
        if f.len() < 4 {
            continue;
        }
        let code = [f[0], f[1]];
        let path = String::from_utf8_lossy(&f[3..]).into_owned();
        let old_path = if matches!(code[0], b'R' | b'C') || matches!(code[1], b'R' | b'C') {
            fields.next().map(|o| String::from_utf8_lossy(o).into_owned())
        } else {
            None
        };
        entries.push(StatusEntry { code, path, old_path });
    }
    entries
}

/// `path` (relative to `root` or absolute) made relative to `root`, refusing anything that
/// leaves it, through `..` or a symlink.
fn inside_repo(root: &Path, path: &str) -> Result<PathBuf, ToolError> {
    let outside = || ToolError::new(400, "Path must stay inside the repository");
    let joined = root.join(path);
    // Lexical first (a deleted file cannot be resolved), then through symlinks when it exists.
    let mut lexical = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                if !lexical.pop() {
                    return Err(outside());
                }
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let resolved = std::fs::canonicalize(&lexical).unwrap_or(lexical);
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    resolved.strip_prefix(&root).map(Path::to_path_buf).map_err(|_| outside())
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn truncate_utf8(mut s: String, max: usize) -> (String, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    (s, true)
}

/// `GET /api/sessions/{id}/git/diff`.
pub async fn diff(dir: &str, path: Option<&str>, staged: bool) -> Result<serde_json::Value, ToolError> {
    let Some(root) = repo_root(dir).await? else {
        return Ok(json!({
            "is_repo": false, "repo_root": null, "path": path, "staged": staged, "diff": "", "truncated": false,
        }));
    };
    let rel = match path {
        Some(p) if p.trim().is_empty() => return Err(ToolError::new(400, "Path cannot be empty")),
        Some(p) => Some(inside_repo(Path::new(&root), p)?),
        None => None,
    };
    let rel_str = rel.as_ref().map(|r| if r.as_os_str().is_empty() { ".".into() } else { r.to_string_lossy() });
    // A renamed file diffs against its old path, so the rename shows as one (not as a new file).
    let mut renamed_from = None;
    if let Some(r) = rel_str.as_deref() {
        let st = git(&root, &["status", "--porcelain=v1", "-z"]).await?;
        renamed_from = parse_porcelain(&st.stdout).into_iter().find(|e| e.path == r).and_then(|e| e.old_path);
    }
    let mut args = vec!["diff"];
    if staged {
        args.push("--cached");
    }
    args.extend(["-M", "--no-color", "--no-ext-diff", "--"]);
    if let Some(old) = renamed_from.as_deref() {
        args.push(old);
    }
    if let Some(r) = rel_str.as_deref() {
        args.push(r);
    }
    let out = git(&root, &args).await?;
    if !out.ok {
        return Err(ToolError::new(500, out.stderr));
    }
    let mut diff = out.stdout;
    if let (Some(r), false, true) = (rel_str.as_deref(), staged, diff.is_empty()) {
        // A new file has no diff against the index: show it as all added.
        let exists = Path::new(&root).join(r).is_file();
        if exists && !git(&root, &["ls-files", "--error-unmatch", "--", r]).await?.ok {
            let new = git(&root, &["diff", "--no-index", "--no-color", "--no-ext-diff", "--", "/dev/null", r]).await?;
            if !matches!(new.code, Some(0 | 1)) {
                return Err(ToolError::new(500, new.stderr));
            }
            diff = new.stdout;
        }
    }
    let (diff, truncated) = truncate_utf8(String::from_utf8_lossy(&diff).into_owned(), DIFF_MAX);
    Ok(json!({
        "is_repo": true,
        "repo_root": root,
        "path": rel_str,
        "staged": staged,
        "diff": diff,
        "truncated": truncated,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn porcelain_with_renames_and_odd_names() {
        let out = b" M src/a.rs\0R  new.txt\0old.txt\0?? dir/\0D  gone\0";
        let e = parse_porcelain(out);
        assert_eq!(e.len(), 4);
        assert_eq!(e[1], StatusEntry { code: *b"R ", path: "new.txt".into(), old_path: Some("old.txt".into()) });
        assert_eq!(e[2].path, "dir/");
        assert_eq!(e[3].code, *b"D ");
    }

    #[test]
    fn paths_may_not_leave_the_repository() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("f"), "x").unwrap();
        assert_eq!(inside_repo(root.path(), "f").unwrap(), PathBuf::from("f"));
        assert_eq!(inside_repo(root.path(), "a/../f").unwrap(), PathBuf::from("f"));
        assert_eq!(inside_repo(root.path(), "deleted/file").unwrap(), PathBuf::from("deleted/file"));
        let abs = root.path().join("f");
        assert_eq!(inside_repo(root.path(), abs.to_str().unwrap()).unwrap(), PathBuf::from("f"));
        assert_eq!(inside_repo(root.path(), "../x").unwrap_err().status, 400);
        assert_eq!(inside_repo(root.path(), "/etc/passwd").unwrap_err().status, 400);
        std::os::unix::fs::symlink("/etc", root.path().join("link")).unwrap();
        assert_eq!(inside_repo(root.path(), "link/passwd").unwrap_err().status, 400);
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        let (s, cut) = truncate_utf8("aé".repeat(4), 4);
        assert_eq!((s.as_str(), cut), ("aéa", true));
        assert_eq!(truncate_utf8("abc".into(), 3), ("abc".into(), false));
    }
}
