//! End-to-end tests of `piface serve`: the real binary on a free port, driven over HTTP and
//! WebSocket, running the real pi (pinned, installed by the test setup) against the fake LLM,
//! or the `fake-pi` stand-in where an edge case must be deterministic.

use std::path::{Path, PathBuf};
use std::time::Duration;

use piface_test_support::piface::{assistant_text, git_repo, transcript, types, workspace_bin, Frame, Options, Piface};
use piface_test_support::{pi_bin, spawn_fake_llm, FakeLlm, PiEnv};
use serde_json::{json, Value};

const PIFACE: &str = env!("CARGO_BIN_EXE_piface");

/// A piface running the real pi against a fresh fake LLM.
struct RealPi {
    server: Piface,
    env: PiEnv,
    _llm: FakeLlm,
}

async fn with_real_pi() -> RealPi {
    let llm = spawn_fake_llm().await.unwrap();
    let env = PiEnv::new(&llm.base_url()).unwrap();
    let server = Piface::start(Options {
        bin: PIFACE.into(),
        pi_bin: pi_bin().unwrap(),
        envs: env.envs(),
        args: vec![],
        data_dir: None,
    })
    .await
    .unwrap();
    RealPi { server, env, _llm: llm }
}

async fn with_fake_pi() -> Piface {
    Piface::start(Options {
        bin: PIFACE.into(),
        pi_bin: workspace_bin("fake-pi").unwrap(),
        envs: vec![],
        args: vec![],
        data_dir: None,
    })
    .await
    .unwrap()
}

fn session_body(dir: &Path) -> Value {
    json!({ "working_dir": dir, "provider": "fake", "model": "fake-model", "thinking_level": null, "shared": true })
}

/// pids of processes other than `server` whose environment contains `needle` (the pi
/// processes a server starts inherit the test's private agent directory from it).
fn pids_with_env(needle: &str, server: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid == server {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        if environ.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

/// Children of `parent` that have exited but were not reaped.
fn zombie_children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // Fields after the command name, which is in parentheses and may hold spaces.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") && fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            out.push(pid);
        }
    }
    out
}

fn agent_dir_env(env: &PiEnv) -> String {
    format!("PI_CODING_AGENT_DIR={}", env.agent_dir().display())
}

async fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn prompt_streams_to_the_end_and_a_bash_tool_runs_in_the_session_directory() {
    let t = with_real_pi().await;
    let repo = git_repo();
    let record = t.server.create_session(&session_body(repo.path())).await.unwrap();
    assert_eq!(record["status"], "live");
    assert_eq!(record["model_provider"], "fake");
    assert_eq!(record["thinking_level"], Value::Null);
    let id = record["piface_id"].as_str().unwrap();

    let (mut ws, state) = t.server.connect(id).await.unwrap();
    assert_eq!(state["type"], "piface_session_state");
    assert_eq!(state["session"]["piface_id"], id);

    ws.send(&json!({"type": "prompt", "message": "hello there"})).await.unwrap();
    let events = ws.until_type("agent_end").await.unwrap();
    let kinds = types(&events);
    assert!(kinds.contains(&"agent_start"), "{kinds:?}");
    assert!(kinds.iter().filter(|k| **k == "message_update").count() >= 2, "{kinds:?}");
    let last = events.last().unwrap();
    let answer = last["messages"].as_array().unwrap().iter().rev().find(|m| m["role"] == "assistant").unwrap();
    assert_eq!(assistant_text(answer), "echo: hello there");

    ws.send(&json!({"type": "prompt", "message": "[[bash:pwd > where.txt]]"})).await.unwrap();
    let events = ws.until_type("agent_end").await.unwrap();
    let kinds = types(&events);
    assert!(kinds.contains(&"tool_execution_start") && kinds.contains(&"tool_execution_end"), "{kinds:?}");
    let written = std::fs::read_to_string(repo.path().join("where.txt")).unwrap();
    assert_eq!(Path::new(written.trim()).canonicalize().unwrap(), repo.path().canonicalize().unwrap());

    // After the first run the session file is captured.
    let mut file = Value::Null;
    for _ in 0..100 {
        file = t.server.get(&format!("/api/sessions/{id}")).await.unwrap().1["session_file"].clone();
        if file.is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(Path::new(file.as_str().expect("session_file captured")).is_file());
    drop(t.env);
}

#[tokio::test]
async fn clients_see_one_stream_and_a_late_joiner_gets_replay_then_the_live_tail() {
    let t = with_real_pi().await;
    let repo = git_repo();
    let id = t.server.new_session(&session_body(repo.path())).await;
    let (mut a, _) = t.server.connect(&id).await.unwrap();
    let (mut b, _) = t.server.connect(&id).await.unwrap();

    a.send(&json!({"type": "prompt", "message": "[[tokens:150]] [[delay:8]]"})).await.unwrap();
    // A reads until the turn is well under way, then C joins and asks for history.
    let mut a_events = Vec::new();
    while a_events.iter().filter(|e: &&Value| e["type"] == "message_update").count() < 30 {
        a_events.push(a.next().await.unwrap());
    }
    let (mut c, _) = t.server.connect(&id).await.unwrap();
    c.send(&json!({"type": "piface_get_history"})).await.unwrap();

    a_events.extend(a.until_type("agent_end").await.unwrap());
    let b_events = b.until_type("agent_end").await.unwrap();
    let c_events = c.until_type("agent_end").await.unwrap();

    assert_eq!(a_events, b_events, "two clients must see identical sequences");
    assert!(a_events.iter().all(|e| e["type"] != "piface_replay"), "a replay goes only to the client that asked");

    // C: whatever live events came before its replay, then the replay, then exactly the tail of
    // A's stream: no gap, no duplicate.
    let r = c_events.iter().position(|e| e["type"] == "piface_replay").expect("C got a replay");
    let tail = &c_events[r + 1..];
    assert!(!tail.is_empty());
    assert!(a_events.ends_with(tail), "C's events after its replay must be the tail of A's");
    let before = &c_events[..r];
    let start = a_events.len() - tail.len() - before.len();
    assert_eq!(&a_events[start..a_events.len() - tail.len()], before, "C's events before the replay are A's too");

    assert_eq!(transcript(&c_events), transcript(&a_events_with_history(&t, &id, a_events.clone()).await));
    let text = assistant_text(transcript(&c_events).last().unwrap());
    assert_eq!(text, (0..150).map(|i| format!("t{i} ")).collect::<String>());
}

/// A's transcript including what happened before A connected (nothing here, but the check
/// should not depend on that): a fresh replay at the end.
async fn a_events_with_history(t: &RealPi, id: &str, events: Vec<Value>) -> Vec<Value> {
    let (mut d, _) = t.server.connect(id).await.unwrap();
    d.send(&json!({"type": "piface_get_history"})).await.unwrap();
    let replay = d.until_type("piface_replay").await.unwrap().pop().unwrap();
    assert_eq!(transcript(&events).len(), replay["messages"].as_array().unwrap().len());
    vec![replay]
}

#[tokio::test]
async fn abort_stops_the_turn_and_kill_removes_the_process_group() {
    let t = with_real_pi().await;
    let repo = git_repo();
    let needle = agent_dir_env(&t.env);
    // Let the start-up model probe finish, so the only pi left is the session's.
    t.server.get("/api/models").await.unwrap();
    let id = t.server.new_session(&session_body(repo.path())).await;
    let server = t.server.pid();
    assert!(
        wait_until(|| pids_with_env(&needle, server).len() == 1).await,
        "one pi runs: {:?}",
        pids_with_env(&needle, server)
    );
    let (mut ws, _) = t.server.connect(&id).await.unwrap();

    ws.send(&json!({"type": "prompt", "message": "[[tokens:5000]] [[delay:20]]"})).await.unwrap();
    let mut updates = 0;
    while updates < 5 {
        if ws.next().await.unwrap()["type"] == "message_update" {
            updates += 1;
        }
    }
    ws.send(&json!({"type": "abort"})).await.unwrap();
    let events = ws.until_type("agent_end").await.unwrap();
    let end = events.last().unwrap();
    let last = end["messages"].as_array().unwrap().iter().rev().find(|m| m["role"] == "assistant").unwrap();
    assert_eq!(last["stopReason"], "aborted");
    assert!(assistant_text(last).len() < (0..5000).map(|i| format!("t{i} ").len()).sum::<usize>());

    let (status, record) = t.server.post(&format!("/api/sessions/{id}/kill"), &json!({})).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(record["status"], "closed");
    assert!(
        pids_with_env(&needle, server).is_empty(),
        "pi processes left after kill: {:?}",
        pids_with_env(&needle, server)
    );
    assert!(zombie_children(server).is_empty(), "unreaped children: {:?}", zombie_children(server));
    // The socket is told the session closed, then closed.
    let mut saw_closed_state = false;
    loop {
        match ws.next_frame().await.unwrap() {
            Frame::Json(v) if v["type"] == "piface_session_state" => {
                saw_closed_state = v["session"]["status"] == "closed"
            }
            Frame::Json(_) => {}
            Frame::Closed(..) => break,
        }
    }
    assert!(saw_closed_state);
    assert_eq!(t.server.get("/api/sessions").await.unwrap().1["sessions"][0]["status"], "closed");
}

#[tokio::test]
async fn a_pi_that_dies_at_start_up_is_a_409_with_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("dying-pi");
    std::fs::write(&script, "#!/bin/sh\necho 'Unknown provider: nowhere (from the dying pi)' >&2\nexit 1\n").unwrap();
    make_executable(&script);
    let server =
        Piface::start(Options { bin: PIFACE.into(), pi_bin: script, envs: vec![], args: vec![], data_dir: None })
            .await
            .unwrap();
    let (status, body) = server.post("/api/sessions", &json!({"working_dir": dir.path()})).await.unwrap();
    assert_eq!(status, 409, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("Unknown provider: nowhere (from the dying pi)"), "{detail}");
    assert!(detail.contains("code 1"), "{detail}");
    assert_eq!(server.get("/api/sessions").await.unwrap().1, json!({"sessions": []}));
    assert_eq!(server.get("/api/health").await.unwrap(), (200, json!({"status": "ok", "speech": false, "tts": false})));
}

