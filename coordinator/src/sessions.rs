//! Session lifecycle: create, resume, kill, pi's exit, internal requests to pi, and the
//! session-file capture after the first run.
//!
//! These are methods on [`App`] used by both the REST handlers and the WebSocket relay.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use piface_shared::protocol::{FromAgent, SpawnError, SpawnSpec, ToAgent};
use serde_json::{Map, Value};
use tracing::{info, warn};

use crate::agent_link::{input, AgentHandle, LinkError};
use crate::error::ApiError;
use crate::frames::error_frame;
use crate::hub::Hub;
use crate::record::{now, SessionRecord, Status, WorkspaceMode};
use crate::App;

#[cfg(test)]
mod tests;

/// How long an internal command to pi may take (the original's 10 s).
const INTERNAL_TIMEOUT: Duration = Duration::from_secs(10);

/// What `POST /api/sessions` accepts.
#[derive(Debug, serde::Deserialize)]
pub struct CreateSession {
    pub working_dir: String,
    /// Omitted → the default; `null` → no flag.
    #[serde(default, deserialize_with = "explicit")]
    pub provider: Option<Option<String>>,
    #[serde(default, deserialize_with = "explicit")]
    pub model: Option<Option<String>>,
    #[serde(default, deserialize_with = "explicit")]
    pub thinking_level: Option<Option<String>>,
    #[serde(default)]
    pub session_name: Option<String>,
    #[serde(default)]
    pub no_session: bool,
    #[serde(default = "yes")]
    pub render_markdown: bool,
    #[serde(default)]
    pub use_direnv: Option<bool>,
    /// Run in place; `false` (the default, as in the original) makes a git worktree when the
    /// directory is in a repository.
    #[serde(default)]
    pub shared: bool,
    /// Ours: the agent (machine) to run on; default the local agent, else the only one.
    #[serde(default)]
    pub agent: Option<String>,
}

fn yes() -> bool {
    true
}

/// Tells an explicit `null` (`Some(None)`) from an omitted field (`None`, by `default`).
fn explicit<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    use serde::Deserialize;
    Option::<T>::deserialize(d).map(Some)
}

/// The original's defaults for new sessions.
pub const DEFAULT_PROVIDER: &str = "openai-codex";
/// See [`DEFAULT_PROVIDER`].
pub const DEFAULT_MODEL: &str = "gpt-5.5";
/// See [`DEFAULT_PROVIDER`].
pub const DEFAULT_THINKING: &str = "medium";

fn or_default(value: Option<Option<String>>, default: &str) -> Option<String> {
    match value {
        None => Some(default.to_string()),
        Some(v) => v.filter(|s| !s.is_empty()),
    }
}

fn spec_of(record: &SessionRecord) -> SpawnSpec {
    SpawnSpec {
        cwd: record.effective_dir().to_string(),
        provider: record.model_provider.clone(),
        model: record.model_id.clone(),
        thinking: record.thinking_level.clone(),
        // The agent drops a session file that is gone (pi then starts a new one).
        session_file: record.session_file.clone(),
        no_session: record.no_session,
        use_direnv: record.use_direnv,
        project_dir: record.project_dir.clone(),
    }
}

fn agent_unavailable(name: &str) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("Agent {name} is not connected"))
}

