//! Host-tool endpoints: files, git, workspace config, direnv, uploads and directory removal.
//! The work happens on the agent that holds the files (the session's, or the one a request
//! names with `agent`); these handlers validate, route and translate.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use base64::Engine;
use bytes::Bytes;
use piface_shared::protocol::{FromAgent, ToAgent, ToolCall};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::agent_link::{tool_reply, AgentHandle, LinkError};
use crate::error::ApiError;
use crate::store::UploadRecord;
use crate::App;

type AppState = State<Arc<App>>;
type ApiResult<T> = Result<T, ApiError>;

/// Longest wait for a tool's answer (git's own commands stop after 8 s each).
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest file `fs/raw` serves.
pub const RAW_MAX: u64 = 8 * 1024 * 1024;
/// Files per upload request.
const MAX_FILES: usize = 8;
/// Bytes per upload message to the agent.
const UPLOAD_CHUNK: usize = 256 * 1024;

/// The host-tool routes.
pub fn routes(config: &crate::Config) -> crate::Routes {
    use crate::limits::body_limit;
    let limit = |m| body_limit(m, config.max_body);
    vec![
        ("/api/fs/list", limit(get(fs_list))),
        ("/api/fs/complete", limit(get(fs_complete))),
        ("/api/fs/file", limit(get(fs_file))),
        ("/api/fs/raw", limit(get(fs_raw))),
        ("/api/sessions/{id}/git/status", limit(get(git_status))),
        ("/api/sessions/{id}/git/diff", limit(get(git_diff))),
        ("/api/workspace/config", limit(get(workspace_get).put(workspace_put))),
        ("/api/workspace/trust", limit(get(workspace_trust_get).post(workspace_trust_set))),
        ("/api/direnv/allow", limit(post(direnv_allow))),
        ("/api/directories/remove", limit(post(directories_remove))),
        ("/api/sessions/{id}/uploads", body_limit(post(upload), upload_body(config.max_upload))),
    ]
}

/// Largest upload request: a JSON upload carries up to [`MAX_FILES`] base64 files whole (4/3 of
/// their size), a multipart one streams them; both are cut past this.
fn upload_body(max_upload: u64) -> usize {
    usize::try_from(max_upload).unwrap_or(usize::MAX).saturating_mul(MAX_FILES).saturating_mul(4) / 3 + (1 << 20)
}

/// The agent a request names, or the default one.
fn pick_agent(app: &App, name: Option<&str>) -> ApiResult<(String, Arc<AgentHandle>)> {
    let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => app.agents.default_name().map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e))?,
    };
    match app.agents.get(&name) {
        Some(h) => Ok((name, h)),
        None if app.agents.list().iter().any(|a| a.name == name) => {
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("Agent {name} is not connected")))
        }
        None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("Agent not found: {name}"))),
    }
}

fn link_error(e: LinkError) -> ApiError {
    match e {
        LinkError::Disconnected => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        LinkError::Timeout(_) => ApiError::new(StatusCode::GATEWAY_TIMEOUT, e.to_string()),
    }
}

/// Runs `call` on `agent`; the JSON it answers.
async fn call_tool(agent: &AgentHandle, call: ToolCall) -> ApiResult<Value> {
    tool_reply(agent.request(|req| ToAgent::Tool { req, call, trace: None }, TOOL_TIMEOUT).await.map_err(link_error)?)
}

fn query_error(e: QueryRejection) -> ApiError {
    ApiError::validation(e.body_text())
}

#[derive(Deserialize)]
struct PathQuery {
    path: String,
    agent: Option<String>,
}

async fn fs_list(State(app): AppState, q: Result<Query<PathQuery>, QueryRejection>) -> ApiResult<Json<Value>> {
    let Query(q) = q.map_err(query_error)?;
    let (_, agent) = pick_agent(&app, q.agent.as_deref())?;
    call_tool(&agent, ToolCall::FsList { path: q.path }).await.map(Json)
}

