//! A scriptable, deterministic fake of an OpenAI-compatible chat-completions server.
//!
//! Tests point the real `pi` at it (see [`crate::pi_env::PiEnv`]) so that whole agent turns — streamed text,
//! tool calls, errors, slow or huge answers — run offline and reproducibly. What the fake answers is decided by
//! directives in the text of the **last user message**; see [`Directives`] for the exact syntax.
//!
//! Endpoints (all JSON unless streaming):
//! - `GET /v1/models` → `{"object":"list","data":[{"id":"fake-model",…}]}`
//! - `POST /v1/chat/completions` → with `"stream": true` Server-Sent Events, otherwise one `chat.completion`.
//! - anything else → 404 (405 for a known path with the wrong method), body `{"error":{…}}`.
//!
//! # Stream layout
//! Every event is one `data: <json>\n\n` record. For a streamed answer the records are, in order:
//! 1. a role chunk: `choices[0].delta = {"role":"assistant"}` (no `content`, so it never counts as a content
//!    chunk);
//! 2. with `[[think:…]]`: reasoning chunks, `delta = {"reasoning_content": piece}`;
//! 3. either content chunks, `delta = {"content": piece}`, or a tool call: first
//!    `delta.tool_calls = [{"index":0,"id":"call_fake_<n>","type":"function","function":{"name":"bash","arguments":""}}]`
//!    then at least two `delta.tool_calls = [{"index":0,"function":{"arguments": piece}}]`;
//! 4. a finish chunk: `delta = {}`, `finish_reason` `"stop"` or `"tool_calls"`;
//! 5. a usage chunk: `"choices": []`, `"usage": {"prompt_tokens","completion_tokens","total_tokens"}`;
//! 6. `data: [DONE]`.
//!
//! Every chunk carries `"id":"chatcmpl-fake-<n>"`, `"object":"chat.completion.chunk"`, `"created":1700000000`
//! and the request's `model` (default `fake-model`); `<n>` is the 1-based number of the chat request.
//!
//! # How pi 0.73.1 talks to it (observed with `pi --mode rpc --provider fake --model fake-model` + `PiEnv`)
//! - pi never calls `GET /v1/models` (it trusts `models.json`). Its only traffic is
//!   `POST /v1/chat/completions`, one per LLM turn: a prompt that runs one tool costs two requests.
//! - It uses the `openai` npm client (6.26.0): headers `authorization: Bearer test-key`,
//!   `content-type: application/json`, `accept: application/json` (not `text/event-stream`, though it reads
//!   SSE), `accept-encoding: gzip, deflate`, `user-agent: OpenAI/JS 6.26.0`, `x-stainless-retry-count`,
//!   `x-stainless-{lang,os,arch,runtime,runtime-version,package-version}`, `accept-language: *`,
//!   `sec-fetch-mode: cors`, `connection: keep-alive`. No `x-stainless-timeout`.
//! - Body: `{"model":"fake-model","messages":[…],"stream":true,"stream_options":{"include_usage":true},
//!   "max_completion_tokens":16384,"tools":[read,bash,edit,write]}`; no `store`, `strict`, `reasoning_effort`
//!   or `temperature` with the compat flags `PiEnv` sets. `messages[0]` is a `system` prompt (~2.3 kB).
//! - The RPC prompt arrives as an **array** of parts, `{"role":"user","content":[{"type":"text","text":…}]}`,
//!   not as a string. After a tool call pi sends back
//!   `{"role":"assistant","content":null,"tool_calls":[{"id":"call_fake_1","type":"function",
//!   "function":{"name":"bash","arguments":"{\"command\":…}"}}]}` (arguments re-serialised by pi) followed
//!   by `{"role":"tool","content":"<output>","tool_call_id":"call_fake_1"}`; a command that prints nothing
//!   comes back as the content `(no output)`.
//! - pi keys on `finish_reason` (`tool_calls` → run the tools, then call again) and takes `usage` from the
//!   `choices: []` chunk (it reports it as `usage.input`/`usage.output`). `delta.reasoning_content` becomes
//!   a `thinking` block even though the model is declared `reasoning: false`.
//! - A 500 becomes an assistant message with `stopReason: "error"`, `errorMessage: "500 <message>"`. By
//!   default that costs several requests: the `openai` client retries twice by itself
//!   (`x-stainless-retry-count` 0, 1, 2, ~1 s apart) and pi's auto-retry then re-runs the turn
//!   (`agent_end`, **then** `auto_retry_start`, a second `agent_start`…`agent_end`, `auto_retry_end`).
//!   [`crate::pi_env::PiEnv`] switches both off, so `[[error:…]]` fails a turn with exactly one request and
//!   the first `agent_end` is final.
//! - pi exits about 0.1 s after its stdin is closed.
//! - Each content chunk becomes one `message_update` line carrying the whole partial message, so pi's stdout
//!   grows quadratically: `[[tokens:1000]]` ≈ 5.7 MB of JSON lines (~1 s), `[[tokens:4000]]` ≈ 92 MB (~2 s).
//!   The fake itself streams `[[tokens:100000]]` in well under a second; pi cannot keep up with that.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The one model the fake serves.
pub const MODEL_ID: &str = "fake-model";

