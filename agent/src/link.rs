//! The link of an agent on its own machine (`piface agent`) to the coordinator, over QUIC with
//! mutual TLS.
//!
//! On first start the agent enrolls with a join token: it pins the cluster CA by the token's
//! fingerprint, sends a CSR with the secret, and stores the certificate it gets (see
//! `piface_link::tls`).
//! From then on it connects with that certificate, keeps the connection up (reconnecting with
//! exponential backoff and jitter), and carries the agent core's messages: a control stream
//! and one stream per session. The core, and the pi processes it runs, outlive the link.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use piface_shared::protocol::{EnrollReply, EnrollRequest, FromAgent, RequestId, SessionId, StreamHeader, ToAgent};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::{AgentConfig, SessionStreams};
use piface_link::journal::Journal;
use piface_link::tls::{self, AgentIdentity, JoinToken, Transport, SERVER_NAME};
use piface_link::wire::{write_frame, FrameReader};
use piface_shared::codec::encode_frame;

/// How to reach and join the coordinator.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// `HOST:PORT` of the coordinators' QUIC listeners: one, or a leader and its standbys in
    /// any order (never empty).
    pub coordinators: Vec<String>,
    /// Join token, needed to enroll (first start); afterwards it only pins the CA.
    pub token: Option<String>,
    /// This agent's name in the cluster.
    pub name: String,
    /// Where the agent keeps its key and certificates.
    pub data_dir: PathBuf,
    /// QUIC keep-alive and idle timeout.
    pub transport: Transport,
    /// Bytes of events kept per session while the link is down ([`DEFAULT_REPLAY_BYTES`]).
    pub replay_bytes: usize,
}

/// Runs the agent until `shutdown` fires: enrolls if needed, then keeps the link up.
pub async fn run(
    link: LinkConfig,
    agent: AgentConfig,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let pinned = link.token.as_deref().map(JoinToken::parse).transpose()?.map(|t| t.ca_fingerprint);
    let identity = match AgentIdentity::load(&link.data_dir)? {
        Some(identity) => identity,
        None => enroll(&link).await?,
    };
    let client = tls::client_config(&identity, pinned.as_deref(), &link.transport)?;
    let mut endpoint = quinn::Endpoint::client(unspecified_for(&link.coordinators).await)?;
    endpoint.set_default_client_config(client);

    let pi_version = detect_pi_version(&agent.pi_bin).await;
    let streams = Arc::new(QuicStreams::new(link.replay_bytes));
    let core = crate::spawn(agent, streams.clone());
    let (tx, mut rx, models) = (core.tx, core.rx, core.models);
    let mut backoff = Backoff::default();
    let mut targets = Targets::new(link.coordinators.clone());
    loop {
        let target = targets.pick();
        let attempt = async {
            let addr = resolve(&target).await?;
            let conn = endpoint.connect(addr, SERVER_NAME)?.await.with_context(|| format!("connecting to {addr}"))?;
            let served = serve_connection(&conn, &tx, &mut rx, &streams, &models, pi_version.clone()).await;
            if let Some(quinn::ConnectionError::ApplicationClosed(close)) = conn.close_reason() {
                if close.error_code == piface_link::close::STANDBY.into() {
                    let leader = piface_link::close::standby_redirect(&close.reason).map(str::to_string);
                    return Ok(Attempt::Standby(leader));
                }
            }
            backoff = Backoff::default();
            served.map(|()| Attempt::Served)
        };
        let result = tokio::select! {
            r = attempt => r,
            () = shutdown.cancelled() => break,
        };
        let pause = match result {
            Ok(Attempt::Served) => {
                info!("link closed");
                targets.served();
                backoff.next()
            }
            Ok(Attempt::Standby(leader)) => {
                info!(coordinator = %target, leader = ?leader, "that coordinator is a standby");
                targets.standby(&target, leader).unwrap_or_else(|| backoff.next())
            }
            Err(e) => {
                warn!("link: {e:#}");
                targets.failed(&target).unwrap_or_else(|| backoff.next())
            }
        };
        debug!(?pause, "reconnecting");
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shutdown.cancelled() => break,
        }
    }
    endpoint.close(0u32.into(), b"agent stopping");
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(15), core.task).await;
    Ok(())
}

