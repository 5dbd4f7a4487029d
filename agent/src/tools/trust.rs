//! Workspace trust: the commands a project's committed `.piface/workspace.toml` would run
//! (`[bootstrap]` in a new worktree, `[launch]` before pi and the terminal's shell, each with
//! its `shell`) run only once the agent's user has trusted that file's exact content.
//!
//! Trust is kept per project (the canonical directory that holds `.piface/`) with the SHA-256
//! of the file's bytes, in `<agent state dir>/trusted-workspaces.json` (the directory 0700, the
//! file 0600, replaced atomically), so a changed file asks again. The hash is of the very bytes
//! that are parsed and acted on, read once: a file changed between the check and the run cannot
//! slip through. Files with none of those commands need no trust. Saving the config through
//! `PUT /api/workspace/config` trusts what was written (the user wrote it).
//!
//! Not here: direnv's own trust (`direnv allow`), which stays direnv's; see `worktree.rs` for
//! when a new worktree inherits it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use piface_shared::protocol::ToolError;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::workspace::{Loaded, WorkspaceConfig};

/// What a workspace file is about to be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Making a worktree: `[bootstrap]` runs in it.
    Worktree,
    /// Starting pi: `[launch]` when it applies to `pi`.
    Pi,
    /// Opening the terminal: `[launch]` when it applies to `pty`.
    Pty,
}

/// The agent's record of trusted workspace files.
#[derive(Debug, Clone)]
pub struct TrustStore {
    file: PathBuf,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TrustFile {
    version: u32,
    /// Canonical project directory → what was trusted there.
    projects: BTreeMap<String, Trusted>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Trusted {
    sha256: String,
    /// Seconds since the epoch.
    trusted_at: u64,
}

/// Largest trust file read (a few hundred bytes per project).
const MAX_FILE: u64 = 16 << 20;

/// Serialises read-modify-write of the file within this process.
static WRITE: Mutex<()> = Mutex::new(());

impl TrustStore {
    /// The store in `state_dir` (created, 0700, on the first trust).
    pub fn new(state_dir: &Path) -> TrustStore {
        TrustStore { file: state_dir.join("trusted-workspaces.json") }
    }

    /// Where it is kept.
    pub fn path(&self) -> &Path {
        &self.file
    }

    fn read(&self) -> TrustFile {
        let text = match std::fs::metadata(&self.file) {
            Ok(m) if m.len() > MAX_FILE => {
                tracing::warn!(file = %self.file.display(), "trust file too large; ignored");
                return TrustFile::default();
            }
            Ok(_) => std::fs::read_to_string(&self.file).unwrap_or_default(),
            Err(_) => return TrustFile::default(),
        };
        serde_json::from_str(&text).unwrap_or_else(|e| {
            tracing::warn!(file = %self.file.display(), "trust file unreadable ({e}); nothing is trusted");
            TrustFile::default()
        })
    }

    /// The hash trusted for `project`, if any.
    pub fn trusted(&self, project: &Path) -> Option<String> {
        self.read().projects.get(&*project.to_string_lossy()).map(|t| t.sha256.clone())
    }

    /// Records `sha256` as the trusted content of `project`'s workspace file.
    pub fn trust(&self, project: &Path, sha256: &str) -> std::io::Result<()> {
        let _held = WRITE.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = self.read();
        all.version = 1;
        let trusted_at =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        all.projects.insert(project.to_string_lossy().into_owned(), Trusted { sha256: sha256.to_string(), trusted_at });
        let dir = self.file.parent().expect("a file in a directory");
        private_dir(dir)?;
        // A fresh name (O_EXCL, 0600) in the same directory, renamed over the file: a reader sees
        // the old file or the new one, never half of one.
        let mut tmp = tempfile::Builder::new().prefix(".trusted-workspaces.").suffix(".tmp").tempfile_in(dir)?;
        tmp.write_all(serde_json::to_string_pretty(&all).unwrap_or_default().as_bytes())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.file).map_err(|e| e.error)?;
        Ok(())
    }
}

/// Creates `dir` (and its parents) and makes it 0700.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// The commands of `config` that run for `uses`, as `(section, shell, script)`.
fn in_play(config: &WorkspaceConfig, uses: &[Use]) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    if let Some(b) = config.bootstrap.as_ref().filter(|_| uses.contains(&Use::Worktree)) {
        out.push(("bootstrap", b.shell.clone(), b.script.clone()));
    }
    if let Some(l) = &config.launch {
        let applies = |t: &str| l.apply_to.iter().any(|a| a == t);
        if (uses.contains(&Use::Pi) && applies("pi")) || (uses.contains(&Use::Pty) && applies("pty")) {
            out.push(("launch", l.shell.clone(), l.script.clone()));
        }
    }
    out
}