/// Fixed `created` timestamp so that responses are byte-for-byte reproducible.
const CREATED: u64 = 1_700_000_000;

/// Request bodies can hold long conversations (a 100k-token answer replayed as history is ~700 kB);
/// axum's default 2 MB limit would turn long test sessions into 413s.
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// Without a delay, SSE records are packed into body frames of about this size: one frame per record would
/// cost a syscall each and make 100k-token answers needlessly slow. Records stay separate `data:` events.
const BATCH_BYTES: usize = 32 * 1024;

/// How many recent chat requests [`FakeLlm::chat_requests`] keeps (bounded so long runs don't grow forever).
const KEEP_REQUESTS: usize = 32;

/// Upper bound on `[[tokens:N]]`, so a typo cannot make a non-streamed answer allocate without limit.
pub const MAX_TOKENS: usize = 50_000_000;

// ---------------------------------------------------------------------------------------------------------
// Directives
// ---------------------------------------------------------------------------------------------------------

/// What the last user message asks the fake to do.
///
/// Syntax: `[[NAME:VALUE]]` anywhere in the text, any number of them, in any order. `VALUE` runs to the
/// *matching* `]]`: nested `[[`/`]]` pairs inside it are balanced, so `[[bash:[[ -f x ]] && echo y]]` gives
/// the command `[[ -f x ]] && echo y`. Names are case-sensitive and lower-case. If a name appears twice the
/// first occurrence wins. An unknown name, an unterminated directive or an unparsable number is ignored
/// (treated as plain text). Directives are *not* removed from the text that `echo:` repeats.
///
/// | directive           | effect |
/// |---------------------|--------|
/// | `[[bash:COMMAND]]`  | no `tool` message after the last user message → one call of function `bash` with arguments `{"command":"COMMAND"}` (COMMAND verbatim, untrimmed), `finish_reason: "tool_calls"`; otherwise the text `tool said: <last tool message content, trimmed>` |
/// | `[[tokens:N]]`      | the text is exactly N content chunks `t0 `, `t1 `, … `t{N-1} ` (each with its trailing space) |
/// | `[[delay:MS]]`      | sleep MS milliseconds before every generated chunk except the first (reasoning, content and tool-argument chunks) |
/// | `[[error:MESSAGE]]` | HTTP 500 with `{"error":{"message":"MESSAGE","type":"server_error"}}`, nothing streamed |
/// | `[[think:TEXT]]`    | stream TEXT first as `reasoning_content` deltas (pi shows it as a thinking block) |
///
/// Precedence: `error` beats everything; then `bash` (tool call, or `tool said:` once a tool result came
/// back); then `tokens`; otherwise the answer is `echo: <full text of the last user message>`. `delay` and
/// `think` combine with all of them. Texts are split into chunks after each run of whitespace, so the
/// pieces concatenate to the full text.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Directives {
    pub bash: Option<String>,
    pub tokens: Option<usize>,
    pub delay_ms: Option<u64>,
    pub error: Option<String>,
    pub think: Option<String>,
}

