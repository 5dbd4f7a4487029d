//! Command-line interface of the `piface` binary, k3s-style: one binary, subcommands per role.
//!
//! `piface` alone is `piface serve`. The original's flags are accepted where they apply;
//! speech and TTS flags are accepted before those features exist, with a clear message.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// Address to bind. The default keeps Piface off the network: it has no login, so expose
    /// it only through something that authenticates (e.g. `tailscale serve`).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
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
    /// Proxy the UI to a Vite dev server (not supported yet).
    #[arg(long)]
    pub dev: bool,
    /// Enable speech-to-text.
    #[arg(long, overrides_with = "no_speech")]
    pub speech: bool,
    /// Disable speech-to-text.
    #[arg(long)]
    pub no_speech: bool,
    /// Speech-to-text model.
    #[arg(long, default_value = "nvidia/parakeet-tdt-0.6b-v3")]
    pub speech_model: String,
    /// Prefer a GPU for speech-to-text.
    #[arg(long, overrides_with = "speech_cpu")]
    pub speech_gpu: bool,
    /// Run speech-to-text on the CPU.
    #[arg(long)]
    pub speech_cpu: bool,
    /// Enable text-to-speech.
    #[arg(long, overrides_with = "no_tts")]
    pub tts: bool,
    /// Disable text-to-speech.
    #[arg(long)]
    pub no_tts: bool,
    /// Text-to-speech model.
    #[arg(long, default_value = "tts_models/en/ljspeech/vits")]
    pub tts_model: String,
    /// Prefer a GPU for text-to-speech.
    #[arg(long, overrides_with = "tts_cpu")]
    pub tts_gpu: bool,
    /// Run text-to-speech on the CPU.
    #[arg(long)]
    pub tts_cpu: bool,
}

impl ServeArgs {
    /// Whether new sessions use direnv by default (on unless `--no-direnv`).
    pub fn direnv_default(&self) -> bool {
        !self.no_direnv
    }

    /// Messages about options that are accepted but have no effect yet.
    pub fn notices(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.no_speech {
            out.push(format!(
                "speech-to-text ({}) is not available in this build yet; /transcribe answers 503",
                self.speech_model
            ));
        }
        if !self.no_tts {
            out.push(format!(
                "text-to-speech ({}) is not available in this build yet; /tts answers 503",
                self.tts_model
            ));
        }
        if self.dev {
            out.push("--dev is not supported yet; serving the built-in UI".into());
        }
        out
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
        assert_eq!(args.notices().len(), 1);
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
    fn bad_flags_are_refused() {
        assert!(Cli::try_parse_from(["piface", "--port", "x"]).is_err());
        assert!(Cli::try_parse_from(["piface", "serve", "--bogus"]).is_err());
    }
}
