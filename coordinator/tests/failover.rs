//! Two coordinators on one etcd, two agent processes given both: one coordinator leads, the other stands by;
//! the leader is killed (`kill -9`) in the middle of a turn and the standby takes over. The
//! agent's pi runs on (same pid) and the turn's whole answer reaches a browser of the new
//! leader. Needs the `etcd` feature and Debian's `etcd-server`.
#![cfg(feature = "etcd")]

use std::path::Path;
use std::time::{Duration, Instant};

use piface_test_support::etcd::Etcd;
use piface_test_support::piface::{git_repo, join_token, share_cluster, AgentProcess, Options, Piface};
use piface_test_support::{pi_bin, spawn_fake_llm, PiEnv};
use serde_json::{json, Value};

const PIFACE: &str = env!("CARGO_BIN_EXE_piface");

fn pis_of(agent_pid: u32) -> Vec<u32> {
    // pi runs as a child of the agent (in its own process group).
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r.to_string()) else { continue };
        let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(agent_pid) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids
}

#[tokio::test]
async fn the_standby_takes_over_when_the_leader_is_killed_mid_turn() {
    let etcd = Etcd::start().await.unwrap();
    let llm = spawn_fake_llm().await.unwrap();
    let env = PiEnv::new(&llm.base_url()).unwrap();
    let store = |dir: &Path| Options {
        bin: PIFACE.into(),
        pi_bin: pi_bin().unwrap(),
        envs: env.envs(),
        args: ["--store", "etcd", "--etcd-endpoints", &etcd.url(), "--leader-ttl", "3"].map(String::from).to_vec(),
        data_dir: Some(dir.to_path_buf()),
    };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Piface::start_coordinator(store(dir_a.path())).await.unwrap();
    a.wait_leading(Duration::from_secs(30)).await;
    // The standby shares the cluster's keys and the login (see the README).
    share_cluster(dir_a.path(), dir_b.path()).unwrap();
    let b = Piface::start_coordinator(store(dir_b.path())).await.unwrap();
    // B stands by and says where the leader is; its other routes refuse.
    let mut standby = (0, Value::Null);
    for _ in 0..100 {
        standby = b.health().await;
        if standby.1["leader"] == a.base {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(standby.0, 503, "{standby:?}");
    assert_eq!((standby.1["status"].as_str(), standby.1["leader"].as_str()), (Some("standby"), Some(&*a.base)));
    assert_eq!(b.get("/api/sessions").await.unwrap().0, 503);

    // The agent is given the standby first: it is sent on to the leader.
    let agent_dir = tempfile::tempdir().unwrap();
    // Two agents, each given both coordinators (the standby first).
    let coordinators = format!("{},{}", b.quic_addr.as_ref().unwrap(), a.quic_addr.as_ref().unwrap());
    let agent = |name: &str| AgentProcess {
        bin: PIFACE.into(),
        pi_bin: pi_bin().unwrap(),
        coordinators: coordinators.clone(),
        name: name.into(),
        data_dir: agent_dir.path().join(name),
        token: Some(join_token(PIFACE.as_ref(), dir_a.path()).unwrap()),
        envs: env.envs(),
        args: Vec::new(),
    };
    let mut worker = agent("worker").spawn().unwrap();
    let mut helper = agent("helper").spawn().unwrap();
    a.wait_agent_up("helper").await;
    a.wait_agent_up("worker").await;

    let repo = git_repo();
    let id = a
        .new_session(&json!({"working_dir": repo.path(), "agent": "worker", "provider": "fake", "model": "fake-model"}))
        .await;
    let pis = pis_of(worker.id().unwrap());
    assert_eq!(pis.len(), 1, "one pi: {pis:?}");
    let (mut ws, _) = a.connect(&id).await.unwrap();
    ws.send(&json!({"type": "prompt", "message": "[[tokens:300]] [[delay:10]]"})).await.unwrap();
    let mut updates = 0;
    while updates < 20 {
        if ws.next().await.unwrap()["type"] == "message_update" {
            updates += 1;
        }
    }
    a.kill9().await.unwrap();
    let took = b.wait_leading(Duration::from_secs(30)).await;
    eprintln!("failover: the standby led {took:?} after the leader's kill (lease TTL 3 s)");
    b.wait_agent_up("worker").await;
    b.wait_agent_up("helper").await;
    assert_eq!(pis_of(worker.id().unwrap()), pis, "the same pi runs on");

    // A browser of the new leader gets the whole answer, once.
    let want: String = (0..300).map(|i| format!("t{i} ")).collect();
    assert_eq!(
        b.wait_for_answer(&id, &want).await,
        want,
        "the turn completed and its whole answer is in the new leader's history"
    );
    worker.start_kill().unwrap();
    helper.start_kill().unwrap();
    drop(etcd);
}

#[tokio::test]
async fn an_etcd_outage_of_5_s_stops_no_stream_and_loses_no_write() {
    let mut etcd = Etcd::start().await.unwrap();
    let llm = spawn_fake_llm().await.unwrap();
    let env = PiEnv::new(&llm.base_url()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Piface::start(Options {
        bin: PIFACE.into(),
        pi_bin: pi_bin().unwrap(),
        envs: env.envs(),
        args: ["--store", "etcd", "--etcd-endpoints", &etcd.url()].map(String::from).to_vec(),
        data_dir: Some(dir.path().to_path_buf()),
    })
    .await
    .unwrap();
    server.wait_leading(Duration::from_secs(30)).await;
    let repo = git_repo();
    let id = server.new_session(&json!({"working_dir": repo.path(), "provider": "fake", "model": "fake-model"})).await;
    let (mut ws, _) = server.connect(&id).await.unwrap();
    let tokens = 400;
    ws.send(&json!({"type": "prompt", "message": format!("[[tokens:{tokens}]] [[delay:20]]")})).await.unwrap();
    let mut deltas = Vec::new();
    let mut outage = None;
    let mut change = None;
    loop {
        let event = ws.next().await.unwrap();
        if event["type"] == "message_update" && event["assistantMessageEvent"]["type"] == "text_delta" {
            deltas.push(event["assistantMessageEvent"]["delta"].as_str().unwrap_or_default().to_string());
            if deltas.len() == 20 && outage.is_none() {
                etcd.pause().await;
                outage = Some(Instant::now());
                // A write while etcd is away: retried until it is back.
                let (http, url) = (server.http.clone(), server.url(&format!("/api/sessions/{id}")));
                change = Some(tokio::spawn(async move {
                    http.patch(url).json(&json!({"render_markdown": true})).send().await.map(|r| r.status())
                }));
            }
        }
        if outage.is_some_and(|t: Instant| t.elapsed() >= Duration::from_secs(5)) && etcd_paused(&outage) {
            etcd.resume().await.unwrap();
            outage = Some(Instant::now() - Duration::from_secs(3600));
        }
        if event["type"] == "agent_end" {
            break;
        }
    }
    assert!(outage.is_some_and(|t| t.elapsed() >= Duration::from_secs(3600)), "the turn outlasted the 5 s outage");
    let want: Vec<String> = (0..tokens).map(|i| format!("t{i} ")).collect();
    assert_eq!(deltas, want, "every token once, in order, while etcd was away");
    let status = change.unwrap().await.unwrap().unwrap();
    assert!(status.is_success(), "the change went through once etcd was back: {status}");
    assert_eq!(server.health().await.0, 200, "still the leader");
    // What was written is in etcd: a coordinator started afresh on it finds the change.
    server.stop().await.unwrap();
    let again = Piface::start(Options {
        bin: PIFACE.into(),
        pi_bin: pi_bin().unwrap(),
        envs: env.envs(),
        args: ["--store", "etcd", "--etcd-endpoints", &etcd.url()].map(String::from).to_vec(),
        data_dir: Some(tempfile::tempdir().unwrap().keep()),
    })
    .await
    .unwrap();
    // It leads once it has won its campaign (at once when the old leader gave its lease
    // back, a TTL later when it could not).
    again.wait_leading(Duration::from_secs(30)).await;
    let record = again.get(&format!("/api/sessions/{id}")).await.unwrap().1;
    assert_eq!(record["render_markdown"], true, "{record}");
}

/// Whether the outage is still on (its start is less than an hour ago).
fn etcd_paused(outage: &Option<Instant>) -> bool {
    outage.is_some_and(|t| t.elapsed() < Duration::from_secs(3600))
}
