//! Relay benchmark: pi events through `piface serve` to a WebSocket client, next to the same
//! bytes through a plain pipe into a line-splitting reader, measured in the same run.
//!
//! `cargo bench -p piface-coordinator --bench relay [-- COUNT BYTES]`
//!
//! The pi is the `fake-pi` stand-in, which writes its events as fast as the pipe takes them,
//! so the figures are the relay's upper bound (a real pi is far slower than the relay). Each
//! scenario prints events/s and MB/s for the raw pipe and for the relay, and the ratio.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use piface_test_support::piface::{workspace_bin, Options, Piface};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;

const PIFACE: &str = env!("CARGO_BIN_EXE_piface");

struct Figures {
    events: u64,
    bytes: u64,
    elapsed: Duration,
}

impl Figures {
    fn per_sec(&self) -> (f64, f64) {
        let s = self.elapsed.as_secs_f64();
        (self.events as f64 / s, self.bytes as f64 / s / 1e6)
    }
}

/// `fake-pi --emit` into a pipe, split into lines by a native reader.
async fn raw_pipe(fake_pi: &std::path::Path, count: usize, bytes: usize) -> Figures {
    let start = Instant::now();
    let mut child = tokio::process::Command::new(fake_pi)
        .args(["--emit", &count.to_string(), &bytes.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("fake-pi");
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let (mut lines, mut total, mut pending) = (0u64, 0u64, 0u64);
    loop {
        let n = out.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        for chunk in buf[..n].split_inclusive(|b| *b == b'\n') {
            pending += chunk.len() as u64;
            if chunk.ends_with(b"\n") {
                // Count what a relay would forward: the line without its newline.
                lines += 1;
                total += pending - 1;
                pending = 0;
            }
        }
    }
    child.wait().await.unwrap();
    Figures { events: lines.saturating_sub(2), bytes: total, elapsed: start.elapsed() }
}

/// The same stream through `piface serve` to a WebSocket client.
async fn relay(server: &Piface, count: usize, bytes: usize) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let id = server.create_session(&json!({"working_dir": dir.path()})).await.unwrap()["piface_id"]
        .as_str()
        .unwrap()
        .to_string();
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().max_message_size(Some(80 << 20));
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
        server.ws_request(&format!("/ws/sessions/{id}")),
        Some(config),
        false,
    )
    .await
    .unwrap();
    ws.next().await.unwrap().unwrap(); // piface_session_state
    let start = Instant::now();
    ws.send(Message::text(json!({"type": "prompt", "message": format!("stream:{count}:{bytes}")}).to_string()))
        .await
        .unwrap();
    let (mut events, mut total) = (0u64, 0u64);
    while let Some(msg) = ws.next().await {
        let Message::Text(text) = msg.unwrap() else { continue };
        let t = text.as_str();
        if t.starts_with(r#"{"type":"message_update""#) {
            events += 1;
            total += t.len() as u64;
        } else if t.starts_with(r#"{"type":"agent_end""#) {
            break;
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(events, count as u64, "every event arrives");
    server.post(&format!("/api/sessions/{id}/kill"), &json!({})).await.unwrap();
    Figures { events, bytes: total, elapsed }
}

const ROUNDS: usize = 5;

fn median(mut runs: Vec<Figures>) -> Figures {
    runs.sort_by_key(|f| f.elapsed);
    runs.swap_remove(runs.len() / 2)
}

fn report(name: &str, raw: &Figures, relayed: &Figures) {
    let (raw_eps, raw_mbs) = raw.per_sec();
    let (eps, mbs) = relayed.per_sec();
    println!("{name}");
    println!(
        "  raw pipe : {:>10.0} events/s {:>8.1} MB/s  ({} events, {:.1} MB, {:.2?})",
        raw_eps,
        raw_mbs,
        raw.events,
        raw.bytes as f64 / 1e6,
        raw.elapsed
    );
    println!(
        "  relay    : {:>10.0} events/s {:>8.1} MB/s  ({} events, {:.1} MB, {:.2?})",
        eps,
        mbs,
        relayed.events,
        relayed.bytes as f64 / 1e6,
        relayed.elapsed
    );
    println!(
        "  ratio    : {:.1} % of the raw pipe (events/s), {:.1} % (MB/s)",
        100.0 * eps / raw_eps,
        100.0 * mbs / raw_mbs
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let mut scenarios = vec![("small events", 100_000usize, 200usize), ("large events", 2_000, 64 * 1024)];
    if let (Some(c), Some(b)) = (args.first().and_then(|a| a.parse().ok()), args.get(1).and_then(|a| a.parse().ok())) {
        scenarios = vec![("custom", c, b)];
    }
    let fake_pi = workspace_bin("fake-pi").expect("fake-pi");
    let server = Piface::start(Options {
        bin: PIFACE.into(),
        pi_bin: fake_pi.clone(),
        envs: vec![],
        args: vec![],
        data_dir: None,
    })
    .await
    .unwrap();
    for (name, count, bytes) in scenarios {
        // A warm-up of each, then ROUNDS interleaved runs; the medians are reported, so a
        // hiccup of the shared machine in one run does not decide the figure.
        raw_pipe(&fake_pi, count / 10, bytes).await;
        relay(&server, count / 10, bytes).await;
        let (mut raws, mut relays) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            raws.push(raw_pipe(&fake_pi, count, bytes).await);
            relays.push(relay(&server, count, bytes).await);
        }
        report(
            &format!("{name}: {count} events of {bytes} B, median of {ROUNDS} runs"),
            &median(raws),
            &median(relays),
        );
    }
    server.stop().await.unwrap();
}