#[tokio::test]
async fn a_missing_pi_is_a_clear_503_and_a_missing_directory_a_400() {
    let dir = tempfile::tempdir().unwrap();
    let server = Piface::start(Options {
        bin: PIFACE.into(),
        pi_bin: dir.path().join("no-such-pi"),
        envs: vec![],
        args: vec![],
        data_dir: None,
    })
    .await
    .unwrap();
    let (status, body) = server.post("/api/sessions", &json!({"working_dir": dir.path()})).await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("no-such-pi"), "{body}");
    let (status, body) = server.post("/api/sessions", &json!({"working_dir": "/no/such/dir"})).await.unwrap();
    assert_eq!((status, body), (400, json!({"detail": "Directory does not exist: /no/such/dir"})));
}

/// The REST errors (unknown ids, malformed and oversized bodies, PATCH rules, 405, cross-site
/// requests) are checked in process (`coordinator/src/api/tests.rs`); only a real upgrade shows
/// how the socket of an unknown session ends.
#[tokio::test]
async fn the_socket_of_an_unknown_session_is_closed_with_4004() {
    let server = with_fake_pi().await;
    let unknown = "00000000-0000-4000-8000-000000000000";
    let mut ws = server.ws(&format!("/ws/sessions/{unknown}")).await.unwrap();
    match ws.next_frame().await.unwrap() {
        Frame::Closed(code, reason) => {
            assert_eq!((code, reason.as_str()), (Some(4004), "Session not found or not alive"))
        }
        other => panic!("expected a close, got {other:?}"),
    }
}

