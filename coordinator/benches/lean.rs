//! Lean streaming benchmark, one command: `cargo bench -p piface-coordinator --bench lean
//! [-- TOKENS…]` (default: 20000, then 2000 — a long answer for the bytes, a shorter one for
//! events/s, where pi's own output is no longer the limit).
//!
//! pi repeats the whole partial message twice in every `message_update`, so an answer of N
//! tokens is O(N²) bytes on pi's stdout. The `fake-pi` stand-in's `pi:N` turn has that shape
//! (N one-character tokens; 20,000 are ~430 MB) and writes it as fast as the pipe takes it.
//! In one run this measures, for that turn:
//!
//! - the raw limit: the same bytes (`fake-pi --emit-pi N`) through a pipe and a loopback TCP
//!   socket into a native line-splitting reader;
//! - through `piface coordinator --local-agent` (what `serve` is) and through the same
//!   coordinator with a separate `piface agent` process over QUIC (via a UDP relay that counts
//!   the link's bytes), each with a WebSocket client in full mode and in compact mode
//!   (`?mode=compact`): events/s, pi's bytes per second relayed, bytes on the WebSocket and on
//!   the QUIC link.
//!
//! Each figure is the median of three runs; ratios are against the same run's figures.

use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use piface_test_support::piface::{join_token, workspace_bin, Options, Piface};
use piface_test_support::udp_proxy::UdpProxy;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

const PIFACE: &str = env!("CARGO_BIN_EXE_piface");
const ROUNDS: usize = 3;

#[derive(Clone, Copy)]
struct Run {
    events: u64,
    /// pi's bytes for those events (the lines, without newlines).
    pi_bytes: u64,
    /// Bytes of text frames the client received for the turn.
    ws_bytes: u64,
    /// Bytes on the QUIC link during the turn (both ways), when there is one.
    quic_bytes: u64,
    elapsed: Duration,
}

impl Run {
    fn events_per_s(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
    fn mb_per_s(&self) -> f64 {
        self.pi_bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
}

fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by_key(|r| r.elapsed);
    runs[runs.len() / 2]
}

/// `fake-pi --emit-pi N TURNS` → pipe → loopback TCP → a native reader splitting lines.
async fn raw(fake_pi: &std::path::Path, tokens: usize, turns: usize) -> Run {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let start = Instant::now();
    let reader = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        let (mut lines, mut bytes, mut pending) = (0u64, 0u64, 0u64);
        let mut updates = (0u64, 0u64);
        let mut head = Vec::with_capacity(32);
        loop {
            let n = sock.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            for chunk in buf[..n].split_inclusive(|b| *b == b'\n') {
                if head.len() < 26 {
                    head.extend_from_slice(&chunk[..chunk.len().min(26 - head.len())]);
                }
                pending += chunk.len() as u64;
                if chunk.ends_with(b"\n") {
                    lines += 1;
                    bytes += pending - 1;
                    if head.starts_with(br#"{"type":"message_update""#) {
                        updates.0 += 1;
                        updates.1 += pending - 1;
                    }
                    pending = 0;
                    head.clear();
                }
            }
        }
        let _ = (lines, bytes);
        updates
    });
    let mut child = tokio::process::Command::new(fake_pi)
        .args(["--emit-pi", &tokens.to_string(), &turns.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = out.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        sock.write_all(&buf[..n]).await.unwrap();
    }
    drop(sock);
    child.wait().await.unwrap();
    let (events, pi_bytes) = reader.await.unwrap();
    Run { events, pi_bytes, ws_bytes: 0, quic_bytes: 0, elapsed: start.elapsed() }
}

/// `turns` `pi:N` turns in a row on `agent`, watched by a WebSocket client in full or compact mode.
async fn turn(
    server: &Piface,
    agent: &str,
    tokens: usize,
    turns: usize,
    compact: bool,
    proxy: Option<&UdpProxy>,
) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let record = server.create_session(&json!({"working_dir": dir.path(), "agent": agent})).await.unwrap();
    let id = record["piface_id"].as_str().unwrap().to_string();
    let query = if compact { "?mode=compact" } else { "" };
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().max_message_size(Some(80 << 20));
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
        server.ws_request(&format!("/ws/sessions/{id}{query}")),
        Some(config),
        false,
    )
    .await
    .unwrap();
    ws.next().await.unwrap().unwrap(); // piface_session_state
    let quic_before = proxy.map_or(0, UdpProxy::forwarded);
    let start = Instant::now();
    let (mut events, mut ws_bytes) = (0u64, 0u64);
    for _ in 0..turns {
        let prompt = json!({"type": "prompt", "message": format!("pi:{tokens}")}).to_string();
        ws.send(Message::text(prompt)).await.unwrap();
        while let Some(msg) = ws.next().await {
            let Message::Text(text) = msg.unwrap() else { continue };
            let t = text.as_str();
            if t.starts_with(r#"{"type":"message_update""#) {
                events += 1;
                ws_bytes += t.len() as u64;
            } else if t.starts_with(r#"{"type":"agent_end""#) {
                break;
            }
        }
    }
    let elapsed = start.elapsed();
    let quic_bytes = proxy.map_or(0, UdpProxy::forwarded) - quic_before;
    assert_eq!(events, (tokens * turns) as u64, "every update arrives");
    server.post(&format!("/api/sessions/{id}/kill"), &json!({})).await.unwrap();
    Run { events, pi_bytes: 0, ws_bytes, quic_bytes, elapsed }
}

