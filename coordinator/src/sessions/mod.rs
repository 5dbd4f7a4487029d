//! Session lifecycle: create, resume, kill, branch, pi's exit, an agent's reconnect, internal
//! requests to pi, and the session-file capture after the first run.
//!
//! One task, the session actor (`actor.rs`), owns every change of session state: the
//! [`Registry`]'s records and which hub each session has. Everything else translates what
//! happens into a [`SessionEvent`] and posts it: the REST handlers (the functions below), the
//! agent's control stream (`control::run_control`: a link gone, a notice), the session streams
//! (`control::pump_session`: a stream opening, a run ending, pi's exit), the agent's session
//! list after a reconnect (`quic`), and the WebSocket (a command sent). Events are handled one
//! at a time, in the order they were posted, so a decision such as "this session has no hub:
//! attach one" cannot interleave with another about the same session. The actor awaits nothing
//! but its inbox: what takes time (starting pi, killing it, forking) runs in tasks that post
//! their outcome back as a [`Completion`].
//!
//! Invariants: only the actor writes the registry; a hub is attached to a session only when it
//! has no open one, and detached only after it is closed, so a client holding a hub holds the
//! session's current one or learns that it closed; news about a hub that is no longer its
//! session's (an old stream's exit, a late spawn reply) changes nothing.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use piface_shared::protocol::{SpawnError, SpawnSpec, ToAgent};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use tracing::info;

use crate::agent_link::{input, AgentHandle, LinkError, LinkId};
use crate::agents::Agents;
use crate::error::ApiError;
use crate::frames::error_frame;
use crate::hub::Hub;
use crate::record::{now, SessionRecord, Status, WorkspaceMode};
use crate::store::UploadRecord;
use crate::App;

mod actor;
mod registry;
#[cfg(test)]
mod tests;

pub use registry::{Registry, RegistryStats};

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

/// What the session actor is told: the closed list of everything that changes session state.
pub(crate) enum SessionEvent {
    /// News of an agent's link.
    Agent(AgentEvent),
    /// News from a session stream.
    Stream(StreamEvent),
    /// A browser did something to a session.
    Client(ClientCommand),
    /// A REST request (or start-up) asks for a change; the answer goes back on its `reply`.
    Api(ApiRequest),
    /// The same, handled in the asking request's span (while traces are exported).
    ApiInSpan(tracing::Span, ApiRequest),
    /// A task the actor started is done.
    Done(Completion),
}

/// See [`SessionEvent::Agent`].
pub(crate) enum AgentEvent {
    /// The agent (re)connected on `link` and runs pi for `running`.
    Listed { agent: String, link: LinkId, running: Vec<String> },
    /// The agent's `link` closed; `None`: the agent was removed, whatever its link.
    Down { agent: String, link: Option<LinkId> },
    /// Something went wrong on the agent (for one session, or in general).
    Notice { session: Option<String>, message: String },
}

/// See [`SessionEvent::Stream`]. `hub` is the hub the stream feeds: news about a hub that is no
/// longer its session's is dropped.
pub(crate) enum StreamEvent {
    /// A session stream opened: which hub does it feed (`None`: refuse the stream)?
    Open { agent: String, session: String, reply: oneshot::Sender<Option<Arc<Hub>>> },
    /// A run ended (the session file may be known now).
    AgentEnd { session: String, hub: Arc<Hub> },
    /// An extension dialog started or stopped waiting (dashboards show a badge).
    Attention { session: String },
    /// pi exited; the stream delivered all its events.
    Exited { session: String, hub: Arc<Hub>, code: Option<i32>, stderr: String },
}

/// See [`SessionEvent::Client`].
pub(crate) enum ClientCommand {
    /// A command went to pi (`last_active` moves).
    Sent { session: String },
}

