//! The chat relay `/ws/sessions/{id}` (`shared/contract/websocket.md`).
//!
//! Each connection is two halves: a writer task that reads the session's [`Hub`] at its own
//! pace and batches frames into the socket, and a reader loop that turns client messages into
//! pi commands (with the `!`/`!!` shortcuts and the reserved-id check). Frames for this client
//! alone (errors, its replay) go through the hub too, so the client sees one ordered stream.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use piface_shared::protocol::{FromAgent, ToAgent};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;
use tracing::{debug, Instrument};

use crate::error::ApiError;
use crate::frames::{error_frame, BrowserFrame, DashboardFrame, SessionFrame};
use crate::hub::{ClientId, Fetch, Hub, CMD_PREFIX, RESERVED_PREFIX};
use crate::push::Watch;
use crate::socket::{limited, linger, read_error_close};
use crate::App;

/// Close code for a session that is unknown or not live (the original's intent).
pub const CLOSE_NOT_LIVE: u16 = 4004;

/// Bytes handed to the socket before a flush.
const WRITE_BATCH: usize = 1024 * 1024;

/// The WebSocket routes.
pub fn routes() -> crate::Routes {
    vec![
        ("/ws/sessions/{id}", get(upgrade)),
        ("/ws/sessions/{id}/terminal", get(terminal_upgrade)),
        ("/ws/dashboard", get(dashboard_upgrade)),
    ]
}

async fn terminal_upgrade(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let slot = app.ws_slots.take(&id, app.config.limits.ws_per_session)?;
    let span = tracing::info_span!("terminal", session_id = %id);
    Ok(limited(ws, &app).on_upgrade(move |socket| {
        async move {
            crate::terminal::serve(app, id, socket).await;
            drop(slot);
        }
        .instrument(span)
    }))
}

/// The session socket. `?mode=compact` asks for compact mode: streaming updates as patches
/// against the previous one (`frames::compact`) instead of pi's lines, which repeat
/// the whole message twice each time; any other mode (or none) is pi's lines unchanged.
async fn upgrade(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let compact = query.as_deref().is_some_and(|q| q.split('&').any(|kv| kv == "mode=compact"));
    let slot = match app.ws_slots.take(&id, app.config.limits.ws_per_session) {
        Ok(slot) => slot,
        Err(e) => return e.into_response(),
    };
    let span = tracing::info_span!("ws", session_id = %id, compact);
    limited(ws, &app).on_upgrade(move |socket| {
        async move {
            serve_socket(app, id, compact, socket).await;
            drop(slot);
        }
        .instrument(span)
    })
}

async fn serve_socket(app: Arc<App>, id: String, compact: bool, mut socket: WebSocket) {
    // Accepting first and then closing with 4004 lets clients read the reason, where the
    // original's refusal before accept reached them as a failed handshake.
    let (Some(hub), Some(record)) = (app.registry.live_hub(&id), app.registry.get(&id)) else {
        let frame =
            CloseFrame { code: CLOSE_NOT_LIVE, reason: Utf8Bytes::from_static("Session not found or not alive") };
        let _ = socket.send(Message::Close(Some(frame))).await;
        return;
    };
    let client = hub.attach_as(compact);
    debug!(client, "client connected");
    let (mut sink, stream) = socket.split();
    let state = SessionFrame::SessionState { session: &record }.to_bytes();
    let mut ok = sink.feed(text(state)).await.is_ok();
    for frame in hub.pending_attention() {
        ok = ok && sink.feed(text(frame)).await.is_ok();
    }
    if ok && sink.flush().await.is_ok() {
        let done = app.shutdown.child_token();
        let relay = app.metrics.relay(compact);
        // Whether this page is visible, for Web Push (a client that never says is not looking).
        let watch = app.push.watch(&id);
        let writer = tokio::spawn(write_loop(app.clone(), id.clone(), hub.clone(), client, sink, done.clone(), relay));
        let close = read_loop(&app, &id, &hub, client, &watch, stream, &done).await;
        done.cancel();
        if let (Ok(Some(mut sink)), Some(frame)) = (writer.await, close) {
            let _ = sink.send(Message::Close(Some(frame))).await;
            linger().await;
        }
    }
    hub.detach(client);
    debug!(client, "client disconnected");
}

