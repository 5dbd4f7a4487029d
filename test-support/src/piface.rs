//! A harness that runs the real `piface` binary on a free port and talks to it like a browser:
//! HTTP with reqwest, the chat relay with a WebSocket client.
//!
//! Each [`Piface`] has its own data directory and environment; dropping it kills the server.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

/// How long a test waits for any single thing before failing.
pub const WAIT: Duration = Duration::from_secs(60);

/// A running `piface serve` (or one started elsewhere, see [`Piface::attach`]).
pub struct Piface {
    /// The process, when this harness started it.
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Everything the server wrote to stderr so far.
    pub stderr: Arc<Mutex<String>>,
    /// HTTP client.
    pub http: reqwest::Client,
    /// The data directory in use.
    pub data_dir: PathBuf,
    /// Where agents connect, for `piface coordinator`.
    pub quic_addr: Option<String>,
    /// The login token (from the `login:` line), sent by [`Piface::http`] and the WebSocket
    /// helpers; `None` with `--auth none`.
    pub token: Option<String>,
    _data: Option<TempDir>,
}

/// How to start a [`Piface`].
pub struct Options {
    /// The `piface` binary.
    pub bin: PathBuf,
    /// The pi it runs (`--pi-bin`).
    pub pi_bin: PathBuf,
    /// Extra environment (e.g. [`crate::PiEnv::envs`]).
    pub envs: Vec<(String, String)>,
    /// Extra arguments after `serve`.
    pub args: Vec<String>,
    /// Data directory to use (kept by the caller, e.g. across restarts); a fresh temporary one
    /// when `None`.
    pub data_dir: Option<PathBuf>,
}

impl Piface {
    /// Starts `piface serve --port 0` and waits until it listens.
    pub async fn start(opts: Options) -> anyhow::Result<Piface> {
        Piface::start_as("serve", opts).await
    }

    /// Starts `piface coordinator --port 0 --quic 127.0.0.1:0` (plus `opts.args`) and waits
    /// until it listens for browsers and agents.
    pub async fn start_coordinator(mut opts: Options) -> anyhow::Result<Piface> {
        if !opts.args.iter().any(|a| a == "--quic") {
            opts.args.splice(0..0, ["--quic".to_string(), "127.0.0.1:0".to_string()]);
        }
        Piface::start_as("coordinator", opts).await
    }

    async fn start_as(subcommand: &str, opts: Options) -> anyhow::Result<Piface> {
        let (data, data_dir) = match opts.data_dir {
            Some(dir) => (None, dir),
            None => {
                let tmp = tempfile::Builder::new().prefix("piface-data-").tempdir()?;
                let dir = tmp.path().to_path_buf();
                (Some(tmp), dir)
            }
        };
        let mut cmd = Command::new(&opts.bin);
        cmd.arg(subcommand).args(["--port", "0", "--no-direnv"]);
        if !opts.args.iter().any(|a| a == "--host") {
            cmd.args(["--host", "127.0.0.1"]);
        }
        // Sessions must lie inside the agent's file roots (default: home); tests keep their
        // projects in temporary directories.
        let has_agent = subcommand == "serve" || opts.args.iter().any(|a| a == "--local-agent");
        if has_agent && !opts.args.iter().any(|a| a == "--fs-root") {
            cmd.arg("--fs-root").arg(std::env::temp_dir());
        }
        cmd.arg("--data-dir")
            .arg(&data_dir)
            .arg("--pi-bin")
            .arg(&opts.pi_bin)
            .args(&opts.args)
            .envs(opts.envs.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("starting {}", opts.bin.display()))?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let log = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                eprintln!("[piface] {line}");
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut out_lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let first = tokio::time::timeout(WAIT, out_lines.next_line())
            .await
            .context("piface did not start listening in time")??
            .ok_or_else(|| anyhow!("piface exited before listening; stderr:\n{}", stderr.lock().unwrap()))?;
        let base =
            first.strip_prefix("listening on ").ok_or_else(|| anyhow!("unexpected first line: {first}"))?.to_string();
        let auth_none = opts.args.windows(2).any(|w| w[0] == "--auth" && w[1] == "none")
            || opts.args.iter().any(|a| a == "--auth=none");
        let mut token = None;
        if !auth_none {
            let line =
                tokio::time::timeout(WAIT, out_lines.next_line()).await.context("no login line")??.unwrap_or_default();
            let url = line.strip_prefix("login: ").ok_or_else(|| anyhow!("expected the login line, got: {line}"))?;
            let (_, t) = url.split_once("?token=").ok_or_else(|| anyhow!("no token in the login URL {url}"))?;
            token = Some(t.to_string());
        }
        let mut quic_addr = None;
        if subcommand == "coordinator" {
            let line = tokio::time::timeout(WAIT, out_lines.next_line())
                .await
                .context("no agent address")??
                .unwrap_or_default();
            let addr = line.strip_prefix("agents connect to ").and_then(|r| r.split_whitespace().next());
            quic_addr = Some(addr.ok_or_else(|| anyhow!("unexpected second line: {line}"))?.to_string());
        }
        tokio::spawn(async move { while let Ok(Some(_)) = out_lines.next_line().await {} });
        let http = authorized_client(token.as_deref())?;
        Ok(Piface { child: Some(child), base, stderr, http, data_dir, quic_addr, token, _data: data })
    }

