//! `/api/push/…`: the VAPID public key, and each browser's subscription and mutes. Behind the
//! front door like every route (login, Host, and Origin for what acts).
//!
//! - `GET /api/push/key` → `{"public_key"}` (base64url, the browser's `applicationServerKey`)
//! - `POST /api/push/subscriptions` with the browser's `PushSubscription.toJSON()`
//!   (`{"endpoint", "keys": {"p256dh", "auth"}}`) → 201 and the subscription; again for the
//!   same endpoint renews its keys and keeps its mutes
//! - `GET|DELETE /api/push/subscriptions/{id}`
//! - `PATCH /api/push/subscriptions/{id}` with `{"muted"?: bool, "sessions"?: {"<id>": bool}}`
//! - `POST /api/push/subscriptions/{id}/test`: a test notification now; the push service's
//!   status, or 502 with its answer

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::ApiError;
use crate::limits::body_limit;
use crate::store::PushSubscriptionRecord;
use crate::App;

type AppState = State<Arc<App>>;

/// A subscription body is a URL and two short keys: 16 KiB is plenty.
const MAX_BODY: usize = 16 * 1024;

/// The routes.
pub fn routes() -> crate::Routes {
    let limit = |m| body_limit(m, MAX_BODY);
    vec![
        ("/api/push/key", limit(get(key))),
        ("/api/push/subscriptions", limit(post(subscribe))),
        ("/api/push/subscriptions/{id}", limit(get(show).patch(change).delete(remove))),
        ("/api/push/subscriptions/{id}/test", limit(post(test))),
    ]
}

/// A subscription as the API shows it (its keys stay in).
#[derive(Serialize)]
struct View<'a> {
    id: &'a str,
    endpoint: &'a str,
    created_at: &'a str,
    muted: bool,
    muted_sessions: &'a [String],
}

fn view(r: &PushSubscriptionRecord) -> Json<serde_json::Value> {
    let v = View {
        id: &r.id,
        endpoint: &r.endpoint,
        created_at: &r.created_at,
        muted: r.muted,
        muted_sessions: &r.muted_sessions,
    };
    Json(serde_json::to_value(v).expect("a view serialises"))
}

async fn key(State(app): AppState) -> Result<Json<serde_json::Value>, ApiError> {
    let vapid = app
        .push
        .vapid()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("The push key is unavailable: {e:#}")))?;
    Ok(Json(json!({ "public_key": vapid.public_key() })))
}

/// `PushSubscription.toJSON()`; `expirationTime` and anything else are ignored.
#[derive(Deserialize)]
struct SubscribeBody {
    endpoint: String,
    keys: Keys,
}

#[derive(Deserialize)]
struct Keys {
    p256dh: String,
    auth: String,
}

async fn subscribe(
    State(app): AppState,
    headers: HeaderMap,
    body: Result<Json<SubscribeBody>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(body) = body?;
    // The front door has checked the Origin (the page's own, or an --allowed-origin).
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let record = app.push.subscribe(&body.endpoint, &body.keys.p256dh, &body.keys.auth, origin)?;
    Ok((StatusCode::CREATED, view(&record)))
}

async fn show(State(app): AppState, id: Result<Path<String>, PathRejection>) -> Result<impl IntoResponse, ApiError> {
    let Path(id) = id?;
    app.push.get(&id).map(|r| view(&r)).ok_or_else(not_found)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    #[serde(default)]
    muted: Option<bool>,
    #[serde(default)]
    sessions: BTreeMap<String, bool>,
}

async fn change(
    State(app): AppState,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<ChangeBody>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Path(id) = id?;
    let Json(body) = body?;
    if app.push.get(&id).is_none() {
        return Err(not_found());
    }
    if let Some(unknown) = body.sessions.keys().find(|s| app.registry.get(s).is_none()) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("Session not found: {unknown}")));
    }
    let record = app.push.set_mutes(&id, body.muted, &body.sessions, |s| app.registry.get(s).is_some())?;
    Ok(view(&record))
}

async fn remove(State(app): AppState, id: Result<Path<String>, PathRejection>) -> Result<impl IntoResponse, ApiError> {
    let Path(id) = id?;
    match app.push.unsubscribe(&id)? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(not_found()),
    }
}

async fn test(State(app): AppState, id: Result<Path<String>, PathRejection>) -> Result<impl IntoResponse, ApiError> {
    let Path(id) = id?;
    let status = app.push.test(&id).await?;
    Ok(Json(json!({ "status": status })))
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Subscription not found")
}