#[tokio::test]
async fn the_socket_survives_bad_messages_and_relays_huge_lines_intact() {
    let server = with_fake_pi().await;
    let dir = tempfile::tempdir().unwrap();
    let id = server.new_session(&json!({"working_dir": dir.path()})).await;
    let (mut ws, _) = server.connect(&id).await.unwrap();

    ws.send_text("{not json").await.unwrap();
    assert_eq!(ws.next().await.unwrap(), json!({"type": "piface_error", "message": "Invalid JSON"}));
    ws.send_text("[1, 2]").await.unwrap();
    assert_eq!(ws.next().await.unwrap()["type"], "piface_error");
    ws.send(&json!({"type": "get_state", "id": "__piface_internal_7"})).await.unwrap();
    assert_eq!(ws.next().await.unwrap()["type"], "piface_error", "reserved ids are refused");

    // A 20 MiB line arrives byte for byte.
    ws.send(&json!({"type": "prompt", "message": format!("big:{}", 20 * 1024 * 1024)})).await.unwrap();
    let events = ws.until_type("big").await.unwrap();
    assert_eq!(events[0]["type"], "response");
    assert_eq!(events.last().unwrap()["payload"].as_str().unwrap().len(), 20 * 1024 * 1024);

    // A non-JSON line is skipped; what follows still arrives.
    ws.send(&json!({"type": "prompt", "message": "garbage"})).await.unwrap();
    let events = ws.until_type("after_garbage").await.unwrap();
    assert_eq!(types(&events), ["response", "after_garbage"]);

    // A line over the 64 MiB limit is reported, not relayed, and the stream goes on.
    ws.send(&json!({"type": "prompt", "message": format!("toolong:{}", 65 * 1024 * 1024)})).await.unwrap();
    let events = ws.until_type("after_toolong").await.unwrap();
    assert_eq!(types(&events), ["response", "piface_error", "after_toolong"]);
    assert!(events[1]["message"].as_str().unwrap().contains("longer than"));

    // Still a working session.
    ws.send(&json!({"type": "prompt", "message": "still there?"})).await.unwrap();
    let events = ws.until_type("agent_end").await.unwrap();
    assert_eq!(assistant_text(&events.last().unwrap()["messages"][0]), "echo: still there?");
}

#[tokio::test]
async fn bang_shortcuts_run_through_pi_or_locally() {
    let server = with_fake_pi().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("marker.txt"), "").unwrap();
    let id = server.new_session(&json!({"working_dir": dir.path()})).await;
    let (mut ws, _) = server.connect(&id).await.unwrap();

    ws.send(&json!({"type": "prompt", "message": "!echo hello", "piface_upload_ids": []})).await.unwrap();
    let resp = ws.next().await.unwrap();
    assert_eq!((resp["command"].as_str(), resp["data"]["command"].as_str()), (Some("bash"), Some("echo hello")));
    assert!(resp["id"].as_str().unwrap().starts_with("__piface_cmd_"));

    ws.send(&json!({"type": "prompt", "message": "!!ls; echo err >&2", "id": "mine"})).await.unwrap();
    let resp = ws.next().await.unwrap();
    assert_eq!(resp["id"], "mine");
    assert_eq!(resp["data"]["output"], "marker.txt\nerr\n");
    assert_eq!(resp["data"]["exitCode"], 0);
    assert_eq!(resp["data"]["excludeFromContext"], true);
    assert_eq!(resp["data"]["command"], "ls; echo err >&2");

    ws.send(&json!({"type": "prompt", "message": "!!ls", "piface_upload_ids": ["u1"]})).await.unwrap();
    assert_eq!(ws.next().await.unwrap()["message"], "Bash shortcuts (! / !!) do not support file attachments.");
}

