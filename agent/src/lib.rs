//! The Piface agent: everything that must happen on the machine where the files are.
//!
//! For now that is the pi runtime: starting `pi --mode rpc` for sessions ([`child`]), relaying
//! its output as [`FromAgent::Events`], feeding it commands, killing it, running `!!` shell
//! commands ([`shell`]) and probing pi's model list. The agent speaks only the protocol of
//! `piface-shared`; it has no HTTP and no idea of browsers.
//!
//! [`spawn`] starts an agent as a task that talks over a pair of bounded channels. `piface
//! serve` wires those channels straight into the coordinator (the in-process link); a
//! networked transport carries the same messages through the codec.

pub mod archive;
pub mod child;
pub mod cli;
pub mod gpu;
pub mod history;
pub mod lines;
pub mod link;
pub mod models;
pub mod paths;
pub mod shell;
pub mod speech;
pub mod tools;
pub mod tts;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use piface_shared::protocol::{FromAgent, Hello, SessionId, SpawnError, SpawnSpec, ToAgent};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn, Instrument};

pub use child::PiProcess;

/// Settings of an agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The pi executable (a path or a name looked up on PATH).
    pub pi_bin: PathBuf,
    /// How long a new pi may take to answer its first command.
    pub start_timeout: Duration,
    /// Time between SIGTERM and SIGKILL when stopping pi.
    pub kill_grace: Duration,
    /// Longest run of a `!!` command before it is killed.
    pub shell_timeout: Duration,
    /// Working directory of the throw-away pi that lists models.
    pub probe_dir: PathBuf,
    /// Directories the file endpoints may reach (`--fs-root`); also where sessions, worktrees
    /// and `direnv allow` may be.
    pub fs_roots: Vec<PathBuf>,
    /// Piface's own directories (data dirs, the agent's identity): never listed or served, even
    /// inside a root (their `worktrees/` subdirectory excepted).
    pub private_dirs: Vec<PathBuf>,
    /// The agent's own state (the trusted workspace files); private like `private_dirs`.
    pub state_dir: PathBuf,
    /// The speech-to-text model to serve to the cluster, if any.
    pub speech: Option<ServiceConfig>,
    /// The text-to-speech model to serve to the cluster, if any.
    pub tts: Option<ServiceConfig>,
}

/// A model an agent serves to the cluster.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// A path, or a Hugging Face repo id (`org/name[@revision]`).
    pub model: String,
    /// The GPU to run on (its CUDA ordinal in this process); `None`: the CPU.
    pub gpu: Option<piface_shared::protocol::GpuInfo>,
    /// Fetch a repo id missing from the local cache (never under `HF_HUB_OFFLINE`).
    pub download: bool,
}

impl ServiceConfig {
    /// A model on the CPU, fetched when missing.
    pub fn cpu(model: impl Into<String>) -> ServiceConfig {
        ServiceConfig { model: model.into(), gpu: None, download: true }
    }

    /// `cpu` or `cuda:N (name)`, as advertised.
    pub fn device_label(&self) -> String {
        match &self.gpu {
            Some(g) if cfg!(feature = "cuda") => format!("cuda:{} ({})", g.index, g.name),
            Some(_) => "cpu (this build has no CUDA)".into(),
            None => "cpu".into(),
        }
    }
}

impl AgentConfig {
    /// Defaults for a given pi binary.
    pub fn new(pi_bin: PathBuf) -> AgentConfig {
        AgentConfig {
            pi_bin,
            start_timeout: Duration::from_secs(30),
            kill_grace: Duration::from_secs(5),
            shell_timeout: Duration::from_secs(600),
            probe_dir: std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/".into()),
            fs_roots: std::env::var_os("HOME").map(PathBuf::from).into_iter().collect(),
            private_dirs: default_private_dirs(),
            state_dir: default_data_home().join("piface-agent"),
            speech: None,
            tts: None,
        }
    }

    /// The record of trusted workspace files, in [`AgentConfig::state_dir`].
    pub fn trust(&self) -> tools::trust::TrustStore {
        tools::trust::TrustStore::new(&self.state_dir)
    }
}

