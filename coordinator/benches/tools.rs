//! Host-tools benchmark, one command: `cargo bench -p piface-coordinator --bench tools`.
//!
//! 1. `fs/raw` of an 8 MiB file: MB/s through a real `piface agent` process (agent → QUIC →
//!    coordinator → HTTP) and through the coordinator's in-process agent, next to reading the
//!    same file from disk in this process, in the same run (median of 15 each).
//! 2. Terminal echo round-trip: one keystroke over the terminal WebSocket to the PTY and its
//!    echo back, p50/p99 over 500 keystrokes, through the remote agent and the local one.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use futures_util::{SinkExt, StreamExt};
use piface_coordinator::pki::ClusterCa;
use piface_test_support::piface::{workspace_bin, Options, Piface};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const PIFACE: &str = env!("CARGO_BIN_EXE_piface");

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn raw_mbps(server: &Piface, path: &str, agent: &str, size: usize) -> f64 {
    let url = server.url(&format!("/api/fs/raw?path={path}&agent={agent}"));
    let mut runs = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let body = server.http.get(&url).send().await.unwrap().bytes().await.unwrap();
        assert_eq!(body.len(), size);
        runs.push(size as f64 / t.elapsed().as_secs_f64() / 1e6);
    }
    median(runs)
}

async fn echo_latency(server: &Piface, id: &str) -> Vec<f64> {
    let url = server.ws_request(&format!("/ws/sessions/{id}/terminal"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    // Wait for the shell to be ready: it echoes a marker.
    ws.send(Message::Binary("stty -echoctl; echo rea''dy\n".into())).await.unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("ready") {
        if let Some(Ok(Message::Binary(b))) = ws.next().await {
            seen.extend_from_slice(&b);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut rtts = Vec::new();
    for i in 0..500 {
        if i % 50 == 49 {
            ws.send(Message::Binary(vec![0x15].into())).await.unwrap(); // ^U: clear the line
            tokio::time::sleep(Duration::from_millis(50)).await;
            while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(20), ws.next()).await {}
        }
        let t = Instant::now();
        ws.send(Message::Binary(vec![b'a'].into())).await.unwrap();
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) if b.contains(&b'a') => break,
                Some(Ok(_)) => {}
                other => panic!("terminal closed: {other:?}"),
            }
        }
        rtts.push(t.elapsed().as_secs_f64() * 1e3);
    }
    rtts
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let size = 8 * 1024 * 1024;
    let file = dir.path().join("eight.bin");
    std::fs::write(&file, (0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>()).unwrap();
    let fake_pi = workspace_bin("fake-pi").unwrap();
    let root = dir.path().display().to_string();
    let opts = Options {
        bin: PIFACE.into(),
        pi_bin: fake_pi.clone(),
        envs: vec![],
        args: vec!["--local-agent".into(), "--fs-root".into(), root.clone()],
        data_dir: None,
    };
    let server = Piface::start_coordinator(opts).await.unwrap();
    let quic: SocketAddr = server.quic_addr.clone().unwrap().parse().unwrap();
    let ca = ClusterCa::load_or_create(&server.data_dir.join("cluster")).unwrap();
    let token = ca.create_token(Duration::from_secs(600), SystemTime::now());
    let agent_data = tempfile::tempdir().unwrap();
    let mut agent = tokio::process::Command::new(PIFACE)
        .args(["agent", "--coordinator", &quic.to_string(), "--token", &token, "--name", "remote", "--fs-root", &root])
        .arg("--data-dir")
        .arg(agent_data.path())
        .arg("--pi-bin")
        .arg(&fake_pi)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    loop {
        let list = server.get("/api/agents").await.unwrap().1;
        if list["agents"].as_array().unwrap().iter().any(|a| a["name"] == "remote" && a["status"] == "up") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // ---- fs/raw ----
    let mut local_runs = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(bytes.len(), size);
        local_runs.push(size as f64 / t.elapsed().as_secs_f64() / 1e6);
    }
    let disk = median(local_runs);
    let path: String =
        percent_encoding::utf8_percent_encode(&file.display().to_string(), percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    let in_process = raw_mbps(&server, &path, "local", size).await;
    let remote = raw_mbps(&server, &path, "remote", size).await;
    println!("fs/raw, 8 MiB file (median of 15):");
    println!("  read from disk in this process   {disk:>8.0} MB/s");
    println!("  coordinator's own agent → HTTP   {in_process:>8.0} MB/s  ({:.1} % of disk)", 100.0 * in_process / disk);
    println!("  agent → QUIC → coordinator → HTTP {remote:>7.0} MB/s  ({:.1} % of disk)", 100.0 * remote / disk);

    // ---- terminal echo ----
    let mut results = Vec::new();
    for agent in ["local", "remote"] {
        let r: Value =
            server.create_session(&json!({"working_dir": dir.path(), "agent": agent, "shared": true})).await.unwrap();
        let rtts = echo_latency(&server, r["piface_id"].as_str().unwrap()).await;
        results.push((agent, pct(&rtts, 0.5), pct(&rtts, 0.99)));
    }
    println!("terminal keystroke echo round-trip (500 keystrokes):");
    for (agent, p50, p99) in &results {
        let path = if *agent == "local" { "in-process agent" } else { "remote agent over QUIC" };
        println!("  {path:<24} p50 {p50:.2} ms  p99 {p99:.2} ms");
    }
    println!(
        "  added by the QUIC hop:   p50 {:.2} ms  p99 {:.2} ms",
        results[1].1 - results[0].1,
        results[1].2 - results[0].2
    );
    let _ = agent.start_kill();
    let _ = agent.wait().await;
}
