//! Command-line interface of the `piface` binary, k3s-style: one binary, subcommands per role.
//!
//! `piface` alone is `piface serve`. The original's flags are accepted where they apply.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use piface_agent::cli::{AudioArgs, RunArgs};

/// Piface: a web interface for the pi coding agent.
#[derive(Debug, Parser)]
#[command(name = "piface", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to run (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `serve` when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Coordinator and a local agent on this machine: the single-machine Piface.
    Serve(ServeArgs),
    /// Import the sessions of an original Piface `state.json` (done automatically on first
    /// start when `<data dir>/state.json` exists).
    ImportState(ImportArgs),
    /// The coordinator of a cluster: the web UI, and a QUIC listener for agents.
    Coordinator(CoordinatorArgs),
    /// Run an agent that joins a coordinator (or, with `list`/`remove`, manage agents).
    Agent(AgentArgs),
    /// Join tokens for agents.
    Token {
        /// What to do.
        #[command(subcommand)]
        action: TokenAction,
    },
    /// The login of the web UI and the API.
    Auth {
        /// What to do.
        #[command(subcommand)]
        action: AuthAction,
    },
    /// Print a shell completion script: `piface completions bash > ~/.local/share/bash-completion/completions/piface`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// The command line: [`Cli`]'s definitions, with every option also read from a `PIFACE_*`
/// environment variable (its long name in capitals, `-` as `_`: `--max-upload-mib` is
/// `PIFACE_MAX_UPLOAD_MIB`) unless it names its own. A flag is set by any value but `0`, `false`,
/// `no`, `off` or empty; a repeatable option takes one value from its variable, or a
/// comma-separated list where the flag itself takes one. A variable that is set but empty counts
/// as unset. The command line wins over the environment.
pub fn command() -> clap::Command {
    fn with_env(cmd: clap::Command) -> clap::Command {
        cmd.mut_args(|arg| {
            let automatic = matches!(arg.get_action(), ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong)
                || matches!(arg.get_action(), ArgAction::Version);
            let name = match (arg.get_env(), arg.get_long()) {
                (Some(own), _) => own.to_os_string(),
                (None, Some(long)) if !automatic && !arg.is_positional() => {
                    format!("PIFACE_{}", long.to_uppercase().replace('-', "_")).into()
                }
                _ => return arg,
            };
            // Set but empty counts as unset (clap would pass "" on as a value): a compose file or
            // unit can forward `PIFACE_X=${PIFACE_X:-}` without choosing a value.
            if std::env::var_os(&name).is_some_and(|v| v.is_empty()) {
                arg.env(None::<&'static str>)
            } else {
                arg.env(name)
            }
        })
        .mut_subcommands(with_env)
    }
    with_env(Cli::command())
}

/// Parses the process's arguments and environment (see [`command`]); exits with clap's message
/// on an error.
pub fn parse() -> Cli {
    parse_from(std::env::args_os())
}

/// [`parse`] for given arguments (the environment is the process's).
pub fn parse_from<I, T>(args: I) -> Cli
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = command().get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command()).exit())
}

/// `piface completions SHELL`: the script for `command()`, on stdout.
pub fn print_completions(shell: clap_complete::Shell) {
    clap_complete::generate(shell, &mut command(), "piface", &mut std::io::stdout());
}

/// `piface auth …`.
#[derive(Debug, Clone, Subcommand)]
pub enum AuthAction {
    /// Print the login token (first line) and the login URL (second line); the token is made
    /// when there is none yet.
    Token {
        /// Make a new token: every browser logged in with the old one is logged out (a running
        /// Piface notices within a second).
        #[arg(long)]
        rotate: bool,
        /// Piface's data directory (default: ~/.local/share/piface).
        #[arg(long, env = "PIFACE_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// The address browsers use, for the login URL.
        #[arg(long, default_value = "http://127.0.0.1:7832")]
        url: String,
    },
}