async fn serve_connection(
    conn: &quinn::Connection,
    tx: &mpsc::Sender<ToAgent>,
    rx: &mut mpsc::Receiver<FromAgent>,
    streams: &QuicStreams,
    models: &crate::models::Models,
    pi_version: Option<String>,
) -> anyhow::Result<()> {
    let (mut send, recv) = conn.open_bi().await?;
    write_frame(&mut send, &StreamHeader::Control).await?;
    write_frame(&mut send, &FromAgent::Hello(crate::agent_hello(models, pi_version.clone()))).await?;
    streams.conn.send_replace(Some(conn.clone()));
    let reader = async {
        let mut frames = FrameReader::new(recv);
        while let Some(msg) = frames.next::<ToAgent>().await? {
            if let ToAgent::Hello(h) = &msg {
                h.check_compatible()?;
                // The coordinator's hello: it leads and took this agent (a standby closes first).
                info!(coordinator = %conn.remote_address(), "link up");
            }
            tx.send(msg).await.context("the agent core stopped")?;
        }
        anyhow::Ok(())
    };
    let writer = async {
        while let Some(msg) = rx.recv().await {
            // The core says hello again when something it advertises changed (a speech model
            // finished loading): send ours, which carries the pi version too.
            let msg = match msg {
                FromAgent::Hello(_) => FromAgent::Hello(crate::agent_hello(models, pi_version.clone())),
                other => other,
            };
            write_frame(&mut send, &msg).await?;
        }
        anyhow::Ok(())
    };
    let result = tokio::select! {
        r = reader => r,
        r = writer => r,
        e = conn.closed() => Err(anyhow::Error::new(e).context("connection closed")),
    };
    streams.conn.send_replace(None);
    result
}

async fn enroll(link: &LinkConfig) -> anyhow::Result<AgentIdentity> {
    let raw = link.token.as_deref().context(
        "this agent has not joined a cluster yet: pass --token (made by `piface token create` on the coordinator)",
    )?;
    let token = JoinToken::parse(raw)?;
    let (key_pem, csr_pem) = tls::new_csr(&link.name)?;
    let mut endpoint = quinn::Endpoint::client(unspecified_for(&link.coordinators).await)?;
    endpoint.set_default_client_config(tls::enrollment_client_config(&token.ca_fingerprint, &link.transport)?);
    let request = EnrollRequest { token: token.raw.clone(), name: link.name.clone(), csr_pem };
    // The leader enrolls; a standby names it. Each coordinator of the list once, and the
    // leaders named, before giving up.
    let mut targets = Targets::new(link.coordinators.clone());
    let mut errors = Vec::new();
    let reply = loop {
        let target = targets.pick();
        match enroll_at(&endpoint, &target, &request).await {
            Ok(Enrollment::Reply(reply)) => break reply,
            Ok(Enrollment::Standby(leader)) => {
                info!(coordinator = %target, leader = ?leader, "that coordinator is a standby");
                errors.push(format!("{target}: a standby"));
                if targets.standby(&target, leader).is_none() {
                    bail!("no coordinator would enroll this agent ({})", errors.join("; "));
                }
            }
            Err(e) => {
                errors.push(format!("{target}: {e:#}"));
                if targets.failed(&target).is_none() {
                    bail!("could not enroll: {}", errors.join("; "));
                }
            }
        }
        tokio::time::sleep(NEXT_COORDINATOR).await;
    };
    endpoint.wait_idle().await;
    match reply {
        EnrollReply::Enrolled { cert_pem, ca_pem } => {
            let identity = AgentIdentity { key_pem, cert_pem, ca_pem };
            if !identity.ca_fingerprint()?.eq_ignore_ascii_case(&token.ca_fingerprint) {
                bail!("the coordinator sent a CA that is not the one the token names");
            }
            identity.save(&link.data_dir)?;
            info!(name = %link.name, "enrolled in the cluster");
            Ok(identity)
        }
        EnrollReply::Refused { reason } => bail!("the coordinator refused to enroll this agent: {reason}"),
    }
}

