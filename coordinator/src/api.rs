//! REST handlers of the original's API (`shared/contract/rest-api.md`): health, models and
//! sessions. Each handler is a thin shell over a method of [`App`].

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::json;

use crate::error::ApiError;
use crate::sessions::CreateSession;
use crate::App;

type AppState = State<Arc<App>>;
type ApiResult<T> = Result<T, ApiError>;

/// The `/api` routes.
pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/models", get(models))
        .route("/api/agents", get(list_agents))
        .route("/api/agents/{name}", axum::routing::delete(remove_agent))
        .route("/api/sessions", get(list_sessions).post(create_session))
        .route("/api/sessions/{id}", get(get_session).patch(patch_session))
        .route("/api/sessions/{id}/kill", post(kill_session))
        .route("/api/sessions/{id}/resume", post(resume_session))
        .route("/api/sessions/{id}/history", get(history))
        .route("/api/sessions/{id}/fork-messages", get(fork_messages))
        .route("/api/sessions/{id}/branch", post(branch_session))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(app.config.max_body))
        .layer(axum::middleware::from_fn_with_state(app, refuse_oversized))
}

/// Answers 413 from the headers when `Content-Length` is over the limit, before the client has
/// sent the body. (Bodies without a length are cut by `DefaultBodyLimit` as they stream.)
async fn refuse_oversized(State(app): AppState, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    refuse_over(app.config.max_body, req, next).await
}

/// [`refuse_oversized`] with a given limit (routes that take larger bodies).
pub(crate) async fn refuse_over(limit: usize, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let announced =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > limit as u64) {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large").into_response();
    }
    next.run(req).await
}

async fn method_not_allowed() -> ApiError {
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
            app.agent_gone(&name).await;
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
    let record = app.create_session(req).await?;
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
    app.patch_session(&id, patch.render_markdown).map(Json)
}

async fn kill_session(State(app): AppState, id: Result<Path<String>, PathRejection>) -> ApiResult<impl IntoResponse> {
    let Path(id) = id?;
    app.kill_session(&id).await.map(Json)
}

async fn resume_session(State(app): AppState, id: Result<Path<String>, PathRejection>) -> ApiResult<impl IntoResponse> {
    let Path(id) = id?;
    app.resume_session(&id).await.map(Json)
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
    match app.branch_session(&id, body.entry_id.as_deref().unwrap_or_default(), body.session_name).await? {
        Some(branched) => Ok((
            StatusCode::CREATED,
            Json(json!({ "cancelled": false, "selected_text": branched.selected_text, "session": branched.session })),
        )
            .into_response()),
        None => Ok(Json(json!({ "cancelled": true, "selected_text": "", "session": null })).into_response()),
    }
}
