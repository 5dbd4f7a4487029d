//! `deploy/` as a user runs it: the compose file against the compose-spec schema, the systemd
//! units through `systemd-analyze`, and the `single` and `cluster` profiles started for real with
//! podman-compose from the repository's compose file and Dockerfile.
//!
//! The images are built from local stand-ins of the public base images
//! (`scripts/containers/bases.sh`: Debian 12 by debootstrap, this machine's Node.js), since no
//! container registry is reachable here, and around this build's `piface` binary (the
//! Dockerfile's `prebuilt` target): the Rust stage needs a Rust image. Everything else of the
//! runtime stage — apt packages, pi with its Node.js, the user with the given UID/GID, tini, the
//! entrypoint — is the Dockerfile's own. pi in the containers talks to the fake LLM, listening on
//! the compose network's gateway (the host side of the containers' own network).
//!
//! Needs root, podman (runc, netavark), podman-compose, check-jsonschema, debootstrap and
//! systemd-analyze: `.ci/run` installs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use piface_test_support::piface::{assistant_text, git, Piface};
use piface_test_support::{spawn_fake_llm_at, FakeLlm, PiEnv};
use serde_json::{json, Value};

/// The uid/gid the test images are built for: not the default 1000, so that the build
/// arguments are what makes the bind-mounted repository the container user's.
const UID: u32 = 4242;
const IMAGE: &str = "localhost/piface-test:latest";

fn root() -> PathBuf {
    piface_test_support::workspace_root()
}

fn containers_conf() -> PathBuf {
    root().join("scripts/containers/containers.conf")
}

/// Runs a command to completion; fails the test with its output unless it succeeds.
fn run(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (.ci/run installs the container tools)"))
}

fn podman() -> Command {
    let mut cmd = Command::new("podman");
    cmd.env("CONTAINERS_CONF", containers_conf());
    cmd
}

/// The test image, built once per test process (both profiles use it).
fn image() -> &'static str {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        let bases =
            run(Command::new(root().join("scripts/containers/bases.sh")).env("CONTAINERS_CONF", containers_conf()));
        let mut bases = bases.lines();
        let (debian, node) = (bases.next().unwrap().to_string(), bases.next().unwrap().to_string());
        let prebuilt = root().join("deploy/prebuilt");
        std::fs::create_dir_all(&prebuilt).unwrap();
        std::fs::copy(PathBuf::from(env!("CARGO_BIN_EXE_piface")), prebuilt.join("piface")).unwrap();
        run(podman()
            .current_dir(root())
            .args(["build", "--quiet", "-f", "deploy/Dockerfile", "--target", "prebuilt", "-t", IMAGE])
            .args(["--build-arg", &format!("RUNTIME_IMAGE={debian}")])
            .args(["--build-arg", &format!("NODE_IMAGE={node}")])
            .args(["--build-arg", &format!("RUST_IMAGE={debian}")])
            .args(["--build-arg", &format!("UID={UID}"), "--build-arg", &format!("GID={UID}")])
            .arg("."));
        *built = true;
    }
    IMAGE
}

/// A compose project from `deploy/compose.yaml`, taken down with its volumes when dropped.
struct Compose {
    project: String,
    profile: &'static str,
    env: Vec<(String, String)>,
}

impl Compose {
    fn new(project: &str, profile: &'static str, env: Vec<(String, String)>) -> Compose {
        let compose = Compose { project: project.into(), profile, env };
        // Whatever an interrupted earlier run left.
        let _ = output(&mut compose.command(&["down", "-v", "-t", "5"]));
        compose
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("podman-compose");
        cmd.current_dir(root())
            .env("CONTAINERS_CONF", containers_conf())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(["-p", &self.project, "-f", "deploy/compose.yaml", "--profile", self.profile])
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        run(&mut self.command(args))
    }

    fn container(&self, service: &str) -> String {
        format!("{}_{service}_1", self.project)
    }

    /// `podman exec` in a service's container, as its user.
    fn exec(&self, service: &str, args: &[&str]) -> String {
        run(podman().arg("exec").arg(self.container(service)).args(args))
    }

