//! The session actor: the one task that changes session state. See the module docs of
//! [`sessions`](super) for what it owns and why.
//!
//! Each handler runs to its end without awaiting; what takes time runs in a task spawned here
//! that posts a [`Done`] back. A `Done` names the hub it was started for: if the session has
//! another hub by then (or none), the news is old and changes nothing.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use piface_shared::protocol::{FromAgent, SpawnError, SpawnSpec, ToAgent};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn, Instrument};

use super::registry::{Attach, Registry};
use super::{
    agent_unavailable, ask_pi, check_capacity, spawn_error, spec_of, AgentEvent, ApiRequest, Branched, ClientCommand,
    Completion, Reply, SessionEvent, StreamEvent,
};
use crate::agent_link::AgentHandle;
use crate::agents::{Agents, LOCAL};
use crate::error::ApiError;
use crate::frames::error_frame;
use crate::hub::{Hub, HubLimits};
use crate::push::{Event as PushEvent, Notifier, SessionInfo};
use crate::record::{now, SessionRecord, Status};

/// How long a kill waits for the session stream to deliver pi's last events.
const KILL_DRAIN: Duration = Duration::from_secs(5);
/// How long the agent may take to kill pi.
const KILL_TIMEOUT: Duration = Duration::from_secs(30);

/// What a task of the actor reports.
pub(super) enum Done {
    /// pi started (or not) for a session with `hub`.
    Spawned { id: String, hub: Arc<Hub>, result: Result<u32, Refused>, then: AfterSpawn },
    /// A branch's pi started and forked (or not).
    Forked {
        id: String,
        hub: Arc<Hub>,
        source: String,
        result: Result<Option<(String, String)>, ApiError>,
        reply: Reply<Option<Branched>>,
    },
    /// The agent killed pi, and its stream drained (or the waits ran out).
    Killed { id: String, hub: Arc<Hub> },
    /// pi told its session file after a run (or could not).
    SessionFile { id: String, hub: Arc<Hub>, file: Option<String> },
}

/// Who waits for a spawn.
pub(super) enum AfterSpawn {
    /// `POST /api/sessions`: the session is listed once pi is up, dropped if it fails.
    Create(Reply<SessionRecord>),
    /// `POST …/resume`.
    Resume(Reply<SessionRecord>),
    /// Start-up, or an agent that came back without the session's pi: a failure archives it.
    Restore(Option<oneshot::Sender<()>>),
}

/// Why pi did not start.
pub(super) enum Refused {
    /// The agent runs pi for this session already.
    AlreadyRunning,
    /// Anything else, as the HTTP answer.
    Failed(ApiError),
}

pub(super) struct Actor {
    registry: Arc<Registry>,
    agents: Arc<Agents>,
    hub_limits: HubLimits,
    /// How long a spawn may take (pi's start timeout and a margin).
    spawn_wait: Duration,
    max_live: usize,
    /// Sessions whose pi is being started (create, resume, restore, branch).
    starting: HashSet<String>,
    /// Kill requests waiting for their session's pi to end, by session.
    kills: HashMap<String, Vec<Reply<SessionRecord>>>,
    /// Sessions whose session file is being asked for.
    capturing: HashSet<String>,
    /// Set while Piface stops its pis.
    stopping: bool,
    /// Web Push: told what a user would want to hear about; never waited for.
    push: Notifier,
    /// Where the actor's tasks post their outcome.
    tx: mpsc::UnboundedSender<SessionEvent>,
}

impl Actor {
    pub(super) fn new(
        registry: Arc<Registry>,
        agents: Arc<Agents>,
        config: &crate::Config,
        push: Notifier,
        tx: mpsc::UnboundedSender<SessionEvent>,
    ) -> Actor {
        Actor {
            registry,
            agents,
            hub_limits: config.hub_limits,
            spawn_wait: config.start_timeout + Duration::from_secs(10),
            max_live: config.limits.sessions_per_agent,
            starting: HashSet::new(),
            kills: HashMap::new(),
            capturing: HashSet::new(),
            stopping: false,
            push,
            tx,
        }
    }

