//! `config.json` of a Hugging Face `VitsModel`: the keys inference reads, with transformers' defaults for absent
//! ones (training-only keys such as dropouts are ignored). [`VitsConfig::validate`] refuses what this crate does
//! not implement.

use std::path::Path;

use serde::Deserialize;

use crate::error::{io_err, Result, TtsError};

/// The architecture of a VITS checkpoint, as transformers' `VitsConfig` names it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct VitsConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Relative-position window of the text encoder's attention; `None` means plain attention.
    pub window_size: Option<usize>,
    pub use_bias: bool,
    pub ffn_dim: usize,
    pub ffn_kernel_size: usize,
    pub flow_size: usize,
    pub spectrogram_bins: usize,
    pub hidden_act: String,
    pub layer_norm_eps: f64,
    pub use_stochastic_duration_prediction: bool,
    pub num_speakers: usize,
    pub speaker_embedding_size: usize,
    pub upsample_initial_channel: usize,
    pub upsample_rates: Vec<usize>,
    pub upsample_kernel_sizes: Vec<usize>,
    pub resblock_kernel_sizes: Vec<usize>,
    pub resblock_dilation_sizes: Vec<Vec<usize>>,
    pub leaky_relu_slope: f64,
    pub depth_separable_channels: usize,
    pub depth_separable_num_layers: usize,
    pub duration_predictor_flow_bins: usize,
    pub duration_predictor_tail_bound: f64,
    pub duration_predictor_kernel_size: usize,
    pub duration_predictor_num_flows: usize,
    pub duration_predictor_filter_channels: usize,
    pub prior_encoder_num_flows: usize,
    pub prior_encoder_num_wavenet_layers: usize,
    pub wavenet_kernel_size: usize,
    pub wavenet_dilation_rate: usize,
    /// Default speaking rate (larger is faster).
    pub speaking_rate: f64,
    /// Default scale of the prior noise.
    pub noise_scale: f64,
    /// Default scale of the stochastic duration predictor's noise.
    pub noise_scale_duration: f64,
    pub sampling_rate: u32,
}

impl Default for VitsConfig {
    /// transformers' defaults (those of `facebook/mms-tts-eng`).
    fn default() -> Self {
        Self {
            vocab_size: 38,
            hidden_size: 192,
            num_hidden_layers: 6,
            num_attention_heads: 2,
            window_size: Some(4),
            use_bias: true,
            ffn_dim: 768,
            ffn_kernel_size: 3,
            flow_size: 192,
            spectrogram_bins: 513,
            hidden_act: "relu".into(),
            layer_norm_eps: 1e-5,
            use_stochastic_duration_prediction: true,
            num_speakers: 1,
            speaker_embedding_size: 0,
            upsample_initial_channel: 512,
            upsample_rates: vec![8, 8, 2, 2],
            upsample_kernel_sizes: vec![16, 16, 4, 4],
            resblock_kernel_sizes: vec![3, 7, 11],
            resblock_dilation_sizes: vec![vec![1, 3, 5], vec![1, 3, 5], vec![1, 3, 5]],
            leaky_relu_slope: 0.1,
            depth_separable_channels: 2,
            depth_separable_num_layers: 3,
            duration_predictor_flow_bins: 10,
            duration_predictor_tail_bound: 5.0,
            duration_predictor_kernel_size: 3,
            duration_predictor_num_flows: 4,
            duration_predictor_filter_channels: 256,
            prior_encoder_num_flows: 4,
            prior_encoder_num_wavenet_layers: 4,
            wavenet_kernel_size: 5,
            wavenet_dilation_rate: 1,
            speaking_rate: 1.0,
            noise_scale: 0.667,
            noise_scale_duration: 0.8,
            sampling_rate: 16_000,
        }
    }
}