impl Directives {
    /// Parses every directive out of `text` (see the type's documentation for the syntax).
    pub fn parse(text: &str) -> Directives {
        let mut out = Directives::default();
        let mut rest = text;
        while let Some(open) = rest.find("[[") {
            let after_open = &rest[open + 2..];
            let Some((name, value, tail)) = split_directive(after_open) else {
                // Not a directive here (or unterminated): keep scanning after this `[[`.
                rest = after_open;
                continue;
            };
            match name {
                "bash" => set_once(&mut out.bash, Some(value.to_string())),
                "tokens" => set_once(&mut out.tokens, value.trim().parse::<usize>().ok().map(|n| n.min(MAX_TOKENS))),
                "delay" => set_once(&mut out.delay_ms, value.trim().parse::<u64>().ok()),
                "error" => set_once(&mut out.error, Some(value.to_string())),
                "think" => set_once(&mut out.think, Some(value.to_string())),
                _ => {
                    rest = after_open;
                    continue;
                }
            }
            rest = tail;
        }
        out
    }
}

fn set_once<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// Given the text just after a `[[`, returns `(name, value, text after the closing "]]")` when it starts with
/// `name:` (name = ASCII lower-case letters) and has a matching `]]`.
fn split_directive(s: &str) -> Option<(&str, &str, &str)> {
    let name_len = s.bytes().take_while(|b| b.is_ascii_lowercase()).count();
    if name_len == 0 || s.as_bytes().get(name_len) != Some(&b':') {
        return None;
    }
    let name = &s[..name_len];
    let body = &s[name_len + 1..];
    let mut depth = 1usize;
    let mut i = 0;
    let bytes = body.as_bytes();
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'[', b'[') => {
                depth += 1;
                i += 2;
            }
            (b']', b']') => {
                depth -= 1;
                if depth == 0 {
                    // `[` and `]` are ASCII, so `i` and `i + 2` are char boundaries.
                    return Some((name, &body[..i], &body[i + 2..]));
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    None
}

/// Splits `text` into pieces that each end after a run of whitespace (the last may end without), so that the
/// pieces concatenate back to `text`: `"echo: hi  there"` → `["echo: ", "hi  ", "there"]`.
pub fn split_words(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut prev_ws = false;
    for (i, c) in text.char_indices() {
        if prev_ws && !c.is_whitespace() {
            pieces.push(text[start..i].to_string());
            start = i;
        }
        prev_ws = c.is_whitespace();
    }
    if start < text.len() {
        pieces.push(text[start..].to_string());
    }
    pieces
}

/// Splits `s` into `n` (or fewer, for very short strings) pieces of roughly equal size on char boundaries.
fn split_even(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let size = chars.len().div_ceil(n.max(1)).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

// ---------------------------------------------------------------------------------------------------------
// Request inspection
// ---------------------------------------------------------------------------------------------------------

/// Text of a message `content`, which OpenAI allows as a string or as an array of parts; text parts are
/// joined with `\n`, other parts (images) are skipped.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// What the fake needs to know about a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Conversation {
    /// Text of the last `user` message ("" if there is none).
    user_text: String,
    /// Content of the last `tool` message after the last user message, if any.
    tool_result: Option<String>,
}

fn inspect_messages(messages: &[Value]) -> Conversation {
    let role = |m: &Value| m.get("role").and_then(Value::as_str).map(str::to_owned);
    let last_user = messages.iter().rposition(|m| role(m).as_deref() == Some("user"));
    let user_text = last_user.map(|i| content_text(messages[i].get("content"))).unwrap_or_default();
    let after_user = &messages[last_user.map_or(0, |i| i + 1)..];
    let tool_result =
        after_user.iter().rev().find(|m| role(m).as_deref() == Some("tool")).map(|m| content_text(m.get("content")));
    Conversation { user_text, tool_result }
}

// ---------------------------------------------------------------------------------------------------------
// Answer planning
// ---------------------------------------------------------------------------------------------------------

/// The text of an answer, produced lazily so `[[tokens:100000]]` never materialises all chunks at once.
#[derive(Debug)]
enum TextPieces {
    Words(VecDeque<String>),
    Tokens { next: usize, total: usize },
}

impl Iterator for TextPieces {
    type Item = String;
    fn next(&mut self) -> Option<String> {
        match self {
            TextPieces::Words(words) => words.pop_front(),
            TextPieces::Tokens { next, total } => (*next < *total).then(|| {
                *next += 1;
                format!("t{} ", *next - 1)
            }),
        }
    }
}

#[derive(Debug)]
enum Answer {
    Text(TextPieces),
    ToolCall { id: String, name: String, arguments: VecDeque<String> },
}

/// A fully decided reply (before it is rendered as SSE or as one JSON object).
#[derive(Debug)]
struct Plan {
    reasoning: VecDeque<String>,
    answer: Answer,
    delay: Duration,
}

enum Decision {
    Fail(String),
    Reply(Plan),
}

fn decide(conv: &Conversation, seq: u64) -> Decision {
    let d = Directives::parse(&conv.user_text);
    if let Some(message) = d.error {
        return Decision::Fail(message);
    }
    let answer = if let Some(command) = &d.bash {
        match &conv.tool_result {
            Some(result) => {
                Answer::Text(TextPieces::Words(split_words(&format!("tool said: {}", result.trim())).into()))
            }
            None => {
                let args = json!({ "command": command }).to_string();
                // Three pieces (always ≥ 2 since the JSON is at least `{"command":""}`) exercise pi's
                // incremental argument parsing.
                Answer::ToolCall {
                    id: format!("call_fake_{seq}"),
                    name: "bash".to_string(),
                    arguments: split_even(&args, 3).into(),
                }
            }
        }
    } else if let Some(total) = d.tokens {
        Answer::Text(TextPieces::Tokens { next: 0, total })
    } else {
        Answer::Text(TextPieces::Words(split_words(&format!("echo: {}", conv.user_text)).into()))
    };
    Decision::Reply(Plan {
        reasoning: d.think.as_deref().map(split_words).unwrap_or_default().into(),
        answer,
        delay: Duration::from_millis(d.delay_ms.unwrap_or(0)),
    })
}

// ---------------------------------------------------------------------------------------------------------
// SSE rendering
// ---------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Role,
    Reasoning,
    Body,
    Finish,
    Usage,
    Done,
    End,
}