/// `~/.local/share` (where both Piface data dirs live by default).
fn default_data_home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/".into()).join(".local/share")
}

/// The default data dirs of a coordinator (`~/.local/share/piface`, also the original's) and of
/// an agent (`~/.local/share/piface-agent`): private on every machine, whatever this process
/// was told, since another Piface of the same user may keep its keys there.
pub fn default_private_dirs() -> Vec<PathBuf> {
    let base = default_data_home();
    vec![base.join("piface"), base.join("piface-agent")]
}

/// Depth of the agent's control queue (replies and notices; events have their own streams).
const OUTBOUND_DEPTH: usize = 256;

/// The coordinator's ends of an agent started with [`spawn`].
pub struct AgentLink {
    /// Commands to the agent. Dropping it shuts the agent down (its pi processes are stopped).
    pub tx: mpsc::Sender<ToAgent>,
    /// Messages from the agent; the first is its [`Hello`].
    pub rx: mpsc::Receiver<FromAgent>,
    /// Finishes when the agent has stopped every pi it ran.
    pub task: JoinHandle<()>,
    /// The agent's model services, for a link that builds its own hellos ([`agent_hello`]).
    pub models: Arc<models::Models>,
}

/// Opens the per-session streams that carry a session's events to the coordinator.
///
/// Each session gets its own bounded stream so that a session whose clients are slow pushes
/// back on its own pi only, never on another session's. The in-process link hands out
/// channels; a network transport opens one stream per session.
pub trait SessionStreams: Send + Sync + 'static {
    /// The stream for the streamed reply to request `req` (a history), if the requester still
    /// waits for it.
    fn open_reply(&self, req: piface_shared::protocol::RequestId) -> Option<mpsc::Sender<FromAgent>>;

    /// A new stream for `session`: it carries [`FromAgent::Events`] in order, then one
    /// [`FromAgent::Exited`].
    fn open(&self, session: &SessionId) -> mpsc::Sender<FromAgent>;

    /// A new stream for `session`'s terminal: [`FromAgent::PtyOutput`]s, then one
    /// [`FromAgent::PtyExited`].
    fn open_terminal(&self, session: &SessionId) -> mpsc::Sender<FromAgent>;
}

