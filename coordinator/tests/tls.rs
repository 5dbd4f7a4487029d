//! Enrollment and mutual TLS over real QUIC on loopback: the cluster CA of `pki`, the agent's
//! configurations of `piface_link::tls`, and a small test server that plays the
//! coordinator's part (token check, CSR signing, reading the peer's certificate).
//!
//! The enrollment exchange here is test framing (length-prefixed frames on one bi stream),
//! not the link's protocol.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use piface_coordinator::pki::{self, ClusterCa, TokenError};
use piface_link::tls::{self, AgentIdentity, JoinToken, Transport, SERVER_NAME};
use tokio::sync::mpsc;

const STEP: Duration = Duration::from_secs(10);

/// What the test server saw.
#[derive(Debug)]
enum Seen {
    /// The handshake failed on the server.
    Refused(String),
    /// An enrollment request: the token's id (or the refusal) and the agent name.
    Enrollment { token: Result<String, TokenError>, name: String },
    /// A connection with a CA-signed client certificate.
    Authenticated { common_name: Option<String>, fingerprint: String },
}

struct Server {
    addr: SocketAddr,
    seen: mpsc::UnboundedReceiver<Seen>,
    _endpoint: quinn::Endpoint,
}

impl Server {
    fn start(ca: Arc<ClusterCa>) -> Server {
        let config = ca.server_config(&Transport::default()).unwrap();
        let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = endpoint.local_addr().unwrap();
        let (tx, seen) = mpsc::unbounded_channel();
        let accept = endpoint.clone();
        tokio::spawn(async move {
            while let Some(incoming) = accept.accept().await {
                tokio::spawn(serve_connection(incoming, ca.clone(), tx.clone()));
            }
        });
        Server { addr, seen, _endpoint: endpoint }
    }

    async fn next(&mut self) -> Seen {
        tokio::time::timeout(STEP, self.seen.recv()).await.expect("the server saw nothing").unwrap()
    }
}

async fn serve_connection(incoming: quinn::Incoming, ca: Arc<ClusterCa>, tx: mpsc::UnboundedSender<Seen>) {
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            let _ = tx.send(Seen::Refused(e.to_string()));
            return;
        }
    };
    let alpn = conn.handshake_data().unwrap().downcast::<quinn::crypto::rustls::HandshakeData>().unwrap().protocol;
    assert_eq!(alpn.as_deref(), Some(tls::ALPN));
    let Ok((mut send, mut recv)) = conn.accept_bi().await else { return };
    match pki::peer_certificate(&conn) {
        None => {
            // Enrollment: the only request allowed without a certificate.
            let token = String::from_utf8(read_frame(&mut recv).await).unwrap();
            let csr = String::from_utf8(read_frame(&mut recv).await).unwrap();
            let name = String::from_utf8(read_frame(&mut recv).await).unwrap();
            let checked = ca.verify_token(&token, SystemTime::now());
            match &checked {
                Ok(_) => {
                    let cert = ca.sign_agent_csr(&csr, &name).unwrap();
                    write_frame(&mut send, b"ok").await;
                    write_frame(&mut send, cert.as_bytes()).await;
                    write_frame(&mut send, ca.ca_pem().as_bytes()).await;
                }
                Err(e) => write_frame(&mut send, format!("refused: {e}").as_bytes()).await,
            }
            let _ = tx.send(Seen::Enrollment { token: checked, name });
        }
        Some(cert) => {
            let common_name = pki::cert_common_name(&cert);
            let _ = tx.send(Seen::Authenticated {
                common_name: common_name.clone(),
                fingerprint: pki::cert_fingerprint(&cert),
            });
            let ping = read_frame(&mut recv).await;
            write_frame(
                &mut send,
                format!("{} from {}", String::from_utf8_lossy(&ping), common_name.unwrap()).as_bytes(),
            )
            .await;
        }
    }
    let _ = send.finish();
    // Keep the connection until the client is done with it.
    let _ = tokio::time::timeout(STEP, conn.closed()).await;
}

async fn write_frame(send: &mut quinn::SendStream, data: &[u8]) {
    send.write_all(&(data.len() as u32).to_be_bytes()).await.unwrap();
    send.write_all(data).await.unwrap();
}