impl VitsConfig {
    /// Reads and validates `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        let config: Self = serde_json::from_str(&text)
            .map_err(|e| TtsError::Config { path: path.to_owned(), reason: e.to_string() })?;
        config.validate().map_err(|reason| match reason {
            TtsError::Unsupported(reason) => TtsError::Unsupported(format!("{}: {reason}", path.display())),
            other => other,
        })?;
        Ok(config)
    }

    /// Audio samples per spectrogram frame (the product of the HiFi-GAN upsampling rates).
    pub fn hop_length(&self) -> usize {
        self.upsample_rates.iter().product()
    }

    /// Refuses configurations this implementation does not cover, or that transformers could not run either.
    pub fn validate(&self) -> Result<()> {
        let unsupported = |why: String| Err(TtsError::Unsupported(why));
        if self.num_speakers > 1 || self.speaker_embedding_size != 0 {
            return unsupported(format!(
                "multi-speaker VITS (num_speakers {}, speaker_embedding_size {})",
                self.num_speakers, self.speaker_embedding_size
            ));
        }
        if !matches!(self.hidden_act.as_str(), "relu" | "gelu" | "gelu_new" | "gelu_pytorch_tanh" | "silu" | "swish") {
            return unsupported(format!("hidden_act {:?}", self.hidden_act));
        }
        if self.hidden_size == 0 || self.num_attention_heads == 0 || self.hidden_size % self.num_attention_heads != 0 {
            return unsupported(format!(
                "hidden_size {} not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.flow_size == 0 || self.flow_size % 2 != 0 {
            return unsupported(format!("odd flow_size {}", self.flow_size));
        }
        if self.use_stochastic_duration_prediction && self.depth_separable_channels != 2 {
            return unsupported(format!("depth_separable_channels {} (VITS uses 2)", self.depth_separable_channels));
        }
        // the spline's minimum bin width and height (1e-3) must fit the bins
        if self.duration_predictor_flow_bins == 0 || self.duration_predictor_flow_bins > 1000 {
            return unsupported(format!("duration_predictor_flow_bins {}", self.duration_predictor_flow_bins));
        }
        if self.upsample_rates.is_empty()
            || self.upsample_rates.len() != self.upsample_kernel_sizes.len()
            || self.upsample_rates.contains(&0)
        {
            return unsupported(format!(
                "upsample_rates {:?} / upsample_kernel_sizes {:?}",
                self.upsample_rates, self.upsample_kernel_sizes
            ));
        }
        let stages = self.upsample_rates.len() as u32;
        if 1usize.checked_shl(stages).is_none_or(|d| self.upsample_initial_channel % d != 0) {
            return unsupported(format!(
                "upsample_initial_channel {} not divisible by 2^{stages}",
                self.upsample_initial_channel
            ));
        }
        if self.resblock_kernel_sizes.is_empty()
            || self.resblock_kernel_sizes.len() != self.resblock_dilation_sizes.len()
        {
            return unsupported(format!(
                "resblock_kernel_sizes {:?} / resblock_dilation_sizes {:?}",
                self.resblock_kernel_sizes, self.resblock_dilation_sizes
            ));
        }
        // Even kernels change the length of a "same" convolution; transformers fails on them as well.
        let odd = |name: &str, k: usize| {
            if k % 2 == 1 {
                Ok(())
            } else {
                Err(TtsError::Unsupported(format!("even {name} {k}")))
            }
        };
        odd("wavenet_kernel_size", self.wavenet_kernel_size)?;
        odd("duration_predictor_kernel_size", self.duration_predictor_kernel_size)?;
        for &k in &self.resblock_kernel_sizes {
            odd("resblock kernel size", k)?;
        }
        if self.ffn_kernel_size == 0 || self.wavenet_dilation_rate == 0 {
            return unsupported("ffn_kernel_size or wavenet_dilation_rate 0".into());
        }
        let dilation_fits = |base: usize, layers: usize| base.checked_pow(layers as u32).is_some_and(|d| d < 1 << 20);
        if !dilation_fits(self.wavenet_dilation_rate, self.prior_encoder_num_wavenet_layers)
            || !dilation_fits(self.duration_predictor_kernel_size, self.depth_separable_num_layers)
        {
            return unsupported("dilations beyond 2^20".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_keys_take_transformers_defaults_and_null_window_is_none() {
        let c: VitsConfig = serde_json::from_str(r#"{"vocab_size": 10, "window_size": null, "extra": 1}"#).unwrap();
        assert_eq!(c.vocab_size, 10);
        assert_eq!(c.window_size, None);
        assert_eq!(c.hidden_size, 192);
        assert_eq!(c.hop_length(), 256);
        c.validate().unwrap();
    }

    #[test]
    fn multi_speaker_and_odd_flow_are_refused() {
        let c = VitsConfig { num_speakers: 109, speaker_embedding_size: 256, ..Default::default() };
        assert!(matches!(c.validate(), Err(TtsError::Unsupported(_))));
        let c = VitsConfig { flow_size: 7, ..Default::default() };
        assert!(matches!(c.validate(), Err(TtsError::Unsupported(_))));
        let c = VitsConfig { upsample_initial_channel: 100, ..Default::default() };
        assert!(matches!(c.validate(), Err(TtsError::Unsupported(_))));
    }
}
