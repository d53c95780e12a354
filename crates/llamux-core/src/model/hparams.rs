//! Hyper-parameters of llama-family models, read from `{arch}.*` metadata keys.

use crate::gguf::{Gguf, Value};
use alloc::format;
use alloc::string::{String, ToString};
use core::fmt::{self, Write};

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
    /// The model uses a feature the engine does not implement (mixture of experts, per-layer
    /// head counts, a RoPE scaling type other than linear, value heads wider than key heads).
    Unsupported(String),
    /// Memory for the model's buffers ran out.
    OutOfMemory,
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
            ModelError::Unsupported(what) => write!(f, "{what} is not supported"),
            ModelError::OutOfMemory => f.write_str("out of memory while loading the model"),
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
    /// Vocabulary size: the length of `tokenizer.ggml.tokens` (`{arch}.vocab_size` is read only
    /// without a token list, as llama.cpp does).
    pub n_vocab: u32,
    /// Training context length (0 when the file does not say).
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

/// A metadata key or tensor name (`{arch}.{key}`, `blk.{il}.{suffix}`) formatted on the stack:
/// reading a model allocates only what it keeps.
pub(super) struct Name {
    buf: [u8; 64],
    len: usize,
}

impl Name {
    pub(super) fn new(args: fmt::Arguments<'_>) -> Self {
        let mut n = Name { buf: [0; 64], len: 0 };
        // Tensor names are at most `blk.1023.post_attention_norm.weight`, keys at most
        // `{arch}.attention.layer_norm_rms_epsilon` with an architecture of at most
        // MAX_ARCH_LEN bytes: they always fit.
        let _ = n.write_fmt(args);
        n
    }