#[derive(Deserialize)]
struct PrefixQuery {
    prefix: String,
    agent: Option<String>,
}

async fn fs_complete(State(app): AppState, q: Result<Query<PrefixQuery>, QueryRejection>) -> ApiResult<Json<Value>> {
    let Query(q) = q.map_err(query_error)?;
    let (_, agent) = pick_agent(&app, q.agent.as_deref())?;
    call_tool(&agent, ToolCall::FsComplete { prefix: q.prefix }).await.map(Json)
}

async fn fs_file(State(app): AppState, q: Result<Query<PathQuery>, QueryRejection>) -> ApiResult<Json<Value>> {
    let Query(q) = q.map_err(query_error)?;
    let named = q.agent.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_string);
    let (_, agent) = pick_agent(&app, named.as_deref())?;
    let mut body = call_tool(&agent, ToolCall::FsFile { path: q.path }).await?;
    // The raw URL must reach the same agent.
    if let (Some(name), Some(url)) = (named, body["raw_url"].as_str()) {
        let encoded = percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC);
        body["raw_url"] = Value::String(format!("{url}&agent={encoded}"));
    }
    Ok(Json(body))
}

/// `fs/raw`: the file's bytes streamed from its agent as they arrive over QUIC. Served with a
/// sandbox CSP so an HTML file (or an SVG) cannot script the Piface origin, even when opened
/// directly rather than in the UI's sandboxed iframe.
async fn fs_raw(State(app): AppState, q: Result<Query<PathQuery>, QueryRejection>) -> ApiResult<Response> {
    let Query(q) = q.map_err(query_error)?;
    let (_, agent) = pick_agent(&app, q.agent.as_deref())?;
    let mut rx = agent
        .request_stream(|req| ToAgent::ReadFile { req, path: q.path, max: RAW_MAX, trace: None })
        .await
        .map_err(link_error)?;
    let head = tokio::time::timeout(TOOL_TIMEOUT, rx.recv())
        .await
        .map_err(|_| link_error(LinkError::Timeout(TOOL_TIMEOUT)))?
        .ok_or_else(|| link_error(LinkError::Disconnected))?;
    let meta = match head {
        FromAgent::FileHead { result: Ok(meta), .. } => meta,
        FromAgent::FileHead { result: Err(e), .. } => {
            return Err(ApiError::new(StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_GATEWAY), e.detail))
        }
        other => return Err(ApiError::new(StatusCode::BAD_GATEWAY, format!("unexpected agent reply: {other:?}"))),
    };
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Some(FromAgent::FileChunk { data, .. }) => Some((Ok(data), rx)),
            Some(FromAgent::FileEnd { error: None, .. }) => None,
            Some(FromAgent::FileEnd { error: Some(e), .. }) => Some((Err(std::io::Error::other(e)), rx)),
            Some(other) => Some((Err(std::io::Error::other(format!("unexpected agent reply: {other:?}"))), rx)),
            // The agent went away mid-file: the response ends short of its length, which the
            // client sees as an error.
            None => Some((Err(std::io::Error::other("the agent went away")), rx)),
        }
    });
    let mut response = Response::new(Body::from_stream(body));
    let h = response.headers_mut();
    let mime = HeaderValue::from_str(&meta.mime_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, mime);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
    if let Some(secs) = meta.modified {
        let at = std::time::UNIX_EPOCH + Duration::from_secs(secs);
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(at)) {
            h.insert(header::LAST_MODIFIED, v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!("\"{:x}-{:x}\"", secs, meta.size)) {
            h.insert(header::ETAG, v);
        }
    }
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox allow-scripts"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// The session's record and its agent.
fn session_agent(app: &App, id: &str) -> ApiResult<(crate::record::SessionRecord, Arc<AgentHandle>)> {
    let record = app.registry.get(id).ok_or_else(ApiError::session_not_found)?;
    let agent = app.agent_for(&record)?;
    Ok((record, agent))
}

