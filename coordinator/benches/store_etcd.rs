//! State store latency, etcd next to the embedded store (issue 20): `cargo bench -p
//! piface-coordinator --features etcd --bench store_etcd [-- N]` (default 200 writes, 20
//! sessions).
//!
//! In one run, against a real etcd (Debian's `etcd-server`, on loopback, data on the same disk
//! as the embedded store's file):
//! - a state write: `put_session` of one record (what every change of a session costs), N
//!   times on each store, p50 and p99;
//! - a session create through the API: `POST /api/sessions` on `piface serve` with each store
//!   (the real pi starting against the fake LLM; the record written before the answer), N/10
//!   times, p50 and p99.
//!
//! Ratios are etcd's figures over the embedded store's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use piface_coordinator::record::SessionRecord;
use piface_coordinator::store::etcd::{EtcdOptions, EtcdStore};
use piface_coordinator::store::{RedbStore, StateStore};
use piface_test_support::etcd::Etcd;
use piface_test_support::piface::{git_repo, Options, Piface};
use piface_test_support::{pi_bin, spawn_fake_llm, PiEnv};
use serde_json::json;

const PIFACE: &str = env!("CARGO_BIN_EXE_piface");

fn record(n: usize) -> SessionRecord {
    serde_json::from_value(json!({
        "piface_id": format!("{n:08x}-0000-4000-8000-000000000000"),
        "working_dir": "/home/user/projects/piface",
        "status": "live",
        "session_file": format!("/home/user/.pi/agent/sessions/--home-user-projects-piface--/{n:08x}.jsonl"),
        "model_provider": "openai-codex", "model_id": "gpt-5.5", "thinking_level": "medium",
        "session_name": format!("session {n}"),
        "created_at": "2026-05-01T12:00:00.000000Z",
        "last_active": format!("2026-05-02T08:00:{:02}.{n:06}Z", n % 60)
    }))
    .unwrap()
}

/// p50 and p99 of `samples`.
fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// `n` writes of one session's record (its `last_active` moving on), each timed.
fn writes(store: &dyn StateStore, n: usize) -> Vec<Duration> {
    store.put_session(&record(0)).unwrap(); // the first write of a table, and warm-up
    (1..=n)
        .map(|i| {
            let mut r = record(0);
            r.last_active = record(i).last_active;
            let start = Instant::now();
            store.put_session(&r).unwrap();
            start.elapsed()
        })
        .collect()
}

/// `n` sessions created through the API of a `piface serve` started with `args`, each timed
/// (and killed again, so that no more than one pi runs).
async fn creates(env: &PiEnv, args: Vec<String>, n: usize) -> Vec<Duration> {
    let server = Piface::start(Options {
        bin: PIFACE.into(),
        pi_bin: pi_bin().unwrap(),
        envs: env.envs(),
        args,
        data_dir: None,
    })
    .await
    .unwrap();
    server.wait_leading(Duration::from_secs(30)).await;
    let repo = git_repo();
    let body = json!({"working_dir": repo.path(), "provider": "fake", "model": "fake-model", "no_session": true});
    let mut samples = Vec::new();
    for i in 0..=n {
        let start = Instant::now();
        let id = server.new_session(&body).await;
        if i > 0 {
            samples.push(start.elapsed()); // the first one warms up
        }
        let (status, _) = server.post(&format!("/api/sessions/{id}/kill"), &json!({})).await.unwrap();
        assert_eq!(status, 200);
    }
    server.stop().await.unwrap();
    samples
}

fn line(what: &str, embedded: (Duration, Duration), etcd: (Duration, Duration)) {
    println!(
        "{what:<28} embedded p50 {:>9.2?} p99 {:>9.2?} | etcd p50 {:>9.2?} p99 {:>9.2?} | etcd/embedded p50 {:5.2}x p99 {:5.2}x",
        embedded.0,
        embedded.1,
        etcd.0,
        etcd.1,
        etcd.0.as_secs_f64() / embedded.0.as_secs_f64(),
        etcd.1.as_secs_f64() / embedded.1.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(200);
    let etcd = Etcd::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = etcd.url();
    let (embedded_writes, etcd_writes) = tokio::task::spawn_blocking(move || {
        let embedded: Arc<dyn StateStore> = Arc::new(RedbStore::open(&dir.path().join("state.redb")).unwrap());
        let options = EtcdOptions { endpoints: vec![url], prefix: "/bench/".into(), ..Default::default() };
        let etcd: Arc<dyn StateStore> = Arc::new(EtcdStore::connect(&options).unwrap());
        (writes(&*embedded, n), writes(&*etcd, n))
    })
    .await
    .unwrap();
    line(&format!("state write ({n}x)"), percentiles(embedded_writes), percentiles(etcd_writes));

    let llm = spawn_fake_llm().await.unwrap();
    let env = PiEnv::new(&llm.base_url()).unwrap();
    let sessions = (n / 10).max(3);
    let embedded = creates(&env, Vec::new(), sessions).await;
    let etcd_args = ["--store", "etcd", "--etcd-endpoints", &etcd.url(), "--etcd-prefix", "/serve/"];
    let on_etcd = creates(&env, etcd_args.map(String::from).to_vec(), sessions).await;
    line(&format!("session create ({sessions}x)"), percentiles(embedded), percentiles(on_etcd));
}
