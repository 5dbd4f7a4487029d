//! A Web Push service stand-in on loopback (`http://127.0.0.1:<port>`), for the tests of
//! Piface's pushes; browsers' real push services (FCM, Mozilla's, Apple's) cannot be reached
//! from the tests.
//!
//! It does what a push service checks (RFC 8030, 8291, 8292) and keeps what it is sent:
//! - `POST /push/<name>`: the push for subscriber `<name>`. The `Authorization` header must be
//!   `vapid t=<JWT>, k=<key>`, `k` the application server's key the test registered
//!   ([`PushService::expect_key`]), the JWT an ES256 token signed by that key whose audience is
//!   this service's origin (port included), with a `mailto:`/`https:` subject and an expiry at
//!   most 24 hours ahead; `Content-Encoding: aes128gcm` and a `TTL`. A push that fails a check
//!   is refused (401/400) and its reason kept ([`PushService::refusals`]). A good push is kept
//!   encrypted ([`Push`]) and answered 201, or with the status set by [`PushService::answer`]
//!   (say 410 for a subscription gone).
//! - [`Subscriber`]: what a browser's `pushManager.subscribe` makes: its own P-256 key pair and
//!   16-byte auth secret, the endpoint here, [`Subscriber::subscription`] as
//!   `PushSubscription.toJSON()`, and [`Subscriber::decrypt`] for what it was sent.
//!
//! Bodies over 8 KiB are refused (413) before they are read whole; push services take 4 KiB.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256PublicKey};
use jwt_simple::claims::NoCustomClaims;
use jwt_simple::common::VerificationOptions;
use serde_json::{json, Value};
use tokio::sync::Notify;
use web_push_native::p256;

/// Largest push body accepted.
pub const MAX_BODY: usize = 8 * 1024;

/// A push the service accepted (still encrypted).
#[derive(Debug, Clone)]
pub struct Push {
    /// The subscriber's name (the endpoint's last segment).
    pub name: String,
    /// The aes128gcm body.
    pub body: Vec<u8>,
    /// `TTL`, in seconds.
    pub ttl: u64,
    /// `Urgency`, when sent.
    pub urgency: Option<String>,
    /// The token's subject.
    pub subject: String,
}

#[derive(Default)]
struct Inner {
    key: Option<String>,
    pushes: Vec<Push>,
    refusals: Vec<String>,
    answers: HashMap<String, u16>,
}

struct Shared {
    origin: String,
    inner: Mutex<Inner>,
    arrived: Notify,
}

/// The stand-in, serving until dropped.
pub struct PushService {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PushService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PushService {
    /// Starts it on a free loopback port.
    pub async fn start() -> anyhow::Result<PushService> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let origin = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared { origin, inner: Mutex::default(), arrived: Notify::new() });
        let router = Router::new()
            .route("/push/{name}", post(receive))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(PushService { shared, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> &str {
        &self.shared.origin
    }

    /// The application server's public key (base64url, as Piface's `GET /api/push/key` gives
    /// it) that every token must be signed with.
    pub fn expect_key(&self, key: &str) {
        self.shared.inner.lock().unwrap().key = Some(key.to_string());
    }

    /// A new subscriber `name` with keys of its own.
    pub fn subscriber(&self, name: &str) -> Subscriber {
        use ring::rand::SecureRandom;
        let rng = ring::rand::SystemRandom::new();
        let secret = loop {
            let mut scalar = [0u8; 32];
            rng.fill(&mut scalar).expect("the system's random numbers");
            // Almost every 32 bytes are a valid scalar; the rest (zero, or past the order) are drawn again.
            if let Ok(key) = p256::SecretKey::from_slice(&scalar) {
                break key;
            }
        };
        let mut auth = [0u8; 16];
        rng.fill(&mut auth).expect("the system's random numbers");
        Subscriber { name: name.into(), endpoint: format!("{}/push/{name}", self.shared.origin), secret, auth }
    }

    /// Answers pushes for `name` with `status` from now on (201 by default).
    pub fn answer(&self, name: &str, status: u16) {
        self.shared.inner.lock().unwrap().answers.insert(name.into(), status);
    }

    /// Every push accepted so far.
    pub fn pushes(&self) -> Vec<Push> {
        self.shared.inner.lock().unwrap().pushes.clone()
    }

    /// Why pushes were refused, so far.
    pub fn refusals(&self) -> Vec<String> {
        self.shared.inner.lock().unwrap().refusals.clone()
    }

    /// Waits until `count` pushes have been accepted (or `wait` passed) and returns them all.
    pub async fn wait_for(&self, count: usize, wait: Duration) -> anyhow::Result<Vec<Push>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let arrived = self.shared.arrived.notified();
            let pushes = self.pushes();
            if pushes.len() >= count {
                return Ok(pushes);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                bail!(
                    "{} of {count} pushes arrived within {wait:?}; refused: {:?}",
                    self.pushes().len(),
                    self.refusals()
                );
            }
        }
    }
}

