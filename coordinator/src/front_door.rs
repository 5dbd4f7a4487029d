//! The front door: every HTTP request and WebSocket upgrade passes here before any handler.
//!
//! Piface hands whoever gets through a shell on every machine of the cluster, so three checks
//! run in this order, for `serve` and `coordinator` alike:
//!
//! 1. **Host allow-list** (DNS rebinding). A page whose name an attacker rebinds to 127.0.0.1
//!    is same-origin with Piface as far as the browser knows, but its requests carry the
//!    attacker's name in `Host`. Allowed: loopback names (`localhost`, `*.localhost`), IP
//!    literals (a browser only sends one when the user typed the address, so no rebinding can
//!    produce it), the machine's host name and `--allowed-host` names.
//! 2. **Origin** of requests that act (any method but GET/HEAD/OPTIONS) and of WebSocket
//!    upgrades: absent (not a browser), equal to the request's own origin, or listed with
//!    `--allowed-origin`. The request's own origin is `http://` + `Host`, or what a trusted
//!    proxy says in `X-Forwarded-Proto`/`X-Forwarded-Host`.
//! 3. **Login** (`auth.rs`) for `/api/*` and `/ws/*`, but for the few public routes.
//!
//! Every response leaves with the browser-hardening headers ([`harden`]).
//!
//! Forwarded headers (`X-Forwarded-*`, `Tailscale-User-*`) are believed only from
//! `--trusted-proxy` addresses (loopback by default: `tailscale serve` connects from there);
//! from anyone else they are ignored.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use crate::auth::Seen;
use crate::error::ApiError;
use crate::App;

/// Who may reach Piface, and through what.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `--allowed-host` names (lowercase, without a trailing dot).
    pub allowed_hosts: Vec<String>,
    /// This machine's host name, allowed like an `--allowed-host`.
    pub hostname: Option<String>,
    /// `--allowed-origin` origins, normalised (`scheme://host[:port]`, default port left out).
    pub allowed_origins: Vec<String>,
    /// `--trusted-proxy` networks: whose forwarded and identity headers count.
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            allowed_hosts: Vec::new(),
            hostname: None,
            allowed_origins: Vec::new(),
            trusted_proxies: vec!["127.0.0.0/8".parse().expect("valid"), "::1/128".parse().expect("valid")],
        }
    }
}

