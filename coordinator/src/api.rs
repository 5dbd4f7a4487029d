//! REST handlers of the original's API (`shared/contract/rest-api.md`): health, models and
//! sessions. Each handler is a thin shell over a method of [`App`].

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use bytes::Bytes;
use serde_json::json;

use crate::error::ApiError;
use crate::limits::body_limit;
use crate::sessions::CreateSession;
use crate::App;

type AppState = State<Arc<App>>;
type ApiResult<T> = Result<T, ApiError>;

/// The `/api` routes of sessions and agents.
pub fn routes(config: &crate::Config) -> crate::Routes {
    let limit = |m| body_limit(m, config.max_body);
    vec![
        ("/api/health", limit(get(health))),
        ("/api/models", limit(get(models))),
        ("/api/agents", limit(get(list_agents))),
        ("/api/agents/{name}", limit(axum::routing::delete(remove_agent))),
        ("/api/sessions", limit(get(list_sessions).post(create_session))),
        ("/api/sessions/{id}", limit(get(get_session).patch(patch_session))),
        ("/api/sessions/{id}/kill", limit(post(kill_session))),
        ("/api/sessions/{id}/resume", limit(post(resume_session))),
        ("/api/sessions/{id}/history", limit(get(history))),
        ("/api/sessions/{id}/fork-messages", limit(get(fork_messages))),
        ("/api/sessions/{id}/branch", limit(post(branch_session))),
    ]
}

/// 405 in the API's JSON shape.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

/// The original's `{"status": "ok"}`, plus whether the cluster can transcribe (`speech`) and
/// synthesise (`tts`) so the UI can disable Mic and Listen with a reason.
async fn health(State(app): AppState) -> Json<serde_json::Value> {
    // Text-to-speech workers arrive with their issue; until then the cluster has none.
    use crate::agents::Service;
    Json(json!({ "status": "ok", "speech": app.agents.can(Service::Stt), "tts": app.agents.can(Service::Tts) }))
}

async fn models(State(app): AppState) -> Response {
    let models = app.models.get(&app).await;
    let mut body = Vec::with_capacity(models.len() + 12);
    body.extend_from_slice(br#"{"models":"#);
    body.extend_from_slice(&models);
    body.push(b'}');
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn list_agents(State(app): AppState) -> Json<serde_json::Value> {
    let mut agents = app.agents.list();
    for a in &mut agents {
        a.live_sessions = app.registry.live_ids_on(&a.name).len();
    }
    Json(json!({ "agents": agents }))
}

async fn remove_agent(
    State(app): AppState,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Path(name) = name?;
    if name == crate::agents::LOCAL {
        return Err(ApiError::conflict("The local agent cannot be removed"));
    }
    match app.agents.revoke(&*app.store, &name) {
        Ok(true) => {
            app.sessions.link_down(&name, None);
            Ok(Json(json!({ "removed": name })))
        }
        Ok(false) => Err(ApiError::new(StatusCode::NOT_FOUND, "Agent not found")),
        Err(e) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e)),
    }
}

async fn list_sessions(State(app): AppState) -> Json<serde_json::Value> {
    Json(json!({ "sessions": app.registry.list() }))
}

async fn create_session(
    State(app): AppState,
    body: Result<Json<CreateSession>, JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let Json(req) = body?;
    let record = crate::sessions::create(&app, req).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

async fn get_session(State(app): AppState, id: Result<Path<String>, PathRejection>) -> ApiResult<impl IntoResponse> {
    let Path(id) = id?;
    app.registry.get(&id).map(Json).ok_or_else(ApiError::session_not_found)
}

async fn patch_session(
    State(app): AppState,
    id: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    let Path(id) = id?;
    #[derive(serde::Deserialize)]
    struct Patch {
        render_markdown: Option<bool>,
    }
    let patch: Patch = if body.iter().all(u8::is_ascii_whitespace) {
        Patch { render_markdown: None }
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::validation(e.to_string()))?
    };
    crate::sessions::patch(&app, &id, patch.render_markdown).await.map(Json)
}

async fn kill_session(State(app): AppState, id: Result<Path<String>, PathRejection>) -> ApiResult<impl IntoResponse> {
    let Path(id) = id?;
    crate::sessions::kill(&app, &id).await.map(Json)
}

async fn resume_session(State(app): AppState, id: Result<Path<String>, PathRejection>) -> ApiResult<impl IntoResponse> {
    let Path(id) = id?;
    crate::sessions::resume(&app, &id).await.map(Json)
}

async fn history(State(app): AppState, id: Result<Path<String>, PathRejection>) -> ApiResult<Response> {
    let Path(id) = id?;
    app.history(&id).await
}

async fn fork_messages(State(app): AppState, id: Result<Path<String>, PathRejection>) -> ApiResult<Response> {
    let Path(id) = id?;
    app.fork_messages(&id).await
}

#[derive(serde::Deserialize)]
struct BranchBody {
    #[serde(default)]
    entry_id: Option<String>,
    #[serde(default)]
    session_name: Option<String>,
}

async fn branch_session(
    State(app): AppState,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<BranchBody>, JsonRejection>,
) -> ApiResult<Response> {
    let Path(id) = id?;
    let Json(body) = body?;
    match crate::sessions::branch(&app, &id, body.entry_id.as_deref().unwrap_or_default(), body.session_name).await? {
        Some(branched) => Ok((
            StatusCode::CREATED,
            Json(json!({ "cancelled": false, "selected_text": branched.selected_text, "session": branched.session })),
        )
            .into_response()),
        None => Ok(Json(json!({ "cancelled": true, "selected_text": "", "session": null })).into_response()),
    }
}

#[cfg(test)]
mod tests;
