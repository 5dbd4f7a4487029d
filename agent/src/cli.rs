//! The agent's command line: the options `piface agent` runs an agent with, and the
//! speech-to-text and text-to-speech options `piface serve` shares, as clap `Args` structs the
//! `piface` binary flattens into its subcommands; and what they become (the link's and the
//! core's settings, the model services and the GPU each runs on).
//!
//! What it is not: no parser, no subcommands, no environment variables. The binary
//! (`piface_coordinator::cli`) owns the command tree, gives every option its `PIFACE_*`
//! variable, and has the management subcommands (`piface agent list|remove`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use piface_link::tls::Transport;
use piface_shared::protocol::GpuInfo;

use crate::link::LinkConfig;
use crate::{AgentConfig, ServiceConfig};

/// Options of `piface agent` when it runs an agent (flattened into the binary's `agent`
/// subcommand, beside `list`/`remove`).
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The coordinator's agent address, `HOST:PORT` (its `--quic`). With several coordinators
    /// (a leader and standbys, `--store etcd`), all of them, comma-separated or repeated: the
    /// agent goes to the one that leads.
    #[arg(long, value_name = "HOST:PORT", value_delimiter = ',')]
    pub coordinator: Vec<String>,
    /// Join token from `piface token create` (needed the first time). Prefer `--token-file` or
    /// the `PIFACE_TOKEN` variable: a command line is visible to every user in `ps`.
    #[arg(long, env = "PIFACE_TOKEN", hide_env_values = true, conflicts_with = "token_file")]
    pub token: Option<String>,
    /// A file holding the join token.
    #[arg(long, env = "PIFACE_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// This agent's name in the cluster (default: the host name).
    #[arg(long)]
    pub name: Option<String>,
    /// Where the agent keeps its key and certificates (default: ~/.local/share/piface-agent).
    #[arg(long, env = "PIFACE_AGENT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The pi executable (default: `pi` on PATH).
    #[arg(long, env = "PIFACE_PI_BIN")]
    pub pi_bin: Option<PathBuf>,
    /// Seconds without a sign of the coordinator before the link counts as dead and is
    /// re-established (QUIC idle timeout; keep-alives go every third of it, at most 5 s).
    #[arg(long, default_value_t = 20)]
    pub link_timeout: u64,
    /// MiB of pi events kept per session while the link is down, resent when it comes back;
    /// a longer outage drops the oldest and browsers get a history replay instead.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub replay_buffer_mib: u64,
    /// A directory the file browser may reach on this machine (repeatable; default: the home
    /// directory). Symlinks out of it are refused.
    #[arg(long = "fs-root", value_name = "DIR")]
    pub fs_roots: Vec<PathBuf>,
    /// Speech-to-text and text-to-speech served to the cluster.
    #[command(flatten)]
    pub audio: AudioArgs,
}

impl RunArgs {
    /// The link's and the agent core's settings: reads the token file, names the agent after
    /// the host unless told, and picks the model services (discovering the GPUs).
    pub fn configs(self) -> anyhow::Result<(LinkConfig, AgentConfig)> {
        let transport = self.transport();
        let coordinators: Vec<String> =
            self.coordinator.iter().map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect();
        if coordinators.is_empty() {
            anyhow::bail!("--coordinator HOST:PORT is required to run an agent");
        }
        let name = match self.name {
            Some(n) => n,
            None => Some(piface_link::hostname())
                .filter(|h| !h.is_empty())
                .context("cannot read the host name; pass --name")?,
        };
        let data_dir = match self.data_dir {
            Some(d) => d,
            None => default_data_dir()?,
        };
        let pi_bin = self.pi_bin.unwrap_or_else(find_pi);
        let token = match (self.token, &self.token_file) {
            (_, Some(file)) => Some(
                std::fs::read_to_string(file)
                    .with_context(|| format!("reading the join token from {}", file.display()))?
                    .trim()
                    .to_string(),
            ),
            (token, None) => token,
        };
        let link = LinkConfig {
            coordinators,
            token,
            name,
            data_dir: data_dir.clone(),
            transport,
            replay_bytes: usize::try_from(self.replay_buffer_mib << 20).unwrap_or(usize::MAX),
        };
        let mut agent = AgentConfig::new(pi_bin);
        if !self.fs_roots.is_empty() {
            agent.fs_roots = self.fs_roots;
        }
        // The identity dir holds the agent's key and its trusted workspace files.
        agent.private_dirs.push(data_dir.clone());
        agent.state_dir = data_dir;
        (agent.speech, agent.tts) = self.audio.services()?;
        Ok((link, agent))
    }

