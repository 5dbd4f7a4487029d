//! Compact mode end to end: two clients of one session, one in full mode and one with
//! `?mode=compact`, watch the same long turn of the real pi; the compact one rebuilds every
//! partial message from the patches and ends with the same message, for a fraction of the bytes.

use piface_coordinator::frames::compact::{apply, Op};
use piface_test_support::piface::{git_repo, Options, Piface};
use piface_test_support::{pi_bin, spawn_fake_llm, PiEnv};
use serde_json::{json, Value};

const PIFACE: &str = env!("CARGO_BIN_EXE_piface");

#[tokio::test]
async fn a_compact_client_rebuilds_every_partial_for_under_one_percent_of_the_bytes() {
    let llm = spawn_fake_llm().await.unwrap();
    let env = PiEnv::new(&llm.base_url()).unwrap();
    let opts =
        Options { bin: PIFACE.into(), pi_bin: pi_bin().unwrap(), envs: env.envs(), args: vec![], data_dir: None };
    let server = Piface::start(opts).await.unwrap();
    let repo = git_repo();
    let id = server.new_session(&json!({"working_dir": repo.path(), "provider": "fake", "model": "fake-model"})).await;
    let (mut full, _) = server.connect(&id).await.unwrap();
    let mut compact = server.ws(&format!("/ws/sessions/{id}?mode=compact")).await.unwrap();
    let state = compact.next().await.unwrap();
    assert_eq!(state["type"], "piface_session_state");
    let (full_start, compact_start) = (full.bytes, compact.bytes);

    // Thinking first, then 5,000 tokens of text: both strings grow by appends.
    full.send(&json!({"type": "prompt", "message": "[[think:let me see, step by step]] [[tokens:5000]]"}))
        .await
        .unwrap();
    let mut base: Option<Value> = None;
    let (mut patches, mut updates) = (0, 0);
    let final_full = loop {
        let f = full.next().await.unwrap();
        let c = compact.next().await.unwrap();
        match f["type"].as_str() {
            Some("message_update") => {
                updates += 1;
                assert_eq!(c["type"], "message_update");
                if let Some(ops) = c.get("piface_patch") {
                    patches += 1;
                    assert!(c.get("message").is_none() && c["assistantMessageEvent"].get("partial").is_none(), "{c}");
                    let mut event = f["assistantMessageEvent"].clone();
                    event.as_object_mut().unwrap().remove("partial");
                    assert_eq!(c["assistantMessageEvent"], event, "the event itself is kept");
                    let ops: Vec<Op> = ops.as_array().unwrap().iter().map(|o| Op::from_json(o).unwrap()).collect();
                    let m = base.as_mut().expect("a patch comes after a base");
                    apply(m, &ops).unwrap();
                    assert_eq!(m, &f["message"], "update {updates}: the patched partial is pi's");
                } else {
                    assert_eq!(c, f, "an update without a patch is pi's line");
                    base = Some(f["message"].clone());
                }
            }
            _ => assert_eq!(c, f, "other frames are the same in both modes"),
        }
        if f["type"] == "agent_end" {
            break f;
        }
    };
    assert!(updates > 5_000 && patches + 3 >= updates, "{patches} patches of {updates} updates");
    let text: String = final_full["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "assistant")
        .flat_map(|m| m["content"].as_array().unwrap().iter())
        .filter_map(|p| p["text"].as_str())
        .collect();
    assert!(text.starts_with("t0 t1 ") && text.ends_with("t4999 "), "{}", &text[text.len() - 20..]);
    let (full_bytes, compact_bytes) = (full.bytes - full_start, compact.bytes - compact_start);
    eprintln!("5,000-token turn: full {full_bytes} B, compact {compact_bytes} B");
    assert!(compact_bytes * 100 < full_bytes, "compact {compact_bytes} B vs full {full_bytes} B");

    // A compact client that joins in the middle of a message starts from a whole update.
    full.send(&json!({"type": "prompt", "message": "[[tokens:400]] [[delay:5]]"})).await.unwrap();
    loop {
        if full.next().await.unwrap()["type"] == "message_update" {
            break;
        }
    }
    let mut late = server.ws(&format!("/ws/sessions/{id}?mode=compact")).await.unwrap();
    late.next().await.unwrap();
    let mut late_base: Option<Value> = None;
    loop {
        let c = late.next().await.unwrap();
        match (c["type"].as_str(), c.get("piface_patch")) {
            (Some("message_update"), Some(ops)) => {
                let ops: Vec<Op> = ops.as_array().unwrap().iter().map(|o| Op::from_json(o).unwrap()).collect();
                apply(late_base.as_mut().expect("a whole update came first"), &ops).unwrap();
            }
            (Some("message_update"), None) => late_base = Some(c["message"].clone()),
            (Some("message_end"), _) if c["message"]["role"] == "assistant" => {
                assert_eq!(late_base.as_ref(), Some(&c["message"]), "the rebuilt partial is the final message");
            }
            (Some("agent_end"), _) => break,
            _ => {}
        }
    }
}
