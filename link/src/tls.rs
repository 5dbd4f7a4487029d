//! Cluster enrollment and mutual TLS as both ends share them: join tokens, the agent's
//! identity on disk, the QUIC client configurations, the transport timers and ALPN both ends
//! use, and the private-file helpers (0700 directories, atomic 0600 writes).
//!
//! Enrollment works as in k3s. A join token carries the SHA-256 fingerprint of the cluster
//! CA's certificate; the agent connects without a client certificate, accepts the
//! coordinator only if the CA it presents has that fingerprint and signed its leaf
//! ([`enrollment_client_config`]), proves the token and sends a CSR ([`new_csr`]). The signed
//! certificate is stored with the key ([`AgentIdentity`]) and used from then on
//! ([`client_config`]), with the stored CA as the only root.
//!
//! What it is not: it neither speaks the enrollment request (the agent's link does,
//! `piface_agent::link`) nor verifies the token's secret (only the coordinator holds the key;
//! see `piface_coordinator::pki`, which also builds the server configuration). It
//! installs no process-wide rustls crypto provider: every configuration names *ring*.
//!
//! Token text (version 1), fields separated by `.`:
//! `PIFACE1.<CA fingerprint: 64 hex>.<token id: 16 hex>.<expiry: unix seconds>.<MAC: 64 hex>`,
//! where the MAC is HMAC-SHA256 with the cluster's token key over everything before the last
//! `.`. Hex is lower case; parsing accepts upper case and surrounding whitespace.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};

/// The name agents verify in the coordinator's certificate, whatever address they dial: the
/// coordinator's leaf carries it as its only DNS name, so addresses may change freely.
pub const SERVER_NAME: &str = "piface-coordinator";

/// The ALPN protocol of the agent link, offered and required on both sides.
pub const ALPN: &[u8] = b"piface/1";

/// First field of a version-1 join token.
pub const TOKEN_VERSION: &str = "PIFACE1";

/// File names of the agent's identity in its data directory.
pub const AGENT_KEY_FILE: &str = "agent.key";
/// See [`AGENT_KEY_FILE`].
pub const AGENT_CERT_FILE: &str = "agent.crt";
/// See [`AGENT_KEY_FILE`].
pub const CA_CERT_FILE: &str = "ca.crt";

/// QUIC transport timers shared by both ends of the agent link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    /// Interval of keep-alive packets on an otherwise quiet connection.
    pub keep_alive: Duration,
    /// A connection that hears nothing for this long is dead.
    pub idle_timeout: Duration,
}

impl Default for Transport {
    fn default() -> Transport {
        // Four keep-alives fit in one idle timeout, so losing a few packets never kills a
        // healthy link, while a dead one is noticed within 20 s.
        Transport { keep_alive: Duration::from_secs(5), idle_timeout: Duration::from_secs(20) }
    }
}

impl Transport {
    /// The quinn transport configuration with these timers.
    pub fn quinn_config(&self) -> anyhow::Result<quinn::TransportConfig> {
        let idle = quinn::IdleTimeout::try_from(self.idle_timeout).context("idle timeout out of range")?;
        let mut config = quinn::TransportConfig::default();
        config.keep_alive_interval(Some(self.keep_alive)).max_idle_timeout(Some(idle));
        Ok(config)
    }
}

/// A join token as the agent sees it: its shape is checked and the CA fingerprint read; the
/// secret part is only checked by the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// The token text (trimmed), sent as is to the coordinator.
    pub raw: String,
    /// Lower-case hex SHA-256 of the cluster CA certificate (DER) the agent must pin.
    pub ca_fingerprint: String,
    /// The token's id (16 lower-case hex digits), which makes single use enforceable.
    pub id: String,
    /// Expiry, in seconds since the Unix epoch.
    pub expires_at: u64,
}