async fn dashboard_upgrade(State(app): State<Arc<App>>, ws: WebSocketUpgrade) -> Response {
    limited(ws, &app).on_upgrade(move |socket| serve_dashboard(app, socket))
}

/// Everything a dashboard shows, at once.
fn dashboard_snapshot(app: &App) -> Message {
    let mut agents = app.agents.list();
    for a in &mut agents {
        a.live_sessions = app.registry.live_ids_on(&a.name).len();
    }
    let sessions = app.registry.list();
    text(DashboardFrame::Snapshot { sessions: &sessions, agents: &agents }.to_bytes())
}

/// `/ws/dashboard`: a snapshot, then every change (see `dashboard.rs`).
async fn serve_dashboard(app: Arc<App>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let mut changes = app.dashboard.subscribe();
    if sink.send(dashboard_snapshot(&app)).await.is_err() {
        return;
    }
    loop {
        let out = tokio::select! {
            change = changes.recv() => match change {
                Ok(frame) => text(frame),
                // Fell behind: a fresh snapshot replaces the changes it missed.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => dashboard_snapshot(&app),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            msg = stream.next() => match msg {
                Some(Err(e)) => {
                    if let Some(frame) = read_error_close(&e, app.config.limits.ws_message) {
                        let _ = sink.send(Message::Close(Some(frame))).await;
                        linger().await;
                    }
                    break;
                }
                None | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => continue, // dashboards only listen
            },
            () = app.shutdown.cancelled() => break,
        };
        if sink.send(out).await.is_err() {
            break;
        }
    }
}

fn text(frame: Bytes) -> Message {
    match Utf8Bytes::try_from(frame) {
        Ok(t) => Message::Text(t),
        // Lines are validated as JSON by the agent, so this is unreachable in practice.
        Err(_) => {
            Message::Text(Utf8Bytes::from_static(r#"{"type":"piface_error","message":"an event was not valid UTF-8"}"#))
        }
    }
}

async fn write_loop(
    app: Arc<App>,
    id: String,
    hub: Arc<Hub>,
    client: ClientId,
    mut sink: SplitSink<WebSocket, Message>,
    done: CancellationToken,
    relay: crate::metrics::Relay,
) -> Option<SplitSink<WebSocket, Message>> {
    // What `write_batch` fetched but did not write (a lag or the end) is handled next.
    let mut pending = None;
    loop {
        let fetched = match pending.take() {
            Some(f) => f,
            None => tokio::select! {
                f = hub.fetch(client, WRITE_BATCH) => f,
                () = done.cancelled() => break,
            },
        };
        match fetched {
            Fetch::Frames(frames) => match write_batch(&hub, client, &mut sink, frames, &relay).await {
                Ok(next) => pending = next,
                Err(_) => {
                    done.cancel();
                    return None;
                }
            },
            Fetch::Lagged => {
                app.metrics.resync(crate::metrics::Resync::Lagged);
                hub.push(
                    Some(client),
                    error_frame("This connection fell behind the session; its history is being resent"),
                )
                .await;
                if let Err(e) = request_replay(&app, &id, &hub, client).await {
                    debug!("resync: {e}");
                }
            }
            Fetch::Closed => {
                if let Some(record) = app.registry.get(&id) {
                    let state = SessionFrame::SessionState { session: &record }.to_bytes();
                    let _ = sink.send(text(state)).await;
                }
                let frame = CloseFrame { code: 1000, reason: Utf8Bytes::from_static("Session closed") };
                let _ = sink.send(Message::Close(Some(frame))).await;
                done.cancel();
                return None;
            }
        }
    }
    done.cancel();
    Some(sink)
}

/// Writes `frames` and whatever follows right behind them, then flushes once.
///
/// Events often come in bursts of thousands of small lines; one write per event would cost a
/// system call each. Yielding once lets the session's pump add what it already has, so a burst
/// goes out in few writes, while a lone event still leaves at once. Returns a lag or close
/// met on the way, for the caller to handle after this flush.
async fn write_batch(
    hub: &Hub,
    client: ClientId,
    sink: &mut SplitSink<WebSocket, Message>,
    mut frames: Vec<Bytes>,
    relay: &crate::metrics::Relay,
) -> Result<Option<Fetch>, axum::Error> {
    let mut written = 0;
    loop {
        relay.written(frames.len() as u64, frames.iter().map(|f| f.len() as u64).sum());
        for frame in frames {
            written += frame.len();
            sink.feed(text(frame)).await?;
        }
        if written >= WRITE_BATCH {
            break;
        }
        tokio::task::yield_now().await;
        match hub.try_fetch(client, WRITE_BATCH - written) {
            Some(Fetch::Frames(more)) if !more.is_empty() => frames = more,
            Some(Fetch::Frames(_)) | None => break,
            Some(other) => {
                sink.flush().await?;
                return Ok(Some(other));
            }
        }
    }
    sink.flush().await?;
    Ok(None)
}

async fn read_loop(
    app: &Arc<App>,
    id: &str,
    hub: &Arc<Hub>,
    client: ClientId,
    watch: &Watch,
    mut stream: SplitStream<WebSocket>,
    done: &CancellationToken,
) -> Option<CloseFrame> {
    loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            () = done.cancelled() => return None,
        };
        let reply = match msg {
            Some(Err(e)) => return read_error_close(&e, app.config.limits.ws_message),
            None | Some(Ok(Message::Close(_))) => return None,
            Some(Ok(Message::Text(t))) => handle_text(app, id, hub, client, watch, t.as_str()).await.err(),
            Some(Ok(Message::Binary(_))) => {
                Some("Binary frames are not supported on this socket; send JSON text".to_string())
            }
            Some(Ok(_)) => None, // ping/pong are handled by the library
        };
        if let Some(message) = reply {
            hub.push(Some(client), error_frame(&message)).await;
        }
    }
}

