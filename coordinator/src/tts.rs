//! Text-to-speech: `POST /api/sessions/{id}/tts` and `GET /api/audio/tts/{cache_key}.mp3`.
//!
//! The MP3 of a text is content-addressed (the original's key: SHA-256 over the model name,
//! the output format and the normalised text) and kept in `<data dir>/tts-cache/`, so its URL
//! never changes meaning and browsers may cache it for a year. A miss is synthesised by a
//! TTS-capable agent (GPU first, then the least busy), once however many requests ask for the
//! same text at the same time; the cache is trimmed to its size limit by last use after each
//! new file.

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use piface_shared::protocol::{FromAgent, ToAgent};
use serde::Deserialize;
use serde_json::{json, Value};
use tower::ServiceExt;
use tracing::{info, warn};

use crate::agents::Service;
use crate::error::ApiError;
use crate::App;

/// Longest text, in characters, after normalisation (the original's limit).
pub const MAX_TEXT_CHARS: usize = 12_000;
/// Longest wait for a synthesis (one text at a time per worker).
const SYNTH_TIMEOUT: Duration = Duration::from_secs(600);
/// The output format in the cache key; a new encoding gets a new one, so old URLs keep their sound.
const OUTPUT_FORMAT: &str = "mp3-v1";
/// Largest request body: the longest text, escaped, with room to spare.
const MAX_BODY: usize = 1 << 20;

/// The cache and the syntheses under way.
pub struct TtsCache {
    dir: PathBuf,
    max_bytes: u64,
    /// Syntheses under way, by key: later requests for the same key wait for the first.
    inflight: Mutex<HashMap<String, Flight>>,
}

/// One synthesis under way, shared by the requests waiting for it.
type Flight = Arc<tokio::sync::OnceCell<Result<(), ApiError>>>;

impl TtsCache {
    /// A cache in `dir` trimmed to `max_bytes`.
    pub fn new(dir: PathBuf, max_bytes: u64) -> TtsCache {
        TtsCache { dir, max_bytes, inflight: Mutex::default() }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.mp3"))
    }
}

/// The routes.
pub fn routes() -> crate::Routes {
    vec![
        ("/api/sessions/{id}/tts", crate::limits::body_limit(axum::routing::post(speak), MAX_BODY)),
        ("/api/audio/tts/{file}", axum::routing::get(audio)),
    ]
}

#[derive(Deserialize)]
pub struct SpeakBody {
    text: String,
}

/// `\r\n` → `\n`, then trimmed (the original's normalisation).
pub fn normalise(text: &str) -> String {
    text.replace("\r\n", "\n").trim().to_string()
}

/// The original's cache key: lowercase hex SHA-256 of Python's
/// `json.dumps({"model_name", "output_format", "text"}, sort_keys=True, separators=(",", ":"))`
/// (ASCII only: everything past `~` escaped as `\uXXXX`).
pub fn cache_key(model_name: &str, text: &str) -> String {
    let doc = format!(
        r#"{{"model_name":{},"output_format":{},"text":{}}}"#,
        ascii_json(model_name),
        ascii_json(OUTPUT_FORMAT),
        ascii_json(text)
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, doc.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A JSON string as Python's `ensure_ascii` writes it.
fn ascii_json(s: &str) -> String {
    let json = serde_json::to_string(s).expect("a string serialises");
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if (c as u32) < 0x7f {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

fn not_configured() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Text-to-speech is not configured on this server: start an agent (or `piface serve`) with --tts \
         (it fetches the voice, --tts-model, default kakao-enterprise/vits-ljs, into the Hugging Face cache; \
         espeak-ng and ffmpeg must be installed there)",
    )
}

/// `POST /api/sessions/{id}/tts` `{"text"}` → `{"cache_key", "audio_url", "media_type", "cached"}`.
async fn speak(
    State(app): State<Arc<App>>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<SpeakBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id?;
    app.registry.get(&id).ok_or_else(ApiError::session_not_found)?;
    // The input first, then whether anyone can speak it: a bad request is a bad request
    // whatever the cluster looks like (the original answered 503 before looking at the text).
    let Json(body) = body?;
    let text = normalise(&body.text);
    if text.is_empty() {
        return Err(ApiError::bad_request("TTS text is empty"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("TTS text is too long. Max {MAX_TEXT_CHARS} characters."),
        ));
    }
    let Some(worker) = app.agents.worker(Service::Tts) else { return Err(not_configured()) };
    let model = app.agents.service_model(&worker.name, Service::Tts).unwrap_or_default();
    let key = cache_key(&model, &text);
    let cache = &app.tts;
    let path = cache.path(&key);
    let mut cached = is_file(&path).await;
    if cached {
        touch(&path);
    } else {
        let cell = cache.inflight.lock().unwrap().entry(key.clone()).or_default().clone();
        let mut ran = false;
        let result = cell
            .get_or_init(|| {
                ran = true;
                synthesise(&app, worker, &key, text)
            })
            .await
            .clone();
        if ran {
            cache.inflight.lock().unwrap().remove(&key);
        } else {
            // Another request made it: to this one it is a cache hit.
            cached = true;
        }
        result?;
    }
    Ok(Json(json!({
        "cache_key": key,
        "audio_url": format!("/api/audio/tts/{key}.mp3"),
        "media_type": "audio/mpeg",
        "cached": cached,
    })))
}

/// Has `worker` speak `text` and stores the MP3 under `key`.
async fn synthesise(app: &App, worker: crate::agents::Worker, key: &str, text: String) -> Result<(), ApiError> {
    let started = std::time::Instant::now();
    let reply = worker.handle.request(|req| ToAgent::Synthesize { req, text, trace: None }, SYNTH_TIMEOUT).await;
    let ok = matches!(reply, Ok(FromAgent::Synthesized { result: Ok(_), .. }));
    app.metrics.speech_job(crate::metrics::Job::Synthesize, ok, started.elapsed());
    let reply = reply
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("TTS worker {}: {e}", worker.name)))?;
    let FromAgent::Synthesized { result, .. } = reply else {
        return Err(ApiError::new(StatusCode::BAD_GATEWAY, "unexpected reply from the TTS worker"));
    };
    let (mp3, seconds) = result
        .map_err(|e| ApiError::new(StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_GATEWAY), e.detail))?;
    let cache = &app.tts;
    let path = cache.path(key);
    let write = async {
        crate::private::dir(&cache.dir).map_err(std::io::Error::other)?;
        let tmp = cache.dir.join(format!(".{key}.{}.part", std::process::id()));
        let _ = tokio::fs::remove_file(&tmp).await;
        // Private, and never through a link left in its place.
        let mut file = tokio::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, &mp3).await?;
        file.sync_all().await?;
        tokio::fs::rename(&tmp, &path).await
    };
    write.await.map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("storing the audio: {e}")))?;
    info!(
        worker = worker.name,
        seconds,
        bytes = mp3.len(),
        ms = started.elapsed().as_millis() as u64,
        "speech synthesised"
    );
    let (dir, max) = (cache.dir.clone(), cache.max_bytes);
    let _ = tokio::task::spawn_blocking(move || trim(&dir, max)).await;
    Ok(())
}

