//! In-process coordinators for tests: an [`App`] over a store in a temporary directory and the
//! real router ([`crate::app_router`]: the route table, the UI fallback, the front door), driven
//! request by request with `tower::ServiceExt::oneshot`. No listener, no binary, no pi.
//!
//! What it offers: a login of either mode (token by default; requests carry the bearer token
//! unless made [`TestApp::anonymous`]), records seeded into the store's snapshot, the real
//! in-process agent over a temporary file root ([`Builder::local_agent`]), and remote agents
//! whose link is a channel the test holds ([`Builder::remote_agent`]).
//!
//! What it is not: a server. Anything that needs a socket (upgrades, header timeouts, peer
//! addresses from the accept loop, signals) stays with the binary tests in `coordinator/tests/`.
//! A request's peer can still be set ([`Req::peer`]), as the accept loop's `ConnectInfo` would.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use bytes::Bytes;
use piface_shared::protocol::ToAgent;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::agent_link::AgentHandle;
use crate::record::SessionRecord;
use crate::{App, Config};

/// The `Host` every request carries unless a test sets another: a loopback address, which the
/// front door allows.
pub const HOST: &str = "127.0.0.1:7832";

/// How a [`TestApp`] is made.
pub struct Builder {
    config: Config,
    sessions: Vec<SessionRecord>,
    enrolled: Vec<String>,
    remotes: Vec<(String, mpsc::Sender<ToAgent>)>,
    local_agent: bool,
    dir: tempfile::TempDir,
}

/// A coordinator in this process, with its temporary directories.
pub struct TestApp {
    /// The state every handler gets.
    pub app: Arc<App>,
    /// The whole HTTP surface.
    pub router: axum::Router,
    /// The local agent's file root (`<tmp>/root`; with [`Builder::local_agent`]).
    pub root: PathBuf,
    /// A directory beside the root, outside it (`<tmp>/outside`).
    pub outside: PathBuf,
    _dir: tempfile::TempDir,
}

/// A request being made; [`Req::send`] runs it through the router.
pub struct Req {
    router: axum::Router,
    request: Request<Body>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

/// A session record from its JSON form (`piface_id` and `working_dir` at least).
pub fn record(json: Value) -> SessionRecord {
    serde_json::from_value(json).expect("a session record")
}

impl Builder {
    /// Login by token, no agent, nothing stored; the file root and `outside` exist, empty. The
    /// data dir is inside the root (`<root>/data`), so tests can see that it is never served.
    pub fn new() -> Builder {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        let mut config = Config::new(dir.path().join("no-pi"), root.join("data"));
        config.local_agent = false;
        config.probe_models_at_start = false;
        config.fs_roots = vec![root];
        Builder { config, sessions: Vec::new(), enrolled: Vec::new(), remotes: Vec::new(), local_agent: false, dir }
    }

    /// Changes the configuration.
    pub fn config(mut self, f: impl FnOnce(&mut Config)) -> Builder {
        f(&mut self.config);
        self
    }

    /// `--auth`.
    pub fn auth(self, mode: crate::auth::Mode) -> Builder {
        self.config(|c| c.auth = mode)
    }

    /// A record the store holds at start.
    pub fn session(mut self, record: SessionRecord) -> Builder {
        self.sessions.push(record);
        self
    }

    /// An agent enrolled in the store (not connected).
    pub fn enrolled(mut self, name: &str) -> Builder {
        self.enrolled.push(name.to_string());
        self
    }

    /// The real in-process agent, as `serve` runs it, with the root as its only `--fs-root`.
    /// Its pi does not exist: what needs one fails as a missing pi does.
    pub fn local_agent(mut self) -> Builder {
        self.local_agent = true;
        self
    }

    /// A connected agent `name` whose commands arrive on the receiver the test holds; it
    /// answers nothing unless the test does.
    pub fn remote_agent(mut self, name: &str) -> (Builder, mpsc::Receiver<ToAgent>) {
        let (tx, rx) = mpsc::channel(64);
        self.remotes.push((name.to_string(), tx));
        (self, rx)
    }

