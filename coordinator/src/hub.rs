//! The per-session event hub: one ordered stream of frames that every WebSocket client of a
//! session reads at its own pace.
//!
//! pi's lines enter through [`Hub::push_event`] in pi's order; synthetic frames (replays, `!!`
//! results, errors for one client) enter the same sequence, so each client sees one total order
//! with no gap and no duplicate. A frame is either for everyone or for one client.
//!
//! Memory is bounded: frames stay in the ring until every client has read them, up to
//! [`HubLimits::max_bytes`]. Past that, the writer waits up to [`HubLimits::stall`] for slow
//! clients (back-pressure that reaches pi's stdout pipe through the bounded channels before
//! it); a client still behind after that is cut loose: it is told it lagged and resynchronised
//! with a fresh replay, rather than buffered for without limit.
//!
//! What it is not: it knows nothing about sockets or the agent. It turns a few pi replies into
//! Piface messages (`piface_replay`, enriched `bash` responses, `piface_attention_required`)
//! because those rewrites must happen at a precise place in the stream.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use piface_shared::protocol::{EventMeta, FromAgent};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::{oneshot, watch, Notify};

/// Identifies one WebSocket client of a hub.
pub type ClientId = u64;

/// Limits of a hub.
#[derive(Debug, Clone, Copy)]
pub struct HubLimits {
    /// Bytes of frames kept for clients that have not read them yet.
    pub max_bytes: usize,
    /// How long the writer waits for a slow client before cutting it loose.
    pub stall: Duration,
}

impl Default for HubLimits {
    fn default() -> Self {
        HubLimits { max_bytes: 32 * 1024 * 1024, stall: Duration::from_secs(5) }
    }
}

/// Prefix of every id Piface puts on commands of its own. Clients may not use it.
pub const RESERVED_PREFIX: &str = "__piface_";
/// Prefix of ids generated for `bash` commands that came without one.
pub const CMD_PREFIX: &str = "__piface_cmd_";
const REPLAY_PREFIX: &str = "__piface_replay";
const INTERNAL_PREFIX: &str = "__piface_internal_";
const SESSION_FILE_PREFIX: &str = "__piface_session_file_";

struct Frame {
    target: Option<ClientId>,
    data: Bytes,
    partial: Partial,
}

/// What a frame is to clients in compact mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partial {
    /// Not a streaming update: the same for every client.
    No,
    /// A streaming update with no compact form (the first of a message): compact clients take
    /// it whole and it becomes their base.
    Full,
    /// A streaming update and its compact form, a patch against the update just before it.
    Patch(Bytes),
}

/// One frame for [`Hub::push_all`]: for everyone (`None`) or one client, and its compact form.
pub type Outgoing = (Option<ClientId>, Bytes, Partial);

/// How a client reads the stream.
#[derive(Debug, Clone, Copy, Default)]
struct Mode {
    /// Compact mode (`?mode=compact`): updates as patches.
    compact: bool,
    /// It got the update a patch would apply to.
    has_base: bool,
}

#[derive(Default)]
struct State {
    /// Frames from sequence `first` on.
    frames: VecDeque<Frame>,
    first: u64,
    bytes: usize,
    /// Next frame each client will read.
    cursors: HashMap<ClientId, u64>,
    modes: HashMap<ClientId, Mode>,
    next_client: ClientId,
    /// Internal requests waiting for pi's reply, by id.
    waiters: HashMap<String, oneshot::Sender<Bytes>>,
    /// Replay requests by id, with the client that asked.
    replays: HashMap<String, ClientId>,
    next_internal: u64,
    /// Text of `bash` commands by id, to add to pi's response (pi omits it).
    bash_commands: HashMap<String, String>,
    /// Blocking extension UI requests not answered yet: (id, `piface_attention_required` frame).
    pending_ui: Vec<(String, Bytes)>,
    closed: bool,
}

/// What a client gets from [`Hub::fetch`].
pub enum Fetch {
    /// Frames in order (possibly none if all new frames were for other clients).
    Frames(Vec<Bytes>),
    /// The client fell behind and frames it had not read were dropped; it now reads from the
    /// newest frame on and should be resynchronised.
    Lagged,
    /// The session ended and the client has read everything.
    Closed,
}