#[tokio::test]
async fn a_pending_extension_dialog_raises_attention_until_answered() {
    let server = with_fake_pi().await;
    let dir = tempfile::tempdir().unwrap();
    let id = server.new_session(&json!({"working_dir": dir.path()})).await;
    let mut dash = server.ws("/ws/dashboard").await.unwrap();
    assert_eq!(dash.next().await.unwrap()["sessions"][0]["attention_required"], false);
    let (mut a, _) = server.connect(&id).await.unwrap();
    a.send(&json!({"type": "prompt", "message": "ask"})).await.unwrap();
    let events = a.until_type("piface_attention_required").await.unwrap();
    assert_eq!(types(&events), ["response", "extension_ui_request", "piface_attention_required"]);
    let attention = events.last().unwrap();
    assert_eq!(attention["session_id"], id.as_str());
    assert_eq!(attention["request"], events[1]);
    assert_eq!(server.get(&format!("/api/sessions/{id}")).await.unwrap().1["attention_required"], true);

    // A client that connects while the dialog waits is told at once.
    let (mut b, state) = server.connect(&id).await.unwrap();
    assert_eq!(state["session"]["attention_required"], true);
    assert_eq!(b.next().await.unwrap(), *attention);

    // The dashboard shows the badge without polling.
    loop {
        let e = dash.next().await.unwrap();
        if e["type"] == "piface_session" && e["session"]["attention_required"] == true {
            break;
        }
    }
    b.send(&json!({"type": "extension_ui_response", "id": "ask-1", "confirmed": true})).await.unwrap();
    let answered = a.until_type("answered").await.unwrap().pop().unwrap();
    assert_eq!(answered["response"]["confirmed"], true);
    assert_eq!(server.get(&format!("/api/sessions/{id}")).await.unwrap().1["attention_required"], false);
    loop {
        let e = dash.next().await.unwrap();
        if e["type"] == "piface_session" && e["session"]["attention_required"] == false {
            break;
        }
    }
}

