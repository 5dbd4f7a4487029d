//! Parity with transformers' `VitsModel` and `VitsTokenizer` (and phonemizer) on the tiny random-weight fixtures;
//! fixtures/README.md says how they were made.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::{Device, Tensor};
use piface_tts::{RecordedNoise, SeededNoise, SynthOptions, TtsError, VitsModel, VitsTokenizer, Voice};

/// Largest |difference| accepted for log-durations, spectrograms and waveforms.
const TOLERANCE: f32 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The device the model runs on: the CPU unless `PIFACE_TTS_DEVICE` says `cuda` or `cuda:N` (a build with
/// `--features cuda`, on a machine with an NVIDIA GPU). References stay on the CPU; outputs are compared there.
fn device() -> Device {
    static D: OnceLock<Device> = OnceLock::new();
    D.get_or_init(|| match std::env::var("PIFACE_TTS_DEVICE").ok().as_deref().map(str::trim) {
        None | Some("" | "cpu") => Device::Cpu,
        Some(s) => {
            let ordinal = match s.strip_prefix("cuda") {
                Some("") => 0,
                Some(n) => {
                    n.strip_prefix(':').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("PIFACE_TTS_DEVICE={s}"))
                }
                None => panic!("PIFACE_TTS_DEVICE={s}: expected cpu, cuda or cuda:N"),
            };
            Device::new_cuda(ordinal).unwrap_or_else(|e| panic!("PIFACE_TTS_DEVICE={s}: {e}"))
        }
    })
    .clone()
}

fn voice(name: &str) -> &'static Voice {
    static SDP: OnceLock<Voice> = OnceLock::new();
    static PLAIN: OnceLock<Voice> = OnceLock::new();
    let cell = match name {
        "tiny_vits" => &SDP,
        "tiny_vits_plain" => &PLAIN,
        _ => panic!("no fixture model {name}"),
    };
    cell.get_or_init(|| Voice::load(fixtures().join(name), &device()).unwrap_or_else(|e| panic!("loading {name}: {e}")))
}

fn json(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn reference_tensors(model: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixtures().join(format!("reference_{model}.safetensors")), &Device::Cpu)
        .expect("reference tensors")
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let a = a.to_device(&Device::Cpu).unwrap();
    let b = b.to_device(&Device::Cpu).unwrap();
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

fn ids_of(t: &Tensor) -> Vec<u32> {
    t.to_vec1::<i64>().unwrap().into_iter().map(|v| u32::try_from(v).unwrap()).collect()
}

/// Runs every reference case of `model` and returns the largest differences seen (log-duration, spectrogram,
/// waveform).
fn check_model(model: &str) -> [f32; 3] {
    let voice = voice(model);
    let refs = reference_tensors(model);
    let cases = json("reference.json")[model].as_array().expect("cases").clone();
    assert!(!cases.is_empty());
    let mut worst = [0f32; 3];
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let t = |k: &str| refs.get(&format!("{name}.{k}")).unwrap_or_else(|| panic!("{name}.{k} missing"));
        let ids = voice.tokenizer.encode(case["text"].as_str().unwrap()).unwrap();
        assert_eq!(ids, ids_of(t("input_ids")), "{model} {name}: ids");
        let opts = SynthOptions {
            speaking_rate: case["speaking_rate"].as_f64().unwrap() as f32,
            noise_scale: case["noise_scale"].as_f64().unwrap() as f32,
            noise_scale_duration: case["noise_scale_duration"].as_f64().unwrap() as f32,
            seed: None,
        };
        let out = if case["recorded_noise"].as_bool().unwrap() {
            let mut recorded = Vec::new();
            if let Some(d) = refs.get(&format!("{name}.noise_duration")) {
                recorded.push(d.clone());
            }
            recorded.push(t("noise_prior").clone());
            voice.model.infer(&ids, &opts, &mut RecordedNoise::new(recorded)).unwrap()
        } else {
            // noise scales of 0: whatever noise is drawn must not matter
            voice.model.infer(&ids, &opts, &mut SeededNoise::new(12345)).unwrap()
        };
        let log_durations = Tensor::new(out.log_durations.as_slice(), &Device::Cpu).unwrap();
        let log_duration_diff = max_abs_diff(&log_durations, t("log_duration"));
        assert_eq!(
            out.durations,
            ids_of(t("durations")),
            "{model} {name}: durations (log-duration |diff| {log_duration_diff})"
        );
        let diffs = [
            log_duration_diff,
            max_abs_diff(&out.spectrogram, t("spectrogram")),
            max_abs_diff(&out.waveform, t("waveform")),
        ];
        eprintln!(
            "{model} {name}: {} ids, {} frames; max |diff| log-duration {:.2e}, spectrogram {:.2e}, waveform {:.2e}",
            ids.len(),
            out.durations.iter().sum::<u32>(),
            diffs[0],
            diffs[1],
            diffs[2]
        );
        for (what, d) in ["log-duration", "spectrogram", "waveform"].iter().zip(diffs) {
            assert!(d < TOLERANCE, "{model} {name}: {what} max |diff| {d}");
        }
        for (w, d) in worst.iter_mut().zip(diffs) {
            *w = w.max(d);
        }
    }
    worst
}

