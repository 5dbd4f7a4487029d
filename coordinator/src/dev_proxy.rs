//! `--dev`: the web UI from a Vite dev server (`npm --prefix frontend run dev`, port 5173) instead
//! of the embedded build, for working on the frontend with hot reload, as the original's `--dev`.
//!
//! Everything the route table does not answer, except `/api` and `/ws` paths (404 JSON as
//! always), goes to the dev server: plain requests through an HTTP client, upgrades (Vite's
//! hot-reload WebSocket, subprotocol `vite-hmr`) as bytes on a TCP connection once the dev server
//! has answered 101, so every header and subprotocol passes as the browser sent it. The front
//! door still runs first (Host, Origin), and unlike the embedded UI the dev server's pages need
//! the login: a dev server serves the project's sources (and `/@fs/` files), so a browser opens
//! the printed login link first. Responses carry a CSP that allows the inline scripts and styles
//! a dev page needs.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::ApiError;
use crate::App;

/// The dev server's pages inline their bootstrap and styles; nothing else is relaxed.
const DEV_CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
    base-uri 'self'; form-action 'self'";
/// Largest request body passed on (the dev server takes no uploads).
const MAX_BODY: usize = 16 << 20;
/// Largest response head read from the dev server on an upgrade.
const MAX_HEAD: usize = 16 << 10;

/// Where the dev server is: `http://HOST:PORT`.
#[derive(Debug, Clone)]
pub struct DevServer {
    origin: String,
    authority: String,
    client: reqwest::Client,
}

impl DevServer {
    /// `origin` is `http://host:port` (no path).
    pub fn new(origin: &str) -> Result<DevServer, String> {
        let trimmed = origin.trim_end_matches('/');
        let authority = trimmed
            .strip_prefix("http://")
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .ok_or_else(|| format!("--dev-server must be http://HOST:PORT, not {origin}"))?;
        let authority = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(DevServer { origin: trimmed.to_string(), authority, client })
    }

    fn unreachable(&self) -> Response {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!(
                "Unable to reach frontend dev server at {}. Is `npm --prefix frontend run dev` running?",
                self.origin
            ),
        )
        .into_response()
    }
}

/// Headers that belong to one connection, not to the request (RFC 9110 §7.6.1), and what
/// identifies the browser to Piface (the dev server needs neither).
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "cookie"
            | "authorization"
    )
}

/// The router's fallback under `--dev`.
pub async fn fallback(State(app): State<Arc<App>>, req: Request) -> Response {
    let path = req.uri().path();
    if crate::auth::is_guarded(path) {
        return ApiError::new(StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    let Some(dev) = app.config.dev_server.clone() else {
        return ApiError::new(StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let anonymous = matches!(req.extensions().get::<crate::auth::Identity>(), Some(crate::auth::Identity::Anonymous));
    if anonymous {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Login required for the dev server's pages: open the login URL Piface printed at start",
        )
        .into_response();
    }
    let mut response =
        if req.headers().contains_key(header::UPGRADE) { upgrade(&dev, req).await } else { forward(&dev, req).await };
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DEV_CSP));
    response
}

/// A plain request, answered by the dev server.
async fn forward(dev: &DevServer, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large").into_response();
    };
    let target = format!("{}{}", dev.origin, parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    let mut outbound = dev.client.request(parts.method, target).body(body);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            outbound = outbound.header(name, value);
        }
    }
    let Ok(upstream) = outbound.send().await else {
        return dev.unreachable();
    };
    let status = upstream.status();
    let headers = upstream.headers().clone();
    let Ok(bytes) = upstream.bytes().await else {
        return dev.unreachable();
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    copy_headers(&headers, response.headers_mut(), |n| !hop_by_hop(n) && n != header::CONTENT_LENGTH);
    response
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap, keep: impl Fn(&HeaderName) -> bool) {
    for (name, value) in from {
        if keep(name) {
            to.append(name.clone(), value.clone());
        }
    }
}

/// An upgrade (the hot-reload WebSocket): the browser's request goes to the dev server as it
/// came (but for `Host`, cookies and credentials); once it answers 101, the two connections are
/// joined byte for byte.
async fn upgrade(dev: &DevServer, mut req: Request) -> Response {
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return ApiError::bad_request("Not an upgradable connection").into_response();
    };
    let Ok(mut upstream) = tokio::net::TcpStream::connect(&dev.authority).await else {
        return dev.unreachable();
    };
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!("{} {target} HTTP/1.1\r\nhost: {}\r\n", req.method(), dev.authority);
    for (name, value) in req.headers() {
        let keep = !hop_by_hop(name) || name == header::UPGRADE || name == header::CONNECTION;
        if let (true, Ok(value)) = (keep, value.to_str()) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    if upstream.write_all(head.as_bytes()).await.is_err() {
        return dev.unreachable();
    }
    // The dev server's answer: its head, and whatever it sent after it already.
    let mut buf = Vec::with_capacity(1024);
    let (status, headers, head_len) = loop {
        let mut chunk = [0u8; 1024];
        let n = match upstream.read(&mut chunk).await {
            Ok(0) | Err(_) => return dev.unreachable(),
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut parsed = [httparse::EMPTY_HEADER; 64];
        let mut answer = httparse::Response::new(&mut parsed);
        match answer.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let mut headers = HeaderMap::new();
                for h in answer.headers.iter() {
                    if let (Ok(n), Ok(v)) =
                        (HeaderName::from_bytes(h.name.as_bytes()), HeaderValue::from_bytes(h.value))
                    {
                        headers.append(n, v);
                    }
                }
                break (answer.code.unwrap_or(502), headers, len);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
            _ => return dev.unreachable(),
        }
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    if status != StatusCode::SWITCHING_PROTOCOLS {
        copy_headers(&headers, response.headers_mut(), |n| !hop_by_hop(n) && n != header::CONTENT_LENGTH);
        return response;
    }
    copy_headers(&headers, response.headers_mut(), |_| true);
    let early = buf.split_off(head_len);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let mut browser = TokioIo::new(upgraded);
        if !early.is_empty() && browser.write_all(&early).await.is_err() {
            return;
        }
        let _ = tokio::io::copy_bidirectional(&mut browser, &mut upstream).await;
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_server_addresses() {
        let d = DevServer::new("http://127.0.0.1:5173/").unwrap();
        assert_eq!((d.origin.as_str(), d.authority.as_str()), ("http://127.0.0.1:5173", "127.0.0.1:5173"));
        assert_eq!(DevServer::new("http://localhost").unwrap().authority, "localhost:80");
        assert!(DevServer::new("https://x:1").is_err());
        assert!(DevServer::new("http://x:1/path").is_err());
        assert!(DevServer::new("127.0.0.1:5173").is_err());
    }

    #[test]
    fn connection_headers_and_credentials_stay_here() {
        for h in ["connection", "upgrade", "host", "cookie", "authorization", "transfer-encoding"] {
            assert!(hop_by_hop(&HeaderName::from_static(h)), "{h}");
        }
        for h in ["accept", "sec-websocket-protocol", "sec-websocket-key", "if-none-match"] {
            assert!(!hop_by_hop(&HeaderName::from_static(h)), "{h}");
        }
    }
}