    /// A Piface that something else started (a container, say) at `base` (`http://HOST:PORT`),
    /// with its login token; [`Piface::pid`], [`Piface::kill9`] and [`Piface::stop`] have no
    /// process to act on.
    pub fn attach(base: &str, token: Option<String>) -> anyhow::Result<Piface> {
        Ok(Piface {
            child: None,
            base: base.trim_end_matches('/').to_string(),
            stderr: Arc::default(),
            http: authorized_client(token.as_deref())?,
            data_dir: PathBuf::new(),
            quic_addr: None,
            token,
            _data: None,
        })
    }

    /// Sends only the head of a `POST path` announcing a JSON body of `len` bytes (with the
    /// login) and returns the status the server answers before any body byte arrives.
    pub async fn announce_body(&self, path: &str, len: usize) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let authority = self.base.trim_start_matches("http://");
        let mut tcp = tokio::net::TcpStream::connect(authority).await.unwrap();
        let login = self.token.as_deref().map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\n{login}Content-Type: application/json\r\n\
             Content-Length: {len}\r\n\r\n"
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut buf))
            .await
            .expect("no answer to an announced body")
            .unwrap();
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("bad answer {line:?}"))
    }

    /// A WebSocket request for `path` carrying the login token.
    pub fn ws_request(&self, path: &str) -> tokio_tungstenite::tungstenite::handshake::client::Request {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = self.ws_url(path).into_client_request().expect("a valid URL");
        if let Some(token) = &self.token {
            req.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("ASCII"));
        }
        req
    }

    /// Opens a WebSocket on `path` with the login token.
    pub async fn ws(&self, path: &str) -> anyhow::Result<WsClient> {
        WsClient::connect(self.ws_request(path)).await
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().and_then(Child::id).unwrap_or_default()
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The WebSocket URL of `path`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http://", "ws://", 1))
    }

    /// GET → (status, JSON body).
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let resp = self.http.get(self.url(path)).timeout(WAIT).send().await?;
        status_and_json(resp).await
    }

    /// POST with a JSON body → (status, JSON body).
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let resp = self.http.post(self.url(path)).json(body).timeout(WAIT).send().await?;
        status_and_json(resp).await
    }

    /// Creates a session and returns its record, failing unless the answer is 201.
    pub async fn create_session(&self, body: &Value) -> anyhow::Result<Value> {
        let (status, record) = self.post("/api/sessions", body).await?;
        if status != 201 {
            bail!("create session answered {status}: {record}");
        }
        Ok(record)
    }

    /// Creates a session like [`Piface::create_session`] and returns just its id.
    pub async fn new_session(&self, body: &Value) -> String {
        let record = self.create_session(body).await.unwrap();
        record["piface_id"].as_str().expect("records have an id").to_string()
    }

    /// Opens the chat relay of a session and reads its first frame (`piface_session_state`).
    pub async fn connect(&self, session_id: &str) -> anyhow::Result<(WsClient, Value)> {
        let mut ws = self.ws(&format!("/ws/sessions/{session_id}")).await?;
        let state = ws.next().await?;
        Ok((ws, state))
    }

    /// `GET /api/health`: 200 while serving; 503 with `{"status":"standby","leader":…}` on a
    /// standby coordinator; `(0, null)` when nothing answers.
    pub async fn health(&self) -> (u16, Value) {
        self.get("/api/health").await.unwrap_or((0, Value::Null))
    }

    /// Waits until this coordinator serves (leads, with etcd) and says how long that took;
    /// panics after `within`.
    pub async fn wait_leading(&self, within: Duration) -> Duration {
        let start = std::time::Instant::now();
        while start.elapsed() < within {
            if self.health().await.0 == 200 {
                return start.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{} did not lead within {within:?}: {:?}", self.base, self.health().await);
    }

    /// Waits until the agent `name` is up (linked and said hello) on this coordinator; panics
    /// after [`WAIT`].
    pub async fn wait_agent_up(&self, name: &str) {
        let start = std::time::Instant::now();
        while start.elapsed() < WAIT {
            let (status, body) = self.get("/api/agents").await.unwrap_or((0, Value::Null));
            let up = body["agents"].as_array().is_some_and(|list| {
                list.iter().any(|a| a["name"] == name && a["status"] == "up" && a["hostname"].is_string())
            });
            if status == 200 && up {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("agent {name} did not come up on {}", self.base);
    }

    /// Reads the history of session `id` through its socket (`piface_get_history`) until the
    /// text of its last message is `want`, for up to 20 s; returns the last text it read. The
    /// session must stay live meanwhile (a turn finishing after a takeover or a restart).
    pub async fn wait_for_answer(&self, id: &str, want: &str) -> String {
        let mut last_text = String::new();
        for _ in 0..100 {
            let record = self.get(&format!("/api/sessions/{id}")).await.unwrap().1;
            assert_eq!(record["status"], "live", "{record}");
            let (mut ws, state) = self.connect(id).await.unwrap();
            assert_eq!(state["type"], "piface_session_state");
            ws.send(&serde_json::json!({"type": "piface_get_history"})).await.unwrap();
            let replay = ws.until_type("piface_replay").await.unwrap().pop().unwrap();
            let messages = replay["messages"].as_array().unwrap();
            last_text = messages.last().map(assistant_text).unwrap_or_default();
            if last_text == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        last_text
    }

    /// SIGKILL (no chance to clean up), then wait for the exit.
    pub async fn kill9(mut self) -> anyhow::Result<()> {
        let child = self.child.as_mut().context("not started here")?;
        child.start_kill()?;
        tokio::time::timeout(WAIT, child.wait()).await??;
        Ok(())
    }

    /// SIGTERM, then wait for the exit.
    pub async fn stop(mut self) -> anyhow::Result<std::process::ExitStatus> {
        let child = self.child.as_mut().context("not started here")?;
        if let Some(pid) = child.id() {
            send_signal(pid, "TERM");
        }
        Ok(tokio::time::timeout(WAIT, child.wait()).await??)
    }
}

/// An HTTP client that sends `Authorization: Bearer <token>` on every request.
pub fn authorized_client(token: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse()?);
    }
    Ok(reqwest::Client::builder().default_headers(headers).build()?)
}

/// Sends a signal with the `kill` command (keeps this crate free of libc).
fn send_signal(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
}

async fn status_and_json(resp: reqwest::Response) -> anyhow::Result<(u16, Value)> {
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, body))
}

