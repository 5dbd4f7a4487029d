//! The coordinator's QUIC listener: agents on other machines connect here.
//!
//! A connection without a client certificate may only enroll (one `Enroll` stream: token,
//! name, CSR → certificate). A connection with a certificate signed by the cluster CA is an
//! agent if that certificate is the one it was enrolled with (a removed agent's is refused).
//! An agent's control stream carries the same `ToAgent`/`FromAgent` messages as the in-process
//! link, and each session's events come on a stream of their own, so the rest of the
//! coordinator does not know how an agent is connected.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context};
use piface_agent::wire::{write_frame, FrameReader};
use piface_shared::protocol::{EnrollReply, EnrollRequest, FromAgent, StreamHeader, ToAgent};
use tokio::sync::mpsc;
use tracing::{debug, info, warn, Instrument};

use crate::agent_link::{pump_session, run_control, AgentHandle};
use crate::pki::{self, ClusterCa};
use crate::store::AgentRecord;
use crate::App;

/// Application close codes on agent connections.
pub mod close {
    /// The certificate is not (or no longer) that of an enrolled agent.
    pub const REFUSED: u32 = 1;
    /// The agent was removed while connected.
    pub const REMOVED: u32 = 2;
    /// Protocol violation (bad first frame, unexpected stream).
    pub const PROTOCOL: u32 = 3;
}

/// Binds the QUIC endpoint.
///
/// The stateless-reset key is kept in `cluster_dir` across restarts: when a restarted
/// coordinator gets packets of a connection it no longer knows, its reset is one the agent can
/// verify, so the agent learns at once that the old connection is gone (instead of after its
/// idle timeout) and reconnects.
pub fn bind(ca: &ClusterCa, cluster_dir: &std::path::Path, addr: SocketAddr) -> anyhow::Result<quinn::Endpoint> {
    let server = ca.server_config(&piface_agent::tls::Transport::default())?;
    let path = cluster_dir.join("reset.key");
    let secret = match std::fs::read(&path) {
        Ok(bytes) if bytes.len() == 32 => bytes,
        Ok(_) => anyhow::bail!("{} is damaged (expected 32 bytes)", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = vec![0u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                .map_err(|_| anyhow!("no randomness for the reset key"))?;
            piface_agent::tls::write_file_atomic(&path, &bytes, 0o600)?;
            bytes
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("reading {}", path.display()))),
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
    let mut config = quinn::EndpointConfig::new(Arc::new(key));
    // Connection ids are checked with a keyed hash before a reset is sent; the key must survive
    // the restart too, or the old connection's packets are dropped as invalid instead.
    let cid_key = u64::from_le_bytes(secret[..8].try_into().expect("32 bytes"));
    config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key)) as Box<dyn quinn::ConnectionIdGenerator>
    });
    let socket = std::net::UdpSocket::bind(addr).with_context(|| format!("binding QUIC on {addr}"))?;
    let runtime = quinn::default_runtime().ok_or_else(|| anyhow!("no async runtime for QUIC"))?;
    quinn::Endpoint::new(config, Some(server), socket, runtime).with_context(|| format!("binding QUIC on {addr}"))
}

/// Accepts agents until the endpoint closes.
pub async fn serve(app: Arc<App>, ca: Arc<ClusterCa>, endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        let (app, ca) = (app.clone(), ca.clone());
        let span = tracing::info_span!("agent_conn", remote = %incoming.remote_address());
        tokio::spawn(
            async move {
                if let Err(e) = handle_connection(app, ca, incoming).await {
                    warn!("agent connection: {e:#}");
                }
            }
            .instrument(span),
        );
    }
}

