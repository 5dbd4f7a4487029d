//! Web Push: a notification on the phone when pi needs you and nobody is looking.
//!
//! Browsers subscribe through their service worker's `pushManager` with the coordinator's
//! VAPID public key ([`vapid`]) and register the subscription here (`routes`); it is kept in the
//! state store, one per browser, with that browser's mutes (all, or per session). The session
//! actor tells a [`Notifier`] what happened (a run ended, an extension dialog waits, pi died,
//! an agent went down) and goes on: one task here takes those [`Event`]s in order, skips a
//! session's events while one of its clients is visible (browsers say so on the session
//! socket: `frames::BrowserFrame::Visibility`, kept by a [`Watch`] per socket), encrypts a
//! small JSON payload (`frames::Notification`) for each subscription that has not muted it
//! (RFC 8291's aes128gcm, by `web-push-native`), signs a VAPID token, and posts it to the
//! push service over reqwest. A subscription the push service answers 404 or 410 for is gone
//! and removed.
//!
//! What it is not: the browser side (the UI's `lib/push/` and the service worker), or a
//! queue that survives a restart (push services keep undelivered messages for their TTL; the
//! coordinator does not retry).

pub mod routes;
pub mod vapid;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};
use web_push_native::p256;

use crate::error::ApiError;
use crate::frames::{Notification, NotificationKind};
use crate::record::SessionRecord;
use crate::store::{PushSubscriptionRecord, StateStore};

pub use vapid::Vapid;

/// Events waiting for the push task; past this the newest are dropped (and logged): pushes
/// are rare, so a full queue means the push services are stuck.
const QUEUE: usize = 256;
/// Browsers a coordinator keeps subscriptions for; one more is refused (409).
pub const MAX_SUBSCRIPTIONS: usize = 100;
/// Sessions one browser may have muted.
pub const MAX_MUTED_SESSIONS: usize = 1000;
/// Longest endpoint URL accepted (browsers' are under 500 bytes).
pub const MAX_ENDPOINT: usize = 2048;
/// How long one push may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a push service keeps a message for an offline browser: a "turn ended" older than
/// this is of no use.
const TTL: Duration = Duration::from_secs(12 * 3600);
/// Longest text of a notification's body, in characters (payloads must stay under 4 KiB).
const MAX_BODY_CHARS: usize = 200;
/// What a push service's error answer is cut to, for the log and the test endpoint.
const MAX_ERROR_BODY: usize = 512;
/// The VAPID subject when `--push-contact` is not given and the subscribing page was not on
/// HTTPS. Apple's push service refuses names that do not resolve (`localhost`, `.invalid`);
/// pages behind `tailscale serve` are HTTPS, and their origin is used instead.
const FALLBACK_CONTACT: &str = "mailto:piface@localhost";

/// A session as a notification names it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The session id.
    pub id: String,
    /// Its name, else its directory's last component.
    pub name: String,
}

impl SessionInfo {
    /// The session of `record`.
    pub fn of(record: &SessionRecord) -> SessionInfo {
        let name = record.session_name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| {
            let dir = record.working_dir.trim_end_matches('/');
            dir.rsplit('/').next().filter(|d| !d.is_empty()).unwrap_or(dir).to_string()
        });
        SessionInfo { id: record.piface_id.clone(), name }
    }
}

/// What happened, as the session actor reports it.
#[derive(Debug)]
pub enum Event {
    /// pi finished a run (its `agent_end`) and waits for the user.
    TurnEnded { session: SessionInfo },
    /// An extension dialog waits for an answer; `request` is its `piface_attention_required`
    /// frame (for the question's title).
    Attention { session: SessionInfo, request: Option<Bytes> },
    /// pi exited without being asked to.
    Exited { session: SessionInfo, code: Option<i32>, stderr: String },
    /// An agent's link went down (its sessions wait for it).
    AgentDown { agent: String },
}

impl Event {
    fn session(&self) -> Option<&SessionInfo> {
        match self {
            Event::TurnEnded { session } | Event::Attention { session, .. } | Event::Exited { session, .. } => {
                Some(session)
            }
            Event::AgentDown { .. } => None,
        }
    }
}

enum Job {
    Notify(Event),
    /// A test push to one subscription, whatever its mutes; the push service's status comes back.
    Test {
        id: String,
        reply: oneshot::Sender<Result<u16, ApiError>>,
    },
}

/// Where the session actor posts [`Event`]s: never waits, never fails the caller.
#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::Sender<Job>,
}

