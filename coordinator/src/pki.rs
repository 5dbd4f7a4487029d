//! The cluster's PKI on the coordinator: the cluster CA, join tokens, agent certificates and
//! the QUIC server configuration with mutual TLS.
//!
//! The CA lives in `<data dir>/cluster/`: `ca.crt` (PEM), `ca.key` (PEM, mode 0600) and
//! `token.key` (32 random bytes as hex, mode 0600: the HMAC key of join tokens). They are
//! made on first start and loaded afterwards; a file that is unreadable or corrupt is an
//! error naming it, never silently replaced, since a new CA would cut off every enrolled
//! agent.
//!
//! Join tokens are stateless (see `piface_link::tls` for the text format): HMAC-SHA256 over
//! the CA fingerprint, a random id and an expiry. [`ClusterCa::verify_token`] returns the id;
//! enforcing single use (remembering spent ids) is the caller's job, as is refusing removed
//! agents by certificate fingerprint ([`cert_fingerprint`] of [`peer_certificate`]).
//!
//! The server accepts connections without a client certificate, for enrollment only: the
//! caller must allow nothing but the enrollment request on a connection whose
//! [`peer_certificate`] is `None`. A client certificate the CA did not sign fails the
//! handshake.
//!
//! What it is not: no wire protocol (the enrollment exchange belongs to the link), no
//! certificate renewal or revocation lists. Leaf certificates expire with the CA (10 years).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use piface_link::tls::{
    fingerprint, hex_decode, hex_encode, write_file_atomic, JoinToken, Transport, ALPN, SERVER_NAME, TOKEN_VERSION,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use ring::rand::SecureRandom;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use time::OffsetDateTime;
use tracing::{info, warn};

/// File names in the cluster directory.
pub const CA_CERT_FILE: &str = "ca.crt";
/// See [`CA_CERT_FILE`].
pub const CA_KEY_FILE: &str = "ca.key";
/// See [`CA_CERT_FILE`].
pub const TOKEN_KEY_FILE: &str = "token.key";

/// Lifetime of a new CA. Nothing renews certificates yet, so it is long; leaves expire with
/// it.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// How long before the CA's expiry loading it warns.
const CA_EXPIRY_WARNING: Duration = Duration::from_secs(90 * 24 * 3600);

/// Certificates start this far in the past, so a peer whose clock is a little behind still
/// accepts them.
const BACKDATE: Duration = Duration::from_secs(3600);

/// Longest agent name: the X.509 upper bound of a common name.
const MAX_AGENT_NAME: usize = 64;

/// Longest join token looked at. A real one is 158 characters (`PIFACE1.`, 64 + 16 hex digits,
/// the expiry, 64 hex digits); anything much longer is refused before it is split or copied.
pub const MAX_TOKEN_LEN: usize = 512;

/// Longest CSR (PEM) parsed. An agent's (ECDSA P-256) is under 600 bytes, an RSA-4096 one under
/// 2 KiB; the limit leaves room for either while keeping a hostile request's parse small.
pub const MAX_CSR_PEM: usize = 16 * 1024;

/// Why a join token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a version-1 Piface token.
    #[error("malformed join token: {0}")]
    Malformed(String),
    /// Well formed, but made for another cluster (its CA fingerprint is not ours).
    #[error("the join token belongs to another cluster")]
    WrongCluster,
    /// The MAC does not verify with this cluster's token key: forged, altered or made before
    /// the key was replaced.
    #[error("the join token's signature is invalid")]
    BadSignature,
    /// Genuine but past its expiry.
    #[error("the join token has expired")]
    Expired,
}