/// Every command the file holds, for the trust prompt.
pub fn commands(config: &WorkspaceConfig) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    if let Some(b) = &config.bootstrap {
        out.push(json!({
            "section": "bootstrap",
            "shell": b.shell,
            "script": b.script,
            "timeout_seconds": b.timeout_seconds,
            "runs": "once in each new worktree, before its session starts",
        }));
    }
    if let Some(l) = &config.launch {
        let runs = match (l.apply_to.iter().any(|a| a == "pi"), l.apply_to.iter().any(|a| a == "pty")) {
            (true, true) => "before pi and before the terminal's shell",
            (true, false) => "before pi",
            (false, true) => "before the terminal's shell",
            (false, false) => "never (apply_to is empty)",
        };
        out.push(json!({
            "section": "launch",
            "shell": l.shell,
            "script": l.script,
            "apply_to": l.apply_to,
            "timeout_seconds": l.timeout_seconds,
            "runs": runs,
        }));
    }
    out
}

/// `GET /api/workspace/trust`'s answer for `project`.
pub fn info(store: &TrustStore, project: &Path, loaded: &Loaded) -> serde_json::Value {
    let commands = commands(&loaded.config);
    let trusted_sha256 = store.trusted(project);
    let trusted = loaded.sha256.is_some() && trusted_sha256 == loaded.sha256;
    json!({
        "project_dir": project.to_string_lossy(),
        "config_path": super::workspace::config_path(project).to_string_lossy(),
        "has_config_file": loaded.has_file,
        "sha256": loaded.sha256,
        "commands": commands,
        "needs_trust": !commands.is_empty(),
        "trusted": trusted,
        "trusted_sha256": trusted_sha256,
    })
}

/// Ok when nothing of `loaded` runs for `uses`, or its content is trusted; else the 409 that
/// says what would run and how to trust it.
pub fn check(store: &TrustStore, project: &Path, loaded: &Loaded, uses: &[Use]) -> Result<(), ToolError> {
    let commands = in_play(&loaded.config, uses);
    let Some(sha) = loaded.sha256.as_deref().filter(|_| !commands.is_empty()) else { return Ok(()) };
    let before = store.trusted(project);
    if before.as_deref() == Some(sha) {
        return Ok(());
    }
    Err(ToolError::new(409, refusal(project, sha, before.is_some(), &commands)))
}

fn refusal(project: &Path, sha: &str, changed: bool, commands: &[(&str, String, String)]) -> String {
    let what: Vec<String> = commands
        .iter()
        .map(|(section, shell, script)| {
            let first = script.lines().find(|l| !l.trim().is_empty()).unwrap_or_default().trim();
            let cut: String = first.chars().take(60).collect();
            let more = if cut.len() < first.len() || script.trim().lines().count() > 1 { " …" } else { "" };
            format!("[{section}] ({shell}: `{cut}{more}`)")
        })
        .collect();
    let project = project.to_string_lossy();
    let since = if changed { ", and it changed since it was trusted" } else { "" };
    format!(
        "Workspace not trusted: {project}/.piface/workspace.toml would run {} and its content is not trusted{since}. \
         Review its commands and trust this version (sha256 {sha}) in the UI, or with POST /api/workspace/trust \
         {{\"path\": \"{project}\", \"sha256\": \"{sha}\"}}.",
        what.join(" and ")
    )
}