/// A session's event hub. See the module docs.
pub struct Hub {
    session_id: String,
    limits: HubLimits,
    state: Mutex<State>,
    /// Woken when frames are added or the hub closes.
    added: Notify,
    /// Woken when a client reads or leaves (room may have been made).
    consumed: Notify,
    /// True once closed.
    closed: watch::Sender<bool>,
    /// Makes the compact form of updates while a compact client is attached (only the
    /// session's pump uses it; its own lock keeps that work off the clients' path).
    compactor: Mutex<crate::frames::compact::Compactor>,
    /// Where the relay of pi's events stands. Held while a batch is numbered, routed and
    /// appended, so two streams of one session (an old one draining while a reconnect's resend
    /// arrives) relay each event once and in order: taken before `compactor` and `state`.
    relay: Mutex<Relay>,
}

/// See [`Hub::relay_batch`].
#[derive(Default)]
struct Relay {
    /// Sequence number of the next pi event expected from the agent; `None` until the first
    /// one arrives (a hub re-attached after a restart does not know where pi is).
    next_seq: Option<u64>,
    /// An implausible sequence number was reported already.
    implausible: bool,
}

/// The largest forward jump of a session's sequence numbers that is believed: events lost
/// with a dead link leave a hole, but no pi writes four billion lines while a link is down.
pub const MAX_SEQ_JUMP: u64 = 1 << 32;

/// What a relayed batch asks of the caller, outside the hub.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// pi finished a run (`agent_end`).
    pub agent_end: bool,
    /// Events were lost before this batch: the clients need a fresh replay.
    pub gap: bool,
    /// pi exited (the stream's last message): its exit code and stderr.
    pub exited: Option<(Option<i32>, String)>,
    /// Whether an extension dialog started or stopped waiting for an answer.
    pub attention_changed: bool,
}

/// Fate of a reply to a command with a reserved id.
enum Reserved {
    /// Handed to an internal waiter, or dropped.
    Consumed,
    /// A replay, for one client or (`None`) everyone.
    Replay(Option<ClientId>),
    /// An ordinary event after all (e.g. a `__piface_cmd_` bash reply).
    Relay,
}

/// Things the caller must do after an event, outside the hub.
#[derive(Debug, PartialEq, Eq)]
pub enum FollowUp {
    /// Nothing.
    None,
    /// pi finished a run (`agent_end`): time to learn the session file if not known yet.
    AgentEnd,
}

impl Hub {
    /// A hub for one session.
    pub fn new(session_id: String, limits: HubLimits) -> Hub {
        Hub {
            session_id,
            limits,
            state: Mutex::default(),
            added: Notify::new(),
            consumed: Notify::new(),
            closed: watch::Sender::new(false),
            compactor: Mutex::default(),
            relay: Mutex::default(),
        }
    }

    /// Registers a client that will read every frame added from now on.
    pub fn attach(&self) -> ClientId {
        self.attach_as(false)
    }

    /// Registers a client in full mode (pi's lines as pi wrote them) or compact mode (streaming
    /// updates as patches, see `crate::frames::compact`).
    pub fn attach_as(&self, compact: bool) -> ClientId {
        let mut st = self.state.lock().unwrap();
        let id = st.next_client;
        st.next_client += 1;
        let head = st.first + st.frames.len() as u64;
        st.cursors.insert(id, head);
        st.modes.insert(id, Mode { compact, has_base: false });
        id
    }

    /// Forgets a client.
    pub fn detach(&self, client: ClientId) {
        let mut st = self.state.lock().unwrap();
        st.cursors.remove(&client);
        st.modes.remove(&client);
        st.replays.retain(|_, c| *c != client);
        drop(st);
        self.consumed.notify_waiters();
    }

    /// Bytes of the frames kept for clients that have not read them all.
    pub fn buffered_bytes(&self) -> usize {
        self.state.lock().unwrap().bytes
    }

    /// Number of attached clients.
    pub fn client_count(&self) -> usize {
        self.state.lock().unwrap().cursors.len()
    }

