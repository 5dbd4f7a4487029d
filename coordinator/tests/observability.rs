//! Traces, the access log and metrics of the real binary: a coordinator and an agent process
//! exporting spans to test-support's OTLP receiver (one session's creation is one trace across
//! both), and `piface serve`'s `/metrics` checked by `promtool` while a turn streams through
//! the real pi and the fake LLM.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use piface_test_support::otlp::{OtlpReceiver, ReceivedSpan};
use piface_test_support::piface::{git_repo, join_token, Options, Piface};
use piface_test_support::{pi_bin, spawn_fake_llm, PiEnv};
use serde_json::json;
use tokio::process::{Child, Command};

const PIFACE: &str = env!("CARGO_BIN_EXE_piface");

/// Exported spans leave within a tenth of a second instead of the SDK's five.
const SHORT_BATCH_DELAY: (&str, &str) = ("OTEL_BSP_SCHEDULE_DELAY", "100");

/// `piface agent` joining `quic` as `name` with `token` (or the identity it enrolled with in
/// `data` before), exporting its spans to `otlp`.
fn start_agent(env: &PiEnv, data: &Path, quic: &str, token: Option<&str>, name: &str, otlp: &str) -> Child {
    let token_file = data.join("join-token");
    if let Some(token) = token {
        std::fs::write(&token_file, format!("{token}\n")).unwrap();
    }
    Command::new(PIFACE)
        .args(["agent", "--coordinator", quic, "--name", name, "--otlp-endpoint", otlp])
        .arg("--token-file")
        .arg(&token_file)
        .arg("--data-dir")
        .arg(data)
        .arg("--pi-bin")
        .arg(pi_bin().unwrap())
        .arg("--fs-root")
        .arg(std::env::temp_dir())
        .envs(env.envs())
        .env(SHORT_BATCH_DELAY.0, SHORT_BATCH_DELAY.1)
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

fn named<'a>(spans: &'a [ReceivedSpan], service: &str, name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.service == service && s.name == name).collect()
}