async fn handle_connection(app: Arc<App>, ca: Arc<ClusterCa>, incoming: quinn::Incoming) -> anyhow::Result<()> {
    let conn = incoming.await.context("handshake")?;
    let Some(cert) = pki::peer_certificate(&conn) else {
        return enroll(&app, &ca, conn).await;
    };
    let fingerprint = pki::cert_fingerprint(&cert);
    let name = pki::cert_common_name(&cert).unwrap_or_default();
    if !app.agents.is_enrolled(&name, &fingerprint) {
        conn.close(close::REFUSED.into(), b"unknown or removed agent certificate");
        return Err(anyhow!("refused agent {name:?}: its certificate is not enrolled (removed?)"));
    }
    serve_agent(app, name, conn).instrument(tracing::info_span!("agent")).await
}

async fn enroll(app: &Arc<App>, ca: &ClusterCa, conn: quinn::Connection) -> anyhow::Result<()> {
    let (mut send, recv) =
        tokio::time::timeout(Duration::from_secs(10), conn.accept_bi()).await.context("no enrollment stream")??;
    let mut reader = FrameReader::new(recv);
    if reader.next::<StreamHeader>().await? != Some(StreamHeader::Enroll) {
        conn.close(close::PROTOCOL.into(), b"enroll first: this connection has no certificate");
        return Err(anyhow!("a connection without a certificate tried something else than enrolling"));
    }
    let req: EnrollRequest = reader.next().await?.ok_or_else(|| anyhow!("empty enrollment"))?;
    let reply = match check_enrollment(app, ca, &req) {
        Ok(cert_pem) => {
            info!(agent = %req.name, "agent enrolled");
            EnrollReply::Enrolled { cert_pem, ca_pem: ca.ca_pem() }
        }
        Err(reason) => {
            warn!(agent = %req.name, "enrollment refused: {reason}");
            EnrollReply::Refused { reason }
        }
    };
    write_frame(&mut send, &reply).await?;
    send.finish()?;
    // Let the reply reach the agent before the connection goes.
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
    Ok(())
}

fn check_enrollment(app: &App, ca: &ClusterCa, req: &EnrollRequest) -> Result<String, String> {
    let name = req.name.trim();
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err("agent names are 1 to 64 letters, digits, '-', '_' or '.'".into());
    }
    if name == crate::agents::LOCAL {
        return Err("the name \"local\" is reserved for the coordinator's own agent".into());
    }
    let token_id = ca.verify_token(&req.token, SystemTime::now()).map_err(|e| e.to_string())?;
    let cert_pem = ca.sign_agent_csr(&req.csr_pem, name).map_err(|e| format!("bad certificate request: {e:#}"))?;
    let der = pem_to_der(&cert_pem).map_err(|e| e.to_string())?;
    let record = AgentRecord {
        name: name.to_string(),
        cert_fingerprint: pki::cert_fingerprint(&der),
        enrolled_at: crate::record::now(),
    };
    app.agents.enroll(&*app.store, &token_id, record)?;
    Ok(cert_pem)
}

fn pem_to_der(pem: &str) -> anyhow::Result<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    let der =
        rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).context("reading the certificate PEM")?;
    Ok(der.to_vec())
}

