//! Real-time factor of VITS synthesis for a 200-character sentence: the tiny fixture model, on the CPU unless
//! `PIFACE_TTS_DEVICE` says `cuda` / `cuda:N` (with `--features cuda`).
//!
//! With `PIFACE_TTS_PYTHON` pointing at a Python that has torch and transformers, the same run times
//! transformers' `VitsModel` on the CPU on the same ids (`fixtures/bench_reference.py`) and prints the ratio; it
//! then also builds a random-weight model of `facebook/mms-tts-eng`'s size (36M parameters) in a temporary folder
//! and times both on it. Both sides use noise scale 0.667 and duration noise 0, so the durations (the amount of
//! work) are equal. `cargo bench -p piface-tts --bench rtf`.
//!
//! Each side reports its best of several runs, but the two run one after the other: on a machine shared with
//! other jobs the ratio swings (on the 2-core development machine, between 0.8 and 3.5 for the large model), so
//! run it more than once. candle parallelises with rayon; for the tiny model `RAYON_NUM_THREADS=1` is about 4x
//! faster than two threads there (thread hand-offs cost more than its small tensors take to compute).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use candle_core::Device;
use piface_tts::{SeededNoise, SynthOptions, Voice};

/// 200 characters (a long sentence; VITS checkpoints are trained on single sentences).
const TEXT: &str =
    "The quick brown fox jumps over the lazy dog, while five boxing wizards jump quickly. A journey of a \
                    thousand miles begins with a single step, and every cloud has a silver lining today, my good friend.";
const RUNS: usize = 5;

fn device() -> Device {
    match std::env::var("PIFACE_TTS_DEVICE").ok().as_deref().map(str::trim) {
        None | Some("" | "cpu") => Device::Cpu,
        Some("cuda") => Device::new_cuda(0).expect("CUDA device 0"),
        Some(s) => {
            let n = s.strip_prefix("cuda:").and_then(|n| n.parse().ok());
            Device::new_cuda(n.unwrap_or_else(|| panic!("PIFACE_TTS_DEVICE={s}: expected cpu, cuda or cuda:N")))
                .expect("CUDA device")
        }
    }
}

struct Timing {
    ids: usize,
    samples: usize,
    sample_rate: u32,
    best: Duration,
}

impl Timing {
    fn rtf(&self) -> f64 {
        self.best.as_secs_f64() / (self.samples as f64 / f64::from(self.sample_rate))
    }
}

fn candle(dir: &Path, device: &Device, runs: usize) -> Timing {
    let voice = Voice::load(dir, device).unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()));
    let ids = voice.tokenizer.encode(TEXT).expect("tokenizer");
    let opts = SynthOptions { noise_scale: 0.667, noise_scale_duration: 0.0, speaking_rate: 1.0, seed: None };
    let mut best = Duration::MAX;
    let mut samples = 0;
    for i in 0..=runs {
        let t0 = Instant::now();
        let out = voice.model.infer(&ids, &opts, &mut SeededNoise::new(i as u64)).expect("synthesis");
        // the waveform is read back as synthesize() does, so a GPU run is timed to the end
        samples = out.waveform.to_device(&Device::Cpu).and_then(|w| w.to_vec1::<f32>()).expect("waveform").len();
        if i > 0 {
            best = best.min(t0.elapsed());
        }
    }
    Timing { ids: ids.len(), samples, sample_rate: voice.model.sample_rate(), best }
}

fn print(label: &str, t: &Timing) {
    println!(
        "{label:<34} {:>4} ids  {:>6.2} s audio  best {:>8.1} ms  RTF {:.4}",
        t.ids,
        t.samples as f64 / f64::from(t.sample_rate),
        t.best.as_secs_f64() * 1e3,
        t.rtf()
    );
}

/// Runs `bench_reference.py`; one JSON object per model it timed.
fn reference(python: &str, tiny: &Path, full: &Path) -> Result<Vec<serde_json::Value>, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join("bench_reference.py");
    let out = Command::new(python)
        .arg(&script)
        .args(["--model", &tiny.to_string_lossy(), "--text", TEXT, "--runs", &RUNS.to_string()])
        .args(["--make-full", &full.to_string_lossy()])
        .output()
        .map_err(|e| format!("running {python}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr)));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{l}: {e}")))
        .collect()
}

fn print_reference(label: &str, r: &serde_json::Value, ours: &Timing) {
    let best = r["best_s"].as_f64().unwrap_or(f64::NAN);
    println!(
        "{label:<34} {:>4} ids  {:>6.2} s audio  best {:>8.1} ms  RTF {:.4}  ({} threads, torch {})",
        r["ids"],
        r["samples"].as_f64().unwrap_or(f64::NAN) / r["sampling_rate"].as_f64().unwrap_or(f64::NAN),
        best * 1e3,
        r["rtf"].as_f64().unwrap_or(f64::NAN),
        r["threads"],
        r["torch"].as_str().unwrap_or("?")
    );
    if r["samples"].as_u64() != Some(ours.samples as u64) {
        println!("  note: transformers made {} samples, candle {}", r["samples"], ours.samples);
    }
    println!("  candle / transformers time: {:.2}", ours.best.as_secs_f64() / best);
}

fn main() {
    let device = device();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let tiny = fixtures.join("tiny_vits");
    let where_ = if device.is_cuda() { "CUDA" } else { "CPU" };
    println!("VITS synthesis, {}-character text, best of {RUNS} after a warm-up; candle on {where_}", TEXT.len());
    let ours_tiny = candle(&tiny, &device, RUNS);
    print("candle, tiny fixture model", &ours_tiny);

    let Some(python) = std::env::var("PIFACE_TTS_PYTHON").ok().filter(|p| !p.is_empty()) else {
        println!("transformers reference skipped (set PIFACE_TTS_PYTHON to a python with torch and transformers)");
        return;
    };
    let full: PathBuf = std::env::temp_dir().join(format!("piface-tts-bench-{}", std::process::id()));
    let result = reference(&python, &tiny, &full);
    match result {
        Err(e) => println!("transformers reference failed: {e}"),
        Ok(refs) => {
            if let Some(r) = refs.first() {
                print_reference("transformers (CPU), tiny model", r, &ours_tiny);
            }
            if let Some(r) = refs.get(1) {
                let ours_full = candle(&full, &device, (RUNS / 2).max(1));
                print("candle, mms-tts-eng-sized model", &ours_full);
                print_reference("transformers (CPU), same model", r, &ours_full);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&full);
}
