//! The subset of NeMo's `model_config.yaml` that inference needs, with NeMo's defaults where a key may be
//! absent. Values the implementation does not support are refused by [`ModelConfig::validate`].

use serde::Deserialize;

use crate::error::{Result, SpeechError};

#[derive(Debug, Clone, Deserialize)]
pub struct ModelConfig {
    #[serde(default = "default_sample_rate")]
    pub sample_rate: usize,
    pub preprocessor: PreprocessorConfig,
    pub encoder: EncoderConfig,
    pub decoder: DecoderConfig,
    pub joint: JointConfig,
    #[serde(default)]
    pub decoding: DecodingConfig,
    #[serde(default)]
    pub tokenizer: TokenizerConfig,
}

fn default_sample_rate() -> usize {
    16_000
}

/// `AudioToMelSpectrogramPreprocessor` (NeMo's defaults for absent keys).
#[derive(Debug, Clone, Deserialize)]
pub struct PreprocessorConfig {
    #[serde(default = "default_sample_rate")]
    pub sample_rate: usize,
    #[serde(default = "default_normalize")]
    pub normalize: Option<String>,
    #[serde(default = "default_window_size")]
    pub window_size: f64,
    #[serde(default = "default_window_stride")]
    pub window_stride: f64,
    #[serde(default = "default_window")]
    pub window: String,
    #[serde(default = "default_features")]
    pub features: usize,
    pub n_fft: Option<usize>,
    #[serde(default = "default_preemph")]
    pub preemph: Option<f64>,
    #[serde(default = "default_true")]
    pub log: bool,
    #[serde(default = "default_guard_type")]
    pub log_zero_guard_type: String,
    #[serde(default = "default_guard_value")]
    pub log_zero_guard_value: f64,
    #[serde(default = "default_mag_power")]
    pub mag_power: f64,
    #[serde(default = "default_one")]
    pub frame_splicing: usize,
    #[serde(default)]
    pub pad_to: usize,
    #[serde(default)]
    pub pad_value: f64,
    #[serde(default)]
    pub lowfreq: f64,
    pub highfreq: Option<f64>,
    #[serde(default)]
    pub exact_pad: bool,
    #[serde(default = "default_mel_norm")]
    pub mel_norm: Option<String>,
}

fn default_normalize() -> Option<String> {
    Some("per_feature".into())
}
fn default_window_size() -> f64 {
    0.02
}
fn default_window_stride() -> f64 {
    0.01
}
fn default_window() -> String {
    "hann".into()
}
fn default_features() -> usize {
    64
}
fn default_preemph() -> Option<f64> {
    Some(0.97)
}
fn default_true() -> bool {
    true
}
fn default_guard_type() -> String {
    "add".into()
}
fn default_guard_value() -> f64 {
    2f64.powi(-24)
}
fn default_mag_power() -> f64 {
    2.0
}
fn default_one() -> usize {
    1
}
fn default_mel_norm() -> Option<String> {
    Some("slaney".into())
}

impl PreprocessorConfig {
    pub fn win_length(&self) -> usize {
        (self.window_size * self.sample_rate as f64).round() as usize
    }
    pub fn hop_length(&self) -> usize {
        (self.window_stride * self.sample_rate as f64).round() as usize
    }
    pub fn n_fft(&self) -> usize {
        self.n_fft.unwrap_or_else(|| self.win_length().next_power_of_two())
    }
}

/// `ConformerEncoder`.
#[derive(Debug, Clone, Deserialize)]
pub struct EncoderConfig {
    pub feat_in: usize,
    pub n_layers: usize,
    pub d_model: usize,
    #[serde(default = "default_true")]
    pub use_bias: bool,
    #[serde(default = "default_subsampling")]
    pub subsampling: String,
    #[serde(default = "default_subsampling_factor")]
    pub subsampling_factor: usize,
    #[serde(default = "default_neg_one")]
    pub subsampling_conv_channels: i64,
    #[serde(default)]
    pub causal_downsampling: bool,
    #[serde(default = "default_ff_expansion")]
    pub ff_expansion_factor: usize,
    #[serde(default = "default_attention")]
    pub self_attention_model: String,
    #[serde(default = "default_heads")]
    pub n_heads: usize,
    #[serde(default = "default_true")]
    pub xscaling: bool,
    #[serde(default = "default_true")]
    pub untie_biases: bool,
    #[serde(default = "default_kernel")]
    pub conv_kernel_size: usize,
    #[serde(default = "default_conv_norm")]
    pub conv_norm_type: String,
}

