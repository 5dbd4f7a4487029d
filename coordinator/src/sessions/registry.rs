//! The session registry: every session record and, for live ones, its hub, written through
//! to the [`StateStore`].
//!
//! Anyone reads it; only the session actor writes it (the write methods are visible to the
//! `sessions` module alone, and only its actor calls them). Records are kept in creation order
//! (the list endpoint returns them so). The registry is the only writer of the session part of
//! the store, and it writes while holding its lock, so the store sees changes in the order
//! memory does. A std mutex: a store write is a short local transaction; nothing here awaits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::dashboard::Dashboard;
use crate::hub::Hub;
use crate::record::SessionRecord;
use crate::store::UploadRecord;
use crate::store::{Snapshot, StateStore};

struct Entry {
    record: SessionRecord,
    /// Present while pi runs (or is starting).
    hub: Option<Arc<Hub>>,
    /// False while pi is starting for a new session: it is not listed until it is up.
    visible: bool,
}

/// What [`Registry::stats`] counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct RegistryStats {
    /// Sessions whose pi is starting (not listed yet).
    pub starting: usize,
    /// Listed sessions with a running pi.
    pub live: usize,
    /// Archived sessions.
    pub closed: usize,
    /// Bytes of unread frames the hubs hold.
    pub hub_bytes: usize,
    /// Browser sockets attached to hubs.
    pub clients: usize,
}

/// Why [`Registry::attach_hub`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attach {
    /// No such session.
    Unknown,
    /// The session has an open hub (its pi runs).
    Occupied,
}

/// See the module docs.
pub struct Registry {
    inner: Mutex<Inner>,
    store: Arc<dyn StateStore>,
    /// Told of every change of a listed record.
    dashboard: Arc<Dashboard>,
}

#[derive(Default)]
struct Inner {
    order: Vec<String>,
    map: HashMap<String, Entry>,
    /// Upload ids each session references.
    uploads: HashMap<String, Vec<String>>,
    /// Every upload, by id (with the sessions that reference it).
    upload_records: HashMap<String, UploadRecord>,
}

impl Registry {
    /// A registry over `store`, filled from `snapshot` (what the store held at start).
    pub fn new(store: Arc<dyn StateStore>, snapshot: Snapshot, dashboard: Arc<Dashboard>) -> Registry {
        let mut inner = Inner::default();
        for record in snapshot.sessions {
            let id = record.piface_id.clone();
            inner.order.push(id.clone());
            inner.map.insert(id, Entry { record, hub: None, visible: true });
        }
        inner.uploads = snapshot.session_uploads.into_iter().collect();
        inner.upload_records = snapshot.uploads.into_iter().collect();
        Registry { inner: Mutex::new(inner), store, dashboard }
    }

    fn persist(&self, record: &SessionRecord) {
        if let Err(e) = self.store.put_session(record) {
            tracing::error!(session_id = %record.piface_id, "could not save the session: {e}");
        }
    }

    /// Adds a session that is starting (not listed, not saved yet).
    pub(super) fn insert_starting(&self, record: SessionRecord, hub: Arc<Hub>) {
        let mut inner = self.inner.lock().unwrap();
        let id = record.piface_id.clone();
        if inner.map.insert(id.clone(), Entry { record, hub: Some(hub), visible: false }).is_none() {
            inner.order.push(id);
        }
    }

