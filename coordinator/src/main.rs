//! The `piface` binary: parses the command line, binds the port and hands over to
//! [`piface_coordinator::run`].

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use piface_coordinator::cli::{Cli, Command, ImportArgs, ServeArgs};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::ImportState(args)) => return import_state(args),
        None => cli.serve,
    };
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve(args))
}

fn import_state(args: ImportArgs) -> anyhow::Result<()> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let path = data_dir.join("state.redb");
    let store = piface_coordinator::store::RedbStore::open(&path)
        .with_context(|| format!("opening {} (is Piface running? stop it first)", path.display()))?;
    let added = piface_coordinator::import_state(&store, &args.path)?;
    println!("imported {added} sessions from {}", args.path.display());
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    for notice in args.notices() {
        info!("{notice}");
    }
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => default_data_dir()?,
    };
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let pi_bin = args.pi_bin.clone().unwrap_or_else(find_pi);
    if !is_runnable(&pi_bin) {
        warn!(
            "pi not found at {}; sessions cannot start until it is installed \
             (scripts/install-pi.sh, or --pi-bin)",
            pi_bin.display()
        );
    }
    let mut config = piface_coordinator::Config::new(pi_bin, data_dir);
    config.direnv_default = args.direnv_default();

    let listener = tokio::net::TcpListener::bind((args.host, args.port))
        .await
        .with_context(|| format!("binding {}:{}", args.host, args.port))?;
    // Machine-readable, on stdout: scripts and tests that pass `--port 0` read the port here.
    println!("listening on http://{}", listener.local_addr()?);
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

/// `pi` on PATH, else the pinned copy installed next to the source tree by
/// `scripts/install-pi.sh`, else plain `pi` (start-up then warns).
fn find_pi() -> PathBuf {
    if let Some(paths) = std::env::var_os("PATH") {
        if let Some(found) = std::env::split_paths(&paths).map(|d| d.join("pi")).find(|p| is_runnable(p)) {
            return found;
        }
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.pi-runtime/node_modules/.bin/pi");
    if is_runnable(&local) {
        return local;
    }
    PathBuf::from("pi")
}

fn is_runnable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    if path.components().count() == 1 {
        return std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| is_runnable(&d.join(path))));
    }
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