async fn read_frame(recv: &mut quinn::RecvStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len).await.unwrap();
    let len = u32::from_be_bytes(len) as usize;
    assert!(len <= 1 << 16, "frame too long");
    let mut data = vec![0; len];
    recv.read_exact(&mut data).await.unwrap();
    data
}

fn client_endpoint() -> quinn::Endpoint {
    quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap()
}

/// Connects and makes one round trip; any failure on the way, as text.
async fn ping(config: quinn::ClientConfig, addr: SocketAddr) -> Result<String, String> {
    let endpoint = client_endpoint();
    let attempt = async {
        let conn = endpoint
            .connect_with(config, addr, SERVER_NAME)
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        // With TLS 1.3 the client finishes its handshake before the server has checked the
        // client certificate, so a refusal shows on the first use: report why it closed.
        let why = |e: &dyn std::fmt::Display| match conn.close_reason() {
            Some(reason) => format!("{e}: {reason}"),
            None => e.to_string(),
        };
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| why(&e))?;
        let ping = b"ping";
        send.write_all(&(ping.len() as u32).to_be_bytes()).await.map_err(|e| why(&e))?;
        send.write_all(ping).await.map_err(|e| why(&e))?;
        let mut len = [0u8; 4];
        recv.read_exact(&mut len).await.map_err(|e| why(&e))?;
        let mut data = vec![0; u32::from_be_bytes(len) as usize];
        recv.read_exact(&mut data).await.map_err(|e| why(&e))?;
        conn.close(0u32.into(), b"done");
        Ok(String::from_utf8(data).unwrap())
    };
    tokio::time::timeout(STEP, attempt).await.map_err(|_| "timed out".to_string())?
}

/// Enrolls as `name` with `token` at `addr`, pinning the token's fingerprint. Returns the
/// identity, or the server's refusal.
async fn enroll(token: &str, name: &str, addr: SocketAddr) -> Result<AgentIdentity, String> {
    let token = JoinToken::parse(token).unwrap();
    let config = tls::enrollment_client_config(&token.ca_fingerprint, &Transport::default()).unwrap();
    let endpoint = client_endpoint();
    let conn = tokio::time::timeout(STEP, endpoint.connect_with(config, addr, SERVER_NAME).unwrap())
        .await
        .unwrap()
        .map_err(|e| e.to_string())?;
    let (key_pem, csr_pem) = tls::new_csr(name).unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    write_frame(&mut send, token.raw.as_bytes()).await;
    write_frame(&mut send, csr_pem.as_bytes()).await;
    write_frame(&mut send, name.as_bytes()).await;
    send.finish().unwrap();
    let status = String::from_utf8(read_frame(&mut recv).await).unwrap();
    let result = if status == "ok" {
        let cert_pem = String::from_utf8(read_frame(&mut recv).await).unwrap();
        let ca_pem = String::from_utf8(read_frame(&mut recv).await).unwrap();
        Ok(AgentIdentity { key_pem, cert_pem, ca_pem })
    } else {
        Err(status)
    };
    conn.close(0u32.into(), b"done");
    result
}

fn now() -> SystemTime {
    SystemTime::now()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn cert_der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
}

#[tokio::test]
async fn enrollment_then_mutual_tls_and_across_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let cluster = data.path().join("cluster");
    let ca = Arc::new(ClusterCa::load_or_create(&cluster).unwrap());
    let mut server = Server::start(ca.clone());
    let token = ca.create_token(Duration::from_secs(600), now());
    let token_id = JoinToken::parse(&token).unwrap().id;

    let identity = enroll(&token, "box-1", server.addr).await.unwrap();
    match server.next().await {
        Seen::Enrollment { token, name } => {
            assert_eq!(token, Ok(token_id));
            assert_eq!(name, "box-1");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pki::cert_common_name(&cert_der(&identity.cert_pem)).as_deref(), Some("box-1"));
    assert_eq!(identity.ca_fingerprint().unwrap(), ca.fingerprint());

    let agent_dir = data.path().join("agent");
    identity.save(&agent_dir).unwrap();
    let identity = AgentIdentity::load(&agent_dir).unwrap().unwrap();
    let agent_fp = pki::cert_fingerprint(&cert_der(&identity.cert_pem));

    let config = tls::client_config(&identity, Some(&ca.fingerprint()), &Transport::default()).unwrap();
    assert_eq!(ping(config, server.addr).await.unwrap(), "ping from box-1");
    match server.next().await {
        Seen::Authenticated { common_name, fingerprint } => {
            assert_eq!(common_name.as_deref(), Some("box-1"));
            assert_eq!(fingerprint, agent_fp);
        }
        other => panic!("{other:?}"),
    }

    // The coordinator restarts: same CA from disk, a fresh server leaf; the stored identity
    // still works, and so do tokens made before.
    drop(server);
    let reloaded = Arc::new(ClusterCa::load_or_create(&cluster).unwrap());
    assert_eq!(reloaded.fingerprint(), ca.fingerprint());
    assert_eq!(reloaded.ca_pem(), ca.ca_pem());
    assert!(reloaded.verify_token(&token, now()).is_ok());
    let mut server = Server::start(reloaded);
    let config = tls::client_config(&identity, None, &Transport::default()).unwrap();
    assert_eq!(ping(config, server.addr).await.unwrap(), "ping from box-1");
    assert!(matches!(server.next().await, Seen::Authenticated { fingerprint, .. } if fingerprint == agent_fp));
}

