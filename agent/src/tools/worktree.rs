//! Where a new session runs: its project (the git top level, or the directory itself), and for
//! worktree sessions a fresh `git worktree` made from the project's workspace config
//! (`.piface/workspace.toml`), as the original does.
//!
//! Unlike the original: the directory and the worktree root must lie inside the file roots
//! (and outside Piface's private directories); the file's `[bootstrap]` and `[launch]` run only
//! once its content is trusted (`trust.rs`); a new worktree's `.envrc` is allowed for direnv only
//! when the project's own `.envrc`, with the same content, is allowed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use piface_shared::protocol::ToolError;
use serde_json::json;

use super::fs::Roots;
use super::trust::{self, TrustStore, Use};
use super::workspace::{self, WorkspaceConfig};

/// What [`prepare`] is asked.
#[derive(Debug, Clone)]
pub struct Request {
    /// The directory the user chose.
    pub dir: String,
    /// Run in place (no worktree).
    pub shared: bool,
    /// The session's name, for the worktree's name.
    pub session_name: Option<String>,
    /// When branching a worktree session: its branch, the new worktree's base.
    pub source_branch: Option<String>,
    /// The session uses direnv: a new worktree's `.envrc` is allowed.
    pub use_direnv: bool,
}

async fn git(dir: &Path, args: &[&str]) -> Result<(bool, String, String), ToolError> {
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .map_err(|_| ToolError::new(504, format!("git {} timed out", args.join(" "))))?
        .map_err(|e| ToolError::new(500, format!("git: {e}")))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    ))
}

/// Lowercase, runs of anything but `[a-z0-9]` as one `-`, trimmed; `workspace` when empty.
pub fn slugify(text: &str) -> String {
    let mut out = String::new();
    for c in text.to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "workspace".into()
    } else {
        out
    }
}

/// `{name}` placeholders replaced by their values; unknown ones stay as they are.
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(text: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// One lock per project: worktrees of a project are made one at a time.
fn project_lock(project: &Path) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    LOCKS.get_or_init(Default::default).lock().unwrap().entry(project.to_path_buf()).or_default().clone()
}

/// The project of directory `dir` (resolved): its git top level, else itself.
pub async fn project_of(dir: &Path) -> Result<PathBuf, ToolError> {
    match git(dir, &["rev-parse", "--show-toplevel"]).await? {
        (true, top, _) => Ok(std::fs::canonicalize(&top).unwrap_or_else(|_| PathBuf::from(&top))),
        _ => Ok(dir.to_path_buf()),
    }
}

/// Refuses (409) when `project`'s workspace file would run untrusted commands for `uses`; an
/// unreadable file is left to whoever reads it next.
fn check_trust(trust: &TrustStore, project: &Path, uses: &[Use]) -> Result<(), ToolError> {
    match workspace::load_file(project) {
        Ok(loaded) => trust::check(trust, project, &loaded, uses),
        Err(_) => Ok(()),
    }
}

/// Resolves the project of `req.dir` and, for a non-shared session in a git repository, makes
/// its worktree. Answers the record fields: `project_dir`, `project_subdir`, `execution_dir`,
/// `workspace_mode` and the `workspace_*` fields of a worktree. The directory must lie inside
/// `roots`; untrusted workspace commands are refused before anything is made.
pub async fn prepare(req: Request, roots: &Roots, trust: &TrustStore) -> Result<serde_json::Value, ToolError> {
    let dir = Path::new(&req.dir);
    let resolved = roots.check_dir(&req.dir)?;
    let shared = |project: &Path, subdir: &str| {
        json!({
            "project_dir": project.to_string_lossy(),
            "project_subdir": subdir,
            "execution_dir": req.dir,
            "workspace_mode": "shared",
        })
    };
    let (in_repo, top, _) = git(dir, &["rev-parse", "--show-toplevel"]).await?;
    if !in_repo {
        check_trust(trust, &resolved, &[Use::Pi])?;
        return Ok(shared(&resolved, "."));
    }
    let project = std::fs::canonicalize(&top).unwrap_or_else(|_| PathBuf::from(&top));
    let subdir = match resolved.strip_prefix(&project) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
        _ => ".".into(),
    };
    if req.shared {
        check_trust(trust, &project, &[Use::Pi])?;
        return Ok(shared(&project, &subdir));
    }
    let loaded = workspace::load_file(&project).map_err(|e| ToolError::new(400, e))?;
    trust::check(trust, &project, &loaded, &[Use::Worktree, Use::Pi])?;
    let lock = project_lock(&project);
    let _held = lock.lock().await;
    make_worktree(&req, &project, &subdir, &loaded.config, roots).await
}

