//! An isolated, offline environment for running the real `pi` against the fake LLM, and the lookup of the pi
//! binary that tests use.
//!
//! [`PiEnv`] owns a temporary directory holding a private `HOME` and pi agent directory
//! (`PI_CODING_AGENT_DIR`) whose `models.json` registers the provider `fake` (pointing at a
//! [`crate::fake_llm`] server) and whose `settings.json` selects `fake/fake-model`. Nothing from the
//! developer's own `~/.pi` leaks in, sessions of parallel tests never mix, and pi makes no network request at
//! start-up: `PI_OFFLINE=1` turns off its version check, package update checks, tool downloads (fd/rg) and
//! install telemetry.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::fake_llm::MODEL_ID;

/// The provider name that [`PiEnv`] registers in `models.json`.
pub const PROVIDER: &str = "fake";

/// Arguments for pi's RPC mode with the fake model and no session file.
pub const RPC_ARGS: [&str; 7] = ["--mode", "rpc", "--no-session", "--provider", PROVIDER, "--model", MODEL_ID];

/// A throw-away `HOME` + pi agent directory wired to one fake LLM; deleted on drop.
#[derive(Debug)]
pub struct PiEnv {
    dir: TempDir,
    home: PathBuf,
    agent_dir: PathBuf,
}

impl PiEnv {
    /// Creates the environment for a fake LLM at `base_url` (e.g. `http://127.0.0.1:PORT/v1`) with the default
    /// settings (see [`PiEnv::default_settings`]).
    pub fn new(base_url: &str) -> anyhow::Result<PiEnv> {
        PiEnv::with_settings(base_url, Value::Null)
    }

    /// Like [`PiEnv::new`], with `overrides` deep-merged over the default `settings.json` (objects merge key by
    /// key, anything else replaces). E.g. `json!({"retry": {"enabled": true}})` re-enables pi's auto-retry.
    pub fn with_settings(base_url: &str, overrides: Value) -> anyhow::Result<PiEnv> {
        let dir = tempfile::Builder::new().prefix("piface-pi-env-").tempdir().context("creating pi temp dir")?;
        let home = dir.path().join("home");
        let agent_dir = home.join(".pi").join("agent");
        std::fs::create_dir_all(&agent_dir).with_context(|| format!("creating {}", agent_dir.display()))?;

        let mut settings = PiEnv::default_settings();
        merge_json(&mut settings, overrides);
        write_json(&agent_dir.join("models.json"), &PiEnv::models_json(base_url))?;
        write_json(&agent_dir.join("settings.json"), &settings)?;
        Ok(PiEnv { dir, home, agent_dir })
    }

