//! Golden fixtures of every frame kind: one fixed example of each, serialised by the code that
//! sends it, must equal `fixtures/browser/<socket>/<type>.json` byte for byte. The UI's tests
//! (`frontend/src/lib/api/fixtures.spec.ts`) read the same files, so a renamed, reordered or
//! dropped field fails on both sides. `PIFACE_BLESS=1 cargo test -p piface-coordinator --lib
//! frames` rewrites them after a deliberate change (then the UI must follow).
//!
//! Every variant has an example: [`session_index`] and [`dashboard_index`] match without a
//! wildcard, so a new variant does not compile until it is numbered here, and each number must
//! have its example.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use piface_shared::protocol::ShellOutput;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::compact::Compactor;
use super::*;

fn dir(socket: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/browser").join(socket)
}

/// A session as the API shows one, every field set.
fn record() -> SessionRecord {
    serde_json::from_value(json!({
        "piface_id": "3f2b8c1e-0d4a-4c5e-9a7b-1c2d3e4f5a6b",
        "working_dir": "~/src/piface",
        "status": "live",
        "session_file": "~/.pi/agent/sessions/--src-piface--/2026-12-05T09-00-00-000Z_3f2b.jsonl",
        "no_session": false,
        "use_direnv": true,
        "model_provider": "openai-codex",
        "model_id": "gpt-5.5",
        "thinking_level": "medium",
        "session_name": "fix the relay",
        "render_markdown": true,
        "parent_piface_id": null,
        "branch_entry_id": null,
        "project_dir": "/home/u/src/piface",
        "project_subdir": ".",
        "execution_dir": "/home/u/.local/share/piface/worktrees/piface/fix-the-relay",
        "workspace_mode": "git_worktree",
        "workspace_id": "piface-fix-the-relay",
        "workspace_name": "fix-the-relay",
        "workspace_root": "/home/u/.local/share/piface/worktrees/piface",
        "workspace_branch": "piface/fix-the-relay",
        "workspace_base_ref": "main",
        "workspace_theme_override": null,
        "workspace_skin_override": null,
        "workspace_created_by_piface": true,
        "workspace_status": "ready",
        "workspace_error": null,
        "bootstrap_log_path": null,
        "launch_log_path": null,
        "created_at": "2026-12-05T09:00:00Z",
        "last_active": "2026-12-05T09:05:00Z",
        "agent": "gpu-box"
    }))
    .unwrap()
}

fn raw(v: Value) -> Box<RawValue> {
    RawValue::from_string(v.to_string()).unwrap()
}

const SESSION_KINDS: usize = 5;

fn session_index(f: &SessionFrame) -> usize {
    match f {
        SessionFrame::SessionState { .. } => 0,
        SessionFrame::Error { .. } => 1,
        SessionFrame::Replay { .. } => 2,
        SessionFrame::AttentionRequired { .. } => 3,
        SessionFrame::ShellResponse { .. } => 4,
    }
}

/// Example `i` of a session frame, given the values it borrows.
fn session_example<'a>(i: usize, record: &'a SessionRecord, raws: &'a [Box<RawValue>]) -> SessionFrame<'a> {
    match i {
        0 => SessionFrame::SessionState { session: record },
        1 => SessionFrame::Error { message: "The link to agent gpu-box is down; waiting for it to reconnect" },
        2 => SessionFrame::Replay { messages: &raws[0] },
        3 => SessionFrame::AttentionRequired { session_id: &record.piface_id, request: &raws[1] },
        4 => SessionFrame::ShellResponse {
            id: "__piface_cmd_7",
            command: "bash",
            success: true,
            data: Some(ShellData {
                output: "ARCHITECTURE.md\nREADME.md\n",
                exit_code: Some(0),
                cancelled: false,
                truncated: false,
                command: "ls *.md",
                exclude_from_context: true,
            }),
            error: None,
        },
        _ => unreachable!("{i}"),
    }
}

const DASHBOARD_KINDS: usize = 4;

fn dashboard_index<A: Serialize>(f: &DashboardFrame<A>) -> usize {
    match f {
        DashboardFrame::Snapshot { .. } => 0,
        DashboardFrame::Session { .. } => 1,
        DashboardFrame::SessionRemoved { .. } => 2,
        DashboardFrame::Agent { .. } => 3,
    }
}