    pub(super) fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

impl Write for Name {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).filter(|&e| e <= self.buf.len()).ok_or(fmt::Error)?;
        self.buf.get_mut(self.len..end).ok_or(fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Longest architecture name read (real ones are a few bytes).
const MAX_ARCH_LEN: usize = 48;

/// Why an integer key's value cannot be used.
enum IntError {
    /// Not an integer, negative, or too large.
    Bad,
    /// A per-layer array whose elements differ.
    PerLayer,
}

/// A scalar integer, or an integer array whose elements are all equal (llama.cpp allows
/// per-layer arrays for some keys; layers that differ are not supported).
fn as_u32(v: Value<'_>) -> Result<u32, IntError> {
    let one = |v: Value<'_>| v.as_u64().and_then(|x| u32::try_from(x).ok()).ok_or(IntError::Bad);
    match v {
        Value::Array(a) => {
            let mut it = a.iter();
            let first = one(it.next().ok_or(IntError::Bad)?)?;
            for x in it {
                if one(x)? != first {
                    return Err(IntError::PerLayer);
                }
            }
            Ok(first)
        }
        v => one(v),
    }
}

/// RoPE scaling types (`rope.scaling.type`) the forward pass implements.
const ROPE_SCALING_TYPES: &[&str] = &["none", "linear"];

impl HParams {
    /// Reads the hyper-parameters of `g`'s architecture, each checked on its own (types,
    /// ranges, finite floats); relations between them and the tensors are checked by
    /// [`Model::load`](super::Model::load).
    pub fn from_gguf(g: &Gguf<'_>) -> Result<Self, ModelError> {
        let name = g.architecture().ok_or(ModelError::NoArchitecture)?;
        if name.len() > MAX_ARCH_LEN {
            return Err(ModelError::UnsupportedArch(name.to_string()));
        }
        let mut arch = String::new();
        arch.try_reserve_exact(name.len()).map_err(|_| ModelError::OutOfMemory)?;
        arch.push_str(name);
        // The key's name, formatted on the stack; `format!` only for errors.
        let at = |k: &str| Name::new(format_args!("{name}.{k}"));
        let key = |k: &str| format!("{name}.{k}");
        let opt_u32 = |k: &str| -> Result<Option<u32>, ModelError> {
            match g.get(at(k).as_str()) {
                None => Ok(None),
                Some(v) => match as_u32(v) {
                    Ok(x) => Ok(Some(x)),
                    Err(IntError::Bad) => Err(ModelError::BadValue(key(k))),
                    Err(IntError::PerLayer) => Err(ModelError::Unsupported(format!("per-layer values of {}", key(k)))),
                },
            }
        };
        let req_u32 = |k: &str| opt_u32(k)?.ok_or_else(|| ModelError::MissingKey(key(k)));
        // A positive integer.
        let positive = |k: &str, v: u32| if v == 0 { Err(ModelError::BadValue(key(k))) } else { Ok(v) };
        // A float that must be finite and in range when present.
        let opt_f32 = |k: &str, ok: fn(f32) -> bool| -> Result<Option<f32>, ModelError> {
            match g.get(at(k).as_str()) {
                None => Ok(None),
                Some(v) => match v.as_f64().map(|x| x as f32) {
                    Some(x) if x.is_finite() && ok(x) => Ok(Some(x)),
                    _ => Err(ModelError::BadValue(key(k))),
                },
            }
        };
        let n_embd = positive("embedding_length", req_u32("embedding_length")?)?;
        let n_head = positive("attention.head_count", req_u32("attention.head_count")?)?;
        // The token list's length, as llama.cpp takes it (`vocab_size` only without a list).
        let n_vocab = match g.get("tokenizer.ggml.tokens").and_then(|v| v.as_array()) {
            Some(a) => u32::try_from(a.len()).map_err(|_| ModelError::BadValue("tokenizer.ggml.tokens".to_string()))?,
            None => {
                opt_u32("vocab_size")?.ok_or_else(|| ModelError::MissingKey("tokenizer.ggml.tokens".to_string()))?
            }
        };
        let head_dim = opt_u32("attention.key_length")?.unwrap_or(n_embd / n_head);
        if opt_u32("attention.value_length")?.is_some_and(|v| v != head_dim) {
            return Err(ModelError::Unsupported(format!(
                "{} different from {}",
                key("attention.value_length"),
                key("attention.key_length")
            )));
        }
        if let Some(n) = opt_u32("expert_count")?.filter(|&n| n > 0) {
            return Err(ModelError::Unsupported(format!("mixture of experts ({} = {n})", key("expert_count"))));
        }
        let rope_scaling_factor = match g.get(at("rope.scaling.type").as_str()) {
            None => 1.0,
            Some(v) => match v.as_str() {
                // A factor of 0 is no scaling, as in llama.cpp.
                Some("linear") => opt_f32("rope.scaling.factor", |f| f >= 0.0)?.filter(|f| *f > 0.0).unwrap_or(1.0),
                Some(t) if ROPE_SCALING_TYPES.contains(&t) => 1.0,
                Some(t) => return Err(ModelError::Unsupported(format!("{} {t}", key("rope.scaling.type")))),
                None => return Err(ModelError::BadValue(key("rope.scaling.type"))),
            },
        };
        Ok(HParams {
            n_vocab,
            // 0 is legal (llama.cpp runs it): hosts choose their context.
            n_ctx_train: req_u32("context_length")?,
            n_embd,
            n_layer: req_u32("block_count")?,
            n_ff: req_u32("feed_forward_length")?,
            n_head,
            n_head_kv: opt_u32("attention.head_count_kv")?.unwrap_or(n_head),
            head_dim,
            n_rot: opt_u32("rope.dimension_count")?.unwrap_or(head_dim),
            rope_freq_base: opt_f32("rope.freq_base", |b| b > 0.0)?.unwrap_or(10_000.0),
            rms_eps: opt_f32("attention.layer_norm_rms_epsilon", |e| e >= 0.0)?.unwrap_or(1e-5),
            // 0 is "no window", as in llama.cpp.
            sliding_window: opt_u32("attention.sliding_window")?.filter(|&w| w > 0),
            rope_freq_base_swa: opt_f32("rope.freq_base_swa", |b| b > 0.0)?,
            rope_scaling_factor,
            // 0 is "no soft-capping".
            final_logit_softcapping: opt_f32("final_logit_softcapping", |c| c >= 0.0)?.filter(|c| *c > 0.0),
            arch,
        })
    }
}
