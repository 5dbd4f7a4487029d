//! Where the Gaussian noise of a synthesis comes from. VITS draws twice: `[2, tokens]` for the stochastic
//! duration predictor (not drawn by a plain predictor), then `[flow_size, frames]` for the prior. A
//! [`NoiseSource`] is asked for exactly those, in that order, whatever the noise scales (a scale of 0 still
//! draws, as transformers does, so that a seed gives the same prior noise at any duration scale).
//!
//! [`SeededNoise`] generates it on the CPU with ChaCha8 and the Ziggurat normal sampler of `rand_distr`: a seed
//! gives the same noise on every platform and device, hence the same audio up to floating-point rounding.
//! PyTorch's generator cannot be reproduced, so parity tests replay recorded tensors with [`RecordedNoise`].

use std::collections::VecDeque;

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::error::{Result, TtsError};

/// A supplier of standard normal noise.
pub trait NoiseSource {
    /// A `[rows, cols]` tensor of independent standard normal samples (on any device).
    fn sample(&mut self, rows: usize, cols: usize) -> Result<Tensor>;
}

/// Noise from a seeded ChaCha8 generator.
#[derive(Debug, Clone)]
pub struct SeededNoise {
    rng: ChaCha8Rng,
}

impl SeededNoise {
    pub fn new(seed: u64) -> Self {
        Self { rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// Seeded from the operating system's entropy (a different voice every call), or from the clock if that
    /// is unavailable.
    pub fn from_entropy() -> Self {
        let rng = ChaCha8Rng::try_from_os_rng().unwrap_or_else(|_| {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            ChaCha8Rng::seed_from_u64(nanos as u64 ^ u64::from(std::process::id()))
        });
        Self { rng }
    }
}

impl NoiseSource for SeededNoise {
    fn sample(&mut self, rows: usize, cols: usize) -> Result<Tensor> {
        let data: Vec<f32> = (0..rows * cols).map(|_| self.rng.sample(StandardNormal)).collect();
        Ok(Tensor::from_vec(data, (rows, cols), &Device::Cpu)?)
    }
}

/// Noise given in advance (recorded from another implementation), handed out in order; each tensor must have
/// the shape asked for.
#[derive(Debug, Clone, Default)]
pub struct RecordedNoise {
    tensors: VecDeque<Tensor>,
}

impl RecordedNoise {
    pub fn new(tensors: impl IntoIterator<Item = Tensor>) -> Self {
        Self { tensors: tensors.into_iter().collect() }
    }
}

impl NoiseSource for RecordedNoise {
    fn sample(&mut self, rows: usize, cols: usize) -> Result<Tensor> {
        let t = self
            .tensors
            .pop_front()
            .ok_or_else(|| TtsError::Input(format!("recorded noise exhausted (asked for [{rows}, {cols}])")))?;
        if t.dims() != [rows, cols] {
            return Err(TtsError::Input(format!("recorded noise has shape {:?}, expected [{rows}, {cols}]", t.dims())));
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_noise_and_roughly_standard_normal() {
        let a = SeededNoise::new(7).sample(4, 1000).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = SeededNoise::new(7).sample(4, 1000).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a, b);
        let mean = a.iter().sum::<f32>() / a.len() as f32;
        let var = a.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / a.len() as f32;
        assert!(mean.abs() < 0.05 && (var - 1.0).abs() < 0.1, "mean {mean} var {var}");
        let c = SeededNoise::new(8).sample(4, 1000).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn recorded_noise_checks_shape_and_count() {
        let t = Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let mut r = RecordedNoise::new([t]);
        assert!(r.sample(3, 2).is_err());
        let mut r = RecordedNoise::new([Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap()]);
        assert!(r.sample(2, 3).is_ok());
        assert!(r.sample(2, 3).is_err());
    }
}
