//! A UDP relay between one QUIC client and its server that can cut the link (drop every
//! datagram both ways) and lose datagrams at random, for link-failure tests on loopback.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

/// See the module docs. Dropping it stops the relay.
pub struct UdpProxy {
    /// Where the client should send.
    pub addr: SocketAddr,
    state: Arc<State>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

struct State {
    cut: AtomicBool,
    /// Datagrams lost at random, in per mille.
    loss: AtomicU32,
    rng: AtomicU64,
    client: Mutex<Option<SocketAddr>>,
    dropped: AtomicU64,
    /// Bytes of datagrams passed on, both ways.
    forwarded: AtomicU64,
}

impl State {
    fn drop_this(&self) -> bool {
        if self.cut.load(Ordering::Relaxed) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        let loss = self.loss.load(Ordering::Relaxed);
        if loss == 0 {
            return false;
        }
        // xorshift: deterministic for a given seed, good enough to pick datagrams.
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::Relaxed);
        let lost = (x % 1000) < u64::from(loss);
        if lost {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        lost
    }
}

impl UdpProxy {
    /// Relays between a client (whoever sends first) and `upstream`.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<UdpProxy> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        back.connect(upstream).await?;
        let state = Arc::new(State {
            cut: AtomicBool::new(false),
            loss: AtomicU32::new(0),
            rng: AtomicU64::new(0x2545F4914F6CDD1D),
            client: Mutex::new(None),
            dropped: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
        });
        let addr = front.local_addr()?;
        let up = {
            let (front, back, state) = (front.clone(), back.clone(), state.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                while let Ok((n, from)) = front.recv_from(&mut buf).await {
                    *state.client.lock().unwrap() = Some(from);
                    if !state.drop_this() {
                        state.forwarded.fetch_add(n as u64, Ordering::Relaxed);
                        let _ = back.send(&buf[..n]).await;
                    }
                }
            })
        };
        let down = {
            let state = state.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = back.recv(&mut buf).await {
                    let client = *state.client.lock().unwrap();
                    if let (Some(client), false) = (client, state.drop_this()) {
                        state.forwarded.fetch_add(n as u64, Ordering::Relaxed);
                        let _ = front.send_to(&buf[..n], client).await;
                    }
                }
            })
        };
        Ok(UdpProxy { addr, state, tasks: vec![up, down] })
    }

    /// Cuts the link (`true`) or restores it.
    pub fn set_cut(&self, cut: bool) {
        self.state.cut.store(cut, Ordering::Relaxed);
    }

    /// Loses this many datagrams per thousand, at random.
    pub fn set_loss(&self, per_mille: u32) {
        self.state.loss.store(per_mille.min(1000), Ordering::Relaxed);
    }

    /// Bytes of datagrams passed on so far, both ways (UDP payloads: QUIC's packets).
    pub fn forwarded(&self) -> u64 {
        self.state.forwarded.load(Ordering::Relaxed)
    }

    /// Datagrams dropped so far.
    pub fn dropped(&self) -> u64 {
        self.state.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
