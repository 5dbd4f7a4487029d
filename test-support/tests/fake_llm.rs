//! Integration tests for the fake LLM: (a) the exact wire format of every directive over real HTTP, the
//! `fake-llm` binary's start-up contract and the pi installer, and (b) the real `pi --mode rpc` completing a
//! plain turn, a bash-tool turn and a failing turn against it inside a [`PiEnv`].
//!
//! What pi 0.73.1 sends (details in the `piface_test_support::fake_llm` module docs): only
//! `POST /v1/chat/completions` — never `GET /v1/models` — with the `openai` JS client's headers
//! (`authorization: Bearer test-key`, `accept: application/json`, `x-stainless-*`) and a body of
//! `model`, `messages` (system prompt first; the RPC prompt as an *array* of text parts), `stream: true`,
//! `stream_options.include_usage`, `max_completion_tokens: 16384` and `tools` (read, bash, edit, write). It
//! needs `finish_reason` (`tool_calls` makes it run the tool and call again with a `role: "tool"` message)
//! and takes usage from the `choices: []` chunk; a 500 is retried unless `PiEnv`'s settings turn that off.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use piface_test_support::{spawn_fake_llm, FakeLlm, PiEnv};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Upper bound for anything involving pi, so a hang fails the test instead of blocking the suite.
const PI_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------------------------------------

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("reqwest client")
}

fn user(text: &str) -> Value {
    json!({ "role": "user", "content": text })
}

fn chat_body(messages: Vec<Value>) -> Value {
    json!({ "model": "fake-model", "stream": true, "stream_options": { "include_usage": true }, "messages": messages })
}

/// POSTs to /chat/completions and returns the status and the whole body as text.
async fn post_chat(fake: &FakeLlm, body: &Value) -> (reqwest::StatusCode, String) {
    let resp = client().post(format!("{}/chat/completions", fake.base_url())).json(body).send().await.unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap())
}

/// One SSE record: a JSON chunk or the `[DONE]` sentinel.
#[derive(Debug, Clone, PartialEq)]
enum Sse {
    Chunk(Value),
    Done,
}

/// Parses an SSE body, insisting that every record is exactly one `data: ` line.
fn parse_sse(body: &str) -> Vec<Sse> {
    assert!(body.ends_with("\n\n"), "SSE body must end with a blank line: {body:?}");
    body.split("\n\n")
        .filter(|r| !r.is_empty())
        .map(|record| {
            let data = record.strip_prefix("data: ").unwrap_or_else(|| panic!("not a data record: {record:?}"));
            assert!(!data.contains('\n'), "multi-line record: {record:?}");
            if data == "[DONE]" {
                Sse::Done
            } else {
                Sse::Chunk(serde_json::from_str(data).unwrap_or_else(|e| panic!("bad JSON {data:?}: {e}")))
            }
        })
        .collect()
}

fn chunks(events: &[Sse]) -> Vec<&Value> {
    events.iter().filter_map(|e| if let Sse::Chunk(v) = e { Some(v) } else { None }).collect()
}

fn delta_strings<'a>(events: &'a [Sse], field: &str) -> Vec<&'a str> {
    chunks(events).into_iter().filter_map(|c| c["choices"][0]["delta"][field].as_str()).collect()
}

fn finish_reasons(events: &[Sse]) -> Vec<&str> {
    chunks(events).into_iter().filter_map(|c| c["choices"][0]["finish_reason"].as_str()).collect()
}

