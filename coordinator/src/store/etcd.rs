//! [`EtcdStore`]: the state in etcd, for a coordinator that outgrew one machine (`--store etcd`).
//!
//! Same semantics as the embedded store: each call is one etcd transaction, durable (committed
//! by etcd's quorum) when it returns. Keys live under a prefix (`--etcd-prefix`, default
//! `/piface/`), one folder per table of the embedded store:
//!
//! ```text
//! <prefix>sessions/<id>         the session record (JSON)
//! <prefix>uploads/<id>          an upload's record (JSON)
//! <prefix>session_uploads/<id>  the upload ids a session references (JSON list)
//! <prefix>agents/<name>         an enrolled agent (JSON)
//! <prefix>used_tokens/<id>      a redeemed join token (its time of use)
//! <prefix>push_subscriptions/<id>  a browser's Web Push subscription (JSON)
//! ```
//!
//! A change that reads before it writes (an upload's references, an enrollment) is optimistic:
//! the transaction commits only if every key it read still has the revision it read (a key read
//! as absent must still be absent), and is computed again otherwise. An etcd that cannot be
//! reached is retried with backoff for [`RETRY_FOR`]; what cannot be written by then is an error
//! of the call, which the registry logs. No private key is ever written to etcd.
//!
//! The [`StateStore`] interface is synchronous (the embedded store's transactions are local):
//! the etcd client runs on a small runtime of its own, and a call waits for its answer the
//! way a redb commit waits for its fsync.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity, TlsOptions, Txn, TxnOp,
    TxnOpResponse,
};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{AgentRecord, PushSubscriptionRecord, Snapshot, StateStore, StoreError, UploadRecord};
use crate::leader::{Election, LeaderInfo};
use crate::record::SessionRecord;

mod follow;

/// How long a call keeps retrying an etcd it cannot reach.
pub const RETRY_FOR: Duration = Duration::from_secs(60);

/// How to reach etcd.
#[derive(Debug, Clone, Default)]
pub struct EtcdOptions {
    /// `http://host:port` or `https://host:port`, one or more members.
    pub endpoints: Vec<String>,
    /// Every key starts with this.
    pub prefix: String,
    /// etcd's user and password (authentication on).
    pub user: Option<(String, String)>,
    /// PEM of the CA that signed etcd's certificate (TLS).
    pub ca_pem: Option<Vec<u8>>,
    /// PEM certificate and key of this coordinator (etcd's `--client-cert-auth`).
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// The leader's lease (`--leader-ttl`): how long a dead leader leads on, and how long a
    /// leader may lose etcd before it stops.
    pub leader_ttl: Duration,
}

/// The leader's lease unless `--leader-ttl` says otherwise.
pub const DEFAULT_LEADER_TTL: Duration = Duration::from_secs(10);

/// The client options `options` ask for; `request_timeout` bounds each call (the election's
/// client has none: a campaign waits as long as another coordinator leads).
fn connect_options(options: &EtcdOptions, request_timeout: Option<Duration>) -> ConnectOptions {
    let mut connect = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
    if let Some(timeout) = request_timeout {
        connect = connect.with_timeout(timeout);
    }
    if let Some((user, password)) = &options.user {
        connect = connect.with_user(user.clone(), password.clone());
    }
    if options.ca_pem.is_some() || options.identity_pem.is_some() {
        let mut tls = TlsOptions::new();
        if let Some(ca) = &options.ca_pem {
            tls = tls.ca_certificate(Certificate::from_pem(ca));
        }
        if let Some((cert, key)) = &options.identity_pem {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        connect = connect.with_tls(tls);
    }
    connect
}

/// See the module docs.
pub struct EtcdStore {
    client: Client,
    prefix: String,
    /// Always `Some` until dropped (see the `Drop`).
    runtime: Option<tokio::runtime::Runtime>,
    was_empty: bool,
    /// How it connected: the election opens a client of its own with these.
    options: EtcdOptions,
    /// A standby's copy of the state (started with the campaign, taken by the new leader).
    follower: std::sync::Mutex<Option<follow::Follower>>,
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        // Dropping a runtime waits for its tasks, which an async caller (the coordinator's
        // shutdown) must not do.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What one attempt of a read-modify-write change wants to write.
type Writes = Vec<TxnOp>;

/// The keys a change read, with the revision each had (0: absent) and its value.
struct Reads(BTreeMap<String, (i64, Option<Vec<u8>>)>);

impl Reads {
    fn json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        match self.0.get(key).and_then(|(_, v)| v.as_deref()) {
            Some(bytes) => Ok(Some(from_json(key, bytes)?)),
            None => Ok(None),
        }
    }

    fn exists(&self, key: &str) -> bool {
        self.0.get(key).is_some_and(|(_, v)| v.is_some())
    }
}

fn from_json<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt { key: key.to_string(), reason: e.to_string() })
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise")
}