/// Keeps the most recently used files within `max` bytes (the newest always stays).
pub fn trim(dir: &FsPath, max: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "mp3"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), e.path()))
        })
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    let mut kept = 0u64;
    for (i, (_, len, path)) in files.iter().enumerate() {
        kept += len;
        if i > 0 && kept > max {
            if let Err(e) = std::fs::remove_file(path) {
                warn!(path = %path.display(), "could not trim the TTS cache: {e}");
            }
        }
    }
}

async fn is_file(path: &FsPath) -> bool {
    tokio::fs::metadata(path).await.is_ok_and(|m| m.is_file() && m.len() > 0)
}

/// Marks a file as just used (the cache is trimmed by last use).
fn touch(path: &FsPath) {
    if let Ok(f) = std::fs::File::options().write(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

fn audio_not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "TTS audio not found").into_response()
}

/// `GET /api/audio/tts/{key}.mp3`: the file, immutable, with byte ranges (seeking) and an ETag.
async fn audio(State(app): State<Arc<App>>, file: Result<Path<String>, PathRejection>, req: Request) -> Response {
    let Ok(Path(file)) = file else { return audio_not_found() };
    let key = file.strip_suffix(".mp3").unwrap_or_default();
    let path = app.tts.path(key);
    if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return audio_not_found();
    }
    if !is_file(&path).await {
        // Nothing to serve; say why: no TTS at all, or no such audio.
        return if app.agents.known(Service::Tts) { audio_not_found() } else { not_configured().into_response() };
    }
    touch(&path);
    let etag = format!("\"{key}\"");
    if req.headers().get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        immutable(&mut r, &etag);
        return r;
    }
    let mut response = match tower_http::services::ServeFile::new(&path).oneshot(req).await {
        Ok(r) => r.into_response(),
        Err(e) => return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    if response.status().is_success() {
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/mpeg"));
        immutable(&mut response, &etag);
    }
    response
}

fn immutable(response: &mut Response, etag: &str) {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_originals() {
        // Python: hashlib.sha256(json.dumps({"model_name": "tts_models/en/ljspeech/vits",
        //   "output_format": "mp3-v1", "text": "Hello world."}, sort_keys=True,
        //   separators=(",", ":")).encode()).hexdigest()
        assert_eq!(
            format!(
                r#"{{"model_name":{},"output_format":{},"text":{}}}"#,
                ascii_json("m"),
                ascii_json(OUTPUT_FORMAT),
                ascii_json("é \u{1F600} \u{7f} \"q\"\n")
            ),
            r#"{"model_name":"m","output_format":"mp3-v1","text":"\u00e9 \ud83d\ude00 \u007f \"q\"\n"}"#
        );
        // Computed with Python 3 as above.
        assert_eq!(
            cache_key("tts_models/en/ljspeech/vits", "Hello world. Ça va? \u{1F600}"),
            "41fa8977928273f4a3da1951680b281f1ad6c97eefe68751cdee2aa93499c4e8"
        );
        let key = cache_key("tts_models/en/ljspeech/vits", "Hello world.");
        assert_eq!(key.len(), 64);
        assert_ne!(key, cache_key("tts_models/en/ljspeech/vits", "Hello world!"));
        assert_eq!(normalise("  a\r\nb \n"), "a\nb");
    }

    #[test]
    fn trimming_keeps_the_most_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        for (i, name) in ["old", "mid", "new"].iter().enumerate() {
            let p = dir.path().join(format!("{name}.mp3"));
            std::fs::write(&p, vec![0u8; 100]).unwrap();
            let f = std::fs::File::options().write(true).open(&p).unwrap();
            f.set_modified(now - Duration::from_secs(100 - 10 * i as u64)).unwrap();
        }
        trim(dir.path(), 250);
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["mid.mp3", "new.mp3"]);
        trim(dir.path(), 10);
        assert!(dir.path().join("new.mp3").exists(), "the newest always stays");
    }
}
