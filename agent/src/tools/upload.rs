//! Upload blobs: files the browser attached, written where pi's session lives
//! (`<session dir>/uploads/_shared/<id>_<name>`) as their bytes arrive from the coordinator.
//!
//! A blob appears under its final name only once complete (written to a temporary name, then
//! renamed), so a crash or a cut link never leaves half a file that a prompt could name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use piface_shared::protocol::{FromAgent, RequestId, ToolError};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tracing::Instrument;

/// Whether `p` names a file in an upload store (the only files [`super::ToolCall::DeleteFiles`]
/// may remove).
pub fn is_blob_path(p: &Path) -> bool {
    let parent = p.parent();
    p.is_absolute()
        && parent.and_then(Path::file_name).is_some_and(|n| n == "_shared")
        && parent.and_then(Path::parent).and_then(Path::file_name).is_some_and(|n| n == "uploads")
        && p.components().all(|c| matches!(c, std::path::Component::RootDir | std::path::Component::Normal(_)))
}

enum Piece {
    Data(Bytes),
    End { ok: bool },
}

/// Uploads in progress, by request.
#[derive(Default)]
pub struct Uploads {
    active: Mutex<HashMap<RequestId, mpsc::UnboundedSender<Piece>>>,
}

impl Uploads {
    /// Starts writing upload `req` to `path`; the reply goes to `out` when it ends.
    pub fn begin(self: &std::sync::Arc<Self>, req: RequestId, path: String, max: u64, out: mpsc::Sender<FromAgent>) {
        // Unbounded is bounded by `max`: the coordinator stops sending past it.
        let (tx, rx) = mpsc::unbounded_channel();
        self.active.lock().unwrap().insert(req, tx);
        let table = self.clone();
        let task = async move {
            let result =
                write(PathBuf::from(path), max, rx).await.map(|size| serde_json::json!({ "size": size }).to_string());
            table.active.lock().unwrap().remove(&req);
            let _ = out.send(FromAgent::ToolDone { req, result }).await;
        };
        // The upload's span (its request's, see `Agent::handle`) lasts until it is written.
        tokio::spawn(task.in_current_span());
    }

    /// The next bytes of upload `req` (ignored when it already failed).
    pub fn chunk(&self, req: RequestId, data: Bytes) {
        if let Some(tx) = self.active.lock().unwrap().get(&req) {
            let _ = tx.send(Piece::Data(data));
        }
    }

    /// The end of upload `req`.
    pub fn end(&self, req: RequestId, ok: bool) {
        if let Some(tx) = self.active.lock().unwrap().remove(&req) {
            let _ = tx.send(Piece::End { ok });
        }
    }
}

async fn write(path: PathBuf, max: u64, mut rx: mpsc::UnboundedReceiver<Piece>) -> Result<u64, ToolError> {
    let fail = |e: std::io::Error| ToolError::new(500, format!("writing {}: {e}", path.display()));
    if !path.is_absolute() || !is_blob_path(&path) {
        return Err(ToolError::new(400, format!("Not an upload blob path: {}", path.display())));
    }
    let dir = path.parent().expect("blob paths have a parent");
    // Uploads are the user's files: private (0700/0600), whatever the umask.
    tokio::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).await.map_err(fail)?;
    let tmp = dir.join(format!(".partial-{}", path.file_name().expect("blob paths have a name").to_string_lossy()));
    let mut file =
        tokio::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).await.map_err(fail)?;
    let mut size = 0u64;
    let outcome = loop {
        match rx.recv().await {
            Some(Piece::Data(data)) => {
                size += data.len() as u64;
                if size > max {
                    break Err(ToolError::new(413, format!("File too large. Max {max} bytes.")));
                }
                if let Err(e) = file.write_all(&data).await {
                    break Err(fail(e));
                }
            }
            Some(Piece::End { ok: true }) => break Ok(()),
            Some(Piece::End { ok: false }) | None => {
                break Err(ToolError::new(400, "The upload was interrupted"));
            }
        }
    };
    let finished = match outcome {
        Ok(()) => async {
            file.sync_all().await?;
            drop(file);
            if tokio::fs::try_exists(&path).await? {
                return Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the blob exists already"));
            }
            tokio::fs::rename(&tmp, &path).await
        }
        .await
        .map_err(fail),
        Err(e) => Err(e),
    };
    if finished.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    finished.map(|()| size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_directly_in_an_upload_store_are_blobs() {
        assert!(is_blob_path(Path::new("/h/.pi/agent/sessions/--x--/uploads/_shared/ab12_a.txt")));
        assert!(!is_blob_path(Path::new("/h/uploads/_shared/../../etc/passwd")));
        assert!(!is_blob_path(Path::new("/etc/passwd")));
        assert!(!is_blob_path(Path::new("uploads/_shared/x")));
    }

    #[tokio::test]
    async fn a_blob_appears_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("uploads/_shared");
        let table = std::sync::Arc::new(Uploads::default());
        let (out, mut replies) = mpsc::channel(4);

        let good = store.join("1_a.bin");
        table.begin(1, good.display().to_string(), 10, out.clone());
        table.chunk(1, Bytes::from_static(b"hello "));
        table.chunk(1, Bytes::from_static(b"you"));
        table.end(1, true);
        let FromAgent::ToolDone { req: 1, result: Ok(body) } = replies.recv().await.unwrap() else { panic!() };
        assert_eq!(body, r#"{"size":9}"#);
        assert_eq!(std::fs::read(&good).unwrap(), b"hello you");
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&good), mode(&store)), (0o600, 0o700), "uploads are private");

        let big = store.join("2_b.bin");
        table.begin(2, big.display().to_string(), 4, out.clone());
        table.chunk(2, Bytes::from_static(b"12345"));
        table.end(2, true);
        let FromAgent::ToolDone { req: 2, result: Err(e) } = replies.recv().await.unwrap() else { panic!() };
        assert_eq!(e.status, 413);

        let cut = store.join("3_c.bin");
        table.begin(3, cut.display().to_string(), 10, out);
        table.chunk(3, Bytes::from_static(b"12"));
        table.end(3, false);
        assert!(matches!(replies.recv().await.unwrap(), FromAgent::ToolDone { req: 3, result: Err(_) }));
        let names: Vec<_> = std::fs::read_dir(&store).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["1_a.bin"], "no partial files left");
    }
}
