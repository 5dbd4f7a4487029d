//! The terminal tab's relay: `/ws/sessions/{id}/terminal` ⇄ the PTY on the session's agent.
//!
//! Each session's terminal has a [`TermHub`]: the last [`SCROLLBACK`] bytes of output and a
//! broadcast to every open viewer. Output is numbered by byte offset on the agent, so after a
//! link cut the agent's resend is trimmed to what is new, and a viewer that (re)connects gets
//! the scrollback first, then live output — unlike the original, which kept no scrollback and
//! fed only its most recent viewer.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use piface_shared::protocol::{FromAgent, SessionId, ToAgent};
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, warn};

use crate::App;

/// Output kept for viewers that connect later.
pub const SCROLLBACK: usize = 256 * 1024;
/// Output messages a viewer may fall behind before it is disconnected (it reconnects and gets
/// the scrollback).
const VIEWER_LAG: usize = 1024;

/// Close code of a terminal whose workspace `[launch]` script is not trusted yet.
pub const WORKSPACE_UNTRUSTED: u16 = 4409;

/// What viewers receive.
#[derive(Clone, Debug)]
enum Out {
    Data(Bytes),
    Exited,
}

struct State {
    scrollback: VecDeque<u8>,
    /// Offset (in the current shell's output) of the next byte expected from the agent.
    next: u64,
}

/// One session's terminal output.
pub struct TermHub {
    state: Mutex<State>,
    tx: broadcast::Sender<Out>,
}

impl TermHub {
    fn new() -> TermHub {
        TermHub {
            state: Mutex::new(State { scrollback: VecDeque::new(), next: 0 }),
            tx: broadcast::channel(VIEWER_LAG).0,
        }
    }

    /// Output from the agent; what this hub has already is dropped.
    pub fn output(&self, offset: u64, data: Bytes) {
        let mut st = self.state.lock().unwrap();
        let end = offset + data.len() as u64;
        if end <= st.next {
            return; // a resend of what we have
        }
        let fresh = if offset < st.next { data.slice((st.next - offset) as usize..) } else { data };
        if offset > st.next {
            debug!(lost = offset - st.next, "terminal output lost in a link cut");
        }
        st.next = end;
        st.scrollback.extend(fresh.iter());
        let excess = st.scrollback.len().saturating_sub(SCROLLBACK);
        st.scrollback.drain(..excess);
        // Under the lock, so a viewer's snapshot and its live feed neither miss nor repeat.
        let _ = self.tx.send(Out::Data(fresh));
    }

    /// The shell ended; the next one starts at offset 0.
    pub fn exited(&self) {
        let mut st = self.state.lock().unwrap();
        st.next = 0;
        let _ = self.tx.send(Out::Exited);
    }

    fn subscribe(&self) -> (Vec<u8>, broadcast::Receiver<Out>) {
        let st = self.state.lock().unwrap();
        let (a, b) = st.scrollback.as_slices();
        ([a, b].concat(), self.tx.subscribe())
    }
}

/// Every session's terminal hub.
#[derive(Default)]
pub struct Terminals {
    hubs: Mutex<HashMap<SessionId, Arc<TermHub>>>,
}

impl Terminals {
    /// The hub of `session`, created on first use.
    pub fn hub(&self, session: &str) -> Arc<TermHub> {
        self.hubs.lock().unwrap().entry(session.to_string()).or_insert_with(|| Arc::new(TermHub::new())).clone()
    }

    /// Forgets a session's terminal (the session was deleted).
    pub fn remove(&self, session: &str) {
        self.hubs.lock().unwrap().remove(session);
    }
}

/// Feeds a terminal stream from an agent into its hub.
pub async fn pump(app: Arc<App>, session: SessionId, mut rx: mpsc::Receiver<FromAgent>) {
    let hub = app.terminals.hub(&session);
    while let Some(msg) = rx.recv().await {
        match msg {
            FromAgent::PtyOutput { offset, data, .. } => hub.output(offset, data),
            FromAgent::PtyExited { .. } => hub.exited(),
            other => warn!(session_id = %session, "unexpected message on a terminal stream: {other:?}"),
        }
    }
}

#[derive(serde::Deserialize)]
struct Control {
    #[serde(rename = "type")]
    kind: String,
    cols: Option<serde_json::Value>,
    rows: Option<serde_json::Value>,
}

