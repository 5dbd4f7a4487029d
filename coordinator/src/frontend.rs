//! Serving the web UI: every path that is not API gets the single-page app's shell.
//!
//! Until the SvelteKit UI lands, the shell is a placeholder page compiled into the binary.
//! Unlike the original, unknown `/api/…` and `/ws/…` paths answer 404 JSON instead of the
//! SPA page with 200.

use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

const INDEX_HTML: &str = include_str!("../../frontend/placeholder/index.html");

/// The router's fallback.
pub async fn fallback(uri: Uri) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") || path.starts_with("/ws/") {
        return ApiError::new(StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], INDEX_HTML)
        .into_response()
}
