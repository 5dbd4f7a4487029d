//! NeMo's audio front end (`AudioToMelSpectrogramPreprocessor` / `FilterbankFeatures`) at inference:
//! pre-emphasis, centred STFT with zero padding, power spectrum, mel filterbank, `log(x + guard)`,
//! per-feature normalisation over the valid frames, and `pad_value` past them.
//!
//! Computed on the CPU in f64 and returned as f32: it is a small share of the work and keeps the features
//! within float rounding of PyTorch's.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use crate::config::PreprocessorConfig;
use crate::error::{Result, SpeechError};

/// Log-mel features `[n_mels, frames]`, row-major; frames at and past `valid_frames` hold the pad value.
#[derive(Debug, Clone)]
pub struct Mel {
    pub data: Vec<f32>,
    pub n_mels: usize,
    pub frames: usize,
    pub valid_frames: usize,
}

impl Mel {
    /// `[1, n_mels, frames]`, the encoder's input layout.
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_slice(&self.data, (1, self.n_mels, self.frames), device)?)
    }
}

pub struct MelFrontend {
    n_fft: usize,
    hop: usize,
    preemph: Option<f64>,
    /// The analysis window zero-padded and centred to `n_fft`.
    window: Vec<f64>,
    /// Each filter as (first bin, weights), zeros trimmed.
    filters: Vec<(usize, Vec<f64>)>,
    mag_power: f64,
    guard: f64,
    pad_value: f32,
    fft: Arc<dyn Fft<f64>>,
}

impl MelFrontend {
    /// `window` (`win_length` values) and `fb` (`[n_mels, n_fft/2+1]`) are the checkpoint's
    /// `preprocessor.featurizer.window` / `.fb` when present; otherwise they are computed as NeMo does
    /// (symmetric Hann, librosa's Slaney mel filterbank).
    pub fn new(cfg: &PreprocessorConfig, window: Option<Vec<f32>>, fb: Option<Vec<f32>>) -> Result<Self> {
        let n_fft = cfg.n_fft();
        let win_length = cfg.win_length();
        let n_bins = n_fft / 2 + 1;
        if win_length > n_fft || cfg.hop_length() == 0 {
            return Err(SpeechError::Config(format!("window {win_length} / hop {} / n_fft {n_fft}", cfg.hop_length())));
        }
        let window: Vec<f64> = match window {
            Some(w) if w.len() == win_length => w.into_iter().map(f64::from).collect(),
            Some(w) => {
                return Err(SpeechError::Config(format!("stored window has {} values, not {win_length}", w.len())))
            }
            None => window_fn(&cfg.window, win_length)?,
        };
        let mut padded = vec![0.0; n_fft];
        let left = (n_fft - win_length) / 2;
        padded[left..left + win_length].copy_from_slice(&window);
        let fb: Vec<f64> = match fb {
            Some(fb) if fb.len() == cfg.features * n_bins => fb.into_iter().map(f64::from).collect(),
            Some(fb) => return Err(SpeechError::Config(format!("stored filterbank has {} values", fb.len()))),
            None => {
                if cfg.mel_norm.as_deref().is_some_and(|n| n != "slaney") {
                    return Err(SpeechError::Unsupported(format!("mel_norm {:?}", cfg.mel_norm)));
                }
                let fmax = cfg.highfreq.unwrap_or(cfg.sample_rate as f64 / 2.0);
                slaney_filterbank(cfg.sample_rate as f64, n_fft, cfg.features, cfg.lowfreq, fmax)
            }
        };
        let filters = fb
            .chunks(n_bins)
            .map(|row| {
                let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = row.iter().rposition(|&w| w != 0.0).map_or(first, |l| l + 1);
                (first, row[first..last].to_vec())
            })
            .collect();
        Ok(Self {
            n_fft,
            hop: cfg.hop_length(),
            preemph: cfg.preemph,
            window: padded,
            filters,
            mag_power: cfg.mag_power,
            guard: cfg.log_zero_guard_value,
            pad_value: cfg.pad_value as f32,
            fft: FftPlanner::new().plan_fft_forward(n_fft),
        })
    }

    pub fn n_mels(&self) -> usize {
        self.filters.len()
    }

    /// Frames NeMo counts as valid for `samples` samples (`get_seq_len`); one fewer than the STFT yields.
    pub fn valid_frames(&self, samples: usize) -> usize {
        samples / self.hop
    }