/// Starts an agent on the current tokio runtime.
pub fn spawn(config: AgentConfig, streams: Arc<dyn SessionStreams>) -> AgentLink {
    let (to_tx, to_rx) = mpsc::channel(64);
    let (from_tx, from_rx) = mpsc::channel(OUTBOUND_DEPTH);
    let mut private = config.private_dirs.clone();
    private.push(config.state_dir.clone());
    let mut roots = tools::fs::Roots::new(&config.fs_roots, &private);
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        roots = roots.with_worktrees(&PathBuf::from(home).join(".local/share/piface").join(tools::fs::WORKTREES));
    }
    // This agent's model services: its own, so two agents in one process share no model state.
    let models = models::Models::new();
    if let Some(service) = config.speech.clone() {
        // Loading takes a while (seconds to minutes for the real model, longer when it must be
        // downloaded first): the agent serves meanwhile and says hello as loading goes on.
        let models = models.clone();
        tokio::spawn(async move {
            if let Err(e) = speech::start(models, service).await {
                warn!("speech-to-text is off: {e}");
            }
        });
    }
    if let Some(service) = config.tts.clone() {
        let models = models.clone();
        tokio::spawn(async move {
            if let Err(e) = tts::start(models, service).await {
                warn!("text-to-speech is off: {e}");
            }
        });
    }
    // Say hello again whenever what we advertise changes, at most once a second.
    let out = from_tx.clone();
    let watched = models.clone();
    tokio::spawn(async move {
        loop {
            watched.changed().await;
            if out.send(FromAgent::Hello(agent_hello(&watched, None))).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let agent = Agent {
        config: Arc::new(config),
        sessions: Arc::default(),
        out: from_tx,
        terminals: tools::pty::Terminals::new(streams.clone()),
        streams,
        roots,
        uploads: Arc::default(),
        models: models.clone(),
    };
    let task = tokio::spawn(agent.run(to_rx).instrument(tracing::info_span!("agent")));
    AgentLink { tx: to_tx, rx: from_rx, task, models }
}

/// The hello an agent sends: [`piface_link::hello`] plus its GPUs (discovered once per process:
/// the machine's, whichever agent asks) and the model services in `models`.
pub fn agent_hello(models: &models::Models, pi_version: Option<String>) -> Hello {
    static GPUS: std::sync::OnceLock<Vec<piface_shared::protocol::GpuInfo>> = std::sync::OnceLock::new();
    Hello {
        gpus: GPUS.get_or_init(gpu::discover).clone(),
        speech: models.snapshot(models::Kind::Stt).map(Box::new),
        tts: models.snapshot(models::Kind::Tts).map(Box::new),
        ..piface_link::hello(pi_version)
    }
}

type Sessions = Arc<Mutex<HashMap<SessionId, Arc<PiProcess>>>>;

struct Agent {
    config: Arc<AgentConfig>,
    /// Running pi processes by session. A std mutex: it is only held to look up or swap an entry.
    sessions: Sessions,
    out: mpsc::Sender<FromAgent>,
    streams: Arc<dyn SessionStreams>,
    /// Where the file endpoints may look.
    roots: tools::fs::Roots,
    uploads: Arc<tools::upload::Uploads>,
    terminals: Arc<tools::pty::Terminals>,
    /// The model services (speech-to-text, text-to-speech) and their loaded models.
    models: Arc<models::Models>,
}

impl Agent {
    async fn run(self, mut rx: mpsc::Receiver<ToAgent>) {
        if self.out.send(FromAgent::Hello(agent_hello(&self.models, None))).await.is_err() {
            return;
        }
        while let Some(msg) = rx.recv().await {
            self.handle(msg);
        }
        info!("coordinator link closed; stopping pi processes");
        self.terminals.close_all();
        let all: Vec<_> = self.sessions.lock().unwrap().drain().map(|(_, p)| p).collect();
        let grace = self.config.kill_grace;
        let mut stops = tokio::task::JoinSet::new();
        for p in all {
            stops.spawn(async move { p.kill(grace).await });
        }
        stops.join_all().await;
    }

    /// Handles one command without waiting on any process, so one slow pi never delays the
    /// commands of another session.
    fn handle(&self, msg: ToAgent) {
        // A request's span (a child of the coordinator's, when traces are exported) is current
        // while it is dispatched, and each task it starts carries it: pi's start, a tool, a
        // speech job are spans of the browser's request.
        let span = piface_link::trace::request_span(&msg);
        let _entered = span.enter();
        match msg {
            ToAgent::Hello(h) => {
                if let Err(e) = h.check_compatible() {
                    warn!("coordinator hello: {e}");
                }
            }
            ToAgent::Spawn { req, session, spec, .. } => {
                let task = spawn_session(
                    self.config.clone(),
                    self.roots.clone(),
                    self.sessions.clone(),
                    self.out.clone(),
                    self.streams.clone(),
                    req,
                    session.clone(),
                    spec,
                );
                // Named for traces only while they are exported: the log's prefix stays `session{…}`.
                let session_span = if piface_link::trace::enabled() {
                    tracing::info_span!("session", session_id = %session, otel.name = "pi spawn")
                } else {
                    tracing::info_span!("session", session_id = %session)
                };
                spawn_traced(task.instrument(session_span));
            }
            ToAgent::Input { session, line } => self.input(session, line),
            ToAgent::Kill { req, session, .. } => {
                self.terminals.close(&session);
                let proc = self.sessions.lock().unwrap().remove(&session);
                let out = self.out.clone();
                let grace = self.config.kill_grace;
                spawn_traced(async move {
                    let was_running = proc.is_some();
                    if let Some(p) = proc {
                        p.kill(grace).await;
                    }
                    let _ = out.send(FromAgent::Killed { req, was_running }).await;
                });
            }
            ToAgent::Shell { req, session, command, .. } => {
                let cwd = self.sessions.lock().unwrap().get(&session).map(|p| (p.cwd().to_owned(), p.uses_direnv()));
                let out = self.out.clone();
                let timeout = self.config.shell_timeout;
                spawn_traced(async move {
                    let result = match cwd {
                        Some((cwd, direnv)) => shell::run(&command, &cwd, timeout, direnv).await,
                        None => Err("session is not running on this agent".to_string()),
                    };
                    let _ = out.send(FromAgent::ShellDone { req, result }).await;
                });
            }
            ToAgent::ReadHistory { req, path, .. } => {
                if let Some(out) = self.streams.open_reply(req) {
                    spawn_traced(archive::read_history(req, path, out));
                }
            }
            ToAgent::ForkMessages { req, path, .. } => {
                let out = self.out.clone();
                spawn_traced(async move {
                    let result = archive::fork_messages(path).await;
                    let _ = out.send(FromAgent::ForkMessages { req, result }).await;
                });
            }
            ToAgent::ListSessions { req, .. } => {
                let sessions = self.sessions.lock().unwrap().keys().cloned().collect();
                let out = self.out.clone();
                spawn_traced(async move {
                    let _ = out.send(FromAgent::SessionList { req, sessions }).await;
                });
            }
            ToAgent::Tool { req, call, .. } => {
                let (roots, out, config) = (self.roots.clone(), self.out.clone(), self.config.clone());
                spawn_traced(async move {
                    let result = tools::run(&roots, &config, call).await;
                    let _ = out.send(FromAgent::ToolDone { req, result }).await;
                });
            }
            ToAgent::Transcribe { req, audio, .. } => {
                let (out, models) = (self.out.clone(), self.models.clone());
                spawn_traced(async move {
                    let result = match models.speech() {
                        Some(w) => speech::transcribe(&models, w, audio).await.map(|v| v.to_string()),
                        None => Err(piface_shared::protocol::ToolError::new(
                            503,
                            "Speech transcription is not configured on this agent",
                        )),
                    };
                    let _ = out.send(FromAgent::ToolDone { req, result }).await;
                });
            }
            ToAgent::Synthesize { req, text, .. } => {
                let (out, models) = (self.out.clone(), self.models.clone());
                spawn_traced(async move {
                    let result = match models.voice() {
                        Some(w) => tts::synthesize(&models, w, text).await,
                        None => Err(piface_shared::protocol::ToolError::new(
                            503,
                            "Text-to-speech is not configured on this agent",
                        )),
                    };
                    let _ = out.send(FromAgent::Synthesized { req, result }).await;
                });
            }
            ToAgent::ReadFile { req, path, max, .. } => {
                if let Some(out) = self.streams.open_reply(req) {
                    spawn_traced(tools::fs::read_raw(self.roots.clone(), req, path, max, out));
                }
            }
            ToAgent::UploadBegin { req, path, max, .. } => self.uploads.begin(req, path, max, self.out.clone()),
            ToAgent::UploadChunk { req, data } => self.uploads.chunk(req, data),
            ToAgent::UploadEnd { req, ok } => self.uploads.end(req, ok),
            ToAgent::PtyOpen { session, cwd, project_dir, cols, rows } => {
                // A running shell was started under trusted content: it is only resized.
                let launch = if self.terminals.is_open(&session) {
                    Ok(None)
                } else if let Err(e) = self.roots.check_dir(&cwd) {
                    // Like a session's start: a shell opens only inside the file roots.
                    Err(e.detail)
                } else {
                    tools::workspace::launch_for(&self.config.trust(), project_dir.as_deref(), "pty")
                };
                let launch = match launch {
                    Ok(l) => l,
                    Err(detail) => {
                        // The coordinator checks trust first (and refuses the viewer with 4409);
                        // this is for a file changed in between, or a directory outside the
                        // roots: say why, and end the terminal.
                        warn!(session_id = %session, "terminal refused: {detail}");
                        let out = self.streams.open_terminal(&session);
                        spawn_traced(async move {
                            let data = Bytes::from(format!("\r\n[piface] {detail}\r\n"));
                            let _ = out.send(FromAgent::PtyOutput { session: session.clone(), offset: 0, data }).await;
                            let _ = out.send(FromAgent::PtyExited { session }).await;
                        });
                        return;
                    }
                };
                if let Err(e) = self.terminals.open(&session, &cwd, launch.as_ref(), cols, rows) {
                    warn!(session_id = %session, "terminal: {e}");
                    let out = self.out.clone();
                    spawn_traced(async move {
                        let message = format!("Failed to create terminal: {e}");
                        let _ = out.send(FromAgent::Notice { session: Some(session), message }).await;
                    });
                }
            }
            ToAgent::PtyInput { session, data } => self.terminals.input(&session, data),
            ToAgent::PtyResize { session, cols, rows } => self.terminals.resize(&session, cols, rows),
            ToAgent::PtyClose { session } => self.terminals.close(&session),
            ToAgent::ProbeModels { req, .. } => {
                let config = self.config.clone();
                let out = self.out.clone();
                spawn_traced(async move {
                    let result = child::probe_models(&config).await;
                    let _ = out.send(FromAgent::Models { req, result }).await;
                });
            }
        }
    }

    fn input(&self, session: SessionId, line: Bytes) {
        let proc = self.sessions.lock().unwrap().get(&session).cloned();
        let notice = match proc {
            None => Some("pi is not running for this session; the command was not delivered".to_string()),
            Some(p) => p.send_line(line).err().map(|e| e.to_string()),
        };
        if let Some(message) = notice {
            debug!(session_id = %session, "{message}");
            let out = self.out.clone();
            tokio::spawn(async move {
                let _ = out.send(FromAgent::Notice { session: Some(session), message }).await;
            });
        }
    }
}

/// `tokio::spawn` in the current span: the tasks a request starts carry its span (see
/// `Agent::handle`), which ends when the last of them does.
fn spawn_traced<F>(task: F)
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(task.in_current_span());
}

async fn spawn_session(
    config: Arc<AgentConfig>,
    roots: tools::fs::Roots,
    sessions: Sessions,
    out: mpsc::Sender<FromAgent>,
    streams: Arc<dyn SessionStreams>,
    req: u64,
    session: SessionId,
    spec: SpawnSpec,
) {
    let refusal = if sessions.lock().unwrap().contains_key(&session) {
        Some(SpawnError::AlreadyRunning)
    } else if !std::path::Path::new(&spec.cwd).is_dir() {
        Some(SpawnError::NoSuchDirectory(spec.cwd.clone()))
    } else if let Err(e) = roots.check_dir(&spec.cwd) {
        // Checked here, where the roots are, at every start: a record made before the roots
        // were narrowed, or by a coordinator that did not check, starts nothing outside them.
        Some(SpawnError::OutsideRoots(e.detail))
    } else {
        None
    };
    if let Some(e) = refusal {
        let _ = out.send(FromAgent::Spawned { req, result: Err(e) }).await;
        return;
    }
    let mut spec = spec;
    // A session file that is gone (deleted, or never written) starts a new one.
    // The record may hold pi's path as `~/…` (the original's form): this machine's home.
    spec.session_file = spec
        .session_file
        .map(|f| paths::expand_home(&f).to_string_lossy().into_owned())
        .filter(|f| std::path::Path::new(f).is_file());
    let stream = streams.open(&session);
    let result = PiProcess::start(&config, &spec, Some((session.clone(), stream))).await;
    let result = match result {
        Ok(proc) => {
            let proc = Arc::new(proc);
            let pid = proc.pid();
            info!(pid, "pi started");
            let previous = sessions.lock().unwrap().insert(session.clone(), proc.clone());
            if let Some(p) = previous {
                // Two spawns for one session raced; keep the newer, stop the older.
                tokio::spawn(async move { p.kill(Duration::from_secs(1)).await });
            }
            // Forget the process once it exits on its own, so Input gets a clear notice.
            let sessions2 = sessions.clone();
            let session2 = session.clone();
            let watched = proc.clone();
            tokio::spawn(async move {
                watched.wait_done().await;
                let mut map = sessions2.lock().unwrap();
                if map.get(&session2).is_some_and(|p| Arc::ptr_eq(p, &watched)) {
                    map.remove(&session2);
                }
            });
            Ok(piface_shared::protocol::Spawned { pid })
        }
        Err(e) => {
            info!("pi failed to start: {e}");
            Err(e)
        }
    };
    let _ = out.send(FromAgent::Spawned { req, result }).await;
}