    /// Runs the service's compose health check until it passes, then reads the state podman
    /// keeps (no systemd here to run the checks on their interval).
    fn wait_healthy(&self, service: &str) {
        let ctr = self.container(service);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if output(podman().args(["healthcheck", "run", &ctr])).status.success() {
                break;
            }
            assert!(Instant::now() < deadline, "{ctr} never became healthy:\n{}", self.logs(service));
            std::thread::sleep(Duration::from_millis(500));
        }
        let state = run(podman().args(["inspect", "--format", "{{.State.Health.Status}}", &ctr]));
        assert_eq!(state.trim(), "healthy");
    }

    fn logs(&self, service: &str) -> String {
        let out = output(podman().args(["logs", &self.container(service)]));
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    /// The host side of the project's network, where the containers reach the host.
    fn gateway(&self) -> std::net::IpAddr {
        let net = format!("{}_default", self.project);
        let out =
            run(podman().args(["network", "inspect", "--format", "{{range .Subnets}}{{.Gateway}} {{end}}", &net]));
        out.split_whitespace().find_map(|s| s.parse().ok()).unwrap_or_else(|| panic!("no gateway in {out:?}"))
    }

    /// The login token of a coordinator's or `serve`'s container.
    fn login(&self, service: &str, port: u16) -> Piface {
        let token = self.exec(service, &["piface", "auth", "token"]);
        let token = token.lines().next().expect("the token line").trim().to_string();
        Piface::attach(&format!("http://127.0.0.1:{port}"), Some(token)).unwrap()
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for service in ["piface", "coordinator", "agent"] {
                eprintln!("--- {service} ---\n{}", self.logs(service));
            }
        }
        let _ = output(&mut self.command(&["down", "-v", "-t", "5"]));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A directory for bind mounts, owned by the test images' user.
fn owned_dir(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
    run(Command::new("chown").arg("-R").arg(format!("{UID}:{UID}")).arg(path));
}

/// `projects/repo` (a git repository with one commit) and `pi-agent` (pi's settings, written
/// once the fake LLM's address is known), both owned by the images' user, as a user's own
/// directories would be.
struct HostDirs {
    dir: tempfile::TempDir,
}

impl HostDirs {
    fn new() -> HostDirs {
        let dir = tempfile::Builder::new().prefix("piface-deploy-").tempdir().unwrap();
        let repo = dir.path().join("projects/repo");
        std::fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("README.md"), "hello\n").unwrap();
        git(&repo, &["add", "."]);
        git(&repo, &["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "first"]);
        owned_dir(&dir.path().join("projects"));
        owned_dir(&dir.path().join("pi-agent"));
        // The tempdir itself is 0700 root: let the containers' user through.
        run(Command::new("chmod").arg("0755").arg(dir.path()));
        HostDirs { dir }
    }

    fn projects(&self) -> PathBuf {
        self.dir.path().join("projects")
    }

    fn pi_agent(&self) -> PathBuf {
        self.dir.path().join("pi-agent")
    }

    /// pi's `models.json` and `settings.json`, pointing at `llm`.
    fn point_pi_at(&self, llm: &FakeLlm) {
        let write = |name: &str, value: Value| {
            let path = self.pi_agent().join(name);
            std::fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
            run(Command::new("chown").arg(format!("{UID}:{UID}")).arg(&path));
        };
        write("models.json", PiEnv::models_json(&llm.base_url()));
        write("settings.json", PiEnv::default_settings());
    }
}

/// Prompts a session that makes pi run `bash` in the repository, and returns the answer.
async fn turn(server: &Piface, id: &str) -> String {
    let (mut ws, state) = server.connect(id).await.unwrap();
    assert_eq!(state["type"], "piface_session_state", "{state}");
    ws.send(&json!({"type": "prompt", "message": "[[bash:echo made by pi | tee from-pi.txt]]"})).await.unwrap();
    let events = ws.until_type("agent_end").await.unwrap();
    let end = events.last().unwrap();
    let messages = end["messages"].as_array().unwrap_or_else(|| panic!("{end}"));
    messages.iter().rev().find(|m| m["role"] == "assistant").map(assistant_text).unwrap_or_default()
}

#[test]
fn the_compose_file_passes_the_compose_spec_schema_and_each_profile_resolves() {
    run(Command::new("check-jsonschema")
        .args(["--builtin-schema", "vendor.compose-spec"])
        .arg(root().join("deploy/compose.yaml")));
    // What compose makes of the file for a profile, as JSON (podman-compose prints YAML; its own
    // PyYAML reads it back).
    let config = |profile: &str| -> Value {
        let yaml = run(Command::new("podman-compose")
            .current_dir(root())
            .env("CONTAINERS_CONF", containers_conf())
            .env("PIFACE_GPU_ID", "GPU-5d1e")
            .env("PIFACE_GPU_NAME", "GTX 1080 Ti")
            .args(["-f", "deploy/compose.yaml", "--profile", profile, "config"]));
        let mut child = Command::new("python3")
            .args(["-c", "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), yaml.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{yaml}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let services = |config: &Value| -> Vec<String> {
        let mut names: Vec<String> = config["services"].as_object().unwrap().keys().cloned().collect();
        names.sort();
        names
    };
    assert_eq!(services(&config("single")), ["piface"]);
    assert_eq!(services(&config("cluster")), ["agent", "coordinator"]);
    let gpu = config("gpu");
    assert_eq!(services(&gpu), ["coordinator", "gpu-agent"]);
    let agent = &gpu["services"]["gpu-agent"];
    let device = &agent["deploy"]["resources"]["reservations"]["devices"][0];
    assert_eq!(device["capabilities"], json!(["gpu"]), "{agent}");
    assert_eq!(device["device_ids"], json!(["GPU-5d1e"]), "{agent}");
    assert_eq!(device["driver"], "nvidia");
    let command: Vec<&str> = agent["command"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for pair in [["--speech-gpu-name", "GTX 1080 Ti"], ["--tts-gpu-name", "GTX 1080 Ti"]] {
        assert!(command.windows(2).any(|w| w == pair), "{command:?}");
    }
    assert!(command.contains(&"--speech") && command.contains(&"--tts"), "{command:?}");
    assert_eq!(agent["build"]["dockerfile"], "deploy/gpu.Dockerfile");
    assert!(agent["build"]["args"].to_string().contains("CUDA_COMPUTE_CAP=61"), "{agent}");
    for profile in ["single", "cluster"] {
        let yaml = config(profile);
        for (name, service) in yaml["services"].as_object().unwrap() {
            assert_eq!(service["stop_grace_period"], "30s", "{name}");
            if name != "agent" {
                let test = service["healthcheck"]["test"].to_string();
                assert!(test.contains("/api/health"), "{name}: {test}");
            }
            let volumes = service["volumes"].to_string();
            if name != "coordinator" {
                assert!(volumes.contains(":/projects"), "{name}: {volumes}");
                assert!(service["command"].to_string().contains("\"/projects\""), "{name}");
            } else {
                // A coordinator without a local agent refuses --fs-root.
                assert!(!service["command"].to_string().contains("--fs-root"), "{name}");
            }
        }
    }
}

#[test]
fn the_gpu_image_builds_on_cuda_12_for_the_1080_ti_by_default() {
    let file = std::fs::read_to_string(root().join("deploy/gpu.Dockerfile")).unwrap();
    let arg = |name: &str| -> String {
        let prefix = format!("ARG {name}=");
        let line = file.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {prefix}"));
        line[prefix.len()..].to_string()
    };
    for base in ["CUDA_DEVEL_IMAGE", "CUDA_RUNTIME_IMAGE"] {
        let image = arg(base);
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
        assert!(image.contains("nvidia/cuda") && tag.starts_with("12."), "{base}={image}: CUDA 12.x builds for Pascal");
    }
    assert_eq!(arg("CUDA_COMPUTE_CAP"), "61");
    assert!(file.contains(". scripts/cuda-env.sh \"${CUDA_COMPUTE_CAP}\""), "the same path as make serve-audio-1080");
    assert!(file.contains("--features cuda"));
    // cuda-env.sh refuses what the image's nvcc would be asked to do wrongly (CUDA 13 for sm_61).
    let env = std::fs::read_to_string(root().join("scripts/cuda-env.sh")).unwrap();
    assert!(env.contains("NVCC_PREPEND_FLAGS"));
}

/// Writes `unit`s into a throwaway root beside the distribution's units, with a stand-in
/// binary where they expect piface.
fn units_root() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for dir in ["usr/local/bin", "etc/systemd/system", "usr/lib/systemd", "home/.local/bin", "run"] {
        std::fs::create_dir_all(t.path().join(dir)).unwrap();
    }
    run(Command::new("cp").arg("-a").arg("/usr/lib/systemd/system").arg(t.path().join("usr/lib/systemd/")));
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_piface"));
    std::fs::copy(&bin, t.path().join("usr/local/bin/piface")).unwrap();
    std::fs::copy(&bin, t.path().join("home/.local/bin/piface")).unwrap();
    for unit in ["piface-coordinator.service", "piface-agent@.service"] {
        std::fs::copy(root().join("deploy/systemd").join(unit), t.path().join("etc/systemd/system").join(unit))
            .unwrap();
    }
    t
}

/// `systemd-analyze` with no complaint at all: it reports unknown keys and bad values as
/// warnings on stderr and still exits 0.
fn analyze(cmd: &mut Command) -> String {
    let out = output(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{cmd:?}: {}\n{stderr}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_systemd_units_verify_and_the_coordinator_is_sandboxed() {
    let t = units_root();
    analyze(
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", t.path().display()))
            .args(["piface-coordinator.service", "piface-agent@alice.service"]),
    );
    analyze(
        Command::new("systemd-analyze")
            .args(["--user", "verify"])
            .arg(root().join("deploy/systemd/piface.service"))
            .env("HOME", t.path().join("home"))
            .env("XDG_RUNTIME_DIR", t.path().join("run")),
    );
    let report = analyze(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(format!("--root={}", t.path().display()))
            .arg("piface-coordinator.service"),
    );
    let line = report.lines().find(|l| l.contains("Overall exposure level")).expect("an overall rating");
    let score: f64 = line.split(':').nth(1).and_then(|r| r.split_whitespace().next()).unwrap().parse().unwrap();
    println!("systemd-analyze security piface-coordinator.service: {score}");
    assert!(score <= 5.0, "{line}");
    // The agent's sandbox, as the issue asks: a read-only system, its user's home writable.
    let agent = std::fs::read_to_string(root().join("deploy/systemd/piface-agent@.service")).unwrap();
    for line in ["User=%i", "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/home/%i", "PrivateTmp=yes"]
    {
        assert!(agent.lines().any(|l| l == line), "{line}");
    }
    assert!(agent.lines().any(|l| l.starts_with("EnvironmentFile=")));
    // A user unit has no network-online.target to wait for; it says how to outlive the login.
    let user = std::fs::read_to_string(root().join("deploy/systemd/piface.service")).unwrap();
    assert!(!user.contains("network-online") && user.contains("loginctl enable-linger"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_single_profile_serves_the_ui_and_runs_pi_in_a_bind_mounted_repository() {
    let image = image();
    let dirs = HostDirs::new();
    let port = free_port();
    let compose = Compose::new(
        "piface-test-single",
        "single",
        vec![
            ("PIFACE_IMAGE".into(), image.into()),
            ("PIFACE_PORT".into(), port.to_string()),
            ("PIFACE_PROJECTS".into(), dirs.projects().display().to_string()),
            ("PIFACE_PI_AGENT_DIR".into(), dirs.pi_agent().display().to_string()),
        ],
    );
    compose.run(&["up", "-d"]);
    compose.wait_healthy("piface");
    let llm = spawn_fake_llm_at((compose.gateway(), 0).into()).await.unwrap();
    dirs.point_pi_at(&llm);
    let server = compose.login("piface", port);

    // The web UI, with the assets the shell names.
    let page = reqwest::get(server.url("/")).await.unwrap().text().await.unwrap();
    let asset = page
        .split('"')
        .find(|s| s.starts_with("/_app/immutable/") && s.ends_with(".js"))
        .unwrap_or_else(|| panic!("no immutable asset in the UI shell:\n{page}"))
        .to_string();
    let resp = reqwest::get(server.url(&asset)).await.unwrap();
    assert_eq!(resp.status(), 200, "{asset}");

    // A session in the mounted repository: the image's pi, the fake LLM on the host.
    let record = server
        .create_session(&json!({"working_dir": "/projects/repo", "provider": "fake", "model": "fake-model"}))
        .await
        .unwrap();
    let id = record["piface_id"].as_str().unwrap();
    // As on a workstation: the session gets a worktree of the mounted repository (git writes
    // into its .git as the image's user), in the default place, which the narrowed file root
    // (/projects) still allows.
    assert_eq!(record["workspace_mode"], "git_worktree", "{record}");
    let exec = record["execution_dir"].as_str().unwrap().to_string();
    assert!(exec.starts_with("/home/piface/.local/share/piface/worktrees/"), "{record}");
    assert_eq!(turn(&server, id).await, "tool said: made by pi");
    assert_eq!(compose.exec("piface", &["cat", &format!("{exec}/from-pi.txt")]), "made by pi\n");
    let worktrees = std::fs::read_dir(dirs.projects().join("repo/.git/worktrees")).unwrap().next().unwrap().unwrap();
    let meta = worktrees.metadata().unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), UID, "written as the image's user");

    // git works there (no "dubious ownership") and the Files tab lists it.
    let (status, git_status) = server.get(&format!("/api/sessions/{id}/git/status")).await.unwrap();
    assert_eq!(status, 200, "{git_status}");
    assert!(git_status.to_string().contains("from-pi.txt"), "{git_status}");
    for dir in ["/projects/repo", exec.as_str()] {
        let (status, listing) = server.get(&format!("/api/fs/list?path={dir}")).await.unwrap();
        assert_eq!(status, 200, "{listing}");
        assert!(listing.to_string().contains("README.md"), "{listing}");
    }
    // Outside /projects is refused: the container's home holds the login token.
    let (status, _) = server.get("/api/fs/list?path=/home/piface").await.unwrap();
    assert_eq!(status, 403);

    // The tools sessions and speech need.
    for tool in
        [&["ffmpeg", "-version"][..], &["espeak-ng", "--version"], &["direnv", "version"], &["git", "--version"]]
    {
        compose.exec("piface", tool);
    }
    assert_eq!(compose.exec("piface", &["id", "-u"]).trim(), UID.to_string());
    drop(llm);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_profile_joins_an_agent_that_keeps_its_identity_across_restarts() {
    let image = image();
    let dirs = HostDirs::new();
    let port = free_port();
    let quic = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let secrets = dirs.dir.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let token_file = secrets.join("join-token");
    let compose = Compose::new(
        "piface-test-cluster",
        "cluster",
        vec![
            ("PIFACE_IMAGE".into(), image.into()),
            ("PIFACE_PORT".into(), port.to_string()),
            ("PIFACE_QUIC_PORT".into(), quic.to_string()),
            ("PIFACE_PROJECTS".into(), dirs.projects().display().to_string()),
            ("PIFACE_PI_AGENT_DIR".into(), dirs.pi_agent().display().to_string()),
            ("PIFACE_JOIN_TOKEN_FILE".into(), token_file.display().to_string()),
            ("PIFACE_AGENT_NAME".into(), "box".into()),
        ],
    );
    // As deploy/README.md says: the coordinator first, then a join token for the agent.
    compose.run(&["up", "-d", "coordinator"]);
    compose.wait_healthy("coordinator");
    let token = compose.exec("coordinator", &["piface", "token", "create", "--ttl", "10m"]);
    std::fs::write(&token_file, token.trim()).unwrap();
    run(Command::new("chown").arg(format!("{UID}:{UID}")).arg(&token_file));
    run(Command::new("chmod").arg("0600").arg(&token_file));
    compose.run(&["up", "-d"]);

    let server = compose.login("coordinator", port);
    let identity = || compose.exec("agent", &["sh", "-c", "cat ~/.local/share/piface-agent/*.crt | sha256sum"]);
    wait_agent_up(&compose, &server, "box").await;
    let first = identity();

    let llm = spawn_fake_llm_at((compose.gateway(), 0).into()).await.unwrap();
    dirs.point_pi_at(&llm);
    let record = server
        .create_session(
            &json!({"working_dir": "/projects/repo", "agent": "box", "provider": "fake", "model": "fake-model"}),
        )
        .await
        .unwrap();
    let id = record["piface_id"].as_str().unwrap().to_string();
    assert_eq!(turn(&server, &id).await, "tool said: made by pi");

    // A restart keeps the identity: the join token is spent, so enrolling again would fail.
    compose.run(&["restart", "agent"]);
    wait_agent_up(&compose, &server, "box").await;
    assert_eq!(identity(), first);
    let logs = compose.logs("agent");
    assert_eq!(logs.matches("enrolled in the cluster").count(), 1, "{logs}");
    drop(llm);
}

/// Waits until `piface agent list`, run in the coordinator's container as a user would, shows
/// `name` up; then checks the API agrees.
async fn wait_agent_up(compose: &Compose, server: &Piface, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let list = compose.exec("coordinator", &["piface", "agent", "list"]);
        if list.lines().any(|l| l.split_whitespace().take(2).eq([name, "up"])) {
            break;
        }
        assert!(Instant::now() < deadline, "agent {name} not up:\n{list}\n{}", compose.logs("agent"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (_, agents) = server.get("/api/agents").await.unwrap();
    assert!(agents["agents"].as_array().unwrap().iter().any(|a| a["name"] == name && a["status"] == "up"), "{agents}");
}