impl JoinToken {
    /// Checks the token's shape (see the module docs) and reads its fields.
    pub fn parse(s: &str) -> anyhow::Result<JoinToken> {
        let raw = s.trim();
        let parts: Vec<&str> = raw.split('.').collect();
        if parts.first() != Some(&TOKEN_VERSION) {
            bail!("not a Piface join token (it must start with {TOKEN_VERSION}.)");
        }
        let [_, fingerprint, id, expiry, mac] = parts[..] else {
            bail!("malformed join token: expected 5 fields separated by '.', found {}", parts.len());
        };
        if !is_hex(fingerprint, 64) {
            bail!("malformed join token: the CA fingerprint must be 64 hex digits");
        }
        if !is_hex(id, 16) {
            bail!("malformed join token: the token id must be 16 hex digits");
        }
        let expires_at = match expiry.parse::<u64>() {
            Ok(t) if expiry.bytes().all(|b| b.is_ascii_digit()) => t,
            _ => bail!("malformed join token: the expiry must be unix seconds"),
        };
        if !is_hex(mac, 64) {
            bail!("malformed join token: the signature must be 64 hex digits");
        }
        Ok(JoinToken {
            raw: raw.to_string(),
            ca_fingerprint: fingerprint.to_ascii_lowercase(),
            id: id.to_ascii_lowercase(),
            expires_at,
        })
    }

    /// The text the MAC covers: everything before the last `.`.
    pub fn signed_text(&self) -> &str {
        self.raw.rsplit_once('.').map_or("", |(body, _)| body)
    }

    /// The MAC's bytes.
    pub fn mac(&self) -> Vec<u8> {
        self.raw.rsplit_once('.').and_then(|(_, mac)| hex_decode(mac)).unwrap_or_default()
    }
}

/// The agent's credentials, as stored in its data directory.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    /// The private key (PKCS #8 PEM); `agent.key`, mode 0600.
    pub key_pem: String,
    /// The client certificate signed by the cluster CA (PEM); `agent.crt`.
    pub cert_pem: String,
    /// The cluster CA certificate (PEM); `ca.crt`.
    pub ca_pem: String,
}

impl std::fmt::Debug for AgentIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never reaches a log.
        f.debug_struct("AgentIdentity").field("cert_pem", &self.cert_pem).finish_non_exhaustive()
    }
}

impl AgentIdentity {
    /// Reads the identity from `dir`: `None` when the agent has not enrolled yet (none of
    /// the files exist), an error when only some exist or one does not parse.
    pub fn load(dir: &Path) -> anyhow::Result<Option<AgentIdentity>> {
        let names = [AGENT_KEY_FILE, AGENT_CERT_FILE, CA_CERT_FILE];
        let mut present = Vec::new();
        for name in names {
            let path = dir.join(name);
            if path.try_exists().with_context(|| format!("checking {}", path.display()))? {
                present.push(name);
            }
        }
        if present.is_empty() {
            return Ok(None);
        }
        if present.len() < names.len() {
            let missing: Vec<_> = names.iter().filter(|n| !present.contains(n)).collect();
            bail!(
                "incomplete agent identity in {}: {missing:?} missing; remove {present:?} to enroll again",
                dir.display()
            );
        }
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
        };
        let identity = AgentIdentity {
            key_pem: read(AGENT_KEY_FILE)?,
            cert_pem: read(AGENT_CERT_FILE)?,
            ca_pem: read(CA_CERT_FILE)?,
        };
        let key_path = dir.join(AGENT_KEY_FILE);
        PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("{e:?}"))
            .with_context(|| format!("parsing {}", key_path.display()))?;
        for name in [AGENT_CERT_FILE, CA_CERT_FILE] {
            let pem = if name == CA_CERT_FILE { &identity.ca_pem } else { &identity.cert_pem };
            parse_cert(pem).with_context(|| format!("parsing {}", dir.join(name).display()))?;
        }
        let mode = std::fs::metadata(&key_path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %key_path.display(), "the agent key is readable by others (mode {:o})", mode & 0o777);
        }
        Ok(Some(identity))
    }

    /// Writes the identity to `dir` (created if needed, 0700), every file 0600. Each file is
    /// replaced atomically; the key goes last, so a crash leaves an identity `load` reports
    /// as incomplete rather than a key beside a stale certificate.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        private_dir(dir)?;
        write_file_atomic(&dir.join(CA_CERT_FILE), self.ca_pem.as_bytes(), 0o600)?;
        write_file_atomic(&dir.join(AGENT_CERT_FILE), self.cert_pem.as_bytes(), 0o600)?;
        write_file_atomic(&dir.join(AGENT_KEY_FILE), self.key_pem.as_bytes(), 0o600)?;
        Ok(())
    }

    /// Lower-case hex SHA-256 of the stored CA certificate.
    pub fn ca_fingerprint(&self) -> anyhow::Result<String> {
        Ok(fingerprint(&parse_cert(&self.ca_pem).context("parsing the CA certificate")?))
    }
}