async fn git_status(State(app): AppState, id: Result<Path<String>, PathRejection>) -> ApiResult<Json<Value>> {
    let Path(id) = id?;
    let (record, agent) = session_agent(&app, &id)?;
    call_tool(&agent, ToolCall::GitStatus { dir: record.effective_dir().to_string() }).await.map(Json)
}

#[derive(Deserialize)]
struct DiffQuery {
    path: Option<String>,
    staged: Option<String>,
}

/// A query boolean in FastAPI's spellings.
fn query_bool(v: Option<&str>, name: &str) -> ApiResult<bool> {
    match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None => Ok(false),
        Some("true" | "1" | "yes" | "on" | "t" | "y") => Ok(true),
        Some("false" | "0" | "no" | "off" | "f" | "n") => Ok(false),
        Some(other) => Err(ApiError::validation(format!("{name}: {other:?} is not a valid boolean"))),
    }
}

async fn git_diff(
    State(app): AppState,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<DiffQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Path(id) = id?;
    let Query(q) = q.map_err(query_error)?;
    let staged = query_bool(q.staged.as_deref(), "staged")?;
    let (record, agent) = session_agent(&app, &id)?;
    let call = ToolCall::GitDiff { dir: record.effective_dir().to_string(), path: q.path, staged };
    call_tool(&agent, call).await.map(Json)
}

async fn workspace_get(State(app): AppState, q: Result<Query<PathQuery>, QueryRejection>) -> ApiResult<Json<Value>> {
    let Query(q) = q.map_err(query_error)?;
    let (_, agent) = pick_agent(&app, q.agent.as_deref())?;
    call_tool(&agent, ToolCall::WorkspaceGet { path: q.path }).await.map(Json)
}

async fn workspace_put(State(app): AppState, body: Result<Json<Value>, JsonRejection>) -> ApiResult<Json<Value>> {
    let Json(body) = body?;
    let path = match body.get("path") {
        Some(Value::String(p)) if !p.trim().is_empty() => p.clone(),
        _ => return Err(ApiError::bad_request("path is required")),
    };
    let config = match body.get("config") {
        Some(Value::Object(c)) if !c.is_empty() => Value::Object(c.clone()),
        _ => return Err(ApiError::bad_request("config is required")),
    };
    let (_, agent) = pick_agent(&app, body.get("agent").and_then(Value::as_str))?;
    call_tool(&agent, ToolCall::WorkspacePut { path, config: config.to_string() }).await.map(Json)
}

/// `GET /api/workspace/trust?path=…[&agent=…]`: what the project's workspace file would run,
/// the SHA-256 of its bytes and whether that content is trusted (see the agent's `trust.rs`).
async fn workspace_trust_get(
    State(app): AppState,
    q: Result<Query<PathQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q.map_err(query_error)?;
    let (_, agent) = pick_agent(&app, q.agent.as_deref())?;
    call_tool(&agent, ToolCall::WorkspaceTrustGet { path: q.path }).await.map(Json)
}

#[derive(Deserialize)]
struct TrustBody {
    path: String,
    /// The hash the user reviewed: a file changed since is not trusted blindly (409).
    sha256: String,
    agent: Option<String>,
}

/// `POST /api/workspace/trust` `{"path", "sha256", "agent"?}`: trusts that exact content.
async fn workspace_trust_set(
    State(app): AppState,
    body: Result<Json<TrustBody>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(body) = body?;
    let (_, agent) = pick_agent(&app, body.agent.as_deref())?;
    call_tool(&agent, ToolCall::WorkspaceTrustSet { path: body.path, sha256: body.sha256 }).await.map(Json)
}