    /// Removes a session, from the store too. Its upload references go with it.
    pub(super) fn remove(&self, id: &str) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(entry) = inner.map.remove(id) {
            inner.order.retain(|x| x != id);
            for upload in inner.uploads.remove(id).unwrap_or_default() {
                if let Some(u) = inner.upload_records.get_mut(&upload) {
                    u.ref_sessions.retain(|s| s != id);
                }
            }
            if entry.visible {
                if let Err(e) = self.store.delete_session(id) {
                    tracing::error!(session_id = %id, "could not delete the session: {e}");
                }
                self.dashboard.session_removed(id);
            }
        }
    }

    /// All visible records, in creation order.
    pub fn list(&self) -> Vec<SessionRecord> {
        let inner = self.inner.lock().unwrap();
        inner.order.iter().filter_map(|id| inner.map.get(id)).filter(|e| e.visible).map(with_attention).collect()
    }

    /// One visible record.
    pub fn get(&self, id: &str) -> Option<SessionRecord> {
        let inner = self.inner.lock().unwrap();
        inner.map.get(id).filter(|e| e.visible).map(with_attention)
    }

    /// The agent a session (listed or starting) runs on.
    pub fn agent_of(&self, id: &str) -> Option<String> {
        self.inner.lock().unwrap().map.get(id).map(|e| e.record.agent.clone())
    }

    /// The hub of a live or starting session.
    pub fn hub(&self, id: &str) -> Option<Arc<Hub>> {
        self.inner.lock().unwrap().map.get(id).and_then(|e| e.hub.clone())
    }

    /// The hub of a visible session whose pi is running.
    pub fn live_hub(&self, id: &str) -> Option<Arc<Hub>> {
        let inner = self.inner.lock().unwrap();
        inner.map.get(id).filter(|e| e.visible).and_then(|e| e.hub.clone()).filter(|h| !h.is_closed())
    }

    /// Changes a record and saves it (when listed); returns the new version.
    pub(super) fn update(&self, id: &str, f: impl FnOnce(&mut SessionRecord)) -> Option<SessionRecord> {
        let mut inner = self.inner.lock().unwrap();
        let entry = inner.map.get_mut(id)?;
        let before = entry.record.clone();
        f(&mut entry.record);
        let record = with_attention(entry);
        if entry.visible && entry.record != before {
            self.persist(&entry.record);
            self.dashboard.session(&record);
        }
        Some(record)
    }

    /// Lists and saves a session whose pi is up, after `f`.
    pub(super) fn set_live(&self, id: &str, f: impl FnOnce(&mut SessionRecord)) -> Option<SessionRecord> {
        let mut inner = self.inner.lock().unwrap();
        let entry = inner.map.get_mut(id)?;
        entry.visible = true;
        f(&mut entry.record);
        self.persist(&entry.record);
        let record = with_attention(entry);
        self.dashboard.session(&record);
        Some(record)
    }

    /// Gives a listed session (being resumed or restored) a new hub; returns its record.
    /// A hub still open is never replaced: its clients would be left on a hub that no event
    /// reaches (`Err(Attach::Occupied)`).
    pub(super) fn attach_hub(&self, id: &str, hub: Arc<Hub>) -> Result<SessionRecord, Attach> {
        let mut inner = self.inner.lock().unwrap();
        let entry = inner.map.get_mut(id).ok_or(Attach::Unknown)?;
        if entry.hub.as_ref().is_some_and(|h| !h.is_closed()) {
            return Err(Attach::Occupied);
        }
        entry.hub = Some(hub);
        Ok(entry.record.clone())
    }

    /// Drops a session's hub if it is still `hub` (a newer one may have replaced it).
    pub(super) fn detach_hub(&self, id: &str, hub: &Arc<Hub>) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(entry) = inner.map.get_mut(id) {
            if entry.hub.as_ref().is_some_and(|h| Arc::ptr_eq(h, hub)) {
                entry.hub = None;
            }
        }
    }

    /// Tells dashboards about a record again (its attention badge changed).
    pub(super) fn announce(&self, id: &str) {
        let inner = self.inner.lock().unwrap();
        if let Some(entry) = inner.map.get(id).filter(|e| e.visible) {
            self.dashboard.session(&with_attention(entry));
        }
    }

    /// Ids of sessions with a running pi on `agent`.
    pub fn live_ids_on(&self, agent: &str) -> Vec<String> {
        let inner = self.inner.lock().unwrap();
        inner
            .order
            .iter()
            .filter(|id| inner.map.get(*id).is_some_and(|e| e.hub.is_some() && e.record.agent == agent))
            .cloned()
            .collect()
    }

    /// Ids of sessions with a running pi.
    pub fn live_ids(&self) -> Vec<String> {
        let inner = self.inner.lock().unwrap();
        inner.order.iter().filter(|id| inner.map.get(*id).is_some_and(|e| e.hub.is_some())).cloned().collect()
    }

    /// Counts of sessions by state and what their hubs hold, for `/metrics`.
    pub fn stats(&self) -> RegistryStats {
        let mut stats = RegistryStats::default();
        let hubs: Vec<Arc<Hub>> = {
            let inner = self.inner.lock().unwrap();
            for entry in inner.map.values() {
                match (entry.visible, &entry.record.status) {
                    (false, _) => stats.starting += 1,
                    (true, crate::record::Status::Live) => stats.live += 1,
                    (true, crate::record::Status::Closed) => stats.closed += 1,
                }
            }
            inner.map.values().filter_map(|e| e.hub.clone()).collect()
        };
        // Each hub's lock is taken after the registry's is released: no order between them.
        for hub in hubs {
            stats.hub_bytes += hub.buffered_bytes();
            stats.clients += hub.client_count();
        }
        stats
    }

    /// Upload ids a session references.
    pub fn uploads_of(&self, id: &str) -> Vec<String> {
        self.inner.lock().unwrap().uploads.get(id).cloned().unwrap_or_default()
    }

    /// Makes session `id` reference `uploads` too (a branch inherits its source's), and
    /// saves it.
    pub(super) fn share_uploads(&self, id: &str, uploads: Vec<String>) {
        let mut inner = self.inner.lock().unwrap();
        if let Err(e) = self.store.share_uploads(id, &uploads) {
            tracing::error!(session_id = %id, "could not save upload references: {e}");
        }
        for upload in &uploads {
            if let Some(u) = inner.upload_records.get_mut(upload) {
                if !u.ref_sessions.iter().any(|s| s == id) {
                    u.ref_sessions.push(id.to_string());
                }
            }
        }
        let list = inner.uploads.entry(id.to_string()).or_default();
        for upload in uploads {
            if !list.contains(&upload) {
                list.push(upload);
            }
        }
    }

    /// Records a new upload of session `id`; saved before it is visible.
    pub(super) fn add_upload(&self, id: &str, mut upload: UploadRecord) -> Result<(), crate::store::StoreError> {
        if !upload.ref_sessions.iter().any(|s| s == id) {
            upload.ref_sessions.push(id.to_string());
        }
        let mut inner = self.inner.lock().unwrap();
        self.store.add_upload(id, &upload)?;
        let list = inner.uploads.entry(id.to_string()).or_default();
        if !list.contains(&upload.upload_id) {
            list.push(upload.upload_id.clone());
        }
        inner.upload_records.insert(upload.upload_id.clone(), upload);
        Ok(())
    }

    /// An upload's record.
    pub fn upload(&self, upload_id: &str) -> Option<UploadRecord> {
        self.inner.lock().unwrap().upload_records.get(upload_id).cloned()
    }

    /// Uploads no session references any more (their blobs may go).
    pub fn orphan_uploads(&self) -> Vec<UploadRecord> {
        self.inner.lock().unwrap().upload_records.values().filter(|u| u.ref_sessions.is_empty()).cloned().collect()
    }

    /// Forgets an upload whose blob is gone.
    pub(super) fn forget_upload(&self, upload_id: &str) {
        let mut inner = self.inner.lock().unwrap();
        if let Err(e) = self.store.delete_upload(upload_id) {
            tracing::error!(upload_id, "could not delete the upload record: {e}");
            return;
        }
        inner.upload_records.remove(upload_id);
    }
}

fn with_attention(entry: &Entry) -> SessionRecord {
    let mut record = entry.record.clone();
    record.attention_required = entry.hub.as_ref().is_some_and(|h| h.attention_required());
    record
}
