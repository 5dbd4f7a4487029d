//! Refuses cross-site requests that could act on the user's behalf.
//!
//! Piface has no login, so any page the user visits could otherwise drive it from their
//! browser: open the chat WebSocket (which browsers allow across origins) or POST to the API.
//! Requests that change something (any method but GET/HEAD/OPTIONS) and WebSocket upgrades are
//! accepted only without an `Origin` header (non-browser clients) or with one whose host and
//! port equal the `Host` the request was sent to. Reads stay open: browsers do not let another
//! origin read the answers, as Piface sends no CORS headers.

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The middleware.
pub async fn same_origin_only(req: Request, next: Next) -> Response {
    let acts = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let upgrade = req.headers().contains_key(header::UPGRADE);
    if (acts || upgrade) && !allowed(req.headers(), req.uri().authority().map(|a| a.as_str())) {
        tracing::warn!(origin = ?req.headers().get(header::ORIGIN), path = %req.uri().path(), "cross-origin request refused");
        return ApiError::new(StatusCode::FORBIDDEN, "Cross-origin request refused").into_response();
    }
    next.run(req).await
}

fn allowed(headers: &HeaderMap, uri_authority: Option<&str>) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).or(uri_authority);
    let authority = origin.to_str().ok().and_then(|o| o.split_once("://")).map(|(_, rest)| rest.trim_end_matches('/'));
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(origin: Option<&str>, host: Option<&str>, want: bool) {
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        if let Some(x) = host {
            h.insert(header::HOST, x.parse().unwrap());
        }
        assert_eq!(allowed(&h, None), want, "{origin:?} {host:?}");
    }

    #[test]
    fn origins() {
        check(None, Some("127.0.0.1:7832"), true);
        check(Some("http://127.0.0.1:7832"), Some("127.0.0.1:7832"), true);
        check(Some("https://box.tail1234.ts.net"), Some("box.tail1234.ts.net"), true);
        check(Some("https://Box.ts.net"), Some("box.ts.net"), true);
        check(Some("http://evil.example"), Some("127.0.0.1:7832"), false);
        check(Some("http://127.0.0.1:7833"), Some("127.0.0.1:7832"), false);
        check(Some("null"), Some("127.0.0.1:7832"), false);
        check(Some("http://127.0.0.1:7832"), None, false);
    }
}
