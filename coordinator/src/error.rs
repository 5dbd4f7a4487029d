//! `ApiError`: every HTTP error answer, in the original's shape `{"detail": "…"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error answer: a status and a client-safe message.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The `detail`: a string, or FastAPI's list form for validation errors.
    pub detail: serde_json::Value,
}

impl ApiError {
    /// An error with a text detail.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError { status, detail: serde_json::Value::String(detail.into()) }
    }

    /// 404 `Session not found`.
    pub fn session_not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "Session not found")
    }

    /// 400.
    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 409.
    pub fn conflict(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, detail)
    }

    /// 422 in FastAPI's list form.
    pub fn validation(msg: impl Into<String>) -> ApiError {
        let detail = serde_json::json!([{ "loc": ["body"], "msg": msg.into(), "type": "value_error" }]);
        ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, detail }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, detail = %self.detail, "request failed");
        }
        (self.status, Json(serde_json::json!({ "detail": self.detail }))).into_response()
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> ApiError {
        use axum::extract::rejection::JsonRejection as R;
        match rejection {
            R::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
            }
            R::MissingJsonContentType(_) => {
                ApiError::validation("Expected a JSON body (Content-Type: application/json)")
            }
            other => ApiError::validation(other.body_text()),
        }
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, rejection.body_text())
    }
}