#[test]
fn runs_on_the_device_asked_for() {
    let dev = voice("tiny_vits").model.device();
    eprintln!("parity device: {dev:?}");
    assert!(dev.same_device(&device()));
    match std::env::var("PIFACE_TTS_DEVICE").ok().as_deref() {
        Some(s) if s.starts_with("cuda") => assert!(dev.is_cuda(), "asked for {s}, got {dev:?}"),
        _ => assert!(dev.is_cpu()),
    }
}

/// Stochastic duration predictor, f32 checkpoint with `weight_g`/`weight_v` names: noise 0/0, recorded noise
/// (0.667/0.8) and speaking rate 1.5.
#[test]
fn stochastic_model_matches_transformers() {
    let worst = check_model("tiny_vits");
    eprintln!("tiny_vits worst: {worst:?}");
}

/// Plain duration predictor, f16 checkpoint with `parametrizations.weight.original0/1` names and no posterior
/// encoder; other config knobs (4 heads, window 2, even FFN kernel, gelu, WaveNet dilation 2).
#[test]
fn plain_model_matches_transformers() {
    let worst = check_model("tiny_vits_plain");
    eprintln!("tiny_vits_plain worst: {worst:?}");
}

fn check_ids(tokenizer: &VitsTokenizer, cases: &serde_json::Value, what: &str) {
    let cases = cases.as_array().unwrap_or_else(|| panic!("{what} cases"));
    assert!(!cases.is_empty());
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let expect: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(tokenizer.encode(text).unwrap(), expect, "{what}: {text:?}");
    }
}

#[test]
fn character_tokenizers_match_transformers() {
    let cases = json("tokenizer_cases.json");
    // transformers 5 style config (added_tokens_decoder) and the older hub style
    let new_style = VitsTokenizer::load(fixtures().join("tiny_vits")).unwrap();
    let old_style = VitsTokenizer::load(fixtures().join("tiny_vits_plain")).unwrap();
    assert!(!new_style.phonemize && new_style.normalize && new_style.add_blank);
    assert_eq!(new_style.unk_id().map(u64::from), cases["unk_id"]["char"].as_u64());
    assert_eq!(old_style.unk_id(), new_style.unk_id());
    check_ids(&new_style, &cases["char"], "char");
    check_ids(&old_style, &cases["char_plain"], "char_plain");
    let mut raw = new_style.clone();
    raw.normalize = false;
    check_ids(&raw, &cases["char_raw"], "char_raw (normalize off: unknown characters become <unk>)");
}

fn require_espeak() {
    match std::process::Command::new("espeak-ng").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("espeak-ng --version failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => panic!(
            "espeak-ng is needed for the phoneme tests and could not be run ({e}); install it (apt-get install \
             espeak-ng)"
        ),
    }
}

#[test]
fn phonemes_match_phonemizer() {
    require_espeak();
    let tokenizer = VitsTokenizer::load(fixtures().join("tiny_vits_phonemes")).unwrap();
    assert!(tokenizer.phonemize);
    let cases = json("tokenizer_cases.json");
    let cases = cases["phoneme"].as_array().unwrap();
    assert!(cases.len() >= 10);
    let mut failures = Vec::new();
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let phonemes = tokenizer.prepare(text).unwrap();
        if phonemes != case["phonemes"].as_str().unwrap() {
            failures.push(format!("{text:?}: got {phonemes:?}, phonemizer gave {:?}", case["phonemes"]));
        }
    }
    assert!(failures.is_empty(), "phonemes differ:\n{}", failures.join("\n"));
}