/// What an enrollment attempt got.
enum Enrollment {
    Reply(EnrollReply),
    Standby(Option<String>),
}

async fn enroll_at(endpoint: &quinn::Endpoint, target: &str, request: &EnrollRequest) -> anyhow::Result<Enrollment> {
    let addr = resolve(target).await?;
    let conn = endpoint
        .connect(addr, SERVER_NAME)?
        .await
        .with_context(|| format!("connecting to the coordinator at {addr} to enroll"))?;
    let exchange = async {
        let (mut send, recv) = conn.open_bi().await?;
        write_frame(&mut send, &StreamHeader::Enroll).await?;
        write_frame(&mut send, request).await?;
        send.finish()?;
        FrameReader::new(recv).next::<EnrollReply>().await?.context("the coordinator sent no enrollment answer")
    };
    let reply = exchange.await;
    if let Some(quinn::ConnectionError::ApplicationClosed(close)) = conn.close_reason() {
        if close.error_code == piface_link::close::STANDBY.into() {
            return Ok(Enrollment::Standby(piface_link::close::standby_redirect(&close.reason).map(str::to_string)));
        }
    }
    let reply = reply?;
    conn.close(0u32.into(), b"enrolled");
    Ok(Enrollment::Reply(reply))
}

async fn resolve(target: &str) -> anyhow::Result<SocketAddr> {
    tokio::net::lookup_host(target)
        .await
        .with_context(|| format!("resolving {target}"))?
        .next()
        .with_context(|| format!("{target} resolves to no address"))
}

/// A local address of the same family as the first coordinator that resolves (IPv4 when
/// none does yet: the link retries later).
async fn unspecified_for(targets: &[String]) -> SocketAddr {
    for target in targets {
        if let Ok(addr) = resolve(target).await {
            return if addr.is_ipv6() {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
            };
        }
    }
    (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
}

/// How one connection attempt ended, when it connected.
enum Attempt {
    /// The coordinator took the agent; the link served until it closed.
    Served,
    /// The coordinator is a standby; it named the leader's address when it knew it.
    Standby(Option<String>),
}

/// Which coordinator to try next: the one a standby named, else the next of the list. A pause
/// is short while untried coordinators remain, and the caller's backoff once every one failed
/// (`None`), so a leader change costs a round trip, not a backoff.
struct Targets {
    list: Vec<String>,
    next: usize,
    /// The leader a standby named, tried next.
    hint: Option<String>,
    /// Attempts since one was served; past a round of the list (plus its redirects) the
    /// caller backs off.
    misses: usize,
}

/// The pause before trying the next coordinator of a round.
const NEXT_COORDINATOR: Duration = Duration::from_millis(100);

impl Targets {
    fn new(list: Vec<String>) -> Targets {
        assert!(!list.is_empty(), "at least one coordinator");
        Targets { list, next: 0, hint: None, misses: 0 }
    }

    fn pick(&mut self) -> String {
        self.hint.take().unwrap_or_else(|| self.list[self.next % self.list.len()].clone())
    }

    /// The link was up: the same coordinator is tried first next time.
    fn served(&mut self) {
        self.misses = 0;
    }

    /// `target` could not be reached.
    fn failed(&mut self, target: &str) -> Option<Duration> {
        if self.list[self.next % self.list.len()] == target {
            self.next += 1;
        }
        self.miss()
    }

    /// `target` is a standby that named `leader`.
    fn standby(&mut self, target: &str, leader: Option<String>) -> Option<Duration> {
        if self.list[self.next % self.list.len()] == target {
            self.next += 1;
        }
        self.hint = leader.filter(|l| l != target);
        self.miss()
    }

    fn miss(&mut self) -> Option<Duration> {
        self.misses += 1;
        // Each coordinator of the list once, and the leader each standby names: a round.
        if self.misses % (2 * self.list.len()) == 0 {
            self.hint = None;
            None
        } else {
            Some(NEXT_COORDINATOR)
        }
    }
}

async fn detect_pi_version(pi: &std::path::Path) -> Option<String> {
    let out = tokio::time::timeout(Duration::from_secs(20), tokio::process::Command::new(pi).arg("--version").output())
        .await
        .ok()?
        .ok()?;
    // pi prints its version on stderr.
    let text = [out.stdout, out.stderr].concat();
    let v = String::from_utf8_lossy(&text).trim().lines().last()?.trim().to_string();
    (!v.is_empty()).then_some(v)
}

/// Exponential backoff with jitter: 0.5 s doubling to 30 s, each pause ±25 %.
#[derive(Default)]
struct Backoff {
    attempt: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let base = 500u64.saturating_mul(1 << self.attempt.min(6)).min(30_000);
        self.attempt += 1;
        let mut byte = [0u8; 2];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut byte);
        let jitter = u16::from_le_bytes(byte) as u64 % (base / 2 + 1);
        Duration::from_millis(base - base / 4 + jitter)
    }
}

