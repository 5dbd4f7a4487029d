//! The session lifecycle in process: an [`App`] over a store in a temporary directory and a
//! remote agent whose link is a channel the test holds, so that interleavings which two worker
//! threads produce by chance are written out step by step: the test posts events to the
//! session actor in the order of the race and plays the agent's part itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use piface_shared::protocol::{EventMeta, FromAgent, PiEvent, SpawnError, Spawned, ToAgent};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::agent_link::{AgentHandle, LinkId};
use crate::control::pump_session;
use crate::hub::{ClientId, Fetch, Hub};
use crate::record::{SessionRecord, Status};
use crate::{App, Config};

/// An [`App`] holding live sessions of remote agent `agent` with no hub, as after a
/// coordinator restart; `agent` is up on `link`, its commands arrive on `to_agent`.
struct Remote {
    app: Arc<App>,
    agent: Arc<AgentHandle>,
    link: LinkId,
    to_agent: mpsc::Receiver<ToAgent>,
    _dir: tempfile::TempDir,
}

fn remote(agent: &str, id: &str) -> Remote {
    remote_with(agent, &[id])
}

fn remote_with(agent: &str, ids: &[&str]) -> Remote {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new("pi".into(), dir.path().to_path_buf());
    config.local_agent = false;
    config.probe_models_at_start = false;
    config.auth = crate::auth::Mode::None;
    let store = crate::open_store(dir.path()).unwrap();
    let record = |id: &str| -> SessionRecord {
        serde_json::from_value(json!({
            "piface_id": id, "working_dir": "/w", "status": "live", "agent": agent,
            "session_file": "/w/s.jsonl",
            "created_at": "2026-12-05T00:00:00Z", "last_active": "2026-12-05T00:00:00Z",
        }))
        .unwrap()
    };
    let snapshot = crate::store::Snapshot { sessions: ids.iter().map(|id| record(id)).collect(), ..Default::default() };
    let auth = crate::auth::Auth::new(crate::auth::Mode::None, dir.path()).unwrap();
    let app = App::new(config, store, snapshot, BTreeMap::new(), auth, CancellationToken::new());
    let (tx, rx) = mpsc::channel(64);
    let handle = Arc::new(AgentHandle::new(tx));
    app.agents.up(agent, handle.clone(), None);
    Remote { app, link: handle.link(), agent: handle, to_agent: rx, _dir: dir }
}

impl Remote {
    /// The next command the agent gets.
    async fn next_command(&mut self) -> ToAgent {
        self.to_agent.recv().await.expect("the coordinator holds the agent's channel")
    }

    /// Commands sent to the agent so far, without waiting.
    fn sent(&mut self) -> Vec<ToAgent> {
        std::iter::from_fn(|| self.to_agent.try_recv().ok()).collect()
    }

    /// The agent's session stream for `id` carrying `messages`, relayed to its end.
    async fn stream(&self, id: &str, messages: Vec<FromAgent>) {
        let (tx, rx) = mpsc::channel(messages.len().max(1));
        for m in messages {
            tx.send(m).await.unwrap();
        }
        drop(tx);
        pump_session(self.app.clone(), "a".into(), id.into(), rx).await;
        self.app.sessions.settle().await;
    }
}

fn exited(id: &str) -> FromAgent {
    FromAgent::Exited { session: id.into(), code: Some(0), stderr: String::new() }
}

/// Lets the tasks the actor spawned (notices) run.
async fn let_tasks_run() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
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
/// agent's session list both find the session without a hub. The stream asks first, the list
/// is handled before the stream's answer comes back, and a browser joins in between: the
/// stream, the list and the browser end up on one hub, and the browser sees every event once,
/// in order, across the old stream and the new one's resend.
#[tokio::test]
async fn a_reconnect_racing_a_session_stream_keeps_one_hub_and_every_event_once() {
    let t = remote("a", "s");
    assert!(t.app.registry.hub("s").is_none());
    let stream = t.app.sessions.open_stream("a", "s");
    t.app.sessions.listed("a", t.link, vec!["s".into()]);
    t.app.sessions.settle().await;
    let hub = t.app.registry.live_hub("s").expect("the list re-attached the session");
    let client = hub.attach();
    let streams_hub = stream.await.expect("a listed session of that agent");
    assert!(Arc::ptr_eq(&streams_hub, &hub), "the stream feeds another hub than the browser's");
    t.app.sessions.listed("a", t.link, vec!["s".into()]);
    let again = t.app.sessions.open_stream("a", "s").await.unwrap();
    assert!(Arc::ptr_eq(&again, &hub), "a second list or stream replaced the hub");
    assert_eq!(t.app.registry.get("s").unwrap().status, Status::Live);

    // The old stream delivers 0..5 and breaks; the new one resends from 3 (the agent's journal
    // overlaps what may have been lost), goes on to 10, and pi exits.
    t.stream("s", vec![events("s", 0..5)]).await;
    t.stream("s", vec![events("s", 3..10), exited("s")]).await;

    let (seen, closed) = drain(&hub, client);
    assert_eq!(seen, (0..10).collect::<Vec<_>>(), "every event once, in order");
    assert!(closed, "the client learns that pi ended");
    assert!(t.app.registry.live_hub("s").is_none());
    assert_eq!(t.app.registry.get("s").unwrap().status, Status::Closed);
}