#[test]
fn phoneme_ids_match_transformers() {
    require_espeak();
    let tokenizer = VitsTokenizer::load(fixtures().join("tiny_vits_phonemes")).unwrap();
    let cases = json("tokenizer_cases.json");
    assert_eq!(tokenizer.unk_id().map(u64::from), cases["unk_id"]["phoneme"].as_u64());
    check_ids(&tokenizer, &cases["phoneme"], "phoneme");
}

#[test]
fn a_missing_espeak_is_a_clear_error() {
    let mut tokenizer = VitsTokenizer::load(fixtures().join("tiny_vits_phonemes")).unwrap();
    tokenizer.espeak.program = "/nonexistent/espeak-ng".into();
    let err = tokenizer.encode("Hello").unwrap_err();
    assert!(matches!(err, TtsError::Phonemizer(_)), "{err}");
    assert!(err.to_string().contains("espeak-ng"), "{err}");
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let v = voice("tiny_vits");
    let opts = SynthOptions::default();
    assert!(matches!(v.model.synthesize(&[], &opts), Err(TtsError::Input(_))));
    let vocab = v.model.config().vocab_size as u32;
    assert!(matches!(v.model.synthesize(&[0, vocab, 0], &opts), Err(TtsError::Input(_))));
    assert!(matches!(v.speak("?!", &opts), Err(TtsError::Input(_))));
    assert!(matches!(v.speak("", &opts), Err(TtsError::Input(_))));
    let bad_rate = SynthOptions { speaking_rate: 0.0, ..opts };
    assert!(matches!(v.model.synthesize(&[0, 5, 0], &bad_rate), Err(TtsError::Input(_))));
    let mut too_little = RecordedNoise::new([]);
    assert!(v.model.infer(&[0, 5, 0], &opts, &mut too_little).is_err());
}

#[test]
fn a_seed_makes_synthesis_repeatable() {
    for name in ["tiny_vits", "tiny_vits_plain"] {
        let v = voice(name);
        let opts = SynthOptions { seed: Some(42), ..SynthOptions::from_config(v.model.config()) };
        let a = v.speak("Hello world.", &opts).unwrap();
        let b = v.speak("Hello world.", &opts).unwrap();
        assert_eq!(a, b, "{name}");
        assert_eq!(a.waveform.len(), a.durations.iter().sum::<u32>() as usize * a.samples_per_frame);
        assert_eq!(a.sample_rate, v.model.config().sampling_rate);
        assert!(a.waveform.iter().all(|s| s.is_finite() && s.abs() <= 1.0));
        let c = v.speak("Hello world.", &SynthOptions { seed: Some(43), ..opts }).unwrap();
        assert_ne!(a.waveform, c.waveform, "{name}: another seed, the same audio");
    }
}

#[test]
fn models_can_move_to_a_synthesis_thread() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Voice>();
    send_sync::<VitsModel>();
    send_sync::<VitsTokenizer>();
}

#[test]
fn a_missing_model_is_a_not_found_error() {
    let dir = fixtures().join("tiny_vits_phonemes"); // a tokenizer without config.json or weights
    assert!(matches!(VitsModel::load(&dir, &Device::Cpu), Err(TtsError::Io { .. })));
    let err = piface_tts::resolve_in("nobody/no-such-voice", &fixtures()).unwrap_err();
    assert!(err.to_string().contains("hf download nobody/no-such-voice"), "{err}");
}

#[test]
fn a_voice_is_a_folder_or_a_snapshot_with_a_config() {
    let cache = tempfile::tempdir().unwrap();
    let base = cache.path().join("models--org--voice");
    let snap = base.join("snapshots").join("abc123");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(base.join("refs")).unwrap();
    std::fs::write(base.join("refs").join("main"), "abc123").unwrap();
    std::fs::write(snap.join("config.json"), "{}").unwrap();
    let resolve_in = piface_tts::resolve_in;
    assert_eq!(resolve_in("org/voice", cache.path()).unwrap(), snap);
    let err = resolve_in("org/other@v2", cache.path()).unwrap_err().to_string();
    assert!(err.contains("hf download org/other --revision v2"), "{err}");
    assert!(matches!(resolve_in("not a repo", cache.path()), Err(TtsError::Lookup(_))));
    let folder = fixtures().join("tiny_vits");
    assert_eq!(resolve_in(folder.to_str().unwrap(), cache.path()).unwrap(), folder);
    let file = folder.join("config.json");
    assert!(matches!(resolve_in(file.to_str().unwrap(), cache.path()), Err(TtsError::NotFound(_))), "a file");
}