impl Notifier {
    /// Queues `event` for the push task.
    pub fn notify(&self, event: Event) {
        if let Err(e) = self.tx.try_send(Job::Notify(event)) {
            warn!("the push queue is full or stopped; a notification is dropped: {e}");
        }
    }
}

/// Subscriptions, who is looking, and the push task's handle. See the module docs.
pub struct Push {
    dir: PathBuf,
    /// `--push-contact`.
    contact: Option<String>,
    /// Loaded (or made) on first use; [`crate::run`] asks at start so that a broken data dir
    /// fails the start.
    vapid: Mutex<Option<Arc<Vapid>>>,
    store: Arc<dyn StateStore>,
    /// The store's subscriptions, by id; written through, under this lock, so the store sees
    /// the changes in this order.
    subscriptions: Mutex<BTreeMap<String, PushSubscriptionRecord>>,
    /// Per session, its sockets' visibility by watch id.
    watching: Mutex<HashMap<String, HashMap<u64, bool>>>,
    next_watch: AtomicU64,
    queue: Notifier,
}

impl Push {
    /// Starts the push task (needs a tokio runtime) over the store's `subscriptions`; the key
    /// lives in `<data_dir>/push`.
    pub fn start(
        data_dir: &std::path::Path,
        contact: Option<String>,
        store: Arc<dyn StateStore>,
        subscriptions: BTreeMap<String, PushSubscriptionRecord>,
    ) -> Arc<Push> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let push = Arc::new(Push {
            dir: data_dir.join("push"),
            contact,
            vapid: Mutex::new(None),
            store,
            subscriptions: Mutex::new(subscriptions),
            watching: Mutex::new(HashMap::new()),
            next_watch: AtomicU64::new(0),
            queue: Notifier { tx },
        });
        tokio::spawn(run(Arc::downgrade(&push), rx));
        push
    }

    /// The handle the session actor posts to.
    pub fn notifier(&self) -> Notifier {
        self.queue.clone()
    }

    /// The key pair, loaded or made on first use.
    pub fn vapid(&self) -> anyhow::Result<Arc<Vapid>> {
        let mut slot = self.vapid.lock().unwrap();
        if let Some(v) = &*slot {
            return Ok(v.clone());
        }
        let v = Arc::new(Vapid::load_or_create(&self.dir)?);
        *slot = Some(v.clone());
        Ok(v)
    }

    /// Starts following one session socket's visibility (not visible until it says so); the
    /// watch ends when dropped.
    pub fn watch(self: &Arc<Push>, session: &str) -> Watch {
        let id = self.next_watch.fetch_add(1, Ordering::Relaxed);
        self.watching.lock().unwrap().entry(session.to_string()).or_default().insert(id, false);
        Watch { push: self.clone(), session: session.to_string(), id }
    }

    /// Whether some client of `session` says it is visible.
    pub fn watched(&self, session: &str) -> bool {
        self.watching.lock().unwrap().get(session).is_some_and(|m| m.values().any(|v| *v))
    }

    /// Registers (or renews) a browser's subscription. `page_origin` is the subscribing page's
    /// `Origin`, the VAPID contact when it is HTTPS and no `--push-contact` is set.
    pub fn subscribe(
        &self,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
        page_origin: Option<&str>,
    ) -> Result<PushSubscriptionRecord, ApiError> {
        check_endpoint(endpoint)?;
        check_keys(p256dh, auth)?;
        let id = hex(ring::digest::digest(&ring::digest::SHA256, endpoint.as_bytes()).as_ref());
        let mut subs = self.subscriptions.lock().unwrap();
        let record = match subs.get(&id) {
            Some(old) => PushSubscriptionRecord { p256dh: p256dh.into(), auth: auth.into(), ..old.clone() },
            None => {
                if subs.len() >= MAX_SUBSCRIPTIONS {
                    return Err(ApiError::conflict(format!(
                        "This Piface pushes to at most {MAX_SUBSCRIPTIONS} browsers; turn notifications off in one first"
                    )));
                }
                PushSubscriptionRecord {
                    id: id.clone(),
                    endpoint: endpoint.into(),
                    p256dh: p256dh.into(),
                    auth: auth.into(),
                    created_at: crate::record::now(),
                    muted: false,
                    muted_sessions: Vec::new(),
                    contact: None,
                }
            }
        };
        let record = PushSubscriptionRecord {
            contact: page_origin.filter(|o| o.starts_with("https://")).map(str::to_string).or(record.contact),
            ..record
        };
        self.store.put_push_subscription(&record).map_err(internal)?;
        subs.insert(id, record.clone());
        Ok(record)
    }

    /// A subscription by id.
    pub fn get(&self, id: &str) -> Option<PushSubscriptionRecord> {
        self.subscriptions.lock().unwrap().get(id).cloned()
    }

    /// Changes a subscription's mutes: all of them (`muted`), and per session (`sessions`: id →
    /// muted). Mutes of sessions for which `known` is false are dropped.
    pub fn set_mutes(
        &self,
        id: &str,
        muted: Option<bool>,
        sessions: &BTreeMap<String, bool>,
        known: impl Fn(&str) -> bool,
    ) -> Result<PushSubscriptionRecord, ApiError> {
        let mut subs = self.subscriptions.lock().unwrap();
        let mut record = subs.get(id).cloned().ok_or_else(subscription_not_found)?;
        if let Some(m) = muted {
            record.muted = m;
        }
        for (session, mute) in sessions {
            record.muted_sessions.retain(|s| s != session);
            if *mute {
                record.muted_sessions.push(session.clone());
            }
        }
        record.muted_sessions.retain(|s| known(s));
        if record.muted_sessions.len() > MAX_MUTED_SESSIONS {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("At most {MAX_MUTED_SESSIONS} sessions can be muted"),
            ));
        }
        self.store.put_push_subscription(&record).map_err(internal)?;
        subs.insert(id.to_string(), record.clone());
        Ok(record)
    }

    /// Forgets a subscription; whether there was one.
    pub fn unsubscribe(&self, id: &str) -> Result<bool, ApiError> {
        let mut subs = self.subscriptions.lock().unwrap();
        if subs.remove(id).is_none() {
            return Ok(false);
        }
        self.store.delete_push_subscription(id).map_err(internal)?;
        Ok(true)
    }

    /// Sends a test notification to subscription `id` now (mutes do not apply) and returns the
    /// push service's status.
    pub async fn test(&self, id: &str) -> Result<u16, ApiError> {
        if self.get(id).is_none() {
            return Err(subscription_not_found());
        }
        let (reply, rx) = oneshot::channel();
        self.queue.tx.try_send(Job::Test { id: id.into(), reply }).map_err(|_| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "The push queue is full; try again in a moment")
        })?;
        rx.await.unwrap_or_else(|_| Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "The push task stopped")))
    }

    fn contact_for(&self, sub: &PushSubscriptionRecord) -> String {
        self.contact.clone().or_else(|| sub.contact.clone()).unwrap_or_else(|| FALLBACK_CONTACT.to_string())
    }

    /// The subscriptions `event` goes to: not muted, for its session too.
    fn targets(&self, event: &Event) -> Vec<PushSubscriptionRecord> {
        let session = event.session().map(|s| s.id.as_str());
        let subs = self.subscriptions.lock().unwrap();
        subs.values()
            .filter(|s| !s.muted && session.is_none_or(|id| !s.muted_sessions.iter().any(|m| m == id)))
            .cloned()
            .collect()
    }

    /// The push service says the subscription no longer exists.
    fn gone(&self, id: &str) {
        match self.unsubscribe(id) {
            Ok(true) => info!(subscription = %id, "the push service says a browser's subscription is gone; removed it"),
            Ok(false) => {}
            Err(e) => warn!(subscription = %id, "could not remove a gone subscription: {}", e.detail),
        }
    }
}

