//! Session history read back from files: a generated session with an abandoned branch, a 20 MiB message byte
//! for byte, and the real pi as the oracle for what a session file holds (its `get_messages` against our
//! reading of the file it wrote, through prompts, a tool call, a `bash` command, a fork and an in-file branch).

use std::path::{Path, PathBuf};
use std::time::Duration;

use piface_agent::history::{fork_messages, stream_history, ForkMessage, HistorySummary};
use piface_test_support::{pi_bin, spawn_fake_llm, PiEnv};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// Streams `path` into memory, checking that `out` never got an empty piece.
fn stream_bytes(path: &Path) -> (Vec<u8>, HistorySummary) {
    let mut out = Vec::new();
    let summary = stream_history(path, &mut |piece| {
        assert!(!piece.is_empty());
        out.extend_from_slice(piece);
        Ok(())
    })
    .unwrap();
    (out, summary)
}

fn stream_value(path: &Path) -> Value {
    let (bytes, summary) = stream_bytes(path);
    let value: Value = serde_json::from_slice(&bytes).expect("the history is one JSON array");
    assert_eq!(summary.messages, value.as_array().unwrap().len());
    assert_eq!((summary.skipped_lines, summary.truncated_tail), (0, false));
    value
}

fn texts(fork: &[ForkMessage]) -> Vec<&str> {
    fork.iter().map(|f| f.text.as_str()).collect()
}

/// Writes session entries the way pi does: each a child of the current leaf, which can be moved back.
struct SessionWriter {
    lines: Vec<String>,
    leaf: Option<String>,
    next_id: u32,
}

impl SessionWriter {
    fn new() -> SessionWriter {
        let header = json!({"type": "session", "version": 3, "id": "0199c0de-0000-7000-8000-000000000001",
                            "timestamp": "2025-06-01T10:00:00.000Z", "cwd": "/work/project"});
        SessionWriter { lines: vec![header.to_string()], leaf: None, next_id: 0x1a2b3c00 }
    }

    fn entry(&mut self, kind: &str, fields: Value) -> String {
        self.next_id += 7;
        let id = format!("{:08x}", self.next_id);
        let mut entry = json!({"type": kind, "id": id, "parentId": self.leaf,
                               "timestamp": format!("2025-06-01T10:{:02}:00.000Z", self.lines.len() % 60)});
        entry.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        self.lines.push(entry.to_string());
        self.leaf = Some(id.clone());
        id
    }

    fn message(&mut self, message: &Value) -> String {
        self.entry("message", json!({ "message": message }))
    }

    fn messages(&mut self, messages: &[Value]) {
        for message in messages {
            self.message(message);
        }
    }

    fn write(&self, path: &Path) {
        std::fs::write(path, self.lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    }
}

fn user(text: &str, ts: u64) -> Value {
    json!({"role": "user", "content": [{"type": "text", "text": text}], "timestamp": ts})
}

fn usage() -> Value {
    json!({"input": 1200, "output": 85, "cacheRead": 0, "cacheWrite": 0, "totalTokens": 1285,
           "cost": {"input": 0.0036, "output": 0.001275, "cacheRead": 0, "cacheWrite": 0, "total": 0.004875}})
}

fn tool_call(id: &str, command: &str, ts: u64) -> Value {
    json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Let me look."},
            {"type": "toolCall", "id": id, "name": "bash", "arguments": {"command": command}}],
           "api": "openai-completions", "provider": "openai", "model": "gpt-4o", "usage": usage(),
           "stopReason": "toolUse", "timestamp": ts})
}

fn tool_result(id: &str, output: &str, ts: u64) -> Value {
    json!({"role": "toolResult", "toolCallId": id, "toolName": "bash",
           "content": [{"type": "text", "text": output}], "isError": false, "timestamp": ts})
}

fn answer(text: &str, ts: u64) -> Value {
    json!({"role": "assistant", "content": [{"type": "text", "text": text}], "api": "openai-completions",
           "provider": "openai", "model": "gpt-4o", "usage": usage(), "stopReason": "stop", "timestamp": ts})
}

/// The four messages of turn `n`: a prompt, a tool call, its result and an answer.
fn turn(n: u64, prompt: &str) -> [Value; 4] {
    let call = format!("call_{n}");
    [
        user(prompt, n * 100),
        tool_call(&call, "ls -la", n * 100 + 1),
        tool_result(&call, "total 8\ndrwxr-xr-x  2 me me 4096 .\n\"quoted\" \u{e9} \t tab", n * 100 + 2),
        answer(&format!("Turn {n} done: the directory is empty."), n * 100 + 3),
    ]
}