    /// Handles events until every handle is gone. A handler that panics (a bug) loses its
    /// event, which is logged; the others go on (a caller waiting for a reply gets a 503).
    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<SessionEvent>) {
        while let Some(event) = rx.recv().await {
            if std::panic::catch_unwind(AssertUnwindSafe(|| self.handle(event))).is_err() {
                error!("the session actor failed on an event (a bug); it goes on with the next");
            }
        }
    }

    fn handle(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::Agent(AgentEvent::Listed { agent, link, running }) => {
                if self.agents.get(&agent).map(|h| h.link()) == Some(link) {
                    self.reconcile(&agent, &running);
                }
            }
            SessionEvent::Agent(AgentEvent::Down { agent, link }) => self.agent_down(&agent, link),
            SessionEvent::Agent(AgentEvent::Notice { session, message }) => {
                match session.as_deref().and_then(|id| self.registry.hub(id)) {
                    Some(hub) => push_notice(hub, message),
                    None => warn!(session_id = ?session, "agent notice: {message}"),
                }
            }
            SessionEvent::Stream(StreamEvent::Open { agent, session, reply }) => {
                let _ = reply.send(self.open_stream(&agent, &session));
            }
            SessionEvent::Stream(StreamEvent::AgentEnd { session, hub }) => self.agent_end(session, hub),
            SessionEvent::Stream(StreamEvent::Attention { session }) => {
                self.registry.announce(&session);
                self.push_attention(&session);
            }
            SessionEvent::Stream(StreamEvent::Exited { session, hub, code, stderr }) => {
                if hub.is_closed() {
                    return;
                }
                let stderr = stderr.trim();
                if code != Some(0) && !stderr.is_empty() {
                    warn!(session_id = %session, ?code, "pi exited: {stderr}");
                } else {
                    info!(session_id = %session, ?code, "pi exited");
                }
                // Nobody asked for this exit (a kill, a reload, Piface stopping): pi died.
                if !self.stopping && !self.kills.contains_key(&session) {
                    if let Some(record) = self.registry.get(&session) {
                        let session = SessionInfo::of(&record);
                        self.push.notify(PushEvent::Exited { session, code, stderr: stderr.to_string() });
                    }
                }
                self.close_session(&session, &hub);
            }
            SessionEvent::Client(ClientCommand::Sent { session }) => {
                self.registry.update(&session, |r| r.last_active = now());
            }
            SessionEvent::Api(request) => self.api(request),
            // The tasks a request starts (pi's start, a kill) run in the span of the HTTP
            // request that asked, so the agent's spans join its trace.
            SessionEvent::ApiInSpan(span, request) => span.in_scope(|| self.api(request)),
            SessionEvent::Done(Completion(done)) => self.done(done),
        }
    }

    fn api(&mut self, request: ApiRequest) {
        match request {
            ApiRequest::Create { record, spec, reply } => {
                let id = record.piface_id.clone();
                let hub = self.new_hub(&id);
                self.registry.insert_starting(record, hub.clone());
                self.spawn(id, hub, spec, AfterSpawn::Create(reply));
            }
            ApiRequest::Resume { id, reply } => {
                if let Err(e) = self.resume(&id, AfterSpawn::Resume(reply)) {
                    e.answer();
                }
            }
            ApiRequest::Restore { id, reply } => {
                if let Err(e) = self.resume(&id, AfterSpawn::Restore(Some(reply))) {
                    e.answer();
                }
            }
            ApiRequest::Kill { id, reply } => self.kill(id, reply),
            ApiRequest::Branch { source, record, spec, entry_id, name, reply } => {
                let id = record.piface_id.clone();
                let hub = self.new_hub(&id);
                self.registry.insert_starting(record, hub.clone());
                self.starting.insert(id.clone());
                let agent = self.agent_of(&id);
                let (tx, wait) = (self.tx.clone(), self.spawn_wait);
                tokio::spawn(async move {
                    let result = match agent {
                        Ok(agent) => fork_in_new_pi(&agent, &hub, &id, spec, &entry_id, name, wait).await,
                        Err(e) => Err(e),
                    };
                    let _ = tx.send(SessionEvent::Done(Completion(Done::Forked { id, hub, source, result, reply })));
                });
            }
            ApiRequest::Patch { id, render_markdown, reply } => {
                let _ = reply.send(
                    self.registry
                        .update(&id, |r| r.render_markdown = render_markdown)
                        .ok_or_else(ApiError::session_not_found),
                );
            }
            ApiRequest::Remove { id, reply } => {
                let running = self.registry.hub(&id).is_some_and(|h| !h.is_closed()) || self.starting.contains(&id);
                if !running {
                    self.registry.remove(&id);
                }
                let _ = reply.send(!running);
            }
            ApiRequest::AddUpload { id, upload, reply } => {
                let _ = reply.send(
                    self.registry
                        .add_upload(&id, upload)
                        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
                );
            }
            ApiRequest::ForgetUpload { upload_id } => self.registry.forget_upload(&upload_id),
            ApiRequest::Stopping => self.stopping = true,
            ApiRequest::Settle(reply) => {
                let _ = reply.send(());
            }
        }
    }

    fn done(&mut self, done: Done) {
        match done {
            Done::Spawned { id, hub, result, then } => self.spawned(id, hub, result, then),
            Done::Forked { id, hub, source, result, reply } => {
                self.starting.remove(&id);
                let result = if hub.is_closed() && matches!(result, Ok(Some(_))) {
                    Err(ApiError::conflict("pi ended while the branch was starting"))
                } else {
                    result
                };
                match result {
                    Ok(Some((selected_text, file))) => {
                        let Some(record) = self.registry.set_live(&id, |r| r.session_file = Some(file)) else {
                            let _ = reply.send(Err(ApiError::session_not_found()));
                            return;
                        };
                        let uploads = self.registry.uploads_of(&source);
                        if !uploads.is_empty() {
                            self.registry.share_uploads(&id, uploads);
                        }
                        info!(session_id = %id, parent = %source, "session branched");
                        let _ = reply.send(Ok(Some(Branched { selected_text, session: record })));
                    }
                    other => {
                        if let Ok(agent) = self.agent_of(&id) {
                            let session = id.clone();
                            tokio::spawn(async move {
                                let _ = agent
                                    .request(|req| ToAgent::Kill { req, session, trace: None }, KILL_TIMEOUT)
                                    .await;
                            });
                        }
                        hub.close();
                        self.registry.remove(&id);
                        let _ = reply.send(other.map(|_| None));
                    }
                }
            }
            Done::Killed { id, hub } => {
                if !hub.is_closed() {
                    self.close_session(&id, &hub);
                }
                let record = self.archive(&id);
                for reply in self.kills.remove(&id).unwrap_or_default() {
                    let _ = reply.send(record.clone().ok_or_else(ApiError::session_not_found));
                }
            }
            Done::SessionFile { id, hub, file } => {
                self.capturing.remove(&id);
                if let Some(file) = file.filter(|_| self.is_current(&id, &hub)) {
                    // As pi reported it: a `~` in it is the agent's home, expanded there.
                    info!(session_id = %id, session_file = %file, "session file captured");
                    self.registry.update(&id, |r| r.session_file = Some(file));
                }
            }
        }
    }

    fn new_hub(&self, id: &str) -> Arc<Hub> {
        Arc::new(Hub::new(id.to_string(), self.hub_limits))
    }

    /// `hub` is session `id`'s hub now.
    fn is_current(&self, id: &str, hub: &Arc<Hub>) -> bool {
        self.registry.hub(id).is_some_and(|h| Arc::ptr_eq(&h, hub))
    }

    fn agent_of(&self, id: &str) -> Result<Arc<AgentHandle>, ApiError> {
        let name = self.registry.agent_of(id).ok_or_else(ApiError::session_not_found)?;
        self.agents.get(&name).ok_or_else(|| agent_unavailable(&name))
    }

    /// Starts pi for session `id`, which has `hub`, in a task; [`Done::Spawned`] follows.
    fn spawn(&mut self, id: String, hub: Arc<Hub>, spec: SpawnSpec, then: AfterSpawn) {
        self.starting.insert(id.clone());
        let agent = self.agent_of(&id);
        let (tx, wait) = (self.tx.clone(), self.spawn_wait);
        tokio::spawn(
            async move {
                let result = match agent {
                    Ok(agent) => spawn_pi(&agent, &id, spec, wait).await,
                    Err(e) => Err(Refused::Failed(e)),
                };
                let _ = tx.send(SessionEvent::Done(Completion(Done::Spawned { id, hub, result, then })));
            }
            .in_current_span(),
        );
    }

    fn spawned(&mut self, id: String, hub: Arc<Hub>, result: Result<u32, Refused>, then: AfterSpawn) {
        self.starting.remove(&id);
        // The session's stream ended while pi was starting (its agent went away).
        let result = match result {
            Ok(_) if hub.is_closed() => Err(Refused::Failed(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The session's agent went away while pi was starting",
            ))),
            other => other,
        };
        match (then, result) {
            (AfterSpawn::Create(reply), Ok(pid)) => {
                info!(session_id = %id, pid, "session created");
                let _ = reply.send(self.registry.set_live(&id, |_| {}).ok_or_else(ApiError::session_not_found));
            }
            (AfterSpawn::Create(reply), Err(e)) => {
                hub.close();
                self.registry.remove(&id);
                let _ = reply.send(Err(e.into_api()));
            }
            (then, Ok(pid)) => {
                info!(session_id = %id, pid, "session live");
                let record = self.mark_live(&id);
                then.answer(record.ok_or_else(ApiError::session_not_found));
            }
            (then, Err(Refused::AlreadyRunning)) => {
                // Its pi came back meanwhile (the agent re-announced it): the hub stays, the
                // session is live.
                self.mark_live(&id);
                then.answer(Err(ApiError::conflict("Session is already live")));
            }
            (then, Err(Refused::Failed(e))) => {
                hub.close();
                self.registry.detach_hub(&id, &hub);
                if let AfterSpawn::Restore(_) = then {
                    warn!(session_id = %id, "could not start the session again: {}", e.detail);
                    self.archive(&id);
                }
                then.answer(Err(e));
            }
        }
    }

    fn mark_live(&self, id: &str) -> Option<SessionRecord> {
        self.registry.set_live(id, |r| {
            r.status = Status::Live;
            r.last_active = now();
        })
    }

    fn archive(&self, id: &str) -> Option<SessionRecord> {
        self.registry.update(id, |r| {
            r.status = Status::Closed;
            r.last_active = now();
        })
    }

    /// Starts pi again for listed session `id`, on a new hub. `Err`: refused (its answer).
    fn resume(&mut self, id: &str, then: AfterSpawn) -> Result<(), Refusal> {
        let refuse = |then, e| Err(Refusal(then, e));
        let Some(record) = self.registry.get(id) else { return refuse(then, ApiError::session_not_found()) };
        let open = self.registry.hub(id).is_some_and(|h| !h.is_closed());
        if let AfterSpawn::Resume(_) = then {
            if record.status == Status::Live && open {
                return refuse(then, ApiError::conflict("Session is already live"));
            }
            if record.no_session {
                return refuse(then, ApiError::conflict("Ephemeral sessions cannot be resumed"));
            }
            if let Err(e) = check_capacity(&self.registry, &record.agent, self.max_live) {
                return refuse(then, e);
            }
        }
        if self.starting.contains(id) {
            return refuse(then, ApiError::conflict("Session is already starting"));
        }
        let hub = self.new_hub(id);
        match self.registry.attach_hub(id, hub.clone()) {
            Ok(_) => {}
            Err(Attach::Unknown) => return refuse(then, ApiError::session_not_found()),
            Err(Attach::Occupied) => return refuse(then, ApiError::conflict("Session is already live")),
        }
        self.spawn(id.to_string(), hub, spec_of(&record), then);
        Ok(())
    }

    fn kill(&mut self, id: String, reply: Reply<SessionRecord>) {
        if self.registry.get(&id).is_none() {
            let _ = reply.send(Err(ApiError::session_not_found()));
            return;
        }
        let Some(hub) = self.registry.hub(&id).filter(|h| !h.is_closed()) else {
            let _ = reply.send(self.archive(&id).ok_or_else(ApiError::session_not_found));
            return;
        };
        let waiting = self.kills.entry(id.clone()).or_default();
        waiting.push(reply);
        if waiting.len() > 1 {
            // A kill is under way; this request gets its answer.
            return;
        }
        let agent = self.agent_of(&id);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let session = id.clone();
            let sent = match agent {
                Ok(agent) => agent
                    .request(|req| ToAgent::Kill { req, session, trace: None }, KILL_TIMEOUT)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.detail.as_str().unwrap_or("the agent is not connected").to_string()),
            };
            if let Err(e) = sent {
                warn!(session_id = %id, "kill: {e}");
            }
            // The session stream ends with pi's exit; let it deliver its last events first.
            let _ = tokio::time::timeout(KILL_DRAIN, hub.wait_closed()).await;
            let _ = tx.send(SessionEvent::Done(Completion(Done::Killed { id, hub })));
        });
    }

    /// Archives session `id` (unless Piface is stopping) and closes its `hub`.
    fn close_session(&self, id: &str, hub: &Arc<Hub>) {
        // The record first: clients that see the hub close read the closed record.
        if !self.stopping {
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

    /// The hub a new stream of `agent` for `id` feeds.
    fn open_stream(&mut self, agent: &str, id: &str) -> Option<Arc<Hub>> {
        // Only the agent a session's record names may feed it.
        if self.registry.agent_of(id).as_deref() != Some(agent) {
            warn!(session_id = %id, agent = %agent, "events for a session this agent does not run; dropping its stream");
            return None;
        }
        if let Some(hub) = self.registry.hub(id).filter(|h| !h.is_closed()) {
            return Some(hub);
        }
        self.reattach(agent, id)
    }

    /// Gives listed session `id` a new hub and lists it live: its pi ran on while this
    /// coordinator (or the link) was away.
    fn reattach(&mut self, agent: &str, id: &str) -> Option<Arc<Hub>> {
        self.registry.get(id)?;
        let hub = self.new_hub(id);
        self.registry.attach_hub(id, hub.clone()).ok()?;
        self.mark_live(id);
        info!(session_id = %id, agent = %agent, "session re-attached");
        Some(hub)
    }

    /// An agent (re)connected and listed its running sessions. Those it runs are re-attached;
    /// those it no longer runs (the agent restarted) follow the start-up rules: started again
    /// with their session file, ephemeral ones dropped. A session being started or killed is
    /// left to that.
    fn reconcile(&mut self, agent: &str, running: &[String]) {
        for record in self.registry.list() {
            if record.agent != agent || record.status != Status::Live {
                continue;
            }
            let id = record.piface_id.clone();
            let open = self.registry.hub(&id).filter(|h| !h.is_closed());
            if running.contains(&id) {
                if open.is_none() {
                    self.reattach(agent, &id);
                }
                continue;
            }
            if self.starting.contains(&id) || self.kills.contains_key(&id) {
                continue;
            }
            if let Some(hub) = open {
                // Its pi is gone: clients learn the session closed; it comes back below.
                self.close_session(&id, &hub);
            }
            if record.no_session {
                info!(session_id = %id, agent = %agent, "dropping an ephemeral session whose agent restarted");
                self.registry.remove(&id);
                continue;
            }
            info!(session_id = %id, agent = %agent, "pi is gone from its agent; starting it again");
            if let Err(e) = self.resume(&id, AfterSpawn::Restore(None)) {
                e.answer();
            }
        }
    }

    /// An agent's link closed. The in-process agent's pis are gone with it; a remote agent
    /// keeps its pis running and lists them again when it reconnects, so its sessions stay
    /// live and their clients are told to wait. News of a link older than the agent's current
    /// one changes nothing.
    fn agent_down(&mut self, agent: &str, link: Option<crate::agent_link::LinkId>) {
        if let (Some(link), Some(current)) = (link, self.agents.get(agent)) {
            if current.link() != link {
                return;
            }
        }
        // `None` is a removal the user asked for.
        if link.is_some() && !self.stopping {
            self.push.notify(PushEvent::AgentDown { agent: agent.to_string() });
        }
        for id in self.registry.live_ids_on(agent) {
            let Some(hub) = self.registry.hub(&id) else { continue };
            if agent == LOCAL {
                self.close_session(&id, &hub);
            } else {
                push_notice(hub, format!("The link to agent {agent} is down; waiting for it to reconnect"));
            }
        }
    }

    /// After a run, learn the session file once (pi has one only after its first turn).
    fn agent_end(&mut self, id: String, hub: Arc<Hub>) {
        let Some(record) = self.registry.get(&id) else { return };
        if !self.is_current(&id, &hub) {
            return;
        }
        self.push.notify(PushEvent::TurnEnded { session: SessionInfo::of(&record) });
        if record.session_file.is_some() || record.no_session {
            return;
        }
        let Ok(agent) = self.agent_of(&id) else { return };
        if !self.capturing.insert(id.clone()) {
            return;
        }
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let mut cmd = Map::new();
            cmd.insert("type".into(), "get_state".into());
            let file = match ask_pi(&agent, &hub, &id, cmd).await {
                Ok(reply) => reply
                    .pointer("/data/sessionFile")
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .map(str::to_string),
                Err(e) => {
                    warn!(session_id = %id, "could not read pi's session file: {e}");
                    None
                }
            };
            let _ = tx.send(SessionEvent::Done(Completion(Done::SessionFile { id, hub, file })));
        });
    }
}