/// One session socket's say in [`Push::watched`].
pub struct Watch {
    push: Arc<Push>,
    session: String,
    id: u64,
}

impl Watch {
    /// The page is visible (or not) now.
    pub fn set_visible(&self, visible: bool) {
        if let Some(m) = self.push.watching.lock().unwrap().get_mut(&self.session) {
            m.insert(self.id, visible);
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watching = self.push.watching.lock().unwrap();
        if let Some(m) = watching.get_mut(&self.session) {
            m.remove(&self.id);
            if m.is_empty() {
                watching.remove(&self.session);
            }
        }
    }
}

fn subscription_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Subscription not found")
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An endpoint is an absolute HTTPS URL (HTTP only to a loopback address: a push service on
/// this machine, as in the tests), without credentials.
fn check_endpoint(endpoint: &str) -> Result<reqwest::Url, ApiError> {
    let bad = |why: &str| ApiError::validation(format!("endpoint: {why}"));
    if endpoint.len() > MAX_ENDPOINT {
        return Err(bad(&format!("longer than {MAX_ENDPOINT} bytes")));
    }
    let url = reqwest::Url::parse(endpoint).map_err(|e| bad(&e.to_string()))?;
    let loopback = url
        .host_str()
        .and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(bad("must be an https:// URL")),
    }
    if url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must name a host and no credentials"));
    }
    axum::http::Uri::try_from(endpoint).map_err(|e| bad(&e.to_string()))?;
    Ok(url)
}

