//! Changes every dashboard should see at once: sessions appearing, going live or closed,
//! waiting for an answer (attention), and agents coming up or going down. Sent over
//! `/ws/dashboard` as `{"type":"piface_session","session":…}`,
//! `{"type":"piface_session_removed","piface_id":…}` and `{"type":"piface_agent","agent":…}`,
//! after a first `{"type":"piface_dashboard","sessions":[…],"agents":[…]}` snapshot.
//!
//! A broadcast channel: a dashboard that falls behind gets a fresh snapshot instead of the
//! changes it missed.

use bytes::Bytes;
use serde_json::json;
use tokio::sync::broadcast;

use crate::record::SessionRecord;

/// See the module docs.
pub struct Dashboard {
    tx: broadcast::Sender<Bytes>,
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard { tx: broadcast::channel(256).0 }
    }
}

impl Dashboard {
    /// A session changed.
    pub fn session(&self, record: &SessionRecord) {
        self.send(json!({ "type": "piface_session", "session": record }));
    }

    /// A session was deleted.
    pub fn session_removed(&self, id: &str) {
        self.send(json!({ "type": "piface_session_removed", "piface_id": id }));
    }

    /// An agent came up, went down or was removed (`status: "removed"`).
    pub fn agent(&self, info: &impl serde::Serialize) {
        self.send(json!({ "type": "piface_agent", "agent": info }));
    }

    fn send(&self, value: serde_json::Value) {
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(Bytes::from(value.to_string()));
    }

    /// A new subscription to the changes.
    pub fn subscribe(&self) -> broadcast::Receiver<Bytes> {
        self.tx.subscribe()
    }
}
