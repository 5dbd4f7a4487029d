//! Parity with NeMo on the tiny random-weight fixtures (fixtures/README.md says how they were made).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::{Device, Tensor};
use piface_speech::model::{plan_chunks, Chunking};
use piface_speech::{loader, ParakeetModel};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn nemo() -> PathBuf {
    fixtures().join("tiny_parakeet_tdt.nemo")
}

/// The device the model runs on: the CPU unless `PIFACE_SPEECH_DEVICE` says `cuda` or `cuda:N` (a build with
/// `--features cuda`, on a machine with an NVIDIA GPU). Reference tensors stay on the CPU; inputs taken from
/// them are moved to this device and outputs are compared on the CPU.
fn device() -> Device {
    static D: OnceLock<Device> = OnceLock::new();
    D.get_or_init(|| match std::env::var("PIFACE_SPEECH_DEVICE").ok().as_deref().map(str::trim) {
        None | Some("" | "cpu") => Device::Cpu,
        Some(s) => {
            let ordinal = match s.strip_prefix("cuda") {
                Some("") => 0,
                Some(n) => n
                    .strip_prefix(':')
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("PIFACE_SPEECH_DEVICE={s}")),
                None => panic!("PIFACE_SPEECH_DEVICE={s}: expected cpu, cuda or cuda:N"),
            };
            Device::new_cuda(ordinal).unwrap_or_else(|e| panic!("PIFACE_SPEECH_DEVICE={s}: {e}"))
        }
    })
    .clone()
}

fn model() -> &'static ParakeetModel {
    static M: OnceLock<ParakeetModel> = OnceLock::new();
    M.get_or_init(|| ParakeetModel::load(nemo(), &device()).expect("loading the tiny .nemo"))
}

/// A reference tensor on the model's device.
fn on_device(t: &Tensor) -> Tensor {
    t.to_device(&device()).unwrap()
}

struct Reference {
    tensors: std::collections::HashMap<String, Tensor>,
    json: serde_json::Value,
}

impl Reference {
    fn load(name: &str) -> Self {
        let tensors =
            candle_core::safetensors::load(fixtures().join(format!("reference_{name}.safetensors")), &Device::Cpu)
                .expect("reference tensors");
        let all: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixtures().join("reference.json")).unwrap()).unwrap();
        Self { tensors, json: all[name].clone() }
    }
    fn t(&self, k: &str) -> &Tensor {
        &self.tensors[k]
    }
    fn usize(&self, k: &str) -> usize {
        self.t(k).flatten_all().unwrap().to_vec1::<i64>().unwrap()[0] as usize
    }
    fn ids(&self, k: &str) -> Vec<i64> {
        self.t(k).to_vec1::<i64>().unwrap()
    }
    fn text(&self) -> &str {
        self.json["text"].as_str().unwrap()
    }
}

