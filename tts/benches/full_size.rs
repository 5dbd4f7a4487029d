//! What a real VITS voice costs, without its weights: a model of `kakao-enterprise/vits-ljs`'s
//! published shape (text encoder 6 × 192 wide with 2 heads and 768-wide feed-forward, stochastic
//! duration predictor with 4 flows, 4 coupling flows of 4 WaveNet layers, HiFi-GAN from 512
//! channels with upsampling 8·8·2·2, 22.05 kHz) with random weights, built through
//! `VitsModel::from_tensors` like a checkpoint, then synthesising 10 s, 60 s and 10 minutes of
//! audio a sentence (400 characters) at a time, as the agent's TTS worker does. Prints the
//! real-time factor and the peak memory (process RSS; on CUDA the GPU's used memory through
//! `nvidia-smi`), with the tiny fixture voice's figures from the same run as the baseline.
//!
//! `cargo bench -p piface-tts --bench full_size` (CPU); `--features cuda` with
//! `PIFACE_TTS_DEVICE=cuda` on a GPU. `-- 10 60` picks the lengths in seconds.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use piface_tts::{SynthOptions, VitsConfig, VitsModel};

/// `kakao-enterprise/vits-ljs`'s `config.json` values over the tiny fixture's (same keys).
fn vits_ljs_config(tiny: &Path) -> VitsConfig {
    let text = std::fs::read_to_string(tiny.join("config.json")).expect("tiny config.json");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("tiny config");
    let ljs = serde_json::json!({
        "hidden_size": 192, "ffn_dim": 768, "num_hidden_layers": 6, "num_attention_heads": 2, "window_size": 4,
        "flow_size": 192, "spectrogram_bins": 513, "upsample_initial_channel": 512,
        "upsample_rates": [8, 8, 2, 2], "upsample_kernel_sizes": [16, 16, 4, 4],
        "resblock_kernel_sizes": [3, 7, 11], "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "duration_predictor_filter_channels": 256, "duration_predictor_kernel_size": 3,
        "duration_predictor_num_flows": 4, "duration_predictor_flow_bins": 10, "duration_predictor_tail_bound": 5.0,
        "depth_separable_channels": 2, "depth_separable_num_layers": 3, "prior_encoder_num_flows": 4,
        "prior_encoder_num_wavenet_layers": 4, "posterior_encoder_num_wavenet_layers": 16, "wavenet_kernel_size": 5,
        "wavenet_dilation_rate": 1, "sampling_rate": 22050, "vocab_size": 38,
        "use_stochastic_duration_prediction": true, "noise_scale": 0.667, "noise_scale_duration": 0.8,
        "speaking_rate": 1.0, "ffn_kernel_size": 3,
    });
    for (k, x) in ljs.as_object().unwrap() {
        v[k] = x.clone();
    }
    serde_json::from_value(v).expect("vits-ljs config")
}

/// Every tensor the model asks for, at its shape, N(0, 0.02): built once on a `VarMap`, which
/// creates what is asked for.
fn random_tensors(config: &VitsConfig) -> HashMap<String, Tensor> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    piface_tts::text_encoder::TextEncoder::new(config, vb.pp("text_encoder")).expect("text encoder shapes");
    piface_tts::duration::DurationPredictor::new(config, vb.pp("duration_predictor")).expect("duration shapes");
    piface_tts::flow::Flow::new(config, vb.pp("flow")).expect("flow shapes");
    piface_tts::hifigan::HifiGan::new(config, vb.pp("decoder")).expect("decoder shapes");
    let vars = varmap.data().lock().unwrap();
    vars.iter()
        .map(|(name, var)| (name.clone(), Tensor::randn(0f32, 0.02, var.shape().clone(), &Device::Cpu).unwrap()))
        .collect()
}

fn device() -> Device {
    match std::env::var("PIFACE_TTS_DEVICE").ok().as_deref().map(str::trim) {
        None | Some("" | "cpu") => Device::Cpu,
        Some(s) => {
            let n = s.strip_prefix("cuda:").map_or(Some(0), |n| n.parse().ok());
            Device::new_cuda(n.expect("PIFACE_TTS_DEVICE: cpu, cuda or cuda:N")).expect("CUDA device")
        }
    }
}

fn status_mib(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

fn gpu_used_mib() -> f64 {
    std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=memory.used", "--format=csv,noheader,nounits"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.lines().next()?.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

struct Figure {
    audio_s: f64,
    seconds: f64,
    sentences: usize,
    peak_mib: f64,
}

/// Sentences of 400 random characters (ids with blanks between them, as the tokenizer makes),
/// one after another until `secs` of audio are made.
fn measure(model: &VitsModel, secs: f64, gpu: bool, seed: &mut u64) -> Figure {
    let vocab = model.config().vocab_size as u64;
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let mut peak_gpu = f64::NAN;
    let (mut audio_s, mut seconds, mut sentences) = (0.0, 0.0, 0);
    while audio_s < secs {
        let ids: Vec<u32> = (0..801)
            .map(|i| {
                *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                if i % 2 == 0 {
                    0
                } else {
                    1 + ((*seed >> 33) % (vocab - 1)) as u32
                }
            })
            .collect();
        let opts = SynthOptions { seed: Some(*seed), ..SynthOptions::default() };
        let t0 = Instant::now();
        let out = model.synthesize(&ids, &opts).expect("synthesize");
        seconds += t0.elapsed().as_secs_f64();
        if gpu {
            let used = gpu_used_mib();
            peak_gpu = if peak_gpu.is_nan() { used } else { peak_gpu.max(used) };
        }
        audio_s += out.waveform.len() as f64 / f64::from(out.sample_rate);
        sentences += 1;
    }
    let peak_mib = if gpu { peak_gpu } else { status_mib("VmHWM:") };
    Figure { audio_s, seconds, sentences, peak_mib }
}

fn main() {
    let lengths: Vec<f64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let lengths = if lengths.is_empty() { vec![10.0, 60.0, 600.0] } else { lengths };
    let tiny_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tiny_vits");
    let device = device();
    let gpu = device.is_cuda();
    let tiny = VitsModel::load(&tiny_dir, &device).expect("tiny voice");
    let config = vits_ljs_config(&tiny_dir);

    let before = status_mib("VmRSS:");
    let t0 = Instant::now();
    let tensors = random_tensors(&config);
    let params: usize = tensors.values().map(Tensor::elem_count).sum();
    let model = VitsModel::from_tensors(config, tensors, &device).expect("vits-ljs-shaped model");
    println!(
        "VITS of kakao-enterprise/vits-ljs's shape, random weights: {:.1} M parameters, built in {:.1} s, +{:.0} MiB resident",
        params as f64 / 1e6,
        t0.elapsed().as_secs_f64(),
        status_mib("VmRSS:") - before
    );
    let where_ =
        if gpu { format!("CUDA ({device:?}), peak = GPU memory in use") } else { "CPU, peak = process RSS".into() };
    println!("{where_}; sentences of 400 characters; the tiny fixture voice in the same run as the baseline");
    let mut seed = 7;
    for secs in lengths {
        let t = measure(&tiny, secs, gpu, &mut seed);
        let f = measure(&model, secs, gpu, &mut seed);
        println!(
            "{:>5.0} s of audio: vits-ljs shape RTF {:.4} ({:.1} s for {:.1} s in {} sentences), peak {:.0} MiB | tiny RTF {:.5}, peak {:.0} MiB",
            secs,
            f.seconds / f.audio_s,
            f.seconds,
            f.audio_s,
            f.sentences,
            f.peak_mib,
            t.seconds / t.audio_s,
            t.peak_mib
        );
    }
}