/// [`SessionStreams`] over the current QUIC connection.
struct QuicStreams {
    conn: watch::Sender<Option<quinn::Connection>>,
    /// Replay buffer per stream, bytes.
    replay_bytes: usize,
}

impl QuicStreams {
    fn new(replay_bytes: usize) -> QuicStreams {
        QuicStreams { conn: watch::Sender::new(None), replay_bytes }
    }
}

impl SessionStreams for QuicStreams {
    fn open(&self, session: &SessionId) -> mpsc::Sender<FromAgent> {
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(forward(
            StreamHeader::Session { session: session.clone() },
            rx,
            self.conn.subscribe(),
            self.replay_bytes,
        ));
        tx
    }

    fn open_terminal(&self, session: &SessionId) -> mpsc::Sender<FromAgent> {
        let (tx, rx) = mpsc::channel(16);
        let header = StreamHeader::Terminal { session: session.clone() };
        tokio::spawn(forward(header, rx, self.conn.subscribe(), self.replay_bytes));
        tx
    }

    fn open_reply(&self, req: RequestId) -> Option<mpsc::Sender<FromAgent>> {
        self.conn.borrow().as_ref()?;
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(forward(StreamHeader::Reply { req }, rx, self.conn.subscribe(), self.replay_bytes));
        Some(tx)
    }
}

/// Default bytes of events per session waiting for the link (`--replay-buffer-mib`). While the
/// link is down the agent keeps reading pi (pi never blocks on a dead link) and drops the
/// oldest events past this; the coordinator sees the hole and replays the history to its
/// clients. While the link is up and moving, a full queue pushes back on pi instead.
pub const DEFAULT_REPLAY_BYTES: usize = 64 << 20;

/// How long a write may make no progress before the stream counts as stalled: a link that died
/// silently (no packet comes back, QUIC has not timed out yet). pi's events are then taken in
/// (and the oldest dropped past the replay buffer) instead of pushing back on pi.
const STALL: Duration = Duration::from_secs(1);

/// The message being written to the stream: its frame and how much of it went out.
struct Pending {
    msg: FromAgent,
    frame: bytes::Bytes,
    done: usize,
}

