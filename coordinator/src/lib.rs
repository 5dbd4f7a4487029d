//! The Piface coordinator: the HTTP and WebSocket API of the original Piface, the session
//! registry, and the link to agents that run pi.
//!
//! Entry point: [`run`] takes a bound listener and a shutdown signal, so tests start the same
//! code as `piface serve` on port 0. [`app`] builds the axum router alone.
//!
//! What it is not: it never starts pi or touches a project's files itself; that is the
//! agent's job, reached through [`agent_link`].

pub mod access;
pub mod agent_link;
pub mod agents;
pub mod api;
pub mod auth;
pub mod cli;
pub mod control;
pub mod dashboard;
pub mod dev_proxy;
pub mod error;
pub mod frames;
pub mod front_door;
pub mod frontend;
pub mod history;
pub mod hub;
pub mod leader;
pub mod limits;
pub mod metrics;
pub mod models;
pub mod pki;
pub mod private;
pub mod push;
pub mod quic;
pub mod record;
pub mod routes;
pub mod server;
pub mod sessions;
pub mod socket;
pub mod speech;
pub mod store;
pub mod telemetry;
pub mod terminal;
#[cfg(test)]
mod testkit;
pub mod tools;
pub mod tts;
pub mod ws;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::agent_link::AgentHandle;
use crate::control::LocalStreams;
use crate::hub::HubLimits;
use crate::models::ModelsCache;
use crate::sessions::{Registry, Sessions};
use crate::store::{RedbStore, StateStore};

