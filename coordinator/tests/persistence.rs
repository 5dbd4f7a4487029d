//! Sessions outlive restarts and crashes: the store, restore at start-up, archived history,
//! resume, branching with lineage, and the import of the original Piface's `state.json`.
//! The real `piface` binary runs the real pi against the fake LLM.
//!
//! Each test runs twice: on the embedded store, and (with the `etcd` feature) on a real etcd,
//! unchanged but for the store's flags.

use std::path::{Path, PathBuf};
use std::time::Duration;

use piface_coordinator::store::Snapshot;
use piface_test_support::piface::{assistant_text, git_repo, Options, Piface, WsClient};
use piface_test_support::{pi_bin, spawn_fake_llm, FakeLlm, PiEnv};
use serde_json::{json, Value};

const PIFACE: &str = env!("CARGO_BIN_EXE_piface");

/// Where a test's coordinators keep their state.
#[derive(Clone, Copy, Debug)]
enum Backend {
    Embedded,
    #[cfg(feature = "etcd")]
    Etcd,
}

/// Each test below, once per backend: `embedded::name` and `etcd::name`.
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Backend::Embedded).await
            })*
        }
        #[cfg(feature = "etcd")]
        mod etcd {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Backend::Etcd).await
            })*
        }
    };
}

on_every_store!(
    sigterm_restart_brings_back_live_sessions_with_their_history_and_drops_ephemeral_ones,
    kill_9_mid_turn_loses_no_session,
    a_killed_session_has_an_archived_history_and_resumes_where_it_was,
    branching_from_the_second_prompt_keeps_what_came_before_it,
    the_original_state_json_is_imported_on_first_start_with_lineage_and_uploads,
    a_damaged_session_file_gives_a_clear_answer_and_the_list_still_loads,
);

/// The parts of a test that outlive one server process.
struct World {
    env: PiEnv,
    data: tempfile::TempDir,
    _llm: FakeLlm,
    #[cfg(feature = "etcd")]
    etcd: Option<piface_test_support::etcd::Etcd>,
}

async fn world(backend: Backend) -> World {
    let llm = spawn_fake_llm().await.unwrap();
    let env = PiEnv::new(&llm.base_url()).unwrap();
    World {
        env,
        data: tempfile::tempdir().unwrap(),
        _llm: llm,
        #[cfg(feature = "etcd")]
        etcd: match backend {
            Backend::Etcd => Some(piface_test_support::etcd::Etcd::start().await.unwrap()),
            Backend::Embedded => None,
        },
    }
}

async fn start(w: &World) -> Piface {
    start_in(w, w.data.path().to_path_buf()).await
}

/// A coordinator on `data_dir` that serves (with etcd: once it leads; a killed one's lease
/// ends within the TTL of 2 s given here).
async fn start_in(w: &World, data_dir: PathBuf) -> Piface {
    let opts = Options {
        bin: PIFACE.into(),
        pi_bin: pi_bin().unwrap(),
        envs: w.env.envs(),
        args: store_args(w, &data_dir),
        data_dir: Some(data_dir),
    };
    let server = Piface::start(opts).await.unwrap();
    server.wait_leading(Duration::from_secs(30)).await;
    server
}

/// The store's flags for a coordinator on `data_dir`. In etcd each data dir is a cluster of its
/// own (its own key prefix), as each has its own CA.
fn store_args(w: &World, data_dir: &Path) -> Vec<String> {
    #[cfg(feature = "etcd")]
    if let Some(etcd) = &w.etcd {
        return vec![
            "--store".into(),
            "etcd".into(),
            "--etcd-endpoints".into(),
            etcd.url(),
            "--etcd-prefix".into(),
            etcd_prefix(data_dir),
            "--leader-ttl".into(),
            "2".into(),
        ];
    }
    let _ = (w, data_dir);
    Vec::new()
}

#[cfg(feature = "etcd")]
fn etcd_prefix(data_dir: &Path) -> String {
    format!("/piface-{}/", data_dir.file_name().unwrap().to_string_lossy())
}