/// `p256dh` is a P-256 point and `auth` 16 bytes, both base64url (with or without padding).
fn check_keys(p256dh: &str, auth: &str) -> Result<(p256::PublicKey, [u8; 16]), ApiError> {
    let decode = |name: &str, v: &str| {
        if v.len() > 256 {
            return Err(ApiError::validation(format!("keys.{name}: too long")));
        }
        URL_SAFE_NO_PAD
            .decode(v.trim_end_matches('='))
            .map_err(|e| ApiError::validation(format!("keys.{name}: not base64url ({e})")))
    };
    let point = decode("p256dh", p256dh)?;
    let key = p256::PublicKey::from_sec1_bytes(&point)
        .map_err(|_| ApiError::validation("keys.p256dh: not a P-256 public key"))?;
    let auth: [u8; 16] =
        decode("auth", auth)?.try_into().map_err(|_| ApiError::validation("keys.auth: must be 16 bytes"))?;
    Ok((key, auth))
}

/// The push task: one job at a time, in order (a test push sent after an event arrives after
/// that event's pushes).
async fn run(push: Weak<Push>, mut rx: mpsc::Receiver<Job>) {
    let client = match reqwest::Client::builder().timeout(SEND_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            warn!("Web Push is off: no HTTP client ({e})");
            return;
        }
    };
    while let Some(job) = rx.recv().await {
        let Some(push) = push.upgrade() else { return };
        match job {
            Job::Notify(event) => deliver(&push, &client, event).await,
            Job::Test { id, reply } => {
                let result = match push.get(&id) {
                    Some(sub) => {
                        let payload = Notification {
                            kind: NotificationKind::Test,
                            title: "piface",
                            body: "Notifications work on this device.",
                            url: "/",
                            tag: "piface-test",
                            session_id: None,
                        }
                        .to_bytes();
                        match send(&push, &client, &sub, &payload, false).await {
                            Sent::Ok(status) => Ok(status),
                            Sent::Gone(status) => {
                                push.gone(&sub.id);
                                Err(ApiError::new(
                                    StatusCode::BAD_GATEWAY,
                                    format!("The push service answered {status}: this browser's subscription is gone and was removed; turn notifications on again"),
                                ))
                            }
                            Sent::Failed(why) => Err(ApiError::new(StatusCode::BAD_GATEWAY, why)),
                        }
                    }
                    None => Err(subscription_not_found()),
                };
                let _ = reply.send(result);
            }
        }
    }
}

/// What one push came to.
enum Sent {
    Ok(u16),
    /// 404 or 410: the subscription expired or was withdrawn.
    Gone(u16),
    Failed(String),
}

async fn deliver(push: &Push, client: &reqwest::Client, event: Event) {
    if let Some(session) = event.session() {
        if push.watched(&session.id) {
            debug!(session_id = %session.id, "a client is looking; no push");
            return;
        }
    }
    let targets = push.targets(&event);
    if targets.is_empty() {
        return;
    }
    let message = describe(&event);
    let payload = message.payload();
    let urgent = matches!(event, Event::Attention { .. } | Event::Exited { .. });
    let sends = targets.iter().map(|sub| send(push, client, sub, &payload, urgent));
    for (sub, sent) in targets.iter().zip(futures_util::future::join_all(sends).await) {
        match sent {
            Sent::Ok(_) => debug!(subscription = %sub.id, kind = ?message.kind, "pushed"),
            Sent::Gone(_) => push.gone(&sub.id),
            Sent::Failed(why) => warn!(subscription = %sub.id, "push failed: {why}"),
        }
    }
}

/// A notification before it is encoded; see [`Notification`].
struct Message {
    kind: NotificationKind,
    title: String,
    body: String,
    url: String,
    tag: String,
    session_id: Option<String>,
}

impl Message {
    /// About `session`: its page opens, and its newer notification replaces this one.
    fn about(session: &SessionInfo, kind: NotificationKind, body: &str) -> Message {
        Message {
            kind,
            title: session.name.clone(),
            body: cut(body),
            url: format!("/session/{}", session.id),
            tag: format!("piface-session-{}", session.id),
            session_id: Some(session.id.clone()),
        }
    }