async fn make_worktree(
    req: &Request,
    project: &Path,
    subdir: &str,
    config: &WorkspaceConfig,
    roots: &Roots,
) -> Result<serde_json::Value, ToolError> {
    let project_str = project.to_string_lossy().into_owned();
    let project_name = project.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let project_slug = format!("{}-{}", slugify(&project_name), &sha256_hex(&project_str)[..7]);
    let base_name = Path::new(&req.dir).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let session_name = req.session_name.clone().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| base_name.clone());
    let session_slug = slugify(&session_name);
    let workspace_id = random_hex(6);
    let short_id = random_hex(3);
    let ws = &config.workspace;
    let vars = [
        ("project_name", project_name.as_str()),
        ("project_slug", project_slug.as_str()),
        ("session_name", session_name.as_str()),
        ("session_slug", session_slug.as_str()),
        ("short_id", short_id.as_str()),
    ];
    let name = slugify(&render(&ws.name_template, &vars));
    let root = crate::paths::expand_home(render(&ws.root, &[("project_slug", &project_slug)])).join(&name);
    if root == project || root.starts_with(project) || project.starts_with(&root) {
        return Err(ToolError::new(
            400,
            format!("The worktree root {} overlaps the project {project_str}", root.display()),
        ));
    }
    // The root comes from the (possibly committed) workspace file: it must stay in the roots.
    roots.check_new(&root)?;
    let base = match &req.source_branch {
        Some(b) => b.clone(),
        None => match ws.default_base.as_str() {
            "current_branch" => match git(project, &["rev-parse", "--abbrev-ref", "HEAD"]).await? {
                (true, b, _) if b != "HEAD" => b,
                _ => git(project, &["rev-parse", "HEAD"]).await?.1,
            },
            "repo_default_branch" => {
                match git(project, &["symbolic-ref", "--short", "refs/remotes/origin/HEAD"]).await? {
                    (true, b, _) if !b.is_empty() => b,
                    _ => "main".into(),
                }
            }
            other => other.to_string(),
        },
    };
    let branch = config.git.create_branch.then(|| {
        render(
            &config.git.branch_template,
            &[("branch_prefix", ws.branch_prefix.as_str()), ("workspace_name", name.as_str()), ("short_id", &short_id)],
        )
    });
    if let Some(parent) = root.parent() {
        std::fs::create_dir_all(parent).map_err(|e| ToolError::new(500, format!("{}: {e}", parent.display())))?;
    }
    let root_str = root.to_string_lossy().into_owned();
    let mut args = vec!["worktree", "add"];
    if config.git.detach {
        args.push("--detach");
    }
    args.push(&root_str);
    if let Some(b) = &branch {
        args.extend(["-b", b.as_str()]);
    }
    args.push(&base);
    let (ok, _, err) = git(project, &args).await?;
    if !ok {
        return Err(ToolError::new(400, format!("git worktree add failed: {err}")));
    }
    for (list, link) in [(&config.files.copy, false), (&config.files.symlink, true)] {
        for rel in list {
            let relp = Path::new(rel);
            if !super::fs::is_plain_relative(relp) {
                return Err(ToolError::new(
                    400,
                    format!("files entries must be relative paths inside the project: {rel}"),
                ));
            }
            place(project, &root, relp, link).map_err(|e| {
                let why = if refused_link(&e) { "a symlink is on the way".to_string() } else { e.to_string() };
                ToolError::new(400, format!("copying {rel} into the worktree: {why}"))
            })?;
        }
    }
    if req.use_direnv && root.join(".envrc").is_file() {
        // Allowing it unasked would bypass direnv's own trust prompt: only what the user has
        // allowed already, the same content in the project, is allowed in the worktree.
        if direnv_allows_same(project, &root).await {
            let allowed = tokio::process::Command::new("direnv").arg("allow").arg(&root).output().await;
            if !allowed.is_ok_and(|o| o.status.success()) {
                tracing::warn!(root = %root.display(), "direnv allow failed for the new worktree");
            }
        } else {
            tracing::info!(root = %root.display(), "the new worktree's .envrc is not allowed: the project's is not \
                allowed with the same content (allow it with POST /api/direnv/allow)");
        }
    }
    let mut bootstrap_log = None;
    if let Some(b) = &config.bootstrap {
        let log = bootstrap_log_path(&workspace_id);
        run_bootstrap(&b.shell, &b.script, &root, Duration::from_secs(b.timeout_seconds), &log).await?;
        bootstrap_log = Some(log.to_string_lossy().into_owned());
    }
    let execution_dir = if subdir == "." { root.clone() } else { root.join(subdir) };
    Ok(json!({
        "project_dir": project_str,
        "project_subdir": subdir,
        "execution_dir": execution_dir.to_string_lossy(),
        "workspace_mode": "git_worktree",
        "workspace_id": workspace_id,
        "workspace_name": name,
        "workspace_root": root_str,
        "workspace_branch": branch,
        "workspace_base_ref": base,
        "workspace_theme_override": config.ui.theme_override,
        "workspace_skin_override": config.ui.skin_override,
        "bootstrap_log_path": bootstrap_log,
    }))
}