/// What the store of the (stopped) coordinator on `data_dir` holds.
async fn stored(w: &World, data_dir: &Path) -> Snapshot {
    use piface_coordinator::store::StateStore;
    #[cfg(feature = "etcd")]
    if let Some(etcd) = &w.etcd {
        let options = piface_coordinator::store::etcd::EtcdOptions {
            endpoints: vec![etcd.url()],
            prefix: etcd_prefix(data_dir),
            ..Default::default()
        };
        // The store runs a runtime of its own: not from inside this one.
        return tokio::task::spawn_blocking(move || {
            piface_coordinator::store::etcd::EtcdStore::connect(&options).unwrap().load().unwrap()
        })
        .await
        .unwrap();
    }
    let _ = w;
    let store = piface_coordinator::store::RedbStore::open(&data_dir.join("state.redb")).unwrap();
    store.load().unwrap()
}

fn body(dir: &Path, no_session: bool) -> Value {
    json!({ "working_dir": dir, "provider": "fake", "model": "fake-model", "thinking_level": null, "no_session": no_session })
}

async fn turn(ws: &mut WsClient, message: &str) -> Vec<Value> {
    ws.send(&json!({"type": "prompt", "message": message})).await.unwrap();
    ws.until_type("agent_end").await.unwrap()
}

/// Waits until the record has its session file and returns it.
async fn session_file(server: &Piface, id: &str) -> String {
    for _ in 0..200 {
        if let Some(f) = server.get(&format!("/api/sessions/{id}")).await.unwrap().1["session_file"].as_str() {
            return f.to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("session file of {id} never captured");
}

/// The messages a client gets when it asks for history.
async fn replay(server: &Piface, id: &str) -> Vec<Value> {
    let (mut ws, state) = server.connect(id).await.unwrap();
    assert_eq!(state["session"]["status"], "live");
    ws.send(&json!({"type": "piface_get_history"})).await.unwrap();
    let replay = ws.until_type("piface_replay").await.unwrap().pop().unwrap();
    replay["messages"].as_array().unwrap().clone()
}

fn texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| match &m["content"] {
            Value::String(s) => format!("{}: {s}", m["role"].as_str().unwrap()),
            _ => format!("{}: {}", m["role"].as_str().unwrap(), assistant_text(m)),
        })
        .collect()
}

