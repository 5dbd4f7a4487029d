//! Serving the web UI: the SvelteKit build (`frontend/build/`) embedded into the binary, so a
//! deployment is one file.
//!
//! Hashed assets under `/_app/immutable/` are cached for a year; everything else the build holds
//! (favicon, `_app/version.json`) is revalidated. Every other path that is not API gets the SPA's
//! shell, `200.html`, uncached, and the client router takes over. Compressed variants written by
//! the build (`.br`, `.gz`) are served when the browser accepts them.
//!
//! Not here: any API. Unlike the original, unknown `/api/…` and `/ws/…` paths answer 404 JSON
//! instead of the SPA page with 200, and a missing asset under `/_app/` is a 404, not HTML that
//! the browser would try to run as a script.
//!
//! When the UI was not built before the coordinator was compiled, the binary still builds and
//! serves a page that says how to build it.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

use crate::error::ApiError;

/// The UI build, read at compile time. `allow_missing` lets the coordinator compile before (or
/// without) `npm run build`.
#[derive(Embed)]
#[folder = "../frontend/build/"]
#[allow_missing = true]
struct Build;

// `npm run build` touches this file. Including it makes cargo recompile this crate after every UI
// build, which re-runs the `Embed` derive above; cargo cannot see new files in a folder by itself.
const _: &str = include_str!("../../frontend/embed-stamp");

/// The SPA shell (adapter-static's fallback page).
const SHELL: &str = "200.html";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";

const NOT_BUILT: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>piface: web UI not built</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5}
code,pre{background:#f1f2f6;border-radius:4px;padding:.1rem .3rem}pre{padding:.8rem;overflow-x:auto}</style></head>
<body><h1>The web UI was not built</h1>
<p>This <code>piface</code> binary was compiled without the web UI, so only the API is available
(<a href="/api/health">/api/health</a>, <a href="/api/sessions">/api/sessions</a>).</p>
<p>Build the UI, then rebuild Piface (it embeds the UI at compile time):</p>
<pre>npm --prefix frontend ci &amp;&amp; npm --prefix frontend run build
cargo build --release --bin piface</pre>
<p><code>./scripts/serve.sh</code> does both.</p></body></html>
"#;

/// The Content-Security-Policy of every response: the app's own files only, no remote source
/// of any kind, no framing. The SPA shell bootstraps with an inline script, allowed by its hash
/// (computed from the embedded shell, so it follows every UI build). Styles may be inline:
/// Svelte, Mermaid and MathJax set them at run time.
pub fn content_security_policy() -> &'static str {
    static CSP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CSP.get_or_init(|| {
        let shell = Build::get(SHELL).map(|f| String::from_utf8_lossy(&f.data).into_owned()).unwrap_or_default();
        let hashes: String = inline_scripts(&shell)
            .iter()
            .map(|s| {
                use base64::Engine;
                let digest = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
                format!(" 'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
            })
            .collect();
        format!(
            "default-src 'self'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data: blob:; media-src 'self' blob:; font-src 'self' data:; connect-src 'self'; \
             worker-src 'self' blob:; manifest-src 'self'; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'"
        )
    })
}

/// The bodies of the `<script>` elements without `src` in an HTML page.
fn inline_scripts(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..];
        let Some(open_end) = after.find('>') else { break };
        let tag = &after[..open_end];
        let body_start = open_end + 1;
        let Some(close) = after[body_start..].find("</script>") else { break };
        if !tag.contains(" src=") {
            out.push(&after[body_start..body_start + close]);
        }
        rest = &after[body_start + close + "</script>".len()..];
    }
    out
}

/// Whether the binary embeds a UI build.
pub fn is_built() -> bool {
    Build::get(SHELL).is_some()
}

/// The router's fallback: assets, the SPA shell, or 404 JSON for unknown API paths.
pub async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") || path == "/ws" || path.starts_with("/ws/") {
        return ApiError::new(StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed").into_response();
    }
    let rel = path.trim_start_matches('/');
    // The shell is only ever served as the fallback, so that it always carries `no-cache`.
    if !rel.is_empty() && rel != SHELL && !rel.ends_with(".br") && !rel.ends_with(".gz") {
        let cache = if rel.starts_with("_app/immutable/") { IMMUTABLE } else { NO_CACHE };
        if let Some(response) = asset(rel, cache, &headers) {
            return response;
        }
    }
    if rel.starts_with("_app/") {
        return (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, NO_CACHE)], "Not Found").into_response();
    }
    asset(SHELL, NO_CACHE, &headers).unwrap_or_else(|| {
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, NO_CACHE)], NOT_BUILT)
            .into_response()
    })
}

/// `rel` from the build, in the best encoding the client accepts; `None` when the build lacks it.
fn asset(rel: &str, cache: &'static str, headers: &HeaderMap) -> Option<Response> {
    let plain = Build::get(rel)?;
    let etag = format!("\"{}\"", hex(&plain.metadata.sha256_hash()[..16]));
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, content_type(rel))
        .header(header::CACHE_CONTROL, cache)
        .header(header::VARY, "Accept-Encoding")
        .header(header::ETAG, &etag);
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| etag_matches(v, &etag)) {
        return builder.status(StatusCode::NOT_MODIFIED).body(Body::empty()).ok();
    }
    let accepted = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
    for (encoding, suffix) in [("br", ".br"), ("gzip", ".gz")] {
        if !accepts(accepted, encoding) {
            continue;
        }
        if let Some(file) = Build::get(&format!("{rel}{suffix}")) {
            builder = builder.header(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
            return builder.body(Body::from(file.data)).ok();
        }
    }
    builder.body(Body::from(plain.data)).ok()
}