async fn request_replay(app: &Arc<App>, id: &str, hub: &Hub, client: ClientId) -> Result<(), String> {
    app.metrics.replay();
    let rid = hub.new_replay(client);
    let line = json!({ "type": "get_messages", "id": rid }).to_string();
    crate::sessions::send_to_pi(app, id, line.into_bytes()).await
}

/// Handles one client message; `Err` is the `piface_error` text for this client.
/// A client's text message once validated, before anything is done with it.
#[derive(Debug)]
pub struct ClientMessage {
    /// Its `type` (empty when it has none).
    pub kind: String,
    /// The message as it will be forwarded; a prompt's `piface_upload_ids` are taken out.
    pub msg: Map<String, Value>,
    /// For `prompt`, `steer` and `follow_up`: the upload ids of its attachments.
    pub uploads: Vec<String>,
    /// For the same: a `!` or `!!` shortcut in its text.
    shortcut: Option<Shortcut>,
}

/// Most JSON values (numbers, strings, members…) in one client message. pi's commands hold a
/// handful; a prompt's images are a few long strings.
pub const MAX_CLIENT_JSON_VALUES: usize = 100_000;

/// Whether `text` holds more than `max` JSON values, counted from its structure (each `,`, `:`,
/// `[` and `{` outside strings starts at most one) without parsing it. An over-estimate for
/// malformed text, which the parser refuses anyway.
fn json_values_over(text: &str, max: usize) -> bool {
    let (mut count, mut in_string, mut escaped) = (1usize, false, false);
    for &b in text.as_bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b',' | b':' | b'[' | b'{' => {
                    count += 1;
                    if count > max {
                        return true;
                    }
                }
                _ => {}
            }
        }
    }
    false
}

/// Validates a client's text message without any I/O (JSON object, reserved ids, a prompt's
/// text, shortcut and upload ids); the error is what the client is told.
pub fn parse_client_text(text: &str) -> Result<ClientMessage, String> {
    // A parsed value takes up to ~50 times the bytes of a tiny one (`[0,0,…]`): count first,
    // so a message within the size limit cannot cost hundreds of MiB once parsed.
    if json_values_over(text, MAX_CLIENT_JSON_VALUES) {
        return Err(format!("Messages may hold at most {MAX_CLIENT_JSON_VALUES} JSON values"));
    }
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Err("Invalid JSON".into());
    };
    let Value::Object(mut msg) = value else {
        return Err("Messages must be JSON objects".into());
    };
    if let Some(Value::String(given)) = msg.get("id") {
        if given.starts_with(RESERVED_PREFIX) && !given.starts_with(CMD_PREFIX) {
            return Err(format!("Command ids starting with {RESERVED_PREFIX} are reserved for Piface"));
        }
    }
    let kind = msg.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
    let (shortcut, uploads) = match kind.as_str() {
        "prompt" | "steer" | "follow_up" => prepare_prompt(&mut msg)?,
        _ => (None, Vec::new()),
    };
    Ok(ClientMessage { kind, msg, uploads, shortcut })
}