/// Options of `piface coordinator`.
#[derive(Debug, Clone, Args)]
pub struct CoordinatorArgs {
    /// The web side, as for `serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Where agents connect (UDP). Mutual TLS guards it, so all interfaces is the default.
    #[arg(long, default_value = "0.0.0.0:7833")]
    pub quic: std::net::SocketAddr,
    /// Also run an agent in this process, as `serve` does.
    #[arg(long)]
    pub local_agent: bool,
    /// Connections to the agents' port not yet identified as an enrolled agent (handshaking or
    /// enrolling), in all; past it new ones are refused.
    #[arg(long, default_value_t = 64, env = "PIFACE_MAX_UNENROLLED", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_unenrolled: u32,
    /// The same, per source address.
    #[arg(long, default_value_t = 8, env = "PIFACE_MAX_UNENROLLED_PER_ADDRESS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_unenrolled_per_address: u32,
    /// Seconds a peer has from its first packet to an agent's control stream or the end of its
    /// enrollment.
    #[arg(long, default_value_t = 10, env = "PIFACE_ENROLL_TIMEOUT", value_parser = clap::value_parser!(u64).range(1..=600))]
    pub enroll_timeout: u64,
}

impl CoordinatorArgs {
    /// Flags given that only an agent uses: without `--local-agent` a coordinator runs no
    /// models and serves no files, so they would be silently ignored. `main` refuses them.
    pub fn agent_only_flags(&self) -> Vec<&'static str> {
        if self.local_agent {
            return Vec::new();
        }
        let a = &self.serve.audio;
        [
            ("--speech", a.speech),
            ("--no-speech", a.no_speech),
            ("--speech-model", a.speech_model.is_some()),
            ("--speech-gpu", a.speech_gpu),
            ("--speech-cpu", a.speech_cpu),
            ("--speech-gpu-name", a.speech_gpu_name.is_some()),
            ("--speech-gpu-uuid", a.speech_gpu_uuid.is_some()),
            ("--tts", a.tts),
            ("--no-tts", a.no_tts),
            ("--tts-model", a.tts_model.is_some()),
            ("--tts-gpu", a.tts_gpu),
            ("--tts-cpu", a.tts_cpu),
            ("--tts-gpu-name", a.tts_gpu_name.is_some()),
            ("--tts-gpu-uuid", a.tts_gpu_uuid.is_some()),
            ("--fs-root", !self.serve.fs_roots.is_empty()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }

    /// The agents' port limits from the flags.
    pub fn link_limits(&self) -> crate::quic::LinkLimits {
        crate::quic::LinkLimits {
            unidentified: self.max_unenrolled as usize,
            unidentified_per_address: self.max_unenrolled_per_address as usize,
            handshake: std::time::Duration::from_secs(self.enroll_timeout),
        }
    }
}

/// Options of `piface agent`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    /// Manage agents instead of running one.
    #[command(subcommand)]
    pub action: Option<AgentAction>,
    /// Running an agent: the agent crate's options.
    #[command(flatten)]
    pub run: RunArgs,
    /// Traces of the running agent.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// Where a process's traces go (`serve`, `coordinator`, `agent`).
#[derive(Debug, Clone, Default, Args)]
pub struct TelemetryArgs {
    /// Export traces over OTLP (HTTP/protobuf) to this collector, e.g. http://127.0.0.1:4318
    /// (`/v1/traces` is added to a URL without a path). Off when not given.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
}

/// `piface agent list|remove`.
#[derive(Debug, Clone, Subcommand)]
pub enum AgentAction {
    /// List the agents the coordinator knows.
    List {
        /// Where the coordinator is.
        #[command(flatten)]
        api: ApiClientArgs,
    },
    /// Remove an agent: its certificate is refused from then on.
    Remove {
        /// The agent's name.
        name: String,
        /// Where the coordinator is.
        #[command(flatten)]
        api: ApiClientArgs,
    },
}

/// How `piface agent list|remove` reach the coordinator's API.
#[derive(Debug, Clone, Args)]
pub struct ApiClientArgs {
    /// The coordinator's web address.
    #[arg(long, default_value = "http://127.0.0.1:7832")]
    pub url: String,
    /// The coordinator's data directory, where its login token is (run on the coordinator's
    /// machine; default: ~/.local/share/piface).
    #[arg(long, env = "PIFACE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `piface token …`.
#[derive(Debug, Clone, Subcommand)]
pub enum TokenAction {
    /// Print a new single-use join token (run on the coordinator's machine).
    Create {
        /// How long the token can be used: `30m`, `2h`, `7d`, or seconds.
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: std::time::Duration,
        /// The coordinator's data directory (default: ~/.local/share/piface).
        #[arg(long, env = "PIFACE_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
}

/// `--auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthKind {
    /// A secret token.
    Token,
    /// Tailscale identity headers.
    Tailscale,
    /// No login.
    None,
}

/// An address (`127.0.0.1`, `::1`) or a network (`100.64.0.0/10`).
pub fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("not an address or network: {s:?} (e.g. 127.0.0.1 or 100.64.0.0/10)"))
}