fn default_subsampling() -> String {
    "striding".into()
}
fn default_subsampling_factor() -> usize {
    4
}
fn default_neg_one() -> i64 {
    -1
}
fn default_ff_expansion() -> usize {
    4
}
fn default_attention() -> String {
    "rel_pos".into()
}
fn default_heads() -> usize {
    4
}
fn default_kernel() -> usize {
    31
}
fn default_conv_norm() -> String {
    "batch_norm".into()
}

impl EncoderConfig {
    pub fn conv_channels(&self) -> usize {
        if self.subsampling_conv_channels > 0 {
            self.subsampling_conv_channels as usize
        } else {
            self.d_model
        }
    }
}

/// `RNNTDecoder` (the prediction network).
#[derive(Debug, Clone, Deserialize)]
pub struct DecoderConfig {
    pub vocab_size: usize,
    pub prednet: PrednetConfig,
    #[serde(default = "default_true")]
    pub blank_as_pad: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PrednetConfig {
    pub pred_hidden: usize,
    #[serde(default = "default_one")]
    pub pred_rnn_layers: usize,
}

/// `RNNTJoint`.
#[derive(Debug, Clone, Deserialize)]
pub struct JointConfig {
    pub num_classes: usize,
    pub jointnet: JointnetConfig,
    #[serde(default)]
    pub num_extra_outputs: usize,
    /// The token pieces in id order; NeMo writes them on save (a fallback for detokenisation).
    #[serde(default)]
    pub vocabulary: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JointnetConfig {
    pub joint_hidden: usize,
    #[serde(default = "default_activation")]
    pub activation: String,
}

fn default_activation() -> String {
    "relu".into()
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct DecodingConfig {
    pub model_type: Option<String>,
    #[serde(default)]
    pub durations: Vec<usize>,
    #[serde(default)]
    pub greedy: GreedyConfig,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GreedyConfig {
    #[serde(default = "default_max_symbols")]
    pub max_symbols: Option<usize>,
}

impl Default for GreedyConfig {
    fn default() -> Self {
        Self { max_symbols: default_max_symbols() }
    }
}

fn default_max_symbols() -> Option<usize> {
    Some(10)
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct TokenizerConfig {
    /// `nemo:<hex>_tokenizer.model` inside an archive, or a path relative to the model folder.
    pub model_path: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

impl ModelConfig {
    pub fn from_yaml(text: &str) -> Result<Self> {
        let cfg: ModelConfig = serde_norway::from_str(text).map_err(|e| SpeechError::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The TDT durations (`decoding.durations`, else `model_defaults`' list NeMo copies there).
    pub fn durations(&self) -> &[usize] {
        &self.decoding.durations
    }

    /// Refuses what this implementation does not compute, so a model never decodes silently wrong.
    pub fn validate(&self) -> Result<()> {
        let unsupported = |what: String| Err(SpeechError::Unsupported(what));
        let p = &self.preprocessor;
        if p.normalize.as_deref() != Some("per_feature") {
            return unsupported(format!("preprocessor.normalize {:?} (only per_feature)", p.normalize));
        }
        if p.frame_splicing != 1 || p.pad_to != 0 || p.exact_pad {
            return unsupported("preprocessor frame_splicing/pad_to/exact_pad".into());
        }
        if !p.log || p.log_zero_guard_type != "add" {
            return unsupported("preprocessor without log or with a clamp guard".into());
        }
        let e = &self.encoder;
        if e.subsampling != "dw_striding" || !e.subsampling_factor.is_power_of_two() || e.subsampling_factor < 2 {
            return unsupported(format!("encoder.subsampling {} x{}", e.subsampling, e.subsampling_factor));
        }
        if e.causal_downsampling {
            return unsupported("encoder.causal_downsampling".into());
        }
        if e.self_attention_model != "rel_pos" {
            return unsupported(format!("encoder.self_attention_model {}", e.self_attention_model));
        }
        if e.conv_norm_type != "batch_norm" {
            return unsupported(format!("encoder.conv_norm_type {}", e.conv_norm_type));
        }
        if !e.d_model.is_multiple_of(e.n_heads) || !e.feat_in.is_multiple_of(e.subsampling_factor) {
            return Err(SpeechError::Config("d_model/n_heads or feat_in/subsampling_factor".into()));
        }
        if self.joint.jointnet.activation != "relu" {
            return unsupported(format!("joint activation {}", self.joint.jointnet.activation));
        }
        if self.decoding.model_type.as_deref().is_some_and(|t| t != "tdt") || self.durations().is_empty() {
            return unsupported("decoding is not TDT with durations".into());
        }
        if self.joint.num_extra_outputs != self.durations().len() {
            return Err(SpeechError::Config("joint.num_extra_outputs != len(decoding.durations)".into()));
        }
        if !self.decoder.blank_as_pad {
            return unsupported("decoder.blank_as_pad false".into());
        }
        Ok(())
    }
}