    /// Takes the frames `client` has not read yet, up to about `budget` bytes, waiting for new
    /// ones when there are none.
    pub async fn fetch(&self, client: ClientId, budget: usize) -> Fetch {
        loop {
            let notified = self.added.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(fetch) = self.try_fetch(client, budget) {
                return fetch;
            }
            notified.await;
        }
    }

    /// Like [`Hub::fetch`] without waiting: `None` when there is nothing new yet.
    pub fn try_fetch(&self, client: ClientId, budget: usize) -> Option<Fetch> {
        let mut st = self.state.lock().unwrap();
        let head = st.first + st.frames.len() as u64;
        let Some(&cursor) = st.cursors.get(&client) else { return Some(Fetch::Closed) };
        if cursor < st.first {
            st.cursors.insert(client, head);
            if let Some(mode) = st.modes.get_mut(&client) {
                mode.has_base = false;
            }
            return Some(Fetch::Lagged);
        }
        if cursor < head {
            let mut out = Vec::new();
            let mut size = 0;
            let mut next = cursor;
            let mut mode = st.modes.get(&client).copied().unwrap_or_default();
            for frame in st.frames.range((cursor - st.first) as usize..) {
                next += 1;
                if frame.target.is_none_or(|t| t == client) {
                    let data = match &frame.partial {
                        Partial::Patch(patch) if mode.compact && mode.has_base => patch,
                        _ => &frame.data,
                    };
                    mode.has_base = frame.partial != Partial::No;
                    size += data.len();
                    out.push(data.clone());
                    if size >= budget {
                        break;
                    }
                }
            }
            st.modes.insert(client, mode);
            st.cursors.insert(client, next);
            let full = st.bytes > self.limits.max_bytes;
            self.trim(&mut st);
            drop(st);
            if full {
                self.consumed.notify_waiters();
            }
            return Some(Fetch::Frames(out));
        }
        st.closed.then_some(Fetch::Closed)
    }

    /// Drops frames every client has read.
    ///
    /// Clients already behind the ring (they lagged and have not fetched since) hold nothing
    /// back: they will be resynchronised whatever is kept for them.
    fn trim(&self, st: &mut State) {
        let head = st.first + st.frames.len() as u64;
        let min = st.cursors.values().copied().filter(|c| *c >= st.first).min().unwrap_or(head);
        while st.first < min {
            let Some(f) = st.frames.pop_front() else { break };
            st.bytes -= f.data.len();
            st.first += 1;
        }
    }

    /// Adds a frame for everyone (`None`) or one client, waiting while the ring is full.
    pub async fn push(&self, target: Option<ClientId>, data: Bytes) {
        self.push_all(vec![(target, data, Partial::No)]).await;
    }

    /// Relays a batch of one session stream's messages: pi's events are numbered against what
    /// was delivered (a resent event is skipped, a hole is reported, an implausible jump is
    /// dropped), routed, and appended, all under the relay lock and without waiting; the caller
    /// then awaits [`Hub::make_room`]. Several streams of one session may call this at once:
    /// each event reaches the clients once, in pi's order.
    pub fn relay_batch(&self, batch: impl IntoIterator<Item = FromAgent>) -> BatchOutcome {
        let mut relay = self.relay.lock().unwrap();
        let attention_before = self.attention_required();
        let mut out = BatchOutcome::default();
        let mut frames = Vec::new();
        for msg in batch {
            match msg {
                FromAgent::Events { events, .. } => {
                    for event in events {
                        match relay.next_seq {
                            Some(expected) if event.seq < expected => {
                                tracing::trace!(session_id = %self.session_id, seq = event.seq, expected, "skipping a resent event");
                                continue; // delivered already
                            }
                            Some(expected) if event.seq - expected > MAX_SEQ_JUMP => {
                                // More than the agent could have produced while events were
                                // lost: a broken or hostile agent; the number would stall the
                                // session's real events behind it.
                                if !relay.implausible {
                                    tracing::warn!(session_id = %self.session_id, seq = event.seq, expected, "an implausible sequence number; dropping such events");
                                    relay.implausible = true;
                                }
                                continue;
                            }
                            Some(expected) if event.seq > expected => {
                                tracing::warn!(session_id = %self.session_id, seq = event.seq, expected, "events were lost; replaying history");
                                out.gap = true;
                            }
                            _ => {}
                        }
                        relay.next_seq = Some(event.seq.saturating_add(1));
                        out.agent_end |= self.route(&event.meta, event.line, &mut frames) == FollowUp::AgentEnd;
                    }
                }
                FromAgent::Notice { message, .. } => {
                    frames.push((None, crate::frames::error_frame(&message), Partial::No))
                }
                FromAgent::Exited { code, stderr, .. } => out.exited = Some((code, stderr)),
                other => {
                    tracing::debug!(session_id = %self.session_id, "unexpected message on a session stream: {other:?}")
                }
            }
        }
        self.append(frames);
        drop(relay);
        out.attention_changed = self.attention_required() != attention_before;
        out
    }