#[tokio::test]
async fn a_coordinator_with_another_ca_is_refused_by_the_pin() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ca = Arc::new(ClusterCa::load_or_create(dirs.0.path()).unwrap());
    let other = ClusterCa::load_or_create(dirs.1.path()).unwrap();
    assert_ne!(ca.fingerprint(), other.fingerprint());
    let mut server = Server::start(ca.clone());

    // A token of the other cluster pins the other CA: the agent refuses this coordinator.
    let token = other.create_token(Duration::from_secs(600), now());
    let err = enroll(&token, "box-1", server.addr).await.unwrap_err();
    eprintln!("wrong pin, client side: {err}");
    assert!(err.contains("does not match the pinned fingerprint") && err.contains(&other.fingerprint()), "{err}");
    // The server learns of it as a refused handshake.
    match server.next().await {
        Seen::Refused(e) => {
            eprintln!("wrong pin, server side: {e}");
            assert!(e.contains("does not match the pinned fingerprint"), "{e}");
        }
        other => panic!("{other:?}"),
    }

    // An enrolled agent of the other cluster that is pointed here fails too: its CA is not
    // the one that signed this server.
    let (key_pem, csr) = tls::new_csr("box-2").unwrap();
    let cert_pem = other.sign_agent_csr(&csr, "box-2").unwrap();
    let identity = AgentIdentity { key_pem, cert_pem, ca_pem: other.ca_pem() };
    let config = tls::client_config(&identity, None, &Transport::default()).unwrap();
    let err = ping(config, server.addr).await.unwrap_err();
    eprintln!("stored CA of another cluster, client side: {err}");
    assert!(err.contains("UnknownIssuer"), "{err}");
}

/// Client certificates the cluster CA did not sign fail the handshake, even though the
/// client trusts the server.
#[tokio::test]
async fn client_certificates_not_signed_by_the_cluster_ca_are_refused() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ca = Arc::new(ClusterCa::load_or_create(dirs.0.path()).unwrap());
    let other = ClusterCa::load_or_create(dirs.1.path()).unwrap();
    let mut server = Server::start(ca.clone());

    // Self-signed, for the right name and usage.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["box-1".to_string()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "box-1");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let self_signed = params.self_signed(&key).unwrap();
    let identity = AgentIdentity { key_pem: key.serialize_pem(), cert_pem: self_signed.pem(), ca_pem: ca.ca_pem() };
    let config = tls::client_config(&identity, Some(&ca.fingerprint()), &Transport::default()).unwrap();
    let err = ping(config, server.addr).await.unwrap_err();
    eprintln!("self-signed, client side: {err}");
    assert!(err.contains("invalid peer certificate: UnknownIssuer"), "{err}");
    match server.next().await {
        Seen::Refused(e) => {
            eprintln!("self-signed, server side: {e}");
            assert!(e.contains("UnknownIssuer"), "{e}");
        }
        other => panic!("{other:?}"),
    }

    // Signed by another cluster's CA.
    let (key_pem, csr) = tls::new_csr("box-1").unwrap();
    let cert_pem = other.sign_agent_csr(&csr, "box-1").unwrap();
    let identity = AgentIdentity { key_pem, cert_pem, ca_pem: ca.ca_pem() };
    let config = tls::client_config(&identity, Some(&ca.fingerprint()), &Transport::default()).unwrap();
    let err = ping(config, server.addr).await.unwrap_err();
    eprintln!("other CA, client side: {err}");
    assert!(err.contains("invalid peer certificate: UnknownIssuer"), "{err}");
    match server.next().await {
        Seen::Refused(e) => assert!(e.contains("UnknownIssuer"), "{e}"),
        other => panic!("{other:?}"),
    }

    // The CA's own enrollment path still works on the same server.
    let token = ca.create_token(Duration::from_secs(60), now());
    enroll(&token, "box-3", server.addr).await.unwrap();
}