    /// `--link-timeout` as QUIC timers: the idle timeout, and keep-alives every third of it
    /// (at most 5 s).
    pub fn transport(&self) -> Transport {
        let idle = Duration::from_secs(self.link_timeout.max(1));
        Transport { idle_timeout: idle, keep_alive: idle.div_f32(3.0).min(Duration::from_secs(5)) }
    }
}

/// `~/.local/share/piface-agent`, beside the coordinator's `~/.local/share/piface`.
fn default_data_dir() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set; pass --data-dir")?;
    Ok(Path::new(&home).join(".local/share/piface-agent"))
}

/// `pi` on PATH, else the pinned copy installed next to the source tree by
/// `scripts/install-pi.sh`, else plain `pi` (start-up then warns).
pub fn find_pi() -> PathBuf {
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

/// Whether `path` is an executable file; a bare name is looked up on PATH.
pub fn is_runnable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    if path.components().count() == 1 {
        return std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| is_runnable(&d.join(path))));
    }
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Speech-to-text and text-to-speech options of `serve` and `agent` (the original's flags, plus
/// picking a GPU by name or UUID). Without `--speech`/`--tts`, an agent serves a model when it
/// has a GPU (fetching the model when missing) or finds the model in its Hugging Face cache.
#[derive(Debug, Clone, Args)]
pub struct AudioArgs {
    /// Serve speech-to-text (fetch the model when it is not in the Hugging Face cache).
    #[arg(long, overrides_with = "no_speech")]
    pub speech: bool,
    /// Never serve speech-to-text.
    #[arg(long)]
    pub no_speech: bool,
    /// Speech-to-text model: a `.nemo` archive, a safetensors folder or a Hugging Face repo id
    /// (`org/name[@revision]`); naming one implies `--speech`. [default: nvidia/parakeet-tdt-0.6b-v3]
    #[arg(long)]
    pub speech_model: Option<String>,
    /// Run speech-to-text on a GPU (the default when there is one).
    #[arg(long, overrides_with = "speech_cpu")]
    pub speech_gpu: bool,
    /// Run speech-to-text on the CPU.
    #[arg(long)]
    pub speech_cpu: bool,
    /// The GPU for speech-to-text, by (part of) its name as NVML reports it, e.g. "GTX 1080 Ti".
    #[arg(long, value_name = "NAME")]
    pub speech_gpu_name: Option<String>,
    /// The GPU for speech-to-text, by (a prefix of) its `GPU-…` UUID.
    #[arg(long, value_name = "UUID")]
    pub speech_gpu_uuid: Option<String>,
    /// Serve text-to-speech (fetch the model when it is not in the Hugging Face cache).
    #[arg(long, overrides_with = "no_tts")]
    pub tts: bool,
    /// Never serve text-to-speech.
    #[arg(long)]
    pub no_tts: bool,
    /// Text-to-speech model: a Hugging Face `VitsModel` folder or repo id; the original's
    /// `tts_models/en/ljspeech/vits` means kakao-enterprise/vits-ljs; naming one implies `--tts`.
    /// [default: tts_models/en/ljspeech/vits]
    #[arg(long)]
    pub tts_model: Option<String>,
    /// Run text-to-speech on a GPU (the default when there is one).
    #[arg(long, overrides_with = "tts_cpu")]
    pub tts_gpu: bool,
    /// Run text-to-speech on the CPU.
    #[arg(long)]
    pub tts_cpu: bool,
    /// The GPU for text-to-speech, by (part of) its name.
    #[arg(long, value_name = "NAME")]
    pub tts_gpu_name: Option<String>,
    /// The GPU for text-to-speech, by (a prefix of) its UUID.
    #[arg(long, value_name = "UUID")]
    pub tts_gpu_uuid: Option<String>,
}

/// The original's model names, and what they mean here.
pub const DEFAULT_SPEECH_MODEL: &str = "nvidia/parakeet-tdt-0.6b-v3";
/// The original's Coqui name for its LJSpeech VITS voice (the cache key keeps this name).
pub const DEFAULT_TTS_MODEL: &str = "tts_models/en/ljspeech/vits";

impl AudioArgs {
    /// This machine's speech-to-text and text-to-speech services: discovers the GPUs and looks
    /// in the Hugging Face cache. An error when a named GPU is not there.
    pub fn services(&self) -> anyhow::Result<(Option<ServiceConfig>, Option<ServiceConfig>)> {
        let gpus = crate::gpu::discover();
        let speech = self.speech_service(&gpus, crate::speech::in_cache).map_err(anyhow::Error::msg)?;
        let tts = self.tts_service(&gpus, crate::tts::in_cache).map_err(anyhow::Error::msg)?;
        Ok((speech, tts))
    }

    /// This machine's speech-to-text service, given its GPUs; `in_cache` says whether a model is
    /// already on disk. `Err` when a named GPU is not there.
    pub fn speech_service(
        &self,
        gpus: &[GpuInfo],
        in_cache: impl Fn(&str) -> bool,
    ) -> Result<Option<ServiceConfig>, String> {
        service(
            Wanted {
                kind: "speech-to-text",
                on: self.speech,
                off: self.no_speech,
                model: self.speech_model.as_deref(),
                default_model: DEFAULT_SPEECH_MODEL,
                cpu: self.speech_cpu,
                gpu_name: self.speech_gpu_name.as_deref(),
                gpu_uuid: self.speech_gpu_uuid.as_deref(),
            },
            gpus,
            in_cache,
        )
    }

    /// This machine's text-to-speech service (see [`AudioArgs::speech_service`]).
    pub fn tts_service(
        &self,
        gpus: &[GpuInfo],
        in_cache: impl Fn(&str) -> bool,
    ) -> Result<Option<ServiceConfig>, String> {
        service(
            Wanted {
                kind: "text-to-speech",
                on: self.tts,
                off: self.no_tts,
                model: self.tts_model.as_deref(),
                default_model: DEFAULT_TTS_MODEL,
                cpu: self.tts_cpu,
                gpu_name: self.tts_gpu_name.as_deref(),
                gpu_uuid: self.tts_gpu_uuid.as_deref(),
            },
            gpus,
            in_cache,
        )
    }
}

struct Wanted<'a> {
    kind: &'static str,
    on: bool,
    off: bool,
    model: Option<&'a str>,
    default_model: &'static str,
    cpu: bool,
    gpu_name: Option<&'a str>,
    gpu_uuid: Option<&'a str>,
}

