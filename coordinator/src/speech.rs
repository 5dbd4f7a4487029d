//! `POST /api/sessions/{id}/transcribe`: the clip goes to a speech-capable agent (one with a
//! GPU first), which may be another machine than the session's; "Mic → Clean" then runs on
//! the session's own agent, in its directory, with its model.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine;
use bytes::Bytes;
use piface_shared::protocol::{FromAgent, ToAgent, ToolCall};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::record::Status;
use crate::App;

/// Largest request: 25 MiB of audio as base64 in JSON, with room for the original's own 413
/// just past it; a body far over (an hour of raw audio) is refused from its headers.
const MAX_BODY: usize = 48 << 20;

/// The speech routes.
pub fn routes() -> crate::Routes {
    vec![("/api/sessions/{id}/transcribe", crate::limits::body_limit(axum::routing::post(transcribe), MAX_BODY))]
}

/// Largest decoded clip (the original's limit).
pub const MAX_AUDIO: usize = piface_agent::speech::MAX_AUDIO;
/// Longest wait for a transcript (the worker takes one clip at a time).
const TRANSCRIBE_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Deserialize)]
pub struct TranscribeBody {
    audio_base64: String,
    #[serde(default = "webm")]
    #[allow(dead_code)] // ffmpeg reads the container itself; kept for the original's schema
    mime_type: String,
    #[serde(default)]
    clean_with_pi: bool,
}

fn webm() -> String {
    "audio/webm".into()
}

/// The handler. The input is checked before the service (the original answered 503 first).
pub async fn transcribe(
    State(app): State<Arc<App>>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<TranscribeBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id?;
    let record = app.registry.get(&id).ok_or_else(ApiError::session_not_found)?;
    let Json(body) = body?;
    let audio = base64::engine::general_purpose::STANDARD
        .decode(body.audio_base64.trim().as_bytes())
        .map_err(|_| ApiError::bad_request("Invalid base64 audio payload"))?;
    if audio.is_empty() {
        return Err(ApiError::bad_request("Audio payload is empty"));
    }
    if audio.len() > MAX_AUDIO {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Audio payload too large. Max {MAX_AUDIO} bytes."),
        ));
    }
    if record.status != Status::Live {
        return Err(ApiError::conflict("Speech transcription requires a live session"));
    }
    let Some(worker) = app.agents.worker(crate::agents::Service::Stt) else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Speech transcription is not configured on this server: start an agent (or `piface serve`) with \
             --speech (it fetches the model, --speech-model, default nvidia/parakeet-tdt-0.6b-v3, into the \
             Hugging Face cache; a GPU agent serves it by default; ffmpeg must be installed there)",
        ));
    };
    let audio = Bytes::from(audio);
    let started = std::time::Instant::now();
    let reply = worker.handle.request(|req| ToAgent::Transcribe { req, audio, trace: None }, TRANSCRIBE_TIMEOUT).await;
    let ok = matches!(reply, Ok(FromAgent::ToolDone { result: Ok(_), .. }));
    app.metrics.speech_job(crate::metrics::Job::Transcribe, ok, started.elapsed());
    let reply = reply
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("speech worker {}: {e}", worker.name)))?;
    drop(worker);
    let raw = crate::agent_link::tool_reply(reply)?["text"].as_str().unwrap_or_default().to_string();
    let mut text = raw.clone();
    if body.clean_with_pi {
        let agent = app.agent_for(&record)?;
        let call = ToolCall::CleanTranscript {
            cwd: record.effective_dir().to_string(),
            provider: record.model_provider.clone(),
            model: record.model_id.clone(),
            use_direnv: record.use_direnv,
            text: raw.clone(),
        };
        let reply = agent
            .request(|req| ToAgent::Tool { req, call, trace: None }, Duration::from_secs(120))
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()))?;
        let cleaned = crate::agent_link::tool_reply(reply)?["text"].as_str().unwrap_or_default().trim().to_string();
        if !cleaned.is_empty() {
            text = cleaned;
        }
    }
    Ok(Json(json!({ "text": text, "raw_text": raw, "cleaned": body.clean_with_pi })))
}
