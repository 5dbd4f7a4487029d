//! The agents a coordinator knows: each connected agent's handle and what it told about
//! itself, for routing sessions and for `GET /api/agents`.
//!
//! `serve` has one agent, [`LOCAL`], in the same process. Agents on other machines connect
//! over QUIC (see `quic.rs`); an agent that disconnects stays listed as down.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use piface_shared::protocol::{Hello, ModelService, ModelState};
use serde::Serialize;

use crate::agent_link::AgentHandle;
use crate::dashboard::Dashboard;
use crate::store::{AgentRecord, StateStore};

/// A pending connection admitted by [`Agents::admit`]; dropping it forgets the connection.
pub struct Admitted {
    id: u64,
    pending: Arc<Mutex<Vec<(u64, String, quinn::Connection)>>>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.pending.lock().unwrap().retain(|(id, _, _)| *id != self.id);
    }
}

pub use crate::record::LOCAL;

struct Entry {
    handle: Option<Arc<AgentHandle>>,
    /// Speech jobs this coordinator has sent it and not yet had answered: [STT, TTS].
    in_flight: Arc<[AtomicU32; 2]>,
    /// The QUIC connection of a remote agent, to close it when the agent is removed.
    conn: Option<quinn::Connection>,
    info: AgentInfo,
}

/// What `GET /api/agents` shows of an agent.
#[derive(Debug, Clone, Serialize)]
pub struct AgentInfo {
    pub name: String,
    /// `up` or `down`.
    pub status: &'static str,
    /// When it last connected or was last heard from.
    pub last_seen: String,
    pub hostname: Option<String>,
    pub os: Option<String>,
    pub software_version: Option<String>,
    pub pi_version: Option<String>,
    /// GPUs it found with NVML.
    pub gpus: Vec<piface_shared::protocol::GpuInfo>,
    /// Its speech-to-text service, if any: `{model, device, state, busy, done}` and, while the
    /// model downloads, `file`, `done_bytes`, `total_bytes`, `bytes_per_s`, `eta_s`; `error`
    /// when it failed.
    pub speech: Option<serde_json::Value>,
    /// Its text-to-speech service, likewise.
    pub tts: Option<serde_json::Value>,
    #[serde(skip)]
    services: [Option<ModelService>; 2],
    /// Live sessions on it (filled in by the caller).
    pub live_sessions: usize,
}

impl AgentInfo {
    fn new(name: &str) -> AgentInfo {
        AgentInfo {
            name: name.to_string(),
            status: "up",
            last_seen: crate::record::now(),
            hostname: None,
            os: None,
            software_version: None,
            pi_version: None,
            gpus: Vec::new(),
            speech: None,
            tts: None,
            services: [None, None],
            live_sessions: 0,
        }
    }
}

/// See the module docs.
///
/// Revocation reaches a connection in every phase: `enrolled` is locked (always before
/// `inner`) while an agent is removed, while a connection is admitted ([`Agents::admit`]) and
/// while it comes up ([`Agents::up`]), so a removal either happens before (and the connection
/// is refused) or after (and the connection, pending or up, is closed).
pub struct Agents {
    inner: Mutex<BTreeMap<String, Entry>>,
    /// Agents allowed to connect, with the certificate each was enrolled with.
    enrolled: Mutex<BTreeMap<String, AgentRecord>>,
    /// Connections of enrolled agents that are not up yet (waiting for the control stream).
    pending: Arc<Mutex<Vec<(u64, String, quinn::Connection)>>>,
    /// Told when an agent comes up, goes down or is removed.
    dashboard: Arc<Dashboard>,
}

impl Agents {
    /// The registry, with the agents enrolled so far (listed as down until they connect).
    pub fn new(enrolled: BTreeMap<String, AgentRecord>, dashboard: Arc<Dashboard>) -> Agents {
        let agents = Agents { inner: Mutex::default(), enrolled: Mutex::default(), pending: Arc::default(), dashboard };
        {
            let mut inner = agents.inner.lock().unwrap();
            for (name, record) in &enrolled {
                let mut info = AgentInfo::new(name);
                info.status = "down";
                info.last_seen.clone_from(&record.enrolled_at);
                inner.insert(name.clone(), Entry { handle: None, in_flight: Arc::default(), conn: None, info });
            }
        }
        *agents.enrolled.lock().unwrap() = enrolled;
        agents
    }

    /// Whether `name` is enrolled with the certificate of this fingerprint.
    pub fn is_enrolled(&self, name: &str, fingerprint: &str) -> bool {
        self.enrolled.lock().unwrap().get(name).is_some_and(|a| a.cert_fingerprint == fingerprint)
    }

