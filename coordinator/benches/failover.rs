//! Failover benchmark (issue 20): `cargo bench -p piface-coordinator --features etcd --bench
//! failover [-- RUNS]` (default 10).
//!
//! Two coordinators on one real etcd (Debian's `etcd-server`, started here on loopback) and an
//! agent process given both. A turn streams through the leader to a browser socket; the leader
//! is killed (`kill -9`) and the clock runs until a browser socket of the other coordinator
//! gets the turn's next event. The killed one comes back as the standby and the next run kills
//! the new leader, and so on. Printed per run and as the median: when the standby led (health
//! 200), when the agent was up on it, when the first event came through it; and the median as
//! a ratio of the lease TTL and of the agent's link timeout, the two settings it is made of
//! (a dead leader leads on for at most a TTL; an agent notices a silent link after its timeout).

use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use piface_test_support::etcd::Etcd;
use piface_test_support::piface::{git_repo, join_token, share_cluster, AgentProcess, Options, Piface, WsClient};
use piface_test_support::{pi_bin, spawn_fake_llm, PiEnv};
use serde_json::{json, Value};

const PIFACE: &str = env!("CARGO_BIN_EXE_piface");
/// `--leader-ttl` of both coordinators, seconds.
const TTL: u64 = 2;
/// `--link-timeout` of the agent, seconds.
const LINK_TIMEOUT: u64 = 3;

/// One coordinator of the pair: its data dir and QUIC port outlive its processes.
struct Seat {
    dir: PathBuf,
    quic: String,
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn is_text_delta(event: &Value) -> bool {
    event["type"] == "message_update" && event["assistantMessageEvent"]["type"] == "text_delta"
}

/// Reads `ws` until a streamed token arrives; `None` when the socket ends or stays silent for 2 s.
async fn next_delta(ws: &mut WsClient) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
            Ok(Ok(event)) if is_text_delta(&event) => return Some(event),
            Ok(Ok(_)) => {}
            _ => return None,
        }
    }
}

struct Failover {
    led: Duration,
    agent_up: Duration,
    first_event: Duration,
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10);
    let etcd = Etcd::start().await.unwrap();
    let llm = spawn_fake_llm().await.unwrap();
    let env = PiEnv::new(&llm.base_url()).unwrap();
    let root = tempfile::tempdir().unwrap();
    let seats: Vec<Seat> = ["a", "b"]
        .iter()
        .map(|name| Seat { dir: root.path().join(name), quic: format!("127.0.0.1:{}", free_udp_port()) })
        .collect();
    let start = |seat: &Seat| {
        let args = [
            "--store",
            "etcd",
            "--etcd-endpoints",
            &etcd.url(),
            "--leader-ttl",
            &TTL.to_string(),
            "--quic",
            &seat.quic,
        ]
        .map(String::from)
        .to_vec();
        Piface::start_coordinator(Options {
            bin: PIFACE.into(),
            pi_bin: pi_bin().unwrap(),
            envs: env.envs(),
            args,
            data_dir: Some(seat.dir.clone()),
        })
    };
    let mut leader = start(&seats[0]).await.unwrap();
    leader.wait_leading(Duration::from_secs(30)).await;
    // The standby shares the cluster's keys and the login (see the README).
    share_cluster(&seats[0].dir, &seats[1].dir).unwrap();
    let mut standby = start(&seats[1]).await.unwrap();
    let agent_dir = tempfile::tempdir().unwrap();
    let _agent = AgentProcess {
        bin: PIFACE.into(),
        pi_bin: pi_bin().unwrap(),
        coordinators: format!("{},{}", seats[0].quic, seats[1].quic),
        name: "worker".into(),
        data_dir: agent_dir.path().join("worker"),
        token: Some(join_token(PIFACE.as_ref(), &seats[0].dir).unwrap()),
        envs: env.envs(),
        args: vec!["--link-timeout".into(), LINK_TIMEOUT.to_string()],
    }
    .spawn()
    .unwrap();
    leader.wait_agent_up("worker").await;
    let repo = git_repo();
    let id = leader
        .new_session(&json!({"working_dir": repo.path(), "agent": "worker", "provider": "fake", "model": "fake-model"}))
        .await;
    // One long turn (100 tokens a second for a quarter of an hour) that outlasts every run.
    let (mut ws, _) = leader.connect(&id).await.unwrap();
    ws.send(&json!({"type": "prompt", "message": "[[tokens:100000]] [[delay:10]]"})).await.unwrap();
    eprintln!("failover, {runs} runs: lease TTL {TTL} s, agent link timeout {LINK_TIMEOUT} s");
    let mut results = Vec::new();
    let mut leading_seat = 0;
    for run in 0..runs {
        let (mut ws, _) = leader.connect(&id).await.unwrap();
        next_delta(&mut ws).await.expect("the turn streams through the leader");
        drop(ws);
        leader.kill9().await.unwrap();
        let killed = Instant::now();
        let led = killed + standby.wait_leading(Duration::from_secs(60)).await;
        let mut agent_up = None;
        let first_event = loop {
            assert!(killed.elapsed() < Duration::from_secs(120), "no event through the new leader");
            if agent_up.is_none() {
                let (_, agents) = standby.get("/api/agents").await.unwrap_or((0, Value::Null));
                if agents["agents"].as_array().is_some_and(|l| l.iter().any(|a| a["status"] == "up")) {
                    agent_up = Some(Instant::now());
                }
            }
            let Ok((mut ws, _)) = standby.connect(&id).await else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            if next_delta(&mut ws).await.is_some() {
                break Instant::now();
            }
        };
        let agent_up = agent_up.unwrap_or(first_event).min(first_event);
        let result = Failover { led: led - killed, agent_up: agent_up - killed, first_event: first_event - killed };
        eprintln!(
            "run {:2}: led after {:7.2?}, agent up after {:7.2?}, first event after {:7.2?}",
            run + 1,
            result.led,
            result.agent_up,
            result.first_event
        );
        results.push(result);
        // The killed coordinator comes back as the standby.
        leader = standby;
        standby = start(&seats[leading_seat]).await.unwrap();
        leading_seat = 1 - leading_seat;
    }
    let first = median(results.iter().map(|r| r.first_event).collect());
    println!(
        "failover, median of {runs}: led after {:.2?}, agent up after {:.2?}, first event through the new leader after {:.2?}",
        median(results.iter().map(|r| r.led).collect()),
        median(results.iter().map(|r| r.agent_up).collect()),
        first
    );
    println!(
        "  = {:.2}x the lease TTL ({TTL} s), {:.2}x the agent's link timeout ({LINK_TIMEOUT} s), {:.2}x TTL + link timeout",
        first.as_secs_f64() / TTL as f64,
        first.as_secs_f64() / LINK_TIMEOUT as f64,
        first.as_secs_f64() / (TTL + LINK_TIMEOUT) as f64
    );
    drop(standby);
    drop(leader);
    drop(etcd);
}