fn etcd_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Etcd(e.to_string())
}

impl EtcdStore {
    /// Connects to etcd (waiting up to [`RETRY_FOR`] for it to answer).
    pub fn connect(options: &EtcdOptions) -> Result<EtcdStore, StoreError> {
        if options.endpoints.is_empty() {
            return Err(etcd_error("no etcd endpoint given (--etcd-endpoints)"));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("etcd")
            .enable_all()
            .build()
            .map_err(etcd_error)?;
        let prefix = if options.prefix.is_empty() { "/piface/".to_string() } else { options.prefix.clone() };
        let connect = connect_options(options, Some(Duration::from_secs(10)));
        let (endpoints, probe) = (options.endpoints.clone(), prefix.clone());
        let client = wait_on(
            &runtime,
            retrying("connecting to etcd", move || {
                let (endpoints, connect, probe) = (endpoints.clone(), connect.clone(), probe.clone());
                async move {
                    let mut client = Client::connect(endpoints, Some(connect)).await?;
                    // Connecting is lazy: a read proves etcd answers and the login works (a
                    // key of the prefix: a user may be allowed nothing else).
                    client.get(probe, Some(GetOptions::new().with_count_only())).await?;
                    Ok(client)
                }
            }),
        )?;
        let (probe, folder) = (client.clone(), prefix.clone());
        let was_empty = wait_on(
            &runtime,
            retrying("reading from etcd", move || {
                let (client, folder) = (probe.clone(), folder.clone());
                async move {
                    let options = GetOptions::new().with_prefix().with_count_only();
                    Ok(client.kv_client().get(folder.as_str(), Some(options)).await?.count() == 0)
                }
            }),
        )?;
        Ok(EtcdStore {
            client,
            prefix,
            runtime: Some(runtime),
            was_empty,
            options: options.clone(),
            follower: std::sync::Mutex::new(None),
        })
    }

    /// Whether Piface had written nothing under the prefix before this connection.
    pub fn was_empty(&self) -> bool {
        self.was_empty
    }

    fn wait<T: Send + 'static>(
        &self,
        future: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        match &self.runtime {
            Some(runtime) => wait_on(runtime, future),
            None => Err(etcd_error("the etcd client stopped")),
        }
    }

    fn key(&self, table: &str, id: &str) -> String {
        format!("{}{table}/{id}", self.prefix)
    }

