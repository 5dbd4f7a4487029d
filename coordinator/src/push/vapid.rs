//! The coordinator's VAPID key pair (RFC 8292): it signs the token that tells a push service
//! which application server sends a push, and browsers subscribe with its public half
//! (`applicationServerKey`), so that only this coordinator can push to them.
//!
//! The key is made on first start and kept in `<data dir>/push/vapid.pem` (PKCS#8 PEM), the
//! directory 0700 and the file 0600, written through a fresh temporary file renamed into place
//! (`piface_link::tls::write_file_atomic`) and read with `O_NOFOLLOW`; a `push` that is a
//! symlink is refused rather than followed. What it is not: the payload's encryption, which
//! uses a fresh key per message (`web-push-native`).

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::algorithms::{ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair};
use jwt_simple::claims::Claims;
use tracing::info;

/// The key file, in the push directory.
const KEY_FILE: &str = "vapid.pem";

/// A PEM of a P-256 key is about 240 bytes; anything far larger is not ours.
const MAX_KEY_FILE: u64 = 16 * 1024;

/// How long a token is valid: push services refuse more than 24 hours (Apple's limit).
pub const TOKEN_VALIDITY_HOURS: u64 = 12;

/// The key pair and its public key as browsers take it.
pub struct Vapid {
    key: ES256KeyPair,
    /// The uncompressed P-256 point, base64url without padding.
    public_key: String,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key never reaches a log.
        f.debug_struct("Vapid").field("public_key", &self.public_key).finish_non_exhaustive()
    }
}

impl Vapid {
    /// Loads the key from `dir` (`<data dir>/push`), creating the directory and the key on
    /// first use.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Vapid> {
        if let Ok(meta) = std::fs::symlink_metadata(dir) {
            if !meta.file_type().is_dir() {
                bail!("{} is not a directory (a symlink?); refusing to keep the push key there", dir.display());
            }
        }
        crate::private::dir(dir)?;
        let path = dir.join(KEY_FILE);
        let key = match read_key(&path)? {
            Some(pem) => ES256KeyPair::from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("{}: not a P-256 private key in PEM ({e})", path.display()))?,
            None => {
                let key = ES256KeyPair::generate();
                let pem = key.to_pem().map_err(|e| anyhow::anyhow!("encoding the push key: {e}"))?;
                piface_link::tls::write_file_atomic(&path, pem.as_bytes(), 0o600)?;
                info!(path = %path.display(), "created the Web Push (VAPID) key");
                key
            }
        };
        let public_key = URL_SAFE_NO_PAD.encode(key.public_key().public_key().to_bytes_uncompressed());
        Ok(Vapid { key, public_key })
    }

    /// The public key as `pushManager.subscribe` takes it (`applicationServerKey`).
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The `Authorization` header for a push to `endpoint`: `vapid t=<JWT>, k=<public key>`,
    /// the token's audience the endpoint's origin (its port included when not the scheme's
    /// default) and its subject `contact`.
    pub fn authorization(&self, endpoint: &reqwest::Url, contact: &str) -> anyhow::Result<String> {
        let audience = endpoint.origin().ascii_serialization();
        let claims = Claims::create(jwt_simple::prelude::Duration::from_hours(TOKEN_VALIDITY_HOURS))
            .with_audience(audience)
            .with_subject(contact);
        let token = self.key.sign(claims).map_err(|e| anyhow::anyhow!("signing the VAPID token: {e}"))?;
        Ok(format!("vapid t={token}, k={}", self.public_key))
    }
}