/// One SSE record plus whether it carries generated text (only those are paced by `[[delay:…]]`).
struct Record {
    text: String,
    generated: bool,
}

/// Produces the SSE records of one streamed answer, one at a time.
struct ChunkGen {
    /// `data: {"id":…,"object":…,"created":…,"model":…,"choices":[` — identical for every chunk.
    prefix: String,
    stage: Stage,
    reasoning: VecDeque<String>,
    answer: Answer,
    tool_header_sent: bool,
    prompt_tokens: u64,
    completion_tokens: u64,
}

impl ChunkGen {
    fn new(plan_reasoning: VecDeque<String>, answer: Answer, id: &str, model: &str, prompt_tokens: u64) -> Self {
        let prefix = format!(
            "data: {{\"id\":{},\"object\":\"chat.completion.chunk\",\"created\":{CREATED},\"model\":{},\"choices\":[",
            Value::from(id),
            Value::from(model)
        );
        ChunkGen {
            prefix,
            stage: Stage::Role,
            reasoning: plan_reasoning,
            answer,
            tool_header_sent: false,
            prompt_tokens,
            completion_tokens: 0,
        }
    }

    fn choice(&self, delta: Value, finish_reason: Option<&str>) -> String {
        let choice = json!({ "index": 0, "delta": delta, "finish_reason": finish_reason });
        format!("{}{choice}]}}\n\n", self.prefix)
    }