    /// A change: `compute` gets the current values of `keys` and says what to write (and what
    /// to return); it is committed if none of the keys changed meanwhile, else computed again.
    fn change<T>(
        &self,
        keys: Vec<String>,
        compute: impl Fn(&Reads) -> Result<(Writes, T), StoreError>,
    ) -> Result<T, StoreError> {
        loop {
            let (client, read_keys) = (self.client.clone(), keys.clone());
            let reads = self.wait(retrying("reading from etcd", move || {
                let (client, keys) = (client.clone(), read_keys.clone());
                async move {
                    // One transaction of gets: one round trip, every key read at one revision.
                    let gets: Vec<TxnOp> = keys.iter().map(|key| TxnOp::get(key.as_str(), None)).collect();
                    let reply = client.kv_client().txn(Txn::new().and_then(gets)).await?;
                    let mut reads = BTreeMap::new();
                    for (key, op) in keys.into_iter().zip(reply.op_responses()) {
                        let found = match op {
                            TxnOpResponse::Get(get) => {
                                get.kvs().first().map(|kv| (kv.mod_revision(), Some(kv.value().to_vec())))
                            }
                            _ => None,
                        };
                        reads.insert(key, found.unwrap_or((0, None)));
                    }
                    Ok(Reads(reads))
                }
            }))?;
            let (writes, result) = compute(&reads)?;
            let client = self.client.clone();
            if writes.is_empty() {
                return Ok(result);
            }
            let compares: Vec<Compare> = reads
                .0
                .iter()
                .map(|(key, (revision, _))| Compare::mod_revision(key.as_str(), CompareOp::Equal, *revision))
                .collect();
            let committed = self.wait(retrying("writing to etcd", move || {
                let (client, txn) = (client.clone(), Txn::new().when(compares.clone()).and_then(writes.clone()));
                async move { Ok(client.kv_client().txn(txn).await?.succeeded()) }
            }))?;
            if committed {
                return Ok(result);
            }
            // Someone else changed a key we read: read again.
        }
    }

    fn put(&self, key: String, value: Vec<u8>) -> Result<(), StoreError> {
        self.change(vec![], move |_| Ok((vec![TxnOp::put(key.as_str(), value.clone(), None)], ())))
    }

    /// Deletes `key`; whether it was there (read and deleted in one change).
    fn delete_if_present(&self, key: String) -> Result<bool, StoreError> {
        self.change(vec![key.clone()], |r| {
            let existed = r.exists(&key);
            Ok((if existed { vec![TxnOp::delete(key.as_str(), None)] } else { vec![] }, existed))
        })
    }
}

/// The election (see `crate::leader`): one key per candidate under `<prefix>leader`, each on
/// its candidate's lease; the oldest key leads.
impl EtcdStore {
    /// Campaigns for leadership as `me` on a lease of `--leader-ttl`, in the background on the
    /// store's runtime, with an etcd client of its own (its calls wait as long as another
    /// coordinator leads, so they cannot share the store's request timeout).
    pub fn elect(&self, me: LeaderInfo) -> Election {
        let ttl = if self.options.leader_ttl.is_zero() { DEFAULT_LEADER_TTL } else { self.options.leader_ttl };
        let (leader_tx, leader) = watch::channel(None);
        let election = Election {
            leader,
            elected: CancellationToken::new(),
            lost: CancellationToken::new(),
            resign: CancellationToken::new(),
            resigned: CancellationToken::new(),
        };
        let campaign = Campaign {
            options: self.options.clone(),
            name: format!("{}leader", self.prefix),
            me,
            ttl,
            leader: leader_tx,
            elected: election.elected.clone(),
            lost: election.lost.clone(),
            resign: election.resign.clone(),
            resigned: election.resigned.clone(),
        };
        match &self.runtime {
            Some(runtime) => {
                runtime.spawn(campaign.run());
                // While it stands by, it follows every change the leader makes.
                let _on = runtime.enter();
                let follower = follow::Follower::start(self.options.clone(), self.prefix.clone());
                *self.follower.lock().expect("follower lock") = Some(follower);
            }
            None => election.lost.cancel(),
        }
        election
    }

    /// The copy of the state this store followed since [`EtcdStore::elect`], once it holds
    /// every change up to etcd's current revision (an error if it does not get there within
    /// 5 s); the following stops. `None` when nothing was followed.
    pub fn take_followed(&self) -> Option<Result<Snapshot, StoreError>> {
        let follower = self.follower.lock().expect("follower lock").take()?;
        let client = self.client.clone();
        Some(self.wait(async move { follow::caught_up(&client, &follower, Duration::from_secs(5)).await }))
    }

