//! A standby's copy of the state: every table under the prefix, read at one revision and then
//! kept current by a watch from the next one, so that a standby follows every change the leader
//! makes and takes over from what it already holds.
//!
//! Taking over needs the copy to be complete: [`caught_up`] reads etcd's current revision and
//! waits until the watch has delivered everything up to it (asking etcd for a progress
//! notification, which also covers revisions made by writes outside the prefix). A watch that
//! etcd cancels (its start revision compacted away) or that fails is started again from a new
//! read of the tables.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, EventType, GetOptions, WatchOptions};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{connect_untimed, etcd_error, read_tables, snapshot_of, tables_of, EtcdOptions, Tables};
use crate::store::{Snapshot, StoreError};

/// Every key under the prefix that belongs to a table, with its create revision and value.
#[derive(Default)]
struct Mirror {
    kvs: BTreeMap<String, (i64, Vec<u8>)>,
}

impl Mirror {
    fn tables(&self, prefix: &str) -> Tables {
        tables_of(prefix, self.kvs.iter().map(|(key, (created, value))| (key.as_str(), *created, value.as_slice())))
    }
}

/// The running copy; the watch stops when this is dropped.
pub(super) struct Follower {
    prefix: String,
    mirror: Arc<Mutex<Mirror>>,
    /// The revision up to which the copy holds every change.
    applied: watch::Receiver<i64>,
    /// Asks the watch for a progress notification.
    progress: mpsc::UnboundedSender<()>,
    stop: CancellationToken,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Follower {
    /// Starts following `prefix` (on the current runtime, with a client of its own).
    pub(super) fn start(options: EtcdOptions, prefix: String) -> Follower {
        let mirror = Arc::new(Mutex::new(Mirror::default()));
        let (applied_tx, applied) = watch::channel(0);
        let (progress, progress_rx) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        tokio::spawn(run(options, prefix.clone(), mirror.clone(), applied_tx, progress_rx, stop.clone()));
        Follower { prefix, mirror, applied, progress, stop }
    }
}

/// The copy once it holds every change up to etcd's current revision; an error when the watch
/// has not got there within `within` (the caller then reads the tables itself).
pub(super) async fn caught_up(client: &Client, follower: &Follower, within: Duration) -> Result<Snapshot, StoreError> {
    let current = client
        .kv_client()
        .get(follower.prefix.as_str(), Some(GetOptions::new().with_count_only()))
        .await
        .map_err(etcd_error)?
        .header()
        .map_or(0, |h| h.revision());
    let mut applied = follower.applied.clone();
    let wait = async {
        loop {
            let _ = follower.progress.send(());
            // etcd answers a progress request only while the watch is in sync: ask again.
            if tokio::time::timeout(Duration::from_millis(200), applied.wait_for(|r| *r >= current)).await.is_ok() {
                return;
            }
        }
    };
    tokio::time::timeout(within, wait)
        .await
        .map_err(|_| etcd_error(format!("the standby's copy did not reach revision {current} in {within:?}")))?;
    let tables = follower.mirror.lock().expect("mirror lock").tables(&follower.prefix);
    snapshot_of(tables)
}

async fn run(
    options: EtcdOptions,
    prefix: String,
    mirror: Arc<Mutex<Mirror>>,
    applied: watch::Sender<i64>,
    mut progress: mpsc::UnboundedReceiver<()>,
    stop: CancellationToken,
) {
    let client = tokio::select! {
        client = connect_untimed(&options) => client,
        () = stop.cancelled() => return,
    };
    loop {
        let follow = follow_once(&client, &prefix, &mirror, &applied, &mut progress);
        tokio::select! {
            r = follow => match r {
                Ok(()) => tracing::info!("following etcd: the watch ended; reading the state again"),
                Err(e) => tracing::warn!("following etcd: {e}; reading the state again"),
            },
            () = stop.cancelled() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// One read of the tables and a watch from there, until the watch ends or fails.
async fn follow_once(
    client: &Client,
    prefix: &str,
    mirror: &Mutex<Mirror>,
    applied: &watch::Sender<i64>,
    progress: &mut mpsc::UnboundedReceiver<()>,
) -> Result<(), etcd_client::Error> {
    let (revision, rows) = read_tables(client, prefix).await?;
    {
        let mut m = mirror.lock().expect("mirror lock");
        m.kvs = rows.into_iter().map(|(key, created, value)| (key, (created, value))).collect();
    }
    applied.send_replace(revision);
    let options = WatchOptions::new().with_prefix().with_start_revision(revision + 1);
    let mut stream = client.watch_client().watch(prefix, Some(options)).await?;
    loop {
        tokio::select! {
            Some(()) = progress.recv() => stream.request_progress().await?,
            message = stream.message() => {
                let Some(reply) = message? else { return Ok(()) };
                if reply.canceled() || reply.compact_revision() > 0 {
                    tracing::warn!(
                        compacted = reply.compact_revision(),
                        reason = reply.cancel_reason(),
                        "following etcd: the watch was cancelled"
                    );
                    return Ok(());
                }
                let mut m = mirror.lock().expect("mirror lock");
                for event in reply.events() {
                    let Some(kv) = event.kv() else { continue };
                    let key = String::from_utf8_lossy(kv.key()).into_owned();
                    match event.event_type() {
                        EventType::Put => {
                            m.kvs.insert(key, (kv.create_revision(), kv.value().to_vec()));
                        }
                        EventType::Delete => {
                            m.kvs.remove(&key);
                        }
                    }
                }
                drop(m);
                // An event batch's header is the revision of its last event; a progress
                // notification's is etcd's current revision, every change before it sent.
                if let Some(revision) = reply.header().map(|h| h.revision()) {
                    applied.send_if_modified(|r| {
                        let newer = revision > *r;
                        *r = (*r).max(revision);
                        newer
                    });
                }
            }
        }
    }
}