async fn handle_text(
    app: &Arc<App>,
    id: &str,
    hub: &Arc<Hub>,
    client: ClientId,
    watch: &Watch,
    text: &str,
) -> Result<(), String> {
    let ClientMessage { kind, mut msg, uploads, shortcut } = parse_client_text(text)?;
    match kind.as_str() {
        "piface_get_history" => return request_replay(app, id, hub, client).await,
        "piface_visibility" => {
            let frame: BrowserFrame =
                serde_json::from_value(Value::Object(msg)).map_err(|e| format!("Invalid piface_visibility: {e}"))?;
            let BrowserFrame::Visibility { visible } = frame;
            watch.set_visible(visible);
            return Ok(());
        }
        "prompt" | "steer" | "follow_up" => {
            if let Some(shortcut) = shortcut {
                return run_shortcut(app, id, hub, &mut msg, shortcut).await;
            }
            if !uploads.is_empty() {
                attach_uploads(app, id, &mut msg, &uploads).await?;
            }
        }
        "bash" => {
            if let Some(Value::String(command)) = msg.get("command") {
                let command = command.clone();
                let cmd_id = ensure_id(&mut msg);
                hub.remember_bash(cmd_id, command);
            }
        }
        "extension_ui_response" => {
            if let Some(Value::String(ui_id)) = msg.get("id") {
                let before = hub.attention_required();
                hub.ui_answered(ui_id);
                if before && !hub.attention_required() {
                    if let Some(record) = app.registry.get(id) {
                        app.dashboard.session(&record);
                    }
                }
            }
        }
        _ => {}
    }
    forward(app, id, &msg).await
}

async fn forward(app: &Arc<App>, id: &str, msg: &Map<String, Value>) -> Result<(), String> {
    // Re-encoding keeps the command on one line whatever whitespace the client used.
    let line = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
    crate::sessions::send_to_pi(app, id, line).await
}

/// A `!` or `!!` shortcut found in a prompt.
#[derive(Debug, PartialEq, Eq)]
enum Shortcut {
    /// `!cmd`: pi runs it (RPC `bash`), its output joins the model's context.
    PiBash(String),
    /// `!!cmd`: the agent runs it; pi never sees it.
    LocalShell(String),
}

