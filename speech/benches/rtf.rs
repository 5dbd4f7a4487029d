//! Real-time factor of the tiny Parakeet model on the CPU: encoder + greedy TDT on a 10 s and a 60 s clip
//! (`long.wav` tiled), and the mel front end's throughput. Prints NeMo/PyTorch's figures for the same clips
//! and model from `fixtures/torch_timing.json` next to ours: those were measured by
//! `make_parakeet_fixtures.py` when the fixtures were made (same machine kind, not the same process), so the
//! ratio is indicative. `cargo bench -p piface-speech --bench rtf`; with `--features cuda` and
//! `PIFACE_SPEECH_DEVICE=cuda` (or `cuda:N`) the model runs on that GPU (the mel front end stays on the CPU).

use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::Device;
use piface_speech::ParakeetModel;

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let t0 = Instant::now();
        let r = f();
        best = best.min(t0.elapsed());
        out = Some(r);
    }
    (best, out.expect("runs > 0"))
}

fn device() -> Device {
    match std::env::var("PIFACE_SPEECH_DEVICE").ok().as_deref().map(str::trim) {
        None | Some("" | "cpu") => Device::Cpu,
        Some("cuda") => Device::new_cuda(0).expect("CUDA device 0"),
        Some(s) => {
            let n = s.strip_prefix("cuda:").and_then(|n| n.parse().ok());
            Device::new_cuda(n.unwrap_or_else(|| panic!("PIFACE_SPEECH_DEVICE={s}: expected cpu, cuda or cuda:N")))
                .expect("CUDA device")
        }
    }
}

fn main() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let device = device();
    let model = ParakeetModel::load(fixtures.join("tiny_parakeet_tdt.nemo"), &device).expect("tiny model");
    let mut reader = hound::WavReader::open(fixtures.join("long.wav")).expect("long.wav");
    let long: Vec<f32> = reader.samples::<i16>().map(|s| f32::from(s.unwrap()) / 32768.0).collect();
    let torch: Option<serde_json::Value> =
        std::fs::read_to_string(fixtures.join("torch_timing.json")).ok().and_then(|s| serde_json::from_str(&s).ok());

    let where_ = if device.is_cuda() { "CUDA" } else { "CPU" };
    println!("tiny Parakeet TDT, {where_} ({device:?}), candle (best of 3)");
    for secs in [10usize, 60] {
        let n = secs * 16_000;
        let clip: Vec<f32> = long.iter().copied().cycle().take(n).collect();
        let (t_mel, mel) = best_of(3, || model.features(&clip).unwrap());
        let (t_enc_dec, tokens) = best_of(3, || {
            let (enc, valid) = model.encode(&mel).unwrap();
            model.decode(&enc, valid).unwrap().token_ids.len()
        });
        let rtf = t_enc_dec.as_secs_f64() / secs as f64;
        print!(
            "{secs:>3} s clip: encoder+decoder {:>8.1} ms  RTF {rtf:.5}  ({tokens} tokens)  | mel {:>6.2} ms = {:.0}x real time",
            t_enc_dec.as_secs_f64() * 1e3,
            t_mel.as_secs_f64() * 1e3,
            secs as f64 / t_mel.as_secs_f64()
        );
        if let Some(t) = torch.as_ref().and_then(|t| t.get(format!("{secs}s"))) {
            let ref_s = t["encoder_decoder_s"].as_f64().unwrap_or(f64::NAN);
            print!(
                "  | NeMo/PyTorch CPU (recorded) {:.1} ms RTF {:.5}, mel {:.2} ms; ratio candle/torch {:.2}",
                ref_s * 1e3,
                ref_s / secs as f64,
                t["mel_s"].as_f64().unwrap_or(f64::NAN) * 1e3,
                t_enc_dec.as_secs_f64() / ref_s
            );
        }
        println!();
    }
}