    fn payload(&self) -> Bytes {
        let Message { kind, title, body, url, tag, session_id } = self;
        Notification { kind: *kind, title, body, url, tag, session_id: session_id.as_deref() }.to_bytes()
    }
}

/// What `event` says.
fn describe(event: &Event) -> Message {
    match event {
        Event::TurnEnded { session } => {
            Message::about(session, NotificationKind::TurnEnd, "pi is done and waiting for you")
        }
        Event::Attention { session, request } => {
            let body = match request.as_deref().and_then(dialog_text) {
                Some(q) => format!("pi asks: {q}"),
                None => "pi asks you something".into(),
            };
            Message::about(session, NotificationKind::Attention, &body)
        }
        Event::Exited { session, code, stderr } => {
            let last = stderr.lines().rev().map(str::trim).find(|l| !l.is_empty());
            let code = code.map_or_else(|| "killed by a signal".to_string(), |c| format!("exit code {c}"));
            let body = match last {
                Some(line) => format!("pi stopped ({code}): {line}"),
                None => format!("pi stopped ({code})"),
            };
            Message::about(session, NotificationKind::Exited, &body)
        }
        Event::AgentDown { agent } => Message {
            kind: NotificationKind::AgentDown,
            title: format!("Agent {agent} is down"),
            body: "Its sessions wait for it to reconnect.".into(),
            url: "/".into(),
            tag: format!("piface-agent-{agent}"),
            session_id: None,
        },
    }
}

/// The title (else the message) of the dialog in a `piface_attention_required` frame.
fn dialog_text(frame: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Frame {
        request: Request,
    }
    #[derive(serde::Deserialize)]
    struct Request {
        title: Option<String>,
        message: Option<String>,
    }
    let f: Frame = serde_json::from_slice(frame).ok()?;
    f.request.title.or(f.request.message).map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_BODY_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Encrypts `payload` for `sub` and posts it to its push service.
async fn send(
    push: &Push,
    client: &reqwest::Client,
    sub: &PushSubscriptionRecord,
    payload: &[u8],
    urgent: bool,
) -> Sent {
    let request = match build(push, sub, payload, urgent) {
        Ok(r) => r,
        Err(e) => return Sent::Failed(format!("{e:#}")),
    };
    let mut response = match client.execute(request).await {
        Ok(r) => r,
        Err(e) => return Sent::Failed(format!("could not reach the push service: {e}")),
    };
    let status = response.status();
    if status.is_success() {
        return Sent::Ok(status.as_u16());
    }
    if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
        return Sent::Gone(status.as_u16());
    }
    // The push service's reason, read up to a limit whatever length it announces.
    let mut text = Vec::new();
    while text.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => text.extend_from_slice(&chunk[..chunk.len().min(MAX_ERROR_BODY - text.len())]),
            _ => break,
        }
    }
    let hint = if status == reqwest::StatusCode::FORBIDDEN {
        " (if it says BadJwtToken: Apple wants a real contact; set --push-contact mailto:you@example.com)"
    } else {
        ""
    };
    Sent::Failed(format!("the push service answered {status}: {}{hint}", String::from_utf8_lossy(&text).trim()))
}

fn build(push: &Push, sub: &PushSubscriptionRecord, payload: &[u8], urgent: bool) -> anyhow::Result<reqwest::Request> {
    let url = check_endpoint(&sub.endpoint).map_err(|e| anyhow::anyhow!("stored endpoint: {}", e.detail))?;
    let (key, auth) = check_keys(&sub.p256dh, &sub.auth).map_err(|e| anyhow::anyhow!("stored keys: {}", e.detail))?;
    let uri: axum::http::Uri = sub.endpoint.parse()?;
    let request = web_push_native::WebPushBuilder::new(uri, key, auth.into())
        .with_valid_duration(TTL)
        .build(payload.to_vec())
        .map_err(|e| anyhow::anyhow!("encrypting the push: {e}"))?;
    let mut request = reqwest::Request::try_from(request)?;
    let vapid = push.vapid()?;
    let headers = request.headers_mut();
    headers.insert(reqwest::header::AUTHORIZATION, vapid.authorization(&url, &push.contact_for(sub))?.parse()?);
    headers.insert("urgency", if urgent { "high" } else { "normal" }.parse()?);
    Ok(request)
}

#[cfg(test)]
mod tests;