    /// Enrolls an agent, redeeming its token (single use) in the same transaction.
    pub fn enroll(&self, store: &dyn StateStore, token_id: &str, record: AgentRecord) -> Result<(), String> {
        let mut enrolled = self.enrolled.lock().unwrap();
        match store.enroll(token_id, &record) {
            Ok(Ok(())) => {
                enrolled.insert(record.name.clone(), record);
                Ok(())
            }
            Ok(Err(reason)) => Err(reason.to_string()),
            Err(e) => Err(format!("the coordinator could not save the agent: {e}")),
        }
    }

    /// A connection presenting `name`'s certificate (of this fingerprint), until it is up or
    /// gone: `None` (and the connection closed) when that certificate is not enrolled; a
    /// removal while the guard lives closes the connection.
    pub fn admit(&self, name: &str, fingerprint: &str, conn: &quinn::Connection) -> Option<Admitted> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let enrolled = self.enrolled.lock().unwrap();
        if !enrolled.get(name).is_some_and(|a| a.cert_fingerprint == fingerprint) {
            conn.close(close::REFUSED.into(), b"unknown or removed agent certificate");
            return None;
        }
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        self.pending.lock().unwrap().push((id, name.to_string(), conn.clone()));
        Some(Admitted { id, pending: self.pending.clone() })
    }

    /// Removes an agent: forgets its certificate and closes its connection, up or pending.
    /// False if unknown.
    pub fn revoke(&self, store: &dyn StateStore, name: &str) -> Result<bool, String> {
        let existed = store.delete_agent(name).map_err(|e| e.to_string())?;
        let mut enrolled = self.enrolled.lock().unwrap();
        let known = enrolled.remove(name).is_some();
        for (_, pending_name, conn) in self.pending.lock().unwrap().iter() {
            if pending_name == name {
                conn.close(close::REMOVED.into(), b"agent removed");
            }
        }
        if let Some(mut entry) = self.inner.lock().unwrap().remove(name) {
            if let Some(conn) = entry.conn {
                conn.close(close::REMOVED.into(), b"agent removed");
            }
            entry.info.status = "removed";
            self.dashboard.agent(&entry.info);
        }
        Ok(existed || known)
    }

    /// An agent connected (again). A remote agent must still be enrolled (it may have been
    /// removed since it was admitted): false, and its connection closed, when it is not.
    pub fn up(&self, name: &str, handle: Arc<AgentHandle>, conn: Option<quinn::Connection>) -> bool {
        let enrolled = self.enrolled.lock().unwrap();
        if let Some(c) = &conn {
            if !enrolled.contains_key(name) {
                c.close(close::REMOVED.into(), b"agent removed");
                return false;
            }
        }
        let info = AgentInfo::new(name);
        self.dashboard.agent(&info);
        self.inner
            .lock()
            .unwrap()
            .insert(name.to_string(), Entry { handle: Some(handle), in_flight: Arc::default(), conn, info });
        drop(enrolled);
        true
    }

    /// Records an agent's hello.
    pub fn hello(&self, name: &str, hello: &Hello) {
        if let Some(e) = self.inner.lock().unwrap().get_mut(name) {
            e.info.hostname = Some(hello.hostname.clone());
            e.info.os = Some(hello.os.clone());
            e.info.software_version = Some(hello.software_version.clone());
            e.info.pi_version.clone_from(&hello.pi_version);
            e.info.gpus.clone_from(&hello.gpus);
            e.info.speech = hello.speech.as_deref().map(service_json);
            e.info.tts = hello.tts.as_deref().map(service_json);
            e.info.services = [hello.speech.as_deref().cloned(), hello.tts.as_deref().cloned()];
            self.dashboard.agent(&e.info);
        }
    }

    /// An agent's link ended; only if `handle` is still its current one (it may have
    /// reconnected meanwhile).
    pub fn down(&self, name: &str, handle: &Arc<AgentHandle>) {
        if let Some(e) = self.inner.lock().unwrap().get_mut(name) {
            if e.handle.as_ref().is_some_and(|h| Arc::ptr_eq(h, handle)) {
                e.handle = None;
                e.conn = None;
                e.info.status = "down";
                e.info.last_seen = crate::record::now();
                self.dashboard.agent(&e.info);
            }
        }
    }

    /// The handle of a connected agent.
    pub fn get(&self, name: &str) -> Option<Arc<AgentHandle>> {
        self.inner.lock().unwrap().get(name).and_then(|e| e.handle.clone())
    }

    /// The agent a session goes to when the request names none: the local one, else the only
    /// connected one.
    pub fn default_name(&self) -> Result<String, &'static str> {
        let inner = self.inner.lock().unwrap();
        if inner.get(LOCAL).is_some_and(|e| e.handle.is_some()) {
            return Ok(LOCAL.to_string());
        }
        let mut up = inner.iter().filter(|(_, e)| e.handle.is_some()).map(|(n, _)| n.clone());
        match (up.next(), up.next()) {
            (Some(name), None) => Ok(name),
            (None, _) => Err("No agent is connected"),
            (Some(_), Some(_)) => Err("Several agents are connected; name one with \"agent\""),
        }
    }

    /// The agent for a speech job of `kind`: a connected one whose model is ready, one on a GPU
    /// first, then the least busy (its own count of running and queued jobs plus the ones this
    /// coordinator has sent it since), then the local one. The job counts as in flight on it
    /// while the returned [`Worker`] lives.
    pub fn worker(&self, kind: Service) -> Option<Worker> {
        let inner = self.inner.lock().unwrap();
        let k = kind as usize;
        let best = inner
            .iter()
            .filter_map(|(name, e)| {
                let service = e.info.services[k].as_ref().filter(|s| s.ready())?;
                let handle = e.handle.clone()?;
                let load = service.busy + e.in_flight[k].load(Ordering::Relaxed);
                let key = (!service.device.starts_with("cuda"), load, name != LOCAL);
                Some((key, name, handle, e.in_flight.clone()))
            })
            .min_by(|a, b| a.0.cmp(&b.0))?;
        let (_, name, handle, in_flight) = best;
        in_flight[k].fetch_add(1, Ordering::Relaxed);
        Some(Worker { name: name.clone(), handle, in_flight, kind: k })
    }

    /// The model `name` serves for `kind`, as it advertises it.
    pub fn service_model(&self, name: &str, kind: Service) -> Option<String> {
        let inner = self.inner.lock().unwrap();
        inner.get(name)?.info.services[kind as usize].as_ref().map(|s| s.model.clone())
    }

    /// Whether any agent, up or down, has offered `kind`.
    pub fn known(&self, kind: Service) -> bool {
        self.inner.lock().unwrap().values().any(|e| e.info.services[kind as usize].is_some())
    }

    /// Whether some connected agent can take a job of `kind` now.
    pub fn can(&self, kind: Service) -> bool {
        let inner = self.inner.lock().unwrap();
        inner.values().any(|e| e.handle.is_some() && e.info.services[kind as usize].as_ref().is_some_and(|s| s.ready()))
    }

    /// Some connected agent (the local one first).
    pub fn any(&self) -> Option<Arc<AgentHandle>> {
        let inner = self.inner.lock().unwrap();
        inner.get(LOCAL).and_then(|e| e.handle.clone()).or_else(|| inner.values().find_map(|e| e.handle.clone()))
    }

    /// The round-trip time of each connected remote agent's QUIC link.
    pub fn link_rtts(&self) -> Vec<(String, std::time::Duration)> {
        let inner = self.inner.lock().unwrap();
        inner.iter().filter_map(|(name, e)| Some((name.clone(), e.conn.as_ref()?.rtt()))).collect()
    }

    /// All agents, by name.
    pub fn list(&self) -> Vec<AgentInfo> {
        self.inner.lock().unwrap().values().map(|e| e.info.clone()).collect()
    }
}