    /// Makes the app and its router.
    pub async fn start(self) -> TestApp {
        let Builder { config, sessions, enrolled, remotes, local_agent, dir } = self;
        let store = crate::open_store(&config.data_dir).expect("the store opens");
        let auth = crate::auth::Auth::new(config.auth.clone(), &config.data_dir).expect("the login");
        let enrolled: BTreeMap<String, crate::store::AgentRecord> =
            enrolled.into_iter().map(|name| (name.clone(), agent_record(&name))).collect();
        let snapshot = crate::store::Snapshot { sessions, ..Default::default() };
        let local = local_agent.then(|| crate::LocalAgent::spawn(&config));
        let app = App::new(config, store, snapshot, enrolled, auth, CancellationToken::new());
        if let Some(local) = local {
            local.connect(&app).await.expect("the local agent comes up");
        }
        for (name, tx) in remotes {
            app.agents.up(&name, Arc::new(AgentHandle::new(tx)), None);
        }
        let router = crate::app_router(app.clone());
        TestApp { app, router, root: dir.path().join("root"), outside: dir.path().join("outside"), _dir: dir }
    }
}

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

fn agent_record(name: &str) -> crate::store::AgentRecord {
    crate::store::AgentRecord {
        name: name.to_string(),
        cert_fingerprint: "00".repeat(32),
        enrolled_at: "2026-12-05T00:00:00Z".into(),
    }
}

impl TestApp {
    /// [`Builder::new`]'s app.
    pub async fn start() -> TestApp {
        Builder::new().start().await
    }

    /// The login token (none with `--auth none`).
    pub fn token(&self) -> Option<String> {
        self.app.auth.token()
    }

    /// A request with the bearer token (when there is one) and the loopback `Host`.
    pub fn req(&self, method: Method, path: &str) -> Req {
        let req = self.anonymous(method, path);
        match self.token() {
            Some(token) => req.header(header::AUTHORIZATION, &format!("Bearer {token}")),
            None => req,
        }
    }

    /// A request without credentials, with the loopback `Host`.
    pub fn anonymous(&self, method: Method, path: &str) -> Req {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, HOST)
            .body(Body::empty())
            .expect("a valid request");
        Req { router: self.router.clone(), request }
    }

    /// `GET path` with the token.
    pub async fn get(&self, path: &str) -> Answer {
        self.req(Method::GET, path).send().await
    }

    /// `method path` with the token and a JSON body.
    pub async fn send_json(&self, method: Method, path: &str, body: &Value) -> Answer {
        self.req(method, path).json(body).send().await
    }

    /// The record the app holds for `id`.
    pub fn record(&self, id: &str) -> Option<SessionRecord> {
        self.app.registry.get(id)
    }

    /// What the store would give a restarted coordinator.
    pub fn stored(&self) -> crate::store::Snapshot {
        self.app.store.load().expect("the store reads")
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.app.config.data_dir
    }
}

impl Req {
    /// Sets a header (replacing one of the same name).
    pub fn header(mut self, name: impl TryInto<HeaderName>, value: &str) -> Req {
        let name = name.try_into().unwrap_or_else(|_| panic!("a valid header name"));
        self.request.headers_mut().insert(name, HeaderValue::from_str(value).expect("a valid header value"));
        self
    }

    /// A JSON body, with its content type.
    pub fn json(self, value: &Value) -> Req {
        self.header(header::CONTENT_TYPE, "application/json").body(value.to_string())
    }

    /// A body as given (no content type, no length: it streams as far as the router is concerned).
    pub fn body(mut self, body: impl Into<Body>) -> Req {
        *self.request.body_mut() = body.into();
        self
    }

    /// The TCP peer the accept loop would have seen.
    pub fn peer(mut self, addr: &str) -> Req {
        let addr: SocketAddr = addr.parse().expect("ip:port");
        self.request.extensions_mut().insert(ConnectInfo(addr));
        self
    }

    /// Runs the request through the router and reads the whole response.
    pub async fn send(self) -> Answer {
        let response = self.router.oneshot(self.request).await.expect("the router is infallible");
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.expect("the body reads");
        Answer { status: parts.status, headers: parts.headers, body }
    }
}

impl Answer {
    /// The body as JSON (panics, with the body, when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {}", self.status, String::from_utf8_lossy(&self.body)))
    }

    /// The error's `detail` as text: the string, or the messages of FastAPI's list form.
    pub fn detail(&self) -> String {
        match &self.json()["detail"] {
            Value::String(s) => s.clone(),
            Value::Array(items) => items.iter().filter_map(|i| i["msg"].as_str()).collect::<Vec<_>>().join("; "),
            other => panic!("no detail in {}: {other}", String::from_utf8_lossy(&self.body)),
        }
    }

    /// A header as text.
    pub fn header(&self, name: impl axum::http::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}