/// A fresh key pair (ECDSA P-256) and a CSR for it with subject CN `name`; returns
/// `(key PEM, CSR PEM)`. The coordinator decides the certificate's contents; the CSR only
/// proves possession of the key.
pub fn new_csr(name: &str) -> anyhow::Result<(String, String)> {
    let key = rcgen::KeyPair::generate().context("generating the agent key")?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let csr = params.serialize_request(&key).context("making the CSR")?;
    Ok((key.serialize_pem(), csr.pem().context("encoding the CSR")?))
}

/// Client configuration for enrollment: no client certificate; the coordinator is trusted
/// if the chain it presents contains a certificate whose SHA-256 is `pinned_fingerprint` and
/// that certificate signed its leaf, which must be valid for [`SERVER_NAME`].
pub fn enrollment_client_config(
    pinned_fingerprint: &str,
    transport: &Transport,
) -> anyhow::Result<quinn::ClientConfig> {
    let pinned = pinned_fingerprint.to_ascii_lowercase();
    if !is_hex(&pinned, 64) {
        bail!("the pinned CA fingerprint must be 64 hex digits");
    }
    let provider = provider();
    let verifier = Arc::new(PinnedCaVerifier { pinned, provider: provider.clone() });
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    quic_client(tls, transport)
}

/// Client configuration of an enrolled agent: presents its certificate and trusts only the
/// stored CA. With `pinned_fingerprint`, the stored CA must also have that fingerprint.
pub fn client_config(
    identity: &AgentIdentity,
    pinned_fingerprint: Option<&str>,
    transport: &Transport,
) -> anyhow::Result<quinn::ClientConfig> {
    let ca = parse_cert(&identity.ca_pem).context("parsing the stored CA certificate")?;
    if let Some(pinned) = pinned_fingerprint {
        let stored = fingerprint(&ca);
        if !stored.eq_ignore_ascii_case(pinned.trim()) {
            bail!("the stored CA certificate (fingerprint {stored}) is not the pinned one ({pinned}); the agent enrolled with another cluster");
        }
    }
    let cert = parse_cert(&identity.cert_pem).context("parsing the agent certificate")?;
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("parsing the agent key: {e:?}"))?;
    let mut roots = RootCertStore::empty();
    roots.add(ca).context("using the stored CA certificate as a root")?;
    let provider = provider();
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(vec![cert], key)
        .context("the agent certificate does not match its key")?;
    quic_client(tls, transport)
}

/// Lower-case hex SHA-256 of a certificate's DER: the cluster's CA fingerprint and the
/// agents' certificate fingerprints.
pub fn fingerprint(der: &[u8]) -> String {
    hex_encode(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

/// Lower-case hex.
pub fn hex_encode(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Decodes hex (either case); `None` for an odd length or a non-hex digit.
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let pairs = s.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    pairs.map(|p| Some(digit(p[0])? << 4 | digit(p[1])?)).collect()
}

/// Creates `path` (and missing parents) as 0700 and makes an existing one 0700.
pub fn private_dir(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} private", path.display()))
}

/// Writes `path` through a temporary file renamed over it, created with `mode`, so readers
/// see the old or the new contents and a key file is never readable by others, not even
/// while it is written.
pub fn write_file_atomic(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let name = path.file_name().context("a file path has a file name")?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    // A leftover from a crash may have other permissions: start afresh.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", tmp.display()))
        }
        _ => {}
    }
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        // The umask may have narrowed the mode; make it exact.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()
    };
    write().with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// The crypto provider of every configuration here (and the coordinator's).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn quic_client(mut tls: rustls::ClientConfig, transport: &Transport) -> anyhow::Result<quinn::ClientConfig> {
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(Arc::new(transport.quinn_config()?));
    Ok(config)
}

fn parse_cert(pem: &str) -> anyhow::Result<CertificateDer<'static>> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| anyhow::anyhow!("not a PEM certificate: {e:?}"))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Trusts a server whose presented chain contains the pinned CA certificate and whose leaf
/// that CA signed. The pin replaces a CA distribution step: the token carries it.
#[derive(Debug)]
struct PinnedCaVerifier {
    pinned: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = intermediates.iter().find(|c| fingerprint(c) == self.pinned) else {
            let presented = intermediates.iter().map(|c| fingerprint(c)).collect();
            let mismatch = PinMismatch { pinned: self.pinned.clone(), presented };
            return Err(CertificateError::Other(OtherError(Arc::new(mismatch))).into());
        };
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The coordinator's CA is not the one the token pinned. rustls prints this error with
/// `Debug`, so `Debug` is the readable message.
struct PinMismatch {
    pinned: String,
    presented: Vec<String>,
}

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the coordinator's CA does not match the pinned fingerprint {}", self.pinned)?;
        match self.presented.as_slice() {
            [] => write!(f, " (it presented no CA certificate)"),
            fps => write!(f, " (it presented {})", fps.join(", ")),
        }
    }
}