/// Routes of one module: (path, handlers), collected into one table by [`routes::table`].
pub type Routes = Vec<(&'static str, axum::routing::MethodRouter<Arc<App>>)>;

/// Where the coordinator keeps its state.
#[derive(Debug, Clone, Default)]
pub enum StoreChoice {
    /// `<data dir>/state.redb`.
    #[default]
    Embedded,
    /// etcd (`--store etcd`).
    #[cfg(feature = "etcd")]
    Etcd(store::etcd::EtcdOptions),
}

/// Settings of a coordinator with its in-process agent.
#[derive(Debug, Clone)]
pub struct Config {
    /// The pi executable the local agent runs.
    pub pi_bin: PathBuf,
    /// Default of `use_direnv` for new sessions (`--direnv/--no-direnv`).
    pub direnv_default: bool,
    /// Where Piface keeps its own files.
    pub data_dir: PathBuf,
    /// Where the state is kept (sessions, uploads, enrolled agents).
    pub store: StoreChoice,
    /// How long a new pi may take to answer its first command.
    pub start_timeout: Duration,
    /// Limits of each session's event hub.
    pub hub_limits: HubLimits,
    /// Largest accepted request body.
    pub max_body: usize,
    /// Ask pi for its models at start-up.
    pub probe_models_at_start: bool,
    /// Run an agent in this process (`serve`; `coordinator --local-agent`).
    pub local_agent: bool,
    /// Listen for agents on other machines (QUIC) at this address.
    pub quic: Option<std::net::SocketAddr>,
    /// Limits of the agents' port before a peer is identified.
    pub link_limits: quic::LinkLimits,
    /// What the local agent's file endpoints may reach (`--fs-root`; default: home).
    pub fs_roots: Vec<PathBuf>,
    /// Largest uploaded file (bytes).
    pub max_upload: u64,
    /// The local agent's speech-to-text service, if it has one.
    pub speech: Option<piface_agent::ServiceConfig>,
    /// The local agent's text-to-speech service, if it has one.
    pub tts: Option<piface_agent::ServiceConfig>,
    /// Largest size of the TTS audio cache (`<data dir>/tts-cache/`), bytes.
    pub tts_cache_max: u64,
    /// Who may log in (`--auth`).
    pub auth: auth::Mode,
    /// Host allow-list, origins and trusted proxies.
    pub front_door: front_door::Policy,
    /// Connection and session limits.
    pub limits: limits::Limits,
    /// `--dev`: the UI from this Vite dev server instead of the embedded build.
    pub dev_server: Option<dev_proxy::DevServer>,
    /// This coordinator's URL for browsers, published while it leads (`--advertise-url`).
    pub advertise_url: Option<String>,
    /// This coordinator's agent address, published while it leads (`--advertise-agents`).
    pub advertise_agents: Option<String>,
    /// `--push-contact`: the VAPID subject of Web Push (a `mailto:` or `https:` URL).
    pub push_contact: Option<String>,
}

impl Config {
    /// Defaults for a given pi binary and data directory.
    pub fn new(pi_bin: PathBuf, data_dir: PathBuf) -> Config {
        Config {
            pi_bin,
            direnv_default: true,
            data_dir,
            store: StoreChoice::Embedded,
            start_timeout: Duration::from_secs(30),
            hub_limits: HubLimits::default(),
            max_body: 2 * 1024 * 1024,
            probe_models_at_start: true,
            local_agent: true,
            quic: None,
            link_limits: quic::LinkLimits::default(),
            fs_roots: std::env::var_os("HOME").map(PathBuf::from).into_iter().collect(),
            max_upload: 10 * 1024 * 1024,
            speech: None,
            tts: None,
            tts_cache_max: 1 << 30,
            auth: auth::Mode::Token,
            front_door: front_door::Policy::default(),
            limits: limits::Limits::default(),
            dev_server: None,
            advertise_url: None,
            advertise_agents: None,
            push_contact: None,
        }
    }
}

impl App {
    /// The state of a coordinator over its store's `snapshot` (sessions, uploads) and the
    /// `enrolled` agents, before anything is served or any agent is up: what [`run`] serves,
    /// and what in-process tests drive.
    pub fn new(
        config: Config,
        store: Arc<dyn StateStore>,
        snapshot: store::Snapshot,
        enrolled: std::collections::BTreeMap<String, store::AgentRecord>,
        auth: auth::Auth,
        shutdown: CancellationToken,
    ) -> Arc<App> {
        let dashboard = Arc::new(dashboard::Dashboard::default());
        let subscriptions = snapshot.push_subscriptions.clone();
        let push = push::Push::start(&config.data_dir, config.push_contact.clone(), store.clone(), subscriptions);
        let registry = Arc::new(Registry::new(store.clone(), snapshot, dashboard.clone()));
        let agents = Arc::new(agents::Agents::new(enrolled, dashboard.clone()));
        Arc::new(App {
            tts: tts::TtsCache::new(config.data_dir.join("tts-cache"), config.tts_cache_max),
            sessions: Sessions::start(registry.clone(), agents.clone(), &config, push.notifier()),
            push,
            registry,
            agents,
            dashboard,
            store,
            models: ModelsCache::default(),
            terminals: terminal::Terminals::default(),
            shutdown,
            auth,
            ws_slots: limits::WsSlots::default(),
            metrics: metrics::Metrics::new(),
            config,
        })
    }
}

/// State shared by every handler and task.
pub struct App {
    /// Settings.
    pub config: Config,
    /// Synthesised speech, cached.
    pub tts: tts::TtsCache,
    /// Sessions and their hubs, to read; changes go through [`App::sessions`].
    pub registry: Arc<Registry>,
    /// The session actor, the only writer of the registry.
    pub sessions: Sessions,
    /// The agents that run pi: the in-process one for `serve`, others over QUIC.
    pub agents: Arc<agents::Agents>,
    /// Where state is kept (the registry writes sessions; enrollment writes agents).
    pub store: Arc<dyn StateStore>,
    /// Changes pushed to dashboards.
    pub dashboard: Arc<dashboard::Dashboard>,
    /// pi's model list.
    pub models: ModelsCache,
    /// Terminal output and viewers, per session.
    pub terminals: terminal::Terminals,
    /// Cancelled at shutdown; long-lived tasks (WebSockets) end with it.
    pub shutdown: CancellationToken,
    /// The login.
    pub auth: auth::Auth,
    /// Open WebSockets per session.
    pub ws_slots: limits::WsSlots,
    /// Prometheus metrics (`GET /metrics`).
    pub metrics: metrics::Metrics,
    /// Web Push: subscriptions, who is looking, the push task.
    pub push: Arc<push::Push>,
}

/// Serves Piface on `listener` until `shutdown` is cancelled, then stops every pi.
///
/// With the state in etcd it first campaigns to lead the cluster, answering as a standby
/// meanwhile (see [`leader`]); a leader that loses its lease stops with an error.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    // Everything Piface keeps is for its user only, including what older versions left.
    private::tighten(&config.data_dir)?;
    let auth = auth::Auth::new(config.auth.clone(), &config.data_dir)?;
    if config.auth == auth::Mode::None {
        warn!("LOGIN IS OFF (--auth none): anyone who can reach this address gets a shell on every machine of the cluster");
    }
    // The agents' port comes first: a standby refuses agents on it, sending them to the leader.
    let mut cluster = None;
    if let Some(addr) = config.quic {
        let cluster_dir = config.data_dir.join("cluster");
        let ca = Arc::new(pki::ClusterCa::load_or_create(&cluster_dir)?);
        let endpoint = quic::bind(&ca, &cluster_dir, addr)?;
        let bound = endpoint.local_addr()?;
        // Machine-readable, after the HTTP line: scripts and tests read the agents' port here.
        println!("agents connect to {bound} (CA fingerprint {})", ca.fingerprint());
        info!(addr = %bound, "listening for agents");
        cluster = Some((ca, endpoint));
    }
    let me = leader::LeaderInfo {
        name: format!("{}:{}", piface_link::hostname(), listener.local_addr()?.port()),
        url: config.advertise_url.clone().or_else(|| {
            let addr = listener.local_addr().ok().filter(|a| !a.ip().is_unspecified())?;
            Some(format!("http://{addr}"))
        }),
        agents: config.advertise_agents.clone().or_else(|| {
            let addr = cluster.as_ref()?.1.local_addr().ok().filter(|a| !a.ip().is_unspecified())?;
            Some(addr.to_string())
        }),
    };
    let (store, election) = open_store_to_lead(&config, cluster.as_ref().map(|(ca, _)| &**ca), me)?;
    // Again: opening the embedded store may have made its file.
    private::tighten(&config.data_dir)?;
    let listener = match &election {
        None => listener,
        Some(election) => match stand_by(&config, election, listener, cluster.as_ref(), &shutdown).await? {
            Some(listener) => listener,
            // Stopped before leading: nothing of the cluster's was touched.
            None => {
                election.resign().await;
                return Ok(());
            }
        },
    };
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(election) = &election {
        let (lost_token, lost, shutdown) = (election.lost.clone(), lost.clone(), shutdown.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = lost_token.cancelled() => {
                    lost.store(true, std::sync::atomic::Ordering::SeqCst);
                    shutdown.cancel();
                }
                () = shutdown.cancelled() => {}
            }
        });
    }

    let mut snapshot = store.load_to_lead()?;
    let enrolled = std::mem::take(&mut snapshot.agents);
    info!(sessions = snapshot.sessions.len(), "state loaded");
    let local = config.local_agent.then(|| LocalAgent::spawn(&config));
    let app = App::new(config, store, snapshot, enrolled, auth, shutdown.clone());
    // The push key is made on first start, and a data dir that cannot hold it fails the start.
    app.push.vapid()?;
    let mut control = None;
    if let Some(local) = local {
        control = Some(local.connect(&app).await?);
    }
    let mut quic_endpoint = None;
    if let Some((ca, endpoint)) = cluster {
        tokio::spawn(quic::serve(app.clone(), ca, endpoint.clone()));
        quic_endpoint = Some(endpoint);
    }
    // Sessions that were live come back before the first request is served, so a reconnecting
    // browser finds them live (connections wait in the listen backlog meanwhile).
    sessions::restore(&app).await;
    if app.config.probe_models_at_start {
        let (app, asked) = (app.clone(), std::time::Instant::now());
        tokio::spawn(async move { app.models.refresh(&app, asked).await });
    }

    info!(addr = %listener.local_addr()?, "Piface is listening");
    let router = app_router(app.clone());
    server::serve(listener, router, app.config.limits.server, shutdown.clone()).await;
    let result: anyhow::Result<()> = Ok(());

    info!("shutting down: stopping pi processes");
    // Records stay live: they are restored at the next start.
    app.sessions.stopping();
    let mut stops = tokio::task::JoinSet::new();
    // Only the in-process agent's sessions: agents on other machines keep theirs running and
    // re-announce them when the coordinator is back.
    let local = app.agents.get(agents::LOCAL);
    for id in app.registry.live_ids() {
        let on_local = app.registry.get(&id).is_some_and(|r| r.agent == agents::LOCAL);
        let Some(agent) = local.clone().filter(|_| on_local) else { continue };
        stops.spawn(async move {
            let kill = |req| piface_shared::protocol::ToAgent::Kill { req, session: id.clone(), trace: None };
            if let Err(e) = agent.request(kill, Duration::from_secs(15)).await {
                warn!(session_id = %id, "could not stop pi: {e}");
            }
        });
    }
    stops.join_all().await;
    if let Some(endpoint) = quic_endpoint {
        endpoint.close(0u32.into(), b"coordinator stopping");
    }
    if let Some(control) = control {
        control.abort();
    }
    if let Some(election) = &election {
        // A standby takes over now rather than when the lease runs out.
        election.resign().await;
    }
    if lost.load(std::sync::atomic::Ordering::SeqCst) {
        anyhow::bail!(
            "this coordinator lost the lead of the cluster (its lease in etcd ended); start it again to stand by"
        );
    }
    result
}