#[test]
fn generated_session_with_an_abandoned_branch() {
    let mut w = SessionWriter::new();
    w.entry("model_change", json!({"provider": "openai", "modelId": "gpt-4o"}));
    w.entry("thinking_level_change", json!({"thinkingLevel": "off"}));
    let first = turn(1, "list the files");
    w.messages(&first);
    let after_first = w.leaf.clone();
    // A second turn that the user later abandoned by going back to the end of the first.
    w.messages(&turn(2, "abandoned: delete everything"));
    w.leaf = after_first;
    let third = turn(3, "list them again");
    w.messages(&third);
    let bash = json!({"role": "bashExecution", "command": "git status", "output": "clean\n", "exitCode": 0,
                      "cancelled": false, "truncated": false, "timestamp": 400});
    w.message(&bash);
    let fourth = turn(4, "and once more");
    w.messages(&fourth);
    w.entry("label", json!({"targetId": "1a2b3c07", "label": "start"}));
    w.entry("session_info", json!({"name": "listing"}));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("2025-06-01T10-00-00-000Z_0199c0de.jsonl");
    w.write(&path);

    let expected: Vec<Value> = first.into_iter().chain(third).chain([bash]).chain(fourth).collect();
    assert_eq!(stream_value(&path), Value::Array(expected));
    let fork = fork_messages(&path).unwrap();
    assert_eq!(texts(&fork), ["list the files", "list them again", "and once more"]);
    assert!(fork.iter().all(|f| f.entry_id.len() == 8));
}