    /// Waits until the ring is under its byte limit; after [`HubLimits::stall`], drops unread
    /// frames so slow clients lag instead of holding memory or pi.
    pub async fn make_room(&self) {
        if self.state.lock().unwrap().bytes <= self.limits.max_bytes {
            return;
        }
        let deadline = tokio::time::Instant::now() + self.limits.stall;
        loop {
            let consumed = self.consumed.notified();
            tokio::pin!(consumed);
            consumed.as_mut().enable();
            {
                let mut st = self.state.lock().unwrap();
                self.trim(&mut st);
                if st.bytes <= self.limits.max_bytes {
                    return;
                }
                if tokio::time::Instant::now() >= deadline {
                    // Keep the newest frame so clients that are current still get it.
                    while st.frames.len() > 1 && st.bytes > self.limits.max_bytes {
                        let f = st.frames.pop_front().expect("len > 1");
                        st.bytes -= f.data.len();
                        st.first += 1;
                    }
                    tracing::warn!(session_id = %self.session_id, "a slow client fell behind; it will be resynchronised");
                    return;
                }
            }
            let _ = tokio::time::timeout_at(deadline, consumed).await;
        }
    }

    /// Routes one pi line. Internal replies go to their waiters, replay replies become
    /// `piface_replay` for the client that asked, `bash` replies get their command text.
    pub async fn push_event(&self, meta: &EventMeta, line: Bytes) -> FollowUp {
        let mut frames = Vec::new();
        let follow_up = self.route(meta, line, &mut frames);
        self.push_all(frames).await;
        follow_up
    }

    /// Adds frames in one go (one lock, one wake-up), waiting while the ring is full.
    pub async fn push_all(&self, frames: Vec<Outgoing>) {
        if frames.is_empty() {
            return;
        }
        self.append(frames);
        self.make_room().await;
    }

    /// Adds frames in one go (one lock, one wake-up) without waiting for room.
    fn append(&self, frames: Vec<Outgoing>) {
        if frames.is_empty() {
            return;
        }
        {
            let mut st = self.state.lock().unwrap();
            for (target, data, partial) in frames {
                if st.cursors.is_empty() {
                    // Nobody would read it; recovery goes through a replay, as for a lagging client.
                    st.first += st.frames.len() as u64 + 1;
                    st.frames.clear();
                    st.bytes = 0;
                } else {
                    st.bytes += data.len();
                    st.frames.push_back(Frame { target, data, partial });
                }
            }
        }
        self.added.notify_waiters();
    }

    /// Decides what one pi line becomes and appends the resulting frames to `out`.
    pub fn route(&self, meta: &EventMeta, line: Bytes, out: &mut Vec<Outgoing>) -> FollowUp {
        let partial = self.compact(&meta.kind, &line);
        let mut data = line;
        if meta.kind == "response" {
            if let Some(id) = meta.id.as_deref().filter(|id| id.starts_with(RESERVED_PREFIX)) {
                match self.route_reserved(id, &mut data) {
                    Reserved::Consumed => return FollowUp::None,
                    Reserved::Replay(target) => {
                        if meta.success == Some(true) {
                            match replay_frame(&data) {
                                Ok(frame) => data = frame,
                                Err(e) => {
                                    tracing::warn!(session_id = %self.session_id, "unreadable get_messages reply: {e}")
                                }
                            }
                        }
                        out.push((target, data, Partial::No));
                        return FollowUp::None;
                    }
                    Reserved::Relay => {}
                }
            }
            if meta.command.as_deref() == Some("bash") {
                let command = meta.id.as_ref().and_then(|id| self.state.lock().unwrap().bash_commands.remove(id));
                if let (Some(command), Some(true)) = (command, meta.success) {
                    data = with_bash_command(data, &command);
                }
            }
        } else if meta.kind == "extension_ui_request" {
            let attention = self.attention_frame(&data);
            out.push((None, data, Partial::No));
            if let Some((id, frame)) = attention {
                self.state.lock().unwrap().pending_ui.push((id, frame.clone()));
                out.push((None, frame, Partial::No));
            }
            return FollowUp::None;
        } else if meta.kind == "agent_end" {
            out.push((None, data, Partial::No));
            return FollowUp::AgentEnd;
        }
        out.push((None, data, partial));
        FollowUp::None
    }