/// Checks the frame every stream shares: role chunk first, one finish chunk, usage chunk, `[DONE]` last.
fn assert_stream_frame(events: &[Sse], finish: &str) {
    let cs = chunks(events);
    assert!(cs.len() >= 3, "too few chunks: {events:?}");
    for c in &cs {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], cs[0]["id"]);
        assert_eq!(c["model"], "fake-model");
    }
    assert_eq!(cs[0]["choices"][0]["delta"], json!({ "role": "assistant" }));
    assert_eq!(finish_reasons(events), vec![finish]);
    let usage = cs[cs.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    let u = &usage["usage"];
    assert!(u["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
    );
    // The finish chunk comes right before the usage chunk.
    assert_eq!(cs[cs.len() - 2]["choices"][0]["finish_reason"], finish);
    assert_eq!(events.last(), Some(&Sse::Done));
    assert_eq!(events.iter().filter(|e| **e == Sse::Done).count(), 1);
}

// ---------------------------------------------------------------------------------------------------------
// (a) directives over HTTP
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn echo_streams_text_in_word_chunks() {
    let fake = spawn_fake_llm().await.unwrap();
    let (status, body) = post_chat(&fake, &chat_body(vec![user("hello there")])).await;
    assert_eq!(status, 200);
    let events = parse_sse(&body);
    assert_stream_frame(&events, "stop");
    let pieces = delta_strings(&events, "content");
    assert_eq!(pieces, vec!["echo: ", "hello ", "there"]);
    assert_eq!(chunks(&events).last().unwrap()["usage"]["completion_tokens"], 3);
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn echo_uses_last_user_message_and_text_parts() {
    let fake = spawn_fake_llm().await.unwrap();
    let messages = vec![
        json!({ "role": "system", "content": "you are a test" }),
        user("first [[tokens:9]]"),
        json!({ "role": "assistant", "content": "whatever" }),
        json!({ "role": "user", "content": [
            { "type": "text", "text": "part one" },
            { "type": "image_url", "image_url": { "url": "data:image/png;base64,AA==" } },
            { "type": "text", "text": "part two" },
        ] }),
    ];
    let (_, body) = post_chat(&fake, &chat_body(messages)).await;
    let events = parse_sse(&body);
    assert_stream_frame(&events, "stop");
    assert_eq!(delta_strings(&events, "content").concat(), "echo: part one\npart two");
}

#[tokio::test]
async fn tokens_directive_gives_exactly_n_chunks() {
    let fake = spawn_fake_llm().await.unwrap();
    let (_, body) = post_chat(&fake, &chat_body(vec![user("go [[tokens:5]]")])).await;
    let events = parse_sse(&body);
    assert_stream_frame(&events, "stop");
    assert_eq!(delta_strings(&events, "content"), vec!["t0 ", "t1 ", "t2 ", "t3 ", "t4 "]);

    let (_, body) = post_chat(&fake, &chat_body(vec![user("[[tokens:0]]")])).await;
    let events = parse_sse(&body);
    assert_stream_frame(&events, "stop");
    assert!(delta_strings(&events, "content").is_empty());
}

#[tokio::test]
async fn hundred_thousand_tokens_stream_quickly() {
    let fake = spawn_fake_llm().await.unwrap();
    let started = Instant::now();
    let (status, body) = post_chat(&fake, &chat_body(vec![user("[[tokens:100000]]")])).await;
    let elapsed = started.elapsed();
    assert_eq!(status, 200);
    let events = parse_sse(&body);
    assert_stream_frame(&events, "stop");
    let pieces = delta_strings(&events, "content");
    assert_eq!(pieces.len(), 100_000);
    assert!(pieces.iter().enumerate().all(|(i, p)| *p == format!("t{i} ")));
    eprintln!("100k tokens: {} bytes in {elapsed:?}", body.len());
    // Generous for unoptimised builds on a busy CI box; in practice this takes well under a second.
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}

#[tokio::test]
async fn bash_directive_calls_tool_then_reports_result() {
    let fake = spawn_fake_llm().await.unwrap();
    let prompt = "please [[bash:echo \"hi\" > marker.txt]] now";
    let (_, body) = post_chat(&fake, &chat_body(vec![user(prompt)])).await;
    let events = parse_sse(&body);
    assert_stream_frame(&events, "tool_calls");
    assert!(delta_strings(&events, "content").is_empty());

    let calls: Vec<&Value> = chunks(&events)
        .into_iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .collect();
    assert!(calls.len() >= 3, "header + ≥2 argument pieces: {calls:?}");
    let header = calls[0];
    assert_eq!(header["index"], 0);
    assert_eq!(header["type"], "function");
    assert_eq!(header["function"]["name"], "bash");
    let call_id = header["id"].as_str().unwrap().to_string();
    assert!(!call_id.is_empty());
    let args: String = calls.iter().filter_map(|c| c["function"]["arguments"].as_str()).collect();
    assert!(calls[1..].iter().all(|c| c["index"] == 0 && c["function"]["arguments"].as_str().unwrap() != ""));
    assert_eq!(serde_json::from_str::<Value>(&args).unwrap(), json!({ "command": "echo \"hi\" > marker.txt" }));

    // Once a tool result follows the last user message, the fake answers with text.
    let messages = vec![
        user(prompt),
        json!({ "role": "assistant", "content": null, "tool_calls": [{
            "id": call_id, "type": "function", "function": { "name": "bash", "arguments": args },
        }] }),
        json!({ "role": "tool", "tool_call_id": call_id, "content": "  (no output)\n" }),
    ];
    let (_, body) = post_chat(&fake, &chat_body(messages)).await;
    let events = parse_sse(&body);
    assert_stream_frame(&events, "stop");
    assert_eq!(delta_strings(&events, "content").concat(), "tool said: (no output)");
}

#[tokio::test]
async fn delay_directive_paces_chunks() {
    let fake = spawn_fake_llm().await.unwrap();
    let started = Instant::now();
    let resp = client()
        .post(format!("{}/chat/completions", fake.base_url()))
        .json(&chat_body(vec![user("[[tokens:3]] [[delay:150]]")]))
        .send()
        .await
        .unwrap();
    // Headers (and the first chunks) arrive before the delays have elapsed: the body really streams.
    let mut resp = resp;
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_millis(150), "first bytes took {:?}", started.elapsed());
    let mut body = String::from_utf8(first.to_vec()).unwrap();
    while let Some(more) = resp.chunk().await.unwrap() {
        body.push_str(std::str::from_utf8(&more).unwrap());
    }
    let elapsed = started.elapsed();
    // Two gaps between three content chunks.
    assert!(elapsed >= Duration::from_millis(300), "took only {elapsed:?}");
    let events = parse_sse(&body);
    assert_stream_frame(&events, "stop");
    assert_eq!(delta_strings(&events, "content"), vec!["t0 ", "t1 ", "t2 "]);
}

#[tokio::test]
async fn error_directive_returns_500_json() {
    let fake = spawn_fake_llm().await.unwrap();
    let (status, body) = post_chat(&fake, &chat_body(vec![user("x [[error:model exploded]] [[tokens:3]]")])).await;
    assert_eq!(status, 500);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v, json!({ "error": { "message": "model exploded", "type": "server_error" } }));
}