/// An agent as the dashboard shows one: the real `AgentInfo`, after its hello, with a GPU.
fn agent() -> crate::agents::AgentInfo {
    let agents = crate::agents::Agents::new(Default::default(), Arc::default());
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    agents.up("gpu-box", Arc::new(crate::agent_link::AgentHandle::new(tx)), None);
    let hello = piface_shared::protocol::Hello {
        protocol_version: piface_shared::protocol::PROTOCOL_VERSION,
        software_version: "0.1.0".into(),
        hostname: "gpu-box".into(),
        os: "linux".into(),
        pi_version: Some("0.73.0".into()),
        gpus: vec![piface_shared::protocol::GpuInfo {
            index: 0,
            name: "NVIDIA GeForce GTX 1080 Ti".into(),
            uuid: "GPU-5a1c0e1f-0000-0000-0000-000000000000".into(),
            memory_mib: 11264,
            memory_free_mib: 10900,
            compute_capability: Some("6.1".into()),
            pci_bus_id: "00000000:01:00.0".into(),
        }],
        speech: None,
        tts: None,
    };
    agents.hello("gpu-box", &hello);
    let mut info = agents.list().pop().unwrap();
    info.last_seen = "2026-12-05T09:05:00Z".into();
    info.live_sessions = 1;
    info
}

fn dashboard_example<'a, A: Serialize>(
    i: usize,
    records: &'a [SessionRecord],
    agents: &'a [A],
) -> DashboardFrame<'a, A> {
    match i {
        0 => DashboardFrame::Snapshot { sessions: records, agents },
        1 => DashboardFrame::Session { session: &records[0] },
        2 => DashboardFrame::SessionRemoved { piface_id: &records[0].piface_id },
        3 => DashboardFrame::Agent { agent: &agents[0] },
        _ => unreachable!("{i}"),
    }
}

/// What browsers send: one example of each kind (a wildcard-free match numbers them).
const BROWSER_KINDS: usize = 1;

fn browser_index(f: &BrowserFrame) -> usize {
    match f {
        BrowserFrame::Visibility { .. } => 0,
    }
}

fn browser_example(i: usize) -> BrowserFrame {
    match i {
        0 => BrowserFrame::Visibility { visible: false },
        _ => unreachable!("{i}"),
    }
}

/// A push's payload of each kind; the first is the fixture (`push/piface_notification.json`).
fn notification_example(kind: NotificationKind) -> Notification<'static> {
    match kind {
        NotificationKind::TurnEnd => Notification {
            kind,
            title: "fix the relay",
            body: "pi is done and waiting for you",
            url: "/session/3f2b8c1e-0d4a-4c5e-9a7b-1c2d3e4f5a6b",
            tag: "piface-session-3f2b8c1e-0d4a-4c5e-9a7b-1c2d3e4f5a6b",
            session_id: Some("3f2b8c1e-0d4a-4c5e-9a7b-1c2d3e4f5a6b"),
        },
        NotificationKind::Attention
        | NotificationKind::Exited
        | NotificationKind::AgentDown
        | NotificationKind::Test => Notification {
            kind,
            title: "Agent gpu-box is down",
            body: "Its sessions wait for it to reconnect.",
            url: "/",
            tag: "piface-agent-gpu-box",
            session_id: None,
        },
    }
}

/// Compares `bytes` with the fixture `socket/name.json` (or writes it when blessing).
fn golden(socket: &str, name: &str, bytes: &[u8], failures: &mut Vec<String>) {
    let path = dir(socket).join(format!("{name}.json"));
    let mut want = bytes.to_vec();
    want.push(b'\n');
    if std::env::var_os("PIFACE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &want).unwrap();
        return;
    }
    match std::fs::read(&path) {
        Ok(have) if have == want => {}
        Ok(have) => failures.push(format!(
            "{}:\n  fixture {}\n  now     {}",
            path.display(),
            String::from_utf8_lossy(&have).trim_end(),
            String::from_utf8_lossy(&want).trim_end()
        )),
        Err(e) => failures.push(format!("{}: {e}", path.display())),
    }
}

fn type_of(bytes: &[u8]) -> String {
    let v: Value = serde_json::from_slice(bytes).unwrap();
    v["type"].as_str().unwrap().to_string()
}

