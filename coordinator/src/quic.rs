//! The coordinator's QUIC listener: agents on other machines connect here.
//!
//! A connection without a client certificate may only enroll (one `Enroll` stream: token,
//! name, CSR → certificate). A connection with a certificate signed by the cluster CA is an
//! agent if that certificate is the one it was enrolled with (a removed agent's is refused).
//! An agent's control stream carries the same `ToAgent`/`FromAgent` messages as the in-process
//! link, and each session's events come on a stream of their own, so the rest of the
//! coordinator does not know how an agent is connected.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context};
use piface_link::wire::{write_frame, FrameReader};
use piface_shared::protocol::{EnrollReply, EnrollRequest, FromAgent, StreamHeader, ToAgent};
use tokio::sync::mpsc;
use tracing::{debug, info, warn, Instrument};

use crate::agent_link::AgentHandle;
use crate::agents::close;
use crate::control::{pump_session, run_control};
use crate::pki::{self, ClusterCa};
use crate::store::AgentRecord;
use crate::App;

/// Limits of the agents' port before a peer is known to be an agent.
#[derive(Debug, Clone, Copy)]
pub struct LinkLimits {
    /// Connections not yet identified as an enrolled agent (handshaking or enrolling), in all.
    pub unidentified: usize,
    /// The same, per source address.
    pub unidentified_per_address: usize,
    /// Time from the first packet to an enrolled agent's control stream, or to the end of an
    /// enrollment.
    pub handshake: Duration,
}

impl Default for LinkLimits {
    fn default() -> LinkLimits {
        LinkLimits { unidentified: 64, unidentified_per_address: 8, handshake: Duration::from_secs(10) }
    }
}

/// Largest frame on each kind of stream. Only session streams carry pi's lines (up to 64 MiB);
/// the control stream carries replies such as synthesised audio.
mod frame_max {
    use piface_shared::codec::MAX_FRAME_LEN;
    /// Stream header and enrollment request or reply (a CSR, a token, two certificates).
    pub const ENROLL: usize = 16 * 1024;
    /// Control stream.
    pub const CONTROL: usize = MAX_FRAME_LEN;
    /// A session's events.
    pub const SESSION: usize = MAX_FRAME_LEN;
    /// Terminal output (the agent reads the PTY in small chunks).
    pub const TERMINAL: usize = 1 << 20;
    /// Pieces of a streamed reply (file contents, history).
    pub const REPLY: usize = 4 << 20;
}

/// Connections not yet identified, counted in all and per source address.
#[derive(Default)]
struct Unidentified {
    counts: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One unidentified connection's place; dropping it frees the place.
struct Slot {
    gate: Arc<Unidentified>,
    ip: IpAddr,
}

impl Unidentified {
    fn take(self: &Arc<Self>, ip: IpAddr, limits: &LinkLimits) -> Option<Slot> {
        let mut counts = self.counts.lock().unwrap();
        let (total, per) = &mut *counts;
        let mine = per.entry(ip).or_default();
        if *total >= limits.unidentified || *mine >= limits.unidentified_per_address {
            return None;
        }
        *mine += 1;
        *total += 1;
        Some(Slot { gate: self.clone(), ip })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.gate.counts.lock().unwrap();
        let (total, per) = &mut *counts;
        *total -= 1;
        if let Some(n) = per.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.ip);
            }
        }
    }
}

