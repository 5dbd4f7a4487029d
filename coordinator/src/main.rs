//! The `piface` binary: parses the command line, binds the port and hands over to
//! [`piface_coordinator::run`].

use std::path::{Path, PathBuf};

use anyhow::Context;
use piface_coordinator::cli::{
    AgentAction, AgentArgs, ApiClientArgs, AuthAction, Command, ImportArgs, ServeArgs, TokenAction,
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

fn main() -> anyhow::Result<()> {
    // CUDA numbers GPUs fastest-first unless told otherwise; NVML (what agents advertise) numbers
    // them by PCI bus id. One order for both, set before any thread exists.
    if std::env::var_os("CUDA_DEVICE_ORDER").is_none() {
        std::env::set_var("CUDA_DEVICE_ORDER", "PCI_BUS_ID");
    }
    let cli = piface_coordinator::cli::parse();
    // Traces are named after the role; commands that only print or call the API export none.
    let (otlp, service) = match &cli.command {
        None => (cli.serve.telemetry.otlp_endpoint.as_deref(), "piface"),
        Some(Command::Serve(a)) => (a.telemetry.otlp_endpoint.as_deref(), "piface"),
        Some(Command::Coordinator(c)) => (c.serve.telemetry.otlp_endpoint.as_deref(), "piface-coordinator"),
        Some(Command::Agent(a)) if a.action.is_none() => (a.telemetry.otlp_endpoint.as_deref(), "piface-agent"),
        Some(_) => (None, "piface"),
    };
    let telemetry = piface_coordinator::telemetry::init(otlp, service)?;
    let result = run(cli);
    // After the runtime is gone: the last requests' spans are exported before the exit.
    telemetry.shutdown();
    result
}

fn run(cli: piface_coordinator::cli::Cli) -> anyhow::Result<()> {
    let runtime = || tokio::runtime::Builder::new_multi_thread().enable_all().build();
    match cli.command {
        Some(Command::Serve(args)) => runtime()?.block_on(serve(args, None)),
        None => runtime()?.block_on(serve(cli.serve, None)),
        Some(Command::Coordinator(c)) => {
            let ignored = c.agent_only_flags();
            if !ignored.is_empty() {
                anyhow::bail!(
                    "{}: only an agent uses these; give them to `piface agent` (the GPU box's, for speech), or \
                     add --local-agent to run an agent in this coordinator",
                    ignored.join(", ")
                );
            }
            let limits = c.link_limits();
            runtime()?.block_on(serve(c.serve, Some((c.quic, c.local_agent, limits))))
        }
        Some(Command::ImportState(args)) => import_state(args),
        Some(Command::Agent(args)) => runtime()?.block_on(agent(args)),
        Some(Command::Token { action: TokenAction::Create { ttl, data_dir } }) => {
            let dir = data_dir.map_or_else(default_data_dir, Ok)?.join("cluster");
            let ca = piface_coordinator::pki::ClusterCa::load_or_create(&dir)?;
            println!("{}", ca.create_token(ttl, std::time::SystemTime::now()));
            Ok(())
        }
        Some(Command::Completions { shell }) => {
            piface_coordinator::cli::print_completions(shell);
            Ok(())
        }
        Some(Command::Auth { action: AuthAction::Token { rotate, data_dir, url } }) => {
            let dir = data_dir.map_or_else(default_data_dir, Ok)?;
            let token = if rotate {
                piface_coordinator::auth::rotate_token(&dir)?
            } else {
                piface_coordinator::auth::load_or_create_token(&dir)?
            };
            println!("{token}");
            println!("login: {}/?token={token}", url.trim_end_matches('/'));
            Ok(())
        }
    }
}

/// A client of the coordinator's API with its login token (read from the data directory).
fn api_client(api: &ApiClientArgs) -> anyhow::Result<reqwest::Client> {
    let dir = api.data_dir.clone().map_or_else(default_data_dir, Ok)?;
    let path = piface_coordinator::auth::token_path(&dir);
    let mut headers = reqwest::header::HeaderMap::new();
    match std::fs::read_to_string(&path) {
        Ok(token) => {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                .with_context(|| format!("{} does not hold a token", path.display()))?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        // A coordinator with --auth none has no token; any other answers 401 below.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    Ok(reqwest::Client::builder().default_headers(headers).build()?)
}

/// The error of a failed API call, with the server's `detail`.
async fn api_error(resp: reqwest::Response) -> anyhow::Error {
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    let hint = if status == reqwest::StatusCode::UNAUTHORIZED {
        " (run this on the coordinator's machine, or pass its --data-dir)"
    } else {
        ""
    };
    anyhow::anyhow!("{status}: {}{hint}", body["detail"].as_str().unwrap_or(""))
}

/// `piface agent`: run an agent, or list/remove agents through the coordinator's API.
async fn agent(args: AgentArgs) -> anyhow::Result<()> {
    match args.action {
        Some(AgentAction::List { api }) => {
            let resp = api_client(&api)?.get(format!("{}/api/agents", api.url)).send().await?;
            if !resp.status().is_success() {
                return Err(api_error(resp).await);
            }
            let body: serde_json::Value = resp.json().await?;
            for a in body["agents"].as_array().into_iter().flatten() {
                println!(
                    "{:<20} {:<5} {:<24} {} sessions  {}",
                    a["name"].as_str().unwrap_or("?"),
                    a["status"].as_str().unwrap_or("?"),
                    a["hostname"].as_str().unwrap_or("-"),
                    a["live_sessions"],
                    a["last_seen"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        Some(AgentAction::Remove { name, api }) => {
            let resp = api_client(&api)?.delete(format!("{}/api/agents/{name}", api.url)).send().await?;
            if !resp.status().is_success() {
                return Err(api_error(resp).await);
            }
            println!("removed agent {name}");
            Ok(())
        }
        None => {
            let (link, agent) = args.run.configs()?;
            let shutdown = CancellationToken::new();
            tokio::spawn(cancel_on_signal(shutdown.clone()));
            piface_agent::link::run(link, agent, shutdown).await
        }
    }
}

fn import_state(args: ImportArgs) -> anyhow::Result<()> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    piface_coordinator::private::dir(&data_dir)?;
    let path = data_dir.join("state.redb");
    let store = piface_coordinator::store::RedbStore::open(&path)
        .with_context(|| format!("opening {} (is Piface running? stop it first)", path.display()))?;
    let added = piface_coordinator::import_state(&store, &args.path)?;
    println!("imported {added} sessions from {}", args.path.display());
    Ok(())
}

/// `serve`, or `coordinator` when `cluster` gives its QUIC address and whether to run a local
/// agent too.
async fn serve(
    args: ServeArgs,
    cluster: Option<(std::net::SocketAddr, bool, piface_coordinator::quic::LinkLimits)>,
) -> anyhow::Result<()> {
    let dev_server = args.dev_server().map_err(anyhow::Error::msg)?;
    if dev_server.is_some() {
        info!("--dev: the web UI comes from the dev server at {}", args.dev_server);
    }
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => default_data_dir()?,
    };
    piface_coordinator::private::dir(&data_dir)?;
    let auth = args.auth_mode().map_err(anyhow::Error::msg)?;
    let hostname = Some(piface_link::hostname()).filter(|h| !h.is_empty());
    let front_door = args.front_door(hostname).map_err(anyhow::Error::msg)?;
    let pi_bin = args.pi_bin.clone().unwrap_or_else(piface_agent::cli::find_pi);
    if !piface_agent::cli::is_runnable(&pi_bin) {
        warn!(
            "pi not found at {}; sessions cannot start until it is installed \
             (scripts/install-pi.sh, or --pi-bin)",
            pi_bin.display()
        );
    }
    let mut config = piface_coordinator::Config::new(pi_bin, data_dir);
    config.store = args.store.choice()?;
    config.advertise_url.clone_from(&args.store.advertise_url);
    config.advertise_agents.clone_from(&args.store.advertise_agents);
    config.direnv_default = args.direnv_default();
    config.auth = auth;
    config.front_door = front_door;
    config.limits = args.limits();
    config.dev_server = dev_server;
    if !args.fs_roots.is_empty() {
        config.fs_roots.clone_from(&args.fs_roots);
    }
    config.max_upload = args.max_upload_mib << 20;
    config.tts_cache_max = args.tts_cache_mib << 20;
    config.push_contact.clone_from(&args.push_contact);
    if cluster.is_none_or(|(_, local_agent, _)| local_agent) {
        (config.speech, config.tts) = args.audio.services()?;
    }
    if let Some((quic, local_agent, limits)) = cluster {
        config.quic = Some(quic);
        config.local_agent = local_agent;
        config.link_limits = limits;
    }

    let listener = tokio::net::TcpListener::bind((args.host, args.port))
        .await
        .with_context(|| format!("binding {}:{}", args.host, args.port))?;
    // Machine-readable, on stdout: scripts and tests that pass `--port 0` read the port here,
    // and the login URL on the next line.
    let bound = listener.local_addr()?;
    println!("listening on http://{bound}");
    if config.auth != piface_coordinator::auth::Mode::None {
        let token = piface_coordinator::auth::load_or_create_token(&config.data_dir)?;
        let host = if bound.ip().is_unspecified() {
            std::net::SocketAddr::from(([127, 0, 0, 1], bound.port()))
        } else {
            bound
        };
        println!("login: http://{host}/?token={token}");
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    piface_coordinator::run(config, listener, shutdown).await
}

async fn cancel_on_signal(token: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            warn!("cannot watch SIGTERM: {e}");
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    info!("signal received, shutting down");
    token.cancel();
}

/// `~/.local/share/piface`, as the original (it ignores `XDG_DATA_HOME` on purpose).
fn default_data_dir() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set; pass --data-dir")?;
    Ok(Path::new(&home).join(".local/share/piface"))
}