/// The reply of a request to the actor.
type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// See [`SessionEvent::Api`].
pub(crate) enum ApiRequest {
    /// Start pi for a new session (the agent has prepared its directory).
    Create { record: SessionRecord, spec: SpawnSpec, reply: Reply<SessionRecord> },
    /// Start pi again for a listed session, continuing its session file.
    Resume { id: String, reply: Reply<SessionRecord> },
    /// At start-up: start pi again for a session that was live; a failure archives it.
    Restore { id: String, reply: oneshot::Sender<()> },
    /// Stop pi and archive the session.
    Kill { id: String, reply: Reply<SessionRecord> },
    /// Start a new session whose pi forks `source`'s file at `entry_id`.
    Branch {
        source: String,
        record: SessionRecord,
        spec: SpawnSpec,
        entry_id: String,
        name: Option<String>,
        reply: Reply<Option<Branched>>,
    },
    /// Change what a user may change of a record.
    Patch { id: String, render_markdown: bool, reply: Reply<SessionRecord> },
    /// Forget a session without a running pi (`false`: it has one, or is starting).
    Remove { id: String, reply: oneshot::Sender<bool> },
    /// Record an upload of a session.
    AddUpload { id: String, upload: UploadRecord, reply: Reply<()> },
    /// Forget an upload whose blob is gone.
    ForgetUpload { upload_id: String },
    /// Piface is stopping its pis: their exits must not archive the sessions.
    Stopping,
    /// Answered once everything posted before it is handled.
    Settle(oneshot::Sender<()>),
}

/// A task of the actor's is done. Only the actor makes these (its contents are private).
pub(crate) struct Completion(actor::Done);

/// The handle on the session actor: posts events, waits for replies.
#[derive(Clone)]
pub struct Sessions {
    tx: mpsc::UnboundedSender<SessionEvent>,
}

fn actor_gone() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "The session manager has stopped; restart Piface")
}

impl Sessions {
    /// Starts the actor over `registry`, the only writer of it from now on, telling `push`
    /// what a user would want a notification for. Needs a tokio runtime.
    pub(crate) fn start(
        registry: Arc<Registry>,
        agents: Arc<Agents>,
        config: &crate::Config,
        push: crate::push::Notifier,
    ) -> Sessions {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(actor::Actor::new(registry, agents, config, push, tx.clone()).run(rx));
        Sessions { tx }
    }

    /// Posts an event. The inbox is unbounded so that sync code can post: each producer is
    /// bounded upstream (a stream posts at most a few events per batch it relays; requests are
    /// capped by the HTTP server's concurrency).
    pub(crate) fn post(&self, event: SessionEvent) {
        if self.tx.send(event).is_err() {
            tracing::error!("the session actor has stopped; an event is lost");
        }
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> ApiRequest) -> Result<T, ApiError> {
        let (tx, rx) = oneshot::channel();
        let request = make(tx);
        self.post(if piface_link::trace::enabled() {
            SessionEvent::ApiInSpan(tracing::Span::current(), request)
        } else {
            SessionEvent::Api(request)
        });
        rx.await.unwrap_or_else(|_| Err(actor_gone()))
    }

    /// The hub a new session stream of `agent` feeds, asked now (the answer follows
    /// everything posted before): a live session's hub, or a new one when the session's pi ran
    /// on while this coordinator or the link was away. `None`: not a session of `agent`.
    pub(crate) fn open_stream(
        &self,
        agent: &str,
        session: &str,
    ) -> impl std::future::Future<Output = Option<Arc<Hub>>> {
        let (reply, rx) = oneshot::channel();
        self.post(SessionEvent::Stream(StreamEvent::Open { agent: agent.into(), session: session.into(), reply }));
        async move { rx.await.ok().flatten() }
    }

    /// `agent`, connected on `link`, runs pi for `running`.
    pub(crate) fn listed(&self, agent: &str, link: LinkId, running: Vec<String>) {
        self.post(SessionEvent::Agent(AgentEvent::Listed { agent: agent.into(), link, running }));
    }

    /// `agent`'s `link` closed (`None`: the agent was removed).
    pub(crate) fn link_down(&self, agent: &str, link: Option<LinkId>) {
        self.post(SessionEvent::Agent(AgentEvent::Down { agent: agent.into(), link }));
    }

    /// A notice from an agent.
    pub(crate) fn notice(&self, session: Option<String>, message: String) {
        self.post(SessionEvent::Agent(AgentEvent::Notice { session, message }));
    }

    /// Forgets a session without a running pi; `false` when it has one.
    pub async fn remove(&self, id: &str) -> bool {
        let (reply, rx) = oneshot::channel();
        self.post(SessionEvent::Api(ApiRequest::Remove { id: id.into(), reply }));
        rx.await.unwrap_or(false)
    }

