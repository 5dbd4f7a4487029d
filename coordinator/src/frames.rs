//! Frames the coordinator itself sends to browsers (as opposed to pi's lines, which it
//! relays): built here, in one place, so their shapes are written once.

use bytes::Bytes;

/// `{"type":"piface_error","message":…}`.
pub fn error_frame(message: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "type": "piface_error", "message": message }).to_string())
}
