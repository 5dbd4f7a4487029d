//! The session record: the JSON form every session endpoint returns, key for key the
//! original's (see `shared/contract/rest-api.md`, "Session record"), plus fields of our own
//! appended at the end.
//!
//! The same JSON is what the store keeps and what the original's `state.json` holds, so it
//! reads leniently: every field but `piface_id`, `working_dir` and `status` has a default.

use serde::{Deserialize, Serialize};

/// Name of the in-process agent of `piface serve`.
pub const LOCAL: &str = "local";

/// Whether a session's pi is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// pi is running.
    Live,
    /// pi is not running; the record is archived.
    Closed,
}

/// How the session's directory relates to its project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceMode {
    /// pi runs in the directory the user chose.
    #[default]
    Shared,
    /// pi runs in a git worktree made for the session.
    GitWorktree,
}

/// One session, as clients see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub piface_id: String,
    pub working_dir: String,
    pub status: Status,
    #[serde(default)]
    pub session_file: Option<String>,
    #[serde(default)]
    pub no_session: bool,
    #[serde(default = "yes")]
    pub use_direnv: bool,
    #[serde(default)]
    pub model_provider: Option<String>,
    #[serde(default)]
    pub model_id: Option<String>,
    #[serde(default)]
    pub thinking_level: Option<String>,
    #[serde(default)]
    pub session_name: Option<String>,
    #[serde(default = "yes")]
    pub render_markdown: bool,
    #[serde(default)]
    pub parent_piface_id: Option<String>,
    #[serde(default)]
    pub branch_entry_id: Option<String>,
    #[serde(default)]
    pub project_dir: Option<String>,
    #[serde(default = "dot")]
    pub project_subdir: String,
    #[serde(default)]
    pub execution_dir: Option<String>,
    #[serde(default)]
    pub workspace_mode: WorkspaceMode,
    #[serde(default)]
    pub workspace_id: Option<String>,
    #[serde(default)]
    pub workspace_name: Option<String>,
    #[serde(default)]
    pub workspace_root: Option<String>,
    #[serde(default)]
    pub workspace_branch: Option<String>,
    #[serde(default)]
    pub workspace_base_ref: Option<String>,
    #[serde(default)]
    pub workspace_theme_override: Option<String>,
    #[serde(default)]
    pub workspace_skin_override: Option<String>,
    #[serde(default)]
    pub workspace_created_by_piface: bool,
    #[serde(default = "ready")]
    pub workspace_status: String,
    #[serde(default)]
    pub workspace_error: Option<String>,
    #[serde(default)]
    pub bootstrap_log_path: Option<String>,
    #[serde(default)]
    pub launch_log_path: Option<String>,
    #[serde(default = "now")]
    pub created_at: String,
    #[serde(default = "now")]
    pub last_active: String,
    /// Ours: the agent (machine) the session runs on; `local` for `piface serve` and for
    /// sessions imported from the original.
    #[serde(default = "local_agent")]
    pub agent: String,
    /// Ours: an extension dialog is waiting for an answer (drives the dashboard badge).
    /// Derived from the live session, never read back.
    #[serde(default, skip_deserializing)]
    pub attention_required: bool,
}

fn local_agent() -> String {
    LOCAL.to_string()
}

fn yes() -> bool {
    true
}

fn dot() -> String {
    ".".into()
}

fn ready() -> String {
    "ready".into()
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