/// Whether an `Accept-Encoding` value allows `encoding` (a `q=0` entry refuses it).
fn accepts(header_value: &str, encoding: &str) -> bool {
    header_value.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let name = parts.next().unwrap_or("");
        let refused = parts.any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0));
        name.eq_ignore_ascii_case(encoding) && !refused
    })
}

fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').any(|t| {
        let t = t.trim();
        t == "*" || t.trim_start_matches("W/") == etag
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Content-Type` of a build file, by extension; the build holds few kinds of files.
fn content_type(rel: &str) -> &'static str {
    let ext = rel.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    #[test]
    fn inline_scripts_are_found_and_external_ones_skipped() {
        let html = r#"<head><script type="module" src="/_app/a.js"></script><script>
            boot(1)
        </script></head><body><script>x()</script></body>"#;
        assert_eq!(inline_scripts(html), vec!["\n            boot(1)\n        ", "x()"]);
        assert!(inline_scripts("<script>unclosed").is_empty());
    }

    #[test]
    fn the_policy_allows_no_remote_source() {
        let csp = content_security_policy();
        for part in ["default-src 'self'", "frame-ancestors 'none'", "img-src 'self' data: blob:", "object-src 'none'"]
        {
            assert!(csp.contains(part), "{part} in {csp}");
        }
        assert!(
            !csp.contains("unsafe-eval") && !csp.contains("http:") && !csp.contains("https:") && !csp.contains('*')
        );
        if is_built() {
            assert!(csp.contains("'sha256-"), "the shell's bootstrap script is allowed by hash: {csp}");
        }
    }

    async fn get(path: &str, headers: &[(header::HeaderName, &str)]) -> Response {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        fallback(Method::GET, path.parse().unwrap(), map).await
    }

    fn header_of(r: &Response, name: header::HeaderName) -> &str {
        r.headers().get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
    }

    #[tokio::test]
    async fn api_and_ws_paths_are_404_json() {
        for path in ["/api", "/api/nope", "/ws/sessions/x/y", "/ws"] {
            let r = get(path, &[]).await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
            assert!(header_of(&r, header::CONTENT_TYPE).starts_with("application/json"), "{path}");
        }
    }

    #[tokio::test]
    async fn client_routes_get_the_uncached_shell() {
        for path in ["/", "/session/abc?tab=files", "/whatever/deep", "/200.html"] {
            let r = get(path, &[]).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(header_of(&r, header::CONTENT_TYPE), "text/html; charset=utf-8", "{path}");
            assert_eq!(header_of(&r, header::CACHE_CONTROL), NO_CACHE, "{path}");
        }
        let body = to_bytes(get("/", &[]).await.into_body(), usize::MAX).await.unwrap();
        let body = String::from_utf8_lossy(&body);
        if is_built() {
            assert!(body.contains("/_app/immutable/"), "the shell loads the hashed entry points");
        } else {
            assert!(body.contains("npm --prefix frontend ci &amp;&amp; npm --prefix frontend run build"));
        }
    }

    #[tokio::test]
    async fn missing_assets_and_other_methods_are_errors() {
        let r = get("/_app/immutable/entry/missing.js", &[]).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = fallback(Method::POST, "/session/x".parse().unwrap(), HeaderMap::new()).await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn hashed_assets_are_immutable_and_compressed_when_accepted() {
        let Some(js) = Build::iter().find(|f| f.starts_with("_app/immutable/") && f.ends_with(".js")) else {
            return; // UI not built: nothing to serve.
        };
        let path = format!("/{js}");
        let plain = get(&path, &[]).await;
        assert_eq!(plain.status(), StatusCode::OK);
        assert_eq!(header_of(&plain, header::CACHE_CONTROL), IMMUTABLE);
        assert_eq!(header_of(&plain, header::CONTENT_TYPE), "text/javascript; charset=utf-8");
        assert_eq!(header_of(&plain, header::CONTENT_ENCODING), "");
        let etag = header_of(&plain, header::ETAG).to_string();

        let gz = get(&path, &[(header::ACCEPT_ENCODING, "gzip, deflate")]).await;
        if Build::get(&format!("{js}.gz")).is_some() {
            assert_eq!(header_of(&gz, header::CONTENT_ENCODING), "gzip");
        }
        let br = get(&path, &[(header::ACCEPT_ENCODING, "gzip;q=1, br")]).await;
        if Build::get(&format!("{js}.br")).is_some() {
            assert_eq!(header_of(&br, header::CONTENT_ENCODING), "br");
        }
        let cached = get(&path, &[(header::IF_NONE_MATCH, &etag)]).await;
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn accept_encoding_parsing() {
        assert!(accepts("gzip, deflate, br", "br"));
        assert!(accepts("GZIP;q=0.5", "gzip"));
        assert!(!accepts("gzip;q=0, br", "gzip"));
        assert!(!accepts("", "gzip"));
        assert!(!accepts("gzipx", "gzip"));
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("_app/immutable/a.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
