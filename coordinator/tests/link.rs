//! The agents' port against peers that misbehave: unidentified connections bounded in number,
//! time and memory; streams for sessions an agent does not run; removal mid-connection.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use piface_link::tls::{self, AgentIdentity, JoinToken, Transport};
use piface_link::wire::{write_frame, FrameReader};
use piface_shared::protocol::{EventMeta, FromAgent, PiEvent, Spawned, StreamHeader, ToAgent};
use piface_test_support::piface::{workspace_bin, Frame, Options, Piface};
use piface_test_support::sim_agent::{self, SimConfig};
use serde_json::{json, Value};

const PIFACE: &str = env!("CARGO_BIN_EXE_piface");

async fn coordinator(args: &[&str]) -> Piface {
    let opts = Options {
        bin: PIFACE.into(),
        pi_bin: workspace_bin("fake-pi").unwrap(),
        envs: vec![],
        args: args.iter().map(|s| s.to_string()).collect(),
        data_dir: None,
    };
    Piface::start_coordinator(opts).await.unwrap()
}

fn token(server: &Piface) -> String {
    let out = std::process::Command::new(PIFACE)
        .args(["token", "create", "--ttl", "10m", "--data-dir"])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn quic_addr(server: &Piface) -> SocketAddr {
    server.quic_addr.clone().unwrap().parse().unwrap()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A client endpoint on loopback address `127.0.0.<host>`, set up to enroll (no certificate).
fn enrolling_endpoint(host: u8, ca_fingerprint: &str) -> quinn::Endpoint {
    let mut endpoint = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, host], 0))).unwrap();
    endpoint.set_default_client_config(tls::enrollment_client_config(ca_fingerprint, &Transport::default()).unwrap());
    endpoint
}

async fn connect(endpoint: &quinn::Endpoint, addr: SocketAddr) -> Result<quinn::Connection, quinn::ConnectionError> {
    endpoint.connect(addr, tls::SERVER_NAME).unwrap().await
}