#[tokio::test]
async fn refused_tokens() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ca = Arc::new(ClusterCa::load_or_create(dirs.0.path()).unwrap());
    let other = ClusterCa::load_or_create(dirs.1.path()).unwrap();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);

    let token = ca.create_token(Duration::from_secs(60), t0);
    let id = ca.verify_token(&token, t0).unwrap();
    assert_eq!(id.len(), 16);
    assert_eq!(ca.verify_token(&token, t0 + Duration::from_secs(59)), Ok(id.clone()));
    // Each token has its own id.
    assert_ne!(ca.verify_token(&ca.create_token(Duration::from_secs(60), t0), t0).unwrap(), id);

    // Expired.
    assert_eq!(ca.verify_token(&token, t0 + Duration::from_secs(60)), Err(TokenError::Expired));
    assert_eq!(ca.verify_token(&ca.create_token(Duration::ZERO, t0), t0), Err(TokenError::Expired));

    // Wrong MAC: a changed digit, an extended expiry, another id.
    let (body, mac) = token.rsplit_once('.').unwrap();
    let flipped = if mac.ends_with('0') { "1" } else { "0" };
    let bad_mac = format!("{body}.{}{flipped}", &mac[..mac.len() - 1]);
    assert_eq!(ca.verify_token(&bad_mac, t0), Err(TokenError::BadSignature));
    let parts: Vec<&str> = token.split('.').collect();
    let later = format!("{}.{}.{}.{}.{}", parts[0], parts[1], parts[2], 1_900_000_000u64, parts[4]);
    assert_eq!(ca.verify_token(&later, t0), Err(TokenError::BadSignature));
    let other_id = format!("{}.{}.{}.{}.{}", parts[0], parts[1], "0".repeat(16), parts[3], parts[4]);
    assert_eq!(ca.verify_token(&other_id, t0), Err(TokenError::BadSignature));

    // Same CA, but the token key was replaced: old tokens no longer verify.
    for f in [pki::CA_CERT_FILE, pki::CA_KEY_FILE] {
        std::fs::copy(dirs.0.path().join(f), dirs.2.path().join(f)).unwrap();
    }
    let same_ca_new_key = ClusterCa::load_or_create(dirs.2.path()).unwrap();
    assert_eq!(same_ca_new_key.fingerprint(), ca.fingerprint());
    assert_eq!(same_ca_new_key.verify_token(&token, t0), Err(TokenError::BadSignature));

    // Another cluster's token.
    let foreign = other.create_token(Duration::from_secs(60), t0);
    assert_eq!(ca.verify_token(&foreign, t0), Err(TokenError::WrongCluster));

    // Malformed.
    for bad in ["", "garbage", &token[..token.len() - 2], &token.replace("PIFACE1", "PIFACE9"), &format!("{token}.x")] {
        assert!(matches!(ca.verify_token(bad, t0), Err(TokenError::Malformed(_))), "{bad:?}");
    }
    let err = ca.verify_token("nope", t0).unwrap_err().to_string();
    assert!(err.contains("malformed join token"), "{err}");

    // Over the wire: an expired token is refused with the reason, and no certificate.
    let mut server = Server::start(ca.clone());
    let expired = ca.create_token(Duration::from_secs(1), now() - Duration::from_secs(10));
    let err = enroll(&expired, "box-1", server.addr).await.unwrap_err();
    assert_eq!(err, "refused: the join token has expired");
    assert!(matches!(server.next().await, Seen::Enrollment { token: Err(TokenError::Expired), .. }));
}

