//! The state store: session records, upload references, enrolled agents and the browsers'
//! Web Push subscriptions, kept across restarts and crashes.
//!
//! [`StateStore`] is the one interface; [`RedbStore`] the embedded default, a single file
//! `state.redb` in the data directory. redb is pure Rust (no C toolchain, no server), ACID
//! with copy-on-write B-trees and checksummed commits, so a `kill -9` at any moment leaves the
//! last committed transaction intact; it refuses a second process on the same file. SQLite
//! would do as well but costs a C build; a JSON file (the original's choice) is neither atomic
//! nor safe against concurrent writers. The cluster issue adds an etcd implementation of the
//! same trait.
//!
//! Every change is one transaction, committed durably before the call returns. Values are
//! JSON: the session record in the original's shape, so an imported `state.json` maps
//! one-to-one and the file stays inspectable.

use std::collections::BTreeMap;
use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::record::SessionRecord;

#[cfg(feature = "etcd")]
pub mod etcd;

const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
const UPLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("uploads");
const SESSION_UPLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("session_uploads");
const AGENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("agents");
/// Join-token ids already redeemed (tokens are single-use), with when.
const USED_TOKENS: TableDefinition<&str, &str> = TableDefinition::new("used_tokens");
/// Web Push subscriptions, one per browser, by id.
const PUSH_SUBSCRIPTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("push_subscriptions");

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be used.
    #[error("state store: {0}")]
    Db(#[from] redb::Error),
    /// etcd could not be reached in time, or refused (`--store etcd`).
    #[error("state store (etcd): {0}")]
    Etcd(String),
    /// A change saw its inputs change under it; it is computed again (never returned).
    #[error("state store: a change raced another; retried")]
    Retry,
    /// A stored value is not what this version writes.
    #[error("state store holds an unreadable value for {key}: {reason}")]
    Corrupt {
        /// The key of the value.
        key: String,
        /// What serde said.
        reason: String,
    },
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> StoreError {
                StoreError::Db(e.into())
            }
        }
    )*};
}
db_err!(redb::DatabaseError, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

/// An uploaded file, as the original's `state.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub upload_id: String,
    pub path: String,
    pub file_name: String,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub ref_sessions: Vec<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

/// An enrolled agent: its name and the certificate it was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub name: String,
    /// SHA-256 of the agent's certificate (DER), hex: only this certificate is accepted.
    pub cert_fingerprint: String,
    pub enrolled_at: String,
}

/// A browser's Web Push subscription (what its `pushManager.subscribe` gave) and what it has
/// muted. The keys are the browser's public ones: they encrypt what is sent to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSubscriptionRecord {
    /// Hex SHA-256 of `endpoint` (so a browser subscribing again replaces its record).
    pub id: String,
    /// The push service's URL for this browser.
    pub endpoint: String,
    /// The browser's P-256 public key (uncompressed point, base64url without padding).
    pub p256dh: String,
    /// The browser's 16-byte authentication secret (base64url without padding).
    pub auth: String,
    pub created_at: String,
    /// Nothing is pushed to this browser (but a test it asks for).
    #[serde(default)]
    pub muted: bool,
    /// Sessions this browser hears nothing about.
    #[serde(default)]
    pub muted_sessions: Vec<String>,
    /// The VAPID contact for this browser's pushes when `--push-contact` is not set: the
    /// subscribing page's origin, when it was HTTPS.
    #[serde(default)]
    pub contact: Option<String>,
}

/// Everything in the store.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// Sessions, oldest first.
    pub sessions: Vec<SessionRecord>,
    /// Uploads by id.
    pub uploads: BTreeMap<String, UploadRecord>,
    /// Upload ids referenced by each session.
    pub session_uploads: BTreeMap<String, Vec<String>>,
    /// Enrolled agents by name.
    pub agents: BTreeMap<String, AgentRecord>,
    /// Web Push subscriptions by id.
    pub push_subscriptions: BTreeMap<String, PushSubscriptionRecord>,
}

