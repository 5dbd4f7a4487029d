//! A real etcd (Debian's `etcd-server`, or `PIFACE_TEST_ETCD`) for tests: one member on free
//! loopback ports, its data in a temporary directory, stopped when dropped. It can be stopped
//! and started again on the same ports and data, to test a store that loses etcd for a while.
//! [`Etcd::start_tls`] serves clients over TLS only and asks them for a certificate of its CA.

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
    tls: Option<EtcdTls>,
}

/// The certificates of an etcd started with [`Etcd::start_tls`] (PEM).
pub struct EtcdTls {
    /// The CA that signed etcd's certificate and the client's.
    pub ca_pem: String,
    /// A client certificate etcd accepts, and its key.
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, written for etcd into `dir`.
fn make_tls(dir: &std::path::Path) -> anyhow::Result<EtcdTls> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
    };
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name.push(DnType::CommonName, "etcd test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let leaf = |name: &str, usage: ExtendedKeyUsagePurpose| -> anyhow::Result<(String, String)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
        params.subject_alt_names.push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        Ok((params.signed_by(&key, &ca)?.pem(), key.serialize_pem()))
    };
    let (server_cert, server_key) = leaf("etcd", ExtendedKeyUsagePurpose::ServerAuth)?;
    let (client_cert_pem, client_key_pem) = leaf("piface", ExtendedKeyUsagePurpose::ClientAuth)?;
    std::fs::write(dir.join("ca.pem"), ca.pem())?;
    std::fs::write(dir.join("server.pem"), server_cert)?;
    std::fs::write(dir.join("server-key.pem"), server_key)?;
    Ok(EtcdTls { ca_pem: ca.pem(), client_cert_pem, client_key_pem })
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Etcd {
    /// Starts etcd and waits until it answers.
    pub async fn start() -> anyhow::Result<Etcd> {
        let mut etcd = Etcd {
            child: None,
            client_port: free_port()?,
            peer_port: free_port()?,
            dir: tempfile::tempdir()?,
            tls: None,
        };
        etcd.resume().await?;
        Ok(etcd)
    }

    /// Starts an etcd that serves clients over TLS only, with client certificates required
    /// (`--client-cert-auth`), and waits until it answers; [`Etcd::tls`] has the certificates.
    pub async fn start_tls() -> anyhow::Result<Etcd> {
        let dir = tempfile::tempdir()?;
        let tls = make_tls(dir.path())?;
        let mut etcd = Etcd { child: None, client_port: free_port()?, peer_port: free_port()?, dir, tls: Some(tls) };
        etcd.resume().await?;
        Ok(etcd)
    }

    /// The certificates, for an etcd started with [`Etcd::start_tls`].
    pub fn tls(&self) -> Option<&EtcdTls> {
        self.tls.as_ref()
    }

    /// The client URL (`--etcd-endpoints`).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
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
        let mut cmd = Command::new(&bin);
        let mut http = reqwest::Client::builder();
        if let Some(tls) = &self.tls {
            let file = |name: &str| self.dir.path().join(name);
            cmd.arg("--cert-file").arg(file("server.pem")).arg("--key-file").arg(file("server-key.pem"));
            cmd.arg("--trusted-ca-file").arg(file("ca.pem")).arg("--client-cert-auth");
            http = http.add_root_certificate(reqwest::Certificate::from_pem(tls.ca_pem.as_bytes())?).identity(
                reqwest::Identity::from_pem(format!("{}{}", tls.client_cert_pem, tls.client_key_pem).as_bytes())?,
            );
        }
        let http = http.build()?;
        let child = cmd
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
            if let Ok(resp) = http.get(&health).send().await {
                if resp.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("etcd did not become healthy at {health}")
    }
}
