//! The outermost layer of every HTTP request: its span (the root of the request's trace, or a
//! child of the caller's `traceparent`), the access log (one line per request on target
//! `piface::access`) and the HTTP metrics.
//!
//! The log line has the method, the path without its query (a login link carries the token
//! there), the status, the latency and the peer from the accept loop; never headers, cookies
//! or bodies. What it is not: the front door (`front_door.rs`, inside this layer, so refused
//! requests are logged too).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use piface_shared::protocol::TraceContext;
use tracing::Instrument;

use crate::App;

/// Paths longer than this are cut in the log: the line stays readable and bounded whatever a
/// client sends.
const MAX_LOGGED_PATH: usize = 512;

/// Runs `next` in the request's span, then logs and counts the answer.
pub async fn observe(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = cut(req.uri().path(), MAX_LOGGED_PATH).to_owned();
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let span = request_span(&req);
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    let took = started.elapsed();
    span.record("http.response.status_code", status.as_u16());
    app.metrics.http_request(&method, status, took);
    tracing::info!(
        target: "piface::access",
        method = %method,
        path = %path,
        status = status.as_u16(),
        latency_ms = (took.as_secs_f64() * 1000.0 * 10.0).round() / 10.0,
        peer = %peer.map_or_else(|| "-".to_string(), |p| p.to_string()),
    );
    response
}

/// The server span of a request, named `METHOD /route/{param}` after the route it matched
/// (never the concrete path: ids would make every name unique). Disabled while traces are not
/// exported.
fn request_span(req: &Request) -> tracing::Span {
    if !piface_link::trace::enabled() {
        return tracing::Span::none();
    }
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let name = match &route {
        Some(route) => format!("{} {route}", req.method()),
        None => req.method().to_string(),
    };
    let span = tracing::info_span!(
        target: "piface::access",
        "http_request",
        otel.name = %name,
        otel.kind = "server",
        http.request.method = %req.method(),
        http.route = route.as_deref().unwrap_or(""),
        http.response.status_code = tracing::field::Empty,
    );
    // A caller that traces (a proxy, a script) makes this request part of its trace.
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Some(traceparent) = header("traceparent") {
        let trace = TraceContext { traceparent, tracestate: header("tracestate").unwrap_or_default() };
        piface_link::trace::set_remote_parent(&span, &trace);
    }
    span
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
