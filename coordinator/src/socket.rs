//! What every WebSocket of the coordinator shares (chat, dashboard, terminal): the socket's
//! limits and how a client that broke them is told.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, WebSocketUpgrade};

use crate::App;

/// Read buffer of each socket. Clients send short commands, and the library's default (128 KiB,
/// allocated up front) cost most of the coordinator's memory with thousands of sockets open.
const CLIENT_READ_BUFFER: usize = 8 * 1024;

/// The socket settings every client gets: a small read buffer and the message size limit.
pub fn limited(ws: WebSocketUpgrade, app: &App) -> WebSocketUpgrade {
    let max = app.config.limits.ws_message;
    ws.read_buffer_size(CLIENT_READ_BUFFER).max_message_size(max).max_frame_size(max)
}

/// After a close for a message that was too big: the client may still be sending the rest of
/// it. Closing the connection now, with its bytes unread, would make the kernel answer with a
/// reset, which can reach the client before the close frame does; waiting a moment lets it
/// finish sending and read why it was closed.
pub async fn linger() {
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// What a client whose read failed is told, when it can still be told anything: a message over
/// the limit gets 1009 with the limit.
pub fn read_error_close(e: &axum::Error, max: usize) -> Option<CloseFrame> {
    use std::error::Error as _;
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(err) = source {
        if let Some(tungstenite::Error::Capacity(_)) = err.downcast_ref::<tungstenite::Error>() {
            let reason = format!("Message too big: this socket takes messages of at most {max} bytes");
            return Some(CloseFrame { code: 1009, reason: reason.into() });
        }
        source = err.source();
    }
    None
}