#[test]
fn twenty_mib_message_byte_for_byte() {
    // Written by hand, so that re-encoding would show: escapes serde_json would not write (`\/`, `\u00e9`),
    // spaces, a surrogate pair, and 20 MiB of text with newlines and quotes in it.
    let mut big = String::with_capacity(21 << 20);
    while big.len() < 20 << 20 {
        big.push_str(r#"line \"quoted\" \/ caf\u00e9 \ud83d\ude00 \t tab\n"#);
    }
    let raw = format!(
        r#"{{"role":"toolResult","toolCallId":"call_1","toolName":"bash","content":[{{"type":"text","text":"{}"}}], {}"#,
        big, r#""isError":false,"timestamp":1}"#
    );
    let lines = [
        r#"{"type":"session","version":3,"id":"s","timestamp":"2025-06-01T10:00:00.000Z","cwd":"/p"}"#.to_string(),
        r#"{"type":"message","id":"aaaaaaaa","parentId":null,"timestamp":"t","message":{"role":"user","content":"go","#
            .to_string()
            + r#""timestamp":0}}"#,
        format!(r#"{{"type":"message","id":"bbbbbbbb","parentId":"aaaaaaaa","timestamp":"t","message":{raw}}}"#),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let mut pieces = 0;
    let mut out = Vec::new();
    let summary = stream_history(&path, &mut |piece| {
        pieces += 1;
        out.extend_from_slice(piece);
        Ok(())
    })
    .unwrap();
    assert_eq!(summary, HistorySummary { messages: 2, skipped_lines: 0, truncated_tail: false });
    let expected = format!(r#"[{{"role":"user","content":"go","timestamp":0}},{raw}]"#);
    assert!(out == expected.as_bytes(), "the output differs from the file's bytes");
    assert!(pieces <= 4, "{pieces} pieces");
    let value: Value = serde_json::from_slice(&out).unwrap();
    assert!(value[1]["content"][0]["text"].as_str().unwrap().starts_with("line \"quoted\" / café 😀 \t tab\n"));
}

// ---------------------------------------------------------------------------------------------------------
// The real pi
// ---------------------------------------------------------------------------------------------------------

const WAIT: Duration = Duration::from_secs(60);

/// A real `pi --mode rpc` with a session file (no `--no-session`), talking to the fake LLM.
struct Pi {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    next_id: u32,
}

impl Pi {
    async fn start(env: &PiEnv, cwd: &Path, extra: &[&str]) -> Pi {
        let mut child = tokio::process::Command::new(pi_bin().unwrap())
            .args(["--mode", "rpc", "--provider", "fake", "--model", "fake-model"])
            .args(extra)
            .current_dir(cwd)
            .envs(env.envs())
            .env_remove("PI_CODING_AGENT_SESSION_DIR")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Pi { child, stdin, stdout, next_id: 0 }
    }

    async fn send(&mut self, command: &Value) {
        let line = format!("{command}\n");
        tokio::time::timeout(WAIT, self.stdin.write_all(line.as_bytes())).await.expect("pi reads").unwrap();
    }

    /// Reads pi's output up to the first line that `matches`.
    async fn until(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let read = async {
            while let Some(line) = self.stdout.next_line().await.unwrap() {
                let value: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                if matches(&value) {
                    return value;
                }
            }
            panic!("pi exited while waiting for {what}");
        };
        tokio::time::timeout(WAIT, read).await.unwrap_or_else(|_| panic!("no {what} from pi within {WAIT:?}"))
    }

    /// Sends `command` with an id and returns the `data` of its successful response.
    async fn request(&mut self, mut command: Value) -> Value {
        self.next_id += 1;
        let id = format!("t{}", self.next_id);
        command["id"] = json!(id);
        self.send(&command).await;
        let response =
            self.until(&format!("the response to {command}"), |v| v["type"] == "response" && v["id"] == id).await;
        assert_eq!(response["success"], true, "{response}");
        response.get("data").cloned().unwrap_or(Value::Null)
    }

    async fn prompt(&mut self, text: &str) {
        self.send(&json!({"type": "prompt", "message": text})).await;
        self.until("agent_end", |v| v["type"] == "agent_end").await;
    }

    async fn session_file(&mut self) -> PathBuf {
        let state = self.request(json!({"type": "get_state"})).await;
        PathBuf::from(state["sessionFile"].as_str().expect("a session file"))
    }

    async fn messages(&mut self) -> Value {
        self.request(json!({"type": "get_messages"})).await["messages"].clone()
    }

    async fn stop(mut self) {
        drop(self.stdin);
        let status = tokio::time::timeout(WAIT, self.child.wait()).await.expect("pi exits").unwrap();
        assert!(status.success(), "{status}");
    }
}

fn roles(messages: &Value) -> Vec<&str> {
    messages.as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect()
}

/// The entries of a (small) session file.
fn entries(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agrees_with_real_pi() {
    let llm = spawn_fake_llm().await.unwrap();
    let env = PiEnv::new(&llm.base_url()).unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let mut pi = Pi::start(&env, cwd.path(), &[]).await;

    // Two prompts: the file holds exactly what pi's get_messages returns.
    pi.prompt("first").await;
    pi.prompt("second").await;
    let first_file = pi.session_file().await;
    assert_eq!(stream_value(&first_file), pi.messages().await);
    let fork = fork_messages(&first_file).unwrap();
    assert_eq!(texts(&fork), ["first", "second"]);
    let pi_fork = pi.request(json!({"type": "get_fork_messages"})).await;
    assert_eq!(serde_json::to_value(&fork).unwrap(), pi_fork["messages"]);

    // A `bash` command (bashExecution) and a tool call (toolCall, toolResult) are messages in the file too.
    pi.request(json!({"type": "bash", "command": "echo from-bash"})).await;
    pi.prompt("third [[bash:echo tool-output]]").await;
    let messages = pi.messages().await;
    assert_eq!(stream_value(&first_file), messages);
    assert_eq!(
        roles(&messages),
        ["user", "assistant", "user", "assistant", "bashExecution", "user", "assistant", "toolResult", "assistant"]
    );

    // Forking from the second prompt starts a new file holding the path before it; the old one is untouched.
    let before_fork = std::fs::read(&first_file).unwrap();
    let second_id = &fork[1].entry_id;
    let forked = pi.request(json!({"type": "fork", "entryId": second_id})).await;
    assert_eq!(forked, json!({"text": "second", "cancelled": false}));
    let fork_file = pi.session_file().await;
    assert_ne!(fork_file, first_file);
    assert_eq!(std::fs::read(&first_file).unwrap(), before_fork);
    assert_eq!(entries(&fork_file)[0]["parentSession"], json!(first_file));
    assert_eq!(stream_value(&fork_file), pi.messages().await);
    assert_eq!(roles(&stream_value(&fork_file)), ["user", "assistant"]);
    pi.prompt("after the fork").await;
    assert_eq!(stream_value(&fork_file), pi.messages().await);
    assert_eq!(texts(&fork_messages(&fork_file).unwrap()), ["first", "after the fork"]);
    pi.stop().await;

    // A branch inside one file, as pi's /tree writes it: a branch_summary entry whose parent is the answer to
    // "first", then the conversation goes on from there. Resumed with --session, pi continues from the last
    // entry; everything after "first" on the old path is abandoned.
    let first_answer = entries(&first_file)
        .into_iter()
        .find(|e| e["message"]["role"] == "assistant")
        .expect("an answer to the first prompt");
    let summary = json!({"type": "branch_summary", "id": "b5a11ce0", "parentId": first_answer["id"],
                         "timestamp": "2025-06-01T10:00:00.000Z", "fromId": entries(&first_file).last().unwrap()["id"],
                         "summary": "Tried a second and a third prompt."});
    let mut text = std::fs::read_to_string(&first_file).unwrap();
    text.push_str(&format!("{summary}\n"));
    std::fs::write(&first_file, text).unwrap();

    let mut pi = Pi::start(&env, cwd.path(), &["--session", first_file.to_str().unwrap()]).await;
    assert_eq!(pi.session_file().await, first_file);
    pi.prompt("branched").await;
    let mut messages = pi.messages().await;
    // pi turns the branch_summary entry into a message of its own; history shows only stored messages.
    let all = messages.as_array_mut().unwrap();
    let summaries: Vec<_> = all.iter().filter(|m| m["role"] == "branchSummary").cloned().collect();
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    all.retain(|m| m["role"] != "branchSummary");
    assert_eq!(stream_value(&first_file), messages);
    assert_eq!(roles(&messages), ["user", "assistant", "user", "assistant"]);
    assert_eq!(texts(&fork_messages(&first_file).unwrap()), ["first", "branched"]);
    // pi's own list holds the user messages of every branch.
    let pi_fork = pi.request(json!({"type": "get_fork_messages"})).await;
    let pi_texts: Vec<_> = pi_fork["messages"].as_array().unwrap().iter().map(|m| m["text"].clone()).collect();
    assert_eq!(pi_texts, ["first", "second", "third [[bash:echo tool-output]]", "branched"]);
    pi.stop().await;
}
