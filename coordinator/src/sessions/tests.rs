//! The session lifecycle in process: an [`App`] over a store in a temporary directory and a
//! remote agent whose link is a channel the test holds, so that interleavings which two worker
//! threads produce by chance are written out step by step.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use piface_shared::protocol::{EventMeta, FromAgent, PiEvent, ToAgent};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::agent_link::AgentHandle;
use crate::control::pump_session;
use crate::hub::{ClientId, Fetch, Hub};
use crate::record::{SessionRecord, Status};
use crate::{App, Config};

/// An [`App`] holding one live session `id` of remote agent `agent` with no hub, as after a
/// coordinator restart; `agent` is up, its commands arrive on `to_agent`.
struct Remote {
    app: Arc<App>,
    _to_agent: mpsc::Receiver<ToAgent>,
    _dir: tempfile::TempDir,
}

fn remote(agent: &str, id: &str) -> Remote {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new("pi".into(), dir.path().to_path_buf());
    config.local_agent = false;
    config.probe_models_at_start = false;
    config.auth = crate::auth::Mode::None;
    let store = crate::open_store(dir.path()).unwrap();
    let record: SessionRecord = serde_json::from_value(json!({
        "piface_id": id, "working_dir": "/w", "status": "live", "agent": agent,
        "created_at": "2026-12-05T00:00:00Z", "last_active": "2026-12-05T00:00:00Z",
    }))
    .unwrap();
    let snapshot = crate::store::Snapshot { sessions: vec![record], ..Default::default() };
    let auth = crate::auth::Auth::new(crate::auth::Mode::None, dir.path()).unwrap();
    let app = App::new(config, store, snapshot, BTreeMap::new(), auth, CancellationToken::new());
    let (tx, rx) = mpsc::channel(64);
    app.agents.up(agent, Arc::new(AgentHandle::new(tx)), None);
    Remote { app, _to_agent: rx, _dir: dir }
}

/// Events `seqs` of session `id`, each a line `{"type":"message_end","n":seq}`.
fn events(id: &str, seqs: std::ops::Range<u64>) -> FromAgent {
    let events = seqs
        .map(|seq| PiEvent {
            seq,
            meta: EventMeta { kind: "message_end".into(), ..Default::default() },
            line: Bytes::from(json!({"type": "message_end", "n": seq}).to_string()),
            delta: None,
        })
        .collect();
    FromAgent::Events { session: id.into(), events }
}

/// The `n`s of the pi lines the client has been sent so far (notices left out), and whether
/// its hub has closed.
fn drain(hub: &Hub, client: ClientId) -> (Vec<u64>, bool) {
    let mut seen = Vec::new();
    loop {
        match hub.try_fetch(client, usize::MAX) {
            Some(Fetch::Frames(frames)) => {
                for frame in frames {
                    let v: Value = serde_json::from_slice(&frame).unwrap();
                    if let Some(n) = v["n"].as_u64() {
                        seen.push(n);
                    }
                }
            }
            Some(Fetch::Closed) => return (seen, true),
            Some(Fetch::Lagged) => panic!("the client lagged"),
            None => return (seen, false),
        }
    }
}

/// An agent reconnects while its session's pi runs on: the reopened session stream and the
/// reconciliation of the agent's session list both find the session without a hub and both
/// re-attach it (on a multi-thread runtime they run at the same time). Written out here in the
/// order that lost events: the first path's hub already has a client when the second re-attaches.
#[tokio::test]
async fn a_reconnect_racing_a_session_stream_keeps_one_hub_and_every_event_once() {
    let t = remote("a", "s");
    assert!(t.app.registry.hub("s").is_none());
    let first = t.app.reattach("a", "s").expect("a listed session of that agent");
    let client = first.attach();
    let second = t.app.reattach("a", "s").expect("still listed");
    assert!(Arc::ptr_eq(&first, &second), "the second re-attach replaced the hub its client is on");
    t.app.reconcile_agent("a", &["s".to_string()]);
    assert!(Arc::ptr_eq(&t.app.registry.live_hub("s").unwrap(), &first));
    assert_eq!(t.app.registry.get("s").unwrap().status, Status::Live);

    // The old stream delivers 0..5 and breaks; the new one resends from 3 (the agent's journal
    // overlaps what may have been lost), goes on to 10, and pi exits.
    let (old_tx, old_rx) = mpsc::channel(8);
    let old = tokio::spawn(pump_session(t.app.clone(), "a".into(), "s".into(), old_rx));
    old_tx.send(events("s", 0..5)).await.unwrap();
    drop(old_tx);
    old.await.unwrap();
    let (new_tx, new_rx) = mpsc::channel(8);
    let new = tokio::spawn(pump_session(t.app.clone(), "a".into(), "s".into(), new_rx));
    new_tx.send(events("s", 3..10)).await.unwrap();
    new_tx.send(FromAgent::Exited { session: "s".into(), code: Some(0), stderr: String::new() }).await.unwrap();
    new.await.unwrap();

    let (seen, closed) = drain(&first, client);
    assert_eq!(seen, (0..10).collect::<Vec<_>>(), "every event once, in order");
    assert!(closed, "the client learns that pi ended");
    assert!(t.app.registry.live_hub("s").is_none());
    assert_eq!(t.app.registry.get("s").unwrap().status, Status::Closed);
}

/// Another agent's stream, or an unknown session, re-attaches nothing.
#[tokio::test]
async fn only_the_sessions_own_agent_re_attaches_it() {
    let t = remote("a", "s");
    assert!(t.app.reattach("b", "s").is_none());
    assert!(t.app.reattach("a", "nope").is_none());
    assert!(t.app.registry.hub("s").is_none());
}

/// Resuming a session whose pi came back meanwhile (its hub is open) must not replace the hub.
#[tokio::test]
async fn an_open_hub_is_never_replaced() {
    let t = remote("a", "s");
    let hub = t.app.reattach("a", "s").unwrap();
    let other = Arc::new(Hub::new("s".into(), Default::default()));
    assert_eq!(t.app.registry.attach_hub("s", other.clone()).unwrap_err(), crate::registry::Attach::Occupied);
    assert!(Arc::ptr_eq(&t.app.registry.hub("s").unwrap(), &hub));
    hub.close();
    t.app.registry.attach_hub("s", other.clone()).expect("a closed hub makes way");
    assert!(Arc::ptr_eq(&t.app.registry.hub("s").unwrap(), &other));
}