/// Whether direnv allows `project`'s own `.envrc` and `worktree`'s has the same bytes.
async fn direnv_allows_same(project: &Path, worktree: &Path) -> bool {
    let (Ok(ours), Ok(theirs)) = (std::fs::read(project.join(".envrc")), std::fs::read(worktree.join(".envrc"))) else {
        return false;
    };
    if ours != theirs {
        return false;
    }
    let status = tokio::process::Command::new("direnv")
        .arg("status")
        .current_dir(project)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(10), status).await {
        Ok(Ok(out)) if out.status.success() => direnv_status_allows(&String::from_utf8_lossy(&out.stdout), project),
        _ => false,
    }
}

/// Reads `direnv status` run in `project`: its own `.envrc` was found and is allowed (direnv
/// 2.32 prints `allowed true`, later versions the state's number, `0` for allowed).
pub fn direnv_status_allows(status: &str, project: &Path) -> bool {
    let want = project.join(".envrc");
    let found = status.lines().filter_map(|l| l.strip_prefix("Found RC path ")).any(|p| Path::new(p.trim()) == want);
    let allowed =
        status.lines().filter_map(|l| l.strip_prefix("Found RC allowed ")).any(|v| matches!(v.trim(), "true" | "0"));
    found && allowed
}

/// Puts one `[files]` entry of `project` into the new worktree `root`: a copy, or a symlink to
/// the project's entry. The repository is the user's but its content may be anyone's, so no
/// symlink is followed on either side: a committed link on the way (`config -> /etc`) or at the
/// destination (`.env -> ~/.bashrc`) can neither make Piface read outside the project nor
/// write outside the worktree. An entry the project lacks is skipped.
fn place(project: &Path, root: &Path, rel: &Path, link: bool) -> std::io::Result<()> {
    use rustix::fs::OFlags;
    let (Some(name), parent) = (rel.file_name(), rel.parent().unwrap_or(Path::new(""))) else {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"));
    };
    let from = match super::beneath::open(project, parent, OFlags::RDONLY | OFlags::DIRECTORY) {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(skipped(rel)),
        Err(e) => return Err(e),
    };
    if let Err(e) = rustix::fs::statat(&from, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
        return if e == rustix::io::Errno::NOENT { Ok(skipped(rel)) } else { Err(e.into()) };
    }
    let to = super::beneath::create_dirs(root, parent)?;
    if link {
        Ok(rustix::fs::symlinkat(project.join(rel), &to, name)?)
    } else {
        super::beneath::copy_entry(&from, &to, name).map(|_| ())
    }
}

/// A link where [`place`] needed a plain entry (`ENOTDIR` when it stands for a directory).
fn refused_link(e: &std::io::Error) -> bool {
    super::beneath::is_swap(e) || e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error())
}

fn skipped(rel: &Path) {
    tracing::warn!("workspace file {} does not exist in the project; skipped", rel.display());
}

fn bootstrap_log_path(workspace_id: &str) -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::paths::expand_home("~/.local/state"))
        .join("piface")
        .join("logs");
    state.join(format!("{workspace_id}-bootstrap.log"))
}

