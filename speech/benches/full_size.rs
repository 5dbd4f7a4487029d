//! What the real Parakeet TDT 0.6B costs, without its weights: a model of
//! `nvidia/parakeet-tdt-0.6b-v3`'s published shape (24 FastConformer layers of width 1024, 8 heads,
//! 256 subsampling channels, a 2-layer 640-wide prediction net and joint, 8192 tokens plus blank,
//! 5 durations) with random weights, built through the same loader path as a real checkpoint, then
//! the whole pipeline (`transcribe`: mel, chunked encoder, greedy TDT) on 10 s, 60 s and 10-minute
//! clips. Prints the real-time factor and the process's peak memory for each clip, with the tiny
//! fixture model's figures from the same run as the baseline.
//!
//! `cargo bench -p piface-speech --bench full_size` (CPU); with `--features cuda` and
//! `PIFACE_SPEECH_DEVICE=cuda` on a GPU, where the peak is the GPU's used memory (NVML through
//! `nvidia-smi`). `-- 10 60` picks the clip lengths in seconds.
//!
//! Random weights decode to random tokens, so the decoder's share differs from a real model's a
//! little (it emits up to `max_symbols` per frame); the encoder, most of the cost, does not care.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use piface_speech::config::ModelConfig;
use piface_speech::loader::ModelFiles;
use piface_speech::tokenizer::Tokenizer;
use piface_speech::ParakeetModel;

/// The published sizes, over the tiny fixture's config (same keys, same structure).
fn full_size_config(tiny_yaml: &str) -> (String, Vec<String>) {
    let mut v: serde_norway::Value = serde_norway::from_str(tiny_yaml).expect("tiny config");
    let set = |v: &mut serde_norway::Value, path: &[&str], value: serde_norway::Value| {
        let mut at = v;
        for key in &path[..path.len() - 1] {
            at = at.get_mut(*key).unwrap_or_else(|| panic!("no {key} in the config"));
        }
        at[path[path.len() - 1]] = value;
    };
    let n = |x: u64| serde_norway::Value::from(x);
    set(&mut v, &["model_defaults", "enc_hidden"], n(1024));
    set(&mut v, &["model_defaults", "pred_hidden"], n(640));
    set(&mut v, &["model_defaults", "joint_hidden"], n(640));
    set(&mut v, &["encoder", "n_layers"], n(24));
    set(&mut v, &["encoder", "d_model"], n(1024));
    set(&mut v, &["encoder", "subsampling_conv_channels"], n(256));
    set(&mut v, &["encoder", "n_heads"], n(8));
    set(&mut v, &["decoder", "vocab_size"], n(8192));
    set(&mut v, &["decoder", "prednet", "pred_hidden"], n(640));
    set(&mut v, &["decoder", "prednet", "pred_rnn_layers"], n(2));
    set(&mut v, &["joint", "num_classes"], n(8192));
    set(&mut v, &["joint", "jointnet", "joint_hidden"], n(640));
    if v["joint"]["jointnet"].get("encoder_hidden").is_some() {
        set(&mut v, &["joint", "jointnet", "encoder_hidden"], n(1024));
        set(&mut v, &["joint", "jointnet", "pred_hidden"], n(640));
    }
    // A SentencePiece-like vocabulary of the real size (the pieces' text does not matter).
    let pieces: Vec<String> =
        std::iter::once("<unk>".to_string()).chain((1..8192).map(|i| format!("\u{2581}p{i}"))).collect();
    set(&mut v, &["joint", "vocabulary"], serde_norway::to_value(&pieces).unwrap());
    (serde_norway::to_string(&v).unwrap(), pieces)
}

/// Every tensor the model asks for, at the shape it asks for, random: the model is built once on
/// a `VarMap` (which creates what is asked), then each variable is filled (batch-norm variances
/// with ones, everything else N(0, 0.02)).
fn random_tensors(config: &ModelConfig) -> HashMap<String, Tensor> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    piface_speech::encoder::Encoder::new(&config.encoder, vb.pp("encoder")).expect("encoder shapes");
    piface_speech::decoder::PredictionNet::new(config, vb.pp("decoder")).expect("prediction net shapes");
    piface_speech::decoder::Joint::new(config, vb.pp("joint")).expect("joint shapes");
    let vars = varmap.data().lock().unwrap();
    vars.iter()
        .map(|(name, var)| {
            let shape = var.shape().clone();
            let t = if name.ends_with("running_var") {
                Tensor::ones(shape, DType::F32, &Device::Cpu)
            } else {
                Tensor::randn(0f32, 0.02, shape, &Device::Cpu)
            };
            (name.clone(), t.expect("random tensor"))
        })
        .collect()
}