#[tokio::test]
async fn a_flood_to_a_stalled_client_keeps_memory_bounded_and_loses_nothing_for_others() {
    const COUNT: usize = 50_000;
    const BYTES: usize = 4096; // 200 MB in all, several times the hub's 32 MiB
    let server = with_fake_pi().await;
    let dir = tempfile::tempdir().unwrap();
    let id = server.new_session(&json!({"working_dir": dir.path()})).await;
    let (mut stalled, _) = server.connect(&id).await.unwrap();
    let (mut reader, _) = server.connect(&id).await.unwrap();
    reader.send(&json!({"type": "prompt", "message": format!("stream:{COUNT}:{BYTES}")})).await.unwrap();

    let mut next_i = 0;
    loop {
        let e = reader.next().await.unwrap();
        match e["type"].as_str() {
            Some("message_update") => {
                assert_eq!(e["i"], next_i, "the reading client gets every event in order");
                next_i += 1;
            }
            Some("agent_end") => break,
            _ => {}
        }
    }
    assert_eq!(next_i, COUNT as u64);

    let peak_kib: u64 = std::fs::read_to_string(format!("/proc/{}/status", server.pid()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(peak_kib < 160 * 1024, "piface peaked at {} MiB while relaying 200 MB", peak_kib / 1024);

    // The stalled client, once it reads, learns it fell behind and gets a fresh replay.
    let mut seen = Vec::new();
    loop {
        let e = stalled.next().await.unwrap();
        let kind = e["type"].as_str().unwrap_or_default().to_string();
        if kind == "piface_replay" {
            break;
        }
        if kind != "message_update" {
            seen.push(kind);
        }
    }
    assert!(seen.contains(&"piface_error".to_string()), "{seen:?}");
}

#[tokio::test]
async fn a_crashing_pi_closes_its_session_and_the_server_stays_up() {
    let server = with_fake_pi().await;
    let dir = tempfile::tempdir().unwrap();
    let id = server.new_session(&json!({"working_dir": dir.path()})).await;
    let (mut ws, _) = server.connect(&id).await.unwrap();
    ws.send(&json!({"type": "prompt", "message": "crash:3"})).await.unwrap();
    let mut last_state = Value::Null;
    loop {
        match ws.next_frame().await.unwrap() {
            Frame::Json(v) if v["type"] == "piface_session_state" => last_state = v,
            Frame::Json(_) => {}
            Frame::Closed(code, _) => {
                assert_eq!(code, Some(1000));
                break;
            }
        }
    }
    assert_eq!(last_state["session"]["status"], "closed");
    assert_eq!(server.get(&format!("/api/sessions/{id}")).await.unwrap().1["status"], "closed");
    assert_eq!(server.get("/api/health").await.unwrap().0, 200);
    // It can be resumed.
    let (status, record) = server.post(&format!("/api/sessions/{id}/resume"), &json!({})).await.unwrap();
    assert_eq!((status, record["status"].as_str()), (200, Some("live")));
    assert_eq!(server.post(&format!("/api/sessions/{id}/resume"), &json!({})).await.unwrap().0, 409);
}

#[tokio::test]
async fn direnv_blocks_an_unapproved_envrc_and_pi_gets_the_approved_environment() {
    assert!(
        std::process::Command::new("direnv").arg("version").output().is_ok(),
        "direnv must be installed (.ci/run installs it)"
    );
    let t = with_real_pi().await;
    let repo = git_repo();
    std::fs::write(repo.path().join(".envrc"), "export PIFACE_DIRENV_PROBE=from-envrc\n").unwrap();
    let body = json!({ "working_dir": repo.path(), "provider": "fake", "model": "fake-model", "use_direnv": true, "shared": true });

    let (status, err) = t.server.post("/api/sessions", &body).await.unwrap();
    assert_eq!(status, 409, "{err}");
    let detail = err["detail"].as_str().unwrap().to_lowercase();
    assert!(detail.contains("direnv") && detail.contains(".envrc") && detail.contains("blocked"), "{detail}");

    // Approve-and-retry, as the UI does it: the agent runs `direnv allow`.
    let (status, allowed) = t.server.post("/api/direnv/allow", &json!({"working_dir": repo.path()})).await.unwrap();
    assert_eq!((status, allowed["success"].as_bool()), (200, Some(true)), "{allowed}");
    let (status, _) = t.server.post("/api/direnv/allow", &json!({"working_dir": "/no/such/dir"})).await.unwrap();
    assert_eq!(status, 400);
    let record = t.server.create_session(&body).await.unwrap();
    assert_eq!(record["use_direnv"], true);
    let (mut ws, _) = t.server.connect(record["piface_id"].as_str().unwrap()).await.unwrap();
    ws.send(&json!({"type": "bash", "command": "echo \"probe=$PIFACE_DIRENV_PROBE\""})).await.unwrap();
    let resp = ws.until_type("response").await.unwrap().pop().unwrap();
    assert_eq!(resp["data"]["output"].as_str().unwrap().trim(), "probe=from-envrc", "{resp}");
    assert_eq!(resp["data"]["command"], "echo \"probe=$PIFACE_DIRENV_PROBE\"");
    // `!!` runs on the agent, in the same environment.
    ws.send(&json!({"type": "prompt", "message": "!!echo \"bang=$PIFACE_DIRENV_PROBE\""})).await.unwrap();
    let resp = ws.until_type("response").await.unwrap().pop().unwrap();
    assert_eq!(resp["data"]["output"].as_str().unwrap().trim(), "bang=from-envrc", "{resp}");
}

#[tokio::test]
async fn models_come_from_pi_and_sigterm_stops_every_pi() {
    let t = with_real_pi().await;
    let (status, body) = t.server.get("/api/models").await.unwrap();
    assert_eq!(status, 200);
    let models = body["models"].as_array().unwrap();
    assert!(models.iter().any(|m| m["id"] == "fake-model" && m["provider"] == "fake"), "{body}");

    let repo = git_repo();
    t.server.create_session(&session_body(repo.path())).await.unwrap();
    let needle = agent_dir_env(&t.env);
    let server = t.server.pid();
    assert!(!pids_with_env(&needle, server).is_empty());
    let status = t.server.stop().await.unwrap();
    assert!(status.success(), "{status:?}");
    assert!(pids_with_env(&needle, server).is_empty(), "pi left running after shutdown");
}

fn make_executable(path: &PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