    /// Records an upload of session `id` (saved before it is visible).
    pub async fn add_upload(&self, id: &str, upload: UploadRecord) -> Result<(), ApiError> {
        self.call(|reply| ApiRequest::AddUpload { id: id.into(), upload, reply }).await
    }

    /// Forgets an upload whose blob is gone.
    pub fn forget_upload(&self, upload_id: &str) {
        self.post(SessionEvent::Api(ApiRequest::ForgetUpload { upload_id: upload_id.into() }));
    }

    /// Piface is stopping its pis (their exits keep the records live, for the next start).
    pub fn stopping(&self) {
        self.post(SessionEvent::Api(ApiRequest::Stopping));
    }

    /// Returns once everything posted before is handled.
    pub async fn settle(&self) {
        let (reply, rx) = oneshot::channel();
        self.post(SessionEvent::Api(ApiRequest::Settle(reply)));
        let _ = rx.await;
    }
}

/// `POST /api/sessions`.
pub async fn create(app: &App, req: CreateSession) -> Result<SessionRecord, ApiError> {
    let agent = match req.agent.clone().filter(|a| !a.trim().is_empty()) {
        Some(name) => {
            app.agents.get(&name).ok_or_else(|| agent_unavailable(&name))?;
            name
        }
        None => app.agents.default_name().map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e))?,
    };
    // A pre-check, so that no worktree is made for a session that would be refused.
    check_capacity(&app.registry, &agent, app.config.limits.sessions_per_agent)?;
    let use_direnv = req.use_direnv.unwrap_or(app.config.direnv_default);
    let session_name = req.session_name.filter(|s| !s.trim().is_empty());
    // The agent resolves the project and, for a worktree session, makes the worktree.
    let place = app
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
                trace: None,
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
    let spec = spec_of(&record);
    app.sessions.call(|reply| ApiRequest::Create { record, spec, reply }).await
}

/// `POST /api/sessions/{id}/resume`.
pub async fn resume(app: &App, id: &str) -> Result<SessionRecord, ApiError> {
    app.sessions.call(|reply| ApiRequest::Resume { id: id.into(), reply }).await
}

/// `POST /api/sessions/{id}/kill`: stops pi (abort, SIGTERM, SIGKILL) and archives the record.
/// A session without a running pi is returned as it is, archived.
pub async fn kill(app: &App, id: &str) -> Result<SessionRecord, ApiError> {
    app.sessions.call(|reply| ApiRequest::Kill { id: id.into(), reply }).await
}

/// `PATCH /api/sessions/{id}`.
pub async fn patch(app: &App, id: &str, render_markdown: Option<bool>) -> Result<SessionRecord, ApiError> {
    app.registry.get(id).ok_or_else(ApiError::session_not_found)?;
    let Some(render_markdown) = render_markdown else {
        return Err(ApiError::bad_request("No updatable fields provided"));
    };
    app.sessions.call(|reply| ApiRequest::Patch { id: id.into(), render_markdown, reply }).await
}

/// `POST /api/sessions/{id}/branch`: a new session whose pi forks the source's session file
/// before the user message `entry_id`. `Ok(None)` when pi (an extension) cancelled the fork.
pub async fn branch(app: &App, id: &str, entry_id: &str, name: Option<String>) -> Result<Option<Branched>, ApiError> {
    let source = app.registry.get(id).ok_or_else(ApiError::session_not_found)?;
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
    // agent's pi fails the fork when the file is gone.
    if source.agent == crate::agents::LOCAL && !piface_agent::paths::expand_home(&source_file).is_file() {
        return Err(ApiError::conflict("Session file no longer exists"));
    }
    check_capacity(&app.registry, &source.agent, app.config.limits.sessions_per_agent)?;
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
    let mut spec = spec_of(&source);
    spec.session_file = Some(source_file);
    let (source, entry_id) = (source.piface_id, entry_id.to_string());
    app.sessions.call(|reply| ApiRequest::Branch { source, record, spec, entry_id, name, reply }).await
}

