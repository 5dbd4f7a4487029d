//! The agents a coordinator knows: each connected agent's handle and what it told about
//! itself, for routing sessions and for `GET /api/agents`.
//!
//! `serve` has one agent, [`LOCAL`], in the same process. Agents on other machines connect
//! over QUIC (see `quic.rs`); an agent that disconnects stays listed as down.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use piface_shared::protocol::Hello;
use serde::Serialize;

use crate::agent_link::AgentHandle;
use crate::dashboard::Dashboard;
use crate::store::{AgentRecord, StateStore};

/// Name of the in-process agent of `piface serve`.
pub const LOCAL: &str = "local";

struct Entry {
    handle: Option<Arc<AgentHandle>>,
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
    /// The speech-to-text model it serves, if any.
    pub speech: Option<String>,
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
            live_sessions: 0,
        }
    }
}

/// See the module docs.
pub struct Agents {
    inner: Mutex<BTreeMap<String, Entry>>,
    /// Agents allowed to connect, with the certificate each was enrolled with.
    enrolled: Mutex<BTreeMap<String, AgentRecord>>,
    /// Told when an agent comes up, goes down or is removed.
    dashboard: Arc<Dashboard>,
}

impl Agents {
    /// The registry, with the agents enrolled so far (listed as down until they connect).
    pub fn new(enrolled: BTreeMap<String, AgentRecord>, dashboard: Arc<Dashboard>) -> Agents {
        let agents = Agents { inner: Mutex::default(), enrolled: Mutex::default(), dashboard };
        {
            let mut inner = agents.inner.lock().unwrap();
            for (name, record) in &enrolled {
                let mut info = AgentInfo::new(name);
                info.status = "down";
                info.last_seen.clone_from(&record.enrolled_at);
                inner.insert(name.clone(), Entry { handle: None, conn: None, info });
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

    /// Removes an agent: forgets its certificate and closes its connection. False if unknown.
    pub fn revoke(&self, store: &dyn StateStore, name: &str) -> Result<bool, String> {
        let existed = store.delete_agent(name).map_err(|e| e.to_string())?;
        let known = self.enrolled.lock().unwrap().remove(name).is_some();
        if let Some(mut entry) = self.inner.lock().unwrap().remove(name) {
            if let Some(conn) = entry.conn {
                conn.close(crate::quic::close::REMOVED.into(), b"agent removed");
            }
            entry.info.status = "removed";
            self.dashboard.agent(&entry.info);
        }
        Ok(existed || known)
    }

    /// An agent connected (again).
    pub fn up(&self, name: &str, handle: Arc<AgentHandle>, conn: Option<quinn::Connection>) {
        let info = AgentInfo::new(name);
        self.dashboard.agent(&info);
        self.inner.lock().unwrap().insert(name.to_string(), Entry { handle: Some(handle), conn, info });
    }

    /// Records an agent's hello.
    pub fn hello(&self, name: &str, hello: &Hello) {
        if let Some(e) = self.inner.lock().unwrap().get_mut(name) {
            e.info.hostname = Some(hello.hostname.clone());
            e.info.os = Some(hello.os.clone());
            e.info.software_version = Some(hello.software_version.clone());
            e.info.pi_version.clone_from(&hello.pi_version);
            e.info.gpus.clone_from(&hello.gpus);
            e.info.speech.clone_from(&hello.speech);
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

    /// The agent that transcribes: a connected one with a speech model, one with a GPU first,
    /// then the local one.
    pub fn speech_worker(&self) -> Option<(String, Arc<AgentHandle>)> {
        let inner = self.inner.lock().unwrap();
        let mut able: Vec<_> = inner
            .iter()
            .filter(|(_, e)| e.info.speech.is_some())
            .filter_map(|(n, e)| e.handle.clone().map(|h| (n.clone(), h, !e.info.gpus.is_empty())))
            .collect();
        able.sort_by_key(|(n, _, gpu)| (!gpu, n != LOCAL));
        able.into_iter().next().map(|(n, h, _)| (n, h))
    }

    /// Some connected agent (the local one first).
    pub fn any(&self) -> Option<Arc<AgentHandle>> {
        let inner = self.inner.lock().unwrap();
        inner.get(LOCAL).and_then(|e| e.handle.clone()).or_else(|| inner.values().find_map(|e| e.handle.clone()))
    }

    /// All agents, by name.
    pub fn list(&self) -> Vec<AgentInfo> {
        self.inner.lock().unwrap().values().map(|e| e.info.clone()).collect()
    }
}
