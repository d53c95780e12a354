//! Hyper-parameters of llama-family models, read from `{arch}.*` metadata keys.

use crate::gguf::{Gguf, Value};
use alloc::format;
use alloc::string::{String, ToString};
use core::fmt;

/// Why a model's metadata is unusable.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelError {
    /// `general.architecture` is missing.
    NoArchitecture,
    /// A required key is missing.
    MissingKey(String),
    /// A key has a value of the wrong type or out of range.
    BadValue(String),
    /// The architecture is not one the engine implements.
    UnsupportedArch(String),
    /// A required tensor is missing.
    MissingTensor(String),
    /// A tensor has the wrong shape or an unsupported type.
    BadTensor(String),
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::NoArchitecture => f.write_str("general.architecture is missing"),
            ModelError::MissingKey(k) => write!(f, "metadata key {k} is missing"),
            ModelError::BadValue(k) => write!(f, "metadata key {k} has an unusable value"),
            ModelError::UnsupportedArch(a) => write!(f, "architecture {a} is not supported (llama, qwen2, gemma3 are)"),
            ModelError::MissingTensor(t) => write!(f, "tensor {t} is missing"),
            ModelError::BadTensor(t) => write!(f, "tensor {t} has an unexpected shape or type"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ModelError {}

/// The shape of a llama-family transformer.
#[derive(Debug, Clone, PartialEq)]
pub struct HParams {
    /// `general.architecture` (`llama`, `qwen2`, `gemma3`, …).
    pub arch: String,
    /// Vocabulary size.
    pub n_vocab: u32,
    /// Training context length.
    pub n_ctx_train: u32,
    /// Embedding (residual stream) width.
    pub n_embd: u32,
    /// Number of transformer blocks.
    pub n_layer: u32,
    /// Feed-forward hidden width.
    pub n_ff: u32,
    /// Attention (query) heads.
    pub n_head: u32,
    /// Key/value heads (grouped-query attention when fewer than `n_head`).
    pub n_head_kv: u32,
    /// Width of one key head.
    pub head_dim: u32,
    /// Rotary dimensions.
    pub n_rot: u32,
    /// RoPE base frequency.
    pub rope_freq_base: f32,
    /// RMSNorm epsilon.
    pub rms_eps: f32,
    /// Sliding-window length for local attention layers, if any.
    pub sliding_window: Option<u32>,
    /// RoPE base of sliding-window layers.
    pub rope_freq_base_swa: Option<f32>,
    /// Linear RoPE scaling factor (`rope.scaling.factor` with type `linear`), else 1.
    pub rope_scaling_factor: f32,
    /// Final logit soft-capping, if any.
    pub final_logit_softcapping: Option<f32>,
}

/// A scalar integer, or the largest element of an integer array (llama.cpp allows per-layer
/// arrays for some keys).
fn as_u32(v: Value<'_>) -> Option<u32> {
    match v {
        Value::Array(a) => a.iter().filter_map(|x| x.as_u64()).max().and_then(|x| u32::try_from(x).ok()),
        v => v.as_u64().and_then(|x| u32::try_from(x).ok()),
    }
}

impl HParams {
    /// Reads the hyper-parameters of `g`'s architecture.
    pub fn from_gguf(g: &Gguf<'_>) -> Result<Self, ModelError> {
        let arch = g.architecture().ok_or(ModelError::NoArchitecture)?.to_string();
        let key = |k: &str| format!("{arch}.{k}");
        let opt_u32 = |k: &str| -> Result<Option<u32>, ModelError> {
            match g.get(&key(k)) {
                None => Ok(None),
                Some(v) => as_u32(v).map(Some).ok_or_else(|| ModelError::BadValue(key(k))),
            }
        };
        let req_u32 = |k: &str| opt_u32(k)?.ok_or_else(|| ModelError::MissingKey(key(k)));
        let opt_f32 = |k: &str| -> Result<Option<f32>, ModelError> {
            match g.get(&key(k)) {
                None => Ok(None),
                Some(v) => v.as_f64().map(|x| Some(x as f32)).ok_or_else(|| ModelError::BadValue(key(k))),
            }
        };
        let n_embd = req_u32("embedding_length")?;
        let n_head = req_u32("attention.head_count")?;
        if n_head == 0 || n_embd == 0 {
            return Err(ModelError::BadValue(key("attention.head_count")));
        }
        let n_vocab = match opt_u32("vocab_size")? {
            Some(v) => v,
            None => g
                .get("tokenizer.ggml.tokens")
                .and_then(|v| v.as_array())
                .and_then(|a| u32::try_from(a.len()).ok())
                .ok_or_else(|| ModelError::MissingKey("tokenizer.ggml.tokens".to_string()))?,
        };
        let head_dim = opt_u32("attention.key_length")?.unwrap_or(n_embd / n_head);
        Ok(HParams {
            n_vocab,
            n_ctx_train: req_u32("context_length")?,
            n_embd,
            n_layer: req_u32("block_count")?,
            n_ff: req_u32("feed_forward_length")?,
            n_head,
            n_head_kv: opt_u32("attention.head_count_kv")?.unwrap_or(n_head),
            head_dim,
            n_rot: opt_u32("rope.dimension_count")?.unwrap_or(head_dim),
            rope_freq_base: opt_f32("rope.freq_base")?.unwrap_or(10_000.0),
            rms_eps: opt_f32("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-5),
            sliding_window: opt_u32("attention.sliding_window")?.filter(|&w| w > 0),
            rope_freq_base_swa: opt_f32("rope.freq_base_swa")?,
            rope_scaling_factor: match g.get_str(&key("rope.scaling.type")) {
                Some("linear") => opt_f32("rope.scaling.factor")?.filter(|f| *f > 0.0).unwrap_or(1.0),
                _ => 1.0,
            },
            final_logit_softcapping: opt_f32("final_logit_softcapping")?.filter(|c| *c > 0.0),
            arch,
        })
    }
}