    /// Pins the cluster this prefix belongs to: the first coordinator records its cluster CA
    /// (the certificate, public) and a check value of its join-token key (an HMAC under the
    /// key, not the key); every later one must present the same, since agents trust one CA
    /// and tokens made by one coordinator must be accepted by the next leader. The private
    /// keys stay in each coordinator's data dir (copied there by the operator, see the README):
    /// no private key is ever written to etcd.
    pub fn pin_cluster(&self, pin: &ClusterPin) -> Result<(), StoreError> {
        let key = format!("{}cluster", self.prefix);
        let value = to_json(pin);
        let found = self.change(vec![key.clone()], move |reads| match reads.json::<ClusterPin>(&key)? {
            Some(existing) => Ok((vec![], Some(existing))),
            None => Ok((vec![TxnOp::put(key.as_str(), value.clone(), None)], None)),
        })?;
        match found {
            Some(existing) if existing.ca_fingerprint != pin.ca_fingerprint => Err(etcd_error(format!(
                "this coordinator's cluster CA ({}) is not the cluster's ({}): copy the data dir's cluster/ folder from a coordinator of this cluster",
                pin.ca_fingerprint, existing.ca_fingerprint
            ))),
            Some(existing) if existing.token_key_check != pin.token_key_check => Err(etcd_error(
                "this coordinator's join-token key is not the cluster's: copy the data dir's cluster/ folder from a coordinator of this cluster",
            )),
            _ => Ok(()),
        }
    }
}

/// What [`EtcdStore::pin_cluster`] records under `<prefix>cluster`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClusterPin {
    /// SHA-256 of the cluster CA's certificate (hex).
    pub ca_fingerprint: String,
    /// The CA's certificate (PEM), for operators and tools.
    pub ca_pem: String,
    /// HMAC-SHA256 of a fixed text under the join-token key (hex): equal keys give equal checks.
    pub token_key_check: String,
}

/// One coordinator's campaign, run on the store's runtime.
struct Campaign {
    options: EtcdOptions,
    name: String,
    me: LeaderInfo,
    ttl: Duration,
    leader: watch::Sender<Option<LeaderInfo>>,
    elected: CancellationToken,
    lost: CancellationToken,
    resign: CancellationToken,
    resigned: CancellationToken,
}

impl Campaign {
    async fn run(self) {
        let client = tokio::select! {
            client = connect_untimed(&self.options) => client,
            () = self.resign.cancelled() => {
                self.resigned.cancel();
                return;
            }
        };
        tokio::spawn(observe(client.clone(), self.name.clone(), self.leader.clone(), self.resign.clone()));
        // A lease that ends while this coordinator is a standby (etcd lost it for a whole TTL)
        // takes its candidacy with it: campaign again on a new one.
        let mut lease_id = None;
        while !self.resign.is_cancelled() && !self.lost.is_cancelled() {
            let Some(lease) = self.grant(&client).await else { break };
            lease_id = Some(lease);
            let lease_ended = CancellationToken::new();
            let keeper = tokio::spawn(keep_alive(client.clone(), lease, self.ttl, lease_ended.clone()));
            let elected = tokio::select! {
                won = self.campaign(&client, lease) => won,
                () = lease_ended.cancelled() => false,
                () = self.resign.cancelled() => false,
            };
            if elected {
                tracing::info!(name = %self.me.name, ttl_s = self.ttl.as_secs(), "this coordinator leads the cluster");
                self.leader.send_replace(Some(self.me.clone()));
                self.elected.cancel();
                tokio::select! {
                    () = lease_ended.cancelled() => {
                        tracing::error!("the leader's lease in etcd could not be renewed for a whole TTL, or ended: this coordinator no longer leads");
                        self.lost.cancel();
                    }
                    () = self.resign.cancelled() => {}
                }
            } else if lease_ended.is_cancelled() {
                tracing::warn!("this standby's lease in etcd ended; campaigning again");
            }
            keeper.abort();
            if self.resign.is_cancelled() || self.lost.is_cancelled() {
                break;
            }
        }
        if let Some(lease) = lease_id {
            // Giving the lease back deletes the campaign key at once: a standby leads now, not
            // a TTL later.
            let mut leases = client.lease_client();
            match tokio::time::timeout(Duration::from_secs(3), leases.revoke(lease)).await {
                Ok(Ok(_)) => tracing::info!("gave the leader's lease back"),
                Ok(Err(e)) => tracing::warn!("giving the lease back: {e}"),
                Err(_) => tracing::warn!("giving the lease back: etcd did not answer"),
            }
        }
        self.resigned.cancel();
    }