    /// What pi's line is to compact clients. The compactor follows the stream only while one is
    /// attached: it costs a look at each update.
    fn compact(&self, kind: &str, line: &Bytes) -> Partial {
        let mut compactor = self.compactor.lock().unwrap();
        if kind != "message_update" {
            compactor.reset();
            return Partial::No;
        }
        if !self.state.lock().unwrap().modes.values().any(|m| m.compact) {
            compactor.reset();
            return Partial::Full;
        }
        match compactor.push(kind, line) {
            Some(patch) => Partial::Patch(patch),
            None => Partial::Full,
        }
    }

    /// Decides what becomes of a reply to a command with a reserved id.
    fn route_reserved(&self, id: &str, data: &mut Bytes) -> Reserved {
        let mut st = self.state.lock().unwrap();
        if let Some(waiter) = st.waiters.remove(id) {
            let _ = waiter.send(std::mem::take(data));
            return Reserved::Consumed;
        }
        if id.starts_with(INTERNAL_PREFIX) || id.starts_with(SESSION_FILE_PREFIX) {
            return Reserved::Consumed;
        }
        if id.starts_with(REPLAY_PREFIX) {
            return match st.replays.remove(id) {
                Some(client) => Reserved::Replay(Some(client)),
                // `__piface_replay__` is the original's fixed id: for everyone.
                None if id == "__piface_replay__" => Reserved::Replay(None),
                None => Reserved::Consumed, // its client left
            };
        }
        Reserved::Relay
    }

    /// For a blocking extension dialog, the `piface_attention_required` frame to send.
    fn attention_frame(&self, line: &[u8]) -> Option<(String, Bytes)> {
        #[derive(Deserialize)]
        struct Req {
            id: Option<String>,
            method: Option<String>,
        }
        let req: Req = serde_json::from_slice(line).ok()?;
        let id = req.id?;
        if !matches!(req.method.as_deref(), Some("select" | "confirm" | "input" | "editor")) {
            return None;
        }
        Some((id, crate::frames::attention_frame(&self.session_id, line)?))
    }

    /// A client answered an extension dialog.
    pub fn ui_answered(&self, id: &str) {
        self.state.lock().unwrap().pending_ui.retain(|(p, _)| p != id);
    }

    /// `piface_attention_required` frames of dialogs still waiting for an answer.
    pub fn pending_attention(&self) -> Vec<Bytes> {
        self.state.lock().unwrap().pending_ui.iter().map(|(_, f)| f.clone()).collect()
    }

    /// Whether an extension dialog is waiting for an answer.
    pub fn attention_required(&self) -> bool {
        !self.state.lock().unwrap().pending_ui.is_empty()
    }

    /// Remembers the text of a `bash` command so its response can carry it.
    pub fn remember_bash(&self, id: String, command: String) {
        self.state.lock().unwrap().bash_commands.insert(id, command);
    }

    /// A new id for a replay that `client` asked for.
    pub fn new_replay(&self, client: ClientId) -> String {
        let mut st = self.state.lock().unwrap();
        st.next_internal += 1;
        let id = format!("{REPLAY_PREFIX}_{}", st.next_internal);
        st.replays.insert(id.clone(), client);
        id
    }

    /// A new id for an internal request and the receiver of pi's reply to it.
    pub fn new_internal(&self) -> (String, oneshot::Receiver<Bytes>) {
        let mut st = self.state.lock().unwrap();
        st.next_internal += 1;
        let id = format!("{INTERNAL_PREFIX}{}", st.next_internal);
        let (tx, rx) = oneshot::channel();
        st.waiters.insert(id.clone(), tx);
        (id, rx)
    }