/// The speech services agents offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Speech-to-text.
    Stt = 0,
    /// Text-to-speech.
    Tts = 1,
}

/// The agent chosen for one speech job (see [`Agents::worker`]).
pub struct Worker {
    /// Its name.
    pub name: String,
    /// Its link.
    pub handle: Arc<AgentHandle>,
    in_flight: Arc<[AtomicU32; 2]>,
    kind: usize,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.in_flight[self.kind].fetch_sub(1, Ordering::Relaxed);
    }
}

/// A [`ModelService`] as `GET /api/agents` shows it: flat, with `state` a word.
fn service_json(s: &ModelService) -> serde_json::Value {
    let mut v = serde_json::json!({ "model": s.model, "device": s.device, "busy": s.busy, "done": s.done });
    let extra = match &s.state {
        ModelState::Downloading { file, done_bytes, total_bytes, bytes_per_s, eta_s } => serde_json::json!({
            "state": "downloading",
            "file": file,
            "done_bytes": done_bytes,
            "total_bytes": total_bytes,
            "bytes_per_s": bytes_per_s,
            "eta_s": eta_s,
        }),
        ModelState::Loading => serde_json::json!({ "state": "loading" }),
        ModelState::Ready => serde_json::json!({ "state": "ready" }),
        ModelState::Failed { error } => serde_json::json!({ "state": "failed", "error": error }),
    };
    if let (Some(v), serde_json::Value::Object(extra)) = (v.as_object_mut(), extra) {
        v.extend(extra);
    }
    v
}

/// Application close codes on agent connections (shared with the agent).
pub use piface_link::close;
