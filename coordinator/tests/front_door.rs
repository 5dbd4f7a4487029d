//! The front door of the real binary, for what only a real server shows: the names it fills in
//! from the machine and its flags (Host allow-list), the token it prints and rotation by the CLI,
//! peer addresses from the accept loop (Tailscale identity from a trusted proxy only), and the
//! limits on sockets and connections. Every route's checks (login, Host, Origin, body limits)
//! are walked in process: `coordinator/src/api/tests.rs`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use piface_test_support::netns::NetNs;
use piface_test_support::piface::{workspace_bin, Options, Piface};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite;

const PIFACE: &str = env!("CARGO_BIN_EXE_piface");

async fn start(subcommand: &str, args: &[&str]) -> Piface {
    let opts = Options {
        bin: PIFACE.into(),
        pi_bin: workspace_bin("fake-pi").unwrap(),
        envs: vec![],
        args: args.iter().map(|s| s.to_string()).collect(),
        data_dir: None,
    };
    match subcommand {
        "serve" => Piface::start(opts).await.unwrap(),
        _ => Piface::start_coordinator(opts).await.unwrap(),
    }
}

fn authority(server: &Piface) -> String {
    server.base.trim_start_matches("http://").to_string()
}

fn port(server: &Piface) -> String {
    authority(server).rsplit_once(':').unwrap().1.to_string()
}

fn this_hostname() -> String {
    nix::unistd::gethostname().unwrap().into_string().unwrap()
}