#[tokio::test]
async fn think_directive_streams_reasoning_first() {
    let fake = spawn_fake_llm().await.unwrap();
    let (_, body) = post_chat(&fake, &chat_body(vec![user("[[think:let me see]] [[tokens:2]]")])).await;
    let events = parse_sse(&body);
    assert_stream_frame(&events, "stop");
    assert_eq!(delta_strings(&events, "reasoning_content"), vec!["let ", "me ", "see"]);
    assert_eq!(delta_strings(&events, "content"), vec!["t0 ", "t1 "]);
    // Reasoning strictly precedes content.
    let kinds: Vec<&str> = chunks(&events)
        .into_iter()
        .filter_map(|c| {
            let d = &c["choices"][0]["delta"];
            if d.get("reasoning_content").is_some() {
                Some("r")
            } else if d.get("content").is_some() {
                Some("c")
            } else {
                None
            }
        })
        .collect();
    assert_eq!(kinds, vec!["r", "r", "r", "c", "c"]);
}

#[tokio::test]
async fn non_streaming_requests_get_a_completion_object() {
    let fake = spawn_fake_llm().await.unwrap();
    let mut body = chat_body(vec![user("hi")]);
    body["stream"] = json!(false);
    let (status, text) = post_chat(&fake, &body).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hi");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");

    body["messages"] = json!([user("[[bash:ls -la]]")]);
    let (_, text) = post_chat(&fake, &body).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "bash");
    let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({ "command": "ls -la" }));
}