#[tokio::test]
async fn one_session_create_is_one_trace_across_the_coordinator_and_the_agent() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let llm = spawn_fake_llm().await.unwrap();
    let env = PiEnv::new(&llm.base_url()).unwrap();
    let mut envs = env.envs();
    envs.push((SHORT_BATCH_DELAY.0.into(), SHORT_BATCH_DELAY.1.into()));
    let server = Piface::start_coordinator(Options {
        bin: PIFACE.into(),
        pi_bin: pi_bin().unwrap(),
        envs,
        args: vec!["--otlp-endpoint".into(), receiver.endpoint()],
        data_dir: None,
    })
    .await
    .unwrap();
    let agent_env = PiEnv::new(&llm.base_url()).unwrap();
    let agent_data = tempfile::tempdir().unwrap();
    let quic = server.quic_addr.clone().unwrap();
    let token = join_token(PIFACE.as_ref(), &server.data_dir).unwrap();
    let mut agent = start_agent(&agent_env, agent_data.path(), &quic, Some(&token), "worker", &receiver.endpoint());
    server.wait_agent_up("worker").await;

    let repo = git_repo();
    let record = server
        .create_session(
            &json!({"working_dir": repo.path(), "agent": "worker", "provider": "fake", "model": "fake-model"}),
        )
        .await
        .unwrap();
    assert_eq!(record["status"], "live");

    // The request's span on the coordinator, and what the agent did for it, in one trace.
    let spans = receiver
        .wait_until(Duration::from_secs(30), |spans| {
            let Some(root) = named(spans, "piface-coordinator", "POST /api/sessions").pop() else { return false };
            ["agent Spawn", "pi spawn", "agent Tool"]
                .iter()
                .all(|n| named(spans, "piface-agent", n).iter().any(|s| s.trace_id == root.trace_id))
        })
        .await;
    let roots = named(&spans, "piface-coordinator", "POST /api/sessions");
    assert_eq!(roots.len(), 1, "one request span: {spans:#?}");
    let root = roots[0];
    assert_eq!((root.parent_span_id.as_str(), root.kind), ("", 2), "a server span without a caller's parent");
    let trace: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.trace_id == root.trace_id).collect();
    let services: std::collections::BTreeSet<&str> = trace.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(services, ["piface-agent", "piface-coordinator"].into(), "{trace:#?}");
    // Each hop is a child of the one before: HTTP request → request to the agent (client) →
    // the agent's handler (server, remote parent) → pi's start.
    let parent_of = |s: &ReceivedSpan| trace.iter().copied().find(|p| p.span_id == s.parent_span_id);
    let spawn = trace
        .iter()
        .copied()
        .find(|s| s.service == "piface-agent" && s.name == "agent Spawn")
        .expect("the agent's span for the spawn");
    assert_eq!(spawn.kind, 2);
    let sent = parent_of(spawn).expect("the agent's span has the coordinator's as parent");
    assert_eq!((sent.service.as_str(), sent.name.as_str(), sent.kind), ("piface-coordinator", "to agent Spawn", 3));
    let mut up = sent;
    while let Some(p) = parent_of(up) {
        up = p;
    }
    assert_eq!(up.span_id, root.span_id, "the client span descends from the HTTP request's");
    let pi = trace.iter().find(|s| s.name == "pi spawn").unwrap();
    assert_eq!(pi.parent_span_id, spawn.span_id, "pi's start is a child of the agent's request span");

    // A caller's `traceparent` makes the request part of the caller's trace.
    let caller_trace = "0af7651916cd43dd8448eb211c80319c";
    let resp = server
        .http
        .get(server.url("/api/sessions"))
        .header("traceparent", format!("00-{caller_trace}-b7ad6b7169203331-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let spans =
        receiver.wait_until(Duration::from_secs(30), |spans| spans.iter().any(|s| s.trace_id == caller_trace)).await;
    let joined = spans.iter().find(|s| s.trace_id == caller_trace).expect("a span in the caller's trace");
    assert_eq!((joined.name.as_str(), joined.parent_span_id.as_str()), ("GET /api/sessions", "b7ad6b7169203331"));

    // The access log: a line per request, the path without its query.
    let resp = server.http.get(server.url("/api/sessions?token=do-not-log-me")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let logged = async {
        loop {
            let log = server.stderr.lock().unwrap().clone();
            if let Some(line) =
                log.lines().find(|l| l.contains("piface::access") && l.contains("POST") && l.contains("/api/sessions"))
            {
                if log.lines().filter(|l| l.contains("piface::access") && l.contains("GET")).count() >= 2 {
                    return (line.to_string(), log);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (line, log) = tokio::time::timeout(Duration::from_secs(10), logged).await.expect("access log lines");
    assert!(line.contains("status=201") && line.contains("latency_ms=") && line.contains("peer=127.0.0.1:"), "{line}");
    assert!(!log.contains("do-not-log-me"), "a query string reached the log");
    // The link's metrics: its round-trip time, and a reconnect once the agent comes back.
    let metrics = scrape(&server).await;
    promtool_check(&metrics);
    assert!(sample(&metrics, r#"piface_agent_link_rtt_seconds{agent="worker"}"#) > 0.0, "{metrics}");
    assert_eq!(sample(&metrics, r#"piface_agent_connects_total{agent="worker"}"#), 1.0, "{metrics}");
    assert_eq!(sample(&metrics, r#"piface_agent_reconnects_total{agent="worker"}"#), 0.0, "{metrics}");
    agent.start_kill().unwrap();
    agent.wait().await.unwrap();
    let _agent = start_agent(&agent_env, agent_data.path(), &quic, None, "worker", &receiver.endpoint());
    let mut metrics = String::new();
    for _ in 0..600 {
        metrics = scrape(&server).await;
        if sample(&metrics, r#"piface_agent_connects_total{agent="worker"}"#) >= 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sample(&metrics, r#"piface_agent_reconnects_total{agent="worker"}"#), 1.0, "{metrics}");
}

#[tokio::test]
async fn the_last_spans_are_exported_when_the_process_stops() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let server = Piface::start(Options {
        bin: PIFACE.into(),
        pi_bin: pi_bin().unwrap(),
        // A batch delay far longer than the test: only the flush at exit can deliver the span.
        envs: vec![("OTEL_BSP_SCHEDULE_DELAY".into(), "600000".into())],
        args: vec!["--otlp-endpoint".into(), format!("{}/", receiver.endpoint())],
        data_dir: None,
    })
    .await
    .unwrap();
    assert_eq!(server.get("/api/sessions").await.unwrap().0, 200);
    assert!(receiver.spans().is_empty(), "nothing leaves before the batch delay");
    let status = server.stop().await.unwrap();
    assert!(status.success(), "{status:?}");
    let spans = receiver.spans();
    let span = spans.iter().find(|s| s.name == "GET /api/sessions").unwrap_or_else(|| panic!("{spans:#?}"));
    assert_eq!(span.service, "piface", "serve's service name");
}

/// The value of the sample `series` (name and labels as written) in an exposition; 0 when it
/// is absent (a counter that never moved has no series yet).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(server: &Piface) -> String {
    let resp = server.http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    resp.text().await.unwrap()
}

fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's `prometheus` package) must be installed");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n--- the exposition:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn metrics_pass_promtool_and_count_a_streamed_turn() {
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
    // Behind the login like everything else.
    let anonymous = reqwest::Client::new().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);

    let before = scrape(&server).await;
    promtool_check(&before);
    assert_eq!(sample(&before, r#"piface_agents{status="up"}"#), 1.0, "{before}");
    assert_eq!(sample(&before, r#"piface_agent_up{agent="local"}"#), 1.0, "{before}");

    let repo = git_repo();
    let id = server.new_session(&json!({"working_dir": repo.path(), "provider": "fake", "model": "fake-model"})).await;
    let (mut full, _) = server.connect(&id).await.unwrap();
    let mut compact = server.ws(&format!("/ws/sessions/{id}?mode=compact")).await.unwrap();
    assert_eq!(compact.next().await.unwrap()["type"], "piface_session_state");
    full.send(&json!({"type": "prompt", "message": "[[tokens:40]] [[delay:5]]"})).await.unwrap();
    let events = full.until_type("agent_end").await.unwrap();
    assert!(events.iter().filter(|e| e["type"] == "message_update").count() >= 10, "a streamed answer");
    compact.until_type("agent_end").await.unwrap();
    full.send(&json!({"type": "piface_get_history"})).await.unwrap();
    full.until_type("piface_replay").await.unwrap();

    let after = scrape(&server).await;
    promtool_check(&after);
    let moved = |series: &str| (sample(&before, series), sample(&after, series));
    for series in [
        r#"piface_relayed_frames_total{mode="full"}"#,
        r#"piface_relayed_frames_total{mode="compact"}"#,
        r#"piface_relayed_bytes_total{mode="full"}"#,
        r#"piface_relayed_bytes_total{mode="compact"}"#,
        "piface_agent_events_total",
        "piface_replays_total",
        r#"piface_http_requests_total{method="POST",status="201"}"#,
    ] {
        let (b, a) = moved(series);
        assert!(a > b, "{series} did not move: {b} → {a}\n{after}");
    }
    // Compact mode sends patches instead of whole partial messages: fewer bytes for the same turn.
    assert!(
        moved(r#"piface_relayed_bytes_total{mode="compact"}"#).1
            < moved(r#"piface_relayed_bytes_total{mode="full"}"#).1,
        "{after}"
    );
    assert!(moved("piface_agent_events_total").1 >= 40.0, "{after}");
    assert_eq!(sample(&after, r#"piface_sessions{state="live"}"#), 1.0, "{after}");
    assert_eq!(sample(&after, "piface_browser_clients"), 2.0, "{after}");
    assert!(sample(&after, r#"piface_http_request_duration_seconds_count{method="GET"}"#) >= 2.0, "{after}");
}