/// A WebSocket client speaking JSON text frames.
pub struct WsClient {
    inner: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    /// Bytes of text frames received.
    pub bytes: usize,
}

/// What [`WsClient::next_frame`] returns.
#[derive(Debug)]
pub enum Frame {
    /// A text frame parsed as JSON.
    Json(Value),
    /// The server closed the socket with this code and reason.
    Closed(Option<u16>, String),
}

impl WsClient {
    /// Connects (`request`: a URL, or a request with headers such as [`Piface::ws_request`]).
    pub async fn connect(
        request: impl tokio_tungstenite::tungstenite::client::IntoClientRequest + Unpin,
    ) -> anyhow::Result<WsClient> {
        // pi lines may be 64 MiB; the library's default limit is 16 MiB.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(80 << 20))
            .max_frame_size(Some(80 << 20));
        let (inner, _) =
            tokio::time::timeout(WAIT, tokio_tungstenite::connect_async_with_config(request, Some(config), false))
                .await??;
        Ok(WsClient { inner, bytes: 0 })
    }

    /// Sends a JSON value as a text frame.
    pub async fn send(&mut self, value: &Value) -> anyhow::Result<()> {
        self.send_text(&value.to_string()).await
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        Ok(self.inner.send(Message::text(text)).await?)
    }