/// The same race on two worker threads, for many sessions at once: each session's stream and
/// the agent's list agree on its hub whatever the timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_and_the_session_list_agree_on_every_hub_across_threads() {
    let ids: Vec<String> = (0..200).map(|n| format!("s{n}")).collect();
    let t = remote_with("a", &ids.iter().map(String::as_str).collect::<Vec<_>>());
    let streams: Vec<_> = ids
        .iter()
        .map(|id| {
            let (sessions, id) = (t.app.sessions.clone(), id.clone());
            tokio::spawn(async move { sessions.open_stream("a", &id).await })
        })
        .collect();
    let (sessions, link, running) = (t.app.sessions.clone(), t.link, ids.clone());
    let list = tokio::spawn(async move { sessions.listed("a", link, running) });
    let mut hubs = Vec::new();
    for stream in streams {
        hubs.push(stream.await.unwrap().expect("a listed session"));
    }
    list.await.unwrap();
    t.app.sessions.settle().await;
    for (id, hub) in ids.iter().zip(hubs) {
        assert!(Arc::ptr_eq(&t.app.registry.live_hub(id).unwrap(), &hub), "{id} has two hubs");
    }
}

/// Another agent's stream, or an unknown session, re-attaches nothing.
#[tokio::test]
async fn only_the_sessions_own_agent_re_attaches_it() {
    let t = remote("a", "s");
    assert!(t.app.sessions.open_stream("b", "s").await.is_none());
    assert!(t.app.sessions.open_stream("a", "nope").await.is_none());
    t.app.sessions.listed("b", t.link, vec!["s".into()]);
    t.app.sessions.settle().await;
    assert!(t.app.registry.hub("s").is_none());
}

/// A list from a link that is no longer the agent's current one is old news.
#[tokio::test]
async fn a_list_from_an_old_link_changes_nothing() {
    let t = remote("a", "s");
    let (tx, _rx) = mpsc::channel(1);
    t.app.agents.up("a", Arc::new(AgentHandle::new(tx)), None);
    t.app.sessions.listed("a", t.link, vec![]);
    t.app.sessions.settle().await;
    assert_eq!(t.app.registry.get("s").unwrap().status, Status::Live, "an old list archived the session");
}

/// Resuming a session whose pi came back meanwhile (its hub is open) is refused and leaves
/// the hub in place.
#[tokio::test]
async fn resuming_a_re_attached_session_keeps_its_hub() {
    let mut t = remote("a", "s");
    let hub = t.app.sessions.open_stream("a", "s").await.unwrap();
    let e = super::resume(&t.app, "s").await.unwrap_err();
    assert_eq!(e.status, axum::http::StatusCode::CONFLICT);
    assert!(Arc::ptr_eq(&t.app.registry.hub("s").unwrap(), &hub));
    assert!(t.sent().is_empty(), "no pi was started");
}

/// A resume is under way (its hub attached, the agent asked to start pi) when the agent's
/// stream for that session arrives: pi was running all along, and the agent says so. The
/// stream and the resume share the hub, which stays open, and the session stays live.
#[tokio::test]
async fn a_resume_racing_the_sessions_stream_keeps_the_hub() {
    let mut t = remote("a", "s");
    let app = t.app.clone();
    let resume = tokio::spawn(async move { super::resume(&app, "s").await });
    let ToAgent::Spawn { req, session, .. } = t.next_command().await else { panic!("expected a spawn") };
    assert_eq!(session, "s");
    let hub = t.app.sessions.open_stream("a", "s").await.expect("the stream gets the resume's hub");
    let client = hub.attach();
    t.agent.complete(req, FromAgent::Spawned { req, result: Err(SpawnError::AlreadyRunning) });
    let e = resume.await.unwrap().unwrap_err();
    assert_eq!(e.status, axum::http::StatusCode::CONFLICT);
    assert!(!hub.is_closed(), "the hub of a running pi was closed");
    assert!(Arc::ptr_eq(&t.app.registry.live_hub("s").unwrap(), &hub));
    t.stream("s", vec![events("s", 0..3)]).await;
    assert_eq!(drain(&hub, client), (vec![0, 1, 2], false));
}

