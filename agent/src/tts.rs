//! The text-to-speech worker of an agent that has a VITS voice (`--tts-model`): text → sentences
//! → VITS (`piface-tts`) → one waveform → MP3 by ffmpeg, one text at a time.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use piface_shared::protocol::{ModelState, ToolError};
use piface_tts::{SynthOptions, Voice};
use tracing::info;

use crate::models::{self, Kind, Models};
use crate::ServiceConfig;

/// The original's model name (Coqui's LJSpeech VITS); here it means the same voice in the
/// Hugging Face `VitsModel` format.
pub const ORIGINAL_MODEL: &str = "tts_models/en/ljspeech/vits";
/// Longest encoding of one text by ffmpeg.
const FFMPEG_TIMEOUT: Duration = Duration::from_secs(300);
/// Texts are spoken a sentence (or at most this many characters) at a time: attention is
/// quadratic in the input.
const CHUNK_CHARS: usize = 400;
/// Silence between two chunks, seconds.
const GAP_S: f32 = 0.2;

/// A loaded voice, shared by the requests (one text at a time); the agent's [`Models`] holds it.
pub struct Worker {
    voice: Arc<Voice>,
    turn: tokio::sync::Semaphore,
    /// What the model was loaded from (as asked for).
    pub name: String,
}

/// What a model name means here: the original's Coqui name is the same voice on the hub.
pub fn hub_name(spec: &str) -> &str {
    if spec == ORIGINAL_MODEL {
        piface_tts::DEFAULT_MODEL
    } else {
        spec
    }
}

/// Whether `spec` (a folder or repo id) is on disk already.
pub fn in_cache(spec: &str) -> bool {
    piface_tts::resolve(hub_name(spec)).is_ok()
}

/// The files of a Hugging Face repo that make a `VitsModel` voice.
pub fn pick_files(_id: &str, files: &[String]) -> Vec<String> {
    const WANTED: [&str; 6] = [
        "config.json",
        "model.safetensors",
        "vocab.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
    ];
    if !files.iter().any(|f| f == "config.json") || !files.iter().any(|f| f == "model.safetensors") {
        return Vec::new();
    }
    files.iter().filter(|f| WANTED.contains(&f.as_str())).cloned().collect()
}

/// Loads the voice `service` names — fetching it first when it is a repo missing from the local
/// cache and fetching is allowed — and keeps it in `models` ([`Models::voice`]); the status is in
/// `models.snapshot(Kind::Tts)` all along.
pub async fn start(models: Arc<Models>, service: ServiceConfig) -> Result<Arc<Worker>, String> {
    let source =
        models::Source { resolve: |spec| piface_tts::resolve(spec).map_err(|e| e.to_string()), pick: pick_files };
    let voice = models
        .load(Kind::Tts, &service, hub_name(&service.model), source, |dir, device| {
            Voice::load(dir, &device).map_err(|e| format!("Failed to load the VITS voice: {e}"))
        })
        .await?;
    let worker =
        Arc::new(Worker { voice: Arc::new(voice), turn: tokio::sync::Semaphore::new(1), name: service.model.clone() });
    models.set_voice(worker.clone());
    models.set(Kind::Tts, &service.model, &service.device_label(), ModelState::Ready);
    Ok(worker)
}

/// `text` in pieces the model takes well: sentences, and long ones cut at a space.
pub fn chunks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, out: &mut Vec<String>| {
        let piece = current.trim();
        if piece.chars().any(char::is_alphanumeric) {
            out.push(piece.to_string());
        }
        current.clear();
    };
    for c in text.chars() {
        current.push(c);
        let at_end = matches!(c, '.' | '!' | '?' | ';' | '\n');
        if (at_end && current.chars().count() > 20) || (c == ' ' && current.chars().count() >= CHUNK_CHARS) {
            flush(&mut current, &mut out);
        } else if current.chars().count() >= CHUNK_CHARS * 2 {
            flush(&mut current, &mut out); // no space for a long while
        }
    }
    flush(&mut current, &mut out);
    out
}