/// The persistence interface of the coordinator.
pub trait StateStore: Send + Sync + 'static {
    /// Reads everything.
    fn load(&self) -> Result<Snapshot, StoreError>;
    /// What a coordinator that has just been elected serves from: [`StateStore::load`], unless
    /// the store kept a copy current while it stood by (etcd's watch), caught up to now.
    fn load_to_lead(&self) -> Result<Snapshot, StoreError> {
        self.load()
    }
    /// Creates or replaces a session record.
    fn put_session(&self, record: &SessionRecord) -> Result<(), StoreError>;
    /// Removes a session record and its upload references (the uploads keep their records,
    /// with the session gone from `ref_sessions`; [`StateStore::delete_upload`] removes those
    /// nobody references once their blobs are gone).
    fn delete_session(&self, id: &str) -> Result<(), StoreError>;
    /// Records a new upload referenced by `session`, in one transaction.
    fn add_upload(&self, session: &str, upload: &UploadRecord) -> Result<(), StoreError>;
    /// Makes `session` reference the uploads `ids` too (a branch inherits its source's).
    fn share_uploads(&self, session: &str, ids: &[String]) -> Result<(), StoreError>;
    /// Forgets an upload whose blob is deleted.
    fn delete_upload(&self, id: &str) -> Result<(), StoreError>;
    /// Adds everything in `snapshot` that is not there yet (by id), in one transaction.
    fn merge(&self, snapshot: &Snapshot) -> Result<usize, StoreError>;
    /// Redeems a join token and enrolls an agent, in one transaction: refused (`Ok(Err)`) when
    /// the token was used already or the name is taken.
    fn enroll(&self, token_id: &str, agent: &AgentRecord) -> Result<Result<(), &'static str>, StoreError>;
    /// Removes an agent: its certificate is refused from then on.
    fn delete_agent(&self, name: &str) -> Result<bool, StoreError>;
    /// Creates or replaces a Web Push subscription (by its id).
    fn put_push_subscription(&self, subscription: &PushSubscriptionRecord) -> Result<(), StoreError>;
    /// Removes a Web Push subscription; whether there was one.
    fn delete_push_subscription(&self, id: &str) -> Result<bool, StoreError>;
}

/// The embedded default store (see the module docs).
pub struct RedbStore {
    db: redb::Database,
}

impl RedbStore {
    /// Opens (or creates) the store file.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        let db = redb::Database::create(path)?;
        // Create the tables once so readers never meet a missing table.
        let tx = db.begin_write()?;
        tx.open_table(SESSIONS)?;
        tx.open_table(UPLOADS)?;
        tx.open_table(SESSION_UPLOADS)?;
        tx.open_table(AGENTS)?;
        tx.open_table(USED_TOKENS)?;
        tx.open_table(PUSH_SUBSCRIPTIONS)?;
        tx.commit()?;
        Ok(RedbStore { db })
    }

    fn write(&self, f: impl FnOnce(&redb::WriteTransaction) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        f(&tx)?;
        tx.commit()?;
        Ok(())
    }
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise")
}

fn from_json<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt { key: key.to_string(), reason: e.to_string() })
}