fn spawn_error(e: SpawnError) -> ApiError {
    match e {
        SpawnError::NoSuchDirectory(_) => ApiError::bad_request(e.to_string()),
        SpawnError::OutsideRoots(_) => ApiError::new(StatusCode::FORBIDDEN, e.to_string()),
        SpawnError::Launch(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        _ => ApiError::conflict(e.to_string()),
    }
}

impl App {
    /// `POST /api/sessions`.
    pub async fn create_session(&self, req: CreateSession) -> Result<SessionRecord, ApiError> {
        let agent = match req.agent.clone().filter(|a| !a.trim().is_empty()) {
            Some(name) => {
                self.agents.get(&name).ok_or_else(|| agent_unavailable(&name))?;
                name
            }
            None => self.agents.default_name().map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e))?,
        };
        self.check_capacity(&agent)?;
        let use_direnv = req.use_direnv.unwrap_or(self.config.direnv_default);
        let session_name = req.session_name.filter(|s| !s.trim().is_empty());
        // The agent resolves the project and, for a worktree session, makes the worktree.
        let place = self
            .agents
            .get(&agent)
            .ok_or_else(|| agent_unavailable(&agent))?
            .request(
                |req_id| ToAgent::Tool {
                    req: req_id,
                    call: piface_shared::protocol::ToolCall::PrepareSession {
                        dir: req.working_dir.clone(),
                        shared: req.shared,
                        session_name: session_name.clone(),
                        source_branch: None,
                        use_direnv,
                    },
                },
                Duration::from_secs(3600),
            )
            .await
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        let place = crate::agent_link::tool_reply(place)?;
        let text = |k: &str| place[k].as_str().map(str::to_string);
        let worktree = place["workspace_mode"] == "git_worktree";
        let stamp = now();
        let record = SessionRecord {
            piface_id: uuid::Uuid::new_v4().to_string(),
            working_dir: req.working_dir.clone(),
            status: Status::Live,
            session_file: None,
            no_session: req.no_session,
            use_direnv,
            model_provider: or_default(req.provider, DEFAULT_PROVIDER),
            model_id: or_default(req.model, DEFAULT_MODEL),
            thinking_level: or_default(req.thinking_level, DEFAULT_THINKING),
            session_name,
            render_markdown: req.render_markdown,
            parent_piface_id: None,
            branch_entry_id: None,
            project_dir: text("project_dir"),
            project_subdir: text("project_subdir").unwrap_or_else(|| ".".into()),
            execution_dir: Some(text("execution_dir").unwrap_or_else(|| req.working_dir.clone())),
            workspace_mode: if worktree { WorkspaceMode::GitWorktree } else { WorkspaceMode::Shared },
            workspace_id: text("workspace_id"),
            workspace_name: text("workspace_name"),
            workspace_root: text("workspace_root"),
            workspace_branch: text("workspace_branch"),
            workspace_base_ref: text("workspace_base_ref"),
            workspace_theme_override: text("workspace_theme_override"),
            workspace_skin_override: text("workspace_skin_override"),
            workspace_created_by_piface: worktree,
            workspace_status: "ready".into(),
            workspace_error: None,
            bootstrap_log_path: text("bootstrap_log_path"),
            launch_log_path: None,
            created_at: stamp.clone(),
            last_active: stamp,
            agent,
            attention_required: false,
        };
        let id = record.piface_id.clone();
        let spec = spec_of(&record);
        let hub = self.new_hub(&id);
        self.registry.insert_starting(record, hub.clone());
        match self.spawn_pi(&id, spec).await {
            Ok(pid) => {
                info!(session_id = %id, pid, "session created");
                Ok(self.registry.set_live(&id, |_| {}).expect("inserted above"))
            }
            Err(e) => {
                hub.close();
                self.registry.remove(&id);
                Err(e)
            }
        }
    }

    /// `POST /api/sessions/{id}/resume`.
    pub async fn resume_session(&self, id: &str) -> Result<SessionRecord, ApiError> {
        let record = self.registry.get(id).ok_or_else(ApiError::session_not_found)?;
        if record.status == Status::Live && self.registry.live_hub(id).is_some() {
            return Err(ApiError::conflict("Session is already live"));
        }
        if record.no_session {
            return Err(ApiError::conflict("Ephemeral sessions cannot be resumed"));
        }
        self.check_capacity(&record.agent)?;
        self.respawn(&record).await
    }

    /// 429 when `agent` runs `--max-sessions-per-agent` live sessions already.
    fn check_capacity(&self, agent: &str) -> Result<(), ApiError> {
        let limit = self.config.limits.sessions_per_agent;
        if self.registry.live_ids_on(agent).len() >= limit {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Agent {agent} already runs {limit} live sessions (--max-sessions-per-agent); close one \
                     or raise the limit"
                ),
            ));
        }
        Ok(())
    }

    /// Starts pi again for a listed session (resume, restore), continuing its session file.
    async fn respawn(&self, record: &SessionRecord) -> Result<SessionRecord, ApiError> {
        let id = record.piface_id.as_str();
        let spec = spec_of(record);
        if spec.session_file.is_none() && record.session_file.is_some() {
            // The file is gone: pi starts afresh, and the new file is captured after its first run.
            warn!(session_id = %id, file = ?record.session_file, "session file missing; starting a fresh pi session");
            self.registry.update(id, |r| r.session_file = None);
        }
        let hub = self.new_hub(id);
        self.registry.attach_hub(id, hub.clone()).map_err(|e| match e {
            crate::registry::Attach::Unknown => ApiError::session_not_found(),
            // Its pi came back meanwhile (the agent re-announced it).
            crate::registry::Attach::Occupied => ApiError::conflict("Session is already live"),
        })?;
        match self.spawn_pi(id, spec).await {
            Ok(pid) => {
                info!(session_id = %id, pid, "session live");
                self.registry
                    .set_live(id, |r| {
                        r.status = Status::Live;
                        r.last_active = now();
                    })
                    .ok_or_else(ApiError::session_not_found)
            }
            Err(e) => {
                hub.close();
                self.registry.detach_hub(id, &hub);
                Err(e)
            }
        }
    }

    /// At start-up: sessions that were live when Piface stopped (or crashed) get their pi back,
    /// with their session file so pi loads the history. Ephemeral sessions have no history to
    /// come back to and are dropped.
    pub async fn restore_sessions(self: &Arc<Self>) {
        let records = self.registry.list();
        let mut tasks = tokio::task::JoinSet::new();
        // pi takes a second or two of CPU to start; a few at a time keeps the machine usable.
        let permits = Arc::new(tokio::sync::Semaphore::new(4));
        for record in records {
            if record.no_session {
                info!(session_id = %record.piface_id, "dropping an ephemeral session");
                self.registry.remove(&record.piface_id);
                continue;
            }
            if record.status != Status::Live {
                continue;
            }
            if record.agent != crate::agents::LOCAL {
                // A remote agent keeps its pi running while the coordinator is away; the
                // session is picked up again when that agent reconnects.
                continue;
            }
            let (app, permits) = (self.clone(), permits.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire().await;
                if let Err(e) = app.respawn(&record).await {
                    warn!(session_id = %record.piface_id, "could not restore the session: {}", e.detail);
                    app.registry.update(&record.piface_id, |r| {
                        r.status = Status::Closed;
                        r.last_active = now();
                    });
                }
            });
        }
        tasks.join_all().await;
    }

    fn new_hub(&self, id: &str) -> Arc<Hub> {
        Arc::new(Hub::new(id.to_string(), self.config.hub_limits))
    }

    /// The agent a record's session runs on, if it is connected.
    pub fn agent_for(&self, record: &SessionRecord) -> Result<Arc<AgentHandle>, ApiError> {
        self.agents.get(&record.agent).ok_or_else(|| agent_unavailable(&record.agent))
    }

    /// The agent session `id` runs on, if it is connected.
    pub fn agent_of_session(&self, id: &str) -> Result<Arc<AgentHandle>, LinkError> {
        let name = self.registry.agent_of(id).ok_or(LinkError::Disconnected)?;
        self.agents.get(&name).ok_or(LinkError::Disconnected)
    }

    async fn spawn_pi(&self, id: &str, spec: SpawnSpec) -> Result<u32, ApiError> {
        let session = id.to_string();
        let wait = self.config.start_timeout + Duration::from_secs(10);
        let name = self.registry.agent_of(id).ok_or_else(ApiError::session_not_found)?;
        let reply = self
            .agents
            .get(&name)
            .ok_or_else(|| agent_unavailable(&name))?
            .request(|req| ToAgent::Spawn { req, session, spec }, wait)
            .await
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        match reply {
            FromAgent::Spawned { result: Ok(s), .. } => Ok(s.pid),
            FromAgent::Spawned { result: Err(e), .. } => Err(spawn_error(e)),
            other => Err(ApiError::new(StatusCode::BAD_GATEWAY, format!("unexpected agent reply: {other:?}"))),
        }
    }

    /// `POST /api/sessions/{id}/kill`: stops pi (abort, SIGTERM, SIGKILL) and archives the
    /// record. A session without a running pi is returned as it is.
    pub async fn kill_session(&self, id: &str) -> Result<SessionRecord, ApiError> {
        self.registry.get(id).ok_or_else(ApiError::session_not_found)?;
        if let Some(hub) = self.registry.hub(id) {
            let session = id.to_string();
            let reply = match self.agent_of_session(id) {
                Ok(agent) => agent.request(|req| ToAgent::Kill { req, session }, Duration::from_secs(30)).await,
                Err(e) => Err(e),
            };
            if let Err(e) = reply {
                warn!(session_id = %id, "kill: {e}");
            }
            // The session stream ends with pi's exit; let it deliver its last events first.
            if tokio::time::timeout(Duration::from_secs(5), hub.wait_closed()).await.is_err() {
                self.close_session(id, &hub);
            }
        }
        self.registry
            .update(id, |r| {
                r.status = Status::Closed;
                r.last_active = now();
            })
            .ok_or_else(ApiError::session_not_found)
    }

    /// `POST /api/sessions/{id}/branch`: a new session whose pi forks the source's session file
    /// before the user message `entry_id`. `Ok(None)` when pi (an extension) cancelled the fork.
    pub async fn branch_session(
        &self,
        id: &str,
        entry_id: &str,
        name: Option<String>,
    ) -> Result<Option<Branched>, ApiError> {
        let source = self.registry.get(id).ok_or_else(ApiError::session_not_found)?;
        let entry_id = entry_id.trim();
        if entry_id.is_empty() {
            return Err(ApiError::bad_request("entry_id is required"));
        }
        if source.no_session {
            return Err(ApiError::conflict("Ephemeral sessions cannot be branched"));
        }
        let Some(source_file) = source.session_file.clone() else {
            return Err(ApiError::conflict("Session cannot be branched before session file is available"));
        };
        // Checkable here only for the in-process agent (its disk and home are ours); a remote
        // agent's pi fails the fork below when the file is gone.
        if source.agent == crate::agents::LOCAL && !piface_agent::paths::expand_home(&source_file).is_file() {
            return Err(ApiError::conflict("Session file no longer exists"));
        }
        self.check_capacity(&source.agent)?;
        let name = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
        let stamp = now();
        let record = SessionRecord {
            piface_id: uuid::Uuid::new_v4().to_string(),
            status: Status::Live,
            session_file: None,
            parent_piface_id: Some(source.piface_id.clone()),
            branch_entry_id: Some(entry_id.to_string()),
            session_name: name.clone().or(source.session_name.clone()),
            created_at: stamp.clone(),
            last_active: stamp,
            attention_required: false,
            ..source.clone()
        };
        let new_id = record.piface_id.clone();
        let mut spec = spec_of(&source);
        spec.session_file = Some(source_file);
        let hub = self.new_hub(&new_id);
        self.registry.insert_starting(record, hub.clone());
        let outcome = self.fork_in_new_pi(&new_id, spec, entry_id, name).await;
        match outcome {
            Ok(Some((selected_text, file))) => {
                let record = self.registry.set_live(&new_id, |r| r.session_file = Some(file)).expect("inserted above");
                let uploads = self.registry.uploads_of(id);
                if !uploads.is_empty() {
                    self.registry.share_uploads(&new_id, uploads);
                }
                info!(session_id = %new_id, parent = %id, "session branched");
                Ok(Some(Branched { selected_text, session: record }))
            }
            other => {
                let session = new_id.clone();
                if let Ok(agent) = self.agent_of_session(&new_id) {
                    let _ = agent.request(|req| ToAgent::Kill { req, session }, Duration::from_secs(30)).await;
                }
                hub.close();
                self.registry.remove(&new_id);
                other.map(|_| None)
            }
        }
    }

    /// Starts pi with `spec` (on the source's file) for the starting session `id`, forks it at
    /// `entry_id`, names it, and returns the forked message's text and the new session file.
    async fn fork_in_new_pi(
        &self,
        id: &str,
        spec: SpawnSpec,
        entry_id: &str,
        name: Option<String>,
    ) -> Result<Option<(String, String)>, ApiError> {
        self.spawn_pi(id, spec).await?;
        let command = |kind: &str, extra: &[(&str, &str)]| {
            let mut c = Map::new();
            c.insert("type".into(), kind.into());
            for (k, v) in extra {
                c.insert((*k).into(), (*v).into());
            }
            c
        };
        let fork = self.pi_request(id, command("fork", &[("entryId", entry_id)])).await.map_err(ApiError::conflict)?;
        if fork.pointer("/data/cancelled").and_then(Value::as_bool) == Some(true) {
            return Ok(None);
        }
        let text = fork.pointer("/data/text").and_then(Value::as_str).unwrap_or_default().to_string();
        if let Some(name) = name {
            self.pi_request(id, command("set_session_name", &[("name", &name)]))
                .await
                .map_err(|e| ApiError::conflict(format!("Failed to rename forked session: {e}")))?;
        }
        let state = self
            .pi_request(id, command("get_state", &[]))
            .await
            .map_err(|e| ApiError::conflict(format!("Failed to read forked session state: {e}")))?;
        let file = state
            .pointer("/data/sessionFile")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .ok_or_else(|| ApiError::conflict("Forked session file unavailable"))?;
        Ok(Some((text, file.to_string())))
    }

    /// `PATCH /api/sessions/{id}`.
    pub fn patch_session(&self, id: &str, render_markdown: Option<bool>) -> Result<SessionRecord, ApiError> {
        self.registry.get(id).ok_or_else(ApiError::session_not_found)?;
        let Some(render_markdown) = render_markdown else {
            return Err(ApiError::bad_request("No updatable fields provided"));
        };
        self.registry.update(id, |r| r.render_markdown = render_markdown).ok_or_else(ApiError::session_not_found)
    }

    /// pi of a session ended: the stream has delivered all its events.
    pub(crate) async fn session_exited(&self, id: &str, hub: &Arc<Hub>, code: Option<i32>, stderr: &str) {
        if hub.is_closed() {
            return;
        }
        let stderr = stderr.trim();
        if code != Some(0) && !stderr.is_empty() {
            warn!(session_id = %id, ?code, "pi exited: {stderr}");
        } else {
            info!(session_id = %id, ?code, "pi exited");
        }
        self.close_session(id, hub);
    }

    fn close_session(&self, id: &str, hub: &Arc<Hub>) {
        // The record first: clients that see the hub close read the closed record.
        if !self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            self.registry.update(id, |r| {
                if r.status == Status::Live {
                    r.status = Status::Closed;
                    r.last_active = now();
                }
            });
        }
        self.registry.detach_hub(id, hub);
        hub.close();
    }

    /// An agent's link closed. The in-process agent's pis are gone with it; a remote agent
    /// keeps its pis running and announces them again when it reconnects, so its sessions stay
    /// live and their clients are told to wait.
    pub(crate) async fn agent_gone(&self, name: &str) {
        for id in self.registry.live_ids_on(name) {
            let Some(hub) = self.registry.hub(&id) else { continue };
            if name == crate::agents::LOCAL {
                self.close_session(&id, &hub);
            } else {
                let message = format!("The link to agent {name} is down; waiting for it to reconnect");
                hub.push(None, error_frame(&message)).await;
            }
        }
    }

    /// The hub of a session on `agent`, re-attached when its pi kept running while this
    /// coordinator was away (or the link was down). Only a listed session of that agent
    /// qualifies. Finding no hub and attaching one is one step of the registry: the session's
    /// stream and the reconciliation of the agent's list, which both come with a reconnect,
    /// share the hub whichever is first, so no client is left on a hub that gets no events.
    pub(crate) fn reattach(&self, agent: &str, id: &str) -> Option<Arc<Hub>> {
        let (hub, attached) = self.registry.hub_or_attach(id, agent, || self.new_hub(id))?;
        if attached {
            self.registry.set_live(id, |r| {
                r.status = Status::Live;
                r.last_active = now();
            });
            info!(session_id = %id, agent = %agent, "session re-attached");
        }
        Some(hub)
    }

    /// An agent (re)connected and listed its running sessions. Those it runs are re-attached;
    /// those it no longer runs (the agent restarted) follow the start-up rules: respawned with
    /// their session file, ephemeral ones dropped.
    pub(crate) fn reconcile_agent(self: &Arc<Self>, agent: &str, running: &[String]) {
        for record in self.registry.list() {
            if record.agent != agent || record.status != Status::Live {
                continue;
            }
            let id = record.piface_id.clone();
            if running.contains(&id) {
                self.reattach(agent, &id);
                continue;
            }
            if let Some(hub) = self.registry.hub(&id) {
                // Its pi is gone: clients learn the session closed; it comes back below.
                self.close_session(&id, &hub);
            }
            if record.no_session {
                info!(session_id = %id, agent = %agent, "dropping an ephemeral session whose agent restarted");
                self.registry.remove(&id);
                continue;
            }
            info!(session_id = %id, agent = %agent, "pi is gone from its agent; starting it again");
            let app = self.clone();
            tokio::spawn(async move {
                if let Err(e) = app.respawn(&record).await {
                    warn!(session_id = %record.piface_id, "could not restart the session: {}", e.detail);
                    app.registry.update(&record.piface_id, |r| {
                        r.status = Status::Closed;
                        r.last_active = now();
                    });
                }
            });
        }
    }

    /// Events were lost (a link died with them in flight): every client of the session is told
    /// and gets a fresh replay, at its place in the stream.
    pub(crate) async fn resync_clients(&self, id: &str, hub: &Arc<Hub>) {
        hub.push(
            None,
            error_frame("Some live events were lost on the way from the agent; the history is being resent"),
        )
        .await;
        let line = serde_json::json!({ "type": "get_messages", "id": "__piface_replay__" }).to_string();
        if let Ok(agent) = self.agent_of_session(id) {
            let _ = agent.send(input(id, line)).await;
        }
    }

    /// Tells a session's clients something went wrong (a notice from the agent).
    pub(crate) async fn notice(&self, session: Option<&str>, message: String) {
        match session.and_then(|id| self.registry.hub(id)) {
            Some(hub) => hub.push(None, error_frame(&message)).await,
            None => warn!(session_id = ?session, "agent notice: {message}"),
        }
    }

    /// Sends one JSON command to a session's pi and bumps `last_active`.
    pub async fn send_to_pi(&self, id: &str, line: Vec<u8>) -> Result<(), String> {
        if self.registry.live_hub(id).is_none() {
            return Err("Session is not live".into());
        }
        self.agent_of_session(id).map_err(|e| e.to_string())?.send(input(id, line)).await.map_err(|e| e.to_string())?;
        self.registry.update(id, |r| r.last_active = now());
        Ok(())
    }

    /// Sends `command` (a JSON object without `id`) to pi under an internal id and returns
    /// pi's successful reply. The reply never reaches browsers.
    pub async fn pi_request(&self, id: &str, mut command: Map<String, Value>) -> Result<Value, String> {
        // Starting sessions too: branching talks to its new pi before listing the session.
        let hub = self.registry.hub(id).filter(|h| !h.is_closed()).ok_or("Session is not live")?;
        let (rid, rx) = hub.new_internal();
        command.insert("id".into(), Value::String(rid.clone()));
        let line = serde_json::to_vec(&command).map_err(|e| e.to_string())?;
        self.agent_of_session(id).map_err(|e| e.to_string())?.send(input(id, line)).await.map_err(|e| e.to_string())?;
        let reply: Bytes = match tokio::time::timeout(INTERNAL_TIMEOUT, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => return Err("pi exited before answering".into()),
            Err(_) => {
                hub.cancel_internal(&rid);
                return Err(format!("pi did not answer within {} s", INTERNAL_TIMEOUT.as_secs()));
            }
        };
        let reply: Value = serde_json::from_slice(&reply).map_err(|e| e.to_string())?;
        if reply.get("success").and_then(Value::as_bool) == Some(true) {
            Ok(reply)
        } else {
            Err(reply.get("error").and_then(Value::as_str).unwrap_or("pi refused the command").to_string())
        }
    }

    /// After a run, learn the session file once (pi has one only after its first turn).
    pub(crate) fn after_agent_end(self: &Arc<Self>, id: &str) {
        let Some(record) = self.registry.get(id) else { return };
        if record.session_file.is_some() || record.no_session {
            return;
        }
        let app = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let mut cmd = Map::new();
            cmd.insert("type".into(), "get_state".into());
            match app.pi_request(&id, cmd).await {
                Ok(reply) => {
                    let file = reply
                        .pointer("/data/sessionFile")
                        .and_then(Value::as_str)
                        .map(str::trim)
                        .filter(|f| !f.is_empty());
                    if let Some(file) = file {
                        // As pi reported it: a `~` in it is the agent's home, expanded there.
                        let file = file.to_string();
                        info!(session_id = %id, session_file = %file, "session file captured");
                        app.registry.update(&id, |r| r.session_file = Some(file));
                    }
                }
                Err(e) => warn!(session_id = %id, "could not read pi's session file: {e}"),
            }
        });
    }
}

/// A successful branch.
#[derive(Debug, serde::Serialize)]
pub struct Branched {
    /// Text of the user message the fork started before (for the composer).
    pub selected_text: String,
    /// The new session.
    pub session: SessionRecord,
}