#[tokio::test]
async fn models_404_405_and_400_are_json() {
    let fake = spawn_fake_llm().await.unwrap();
    let c = client();
    let base = fake.base_url();

    let models: Value = c.get(format!("{base}/models")).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(ids, vec!["fake-model"]);
    assert_eq!(fake.models_request_count(), 1);

    let resp = c.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.json::<Value>().await.unwrap()["error"]["message"].is_string());

    let resp = c.get(format!("{base}/chat/completions")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert!(resp.json::<Value>().await.unwrap()["error"]["message"].is_string());

    for bad in ["{not json", "[1,2]", "{\"messages\": 3}"] {
        let resp = c
            .post(format!("{base}/chat/completions"))
            .header("content-type", "application/json")
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error", "{bad}");
    }
    // The server survived all of that.
    let (status, _) = post_chat(&fake, &chat_body(vec![user("still there?")])).await;
    assert_eq!(status, 200);
    assert_eq!(fake.request_count(), 4);
}

#[tokio::test]
async fn binary_prints_its_address_first() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-llm"))
        .args(["--port", "0", "--host", "127.0.0.1"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line)).await.unwrap().unwrap();
    let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let models: Value = client().get(format!("{url}/v1/models")).send().await.unwrap().json().await.unwrap();
    assert_eq!(models["data"][0]["id"], "fake-model");
    child.kill().await.unwrap();
}

// ---------------------------------------------------------------------------------------------------------
// (b) the real pi
// ---------------------------------------------------------------------------------------------------------

/// What one pi RPC run produced.
struct PiRun {
    events: Vec<Value>,
    final_text: String,
}

impl PiRun {
    fn has(&self, event_type: &str) -> bool {
        self.events.iter().any(|e| e["type"] == event_type)
    }
}

/// Runs `pi --mode rpc` in `cwd` against `fake`, sends one prompt and collects stdout events up to `agent_end`.
async fn run_pi_prompt(fake: &FakeLlm, cwd: &Path, message: &str) -> PiRun {
    let env = PiEnv::new(&fake.base_url()).unwrap();
    let mut child = env.rpc_command(cwd).unwrap().spawn().expect("spawning pi");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr = child.stderr.take().unwrap();
    let stderr_task = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });

    let prompt = json!({ "type": "prompt", "message": message, "id": "p1" });
    stdin.write_all(format!("{prompt}\n").as_bytes()).await.unwrap();
    stdin.flush().await.unwrap();

    let mut events = Vec::new();
    let read_all = async {
        // RPC framing is LF-delimited JSON; `lines()` splits on `\n` only (and strips a trailing `\r`).
        let mut lines = (&mut stdout).lines();
        while let Some(line) = lines.next_line().await.unwrap() {
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("non-JSON line {line:?}: {e}"));
            let done = v["type"] == "agent_end";
            events.push(v);
            if done {
                return true;
            }
        }
        false
    };
    let outcome = tokio::time::timeout(PI_TIMEOUT, read_all).await;
    // Closing stdin asks pi to exit; kill it if it lingers.
    drop(stdin);
    let wait_started = Instant::now();
    let exited = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_ok();
    if !exited {
        let _ = child.kill().await;
    }
    eprintln!("pi exited on stdin EOF: {exited} (after {:?})", wait_started.elapsed());
    let stderr_text = stderr_task.await.unwrap_or_default();
    match outcome {
        Ok(true) => {}
        Ok(false) => {
            panic!("pi closed stdout before agent_end; events: {events:#?}\nstderr: {stderr_text}")
        }
        Err(_) => {
            panic!("no agent_end within {PI_TIMEOUT:?}; events: {events:#?}\nstderr: {stderr_text}")
        }
    }

    let response = events.iter().find(|e| e["type"] == "response" && e["id"] == "p1");
    assert_eq!(response.map(|r| r["success"].clone()), Some(json!(true)), "prompt not accepted: {events:#?}");

    let agent_end = events.last().unwrap();
    let final_text = agent_end["messages"]
        .as_array()
        .and_then(|msgs| msgs.iter().rev().find(|m| m["role"] == "assistant"))
        .and_then(|m| m["content"].as_array())
        .map(|blocks| blocks.iter().filter(|b| b["type"] == "text").filter_map(|b| b["text"].as_str()).collect())
        .unwrap_or_default();
    PiRun { events, final_text }
}