/// Off when told; on when asked for (any of its flags) or when there is a GPU or the model is
/// already cached; fetched when missing only when asked for or on a GPU.
fn service(w: Wanted, gpus: &[GpuInfo], in_cache: impl Fn(&str) -> bool) -> Result<Option<ServiceConfig>, String> {
    if w.off {
        return Ok(None);
    }
    let asked = w.on || w.model.is_some() || w.gpu_name.is_some() || w.gpu_uuid.is_some();
    let gpu = if w.cpu {
        None
    } else {
        crate::gpu::choose(gpus, w.gpu_name, w.gpu_uuid).map_err(|e| format!("{}: {e}", w.kind))?
    };
    let model = w.model.unwrap_or(w.default_model).to_string();
    if !asked && gpu.is_none() && !in_cache(&model) {
        tracing::info!(
            "{}: no GPU and {model} is not in the Hugging Face cache, so this machine does not serve it \
             (--{} fetches it and runs it on the CPU)",
            w.kind,
            if w.kind == "speech-to-text" { "speech" } else { "tts" }
        );
        return Ok(None);
    }
    Ok(Some(ServiceConfig { download: asked || gpu.is_some(), model, gpu }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The agent's options as the binary flattens them, alone.
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> RunArgs {
        Cli::try_parse_from(std::iter::once("piface-agent").chain(args.iter().copied())).unwrap().run
    }

    #[test]
    fn audio_services_follow_flags_gpus_and_cache() {
        let gpu = GpuInfo {
            index: 0,
            name: "NVIDIA GeForce GTX 1080 Ti".into(),
            uuid: "GPU-1080".into(),
            memory_mib: 11264,
            memory_free_mib: 11000,
            compute_capability: Some("6.1".into()),
            pci_bus_id: "00000000:65:00.0".into(),
        };
        let audio = |args: &[&str]| parse(args).audio;
        let never = |_: &str| false;
        // No GPU, nothing cached, nothing asked: no service.
        assert!(audio(&[]).speech_service(&[], never).unwrap().is_none());
        // Cached: served on the CPU, not fetched.
        let s = audio(&[]).speech_service(&[], |m| m == DEFAULT_SPEECH_MODEL).unwrap().unwrap();
        assert_eq!((s.model.as_str(), s.gpu.is_none(), s.download), (DEFAULT_SPEECH_MODEL, true, false));
        // A GPU: served there and fetched.
        let s = audio(&[]).speech_service(std::slice::from_ref(&gpu), never).unwrap().unwrap();
        assert_eq!((s.gpu.map(|g| g.uuid), s.download), (Some("GPU-1080".into()), true));
        // Asked for on the CPU.
        let s = audio(&["--tts", "--tts-cpu"]).tts_service(std::slice::from_ref(&gpu), never).unwrap().unwrap();
        assert_eq!((s.model.as_str(), s.gpu.is_none(), s.download), (DEFAULT_TTS_MODEL, true, true));
        assert!(audio(&["--no-speech"]).speech_service(std::slice::from_ref(&gpu), never).unwrap().is_none());
        // A named GPU that is not there fails fast.
        let err = audio(&["--speech-gpu-name", "RTX 4090"]).speech_service(&[gpu], never).unwrap_err();
        assert!(err.contains("RTX 4090") && err.contains("GTX 1080 Ti"), "{err}");
        let s = audio(&["--speech-model", "/m/x.nemo"]).speech_service(&[], never).unwrap().unwrap();
        assert_eq!(s.model, "/m/x.nemo");
    }

    #[test]
    fn run_args_become_the_link_and_agent_settings() {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "  PIFACE1.x\n").unwrap();
        let data = dir.path().join("agent");
        let (file, data_s) = (token_file.to_str().unwrap(), data.to_str().unwrap());
        let args = ["--coordinator", "h:7833", "--name", "box", "--data-dir", data_s, "--token-file", file];
        let (link, agent) =
            parse(&[&args[..], &["--link-timeout", "9", "--no-speech", "--no-tts"]].concat()).configs().unwrap();
        assert_eq!((link.coordinators.as_slice(), link.name.as_str()), (&["h:7833".to_string()][..], "box"));
        assert_eq!(link.token.as_deref(), Some("PIFACE1.x"));
        assert_eq!(
            link.transport,
            Transport { idle_timeout: Duration::from_secs(9), keep_alive: Duration::from_secs(3) }
        );
        assert_eq!(link.replay_bytes, 64 << 20);
        assert_eq!(
            (agent.state_dir.as_path(), agent.private_dirs.last().map(PathBuf::as_path)),
            (&*data, Some(&*data))
        );
        assert!(agent.speech.is_none() && agent.tts.is_none());
        // Keep-alives never wait longer than 5 s; the agent needs a coordinator.
        let long = parse(&["--link-timeout", "60"]).transport();
        assert_eq!((long.idle_timeout.as_secs(), long.keep_alive.as_secs()), (60, 5));
        let err = parse(&["--no-speech", "--no-tts"]).configs().unwrap_err();
        assert!(err.to_string().contains("--coordinator"), "{err}");
    }
}