/// Validates a prompt-like message, removes `piface_upload_ids` (returning the ids) and finds
/// a bang shortcut.
fn prepare_prompt(msg: &mut Map<String, Value>) -> Result<(Option<Shortcut>, Vec<String>), String> {
    let message = match msg.get("message") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("message must be a string".into()),
    };
    let uploads = match msg.remove("piface_upload_ids") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ids)) => ids,
        Some(_) => return Err("piface_upload_ids must be a list".into()),
    };
    let shortcut = message.as_deref().and_then(find_shortcut);
    if !uploads.is_empty() && shortcut.is_some() {
        return Err("Bash shortcuts (! / !!) do not support file attachments.".into());
    }
    let ids = uploads
        .iter()
        .map(|u| match u.as_str().map(str::trim) {
            Some(u) if !u.is_empty() => Ok(u.to_string()),
            _ => Err("Invalid upload id".to_string()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((shortcut, ids))
}

/// Appends the manifest of a prompt's attachments to its message: each id must be one this
/// session references (uploaded or inherited by a branch) whose blob still exists on its
/// agent.
async fn attach_uploads(app: &Arc<App>, id: &str, msg: &mut Map<String, Value>, ids: &[String]) -> Result<(), String> {
    let referenced = app.registry.uploads_of(id);
    let mut paths = Vec::new();
    for upload in ids {
        let record = app.registry.upload(upload).filter(|_| referenced.contains(upload));
        match record {
            Some(r) => paths.push(r.path),
            None => return Err(format!("Unknown upload id: {upload}")),
        }
    }
    let agent = app.agent_of_session(id).map_err(|e| e.to_string())?;
    let call = piface_shared::protocol::ToolCall::FilesExist { paths: paths.clone() };
    let reply = agent
        .request(
            |req| piface_shared::protocol::ToAgent::Tool { req, call, trace: None },
            std::time::Duration::from_secs(30),
        )
        .await
        .map_err(|e| e.to_string())?;
    if let piface_shared::protocol::FromAgent::ToolDone { result: Ok(body), .. } = reply {
        let missing: Vec<String> = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| serde_json::from_value(v["missing"].clone()).ok())
            .unwrap_or_default();
        if let Some(gone) = missing.first() {
            let upload = ids.iter().zip(&paths).find(|(_, p)| *p == gone).map(|(u, _)| u.as_str()).unwrap_or(gone);
            return Err(format!("Unknown upload id: {upload}"));
        }
    } else {
        return Err("could not check the attached files on the session's agent".into());
    }
    let message = msg.get("message").and_then(Value::as_str).unwrap_or_default();
    msg.insert("message".into(), Value::String(with_manifest(message, &paths)));
    Ok(())
}

/// The message text with the attachment manifest, in the original's words.
fn with_manifest(message: &str, paths: &[String]) -> String {
    let mut manifest = String::from("Attached files (session-local file paths):");
    for p in paths {
        manifest.push_str("\n- ");
        manifest.push_str(p);
    }
    let message = message.trim();
    if message.is_empty() {
        format!("{manifest}\n\nPlease inspect these files.")
    } else {
        format!("{message}\n\n{manifest}")
    }
}

fn find_shortcut(message: &str) -> Option<Shortcut> {
    if let Some(rest) = message.strip_prefix("!!") {
        let cmd = rest.trim_start();
        return (!cmd.is_empty()).then(|| Shortcut::LocalShell(cmd.to_string()));
    }
    let cmd = message.strip_prefix('!')?.trim_start();
    (!cmd.is_empty()).then(|| Shortcut::PiBash(cmd.to_string()))
}

/// The message's string `id`, or a new `__piface_cmd_…` one put into it.
fn ensure_id(msg: &mut Map<String, Value>) -> String {
    match msg.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => {
            let id = format!("{CMD_PREFIX}{}", uuid::Uuid::new_v4().simple());
            msg.insert("id".into(), Value::String(id.clone()));
            id
        }
    }
}

async fn run_shortcut(
    app: &Arc<App>,
    id: &str,
    hub: &Arc<Hub>,
    msg: &mut Map<String, Value>,
    shortcut: Shortcut,
) -> Result<(), String> {
    let cmd_id = ensure_id(msg);
    match shortcut {
        Shortcut::PiBash(command) => {
            hub.remember_bash(cmd_id.clone(), command.clone());
            let mut bash = Map::new();
            bash.insert("type".into(), "bash".into());
            bash.insert("id".into(), cmd_id.into());
            bash.insert("command".into(), command.into());
            forward(app, id, &bash).await
        }
        Shortcut::LocalShell(command) => {
            let (app, id, hub) = (app.clone(), id.to_string(), hub.clone());
            tokio::spawn(async move {
                let frame = local_shell(&app, &id, cmd_id, command).await;
                hub.push(None, frame).await;
            });
            Ok(())
        }
    }
}