async fn history(server: &Piface, id: &str) -> Value {
    let (status, body) = server.get(&format!("/api/sessions/{id}/history")).await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

async fn sigterm_restart_brings_back_live_sessions_with_their_history_and_drops_ephemeral_ones(backend: Backend) {
    let w = world(backend).await;
    let repo = git_repo();
    let server = start(&w).await;
    let mut ids = Vec::new();
    for (name, ephemeral) in [("a", false), ("b", false), ("c", true)] {
        let id = server.new_session(&body(repo.path(), ephemeral)).await;
        let (mut ws, _) = server.connect(&id).await.unwrap();
        turn(&mut ws, &format!("hello {name}")).await;
        ids.push(id);
    }
    let mut before = Vec::new();
    for id in &ids[..2] {
        session_file(&server, id).await;
        before.push(replay(&server, id).await);
    }
    assert_eq!(texts(&before[0]), ["user: hello a", "assistant: echo: hello a"]);
    assert!(server.stop().await.unwrap().success());

    let server = start(&w).await;
    let listed: Vec<Value> = server.get("/api/sessions").await.unwrap().1["sessions"].as_array().unwrap().clone();
    let listed_ids: Vec<&str> = listed.iter().map(|r| r["piface_id"].as_str().unwrap()).collect();
    assert_eq!(listed_ids, [ids[0].as_str(), ids[1].as_str()], "the ephemeral session is gone");
    assert!(listed.iter().all(|r| r["status"] == "live"));
    for (id, messages) in ids.iter().zip(&before) {
        assert_eq!(&replay(&server, id).await, messages, "same history after the restart");
    }
    // The conversation goes on where it was.
    let (mut ws, _) = server.connect(&ids[0]).await.unwrap();
    turn(&mut ws, "again").await;
    assert_eq!(texts(&replay(&server, &ids[0]).await).len(), 4);
}

async fn kill_9_mid_turn_loses_no_session(backend: Backend) {
    let w = world(backend).await;
    let repo = git_repo();
    let server = start(&w).await;
    let id = server.new_session(&body(repo.path(), false)).await;
    let (mut ws, _) = server.connect(&id).await.unwrap();
    turn(&mut ws, "first").await;
    session_file(&server, &id).await;
    ws.send(&json!({"type": "prompt", "message": "[[tokens:3000]] [[delay:5]]"})).await.unwrap();
    let mut updates = 0;
    while updates < 20 {
        if ws.next().await.unwrap()["type"] == "message_update" {
            updates += 1;
        }
    }
    server.kill9().await.unwrap();

    let server = start(&w).await;
    let record = server.get(&format!("/api/sessions/{id}")).await.unwrap().1;
    assert_eq!(record["status"], "live", "{record}");
    let messages = replay(&server, &id).await;
    assert_eq!(texts(&messages)[..2], ["user: first", "assistant: echo: first"]);
    let (mut ws, _) = server.connect(&id).await.unwrap();
    let end = turn(&mut ws, "after the crash").await;
    assert_eq!(
        assistant_text(end.last().unwrap()["messages"].as_array().unwrap().last().unwrap()),
        "echo: after the crash"
    );
}

async fn a_killed_session_has_an_archived_history_and_resumes_where_it_was(backend: Backend) {
    let w = world(backend).await;
    let repo = git_repo();
    let server = start(&w).await;
    let id = server.new_session(&body(repo.path(), false)).await;
    let (mut ws, _) = server.connect(&id).await.unwrap();
    turn(&mut ws, "remember me").await;
    let file = session_file(&server, &id).await;
    assert_eq!(server.post(&format!("/api/sessions/{id}/kill"), &json!({})).await.unwrap().1["status"], "closed");

    let h = history(&server, &id).await;
    assert_eq!((h["source"].as_str(), h["error"].clone()), (Some("session_file"), Value::Null));
    assert_eq!(texts(h["messages"].as_array().unwrap()), ["user: remember me", "assistant: echo: remember me"]);
    // Read without a pi: none runs for this session file.
    assert!(!pi_running_with(&file), "a pi is running for the archived session");

    let (status, record) = server.post(&format!("/api/sessions/{id}/resume"), &json!({})).await.unwrap();
    assert_eq!((status, record["status"].as_str()), (200, Some("live")));
    let (mut ws, _) = server.connect(&id).await.unwrap();
    turn(&mut ws, "still there").await;
    let h = history(&server, &id).await;
    assert_eq!(texts(h["messages"].as_array().unwrap()).len(), 4);
    assert_eq!(session_file(&server, &id).await, file, "the same session file goes on");
}

/// Whether any process has `needle` among its arguments.
fn pi_running_with(needle: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == needle.as_bytes()))
    })
}

async fn branching_from_the_second_prompt_keeps_what_came_before_it(backend: Backend) {
    let w = world(backend).await;
    let repo = git_repo();
    let server = start(&w).await;
    let id = server.new_session(&body(repo.path(), false)).await;
    let (mut ws, _) = server.connect(&id).await.unwrap();
    for m in ["one", "two", "three"] {
        turn(&mut ws, m).await;
    }
    session_file(&server, &id).await;
    let (status, forks) = server.get(&format!("/api/sessions/{id}/fork-messages")).await.unwrap();
    assert_eq!(status, 200, "{forks}");
    let forks = forks["messages"].as_array().unwrap().clone();
    assert_eq!(forks.iter().map(|f| f["text"].as_str().unwrap()).collect::<Vec<_>>(), ["one", "two", "three"]);
    let entry = forks[1]["entryId"].as_str().unwrap();

    let (status, branched) = server
        .post(&format!("/api/sessions/{id}/branch"), &json!({"entry_id": entry, "session_name": " alt "}))
        .await
        .unwrap();
    assert_eq!(status, 201, "{branched}");
    assert_eq!(branched["cancelled"], false);
    assert_eq!(branched["selected_text"], "two");
    let child = &branched["session"];
    assert_eq!(child["status"], "live");
    assert_eq!(child["parent_piface_id"], id.as_str());
    assert_eq!(child["branch_entry_id"], entry);
    assert_eq!(child["session_name"], "alt");
    let child_id = child["piface_id"].as_str().unwrap();
    assert_ne!(child["session_file"], server.get(&format!("/api/sessions/{id}")).await.unwrap().1["session_file"]);
    assert_eq!(texts(&replay(&server, child_id).await), ["user: one", "assistant: echo: one"]);
    assert_eq!(
        texts(history(&server, child_id).await["messages"].as_array().unwrap()),
        ["user: one", "assistant: echo: one"]
    );
    // The parent is untouched.
    assert_eq!(texts(history(&server, &id).await["messages"].as_array().unwrap()).len(), 6);

    assert_eq!(server.post(&format!("/api/sessions/{id}/branch"), &json!({"entry_id": " "})).await.unwrap().0, 400);
    assert_eq!(server.post("/api/sessions/nope/branch", &json!({"entry_id": "x"})).await.unwrap().0, 404);
}

