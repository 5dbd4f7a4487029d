//! Serving history requests: a session file's messages and fork points, read on a blocking
//! thread (the files can be hundreds of megabytes) and sent back as they are read.

use bytes::Bytes;
use piface_shared::protocol::{FromAgent, HistoryFailure, HistoryStats, RequestId};
use tokio::sync::mpsc;

use crate::history::{self, HistoryError};

/// Pieces of a history sent at once. Each is the size `history` hands over (about 256 KiB, or
/// one larger message), so this bounds what waits for a slow reader.
const PIECES_IN_FLIGHT: usize = 4;

fn failure(e: &HistoryError) -> HistoryFailure {
    HistoryFailure { code: e.code().to_string(), message: e.to_string() }
}

/// Streams the history of `path` to `out`, ending with [`FromAgent::HistoryDone`].
pub async fn read_history(req: RequestId, path: String, out: mpsc::Sender<FromAgent>) {
    let (tx, mut rx) = mpsc::channel::<Bytes>(PIECES_IN_FLIGHT);
    let reader = tokio::task::spawn_blocking(move || {
        let mut send = |piece: &[u8]| {
            tx.blocking_send(Bytes::copy_from_slice(piece))
                .map_err(|_| std::io::Error::other("the history's reader went away"))
        };
        history::stream_history(std::path::Path::new(&path), &mut send)
    });
    while let Some(data) = rx.recv().await {
        if out.send(FromAgent::HistoryChunk { req, data }).await.is_err() {
            // The client is gone; dropping `rx` stops the reader at its next piece.
            return;
        }
    }
    let result = match reader.await {
        Ok(Ok(summary)) => Ok(HistoryStats {
            messages: summary.messages as u64,
            skipped_lines: summary.skipped_lines as u64,
            truncated_tail: summary.truncated_tail,
        }),
        Ok(Err(e)) => Err(failure(&e)),
        Err(e) => Err(HistoryFailure { code: "file_read_error".into(), message: e.to_string() }),
    };
    let _ = out.send(FromAgent::HistoryDone { req, result }).await;
}

/// The fork points of `path` as a JSON array of `{"entryId", "text"}`.
pub async fn fork_messages(path: String) -> Result<Bytes, HistoryFailure> {
    let read = tokio::task::spawn_blocking(move || history::fork_messages(std::path::Path::new(&path))).await;
    match read {
        Ok(Ok(list)) => Ok(Bytes::from(serde_json::to_vec(&list).expect("fork messages serialise"))),
        Ok(Err(e)) => Err(failure(&e)),
        Err(e) => Err(HistoryFailure { code: "file_read_error".into(), message: e.to_string() }),
    }
}