    /// Ends the stream: clients read what is left, then get [`Fetch::Closed`]. Internal
    /// requests still waiting fail.
    pub fn close(&self) {
        let mut st = self.state.lock().unwrap();
        st.closed = true;
        st.waiters.clear();
        st.pending_ui.clear();
        drop(st);
        self.closed.send_replace(true);
        self.added.notify_waiters();
    }

    /// The next pi event expected, when known.
    pub fn next_seq(&self) -> Option<u64> {
        self.relay.lock().unwrap().next_seq
    }

    /// Waits until [`Hub::close`] has been called.
    pub async fn wait_closed(&self) {
        let mut rx = self.closed.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Forgets an internal request that timed out.
    pub fn cancel_internal(&self, id: &str) {
        self.state.lock().unwrap().waiters.remove(id);
    }

    /// Whether [`Hub::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.state.lock().unwrap().closed
    }
}

/// `{"type":"piface_replay","messages":<data.messages>}` from a successful `get_messages`
/// reply, splicing pi's bytes rather than re-encoding them.
fn replay_frame(line: &[u8]) -> Result<Bytes, serde_json::Error> {
    #[derive(Deserialize)]
    struct Reply<'a> {
        #[serde(borrow)]
        data: Data<'a>,
    }
    #[derive(Deserialize)]
    struct Data<'a> {
        #[serde(borrow)]
        messages: &'a RawValue,
    }
    let reply: Reply<'_> = serde_json::from_slice(line)?;
    Ok(crate::frames::SessionFrame::Replay { messages: reply.data.messages }.to_bytes())
}