    /// The next text frame or the close.
    pub async fn next_frame(&mut self) -> anyhow::Result<Frame> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.inner.next()).await.context("no frame within the wait")?;
            match msg {
                None => return Ok(Frame::Closed(None, String::new())),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(t))) => {
                    self.bytes += t.len();
                    return Ok(Frame::Json(
                        serde_json::from_str(t.as_str())
                            .with_context(|| format!("frame is not JSON: {}", preview(t.as_str())))?,
                    ));
                }
                Some(Ok(Message::Close(c))) => {
                    return Ok(Frame::Closed(
                        c.as_ref().map(|c| c.code.into()),
                        c.map(|c| c.reason.to_string()).unwrap_or_default(),
                    ))
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next text frame decoded as `T` (a struct naming only the fields a test reads: the
    /// rest is skipped without building a `Value`, for turns of hundreds of megabytes).
    pub async fn next_as<T: serde::de::DeserializeOwned>(&mut self) -> anyhow::Result<T> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.inner.next()).await.context("no frame within the wait")?;
            match msg.context("socket closed")?? {
                Message::Text(t) => {
                    self.bytes += t.len();
                    return serde_json::from_str(t.as_str())
                        .with_context(|| format!("unexpected frame: {}", preview(t.as_str())));
                }
                Message::Close(c) => bail!("socket closed ({c:?})"),
                _ => continue,
            }
        }
    }

    /// The next JSON frame; an error if the socket closes.
    pub async fn next(&mut self) -> anyhow::Result<Value> {
        match self.next_frame().await? {
            Frame::Json(v) => Ok(v),
            Frame::Closed(code, reason) => bail!("socket closed ({code:?}, {reason})"),
        }
    }

    /// Frames up to and including the first of type `kind`.
    pub async fn until_type(&mut self, kind: &str) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            let v = self.next().await?;
            let done = v["type"] == kind;
            out.push(v);
            if done {
                return Ok(out);
            }
        }
    }

    /// Closes the socket.
    pub async fn close(mut self) {
        let _ = self.inner.close(None).await;
    }
}

fn preview(s: &str) -> &str {
    &s[..s.len().min(200)]
}

/// A binary of this workspace in the same target directory as the running test, built (once
/// per process) so that it is current: `cargo test -p piface-coordinator` alone, or `cargo
/// bench`, does not build test-support's binaries, and a stale one would test old code.
pub fn workspace_bin(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test-binary>
    let dir =
        exe.parent().and_then(Path::parent).ok_or_else(|| anyhow!("unexpected test binary path {}", exe.display()))?;
    let path = dir.join(name);
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "-q", "-p", "piface-test-support", "--bin", name]).current_dir(crate::workspace_root());
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().context("running cargo build")?;
        if !status.success() || !path.exists() {
            bail!("could not build {name}");
        }
        built.push(name.to_string());
    }
    Ok(path)
}