#[test]
fn cluster_files_are_private_and_corruption_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster");
    let ca = ClusterCa::load_or_create(&cluster).unwrap();
    assert_eq!(mode(&cluster.join(pki::CA_KEY_FILE)), 0o600);
    assert_eq!(mode(&cluster.join(pki::TOKEN_KEY_FILE)), 0o600);
    assert_eq!(mode(&cluster), 0o700);
    let token_key = std::fs::read_to_string(cluster.join(pki::TOKEN_KEY_FILE)).unwrap();
    assert_eq!(token_key.trim().len(), 64);
    assert_eq!(pki::cert_fingerprint(&cert_der(&ca.ca_pem())), ca.fingerprint());

    // The agent's key too.
    let (key_pem, csr) = tls::new_csr("box-1").unwrap();
    let cert_pem = ca.sign_agent_csr(&csr, "box-1").unwrap();
    let agent_dir = dir.path().join("agent");
    AgentIdentity { key_pem, cert_pem, ca_pem: ca.ca_pem() }.save(&agent_dir).unwrap();
    assert_eq!(mode(&agent_dir.join(tls::AGENT_KEY_FILE)), 0o600);
    assert_eq!(mode(&agent_dir.join(tls::AGENT_CERT_FILE)), 0o600);
    assert_eq!(mode(&agent_dir), 0o700);

    let load_err = |path: &Path| format!("{:#}", ClusterCa::load_or_create(path).unwrap_err());
    let key_path = cluster.join(pki::CA_KEY_FILE);
    let original_key = std::fs::read(&key_path).unwrap();

    // Corrupt CA key.
    std::fs::write(&key_path, "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n").unwrap();
    let err = load_err(&cluster);
    assert!(err.contains(&key_path.display().to_string()), "{err}");
    // It was not replaced.
    assert!(std::fs::read_to_string(&key_path).unwrap().contains("not base64!"));

    // Another valid key that does not belong to the certificate.
    std::fs::write(&key_path, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let err = load_err(&cluster);
    assert!(err.contains("is not the key of"), "{err}");

    // Missing key beside a certificate.
    std::fs::remove_file(&key_path).unwrap();
    let err = load_err(&cluster);
    assert!(err.contains("is missing") && err.contains(&key_path.display().to_string()), "{err}");
    std::fs::write(&key_path, &original_key).unwrap();

    // Corrupt certificate.
    let crt_path = cluster.join(pki::CA_CERT_FILE);
    let original_crt = std::fs::read(&crt_path).unwrap();
    std::fs::write(&crt_path, "hello").unwrap();
    let err = load_err(&cluster);
    assert!(err.contains(&crt_path.display().to_string()), "{err}");
    std::fs::write(&crt_path, &original_crt).unwrap();

    // Corrupt token key.
    let token_path = cluster.join(pki::TOKEN_KEY_FILE);
    std::fs::write(&token_path, "abcd\n").unwrap();
    let err = load_err(&cluster);
    assert!(err.contains(&token_path.display().to_string()), "{err}");
    std::fs::write(&token_path, &token_key).unwrap();

    // Unreadable directory entry: a directory where the key should be.
    std::fs::remove_file(&key_path).unwrap();
    std::fs::create_dir(&key_path).unwrap();
    let err = load_err(&cluster);
    assert!(err.contains(&key_path.display().to_string()), "{err}");
    std::fs::remove_dir(&key_path).unwrap();
    std::fs::write(&key_path, &original_key).unwrap();

    // Restored files load the same CA.
    assert_eq!(ClusterCa::load_or_create(&cluster).unwrap().fingerprint(), ca.fingerprint());
}

#[test]
fn agent_certificates_say_what_the_coordinator_decides() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::load_or_create(dir.path()).unwrap();
    // The CSR asks for one name; the certificate carries the one the coordinator gives.
    let (_, csr) = tls::new_csr("asked-for").unwrap();
    let pem = ca.sign_agent_csr(&csr, "given").unwrap();
    let der = cert_der(&pem);
    assert_eq!(pki::cert_common_name(&der).as_deref(), Some("given"));
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    assert!(!cert.is_ca());
    // Random serials: two certificates for the same key differ.
    let again = cert_der(&ca.sign_agent_csr(&csr, "given").unwrap());
    let (_, again) = x509_parser::parse_x509_certificate(&again).unwrap();
    assert_ne!(cert.raw_serial(), again.raw_serial());

    assert!(ca.sign_agent_csr("not a csr", "given").is_err());
    assert!(ca.sign_agent_csr(&csr, "bad name").is_err());
    assert!(format!("{ca:?}").contains(&ca.fingerprint()));
}
