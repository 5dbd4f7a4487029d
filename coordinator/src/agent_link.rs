//! The coordinator's handle on an agent: commands out, request/reply matching for what comes
//! back. What reads the agent's streams is `control`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use piface_shared::protocol::{FromAgent, Hello, RequestId, ToAgent};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, Instrument};

use crate::error::ApiError;

/// Why a request to the agent failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The agent is gone.
    #[error("the agent is not connected")]
    Disconnected,
    /// No reply in time.
    #[error("the agent did not answer within {0:?}")]
    Timeout(Duration),
}

/// One connection of an agent: a reconnect is a new link with a new id, so news of an old
/// link (its end, its session list) can be told from news of the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkId(u64);

/// Sends requests to an agent and matches replies.
pub struct AgentHandle {
    link: LinkId,
    tx: mpsc::Sender<ToAgent>,
    pending: Mutex<HashMap<RequestId, oneshot::Sender<FromAgent>>>,
    /// Replies that come as a stream (histories), waiting for the agent to open it.
    reply_streams: Mutex<HashMap<RequestId, mpsc::Sender<FromAgent>>>,
    next: AtomicU64,
    hello: OnceLock<Hello>,
}

impl AgentHandle {
    /// A handle over the agent's command channel.
    pub fn new(tx: mpsc::Sender<ToAgent>) -> AgentHandle {
        static NEXT_LINK: AtomicU64 = AtomicU64::new(1);
        AgentHandle {
            link: LinkId(NEXT_LINK.fetch_add(1, Ordering::Relaxed)),
            tx,
            pending: Mutex::default(),
            reply_streams: Mutex::default(),
            next: AtomicU64::new(1),
            hello: OnceLock::new(),
        }
    }

    /// Which connection of its agent this handle speaks over.
    pub fn link(&self) -> LinkId {
        self.link
    }

    /// The agent's hello, once received.
    pub fn hello(&self) -> Option<&Hello> {
        self.hello.get()
    }

    /// Keeps the agent's hello (the first one counts).
    pub(crate) fn set_hello(&self, hello: Hello) {
        let _ = self.hello.set(hello);
    }

    /// The link is gone: everyone waiting for a reply learns it.
    pub(crate) fn fail_pending(&self) {
        self.pending.lock().unwrap().clear();
        self.reply_streams.lock().unwrap().clear();
    }

    /// Sends a message that has no reply. A request goes with the trace context of the current
    /// span (when traces are exported), so the agent's spans for it join the same trace.
    pub async fn send(&self, mut msg: ToAgent) -> Result<(), LinkError> {
        if let Some(slot @ None) = msg.trace_mut() {
            *slot = piface_link::trace::current();
        }
        self.tx.send(msg).await.map_err(|_| LinkError::Disconnected)
    }

    /// Sends `make(req)` and waits up to `timeout` for the reply carrying `req`.
    pub async fn request(
        &self,
        make: impl FnOnce(RequestId) -> ToAgent,
        timeout: Duration,
    ) -> Result<FromAgent, LinkError> {
        let req = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(req, tx);
        let msg = make(req);
        let span = client_span(&msg, req);
        let result = async {
            self.send(msg).await?;
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(reply)) => Ok(reply),
                Ok(Err(_)) => Err(LinkError::Disconnected),
                Err(_) => Err(LinkError::Timeout(timeout)),
            }
        }
        .instrument(span)
        .await;
        self.pending.lock().unwrap().remove(&req);
        result
    }

    /// A request id whose reply the caller awaits on the receiver, for requests made of several
    /// messages (uploads); [`AgentHandle::unregister`] it when done.
    pub fn register(&self) -> (RequestId, oneshot::Receiver<FromAgent>) {
        let req = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(req, tx);
        (req, rx)
    }

    /// Forgets a [`AgentHandle::register`]ed request.
    pub fn unregister(&self, req: RequestId) {
        self.pending.lock().unwrap().remove(&req);
    }

    /// Sends `make(req)`; the reply arrives as a stream of messages on the returned receiver,
    /// which ends when the agent is done (or gone).
    pub async fn request_stream(
        &self,
        make: impl FnOnce(RequestId) -> ToAgent,
    ) -> Result<mpsc::Receiver<FromAgent>, LinkError> {
        let req = self.next.fetch_add(1, Ordering::Relaxed);
        // A few chunks in flight: the agent waits when the HTTP client reads slowly.
        let (tx, rx) = mpsc::channel(4);
        self.reply_streams.lock().unwrap().insert(req, tx);
        let msg = make(req);
        let span = client_span(&msg, req);
        if let Err(e) = self.send(msg).instrument(span).await {
            self.reply_streams.lock().unwrap().remove(&req);
            return Err(e);
        }
        Ok(rx)
    }

    /// The sender for the reply stream of `req` (taken once).
    pub(crate) fn take_reply_stream(&self, req: RequestId) -> Option<mpsc::Sender<FromAgent>> {
        self.reply_streams.lock().unwrap().remove(&req)
    }

    pub(crate) fn complete(&self, req: RequestId, msg: FromAgent) {
        match self.pending.lock().unwrap().remove(&req) {
            Some(tx) => {
                let _ = tx.send(msg);
            }
            None => debug!(req, "reply to a request nobody waits for"),
        }
    }
}

/// The span of one request to an agent, from sending it to its reply (`agent Spawn`, …):
/// the parent the agent's span for it gets. Only while traces are exported: otherwise the
/// request runs in its caller's span, as it always did.
fn client_span(msg: &ToAgent, req: RequestId) -> tracing::Span {
    if !piface_link::trace::enabled() {
        return tracing::Span::none();
    }
    tracing::info_span!("agent_request", otel.name = %format!("to agent {}", msg.name()), otel.kind = "client", req)
}

/// The JSON of an agent's [`FromAgent::ToolDone`], or its error as the HTTP answer.
pub(crate) fn tool_reply(reply: FromAgent) -> Result<serde_json::Value, ApiError> {
    match reply {
        FromAgent::ToolDone { result: Ok(body), .. } => serde_json::from_str(&body)
            .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, format!("the agent answered badly: {e}"))),
        FromAgent::ToolDone { result: Err(e), .. } => {
            Err(ApiError::new(StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_GATEWAY), e.detail))
        }
        other => Err(ApiError::new(StatusCode::BAD_GATEWAY, format!("unexpected agent reply: {other:?}"))),
    }
}

/// A JSON line for pi's stdin.
pub fn input(session: &str, line: impl Into<Bytes>) -> ToAgent {
    ToAgent::Input { session: session.to_owned(), line: line.into() }
}