impl StateStore for RedbStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        let tx = self.db.begin_read()?;
        let mut snap = Snapshot::default();
        for row in tx.open_table(SESSIONS)?.iter()? {
            let (k, v) = row?;
            snap.sessions.push(from_json(k.value(), v.value())?);
        }
        snap.sessions.sort_by(|a, b| (&a.created_at, &a.piface_id).cmp(&(&b.created_at, &b.piface_id)));
        for row in tx.open_table(UPLOADS)?.iter()? {
            let (k, v) = row?;
            snap.uploads.insert(k.value().to_string(), from_json(k.value(), v.value())?);
        }
        for row in tx.open_table(SESSION_UPLOADS)?.iter()? {
            let (k, v) = row?;
            snap.session_uploads.insert(k.value().to_string(), from_json(k.value(), v.value())?);
        }
        for row in tx.open_table(AGENTS)?.iter()? {
            let (k, v) = row?;
            snap.agents.insert(k.value().to_string(), from_json(k.value(), v.value())?);
        }
        for row in tx.open_table(PUSH_SUBSCRIPTIONS)?.iter()? {
            let (k, v) = row?;
            snap.push_subscriptions.insert(k.value().to_string(), from_json(k.value(), v.value())?);
        }
        Ok(snap)
    }

    fn put_session(&self, record: &SessionRecord) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.open_table(SESSIONS)?.insert(record.piface_id.as_str(), to_json(record).as_slice())?;
            Ok(())
        })
    }

    fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.open_table(SESSIONS)?.remove(id)?;
            let list: Vec<String> = match tx.open_table(SESSION_UPLOADS)?.remove(id)? {
                Some(v) => from_json(id, v.value())?,
                None => Vec::new(),
            };
            let mut uploads = tx.open_table(UPLOADS)?;
            for upload_id in list {
                let record: Option<UploadRecord> = match uploads.get(upload_id.as_str())? {
                    Some(v) => Some(from_json(&upload_id, v.value())?),
                    None => None,
                };
                if let Some(mut record) = record {
                    record.ref_sessions.retain(|s| s != id);
                    uploads.insert(upload_id.as_str(), to_json(&record).as_slice())?;
                }
            }
            Ok(())
        })
    }

    fn add_upload(&self, session: &str, upload: &UploadRecord) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.open_table(UPLOADS)?.insert(upload.upload_id.as_str(), to_json(upload).as_slice())?;
            let mut refs = tx.open_table(SESSION_UPLOADS)?;
            let mut list: Vec<String> = match refs.get(session)? {
                Some(v) => from_json(session, v.value())?,
                None => Vec::new(),
            };
            if !list.contains(&upload.upload_id) {
                list.push(upload.upload_id.clone());
            }
            refs.insert(session, to_json(&list).as_slice())?;
            Ok(())
        })
    }

    fn share_uploads(&self, session: &str, ids: &[String]) -> Result<(), StoreError> {
        self.write(|tx| {
            let mut refs = tx.open_table(SESSION_UPLOADS)?;
            let mut list: Vec<String> = match refs.get(session)? {
                Some(v) => from_json(session, v.value())?,
                None => Vec::new(),
            };
            let mut uploads = tx.open_table(UPLOADS)?;
            for id in ids {
                if !list.contains(id) {
                    list.push(id.clone());
                }
                let record: Option<UploadRecord> = match uploads.get(id.as_str())? {
                    Some(v) => Some(from_json(id, v.value())?),
                    None => None,
                };
                if let Some(mut record) = record {
                    if !record.ref_sessions.iter().any(|s| s == session) {
                        record.ref_sessions.push(session.to_string());
                        uploads.insert(id.as_str(), to_json(&record).as_slice())?;
                    }
                }
            }
            refs.insert(session, to_json(&list).as_slice())?;
            Ok(())
        })
    }

    fn delete_upload(&self, id: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.open_table(UPLOADS)?.remove(id)?;
            Ok(())
        })
    }

    fn merge(&self, snapshot: &Snapshot) -> Result<usize, StoreError> {
        let mut added = 0;
        self.write(|tx| {
            let mut sessions = tx.open_table(SESSIONS)?;
            for record in &snapshot.sessions {
                if sessions.get(record.piface_id.as_str())?.is_none() {
                    sessions.insert(record.piface_id.as_str(), to_json(record).as_slice())?;
                    added += 1;
                }
            }
            let mut uploads = tx.open_table(UPLOADS)?;
            for (id, upload) in &snapshot.uploads {
                if uploads.get(id.as_str())?.is_none() {
                    uploads.insert(id.as_str(), to_json(upload).as_slice())?;
                }
            }
            let mut refs = tx.open_table(SESSION_UPLOADS)?;
            for (id, list) in &snapshot.session_uploads {
                if refs.get(id.as_str())?.is_none() {
                    refs.insert(id.as_str(), to_json(list).as_slice())?;
                }
            }
            Ok(())
        })?;
        Ok(added)
    }

    fn enroll(&self, token_id: &str, agent: &AgentRecord) -> Result<Result<(), &'static str>, StoreError> {
        let tx = self.db.begin_write()?;
        let refused = {
            let mut used = tx.open_table(USED_TOKENS)?;
            let mut agents = tx.open_table(AGENTS)?;
            if used.get(token_id)?.is_some() {
                Some("this join token was used already; create a new one with `piface token create`")
            } else if agents.get(agent.name.as_str())?.is_some() {
                Some("an agent with this name is enrolled already; choose another --name or remove it first")
            } else {
                used.insert(token_id, agent.enrolled_at.as_str())?;
                agents.insert(agent.name.as_str(), to_json(agent).as_slice())?;
                None
            }
        };
        match refused {
            Some(reason) => {
                tx.abort()?;
                Ok(Err(reason))
            }
            None => {
                tx.commit()?;
                Ok(Ok(()))
            }
        }
    }

    fn delete_agent(&self, name: &str) -> Result<bool, StoreError> {
        let tx = self.db.begin_write()?;
        let existed = tx.open_table(AGENTS)?.remove(name)?.is_some();
        tx.commit()?;
        Ok(existed)
    }

    fn put_push_subscription(&self, subscription: &PushSubscriptionRecord) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.open_table(PUSH_SUBSCRIPTIONS)?.insert(subscription.id.as_str(), to_json(subscription).as_slice())?;
            Ok(())
        })
    }

    fn delete_push_subscription(&self, id: &str) -> Result<bool, StoreError> {
        let tx = self.db.begin_write()?;
        let existed = tx.open_table(PUSH_SUBSCRIPTIONS)?.remove(id)?.is_some();
        tx.commit()?;
        Ok(existed)
    }
}