/// Reads `headers` (and the URI's authority, for HTTP/2-style requests) as sent by `peer`.
pub fn observe(policy: &Policy, headers: &HeaderMap, authority: Option<&str>, peer: Option<IpAddr>) -> Seen {
    let via_proxy = peer.is_some_and(|ip| policy.is_trusted(ip));
    let header_str = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    // A chain of proxies appends; the last entry is what our trusted proxy saw.
    let last = |v: &str| v.rsplit(',').next().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let forwarded_for =
        via_proxy.then(|| header_str("x-forwarded-for").and_then(last)).flatten().and_then(|s| parse_ip(&s));
    let proto = via_proxy.then(|| header_str("x-forwarded-proto").and_then(last)).flatten();
    let scheme = match proto.as_deref() {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    let host =
        headers.get(header::HOST).and_then(|h| h.to_str().ok()).or(authority).map(|h| h.trim().to_ascii_lowercase());
    let forwarded_host =
        via_proxy.then(|| header_str("x-forwarded-host").and_then(last)).flatten().map(|h| h.to_ascii_lowercase());
    Seen { peer, via_proxy, client: forwarded_for.or(peer), scheme, host, forwarded_host }
}

/// The origin this request was sent to: what a browser on the same page sends as `Origin`.
pub fn own_origin(seen: &Seen) -> Option<String> {
    let host = seen.forwarded_host.as_deref().or(seen.host.as_deref())?;
    normalise_origin(&format!("{}://{host}", seen.scheme))
}

impl Policy {
    /// Whether `ip` is a trusted proxy.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// Whether a `Host` value (`name[:port]`) may be served.
    pub fn host_allowed(&self, authority: &str) -> bool {
        let Some((host, _)) = split_host_port(authority) else { return false };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if parse_ip(&host).is_some() || host == "localhost" || host.ends_with(".localhost") {
            return true;
        }
        self.hostname.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(&host))
            || self.allowed_hosts.iter().any(|h| *h == host)
    }

    /// Checks the request's `Host` (and a trusted proxy's `X-Forwarded-Host`); the refusal
    /// names the flag that would allow it.
    pub fn check_host(&self, seen: &Seen) -> Result<(), ApiError> {
        for host in [seen.host.as_deref(), seen.forwarded_host.as_deref()].into_iter().flatten() {
            if !self.host_allowed(host) {
                let name = split_host_port(host).map_or(host, |(h, _)| h);
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "Host {name:?} is not allowed: Piface answers to loopback names, IP addresses, this \
                         machine's name and the names given with --allowed-host (start it with \
                         --allowed-host {name} if that name is yours)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether a browser's `Origin` may act on this request.
    pub fn origin_allowed(&self, origin: &str, seen: &Seen) -> bool {
        let Some(origin) = normalise_origin(origin) else { return false };
        own_origin(seen).is_some_and(|own| own == origin) || self.allowed_origins.contains(&origin)
    }
}

/// `scheme://host[:port]` in lowercase without a default port, or `None` when `s` is not an
/// http(s) origin (`null`, a path, garbage).
pub fn normalise_origin(s: &str) -> Option<String> {
    let (scheme, rest) = s.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return None;
    }
    let (host, port) = split_host_port(authority)?;
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    Some(match port {
        Some(p) if p != default => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// `name`, `name:port`, `[v6]`, `[v6]:port` → (host without brackets, port). `None` when the
/// port is not a number or the brackets do not close.
pub fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match authority.rsplit_once(':') {
        // More than one colon without brackets is not a valid authority.
        Some((host, _)) if host.contains(':') => None,
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((authority, None)),
    }
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// Whether a request can change something when a browser sends it on another site's behalf.
fn acts(req: &Request) -> bool {
    !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || req.headers().contains_key(header::UPGRADE)
}

/// The middleware in front of every route and the UI.
pub async fn guard(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let policy = &app.config.front_door;
    let seen = observe(policy, req.headers(), req.uri().authority().map(|a| a.as_str()), peer);
    let mut response = match admit(&app, &req, &seen) {
        Err(refusal) => refusal,
        Ok(identity) => {
            req.extensions_mut().insert(identity);
            req.extensions_mut().insert(seen);
            next.run(req).await
        }
    };
    harden(response.headers_mut());
    response
}

fn admit(app: &App, req: &Request, seen: &Seen) -> Result<crate::auth::Identity, Response> {
    let policy = &app.config.front_door;
    policy.check_host(seen).map_err(|e| {
        tracing::warn!(host = ?seen.host, forwarded_host = ?seen.forwarded_host, path = %req.uri().path(), "request for a host that is not allowed refused");
        // A person who typed the address sees a page that says what to do; clients get JSON.
        let wants_html = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
        match (wants_html, e.detail.as_str()) {
            (true, Some(detail)) => refusal_page(detail),
            _ => e.into_response(),
        }
    })?;
    if acts(req) {
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !policy.origin_allowed(origin, seen) {
                tracing::warn!(origin, own = ?own_origin(seen), path = %req.uri().path(), "cross-origin request refused");
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "Cross-origin request refused: origin {origin:?} is not this server's ({}); behind a \
                         proxy that changes the address, start Piface with --allowed-origin {origin}",
                        own_origin(seen).unwrap_or_else(|| "unknown".into())
                    ),
                )
                .into_response());
            }
        }
    }
    app.auth.admit(req, seen)
}

/// A minimal HTML page for a refused request, with `detail` escaped.
fn refusal_page(detail: &str) -> Response {
    let escaped = detail.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>Piface: not allowed</title></head><body \
         style=\"font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5\">\
         <h1>Not allowed</h1><p>{escaped}</p></body></html>"
    );
    (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// Browser hardening on every response: no framing, no referrer, no sniffing, and a Content
/// Security Policy that allows only the app's own scripts (and the shell's inline bootstrap, by
/// hash) and no remote sources at all. A handler that set a policy of its own keeps it (a raw
/// file from the project is served sandboxed, as an origin of its own).
pub fn harden(headers: &mut HeaderMap) {
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        let csp = HeaderValue::from_str(crate::frontend::content_security_policy())
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"));
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(policy: &Policy, headers: &[(&str, &str)], peer: &str) -> Seen {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        observe(policy, &h, None, Some(peer.parse().unwrap()))
    }

    #[test]
    fn hosts_allowed_by_default_are_loopback_names_ip_literals_and_the_host_name() {
        let policy = Policy { hostname: Some("box".into()), ..Policy::default() };
        for ok in [
            "127.0.0.1:7832",
            "localhost:7832",
            "LOCALHOST",
            "app.localhost:1",
            "[::1]:7832",
            "[::1]",
            "100.64.1.2:7832",
            "box:7832",
            "BOX.",
        ] {
            assert!(policy.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example:7832",
            "localhost.evil.example",
            "box.evil.example",
            "127.0.0.1.nip.io:7832",
            "127.0.0.1:notaport",
            "[::1",
            "::1:7832",
            "",
        ] {
            assert!(!policy.host_allowed(bad), "{bad}");
        }
        let policy = Policy { allowed_hosts: vec!["box.tail1234.ts.net".into()], ..Policy::default() };
        assert!(policy.host_allowed("Box.Tail1234.ts.net:443"));
        assert!(!policy.host_allowed("other.tail1234.ts.net"));
    }

    #[test]
    fn a_foreign_host_is_refused_with_the_flag_to_allow_it() {
        let policy = Policy::default();
        let s = seen(&policy, &[("host", "evil.example:7832")], "127.0.0.1");
        let err = policy.check_host(&s).unwrap_err();
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        assert!(err.detail.as_str().unwrap().contains("--allowed-host evil.example"), "{}", err.detail);
        // A trusted proxy's forwarded host must be allowed too.
        let s = seen(&policy, &[("host", "127.0.0.1:7832"), ("x-forwarded-host", "evil.example")], "127.0.0.1");
        assert!(policy.check_host(&s).is_err());
        // A browser gets a page saying the same.
        let page = refusal_page("Host \"a<b\" is not allowed");
        assert_eq!(page.status(), StatusCode::FORBIDDEN);
        assert_eq!(page.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        // From an untrusted peer the forwarded host is ignored (and so is not checked).
        let s = seen(&policy, &[("host", "10.1.2.3:7832"), ("x-forwarded-host", "evil.example")], "10.9.9.9");
        assert!(policy.check_host(&s).is_ok());
        assert_eq!(s.forwarded_host, None);
    }

    #[test]
    fn origins_must_match_the_request_or_be_listed() {
        let policy = Policy::default();
        let direct = seen(&policy, &[("host", "127.0.0.1:7832")], "127.0.0.1");
        assert!(policy.origin_allowed("http://127.0.0.1:7832", &direct));
        assert!(policy.origin_allowed("http://127.0.0.1:7832/", &direct));
        assert!(!policy.origin_allowed("https://127.0.0.1:7832", &direct), "scheme counts");
        assert!(!policy.origin_allowed("http://127.0.0.1:7833", &direct), "port counts");
        assert!(!policy.origin_allowed("http://evil.example:7832", &direct));
        assert!(!policy.origin_allowed("null", &direct));
        // tailscale serve: keeps Host, says https.
        let ts = seen(
            &policy,
            &[("host", "box.tail1234.ts.net"), ("x-forwarded-proto", "https"), ("x-forwarded-for", "100.64.0.7")],
            "127.0.0.1",
        );
        assert!(policy.origin_allowed("https://box.tail1234.ts.net", &ts));
        assert!(policy.origin_allowed("https://box.tail1234.ts.net:443", &ts));
        assert!(!policy.origin_allowed("http://box.tail1234.ts.net", &ts));
        assert_eq!(ts.client, Some("100.64.0.7".parse().unwrap()));
        // The same headers from an untrusted peer do not make it https.
        let spoof = seen(&policy, &[("host", "box.tail1234.ts.net"), ("x-forwarded-proto", "https")], "10.0.0.5");
        assert!(!policy.origin_allowed("https://box.tail1234.ts.net", &spoof));
        assert_eq!(spoof.client, Some("10.0.0.5".parse().unwrap()));
        // A proxy that rewrites Host: only --allowed-origin lets its pages act.
        let nginx = seen(&policy, &[("host", "127.0.0.1:7832")], "127.0.0.1");
        assert!(!policy.origin_allowed("https://piface.example", &nginx));
        let listed = Policy { allowed_origins: vec!["https://piface.example".into()], ..Policy::default() };
        assert!(listed.origin_allowed("https://PIFACE.example:443/", &nginx));
    }

    #[test]
    fn origins_normalise() {
        assert_eq!(normalise_origin("HTTP://Box:80").as_deref(), Some("http://box"));
        assert_eq!(normalise_origin("https://box:8443").as_deref(), Some("https://box:8443"));
        assert_eq!(normalise_origin("http://[::1]:7832").as_deref(), Some("http://[::1]:7832"));
        assert_eq!(normalise_origin("ftp://box"), None);
        assert_eq!(normalise_origin("http://user@box"), None);
        assert_eq!(normalise_origin("http://box/path"), None);
        assert_eq!(normalise_origin("null"), None);
    }

    #[test]
    fn trusted_proxies_include_mapped_loopback() {
        let policy = Policy::default();
        assert!(policy.is_trusted("127.0.0.1".parse().unwrap()));
        assert!(policy.is_trusted("::ffff:127.0.0.1".parse().unwrap()));
        assert!(policy.is_trusted("::1".parse().unwrap()));
        assert!(!policy.is_trusted("10.0.0.1".parse().unwrap()));
    }
}