    fn next_record(&mut self) -> Option<Record> {
        loop {
            match self.stage {
                Stage::Role => {
                    self.stage = Stage::Reasoning;
                    return Some(Record { text: self.choice(json!({ "role": "assistant" }), None), generated: false });
                }
                Stage::Reasoning => match self.reasoning.pop_front() {
                    Some(piece) => {
                        self.completion_tokens += 1;
                        return Some(Record {
                            text: self.choice(json!({ "reasoning_content": piece }), None),
                            generated: true,
                        });
                    }
                    None => self.stage = Stage::Body,
                },
                Stage::Body => {
                    let delta = match &mut self.answer {
                        Answer::Text(pieces) => pieces.next().map(|piece| json!({ "content": piece })),
                        Answer::ToolCall { id, name, arguments } => {
                            if !self.tool_header_sent {
                                self.tool_header_sent = true;
                                let header = json!({ "tool_calls": [{
                                    "index": 0, "id": id, "type": "function",
                                    "function": { "name": name, "arguments": "" },
                                }] });
                                return Some(Record { text: self.choice(header, None), generated: false });
                            }
                            arguments.pop_front().map(
                                |piece| json!({ "tool_calls": [{ "index": 0, "function": { "arguments": piece } }] }),
                            )
                        }
                    };
                    match delta {
                        Some(delta) => {
                            self.completion_tokens += 1;
                            return Some(Record { text: self.choice(delta, None), generated: true });
                        }
                        None => self.stage = Stage::Finish,
                    }
                }
                Stage::Finish => {
                    self.stage = Stage::Usage;
                    let reason = match self.answer {
                        Answer::Text(_) => "stop",
                        Answer::ToolCall { .. } => "tool_calls",
                    };
                    return Some(Record { text: self.choice(json!({}), Some(reason)), generated: false });
                }
                Stage::Usage => {
                    self.stage = Stage::Done;
                    let usage = usage_json(self.prompt_tokens, self.completion_tokens);
                    return Some(Record {
                        text: format!("{}],\"usage\":{usage}}}\n\n", self.prefix),
                        generated: false,
                    });
                }
                Stage::Done => {
                    self.stage = Stage::End;
                    return Some(Record { text: "data: [DONE]\n\n".to_string(), generated: false });
                }
                Stage::End => return None,
            }
        }
    }
}

fn usage_json(prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    })
}

/// State threaded through the body stream.
struct BodyState {
    gen: ChunkGen,
    delay: Duration,
    generated_seen: bool,
    shutdown: Arc<AtomicBool>,
}

/// Renders a plan as a streaming SSE body. Records are generated on demand, so memory stays flat however long
/// the answer; without a delay they are packed into ~32 KiB frames.
fn sse_body(gen: ChunkGen, delay: Duration, shutdown: Arc<AtomicBool>) -> Body {
    let state = BodyState { gen, delay, generated_seen: false, shutdown };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        // A dropped `FakeLlm` ends streams that are still running instead of leaving them to the runtime.
        if st.shutdown.load(Ordering::Relaxed) {
            return None;
        }
        if st.delay.is_zero() {
            let mut buf = String::with_capacity(BATCH_BYTES + 1024);
            while buf.len() < BATCH_BYTES {
                match st.gen.next_record() {
                    Some(rec) => buf.push_str(&rec.text),
                    None => break,
                }
            }
            return (!buf.is_empty()).then(|| (Ok::<_, Infallible>(Bytes::from(buf)), st));
        }
        let rec = st.gen.next_record()?;
        if rec.generated {
            if st.generated_seen {
                tokio::time::sleep(st.delay).await;
            }
            st.generated_seen = true;
        }
        Some((Ok(Bytes::from(rec.text)), st))
    });
    Body::from_stream(stream)
}