/// A session of the original Piface, as its `state.json` stores it.
fn original_record(id: &str, dir: &Path, status: &str, file: Option<&str>, parent: Option<&str>) -> Value {
    json!({
        "piface_id": id, "working_dir": dir, "status": status, "session_file": file, "no_session": false,
        "use_direnv": false, "model_provider": "fake", "model_id": "fake-model", "thinking_level": null,
        "session_name": format!("imported {id}"), "render_markdown": false,
        "parent_piface_id": parent, "branch_entry_id": parent.map(|_| "abcd1234"),
        "project_dir": dir, "project_subdir": ".", "execution_dir": dir, "workspace_mode": "shared",
        "created_at": format!("2026-05-01T12:00:0{}.000000Z", id.len() % 10), "last_active": "2026-05-02T08:00:00.000000Z"
    })
}

async fn the_original_state_json_is_imported_on_first_start_with_lineage_and_uploads(backend: Backend) {
    let w = world(backend).await;
    let repo = git_repo();
    // A real pi session file to point the imported records at.
    let server = start(&w).await;
    let id = server.new_session(&body(repo.path(), false)).await;
    let (mut ws, _) = server.connect(&id).await.unwrap();
    for m in ["one", "two", "three"] {
        turn(&mut ws, m).await;
    }
    let file = session_file(&server, &id).await;
    server.stop().await.unwrap();

    let data = tempfile::tempdir().unwrap();
    let (parent, child, live) = (
        "11111111-1111-4111-8111-111111111111",
        "22222222-2222-4222-8222-222222222222",
        "33333333-3333-4333-8333-333333333333",
    );
    let upload = data.path().join("u1_notes.txt");
    std::fs::write(&upload, "notes").unwrap();
    let state = json!({
        "sessions": {
            parent: original_record(parent, repo.path(), "closed", Some(&file), None),
            child: original_record(child, repo.path(), "closed", None, Some(parent)),
            live: original_record(live, repo.path(), "live", Some(&file), None),
            "broken": {"piface_id": "broken"},
        },
        "uploads": { "u1": {"upload_id": "u1", "path": upload, "file_name": "notes.txt", "mime_type": "text/plain",
                            "size": 5, "ref_sessions": [parent], "created_at": "2026-05-01T12:00:00Z"} },
        "session_upload_ids": { parent: ["u1"] }
    });
    std::fs::write(data.path().join("state.json"), serde_json::to_vec_pretty(&state).unwrap()).unwrap();

    let server = start_in(&w, data.path().to_path_buf()).await;
    let sessions = server.get("/api/sessions").await.unwrap().1["sessions"].as_array().unwrap().clone();
    let by_id =
        |x: &str| sessions.iter().find(|r| r["piface_id"] == x).cloned().unwrap_or_else(|| panic!("{x} not imported"));
    assert_eq!(sessions.len(), 3, "the unreadable record is skipped");
    assert_eq!(by_id(parent)["status"], "closed");
    assert_eq!(by_id(parent)["render_markdown"], false);
    assert_eq!(by_id(child)["parent_piface_id"], parent);
    assert_eq!(by_id(child)["branch_entry_id"], "abcd1234");
    assert_eq!(by_id(live)["status"], "live", "a live record is restored like any other");
    assert_eq!(texts(&replay(&server, live).await).len(), 6);

    // Fork messages of a closed session come from its file; a branch inherits the uploads.
    let forks = server.get(&format!("/api/sessions/{parent}/fork-messages")).await.unwrap().1;
    let entry = forks["messages"][1]["entryId"].as_str().unwrap().to_string();
    let branched = server.post(&format!("/api/sessions/{parent}/branch"), &json!({"entry_id": entry})).await.unwrap().1;
    let new_id = branched["session"]["piface_id"].as_str().unwrap().to_string();
    assert_eq!(branched["session"]["session_name"], format!("imported {parent}"));
    server.stop().await.unwrap();

    let snap = stored(&w, data.path()).await;
    assert_eq!(snap.session_uploads.get(&new_id), Some(&vec!["u1".to_string()]));
    assert_eq!(snap.session_uploads.get(parent), Some(&vec!["u1".to_string()]));
    assert_eq!(snap.uploads["u1"].file_name, "notes.txt");
}