/// The cluster CA with its signing key and the join-token key.
pub struct ClusterCa {
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    fingerprint: String,
    not_after: OffsetDateTime,
    issuer: Issuer<'static, KeyPair>,
    token_key: ring::hmac::Key,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither key reaches a log.
        f.debug_struct("ClusterCa").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

impl ClusterCa {
    /// Loads the CA from `dir`, creating `dir` and the CA on first use. A missing
    /// `token.key` is made afresh (it only invalidates outstanding tokens); a CA certificate
    /// without its key, or the reverse, is an error.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<ClusterCa> {
        if !dir.exists() {
            crate::private::dir(dir)?;
            set_mode(dir, 0o700)?;
        }
        let (crt_path, key_path) = (dir.join(CA_CERT_FILE), dir.join(CA_KEY_FILE));
        let (ca_der, ca_pem, key) = match (exists(&crt_path)?, exists(&key_path)?) {
            (false, false) => create_ca(&crt_path, &key_path)?,
            (true, true) => load_ca(&crt_path, &key_path)?,
            (crt, _) => {
                let (present, missing) = if crt { (&crt_path, &key_path) } else { (&key_path, &crt_path) };
                bail!(
                    "{} exists but {} is missing; restore it (removing both creates a new cluster CA, and every agent must enroll again)",
                    present.display(),
                    missing.display()
                );
            }
        };
        let token_key = load_or_create_token_key(&dir.join(TOKEN_KEY_FILE))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&ca_der)
            .map_err(|e| anyhow::anyhow!("parsing {}: {e}", crt_path.display()))?;
        let not_after = OffsetDateTime::from_unix_timestamp(parsed.validity().not_after.timestamp())?;
        if not_after < datetime(SystemTime::now() + CA_EXPIRY_WARNING)? {
            // Nothing renews the CA yet; say so loudly before handshakes start failing.
            warn!(path = %crt_path.display(), %not_after, "the cluster CA expires soon or has expired; agents will be refused");
        }
        let issuer = Issuer::from_ca_cert_der(&ca_der, key).with_context(|| format!("using {}", crt_path.display()))?;
        let fingerprint = fingerprint(&ca_der);
        Ok(ClusterCa { ca_der, ca_pem, fingerprint, not_after, issuer, token_key })
    }

    /// Lower-case hex SHA-256 of the CA certificate's DER: what join tokens pin.
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// A check value of the join-token key: HMAC-SHA256 of a fixed text under it (hex). Two
    /// coordinators with the same key give the same value; the value tells nothing of the key.
    pub fn token_key_check(&self) -> String {
        hex_encode(ring::hmac::sign(&self.token_key, b"piface cluster: join-token key check").as_ref())
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// Signs an agent's CSR (PEM) into a client certificate (PEM) for `name`. Only the CSR's
    /// public key is used (its signature proves the agent holds the key): the certificate
    /// says subject CN = `name`, extended key usage clientAuth, a random serial, whatever the
    /// CSR asked for. Names are 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
    pub fn sign_agent_csr(&self, csr_pem: &str, name: &str) -> anyhow::Result<String> {
        check_agent_name(name)?;
        if csr_pem.len() > MAX_CSR_PEM {
            bail!("the agent's CSR is {} bytes, more than {MAX_CSR_PEM}", csr_pem.len());
        }
        let csr = CertificateSigningRequestParams::from_pem(csr_pem).context("parsing the agent's CSR")?;
        let mut params = self.leaf_params(name)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&csr.public_key, &self.issuer).context("signing the agent certificate")?;
        Ok(cert.pem())
    }

    /// The QUIC server configuration: a fresh leaf for [`SERVER_NAME`] signed by the CA
    /// (presented with the CA, which enrolling agents pin), TLS 1.3 only, ALPN `piface/1`,
    /// and client certificates verified against the CA but optional (for enrollment).
    pub fn server_config(&self, transport: &Transport) -> anyhow::Result<quinn::ServerConfig> {
        let key = KeyPair::generate().context("generating the server key")?;
        let mut params = self.leaf_params(SERVER_NAME)?;
        params.subject_alt_names = vec![rcgen::SanType::DnsName(SERVER_NAME.try_into()?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = params.signed_by(&key, &self.issuer).context("signing the server certificate")?;
        let chain = vec![leaf.der().clone(), self.ca_der.clone()];
        let key = PrivateKeyDer::Pkcs8(key.serialize_der().into());

        let provider = piface_link::tls::provider();
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).context("using the CA as the root of client certificates")?;
        let clients = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()?;
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(clients)
            .with_single_cert(chain, key)?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls)?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
        config.transport_config(Arc::new(transport.quinn_config()?));
        Ok(config)
    }

    /// A join token valid for `ttl` from `now` (rounded up to whole seconds).
    pub fn create_token(&self, ttl: Duration, now: SystemTime) -> String {
        let id = hex_encode(&random_bytes::<8>());
        let ttl_secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let expires_at = unix_secs(now).saturating_add(ttl_secs);
        let body = format!("{TOKEN_VERSION}.{}.{id}.{expires_at}", self.fingerprint);
        let mac = ring::hmac::sign(&self.token_key, body.as_bytes());
        format!("{body}.{}", hex_encode(mac.as_ref()))
    }

    /// Checks a join token against this cluster at `now`; returns its id, which the caller
    /// must record to refuse a second use.
    pub fn verify_token(&self, token: &str, now: SystemTime) -> Result<String, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed(format!("longer than {MAX_TOKEN_LEN} bytes")));
        }
        let token = JoinToken::parse(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if token.ca_fingerprint != self.fingerprint {
            return Err(TokenError::WrongCluster);
        }
        // Constant time: ring compares the tags without early exit.
        ring::hmac::verify(&self.token_key, token.signed_text().as_bytes(), &token.mac())
            .map_err(|_| TokenError::BadSignature)?;
        if unix_secs(now) >= token.expires_at {
            return Err(TokenError::Expired);
        }
        Ok(token.id)
    }

    /// Parameters shared by the leaves this CA signs.
    fn leaf_params(&self, common_name: &str) -> anyhow::Result<CertificateParams> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        params.not_before = datetime(SystemTime::now() - BACKDATE)?;
        params.not_after = self.not_after;
        Ok(params)
    }
}