impl Actor {
    /// An extension dialog of session `id` started waiting (not: the last one was answered).
    fn push_attention(&self, id: &str) {
        let Some(hub) = self.registry.hub(id).filter(|h| h.attention_required()) else { return };
        if let Some(record) = self.registry.get(id) {
            let request = hub.pending_attention().pop();
            self.push.notify(PushEvent::Attention { session: SessionInfo::of(&record), request });
        }
    }
}

impl AfterSpawn {
    fn answer(self, result: Result<SessionRecord, ApiError>) {
        match self {
            AfterSpawn::Create(reply) | AfterSpawn::Resume(reply) => {
                let _ = reply.send(result);
            }
            AfterSpawn::Restore(done) => {
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
        }
    }
}

impl Refused {
    fn into_api(self) -> ApiError {
        match self {
            Refused::AlreadyRunning => ApiError::conflict(SpawnError::AlreadyRunning.to_string()),
            Refused::Failed(e) => e,
        }
    }
}

/// A refused resume and who waits for its answer.
struct Refusal(AfterSpawn, ApiError);

impl Refusal {
    fn answer(self) {
        if let AfterSpawn::Restore(_) = self.0 {
            warn!("could not start a session again: {}", self.1.detail);
        }
        self.0.answer(Err(self.1));
    }
}

/// Tells a session's clients something, in a task (a full hub may make the push wait).
fn push_notice(hub: Arc<Hub>, message: String) {
    tokio::spawn(async move { hub.push(None, error_frame(&message)).await });
}

async fn spawn_pi(agent: &AgentHandle, id: &str, spec: SpawnSpec, wait: Duration) -> Result<u32, Refused> {
    let session = id.to_string();
    let reply = agent
        .request(|req| ToAgent::Spawn { req, session, spec, trace: None }, wait)
        .await
        .map_err(|e| Refused::Failed(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())))?;
    match reply {
        FromAgent::Spawned { result: Ok(s), .. } => Ok(s.pid),
        FromAgent::Spawned { result: Err(SpawnError::AlreadyRunning), .. } => Err(Refused::AlreadyRunning),
        FromAgent::Spawned { result: Err(e), .. } => Err(Refused::Failed(spawn_error(e))),
        other => {
            Err(Refused::Failed(ApiError::new(StatusCode::BAD_GATEWAY, format!("unexpected agent reply: {other:?}"))))
        }
    }
}

