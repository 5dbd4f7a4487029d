//! Text-to-speech end to end: `piface serve` whose agent has the tiny VITS voice of
//! `tts/fixtures/tiny_vits` (made by transformers from a random model), synthesising MP3s with
//! the real ffmpeg into its cache.

use std::time::Duration;

use piface_test_support::piface::{git_repo, workspace_bin, Options, Piface};
use piface_test_support::workspace_root;
use serde_json::{json, Value};

const PIFACE: &str = env!("CARGO_BIN_EXE_piface");

async fn tts_agent(server: &Piface) -> Value {
    let agents = server.get("/api/agents").await.unwrap().1;
    agents["agents"].as_array().unwrap().iter().find(|a| a["name"] == "local").unwrap()["tts"].clone()
}

/// Seconds of audio in an MP3, decoded by ffmpeg (which drops the encoder's delay and padding
/// as the LAME header tells).
fn mp3_seconds(bytes: &[u8]) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.mp3");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(&path)
        .args(["-f", "f32le", "-ac", "1", "-ar", "16000", "pipe:1"])
        .output()
        .expect("ffmpeg is installed");
    assert!(out.status.success(), "{out:?}");
    out.stdout.len() as f64 / 4.0 / 16_000.0
}

#[tokio::test]
async fn speech_is_synthesised_once_cached_and_served_immutable() {
    let voice = workspace_root().join("tts/fixtures/tiny_vits");
    let server = Piface::start(Options {
        bin: PIFACE.into(),
        pi_bin: workspace_bin("fake-pi").unwrap(),
        envs: vec![],
        args: vec!["--tts-model".into(), voice.display().to_string(), "--no-speech".into()],
        data_dir: None,
    })
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while server.get("/api/health").await.unwrap().1["tts"] != true {
        assert!(tokio::time::Instant::now() < deadline, "the voice never loaded: {}", tts_agent(&server).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tts = tts_agent(&server).await;
    assert_eq!(
        (tts["state"].as_str(), tts["device"].as_str(), tts["done"].as_u64()),
        (Some("ready"), Some("cpu"), Some(0))
    );
    let repo = git_repo();
    let id = server.new_session(&json!({"working_dir": repo.path(), "shared": true})).await;
    let url = format!("/api/sessions/{id}/tts");

    // Two requests for the same text at once: one synthesis, one URL.
    let text = "Hello world, this is a test.";
    let body = json!({"text": format!("  {text}\r\n")});
    let (a, b) = tokio::join!(server.post(&url, &body), server.post(&url, &body));
    let ((sa, a), (sb, b)) = (a.unwrap(), b.unwrap());
    assert_eq!((sa, sb), (200, 200), "{a} {b}");
    assert_eq!(a["audio_url"], b["audio_url"]);
    assert_eq!(a["media_type"], "audio/mpeg");
    let key = a["cache_key"].as_str().unwrap().to_string();
    assert_eq!(a["audio_url"], format!("/api/audio/tts/{key}.mp3"));
    assert_eq!(key, piface_coordinator::tts::cache_key(&voice.display().to_string(), text), "normalised text");
    assert_eq!([a["cached"].as_bool(), b["cached"].as_bool()].iter().filter(|c| **c == Some(false)).count(), 1);
    let (status, again) = server.post(&url, &body).await.unwrap();
    assert_eq!((status, again["cached"].as_bool(), again["cache_key"].as_str()), (200, Some(true), Some(key.as_str())));
    // The agent's count reaches the coordinator with its next hello (at most one a second).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tts_agent(&server).await["done"] != 1 {
        assert!(tokio::time::Instant::now() < deadline, "{}", tts_agent(&server).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let tts = tts_agent(&server).await;
    assert_eq!((tts["done"].as_u64(), tts["busy"].as_u64()), (Some(1), Some(0)), "synthesised once: {tts}");
    assert!(server.data_dir.join(format!("tts-cache/{key}.mp3")).is_file());

    // The audio: immutable, with an ETag, ranges, and the voice's length.
    let http = server.http.clone();
    let audio_url = server.url(a["audio_url"].as_str().unwrap());
    let resp = http.get(&audio_url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "audio/mpeg");
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    let etag = h["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{key}\""));
    let mp3 = resp.bytes().await.unwrap();
    let voice_model = piface_tts::Voice::load(&voice, &candle_core::Device::Cpu).unwrap();
    let opts =
        piface_tts::SynthOptions { seed: Some(0), ..piface_tts::SynthOptions::from_config(voice_model.model.config()) };
    let expected = voice_model.speak(text, &opts).unwrap();
    let want = expected.waveform.len() as f64 / expected.sample_rate as f64;
    let got = mp3_seconds(&mp3);
    assert!((got - want).abs() < 0.03, "MP3 of {got} s for {want} s of speech");
    let resp = http.get(&audio_url).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(resp.status(), 304);
    let resp = http.get(&audio_url).header("range", "bytes=0-99").send().await.unwrap();
    assert_eq!((resp.status().as_u16(), resp.bytes().await.unwrap().len()), (206, 100));

    // Bad input.
    let (status, body) = server.post(&url, &json!({"text": " \r\n "})).await.unwrap();
    assert_eq!((status, body["detail"].as_str()), (400, Some("TTS text is empty")));
    let (status, body) = server.post(&url, &json!({"text": "é".repeat(12_001)})).await.unwrap();
    assert_eq!((status, body["detail"].as_str()), (413, Some("TTS text is too long. Max 12000 characters.")));
    // At the limit after trimming: accepted, and refused by the voice for having nothing to say.
    let (status, body) = server.post(&url, &json!({"text": "!".repeat(12_000) + "   "})).await.unwrap();
    assert_eq!((status, body["detail"].as_str()), (400, Some("TTS text has nothing to say")));
    let (status, _) = server.post(&url, &json!({"nope": 1})).await.unwrap();
    assert_eq!(status, 422);
    let (status, _) = server.post("/api/sessions/nope/tts", &json!({"text": "hi"})).await.unwrap();
    assert_eq!(status, 404);
    for bad in [
        format!("/api/audio/tts/{}.mp3", "0".repeat(64)),
        format!("/api/audio/tts/{}.mp3", key.to_uppercase()),
        format!("/api/audio/tts/{key}"),
        "/api/audio/tts/..%2F..%2Fstate.redb".to_string(),
        "/api/audio/tts/%2E%2E.mp3".to_string(),
    ] {
        let (status, body) = server.get(&bad).await.unwrap();
        assert_eq!((status, body["detail"].as_str()), (404, Some("TTS audio not found")), "{bad}");
    }
    // Still serving.
    let (status, body) = server.post(&url, &json!({"text": "Another sentence."})).await.unwrap();
    assert_eq!((status, body["cached"].as_bool()), (200, Some(false)), "{body}");

    // Each synthesis by the agent is a job in the metrics (cache hits are not), the voice's
    // refusal one that failed.
    let metrics = http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for series in [
        r#"piface_speech_job_duration_seconds_count{kind="synthesize",outcome="ok"} 2"#,
        r#"piface_speech_job_duration_seconds_count{kind="synthesize",outcome="error"} 1"#,
    ] {
        assert!(metrics.lines().any(|l| l == series), "{series} in\n{metrics}");
    }
}

#[tokio::test]
async fn without_a_voice_tts_is_a_clear_503() {
    let server = Piface::start(Options {
        bin: PIFACE.into(),
        pi_bin: workspace_bin("fake-pi").unwrap(),
        envs: vec![],
        args: vec!["--no-tts".into(), "--no-speech".into()],
        data_dir: None,
    })
    .await
    .unwrap();
    assert_eq!(server.get("/api/health").await.unwrap().1["tts"], false);
    let repo = git_repo();
    let id = server.new_session(&json!({"working_dir": repo.path(), "shared": true})).await;
    // The input is checked first: a bad request is a 400/413 whether or not a voice exists.
    let tts = format!("/api/sessions/{id}/tts");
    assert_eq!(server.post(&tts, &json!({"text": "  \r\n "})).await.unwrap().0, 400);
    assert_eq!(server.post(&tts, &json!({"text": "a".repeat(12_001)})).await.unwrap().0, 413);
    assert_eq!(server.post("/api/sessions/nope/tts", &json!({"text": "hi"})).await.unwrap().0, 404);
    // Then the 503, which says how to get the service.
    let (status, body) = server.post(&tts, &json!({"text": "hi"})).await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(detail.starts_with("Text-to-speech is not configured on this server"), "{detail}");
    assert!(detail.contains("--tts") && detail.contains("espeak-ng"), "{detail}");
    // /transcribe likewise: bad base64, empty audio, then the service.
    let stt = format!("/api/sessions/{id}/transcribe");
    let (status, body) = server.post(&stt, &json!({"audio_base64": "%%%"})).await.unwrap();
    assert_eq!((status, body["detail"].as_str()), (400, Some("Invalid base64 audio payload")));
    let (status, body) = server.post(&stt, &json!({"audio_base64": ""})).await.unwrap();
    assert_eq!((status, body["detail"].as_str()), (400, Some("Audio payload is empty")));
    let (status, body) = server.post(&stt, &json!({"audio_base64": "AAAA"})).await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("--speech"), "{body}");
    let (status, _) = server.get(&format!("/api/audio/tts/{}.mp3", "a".repeat(64))).await.unwrap();
    assert_eq!(status, 503);
}
