//! `fake-pi`: a small stand-in for `pi --mode rpc` that makes edge cases deterministic and
//! measures the relay's upper bound (it writes events as fast as a pipe takes them).
//!
//! It answers `get_state`, `get_messages`, `get_available_models`, `abort` and `bash` like pi
//! (same envelope), and scripts its output from a `prompt`'s message:
//! - `stream:COUNT:BYTES`: `agent_start`, COUNT `message_update` events of about BYTES bytes
//!   each (field `i` numbers them from 0), `agent_end`;
//! - `pi:COUNT`: a turn shaped like pi's own: `agent_start`, `message_start`, COUNT
//!   `message_update` text deltas of one character, each carrying the whole partial message
//!   twice (`assistantMessageEvent.partial` and `message`), `message_end`, `agent_end`;
//! - `big:BYTES`: one event whose `payload` string is BYTES long;
//! - `tick:COUNT:RATE`: `agent_start`, COUNT `message_update` events at RATE per second, each
//!   with `i` and `t` (the wall clock in unix nanoseconds when written), `agent_end`;
//! - `garbage`: a line that is not JSON, then `{"type":"after_garbage"}`;
//! - `toolong:BYTES`: a line of BYTES `x` (no JSON), then `{"type":"after_toolong"}`;
//! - `crash:CODE`: writes `crashing` to stderr and exits with CODE;
//! - `ask`: an `extension_ui_request` (`confirm`, id `ask-1`); the `extension_ui_response` to it
//!   is answered with `{"type":"answered","response":…}`;
//! - anything else: `agent_start`, `message_end` with an assistant echo, `agent_end`.
//!
//! `fake-pi --emit COUNT BYTES` writes the `stream` events to stdout and exits: the raw
//! baseline of the relay benchmark; `fake-pi --emit-pi COUNT [TURNS]` does the same with `pi:COUNT`
//! (TURNS times). Arguments it does not know (pi's `--mode rpc`,
//! `--provider`, …) are ignored.

use std::io::{BufRead, BufWriter, Write};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(256 * 1024, stdout.lock());
    if args.first().map(String::as_str) == Some("--emit") {
        let count = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
        let bytes = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200);
        emit_stream(&mut out, count, bytes);
        let _ = out.flush();
        return;
    }
    if args.first().map(String::as_str) == Some("--emit-pi") {
        let count = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
        for _ in 0..args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1) {
            emit_pi_turn(&mut out, count);
        }
        let _ = out.flush();
        return;
    }
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let Ok(cmd) = serde_json::from_str::<serde_json::Value>(&line) else {
            reply(&mut out, &serde_json::Value::Null, "parse", false, None);
            continue;
        };
        let id = cmd.get("id").cloned().unwrap_or(serde_json::Value::Null);
        let kind = cmd.get("type").and_then(|t| t.as_str()).unwrap_or_default().to_string();
        match kind.as_str() {
            "get_state" => reply(
                &mut out,
                &id,
                "get_state",
                true,
                Some(serde_json::json!({"sessionFile": null, "isStreaming": false})),
            ),
            "get_messages" => reply(&mut out, &id, "get_messages", true, Some(serde_json::json!({"messages": []}))),
            "get_available_models" => reply(
                &mut out,
                &id,
                "get_available_models",
                true,
                Some(serde_json::json!({"models": [{"id": "fake-pi-model", "provider": "fake-pi"}]})),
            ),
            "bash" => {
                let command = cmd.get("command").and_then(|c| c.as_str()).unwrap_or_default();
                reply(
                    &mut out,
                    &id,
                    "bash",
                    true,
                    Some(
                        serde_json::json!({"output": format!("ran {command}\n"), "exitCode": 0, "cancelled": false, "truncated": false}),
                    ),
                );
            }
            "extension_ui_response" => {
                let _ = writeln!(out, "{}", serde_json::json!({"type": "answered", "response": cmd}));
            }
            "prompt" | "steer" | "follow_up" => {
                reply(&mut out, &id, &kind, true, None);
                let message = cmd.get("message").and_then(|m| m.as_str()).unwrap_or_default();
                prompt(&mut out, message);
            }
            other => reply(&mut out, &id, other, true, None),
        }
        let _ = out.flush();
    }
}

fn reply(out: &mut impl Write, id: &serde_json::Value, command: &str, success: bool, data: Option<serde_json::Value>) {
    let mut r = serde_json::json!({"type": "response", "command": command, "success": success});
    if !id.is_null() {
        r["id"] = id.clone();
    }
    if let Some(data) = data {
        r["data"] = data;
    }
    let _ = writeln!(out, "{r}");
}