/// Starts pi with `spec` (on the source's file) for the starting session `id`, forks it at
/// `entry_id`, names it, and returns the forked message's text and the new session file.
async fn fork_in_new_pi(
    agent: &AgentHandle,
    hub: &Hub,
    id: &str,
    spec: SpawnSpec,
    entry_id: &str,
    name: Option<String>,
    wait: Duration,
) -> Result<Option<(String, String)>, ApiError> {
    spawn_pi(agent, id, spec, wait).await.map_err(Refused::into_api)?;
    let command = |kind: &str, extra: &[(&str, &str)]| {
        let mut c = Map::new();
        c.insert("type".into(), kind.into());
        for (k, v) in extra {
            c.insert((*k).into(), (*v).into());
        }
        c
    };
    let fork = ask_pi(agent, hub, id, command("fork", &[("entryId", entry_id)])).await.map_err(ApiError::conflict)?;
    if fork.pointer("/data/cancelled").and_then(Value::as_bool) == Some(true) {
        return Ok(None);
    }
    let text = fork.pointer("/data/text").and_then(Value::as_str).unwrap_or_default().to_string();
    if let Some(name) = name {
        ask_pi(agent, hub, id, command("set_session_name", &[("name", &name)]))
            .await
            .map_err(|e| ApiError::conflict(format!("Failed to rename forked session: {e}")))?;
    }
    let state = ask_pi(agent, hub, id, command("get_state", &[]))
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