impl std::fmt::Debug for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for PinMismatch {}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_text(fp: &str, id: &str, exp: &str, mac: &str) -> String {
        format!("{TOKEN_VERSION}.{fp}.{id}.{exp}.{mac}")
    }

    #[test]
    fn parses_a_token_and_rejects_bad_shapes() {
        let fp = "AB".repeat(32);
        let mac = "cd".repeat(32);
        let text = token_text(&fp, "0123456789abcdef", "1700000000", &mac);
        let t = JoinToken::parse(&format!("  {text}\n")).unwrap();
        assert_eq!(t.raw, text);
        assert_eq!(t.ca_fingerprint, "ab".repeat(32));
        assert_eq!(t.id, "0123456789abcdef");
        assert_eq!(t.expires_at, 1_700_000_000);
        assert_eq!(t.mac(), vec![0xcd; 32]);
        assert_eq!(t.signed_text(), format!("{TOKEN_VERSION}.{fp}.0123456789abcdef.1700000000"));

        for bad in [
            String::new(),
            "hello".to_string(),
            token_text(&fp, "0123456789abcdef", "1700000000", &mac).replace("PIFACE1", "PIFACE2"),
            token_text(&fp[2..], "0123456789abcdef", "1700000000", &mac),
            token_text(&fp, "0123456789abcdeg", "1700000000", &mac),
            token_text(&fp, "0123456789abcdef", "+1700000000", &mac),
            token_text(&fp, "0123456789abcdef", "17e8", &mac),
            token_text(&fp, "0123456789abcdef", "1700000000", &mac[1..]),
            format!("{text}.extra"),
        ] {
            assert!(JoinToken::parse(&bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(hex_decode(&hex_encode(&bytes)).unwrap(), bytes);
        assert_eq!(hex_decode("0A0b").unwrap(), vec![10, 11]);
        assert!(hex_decode("abc").is_none());
        assert!(hex_decode("zz").is_none());
    }

    #[test]
    fn identity_round_trips_with_a_private_key_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(AgentIdentity::load(dir.path()).unwrap().is_none());

        let (key_pem, csr_pem) = new_csr("box-1").unwrap();
        assert!(csr_pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
        // Any certificates will do for the files' round trip.
        let key = rcgen::KeyPair::from_pem(&key_pem).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["box-1".to_string()]).unwrap().self_signed(&key).unwrap();
        let identity = AgentIdentity { key_pem, cert_pem: cert.pem(), ca_pem: cert.pem() };
        let sub = dir.path().join("agent");
        identity.save(&sub).unwrap();
        let mode = std::fs::metadata(sub.join(AGENT_KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(AgentIdentity::load(&sub).unwrap().unwrap(), identity);
        assert_eq!(identity.ca_fingerprint().unwrap(), fingerprint(cert.der()));
        assert!(!format!("{identity:?}").contains("PRIVATE KEY"));
        // The configuration accepts the pair, and refuses another pinned CA.
        client_config(&identity, Some(&identity.ca_fingerprint().unwrap()), &Transport::default()).unwrap();
        let err = client_config(&identity, Some(&"00".repeat(32)), &Transport::default()).unwrap_err();
        assert!(err.to_string().contains("another cluster"), "{err:#}");

        std::fs::remove_file(sub.join(AGENT_CERT_FILE)).unwrap();
        let err = AgentIdentity::load(&sub).unwrap_err().to_string();
        assert!(err.contains("incomplete") && err.contains(AGENT_CERT_FILE), "{err}");

        identity.save(&sub).unwrap();
        std::fs::write(sub.join(CA_CERT_FILE), "garbage").unwrap();
        let err = format!("{:#}", AgentIdentity::load(&sub).unwrap_err());
        assert!(err.contains(&sub.join(CA_CERT_FILE).display().to_string()), "{err}");
    }

    #[test]
    fn enrollment_config_wants_a_fingerprint() {
        assert!(enrollment_client_config("abc", &Transport::default()).is_err());
        enrollment_client_config(&"AB".repeat(32), &Transport::default()).unwrap();
    }
}