async fn a_damaged_session_file_gives_a_clear_answer_and_the_list_still_loads(backend: Backend) {
    let w = world(backend).await;
    let repo = git_repo();
    let server = start(&w).await;
    let id = server.new_session(&body(repo.path(), false)).await;
    let (mut ws, _) = server.connect(&id).await.unwrap();
    turn(&mut ws, "keep this").await;
    let file = session_file(&server, &id).await;
    server.post(&format!("/api/sessions/{id}/kill"), &json!({})).await.unwrap();

    // A garbage line in the middle and a write cut off at the end.
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(1, "{\"type\":\"message\", garbage");
    let mut damaged = lines.join("\n");
    damaged.push_str(
        "\n{\"type\":\"message\",\"id\":\"ffff0000\",\"parentId\":null,\"message\":{\"role\":\"user\",\"cont",
    );
    std::fs::write(&file, damaged).unwrap();
    let h = history(&server, &id).await;
    assert_eq!(h["error"], "session_file_damaged");
    assert_eq!(h["skipped_lines"], 1);
    assert_eq!(h["truncated_tail"], true);
    assert_eq!(texts(h["messages"].as_array().unwrap()), ["user: keep this", "assistant: echo: keep this"]);

    std::fs::write(&file, [0xffu8, 0xfe, 0x00, 0x13].repeat(100)).unwrap();
    assert_eq!(history(&server, &id).await["error"], "file_read_error");
    std::fs::remove_file(&file).unwrap();
    assert_eq!(history(&server, &id).await["error"], "file_not_found");
    assert_eq!(
        server.get(&format!("/api/sessions/{id}/fork-messages")).await.unwrap(),
        (409, json!({"detail": "file_not_found"}))
    );
    assert_eq!(server.get("/api/sessions").await.unwrap().0, 200);
    assert_eq!(server.get("/api/sessions/nope/history").await.unwrap().0, 404);
}

#[test]
fn import_state_command_adds_sessions_once() {
    let data = tempfile::tempdir().unwrap();
    let old = tempfile::tempdir().unwrap();
    let dir = old.path();
    let state = json!({ "sessions": {
        "a": original_record("a", dir, "closed", None, None),
        "b": original_record("b", dir, "live", None, Some("a")),
    }});
    let file = old.path().join("state.json");
    std::fs::write(&file, state.to_string()).unwrap();
    let run = || {
        let out = std::process::Command::new(PIFACE)
            .arg("import-state")
            .arg(&file)
            .arg("--data-dir")
            .arg(data.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(run().contains("imported 2 sessions"));
    assert!(run().contains("imported 0 sessions"), "a second import adds nothing");
    let store = piface_coordinator::store::RedbStore::open(&data.path().join("state.redb")).unwrap();
    let snap = piface_coordinator::store::StateStore::load(&store).unwrap();
    assert_eq!(snap.sessions.iter().map(|r| r.piface_id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(snap.sessions[1].parent_piface_id.as_deref(), Some("a"));

    let import = |path: &str| {
        std::process::Command::new(PIFACE).args(["import-state", path, "--data-dir"]).arg(data.path()).output().unwrap()
    };
    // While the store is open elsewhere (a running Piface), the import says so.
    let locked = import(file.to_str().unwrap());
    assert!(!locked.status.success());
    assert!(
        String::from_utf8_lossy(&locked.stderr).contains("stop it first"),
        "{}",
        String::from_utf8_lossy(&locked.stderr)
    );
    drop(store);
    let missing = import("/no/such/state.json");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such/state.json"));
}