/// Lower-case hex SHA-256 of a certificate's DER (as in join tokens and agent records).
pub fn cert_fingerprint(der: &[u8]) -> String {
    fingerprint(der)
}

/// The certificate the peer of `conn` authenticated with (its leaf), if it presented one.
/// On the coordinator, `None` means an enrolling agent.
pub fn peer_certificate(conn: &quinn::Connection) -> Option<CertificateDer<'static>> {
    let chain = conn.peer_identity()?.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    chain.into_iter().next()
}

/// The subject common name of a certificate (an agent's name), if it has one in UTF-8.
pub fn cert_common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?.to_string();
    Some(cn)
}

/// Agent names become certificate subjects, URL segments and CLI arguments: keep them plain.
fn check_agent_name(name: &str) -> anyhow::Result<()> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > MAX_AGENT_NAME || !name.chars().all(plain) {
        bail!("invalid agent name {name:?}: use 1 to {MAX_AGENT_NAME} characters of A-Z, a-z, 0-9, '.', '_', '-'");
    }
    Ok(())
}

/// Makes and writes a CA; returns its certificate (DER and PEM) and key.
fn create_ca(crt_path: &Path, key_path: &Path) -> anyhow::Result<(CertificateDer<'static>, String, KeyPair)> {
    let key = KeyPair::generate().context("generating the CA key")?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::OrganizationName, "Piface");
    // A random suffix tells clusters apart in logs and tools; the fingerprint is what counts.
    let cn = format!("Piface cluster CA {}", hex_encode(&random_bytes::<4>()));
    params.distinguished_name.push(DnType::CommonName, cn);
    // Agents and the server are leaves of this CA; it never signs another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.serial_number = Some(random_serial());
    let now = SystemTime::now();
    params.not_before = datetime(now - BACKDATE)?;
    params.not_after = datetime(now + CA_VALIDITY)?;
    let cert = params.self_signed(&key).context("making the CA certificate")?;
    // The key first: a crash in between leaves a key without certificate, which
    // `load_or_create` reports instead of making a second CA.
    write_file_atomic(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_file_atomic(crt_path, cert.pem().as_bytes(), 0o600)?;
    info!(path = %crt_path.display(), fingerprint = %fingerprint(cert.der()), "created the cluster CA");
    Ok((cert.der().clone(), cert.pem(), key))
}