#[tokio::test]
async fn unidentified_connections_are_bounded_in_number_time_and_memory() {
    let server =
        coordinator(&["--max-unenrolled", "50", "--max-unenrolled-per-address", "5", "--enroll-timeout", "3"]).await;
    let addr = quic_addr(&server);
    let fingerprint = JoinToken::parse(&token(&server)).unwrap().ca_fingerprint;
    let endpoints: Vec<_> = (10..22).map(|h| enrolling_endpoint(h, &fingerprint)).collect();

    // Per address: the sixth from one address is refused while the total is far from full.
    let mut quiet = Vec::new();
    for _ in 0..5 {
        quiet.push(connect(&endpoints[0], addr).await.expect("within the per-address cap"));
    }
    assert!(connect(&endpoints[0], addr).await.is_err(), "a sixth connection from one address is refused");
    // In all: 50 quiet connections (handshake done, nothing sent), then the 51st is refused.
    for endpoint in &endpoints[1..10] {
        for _ in 0..5 {
            quiet.push(connect(endpoint, addr).await.expect("within the caps"));
        }
    }
    assert_eq!(quiet.len(), 50);
    assert!(connect(&endpoints[10], addr).await.is_err(), "the 51st unidentified connection is refused");

    // The deadline closes every one of them (3 s from their first packet).
    let started = std::time::Instant::now();
    for conn in &quiet {
        let reason =
            tokio::time::timeout(Duration::from_secs(10), conn.closed()).await.expect("closed by the deadline");
        assert!(
            matches!(&reason, quinn::ConnectionError::ApplicationClosed(c) if c.error_code == 4u32.into()),
            "{reason:?}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    drop(quiet);

    // 50 at once announcing a 64 MiB enrollment frame, then quiet: closed, and the coordinator
    // does not reserve memory for what they announced.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(server.pid());
    let mut announcing = Vec::new();
    for endpoint in &endpoints[..10] {
        for _ in 0..5 {
            let conn = connect(endpoint, addr).await.expect("slots are free again");
            let (mut send, _recv) = conn.open_bi().await.unwrap();
            write_frame(&mut send, &StreamHeader::Enroll).await.unwrap();
            send.write_all(&(64u32 << 20).to_be_bytes()).await.unwrap();
            send.write_all(b"abc").await.unwrap();
            announcing.push((conn, send));
        }
    }
    let peak = rss_kib(server.pid());
    for (conn, _send) in &announcing {
        let reason = tokio::time::timeout(Duration::from_secs(10), conn.closed()).await.expect("closed");
        assert!(matches!(reason, quinn::ConnectionError::ApplicationClosed(_)), "{reason:?}");
    }
    let after = rss_kib(server.pid()).max(peak);
    eprintln!("coordinator RSS: {before} KiB before, {peak} KiB with 50 announcing, {after} KiB at most after");
    assert!(after.saturating_sub(before) < 8 * 1024, "RSS grew by {} KiB", after - before);

    // The port still serves agents.
    let identity = sim_agent::enroll(&endpoints[11], addr, &token(&server), "fine").await.unwrap();
    assert!(identity.cert_pem.contains("CERTIFICATE"));
    assert_eq!(server.get("/api/health").await.unwrap().0, 200);
}

/// An enrolled agent's connection with its certificate, before any stream.
async fn agent_connection(endpoint: &quinn::Endpoint, addr: SocketAddr, identity: &AgentIdentity) -> quinn::Connection {
    let config = tls::client_config(identity, None, &Transport::default()).unwrap();
    endpoint.connect_with(config, addr, tls::SERVER_NAME).unwrap().await.unwrap()
}

#[tokio::test]
async fn removing_an_agent_closes_its_connection_before_the_control_stream_too() {
    let server = coordinator(&[]).await;
    let addr = quic_addr(&server);
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let identity = sim_agent::enroll(&endpoint, addr, &token(&server), "late").await.unwrap();
    let conn = agent_connection(&endpoint, addr, &identity).await;
    // Handshake done, no control stream yet: the coordinator holds it pending.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let removed = server.http.delete(server.url("/api/agents/late")).send().await.unwrap();
    assert_eq!(removed.status(), 200);
    let reason = tokio::time::timeout(Duration::from_secs(3), conn.closed())
        .await
        .expect("closed at once, not at the 10 s control-stream deadline");
    assert!(
        matches!(&reason, quinn::ConnectionError::ApplicationClosed(c) if c.error_code == 2u32.into()),
        "{reason:?}"
    );
    // And it cannot come back.
    let again = agent_connection(&endpoint, addr, &identity).await;
    let reason = tokio::time::timeout(Duration::from_secs(3), again.closed()).await.expect("refused");
    assert!(matches!(reason, quinn::ConnectionError::ApplicationClosed(_)), "{reason:?}");
}

/// Agent "b": a raw connection whose control stream answers `Spawn` like an agent.
async fn raw_agent(endpoint: &quinn::Endpoint, addr: SocketAddr, identity: &AgentIdentity) -> quinn::Connection {
    let conn = agent_connection(endpoint, addr, identity).await;
    let (mut send, recv) = conn.open_bi().await.unwrap();
    write_frame(&mut send, &StreamHeader::Control).await.unwrap();
    write_frame(&mut send, &FromAgent::Hello(piface_link::hello(None))).await.unwrap();
    tokio::spawn(async move {
        let mut reader = FrameReader::new(recv);
        while let Ok(Some(msg)) = reader.next::<ToAgent>().await {
            let reply = match msg {
                ToAgent::Spawn { req, .. } => FromAgent::Spawned { req, result: Ok(Spawned { pid: 1 }) },
                ToAgent::ListSessions { req, .. } => FromAgent::SessionList { req, sessions: vec![] },
                ToAgent::Tool { req, .. } => FromAgent::ToolDone { req, result: Ok("{}".into()) },
                _ => continue,
            };
            if write_frame(&mut send, &reply).await.is_err() {
                break;
            }
        }
    });
    conn
}

async fn wait_up(server: &Piface, names: &[&str]) {
    for _ in 0..200 {
        let (_, body) = server.get("/api/agents").await.unwrap();
        let up = body["agents"].as_array().unwrap().iter().filter(|a| a["status"] == "up").count();
        if up == names.len() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("agents {names:?} did not come up");
}

/// A coordinator with agent "a" (simulated: its sessions emit numbered updates while `go` is
/// true) and agent "b" (a raw connection the test writes with).
struct TwoAgents {
    server: Piface,
    go: tokio::sync::watch::Sender<bool>,
    b: quinn::Connection,
    _a: sim_agent::SimAgent,
}

async fn two_agents() -> TwoAgents {
    let server = coordinator(&[]).await;
    let addr = quic_addr(&server);
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let a = sim_agent::enroll(&endpoint, addr, &token(&server), "a").await.unwrap();
    let b = sim_agent::enroll(&endpoint, addr, &token(&server), "b").await.unwrap();
    let (go_tx, go) = tokio::sync::watch::channel(false);
    let sim = sim_agent::connect(&endpoint, addr, &a, SimConfig { rate: 200.0, pad: 4 }, go).await.unwrap();
    let b = raw_agent(&endpoint, addr, &b).await;
    wait_up(&server, &["a", "b"]).await;
    TwoAgents { server, go: go_tx, b, _a: sim }
}

#[tokio::test]
async fn an_agent_cannot_feed_another_agents_session_nor_make_hubs_for_unknown_ids() {
    let TwoAgents { server, go: go_tx, b, _a } = two_agents().await;
    let dir = tempfile::tempdir().unwrap();
    let id = server.new_session(&json!({"working_dir": dir.path(), "agent": "a"})).await;
    let (mut ws, _) = server.connect(&id).await.unwrap();

    // b writes into a's session (far ahead in sequence), into a's terminal, and into ids that
    // do not exist.
    let forged = |session: &str, seq| FromAgent::Events {
        session: session.to_string(),
        events: vec![PiEvent {
            seq,
            meta: EventMeta { kind: "forged".into(), ..EventMeta::default() },
            line: Bytes::from_static(br#"{"type":"forged"}"#),
            delta: None,
        }],
    };
    let mut streams = Vec::new();
    for (header, msg) in [
        (StreamHeader::Session { session: id.clone() }, forged(&id, 1_000_000)),
        (
            StreamHeader::Terminal { session: id.clone() },
            FromAgent::PtyOutput { session: id.clone(), offset: 0, data: Bytes::from_static(b"FORGED") },
        ),
        (StreamHeader::Session { session: "no-such-session".into() }, forged("no-such-session", 0)),
        (
            StreamHeader::Terminal { session: "no-such-session".into() },
            FromAgent::PtyOutput { session: "x".into(), offset: 0, data: Bytes::from_static(b"FORGED") },
        ),
    ] {
        let mut uni = b.open_uni().await.unwrap();
        write_frame(&mut uni, &header).await.unwrap();
        let _ = write_frame(&mut uni, &msg).await;
        streams.push(uni);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // a's events arrive whole and in order; nothing of b's reaches the browser.
    go_tx.send(true).unwrap();
    let mut next = 0u64;
    while next < 60 {
        match ws.next_frame().await.unwrap() {
            Frame::Json(v) => {
                let text = v.to_string();
                assert!(!text.contains("forged") && !text.contains("FORGED"), "{text}");
                assert_ne!(v["type"], "piface_error", "no gap was seen: {v}");
                if v["type"] == "message_update" {
                    assert_eq!(v["i"], next, "in order, none missing: {v}");
                    next += 1;
                }
            }
            Frame::Closed(code, reason) => panic!("closed: {code:?} {reason}"),
        }
    }
    go_tx.send(false).unwrap();

    // a's terminal shows nothing b wrote.
    let (mut term, _) =
        tokio_tungstenite::connect_async(server.ws_request(&format!("/ws/sessions/{id}/terminal"))).await.unwrap();
    use futures_util::StreamExt;
    if let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_millis(500), term.next()).await {
        assert!(!msg.into_data().windows(6).any(|w| w == b"FORGED"), "b's output reached a's terminal");
    }
    // The refusals are logged once, whatever their number; b is still connected.
    let log = server.stderr.lock().unwrap().clone();
    assert_eq!(log.matches("refusing a stream for a session this agent does not run").count(), 1, "{log}");
    assert!(b.close_reason().is_none());
    let (_, agents) = server.get("/api/agents").await.unwrap();
    let b_entry: Vec<&Value> = agents["agents"].as_array().unwrap().iter().filter(|a| a["name"] == "b").collect();
    assert_eq!(b_entry[0]["status"], "up");
}

#[tokio::test]
async fn a_delta_whose_cuts_add_up_to_gigabytes_is_refused_and_other_sessions_keep_streaming() {
    use piface_shared::delta::{Cut, Delta};
    let TwoAgents { server, go: go_tx, b, _a } = two_agents().await;
    let dir = tempfile::tempdir().unwrap();
    let on_a = server.new_session(&json!({"working_dir": dir.path(), "agent": "a"})).await;
    let on_b = server.new_session(&json!({"working_dir": dir.path(), "agent": "b"})).await;
    let (mut ws, _) = server.connect(&on_a).await.unwrap();
    let before = rss_kib(server.pid());

    // b's own session: a base of 1 MiB, then one update whose 3,000 cuts each keep all of it.
    let cut =
        Cut { at: 0, slot: 0, same_as_previous_cut: false, keep_prefix: 1 << 20, keep_suffix: 0, insert: Bytes::new() };
    let bomb = PiEvent {
        seq: 0,
        meta: EventMeta { kind: "message_update".into(), ..EventMeta::default() },
        line: Bytes::from_static(br#"{"type":"message_update"}"#),
        delta: Some(Delta { cuts: vec![cut; 3000] }),
    };
    let mut uni = b.open_uni().await.unwrap();
    write_frame(&mut uni, &StreamHeader::Session { session: on_b.clone() }).await.unwrap();
    write_frame(&mut uni, &FromAgent::DeltaBase { slots: vec![Some(Bytes::from(vec![b'x'; 1 << 20])), None] })
        .await
        .unwrap();
    write_frame(&mut uni, &FromAgent::Events { session: on_b.clone(), events: vec![bomb] }).await.unwrap();

    // a's session streams on, in order; the coordinator did not build gigabytes.
    go_tx.send(true).unwrap();
    let mut next = 0u64;
    while next < 40 {
        if let Frame::Json(v) = ws.next_frame().await.unwrap() {
            if v["type"] == "message_update" {
                assert_eq!(v["i"], next, "{v}");
                next += 1;
            }
        }
    }
    let after = rss_kib(server.pid());
    assert!(after < before + 256 * 1024, "RSS {before} → {after} KiB");
    let log = server.stderr.lock().unwrap().clone();
    assert!(log.contains(&on_b) && log.contains("compact update"), "the refusal is logged for b's session: {log}");
    assert_eq!(server.get("/api/health").await.unwrap().0, 200);
}
