//! Who may use Piface: `--auth token` (the default), `tailscale` or `none`.
//!
//! - **token**: a 256-bit secret in `<data dir>/auth/token` (0600, in a 0700 directory), printed
//!   at start as a login URL. Scripts send it as `Authorization: Bearer`; a browser trades it
//!   once (`POST /api/auth/login`, or the `/?token=` link) for a cookie. The cookie is signed
//!   with a key derived from the token, so it survives restarts and rotating the token
//!   (`piface auth token --rotate`, noticed within a second) ends every browser session.
//! - **tailscale**: `Tailscale-User-Login` from a trusted proxy (`tailscale serve`), for the
//!   `--tailscale-user` logins only; the token works too, for scripts.
//! - **none**: everything is open; the start-up log says so loudly.
//!
//! Failed credentials are rate-limited per client (the peer, or the client a trusted proxy
//! names): a burst of [`FAILURE_BURST`], then one per [`FAILURE_PERIOD`]; past that every
//! credential from that client gets 429 until the wait is over.
//!
//! Public without credentials: the UI's files (they hold no data), `GET /api/health` and the
//! login routes below. [`is_public`] is the whole list; a test walks the route table against it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ring::hmac;
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::App;

/// The browser session cookie.
pub const COOKIE: &str = "piface_auth";
/// How long a browser stays logged in.
pub const COOKIE_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Failed credentials a client may send at once…
pub const FAILURE_BURST: u32 = 10;
/// …and then one per this period.
pub const FAILURE_PERIOD: Duration = Duration::from_secs(30);
/// How often the token file is checked for a rotation.
const RELOAD_EVERY: Duration = Duration::from_secs(1);
/// Random bytes in a token (256 bits).
const TOKEN_BYTES: usize = 32;

/// `--auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// A secret token (and cookies made from it).
    Token,
    /// Tailscale identity headers from a trusted proxy, for these logins (and the token).
    Tailscale {
        /// `--tailscale-user` logins, e.g. `alice@example.com`.
        users: Vec<String>,
    },
    /// No login.
    None,
}

impl Mode {
    /// The name `--auth` takes and `/api/auth/status` reports.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Token => "token",
            Mode::Tailscale { .. } => "tailscale",
            Mode::None => "none",
        }
    }
}

/// Who a request is from, as far as the front door could tell (a request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// `--auth none`.
    Open,
    /// A public route without (valid) credentials.
    Anonymous,
    /// The bearer token.
    Token,
    /// A browser session.
    Cookie,
    /// A Tailscale login.
    Tailscale(String),
}

/// `<data dir>/auth/token`.
pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("auth").join("token")
}

/// The token of `data_dir`, made (0600, in a 0700 directory) when there is none yet.
pub fn load_or_create_token(data_dir: &Path) -> anyhow::Result<String> {
    let path = token_path(data_dir);
    if let Some(token) = read_token(&path)? {
        return Ok(token);
    }
    write_token(&path, &new_token()?)
}

/// Replaces the token of `data_dir` with a new one; every browser session made with the old one
/// ends (a running Piface notices within a second).
pub fn rotate_token(data_dir: &Path) -> anyhow::Result<String> {
    write_token(&token_path(data_dir), &new_token()?)
}

fn new_token() -> anyhow::Result<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; TOKEN_BYTES];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness from the OS"))?;
    Ok(hex(&bytes))
}

fn write_token(path: &Path, token: &str) -> anyhow::Result<String> {
    crate::private::dir(path.parent().expect("the token path has a parent"))?;
    piface_link::tls::write_file_atomic(path, format!("{token}\n").as_bytes(), 0o600)?;
    Ok(token.to_string())
}

fn read_token(path: &Path) -> anyhow::Result<Option<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let token = text.trim();
    anyhow::ensure!(
        token.len() == TOKEN_BYTES * 2 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{} does not hold a Piface token (64 hex digits); remove it or run `piface auth token --rotate`",
        path.display()
    );
    crate::private::file(path)?;
    Ok(Some(token.to_ascii_lowercase()))
}