impl ServeArgs {
    /// The login mode, or why the flags do not make one.
    pub fn auth_mode(&self) -> Result<crate::auth::Mode, String> {
        use crate::auth::Mode;
        match self.auth {
            AuthKind::Token | AuthKind::None if !self.tailscale_users.is_empty() => {
                Err("--tailscale-user needs --auth tailscale".into())
            }
            AuthKind::Token => Ok(Mode::Token),
            AuthKind::None => Ok(Mode::None),
            AuthKind::Tailscale if self.tailscale_users.is_empty() => {
                Err("--auth tailscale needs at least one --tailscale-user LOGIN (the Tailscale logins allowed in)"
                    .into())
            }
            AuthKind::Tailscale => Ok(Mode::Tailscale {
                users: self.tailscale_users.iter().map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect(),
            }),
        }
    }

    /// The front door's policy from the flags (`hostname`: this machine's name).
    pub fn front_door(&self, hostname: Option<String>) -> Result<crate::front_door::Policy, String> {
        let mut policy = crate::front_door::Policy { hostname, ..Default::default() };
        for host in &self.allowed_hosts {
            let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
            if host.is_empty() || host.contains(['/', ':', '@', ' ']) {
                return Err(format!("--allowed-host takes a name without scheme or port, not {host:?}"));
            }
            policy.allowed_hosts.push(host);
        }
        for origin in &self.allowed_origins {
            let normal = crate::front_door::normalise_origin(origin)
                .ok_or_else(|| format!("--allowed-origin takes http(s)://host[:port], not {origin:?}"))?;
            policy.allowed_origins.push(normal);
        }
        if !self.trusted_proxies.is_empty() {
            policy.trusted_proxies.clone_from(&self.trusted_proxies);
        }
        Ok(policy)
    }

    /// Connection and session limits from the flags.
    pub fn limits(&self) -> crate::limits::Limits {
        crate::limits::Limits {
            ws_per_session: self.max_ws_per_session as usize,
            sessions_per_agent: self.max_sessions_per_agent as usize,
            ws_message: usize::try_from(self.max_ws_message_mib << 20).unwrap_or(usize::MAX),
            server: crate::server::ServerLimits {
                header_read: std::time::Duration::from_secs(self.header_timeout),
                ..Default::default()
            },
        }
    }
}