fn read_wav(name: &str) -> Vec<f32> {
    let mut r = hound::WavReader::open(fixtures().join(name)).unwrap();
    assert_eq!(r.spec().sample_rate, 16_000);
    r.samples::<i16>().map(|s| f32::from(s.unwrap()) / 32768.0).collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (a.to_device(&Device::Cpu).unwrap(), b.to_device(&Device::Cpu).unwrap());
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn runs_on_the_device_asked_for() {
    let dev = model().device();
    eprintln!("parity device: {dev:?}");
    assert!(dev.same_device(&device()));
    match std::env::var("PIFACE_SPEECH_DEVICE").ok().as_deref() {
        Some(s) if s.starts_with("cuda") => assert!(dev.is_cuda(), "asked for {s}, got {dev:?}"),
        _ => assert!(dev.is_cpu()),
    }
}

#[test]
fn wav_matches_the_reference_audio() {
    let r = Reference::load("hello");
    let audio = Tensor::new(read_wav("hello.wav"), &Device::Cpu).unwrap();
    assert_eq!(max_abs_diff(&audio, r.t("audio")), 0.0);
}

#[test]
fn mel_matches_nemo() {
    let r = Reference::load("hello");
    let samples = r.t("audio").to_vec1::<f32>().unwrap();
    let mel = model().features(&samples).unwrap();
    assert_eq!(mel.valid_frames, r.usize("mel_len"));
    let ours = mel.to_tensor(&Device::Cpu).unwrap().squeeze(0).unwrap();
    let diff = max_abs_diff(&ours, r.t("mel"));
    eprintln!("mel max |diff| {diff}");
    assert!(diff < 1e-4, "mel max |diff| {diff}");
}

#[test]
fn computed_filterbank_and_window_match_the_stored_ones() {
    let files = loader::load(&nemo()).unwrap();
    let fb = files.tensors["preprocessor.featurizer.fb"].flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let ours = piface_speech::mel::slaney_filterbank(16000.0, 512, 128, 0.0, 8000.0);
    let diff = fb.iter().zip(&ours).map(|(a, b)| (f64::from(*a) - b).abs()).fold(0.0, f64::max);
    assert!(diff < 1e-6, "fb max |diff| {diff}");
    // and the features agree whichever is used
    let cfg = &files.config.preprocessor;
    let computed = piface_speech::mel::MelFrontend::new(cfg, None, None).unwrap();
    let r = Reference::load("hello");
    let mel = computed.compute(&r.t("audio").to_vec1::<f32>().unwrap()).unwrap();
    let diff = max_abs_diff(&mel.to_tensor(&Device::Cpu).unwrap().squeeze(0).unwrap(), r.t("mel"));
    assert!(diff < 1e-4, "mel (computed fb) max |diff| {diff}");
}

#[test]
fn encoder_matches_nemo() {
    let r = Reference::load("hello");
    let (enc, valid) =
        model().encoder().forward(&on_device(r.t("mel")).unsqueeze(0).unwrap(), r.usize("mel_len")).unwrap();
    assert_eq!(valid, r.usize("encoder_len"));
    let ours = enc.squeeze(0).unwrap().t().unwrap(); // NeMo: [D, T]
    let diff = max_abs_diff(&ours, r.t("encoder_out"));
    eprintln!("encoder max |diff| {diff}");
    assert!(diff < 1e-4, "encoder max |diff| {diff}");
}

#[test]
fn encoder_honours_xscaling() {
    let r = Reference::load("hello");
    let mut m = ParakeetModel::load(nemo(), &device()).unwrap();
    m.encoder_mut().set_xscaling(true);
    let (enc, _) = m.encoder().forward(&on_device(r.t("mel")).unsqueeze(0).unwrap(), r.usize("mel_len")).unwrap();
    let diff = max_abs_diff(&enc.squeeze(0).unwrap().t().unwrap(), r.t("encoder_out_xscaled"));
    assert!(diff < 1e-4, "xscaled encoder max |diff| {diff}");
}

#[test]
fn greedy_tdt_matches_nemo_on_its_encoder_output() {
    for name in ["hello", "long"] {
        let r = Reference::load(name);
        let enc = on_device(r.t("encoder_out")).t().unwrap().unsqueeze(0).unwrap();
        let d = model().decode(&enc, r.usize("encoder_len")).unwrap();
        let ids: Vec<i64> = d.token_ids.iter().map(|&i| i64::from(i)).collect();
        assert_eq!(ids, r.ids("token_ids"), "{name}");
        let frames: Vec<i64> = d.frames.iter().map(|&i| i as i64).collect();
        assert_eq!(frames, r.ids("token_frames"), "{name}");
    }
}

#[test]
fn transcribe_matches_nemo_end_to_end() {
    for name in ["hello", "long"] {
        let r = Reference::load(name);
        let t = model().transcribe(&read_wav(&format!("{name}.wav"))).unwrap();
        let ids: Vec<i64> = t.token_ids.iter().map(|&i| i64::from(i)).collect();
        assert_eq!(ids, r.ids("token_ids"), "{name}");
        assert_eq!(t.text, r.text(), "{name}");
    }
}

#[test]
fn long_clip_encoder_matches_nemo() {
    let r = Reference::load("long");
    let mel = model().features(&read_wav("long.wav")).unwrap();
    assert_eq!(mel.valid_frames, r.usize("mel_len"));
    let (enc, valid) = model().encode(&mel).unwrap();
    assert_eq!(valid, r.usize("encoder_len"));
    let diff = max_abs_diff(&enc.squeeze(0).unwrap().t().unwrap(), r.t("encoder_out"));
    eprintln!("long encoder max |diff| {diff}");
    assert!(diff < 1e-4, "long encoder max |diff| {diff}");
}

#[test]
fn safetensors_conversion_gives_the_same_transcript() {
    let st = ParakeetModel::load(fixtures().join("tiny_parakeet_tdt_safetensors"), &device()).unwrap();
    let samples = read_wav("hello.wav");
    assert_eq!(st.transcribe(&samples).unwrap(), model().transcribe(&samples).unwrap());
}

/// The subsampling front is local in time, so stitched windows must equal the whole pass exactly on the
/// kept frames: this pins the mel-frame ↔ encoder-frame alignment the chunker relies on.
#[test]
fn chunk_windows_align_with_the_whole_pass() {
    let m = model();
    let mel = m.features(&read_wav("long.wav")).unwrap();
    let full_mel = mel.to_tensor(&device()).unwrap();
    let whole = m.encoder().subsample(&full_mel).unwrap();
    let total = m.encoder().out_len(mel.valid_frames);
    let plans = plan_chunks(total, Chunking { chunk_frames: 40, context_frames: 4 });
    assert!(plans.len() > 3);
    for p in plans {
        let start = p.window.start * 8;
        let end = if p.window.end == total { mel.frames } else { p.window.end * 8 };
        let part = m.encoder().subsample(&full_mel.narrow(2, start, end - start).unwrap()).unwrap();
        let ours = part.narrow(1, p.keep.start - p.window.start, p.keep.len()).unwrap();
        let theirs = whole.narrow(1, p.keep.start, p.keep.len()).unwrap();
        let diff = max_abs_diff(&ours, &theirs);
        assert!(diff < 1e-5, "window {:?}: {diff}", p.window);
    }
}

#[test]
fn chunked_transcription_of_the_long_clip() {
    let samples = read_wav("long.wav");
    let whole = model().transcribe(&samples).unwrap();
    // one window when it fits: identical
    let mut m = ParakeetModel::load(nemo(), &device()).unwrap();
    m.set_chunking(Chunking { chunk_frames: 400, context_frames: 10 });
    assert_eq!(m.transcribe(&samples).unwrap(), whole);
    // four windows: the stitched encoder output covers every frame once
    m.set_chunking(Chunking { chunk_frames: 50, context_frames: 24 });
    let mel = m.features(&samples).unwrap();
    let enc = m.encode_chunked(&mel, Chunking { chunk_frames: 50, context_frames: 24 }).unwrap();
    assert_eq!(enc.dim(1).unwrap(), m.encoder().out_len(mel.valid_frames));
    let chunked = m.transcribe(&samples).unwrap();
    let agree = chunked.token_ids.iter().zip(&whole.token_ids).take_while(|(a, b)| a == b).count();
    eprintln!("chunked: {} tokens, whole: {}, common prefix {agree}", chunked.token_ids.len(), whole.token_ids.len());
    assert!(agree > 0);
}

#[test]
fn hub_finds_a_model_in_a_cache_laid_out_like_huggingface() {
    let cache = tempfile::tempdir().unwrap();
    let repo = cache.path().join("models--nvidia--parakeet-tdt-0.6b-v3");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    let snap = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    let blob = repo.join("blobs/5e3b");
    std::fs::copy(nemo(), &blob).unwrap();
    std::os::unix::fs::symlink("../../blobs/5e3b", snap.join("parakeet-tdt-0.6b-v3.nemo")).unwrap();

    let found = piface_speech::resolve_in(piface_speech::DEFAULT_MODEL, cache.path()).unwrap();
    assert_eq!(found, snap.join("parakeet-tdt-0.6b-v3.nemo"));
    let m = ParakeetModel::load(&found, &device()).unwrap();
    assert_eq!(m.transcribe(&read_wav("hello.wav")).unwrap().text, Reference::load("hello").text());

    // a path is taken as it is; an unknown repo or revision is a clear error
    let resolve_in = piface_speech::resolve_in;
    assert_eq!(resolve_in(nemo().to_str().unwrap(), cache.path()).unwrap(), nemo());
    let err = resolve_in("nvidia/other-model", cache.path()).unwrap_err().to_string();
    assert!(err.contains("hf download nvidia/other-model"), "{err}");
    let err = resolve_in("nvidia/parakeet-tdt-0.6b-v3@v9", cache.path()).unwrap_err().to_string();
    assert!(err.contains("hf download nvidia/parakeet-tdt-0.6b-v3 --revision v9"), "{err}");
    assert!(resolve_in("no-such-file.nemo", cache.path()).is_err());
    // A snapshot with a safetensors conversion (model_config.yaml) is the folder; one with a differently
    // named archive is that archive.
    let other = "fedcba9876543210fedcba9876543210fedcba98";
    let snap = repo.join("snapshots").join(other);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::write(repo.join("refs/conv"), other).unwrap();
    std::fs::write(snap.join("model_config.yaml"), "").unwrap();
    assert_eq!(resolve_in("nvidia/parakeet-tdt-0.6b-v3@conv", cache.path()).unwrap(), snap);
    std::fs::remove_file(snap.join("model_config.yaml")).unwrap();
    std::os::unix::fs::symlink("../../blobs/5e3b", snap.join("b.nemo")).unwrap();
    std::os::unix::fs::symlink("../../blobs/5e3b", snap.join("a.nemo")).unwrap();
    assert_eq!(resolve_in("nvidia/parakeet-tdt-0.6b-v3@conv", cache.path()).unwrap(), snap.join("a.nemo"));
}

#[test]
fn bad_archives_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.nemo");
    std::fs::write(&junk, b"not a tar at all, just some bytes that are long enough to be read").unwrap();
    assert!(ParakeetModel::load(&junk, &device()).is_err());
    assert!(model().transcribe(&[0.0; 100]).is_err(), "too short");
}