/// Text of the last assistant message in a list of pi messages.
pub fn assistant_text(message: &Value) -> String {
    message["content"]
        .as_array()
        .map(|parts| parts.iter().filter(|p| p["type"] == "text").filter_map(|p| p["text"].as_str()).collect())
        .unwrap_or_default()
}

/// The `type` of each event.
pub fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap_or("?")).collect()
}

/// The transcript a client builds: a replay replaces it, each `message_end` appends.
pub fn transcript(events: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for e in events {
        match e["type"].as_str() {
            Some("piface_replay") => out = e["messages"].as_array().unwrap().clone(),
            Some("message_end") => out.push(e["message"].clone()),
            _ => {}
        }
    }
    out
}

/// A temp directory holding a git repository with one commit.
pub fn git_repo() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("piface-repo-").tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    std::fs::write(dir.path().join("README.md"), "hello\n").unwrap();
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-q", "-m", "init"]);
    dir
}

/// Runs `git args` in `dir` with a fixed identity, failing the test on a non-zero exit.
pub fn git(dir: &std::path::Path, args: &[&str]) {
    let ok = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

/// A join token for the cluster whose coordinator keeps its files in `data_dir`
/// (`piface token create`, valid ten minutes).
pub fn join_token(bin: &Path, data_dir: &Path) -> anyhow::Result<String> {
    let out = std::process::Command::new(bin)
        .args(["token", "create", "--ttl", "10m", "--data-dir"])
        .arg(data_dir)
        .output()?;
    if !out.status.success() {
        bail!("piface token create: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// How to start a `piface agent` process (see [`AgentProcess::spawn`]).
pub struct AgentProcess {
    /// The `piface` binary.
    pub bin: PathBuf,
    /// The pi it runs.
    pub pi_bin: PathBuf,
    /// `--coordinator`: one or more QUIC addresses, comma-separated.
    pub coordinators: String,
    /// `--name`.
    pub name: String,
    /// `--data-dir` (its identity, once enrolled); the join token is written in there.
    pub data_dir: PathBuf,
    /// A join token, for the first start.
    pub token: Option<String>,
    /// Extra environment (e.g. [`crate::PiEnv::envs`]).
    pub envs: Vec<(String, String)>,
    /// Extra arguments.
    pub args: Vec<String>,
}

impl AgentProcess {
    /// Starts the agent (its projects may lie under the temporary directory; no speech or TTS
    /// unless `args` say otherwise); it is killed when the handle is dropped.
    pub fn spawn(&self) -> anyhow::Result<Child> {
        std::fs::create_dir_all(&self.data_dir)?;
        let token_file = self.data_dir.join("join-token");
        if let Some(token) = &self.token {
            std::fs::write(&token_file, format!("{token}\n"))?;
        }
        let mut cmd = Command::new(&self.bin);
        cmd.args(["agent", "--coordinator", &self.coordinators, "--name", &self.name])
            .arg("--token-file")
            .arg(&token_file)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--pi-bin")
            .arg(&self.pi_bin)
            .arg("--fs-root")
            .arg(std::env::temp_dir());
        let audio_given = self.args.iter().any(|a| a.contains("speech") || a.contains("tts"));
        if !audio_given {
            cmd.args(["--no-speech", "--no-tts"]);
        }
        cmd.args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true);
        cmd.spawn().with_context(|| format!("starting {} agent", self.bin.display()))
    }
}

/// Makes the coordinator data dir `to` a standby of the cluster whose first coordinator keeps
/// its files in `from`: copies the private keys etcd never holds (`cluster/`) and the login
/// (`auth/`), as the README tells users to.
pub fn share_cluster(from: &Path, to: &Path) -> anyhow::Result<()> {
    for part in ["cluster", "auth"] {
        copy_dir(&from.join(part), &to.join(part))?;
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