async fn run_bootstrap(shell: &str, script: &str, root: &Path, timeout: Duration, log: &Path) -> Result<(), ToolError> {
    if let Some(parent) = log.parent() {
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent);
    }
    // Logs may hold secrets a bootstrap printed: private, and not through a planted link.
    let _ = std::fs::remove_file(log);
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(log)
    }
    .map_err(|e| ToolError::new(500, format!("{}: {e}", log.display())))?;
    let err = file.try_clone().map_err(|e| ToolError::new(500, e.to_string()))?;
    let mut child = tokio::process::Command::new(shell)
        .arg("-lc")
        .arg(script)
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .stdout(file)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ToolError::new(500, format!("bootstrap: {e}")))?;
    let group = nix::unistd::Pid::from_raw(child.id().unwrap_or_default() as i32);
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => {
            Err(ToolError::new(500, format!("The bootstrap script failed ({status}); see {}", log.display())))
        }
        Ok(Err(e)) => Err(ToolError::new(500, format!("bootstrap: {e}"))),
        Err(_) => {
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            Err(ToolError::new(
                500,
                format!("The bootstrap script timed out after {} s; see {}", timeout.as_secs(), log.display()),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_templates() {
        assert_eq!(slugify("My Project!! (v2)"), "my-project-v2");
        assert_eq!(slugify("¿¿"), "workspace");
        assert_eq!(
            render("{session_slug}-{short_id}", &[("session_slug", "fix-bug"), ("short_id", "a1b2c3")]),
            "fix-bug-a1b2c3"
        );
        assert_eq!(render("{unknown}", &[]), "{unknown}");
    }

    #[test]
    fn direnv_status_is_read_for_the_project_s_own_file() {
        let p = Path::new("/w/proj");
        let allowed = "No .envrc or .env loaded\nFound RC path /w/proj/.envrc\nFound RC allowed true\n";
        assert!(direnv_status_allows(allowed, p));
        assert!(direnv_status_allows(&allowed.replace("allowed true", "allowed 0"), p));
        assert!(!direnv_status_allows(&allowed.replace("allowed true", "allowed false"), p));
        assert!(!direnv_status_allows(&allowed.replace("allowed true", "allowed 1"), p));
        assert!(!direnv_status_allows(&allowed.replace("/w/proj/", "/w/"), p), "a parent's file");
        assert!(!direnv_status_allows("No .envrc or .env found\n", p));
    }

    #[test]
    fn files_entries_follow_no_link_on_either_side() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let tmp = tempfile::tempdir().unwrap();
        let (project, tree, outside) = (tmp.path().join("p"), tmp.path().join("w"), tmp.path().join("out"));
        for d in [&project, &tree, &outside] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(outside.join("secret"), "secret").unwrap();
        std::fs::write(outside.join("victim"), "untouched").unwrap();
        // The project: a plain file, a tree with a link inside, a link that leads out.
        std::fs::write(project.join(".env"), "A=1").unwrap();
        std::fs::set_permissions(project.join(".env"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::create_dir_all(project.join("conf/sub")).unwrap();
        std::fs::write(project.join("conf/sub/x"), "x").unwrap();
        symlink(outside.join("secret"), project.join("conf/leak")).unwrap();
        symlink(&outside, project.join("via")).unwrap();
        // The worktree (a checkout of anyone's repository): links where copies will land.
        symlink(outside.join("victim"), tree.join(".env")).unwrap();
        symlink(&outside, tree.join("deep")).unwrap();

        place(&project, &tree, Path::new(".env"), false).unwrap();
        assert_eq!(std::fs::read_to_string(outside.join("victim")).unwrap(), "untouched");
        assert_eq!(std::fs::read_to_string(tree.join(".env")).unwrap(), "A=1");
        assert_eq!(std::fs::metadata(tree.join(".env")).unwrap().permissions().mode() & 0o777, 0o600);

        place(&project, &tree, Path::new("conf"), false).unwrap();
        assert_eq!(std::fs::read_to_string(tree.join("conf/sub/x")).unwrap(), "x");
        let leak = std::fs::symlink_metadata(tree.join("conf/leak")).unwrap();
        assert!(leak.is_symlink(), "a link is copied as a link, its target not read");

        let e = place(&project, &tree, Path::new("via/secret"), false).unwrap_err();
        assert!(refused_link(&e), "a link on the project side: {e}");
        std::fs::create_dir_all(project.join("deep")).unwrap();
        std::fs::write(project.join("deep/f"), "f").unwrap();
        let e = place(&project, &tree, Path::new("deep/f"), false).unwrap_err();
        assert!(refused_link(&e), "a link on the worktree side: {e}");
        assert!(!outside.join("f").exists());

        place(&project, &tree, Path::new("missing/file"), false).unwrap();
        place(&project, &tree, Path::new("conf/sub/x"), true).unwrap_err(); // already there
        place(&project, &tree, Path::new("conf/sub"), true).unwrap_err();
        std::fs::create_dir_all(project.join("linked")).unwrap();
        place(&project, &tree, Path::new("linked"), true).unwrap();
        assert_eq!(std::fs::read_link(tree.join("linked")).unwrap(), project.join("linked"));
    }
}
