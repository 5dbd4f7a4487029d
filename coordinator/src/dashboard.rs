//! Changes every dashboard should see at once: sessions appearing, going live or closed,
//! waiting for an answer (attention), and agents coming up or going down. Sent over
//! `/ws/dashboard` as `{"type":"piface_session","session":…}`,
//! `{"type":"piface_session_removed","piface_id":…}` and `{"type":"piface_agent","agent":…}`,
//! after a first `{"type":"piface_dashboard","sessions":[…],"agents":[…]}` snapshot.
//!
//! A broadcast channel: a dashboard that falls behind gets a fresh snapshot instead of the
//! changes it missed.

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::frames::DashboardFrame;
use crate::record::SessionRecord;

/// A dashboard frame that carries no agent.
type NoAgent<'a> = DashboardFrame<'a, ()>;

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
        self.send(NoAgent::Session { session: record }.to_bytes());
    }

    /// A session was deleted.
    pub fn session_removed(&self, id: &str) {
        self.send(NoAgent::SessionRemoved { piface_id: id }.to_bytes());
    }

    /// An agent came up, went down or was removed (`status: "removed"`).
    pub fn agent<A: serde::Serialize>(&self, info: &A) {
        self.send(DashboardFrame::Agent { agent: info }.to_bytes());
    }

    fn send(&self, frame: Bytes) {
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(frame);
    }

    /// A new subscription to the changes.
    pub fn subscribe(&self) -> broadcast::Receiver<Bytes> {
        self.tx.subscribe()
    }
}