    /// The `models.json` registering provider `fake` with the single model `fake-model`.
    pub fn models_json(base_url: &str) -> Value {
        json!({
            "providers": {
                PROVIDER: {
                    "baseUrl": base_url,
                    "api": "openai-completions",
                    "apiKey": "test-key",
                    // Keep requests plain: no `developer` role, no `reasoning_effort`, no `store`, no
                    // `strict` on tool definitions — fields a minimal server need not understand.
                    "compat": {
                        "supportsDeveloperRole": false,
                        "supportsReasoningEffort": false,
                        "supportsStore": false,
                        "supportsStrictMode": false,
                        "supportsUsageInStreaming": true,
                    },
                    "models": [{
                        "id": MODEL_ID,
                        "name": "Fake Model",
                        "reasoning": false,
                        "input": ["text"],
                        "contextWindow": 128000,
                        "maxTokens": 16384,
                        "cost": { "input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0 },
                    }],
                }
            }
        })
    }

    /// The default `settings.json`.
    ///
    /// Besides selecting the fake model it turns off what would make tests slow or nondeterministic:
    /// - `retry`: the `openai` client's own two retries (~1 s apart) and pi's auto-retry of the whole turn
    ///   (2 s, 4 s, 8 s back-off, each attempt retried by the client again) would turn one `[[error:…]]` into
    ///   a dozen requests and half a minute of waiting, with `agent_end`s that are not final;
    /// - `compaction`: auto-compaction would send extra summarisation requests once a long answer (e.g.
    ///   `[[tokens:100000]]`) nears the context window;
    /// - `enableInstallTelemetry`/`quietStartup`: belt and braces next to `PI_OFFLINE=1`.
    pub fn default_settings() -> Value {
        json!({
            "defaultProvider": PROVIDER,
            "defaultModel": MODEL_ID,
            "defaultThinkingLevel": "off",
            "enableInstallTelemetry": false,
            "quietStartup": true,
            "retry": { "enabled": false, "provider": { "maxRetries": 0 } },
            "compaction": { "enabled": false },
        })
    }

    /// The temporary directory holding everything (the parent of [`PiEnv::home`]).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The private `HOME`.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The pi agent directory (`PI_CODING_AGENT_DIR`, `<home>/.pi/agent`).
    pub fn agent_dir(&self) -> &Path {
        &self.agent_dir
    }

    /// Environment variables to set on a pi process: `HOME`, `PI_CODING_AGENT_DIR` and pi's offline switches.
    pub fn envs(&self) -> Vec<(String, String)> {
        vec![
            ("HOME".into(), self.home.display().to_string()),
            ("PI_CODING_AGENT_DIR".into(), self.agent_dir.display().to_string()),
            // Disables every start-up network operation (version check, package update checks, fd/rg
            // downloads, install telemetry).
            ("PI_OFFLINE".into(), "1".into()),
            // Redundant with PI_OFFLINE; kept in case a pi version narrows what PI_OFFLINE covers.
            ("PI_SKIP_VERSION_CHECK".into(), "1".into()),
            ("PI_TELEMETRY".into(), "0".into()),
        ]
    }

    /// A `pi --mode rpc --no-session --provider fake --model fake-model` command running in `cwd` with this
    /// environment: stdin/stdout/stderr piped, killed when the handle is dropped.
    pub fn rpc_command(&self, cwd: &Path) -> anyhow::Result<tokio::process::Command> {
        let mut cmd = tokio::process::Command::new(pi_bin()?);
        cmd.args(RPC_ARGS)
            .current_dir(cwd)
            .envs(self.envs())
            // A session dir inherited from the developer's shell would escape the isolation.
            .env_remove("PI_CODING_AGENT_SESSION_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        Ok(cmd)
    }
}

/// Deep-merges `patch` into `base`: objects key by key, everything else (including `null` inside objects)
/// replaces. A top-level `null` patch changes nothing.
fn merge_json(base: &mut Value, patch: Value) {
    match (base, patch) {
        (_, Value::Null) => {}
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                match base.get_mut(&key) {
                    Some(slot) if value.is_object() => merge_json(slot, value),
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, patch) => *base = patch,
    }
}

fn write_json(path: &Path, value: &Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The workspace root (the directory holding the top-level `Cargo.toml` and `scripts/`).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().map(Path::to_path_buf).unwrap_or_else(|| manifest_dir.to_path_buf())
}

/// The pi binary for tests: `$PIFACE_TEST_PI` if set, else `<workspace>/.pi-runtime/node_modules/.bin/pi` if
/// present, else whatever `scripts/install-pi.sh` installs (run at most once per process; the script itself
/// holds a file lock, so parallel test processes don't race npm either).
pub fn pi_bin() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("PIFACE_TEST_PI").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let installed = workspace_root().join(".pi-runtime/node_modules/.bin/pi");
    if installed.exists() {
        return Ok(installed);
    }
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    INSTALLED.get_or_init(|| install_pi().map_err(|e| format!("{e:#}"))).clone().map_err(anyhow::Error::msg)
}

/// Runs `scripts/install-pi.sh` (a no-op when the pinned pi is already installed) and returns the path it
/// prints on its last line. Uncached; [`pi_bin`] calls it at most once per process.
pub fn install_pi() -> anyhow::Result<PathBuf> {
    let script = workspace_root().join("scripts/install-pi.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!("{} failed with {}", script.display(), output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(last) = stdout.lines().map(str::trim).rfind(|l| !l.is_empty()) else {
        bail!("{} printed no path", script.display());
    };
    let path = PathBuf::from(last);
    if !path.exists() {
        bail!("{} reported {}, which does not exist", script.display(), path.display());
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_settings() {
        let mut base = PiEnv::default_settings();
        merge_json(&mut base, json!({ "retry": { "enabled": true }, "theme": "light" }));
        assert_eq!(base["retry"], json!({ "enabled": true, "provider": { "maxRetries": 0 } }));
        assert_eq!(base["theme"], "light");
        assert_eq!(base["defaultModel"], MODEL_ID);
    }

    #[test]
    fn writes_isolated_config() {
        let env = PiEnv::new("http://127.0.0.1:9/v1").unwrap();
        assert!(env.agent_dir().starts_with(env.home()));
        let models: Value =
            serde_json::from_str(&std::fs::read_to_string(env.agent_dir().join("models.json")).unwrap()).unwrap();
        assert_eq!(models["providers"]["fake"]["baseUrl"], "http://127.0.0.1:9/v1");
        let envs = env.envs();
        assert!(envs.iter().any(|(k, v)| k == "PI_OFFLINE" && v == "1"));
        assert!(envs.iter().any(|(k, v)| k == "HOME" && Path::new(v) == env.home()));
    }
}