/// `s` fit for a log line: at most 64 characters, control characters escaped.
fn printable(s: &str) -> String {
    let cut: String = s.chars().take(64).collect();
    let mut out: String = cut.escape_debug().collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

/// Binds the QUIC endpoint.
///
/// The stateless-reset key is kept in `cluster_dir` across restarts: when a restarted
/// coordinator gets packets of a connection it no longer knows, its reset is one the agent can
/// verify, so the agent learns at once that the old connection is gone (instead of after its
/// idle timeout) and reconnects.
pub fn bind(ca: &ClusterCa, cluster_dir: &std::path::Path, addr: SocketAddr) -> anyhow::Result<quinn::Endpoint> {
    let mut server = ca.server_config(&piface_link::tls::Transport::default())?;
    // Until a peer is known to be an agent it may open one bidirectional stream (enrollment or
    // control) and no other, and have little data in flight; agents get more once identified.
    let mut transport = piface_link::tls::Transport::default().quinn_config()?;
    transport
        .max_concurrent_bidi_streams(1u32.into())
        .max_concurrent_uni_streams(0u32.into())
        .stream_receive_window((256u32 * 1024).into())
        .receive_window((512u32 * 1024).into());
    server.transport_config(Arc::new(transport));
    let path = cluster_dir.join("reset.key");
    let secret = match std::fs::read(&path) {
        Ok(bytes) if bytes.len() == 32 => bytes,
        Ok(_) => anyhow::bail!("{} is damaged (expected 32 bytes)", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = vec![0u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                .map_err(|_| anyhow!("no randomness for the reset key"))?;
            piface_link::tls::write_file_atomic(&path, &bytes, 0o600)?;
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

/// Accepts agents until the endpoint closes. A peer is "unidentified" from its first packet
/// until it shows an enrolled agent's certificate: such connections are capped in all and per
/// address (past the cap they are refused at once) and have [`LinkLimits::handshake`] to
/// finish, enrollment included.
pub async fn serve(app: Arc<App>, ca: Arc<ClusterCa>, endpoint: quinn::Endpoint) {
    let gate = Arc::new(Unidentified::default());
    let limits = app.config.link_limits;
    let refused_logged = Arc::new(AtomicBool::new(false));
    while let Some(incoming) = endpoint.accept().await {
        let remote = incoming.remote_address();
        let Some(slot) = gate.take(remote.ip().to_canonical(), &limits) else {
            // Logged once per burst: a flood must not flood the log too.
            if !refused_logged.swap(true, Ordering::Relaxed) {
                warn!(%remote, "too many unidentified connections to the agents' port; refusing new ones");
            }
            incoming.refuse();
            continue;
        };
        refused_logged.store(false, Ordering::Relaxed);
        let (app, ca) = (app.clone(), ca.clone());
        let span = tracing::info_span!("agent_conn", %remote);
        tokio::spawn(
            async move {
                if let Err(e) = handle_connection(app, ca, incoming, slot, limits.handshake).await {
                    warn!("agent connection: {e:#}");
                }
            }
            .instrument(span),
        );
    }
}

async fn handle_connection(
    app: Arc<App>,
    ca: Arc<ClusterCa>,
    incoming: quinn::Incoming,
    slot: Slot,
    deadline: Duration,
) -> anyhow::Result<()> {
    let started = tokio::time::Instant::now();
    let conn =
        tokio::time::timeout(deadline, incoming).await.context("handshake took too long")?.context("handshake")?;
    let Some(cert) = pki::peer_certificate(&conn) else {
        let outcome = tokio::time::timeout_at(started + deadline, enroll(&app, &ca, &conn)).await;
        drop(slot);
        return match outcome {
            Ok(result) => result,
            Err(_) => {
                conn.close(close::TIMEOUT.into(), b"enrollment took too long");
                Err(anyhow!("enrollment did not finish within {} s", deadline.as_secs()))
            }
        };
    };
    let fingerprint = pki::cert_fingerprint(&cert);
    let name = pki::cert_common_name(&cert).unwrap_or_default();
    // From here a removal closes this connection, whatever it is waiting for.
    let Some(admitted) = app.agents.admit(&name, &fingerprint, &conn) else {
        return Err(anyhow!("refused agent {:?}: its certificate is not enrolled (removed?)", printable(&name)));
    };
    drop(slot);
    // An agent opens streams of its own: one per session and per streamed reply.
    conn.set_max_concurrent_uni_streams(4096u32.into());
    conn.set_receive_window(quinn::VarInt::MAX);
    serve_agent(app, name, conn, admitted, started + deadline).instrument(tracing::info_span!("agent")).await
}

async fn enroll(app: &Arc<App>, ca: &ClusterCa, conn: &quinn::Connection) -> anyhow::Result<()> {
    let (mut send, recv) = conn.accept_bi().await.context("no enrollment stream")?;
    let mut reader = FrameReader::with_limit(recv, frame_max::ENROLL);
    if reader.next::<StreamHeader>().await? != Some(StreamHeader::Enroll) {
        conn.close(close::PROTOCOL.into(), b"enroll first: this connection has no certificate");
        return Err(anyhow!("a connection without a certificate tried something else than enrolling"));
    }
    let req: EnrollRequest = match reader.next().await {
        Ok(Some(req)) => req,
        Ok(None) => return Err(anyhow!("empty enrollment")),
        Err(e) => {
            conn.close(close::PROTOCOL.into(), b"bad enrollment request");
            return Err(anyhow!("bad enrollment request: {e}"));
        }
    };
    // The name is the peer's until checked: logged escaped and cut.
    let name = printable(&req.name);
    let reply = match check_enrollment(app, ca, &req) {
        Ok(cert_pem) => {
            info!(agent = %name, "agent enrolled");
            EnrollReply::Enrolled { cert_pem, ca_pem: ca.ca_pem() }
        }
        Err(reason) => {
            warn!(agent = %name, "enrollment refused: {reason}");
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
async fn serve_agent(
    app: Arc<App>,
    name: String,
    conn: quinn::Connection,
    admitted: crate::agents::Admitted,
    deadline: tokio::time::Instant,
) -> anyhow::Result<()> {
    let (mut send, recv) = match tokio::time::timeout_at(deadline, conn.accept_bi()).await {
        Ok(stream) => stream.context("no control stream")?,
        Err(_) => {
            conn.close(close::TIMEOUT.into(), b"no control stream in time");
            return Err(anyhow!("agent {name}: no control stream in time"));
        }
    };
    let mut reader = FrameReader::with_limit(recv, frame_max::CONTROL);
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
    if !app.agents.up(&name, handle.clone(), Some(conn.clone())) {
        writer.abort();
        reader_task.abort();
        return Err(anyhow!("agent {name} was removed while connecting"));
    }
    drop(admitted);
    app.metrics.link_up(&name);
    handle.send(ToAgent::Hello(piface_link::hello(None))).await?;
    info!(agent = %name, remote = %conn.remote_address(), "agent link up");
    let control = tokio::spawn(run_control(app.clone(), name.clone(), handle.clone(), from_rx));
    // Sessions whose pi ran on while the agent was away come back; those whose pi is gone
    // (the agent restarted) are archived.
    let (app2, handle2, name2) = (app.clone(), handle.clone(), name.clone());
    tokio::spawn(async move {
        match handle2.request(|req| ToAgent::ListSessions { req, trace: None }, Duration::from_secs(30)).await {
            Ok(FromAgent::SessionList { sessions, .. }) => app2.sessions.listed(&name2, handle2.link(), sessions),
            Ok(other) => warn!("unexpected answer to ListSessions: {other:?}"),
            Err(e) => warn!(agent = %name2, "could not list the agent's sessions: {e}"),
        }
    });

    // Streams for sessions this agent does not run are refused; the first is logged.
    let warned = Arc::new(AtomicBool::new(false));
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
        let (app, handle, agent, warned) = (app.clone(), handle.clone(), name.clone(), warned.clone());
        tokio::spawn(async move {
            if let Err(e) = serve_stream(app, agent, handle, recv, &warned).await {
                debug!("agent stream: {e:#}");
            }
        });
    }
    writer.abort();
    reader_task.abort();
    let _ = control.await;
    Ok(())
}

/// One unidirectional stream from an agent: a session's events, its terminal, or a streamed
/// reply. Session and terminal streams are accepted only for sessions whose record belongs to
/// this agent: another agent's session or an unknown id gets the stream stopped and creates
/// nothing.
async fn serve_stream(
    app: Arc<App>,
    agent: String,
    handle: Arc<AgentHandle>,
    recv: quinn::RecvStream,
    warned: &AtomicBool,
) -> anyhow::Result<()> {
    let mut reader = FrameReader::with_limit(recv, frame_max::ENROLL);
    let header: StreamHeader = reader.next().await?.ok_or_else(|| anyhow!("empty stream"))?;
    if let StreamHeader::Session { session } | StreamHeader::Terminal { session } = &header {
        if app.registry.agent_of(session).as_deref() != Some(agent.as_str()) {
            let _ = reader.into_inner().stop(close::PROTOCOL.into());
            if !warned.swap(true, Ordering::Relaxed) {
                warn!(agent = %agent, session_id = %printable(session), "refusing a stream for a session this agent does not run (further ones are not logged)");
            }
            return Ok(());
        }
    }
    let limit = match &header {
        StreamHeader::Terminal { .. } => frame_max::TERMINAL,
        StreamHeader::Reply { .. } => frame_max::REPLY,
        _ => frame_max::SESSION,
    };
    reader.set_limit(limit);
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