fn row(name: &str, r: &Run, raw: &Run) {
    println!(
        "  {name:<28} {:>9.0} events/s {:>8.1} MB/s ({:>5.1} % of raw)  WebSocket {:>11} B{}",
        r.events_per_s(),
        r.mb_per_s(),
        100.0 * r.mb_per_s() / raw.mb_per_s(),
        r.ws_bytes,
        if r.quic_bytes > 0 { format!("  QUIC {:>10} B", r.quic_bytes) } else { String::new() }
    );
}

#[tokio::main]
async fn main() {
    let mut sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![20_000, 2_000];
    }
    let fake_pi = workspace_bin("fake-pi").expect("fake-pi");
    let opts = Options {
        bin: PIFACE.into(),
        pi_bin: fake_pi.clone(),
        envs: vec![],
        args: vec!["--local-agent".into()],
        data_dir: None,
    };
    let server = Piface::start_coordinator(opts).await.unwrap();
    let proxy = UdpProxy::start(server.quic_addr.clone().unwrap().parse().unwrap()).await.unwrap();
    let agent_data = tempfile::tempdir().unwrap();
    let mut agent = tokio::process::Command::new(PIFACE)
        .args([
            "agent",
            "--coordinator",
            &proxy.addr.to_string(),
            "--token",
            &join_token(PIFACE.as_ref(), &server.data_dir).unwrap(),
            "--name",
            "far",
        ])
        .arg("--fs-root")
        .arg(std::env::temp_dir())
        .arg("--data-dir")
        .arg(agent_data.path())
        .arg("--pi-bin")
        .arg(&fake_pi)
        .args(["--no-speech", "--no-tts"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    server.wait_agent_up("far").await;
    for tokens in sizes {
        measure(&server, &proxy, &fake_pi, tokens).await;
    }
    let _ = agent.start_kill();
    server.stop().await.unwrap();
}

async fn measure(server: &Piface, proxy: &UdpProxy, fake_pi: &std::path::Path, tokens: usize) {
    // Short turns are repeated (in one session) so that each measurement streams 40,000 updates.
    let turns = (40_000 / tokens).max(1);
    // Warm-up, then ROUNDS interleaved rounds.
    let warm = tokens / 10;
    raw(fake_pi, warm, 1).await;
    for (agent, compact) in [("local", false), ("local", true), ("far", false), ("far", true)] {
        turn(server, agent, warm, 1, compact, Some(proxy)).await;
    }
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); 5];
    for _ in 0..ROUNDS {
        runs[0].push(raw(fake_pi, tokens, turns).await);
        runs[1].push(turn(server, "local", tokens, turns, false, None).await);
        runs[2].push(turn(server, "local", tokens, turns, true, None).await);
        runs[3].push(turn(server, "far", tokens, turns, false, Some(proxy)).await);
        runs[4].push(turn(server, "far", tokens, turns, true, Some(proxy)).await);
    }
    let mut m: Vec<Run> = runs.into_iter().map(median).collect();
    let raw_run = m[0];
    for r in &mut m[1..] {
        r.pi_bytes = raw_run.pi_bytes; // the same turn
    }
    println!(
        "lean streaming: {turns} pi-shaped answer(s) of {tokens} tokens ({} updates, {:.1} MB of pi JSON), median of {ROUNDS} runs",
        raw_run.events,
        raw_run.pi_bytes as f64 / 1e6
    );
    println!(
        "  {:<28} {:>9.0} events/s {:>8.1} MB/s",
        "raw (pipe + loopback TCP)",
        raw_run.events_per_s(),
        raw_run.mb_per_s()
    );
    row("serve, full", &m[1], &raw_run);
    row("serve, compact", &m[2], &raw_run);
    row("coordinator + agent, full", &m[3], &raw_run);
    row("coordinator + agent, compact", &m[4], &raw_run);
    println!(
        "  WebSocket bytes, compact / full: serve {:.3} %, coordinator + agent {:.3} %",
        100.0 * m[2].ws_bytes as f64 / m[1].ws_bytes as f64,
        100.0 * m[4].ws_bytes as f64 / m[3].ws_bytes as f64
    );
    println!(
        "  QUIC bytes / pi's bytes: {:.3} % (full client), {:.3} % (compact client)",
        100.0 * m[3].quic_bytes as f64 / raw_run.pi_bytes as f64,
        100.0 * m[4].quic_bytes as f64 / raw_run.pi_bytes as f64
    );
}