/// A kill is waiting for the agent when the link cycles and the agent's new list no longer
/// has the session: the session is archived once, and pi is not started again.
#[tokio::test]
async fn a_kill_racing_a_reconnect_does_not_start_pi_again() {
    let mut t = remote("a", "s");
    let hub = t.app.sessions.open_stream("a", "s").await.unwrap();
    let app = t.app.clone();
    let kill = tokio::spawn(async move { super::kill(&app, "s").await });
    let ToAgent::Kill { req, .. } = t.next_command().await else { panic!("expected a kill") };
    // A second kill meanwhile joins the first.
    let app = t.app.clone();
    let kill2 = tokio::spawn(async move { super::kill(&app, "s").await });
    t.app.sessions.listed("a", t.link, vec![]);
    t.app.sessions.settle().await;
    t.agent.complete(req, FromAgent::Killed { req, was_running: true });
    t.stream("s", vec![exited("s")]).await;
    assert_eq!(kill.await.unwrap().unwrap().status, Status::Closed);
    assert_eq!(kill2.await.unwrap().unwrap().status, Status::Closed);
    assert!(hub.is_closed());
    t.app.sessions.settle().await;
    let sent = t.sent();
    assert!(sent.is_empty(), "sent after the kill: {sent:?}");
    assert_eq!(t.app.registry.get("s").unwrap().status, Status::Closed);
}

/// The old link's end is reported after the agent reconnected: clients of the healthy new
/// link are told nothing. The current link's end is reported to them.
#[tokio::test]
async fn a_stale_link_down_tells_clients_nothing() {
    let t = remote("a", "s");
    let hub = t.app.sessions.open_stream("a", "s").await.unwrap();
    let client = hub.attach();
    let (tx, _rx) = mpsc::channel(1);
    let new = Arc::new(AgentHandle::new(tx));
    t.app.agents.up("a", new.clone(), None);
    t.app.agents.down("a", &t.agent);
    t.app.sessions.link_down("a", Some(t.link));
    t.app.sessions.settle().await;
    let_tasks_run().await;
    assert_eq!(hub.try_fetch(client, usize::MAX).map(|_| ()), None, "a client was told of an old link's end");

    t.app.agents.down("a", &new);
    t.app.sessions.link_down("a", Some(new.link()));
    t.app.sessions.settle().await;
    let_tasks_run().await;
    let Some(Fetch::Frames(frames)) = hub.try_fetch(client, usize::MAX) else { panic!("no notice") };
    assert!(String::from_utf8_lossy(&frames[0]).contains("link to agent a is down"));
    assert_eq!(t.app.registry.get("s").unwrap().status, Status::Live, "a remote session outlives its link");
}

/// A new session is listed once its pi is up, with the hub its stream fed while pi started; a
/// pi that dies at start gives a 409 with its stderr, and the session is forgotten.
#[tokio::test]
async fn a_new_session_is_listed_once_pi_is_up_and_forgotten_when_pi_dies_at_start() {
    let mut t = remote_with("a", &[]);
    let outcomes =
        [Ok(Spawned { pid: 42 }), Err(SpawnError::ExitedAtStart { code: Some(1), stderr: "no model".into() })];
    for outcome in outcomes {
        let app = t.app.clone();
        let create = tokio::spawn(async move {
            super::create(&app, serde_json::from_value(json!({"working_dir": "/w", "agent": "a"})).unwrap()).await
        });
        let ToAgent::Tool { req, .. } = t.next_command().await else { panic!("expected the session's preparation") };
        let place = json!({"workspace_mode": "shared", "execution_dir": "/w"}).to_string();
        t.agent.complete(req, FromAgent::ToolDone { req, result: Ok(place) });
        let ToAgent::Spawn { req, session, .. } = t.next_command().await else { panic!("expected a spawn") };
        assert!(t.app.registry.get(&session).is_none(), "listed before its pi is up");
        let hub = t.app.sessions.open_stream("a", &session).await.expect("the starting session's stream");
        t.agent.complete(req, FromAgent::Spawned { req, result: outcome.clone() });
        let result = create.await.unwrap();
        match outcome {
            Ok(_) => {
                assert_eq!(result.unwrap().piface_id, session);
                assert!(Arc::ptr_eq(&t.app.registry.live_hub(&session).unwrap(), &hub));
            }
            Err(_) => {
                let e = result.unwrap_err();
                assert_eq!(e.status, axum::http::StatusCode::CONFLICT);
                assert!(e.detail.to_string().contains("no model"), "{:?}", e.detail);
                assert!(t.app.registry.get(&session).is_none());
                assert!(hub.is_closed());
            }
        }
    }
}