/// The key file's text, `None` when there is none. Read without following a link; a file
/// much larger than a key is refused before it is read.
fn read_key(path: &PathBuf) -> anyhow::Result<Option<String>> {
    let file = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {} (a symlink is refused)", path.display())),
    };
    let meta = file.metadata().with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() || meta.len() > MAX_KEY_FILE {
        bail!("{} is not a key file (not a regular file, or over {MAX_KEY_FILE} bytes)", path.display());
    }
    let mut text = String::with_capacity(meta.len() as usize);
    file.take(MAX_KEY_FILE).read_to_string(&mut text).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use jwt_simple::algorithms::ES256PublicKey;
    use jwt_simple::claims::NoCustomClaims;
    use jwt_simple::common::VerificationOptions;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_key_is_made_once_private_and_read_back_the_same() {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().join("push");
        let made = Vapid::load_or_create(&dir).unwrap();
        assert_eq!((mode(&dir), mode(&dir.join(KEY_FILE))), (0o700, 0o600));
        let again = Vapid::load_or_create(&dir).unwrap();
        assert_eq!(made.public_key(), again.public_key(), "the same key on the next start");
        let raw = URL_SAFE_NO_PAD.decode(made.public_key()).unwrap();
        assert_eq!((raw.len(), raw[0]), (65, 4), "an uncompressed P-256 point, as browsers take it");
        assert!(!format!("{made:?}").contains("PRIVATE"), "no key in Debug");
    }

    #[test]
    fn links_are_refused_not_followed() {
        let data = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        // The push directory as a link to a directory elsewhere.
        std::os::unix::fs::symlink(elsewhere.path(), data.path().join("push")).unwrap();
        let e = Vapid::load_or_create(&data.path().join("push")).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e:#}");
        assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0, "nothing written through the link");
        // The key file as a link to a key elsewhere.
        let dir = data.path().join("real");
        let other = Vapid::load_or_create(&elsewhere.path().join("push")).unwrap();
        crate::private::dir(&dir).unwrap();
        std::os::unix::fs::symlink(elsewhere.path().join("push").join(KEY_FILE), dir.join(KEY_FILE)).unwrap();
        let e = Vapid::load_or_create(&dir).unwrap_err();
        assert!(format!("{e:#}").contains("symlink is refused"), "{e:#}");
        drop(other);
        // Garbage and an oversized file are errors, not panics.
        std::fs::remove_file(dir.join(KEY_FILE)).unwrap();
        std::fs::write(dir.join(KEY_FILE), "not a key").unwrap();
        assert!(Vapid::load_or_create(&dir).unwrap_err().to_string().contains("not a P-256 private key"));
        std::fs::write(dir.join(KEY_FILE), vec![b'x'; MAX_KEY_FILE as usize + 1]).unwrap();
        assert!(Vapid::load_or_create(&dir).unwrap_err().to_string().contains("not a key file"));
    }

    #[test]
    fn the_token_names_the_push_service_s_origin_and_verifies_with_the_public_key() {
        let data = tempfile::tempdir().unwrap();
        let vapid = Vapid::load_or_create(&data.path().join("push")).unwrap();
        for (endpoint, origin) in [
            ("https://fcm.googleapis.com/fcm/send/abc", "https://fcm.googleapis.com"),
            ("https://push.example:8443/p/1", "https://push.example:8443"),
            ("http://127.0.0.1:4567/push/a", "http://127.0.0.1:4567"),
        ] {
            let header = vapid.authorization(&endpoint.parse().unwrap(), "mailto:me@example.com").unwrap();
            let (t, k) = header.strip_prefix("vapid t=").unwrap().split_once(", k=").unwrap();
            assert_eq!(k, vapid.public_key());
            let key = ES256PublicKey::from_bytes(&URL_SAFE_NO_PAD.decode(k).unwrap()).unwrap();
            let options =
                VerificationOptions { allowed_audiences: Some([origin.to_string()].into()), ..Default::default() };
            let claims = key.verify_token::<NoCustomClaims>(t, Some(options)).unwrap();
            assert_eq!(claims.subject.as_deref(), Some("mailto:me@example.com"));
            let left = claims.expires_at.unwrap().as_secs() - claims.issued_at.unwrap().as_secs();
            assert_eq!(left, TOKEN_VALIDITY_HOURS * 3600, "{endpoint}");
        }
    }
}