/// `30`, `30s`, `15m`, `2h`, `7d`.
pub fn parse_ttl(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("not a duration: {s:?} (try 30m, 2h, 7d)"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("unknown unit in {s:?} (use s, m, h or d)")),
    };
    if secs == 0 {
        return Err("a token must be valid for some time".into());
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// Options of `piface import-state`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The `state.json` to import.
    pub path: PathBuf,
    /// Directory for Piface's own files (default: ~/.local/share/piface).
    #[arg(long, env = "PIFACE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Options of `piface serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Port to listen on.
    #[arg(long, default_value_t = 7832)]
    pub port: u16,
    /// Address to bind. The default keeps Piface off the network; reach it from elsewhere
    /// through `tailscale serve` (HTTPS, which the microphone needs).
    #[arg(long, default_value = "127.0.0.1", env = "PIFACE_HOST")]
    pub host: IpAddr,
    /// Who may log in: `token` (a secret printed at start as a login URL), `tailscale` (the
    /// identity `tailscale serve` vouches for, for the `--tailscale-user` logins; the token works
    /// too) or `none` (anyone who reaches the port).
    #[arg(long, value_enum, default_value = "token", env = "PIFACE_AUTH")]
    pub auth: AuthKind,
    /// A Tailscale login allowed with `--auth tailscale` (repeatable), e.g. alice@example.com.
    #[arg(long = "tailscale-user", value_name = "LOGIN", env = "PIFACE_TAILSCALE_USERS", value_delimiter = ',')]
    pub tailscale_users: Vec<String>,
    /// Another name browsers may use to reach Piface (repeatable), e.g. box.tail1234.ts.net.
    /// Loopback names, IP addresses and this machine's host name are always allowed.
    #[arg(long = "allowed-host", value_name = "NAME", env = "PIFACE_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// A page origin allowed to act (repeatable), e.g. https://piface.example.com behind a proxy
    /// that rewrites the Host header.
    #[arg(long = "allowed-origin", value_name = "ORIGIN", env = "PIFACE_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// An address or network (CIDR) whose X-Forwarded-* and Tailscale identity headers are
    /// believed (repeatable). [default: 127.0.0.0/8, ::1]
    #[arg(long = "trusted-proxy", value_name = "NET", env = "PIFACE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_net)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Most WebSockets (chat and terminal) open on one session.
    #[arg(long, default_value_t = 32, env = "PIFACE_MAX_WS_PER_SESSION", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_ws_per_session: u32,
    /// Most live sessions on one agent.
    #[arg(long, default_value_t = 64, env = "PIFACE_MAX_SESSIONS_PER_AGENT", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sessions_per_agent: u32,
    /// Largest message a browser may send on a WebSocket, MiB (a prompt with its images).
    #[arg(long, default_value_t = 16, env = "PIFACE_MAX_WS_MESSAGE_MIB", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub max_ws_message_mib: u64,
    /// Seconds a client has to send a request's headers.
    #[arg(long, default_value_t = 10, env = "PIFACE_HEADER_TIMEOUT", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout: u64,
    /// Run pi through `direnv exec` for new sessions by default (when direnv is installed).
    #[arg(long, overrides_with = "no_direnv")]
    pub direnv: bool,
    /// Do not use direnv by default.
    #[arg(long)]
    pub no_direnv: bool,
    /// Directory for Piface's own files (default: ~/.local/share/piface).
    #[arg(long, env = "PIFACE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The pi executable (default: `pi` on PATH, else the copy `scripts/install-pi.sh` installs).
    #[arg(long, env = "PIFACE_PI_BIN")]
    pub pi_bin: Option<PathBuf>,
    /// Serve the web UI from a Vite dev server (`npm --prefix frontend run dev`) instead of the
    /// embedded build, for hot reload while working on it; its pages need the login.
    #[arg(long)]
    pub dev: bool,
    /// The dev server `--dev` uses.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:5173")]
    pub dev_server: String,
    /// A directory the file browser may reach on the local agent (repeatable; default: the
    /// home directory). Symlinks out of it are refused.
    #[arg(long = "fs-root", value_name = "DIR")]
    pub fs_roots: Vec<PathBuf>,
    /// Largest size of the cache of synthesised speech (`<data dir>/tts-cache/`), MiB; the least
    /// recently used files go first.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub tts_cache_mib: u64,
    /// Largest uploaded file, MiB.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_upload_mib: u64,
    /// Traces.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// Who sends the Web Push notifications (the VAPID subject push services may contact):
    /// `mailto:you@example.com` or an `https://` URL. Default: the HTTPS origin of the page that
    /// turned notifications on (Apple's push service refuses names that do not resolve).
    #[arg(long, value_name = "URI", value_parser = parse_push_contact)]
    pub push_contact: Option<String>,
    /// Speech-to-text and text-to-speech (served by this machine's agent).
    #[command(flatten)]
    pub audio: AudioArgs,
    /// Where the state is kept.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Where a coordinator keeps its state.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// `embedded` (a file in the data dir) or `etcd` (for several coordinators; needs a build
    /// with the `etcd` feature).
    #[arg(long = "store", value_enum, default_value = "embedded")]
    pub kind: StoreKind,
    /// etcd's client URLs, comma-separated (http:// or https://).
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    pub etcd_endpoints: Vec<String>,
    /// Every key Piface writes to etcd starts with this.
    #[arg(long, default_value = "/piface/")]
    pub etcd_prefix: String,
    /// etcd user (with `--etcd-password-file`).
    #[arg(long, value_name = "NAME")]
    pub etcd_user: Option<String>,
    /// File holding the etcd user's password (a file, so that it shows in no process list).
    #[arg(long, value_name = "FILE")]
    pub etcd_password_file: Option<PathBuf>,
    /// PEM of the CA that signed etcd's certificate (https endpoints).
    #[arg(long, value_name = "FILE")]
    pub etcd_ca: Option<PathBuf>,
    /// PEM certificate of this coordinator, for etcd's client-certificate check.
    #[arg(long, value_name = "FILE")]
    pub etcd_cert: Option<PathBuf>,
    /// PEM private key of `--etcd-cert`.
    #[arg(long, value_name = "FILE")]
    pub etcd_key: Option<PathBuf>,
    /// Seconds of the leader's lease in etcd: a dead leader is replaced after at most this
    /// long, and a leader that cannot reach etcd for this long stops (with `--store etcd`).
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=300))]
    pub leader_ttl: u64,
    /// This coordinator's URL for browsers, which a standby names (and redirects page loads
    /// to) while this one leads (default: its listening address, unless that is 0.0.0.0 or ::).
    #[arg(long, value_name = "URL")]
    pub advertise_url: Option<String>,
    /// This coordinator's agent address, `HOST:PORT`, which a standby sends agents to while
    /// this one leads (default: its `--quic` address, unless that is 0.0.0.0 or ::).
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise_agents: Option<String>,
}