/// Speaks `text` with `worker`, counted as a job of `models`: the MP3 and its duration in seconds.
pub async fn synthesize(models: &Arc<Models>, worker: Arc<Worker>, text: String) -> Result<(Bytes, f32), ToolError> {
    let pieces = chunks(&text);
    if pieces.is_empty() {
        return Err(ToolError::new(400, "TTS text has nothing to say"));
    }
    let job = models.job(Kind::Tts);
    let _turn = worker.turn.acquire().await.map_err(|e| ToolError::new(500, e.to_string()))?;
    let voice = worker.voice.clone();
    let started = std::time::Instant::now();
    let (samples, rate) = tokio::task::spawn_blocking(move || {
        let opts = SynthOptions { seed: Some(0), ..SynthOptions::from_config(voice.model.config()) };
        let rate = voice.model.sample_rate();
        let gap = vec![0f32; (GAP_S * rate as f32) as usize];
        let mut all = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            let audio = match voice.speak(piece, &opts) {
                Ok(a) => a,
                // A piece with nothing the voice can say (say, only symbols) is skipped.
                Err(piface_tts::TtsError::Input(_)) => continue,
                Err(e) => return Err(e),
            };
            if i > 0 && !all.is_empty() {
                all.extend_from_slice(&gap);
            }
            all.extend_from_slice(&audio.waveform);
        }
        Ok((all, rate))
    })
    .await
    .map_err(|e| ToolError::new(500, format!("Speech synthesis failed: {e}")))?
    .map_err(|e| ToolError::new(502, format!("VITS inference failed: {e}")))?;
    if samples.is_empty() {
        return Err(ToolError::new(400, "TTS text has nothing to say"));
    }
    let seconds = samples.len() as f32 / rate as f32;
    let mp3 = encode_mp3(&samples, rate).await?;
    info!(
        seconds = format!("{seconds:.2}"),
        rtf = format!("{:.3}", started.elapsed().as_secs_f32() / seconds),
        bytes = mp3.len(),
        "synthesised speech"
    );
    job.finished();
    Ok((mp3, seconds))
}

/// Mono float samples → MP3 (ffmpeg with LAME). ffmpeg writes to a file, not a pipe: only a
/// file it can seek in gets the Xing/LAME header that tells players the encoder's delay and
/// padding, so the audio plays (and reports) its exact length.
pub async fn encode_mp3(samples: &[f32], rate: u32) -> Result<Bytes, ToolError> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("piface-tts-{}-{n}.mp3", std::process::id()));
    let result = encode_to(samples, rate, &path).await;
    let _ = tokio::fs::remove_file(&path).await;
    result
}

async fn encode_to(samples: &[f32], rate: u32, path: &std::path::Path) -> Result<Bytes, ToolError> {
    use std::ffi::OsStr;
    let rate = rate.to_string();
    let mut args = ["-y", "-f", "f32le", "-ac", "1", "-ar"].map(OsStr::new).to_vec();
    args.push(OsStr::new(&rate));
    args.extend(["-i", "pipe:0", "-codec:a", "libmp3lame", "-q:a", "4", "-f", "mp3"].map(OsStr::new));
    args.push(path.as_os_str());
    let pcm: Vec<u8> = samples.iter().flat_map(|s| s.clamp(-1.0, 1.0).to_le_bytes()).collect();
    let timed_out = ToolError::new(500, "MP3 encoding timed out");
    let out = crate::speech::ffmpeg(&args, Bytes::from(pcm), "MP3 encoding", FFMPEG_TIMEOUT, timed_out).await?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(ToolError::new(500, format!("MP3 encoding failed: {err}")));
    }
    let mp3 = tokio::fs::read(path).await.map_err(|e| ToolError::new(500, format!("MP3 encoding: {e}")))?;
    if mp3.is_empty() {
        return Err(ToolError::new(500, "MP3 encoding produced nothing"));
    }
    Ok(Bytes::from(mp3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_cut_at_sentences_and_long_runs() {
        assert_eq!(
            chunks("Hello there, how are you? I am fine.\nThanks!"),
            ["Hello there, how are you?", "I am fine.\nThanks!"]
        );
        assert!(chunks("  ... !!! ").is_empty(), "nothing to say");
        let long = "word ".repeat(300);
        let pieces = chunks(&long);
        assert!(pieces.len() >= 3 && pieces.iter().all(|p| p.chars().count() <= CHUNK_CHARS + 5), "{pieces:?}");
        assert_eq!(pieces.join(" ").split_whitespace().count(), 300, "nothing lost");
    }

    #[tokio::test]
    async fn mp3_of_a_second_of_tone() {
        let samples: Vec<f32> = (0..16_000).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        let mp3 = encode_mp3(&samples, 16_000).await.unwrap();
        assert!(mp3.len() > 1000, "{}", mp3.len());
        assert!(mp3.starts_with(b"ID3") || mp3[0] == 0xFF, "an MP3 stream");
    }

    #[test]
    fn the_originals_model_name_is_the_ljspeech_voice() {
        assert_eq!(hub_name(ORIGINAL_MODEL), "kakao-enterprise/vits-ljs");
        assert_eq!(hub_name("facebook/mms-tts-eng"), "facebook/mms-tts-eng");
        let files: Vec<String> = [
            "README.md",
            "config.json",
            "model.safetensors",
            "vocab.json",
            "tokenizer_config.json",
            "pytorch_model.bin",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            pick_files("x/y", &files),
            ["config.json", "model.safetensors", "vocab.json", "tokenizer_config.json"]
        );
        assert!(pick_files("x/y", &files[..1]).is_empty());
    }
}