/// pi's `bash` response with `data.command` added when pi left it out.
fn with_bash_command(line: Bytes, command: &str) -> Bytes {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&line) else { return line };
    match v.get_mut("data").and_then(|d| d.as_object_mut()) {
        Some(data) if !data.contains_key("command") => {
            data.insert("command".into(), command.into());
        }
        _ => return line,
    }
    serde_json::to_vec(&v).map(Bytes::from).unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(kind: &str, id: Option<&str>, command: Option<&str>, success: Option<bool>) -> EventMeta {
        EventMeta { kind: kind.into(), id: id.map(Into::into), command: command.map(Into::into), success }
    }

    async fn frames(hub: &Hub, c: ClientId) -> Vec<String> {
        match hub.fetch(c, usize::MAX).await {
            Fetch::Frames(f) => f.iter().map(|b| String::from_utf8(b.to_vec()).unwrap()).collect(),
            Fetch::Lagged => vec!["LAGGED".into()],
            Fetch::Closed => vec!["CLOSED".into()],
        }
    }

    #[tokio::test]
    async fn clients_see_the_same_order_and_targeted_frames_only_reach_their_client() {
        let hub = Hub::new("s".into(), HubLimits::default());
        let a = hub.attach();
        let b = hub.attach();
        hub.push_event(&meta("agent_start", None, None, None), Bytes::from_static(b"1")).await;
        hub.push(Some(b), Bytes::from_static(b"only-b")).await;
        hub.push_event(&meta("agent_end", None, None, None), Bytes::from_static(b"2")).await;
        assert_eq!(frames(&hub, a).await, ["1", "2"]);
        assert_eq!(frames(&hub, b).await, ["1", "only-b", "2"]);
        let c = hub.attach();
        hub.push(None, Bytes::from_static(b"3")).await;
        assert_eq!(frames(&hub, c).await, ["3"]);
        hub.close();
        assert_eq!(frames(&hub, a).await, ["3"]);
        assert_eq!(frames(&hub, a).await, ["CLOSED"]);
    }

    #[tokio::test]
    async fn replay_goes_to_the_client_that_asked_at_its_place_in_the_stream() {
        let hub = Hub::new("s".into(), HubLimits::default());
        let a = hub.attach();
        let b = hub.attach();
        let id = hub.new_replay(b);
        hub.push_event(&meta("message_update", None, None, None), Bytes::from_static(b"u1")).await;
        let reply = format!(
            r#"{{"type":"response","id":"{id}","command":"get_messages","success":true,"data":{{"messages":[{{"role":"user"}}]}}}}"#
        );
        hub.push_event(&meta("response", Some(&id), Some("get_messages"), Some(true)), Bytes::from(reply)).await;
        hub.push_event(&meta("message_update", None, None, None), Bytes::from_static(b"u2")).await;
        assert_eq!(frames(&hub, a).await, ["u1", "u2"]);
        assert_eq!(frames(&hub, b).await, ["u1", r#"{"type":"piface_replay","messages":[{"role":"user"}]}"#, "u2"]);
    }

    #[tokio::test]
    async fn internal_replies_go_to_waiters_and_not_to_clients() {
        let hub = Hub::new("s".into(), HubLimits::default());
        let a = hub.attach();
        let (id, rx) = hub.new_internal();
        hub.push_event(&meta("response", Some(&id), Some("get_state"), Some(true)), Bytes::from_static(b"state")).await;
        hub.push_event(
            &meta("response", Some("__piface_session_file_x"), None, Some(true)),
            Bytes::from_static(b"old"),
        )
        .await;
        hub.push(None, Bytes::from_static(b"visible")).await;
        assert_eq!(&rx.await.unwrap()[..], b"state");
        assert_eq!(frames(&hub, a).await, ["visible"]);
    }

    #[tokio::test]
    async fn bash_responses_get_their_command() {
        let hub = Hub::new("s".into(), HubLimits::default());
        let a = hub.attach();
        hub.remember_bash("c1".into(), "echo hello".into());
        let line = br#"{"type":"response","id":"c1","command":"bash","success":true,"data":{"output":"hello\n","exitCode":0}}"#;
        hub.push_event(&meta("response", Some("c1"), Some("bash"), Some(true)), Bytes::from_static(line)).await;
        let got: serde_json::Value = serde_json::from_str(&frames(&hub, a).await[0]).unwrap();
        assert_eq!(got["data"]["command"], "echo hello");
        assert_eq!(got["data"]["output"], "hello\n");
    }

    #[tokio::test]
    async fn blocking_dialogs_raise_attention_until_answered() {
        let hub = Hub::new("s1".into(), HubLimits::default());
        let a = hub.attach();
        let req = br#"{"type":"extension_ui_request","id":"u1","method":"confirm","title":"Sure?"}"#;
        hub.push_event(&meta("extension_ui_request", Some("u1"), None, None), Bytes::from_static(req)).await;
        hub.push_event(
            &meta("extension_ui_request", None, None, None),
            Bytes::from_static(br#"{"type":"extension_ui_request","id":"n","method":"notify"}"#),
        )
        .await;
        let got = frames(&hub, a).await;
        assert_eq!(got.len(), 3);
        let att: serde_json::Value = serde_json::from_str(&got[1]).unwrap();
        assert_eq!(att["type"], "piface_attention_required");
        assert_eq!(att["session_id"], "s1");
        assert_eq!(att["request"]["title"], "Sure?");
        assert!(hub.attention_required());
        hub.ui_answered("u1");
        assert!(!hub.attention_required());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_client_lags_after_the_stall_time_and_the_writer_goes_on() {
        let hub = Hub::new("s".into(), HubLimits { max_bytes: 10, stall: Duration::from_secs(5) });
        let slow = hub.attach();
        let fast = hub.attach();
        for i in 0..5u8 {
            hub.push(None, Bytes::from(vec![b'a' + i; 4])).await;
            assert_eq!(frames(&hub, fast).await.len(), 1);
        }
        // Once behind the ring, the stalled client no longer holds the writer back.
        let before = tokio::time::Instant::now();
        for i in 0..5u8 {
            hub.push(None, Bytes::from(vec![b'A' + i; 4])).await;
            assert_eq!(frames(&hub, fast).await.len(), 1);
        }
        assert_eq!(tokio::time::Instant::now(), before, "no more stalls");
        assert_eq!(frames(&hub, slow).await, ["LAGGED"]);
        hub.push(None, Bytes::from_static(b"next")).await;
        assert_eq!(frames(&hub, slow).await, ["next"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_client_that_keeps_reading_loses_nothing() {
        let hub = std::sync::Arc::new(Hub::new("s".into(), HubLimits { max_bytes: 8, stall: Duration::from_secs(5) }));
        let c = hub.attach();
        let reader = {
            let hub = hub.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                while got.len() < 100 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    match hub.fetch(c, 4).await {
                        Fetch::Frames(f) => got.extend(f),
                        other => panic!("unexpected {}", matches!(other, Fetch::Lagged)),
                    }
                }
                got
            })
        };
        for i in 0..100u32 {
            hub.push(None, Bytes::from(i.to_be_bytes().to_vec())).await;
        }
        let got = reader.await.unwrap();
        let want: Vec<Bytes> = (0..100u32).map(|i| Bytes::from(i.to_be_bytes().to_vec())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn replay_frame_splices_messages() {
        let got =
            replay_frame(br#"{"type":"response","success":true,"data":{"messages":[ {"a" : 1} ]},"id":"x"}"#).unwrap();
        assert_eq!(&got[..], br#"{"type":"piface_replay","messages":[ {"a" : 1} ]}"#);
        assert!(replay_frame(br#"{"data":{}}"#).is_err());
    }

    fn events(seqs: impl IntoIterator<Item = u64>) -> FromAgent {
        let events = seqs
            .into_iter()
            .map(|seq| piface_shared::protocol::PiEvent {
                seq,
                meta: meta("message_end", None, None, None),
                line: Bytes::from(seq.to_string()),
                delta: None,
            })
            .collect();
        FromAgent::Events { session: "s".into(), events }
    }

    #[test]
    fn a_batch_skips_resent_events_reports_holes_and_drops_implausible_jumps() {
        let hub = Hub::new("s".into(), HubLimits::default());
        let c = hub.attach();
        assert_eq!(hub.relay_batch([events(0..3)]), BatchOutcome::default());
        assert_eq!(hub.next_seq(), Some(3));
        // A resend overlapping what was delivered, then a hole before 6.
        let out = hub.relay_batch([events(1..5), events(6..7)]);
        assert!(out.gap && !out.agent_end && out.exited.is_none());
        // A jump past what pi could have written is dropped, and the stream goes on after it.
        assert_eq!(hub.relay_batch([events([7 + MAX_SEQ_JUMP + 1, 7])]), BatchOutcome::default());
        let exit = FromAgent::Exited { session: "s".into(), code: Some(0), stderr: "bye".into() };
        assert_eq!(hub.relay_batch([exit]).exited, Some((Some(0), "bye".to_string())));
        let Some(Fetch::Frames(got)) = hub.try_fetch(c, usize::MAX) else { panic!("frames") };
        let got: Vec<String> = got.iter().map(|b| String::from_utf8(b.to_vec()).unwrap()).collect();
        assert_eq!(got, ["0", "1", "2", "3", "4", "6", "7"]);
    }

    /// Two streams of one session relaying at once (the old one draining while a reconnect's
    /// resend arrives), on two threads: every event reaches the client once, in order. With
    /// the sequence check and the append as separate steps, both streams could pass the check
    /// for the same event, or append out of order.
    #[test]
    fn two_streams_relaying_at_once_deliver_each_event_once_in_order() {
        const N: u64 = 20_000;
        for round in 0..5u64 {
            let hub =
                std::sync::Arc::new(Hub::new("s".into(), HubLimits { max_bytes: usize::MAX, ..HubLimits::default() }));
            let c = hub.attach();
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
            let streams: Vec<_> = [1 + round % 3, 2 + round % 2]
                .into_iter()
                .map(|step| {
                    let (hub, barrier) = (hub.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        let mut seq = 0;
                        while seq < N {
                            let end = (seq + step).min(N);
                            hub.relay_batch([events(seq..end)]);
                            seq = end;
                        }
                    })
                })
                .collect();
            for s in streams {
                s.join().unwrap();
            }
            let Some(Fetch::Frames(got)) = hub.try_fetch(c, usize::MAX) else { panic!("frames") };
            let got: Vec<u64> = got.iter().map(|b| std::str::from_utf8(b).unwrap().parse().unwrap()).collect();
            assert_eq!(got, (0..N).collect::<Vec<_>>(), "round {round}");
        }
    }
}
