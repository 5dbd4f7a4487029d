//! `.piface/workspace.toml`: the per-project workspace config (version 1 of the original's
//! schema), read with defaults, validated, and written back whole.

use std::path::Path;

use piface_shared::protocol::ToolError;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The skins a `[ui] skin_override` may name.
pub const SKINS: [&str; 12] = [
    "default",
    "beos",
    "facebook2007",
    "nintendo",
    "nintendo-nes",
    "windows98",
    "macos8",
    "winamp",
    "protoss",
    "terran",
    "zerg",
    "synthwave",
];

/// The whole file. Field order is the order the writer emits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkspaceConfig {
    pub version: i64,
    pub workspace: Workspace,
    pub env: Env,
    pub files: Files,
    pub bootstrap: Option<Script>,
    pub launch: Option<Launch>,
    pub git: Git,
    pub ui: Ui,
}

impl Default for WorkspaceConfig {
    fn default() -> Self {
        WorkspaceConfig {
            version: 1,
            workspace: Workspace::default(),
            env: Env::default(),
            files: Files::default(),
            bootstrap: None,
            launch: None,
            git: Git::default(),
            ui: Ui::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Workspace {
    pub mode: String,
    pub root: String,
    pub name_template: String,
    pub default_base: String,
    pub branch_prefix: String,
    pub auto_cleanup: bool,
}

impl Default for Workspace {
    fn default() -> Self {
        Workspace {
            mode: "git_worktree".into(),
            root: "~/.local/share/piface/worktrees/{project_slug}".into(),
            name_template: "{session_slug}-{short_id}".into(),
            default_base: "current_branch".into(),
            branch_prefix: "piface".into(),
            auto_cleanup: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Env {
    pub use_direnv: bool,
}

impl Default for Env {
    fn default() -> Self {
        Env { use_direnv: true }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Files {
    #[serde(alias = "copy_paths")]
    pub copy: Vec<String>,
    pub symlink: Vec<String>,
}

/// `[bootstrap]`: run once in a new worktree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Script {
    pub shell: String,
    pub use_direnv: bool,
    pub cwd: String,
    pub script: String,
    pub timeout_seconds: u64,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            shell: "bash".into(),
            use_direnv: true,
            cwd: "workspace_root".into(),
            script: String::new(),
            timeout_seconds: 1800,
        }
    }
}

/// `[launch]`: a wrapper script run before pi and/or the terminal's shell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Launch {
    pub shell: String,
    pub apply_to: Vec<String>,
    pub script: String,
    pub timeout_seconds: u64,
}

impl Default for Launch {
    fn default() -> Self {
        Launch {
            shell: "bash".into(),
            apply_to: vec!["pi".into(), "pty".into()],
            script: String::new(),
            timeout_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Git {
    pub create_branch: bool,
    pub branch_template: String,
    pub detach: bool,
}

impl Default for Git {
    fn default() -> Self {
        Git { create_branch: true, branch_template: "{branch_prefix}/{workspace_name}".into(), detach: false }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ui {
    pub label_template: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theme_override: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skin_override: Option<String>,
}

impl Default for Ui {
    fn default() -> Self {
        Ui { label_template: "{session_name} [{workspace_name}]".into(), theme_override: None, skin_override: None }
    }
}

impl WorkspaceConfig {
    /// Blank scripts remove their section; then the schema's rules.
    pub fn normalize_and_validate(mut self) -> Result<WorkspaceConfig, String> {
        if self.bootstrap.as_ref().is_some_and(|b| b.script.trim().is_empty()) {
            self.bootstrap = None;
        }
        if self.launch.as_ref().is_some_and(|l| l.script.trim().is_empty()) {
            self.launch = None;
        }
        if self.version != 1 {
            return Err(format!("version must be 1, not {}", self.version));
        }
        if self.workspace.mode != "git_worktree" {
            return Err(format!("workspace.mode must be \"git_worktree\", not {:?}", self.workspace.mode));
        }
        if self.git.create_branch && self.git.detach {
            return Err("git.create_branch and git.detach cannot both be true".into());
        }
        if let Some(l) = &self.launch {
            if let Some(bad) = l.apply_to.iter().find(|a| !["pi", "pty"].contains(&a.as_str())) {
                return Err(format!("launch.apply_to items must be \"pi\" or \"pty\", not {bad:?}"));
            }
        }
        if let Some(b) = &self.bootstrap {
            if b.cwd != "workspace_root" {
                return Err(format!("bootstrap.cwd must be \"workspace_root\", not {:?}", b.cwd));
            }
        }
        if let Some(t) = self.ui.theme_override.as_deref().filter(|t| !["light", "dark"].contains(t)) {
            return Err(format!("ui.theme_override must be \"light\" or \"dark\", not {t:?}"));
        }
        if let Some(s) = self.ui.skin_override.as_deref().filter(|s| !SKINS.contains(s)) {
            return Err(format!("ui.skin_override must be one of {}, not {s:?}", SKINS.join(", ")));
        }
        Ok(self)
    }

    /// The config's JSON form: the TOML key names, absent sections as `null`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        for key in ["theme_override", "skin_override"] {
            if v["ui"].get(key).is_none() {
                v["ui"][key] = serde_json::Value::Null;
            }
        }
        v
    }
}

/// The `[launch]` section of `project_dir`'s config when it applies to `target` (`pi` or
/// `pty`); an unreadable config is logged and ignored. A launch script whose file is not
/// trusted is an error: the text says what would run and how to trust it.
pub fn launch_for(
    trust: &super::trust::TrustStore,
    project_dir: Option<&str>,
    target: &str,
) -> Result<Option<Launch>, String> {
    let Some(dir) = project_dir.map(Path::new) else { return Ok(None) };
    let loaded = match load_file(dir) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("workspace config ignored: {e}");
            return Ok(None);
        }
    };
    let uses = if target == "pty" { super::trust::Use::Pty } else { super::trust::Use::Pi };
    super::trust::check(trust, dir, &loaded, &[uses]).map_err(|e| e.detail)?;
    Ok(loaded.config.launch.filter(|l| l.apply_to.iter().any(|a| a == target)))
}

/// `dir`'s workspace file.
pub fn config_path(dir: &Path) -> std::path::PathBuf {
    dir.join(".piface").join("workspace.toml")
}

/// Largest workspace file read; a longer one is refused from its size, before it is read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// A project's workspace file as read once: the SHA-256 of its bytes and the config they hold.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Whether the file exists (else `config` is the defaults).
    pub has_file: bool,
    /// Hex SHA-256 of the bytes parsed; `None` without a file.
    pub sha256: Option<String>,
    /// The validated config.
    pub config: WorkspaceConfig,
}

/// The bytes of `dir/.piface/workspace.toml`, `None` when there is none. Neither `.piface` nor
/// the file is followed when it is a symlink (a committed link would make Piface read, and show
/// in errors, a file outside the project).
fn read_file(dir: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use rustix::fs::{Mode, OFlags};
    use std::io::Read;
    let open_dir = rustix::fs::open(dir, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty());
    let fd = open_dir.and_then(|d| {
        let piface = rustix::fs::openat(
            &d,
            ".piface",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        rustix::fs::openat(
            &piface,
            "workspace.toml",
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
    });
    let fd = match fd {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
            return Err(std::io::Error::other("a symlink; workspace files are not read through links"))
        }
        Err(e) => return Err(e.into()),
    };
    let file = std::fs::File::from(fd);
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    Ok(Some(bytes))
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads project `dir`'s workspace file once: its hash and config; defaults without a file.
pub fn load_file(dir: &Path) -> Result<Loaded, String> {
    let path = config_path(dir);
    let Some(bytes) = read_file(dir).map_err(|e| format!("reading {}: {e}", path.display()))? else {
        return Ok(Loaded { has_file: false, sha256: None, config: WorkspaceConfig::default() });
    };
    let sha256 = sha256_hex(&bytes);
    let text = std::str::from_utf8(&bytes).map_err(|e| format!("{}: not UTF-8: {e}", path.display()))?;
    let config = parse(text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Loaded { has_file: true, sha256: Some(sha256), config })
}

/// Reads the config of project `dir`: `(has_file, config)`; defaults without a file.
pub fn load(dir: &Path) -> Result<(bool, WorkspaceConfig), String> {
    load_file(dir).map(|l| (l.has_file, l.config))
}

/// Reads a config from the text of a workspace file and validates it.
pub fn parse(text: &str) -> Result<WorkspaceConfig, String> {
    let config: WorkspaceConfig = toml::from_str(text).map_err(|e| e.to_string())?;
    config.normalize_and_validate()
}

/// `GET /api/workspace/config`.
pub fn get(path: &str) -> Result<serde_json::Value, ToolError> {
    let dir = Path::new(path);
    if !dir.is_dir() {
        return Err(ToolError::new(400, format!("Directory does not exist: {path}")));
    }
    let (has_file, config) = load(dir).map_err(|e| ToolError::new(400, e))?;
    Ok(json!({ "project_dir": path, "has_config_file": has_file, "config": config.to_json() }))
}

/// `PUT /api/workspace/config`: validates `config_json` and writes the file whole; what the
/// user wrote is trusted (see `trust.rs`).
pub fn put(path: &str, config_json: &str, trust: &super::trust::TrustStore) -> Result<serde_json::Value, ToolError> {
    let dir = Path::new(path);
    if !dir.is_dir() {
        return Err(ToolError::new(400, format!("Directory does not exist: {path}")));
    }
    let mut value: serde_json::Value =
        serde_json::from_str(config_json).map_err(|e| ToolError::new(400, format!("Invalid config: {e}")))?;
    // `null` sections mean "absent", as the reader reports them.
    if let Some(obj) = value.as_object_mut() {
        obj.retain(|_, v| !v.is_null());
        if let Some(ui) = obj.get_mut("ui").and_then(|u| u.as_object_mut()) {
            ui.retain(|_, v| !v.is_null());
        }
    }
    let config: WorkspaceConfig =
        serde_json::from_value(value).map_err(|e| ToolError::new(400, format!("Invalid config: {e}")))?;
    let config = config.normalize_and_validate().map_err(|e| ToolError::new(400, format!("Invalid config: {e}")))?;
    let text =
        toml::to_string_pretty(&config).map_err(|e| ToolError::new(500, format!("Failed to write config: {e}")))?;
    write_atomic(dir, text.as_bytes()).map_err(|e| ToolError::new(500, format!("Failed to write config: {e}")))?;
    // Trust what was written, keyed like every reader keys it: the canonical directory.
    let project = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if let Err(e) = trust.trust(&project, &sha256_hex(text.as_bytes())) {
        tracing::warn!(project = %project.display(), "saved config not recorded as trusted: {e}");
    }
    Ok(json!({ "success": true, "project_dir": path, "config": config.to_json() }))
}

/// Replaces `dir/.piface/workspace.toml` with `bytes`, whole or not at all, without following
/// a link: `.piface` is opened (or made) with `O_NOFOLLOW`, the bytes go to a fresh name made
/// there with `O_CREAT | O_EXCL` (never an existing file or link, so a committed
/// `workspace.toml.tmp` symlink is left alone), and that name is renamed over the file, which
/// replaces a link of that name rather than writing through it. All relative to directory
/// handles, so nothing can be swapped in between.
fn write_atomic(dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use rustix::fs::{Mode, OFlags};
    use std::io::Write;
    let project = rustix::fs::open(dir, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let piface = match rustix::fs::openat(&project, ".piface", dir_flags, Mode::empty()) {
        Err(rustix::io::Errno::NOENT) => {
            match rustix::fs::mkdirat(&project, ".piface", Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            rustix::fs::openat(&project, ".piface", dir_flags, Mode::empty())?
        }
        other => other?,
    };
    let tmp_name = format!(".workspace.toml.{}.tmp", &sha256_hex(&random_bytes())[..16]);
    let fd = rustix::fs::openat(
        &piface,
        tmp_name.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    let mut file = std::fs::File::from(fd);
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    let renamed =
        written.and_then(|()| Ok(rustix::fs::renameat(&piface, tmp_name.as_str(), &piface, "workspace.toml")?));
    if renamed.is_err() {
        let _ = rustix::fs::unlinkat(&piface, tmp_name.as_str(), rustix::fs::AtFlags::empty());
    }
    renamed
}

fn random_bytes() -> [u8; 16] {
    let mut buf = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_a_file_and_a_round_trip_through_put() {
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let trust = super::super::trust::TrustStore::new(state.path());
        let p = dir.path().to_str().unwrap();
        let got = get(p).unwrap();
        assert_eq!(got["has_config_file"], false);
        assert_eq!(got["config"]["workspace"]["mode"], "git_worktree");
        assert!(got["config"]["bootstrap"].is_null() && got["config"]["ui"]["skin_override"].is_null());

        let mut config = got["config"].clone();
        config["ui"]["skin_override"] = "beos".into();
        config["launch"] = json!({"script": "export A=1\nexport B=\"two\"", "apply_to": ["pty"]});
        config["bootstrap"] = json!({"script": "   "});
        config["files"] = json!({"copy_paths": [".env"]});
        let put_reply = put(p, &config.to_string(), &trust).unwrap();
        assert_eq!(put_reply["config"]["bootstrap"], serde_json::Value::Null, "a blank script drops the section");

        let again = get(p).unwrap();
        assert_eq!(again["has_config_file"], true);
        assert_eq!(again["config"]["ui"]["skin_override"], "beos");
        assert_eq!(again["config"]["launch"]["script"], "export A=1\nexport B=\"two\"", "quotes survive");
        assert_eq!(again["config"]["launch"]["shell"], "bash");
        assert_eq!(again["config"]["files"]["copy"], json!([".env"]));
        let text = std::fs::read_to_string(dir.path().join(".piface/workspace.toml")).unwrap();
        let order: Vec<usize> = ["version", "[workspace]", "[env]", "[files]", "[launch]", "[git]", "[ui]"]
            .iter()
            .map(|k| text.find(k).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    }

    #[test]
    fn invalid_configs_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let trust = super::super::trust::TrustStore::new(state.path());
        let p = dir.path().to_str().unwrap();
        for (config, needle) in [
            (json!({"version": 2}), "version must be 1"),
            (json!({"workspace": {"mode": "shared"}}), "workspace.mode"),
            (json!({"git": {"create_branch": true, "detach": true}}), "cannot both"),
            (json!({"launch": {"script": "x", "apply_to": ["gui"]}}), "apply_to"),
            (json!({"ui": {"skin_override": "vista"}}), "skin_override"),
            (json!({"ui": {"theme_override": "sepia"}}), "theme_override"),
            (json!({"env": {"use_direnv": "yes"}}), "Invalid config"),
        ] {
            let e = put(p, &config.to_string(), &trust).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.detail.contains(needle), "{} lacks {needle}", e.detail);
        }
        assert!(!dir.path().join(".piface").exists(), "nothing written");
        assert_eq!(get("/no/such/dir").unwrap_err().status, 400);
        std::fs::create_dir(dir.path().join(".piface")).unwrap();
        std::fs::write(dir.path().join(".piface/workspace.toml"), "version = [").unwrap();
        assert_eq!(get(p).unwrap_err().status, 400);
    }

    #[test]
    fn saving_follows_no_committed_link_and_trusts_what_it_wrote() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let trust = super::super::trust::TrustStore::new(state.path());
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        std::fs::create_dir(dir.path().join(".piface")).unwrap();
        // The old fixed temporary name, committed as a link out of the project.
        symlink(&victim, dir.path().join(".piface/workspace.toml.tmp")).unwrap();
        let p = dir.path().to_str().unwrap();
        let config = json!({"launch": {"script": "export A=1"}});
        put(p, &config.to_string(), &trust).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me", "the link was not followed");
        let loaded = load_file(dir.path()).unwrap();
        assert!(loaded.config.launch.is_some());
        let project = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(trust.trusted(&project), loaded.sha256, "what the user saved is trusted");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join(".piface"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".workspace.toml."))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        // A link at the file itself is replaced, not written through, and never read.
        std::fs::remove_file(dir.path().join(".piface/workspace.toml")).unwrap();
        symlink(&victim, dir.path().join(".piface/workspace.toml")).unwrap();
        assert!(load_file(dir.path()).unwrap_err().contains("symlink"));
        put(p, &config.to_string(), &trust).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        assert!(!std::fs::symlink_metadata(dir.path().join(".piface/workspace.toml")).unwrap().is_symlink());

        // A `.piface` that is a link out of the project is neither read nor written through.
        let other = tempfile::tempdir().unwrap();
        symlink(outside.path(), other.path().join(".piface")).unwrap();
        std::fs::write(outside.path().join("workspace.toml"), "version = 1\n").unwrap();
        assert!(load_file(other.path()).is_err());
        assert!(put(other.path().to_str().unwrap(), &config.to_string(), &trust).is_err());
        assert_eq!(std::fs::read_to_string(outside.path().join("workspace.toml")).unwrap(), "version = 1\n");
    }
}
