//! Cluster benchmark, one command: `cargo bench -p piface-coordinator --bench cluster
//! [-- AGENTS SESSIONS_PER_AGENT RATE SECONDS]` (defaults 1000 5 1 10).
//!
//! 1. Scale: AGENTS simulated agents (real enrollment, mTLS and streams over real QUIC, from this
//!    process; see `piface_test_support::sim_agent`) with SESSIONS_PER_AGENT sessions each,
//!    every session emitting RATE events/s for SECONDS, each session watched by a WebSocket
//!    client. Reports events/s delivered, lost events (must be 0), and the coordinator's CPU
//!    and memory.
//! 2. Latency of the QUIC hop: one session at 1,000 events/s through a simulated agent, next to
//!    the same through the coordinator's in-process agent (the `fake-pi` stand-in writing
//!    timestamped events), in the same run: p50/p99 from the event's write to its receipt by
//!    a WebSocket client.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use piface_coordinator::pki::ClusterCa;
use piface_test_support::piface::{workspace_bin, Options, Piface};
use piface_test_support::sim_agent::{self, SimConfig};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

const PIFACE: &str = env!("CARGO_BIN_EXE_piface");

fn proc_stat(pid: u32) -> (f64, u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (ticks / 100.0, kib("VmRSS:"), kib("VmHWM:"))
}

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