/// Serves as a standby (see [`leader`]) until this coordinator leads, and returns the
/// listener to serve as the leader on; `None` when `shutdown` came first.
async fn stand_by(
    config: &Config,
    election: &leader::Election,
    listener: TcpListener,
    cluster: Option<&(Arc<pki::ClusterCa>, quinn::Endpoint)>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<TcpListener>> {
    if election.elected.is_cancelled() {
        return Ok(Some(listener));
    }
    info!("standing by: another coordinator may lead; campaigning in etcd");
    let standing = shutdown.child_token();
    // The standby answers on a second handle of the same socket, closed when it leads: requests
    // in flight finish, later ones reach the leader's routes.
    let socket = listener.into_std()?;
    let standby_socket = TcpListener::from_std(socket.try_clone()?)?;
    let listener = TcpListener::from_std(socket)?;
    let router = leader::standby_router(election.leader.clone(), config.front_door.clone());
    let http = tokio::spawn(server::serve(standby_socket, router, config.limits.server, standing.clone()));
    if let Some((_, endpoint)) = cluster {
        tokio::spawn(leader::refuse_agents(endpoint.clone(), election.leader.clone(), standing.clone()));
    }
    let mut leader = election.leader.clone();
    let led = loop {
        if let Some(info) = leader.borrow_and_update().as_ref() {
            info!(leader = %info.name, url = ?info.url, "another coordinator leads");
        }
        tokio::select! {
            () = election.elected.cancelled() => break true,
            () = shutdown.cancelled() => break false,
            changed = leader.changed() => if changed.is_err() {
                // The campaign ended without electing us (its etcd client stopped).
                break false;
            },
        }
    };
    standing.cancel();
    let _ = http.await;
    Ok(led.then_some(listener))
}

/// The store `config` chooses, and the election when it is shared (etcd): see
/// [`open_configured_store`]. With a cluster CA, etcd pins it (a coordinator with another CA
/// cannot join the election).
fn open_store_to_lead(
    config: &Config,
    ca: Option<&pki::ClusterCa>,
    me: leader::LeaderInfo,
) -> anyhow::Result<(Arc<dyn StateStore>, Option<leader::Election>)> {
    match &config.store {
        StoreChoice::Embedded => {
            let _ = (ca, me);
            Ok((open_store(&config.data_dir)?, None))
        }
        #[cfg(feature = "etcd")]
        StoreChoice::Etcd(options) => {
            let store = open_etcd(config, options)?;
            if let Some(ca) = ca {
                store.pin_cluster(&store::etcd::ClusterPin {
                    ca_fingerprint: ca.fingerprint(),
                    ca_pem: ca.ca_pem(),
                    token_key_check: ca.token_key_check(),
                })?;
            }
            let election = store.elect(me);
            Ok((store, Some(election)))
        }
    }
}

/// The agent that runs in the coordinator's process (`serve`, `coordinator --local-agent`):
/// started before the [`App`] exists (the app needs the agent, the agent its streams), then
/// connected to it. [`run`] and the in-process tests start it the same way.
pub(crate) struct LocalAgent {
    link: piface_agent::AgentLink,
    streams: Arc<LocalStreams>,
}

impl LocalAgent {
    /// Starts the agent with the coordinator's settings for it.
    pub(crate) fn spawn(config: &Config) -> LocalAgent {
        let streams = Arc::new(LocalStreams::default());
        let mut agent_config = piface_agent::AgentConfig::new(config.pi_bin.clone());
        agent_config.start_timeout = config.start_timeout;
        agent_config.fs_roots.clone_from(&config.fs_roots);
        // Never served, even inside a root; the local agent keeps its own state in there.
        agent_config.private_dirs.push(config.data_dir.clone());
        agent_config.state_dir = config.data_dir.join("agent");
        agent_config.speech.clone_from(&config.speech);
        agent_config.tts.clone_from(&config.tts);
        let link = piface_agent::spawn(agent_config, streams.clone());
        LocalAgent { link, streams }
    }

    /// Binds its session streams to `app`, brings it up as [`agents::LOCAL`] and says hello;
    /// the task returned reads its control messages until the agent stops.
    pub(crate) async fn connect(self, app: &Arc<App>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        self.streams.bind(app);
        let local = Arc::new(AgentHandle::new(self.link.tx));
        app.agents.up(agents::LOCAL, local.clone(), None);
        local.send(piface_shared::protocol::ToAgent::Hello(piface_link::hello(None))).await?;
        Ok(tokio::spawn(control::run_control(app.clone(), agents::LOCAL.to_string(), local, self.link.rx)))
    }
}

/// Opens the store in `data_dir`, importing the original Piface's `state.json` from there
/// when the store is new.
pub fn open_store(data_dir: &std::path::Path) -> anyhow::Result<Arc<dyn StateStore>> {
    use anyhow::Context;
    private::dir(data_dir)?;
    let path = data_dir.join("state.redb");
    let fresh = !path.exists();
    let store = RedbStore::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let legacy = data_dir.join("state.json");
    if fresh && legacy.is_file() {
        match import_state(&store, &legacy) {
            Ok(n) => info!(sessions = n, from = %legacy.display(), "imported the original Piface's state"),
            Err(e) => warn!(from = %legacy.display(), "could not import the original Piface's state: {e:#}"),
        }
    }
    Ok(Arc::new(store))
}

/// The store `config` chooses: the embedded one in the data dir, or etcd. A new store of
/// either kind gets the original Piface's `state.json` from the data dir, when there is one.
pub fn open_configured_store(config: &Config) -> anyhow::Result<Arc<dyn StateStore>> {
    match &config.store {
        StoreChoice::Embedded => open_store(&config.data_dir),
        #[cfg(feature = "etcd")]
        StoreChoice::Etcd(options) => Ok(open_etcd(config, options)?),
    }
}

#[cfg(feature = "etcd")]
fn open_etcd(config: &Config, options: &store::etcd::EtcdOptions) -> anyhow::Result<Arc<store::etcd::EtcdStore>> {
    use anyhow::Context;
    private::dir(&config.data_dir)?;
    let store = store::etcd::EtcdStore::connect(options)
        .with_context(|| format!("connecting to etcd at {}", options.endpoints.join(",")))?;
    info!(endpoints = %options.endpoints.join(","), prefix = %options.prefix, "state in etcd");
    let legacy = config.data_dir.join("state.json");
    if store.was_empty() && legacy.is_file() {
        match import_state(&store, &legacy) {
            Ok(n) => info!(sessions = n, from = %legacy.display(), "imported the original Piface's state"),
            Err(e) => warn!(from = %legacy.display(), "could not import the original Piface's state: {e:#}"),
        }
    }
    Ok(Arc::new(store))
}

/// Adds the sessions and uploads of an original Piface `state.json` that the store does not
/// have yet; returns how many sessions were added.
pub fn import_state(store: &dyn StateStore, path: &std::path::Path) -> anyhow::Result<usize> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let snapshot = store::parse_original_state(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(store.merge(&snapshot)?)
}

/// The router of the whole HTTP surface: the route table, the UI as the fallback, and the
/// front door (Host, Origin, login, hardening headers) before all of it, and the request's span
/// and access log around that.
pub fn app_router(app: Arc<App>) -> axum::Router {
    let mut router = axum::Router::new();
    for (path, method) in routes::table(&app.config) {
        router = router.route(path, method);
    }
    let router = router.method_not_allowed_fallback(api::method_not_allowed);
    let router = if app.config.dev_server.is_some() {
        router.fallback(dev_proxy::fallback)
    } else {
        router.fallback(frontend::fallback)
    };
    router
        .layer(axum::middleware::from_fn_with_state(app.clone(), front_door::guard))
        // Outermost: refused requests are logged and traced too.
        .layer(axum::middleware::from_fn_with_state(app.clone(), access::observe))
        .with_state(app)
}