/// A WebSocket upgrade with these extra headers → its HTTP status (101 when it opened).
async fn upgrade_status(server: &Piface, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut req = server.ws_request(path);
    for (k, v) in headers {
        req.headers_mut().insert(tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((_, resp)) => resp.status().as_u16(),
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("upgrade failed without an HTTP answer: {e}"),
    }
}

#[tokio::test]
async fn a_rebound_name_is_refused_and_the_machines_own_names_are_served_by_serve_and_coordinator() {
    for (kind, extra) in [("serve", vec!["--allowed-host", "box.tail1234.ts.net"]), ("coordinator", vec![])] {
        let server = start(kind, &extra).await;
        let port = port(&server);
        let evil = format!("evil.example:{port}");
        let dir = tempfile::tempdir().unwrap();

        // The reproduction: a page on a name rebound to 127.0.0.1 posting "same-origin".
        let resp = server
            .http
            .post(server.url("/api/sessions"))
            .header("host", &evil)
            .header("origin", format!("http://{evil}"))
            .json(&json!({"working_dir": dir.path(), "shared": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403, "{kind}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains("--allowed-host evil.example"), "{kind}: {body}");
        // Every route and method, the UI and upgrades are walked in process
        // (`coordinator/src/api/tests.rs`); here the names the binary fills in from the machine
        // and the flags.
        let get = |host: String, path: &'static str| {
            let req = server.http.get(server.url(path)).header("host", host);
            async move { req.send().await.unwrap().status().as_u16() }
        };

        // Names that are this machine's.
        for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("[::1]:{port}"), this_hostname()]
        {
            assert_eq!(get(host.clone(), "/api/sessions").await, 200, "{kind}: {host}");
        }
        let ts = format!("box.tail1234.ts.net:{port}");
        assert_eq!(get(ts.clone(), "/api/sessions").await, if kind == "serve" { 200 } else { 403 }, "{kind}");
    }
}

/// The login of the real binary: the token it prints, the token file, `piface agent list`
/// reading it, and rotation by `piface auth token --rotate` ending the logins of a running
/// server. The route table's walk, cookies, login links, logout and the rate limit are checked
/// in process (`coordinator/src/api/tests.rs`).
#[tokio::test]
async fn the_printed_token_logs_in_and_rotating_it_ends_every_login() {
    let server = start("serve", &[]).await;
    let token = server.token.clone().expect("the login line");
    assert_eq!(token.len(), 64);
    let anonymous = reqwest::Client::new();
    assert_eq!(anonymous.get(server.url("/api/sessions")).send().await.unwrap().status(), 401);
    assert_eq!(server.get("/api/sessions").await.unwrap().0, 200, "the printed token is the login");
    let browser = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let login = browser.post(server.url("/api/auth/login")).json(&json!({"token": token})).send().await.unwrap();
    assert_eq!(login.status(), 204);
    assert_eq!(browser.get(server.url("/api/sessions")).send().await.unwrap().status(), 200);

    // Scripts on the coordinator's machine: `piface agent list` reads the token itself.
    let out = std::process::Command::new(PIFACE)
        .args(["agent", "list", "--url", &server.base, "--data-dir"])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("local"), "{}", String::from_utf8_lossy(&out.stdout));

    // The token file and everything else in the data dir are private.
    assert_private(&server.data_dir);
    let token_file = server.data_dir.join("auth/token");
    assert_eq!(std::fs::read_to_string(&token_file).unwrap().trim(), token);

    // Rotation: browsers are logged out within a second or so, the old token stops working.
    let out = std::process::Command::new(PIFACE)
        .args(["auth", "token", "--rotate", "--data-dir"])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let new_token = String::from_utf8_lossy(&out.stdout).lines().next().unwrap().to_string();
    assert_ne!(new_token, token);
    let mut logged_out = false;
    for _ in 0..50 {
        if browser.get(server.url("/api/sessions")).send().await.unwrap().status() == 401 {
            logged_out = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(logged_out, "the rotated token ends browser sessions");
    assert_eq!(server.get("/api/sessions").await.unwrap().0, 401, "the old bearer token");
    let renewed = piface_test_support::piface::authorized_client(Some(&new_token)).unwrap();
    assert_eq!(renewed.get(server.url("/api/sessions")).send().await.unwrap().status(), 200);
}

fn assert_private(dir: &Path) {
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            assert_private(&entry.path());
        } else if kind.is_file() {
            assert_eq!(mode(&entry.path()), 0o600, "{}", entry.path().display());
        }
    }
}

#[tokio::test]
async fn tailscale_identity_counts_only_from_a_trusted_proxy() {
    let ns = NetNs::new();
    let server =
        start("serve", &["--host", "0.0.0.0", "--auth", "tailscale", "--tailscale-user", "alice@example.com"]).await;
    let port = port(&server);
    let anonymous = reqwest::Client::new();
    let as_user = |login: &'static str| {
        let req = anonymous.get(server.url("/api/auth/status")).header("tailscale-user-login", login);
        async move { req.send().await.unwrap() }
    };
    // From loopback (where `tailscale serve` connects from): an allowed login is in.
    let alice: Value = as_user("alice@example.com").await.json().await.unwrap();
    assert_eq!(alice, json!({"authenticated": true, "mode": "tailscale", "user": "alice@example.com"}));
    // Users not listed, the token, and peers that are no proxy are checked in process
    // (`coordinator/src/api/tests.rs`); here the peer is the one the accept loop saw.

    // The same header from another machine (a network namespace) is ignored.
    let from_ns = |path: &str, extra: &[&str]| {
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &ns.name, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10"]);
        cmd.args(["-H", "Tailscale-User-Login: alice@example.com", "-H", "X-Forwarded-For: 127.0.0.1"]);
        cmd.args(extra);
        cmd.arg(format!("http://{}:{port}{path}", ns.host_ip));
        let out = cmd.output().expect("curl");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(from_ns("/api/sessions", &[]), "401");
    assert_eq!(from_ns("/api/health", &[]), "200", "the namespace does reach the server");
    // Nor does it make its requests https or another host for the Origin check.
    let origin = format!("https://{}:{port}", ns.host_ip);
    let forged = ["-X", "POST", "-H", "X-Forwarded-Proto: https", "-H"];
    let mut args = forged.to_vec();
    let origin_header = format!("Origin: {origin}");
    args.push(&origin_header);
    assert_eq!(from_ns("/api/auth/logout", &args), "403");
}

#[tokio::test]
async fn one_past_each_limit_gets_a_clear_error_and_the_server_stays_healthy() {
    let server = start(
        "serve",
        &[
            "--max-ws-per-session",
            "2",
            "--max-sessions-per-agent",
            "1",
            "--max-ws-message-mib",
            "1",
            "--header-timeout",
            "1",
            "--max-upload-mib",
            "1",
        ],
    )
    .await;
    // A fresh connection each time: with a 1 s header timeout, a pooled keep-alive connection
    // may be closed by the server just as the client reuses it.
    let fresh = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let healthy = || {
        let req = fresh.get(server.url("/api/health"));
        async move { req.send().await.unwrap().status() == 200 }
    };
    let dir = tempfile::tempdir().unwrap();
    let id = server.new_session(&json!({"working_dir": dir.path()})).await;

    // Sessions per agent.
    let (status, body) = server.post("/api/sessions", &json!({"working_dir": dir.path()})).await.unwrap();
    assert_eq!(status, 429, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("--max-sessions-per-agent"), "{body}");
    assert!(healthy().await);

    // WebSockets per session: chat and terminal count together.
    let (mut chat, _) = server.connect(&id).await.unwrap();
    let (term, _) =
        tokio_tungstenite::connect_async(server.ws_request(&format!("/ws/sessions/{id}/terminal"))).await.unwrap();
    assert_eq!(upgrade_status(&server, &format!("/ws/sessions/{id}"), &[]).await, 429);
    drop(term);
    // A slot frees when a socket closes.
    let mut opened = false;
    for _ in 0..50 {
        if upgrade_status(&server, &format!("/ws/sessions/{id}/terminal"), &[]).await == 101 {
            opened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(opened, "a closed socket frees its slot");
    assert!(healthy().await);

    // A message over the size limit closes that socket with 1009 and says why.
    chat.send_text(&"x".repeat((1 << 20) + 1)).await.unwrap();
    match chat.next_frame().await.unwrap() {
        piface_test_support::piface::Frame::Closed(code, reason) => {
            assert_eq!(code, Some(1009), "{reason}");
            assert!(reason.contains("at most 1048576 bytes"), "{reason}");
        }
        other => panic!("expected a close, got {other:?}"),
    }
    // Its slot frees once the server has let it finish (about a second).
    let mut again = None;
    for _ in 0..50 {
        if let Ok((ws, _)) = server.connect(&id).await {
            again = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut again = again.expect("the session accepts a new socket");
    again.send(&json!({"type": "get_state", "id": "s1"})).await.unwrap();
    assert!(healthy().await);

    // Slowloris: headers that never end are cut after the header timeout.
    let mut tcp = tokio::net::TcpStream::connect(authority(&server)).await.unwrap();
    tcp.write_all(format!("GET /api/health HTTP/1.1\r\nHost: {}\r\nX-Slow: ", authority(&server)).as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await;
    match read {
        Ok(Ok(n)) => {
            let answer = String::from_utf8_lossy(&buf[..n]);
            assert!(n == 0 || answer.starts_with("HTTP/1.1 408"), "the connection was cut: {answer:?}")
        }
        Ok(Err(_)) => {}
        Err(_) => panic!("a connection trickling its headers was kept open past the header timeout"),
    }
    assert!(healthy().await);

    // The JSON upload path is bounded like the multipart one: refused from its length.
    assert_eq!(server.announce_body(&format!("/api/sessions/{id}/uploads"), 64 << 20).await, 413);
    assert!(healthy().await);
    let _ = again.next().await;
    drop(chat);
}

#[tokio::test]
async fn login_is_off_only_when_asked_and_then_says_so() {
    let server = start("serve", &["--auth", "none"]).await;
    assert_eq!(server.token, None);
    assert_eq!(reqwest::get(server.url("/api/sessions")).await.unwrap().status(), 200);
    let status: Value = reqwest::get(server.url("/api/auth/status")).await.unwrap().json().await.unwrap();
    assert_eq!(status["mode"], "none");
    assert!(server.stderr.lock().unwrap().contains("LOGIN IS OFF"));
    // The Host check stays on.
    let resp = reqwest::Client::new().get(server.url("/api/sessions")).header("host", "evil.example").send().await;
    assert_eq!(resp.unwrap().status(), 403);
}