/// Renders a plan as one non-streamed `chat.completion` object.
fn completion_json(plan: Plan, id: &str, model: &str, prompt_tokens: u64) -> Value {
    let mut completion_tokens = plan.reasoning.len() as u64;
    let mut message = json!({ "role": "assistant", "content": Value::Null });
    if !plan.reasoning.is_empty() {
        message["reasoning_content"] = Value::from(plan.reasoning.iter().map(String::as_str).collect::<String>());
    }
    let finish_reason = match plan.answer {
        Answer::Text(pieces) => {
            let mut text = String::new();
            for piece in pieces {
                completion_tokens += 1;
                text.push_str(&piece);
            }
            message["content"] = Value::from(text);
            "stop"
        }
        Answer::ToolCall { id, name, arguments } => {
            completion_tokens += arguments.len() as u64;
            let arguments: String = arguments.into_iter().collect();
            message["tool_calls"] = json!([{
                "id": id, "type": "function", "function": { "name": name, "arguments": arguments },
            }]);
            "tool_calls"
        }
    };
    json!({
        "id": id,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [{ "index": 0, "message": message, "finish_reason": finish_reason }],
        "usage": usage_json(prompt_tokens, completion_tokens),
    })
}

// ---------------------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------------------

/// A chat-completions request as the fake received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Header names (lower-case) and values; non-UTF-8 values are replaced lossily.
    pub headers: Vec<(String, String)>,
    /// The parsed JSON body (`Value::Null` when it was not valid JSON).
    pub body: Value,
}

/// Shared state of one fake server.
#[derive(Debug, Default)]
struct AppState {
    chat_requests: AtomicU64,
    models_requests: AtomicU64,
    recent: Mutex<VecDeque<RecordedRequest>>,
    shutdown: Arc<AtomicBool>,
}

impl AppState {
    fn record(&self, headers: &HeaderMap, body: Value) {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        // A poisoned lock only means another handler panicked mid-push; the deque is still usable.
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == KEEP_REQUESTS {
            recent.pop_front();
        }
        recent.push_back(RecordedRequest { headers, body });
    }
}

fn error_response(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let body = json!({ "error": { "message": message.into(), "type": kind } });
    (status, Json(body)).into_response()
}

/// The fake's routes with fresh state (request counters start at zero).
pub fn router() -> Router {
    router_with_state(Arc::new(AppState::default()))
}

fn router_with_state(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/chat/completions", post(chat_completions))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn not_found(uri: Uri) -> Response {
    error_response(StatusCode::NOT_FOUND, "not_found_error", format!("unknown path: {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        format!("method {method} not allowed on {}", uri.path()),
    )
}

async fn list_models(State(state): State<Arc<AppState>>) -> Response {
    state.models_requests.fetch_add(1, Ordering::Relaxed);
    Json(json!({
        "object": "list",
        "data": [{ "id": MODEL_ID, "object": "model", "created": CREATED, "owned_by": "piface-fake" }],
    }))
    .into_response()
}

async fn chat_completions(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let seq = state.chat_requests.fetch_add(1, Ordering::Relaxed) + 1;
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    state.record(&headers, parsed.as_ref().cloned().unwrap_or(Value::Null));
    let request = match parsed {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return error_response(StatusCode::BAD_REQUEST, "invalid_request_error", "body must be a JSON object"),
        Err(e) => {
            return error_response(StatusCode::BAD_REQUEST, "invalid_request_error", format!("invalid JSON body: {e}"))
        }
    };
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return error_response(StatusCode::BAD_REQUEST, "invalid_request_error", "`messages` must be an array");
    };
    let model = request.get("model").and_then(Value::as_str).unwrap_or(MODEL_ID).to_string();
    let stream = request.get("stream").and_then(Value::as_bool).unwrap_or(false);
    // Deterministic stand-in for a tokenizer: about four bytes per token.
    let prompt_tokens = (body.len() as u64 / 4).max(1);
    let conv = inspect_messages(messages);
    tracing::debug!(seq, stream, user_text = %conv.user_text, tool_result = ?conv.tool_result, "fake-llm chat request");

    let plan = match decide(&conv, seq) {
        Decision::Fail(message) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message),
        Decision::Reply(plan) => plan,
    };
    let id = format!("chatcmpl-fake-{seq}");
    if !stream {
        if !plan.delay.is_zero() {
            tokio::time::sleep(plan.delay).await;
        }
        return Json(completion_json(plan, &id, &model, prompt_tokens)).into_response();
    }
    let gen = ChunkGen::new(plan.reasoning, plan.answer, &id, &model, prompt_tokens);
    (
        [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")],
        sse_body(gen, plan.delay, state.shutdown.clone()),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------------------
// Running it
// ---------------------------------------------------------------------------------------------------------

/// Serves the fake on an already bound listener until the task is dropped or the listener fails.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router()).await
}

/// A fake LLM running in-process; dropping it stops the server and ends its open streams.
#[derive(Debug)]
pub struct FakeLlm {
    addr: SocketAddr,
    state: Arc<AppState>,
    task: JoinHandle<()>,
}

/// Starts the fake on `127.0.0.1:<ephemeral port>` on the current tokio runtime.
pub async fn spawn_fake_llm() -> anyhow::Result<FakeLlm> {
    spawn_fake_llm_at(SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// [`spawn_fake_llm`] on a given address (e.g. a container network's gateway, so that a pi in
/// a container reaches it; port 0 picks a free one).
pub async fn spawn_fake_llm_at(addr: SocketAddr) -> anyhow::Result<FakeLlm> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(AppState::default());
    let app = router_with_state(state.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("fake-llm server stopped: {e}");
        }
    });
    Ok(FakeLlm { addr, state, task })
}

