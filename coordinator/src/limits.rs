//! Limits on what one browser or script can make the coordinator hold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

use crate::error::ApiError;
use crate::App;

/// Configurable limits (`--max-ws-per-session`, `--max-sessions-per-agent`,
/// `--max-ws-message-mib`, `--header-timeout`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// WebSockets (chat and terminal together) open on one session.
    pub ws_per_session: usize,
    /// Live sessions on one agent.
    pub sessions_per_agent: usize,
    /// Largest message a WebSocket client may send, bytes.
    pub ws_message: usize,
    /// The HTTP server's limits.
    pub server: crate::server::ServerLimits,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            ws_per_session: 32,
            sessions_per_agent: 64,
            ws_message: 16 << 20,
            server: crate::server::ServerLimits::default(),
        }
    }
}

/// Open WebSockets per session.
#[derive(Debug, Default, Clone)]
pub struct WsSlots {
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open WebSocket of a session; dropping it frees the slot.
#[derive(Debug)]
pub struct WsSlot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    session: String,
}

impl WsSlots {
    /// A slot on `session`, or 429 when `limit` sockets are open on it already.
    pub fn take(&self, session: &str, limit: usize) -> Result<WsSlot, ApiError> {
        let mut open = self.open.lock().unwrap();
        let n = open.entry(session.to_string()).or_default();
        if *n >= limit {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("This session already has {limit} open connections (--max-ws-per-session); close a tab"),
            ));
        }
        *n += 1;
        Ok(WsSlot { open: self.open.clone(), session: session.to_string() })
    }

    /// Sockets open on `session`.
    pub fn count(&self, session: &str) -> usize {
        self.open.lock().unwrap().get(session).copied().unwrap_or(0)
    }
}

impl Drop for WsSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap();
        if let Some(n) = open.get_mut(&self.session) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.session);
            }
        }
    }
}

/// `method` with a largest request body of `limit` bytes: a `Content-Length` over it is
/// answered 413 before the body is sent, and a body without a length is cut as it streams.
pub fn body_limit(method: MethodRouter<Arc<App>>, limit: usize) -> MethodRouter<Arc<App>> {
    method
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(move |req, next| refuse_over(limit, req, next)))
}

/// Answers 413 from the headers when `Content-Length` is over `limit`.
pub(crate) async fn refuse_over(limit: usize, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let announced =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > limit as u64) {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large").into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_session_and_freed_on_drop() {
        let slots = WsSlots::default();
        let a = slots.take("s", 2).unwrap();
        let _b = slots.take("s", 2).unwrap();
        assert_eq!(slots.take("s", 2).unwrap_err().status, StatusCode::TOO_MANY_REQUESTS);
        let _other = slots.take("t", 2).unwrap();
        drop(a);
        assert_eq!(slots.count("s"), 1);
        let _c = slots.take("s", 2).unwrap();
        drop(_c);
        drop(_b);
        assert_eq!(slots.count("s"), 0);
        assert!(slots.open.lock().unwrap().get("s").is_none(), "no entry left behind");
    }
}
