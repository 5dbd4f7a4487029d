//! A simulated agent: a light client that speaks the real agent protocol over real QUIC
//! (enrollment, mTLS, control stream, a stream per session) but runs no pi; each session it is
//! asked to start emits `message_update` events at a steady rate. For benchmarks that need
//! hundreds of agents in one process.
//!
//! Each event line carries `i` (its index in the session) and `t` (unix nanoseconds when it was
//! written), so a client can check for loss and measure latency.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use piface_link::tls::{self, AgentIdentity, JoinToken, Transport};
use piface_link::wire::{write_frame, FrameReader};
use piface_shared::protocol::{
    EnrollReply, EnrollRequest, EventMeta, FromAgent, PiEvent, Spawned, StreamHeader, ToAgent,
};
use tokio::sync::{mpsc, watch};

/// Enrolls `name` with `token` and returns its identity.
pub async fn enroll(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    token: &str,
    name: &str,
) -> anyhow::Result<AgentIdentity> {
    let token = JoinToken::parse(token)?;
    let (key_pem, csr_pem) = tls::new_csr(name)?;
    let config = tls::enrollment_client_config(&token.ca_fingerprint, &Transport::default())?;
    let conn = endpoint.connect_with(config, addr, tls::SERVER_NAME)?.await?;
    let (mut send, recv) = conn.open_bi().await?;
    write_frame(&mut send, &StreamHeader::Enroll).await?;
    write_frame(&mut send, &EnrollRequest { token: token.raw.clone(), name: name.into(), csr_pem }).await?;
    send.finish()?;
    let reply = FrameReader::new(recv).next::<EnrollReply>().await?.context("no enrollment answer")?;
    conn.close(0u32.into(), b"");
    match reply {
        EnrollReply::Enrolled { cert_pem, ca_pem } => Ok(AgentIdentity { key_pem, cert_pem, ca_pem }),
        EnrollReply::Refused { reason } => anyhow::bail!("refused: {reason}"),
    }
}

/// How a simulated agent's sessions behave.
#[derive(Debug, Clone, Copy)]
pub struct SimConfig {
    /// Events per second per session.
    pub rate: f64,
    /// Padding of each event line, bytes.
    pub pad: usize,
}

/// A running simulated agent.
pub struct SimAgent {
    /// Events written so far, all sessions.
    pub emitted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SimAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects an enrolled agent; its sessions emit while `go` is true.
pub async fn connect(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    identity: &AgentIdentity,
    config: SimConfig,
    go: watch::Receiver<bool>,
) -> anyhow::Result<SimAgent> {
    let client = tls::client_config(identity, None, &Transport::default())?;
    let conn = endpoint.connect_with(client, addr, tls::SERVER_NAME)?.await?;
    let (mut send, recv) = conn.open_bi().await?;
    write_frame(&mut send, &StreamHeader::Control).await?;
    write_frame(&mut send, &FromAgent::Hello(piface_link::hello(Some("simulated".into())))).await?;
    let emitted = Arc::new(AtomicU64::new(0));
    let (out_tx, mut out_rx) = mpsc::channel::<FromAgent>(256);
    let writer = tokio::spawn(async move {
        while let Some(msg) = out_rx.recv().await {
            if write_frame(&mut send, &msg).await.is_err() {
                break;
            }
        }
    });
    let counter = emitted.clone();
    let task = tokio::spawn(async move {
        let mut reader = FrameReader::new(recv);
        let mut sessions = Vec::new();
        while let Ok(Some(msg)) = reader.next::<ToAgent>().await {
            match msg {
                ToAgent::Spawn { req, session, .. } => {
                    sessions.push(session.clone());
                    tokio::spawn(emit(conn.clone(), session, config, go.clone(), counter.clone()));
                    let _ = out_tx.send(FromAgent::Spawned { req, result: Ok(Spawned { pid: 0 }) }).await;
                }
                ToAgent::Kill { req, .. } => {
                    let _ = out_tx.send(FromAgent::Killed { req, was_running: true }).await;
                }
                ToAgent::ListSessions { req, .. } => {
                    let _ = out_tx.send(FromAgent::SessionList { req, sessions: sessions.clone() }).await;
                }
                // Session creation asks the agent to place the session first; a plain directory.
                ToAgent::Tool { req, .. } => {
                    let _ = out_tx.send(FromAgent::ToolDone { req, result: Ok("{}".into()) }).await;
                }
                _ => {}
            }
        }
        writer.abort();
    });
    Ok(SimAgent { emitted, task })
}

/// One session's stream: waits for `go`, then writes events at `config.rate` until `go` is
/// false again.
async fn emit(
    conn: quinn::Connection,
    session: String,
    config: SimConfig,
    mut go: watch::Receiver<bool>,
    counter: Arc<AtomicU64>,
) {
    let Ok(mut send) = conn.open_uni().await else { return };
    if write_frame(&mut send, &StreamHeader::Session { session: session.clone() }).await.is_err() {
        return;
    }
    if go.wait_for(|g| *g).await.is_err() {
        return;
    }
    let pad = "x".repeat(config.pad);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / config.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let meta = EventMeta { kind: "message_update".into(), ..EventMeta::default() };
    for seq in 0u64.. {
        tick.tick().await;
        if !*go.borrow() {
            return;
        }
        let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        let line = format!(
            r#"{{"type":"message_update","assistantMessageEvent":{{"type":"text_delta","delta":"{pad}"}},"i":{seq},"t":{t}}}"#
        );
        let event = PiEvent { seq, meta: meta.clone(), line: Bytes::from(line), delta: None };
        if write_frame(&mut send, &FromAgent::Events { session: session.clone(), events: vec![event] }).await.is_err() {
            return;
        }
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