/// What identifies the token file's current version.
type Stamp = (u64, u64, i64, i64);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.mtime(), m.mtime_nsec()))
}

struct Secret {
    token: String,
    cookie_key: hmac::Key,
    stamp: Option<Stamp>,
}

impl Secret {
    fn new(token: String, stamp: Option<Stamp>) -> Secret {
        // Cookies are signed with a key derived from the token: a new token invalidates them.
        let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes()), b"piface browser sessions v1");
        Secret { cookie_key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()), token, stamp }
    }
}

/// The login state of a running Piface.
pub struct Auth {
    mode: Mode,
    path: PathBuf,
    secret: RwLock<Option<Arc<Secret>>>,
    checked: Mutex<Instant>,
    failures: DefaultKeyedRateLimiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl Auth {
    /// Loads (or makes) the token of `data_dir`; `--auth none` needs none.
    pub fn new(mode: Mode, data_dir: &Path) -> anyhow::Result<Auth> {
        let path = token_path(data_dir);
        let secret = match mode {
            Mode::None => None,
            _ => Some(Arc::new(Secret::new(load_or_create_token(data_dir)?, stamp(&path)))),
        };
        let quota = Quota::with_period(FAILURE_PERIOD)
            .expect("a non-zero period")
            .allow_burst(NonZeroU32::new(FAILURE_BURST).expect("non-zero"));
        Ok(Auth {
            mode,
            path,
            secret: RwLock::new(secret),
            checked: Mutex::new(Instant::now()),
            failures: RateLimiter::keyed(quota),
            blocked: Mutex::new(HashMap::new()),
        })
    }

    /// `--auth`.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The current token (`None` with `--auth none`).
    pub fn token(&self) -> Option<String> {
        self.secret().map(|s| s.token.clone())
    }

    /// The secret, re-read when the file changed (at most once per [`RELOAD_EVERY`]).
    fn secret(&self) -> Option<Arc<Secret>> {
        let current = self.secret.read().unwrap().clone()?;
        {
            let mut checked = self.checked.lock().unwrap();
            if checked.elapsed() < RELOAD_EVERY {
                return Some(current);
            }
            *checked = Instant::now();
        }
        let now = stamp(&self.path);
        if now.is_none() || now == current.stamp {
            return Some(current);
        }
        match read_token(&self.path) {
            Ok(Some(token)) => {
                if token != current.token {
                    tracing::info!("the login token changed: browser sessions of the old one have ended");
                }
                let fresh = Arc::new(Secret::new(token, now));
                *self.secret.write().unwrap() = Some(fresh.clone());
                Some(fresh)
            }
            Ok(None) => Some(current),
            Err(e) => {
                tracing::warn!("keeping the current login token: {e:#}");
                Some(current)
            }
        }
    }

    fn token_matches(&self, presented: &str) -> bool {
        let Some(secret) = self.secret() else { return false };
        let (a, b) = (presented.trim().to_ascii_lowercase(), secret.token.as_bytes());
        // Constant time in the token's contents.
        a.len() == b.len() && a.bytes().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// A new browser session cookie's value: issue time, nonce, signature.
    fn issue_cookie(&self) -> Option<String> {
        use ring::rand::SecureRandom;
        let secret = self.secret()?;
        let mut nonce = [0u8; 16];
        ring::rand::SystemRandom::new().fill(&mut nonce).ok()?;
        let issued = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let payload = format!("{issued}.{}", hex(&nonce));
        let tag = hmac::sign(&secret.cookie_key, payload.as_bytes());
        Some(format!("{payload}.{}", hex(tag.as_ref())))
    }

    fn cookie_valid(&self, value: &str) -> bool {
        let Some(secret) = self.secret() else { return false };
        let Some((payload, tag)) = value.rsplit_once('.') else { return false };
        let Some(tag) = unhex(tag) else { return false };
        if hmac::verify(&secret.cookie_key, payload.as_bytes(), &tag).is_err() {
            return false;
        }
        let issued = payload.split('.').next().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        issued <= now + 60 && now - issued.min(now) < COOKIE_MAX_AGE.as_secs()
    }

    /// How long `client` must wait before its credentials are looked at again.
    fn blocked_for(&self, client: IpAddr) -> Option<Duration> {
        let mut blocked = self.blocked.lock().unwrap();
        let until = *blocked.get(&client)?;
        let now = Instant::now();
        if until > now {
            return Some(until - now);
        }
        blocked.remove(&client);
        None
    }

    /// Counts a failed credential; the answer is 401, or 429 once the client is past the limit.
    fn failed(&self, client: IpAddr, what: &str) -> Response {
        tracing::warn!(%client, "{what}");
        match self.failures.check_key(&client) {
            Ok(()) => ApiError::new(StatusCode::UNAUTHORIZED, what).into_response(),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                self.blocked.lock().unwrap().insert(client, Instant::now() + wait);
                self.failures.retain_recent();
                too_many(wait)
            }
        }
    }

    /// Who sent `headers`: `Ok(None)` without credentials; an error for a wrong token, a
    /// Tailscale login that is not allowed, or a client that is waiting out failures.
    fn identify(&self, headers: &HeaderMap, seen: &Seen) -> Result<Option<Identity>, Response> {
        if self.mode == Mode::None {
            return Ok(Some(Identity::Open));
        }
        let client = seen.client.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if let Some(auth) = headers.get(header::AUTHORIZATION) {
            if let Some(wait) = self.blocked_for(client) {
                return Err(too_many(wait));
            }
            let value = auth.to_str().unwrap_or("");
            let token = value.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"));
            return match token {
                Some((_, t)) if self.token_matches(t) => Ok(Some(Identity::Token)),
                _ => Err(self.failed(client, "Invalid token")),
            };
        }
        // A stale cookie (expired, or from before a rotation) is no attack: browsers keep
        // sending them. It counts as no credentials.
        if cookie(headers, COOKIE).is_some_and(|v| self.cookie_valid(v)) {
            return Ok(Some(Identity::Cookie));
        }
        if let Mode::Tailscale { users } = &self.mode {
            let login = headers.get("tailscale-user-login").and_then(|v| v.to_str().ok()).map(str::trim);
            if let (true, Some(login)) = (seen.via_proxy, login.filter(|l| !l.is_empty())) {
                if users.iter().any(|u| u.eq_ignore_ascii_case(login)) {
                    return Ok(Some(Identity::Tailscale(login.to_string())));
                }
                tracing::warn!(login, "Tailscale user not allowed");
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("Tailscale user {login} is not allowed on this Piface (see --tailscale-user)"),
                )
                .into_response());
            }
        }
        Ok(None)
    }

    /// The front door's login step: `Ok` lets the request through with who sent it.
    pub fn admit(&self, req: &Request, seen: &Seen) -> Result<Identity, Response> {
        let path = req.uri().path();
        if !is_guarded(path) {
            if req.method() == Method::GET && self.mode != Mode::None {
                if let Some(token) = query_token(req.uri()) {
                    return Err(self.login_link(req.uri(), &token, seen));
                }
            }
            // Who it is matters only to `--dev`'s proxied pages (see `dev_proxy`).
            return Ok(self.identify(req.headers(), seen).ok().flatten().unwrap_or(Identity::Anonymous));
        }
        if is_public(req.method(), path) {
            return Ok(self.identify(req.headers(), seen).ok().flatten().unwrap_or(Identity::Anonymous));
        }
        match self.identify(req.headers(), seen)? {
            Some(identity) => Ok(identity),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                match self.mode {
                    Mode::Tailscale { .. } => {
                        "Login required: reach Piface through `tailscale serve` as an allowed user, or send \
                         Authorization: Bearer <token> (`piface auth token` prints it)"
                    }
                    _ => {
                        "Login required: open the login URL Piface printed at start (`piface auth token` \
                         prints it again), or send Authorization: Bearer <token>"
                    }
                },
            )
            .into_response()),
        }
    }

    /// `GET /any/ui/path?token=…`: a login link. Redirects to the same path without the token,
    /// with the session cookie when it was right, or `login_error=…` for the login page.
    fn login_link(&self, uri: &Uri, token: &str, seen: &Seen) -> Response {
        let client = seen.client.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let mut error = None;
        if self.blocked_for(client).is_some() {
            error = Some("rate_limited");
        } else if !self.token_matches(token) {
            let refused = self.failed(client, "Invalid token in a login link");
            error = Some(if refused.status() == StatusCode::TOO_MANY_REQUESTS { "rate_limited" } else { "invalid" });
        }
        let mut query: Vec<&str> =
            uri.query().unwrap_or("").split('&').filter(|kv| !kv.is_empty() && !is_token_pair(kv)).collect();
        let error_pair = error.map(|e| format!("login_error={e}"));
        query.extend(error_pair.as_deref());
        // Never `//host`: that would be a redirect to another site.
        let path = if uri.path().starts_with("//") { "/" } else { uri.path() };
        let location = if query.is_empty() { path.to_string() } else { format!("{path}?{}", query.join("&")) };
        let mut response =
            (StatusCode::SEE_OTHER, [(header::LOCATION, location), (header::CACHE_CONTROL, "no-store".to_string())])
                .into_response();
        if error.is_none() {
            if let Some(cookie) = self.session_cookie(seen) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
        }
        response
    }

    fn session_cookie(&self, seen: &Seen) -> Option<HeaderValue> {
        let value = self.issue_cookie()?;
        let secure = if seen.scheme == "https" { "; Secure" } else { "" };
        let max_age = COOKIE_MAX_AGE.as_secs();
        HeaderValue::from_str(&format!(
            "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .ok()
    }
}

fn too_many(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("Too many failed logins from this address; try again in {secs} s"),
    )
    .into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

/// Paths behind the login: the API, the sockets and the metrics.
pub fn is_guarded(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path == "/ws" || path.starts_with("/ws/") || path == "/metrics"
}

/// The guarded routes anyone may call: the health check and the login itself.
pub fn is_public(method: &Method, path: &str) -> bool {
    matches!(
        (method.as_str(), path),
        ("GET" | "HEAD", "/api/health")
            | ("GET", "/api/auth/status")
            | ("POST", "/api/auth/login" | "/api/auth/logout")
    )
}

fn is_token_pair(kv: &str) -> bool {
    kv == "token" || kv.starts_with("token=")
}

fn query_token(uri: &Uri) -> Option<String> {
    uri.query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .map(|t| percent_encoding::percent_decode_str(t).decode_utf8_lossy().into_owned())
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || s.len() > 128 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The login routes.
pub fn routes() -> crate::Routes {
    use crate::limits::body_limit;
    use axum::routing::{get, post};
    vec![
        ("/api/auth/status", get(status)),
        // Open to anyone who reaches the port: a token is a few dozen bytes.
        ("/api/auth/login", body_limit(post(login), LOGIN_BODY)),
        ("/api/auth/logout", body_limit(post(logout), LOGIN_BODY)),
    ]
}

/// The largest body the login routes read.
const LOGIN_BODY: usize = 16 * 1024;

/// `GET /api/auth/status` → `{"authenticated", "mode", "user"}`.
async fn status(State(app): State<Arc<App>>, identity: Option<Extension<Identity>>) -> Json<serde_json::Value> {
    let identity = identity.map(|Extension(i)| i).unwrap_or(Identity::Anonymous);
    let user = match &identity {
        Identity::Tailscale(login) => Some(login.clone()),
        _ => None,
    };
    Json(json!({
        "authenticated": identity != Identity::Anonymous,
        "mode": app.auth.mode().name(),
        "user": user,
    }))
}

#[derive(Deserialize)]
struct LoginBody {
    token: String,
}

/// `POST /api/auth/login` `{"token"}` → 204 with the session cookie.
async fn login(
    State(app): State<Arc<App>>,
    seen: Option<Extension<Seen>>,
    body: Result<Json<LoginBody>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let auth = &app.auth;
    if auth.mode == Mode::None {
        return StatusCode::NO_CONTENT.into_response();
    }
    let seen = seen.map(|Extension(s)| s);
    let client = seen.as_ref().and_then(|s| s.client).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if let Some(wait) = auth.blocked_for(client) {
        return too_many(wait);
    }
    if !auth.token_matches(&body.token) {
        return auth.failed(client, "Invalid token");
    }
    let https = seen.as_ref().is_some_and(|s| s.scheme == "https");
    let fallback =
        Seen { peer: None, via_proxy: false, client: None, scheme: "http", host: None, forwarded_host: None };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let seen = seen.unwrap_or(Seen { scheme: if https { "https" } else { "http" }, ..fallback });
    if let Some(cookie) = auth.session_cookie(&seen) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /api/auth/logout`: forgets this browser's session.
async fn logout() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let expired = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&expired).expect("ASCII"));
    response
}

/// What a request says about where it came from, with forwarded headers taken into account
/// only from a trusted proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The TCP peer (none in in-process tests).
    pub peer: Option<IpAddr>,
    /// Whether the peer is a trusted proxy.
    pub via_proxy: bool,
    /// The client: the peer, or the last address a trusted proxy added to `X-Forwarded-For`.
    pub client: Option<IpAddr>,
    /// `https` when the request came over TLS to a trusted proxy.
    pub scheme: &'static str,
    /// The `Host` header (or the URI's authority).
    pub host: Option<String>,
    /// `X-Forwarded-Host` from a trusted proxy.
    pub forwarded_host: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(mode: Mode) -> (tempfile::TempDir, Auth) {
        let dir = tempfile::tempdir().unwrap();
        let auth = Auth::new(mode, dir.path()).unwrap();
        (dir, auth)
    }

    fn seen_from(ip: &str, via_proxy: bool) -> Seen {
        Seen {
            peer: Some(ip.parse().unwrap()),
            via_proxy,
            client: Some(ip.parse().unwrap()),
            scheme: "http",
            host: Some("127.0.0.1:7832".into()),
            forwarded_host: None,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_token_file_is_private_and_stable_until_rotated() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_token(dir.path()).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(load_or_create_token(dir.path()).unwrap(), first);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&token_path(dir.path())), 0o600);
        assert_eq!(mode(&dir.path().join("auth")), 0o700);
        let second = rotate_token(dir.path()).unwrap();
        assert_ne!(first, second);
        assert_eq!(load_or_create_token(dir.path()).unwrap(), second);
        std::fs::write(token_path(dir.path()), "not a token").unwrap();
        assert!(load_or_create_token(dir.path()).is_err(), "a damaged file is an error, not a silent new token");
    }

    #[test]
    fn bearer_cookie_and_nothing() {
        let (_dir, auth) = auth(Mode::Token);
        let token = auth.token().unwrap();
        let seen = seen_from("127.0.0.1", true);
        let bearer = headers(&[("authorization", &format!("Bearer {token}"))]);
        assert_eq!(auth.identify(&bearer, &seen).unwrap(), Some(Identity::Token));
        let lower = headers(&[("authorization", &format!("bearer {}", token.to_uppercase()))]);
        assert_eq!(auth.identify(&lower, &seen).unwrap(), Some(Identity::Token));
        assert_eq!(auth.identify(&HeaderMap::new(), &seen).unwrap(), None);
        let wrong = headers(&[("authorization", "Bearer 00")]);
        assert_eq!(auth.identify(&wrong, &seen).unwrap_err().status(), StatusCode::UNAUTHORIZED);
        let cookie = auth.issue_cookie().unwrap();
        let with_cookie = headers(&[("cookie", &format!("other=1; {COOKIE}={cookie}"))]);
        assert_eq!(auth.identify(&with_cookie, &seen).unwrap(), Some(Identity::Cookie));
        // A forged or stale cookie is no credential (and no failure).
        // Its last character changed (to one it is not: a fixed '0' left a cookie ending in '0' as it was).
        let last = if cookie.ends_with('0') { '1' } else { '0' };
        let forged = headers(&[("cookie", &format!("{COOKIE}={}{last}", &cookie[..cookie.len() - 1]))]);
        assert_eq!(auth.identify(&forged, &seen).unwrap(), None);
        let old = format!("1000.{}", &cookie[cookie.find('.').unwrap() + 1..]);
        assert!(!auth.cookie_valid(&old), "the issue time is signed");
    }

    #[test]
    fn rotating_the_token_ends_browser_sessions() {
        let (dir, auth) = auth(Mode::Token);
        let cookie = auth.issue_cookie().unwrap();
        assert!(auth.cookie_valid(&cookie));
        let new = rotate_token(dir.path()).unwrap();
        *auth.checked.lock().unwrap() = Instant::now() - RELOAD_EVERY;
        assert!(!auth.cookie_valid(&cookie));
        assert_eq!(auth.token().unwrap(), new);
    }

    #[test]
    fn failures_past_the_burst_are_refused_for_a_while_even_with_the_right_token() {
        let (_dir, auth) = auth(Mode::Token);
        let token = auth.token().unwrap();
        let seen = seen_from("10.0.0.9", false);
        let wrong = headers(&[("authorization", "Bearer 1234")]);
        for _ in 0..FAILURE_BURST {
            assert_eq!(auth.identify(&wrong, &seen).unwrap_err().status(), StatusCode::UNAUTHORIZED);
        }
        let limited = auth.identify(&wrong, &seen).unwrap_err();
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(limited.headers().contains_key(header::RETRY_AFTER));
        let right = headers(&[("authorization", &format!("Bearer {token}"))]);
        assert_eq!(auth.identify(&right, &seen).unwrap_err().status(), StatusCode::TOO_MANY_REQUESTS);
        // Another client is not affected.
        assert_eq!(auth.identify(&right, &seen_from("10.0.0.10", false)).unwrap(), Some(Identity::Token));
    }

    #[test]
    fn tailscale_identity_counts_only_from_a_trusted_proxy_and_for_listed_users() {
        let (_dir, auth) = auth(Mode::Tailscale { users: vec!["alice@example.com".into()] });
        let alice = headers(&[("tailscale-user-login", "alice@example.com")]);
        let bob = headers(&[("tailscale-user-login", "bob@example.com")]);
        let proxy = seen_from("127.0.0.1", true);
        assert_eq!(auth.identify(&alice, &proxy).unwrap(), Some(Identity::Tailscale("alice@example.com".into())));
        assert_eq!(auth.identify(&bob, &proxy).unwrap_err().status(), StatusCode::FORBIDDEN);
        assert_eq!(auth.identify(&alice, &seen_from("10.1.1.1", false)).unwrap(), None);
    }

    #[test]
    fn login_links_redirect_without_the_token_and_never_off_site() {
        let (_dir, auth) = auth(Mode::Token);
        let token = auth.token().unwrap();
        let seen = seen_from("127.0.0.1", false);
        let good: Uri = format!("/session/abc?tab=files&token={token}").parse().unwrap();
        let r = auth.login_link(&good, &token, &seen);
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[header::LOCATION], "/session/abc?tab=files");
        let cookie = r.headers()[header::SET_COOKIE].to_str().unwrap();
        assert!(
            cookie.starts_with("piface_auth=") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict")
        );
        assert!(!cookie.contains("Secure"), "plain http");
        let bad: Uri = "//evil.example?token=nope".parse().unwrap();
        let r = auth.login_link(&bad, "nope", &seen);
        assert_eq!(r.headers()[header::LOCATION], "/?login_error=invalid");
        assert!(!r.headers().contains_key(header::SET_COOKIE));
        let https = Seen { scheme: "https", ..seen };
        let r = auth.login_link(&"/?token=x".parse().unwrap(), &token, &https);
        assert!(r.headers()[header::SET_COOKIE].to_str().unwrap().ends_with("; Secure"));
    }

    #[test]
    fn public_routes_are_few() {
        assert!(is_public(&Method::GET, "/api/health"));
        assert!(is_public(&Method::POST, "/api/auth/login"));
        assert!(!is_public(&Method::POST, "/api/health"));
        assert!(!is_public(&Method::GET, "/api/sessions"));
        assert!(is_guarded("/ws/dashboard") && is_guarded("/api") && !is_guarded("/apix") && !is_guarded("/"));
        assert!(is_guarded("/metrics") && !is_guarded("/metricsx"));
    }
}