    /// Features of one 16 kHz mono clip (float samples in [-1, 1]).
    pub fn compute(&self, samples: &[f32]) -> Result<Mel> {
        let valid = self.valid_frames(samples.len());
        if valid < 2 {
            return Err(SpeechError::Audio(format!("{} samples is too short", samples.len())));
        }
        let x: Vec<f64> = match self.preemph {
            Some(a) => std::iter::once(f64::from(samples[0]))
                .chain(samples.windows(2).map(|w| f64::from(w[1]) - a * f64::from(w[0])))
                .collect(),
            None => samples.iter().map(|&s| f64::from(s)).collect(),
        };
        let frames = samples.len() / self.hop + 1;
        let n_mels = self.n_mels();
        let half = (self.n_fft / 2) as isize;
        let mut out = vec![0f64; n_mels * frames];
        let mut buf = vec![Complex::new(0.0, 0.0); self.n_fft];
        let mut scratch = vec![Complex::new(0.0, 0.0); self.fft.get_inplace_scratch_len()];
        let mut power = vec![0f64; self.n_fft / 2 + 1];
        for f in 0..frames {
            let start = (f * self.hop) as isize - half;
            for (j, c) in buf.iter_mut().enumerate() {
                let i = start + j as isize;
                let s = if i >= 0 && (i as usize) < x.len() { x[i as usize] } else { 0.0 };
                *c = Complex::new(s * self.window[j], 0.0);
            }
            self.fft.process_with_scratch(&mut buf, &mut scratch);
            for (p, c) in power.iter_mut().zip(&buf) {
                *p = c.norm().powf(self.mag_power);
            }
            for (m, (first, w)) in self.filters.iter().enumerate() {
                let e: f64 = w.iter().zip(&power[*first..]).map(|(a, b)| a * b).sum();
                out[m * frames + f] = (e + self.guard).ln();
            }
        }
        let mut data = vec![self.pad_value; n_mels * frames];
        for m in 0..n_mels {
            let row = &out[m * frames..m * frames + valid];
            let mean = row.iter().sum::<f64>() / valid as f64;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (valid - 1) as f64;
            let std = var.sqrt() + 1e-5;
            for (d, v) in data[m * frames..m * frames + valid].iter_mut().zip(row) {
                *d = ((v - mean) / std) as f32;
            }
        }
        Ok(Mel { data, n_mels, frames, valid_frames: valid })
    }
}

fn window_fn(kind: &str, n: usize) -> Result<Vec<f64>> {
    // torch's *_window(periodic=False): symmetric
    let d = (n - 1).max(1) as f64;
    let w = |i: usize| 2.0 * std::f64::consts::PI * i as f64 / d;
    Ok(match kind {
        "hann" => (0..n).map(|i| 0.5 - 0.5 * w(i).cos()).collect(),
        "hamming" => (0..n).map(|i| 0.54 - 0.46 * w(i).cos()).collect(),
        "ones" | "none" => vec![1.0; n],
        other => return Err(SpeechError::Unsupported(format!("window {other}"))),
    })
}

fn hz_to_mel(f: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let logstep = 6.4f64.ln() / 27.0;
    if f >= 1000.0 {
        1000.0 / f_sp + (f / 1000.0).ln() / logstep
    } else {
        f / f_sp
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let logstep = 6.4f64.ln() / 27.0;
    let min_log_mel = 1000.0 / f_sp;
    if m >= min_log_mel {
        1000.0 * (logstep * (m - min_log_mel)).exp()
    } else {
        m * f_sp
    }
}

/// librosa's `filters.mel(norm="slaney", htk=False)`: `[n_mels, n_fft/2+1]`, row-major.
pub fn slaney_filterbank(sr: f64, n_fft: usize, n_mels: usize, fmin: f64, fmax: f64) -> Vec<f64> {
    let n_bins = n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..n_bins).map(|i| i as f64 * sr / n_fft as f64).collect();
    let (lo, hi) = (hz_to_mel(fmin), hz_to_mel(fmax));
    let mel_f: Vec<f64> = (0..n_mels + 2).map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64)).collect();
    let mut fb = vec![0.0; n_mels * n_bins];
    for m in 0..n_mels {
        let (l, c, r) = (mel_f[m], mel_f[m + 1], mel_f[m + 2]);
        let enorm = 2.0 / (r - l);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - l) / (c - l);
            let upper = (r - f) / (r - c);
            fb[m * n_bins + k] = lower.min(upper).max(0.0) * enorm;
        }
    }
    fb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slaney_scale_round_trips() {
        for f in [0.0, 440.0, 999.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(f)) - f).abs() < 1e-9, "{f}");
        }
    }

    #[test]
    fn symmetric_hann() {
        let w = window_fn("hann", 5).unwrap();
        let expect = [0.0, 0.5, 1.0, 0.5, 0.0];
        assert!(w.iter().zip(expect).all(|(a, b)| (a - b).abs() < 1e-12), "{w:?}");
    }
}