/// Why the terminal of a session in `project_dir` may not open: its workspace file has a
/// `[launch]` for the terminal whose content is not trusted. `None` when it may (or when the
/// agent cannot say: the agent checks again itself).
pub(crate) async fn terminal_refusal(agent: &AgentHandle, project_dir: &str) -> Option<String> {
    let info = call_tool(agent, ToolCall::WorkspaceTrustGet { path: project_dir.to_string() }).await.ok()?;
    let for_pty = info["commands"]
        .as_array()?
        .iter()
        .any(|c| c["section"] == "launch" && c["apply_to"].as_array().is_some_and(|a| a.iter().any(|t| t == "pty")));
    (for_pty && info["trusted"] != true).then(|| {
        format!(
            "Workspace not trusted: {} has a [launch] for the terminal; review and trust it",
            info["config_path"].as_str().unwrap_or(project_dir)
        )
    })
}

#[derive(Deserialize)]
struct DirenvBody {
    working_dir: String,
    agent: Option<String>,
}

async fn direnv_allow(State(app): AppState, body: Result<Json<DirenvBody>, JsonRejection>) -> ApiResult<Json<Value>> {
    let Json(body) = body?;
    let (_, agent) = pick_agent(&app, body.agent.as_deref())?;
    call_tool(&agent, ToolCall::DirenvAllow { dir: body.working_dir }).await.map(Json)
}

#[derive(Deserialize)]
struct RemoveBody {
    path: String,
    /// Ours: only that agent's records (the same path on another machine is another directory).
    agent: Option<String>,
}

/// `POST /api/directories/remove`: deletes the records of every session of a directory
/// (stopping live ones) and the upload blobs nobody references any more.
async fn directories_remove(
    State(app): AppState,
    body: Result<Json<RemoveBody>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(body) = body?;
    let doomed: Vec<_> = app
        .registry
        .list()
        .into_iter()
        .filter(|r| r.project_dir.as_deref().unwrap_or(&r.working_dir) == body.path || r.working_dir == body.path)
        .filter(|r| body.agent.as_deref().is_none_or(|a| a == r.agent))
        .collect();
    for record in doomed {
        if app.registry.live_hub(&record.piface_id).is_some() {
            if let Err(e) = crate::sessions::kill(&app, &record.piface_id).await {
                tracing::warn!(session_id = %record.piface_id, "remove: kill failed: {:?}", e.detail);
            }
        }
        if !app.sessions.remove(&record.piface_id).await {
            tracing::warn!(session_id = %record.piface_id, "remove: the session went live again; kept");
            continue;
        }
        app.terminals.remove(&record.piface_id);
    }
    collect_uploads(&app).await;
    Ok(Json(json!({ "success": true, "path": body.path })))
}

/// Deletes the blobs of uploads no session references, then their records. Called after
/// records go and at start-up (a crash between the two steps leaves records to finish).
pub async fn collect_uploads(app: &Arc<App>) {
    let orphans = app.registry.orphan_uploads();
    if orphans.is_empty() {
        return;
    }
    // Blobs live on the agent of a session that referenced them: find it by the blob's path,
    // which lies in that session's pi directory. Try every connected agent; the agent only
    // deletes files in upload stores.
    let agents: Vec<_> = app.agents.list().into_iter().filter_map(|a| app.agents.get(&a.name)).collect();
    for upload in orphans {
        // Forget the record once the blob is deleted, or once every agent says it has none.
        let mut forget = !agents.is_empty();
        for agent in &agents {
            let paths = vec![upload.path.clone()];
            match call_tool(agent, ToolCall::FilesExist { paths: paths.clone() }).await {
                Ok(v) if v["missing"].as_array().is_some_and(Vec::is_empty) => {
                    forget = call_tool(agent, ToolCall::DeleteFiles { paths }).await.is_ok();
                    break;
                }
                Ok(v) if v["missing"].as_array().is_some_and(|m| m.len() == 1) => {}
                _ => forget = false, // an agent that cannot say may hold it
            }
        }
        if forget {
            app.sessions.forget_upload(&upload.upload_id);
        }
    }
}