#[test]
fn every_frame_kind_matches_its_golden_fixture() {
    let mut failures = Vec::new();
    let record = record();
    let raws = [
        raw(json!([
            {"role": "user", "content": [{"type": "text", "text": "why is the relay slow?"}], "timestamp": 1764925200000u64},
            {"role": "assistant", "content": [{"type": "text", "text": "It waits on one lock."}], "stopReason": "stop", "timestamp": 1764925203000u64}
        ])),
        raw(
            json!({"type": "extension_ui_request", "id": "ui-1", "method": "confirm", "title": "Run the migration?", "message": "This rewrites state.redb."}),
        ),
    ];
    let mut names = Vec::new();
    for i in 0..SESSION_KINDS {
        let frame = session_example(i, &record, &raws);
        assert_eq!(session_index(&frame), i, "example {i} is of another kind");
        let bytes = frame.to_bytes();
        let name = type_of(&bytes);
        names.push(name.clone());
        golden("session", &name, &bytes, &mut failures);
    }
    // The helpers make the same bytes as the variants they stand for.
    assert_eq!(error_frame("x"), SessionFrame::Error { message: "x" }.to_bytes());
    let request = raws[1].get().as_bytes();
    assert_eq!(
        attention_frame(&record.piface_id, request).unwrap(),
        SessionFrame::AttentionRequired { session_id: &record.piface_id, request: &raws[1] }.to_bytes()
    );
    let out = ShellOutput {
        output: "ARCHITECTURE.md\nREADME.md\n".into(),
        exit_code: Some(0),
        truncated: false,
        cancelled: false,
    };
    assert_eq!(shell_response("__piface_cmd_7", "ls *.md", Ok(&out)), session_example(4, &record, &raws).to_bytes());
    let failed = shell_response("__piface_cmd_8", "ls", Err("the agent is not connected"));
    golden("session", "response.error", &failed, &mut failures);

    // Compact mode: the second of two streaming updates, as a patch of the first's message.
    let update = |text: &str| {
        let m = json!({"role": "assistant", "content": [{"type": "text", "text": text}], "stopReason": null});
        let line = json!({"type": "message_update", "assistantMessageEvent": {"type": "text_delta", "contentIndex": 0, "delta": " lock", "partial": m}, "message": m});
        (Bytes::from(line.to_string()), m)
    };
    let mut compactor = Compactor::default();
    let (first, base) = update("It waits on one");
    let (second, after) = update("It waits on one lock");
    assert!(compactor.push("message_update", &first).is_none(), "the first update goes out whole");
    let patch = compactor.push("message_update", &second).expect("the second is a patch");
    golden("session", "message_update.compact", &patch, &mut failures);
    golden("session", "message_update.compact.base", base.to_string().as_bytes(), &mut failures);
    golden("session", "message_update.compact.after", after.to_string().as_bytes(), &mut failures);

    let records = [record.clone()];
    let agents = [agent()];
    for i in 0..DASHBOARD_KINDS {
        let frame = dashboard_example(i, &records, &agents);
        assert_eq!(dashboard_index(&frame), i, "example {i} is of another kind");
        let bytes = frame.to_bytes();
        let name = type_of(&bytes);
        golden("dashboard", &name, &bytes, &mut failures);
    }

    // Nothing in the fixture folders that no example writes: a fixture of a removed kind
    // would keep the UI testing a frame nobody sends.
    let mut expected: Vec<String> = names.iter().map(|n| format!("session/{n}.json")).collect();
    for extra in
        ["response.error", "message_update.compact", "message_update.compact.base", "message_update.compact.after"]
    {
        expected.push(format!("session/{extra}.json"));
    }
    for i in 0..DASHBOARD_KINDS {
        expected.push(format!("dashboard/{}.json", type_of(&dashboard_example(i, &records, &agents).to_bytes())));
    }

    // What browsers send: written as the UI writes it (`type` first), and read back the same.
    for i in 0..BROWSER_KINDS {
        let frame = browser_example(i);
        assert_eq!(browser_index(&frame), i, "example {i} is of another kind");
        let bytes = serde_json::to_vec(&frame).unwrap();
        let name = type_of(&bytes);
        golden("client", &name, &bytes, &mut failures);
        expected.push(format!("client/{name}.json"));
        let read: BrowserFrame = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(read, frame);
    }
    // Lenient reading: members it does not know are ignored; a wrong type of `visible` is not.
    let extra: BrowserFrame = serde_json::from_str(r#"{"type":"piface_visibility","visible":true,"later":1}"#).unwrap();
    assert_eq!(extra, BrowserFrame::Visibility { visible: true });
    assert!(serde_json::from_str::<BrowserFrame>(r#"{"type":"piface_visibility","visible":"yes"}"#).is_err());

    // A push's payload: the fixture is a session's; every kind has its snake_case name.
    let payload = notification_example(NotificationKind::TurnEnd).to_bytes();
    golden("push", "piface_notification", &payload, &mut failures);
    expected.push("push/piface_notification.json".into());
    let down = notification_example(NotificationKind::AgentDown).to_bytes();
    golden("push", "piface_notification.agent_down", &down, &mut failures);
    expected.push("push/piface_notification.agent_down.json".into());
    for (kind, name) in [
        (NotificationKind::TurnEnd, "turn_end"),
        (NotificationKind::Attention, "attention"),
        (NotificationKind::Exited, "exited"),
        (NotificationKind::AgentDown, "agent_down"),
        (NotificationKind::Test, "test"),
    ] {
        let v: Value = serde_json::from_slice(&notification_example(kind).to_bytes()).unwrap();
        assert_eq!(v["kind"], name);
    }

    for socket in ["session", "dashboard", "client", "push"] {
        for entry in std::fs::read_dir(dir(socket)).unwrap().flatten() {
            let name = format!("{socket}/{}", entry.file_name().to_string_lossy());
            if !expected.contains(&name) {
                failures.push(format!("{name}: a fixture no frame kind writes"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "frames differ from their fixtures (PIFACE_BLESS=1 to accept):\n{}",
        failures.join("\n")
    );
}