/// At start-up: sessions that were live when Piface stopped (or crashed) get their pi back,
/// with their session file so pi loads the history. Ephemeral sessions have no history to
/// come back to and are dropped.
pub async fn restore(app: &Arc<App>) {
    let mut tasks = tokio::task::JoinSet::new();
    // pi takes a second or two of CPU to start; a few at a time keeps the machine usable.
    let permits = Arc::new(tokio::sync::Semaphore::new(4));
    for record in app.registry.list() {
        let id = record.piface_id;
        if record.no_session {
            info!(session_id = %id, "dropping an ephemeral session");
            app.sessions.remove(&id).await;
            continue;
        }
        // A remote agent keeps its pi running while the coordinator is away; the session is
        // picked up again when that agent reconnects.
        if record.status != Status::Live || record.agent != crate::agents::LOCAL {
            continue;
        }
        let (sessions, permits) = (app.sessions.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire().await;
            let (reply, done) = oneshot::channel();
            sessions.post(SessionEvent::Api(ApiRequest::Restore { id, reply }));
            let _ = done.await;
        });
    }
    tasks.join_all().await;
}

/// 429 when `agent` runs `limit` live sessions already.
fn check_capacity(registry: &Registry, agent: &str, limit: usize) -> Result<(), ApiError> {
    if registry.live_ids_on(agent).len() >= limit {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Agent {agent} already runs {limit} live sessions (--max-sessions-per-agent); close one or raise \
                 the limit"
            ),
        ));
    }
    Ok(())
}

impl App {
    /// The agent a record's session runs on, if it is connected.
    pub fn agent_for(&self, record: &SessionRecord) -> Result<Arc<AgentHandle>, ApiError> {
        self.agents.get(&record.agent).ok_or_else(|| agent_unavailable(&record.agent))
    }

    /// The agent session `id` runs on, if it is connected.
    pub fn agent_of_session(&self, id: &str) -> Result<Arc<AgentHandle>, LinkError> {
        let name = self.registry.agent_of(id).ok_or(LinkError::Disconnected)?;
        self.agents.get(&name).ok_or(LinkError::Disconnected)
    }
}

/// Sends one JSON command to a session's pi; `last_active` moves.
pub async fn send_to_pi(app: &App, id: &str, line: Vec<u8>) -> Result<(), String> {
    if app.registry.live_hub(id).is_none() {
        return Err("Session is not live".into());
    }
    app.agent_of_session(id).map_err(|e| e.to_string())?.send(input(id, line)).await.map_err(|e| e.to_string())?;
    app.sessions.post(SessionEvent::Client(ClientCommand::Sent { session: id.into() }));
    Ok(())
}

/// Sends `command` (a JSON object without `id`) to a session's pi under an internal id and
/// returns pi's successful reply. The reply never reaches browsers.
pub async fn pi_request(app: &App, id: &str, command: Map<String, Value>) -> Result<Value, String> {
    let hub = app.registry.hub(id).filter(|h| !h.is_closed()).ok_or("Session is not live")?;
    let agent = app.agent_of_session(id).map_err(|e| e.to_string())?;
    ask_pi(&agent, &hub, id, command).await
}

/// [`pi_request`] on a known hub and agent (the actor's tasks: a starting session is not
/// listed yet).
pub(crate) async fn ask_pi(
    agent: &AgentHandle,
    hub: &Hub,
    id: &str,
    mut command: Map<String, Value>,
) -> Result<Value, String> {
    let (rid, rx) = hub.new_internal();
    command.insert("id".into(), Value::String(rid.clone()));
    let line = serde_json::to_vec(&command).map_err(|e| e.to_string())?;
    agent.send(input(id, line)).await.map_err(|e| e.to_string())?;
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

/// Events were lost (a link died with them in flight): every client of the session is told
/// and gets a fresh replay, at its place in the stream.
pub(crate) async fn resync_clients(app: &App, id: &str, hub: &Hub) {
    hub.push(None, error_frame("Some live events were lost on the way from the agent; the history is being resent"))
        .await;
    let line = serde_json::json!({ "type": "get_messages", "id": "__piface_replay__" }).to_string();
    if let Ok(agent) = app.agent_of_session(id) {
        let _ = agent.send(input(id, line)).await;
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