/// A `{"type":"resize"}` message's size, clamped; `None` for anything else.
fn parse_resize(text: &str) -> Option<(u16, u16)> {
    let c: Control = serde_json::from_str(text).ok()?;
    if c.kind != "resize" {
        return None;
    }
    let int = |v: Option<serde_json::Value>, max: u64| v?.as_u64().map(|n| n.clamp(1, max) as u16);
    Some((int(c.cols, 500)?, int(c.rows, 200)?))
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    // A close reason is at most 123 bytes; cut at a character boundary.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let frame = CloseFrame { code, reason: reason[..end].into() };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// Serves one terminal viewer until it leaves, the shell exits or Piface stops.
pub async fn serve(app: Arc<App>, id: String, mut socket: WebSocket) {
    let Some(record) = app.registry.get(&id).filter(|_| app.registry.live_hub(&id).is_some()) else {
        return close(socket, 4004, "Session is not live").await;
    };
    let Some(agent) = app.agents.get(&record.agent) else {
        return close(socket, 1011, "Failed to create terminal: its agent is not connected").await;
    };
    // The agent's link may be replaced while this viewer stays (a cut, a reconnect): each
    // message goes to its current one.
    let send = |msg: ToAgent| {
        let current = app.agents.get(&record.agent);
        async move {
            match current {
                Some(agent) => agent.send(msg).await.is_ok(),
                None => false,
            }
        }
    };
    // A `[launch]` for the terminal from an untrusted workspace file: the viewer is told (4409,
    // like the 409 of the REST API), and the UI asks the user to review and trust it.
    if let Some(project) = record.project_dir.as_deref() {
        if let Some(reason) = crate::tools::terminal_refusal(&agent, project).await {
            return close(socket, WORKSPACE_UNTRUSTED, &reason).await;
        }
    }
    let hub = app.terminals.hub(&id);
    let (scrollback, mut rx) = hub.subscribe();
    let open = ToAgent::PtyOpen {
        session: id.clone(),
        cwd: record.effective_dir().to_string(),
        project_dir: record.project_dir.clone(),
        cols: 80,
        rows: 24,
    };
    if agent.send(open).await.is_err() {
        return close(socket, 1011, "Failed to create terminal").await;
    }
    if !scrollback.is_empty() && socket.send(Message::Binary(scrollback.into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Binary(data))) => {
                    if !send(ToAgent::PtyInput { session: id.clone(), data }).await {
                        debug!("keystrokes dropped: the agent is not connected");
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    if let Some((cols, rows)) = parse_resize(text.as_str()) {
                        send(ToAgent::PtyResize { session: id.clone(), cols, rows }).await;
                    }
                }
                Some(Err(e)) => {
                    if let Some(frame) = crate::socket::read_error_close(&e, app.config.limits.ws_message) {
                        let _ = socket.send(Message::Close(Some(frame))).await;
                        crate::socket::linger().await;
                    }
                    return;
                }
                Some(Ok(Message::Close(_))) | None => return,
                Some(Ok(_)) => {}
            },
            out = rx.recv() => match out {
                Ok(Out::Data(data)) => {
                    if socket.send(Message::Binary(data)).await.is_err() {
                        return;
                    }
                }
                Ok(Out::Exited) => return close(socket, 1000, "The shell exited").await,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return close(socket, 1013, "Terminal viewer fell behind; reconnect for the scrollback").await
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = app.shutdown.cancelled() => return close(socket, 1001, "Piface is stopping").await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resends_are_trimmed_and_scrollback_is_bounded() {
        let hub = TermHub::new();
        let (_, mut rx) = hub.subscribe();
        hub.output(0, Bytes::from_static(b"hello"));
        hub.output(0, Bytes::from_static(b"hello")); // resent after a link cut
        hub.output(3, Bytes::from_static(b"lo world")); // overlaps
        assert_eq!(hub.subscribe().0, b"hello world");
        let mut got = Vec::new();
        while let Ok(Out::Data(d)) = rx.try_recv() {
            got.extend_from_slice(&d);
        }
        assert_eq!(got, b"hello world", "viewers never see a byte twice");
        hub.exited();
        hub.output(0, Bytes::from_static(b"!")); // a new shell
        assert_eq!(hub.subscribe().0, b"hello world!");
        hub.output(1, Bytes::from(vec![b'x'; SCROLLBACK]));
        let (snap, _) = hub.subscribe();
        assert_eq!(snap.len(), SCROLLBACK);
        assert!(snap.iter().all(|&b| b == b'x'));
    }

    #[test]
    fn resize_messages_are_clamped_and_others_ignored() {
        assert_eq!(parse_resize(r#"{"type":"resize","cols":120,"rows":40}"#), Some((120, 40)));
        assert_eq!(parse_resize(r#"{"type":"resize","cols":9000,"rows":0}"#), Some((500, 1)));
        assert_eq!(parse_resize(r#"{"type":"resize","cols":"80","rows":24}"#), None);
        assert_eq!(parse_resize(r#"{"type":"ping"}"#), None);
        assert_eq!(parse_resize("nope"), None);
    }
}