/// The original's `state.json` (see the contract's behaviour.md §3), read leniently: a record
/// that does not parse is skipped with a warning rather than failing the whole import.
pub fn parse_original_state(text: &str) -> Result<Snapshot, serde_json::Error> {
    #[derive(Deserialize)]
    struct Original {
        #[serde(default)]
        sessions: BTreeMap<String, serde_json::Value>,
        #[serde(default)]
        uploads: BTreeMap<String, serde_json::Value>,
        #[serde(default)]
        session_upload_ids: BTreeMap<String, Vec<String>>,
    }
    let original: Original = serde_json::from_str(text)?;
    let mut snap = Snapshot { session_uploads: original.session_upload_ids, ..Snapshot::default() };
    for (id, value) in original.sessions {
        match serde_json::from_value::<SessionRecord>(value) {
            Ok(mut record) => {
                if record.piface_id.is_empty() {
                    record.piface_id = id;
                }
                snap.sessions.push(record);
            }
            Err(e) => tracing::warn!(session_id = %id, "skipping an unreadable session of the old state file: {e}"),
        }
    }
    snap.sessions.sort_by(|a, b| (&a.created_at, &a.piface_id).cmp(&(&b.created_at, &b.piface_id)));
    for (id, value) in original.uploads {
        match serde_json::from_value::<UploadRecord>(value) {
            Ok(upload) => {
                snap.uploads.insert(id, upload);
            }
            Err(e) => tracing::warn!(upload_id = %id, "skipping an unreadable upload of the old state file: {e}"),
        }
    }
    Ok(snap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(id: &str) -> UploadRecord {
        UploadRecord {
            upload_id: id.into(),
            path: format!("/s/uploads/_shared/{id}_f"),
            file_name: "f".into(),
            mime_type: None,
            size: 1,
            ref_sessions: vec!["a".into()],
            created_at: None,
        }
    }

    fn session(id: &str, created_at: &str) -> SessionRecord {
        serde_json::from_value(serde_json::json!({
            "piface_id": id, "working_dir": "/w", "status": "live", "agent": "local",
            "created_at": created_at, "last_active": created_at,
        }))
        .unwrap()
    }

    fn agent(name: &str) -> AgentRecord {
        AgentRecord { name: name.into(), cert_fingerprint: "ab".into(), enrolled_at: "2026-12-05T00:00:00Z".into() }
    }

    fn push(id: &str) -> PushSubscriptionRecord {
        PushSubscriptionRecord {
            id: id.into(),
            endpoint: format!("https://push.example/{id}"),
            p256dh: "BP".into(),
            auth: "au".into(),
            created_at: "2026-12-05T00:00:00Z".into(),
            muted: false,
            muted_sessions: Vec::new(),
            contact: Some("https://box.tail1234.ts.net".into()),
        }
    }

    /// What every [`StateStore`] must do; `open` opens the same store again (a restart).
    pub(crate) fn contract(open: &dyn Fn() -> Box<dyn StateStore>) {
        {
            let store = open();
            store.put_session(&session("late", "2026-12-05T00:00:02Z")).unwrap();
            store.put_session(&session("early", "2026-12-05T00:00:01Z")).unwrap();
            let mut changed = session("late", "2026-12-05T00:00:02Z");
            changed.session_name = Some("renamed".into());
            store.put_session(&changed).unwrap();
            store.add_upload("a", &upload("u1")).unwrap();
            store.add_upload("a", &upload("u2")).unwrap();
            store.share_uploads("b", &["u1".into()]).unwrap(); // a branch of a
            store.delete_session("a").unwrap();
            let merged = Snapshot {
                sessions: vec![session("early", "x"), session("new", "2026-12-05T00:00:03Z")],
                ..Snapshot::default()
            };
            assert_eq!(store.merge(&merged).unwrap(), 1, "only the session not there yet is added");
            assert_eq!(store.enroll("t1", &agent("box")).unwrap(), Ok(()));
            assert!(store.enroll("t1", &agent("other")).unwrap().is_err(), "a join token works once");
            assert!(store.enroll("t2", &agent("box")).unwrap().is_err(), "a name is enrolled once");
            assert_eq!(store.enroll("t3", &agent("other")).unwrap(), Ok(()));
            assert!(store.delete_agent("other").unwrap());
            assert!(!store.delete_agent("other").unwrap());
            store.put_push_subscription(&push("phone")).unwrap();
            store.put_push_subscription(&push("laptop")).unwrap();
            store.put_push_subscription(&push("gone")).unwrap();
            let muted = PushSubscriptionRecord { muted_sessions: vec!["late".into()], ..push("phone") };
            store.put_push_subscription(&muted).unwrap();
            assert!(store.delete_push_subscription("gone").unwrap());
            assert!(!store.delete_push_subscription("gone").unwrap(), "removed once");
        } // closed as a crash would leave it: every step above is its own commit
        let store = open();
        let snap = store.load().unwrap();
        let ids: Vec<_> = snap.sessions.iter().map(|r| r.piface_id.as_str()).collect();
        assert_eq!(ids, ["early", "late", "new"], "oldest first");
        assert_eq!(snap.sessions[0].created_at, "2026-12-05T00:00:01Z", "merge never replaces");
        assert_eq!(snap.sessions[1].session_name.as_deref(), Some("renamed"));
        assert_eq!(snap.agents.keys().collect::<Vec<_>>(), ["box"]);
        assert_eq!(snap.push_subscriptions.keys().collect::<Vec<_>>(), ["laptop", "phone"]);
        assert_eq!(snap.push_subscriptions["phone"].muted_sessions, ["late"], "a replaced subscription");
        assert_eq!(snap.push_subscriptions["laptop"], push("laptop"));
        assert_eq!(snap.uploads["u1"].ref_sessions, ["b"], "b still references u1");
        assert!(snap.uploads["u2"].ref_sessions.is_empty(), "u2 is an orphan now");
        assert_eq!(snap.session_uploads.get("b").map(Vec::as_slice), Some(&["u1".to_string()][..]));
        assert!(!snap.session_uploads.contains_key("a"));
        store.delete_session("b").unwrap();
        assert!(store.load().unwrap().uploads["u1"].ref_sessions.is_empty(), "the last reference went");
        store.delete_upload("u1").unwrap();
        store.delete_upload("u2").unwrap();
        assert!(store.load().unwrap().uploads.is_empty());
    }

    #[test]
    fn the_embedded_store_keeps_the_contract_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        contract(&|| Box::new(RedbStore::open(&path).unwrap()));
    }

    /// The contract over TLS: an etcd that serves clients only over TLS and asks for a client
    /// certificate of its CA (`--etcd-ca`, `--etcd-cert`, `--etcd-key`).
    #[cfg(feature = "etcd")]
    #[test]
    fn the_etcd_store_keeps_the_contract_over_tls_with_a_client_certificate() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let etcd = rt.block_on(piface_test_support::etcd::Etcd::start_tls()).unwrap();
        let tls = etcd.tls().unwrap();
        assert!(etcd.url().starts_with("https://"), "{}", etcd.url());
        // Without a client certificate, etcd does not answer.
        let ca = reqwest::Certificate::from_pem(tls.ca_pem.as_bytes()).unwrap();
        let anonymous = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
        let health = rt.block_on(anonymous.get(format!("{}/health", etcd.url())).send());
        assert!(health.is_err(), "{health:?}");
        let options = etcd::EtcdOptions {
            endpoints: vec![etcd.url()],
            prefix: "/tls/".into(),
            ca_pem: Some(tls.ca_pem.clone().into_bytes()),
            identity_pem: Some((tls.client_cert_pem.clone().into_bytes(), tls.client_key_pem.clone().into_bytes())),
            ..Default::default()
        };
        contract(&|| Box::new(etcd::EtcdStore::connect(&options).unwrap()));
        drop(etcd);
    }

    /// The contract, an election and a standby's copy for an etcd user whose role may touch
    /// nothing but the prefix (`--etcd-user`, `--etcd-password-file`), with authentication on.
    #[cfg(feature = "etcd")]
    #[test]
    fn the_etcd_store_needs_nothing_outside_its_prefix_with_authentication_on() {
        use etcd_client::Permission;
        let rt = tokio::runtime::Runtime::new().unwrap();
        let etcd = rt.block_on(piface_test_support::etcd::Etcd::start()).unwrap();
        rt.block_on(async {
            let mut admin = etcd_client::Client::connect([etcd.url()], None).await.unwrap();
            admin.user_add("root", "root-password", None).await.unwrap();
            admin.user_grant_role("root", "root").await.unwrap();
            admin.role_add("piface").await.unwrap();
            admin.role_grant_permission("piface", Permission::read_write("/mine/").with_prefix()).await.unwrap();
            admin.user_add("piface", "secret", None).await.unwrap();
            admin.user_grant_role("piface", "piface").await.unwrap();
            admin.auth_enable().await.unwrap();
        });
        let options = etcd::EtcdOptions {
            endpoints: vec![etcd.url()],
            prefix: "/mine/".into(),
            user: Some(("piface".into(), "secret".into())),
            ..Default::default()
        };
        contract(&|| Box::new(etcd::EtcdStore::connect(&options).unwrap()));
        let standby = etcd::EtcdStore::connect(&options).unwrap();
        let election = standby.elect(crate::leader::LeaderInfo { name: "me".into(), url: None, agents: None });
        let elected = rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(30), election.elected.cancelled()).await
        });
        assert!(elected.is_ok(), "the campaign needs only keys of the prefix and a lease");
        let followed = standby.take_followed().unwrap().unwrap();
        assert_eq!(format!("{followed:?}"), format!("{:?}", standby.load().unwrap()));
        rt.block_on(election.resign());
        drop(etcd);
    }

    /// A standby follows every change of the contract, made by another store on the same prefix
    /// while it campaigns, and its copy is what a fresh load reads; a write under another
    /// prefix (a revision without an event for the watch) does not keep it from catching up.
    #[cfg(feature = "etcd")]
    #[test]
    fn an_etcd_standby_follows_every_change_and_takes_over_with_them() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let etcd = rt.block_on(piface_test_support::etcd::Etcd::start()).unwrap();
        let options =
            etcd::EtcdOptions { endpoints: vec![etcd.url()], prefix: "/follow/".into(), ..Default::default() };
        let leader = etcd::EtcdStore::connect(&options).unwrap();
        leader.put_session(&session("before", "2026-12-05T00:00:00Z")).unwrap();
        let standby = etcd::EtcdStore::connect(&options).unwrap();
        let me = crate::leader::LeaderInfo { name: "standby".into(), url: None, agents: None };
        let election = standby.elect(me);
        leader.delete_session("before").unwrap();
        contract(&|| Box::new(etcd::EtcdStore::connect(&options).unwrap()));
        let other = etcd::EtcdOptions { prefix: "/elsewhere/".into(), ..options.clone() };
        etcd::EtcdStore::connect(&other).unwrap().put_session(&session("apart", "x")).unwrap();
        let followed = standby.take_followed().expect("a standby follows").unwrap();
        let loaded = leader.load().unwrap();
        assert!(!loaded.sessions.is_empty() && !loaded.agents.is_empty() && !loaded.push_subscriptions.is_empty());
        assert_eq!(format!("{followed:?}"), format!("{loaded:?}"));
        assert!(standby.take_followed().is_none(), "taken once; the following stopped");
        rt.block_on(election.resign());
        drop(etcd);
    }

    /// The same against a real etcd (Debian's `etcd-server`), under a prefix of its own.
    #[cfg(feature = "etcd")]
    #[test]
    fn the_etcd_store_keeps_the_contract_across_reconnecting() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let etcd = rt.block_on(piface_test_support::etcd::Etcd::start()).unwrap();
        let options = etcd::EtcdOptions { endpoints: vec![etcd.url()], prefix: "/test/".into(), ..Default::default() };
        assert!(etcd::EtcdStore::connect(&options).unwrap().was_empty());
        contract(&|| Box::new(etcd::EtcdStore::connect(&options).unwrap()));
        assert!(!etcd::EtcdStore::connect(&options).unwrap().was_empty());
        let other = etcd::EtcdOptions { prefix: "/other/".into(), ..options.clone() };
        assert!(etcd::EtcdStore::connect(&other).unwrap().load().unwrap().sessions.is_empty(), "prefixes are apart");
        drop(etcd);
    }
}