/// A file name reduced to a safe basename (`file` when nothing is left).
fn basename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if base.is_empty() || base == "." || base == ".." {
        "file".into()
    } else {
        base.replace('\0', "")
    }
}

struct Target {
    agent: Arc<AgentHandle>,
    store_dir: String,
}

/// Streams one file's bytes to the agent and waits for it to be stored; checks the size on
/// the way (413 past the limit, with the partial blob removed).
async fn store_file<S>(
    app: &App,
    target: &Target,
    file_name: &str,
    mime_type: &str,
    pieces: S,
) -> ApiResult<UploadRecord>
where
    S: futures_util::Stream<Item = Result<Bytes, ApiError>>,
{
    use futures_util::StreamExt;
    let upload_id = uuid::Uuid::new_v4().simple().to_string();
    let name = basename(file_name);
    let path = format!("{}/{upload_id}_{name}", target.store_dir);
    let max = app.config.max_upload;
    let agent = &target.agent;
    let (req, mut reply) = agent.register();
    let sent = async {
        agent.send(ToAgent::UploadBegin { req, path: path.clone(), max, trace: None }).await.map_err(link_error)?;
        let mut size = 0u64;
        let mut pieces = std::pin::pin!(pieces);
        while let Some(piece) = pieces.next().await {
            let piece = match piece {
                Ok(p) => p,
                Err(e) => {
                    let _ = agent.send(ToAgent::UploadEnd { req, ok: false }).await;
                    return Err(e);
                }
            };
            size += piece.len() as u64;
            if size > max {
                let _ = agent.send(ToAgent::UploadEnd { req, ok: false }).await;
                return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("File too large. Max {max} bytes.")));
            }
            for chunk in piece.chunks(UPLOAD_CHUNK) {
                let data = piece.slice_ref(chunk);
                agent.send(ToAgent::UploadChunk { req, data }).await.map_err(link_error)?;
            }
            // The agent may have failed already (disk full): stop sending.
            if let Ok(FromAgent::ToolDone { result: Err(e), .. }) = reply.try_recv() {
                return Err(ApiError::new(StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_GATEWAY), e.detail));
            }
        }
        agent.send(ToAgent::UploadEnd { req, ok: true }).await.map_err(link_error)?;
        match tokio::time::timeout(TOOL_TIMEOUT, &mut reply).await {
            Err(_) => Err(link_error(LinkError::Timeout(TOOL_TIMEOUT))),
            Ok(Err(_)) => Err(link_error(LinkError::Disconnected)),
            Ok(Ok(FromAgent::ToolDone { result: Ok(_), .. })) => Ok(size),
            Ok(Ok(FromAgent::ToolDone { result: Err(e), .. })) => {
                Err(ApiError::new(StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_GATEWAY), e.detail))
            }
            Ok(Ok(other)) => Err(ApiError::new(StatusCode::BAD_GATEWAY, format!("unexpected agent reply: {other:?}"))),
        }
    }
    .await;
    agent.unregister(req);
    let size = sent?;
    let mime_type = if mime_type.trim().is_empty() { "application/octet-stream" } else { mime_type.trim() };
    Ok(UploadRecord {
        upload_id,
        path,
        file_name: name,
        mime_type: Some(mime_type.to_string()),
        size,
        ref_sessions: Vec::new(),
        created_at: Some(crate::record::now()),
    })
}

#[derive(Deserialize)]
struct JsonFile {
    #[serde(default)]
    file_name: String,
    #[serde(default)]
    mime_type: String,
    data: String,
}

#[derive(Deserialize)]
struct JsonUpload {
    #[serde(default)]
    files: Vec<JsonFile>,
}

