//! The session record: the JSON form every session endpoint returns, key for key the
//! original's (see `shared/contract/rest-api.md`, "Session record"), plus fields of our own
//! appended at the end.

use serde::Serialize;

/// Whether a session's pi is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// pi is running.
    Live,
    /// pi is not running; the record is archived.
    Closed,
}

/// How the session's directory relates to its project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceMode {
    /// pi runs in the directory the user chose.
    Shared,
    /// pi runs in a git worktree made for the session.
    #[allow(dead_code)] // Worktree sessions come with the workspaces issue.
    GitWorktree,
}

/// One session, as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRecord {
    pub piface_id: String,
    pub working_dir: String,
    pub status: Status,
    pub session_file: Option<String>,
    pub no_session: bool,
    pub use_direnv: bool,
    pub model_provider: Option<String>,
    pub model_id: Option<String>,
    pub thinking_level: Option<String>,
    pub session_name: Option<String>,
    pub render_markdown: bool,
    pub parent_piface_id: Option<String>,
    pub branch_entry_id: Option<String>,
    pub project_dir: Option<String>,
    pub project_subdir: String,
    pub execution_dir: Option<String>,
    pub workspace_mode: WorkspaceMode,
    pub workspace_id: Option<String>,
    pub workspace_name: Option<String>,
    pub workspace_root: Option<String>,
    pub workspace_branch: Option<String>,
    pub workspace_base_ref: Option<String>,
    pub workspace_theme_override: Option<String>,
    pub workspace_skin_override: Option<String>,
    pub workspace_created_by_piface: bool,
    pub workspace_status: String,
    pub workspace_error: Option<String>,
    pub bootstrap_log_path: Option<String>,
    pub launch_log_path: Option<String>,
    pub created_at: String,
    pub last_active: String,
    /// Ours: an extension dialog is waiting for an answer (drives the dashboard badge).
    pub attention_required: bool,
}

/// Now, in the original's timestamp form (`2026-05-01T12:00:00.123456Z`).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl SessionRecord {
    /// The directory pi runs in.
    pub fn effective_dir(&self) -> &str {
        self.execution_dir.as_deref().unwrap_or(&self.working_dir)
    }
}
