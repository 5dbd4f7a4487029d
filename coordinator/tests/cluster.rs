//! A coordinator and agent processes on loopback, over real QUIC with mutual TLS: enrollment
//! with join tokens, sessions on several agents, and the refusals (bad, expired, reused and
//! foreign tokens; removed agents).

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use piface_coordinator::pki::ClusterCa;
use piface_test_support::piface::{assistant_text, git_repo, Options, Piface};
use piface_test_support::udp_proxy::UdpProxy;
use piface_test_support::{pi_bin, spawn_fake_llm, FakeLlm, PiEnv};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const PIFACE: &str = env!("CARGO_BIN_EXE_piface");

/// A `piface agent` process with its own HOME, pi agent directory and data directory.
struct AgentProc {
    child: Child,
    log: Arc<Mutex<String>>,
    reader: Option<tokio::task::JoinHandle<()>>,
    _env: PiEnv,
    _data: tempfile::TempDir,
    args: Vec<String>,
    extra_env: Vec<(String, String)>,
    name: String,
}

fn spawn_agent(
    args: &[String],
    env: &PiEnv,
    extra_env: &[(String, String)],
    data: &Path,
    name: &str,
) -> (Child, Arc<Mutex<String>>, tokio::task::JoinHandle<()>) {
    let mut child = Command::new(PIFACE)
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .arg("--pi-bin")
        .arg(pi_bin().unwrap())
        .envs(env.envs())
        .envs(extra_env.iter().cloned())
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (sink, tag) = (log.clone(), name.to_string());
    let reader = tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[agent {tag}] {line}");
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    (child, log, reader)
}

impl AgentProc {
    fn start(llm: &FakeLlm, quic: &str, token: &str, name: &str) -> AgentProc {
        AgentProc::start_with(llm, quic, token, name, &[])
    }

    fn start_with(llm: &FakeLlm, quic: &str, token: &str, name: &str, extra: &[&str]) -> AgentProc {
        AgentProc::start_with_env(llm, quic, token, name, extra, &[])
    }

    fn start_with_env(
        llm: &FakeLlm,
        quic: &str,
        token: &str,
        name: &str,
        extra: &[&str],
        extra_env: &[(&str, &str)],
    ) -> AgentProc {
        let env = PiEnv::new(&llm.base_url()).unwrap();
        let data = tempfile::tempdir().unwrap();
        // The join token from a file, as a deployment passes it (not on the command line).
        let token_file = data.path().join("join-token");
        std::fs::write(&token_file, format!("{token}\n")).unwrap();
        let token_file = token_file.display().to_string();
        let mut args: Vec<String> =
            ["agent", "--coordinator", quic, "--token-file", &token_file, "--name", name].map(String::from).to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        if !extra.contains(&"--fs-root") {
            // Sessions must lie in the agent's file roots; the tests' projects are temporary.
            args.extend(["--fs-root".to_string(), std::env::temp_dir().display().to_string()]);
        }
        let extra_env: Vec<(String, String)> = extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (child, log, reader) = spawn_agent(&args, &env, &extra_env, data.path(), name);
        AgentProc { child, log, reader: Some(reader), _env: env, _data: data, args, extra_env, name: name.to_string() }
    }

    /// Kills the agent process (its pis die with their stdin) and starts it again with the same
    /// identity and environment.
    async fn restart(&mut self) {
        self.child.start_kill().unwrap();
        let _ = self.child.wait().await;
        let (child, log, reader) = spawn_agent(&self.args, &self._env, &self.extra_env, self._data.path(), &self.name);
        (self.child, self.log, self.reader) = (child, log, Some(reader));
    }

