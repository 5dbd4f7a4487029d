//! The REST surface in process: the real router (route table, front door, fallback) over an
//! [`App`](crate::App) in a temporary directory, one `oneshot` request at a time (see
//! `testkit.rs`). The route table is walked, so every route gets the front door's checks (login,
//! Host, Origin) and each route family its documented errors (malformed and oversized bodies,
//! unknown ids, paths outside the roots); then the happy paths that need no pi.
//!
//! Malformed bodies are 422 in FastAPI's list form, as the original's contract says
//! (`shared/contract/rest-api.md`, "Conventions"), not 400.

use axum::http::{header, Method, StatusCode};
use serde_json::json;

use crate::auth::Mode;
use crate::testkit::{record, Answer, Builder, TestApp, HOST};

/// Every method a route might have.
const METHODS: [Method; 5] = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

/// A session id no store holds.
const UNKNOWN: &str = "00000000-0000-4000-8000-000000000000";

/// `path` of the table with its parameters filled in: `{id}` with `id`, `{name}` with an agent
/// name, `{file}` with a TTS file name.
fn concrete(path: &str, id: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{id}" => id,
            "{name}" => "nobody",
            "{file}" => "0000000000000000000000000000000000000000000000000000000000000000.mp3",
            other => {
                assert!(!other.starts_with('{'), "a parameter this walk does not know: {path}");
                other
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn table(t: &TestApp) -> Vec<&'static str> {
    let paths = crate::routes::paths(&t.app.config);
    assert!(paths.len() >= 30, "the whole table: {paths:?}");
    paths
}

/// The methods `path` is routed for: those the router does not answer 405 (asked with an
/// announced body far over any limit, so no handler runs where a limit applies).
async fn routed(t: &TestApp, path: &str, id: &str) -> Vec<Method> {
    let mut out = Vec::new();
    for method in METHODS {
        let answer = t.req(method.clone(), &concrete(path, id)).header(header::CONTENT_LENGTH, "0").send().await;
        if answer.status != StatusCode::METHOD_NOT_ALLOWED {
            out.push(method);
        }
    }
    assert!(!out.is_empty(), "{path} answers 405 to every method");
    out
}

fn assert_hardened(what: &str, a: &Answer) {
    let csp = a.header(header::CONTENT_SECURITY_POLICY).unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'") || csp.starts_with("sandbox"), "{what}: CSP {csp:?}");
    assert_eq!(a.header(header::X_FRAME_OPTIONS), Some("DENY"), "{what}");
    assert_eq!(a.header(header::REFERRER_POLICY), Some("no-referrer"), "{what}");
    assert_eq!(a.header(header::X_CONTENT_TYPE_OPTIONS), Some("nosniff"), "{what}");
}

fn closed(id: &str, agent: &str) -> crate::record::SessionRecord {
    record(json!({
        "piface_id": id, "working_dir": "/w", "status": "closed", "agent": agent,
        "session_file": "/w/.pi/sessions/s.jsonl",
        "created_at": "2026-12-05T00:00:00Z", "last_active": "2026-12-05T00:00:00Z",
    }))
}

// ---- The front door, on every route ----

/// What anyone may call, written out here rather than read from `auth::is_public`, so that a
/// route made public by mistake fails this test instead of changing what it expects.
const PUBLIC: [(&str, &str); 4] =
    [("GET", "/api/health"), ("GET", "/api/auth/status"), ("POST", "/api/auth/login"), ("POST", "/api/auth/logout")];

#[tokio::test]
async fn every_route_refuses_a_request_without_login_but_health_and_the_login_itself() {
    let t = TestApp::start().await;
    let mut open = Vec::new();
    for path in table(&t) {
        for method in METHODS {
            let a = t.anonymous(method.clone(), &concrete(path, UNKNOWN)).send().await;
            assert_hardened(&format!("{method} {path}"), &a);
            let public = PUBLIC.contains(&(method.as_str(), path));
            assert_eq!(crate::auth::is_public(&method, path), public, "{method} {path}: public is the list above");
            if public {
                assert_ne!(a.status, StatusCode::UNAUTHORIZED, "{method} {path} is public");
            } else if a.status != StatusCode::UNAUTHORIZED || !a.detail().starts_with("Login required") {
                open.push(format!("{method} {path} → {}", a.status));
            }
        }
    }
    assert!(open.is_empty(), "routes answering without a login: {open:#?}");
    // Paths the table does not have are behind the login too; the UI is not.
    let a = t.anonymous(Method::GET, "/api/nothing-here").send().await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let ui = t.anonymous(Method::GET, "/").send().await;
    assert_eq!(ui.status, StatusCode::OK);
    assert_hardened("the UI", &ui);
    // A wrong token is refused like none (and counted: see the rate limit's test).
    let wrong = t.anonymous(Method::GET, "/api/sessions").header(header::AUTHORIZATION, "Bearer 00").send().await;
    assert_eq!((wrong.status, wrong.detail().as_str()), (StatusCode::UNAUTHORIZED, "Invalid token"));
}

#[tokio::test]
async fn a_foreign_host_is_refused_on_every_route_and_method_even_with_the_token() {
    let t = Builder::new()
        .config(|c| {
            c.front_door.hostname = Some("box".into());
            c.front_door.allowed_hosts = vec!["box.tail1234.ts.net".into()];
        })
        .start()
        .await;
    let mut paths: Vec<String> = table(&t).into_iter().map(|p| concrete(p, UNKNOWN)).collect();
    paths.extend(["/".to_string(), "/session/x".into(), "/api/nothing-here".into()]);
    for path in &paths {
        for method in METHODS {
            let a = t.req(method.clone(), path).header(header::HOST, "evil.example:7832").send().await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{method} {path}");
            assert!(a.detail().contains("--allowed-host evil.example"), "{method} {path}: {}", a.detail());
            assert_hardened(&format!("{method} {path}"), &a);
        }
    }
    // A person who typed the name gets a page that says the same.
    let page =
        t.req(Method::GET, "/").header(header::HOST, "evil.example").header(header::ACCEPT, "text/html").send().await;
    assert_eq!(
        (page.status, page.header(header::CONTENT_TYPE)),
        (StatusCode::FORBIDDEN, Some("text/html; charset=utf-8"))
    );
    assert!(String::from_utf8_lossy(&page.body).contains("--allowed-host evil.example"));
    // This machine's names, loopback names, IP literals and --allowed-host names are served.
    for host in ["box:7832", "localhost:7832", "[::1]:7832", "10.1.2.3", "Box.Tail1234.ts.net:443", HOST] {
        assert_eq!(
            t.req(Method::GET, "/api/sessions").header(header::HOST, host).send().await.status,
            StatusCode::OK,
            "{host}"
        );
    }
    // A trusted proxy's forwarded name is checked too; an untrusted peer's is ignored.
    let forwarded =
        |peer: &str| t.req(Method::GET, "/api/sessions").peer(peer).header("x-forwarded-host", "evil.example");
    assert_eq!(forwarded("127.0.0.1:5000").send().await.status, StatusCode::FORBIDDEN);
    assert_eq!(forwarded("10.9.9.9:5000").send().await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_foreign_origin_is_refused_on_every_request_that_acts() {
    let t = TestApp::start().await;
    for path in table(&t) {
        let path = concrete(path, UNKNOWN);
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let a = t.req(method.clone(), &path).header(header::ORIGIN, "http://evil.example").send().await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{method} {path}");
            assert!(a.detail().starts_with("Cross-origin request refused"), "{method} {path}: {}", a.detail());
            // The page's own origin acts: whatever the handler says, the front door let it by.
            let own = t.req(method.clone(), &path).header(header::ORIGIN, &format!("http://{HOST}")).send().await;
            assert!(own.status != StatusCode::FORBIDDEN, "{method} {path}: {}", own.detail());
        }
        // Reading is no act, but an upgrade is.
        let read = t.req(Method::GET, &path).header(header::ORIGIN, "http://evil.example").send().await;
        assert_ne!(read.status, StatusCode::FORBIDDEN, "GET {path}");
        let upgrade = t
            .req(Method::GET, &path)
            .header(header::ORIGIN, "http://evil.example")
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .send()
            .await;
        assert_eq!(upgrade.status, StatusCode::FORBIDDEN, "upgrade of {path}");
    }
    // `null`, other schemes and ports are foreign; an --allowed-origin is not.
    for origin in ["null", "https://127.0.0.1:7832", "http://127.0.0.1:7833"] {
        let a = t.req(Method::POST, "/api/auth/logout").header(header::ORIGIN, origin).send().await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{origin}");
    }
    let listed =
        Builder::new().config(|c| c.front_door.allowed_origins = vec!["https://piface.example".into()]).start().await;
    let a =
        listed.req(Method::POST, "/api/auth/logout").header(header::ORIGIN, "https://PIFACE.example:443/").send().await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
}

// ---- Errors per route family ----

/// Routes that act without reading a body: they must not start reading one either.
const BODILESS: [(Method, &str); 6] = [
    (Method::POST, "/api/sessions/{id}/kill"),
    (Method::POST, "/api/sessions/{id}/resume"),
    (Method::POST, "/api/auth/logout"),
    (Method::DELETE, "/api/agents/{name}"),
    (Method::DELETE, "/api/push/subscriptions/{id}"),
    (Method::POST, "/api/push/subscriptions/{id}/test"),
];

/// Every route that acts reads its body as JSON, and a malformed one is a 422 in FastAPI's list
/// form, before anything happens; the few that read no body are listed ([`BODILESS`]).
#[tokio::test(start_paused = true)]
async fn malformed_json_is_a_422_in_the_list_form_on_every_route_that_acts() {
    // A session on an agent that never answers: the handlers get past "not found" and "not
    // connected" to the body, and one that did not stop there would wait (paused time: a timeout).
    let (builder, _far) = Builder::new().session(closed("s1", "far")).remote_agent("far");
    let t = builder.start().await;
    let mut wrong = Vec::new();
    for path in table(&t) {
        if path.starts_with("/ws/") {
            continue;
        }
        for method in routed(&t, path, "s1").await {
            if method == Method::GET {
                continue;
            }
            let url = concrete(path, "s1");
            let a =
                t.req(method.clone(), &url).header(header::CONTENT_TYPE, "application/json").body("{nope").send().await;
            let bodiless = BODILESS.iter().any(|(m, p)| *m == method && *p == path);
            let listed =
                a.status == StatusCode::UNPROCESSABLE_ENTITY && a.json()["detail"][0]["loc"] == json!(["body"]);
            if bodiless == listed {
                wrong.push(format!("{method} {path} → {} {}", a.status, String::from_utf8_lossy(&a.body)));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // A body of the wrong shape, or without the JSON content type, is the same 422.
    let missing = t.send_json(Method::POST, "/api/sessions", &json!({"provider": "x"})).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(missing.detail().contains("working_dir"), "{}", missing.detail());
    let untyped = t.req(Method::POST, "/api/sessions").body(r#"{"working_dir": "/w"}"#).send().await;
    assert_eq!(untyped.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(untyped.detail().contains("Content-Type: application/json"), "{}", untyped.detail());
    assert!(t.stored().sessions.iter().all(|r| r.piface_id == "s1"), "nothing was created");
}

/// Routes without a limit of their own on the announced length: the GETs (the login's status,
/// the TTS audio, the metrics) and the sockets.
const UNLIMITED: [&str; 6] = [
    "/api/auth/status",
    "/metrics",
    "/api/audio/tts/{file}",
    "/ws/sessions/{id}",
    "/ws/sessions/{id}/terminal",
    "/ws/dashboard",
];

#[tokio::test]
async fn a_body_announced_over_the_limit_is_a_413_before_any_handler_runs() {
    let t = Builder::new().session(closed("s1", "far")).start().await;
    let mut wrong = Vec::new();
    for path in table(&t) {
        if UNLIMITED.contains(&path) {
            continue;
        }
        for method in routed(&t, path, "s1").await {
            let a = t
                .req(method.clone(), &concrete(path, "s1"))
                .header(header::CONTENT_LENGTH, &(1u64 << 40).to_string())
                .send()
                .await;
            if a.status != StatusCode::PAYLOAD_TOO_LARGE || a.detail() != "Request body too large" {
                wrong.push(format!("{method} {path} → {} {}", a.status, String::from_utf8_lossy(&a.body)));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // Each route's own limit: --max-body for the API, its own for uploads, speech and TTS.
    let max_body = t.app.config.max_body;
    let at = |path: &str, len: usize| {
        t.req(Method::POST, path)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, &len.to_string())
    };
    assert_eq!(at("/api/sessions", max_body + 1).send().await.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_ne!(at("/api/sessions", max_body).send().await.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_ne!(at("/api/sessions/s1/uploads", max_body + 1).send().await.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_ne!(at("/api/sessions/s1/transcribe", max_body + 1).send().await.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_body_over_the_limit_without_a_length_is_cut_as_it_streams() {
    let t = Builder::new().config(|c| c.max_body = 4096).start().await;
    let big = json!({"working_dir": "x".repeat(8192)}).to_string();
    let a = t
        .req(Method::POST, "/api/sessions")
        .header(header::CONTENT_TYPE, "application/json")
        .body(big.clone())
        .send()
        .await;
    assert_eq!((a.status, a.detail().as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "Request body too large"));
    // The login, open to anyone, reads at most 16 KiB.
    let huge = json!({"token": "x".repeat(32 << 10)}).to_string();
    let a = t
        .anonymous(Method::POST, "/api/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(huge)
        .send()
        .await;
    assert_eq!((a.status, a.detail().as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "Request body too large"));
}

#[tokio::test]
async fn an_unknown_session_agent_or_audio_file_is_a_404_on_every_route_that_names_one() {
    let t = TestApp::start().await;
    let mut wrong = Vec::new();
    for path in table(&t) {
        if !path.contains('{') || path.starts_with("/ws/") {
            continue;
        }
        let want = if path.starts_with("/api/sessions/") {
            "Session not found"
        } else if path.starts_with("/api/agents/") {
            "Agent not found"
        } else if path.starts_with("/api/push/subscriptions/") {
            "Subscription not found"
        } else {
            "TTS audio not found"
        };
        for method in routed(&t, path, UNKNOWN).await {
            let a =
                t.req(method.clone(), &concrete(path, UNKNOWN).replace(".mp3", "x.mp3")).json(&json!({})).send().await;
            if a.status != StatusCode::NOT_FOUND || a.detail() != want {
                wrong.push(format!("{method} {path} → {} {}", a.status, String::from_utf8_lossy(&a.body)));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // A well-formed audio key that nobody made: no TTS service in the cluster says so.
    let a = t.get(&concrete("/api/audio/tts/{file}", UNKNOWN)).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.detail());
    // Tools that name an agent nobody knows.
    for path in [
        "/api/fs/list?path=/",
        "/api/fs/complete?prefix=/",
        "/api/fs/file?path=/x",
        "/api/fs/raw?path=/x",
        "/api/workspace/config?path=/",
        "/api/workspace/trust?path=/",
    ] {
        let a = t.get(&format!("{path}&agent=nobody")).await;
        assert_eq!((a.status, a.detail().as_str()), (StatusCode::NOT_FOUND, "Agent not found: nobody"), "{path}");
    }
    for (method, path, body) in [
        (Method::PUT, "/api/workspace/config", json!({"path": "/", "config": {"a": 1}, "agent": "nobody"})),
        (Method::POST, "/api/workspace/trust", json!({"path": "/", "sha256": "00", "agent": "nobody"})),
        (Method::POST, "/api/direnv/allow", json!({"working_dir": "/", "agent": "nobody"})),
    ] {
        let a = t.send_json(method, path, &body).await;
        assert_eq!((a.status, a.detail().as_str()), (StatusCode::NOT_FOUND, "Agent not found: nobody"), "{path}");
    }
    // Without any agent, a tool is unavailable rather than missing.
    assert_eq!(t.get("/api/fs/list?path=/").await.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn paths_outside_the_roots_and_piface_s_own_files_are_refused_by_the_agent() {
    let t = Builder::new().local_agent().start().await;
    std::fs::write(t.outside.join("secret.txt"), "secret").unwrap();
    std::fs::create_dir_all(t.root.join("docs")).unwrap();
    std::fs::write(t.root.join("docs/readme.md"), "# hello\n").unwrap();
    std::os::unix::fs::symlink(&t.outside, t.root.join("escape")).unwrap();
    let q = |p: &std::path::Path| {
        percent_encoding::utf8_percent_encode(p.to_str().unwrap(), percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let secret = t.outside.join("secret.txt");
    let escapes = [
        (secret.clone(), "Outside the allowed file roots"),
        (t.root.join("escape/secret.txt"), "Outside the allowed file roots"),
        (t.root.join("docs/../../outside/secret.txt"), "Outside the allowed file roots"),
        (t.data_dir().join("auth/token"), "Inside Piface's private files"),
    ];
    for (path, why) in &escapes {
        for endpoint in ["/api/fs/file", "/api/fs/raw"] {
            let a = t.get(&format!("{endpoint}?path={}", q(path))).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{endpoint} {}", path.display());
            assert!(a.detail().starts_with(why), "{endpoint} {}: {}", path.display(), a.detail());
            assert!(!String::from_utf8_lossy(&a.body).contains("secret\""), "nothing leaks");
        }
    }
    for dir in [&t.outside, &t.data_dir().to_path_buf()] {
        for endpoint in ["/api/fs/list", "/api/workspace/config", "/api/workspace/trust"] {
            let a = t.get(&format!("{endpoint}?path={}", q(dir))).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{endpoint} {}: {}", dir.display(), a.detail());
        }
        let body = json!({"path": dir, "config": {"ui": {"theme": "dark"}}});
        assert_eq!(t.send_json(Method::PUT, "/api/workspace/config", &body).await.status, StatusCode::FORBIDDEN);
        let body = json!({"path": dir, "sha256": "00"});
        assert_eq!(t.send_json(Method::POST, "/api/workspace/trust", &body).await.status, StatusCode::FORBIDDEN);
        let body = json!({"working_dir": dir});
        assert_eq!(t.send_json(Method::POST, "/api/direnv/allow", &body).await.status, StatusCode::FORBIDDEN);
        let a = t.send_json(Method::POST, "/api/sessions", &json!({"working_dir": dir, "shared": true})).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "a session outside the roots: {}", a.detail());
    }
    assert!(t.stored().sessions.is_empty(), "no session was made");
    let done = t.get(&format!("/api/fs/complete?prefix={}", q(&t.outside))).await;
    assert_eq!(done.json(), json!({"matches": []}), "nothing outside the roots is completed");
    // Inside the root, the same requests are served.
    let list = t.get(&format!("/api/fs/list?path={}", q(&t.root.join("docs")))).await;
    assert_eq!(list.status, StatusCode::OK, "{}", String::from_utf8_lossy(&list.body));
    assert_eq!(list.json()["entries"][0]["name"], "readme.md");
    let file = t.get(&format!("/api/fs/file?path={}", q(&t.root.join("docs/readme.md")))).await;
    assert_eq!((file.json()["kind"].as_str(), file.json()["content"].as_str()), (Some("markdown"), Some("# hello\n")));
    let raw = t.get(&format!("/api/fs/raw?path={}", q(&t.root.join("docs/readme.md")))).await;
    assert_eq!((raw.status, &raw.body[..]), (StatusCode::OK, &b"# hello\n"[..]));
    assert_eq!(
        raw.header(header::CONTENT_SECURITY_POLICY),
        Some("sandbox allow-scripts"),
        "a raw file cannot script Piface"
    );
    let relative = t.get("/api/fs/list?path=relative/dir").await;
    assert_eq!(relative.status, StatusCode::BAD_REQUEST, "{}", relative.detail());
}

/// The agent a tool goes to may never answer: the request ends with a 504 at the tool's time
/// limit (a minute, passed here in paused time), and with a 503 once the agent is gone.
#[tokio::test(start_paused = true)]
async fn a_tool_call_its_agent_never_answers_is_a_504_and_a_gone_agent_a_503() {
    let (builder, mut far) = Builder::new().session(closed("s1", "far")).remote_agent("far");
    let t = builder.start().await;
    let started = tokio::time::Instant::now();
    let a = t.get("/api/sessions/s1/git/status").await;
    assert_eq!(a.status, StatusCode::GATEWAY_TIMEOUT, "{}", a.detail());
    assert!(started.elapsed() >= std::time::Duration::from_secs(60), "{:?}", started.elapsed());
    match far.try_recv() {
        Ok(piface_shared::protocol::ToAgent::Tool {
            call: piface_shared::protocol::ToolCall::GitStatus { dir },
            ..
        }) => {
            assert_eq!(dir, "/w")
        }
        other => panic!("the agent was not asked for the session's git status: {other:?}"),
    }
    drop(far);
    let a = t.get("/api/sessions/s1/git/status").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.detail());
}

// ---- Happy paths that need no pi ----

#[tokio::test]
async fn health_is_public_and_says_what_the_cluster_can_do() {
    let t = TestApp::start().await;
    let a = t.anonymous(Method::GET, "/api/health").send().await;
    assert_eq!((a.status, a.json()), (StatusCode::OK, json!({"status": "ok", "speech": false, "tts": false})));
}

#[tokio::test]
async fn sessions_are_listed_in_creation_order_and_read_one_by_one() {
    let t = Builder::new().session(closed("b", "local")).session(closed("a", "local")).start().await;
    let list = t.get("/api/sessions").await;
    assert_eq!(list.status, StatusCode::OK);
    let sessions = list.json()["sessions"].as_array().unwrap().clone();
    let ids: Vec<&str> = sessions.iter().map(|s| s["piface_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["b", "a"]);
    let one = t.get("/api/sessions/a").await;
    assert_eq!((one.status, &one.json()), (StatusCode::OK, &sessions[1]));
    assert_eq!(one.json()["status"], "closed");
    let empty = TestApp::start().await;
    assert_eq!(empty.get("/api/sessions").await.json(), json!({"sessions": []}));
}

#[tokio::test]
async fn patch_changes_render_markdown_and_the_store_keeps_it() {
    let t = Builder::new().session(closed("s1", "local")).start().await;
    assert!(t.record("s1").unwrap().render_markdown);
    let a = t.send_json(Method::PATCH, "/api/sessions/s1", &json!({"render_markdown": false})).await;
    assert_eq!((a.status, &a.json()["render_markdown"]), (StatusCode::OK, &json!(false)));
    assert!(!t.stored().sessions[0].render_markdown, "written through to the store");
    for body in ["", "{}", r#"{"render_markdown": null}"#] {
        let a = t
            .req(Method::PATCH, "/api/sessions/s1")
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        assert_eq!(
            (a.status, a.detail().as_str()),
            (StatusCode::BAD_REQUEST, "No updatable fields provided"),
            "{body:?}"
        );
    }
    let a = t.send_json(Method::PATCH, "/api/sessions/s1", &json!({"render_markdown": "no"})).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn killing_a_session_whose_pi_is_not_running_returns_its_record() {
    let t = Builder::new().session(closed("s1", "local")).start().await;
    let a = t.req(Method::POST, "/api/sessions/s1/kill").send().await;
    assert_eq!(
        (a.status, &a.json()["piface_id"], &a.json()["status"]),
        (StatusCode::OK, &json!("s1"), &json!("closed"))
    );
}

#[tokio::test]
async fn agents_are_listed_and_only_remote_ones_can_be_removed() {
    let t = Builder::new().local_agent().enrolled("far").start().await;
    let names = |a: &Answer| -> Vec<(String, String)> {
        a.json()["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["name"].as_str().unwrap().to_string(), a["status"].as_str().unwrap_or_default().to_string()))
            .collect()
    };
    let listed = names(&t.get("/api/agents").await);
    assert!(listed.iter().any(|(n, _)| n == "local"), "{listed:?}");
    assert!(listed.iter().any(|(n, _)| n == "far"), "{listed:?}");
    let a = t.req(Method::DELETE, "/api/agents/local").send().await;
    assert_eq!((a.status, a.detail().as_str()), (StatusCode::CONFLICT, "The local agent cannot be removed"));
    let a = t.req(Method::DELETE, "/api/agents/far").send().await;
    assert_eq!((a.status, a.json()), (StatusCode::OK, json!({"removed": "far"})));
    assert!(!names(&t.get("/api/agents").await).iter().any(|(n, _)| n == "far"));
    assert_eq!(t.req(Method::DELETE, "/api/agents/far").send().await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_api_paths_are_404_and_wrong_methods_405_in_the_api_s_shape() {
    let t = TestApp::start().await;
    assert_eq!(t.get("/api/no-such-endpoint").await.status, StatusCode::NOT_FOUND);
    let a = t.req(Method::DELETE, "/api/sessions").send().await;
    assert_eq!((a.status, a.json()), (StatusCode::METHOD_NOT_ALLOWED, json!({"detail": "Method Not Allowed"})));
}

// ---- The login ----

#[tokio::test]
async fn a_browser_trades_the_token_for_a_cookie_and_logging_out_expires_it() {
    let t = TestApp::start().await;
    let token = t.token().unwrap();
    assert_eq!(token.len(), 64);
    let status = |cookie: Option<&str>| {
        let req = t.anonymous(Method::GET, "/api/auth/status");
        let req = match cookie {
            Some(c) => req.header(header::COOKIE, c),
            None => req,
        };
        async move { req.send().await.json() }
    };
    assert_eq!(status(None).await, json!({"authenticated": false, "mode": "token", "user": null}));

    let wrong = t.anonymous(Method::POST, "/api/auth/login").json(&json!({"token": "guess"})).send().await;
    assert_eq!((wrong.status, wrong.header(header::SET_COOKIE)), (StatusCode::UNAUTHORIZED, None));
    let login = t.anonymous(Method::POST, "/api/auth/login").json(&json!({"token": token})).send().await;
    assert_eq!(login.status, StatusCode::NO_CONTENT);
    let set = login.header(header::SET_COOKIE).unwrap().to_string();
    assert!(set.starts_with("piface_auth=") && set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    assert!(!set.contains("Secure"), "plain http: {set}");
    let cookie = set.split(';').next().unwrap();
    assert_eq!(status(Some(cookie)).await["authenticated"], true);
    let with =
        t.anonymous(Method::GET, "/api/sessions").header(header::COOKIE, &format!("other=1; {cookie}")).send().await;
    assert_eq!(with.status, StatusCode::OK);
    // A forged cookie is no login (and no failure).
    let forged = format!("{}0", &cookie[..cookie.len() - 1]);
    let a = t.anonymous(Method::GET, "/api/sessions").header(header::COOKIE, &forged).send().await;
    assert_eq!((a.status, a.detail().starts_with("Login required")), (StatusCode::UNAUTHORIZED, true));

    let logout = t.anonymous(Method::POST, "/api/auth/logout").header(header::COOKIE, cookie).send().await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    let expired = logout.header(header::SET_COOKIE).unwrap();
    assert!(expired.starts_with("piface_auth=;") && expired.contains("Max-Age=0"), "{expired}");

    // Behind a trusted proxy that says https, the cookie is Secure.
    let https = t
        .anonymous(Method::POST, "/api/auth/login")
        .peer("127.0.0.1:40000")
        .header("x-forwarded-proto", "https")
        .json(&json!({"token": token}))
        .send()
        .await;
    assert!(https.header(header::SET_COOKIE).unwrap().ends_with("; Secure"));
}

#[tokio::test]
async fn a_login_link_sets_the_cookie_and_redirects_without_the_token() {
    let t = TestApp::start().await;
    let token = t.token().unwrap();
    let link = t.anonymous(Method::GET, &format!("/session/x?tab=files&token={token}")).send().await;
    assert_eq!((link.status, link.header(header::LOCATION)), (StatusCode::SEE_OTHER, Some("/session/x?tab=files")));
    let cookie = link.header(header::SET_COOKIE).unwrap().split(';').next().unwrap().to_string();
    assert_eq!(
        t.anonymous(Method::GET, "/api/sessions").header(header::COOKIE, &cookie).send().await.status,
        StatusCode::OK
    );
    let bad = t.anonymous(Method::GET, "//evil.example?token=nope").send().await;
    assert_eq!((bad.status, bad.header(header::LOCATION)), (StatusCode::SEE_OTHER, Some("/?login_error=invalid")));
    assert_eq!(bad.header(header::SET_COOKIE), None);
}

#[tokio::test]
async fn failed_logins_past_the_burst_get_429_even_with_the_right_token() {
    let t = TestApp::start().await;
    let token = t.token().unwrap();
    let login = |peer: &'static str, token: String| {
        t.anonymous(Method::POST, "/api/auth/login").peer(peer).json(&json!({"token": token})).send()
    };
    let mut statuses = Vec::new();
    for _ in 0..=crate::auth::FAILURE_BURST {
        statuses.push(login("10.0.0.9:1", "guess".into()).await.status.as_u16());
    }
    let burst = crate::auth::FAILURE_BURST as usize;
    assert!(statuses[..burst].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(statuses[burst], 429, "{statuses:?}");
    let right = login("10.0.0.9:2", token.clone()).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS, "a limited client waits even with the right token");
    assert!(right.header(header::RETRY_AFTER).is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s > 0)));
    let bearer = t
        .anonymous(Method::GET, "/api/sessions")
        .peer("10.0.0.9:3")
        .header(header::AUTHORIZATION, &format!("Bearer {token}"));
    assert_eq!(bearer.send().await.status, StatusCode::TOO_MANY_REQUESTS, "the bearer token too");
    assert_eq!(login("10.0.0.10:1", token).await.status, StatusCode::NO_CONTENT, "another client is not affected");
    assert_eq!(t.anonymous(Method::GET, "/api/health").peer("10.0.0.9:4").send().await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_tailscale_login_counts_only_from_a_trusted_proxy_and_for_listed_users() {
    let t = Builder::new().auth(Mode::Tailscale { users: vec!["alice@example.com".into()] }).start().await;
    let as_user = |peer: &'static str, login: &str, path: &str| {
        t.anonymous(Method::GET, path).peer(peer).header("tailscale-user-login", login).send()
    };
    let alice = as_user("127.0.0.1:1", "alice@example.com", "/api/auth/status").await;
    assert_eq!(alice.json(), json!({"authenticated": true, "mode": "tailscale", "user": "alice@example.com"}));
    assert_eq!(as_user("127.0.0.1:1", "ALICE@example.com", "/api/sessions").await.status, StatusCode::OK);
    let bob = as_user("127.0.0.1:1", "bob@example.com", "/api/sessions").await;
    assert_eq!(bob.status, StatusCode::FORBIDDEN);
    assert!(bob.detail().contains("--tailscale-user"), "{}", bob.detail());
    // From a peer that is no trusted proxy, the header means nothing.
    let spoofed = as_user("10.1.1.1:1", "alice@example.com", "/api/sessions").await;
    assert_eq!(spoofed.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        t.req(Method::GET, "/api/sessions").peer("10.1.1.1:1").send().await.status,
        StatusCode::OK,
        "the token works for scripts"
    );
    // Nor do its forwarded headers make a request https for the Origin check.
    let forged = t
        .req(Method::POST, "/api/auth/logout")
        .peer("10.1.1.1:1")
        .header(header::HOST, "10.0.0.1:7832")
        .header("x-forwarded-proto", "https")
        .header(header::ORIGIN, "https://10.0.0.1:7832")
        .send()
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn with_login_off_the_api_is_open_but_the_host_check_stays() {
    let t = Builder::new().auth(Mode::None).start().await;
    assert_eq!(t.token(), None);
    assert_eq!(t.anonymous(Method::GET, "/api/sessions").send().await.status, StatusCode::OK);
    assert_eq!(t.anonymous(Method::GET, "/api/auth/status").send().await.json()["mode"], "none");
    let evil = t.anonymous(Method::GET, "/api/sessions").header(header::HOST, "evil.example").send().await;
    assert_eq!(evil.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn models_without_any_agent_are_an_empty_list() {
    let t = TestApp::start().await;
    let a = t.get("/api/models").await;
    assert_eq!((a.status, a.header(header::CONTENT_TYPE)), (StatusCode::OK, Some("application/json")));
    assert_eq!(a.json(), json!({"models": []}));
}

#[tokio::test]
async fn metrics_are_prometheus_text_read_from_the_state_at_scrape_time() {
    let t = Builder::new().session(closed("s1", "far")).start().await;
    assert_eq!(t.get("/api/sessions").await.status, StatusCode::OK);
    let a = t.get("/metrics").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header(header::CONTENT_TYPE), Some("text/plain; version=0.0.4"));
    let text = String::from_utf8(a.body.to_vec()).unwrap();
    for line in
        [r#"piface_sessions{state="closed"} 1"#, r#"piface_sessions{state="live"} 0"#, "piface_hub_buffered_bytes 0"]
    {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    // The request before was counted (this one is, once answered).
    assert!(text.contains(r#"piface_http_requests_total{method="GET",status="200"} 1"#), "{text}");
    assert_hardened("/metrics", &a);
}

#[tokio::test]
async fn a_browser_subscribes_to_pushes_mutes_tests_and_unsubscribes() {
    use piface_test_support::push_service::PushService;
    let t = Builder::new().session(closed("s1", "far")).start().await;
    let key = t.get("/api/push/key").await;
    assert_eq!(key.status, StatusCode::OK);
    let public_key = key.json()["public_key"].as_str().unwrap().to_string();
    assert_eq!(t.get("/api/push/key").await.json()["public_key"], public_key, "one key");
    let service = PushService::start().await.unwrap();
    service.expect_key(&public_key);
    let phone = service.subscriber("phone");

    let made = t.send_json(Method::POST, "/api/push/subscriptions", &phone.subscription()).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.detail());
    let id = made.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        made.json(),
        json!({"id": id, "endpoint": phone.endpoint, "created_at": made.json()["created_at"], "muted": false, "muted_sessions": []}),
        "the keys are not shown"
    );
    let url = format!("/api/push/subscriptions/{id}");
    assert_eq!(t.get(&url).await.json()["id"], id.as_str());
    assert_eq!(t.stored().push_subscriptions[&id].endpoint, phone.endpoint);

    // Mutes: a session the coordinator knows, and all.
    let muted = t.send_json(Method::PATCH, &url, &json!({"sessions": {"s1": true}, "muted": true})).await;
    assert_eq!(muted.status, StatusCode::OK, "{}", muted.detail());
    assert_eq!((muted.json()["muted"].clone(), muted.json()["muted_sessions"].clone()), (json!(true), json!(["s1"])));
    let unknown = t.send_json(Method::PATCH, &url, &json!({"sessions": {"nope": true}})).await;
    assert_eq!((unknown.status, unknown.detail().as_str()), (StatusCode::NOT_FOUND, "Session not found: nope"));
    let odd = t.send_json(Method::PATCH, &url, &json!({"mute": true})).await;
    assert_eq!(odd.status, StatusCode::UNPROCESSABLE_ENTITY, "an unknown field is refused: {}", odd.detail());
    // Subscribing again keeps the mutes.
    let again = t.send_json(Method::POST, "/api/push/subscriptions", &phone.subscription()).await;
    assert_eq!((again.json()["id"].as_str(), again.json()["muted"].as_bool()), (Some(id.as_str()), Some(true)));

    // A test goes out whatever the mutes, signed with the key and decryptable by the browser.
    let test = t.req(Method::POST, &format!("{url}/test")).send().await;
    assert_eq!((test.status, test.json()), (StatusCode::OK, json!({"status": 201})), "{}", test.detail());
    let pushes = service.wait_for(1, std::time::Duration::from_secs(20)).await.unwrap();
    assert_eq!(phone.decrypt_json(&pushes[0]).unwrap()["kind"], "test");

    // Bad subscriptions: the body's shape (422 in the list form), the endpoint, the keys.
    for body in [
        json!({"endpoint": phone.endpoint}),
        json!({"endpoint": "http://push.example/x", "keys": phone.subscription()["keys"]}),
        json!({"endpoint": phone.endpoint, "keys": {"p256dh": "AAAA", "auth": "AAAA"}}),
    ] {
        let a = t.send_json(Method::POST, "/api/push/subscriptions", &body).await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", a.detail());
    }
    let big = json!({"endpoint": format!("https://push.example/{}", "x".repeat(20_000)), "keys": phone.subscription()["keys"]});
    assert_eq!(t.send_json(Method::POST, "/api/push/subscriptions", &big).await.status, StatusCode::PAYLOAD_TOO_LARGE);

    assert_eq!(t.req(Method::DELETE, &url).send().await.status, StatusCode::NO_CONTENT);
    assert_eq!(t.req(Method::DELETE, &url).send().await.status, StatusCode::NOT_FOUND);
    assert!(t.stored().push_subscriptions.is_empty());
}
