//! The speech worker of an agent that has a speech model (`--speech-model`): audio in any
//! format ffmpeg reads → 16 kHz mono → Parakeet TDT (`piface-speech`) → text, one clip at a
//! time; and the "Mic → Clean" pass, a short-lived pi that rewrites a transcript.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use piface_shared::protocol::{SpawnSpec, ToolError};
use piface_speech::ParakeetModel;
use tokio::io::AsyncWriteExt;

use crate::models::{self, Kind, Models};
use crate::{AgentConfig, ServiceConfig};
use piface_shared::protocol::{GpuInfo, ModelState};

/// Largest audio clip accepted (the original's limit).
pub const MAX_AUDIO: usize = 25 * 1024 * 1024;
/// Longest decode of a clip by ffmpeg.
const FFMPEG_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest clean-up by pi.
const CLEAN_TIMEOUT: Duration = Duration::from_secs(45);

/// A loaded model, shared by the requests (one clip at a time: a clip uses the whole device); the
/// agent's [`Models`] holds it.
pub struct Worker {
    model: Arc<ParakeetModel>,
    turn: tokio::sync::Semaphore,
    /// What the model was loaded from.
    pub name: String,
}

/// Whether `spec` (a path or repo id) is on disk already.
pub fn in_cache(spec: &str) -> bool {
    piface_speech::resolve(spec).is_ok()
}

/// Which files of a Hugging Face repo make a Parakeet model: its `.nemo` archive (the one named
/// after the repo first), else a safetensors conversion (config, weights, tokenizer).
pub fn pick_files(id: &str, files: &[String]) -> Vec<String> {
    let name = id.rsplit('/').next().unwrap_or(id);
    let mut nemos: Vec<&String> = files.iter().filter(|f| f.ends_with(".nemo")).collect();
    nemos.sort_by_key(|f| (f.as_str() != format!("{name}.nemo"), f.len()));
    if let Some(f) = nemos.first() {
        return vec![(*f).clone()];
    }
    if files.iter().any(|f| f == "model_config.yaml" || f == "config.json") {
        return files
            .iter()
            .filter(|f| !f.contains('/'))
            .filter(|f| {
                f.ends_with(".safetensors")
                    || f.ends_with(".yaml")
                    || f.ends_with(".json")
                    || f.ends_with(".model")
                    || f.ends_with(".vocab")
                    || f.ends_with(".txt")
            })
            .cloned()
            .collect();
    }
    Vec::new()
}

/// Loads the speech model `service` names — fetching it from the Hugging Face hub first when it
/// is a repo missing from the local cache and fetching is allowed — and keeps it in `models`
/// ([`Models::speech`]). Where this stands is in `models.snapshot(Kind::Stt)` all along.
pub async fn start(models: Arc<Models>, service: ServiceConfig) -> Result<Arc<Worker>, String> {
    let source =
        models::Source { resolve: |spec| piface_speech::resolve(spec).map_err(|e| e.to_string()), pick: pick_files };
    let model = models
        .load(Kind::Stt, &service, &service.model, source, |path, device| {
            ParakeetModel::load(path, &device).map_err(|e| format!("Failed to load Parakeet model: {e}"))
        })
        .await?;
    let worker =
        Arc::new(Worker { model: Arc::new(model), turn: tokio::sync::Semaphore::new(1), name: service.model.clone() });
    models.set_speech(worker.clone());
    models.set(Kind::Stt, &service.model, &service.device_label(), ModelState::Ready);
    Ok(worker)
}

/// The candle device for `gpu` (CUDA's ordinal in this process), or the CPU.
#[cfg(feature = "cuda")]
pub fn device(gpu: Option<&GpuInfo>) -> Result<candle_core::Device, String> {
    match gpu {
        Some(g) => candle_core::Device::new_cuda(g.index as usize)
            .map_err(|e| format!("no usable CUDA device {} ({}): {e}", g.index, g.name)),
        None => Ok(candle_core::Device::Cpu),
    }
}

/// The candle device for `gpu`: this build has no CUDA, so the CPU.
#[cfg(not(feature = "cuda"))]
pub fn device(gpu: Option<&GpuInfo>) -> Result<candle_core::Device, String> {
    if let Some(g) = gpu {
        tracing::warn!(gpu = g.name, "this build has no CUDA (feature `cuda`); running on the CPU");
    }
    Ok(candle_core::Device::Cpu)
}

/// Runs ffmpeg with `args`, feeding it `input` while it runs (it may write before it has read
/// everything): its output, or a clear error — 503 without ffmpeg (`purpose` says what for),
/// `timed_out` after `timeout`.
pub async fn ffmpeg(
    args: &[&std::ffi::OsStr],
    input: Bytes,
    purpose: &str,
    timeout: Duration,
    timed_out: ToolError,
) -> Result<std::process::Output, ToolError> {
    let mut child = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                ToolError::new(503, format!("ffmpeg is required for {purpose} but was not found on PATH."))
            }
            _ => ToolError::new(500, format!("ffmpeg: {e}")),
        })?;
    let mut stdin = child.stdin.take().expect("piped");
    let feed = tokio::spawn(async move {
        let _ = stdin.write_all(&input).await;
    });
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| timed_out)?
        .map_err(|e| ToolError::new(500, format!("ffmpeg: {e}")))?;
    let _ = feed.await;
    Ok(out)
}