/// A pi event of `kind` with JSON `line`.
fn event(id: &str, seq: u64, kind: &str, line: Value) -> FromAgent {
    let meta = EventMeta { kind: kind.into(), id: line["id"].as_str().map(str::to_string), ..Default::default() };
    FromAgent::Events {
        session: id.into(),
        events: vec![PiEvent { seq, meta, line: Bytes::from(line.to_string()), delta: None }],
    }
}

/// The actor tells Web Push what a user would want to hear about while away: a run's end, a
/// dialog waiting, pi dying, an agent's link going down; not a kill the user asked for, not
/// an answered dialog, not a removed agent. (The push service is the stand-in; the pushes are
/// decrypted with the subscriber's keys.)
#[tokio::test]
async fn the_actor_pushes_a_run_s_end_a_waiting_dialog_pi_s_death_and_an_agent_going_down() {
    use piface_test_support::push_service::PushService;
    let mut t = remote_with("a", &["s", "k"]);
    let service = PushService::start().await.unwrap();
    service.expect_key(t.app.push.vapid().unwrap().public_key());
    let phone = service.subscriber("phone");
    let keys = phone.subscription()["keys"].clone();
    let sub = t
        .app
        .push
        .subscribe(&phone.endpoint, keys["p256dh"].as_str().unwrap(), keys["auth"].as_str().unwrap(), None)
        .unwrap();
    let hub = t.app.sessions.open_stream("a", "s").await.unwrap();
    let killed = t.app.sessions.open_stream("a", "k").await.unwrap();

    t.stream("s", vec![event("s", 0, "agent_end", json!({"type": "agent_end", "messages": []}))]).await;
    let ask = json!({"type": "extension_ui_request", "id": "u1", "method": "confirm", "title": "Run the migration?"});
    t.stream("s", vec![event("s", 1, "extension_ui_request", ask)]).await;
    assert!(hub.attention_required());
    hub.ui_answered("u1");
    t.app.sessions.post(super::SessionEvent::Stream(super::StreamEvent::Attention { session: "s".into() }));
    // The user kills k: its exit is no news.
    let app = t.app.clone();
    let kill = tokio::spawn(async move { super::kill(&app, "k").await });
    let ToAgent::Kill { req, .. } = t.next_command().await else { panic!("expected a kill") };
    t.stream("k", vec![FromAgent::Exited { session: "k".into(), code: Some(143), stderr: String::new() }]).await;
    t.agent.complete(req, FromAgent::Killed { req, was_running: true });
    kill.await.unwrap().unwrap();
    assert!(killed.is_closed());
    t.stream("s", vec![FromAgent::Exited { session: "s".into(), code: Some(1), stderr: "out of memory\n".into() }])
        .await;
    t.app.agents.down("a", &t.agent);
    t.app.sessions.link_down("a", Some(t.link));
    t.app.sessions.link_down("a", None); // removed: the user knows
    t.app.sessions.settle().await;
    assert_eq!(t.app.push.test(&sub.id).await.unwrap(), 201);

    let pushes = service.wait_for(5, std::time::Duration::from_secs(20)).await.unwrap();
    let payloads: Vec<Value> = pushes.iter().map(|p| phone.decrypt_json(p).unwrap()).collect();
    let kinds: Vec<&str> = payloads.iter().map(|p| p["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["turn_end", "attention", "exited", "agent_down", "test"], "{payloads:#?}");
    assert_eq!(payloads[1]["body"], "pi asks: Run the migration?");
    assert_eq!(payloads[2]["body"], "pi stopped (exit code 1): out of memory");
    assert_eq!(payloads[2]["url"], "/session/s");
    assert!(service.refusals().is_empty(), "{:?}", service.refusals());
}
