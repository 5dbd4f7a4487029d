//! The session registry: every session record and, for live ones, its hub.
//!
//! Records are kept in creation order (the list endpoint returns them so). This is memory only
//! for now; the persistence issue puts a store behind it. A std mutex, held only to read or
//! change entries, never across an await.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::hub::Hub;
use crate::record::SessionRecord;

struct Entry {
    record: SessionRecord,
    /// Present while pi runs (or is starting).
    hub: Option<Arc<Hub>>,
    /// False while pi is starting: the session is not listed until it is up.
    visible: bool,
}

/// See the module docs.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    order: Vec<String>,
    map: HashMap<String, Entry>,
}

impl Registry {
    /// Adds a session that is starting (not listed yet).
    pub fn insert_starting(&self, record: SessionRecord, hub: Arc<Hub>) {
        let mut inner = self.inner.lock().unwrap();
        let id = record.piface_id.clone();
        if inner.map.insert(id.clone(), Entry { record, hub: Some(hub), visible: false }).is_none() {
            inner.order.push(id);
        }
    }

    /// Removes a session whose start failed, or restores its previous record.
    pub fn remove(&self, id: &str) {
        let mut inner = self.inner.lock().unwrap();
        if inner.map.remove(id).is_some() {
            inner.order.retain(|x| x != id);
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

    /// The hub of a live or starting session.
    pub fn hub(&self, id: &str) -> Option<Arc<Hub>> {
        self.inner.lock().unwrap().map.get(id).and_then(|e| e.hub.clone())
    }

    /// The hub of a visible session whose pi is running.
    pub fn live_hub(&self, id: &str) -> Option<Arc<Hub>> {
        let inner = self.inner.lock().unwrap();
        inner.map.get(id).filter(|e| e.visible).and_then(|e| e.hub.clone()).filter(|h| !h.is_closed())
    }

    /// Changes a record (visible or not) and returns the new version.
    pub fn update(&self, id: &str, f: impl FnOnce(&mut SessionRecord)) -> Option<SessionRecord> {
        let mut inner = self.inner.lock().unwrap();
        let entry = inner.map.get_mut(id)?;
        f(&mut entry.record);
        Some(with_attention(entry))
    }

    /// Marks a starting session as up and listed, with a new hub.
    pub fn set_live(
        &self,
        id: &str,
        hub: Option<Arc<Hub>>,
        f: impl FnOnce(&mut SessionRecord),
    ) -> Option<SessionRecord> {
        let mut inner = self.inner.lock().unwrap();
        let entry = inner.map.get_mut(id)?;
        if hub.is_some() {
            entry.hub = hub;
        }
        entry.visible = true;
        f(&mut entry.record);
        Some(with_attention(entry))
    }

    /// Swaps in the hub of a restarting session, returning the record.
    pub fn attach_hub(&self, id: &str, hub: Arc<Hub>) -> Option<SessionRecord> {
        let mut inner = self.inner.lock().unwrap();
        let entry = inner.map.get_mut(id)?;
        entry.hub = Some(hub);
        Some(entry.record.clone())
    }

    /// Drops a session's hub if it is still `hub` (a newer one may have replaced it).
    pub fn detach_hub(&self, id: &str, hub: &Arc<Hub>) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(entry) = inner.map.get_mut(id) {
            if entry.hub.as_ref().is_some_and(|h| Arc::ptr_eq(h, hub)) {
                entry.hub = None;
            }
        }
    }

    /// Ids of sessions with a running pi.
    pub fn live_ids(&self) -> Vec<String> {
        let inner = self.inner.lock().unwrap();
        inner.order.iter().filter(|id| inner.map.get(*id).is_some_and(|e| e.hub.is_some())).cloned().collect()
    }
}

fn with_attention(entry: &Entry) -> SessionRecord {
    let mut record = entry.record.clone();
    record.attention_required = entry.hub.as_ref().is_some_and(|h| h.attention_required());
    record
}