/// See [`StoreArgs::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    Embedded,
    Etcd,
}

impl StoreArgs {
    /// The store the flags choose, with its files read.
    pub fn choice(&self) -> anyhow::Result<crate::StoreChoice> {
        if self.etcd_user.is_some() != self.etcd_password_file.is_some() {
            anyhow::bail!("--etcd-user and --etcd-password-file go together");
        }
        if self.etcd_cert.is_some() != self.etcd_key.is_some() {
            anyhow::bail!("--etcd-cert and --etcd-key go together");
        }
        if self.kind == StoreKind::Embedded {
            if !self.etcd_endpoints.is_empty() {
                anyhow::bail!("--etcd-endpoints needs --store etcd");
            }
            return Ok(crate::StoreChoice::Embedded);
        }
        #[cfg(feature = "etcd")]
        {
            use anyhow::Context;
            let read = |path: &PathBuf| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
            let user = match (&self.etcd_user, &self.etcd_password_file) {
                (Some(user), Some(file)) => {
                    let password = String::from_utf8(read(file)?).context("the etcd password file is not UTF-8")?;
                    Some((user.clone(), password.trim_end_matches(['\r', '\n']).to_string()))
                }
                _ => None,
            };
            let identity_pem = match (&self.etcd_cert, &self.etcd_key) {
                (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
                _ => None,
            };
            Ok(crate::StoreChoice::Etcd(crate::store::etcd::EtcdOptions {
                endpoints: self.etcd_endpoints.clone(),
                prefix: self.etcd_prefix.clone(),
                user,
                ca_pem: self.etcd_ca.as_ref().map(read).transpose()?,
                identity_pem,
                leader_ttl: std::time::Duration::from_secs(self.leader_ttl),
            }))
        }
        #[cfg(not(feature = "etcd"))]
        anyhow::bail!(
            "this piface was built without etcd; build it with `--features etcd` (needs protoc) for --store etcd"
        )
    }
}

impl ServeArgs {
    /// Whether new sessions use direnv by default (on unless `--no-direnv`).
    pub fn direnv_default(&self) -> bool {
        !self.no_direnv
    }