/// `POST /api/sessions/{id}/uploads`: the original's JSON body (base64 files), or
/// `multipart/form-data` (streamed to the agent as it arrives). Files are stored in order; a
/// failure part-way keeps the ones before it, as the original does.
async fn upload(
    State(app): AppState,
    id: Result<Path<String>, PathRejection>,
    request: Request,
) -> ApiResult<Response> {
    let Path(id) = id?;
    let record = app.registry.get(&id).ok_or_else(ApiError::session_not_found)?;
    let Some(session_file) = record.session_file.clone() else {
        return Err(ApiError::conflict("Session file not available yet. Send a first prompt before uploading files."));
    };
    let store_dir = match std::path::Path::new(&session_file).parent() {
        Some(dir) => format!("{}/uploads/_shared", dir.display()),
        None => return Err(ApiError::conflict("The session file has no directory")),
    };
    let target = Target { agent: app.agent_for(&record)?, store_dir };
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let mut stored = Vec::new();
    let outcome = if multipart {
        upload_multipart(&app, &target, request, &mut stored).await
    } else {
        upload_json(&app, &target, request, &mut stored).await
    };
    for upload in &stored {
        app.sessions.add_upload(&id, upload.clone()).await?;
    }
    outcome?;
    let uploads: Vec<_> = stored
        .iter()
        .map(|u| json!({"upload_id": u.upload_id, "file_name": u.file_name, "mime_type": u.mime_type, "size": u.size, "path": u.path}))
        .collect();
    Ok(Json(json!({ "uploads": uploads })).into_response())
}

async fn upload_json(app: &App, target: &Target, request: Request, stored: &mut Vec<UploadRecord>) -> ApiResult<()> {
    let Json(body) = Json::<JsonUpload>::from_request(request, &()).await?;
    if body.files.is_empty() {
        return Err(ApiError::bad_request("No files provided"));
    }
    if body.files.len() > MAX_FILES {
        return Err(ApiError::bad_request(format!("Too many files. Max {MAX_FILES} files per request.")));
    }
    for file in body.files {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(file.data.as_bytes())
            .map_err(|_| ApiError::bad_request("Invalid base64 file payload"))?;
        if bytes.len() as u64 > app.config.max_upload {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("File too large. Max {} bytes.", app.config.max_upload),
            ));
        }
        let pieces = futures_util::stream::iter([Ok(Bytes::from(bytes))]);
        stored.push(store_file(app, target, &file.file_name, &file.mime_type, pieces).await?);
    }
    Ok(())
}

async fn upload_multipart(
    app: &App,
    target: &Target,
    request: Request,
    stored: &mut Vec<UploadRecord>,
) -> ApiResult<()> {
    let mut form = Multipart::from_request(request, &()).await.map_err(|e| ApiError::bad_request(e.body_text()))?;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(ApiError::new(e.status(), e.body_text())),
        };
        let Some(file_name) = field.file_name().map(str::to_string) else { continue }; // not a file part
        if stored.len() == MAX_FILES {
            return Err(ApiError::bad_request(format!("Too many files. Max {MAX_FILES} files per request.")));
        }
        let mime = field.content_type().unwrap_or_default().to_string();
        let pieces = futures_util::stream::unfold(field, |mut field| async move {
            match field.chunk().await {
                Ok(Some(b)) => Some((Ok(b), field)),
                Ok(None) => None,
                Err(e) => Some((Err(ApiError::new(e.status(), e.body_text())), field)),
            }
        });
        stored.push(store_file(app, target, &file_name, &mime, pieces).await?);
    }
    if stored.is_empty() {
        return Err(ApiError::bad_request("No files provided"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_names_are_reduced_to_a_basename() {
        assert_eq!(basename("../../etc/passwd"), "passwd");
        assert_eq!(basename("C:\\Users\\me\\a b.png"), "a b.png");
        assert_eq!(basename(""), "file");
        assert_eq!(basename("dir/.."), "file");
    }

    #[test]
    fn query_booleans_take_fastapi_spellings() {
        assert!(query_bool(Some("yes"), "s").unwrap());
        assert!(!query_bool(Some("OFF"), "s").unwrap());
        assert!(!query_bool(None, "s").unwrap());
        assert_eq!(query_bool(Some("maybe"), "s").unwrap_err().status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}
