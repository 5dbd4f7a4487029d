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
/// `pty`); an unreadable config is logged and ignored.
pub fn launch_for(project_dir: Option<&str>, target: &str) -> Option<Launch> {
    let dir = Path::new(project_dir?);
    match load(dir) {
        Ok((_, config)) => config.launch.filter(|l| l.apply_to.iter().any(|a| a == target)),
        Err(e) => {
            tracing::warn!("workspace config ignored: {e}");
            None
        }
    }
}

fn config_path(dir: &Path) -> std::path::PathBuf {
    dir.join(".piface").join("workspace.toml")
}

/// Reads the config of project `dir`: `(has_file, config)`; defaults without a file.
pub fn load(dir: &Path) -> Result<(bool, WorkspaceConfig), String> {
    let path = config_path(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((false, WorkspaceConfig::default())),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let config: WorkspaceConfig = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((true, config.normalize_and_validate().map_err(|e| format!("{}: {e}", path.display()))?))
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

/// `PUT /api/workspace/config`: validates `config_json` and writes the file whole.
pub fn put(path: &str, config_json: &str) -> Result<serde_json::Value, ToolError> {
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
    let file = config_path(dir);
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(file.parent().expect("has a parent"))?;
        // Whole or not at all: a crash mid-write leaves the old file.
        let tmp = file.with_extension("toml.tmp");
        std::fs::write(&tmp, text.as_bytes())?;
        std::fs::rename(&tmp, &file)
    };
    write().map_err(|e| ToolError::new(500, format!("Failed to write config: {e}")))?;
    Ok(json!({ "success": true, "project_dir": path, "config": config.to_json() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_a_file_and_a_round_trip_through_put() {
        let dir = tempfile::tempdir().unwrap();
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
        let put_reply = put(p, &config.to_string()).unwrap();
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
            let e = put(p, &config.to_string()).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.detail.contains(needle), "{} lacks {needle}", e.detail);
        }
        assert!(!dir.path().join(".piface").exists(), "nothing written");
        assert_eq!(get("/no/such/dir").unwrap_err().status, 400);
        std::fs::create_dir(dir.path().join(".piface")).unwrap();
        std::fs::write(dir.path().join(".piface/workspace.toml"), "version = [").unwrap();
        assert_eq!(get(p).unwrap_err().status, 400);
    }
}