    async fn wait_for_log(&self, needle: &str) -> bool {
        for _ in 0..400 {
            if self.log.lock().unwrap().contains(needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Waits for the process to exit and for its log to be read to the end.
    async fn exit_code(&mut self) -> Option<i32> {
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await.ok()?.ok()?;
        if let Some(reader) = self.reader.take() {
            let _ = reader.await;
        }
        status.code()
    }
}

async fn coordinator(llm: &FakeLlm) -> (Piface, PiEnv) {
    let env = PiEnv::new(&llm.base_url()).unwrap();
    let opts =
        Options { bin: PIFACE.into(), pi_bin: pi_bin().unwrap(), envs: env.envs(), args: vec![], data_dir: None };
    (Piface::start_coordinator(opts).await.unwrap(), env)
}

fn token(data_dir: &Path, ttl: &str) -> String {
    let out = std::process::Command::new(PIFACE)
        .args(["token", "create", "--ttl", ttl, "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn agents(server: &Piface) -> Vec<Value> {
    server.get("/api/agents").await.unwrap().1["agents"].as_array().unwrap().clone()
}

async fn wait_agents_up(server: &Piface, names: &[&str]) {
    for _ in 0..400 {
        let list = agents(server).await;
        if names
            .iter()
            .all(|n| list.iter().any(|a| a["name"] == *n && a["status"] == "up" && a["hostname"].is_string()))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("agents {names:?} did not come up: {:?}", agents(server).await);
}

#[tokio::test]
async fn three_agents_join_and_run_sessions() {
    let llm = spawn_fake_llm().await.unwrap();
    let (server, _env) = coordinator(&llm).await;
    let quic = server.quic_addr.clone().unwrap();
    let names = ["alpha", "beta", "gamma"];
    let procs: Vec<AgentProc> =
        names.iter().map(|n| AgentProc::start(&llm, &quic, &token(&server.data_dir, "10m"), n)).collect();
    wait_agents_up(&server, &names).await;
    let list = agents(&server).await;
    assert_eq!(list.len(), 3, "{list:?}");
    assert!(list.iter().all(|a| a["pi_version"].as_str().is_some_and(|v| v.contains("0.73.1"))), "{list:?}");
    // No NVIDIA driver here: each agent says so with an empty list (NVML is loaded at run time).
    assert!(list.iter().all(|a| a["gpus"].as_array().is_some_and(Vec::is_empty) && a["hostname"].is_string()));

    // Without a local agent, a session must name its agent when several are up.
    let repo = git_repo();
    let (status, body) = server.post("/api/sessions", &json!({"working_dir": repo.path()})).await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("name one"));
    let (status, _) =
        server.post("/api/sessions", &json!({"working_dir": repo.path(), "agent": "nobody"})).await.unwrap();
    assert_eq!(status, 503);

    for name in names {
        let record = server
            .create_session(
                &json!({"working_dir": repo.path(), "agent": name, "provider": "fake", "model": "fake-model"}),
            )
            .await
            .unwrap();
        assert_eq!(record["agent"], name);
        let (mut ws, _) = server.connect(record["piface_id"].as_str().unwrap()).await.unwrap();
        ws.send(&json!({"type": "prompt", "message": format!("hello {name}")})).await.unwrap();
        let end = ws.until_type("agent_end").await.unwrap().pop().unwrap();
        let last = end["messages"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(assistant_text(&last), format!("echo: hello {name}"));
    }
    let list = agents(&server).await;
    assert!(list.iter().all(|a| a["live_sessions"] == 1), "{list:?}");
    drop(procs);
}

#[tokio::test]
async fn bad_tokens_and_removed_agents_are_refused() {
    let llm = spawn_fake_llm().await.unwrap();
    let (server, _env) = coordinator(&llm).await;
    let quic = server.quic_addr.clone().unwrap();
    let good = token(&server.data_dir, "10m");

    // A tampered token.
    let mut tampered = good.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    let mut a = AgentProc::start(&llm, &quic, &tampered, "tampered");
    assert_ne!(a.exit_code().await, Some(0));
    assert!(a.log.lock().unwrap().contains("refused"), "{}", a.log.lock().unwrap());

    // An expired token (made with the cluster's own key, in the past).
    let ca = ClusterCa::load_or_create(&server.data_dir.join("cluster")).unwrap();
    let expired = ca.create_token(Duration::from_secs(60), SystemTime::now() - Duration::from_secs(3600));
    let mut a = AgentProc::start(&llm, &quic, &expired, "late");
    assert_ne!(a.exit_code().await, Some(0));
    assert!(a.log.lock().unwrap().contains("expired"), "{}", a.log.lock().unwrap());

    // A token of another cluster: the coordinator's certificate does not match the pin.
    let other = tempfile::tempdir().unwrap();
    let foreign =
        ClusterCa::load_or_create(other.path()).unwrap().create_token(Duration::from_secs(600), SystemTime::now());
    let mut a = AgentProc::start(&llm, &quic, &foreign, "stranger");
    assert_ne!(a.exit_code().await, Some(0));
    assert!(a.log.lock().unwrap().to_lowercase().contains("fingerprint"), "{}", a.log.lock().unwrap());

    // A good token works once.
    let first = AgentProc::start(&llm, &quic, &good, "first");
    wait_agents_up(&server, &["first"]).await;
    let mut again = AgentProc::start(&llm, &quic, &good, "second");
    assert_ne!(again.exit_code().await, Some(0));
    assert!(again.log.lock().unwrap().contains("used already"), "{}", again.log.lock().unwrap());

    // Names are unique.
    let mut twin = AgentProc::start(&llm, &quic, &token(&server.data_dir, "10m"), "first");
    assert_ne!(twin.exit_code().await, Some(0));
    assert!(twin.log.lock().unwrap().contains("name"), "{}", twin.log.lock().unwrap());

    // A removed agent is cut off and cannot come back with its certificate.
    let resp = server.http.delete(server.url("/api/agents/first")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(agents(&server).await.iter().all(|a| a["name"] != "first"));
    assert!(first.wait_for_log("removed").await, "{}", first.log.lock().unwrap());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(agents(&server).await.iter().all(|a| a["name"] != "first"), "the removed agent got back in");
    assert!(server.stderr.lock().unwrap().contains("refused agent \"first\""), "no refusal in the coordinator's log");
    assert_eq!(server.http.delete(server.url("/api/agents/first")).send().await.unwrap().status().as_u16(), 404);
}

/// pids of processes other than `except` whose environment has `needle`.
fn pids_with_env(needle: &str, except: &[u32]) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if except.contains(&pid) {
            continue;
        }
        if std::fs::read(entry.path().join("environ"))
            .is_ok_and(|e| e.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
        {
            pids.push(pid);
        }
    }
    pids
}

#[tokio::test]
async fn a_coordinator_killed_mid_turn_finds_the_same_pi_when_it_comes_back() {
    let llm = spawn_fake_llm().await.unwrap();
    let env = PiEnv::new(&llm.base_url()).unwrap();
    let data = tempfile::tempdir().unwrap();
    // A fixed agent port, so the agent finds the restarted coordinator where it was.
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let opts = || Options {
        bin: PIFACE.into(),
        pi_bin: pi_bin().unwrap(),
        envs: env.envs(),
        args: vec!["--quic".into(), format!("127.0.0.1:{port}")],
        data_dir: Some(data.path().to_path_buf()),
    };
    let server = Piface::start_coordinator(opts()).await.unwrap();
    let quic = server.quic_addr.clone().unwrap();
    let agent = AgentProc::start(&llm, &quic, &token(&server.data_dir, "10m"), "worker");
    wait_agents_up(&server, &["worker"]).await;
    let repo = git_repo();
    let id = server
        .new_session(&json!({"working_dir": repo.path(), "agent": "worker", "provider": "fake", "model": "fake-model"}))
        .await;
    let needle = format!("PI_CODING_AGENT_DIR={}", agent._env.agent_dir().display());
    let agent_pid = agent.child.id().unwrap();
    let pis = pids_with_env(&needle, &[agent_pid]);
    assert_eq!(pis.len(), 1, "{pis:?}");

    let (mut ws, _) = server.connect(&id).await.unwrap();
    ws.send(&json!({"type": "prompt", "message": "[[tokens:300]] [[delay:10]]"})).await.unwrap();
    let mut updates = 0;
    while updates < 20 {
        if ws.next().await.unwrap()["type"] == "message_update" {
            updates += 1;
        }
    }
    server.kill9().await.unwrap();

    let server = Piface::start_coordinator(opts()).await.unwrap();
    wait_agents_up(&server, &["worker"]).await;
    assert_eq!(pids_with_env(&needle, &[agent_pid]), pis, "the same pi runs on");
    let want: String = (0..300).map(|i| format!("t{i} ")).collect();
    assert_eq!(
        server.wait_for_answer(&id, &want).await,
        want,
        "the turn completed and its whole answer is in the history"
    );
    drop(agent);
}

/// The fields of a relayed pi event that the link tests read; the rest (the whole partial
/// message, twice per `message_update`) is skipped unparsed.
#[derive(serde::Deserialize)]
struct Slim {
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "assistantMessageEvent")]
    update: Option<SlimUpdate>,
    message: Option<Value>,
    messages: Option<Vec<Value>>,
}

#[derive(serde::Deserialize)]
struct SlimUpdate {
    #[serde(rename = "type")]
    kind: String,
    delta: Option<String>,
}

/// Runs a streamed turn of `tokens` tokens (`delay_ms` apart) on `agent` while `disturb` cuts
/// or degrades the link, and checks the browser saw every token exactly once, in order.
/// `disturb` gets the number of tokens seen so far, to strike in the middle of the turn.
async fn turn_survives<F: std::future::Future<Output = ()>>(
    server: &Piface,
    agent: &str,
    tokens: usize,
    delay_ms: u64,
    disturb: impl FnOnce(tokio::sync::watch::Receiver<usize>) -> F,
) {
    let repo = git_repo();
    let id = server
        .new_session(&json!({"working_dir": repo.path(), "agent": agent, "provider": "fake", "model": "fake-model"}))
        .await;
    let (mut ws, _) = server.connect(&id).await.unwrap();
    ws.send(&json!({"type": "prompt", "message": format!("[[tokens:{tokens}]] [[delay:{delay_ms}]]")})).await.unwrap();
    let (seen, seen_rx) = tokio::sync::watch::channel(0usize);
    let reader = async {
        let mut deltas = Vec::with_capacity(tokens);
        let mut errors = Vec::new();
        loop {
            let e: Slim = ws.next_as().await.unwrap();
            match (e.kind.as_str(), e.update) {
                ("message_update", Some(SlimUpdate { kind, delta: Some(delta) })) if kind == "text_delta" => {
                    deltas.push(delta);
                    seen.send_replace(deltas.len());
                }
                ("piface_error", _) => errors.push(format!("{:?}", e.message)),
                ("agent_end", _) => return (deltas, errors, e.messages.unwrap_or_default()),
                _ => {}
            }
        }
    };
    let ((deltas, errors, messages), ()) = tokio::join!(reader, disturb(seen_rx));
    let want: Vec<String> = (0..tokens).map(|i| format!("t{i} ")).collect();
    assert_eq!(deltas.len(), want.len(), "every token once (errors: {errors:?})");
    if let Some(i) = (0..tokens).find(|&i| deltas[i] != want[i]) {
        panic!("out of order at {i}: {:?}", &deltas[i.saturating_sub(2)..(i + 3).min(tokens)]);
    }
    assert_eq!(assistant_text(messages.last().unwrap()), want.concat());
}

/// Whether a file somewhere under `dir` contains `needle`.
fn file_under_contains(dir: &Path, needle: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries.flatten().any(|e| {
        let path = e.path();
        if path.is_dir() {
            file_under_contains(&path, needle)
        } else {
            std::fs::read_to_string(&path).is_ok_and(|text| text.contains(needle))
        }
    })
}

/// Waits until `seen` reaches `n` tokens.
async fn after_tokens(seen: &mut tokio::sync::watch::Receiver<usize>, n: usize) {
    seen.wait_for(|&k| k >= n).await.expect("the turn is running");
}

#[tokio::test]
async fn link_cuts_and_loss_lose_and_duplicate_nothing() {
    let llm = spawn_fake_llm().await.unwrap();
    let (server, _env) = coordinator(&llm).await;
    let proxy = UdpProxy::start(server.quic_addr.clone().unwrap().parse().unwrap()).await.unwrap();
    let via = proxy.addr.to_string();
    // A 2 s link timeout: a 5 s cut kills the QUIC connection, so the agent must reconnect and
    // resend from its journal (a cut shorter than the timeout is QUIC's own retransmission).
    // pi sends the whole partial message in every update: around token 5,000 of this turn that
    // is ~15 MB/s, so the outage (cut + detection + reconnect, ~8 s) needs more than the default
    // replay buffer until the agent sends compact updates.
    let agent = AgentProc::start_with(
        &llm,
        &via,
        &token(&server.data_dir, "10m"),
        "far",
        &["--link-timeout", "2", "--replay-buffer-mib", "512"],
    );
    wait_agents_up(&server, &["far"]).await;

    let p = &proxy;
    let cut = |mut seen| async move {
        after_tokens(&mut seen, 5_000).await;
        p.set_cut(true);
        tokio::time::sleep(Duration::from_secs(5)).await;
        p.set_cut(false);
    };
    turn_survives(&server, "far", 10_000, 4, cut).await;
    assert!(proxy.dropped() > 0, "the cut dropped traffic");
    assert!(agent.log.lock().unwrap().contains("link up"), "{}", agent.log.lock().unwrap());
    let reconnects = agent.log.lock().unwrap().matches("link up").count();
    assert!(reconnects >= 2, "the connection died and came back ({reconnects} link ups)");

    // 5 % random loss for a whole turn.
    proxy.set_loss(50);
    turn_survives(&server, "far", 300, 8, |_| async {}).await;
    proxy.set_loss(0);
}

/// Enrolls a hand-made agent through the real protocol and returns a QUIC connection that
/// presents its certificate, for feeding the coordinator bad frames.
async fn enrolled_connection(server: &Piface, name: &str) -> quinn::Connection {
    use piface_link::tls::{self, AgentIdentity, JoinToken, Transport};
    use piface_link::wire::{write_frame, FrameReader};
    use piface_shared::protocol::{EnrollReply, EnrollRequest, StreamHeader};
    let addr: std::net::SocketAddr = server.quic_addr.clone().unwrap().parse().unwrap();
    let token = JoinToken::parse(&token(&server.data_dir, "10m")).unwrap();
    let (key_pem, csr_pem) = tls::new_csr(name).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(
        tls::enrollment_client_config(&token.ca_fingerprint, &Transport::default()).unwrap(),
    );
    let conn = endpoint.connect(addr, tls::SERVER_NAME).unwrap().await.unwrap();
    let (mut send, recv) = conn.open_bi().await.unwrap();
    write_frame(&mut send, &StreamHeader::Enroll).await.unwrap();
    write_frame(&mut send, &EnrollRequest { token: token.raw.clone(), name: name.into(), csr_pem }).await.unwrap();
    send.finish().unwrap();
    let Some(EnrollReply::Enrolled { cert_pem, ca_pem }) = FrameReader::new(recv).next().await.unwrap() else {
        panic!("not enrolled")
    };
    conn.close(0u32.into(), b"");
    let identity = AgentIdentity { key_pem, cert_pem, ca_pem };
    endpoint.set_default_client_config(tls::client_config(&identity, None, &Transport::default()).unwrap());
    endpoint.connect(addr, tls::SERVER_NAME).unwrap().await.unwrap()
}

#[tokio::test]
async fn bad_frames_from_an_agent_never_take_the_coordinator_down() {
    use piface_link::wire::write_frame;
    use piface_shared::protocol::{FromAgent, StreamHeader};
    let llm = spawn_fake_llm().await.unwrap();
    let (server, _env) = coordinator(&llm).await;

    // An unknown message type is skipped; the control stream goes on.
    let conn = enrolled_connection(&server, "odd").await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    write_frame(&mut send, &StreamHeader::Control).await.unwrap();
    send.write_all(&[0, 0, 0, 2, 250, 0]).await.unwrap(); // variant 250 does not exist
    write_frame(&mut send, &FromAgent::Hello(piface_link::hello(Some("odd-pi".into())))).await.unwrap();
    for _ in 0..200 {
        if agents(&server).await.iter().any(|a| a["name"] == "odd" && a["pi_version"] == "odd-pi") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        agents(&server).await.iter().any(|a| a["name"] == "odd" && a["pi_version"] == "odd-pi"),
        "the hello after the unknown frame was read"
    );

    // A session stream with a frame cut short, then one announcing 4 GiB.
    let mut uni = conn.open_uni().await.unwrap();
    write_frame(&mut uni, &StreamHeader::Session { session: "no-such-session".into() }).await.unwrap();
    uni.write_all(&[0, 0, 0, 50, 1, 2, 3]).await.unwrap();
    uni.finish().unwrap();
    send.write_all(&[0xff, 0xff, 0xff, 0xff, 0]).await.unwrap();
    // The coordinator drops that agent's link (the frame length is fatal) and stays up.
    for _ in 0..200 {
        if agents(&server).await.iter().any(|a| a["name"] == "odd" && a["status"] == "down") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        agents(&server).await.iter().any(|a| a["name"] == "odd" && a["status"] == "down"),
        "{:?}",
        agents(&server).await
    );
    assert_eq!(server.get("/api/health").await.unwrap().0, 200);

    // Another connection of the same agent works afterwards.
    let conn = enrolled_connection(&server, "odd2").await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    write_frame(&mut send, &StreamHeader::Control).await.unwrap();
    write_frame(&mut send, &FromAgent::Hello(piface_link::hello(None))).await.unwrap();
    wait_agents_up(&server, &["odd2"]).await;
}

#[tokio::test]
async fn a_restarted_agent_gets_its_sessions_back_with_their_history() {
    let llm = spawn_fake_llm().await.unwrap();
    let (server, _env) = coordinator(&llm).await;
    let mut agent = AgentProc::start(&llm, &server.quic_addr.clone().unwrap(), &token(&server.data_dir, "10m"), "box");
    wait_agents_up(&server, &["box"]).await;
    let repo = git_repo();
    let body = |ephemeral: bool| json!({"working_dir": repo.path(), "agent": "box", "provider": "fake", "model": "fake-model", "no_session": ephemeral});
    let id = server.new_session(&body(false)).await;
    let eph = server.new_session(&body(true)).await;
    let (mut ws, _) = server.connect(&id).await.unwrap();
    ws.send(&json!({"type": "prompt", "message": "before the restart"})).await.unwrap();
    ws.until_type("agent_end").await.unwrap();
    for _ in 0..200 {
        if server.get(&format!("/api/sessions/{id}")).await.unwrap().1["session_file"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    agent.restart().await;
    let mut messages = Vec::new();
    for _ in 0..200 {
        if let Ok((mut ws, state)) = server.connect(&id).await {
            if state["session"]["status"] == "live" {
                ws.send(&json!({"type": "piface_get_history"})).await.unwrap();
                if let Ok(replay) = ws.until_type("piface_replay").await {
                    messages = replay.last().unwrap()["messages"].as_array().unwrap().clone();
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(messages.len(), 2, "the respawned pi loaded the session's history: {messages:?}");
    assert_eq!(assistant_text(&messages[1]), "echo: before the restart");
    assert_eq!(server.get(&format!("/api/sessions/{eph}")).await.unwrap().0, 404, "the ephemeral session is dropped");
}

use piface_test_support::netns::NetNs;

#[tokio::test]
async fn an_agent_in_another_network_namespace_survives_its_link_going_down() {
    let ns = NetNs::new();
    // The agent's machine has its own fake LLM, on its own loopback.
    let mut fake = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(piface_test_support::piface::workspace_bin("fake-llm").unwrap())
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = BufReader::new(fake.stdout.take().unwrap()).lines();
    let first = out.next_line().await.unwrap().unwrap();
    let llm_url = format!("{}/v1", first.trim_start_matches("listening on "));
    let env = PiEnv::new(&llm_url).unwrap();

    // The coordinator runs no pi (no local agent); its environment is only kept apart.
    let host_env = PiEnv::new(&llm_url).unwrap();
    let opts = Options {
        bin: PIFACE.into(),
        pi_bin: pi_bin().unwrap(),
        envs: host_env.envs(),
        args: vec!["--quic".into(), format!("{}:0", ns.host_ip)],
        data_dir: None,
    };
    let server = Piface::start_coordinator(opts).await.unwrap();
    let quic = server.quic_addr.clone().unwrap();
    assert!(quic.starts_with(&ns.host_ip));
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name, PIFACE, "agent", "--coordinator", &quic, "--token"])
        .arg(token(&server.data_dir, "10m"))
        // A link timeout longer than the outage: QUIC keeps the connection and retransmits, and
        // until then every write to it stalls, silently.
        .args(["--name", "netns", "--link-timeout", "30", "--fs-root"])
        .arg(std::env::temp_dir())
        .arg("--data-dir")
        .arg(data.path())
        .arg("--pi-bin")
        .arg(pi_bin().unwrap())
        .envs(env.envs())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    let mut agent = cmd.spawn().unwrap();
    wait_agents_up(&server, &["netns"]).await;
    let list = agents(&server).await;
    assert!(list.iter().any(|a| a["name"] == "netns"), "{list:?}");

    // pi must not notice: while the link is down and the agent's writes stall, pi streams the
    // rest of the turn and saves it to its session file. Only then does the link come back.
    let ns_ref = &ns;
    let sessions = env.agent_dir().join("sessions");
    let down = |mut seen| async move {
        after_tokens(&mut seen, 500).await;
        ns_ref.set_link(false);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let finished = loop {
            if file_under_contains(&sessions, "t1999 ") {
                break true;
            }
            if tokio::time::Instant::now() > deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        ns_ref.set_link(true);
        assert!(finished, "pi finished its turn while the link was down");
    };
    turn_survives(&server, "netns", 2_000, 3, down).await;
    let _ = agent.start_kill();
    let _ = agent.wait().await;
}

#[tokio::test]
async fn dashboards_see_agents_and_sessions_change() {
    let llm = spawn_fake_llm().await.unwrap();
    let (server, _env) = coordinator(&llm).await;
    let mut dash = server.ws("/ws/dashboard").await.unwrap();
    let first = dash.next().await.unwrap();
    assert_eq!(first["type"], "piface_dashboard");
    assert_eq!(first["agents"], json!([]));

    // A short link timeout: the coordinator notices the killed agent within 2 s.
    let agent = AgentProc::start_with(
        &llm,
        &server.quic_addr.clone().unwrap(),
        &token(&server.data_dir, "10m"),
        "watched",
        &["--link-timeout", "2"],
    );
    let mut seen_up = false;
    while !seen_up {
        let e = dash.next().await.unwrap();
        seen_up = e["type"] == "piface_agent" && e["agent"]["name"] == "watched" && e["agent"]["status"] == "up";
    }
    let repo = git_repo();
    let id = server
        .new_session(
            &json!({"working_dir": repo.path(), "agent": "watched", "provider": "fake", "model": "fake-model"}),
        )
        .await;
    loop {
        let e = dash.next().await.unwrap();
        if e["type"] == "piface_session" && e["session"]["piface_id"] == id.as_str() {
            assert_eq!(e["session"]["status"], "live");
            assert_eq!(e["session"]["agent"], "watched");
            break;
        }
    }
    server.post(&format!("/api/sessions/{id}/kill"), &json!({})).await.unwrap();
    loop {
        let e = dash.next().await.unwrap();
        if e["type"] == "piface_session" && e["session"]["status"] == "closed" {
            break;
        }
    }
    drop(agent);
    loop {
        let e = dash.next().await.unwrap();
        if e["type"] == "piface_agent" && e["agent"]["status"] == "down" {
            break;
        }
    }
}

/// Reads terminal output until it contains `needle`.
async fn term_until<S>(ws: &mut S, needle: &str) -> String
where
    S: futures_util::Stream<Item = Result<TMessage, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    use futures_util::StreamExt;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&seen).contains(needle) {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(TMessage::Binary(b)))) => seen.extend_from_slice(&b),
            Ok(Some(Ok(_))) => {}
            other => panic!("no {needle:?} in the terminal ({other:?}): {}", String::from_utf8_lossy(&seen)),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

use tokio_tungstenite::tungstenite::Message as TMessage;

#[tokio::test]
async fn host_tools_go_to_the_agent_that_holds_the_files() {
    use futures_util::SinkExt;
    let llm = spawn_fake_llm().await.unwrap();
    let (server, _env) = coordinator(&llm).await;
    let quic = server.quic_addr.clone().unwrap();
    let proxy = UdpProxy::start(quic.parse().unwrap()).await.unwrap();
    // Each agent's file roots stand for its machine's disk: B's repository is not A's to show.
    let repo_b = git_repo();
    std::fs::write(repo_b.path().join("README.md"), "changed on B\n").unwrap();
    let home_a = tempfile::tempdir().unwrap();
    let root_b = repo_b.path().display().to_string();
    let root_a = home_a.path().display().to_string();
    let _a = AgentProc::start_with(&llm, &quic, &token(&server.data_dir, "10m"), "a", &["--fs-root", &root_a]);
    let _b = AgentProc::start_with(
        &llm,
        &proxy.addr.to_string(),
        &token(&server.data_dir, "10m"),
        "b",
        &["--fs-root", &root_b, "--link-timeout", "2"],
    );
    wait_agents_up(&server, &["a", "b"]).await;

    let list = |agent: &str| format!("/api/fs/list?path={}&agent={agent}", root_b);
    let (status, body) = server.get(&list("b")).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body["entries"].as_array().unwrap().iter().any(|e| e["name"] == "README.md"), "{body}");
    let (status, _) = server.get(&list("a")).await.unwrap();
    assert_eq!(status, 403, "agent a has no such files to show");
    let (status, file) = server.get(&format!("/api/fs/file?path={root_b}/README.md&agent=b")).await.unwrap();
    assert_eq!((status, file["content"].as_str()), (200, Some("changed on B\n")));

    let id = server
        .new_session(
            &json!({"working_dir": repo_b.path(), "agent": "b", "provider": "fake", "model": "fake-model", "shared": true}),
        )
        .await;
    let (status, diff) = server.get(&format!("/api/sessions/{id}/git/diff?path=README.md")).await.unwrap();
    assert_eq!(status, 200, "{diff}");
    assert!(diff["diff"].as_str().unwrap().contains("+changed on B"), "{diff}");

    // The terminal runs on b, and outlives a 3 s cut of b's link (past its 2 s timeout).
    let url = server.ws_request(&format!("/ws/sessions/{id}/terminal"));
    let (mut term, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    term.send(TMessage::Binary("echo on-$((40+2))\n".into())).await.unwrap();
    term_until(&mut term, "on-42").await;
    term.send(TMessage::Binary("sleep 1.5; echo during-$((1+1))\n".into())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.set_cut(true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.set_cut(false);
    let during = term_until(&mut term, "during-2").await;
    assert_eq!(during.matches("during-2").count(), 1, "output of the cut arrives once: {during}");
    // Keystrokes reach the shell again once the link is back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        term.send(TMessage::Binary("echo after-$((3+4))\n".into())).await.unwrap();
        match tokio::time::timeout(Duration::from_secs(3), term_until(&mut term, "after-7")).await {
            Ok(_) => break,
            Err(_) => assert!(tokio::time::Instant::now() < deadline, "the terminal never came back"),
        }
    }
}

/// Runs a command and returns its stdout, failing the test on a non-zero exit.
fn run_tool(program: &str, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[tokio::test]
async fn speech_runs_on_the_agent_that_has_the_model_for_a_session_on_another() {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let llm = spawn_fake_llm().await.unwrap();
    let (server, _env) = coordinator(&llm).await;
    let quic = server.quic_addr.clone().unwrap();
    let model = piface_test_support::pi_env::workspace_root().join("speech/fixtures/tiny_parakeet_tdt.nemo");
    // The agent fetches the model from a hub (a stand-in on loopback, 1.2 MB at 300 kB/s) into
    // an empty Hugging Face cache, showing its progress on the way.
    let nemo = Bytes::from(std::fs::read(&model).unwrap());
    let hub = piface_test_support::fake_hub::FakeHub::start(
        [(
            "tiny/parakeet-tdt".to_string(),
            vec![
                ("README.md".to_string(), Bytes::from_static(b"tiny")),
                ("parakeet-tdt.nemo".to_string(), nemo.clone()),
            ],
        )]
        .into(),
        300_000,
    )
    .await
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().display().to_string();
    let voice = piface_test_support::pi_env::workspace_root().join("tts/fixtures/tiny_vits").display().to_string();
    let _app = AgentProc::start(&llm, &quic, &token(&server.data_dir, "10m"), "app");
    let ears = AgentProc::start_with_env(
        &llm,
        &quic,
        &token(&server.data_dir, "10m"),
        "ears",
        &["--speech-model", "tiny/parakeet-tdt", "--tts-model", &voice],
        &[("HF_ENDPOINT", hub.endpoint.as_str()), ("HF_HUB_CACHE", cache_dir.as_str())],
    );
    wait_agents_up(&server, &["app", "ears"]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut progress = Vec::new();
    while server.get("/api/health").await.unwrap().1["speech"] != true {
        assert!(tokio::time::Instant::now() < deadline, "the speech model never loaded: {progress:?}");
        let list = agents(&server).await;
        let speech = list.iter().find(|a| a["name"] == "ears").unwrap()["speech"].clone();
        if speech["state"] == "downloading" {
            progress.push(speech);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Progress moved, with the file's size, a rate and an ETA, in the API and in the log.
    assert!(progress.len() >= 3, "{progress:?}");
    let last = progress.last().unwrap();
    assert_eq!(
        (last["file"].as_str(), last["total_bytes"].as_u64()),
        (Some("parakeet-tdt.nemo"), Some(nemo.len() as u64))
    );
    let done: Vec<u64> = progress.iter().map(|p| p["done_bytes"].as_u64().unwrap()).collect();
    assert!(done.windows(2).all(|w| w[0] <= w[1]) && done[0] < *done.last().unwrap(), "{done:?}");
    assert!(progress.iter().any(|p| p["bytes_per_s"].as_u64() > Some(0) && p["eta_s"].is_u64()), "{progress:?}");
    assert!(ears.wait_for_log("speech-to-text model downloading").await);
    assert!(ears.wait_for_log("speech-to-text model downloaded").await);
    let list = agents(&server).await;
    let speech = &list.iter().find(|a| a["name"] == "ears").unwrap()["speech"];
    assert_eq!(
        (speech["model"].as_str(), speech["state"].as_str(), speech["device"].as_str()),
        (Some("tiny/parakeet-tdt"), Some("ready"), Some("cpu"))
    );
    assert!(cache.path().join("models--tiny--parakeet-tdt/refs/main").exists(), "the standard cache layout");
    let model = model.display().to_string();

    // A live session on the other agent.
    let repo = git_repo();
    let id = server
        .new_session(&json!({"working_dir": repo.path(), "agent": "app", "provider": "fake", "model": "fake-model", "shared": true}))
        .await;

    // Speech made with espeak-ng, in the browsers' containers.
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("hello.wav");
    run_tool("espeak-ng", &["-v", "en-us", "-w", wav.to_str().unwrap(), "Hello world. Please run the tests."]);
    let transcode = |out: &str, codec: &[&str]| {
        let path = dir.path().join(out);
        let mut args = vec!["-hide_banner", "-loglevel", "error", "-y", "-i", wav.to_str().unwrap()];
        args.extend_from_slice(codec);
        args.push(path.to_str().unwrap());
        run_tool("ffmpeg", &args);
        std::fs::read(path).unwrap()
    };
    let webm = transcode("clip.webm", &["-c:a", "libopus", "-b:a", "32k"]);
    let mp4 = transcode("clip.mp4", &["-c:a", "aac", "-b:a", "64k"]);

    // What the tiny model says of each clip, computed here with the same library and decoding.
    let tiny = piface_speech::ParakeetModel::load(&model, &candle_core::Device::Cpu).unwrap();
    let expected = |clip: &[u8], name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, clip).unwrap();
        let pcm = run_tool(
            "ffmpeg",
            &[
                "-hide_banner",
                "-loglevel",
                "error",
                "-i",
                path.to_str().unwrap(),
                "-f",
                "f32le",
                "-ac",
                "1",
                "-ar",
                "16000",
                "pipe:1",
            ],
        );
        let samples: Vec<f32> = pcm.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        tiny.transcribe(&samples).unwrap().text.trim().to_string()
    };
    let url = format!("/api/sessions/{id}/transcribe");
    for (clip, name, mime) in [(&webm, "a.webm", "audio/webm;codecs=opus"), (&mp4, "a.mp4", "audio/mp4")] {
        let want = expected(clip, name);
        assert!(!want.is_empty());
        let (status, body) = server.post(&url, &json!({"audio_base64": b64(clip), "mime_type": mime})).await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (body["text"].as_str(), body["raw_text"].as_str(), body["cleaned"].as_bool()),
            (Some(want.as_str()), Some(want.as_str()), Some(false))
        );
    }

    // Mic → Clean: the real pi on the session's agent, through the fake LLM (which echoes).
    let (status, body) = server.post(&url, &json!({"audio_base64": b64(&webm), "clean_with_pi": true})).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let raw = body["raw_text"].as_str().unwrap();
    let text = body["text"].as_str().unwrap();
    assert_eq!(body["cleaned"], true);
    assert!(text.starts_with("echo:") && text.contains(raw), "pi rewrote it: {text}");

    // Bad input: clear 4xx, and the worker keeps serving.
    let (status, body) = server.post(&url, &json!({"audio_base64": ""})).await.unwrap();
    assert_eq!((status, body["detail"].as_str()), (400, Some("Audio payload is empty")));
    let (status, body) = server.post(&url, &json!({"audio_base64": b64(b"this is not audio at all")})).await.unwrap();
    assert_eq!(status, 400, "{body}");
    let (status, _) = server.post(&url, &json!({"audio_base64": "@@@"})).await.unwrap();
    assert_eq!(status, 400);
    // Just over the 25 MiB limit: the original's 413.
    let over = vec![0u8; 25 * 1024 * 1024 + 1];
    let (status, body) = server.post(&url, &json!({"audio_base64": b64(&over)})).await.unwrap();
    assert_eq!((status, body["detail"].as_str()), (413, Some("Audio payload too large. Max 26214400 bytes.")));
    // An hour of silence as 16 kHz 16-bit PCM (115 MB, 154 MB as base64) is refused from its headers.
    assert_eq!(server.announce_body(&url, 154_000_000).await, 413);
    let (status, _) = server.post(&url, &json!({"audio_base64": b64(&webm)})).await.unwrap();
    assert_eq!(status, 200, "still serving");
    // Text-to-speech for the same session goes to the same remote agent; the MP3 crosses QUIC.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while server.get("/api/health").await.unwrap().1["tts"] != true {
        assert!(tokio::time::Instant::now() < deadline, "the voice never loaded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, spoken) = server
        .post(&format!("/api/sessions/{id}/tts"), &json!({"text": "Hello from the other machine."}))
        .await
        .unwrap();
    assert_eq!((status, spoken["cached"].as_bool()), (200, Some(false)), "{spoken}");
    let audio = server.http.get(server.url(spoken["audio_url"].as_str().unwrap())).send().await.unwrap();
    let mp3 = audio.bytes().await.unwrap();
    assert!(mp3.len() > 1000, "an MP3 of {} bytes", mp3.len());

    // The worker counts its jobs (the hello after the last one may take a second).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list = agents(&server).await;
        let speech = list.iter().find(|a| a["name"] == "ears").unwrap()["speech"].clone();
        if speech["done"].as_u64() >= Some(4) && speech["busy"] == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{speech}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(hub.served() > 0);
    let (status, _) = server.post("/api/sessions/nope/transcribe", &json!({"audio_base64": b64(&webm)})).await.unwrap();
    assert_eq!(status, 404);
    server.post(&format!("/api/sessions/{id}/kill"), &json!({})).await.unwrap();
    let (status, _) = server.post(&url, &json!({"audio_base64": b64(&webm)})).await.unwrap();
    assert_eq!(status, 409, "a closed session cannot transcribe");
}
