//! A Hugging Face hub stand-in on loopback, for tests of model downloads (`HF_ENDPOINT`): it
//! lists a repo's files (`/api/models/{org}/{name}/revision/{rev}`) and serves them
//! (`/{org}/{name}/resolve/{rev}/{file}`) with the headers `hf-hub` reads (ETag,
//! `X-Repo-Commit`, `Content-Range`) and byte ranges, at a bounded rate so that a test can watch
//! the progress. It counts the file requests it answered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;

/// The commit every repo of the fake hub is at.
pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

struct Hub {
    /// repo id → (file name → contents).
    repos: HashMap<String, Vec<(String, Bytes)>>,
    /// Bytes per second per response.
    rate: usize,
    served: AtomicUsize,
}

/// A running fake hub.
pub struct FakeHub {
    /// `http://127.0.0.1:PORT`, for `HF_ENDPOINT`.
    pub endpoint: String,
    hub: Arc<Hub>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeHub {
    /// Serves `repos` (repo id → files) at `rate` bytes per second per response.
    pub async fn start(repos: HashMap<String, Vec<(String, Bytes)>>, rate: usize) -> anyhow::Result<FakeHub> {
        let hub = Arc::new(Hub { repos, rate: rate.max(1), served: AtomicUsize::new(0) });
        let app = Router::new()
            .route("/api/models/{org}/{name}/revision/{rev}", get(info))
            .route("/{org}/{name}/resolve/{rev}/{*file}", get(file))
            .with_state(hub.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeHub { endpoint, hub, task })
    }

    /// File responses served so far (range requests included).
    pub fn served(&self) -> usize {
        self.hub.served.load(Ordering::Relaxed)
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn info(State(hub): State<Arc<Hub>>, Path((org, name, _rev)): Path<(String, String, String)>) -> Response {
    match hub.repos.get(&format!("{org}/{name}")) {
        Some(files) => {
            let siblings: Vec<_> = files.iter().map(|(f, _)| serde_json::json!({ "rfilename": f })).collect();
            Json(serde_json::json!({ "id": format!("{org}/{name}"), "sha": COMMIT, "siblings": siblings }))
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "Repository not found").into_response(),
    }
}

async fn file(
    State(hub): State<Arc<Hub>>,
    Path((org, name, _rev, file)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(data) =
        hub.repos.get(&format!("{org}/{name}")).and_then(|fs| fs.iter().find(|(f, _)| *f == file)).map(|(_, d)| d)
    else {
        return (StatusCode::NOT_FOUND, "Entry not found").into_response();
    };
    hub.served.fetch_add(1, Ordering::Relaxed);
    let total = data.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
    let (status, start, end) = match range {
        Some((a, b)) if a < total => (StatusCode::PARTIAL_CONTENT, a, b.min(total - 1)),
        Some(_) => return (StatusCode::RANGE_NOT_SATISFIABLE, "bad range").into_response(),
        None => (StatusCode::OK, 0, total.saturating_sub(1)),
    };
    let body = data.slice(start..(end + 1).min(total));
    let etag = format!("\"{:016x}{:016x}\"", fnv(data), total);
    let rate = hub.rate;
    // Trickle the body out, a tenth of a second's worth at a time.
    let stream = futures_util::stream::unfold((body, 0usize), move |(body, sent)| async move {
        if sent >= body.len() {
            return None;
        }
        let step = (rate / 10).max(1).min(body.len() - sent);
        if sent > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some((Ok::<_, std::io::Error>(body.slice(sent..sent + step)), (body, sent + step)))
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::ETAG, etag.parse().expect("ascii"));
    h.insert("x-repo-commit", COMMIT.parse().expect("ascii"));
    h.insert(header::CONTENT_LENGTH, (end + 1 - start).into());
    h.insert(header::ACCEPT_RANGES, "bytes".parse().expect("ascii"));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(header::CONTENT_RANGE, format!("bytes {start}-{end}/{total}").parse().expect("ascii"));
    }
    response
}

/// A stable content hash for the ETag.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}