/// Carries one stream's messages to the coordinator, on a new QUIC stream each time the link
/// comes back, through a [`Journal`]: what waits for the link is kept (bounded), and what was
/// written shortly before a link died is written again on the next stream.
///
/// Writes never hold up reading: a frame is written piece by piece (QUIC's `write` is
/// cancel-safe) while new messages keep arriving, so a link that died silently costs pi
/// nothing until QUIC's idle timeout declares it dead; it only fills the journal.
async fn forward(
    header: StreamHeader,
    mut rx: mpsc::Receiver<FromAgent>,
    mut conn: watch::Receiver<Option<quinn::Connection>>,
    limit: usize,
) {
    let mut journal = Journal::new(limit);
    let mut stream: Option<quinn::SendStream> = None;
    // The connection `stream` belongs to: when the link is replaced, what was written on the
    // old one goes again on the new one even if nothing new comes to write.
    let mut stream_conn: Option<usize> = None;
    let mut pending: Option<Pending> = None;
    let mut progress = tokio::time::Instant::now();
    let mut input_open = true;
    let live = |c: &Option<quinn::Connection>| c.as_ref().is_some_and(|c| c.close_reason().is_none());
    loop {
        let stalled = stream.is_none() || (pending.is_some() && progress.elapsed() > STALL);
        // Take what the reader has without waiting.
        while input_open && (!journal.is_full() || stalled) {
            match rx.try_recv() {
                Ok(msg) => journal.push(msg, !stalled),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => input_open = false,
            }
        }
        if stream.is_none() {
            let current = conn.borrow().clone().filter(|c| c.close_reason().is_none());
            if let Some(c) = current {
                let base = journal.base().clone();
                let opened = match c.open_uni().await {
                    Ok(mut send) => {
                        let ok = write_frame(&mut send, &header).await.is_ok()
                            && (base.iter().all(Option::is_none)
                                || write_frame(&mut send, &FromAgent::DeltaBase { slots: base.to_vec() })
                                    .await
                                    .is_ok());
                        ok.then_some(send)
                    }
                    Err(_) => None,
                };
                let (sent, unsent) = journal.counts();
                debug!(?header, ok = opened.is_some(), sent, unsent, input_open, "stream (re)opened");
                match opened {
                    Some(send) => {
                        journal.rewind();
                        stream = Some(send);
                        stream_conn = Some(c.stable_id());
                        progress = tokio::time::Instant::now();
                    }
                    // The connection is going away; wait a little for the next one.
                    None => tokio::time::sleep(Duration::from_millis(100)).await,
                }
                continue;
            }
        }
        if stream.is_some() && pending.is_none() {
            if let Some(msg) = journal.next_to_write() {
                let mut frame = bytes::BytesMut::new();
                if let Err(e) = encode_frame(&msg, &mut frame) {
                    // Cannot happen for lines under the splitter's cap; never loop on it.
                    warn!(?header, "dropping a message that does not encode: {e}");
                    continue;
                }
                pending = Some(Pending { msg, frame: frame.freeze(), done: 0 });
                progress = tokio::time::Instant::now();
            }
        }
        if pending.is_none() && !input_open && !journal.has_more() {
            if let Some(mut send) = stream {
                let _ = send.finish();
            }
            return;
        }
        let stalled = stream.is_none() || (pending.is_some() && progress.elapsed() > STALL);
        let accepting = input_open && (!journal.is_full() || stalled);
        let stall_at = progress + STALL;
        let watch_stall = pending.is_some() && !stalled && input_open && !accepting;
        let writing = stream.as_mut().zip(pending.as_ref());
        let has_write = writing.is_some();
        tokio::select! {
            written = async {
                let (send, p) = writing.expect("guarded");
                send.write(&p.frame[p.done..]).await
            }, if has_write => match written {
                Ok(n) => {
                    progress = tokio::time::Instant::now();
                    let p = pending.as_mut().expect("writing");
                    p.done += n;
                    if p.done == p.frame.len() {
                        let p = pending.take().expect("writing");
                        let (msg, len) = (p.msg, p.frame.len());
                        if matches!(
                            msg,
                            FromAgent::Exited { .. }
                                | FromAgent::HistoryDone { .. }
                                | FromAgent::FileEnd { .. }
                                | FromAgent::PtyExited { .. }
                        ) {
                            if let Some(mut send) = stream {
                                let _ = send.finish();
                            }
                            return;
                        }
                        journal.written(msg, len);
                    }
                }
                Err(e) => {
                    debug!(?header, "stream write failed: {e}");
                    if let Some(p) = pending.take() {
                        journal.maybe_lost(p.msg, p.frame.len());
                    }
                    stream = None;
                }
            },
            msg = rx.recv(), if accepting => match msg {
                Some(msg) => journal.push(msg, !stalled),
                None => input_open = false,
            },
            changed = conn.changed() => {
                debug!(?header, live = live(&conn.borrow()), "link changed");
                if changed.is_err() {
                    return; // the link is gone for good
                }
                let current = conn.borrow().as_ref().filter(|c| c.close_reason().is_none()).map(|c| c.stable_id());
                if stream.is_some() && current != stream_conn {
                    if let Some(p) = pending.take() {
                        journal.maybe_lost(p.msg, p.frame.len());
                    }
                    stream = None;
                }
            }
            () = tokio::time::sleep_until(stall_at), if watch_stall => {}
        }
    }
}