fn prompt(out: &mut impl Write, message: &str) {
    let mut parts = message.split(':');
    let verb = parts.next().unwrap_or_default();
    let n1: usize = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let n2: usize = parts.next().and_then(|p| p.parse().ok()).unwrap_or(200);
    match verb {
        "stream" => emit_stream(out, n1, n2),
        "pi" => emit_pi_turn(out, n1),
        "tick" => {
            let _ = writeln!(out, r#"{{"type":"agent_start"}}"#);
            let _ = out.flush();
            let period = std::time::Duration::from_secs_f64(1.0 / n2.max(1) as f64);
            let start = std::time::Instant::now();
            for i in 0..n1 {
                let due = start + period * i as u32;
                if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                    std::thread::sleep(wait);
                }
                let t =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
                let _ = writeln!(
                    out,
                    r#"{{"type":"message_update","assistantMessageEvent":{{"type":"text_delta","delta":"x"}},"i":{i},"t":{t}}}"#
                );
                let _ = out.flush();
            }
            let _ = writeln!(out, r#"{{"type":"agent_end","messages":[]}}"#);
        }
        "big" => {
            let _ = writeln!(out, r#"{{"type":"big","payload":"{}"}}"#, "b".repeat(n1));
        }
        "garbage" => {
            let _ = writeln!(out, "this is not json {{");
            let _ = writeln!(out, r#"{{"type":"after_garbage"}}"#);
        }
        "toolong" => {
            let _ = out.write_all(&vec![b'x'; n1]);
            let _ = writeln!(out);
            let _ = writeln!(out, r#"{{"type":"after_toolong"}}"#);
        }
        "ask" => {
            let _ = writeln!(
                out,
                r#"{{"type":"extension_ui_request","id":"ask-1","method":"confirm","title":"Proceed?","message":"Really?"}}"#
            );
        }
        "crash" => {
            let _ = out.flush();
            eprintln!("crashing");
            std::process::exit(n1 as i32);
        }
        _ => {
            let msg = serde_json::json!({"role": "assistant", "content": [{"type": "text", "text": format!("echo: {message}")}]});
            let _ = writeln!(out, r#"{{"type":"agent_start"}}"#);
            let _ = writeln!(out, "{}", serde_json::json!({"type": "message_end", "message": msg}));
            let _ = writeln!(out, "{}", serde_json::json!({"type": "agent_end", "messages": [msg]}));
        }
    }
}

/// `agent_start`, `count` events of about `bytes` bytes, `agent_end`.
fn emit_stream(out: &mut impl Write, count: usize, bytes: usize) {
    let _ = writeln!(out, r#"{{"type":"agent_start"}}"#);
    let filler = "x".repeat(bytes.saturating_sub(100));
    for i in 0..count {
        let _ = writeln!(
            out,
            r#"{{"type":"message_update","assistantMessageEvent":{{"type":"text_delta","contentIndex":0,"delta":"{filler}"}},"i":{i}}}"#
        );
    }
    let _ = writeln!(out, r#"{{"type":"agent_end","messages":[]}}"#);
}

/// A pi-shaped streamed answer of `count` one-character tokens (see the module docs).
fn emit_pi_turn(out: &mut impl Write, count: usize) {
    let message = |text: &str, output: usize| {
        format!(
            r#"{{"role":"assistant","content":[{{"type":"text","text":"{text}"}}],"api":"openai-completions","provider":"fake","model":"fake-model","usage":{{"input":12,"output":{output},"cacheRead":0,"cacheWrite":0,"totalTokens":{},"cost":{{"input":0,"output":0,"cacheRead":0,"cacheWrite":0,"total":0}}}},"stopReason":"stop","timestamp":1764000000000}}"#,
            12 + output
        )
    };
    let _ = writeln!(out, r#"{{"type":"agent_start"}}"#);
    let _ = writeln!(out, r#"{{"type":"message_start","message":{}}}"#, message("", 0));
    let mut text = String::with_capacity(count);
    for i in 0..count {
        let token = char::from(b'a' + (i % 26) as u8);
        text.push(token);
        let m = message(&text, 0);
        let _ = writeln!(
            out,
            r#"{{"type":"message_update","assistantMessageEvent":{{"type":"text_delta","contentIndex":0,"delta":"{token}","partial":{m}}},"message":{m}}}"#
        );
    }
    let m = message(&text, count);
    let _ = writeln!(out, r#"{{"type":"message_end","message":{m}}}"#);
    let _ = writeln!(out, r#"{{"type":"agent_end","messages":[{m}]}}"#);
}
