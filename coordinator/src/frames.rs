//! Frames the coordinator itself sends to browsers, as opposed to pi's lines, which it relays:
//! typed here and serialised in one place, so each shape is written once; and the frames of
//! Piface's own that browsers send it.
//!
//! Two sockets carry them: a session's (`/ws/sessions/{id}`, [`SessionFrame`], between pi's
//! events; [`BrowserFrame`] the other way, beside pi's commands) and the dashboard's
//! (`/ws/dashboard`, [`DashboardFrame`]). A Web Push carries a [`Notification`] to the
//! service worker. Compact mode's patches of pi's streaming updates are [`compact`]'s. The
//! UI's side is `frontend/src/lib/api/protocol.ts`; both sides read the golden fixtures in
//! `fixtures/browser/` (one file per frame kind, written by this module's test: `session/`,
//! `dashboard/`, `client/` for what browsers send, `push/`), so renaming, reordering or
//! dropping a field fails a test on each side.
//!
//! Pi's own JSON (a replay's messages, an extension dialog's request) is spliced in as it
//! came, never re-encoded.

pub mod compact;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::record::SessionRecord;

/// A frame on a session's socket.
#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub enum SessionFrame<'a> {
    /// The session's record: first on every connection, and last when the session closed.
    #[serde(rename = "piface_session_state")]
    SessionState { session: &'a SessionRecord },
    /// Something went wrong, for this client or everyone (lost events, a link down, a bad
    /// command).
    #[serde(rename = "piface_error")]
    Error { message: &'a str },
    /// The conversation so far (pi's `get_messages`), for the client that asked or everyone.
    #[serde(rename = "piface_replay")]
    Replay { messages: &'a RawValue },
    /// An extension dialog waits for an answer: sent when it is asked, and again to each
    /// client that connects while it waits.
    #[serde(rename = "piface_attention_required")]
    AttentionRequired { session_id: &'a str, request: &'a RawValue },
    /// The result of a `!!` command, which ran on the agent and stays out of pi's context:
    /// written as pi answers its own `bash` command (`command` is always `"bash"`), so the UI
    /// shows both alike.
    #[serde(rename = "response")]
    ShellResponse {
        id: &'a str,
        command: &'static str,
        success: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<ShellData<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a str>,
    },
}

/// What a `!!` command printed, in pi's `bash` response shape.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShellData<'a> {
    pub output: &'a str,
    pub exit_code: Option<i32>,
    pub cancelled: bool,
    pub truncated: bool,
    /// The command as the user typed it (after `!!`).
    pub command: &'a str,
    /// Always true: pi does not see it.
    pub exclude_from_context: bool,
}

/// A frame on the dashboard's socket. `A` is what an agent looks like (`agents::AgentInfo`);
/// this module sits below the agents and leaves it open.
#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub enum DashboardFrame<'a, A: Serialize> {
    /// Everything at once: first on every connection, and again to a dashboard that fell
    /// behind.
    #[serde(rename = "piface_dashboard")]
    Snapshot { sessions: &'a [SessionRecord], agents: &'a [A] },
    /// A session appeared or changed.
    #[serde(rename = "piface_session")]
    Session { session: &'a SessionRecord },
    /// A session was deleted.
    #[serde(rename = "piface_session_removed")]
    SessionRemoved { piface_id: &'a str },
    /// An agent came up, went down or was removed.
    #[serde(rename = "piface_agent")]
    Agent { agent: &'a A },
}

/// A frame of Piface's own that a browser sends on a session's socket (pi's commands pass
/// through untyped). Read leniently: fields it does not know are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum BrowserFrame {
    /// The page is visible (or hidden) now: sent on every connection and whenever it
    /// changes. While a client of a session is visible, its events are not pushed.
    #[serde(rename = "piface_visibility")]
    Visibility { visible: bool },
}

/// What a Web Push carries (encrypted) to the browser's service worker, which shows it.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "piface_notification")]
pub struct Notification<'a> {
    /// Why.
    pub kind: NotificationKind,
    pub title: &'a str,
    pub body: &'a str,
    /// The page a tap opens (a path on this origin).
    pub url: &'a str,
    /// A notification with the same tag replaces this one (one per session, or agent).
    pub tag: &'a str,
    /// The session it is about, if any.
    pub session_id: Option<&'a str>,
}

/// See [`Notification::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// pi finished a run.
    TurnEnd,
    /// An extension dialog waits for an answer.
    Attention,
    /// pi exited on its own.
    Exited,
    /// An agent went down.
    AgentDown,
    /// The user asked for a test.
    Test,
}

impl Notification<'_> {
    /// The payload's JSON.
    pub fn to_bytes(&self) -> Bytes {
        to_bytes(self)
    }
}

impl SessionFrame<'_> {
    /// The frame's JSON.
    pub fn to_bytes(&self) -> Bytes {
        to_bytes(self)
    }
}

impl<A: Serialize> DashboardFrame<'_, A> {
    /// The frame's JSON.
    pub fn to_bytes(&self) -> Bytes {
        to_bytes(self)
    }
}

fn to_bytes(frame: &impl Serialize) -> Bytes {
    // Records, strings and JSON that was valid when it arrived: nothing here can fail to
    // serialise, short of a bug in a `Serialize` impl.
    Bytes::from(serde_json::to_vec(frame).expect("a frame serialises"))
}

/// `{"type":"piface_error","message":…}`.
pub fn error_frame(message: &str) -> Bytes {
    SessionFrame::Error { message }.to_bytes()
}

/// The response to the `!!` command `id`: its output, or why it did not run.
pub fn shell_response(id: &str, command: &str, result: Result<&piface_shared::protocol::ShellOutput, &str>) -> Bytes {
    let (data, error) = match result {
        Ok(out) => (
            Some(ShellData {
                output: &out.output,
                exit_code: out.exit_code,
                cancelled: out.cancelled,
                truncated: out.truncated,
                command,
                exclude_from_context: true,
            }),
            None,
        ),
        Err(e) => (None, Some(e)),
    };
    SessionFrame::ShellResponse { id, command: "bash", success: data.is_some(), data, error }.to_bytes()
}

/// `{"type":"piface_attention_required",…}` for pi's `extension_ui_request` line, `None` if
/// the line is not JSON (the agent checks that it is, so not in practice).
pub fn attention_frame(session_id: &str, request: &[u8]) -> Option<Bytes> {
    let request: &RawValue = serde_json::from_slice(request).ok()?;
    Some(SessionFrame::AttentionRequired { session_id, request }.to_bytes())
}

#[cfg(test)]
mod tests;