fn device() -> Device {
    match std::env::var("PIFACE_SPEECH_DEVICE").ok().as_deref().map(str::trim) {
        None | Some("" | "cpu") => Device::Cpu,
        Some(s) => {
            let n = s.strip_prefix("cuda:").map_or(Some(0), |n| n.parse().ok());
            Device::new_cuda(n.expect("PIFACE_SPEECH_DEVICE: cpu, cuda or cuda:N")).expect("CUDA device")
        }
    }
}

/// Resets the process's peak resident memory (Linux: `clear_refs` 5), so the next reading is the
/// peak of what follows.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory since the last reset (VmHWM), MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

/// GPU memory in use on the first visible GPU, MiB (nvidia-smi); NaN without one.
fn gpu_used_mib() -> f64 {
    std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=memory.used", "--format=csv,noheader,nounits"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.lines().next()?.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

struct Figure {
    secs: usize,
    seconds: f64,
    tokens: usize,
    peak_mib: f64,
    /// The peak less what was resident before the clip (the models loaded): the clip's own cost
    /// (on a GPU, less the memory in use before).
    growth_mib: f64,
}

fn measure(model: &ParakeetModel, audio: &[f32], secs: usize, gpu: bool) -> Figure {
    let clip: Vec<f32> = audio.iter().copied().cycle().take(secs * 16_000).collect();
    let base = rss_mib();
    let base = if gpu { gpu_used_mib() } else { base };
    reset_peak();
    let gpu_peak = std::sync::Arc::new(std::sync::Mutex::new(f64::NAN));
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(gpu));
    let sampler = gpu.then(|| {
        let (peak, on) = (gpu_peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while on.load(std::sync::atomic::Ordering::Relaxed) {
                let used = gpu_used_mib();
                let mut p = peak.lock().unwrap();
                *p = if p.is_nan() { used } else { p.max(used) };
                drop(p);
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        })
    });
    let t0 = Instant::now();
    let transcript = model.transcribe(&clip).expect("transcribe");
    let seconds = t0.elapsed().as_secs_f64();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    if let Some(s) = sampler {
        let _ = s.join();
    }
    let peak_mib = if gpu { *gpu_peak.lock().unwrap() } else { peak_rss_mib() };
    Figure { secs, seconds, tokens: transcript.token_ids.len(), peak_mib, growth_mib: peak_mib - base }
}

fn main() {
    let lengths: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let lengths = if lengths.is_empty() { vec![10, 60, 600] } else { lengths };
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let device = device();
    let gpu = device.is_cuda();
    let mut reader = hound::WavReader::open(fixtures.join("long.wav")).expect("long.wav");
    let audio: Vec<f32> = reader.samples::<i16>().map(|s| f32::from(s.unwrap()) / 32768.0).collect();

    let tiny = ParakeetModel::load(fixtures.join("tiny_parakeet_tdt.nemo"), &device).expect("tiny model");
    let tiny_dir = fixtures.join("tiny_parakeet_tdt_safetensors");
    let tiny_yaml = std::fs::read_to_string(tiny_dir.join("model_config.yaml")).expect("tiny config");
    let (yaml, pieces) = full_size_config(&tiny_yaml);
    let config = ModelConfig::from_yaml(&yaml).expect("full-size config");

    let before = rss_mib();
    let t0 = Instant::now();
    let tensors = random_tensors(&config);
    let params: usize = tensors.values().map(Tensor::elem_count).sum();
    // The loader's path from here on: a `ModelFiles`, as a checkpoint gives.
    let files = ModelFiles { config, tensors, tokenizer: Tokenizer::from_pieces(&pieces), source: "random".into() };
    let full = ParakeetModel::from_files(files, &device).expect("full-size model");
    println!(
        "Parakeet TDT 0.6B shape, random weights: {:.1} M parameters (f32 {:.0} MiB), built in {:.1} s, +{:.0} MiB resident",
        params as f64 / 1e6,
        params as f64 * 4.0 / (1 << 20) as f64,
        t0.elapsed().as_secs_f64(),
        rss_mib() - before
    );
    let where_ =
        if gpu { format!("CUDA ({device:?}), peak = GPU memory in use") } else { "CPU, peak = process RSS".into() };
    println!("{where_}; one run per clip; the tiny fixture model in the same run as the baseline");
    for secs in lengths {
        let t = measure(&tiny, &audio, secs, gpu);
        let f = measure(&full, &audio, secs, gpu);
        println!(
            "{:>4} s clip: 0.6B RTF {:.4} ({:.1} s, {} tokens), peak {:.0} MiB (+{:.0} for the clip) | tiny RTF {:.5}, +{:.0} MiB | 0.6B/tiny time {:.0}x",
            f.secs,
            f.seconds / secs as f64,
            f.seconds,
            f.tokens,
            f.peak_mib,
            f.growth_mib,
            t.seconds / secs as f64,
            t.growth_mib,
            f.seconds / t.seconds
        );
    }
}