/// `POST /api/workspace/trust`: trusts `project`'s file when it still hashes to `sha256`.
pub fn trust(
    store: &TrustStore,
    project: &Path,
    loaded: &Loaded,
    sha256: &str,
) -> Result<serde_json::Value, ToolError> {
    let sha256 = sha256.trim().to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ToolError::new(400, "sha256 must be 64 hexadecimal digits"));
    }
    let Some(current) = loaded.sha256.as_deref() else {
        return Err(ToolError::new(404, format!("No workspace file in {}", project.display())));
    };
    if current != sha256 {
        return Err(ToolError::new(
            409,
            format!(
                "The workspace file of {} changed since it was shown (now sha256 {current}); review it again",
                project.display()
            ),
        ));
    }
    store.trust(project, current).map_err(|e| ToolError::new(500, format!("recording the trust: {e}")))?;
    tracing::info!(project = %project.display(), sha256 = current, "workspace file trusted");
    Ok(info(store, project, loaded))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::workspace::{Launch, Script};

    fn loaded(config: WorkspaceConfig, sha: &str) -> Loaded {
        Loaded { has_file: true, sha256: Some(sha.to_string()), config }
    }

    #[test]
    fn only_files_with_commands_ask_and_a_changed_file_asks_again() {
        let state = tempfile::tempdir().unwrap();
        let store = TrustStore::new(&state.path().join("agent"));
        let project = Path::new("/p");
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let plain = loaded(WorkspaceConfig::default(), &a);
        assert!(check(&store, project, &plain, &[Use::Worktree, Use::Pi, Use::Pty]).is_ok(), "nothing runs");
        let pty_only = WorkspaceConfig {
            launch: Some(Launch { script: "export A=1".into(), apply_to: vec!["pty".into()], ..Launch::default() }),
            ..WorkspaceConfig::default()
        };
        assert!(check(&store, project, &loaded(pty_only.clone(), &a), &[Use::Pi]).is_ok(), "not for pi");
        let e = check(&store, project, &loaded(pty_only.clone(), &a), &[Use::Pty]).unwrap_err();
        assert_eq!(e.status, 409);
        assert!(e.detail.contains("[launch] (bash: `export A=1`)") && e.detail.contains(&a), "{}", e.detail);

        let with_bootstrap = WorkspaceConfig {
            bootstrap: Some(Script { script: "touch marker".into(), ..Script::default() }),
            ..pty_only
        };
        let e = trust(&store, project, &loaded(with_bootstrap.clone(), &a), &b).unwrap_err();
        assert_eq!(e.status, 409, "another hash than the file's is not trusted");
        assert_eq!(trust(&store, project, &loaded(with_bootstrap.clone(), &a), "xyz").unwrap_err().status, 400);
        let info = trust(&store, project, &loaded(with_bootstrap.clone(), &a), &a.to_uppercase()).unwrap();
        assert_eq!((info["trusted"].as_bool(), info["needs_trust"].as_bool()), (Some(true), Some(true)));
        assert!(check(&store, project, &loaded(with_bootstrap.clone(), &a), &[Use::Worktree, Use::Pty]).is_ok());

        let e = check(&store, project, &loaded(with_bootstrap.clone(), &b), &[Use::Worktree]).unwrap_err();
        assert!(e.detail.contains("changed since it was trusted"), "{}", e.detail);
        assert!(
            check(&store, Path::new("/other"), &loaded(with_bootstrap, &a), &[Use::Worktree]).is_err(),
            "per project"
        );

        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(store.path()), 0o600);
        assert_eq!(mode(store.path().parent().unwrap()), 0o700);
    }
}