impl FakeLlm {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI base URL to configure clients with, e.g. `http://127.0.0.1:41234/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// How many `POST /v1/chat/completions` requests arrived so far (including rejected ones).
    pub fn request_count(&self) -> u64 {
        self.state.chat_requests.load(Ordering::Relaxed)
    }

    /// How many `GET /v1/models` requests arrived so far.
    pub fn models_request_count(&self) -> u64 {
        self.state.models_requests.load(Ordering::Relaxed)
    }

    /// The most recent chat requests (at most 32), oldest first.
    pub fn chat_requests(&self) -> Vec<RecordedRequest> {
        let recent = self.state.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().cloned().collect()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.state.shutdown.store(true, Ordering::Relaxed);
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directives() {
        let d = Directives::parse("x [[bash:[[ -f a ]] && echo ok]] [[tokens: 5 ]] [[delay:7]] [[think:hm]]");
        assert_eq!(d.bash.as_deref(), Some("[[ -f a ]] && echo ok"));
        assert_eq!(d.tokens, Some(5));
        assert_eq!(d.delay_ms, Some(7));
        assert_eq!(d.think.as_deref(), Some("hm"));
        assert_eq!(d.error, None);
    }

    #[test]
    fn ignores_bad_directives_and_keeps_first() {
        let d = Directives::parse("[[tokens:x]] [[nope:1]] [[Error:a]] [[error:first]] [[error:second]] [[bash:open");
        assert_eq!(d, Directives { error: Some("first".into()), ..Default::default() });
        assert_eq!(Directives::parse("[[tokens:2]][[tokens:3]]").tokens, Some(2));
        assert_eq!(Directives::parse("[[[[bash:ls]]").bash.as_deref(), Some("ls"));
    }

    #[test]
    fn splits_words_losslessly() {
        assert_eq!(split_words("echo: hi  there"), vec!["echo: ", "hi  ", "there"]);
        assert_eq!(split_words("  a b "), vec!["  ", "a ", "b "]);
        assert!(split_words("").is_empty());
        let s = "ünï cödé  ✓ x";
        assert_eq!(split_words(s).concat(), s);
        assert_eq!(split_even("{\"command\":\"é\"}", 3).concat(), "{\"command\":\"é\"}");
    }

    #[test]
    fn finds_tool_result_after_last_user() {
        let msgs = vec![
            json!({"role":"system","content":"sys"}),
            json!({"role":"user","content":"old"}),
            json!({"role":"tool","content":"stale"}),
            json!({"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url"},{"type":"text","text":"b"}]}),
            json!({"role":"assistant","content":null}),
            json!({"role":"tool","content":[{"type":"text","text":" out\n"}]}),
        ];
        let conv = inspect_messages(&msgs);
        assert_eq!(conv.user_text, "a\nb");
        assert_eq!(conv.tool_result.as_deref(), Some(" out\n"));
        assert_eq!(inspect_messages(&msgs[..4]).tool_result, None);
        assert_eq!(inspect_messages(&[]).user_text, "");
    }
}