/// A browser's subscription to this service.
pub struct Subscriber {
    /// Its name (the endpoint's last segment).
    pub name: String,
    /// Where pushes for it go.
    pub endpoint: String,
    secret: p256::SecretKey,
    auth: [u8; 16],
}

impl Subscriber {
    /// `PushSubscription.toJSON()`: `{"endpoint", "expirationTime", "keys": {"p256dh", "auth"}}`.
    pub fn subscription(&self) -> Value {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&self.secret.public_key(), false);
        json!({
            "endpoint": self.endpoint,
            "expirationTime": null,
            "keys": { "p256dh": b64.encode(point.as_bytes()), "auth": b64.encode(self.auth) },
        })
    }

    /// The plaintext of `push`, decrypted with this subscriber's keys (RFC 8291).
    pub fn decrypt(&self, push: &Push) -> anyhow::Result<Vec<u8>> {
        web_push_native::decrypt(push.body.clone(), &self.secret, &self.auth.into())
            .map_err(|e| anyhow!("decrypting the push for {}: {e}", self.name))
    }

    /// The push decrypted and read as JSON.
    pub fn decrypt_json(&self, push: &Push) -> anyhow::Result<Value> {
        Ok(serde_json::from_slice(&self.decrypt(push)?)?)
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    match check(&shared, &headers) {
        Ok((ttl, subject)) => {
            let urgency = headers.get("urgency").and_then(|v| v.to_str().ok()).map(str::to_string);
            let status = {
                let mut inner = shared.inner.lock().unwrap();
                let status = inner.answers.get(&name).copied().unwrap_or(201);
                if status == 201 {
                    inner.pushes.push(Push { name, body: body.to_vec(), ttl, urgency, subject });
                }
                status
            };
            shared.arrived.notify_waiters();
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Err((status, why)) => {
            shared.inner.lock().unwrap().refusals.push(format!("{name}: {why:#}"));
            shared.arrived.notify_waiters();
            status
        }
    }
}

/// The checks of a push service; the TTL and the token's subject.
fn check(shared: &Shared, headers: &HeaderMap) -> Result<(u64, String), (StatusCode, anyhow::Error)> {
    let unauthorized = |e: anyhow::Error| (StatusCode::UNAUTHORIZED, e);
    let bad = |e: anyhow::Error| (StatusCode::BAD_REQUEST, e);
    let text = |h: &str| headers.get(h).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    if text(header::CONTENT_ENCODING.as_str()) != "aes128gcm" {
        return Err(bad(anyhow!("Content-Encoding is not aes128gcm")));
    }
    let ttl = text("ttl").parse::<u64>().context("no TTL header").map_err(bad)?;
    let auth = text(header::AUTHORIZATION.as_str());
    let (token, key) = auth
        .strip_prefix("vapid t=")
        .and_then(|rest| rest.split_once(", k="))
        .ok_or_else(|| unauthorized(anyhow!("Authorization is not `vapid t=…, k=…`: {auth:?}")))?;
    let expected = shared.inner.lock().unwrap().key.clone();
    if expected.as_deref() != Some(key) {
        return Err(unauthorized(anyhow!("k={key} is not the registered application server key {expected:?}")));
    }
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key)
        .context("k is not base64url")
        .map_err(unauthorized)?;
    let public = ES256PublicKey::from_bytes(&raw).map_err(|e| unauthorized(anyhow!("k is not a P-256 key: {e}")))?;
    let options = VerificationOptions {
        allowed_audiences: Some([shared.origin.clone()].into()),
        time_tolerance: Some(jwt_simple::prelude::Duration::from_secs(60)),
        ..Default::default()
    };
    let claims = public
        .verify_token::<NoCustomClaims>(token, Some(options))
        .map_err(|e| unauthorized(anyhow!("the token does not verify for audience {}: {e}", shared.origin)))?;
    let subject = claims.subject.unwrap_or_default();
    if !(subject.starts_with("mailto:") || subject.starts_with("https://")) {
        return Err(unauthorized(anyhow!("the token's subject {subject:?} is no mailto: or https: URL")));
    }
    let now = jwt_simple::prelude::Clock::now_since_epoch();
    match claims.expires_at {
        Some(exp) if exp <= now + jwt_simple::prelude::Duration::from_hours(24) => {}
        other => return Err(unauthorized(anyhow!("the token expires more than 24 h ahead, or never: {other:?}"))),
    }
    Ok((ttl, subject))
}