    /// A new lease, retried until etcd grants one; `None` when resigning meanwhile.
    async fn grant(&self, client: &Client) -> Option<i64> {
        let ttl = i64::try_from(self.ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        loop {
            let mut leases = client.lease_client();
            let attempt = tokio::time::timeout(Duration::from_secs(5), leases.grant(ttl, None));
            tokio::select! {
                r = attempt => match r {
                    Ok(Ok(reply)) => return Some(reply.id()),
                    Ok(Err(e)) => tracing::warn!("election: asking etcd for a lease: {e}"),
                    Err(_) => tracing::warn!("election: asking etcd for a lease: no answer"),
                },
                () = self.resign.cancelled() => return None,
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Campaigns until elected (true) or the campaign cannot go on (false); a campaign on the
    /// same lease is taken up where it was after an error.
    async fn campaign(&self, client: &Client, lease: i64) -> bool {
        let value = serde_json::to_vec(&self.me).expect("leader info serialises");
        loop {
            match client.election_client().campaign(self.name.as_str(), value.clone(), lease).await {
                Ok(_) => return true,
                Err(e) => tracing::debug!("election: campaign: {e}; again"),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Renews `lease` every third of `ttl` until it can no longer be sure the lease lives: etcd
/// says it ended, or no renewal got through for a whole `ttl`. Then `ended` fires.
async fn keep_alive(client: Client, lease: i64, ttl: Duration, ended: CancellationToken) {
    let mut renewed = Instant::now();
    let every = ttl / 3;
    'reconnect: while renewed.elapsed() < ttl {
        let opened = tokio::time::timeout(every, client.lease_client().keep_alive(lease)).await;
        let Ok(Ok((mut keeper, mut replies))) = opened else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        while renewed.elapsed() < ttl {
            if keeper.keep_alive().await.is_err() {
                continue 'reconnect;
            }
            match tokio::time::timeout(every, replies.message()).await {
                Ok(Ok(Some(reply))) if reply.ttl() > 0 => renewed = Instant::now(),
                Ok(Ok(Some(_))) => {
                    tracing::warn!(lease, "etcd says the lease ended");
                    break 'reconnect;
                }
                _ => continue 'reconnect,
            }
            tokio::time::sleep(every).await;
        }
    }
    ended.cancel();
}

/// Follows who leads, for the standby's answers, until `stop`.
async fn observe(client: Client, name: String, leader: watch::Sender<Option<LeaderInfo>>, stop: CancellationToken) {
    loop {
        let follow = async {
            let mut stream = client.election_client().observe(name.as_str()).await?;
            while let Some(reply) = stream.message().await? {
                let info = reply.kv().and_then(|kv| serde_json::from_slice::<LeaderInfo>(kv.value()).ok());
                leader.send_if_modified(|current| {
                    let changed = *current != info;
                    *current = info.clone();
                    changed
                });
            }
            Ok::<(), etcd_client::Error>(())
        };
        tokio::select! {
            r = follow => if let Err(e) = r {
                tracing::debug!("election: observing the leader: {e}");
            },
            () = stop.cancelled() => return,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A client without a request timeout (a campaign, an observation or a watch is one long
/// call), retried until etcd answers.
async fn connect_untimed(options: &EtcdOptions) -> Client {
    let mut wait = Duration::from_millis(100);
    loop {
        match Client::connect(options.endpoints.clone(), Some(connect_options(options, None))).await {
            Ok(client) => return client,
            Err(e) => tracing::warn!("connecting to etcd: {e}"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

/// Runs `future` on the store's runtime and waits for it from this (synchronous) caller, which
/// may itself be a task of another runtime.
fn wait_on<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    future: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv().unwrap_or_else(|_| Err(etcd_error("the etcd client stopped")))
}

/// `attempt` until it succeeds or [`RETRY_FOR`] has passed, backing off from 100 ms to 2 s.
async fn retrying<T, F, Fut>(what: &'static str, attempt: F) -> Result<T, StoreError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    let start = Instant::now();
    let mut wait = Duration::from_millis(100);
    let mut warned = false;
    loop {
        match attempt().await {
            Ok(value) => {
                if warned {
                    tracing::info!("{what}: etcd answers again");
                }
                return Ok(value);
            }
            Err(e) if start.elapsed() < RETRY_FOR => {
                if !warned {
                    tracing::warn!("{what}: {e}; retrying for up to {} s", RETRY_FOR.as_secs());
                    warned = true;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(etcd_error(format!("{what}: {e}"))),
        }
    }
}

/// The tables a [`Snapshot`] is made of, in the order of [`Tables`].
const TABLES: [&str; 5] = ["sessions", "uploads", "session_uploads", "agents", "push_subscriptions"];

/// Each of [`TABLES`]' rows, `(id, value)`, oldest first.
type Tables = [Vec<(String, Vec<u8>)>; 5];

/// Every row of every table at one revision (one transaction of range reads): that revision,
/// and each row's key, create revision and value.
async fn read_tables(client: &Client, prefix: &str) -> Result<(i64, Vec<(String, i64, Vec<u8>)>), etcd_client::Error> {
    let ranges: Vec<TxnOp> = TABLES
        .iter()
        .map(|table| TxnOp::get(format!("{prefix}{table}/"), Some(GetOptions::new().with_prefix())))
        .collect();
    let reply = client.kv_client().txn(Txn::new().and_then(ranges)).await?;
    let revision = reply.header().map_or(0, |h| h.revision());
    let mut rows = Vec::new();
    for op in reply.op_responses() {
        if let TxnOpResponse::Get(get) = op {
            rows.extend(
                get.kvs().iter().map(|kv| {
                    (String::from_utf8_lossy(kv.key()).into_owned(), kv.create_revision(), kv.value().to_vec())
                }),
            );
        }
    }
    Ok((revision, rows))
}

/// `rows` (key, create revision, value) sorted into [`Tables`]; keys of no table are left out.
fn tables_of<'a>(prefix: &str, rows: impl Iterator<Item = (&'a str, i64, &'a [u8])>) -> Tables {
    let folders = TABLES.map(|table| format!("{prefix}{table}/"));
    let mut tables: [Vec<(i64, String, Vec<u8>)>; 5] = Default::default();
    for (key, created, value) in rows {
        if let Some(i) = folders.iter().position(|folder| key.starts_with(folder.as_str())) {
            tables[i].push((created, key[folders[i].len()..].to_string(), value.to_vec()));
        }
    }
    tables.map(|mut rows| {
        rows.sort_by_key(|(created, _, _)| *created);
        rows.into_iter().map(|(_, id, value)| (id, value)).collect()
    })
}

/// The snapshot `tables` hold; a row that does not parse is [`StoreError::Corrupt`].
fn snapshot_of(tables: Tables) -> Result<Snapshot, StoreError> {
    let [sessions, uploads, refs, agents, push] = tables;
    let mut snap = Snapshot::default();
    for (id, v) in sessions {
        snap.sessions.push(from_json(&id, &v)?);
    }
    snap.sessions.sort_by(|a, b| (&a.created_at, &a.piface_id).cmp(&(&b.created_at, &b.piface_id)));
    for (id, v) in uploads {
        let record = from_json(&id, &v)?;
        snap.uploads.insert(id, record);
    }
    for (id, v) in refs {
        let list = from_json(&id, &v)?;
        snap.session_uploads.insert(id, list);
    }
    for (name, v) in agents {
        let record = from_json(&name, &v)?;
        snap.agents.insert(name, record);
    }
    for (id, v) in push {
        let record: PushSubscriptionRecord = from_json(&id, &v)?;
        snap.push_subscriptions.insert(id, record);
    }
    Ok(snap)
}

impl StateStore for EtcdStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        let (client, prefix) = (self.client.clone(), self.prefix.clone());
        let tables = self.wait(retrying("loading from etcd", move || {
            let (client, prefix) = (client.clone(), prefix.clone());
            async move {
                let (_, rows) = read_tables(&client, &prefix).await?;
                Ok(tables_of(
                    &prefix,
                    rows.iter().map(|(key, created, value)| (key.as_str(), *created, value.as_slice())),
                ))
            }
        }))?;
        snapshot_of(tables)
    }

    fn load_to_lead(&self) -> Result<Snapshot, StoreError> {
        match self.take_followed() {
            Some(Ok(snapshot)) => {
                tracing::info!(sessions = snapshot.sessions.len(), "taking over with the state this standby followed");
                Ok(snapshot)
            }
            Some(Err(e)) => {
                tracing::warn!("{e}; loading the state from etcd instead");
                self.load()
            }
            None => self.load(),
        }
    }

    fn put_session(&self, record: &SessionRecord) -> Result<(), StoreError> {
        self.put(self.key("sessions", &record.piface_id), to_json(record))
    }

    fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        let refs_key = self.key("session_uploads", id);
        // The session's upload list says which uploads to touch; the change re-reads it and
        // commits only if it is unchanged.
        let list: Vec<String> =
            self.change(vec![refs_key.clone()], |r| Ok((vec![], r.json(&refs_key)?.unwrap_or_default())))?;
        let upload_keys: Vec<String> = list.iter().map(|u| self.key("uploads", u)).collect();
        let session_key = self.key("sessions", id);
        let mut keys = vec![refs_key.clone()];
        keys.extend(upload_keys.iter().cloned());
        self.change(keys, |r| {
            let now: Vec<String> = r.json(&refs_key)?.unwrap_or_default();
            if now != list {
                return Err(StoreError::Retry);
            }
            let mut writes = vec![TxnOp::delete(session_key.as_str(), None), TxnOp::delete(refs_key.as_str(), None)];
            for key in &upload_keys {
                if let Some(mut record) = r.json::<UploadRecord>(key)? {
                    record.ref_sessions.retain(|s| s != id);
                    writes.push(TxnOp::put(key.as_str(), to_json(&record), None));
                }
            }
            Ok((writes, ()))
        })
        .or_else(|e| match e {
            // The list changed between the two reads: start over.
            StoreError::Retry => self.delete_session(id),
            e => Err(e),
        })
    }

    fn add_upload(&self, session: &str, upload: &UploadRecord) -> Result<(), StoreError> {
        let refs_key = self.key("session_uploads", session);
        let upload_key = self.key("uploads", &upload.upload_id);
        self.change(vec![refs_key.clone()], |r| {
            let mut list: Vec<String> = r.json(&refs_key)?.unwrap_or_default();
            if !list.contains(&upload.upload_id) {
                list.push(upload.upload_id.clone());
            }
            let writes = vec![
                TxnOp::put(upload_key.as_str(), to_json(upload), None),
                TxnOp::put(refs_key.as_str(), to_json(&list), None),
            ];
            Ok((writes, ()))
        })
    }

    fn share_uploads(&self, session: &str, ids: &[String]) -> Result<(), StoreError> {
        let refs_key = self.key("session_uploads", session);
        let upload_keys: Vec<String> = ids.iter().map(|u| self.key("uploads", u)).collect();
        let mut keys = vec![refs_key.clone()];
        keys.extend(upload_keys.iter().cloned());
        self.change(keys, |r| {
            let mut list: Vec<String> = r.json(&refs_key)?.unwrap_or_default();
            let mut writes = Vec::new();
            for (id, key) in ids.iter().zip(&upload_keys) {
                if !list.contains(id) {
                    list.push(id.clone());
                }
                if let Some(mut record) = r.json::<UploadRecord>(key)? {
                    if !record.ref_sessions.iter().any(|s| s == session) {
                        record.ref_sessions.push(session.to_string());
                        writes.push(TxnOp::put(key.as_str(), to_json(&record), None));
                    }
                }
            }
            writes.push(TxnOp::put(refs_key.as_str(), to_json(&list), None));
            Ok((writes, ()))
        })
    }

    fn delete_upload(&self, id: &str) -> Result<(), StoreError> {
        let key = self.key("uploads", id);
        self.change(vec![], move |_| Ok((vec![TxnOp::delete(key.as_str(), None)], ())))
    }

    fn merge(&self, snapshot: &Snapshot) -> Result<usize, StoreError> {
        let mut entries: Vec<(String, Vec<u8>, bool)> = Vec::new();
        for record in &snapshot.sessions {
            entries.push((self.key("sessions", &record.piface_id), to_json(record), true));
        }
        for (id, upload) in &snapshot.uploads {
            entries.push((self.key("uploads", id), to_json(upload), false));
        }
        for (id, list) in &snapshot.session_uploads {
            entries.push((self.key("session_uploads", id), to_json(list), false));
        }
        let keys = entries.iter().map(|(k, _, _)| k.clone()).collect();
        self.change(keys, |r| {
            let mut added = 0;
            let mut writes = Vec::new();
            for (key, value, is_session) in &entries {
                if !r.exists(key) {
                    writes.push(TxnOp::put(key.as_str(), value.clone(), None));
                    added += usize::from(*is_session);
                }
            }
            Ok((writes, added))
        })
    }

    fn enroll(&self, token_id: &str, agent: &AgentRecord) -> Result<Result<(), &'static str>, StoreError> {
        let token_key = self.key("used_tokens", token_id);
        let agent_key = self.key("agents", &agent.name);
        self.change(vec![token_key.clone(), agent_key.clone()], |r| {
            if r.exists(&token_key) {
                return Ok((
                    vec![],
                    Err("this join token was used already; create a new one with `piface token create`"),
                ));
            }
            if r.exists(&agent_key) {
                return Ok((
                    vec![],
                    Err("an agent with this name is enrolled already; choose another --name or remove it first"),
                ));
            }
            let writes = vec![
                TxnOp::put(token_key.as_str(), agent.enrolled_at.as_bytes(), None),
                TxnOp::put(agent_key.as_str(), to_json(agent), None),
            ];
            Ok((writes, Ok(())))
        })
    }

    fn delete_agent(&self, name: &str) -> Result<bool, StoreError> {
        self.delete_if_present(self.key("agents", name))
    }

    fn put_push_subscription(&self, subscription: &PushSubscriptionRecord) -> Result<(), StoreError> {
        self.put(self.key("push_subscriptions", &subscription.id), to_json(subscription))
    }

    fn delete_push_subscription(&self, id: &str) -> Result<bool, StoreError> {
        self.delete_if_present(self.key("push_subscriptions", id))
    }
}
