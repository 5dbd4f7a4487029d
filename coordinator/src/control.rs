//! What reads an agent's streams: its control stream (replies, notices, the end of the link)
//! and the session streams that feed each session's [`Hub`](crate::hub::Hub).
//!
//! Invariant: a session's events reach its hub in the order the agent numbered them; the
//! pump of one session awaits its own hub only, so a slow session never holds up another.

use std::sync::{Arc, OnceLock, Weak};

use piface_agent::SessionStreams;
use piface_shared::protocol::{FromAgent, RequestId, SessionId};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::agent_link::AgentHandle;
use crate::hub::BatchOutcome;
use crate::sessions::{SessionEvent, StreamEvent};
use crate::App;

/// Messages (batches of events) a session stream may hold before the agent's reader waits, and
/// pi with it. A batch is at most about 1 MiB (or one line of up to 64 MiB).
const SESSION_STREAM_DEPTH: usize = 4;

/// Reads an agent's control stream until it closes.
pub async fn run_control(app: Arc<App>, name: String, agent: Arc<AgentHandle>, mut rx: mpsc::Receiver<FromAgent>) {
    while let Some(msg) = rx.recv().await {
        match msg {
            FromAgent::Hello(hello) => {
                if let Err(e) = hello.check_compatible() {
                    warn!("agent hello refused: {e}");
                    break;
                }
                info!(agent = %name, hostname = %hello.hostname, version = %hello.software_version, "agent connected");
                app.agents.hello(&name, &hello);
                agent.set_hello(hello);
                // Blobs of uploads nobody references may live on this agent.
                let app = app.clone();
                tokio::spawn(async move { crate::tools::collect_uploads(&app).await });
            }
            FromAgent::Spawned { req, .. }
            | FromAgent::Killed { req, .. }
            | FromAgent::ShellDone { req, .. }
            | FromAgent::Models { req, .. }
            | FromAgent::ForkMessages { req, .. }
            | FromAgent::SessionList { req, .. }
            | FromAgent::ToolDone { req, .. }
            | FromAgent::Synthesized { req, .. } => agent.complete(req, msg),
            FromAgent::HistoryChunk { req, .. }
            | FromAgent::HistoryDone { req, .. }
            | FromAgent::FileHead { req, .. }
            | FromAgent::FileChunk { req, .. }
            | FromAgent::FileEnd { req, .. } => warn!(req, "streamed reply on the control stream; dropped"),
            FromAgent::PtyOutput { session, .. } | FromAgent::PtyExited { session } => {
                warn!(session_id = %session, "terminal output on the control stream; dropped")
            }
            FromAgent::DeltaBase { .. } => warn!("a coding state on the control stream; dropped"),
            FromAgent::Notice { session, message } => app.sessions.notice(session, message),
            FromAgent::Events { session, .. } | FromAgent::Exited { session, .. } => {
                warn!(session_id = %session, "session message on the control stream; dropped")
            }
        }
    }
    info!(agent = %name, "agent link closed");
    // Everyone waiting for a reply learns the agent is gone.
    agent.fail_pending();
    app.agents.down(&name, &agent);
    app.sessions.link_down(&name, Some(agent.link()));
}

/// [`SessionStreams`] for an agent in this process: a channel per session, pumped into the
/// session's hub.
#[derive(Default)]
pub struct LocalStreams {
    app: OnceLock<Weak<App>>,
}

impl LocalStreams {
    /// Connects the streams to the app once it exists (the app needs the agent, the agent
    /// needs the streams).
    pub fn bind(&self, app: &Arc<App>) {
        let _ = self.app.set(Arc::downgrade(app));
    }
}

impl SessionStreams for LocalStreams {
    fn open_terminal(&self, session: &SessionId) -> mpsc::Sender<FromAgent> {
        let (tx, rx) = mpsc::channel(16);
        match self.app.get().and_then(Weak::upgrade) {
            Some(app) => {
                tokio::spawn(crate::terminal::pump(app, session.clone(), rx));
            }
            None => warn!(session_id = %session, "terminal opened before the coordinator was ready"),
        }
        tx
    }

    fn open_reply(&self, req: RequestId) -> Option<mpsc::Sender<FromAgent>> {
        self.app.get().and_then(Weak::upgrade)?.agents.get(crate::agents::LOCAL)?.take_reply_stream(req)
    }

    fn open(&self, session: &SessionId) -> mpsc::Sender<FromAgent> {
        let (tx, rx) = mpsc::channel(SESSION_STREAM_DEPTH);
        let app = self.app.get().and_then(Weak::upgrade);
        let session = session.clone();
        tokio::spawn(async move {
            match app {
                Some(app) => pump_session(app, crate::agents::LOCAL.to_string(), session, rx).await,
                None => warn!(session_id = %session, "session stream opened before the coordinator was ready"),
            }
        });
        tx
    }
}

/// Feeds one session's stream into its hub, in order.
///
/// A stream for a session without a hub is a session whose pi kept running on its agent while
/// the coordinator was away (or the link was down): it is re-attached. Sequence numbers make
/// the relay exactly-once across streams: an event already delivered is skipped, and a hole
/// (events lost with a dead link) gives the clients a notice and a fresh replay.
pub(crate) async fn pump_session(app: Arc<App>, agent: String, session: SessionId, mut rx: mpsc::Receiver<FromAgent>) {
    // Only the agent a session's record names may feed it (checked by the session actor for
    // every kind of link; the QUIC side refuses such streams before decoding anything).
    let Some(hub) = app.sessions.open_stream(&agent, &session).await else {
        warn!(session_id = %session, agent = %agent, "events for an unknown session; dropping its stream");
        return;
    };
    debug!(session_id = %session, agent = %agent, next_seq = ?hub.next_seq(), "session stream attached");
    let mut batch = Vec::with_capacity(SESSION_STREAM_DEPTH);
    // Everything already queued is relayed under one lock and announced with one wake-up.
    while rx.recv_many(&mut batch, SESSION_STREAM_DEPTH).await > 0 {
        app.metrics.agent_events(
            batch.iter().map(|m| if let FromAgent::Events { events, .. } = m { events.len() as u64 } else { 0 }).sum(),
        );
        let BatchOutcome { agent_end, gap, exited, attention_changed } = hub.relay_batch(batch.drain(..));
        hub.make_room().await;
        if attention_changed {
            app.sessions.post(SessionEvent::Stream(StreamEvent::Attention { session: session.clone() }));
        }
        if gap {
            app.metrics.resync(crate::metrics::Resync::Gap);
            crate::sessions::resync_clients(&app, &session, &hub).await;
        }
        if agent_end {
            app.sessions
                .post(SessionEvent::Stream(StreamEvent::AgentEnd { session: session.clone(), hub: hub.clone() }));
        }
        if let Some((code, stderr)) = exited {
            app.sessions.post(SessionEvent::Stream(StreamEvent::Exited { session, hub, code, stderr }));
            return;
        }
    }
}
