//! Host tools: everything the browser does with the files of the machine a session runs on
//! (files, git, workspace config, direnv, upload blobs, the terminal). The coordinator only
//! routes; these run here, next to the files.

pub mod beneath;
pub mod fs;
pub mod git;
pub mod pty;
pub mod trust;
pub mod upload;
pub mod workspace;
pub mod worktree;

use std::path::Path;

use piface_shared::protocol::{ToolCall, ToolError};
use serde_json::json;

/// Runs one tool call; the result is the JSON body of the matching HTTP endpoint.
pub async fn run(roots: &fs::Roots, config: &crate::AgentConfig, call: ToolCall) -> Result<String, ToolError> {
    let value = match call {
        ToolCall::FsList { path } => fs::list(roots, &path).await?,
        ToolCall::FsComplete { prefix } => fs::complete(roots, &prefix).await,
        ToolCall::FsFile { path } => fs::file(roots, &path).await?,
        ToolCall::GitStatus { dir } => git::status(&dir).await?,
        ToolCall::GitDiff { dir, path, staged } => git::diff(&dir, path.as_deref(), staged).await?,
        ToolCall::WorkspaceGet { path } => {
            roots_check(roots, &path)?;
            tokio::task::spawn_blocking(move || workspace::get(&path)).await.map_err(internal)??
        }
        ToolCall::WorkspacePut { path, config: body } => {
            roots_check(roots, &path)?;
            let trust = config.trust();
            tokio::task::spawn_blocking(move || workspace::put(&path, &body, &trust)).await.map_err(internal)??
        }
        ToolCall::DirenvAllow { dir } => {
            roots.check_dir(&dir)?;
            direnv_allow(&dir).await?
        }
        ToolCall::FilesExist { paths } => {
            // Asked about upload blobs only: any other path is "missing", so this answers no
            // question about the rest of the disk.
            let exists = |p: &str| upload::is_blob_path(Path::new(p)) && Path::new(p).is_file();
            let missing: Vec<_> = paths.into_iter().filter(|p| !exists(p)).collect();
            json!({ "missing": missing })
        }
        ToolCall::CleanTranscript { cwd, provider, model, use_direnv, text } => {
            let spec = piface_shared::protocol::SpawnSpec {
                cwd,
                provider,
                model,
                thinking: Some("low".into()),
                session_file: None,
                no_session: true,
                use_direnv,
                project_dir: None,
            };
            crate::speech::clean(config, spec, &text).await?
        }
        ToolCall::PrepareSession { dir, shared, session_name, source_branch, use_direnv } => {
            let req = worktree::Request { dir, shared, session_name, source_branch, use_direnv };
            worktree::prepare(req, roots, &config.trust()).await?
        }
        ToolCall::WorkspaceTrustGet { path } => {
            let project = worktree::project_of(&roots.check_dir(&path)?).await?;
            let loaded = load_blocking(&project).await?;
            trust::info(&config.trust(), &project, &loaded)
        }
        ToolCall::WorkspaceTrustSet { path, sha256 } => {
            let project = worktree::project_of(&roots.check_dir(&path)?).await?;
            let loaded = load_blocking(&project).await?;
            trust::trust(&config.trust(), &project, &loaded, &sha256)?
        }
        ToolCall::DeleteFiles { paths } => {
            let mut deleted = 0;
            for p in paths {
                if !upload::is_blob_path(Path::new(&p)) {
                    return Err(ToolError::new(400, format!("Not an upload blob: {p}")));
                }
                match tokio::fs::remove_file(&p).await {
                    Ok(()) => deleted += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(ToolError::new(500, format!("deleting {p}: {e}"))),
                }
            }
            json!({ "deleted": deleted })
        }
    };
    Ok(value.to_string())
}

/// The project's workspace file, read off the async threads; unreadable is 400.
async fn load_blocking(project: &Path) -> Result<workspace::Loaded, ToolError> {
    let project = project.to_path_buf();
    tokio::task::spawn_blocking(move || workspace::load_file(&project))
        .await
        .map_err(internal)?
        .map_err(|e| ToolError::new(400, e))
}

fn internal(e: impl std::fmt::Display) -> ToolError {
    ToolError::new(500, e.to_string())
}

/// A directory given to a tool that writes must be inside the file roots (a missing one is
/// left to the tool's own "does not exist").
fn roots_check(roots: &fs::Roots, path: &str) -> Result<(), ToolError> {
    if Path::new(path).exists() {
        roots.check(path)?;
    }
    Ok(())
}

/// `POST /api/direnv/allow`: `direnv allow <dir>` as this agent's user (the caller checked
/// that `dir` is inside the file roots).
async fn direnv_allow(dir: &str) -> Result<serde_json::Value, ToolError> {
    if !Path::new(dir).is_dir() {
        return Err(ToolError::new(400, format!("Directory does not exist: {dir}")));
    }
    let out = tokio::process::Command::new("direnv")
        .arg("allow")
        .arg(dir)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(std::time::Duration::from_secs(30), out).await {
        Err(_) => return Err(ToolError::new(504, "direnv allow timed out")),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ToolError::new(409, "direnv is not installed"))
        }
        Ok(Err(e)) => return Err(ToolError::new(409, format!("direnv allow: {e}"))),
        Ok(Ok(out)) => out,
    };
    if !out.status.success() {
        let text = [String::from_utf8_lossy(&out.stderr).trim(), String::from_utf8_lossy(&out.stdout).trim()]
            .into_iter()
            .find(|t| !t.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("direnv allow failed with code {}", out.status.code().unwrap_or(-1)));
        return Err(ToolError::new(409, text));
    }
    Ok(json!({ "success": true, "working_dir": dir }))
}