/// Reads and checks a CA; returns its certificate (DER and PEM, as stored) and key.
fn load_ca(crt_path: &Path, key_path: &Path) -> anyhow::Result<(CertificateDer<'static>, String, KeyPair)> {
    let crt_pem = read_text(crt_path)?;
    let der = CertificateDer::from_pem_slice(crt_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("parsing {}: not a PEM certificate ({e:?})", crt_path.display()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| anyhow::anyhow!("parsing {}: {e}", crt_path.display()))?;
    if !cert.is_ca() {
        bail!("{} is not a CA certificate", crt_path.display());
    }
    warn_if_readable_by_others(key_path);
    let key = KeyPair::from_pem(&read_text(key_path)?)
        .map_err(|e| anyhow::anyhow!("parsing {}: not a PEM private key ({e})", key_path.display()))?;
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        bail!("{} is not the key of {}", key_path.display(), crt_path.display());
    }
    Ok((der, crt_pem, key))
}

fn load_or_create_token_key(path: &Path) -> anyhow::Result<ring::hmac::Key> {
    let bytes = if exists(path)? {
        warn_if_readable_by_others(path);
        let text = read_text(path)?;
        match hex_decode(text.trim()) {
            Some(b) if b.len() == 32 => b,
            _ => bail!("parsing {}: expected 64 hex digits (32 bytes)", path.display()),
        }
    } else {
        let b = random_bytes::<32>().to_vec();
        write_file_atomic(path, format!("{}\n", hex_encode(&b)).as_bytes(), 0o600)?;
        info!(path = %path.display(), "created the join-token key");
        b
    };
    Ok(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes))
}

fn exists(path: &Path) -> anyhow::Result<bool> {
    path.try_exists().with_context(|| format!("checking {}", path.display()))
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            warn!(path = %path.display(), "secret key file is readable by others (mode {mode:o}); chmod 600 it");
        }
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The OS generator failing leaves no safe way to make keys or tokens at all.
    ring::rand::SystemRandom::new().fill(&mut b).expect("the system random generator failed");
    b
}

/// 16 random bytes, positive and without a leading zero byte, so it encodes in 16 bytes.
fn random_serial() -> SerialNumber {
    let mut b = random_bytes::<16>();
    b[0] = (b[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&b)
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn datetime(t: SystemTime) -> anyhow::Result<OffsetDateTime> {
    Ok(OffsetDateTime::from_unix_timestamp(unix_secs(t) as i64)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_tokens_and_csrs_are_refused_unparsed() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ClusterCa::load_or_create(&dir.path().join("cluster")).unwrap();
        let now = SystemTime::now();
        let token = ca.create_token(Duration::from_secs(60), now);
        assert!(token.len() <= MAX_TOKEN_LEN - 300, "{}", token.len());
        ca.verify_token(&token, now).unwrap();
        let padded = format!("{token}{}", " ".repeat(MAX_TOKEN_LEN));
        assert!(matches!(ca.verify_token(&padded, now), Err(TokenError::Malformed(m)) if m.contains("longer than")));
        let dots = ".".repeat(1 << 20);
        assert!(matches!(ca.verify_token(&dots, now), Err(TokenError::Malformed(_))));

        let key = KeyPair::generate().unwrap();
        let csr = CertificateParams::default().serialize_request(&key).unwrap().pem().unwrap();
        assert!(csr.len() < 1024, "{}", csr.len());
        ca.sign_agent_csr(&csr, "box").unwrap();
        let err = ca.sign_agent_csr(&format!("{csr}{}", "\n".repeat(MAX_CSR_PEM)), "box").unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
        assert!(ca
            .sign_agent_csr("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "box")
            .is_err());
    }

    #[test]
    fn agent_names() {
        for ok in ["a", "box-1", "ws_2.lan", &"x".repeat(64)] {
            check_agent_name(ok).unwrap();
        }
        for bad in ["", "a b", "a/b", "é", &"x".repeat(65), "a\n"] {
            assert!(check_agent_name(bad).is_err(), "{bad:?}");
        }
    }
}
