//! Archived views of a session: its history and the user messages a branch can start from,
//! read from pi's session file by the agent that owns it, without a pi process.
//!
//! A history is streamed: the agent sends the JSON array in pieces and the HTTP body is
//! written as they come, so a 64 MiB session is never held whole in the coordinator.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use piface_shared::protocol::{FromAgent, HistoryStats, ToAgent};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::App;

/// How long the agent may take to start answering.
const FIRST_ANSWER: Duration = Duration::from_secs(30);

fn json_response(body: Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn history_error(code: &str) -> Response {
    json_response(json!({ "messages": [], "source": "session_file", "error": code }))
}

/// The end of the history object, after the messages array.
fn suffix(stats: &HistoryStats) -> Bytes {
    let tail = if stats.skipped_lines > 0 || stats.truncated_tail {
        // Ours: what could be read is there, and the client learns the file is damaged.
        json!({ "error": "session_file_damaged", "skipped_lines": stats.skipped_lines, "truncated_tail": stats.truncated_tail })
    } else {
        json!({ "error": null })
    };
    let tail = tail.to_string();
    Bytes::from(format!(r#","source":"session_file",{}"#, &tail[1..]))
}

impl App {
    /// `GET /api/sessions/{id}/history`.
    pub async fn history(&self, id: &str) -> Result<Response, ApiError> {
        let record = self.registry.get(id).ok_or_else(ApiError::session_not_found)?;
        let Some(path) = record.session_file.clone() else { return Ok(history_error("missing_session_file")) };
        let mut rx = self
            .agent_for(&record)?
            .request_stream(|req| ToAgent::ReadHistory { req, path, trace: None })
            .await
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        let first = match tokio::time::timeout(FIRST_ANSWER, rx.recv()).await {
            Ok(Some(first)) => first,
            Ok(None) | Err(_) => return Ok(history_error("file_read_error")),
        };
        let first_chunk = match first {
            FromAgent::HistoryChunk { data, .. } => data,
            FromAgent::HistoryDone { result: Err(f), .. } => {
                tracing::info!(session_id = %id, "history: {} ({})", f.code, f.message);
                return Ok(history_error(&f.code));
            }
            FromAgent::HistoryDone { result: Ok(stats), .. } => {
                let mut body = br#"{"messages":[]"#.to_vec();
                body.extend_from_slice(&suffix(&stats));
                return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
            }
            other => return Err(ApiError::new(StatusCode::BAD_GATEWAY, format!("unexpected agent reply: {other:?}"))),
        };
        let mut prefix = br#"{"messages":"#.to_vec();
        prefix.extend_from_slice(&first_chunk);
        let body = futures_util::stream::unfold(Some((rx, Some(Bytes::from(prefix)))), next_piece);
        Ok(([(header::CONTENT_TYPE, "application/json")], Body::from_stream(body)).into_response())
    }

    /// `GET /api/sessions/{id}/fork-messages`: from the live pi, else from the session file.
    pub async fn fork_messages(self: &Arc<Self>, id: &str) -> Result<Response, ApiError> {
        let record = self.registry.get(id).ok_or_else(ApiError::session_not_found)?;
        if self.registry.live_hub(id).is_some() {
            let mut cmd = Map::new();
            cmd.insert("type".into(), "get_fork_messages".into());
            return match crate::sessions::pi_request(self, id, cmd).await {
                Ok(reply) => {
                    let messages = reply.pointer("/data/messages").cloned().unwrap_or_else(|| json!([]));
                    Ok(json_response(json!({ "messages": messages })))
                }
                Err(e) if e.contains("did not answer") => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e)),
                Err(e) => Err(ApiError::bad_request(e)),
            };
        }
        let Some(path) = record.session_file.clone() else {
            return Err(ApiError::bad_request("Session file not available"));
        };
        let reply = self
            .agent_for(&record)?
            .request(|req| ToAgent::ForkMessages { req, path, trace: None }, FIRST_ANSWER)
            .await
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        match reply {
            FromAgent::ForkMessages { result: Ok(list), .. } => {
                let mut body = br#"{"messages":"#.to_vec();
                body.extend_from_slice(&list);
                body.push(b'}');
                Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
            }
            FromAgent::ForkMessages { result: Err(f), .. } => Err(ApiError::conflict(f.code)),
            other => Err(ApiError::new(StatusCode::BAD_GATEWAY, format!("unexpected agent reply: {other:?}"))),
        }
    }
}

type Piece = Result<Bytes, std::io::Error>;

/// The next piece of a history body: the pending prefix, then the agent's chunks, then the
/// suffix. A failure after the body started can only cut it short, which the client sees as
/// an incomplete response rather than a wrong one.
async fn next_piece(
    state: Option<(mpsc::Receiver<FromAgent>, Option<Bytes>)>,
) -> Option<(Piece, Option<(mpsc::Receiver<FromAgent>, Option<Bytes>)>)> {
    let (mut rx, pending) = state?;
    if let Some(bytes) = pending {
        return Some((Ok(bytes), Some((rx, None))));
    }
    match rx.recv().await {
        Some(FromAgent::HistoryChunk { data, .. }) => Some((Ok(data), Some((rx, None)))),
        Some(FromAgent::HistoryDone { result: Ok(stats), .. }) => Some((Ok(suffix(&stats)), None)),
        Some(FromAgent::HistoryDone { result: Err(f), .. }) => {
            Some((Err(std::io::Error::other(format!("{}: {}", f.code, f.message))), None))
        }
        Some(_) | None => Some((Err(std::io::Error::other("the agent stopped sending the history")), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_close_the_object() {
        let ok = [br#"{"messages":[]"#.as_slice(), &suffix(&HistoryStats::default())].concat();
        assert_eq!(
            serde_json::from_slice::<Value>(&ok).unwrap(),
            json!({"messages": [], "source": "session_file", "error": null})
        );
        let damaged = HistoryStats { messages: 1, skipped_lines: 2, truncated_tail: true };
        let v: Value = serde_json::from_slice(&[br#"{"messages":[1]"#.as_slice(), &suffix(&damaged)].concat()).unwrap();
        assert_eq!(v["error"], "session_file_damaged");
        assert_eq!(v["skipped_lines"], 2);
        assert_eq!(v["messages"], json!([1]));
    }
}