fn ws_url(server: &Piface, id: &str) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    server.ws_request(&format!("/ws/sessions/{id}"))
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let agents = *args.first().unwrap_or(&1000) as usize;
    let per_agent = *args.get(1).unwrap_or(&5) as usize;
    let rate = *args.get(2).unwrap_or(&1) as f64;
    let seconds = *args.get(3).unwrap_or(&10);

    let fake_pi = workspace_bin("fake-pi").unwrap();
    let opts = Options {
        bin: PIFACE.into(),
        pi_bin: fake_pi,
        envs: vec![],
        // The local sessions run in `/`, which must be a file root.
        args: vec!["--local-agent".into(), "--fs-root".into(), "/".into()],
        data_dir: None,
    };
    let server = Piface::start_coordinator(opts).await.unwrap();
    let quic: SocketAddr = server.quic_addr.clone().unwrap().parse().unwrap();
    let ca = ClusterCa::load_or_create(&server.data_dir.join("cluster")).unwrap();
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();

    // ---- scale ----
    let (go_tx, go) = watch::channel(false);
    let started = Instant::now();
    let mut sims = Vec::new();
    let mut joining = tokio::task::JoinSet::new();
    for n in 0..agents {
        let (endpoint, token, go) =
            (endpoint.clone(), ca.create_token(Duration::from_secs(600), SystemTime::now()), go.clone());
        joining.spawn(async move {
            let name = format!("sim{n:04}");
            let identity = sim_agent::enroll(&endpoint, quic, &token, &name).await.unwrap();
            let sim = sim_agent::connect(&endpoint, quic, &identity, SimConfig { rate, pad: 120 }, go).await.unwrap();
            (name, sim)
        });
        if joining.len() >= 32 {
            sims.push(joining.join_next().await.unwrap().unwrap());
        }
    }
    while let Some(r) = joining.join_next().await {
        sims.push(r.unwrap());
    }
    let enrolled_in = started.elapsed();
    loop {
        let list = server.get("/api/agents").await.unwrap().1;
        if list["agents"].as_array().unwrap().iter().filter(|a| a["status"] == "up").count() > agents {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut ids = Vec::new();
    let mut creating = tokio::task::JoinSet::new();
    for (name, _) in &sims {
        for _ in 0..per_agent {
            let (http, url, name) = (server.http.clone(), server.url("/api/sessions"), name.clone());
            creating.spawn(async move {
                let r: Value = http
                    .post(url)
                    .json(&json!({"working_dir": "/", "agent": name}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                r["piface_id"].as_str().unwrap().to_string()
            });
            if creating.len() >= 16 {
                ids.push(creating.join_next().await.unwrap().unwrap());
            }
        }
    }
    while let Some(r) = creating.join_next().await {
        ids.push(r.unwrap());
    }
    // One WebSocket client per session, checking that each session's events come in order.
    let delivered = Arc::new(AtomicU64::new(0));
    let disorder = Arc::new(AtomicU64::new(0));
    let mut watchers = Vec::new();
    for id in &ids {
        let (url, delivered, disorder) = (ws_url(&server, id), delivered.clone(), disorder.clone());
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        ws.next().await.unwrap().unwrap(); // session state
        watchers.push(tokio::spawn(async move {
            let mut next = 0u64;
            while let Some(Ok(Message::Text(t))) = ws.next().await {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "message_update" {
                    if v["i"].as_u64() != Some(next) {
                        disorder.fetch_add(1, Ordering::Relaxed);
                    }
                    next = v["i"].as_u64().unwrap_or(next) + 1;
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let (cpu0, _, _) = proc_stat(server.pid());
    let t0 = Instant::now();
    go_tx.send_replace(true);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    go_tx.send_replace(false);
    let window = t0.elapsed();
    let (cpu1, rss, hwm) = proc_stat(server.pid());
    let emitted: u64 = sims.iter().map(|(_, s)| s.emitted.load(Ordering::Relaxed)).sum();
    // Let what is in flight arrive.
    for _ in 0..100 {
        if delivered.load(Ordering::Relaxed) >= emitted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = delivered.load(Ordering::Relaxed);
    println!("scale: {agents} simulated agents × {per_agent} sessions, {rate} events/s each, {seconds} s (enrolled and connected in {enrolled_in:.1?})");
    println!(
        "  delivered {got} of {emitted} events to {} WebSocket clients: {:.0} events/s; lost {}; out of order {}",
        ids.len(),
        got as f64 / window.as_secs_f64(),
        emitted.saturating_sub(got),
        disorder.load(Ordering::Relaxed)
    );
    println!(
        "  coordinator: CPU {:.0} % of one core, RSS {:.1} MiB (peak {:.1} MiB)",
        100.0 * (cpu1 - cpu0) / window.as_secs_f64(),
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    for w in watchers {
        w.abort();
    }
    drop(sims);
    // Let the 5,000 sockets and 1,000 connections wind down before timing single events.
    tokio::time::sleep(Duration::from_secs(5)).await;

    // ---- latency of the QUIC hop ----
    let count = 3000u64;
    let local = latency_local(&server, count).await;
    let remote = latency_remote(&server, &ca, &endpoint, quic, count).await;
    let pct = |v: &[u128], p: f64| v[((v.len() as f64 - 1.0) * p) as usize] as f64 / 1e6;
    println!("latency at 1,000 events/s, {count} events, write → WebSocket receipt:");
    println!("  in-process agent : p50 {:.3} ms  p99 {:.3} ms", pct(&local, 0.5), pct(&local, 0.99));
    println!("  agent over QUIC  : p50 {:.3} ms  p99 {:.3} ms", pct(&remote, 0.5), pct(&remote, 0.99));
    println!(
        "  added by the hop : p50 {:.3} ms  p99 {:.3} ms",
        pct(&remote, 0.5) - pct(&local, 0.5),
        pct(&remote, 0.99) - pct(&local, 0.99)
    );
    server.stop().await.unwrap();
}

/// Latencies of events of one session read from its WebSocket until `count` arrived.
async fn collect(
    url: tokio_tungstenite::tungstenite::handshake::client::Request,
    count: u64,
    start: impl std::future::Future<Output = ()>,
) -> Vec<u128> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.next().await.unwrap().unwrap();
    start.await;
    let mut out = Vec::new();
    while (out.len() as u64) < count {
        let next = tokio::time::timeout(Duration::from_secs(30), ws.next()).await;
        let Ok(Some(Ok(msg))) = next else {
            eprintln!("latency: stopped after {} events: {next:?}", out.len());
            break;
        };
        let Message::Text(t) = msg else { continue };
        let got = now_ns();
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        if v["type"] == "message_update" {
            if let Some(t) = v["t"].as_u64() {
                out.push(got.saturating_sub(t as u128));
            }
        }
    }
    out.sort();
    out
}

async fn latency_local(server: &Piface, count: u64) -> Vec<u128> {
    let id = server.create_session(&json!({"working_dir": "/", "agent": "local"})).await.unwrap()["piface_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut control, _) = tokio_tungstenite::connect_async(ws_url(server, &id)).await.unwrap();
    let prompt = json!({"type": "prompt", "message": format!("tick:{count}:1000")}).to_string();
    collect(ws_url(server, &id), count, async move {
        control.send(Message::text(prompt)).await.unwrap();
    })
    .await
}

async fn latency_remote(
    server: &Piface,
    ca: &ClusterCa,
    endpoint: &quinn::Endpoint,
    quic: SocketAddr,
    count: u64,
) -> Vec<u128> {
    let token = ca.create_token(Duration::from_secs(600), SystemTime::now());
    let identity = sim_agent::enroll(endpoint, quic, &token, "latency").await.unwrap();
    let (go_tx, go) = watch::channel(false);
    let _sim = sim_agent::connect(endpoint, quic, &identity, SimConfig { rate: 1000.0, pad: 1 }, go).await.unwrap();
    let mut id = None;
    for _ in 0..100 {
        let (status, body) =
            server.post("/api/sessions", &json!({"working_dir": "/", "agent": "latency"})).await.unwrap();
        if status == 201 {
            id = body["piface_id"].as_str().map(String::from);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = id.expect("session on the simulated agent");
    // The sender lives until the events are collected: dropping it would stop the emitter.
    let go = &go_tx;
    collect(ws_url(server, &id), count, async move {
        go.send_replace(true);
    })
    .await
}
