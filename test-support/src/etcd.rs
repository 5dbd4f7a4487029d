//! A real etcd (Debian's `etcd-server`, or `PIFACE_TEST_ETCD`) for tests: one member on free
//! loopback ports, its data in a temporary directory, stopped when dropped. It can be stopped
//! and started again on the same ports and data, to test a store that loses etcd for a while.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

/// See the module docs.
pub struct Etcd {
    child: Option<Child>,
    client_port: u16,
    peer_port: u16,
    dir: tempfile::TempDir,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Etcd {
    /// Starts etcd and waits until it answers.
    pub async fn start() -> anyhow::Result<Etcd> {
        let mut etcd =
            Etcd { child: None, client_port: free_port()?, peer_port: free_port()?, dir: tempfile::tempdir()? };
        etcd.resume().await?;
        Ok(etcd)
    }

    /// The client URL (`--etcd-endpoints`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Kills etcd (its data stays).
    pub async fn pause(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts etcd again on the same ports and data, and waits until it answers.
    pub async fn resume(&mut self) -> anyhow::Result<()> {
        let bin = std::env::var_os("PIFACE_TEST_ETCD").unwrap_or_else(|| "etcd".into());
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new(&bin)
            .args(["--name", "test", "--log-level", "error", "--logger", "zap"])
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &self.url(), "--advertise-client-urls", &self.url()])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("test={peer}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} (apt-get install etcd-server)", bin.to_string_lossy()))?;
        self.child = Some(child);
        let health = format!("{}/health", self.url());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(resp) = reqwest::get(&health).await {
                if resp.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("etcd did not become healthy at {health}")
    }
}