fn print_requests(fake: &FakeLlm) {
    for (i, r) in fake.chat_requests().iter().enumerate() {
        let mut body = r.body.clone();
        // The system prompt is long and uninteresting here.
        if let Some(sys) = body["messages"][0]["content"].as_str() {
            body["messages"][0]["content"] = json!(format!("<{} chars>", sys.len()));
        }
        if let Some(tools) = body["tools"].as_array() {
            body["tools"] = json!(tools.iter().map(|t| t["function"]["name"].clone()).collect::<Vec<_>>());
        }
        eprintln!("request {i}: headers {:?}\nbody {body:#}", r.headers);
    }
}

#[test]
fn install_script_is_idempotent_and_prints_the_pinned_pi() {
    if std::env::var_os("PIFACE_TEST_PI").is_some() {
        eprintln!("PIFACE_TEST_PI is set; not touching .pi-runtime");
        return;
    }
    let first = piface_test_support::pi_env::install_pi().unwrap();
    assert_eq!(first, piface_test_support::workspace_root().join(".pi-runtime/node_modules/.bin/pi"));
    // The second run finds the install and only prints the path again.
    assert_eq!(piface_test_support::pi_env::install_pi().unwrap(), first);
    // pi prints its version on stderr.
    let version = std::process::Command::new(&first).arg("--version").output().unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&version.stdout), String::from_utf8_lossy(&version.stderr));
    assert_eq!(printed.trim(), "0.73.1");
}

#[tokio::test]
async fn real_pi_echo_turn() {
    let fake = spawn_fake_llm().await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let run = run_pi_prompt(&fake, cwd.path(), "hello there").await;
    print_requests(&fake);
    assert!(run.has("agent_start") && run.has("message_update"), "events: {:#?}", run.events);
    assert_eq!(run.final_text, "echo: hello there");
    assert_eq!(fake.request_count(), 1);
    // pi trusts models.json and never lists models.
    assert_eq!(fake.models_request_count(), 0);
}

#[tokio::test]
async fn real_pi_runs_the_bash_tool() {
    let fake = spawn_fake_llm().await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let run = run_pi_prompt(&fake, cwd.path(), "[[bash:echo hi > marker.txt]]").await;
    print_requests(&fake);
    let start = run.events.iter().find(|e| e["type"] == "tool_execution_start").expect("tool_execution_start");
    assert_eq!(start["toolName"], "bash");
    assert_eq!(start["args"], json!({ "command": "echo hi > marker.txt" }));
    let end = run.events.iter().find(|e| e["type"] == "tool_execution_end").expect("tool_execution_end");
    assert_eq!(end["isError"], false, "{end:#}");
    assert_eq!(std::fs::read_to_string(cwd.path().join("marker.txt")).unwrap(), "hi\n");
    assert!(run.final_text.starts_with("tool said:"), "final text {:?}", run.final_text);
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn real_pi_reports_provider_errors_without_retrying() {
    let fake = spawn_fake_llm().await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let run = run_pi_prompt(&fake, cwd.path(), "[[error:model exploded]] [[think:x]]").await;
    let agent_end = run.events.last().unwrap();
    let last = agent_end["messages"].as_array().and_then(|m| m.last()).cloned().unwrap_or_default();
    eprintln!("last message: {last:#}");
    assert_eq!(last["stopReason"], "error");
    assert!(last["errorMessage"].as_str().unwrap_or("").contains("model exploded"), "{last:#}");
    // PiEnv turns off both pi's auto-retry and the openai client's retries: one request, one failure.
    assert_eq!(fake.request_count(), 1);
}
