//! `piface serve --dev`: the UI from a Vite dev server. A stand-in dev server (plain pages and a
//! hot-reload WebSocket with Vite's `vite-hmr` subprotocol) sits behind the real binary; the API
//! stays Piface's own, the dev pages need the login, and a dev server that is gone is a clear 502.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use piface_test_support::piface::{workspace_bin, Options, Piface};

const PIFACE: &str = env!("CARGO_BIN_EXE_piface");

/// `/` is a page, or Vite's hot-reload socket (echoing with `hot:`) when it is an upgrade.
async fn dev_root(
    headers: axum::http::HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    match ws.ok() {
        Some(ws) => ws.protocols(["vite-hmr"]).on_upgrade(echo).into_response(),
        None => {
            // What the proxy passed on: no credentials of Piface's.
            let leaked = headers.contains_key("authorization") || headers.contains_key("cookie");
            ([("x-dev-server", if leaked { "leaked" } else { "clean" })], axum::response::Html("<p>dev page</p>"))
                .into_response()
        }
    }
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(Message::Text(text))) = socket.recv().await {
        if socket.send(Message::Text(format!("hot:{text}").into())).await.is_err() {
            break;
        }
    }
}

#[tokio::test]
async fn dev_serves_the_ui_from_the_dev_server_behind_the_login() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dev_addr = listener.local_addr().unwrap();
    let dev_app = axum::Router::new()
        .route("/", axum::routing::get(dev_root))
        .route("/src/app.js", axum::routing::get(|| async { ([("content-type", "text/javascript")], "export {}") }));
    let dev = tokio::spawn(async move { axum::serve(listener, dev_app).await });

    let server = Piface::start(Options {
        bin: PIFACE.into(),
        pi_bin: workspace_bin("fake-pi").unwrap(),
        envs: vec![],
        args: vec!["--dev".into(), "--dev-server".into(), format!("http://{dev_addr}")],
        data_dir: None,
    })
    .await
    .unwrap();

    // Logged in (the harness sends the bearer token): the dev server's pages, with a CSP that
    // lets a dev page run, and the front door's other headers.
    let resp = server.http.get(server.url("/")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("'unsafe-inline'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    assert_eq!(resp.headers()["x-dev-server"], "clean", "credentials stay with Piface");
    assert_eq!(resp.text().await.unwrap(), "<p>dev page</p>");
    let js = server.http.get(server.url("/src/app.js?v=1")).send().await.unwrap();
    assert_eq!((js.status().as_u16(), js.text().await.unwrap().as_str()), (200, "export {}"));

    // The API is Piface's own; unknown API paths are still 404 JSON, not the dev server's.
    let health: serde_json::Value =
        server.http.get(server.url("/api/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    let missing = server.http.get(server.url("/api/nope")).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    assert!(missing.text().await.unwrap().contains("\"detail\""));

    // Without the login: refused (the dev server serves the project's sources).
    let anonymous = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);

    // The hot-reload socket, subprotocol and all.
    let mut req = server.ws_request("/");
    req.headers_mut().insert("sec-websocket-protocol", "vite-hmr".parse().unwrap());
    let (mut ws, answer) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(answer.headers()["sec-websocket-protocol"], "vite-hmr");
    ws.send(tokio_tungstenite::tungstenite::Message::Text("update".into())).await.unwrap();
    let reply = ws.next().await.unwrap().unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), "hot:update");
    drop(ws);

    // The dev server gone: a 502 that says what to start.
    dev.abort();
    let _ = dev.await;
    let gone = server.http.get(server.url("/")).send().await.unwrap();
    assert_eq!(gone.status().as_u16(), 502);
    let body: serde_json::Value = gone.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("http://{dev_addr}")) && detail.contains("run dev"), "{detail}");
}