/// 16 kHz mono float samples of `audio` (any container/codec ffmpeg reads).
pub async fn decode(audio: Bytes) -> Result<Vec<f32>, ToolError> {
    let args = ["-i", "pipe:0", "-f", "f32le", "-ac", "1", "-ar", "16000", "pipe:1"].map(std::ffi::OsStr::new);
    let timed_out = ToolError::new(400, "Audio decoding timed out");
    let out = ffmpeg(&args, audio, "audio conversion", FFMPEG_TIMEOUT, timed_out).await?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(ToolError::new(400, if err.is_empty() { "ffmpeg could not decode the audio".into() } else { err }));
    }
    Ok(out.stdout.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// Transcribes one clip with `worker`, counted as a job of `models`: `{"text": …}`.
pub async fn transcribe(
    models: &Arc<Models>,
    worker: Arc<Worker>,
    audio: Bytes,
) -> Result<serde_json::Value, ToolError> {
    if audio.is_empty() {
        return Err(ToolError::new(400, "Audio payload is empty"));
    }
    let samples = decode(audio).await?;
    if samples.len() < 1_600 {
        return Err(ToolError::new(422, "No transcript was produced for this audio clip."));
    }
    let job = models.job(Kind::Stt);
    let _turn = worker.turn.acquire().await.map_err(|e| ToolError::new(500, e.to_string()))?;
    let model = worker.model.clone();
    let transcript = tokio::task::spawn_blocking(move || model.transcribe(&samples))
        .await
        .map_err(|e| ToolError::new(500, format!("Speech transcription failed: {e}")))?
        .map_err(|e| ToolError::new(502, format!("Parakeet inference failed: {e}")))?;
    let text = transcript.text.trim().to_string();
    job.finished();
    if text.is_empty() {
        return Err(ToolError::new(422, "No transcript was produced for this audio clip."));
    }
    Ok(serde_json::json!({ "text": text }))
}

/// The instruction of "Mic → Clean", in our words.
fn clean_prompt(text: &str) -> String {
    format!(
        "Clean up this speech-to-text transcript of a message to a coding assistant. Fix punctuation, \
         capitalisation and obvious mis-hearings; keep its meaning, commands, file paths, code and technical names \
         exactly; add nothing. Answer with the cleaned text only.\n\n{text}"
    )
}

/// "Mic → Clean": a short-lived pi (no session, thinking low) rewrites `text`; `{"text": …}`.
pub async fn clean(config: &AgentConfig, spec: SpawnSpec, text: &str) -> Result<serde_json::Value, ToolError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let proc = crate::child::PiProcess::start(config, &spec, Some(("clean".into(), tx)))
        .await
        .map_err(|e| ToolError::new(502, format!("Transcript cleanup failed: {e}")))?;
    let prompt = serde_json::json!({ "type": "prompt", "message": clean_prompt(text), "id": "__piface_clean" });
    proc.send_line(Bytes::from(prompt.to_string())).map_err(|e| ToolError::new(502, e.to_string()))?;
    let collect = async {
        let mut cleaned = String::new();
        while let Some(msg) = rx.recv().await {
            let piface_shared::protocol::FromAgent::Events { events, .. } = msg else { continue };
            for e in events {
                match e.meta.kind.as_str() {
                    "message_end" => {
                        let v: serde_json::Value = serde_json::from_slice(&e.line).unwrap_or_default();
                        if v["message"]["role"] == "assistant" {
                            let parts = v["message"]["content"].as_array().cloned().unwrap_or_default();
                            for p in parts.iter().filter(|p| p["type"] == "text") {
                                cleaned.push_str(p["text"].as_str().unwrap_or_default());
                            }
                        }
                    }
                    "agent_end" => return Ok(cleaned),
                    _ => {}
                }
            }
        }
        Err(ToolError::new(502, "pi ended before it answered"))
    };
    let result = tokio::time::timeout(CLEAN_TIMEOUT, collect).await;
    proc.kill(Duration::from_secs(2)).await;
    match result {
        Err(_) => Err(ToolError::new(502, "Timed out waiting for transcript cleanup response")),
        Ok(r) => r.map(|t| serde_json::json!({ "text": t.trim() })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ffmpeg_decodes_to_16k_mono_and_refuses_garbage() {
        // One second of a 440 Hz tone at 44.1 kHz stereo, as WAV, made by ffmpeg itself.
        let wav = tokio::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=1"])
            .args(["-ac", "2", "-ar", "44100", "-f", "wav", "pipe:1"])
            .output()
            .await
            .expect("ffmpeg is installed (.ci/run installs it)");
        let samples = decode(Bytes::from(wav.stdout)).await.unwrap();
        assert!((15_900..=16_100).contains(&samples.len()), "{}", samples.len());
        assert!(samples.iter().any(|s| s.abs() > 0.05));
        let err = decode(Bytes::from_static(b"definitely not audio")).await.unwrap_err();
        assert_eq!(err.status, 400);
        assert!(!err.detail.is_empty());
    }
}