/// Runs an enrolled agent's connection: its control stream and its session streams.
async fn serve_agent(app: Arc<App>, name: String, conn: quinn::Connection) -> anyhow::Result<()> {
    let (mut send, recv) =
        tokio::time::timeout(Duration::from_secs(10), conn.accept_bi()).await.context("no control stream")??;
    let mut reader = FrameReader::new(recv);
    if reader.next::<StreamHeader>().await? != Some(StreamHeader::Control) {
        conn.close(close::PROTOCOL.into(), b"expected the control stream first");
        return Err(anyhow!("agent {name}: first stream is not the control stream"));
    }
    // Control: ToAgent out through a writer task, FromAgent in through a reader task.
    let (to_tx, mut to_rx) = mpsc::channel::<ToAgent>(64);
    let handle = Arc::new(AgentHandle::new(to_tx));
    let (from_tx, from_rx) = mpsc::channel::<FromAgent>(256);
    let writer = tokio::spawn(async move {
        while let Some(msg) = to_rx.recv().await {
            if write_frame(&mut send, &msg).await.is_err() {
                break;
            }
        }
    });
    let reader_task = tokio::spawn(async move {
        loop {
            match reader.next::<FromAgent>().await {
                Ok(Some(msg)) => {
                    if from_tx.send(msg).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    debug!("control stream: {e}");
                    break;
                }
            }
        }
    });
    app.agents.up(&name, handle.clone(), Some(conn.clone()));
    handle.send(ToAgent::Hello(piface_agent::hello(None))).await?;
    info!(agent = %name, remote = %conn.remote_address(), "agent link up");
    let control = tokio::spawn(run_control(app.clone(), name.clone(), handle.clone(), from_rx));
    // Sessions whose pi ran on while the agent was away come back; those whose pi is gone
    // (the agent restarted) are archived.
    let (app2, handle2, name2) = (app.clone(), handle.clone(), name.clone());
    tokio::spawn(async move {
        match handle2.request(|req| ToAgent::ListSessions { req }, Duration::from_secs(30)).await {
            Ok(FromAgent::SessionList { sessions, .. }) => app2.reconcile_agent(&name2, &sessions),
            Ok(other) => warn!("unexpected answer to ListSessions: {other:?}"),
            Err(e) => warn!(agent = %name2, "could not list the agent's sessions: {e}"),
        }
    });

    loop {
        let recv = tokio::select! {
            r = conn.accept_uni() => match r {
                Ok(recv) => recv,
                Err(e) => {
                    info!(agent = %name, "agent link down: {e}");
                    break;
                }
            },
            _ = app.shutdown.cancelled() => break,
        };
        let (app, handle, agent) = (app.clone(), handle.clone(), name.clone());
        tokio::spawn(async move {
            if let Err(e) = serve_stream(app, agent, handle, recv).await {
                debug!("agent stream: {e:#}");
            }
        });
    }
    writer.abort();
    reader_task.abort();
    let _ = control.await;
    Ok(())
}

/// One unidirectional stream from an agent: a session's events or a streamed reply.
async fn serve_stream(
    app: Arc<App>,
    agent: String,
    handle: Arc<AgentHandle>,
    recv: quinn::RecvStream,
) -> anyhow::Result<()> {
    let mut reader = FrameReader::new(recv);
    let header: StreamHeader = reader.next().await?.ok_or_else(|| anyhow!("empty stream"))?;
    let (tx, rx) = mpsc::channel::<FromAgent>(4);
    match header {
        StreamHeader::Session { session } => {
            tokio::spawn(pump_session(app, agent, session, rx));
        }
        StreamHeader::Terminal { session } => {
            tokio::spawn(crate::terminal::pump(app, session, rx));
        }
        StreamHeader::Reply { req } => {
            let Some(out) = handle.take_reply_stream(req) else { return Ok(()) };
            tokio::spawn(async move {
                let mut rx = rx;
                while let Some(msg) = rx.recv().await {
                    if out.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
        other => return Err(anyhow!("unexpected stream {other:?}")),
    }
    // Streaming updates arrive coded against the previous ones of this stream.
    let mut decoder = piface_shared::delta::Decoder::default();
    while let Some(mut msg) = reader.next::<FromAgent>().await? {
        if let FromAgent::DeltaBase { slots } = msg {
            let mut base = piface_shared::delta::Slots::default();
            for (b, s) in base.iter_mut().zip(slots) {
                *b = s;
            }
            decoder.reset(base);
            continue;
        }
        if let FromAgent::Events { session, events } = &mut msg {
            events.retain_mut(|e| match e.delta.take() {
                None => true,
                Some(delta) => match decoder.decode(&e.line, &delta) {
                    Ok(line) => {
                        e.line = line;
                        true
                    }
                    Err(err) => {
                        // Dropped: the hub sees the hole and replays the history to its clients.
                        warn!(session_id = %session, seq = e.seq, "{err}");
                        false
                    }
                },
            });
        }
        if tx.send(msg).await.is_err() {
            break;
        }
    }
    Ok(())
}