/// Runs a `!!` command on the agent and builds the pi-style response the original sends.
async fn local_shell(app: &Arc<App>, id: &str, cmd_id: String, command: String) -> Bytes {
    let (session, text) = (id.to_string(), command.clone());
    let shell = move |req| ToAgent::Shell { req, session, command: text, trace: None };
    // The agent enforces its own time limit on the command; this only guards a lost link.
    let reply = match app.agent_of_session(id) {
        Ok(agent) => agent.request(shell, Duration::from_secs(3600)).await,
        Err(e) => Err(e),
    };
    app.sessions
        .post(crate::sessions::SessionEvent::Client(crate::sessions::ClientCommand::Sent { session: id.into() }));
    match reply {
        Ok(FromAgent::ShellDone { result, .. }) => {
            crate::frames::shell_response(&cmd_id, &command, result.as_ref().map_err(String::as_str))
        }
        Ok(other) => {
            crate::frames::shell_response(&cmd_id, &command, Err(&format!("unexpected agent reply: {other:?}")))
        }
        Err(e) => crate::frames::shell_response(&cmd_id, &command, Err(&e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcuts() {
        let cases: &[(&str, Option<Shortcut>)] = &[
            ("!ls", Some(Shortcut::PiBash("ls".into()))),
            ("!  ls -la", Some(Shortcut::PiBash("ls -la".into()))),
            ("!!echo hi", Some(Shortcut::LocalShell("echo hi".into()))),
            ("!! echo hi", Some(Shortcut::LocalShell("echo hi".into()))),
            ("!", None),
            ("!!", None),
            ("!!   ", None),
            ("hello !x", None),
            (" !x", None),
        ];
        for (input, want) in cases {
            assert_eq!(&find_shortcut(input), want, "{input:?}");
        }
    }

    #[test]
    fn messages_with_too_many_values_are_refused_before_parsing() {
        let count = |v: &Value| {
            fn walk(v: &Value) -> usize {
                1 + match v {
                    Value::Array(a) => a.iter().map(walk).sum(),
                    Value::Object(o) => o.values().map(|v| 1 + walk(v)).sum(),
                    _ => 0,
                }
            }
            walk(v)
        };
        // The structural count is never below the real one, and at most twice it.
        for v in [
            json!({"type": "prompt", "message": "a, b: [c] {d} \"e\" \\", "images": [{"data": "x"}]}),
            json!([[], {}, [1, [2, {"k": [3]}]]]),
            json!("plain"),
        ] {
            let (text, real) = (v.to_string(), count(&v));
            assert!(json_values_over(&text, real - 1) || real == 1, "{text}");
            assert!(!json_values_over(&text, 2 * real), "{text}");
        }
        let many = format!("{{\"type\":\"abort\",\"x\":[{}0]}}", "0,".repeat(MAX_CLIENT_JSON_VALUES));
        let e = parse_client_text(&many).unwrap_err();
        assert!(e.contains("at most"), "{e}");
        // Commas inside a long string do not count.
        let long = json!({"type": "prompt", "message": ",".repeat(4 * MAX_CLIENT_JSON_VALUES)}).to_string();
        assert_eq!(parse_client_text(&long).unwrap().kind, "prompt");
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn prompt_validation() {
        let mut m = obj(json!({"type": "prompt", "message": "hi", "piface_upload_ids": []}));
        assert_eq!(prepare_prompt(&mut m), Ok((None, vec![])));
        assert!(!m.contains_key("piface_upload_ids"));
        let check = |v: Value, want: &str| assert_eq!(prepare_prompt(&mut obj(v)).unwrap_err(), want);
        check(json!({"message": 3}), "message must be a string");
        check(json!({"message": "x", "piface_upload_ids": "a"}), "piface_upload_ids must be a list");
        check(json!({"message": "x", "piface_upload_ids": [" "]}), "Invalid upload id");
        let mut m = obj(json!({"message": "x", "piface_upload_ids": ["u1", " u2 "]}));
        assert_eq!(prepare_prompt(&mut m), Ok((None, vec!["u1".to_string(), "u2".to_string()])));
        check(
            json!({"message": "!!ls", "piface_upload_ids": ["u1"]}),
            "Bash shortcuts (! / !!) do not support file attachments.",
        );
    }

    #[test]
    fn attachments_get_the_original_manifest() {
        let paths = ["/s/uploads/_shared/a_x.png".to_string(), "/s/uploads/_shared/b_y.txt".to_string()];
        assert_eq!(
            with_manifest("  look  ", &paths),
            "look\n\nAttached files (session-local file paths):\n- /s/uploads/_shared/a_x.png\n- /s/uploads/_shared/b_y.txt"
        );
        assert_eq!(
            with_manifest(" ", &paths[..1]),
            "Attached files (session-local file paths):\n- /s/uploads/_shared/a_x.png\n\nPlease inspect these files."
        );
    }

    #[test]
    fn ids_are_kept_or_made() {
        let mut m = obj(json!({"id": "mine"}));
        assert_eq!(ensure_id(&mut m), "mine");
        let mut m = obj(json!({"id": ""}));
        let made = ensure_id(&mut m);
        assert!(made.starts_with(CMD_PREFIX) && made.len() == CMD_PREFIX.len() + 32);
        assert_eq!(m["id"], made.as_str());
    }
}