    /// `--dev`'s dev server, checked.
    pub fn dev_server(&self) -> Result<Option<crate::dev_proxy::DevServer>, String> {
        self.dev.then(|| crate::dev_proxy::DevServer::new(&self.dev_server)).transpose()
    }
}

/// `--push-contact`: a `mailto:` address or an `https://` URL, as RFC 8292 asks.
fn parse_push_contact(s: &str) -> Result<String, String> {
    let ok = s.strip_prefix("mailto:").is_some_and(|a| a.contains('@') && !a.contains(char::is_whitespace))
        || s.strip_prefix("https://").is_some_and(|h| !h.is_empty() && !h.contains(char::is_whitespace));
    if ok {
        Ok(s.to_string())
    } else {
        Err("expected mailto:you@example.com or an https:// URL".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("piface").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn bare_piface_is_serve_with_defaults() {
        let cli = parse(&[]);
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.port, 7832);
        assert_eq!(cli.serve.host.to_string(), "127.0.0.1");
        assert!(cli.serve.direnv_default());
    }

    #[test]
    fn serve_takes_the_original_flags() {
        let cli = parse(&[
            "serve",
            "--port",
            "9000",
            "--host",
            "0.0.0.0",
            "--no-direnv",
            "--no-speech",
            "--tts-cpu",
            "--pi-bin",
            "/x/pi",
        ]);
        let Some(Command::Serve(args)) = cli.command else { panic!("not serve") };
        assert_eq!(args.port, 9000);
        assert!(!args.direnv_default());
        assert_eq!(args.pi_bin.as_deref(), Some(std::path::Path::new("/x/pi")));
        assert!(args.audio.no_speech && args.audio.tts_cpu);
        assert!(args.dev_server().unwrap().is_none());
        assert!(!parse(&["--direnv", "--no-direnv"]).serve.direnv_default());
        assert!(parse(&["--no-direnv", "--direnv"]).serve.direnv_default());
    }

    #[test]
    fn import_state_takes_a_path() {
        let cli = parse(&["import-state", "/old/state.json", "--data-dir", "/d"]);
        let Some(Command::ImportState(args)) = cli.command else { panic!("not import-state") };
        assert_eq!(args.path, std::path::Path::new("/old/state.json"));
        assert!(Cli::try_parse_from(["piface", "import-state"]).is_err());
    }

    #[test]
    fn cluster_commands() {
        let cli = parse(&["coordinator", "--quic", "0.0.0.0:9000", "--local-agent", "--port", "8000"]);
        let Some(Command::Coordinator(c)) = cli.command else { panic!("not coordinator") };
        assert_eq!((c.quic.port(), c.local_agent, c.serve.port), (9000, true, 8000));
        let cli = parse(&["agent", "--coordinator", "h:7833", "--token", "T", "--name", "n"]);
        let Some(Command::Agent(a)) = cli.command else { panic!("not agent") };
        assert_eq!(
            (a.run.coordinator.as_slice(), a.run.name.as_deref(), a.action.is_none()),
            (&["h:7833".to_string()][..], Some("n"), true)
        );
        // A leader and its standbys: comma-separated, repeated, or both.
        let cli = parse(&["agent", "--coordinator", "a:1,b:2", "--coordinator", "c:3"]);
        let Some(Command::Agent(a)) = cli.command else { panic!("not agent") };
        assert_eq!(a.run.coordinator, ["a:1", "b:2", "c:3"]);
        let cli = parse(&["agent", "remove", "box"]);
        let Some(Command::Agent(AgentArgs { action: Some(AgentAction::Remove { name, .. }), .. })) = cli.command else {
            panic!("not agent remove")
        };
        assert_eq!(name, "box");
        let cli = parse(&["token", "create", "--ttl", "2h"]);
        let Some(Command::Token { action: TokenAction::Create { ttl, .. } }) = cli.command else { panic!("not token") };
        assert_eq!(ttl.as_secs(), 7200);
        assert!(parse_ttl("0").is_err() && parse_ttl("5y").is_err() && parse_ttl("h").is_err());
    }

    #[test]
    fn a_coordinator_without_a_local_agent_names_the_agent_flags_it_would_ignore() {
        let coordinator = |args: &[&str]| {
            let mut all = vec!["coordinator"];
            all.extend_from_slice(args);
            match parse(&all).command {
                Some(Command::Coordinator(c)) => c,
                _ => panic!("not coordinator"),
            }
        };
        assert!(coordinator(&[]).agent_only_flags().is_empty());
        assert_eq!(
            coordinator(&["--speech-gpu-name", "GTX 1080 Ti", "--tts", "--fs-root", "/p"]).agent_only_flags(),
            ["--speech-gpu-name", "--tts", "--fs-root"]
        );
        assert!(coordinator(&["--local-agent", "--speech", "--fs-root", "/p"]).agent_only_flags().is_empty());
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(Cli::try_parse_from(["piface", "--port", "x"]).is_err());
        assert!(Cli::try_parse_from(["piface", "serve", "--bogus"]).is_err());
    }
}
