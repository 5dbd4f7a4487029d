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

/// The diff `git diff --no-index /dev/null <rel>` prints for the regular file `rel` of `root`
/// (without its `index` line, which needs the blob's hash); `None` when `rel` is missing or not
/// a regular file. At most [`DIFF_MAX`] bytes of the file are kept, but all of it is counted,
/// so the hunk header is right when the text is cut.
fn added_file_diff(root: &Path, rel: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use rustix::fs::OFlags;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let file = match super::beneath::open(root, rel, OFlags::RDONLY | OFlags::NONBLOCK) {
        Ok(fd) => std::fs::File::from(fd),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    let mut head = Vec::new();
    let mut reader = file.take(DIFF_MAX as u64);
    reader.read_to_end(&mut head)?;
    let (mut newlines, mut last) = (bytecount(&head), head.last().copied());
    let mut rest = reader.into_inner();
    let mut buf = vec![0; 64 * 1024];
    let mut cut = false;
    loop {
        let n = rest.read(&mut buf)?;
        if n == 0 {
            break;
        }
        cut = true;
        newlines += bytecount(&buf[..n]);
        last = Some(buf[n - 1]);
    }
    let lines = newlines + usize::from(last.is_some_and(|b| b != b'\n'));
    let name = rel.as_os_str().as_encoded_bytes();
    let (a, b) = (quote_path(b"a/", name), quote_path(b"b/", name));
    let mode = if meta.permissions().mode() & 0o111 != 0 { "100755" } else { "100644" };
    let mut out = format!("diff --git {a} {b}\nnew file mode {mode}\n").into_bytes();
    if lines == 0 {
        return Ok(Some(out));
    }
    // git's test for binary content: a NUL in the first 8000 bytes.
    if head[..head.len().min(8000)].contains(&0) {
        out.extend_from_slice(format!("Binary files /dev/null and {b} differ\n").as_bytes());
        return Ok(Some(out));
    }
    // git ends a name with a space in it with a tab on the `+++` line.
    let tab = if name.contains(&b' ') { "\t" } else { "" };
    let count = if lines == 1 { "1".to_string() } else { format!("1,{lines}") };
    out.extend_from_slice(format!("--- /dev/null\n+++ {b}{tab}\n@@ -0,0 +{count} @@\n").as_bytes());
    for line in head.split_inclusive(|&c| c == b'\n') {
        out.push(b'+');
        out.extend_from_slice(line);
    }
    if last.is_some_and(|b| b != b'\n') && !cut {
        out.extend_from_slice(b"\n\\ No newline at end of file\n");
    }
    Ok(Some(out))
}

fn bytecount(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// `prefix` + `name` as git prints a path (`core.quotePath`, its default): as is, or in double
/// quotes with C escapes when it has control characters, quotes, backslashes or bytes past
/// ASCII (those as octal).
fn quote_path(prefix: &[u8], name: &[u8]) -> String {
    let plain = |c: u8| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\';
    let path: Vec<u8> = prefix.iter().chain(name).copied().collect();
    if path.iter().all(|&c| plain(c)) {
        return String::from_utf8(path).expect("ASCII");
    }
    let mut out = String::from("\"");
    for c in path {
        match c {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            c if plain(c) => out.push(c as char),
            c => out.push_str(&format!("\\{c:03o}")),
        }
    }
    out.push('"');
    out
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
        // A new file has no diff against the index: show it as all added. It is read here,
        // beneath the repository's root with no link followed (what was checked is what is
        // read), not by `git diff --no-index`, which would open the name again.
        if !git(&root, &["ls-files", "--error-unmatch", "--", r]).await?.ok {
            let (root, rel) = (PathBuf::from(&root), PathBuf::from(r));
            let added = tokio::task::spawn_blocking(move || added_file_diff(&root, &rel))
                .await
                .map_err(|e| ToolError::new(500, e.to_string()))?;
            match added {
                Ok(Some(text)) => diff = text,
                Ok(None) => {}
                Err(e) if super::beneath::is_swap(&e) => {
                    return Err(ToolError::new(400, "Path must stay inside the repository"))
                }
                Err(e) => return Err(ToolError::new(500, format!("{r}: {e}"))),
            }
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

    #[test]
    fn a_new_file_s_diff_is_the_one_git_prints() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let files: [(&str, &[u8]); 7] = [
            ("plain.txt", b"one\ntwo\n"),
            ("no-newline.txt", b"a\nb"),
            ("one line", b"x"),
            ("t\u{e9}st \"q\".txt", b"caf\xc3\xa9\n"),
            ("bin.dat", b"x\0y\n"),
            ("empty", b""),
            ("run.sh", b"#!/bin/sh\n"),
        ];
        for (name, bytes) in files {
            std::fs::write(r.join(name), bytes).unwrap();
        }
        std::fs::set_permissions(r.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        for (name, _) in files {
            let out = std::process::Command::new("git")
                .current_dir(r)
                .args(["diff", "--no-index", "--no-color", "--no-ext-diff", "--", "/dev/null", name])
                .output()
                .unwrap();
            let want: String = String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .filter(|l| !l.starts_with("index "))
                .map(|l| format!("{l}\n"))
                .collect();
            let got = added_file_diff(r, Path::new(name)).unwrap().unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), want, "{name}");
        }
        assert_eq!(added_file_diff(r, Path::new("missing")).unwrap(), None);
        std::os::unix::fs::symlink("/etc/hostname", r.join("link")).unwrap();
        assert!(super::super::beneath::is_swap(&added_file_diff(r, Path::new("link")).unwrap_err()));
    }
}
