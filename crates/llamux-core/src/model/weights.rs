//! A model's weights, borrowed in place from the GGUF bytes (norm vectors are copied as f32).

use super::hparams::Name;
use super::{ArchKind, ArchOptions, HParams, ModelError};
use crate::buffers::filled;
use crate::gguf::{Gguf, TensorInfo};
use crate::ops::{GeluTable, Matrix};
use crate::quant::traits;
use alloc::format;
use alloc::string::ToString;
use alloc::vec::Vec;

/// The weights of one transformer block.
pub struct Layer<'a> {
    /// RMSNorm before attention.
    pub attn_norm: Vec<f32>,
    /// Query projection (`n_head·head_dim × n_embd`).
    pub wq: Matrix<'a>,
    /// Key projection (`n_head_kv·head_dim × n_embd`).
    pub wk: Matrix<'a>,
    /// Value projection.
    pub wv: Matrix<'a>,
    /// Output projection.
    pub wo: Matrix<'a>,
    /// Q/K/V biases (Qwen2).
    pub bq: Option<Vec<f32>>,
    /// Key bias.
    pub bk: Option<Vec<f32>>,
    /// Value bias.
    pub bv: Option<Vec<f32>>,
    /// Per-head RMSNorm of queries (Gemma 3).
    pub q_norm: Option<Vec<f32>>,
    /// Per-head RMSNorm of keys (Gemma 3).
    pub k_norm: Option<Vec<f32>>,
    /// RMSNorm after attention, before the residual add (Gemma 3).
    pub post_attn_norm: Option<Vec<f32>>,
    /// RMSNorm before the feed-forward block.
    pub ffn_norm: Vec<f32>,
    /// Gate projection.
    pub w_gate: Matrix<'a>,
    /// Up projection.
    pub w_up: Matrix<'a>,
    /// Down projection.
    pub w_down: Matrix<'a>,
    /// RMSNorm after the feed-forward block (Gemma 3).
    pub post_ffn_norm: Option<Vec<f32>>,
    /// Sliding-window (local) attention layer.
    pub is_swa: bool,
    /// RoPE base of this layer.
    pub rope_base: f32,
    /// RoPE frequency scale of this layer: `1 / rope.scaling.factor` (linear scaling), except
    /// on Gemma 3's sliding-window layers, which llama.cpp leaves unscaled.
    pub rope_freq_scale: f32,
}

/// A loaded model: hyper-parameters, architecture options and borrowed weights.
pub struct Model<'a> {
    /// Hyper-parameters.
    pub hp: HParams,
    /// Architecture options.
    pub arch: ArchOptions,
    /// Token embeddings (`n_vocab × n_embd`).
    pub tok_embd: Matrix<'a>,
    /// Final RMSNorm.
    pub output_norm: Vec<f32>,
    /// Output projection (`n_vocab × n_embd`); the token embeddings when tied.
    pub output: Matrix<'a>,
    /// RoPE frequency factors (Llama 3 `rope_freqs.weight`).
    pub rope_freqs: Option<Vec<f32>>,
    /// Blocks.
    pub layers: Vec<Layer<'a>>,
    /// ggml's GELU table (Gemma).
    pub gelu: Option<GeluTable>,
}

/// Most transformer blocks a model may have.
pub const MAX_LAYERS: u32 = 1024;

fn tensor<'g, 'a>(g: &'g Gguf<'a>, name: &str) -> Result<&'g TensorInfo<'a>, ModelError> {
    g.tensor(name).ok_or_else(|| ModelError::MissingTensor(name.to_string()))
}

fn matrix<'a>(g: &Gguf<'a>, name: &str, rows: u32, cols: u32) -> Result<Matrix<'a>, ModelError> {
    let t = tensor(g, name)?;
    // Dimensions past the second must be 1 (llama.cpp takes such tensors as matrices).
    let extra = t.ne.get(2..t.n_dims).unwrap_or(&[]);
    if t.n_dims < 2 || t.ne[0] != u64::from(cols) || t.ne[1] != u64::from(rows) || extra.iter().any(|&d| d != 1) {
        return Err(ModelError::BadTensor(name.to_string()));
    }
    Matrix::new(t.ggml_type, rows as usize, cols as usize, g.tensor_data(t))
        .map_err(|_| ModelError::BadTensor(name.to_string()))
}

fn vector(g: &Gguf<'_>, name: &str, n: u32) -> Result<Vec<f32>, ModelError> {
    let t = tensor(g, name)?;
    let bad = || ModelError::BadTensor(name.to_string());
    if t.n_elements() != u64::from(n) {
        return Err(bad());
    }
    let mut out = filled(n as usize, 0.0f32).map_err(|_| ModelError::OutOfMemory)?;
    (traits(t.ggml_type).map_err(|_| bad())?.to_float)(g.tensor_data(t), &mut out).map_err(|_| bad())?;
    Ok(out)
}

fn opt_vector(g: &Gguf<'_>, name: &str, n: u32) -> Result<Option<Vec<f32>>, ModelError> {
    if g.tensor(name).is_some() {
        vector(g, name, n).map(Some)
    } else {
        Ok(None)
    }
}

impl<'a> Model<'a> {
    /// Checks and binds every tensor of a llama-family model. Every relation the forward pass
    /// relies on is checked here (head counts and widths, RoPE dimensions, layer count, the
    /// vocabulary against the embedding rows, every tensor's shape and type), so that a model
    /// that loads runs; the buffers it keeps are allocated fallibly.
    pub fn load(g: &Gguf<'a>) -> Result<Self, ModelError> {
        // An architecture the engine lacks is named as such, not as its missing keys.
        if let Some(name) = g.architecture().filter(|a| ArchKind::from_name(a).is_none()) {
            return Err(ModelError::UnsupportedArch(name.to_string()));
        }
        let hp = HParams::from_gguf(g)?;
        let arch = ArchOptions::for_hparams(&hp)?;
        let bad = |k: &str| ModelError::BadValue(format!("{}.{k}", hp.arch));
        if hp.n_head_kv == 0 || hp.n_head_kv > hp.n_head || hp.n_head % hp.n_head_kv != 0 {
            return Err(bad("attention.head_count_kv"));
        }
        if hp.head_dim == 0 || hp.head_dim % 2 != 0 {
            return Err(bad("attention.key_length"));
        }
        if hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0 {
            return Err(bad("rope.dimension_count"));
        }
        if hp.n_layer == 0 || hp.n_layer > MAX_LAYERS {
            return Err(bad("block_count"));
        }
        if hp.n_ff == 0 {
            return Err(bad("feed_forward_length"));
        }
        // The vocabulary (the token list's length), the embedding rows and the logits have one
        // size: the tensors are checked against it below.
        if hp.n_vocab == 0 {
            return Err(match g.get("tokenizer.ggml.tokens") {
                Some(_) => ModelError::BadValue("tokenizer.ggml.tokens".to_string()),
                None => bad("vocab_size"),
            });
        }
        let q_dim = hp.n_head.checked_mul(hp.head_dim).ok_or_else(|| bad("attention.head_count"))?;
        let kv_dim = hp.n_head_kv.checked_mul(hp.head_dim).ok_or_else(|| bad("attention.head_count_kv"))?;
        let tok_embd = matrix(g, "token_embd.weight", hp.n_vocab, hp.n_embd)?;
        let output = if g.tensor("output.weight").is_some() {
            matrix(g, "output.weight", hp.n_vocab, hp.n_embd)?
        } else {
            tok_embd
        };
        let output_norm = vector(g, "output_norm.weight", hp.n_embd)?;
        let rope_freqs = opt_vector(g, "rope_freqs.weight", hp.n_rot / 2)?;
        let mut layers = Vec::new();
        layers.try_reserve_exact(hp.n_layer as usize).map_err(|_| ModelError::OutOfMemory)?;
        for il in 0..hp.n_layer {
            let n = |s: &str| Name::new(format_args!("blk.{il}.{s}"));
            let is_swa = arch.is_swa(il);
            let rope_base = if is_swa { hp.rope_freq_base_swa.unwrap_or(10_000.0) } else { hp.rope_freq_base };
            let rope_freq_scale = if is_swa { 1.0 } else { 1.0 / hp.rope_scaling_factor };
            let (m, v, o) = (
                |s: &str, rows, cols| matrix(g, n(s).as_str(), rows, cols),
                |s: &str, len| vector(g, n(s).as_str(), len),
                |s: &str, len| opt_vector(g, n(s).as_str(), len),
            );
            layers.push(Layer {
                attn_norm: v("attn_norm.weight", hp.n_embd)?,
                wq: m("attn_q.weight", q_dim, hp.n_embd)?,
                wk: m("attn_k.weight", kv_dim, hp.n_embd)?,
                wv: m("attn_v.weight", kv_dim, hp.n_embd)?,
                wo: m("attn_output.weight", hp.n_embd, q_dim)?,
                bq: o("attn_q.bias", q_dim)?,
                bk: o("attn_k.bias", kv_dim)?,
                bv: o("attn_v.bias", kv_dim)?,
                q_norm: o("attn_q_norm.weight", hp.head_dim)?,
                k_norm: o("attn_k_norm.weight", hp.head_dim)?,
                post_attn_norm: o("post_attention_norm.weight", hp.n_embd)?,
                ffn_norm: v("ffn_norm.weight", hp.n_embd)?,
                w_gate: m("ffn_gate.weight", hp.n_ff, hp.n_embd)?,
                w_up: m("ffn_up.weight", hp.n_ff, hp.n_embd)?,
                w_down: m("ffn_down.weight", hp.n_embd, hp.n_ff)?,
                post_ffn_norm: o("post_ffw_norm.weight", hp.n_embd)?,
                is_swa,
                rope_base,
                rope_freq_scale,
            });
        }
        let gelu = match arch.activation {
            super::Activation::Gelu => Some(GeluTable::try_new().map_err(|_| ModelError::OutOfMemory)?),
            super::Activation::Silu => None,
        };
        Ok(Model { hp, arch, tok_embd, output_norm, output, rope_freqs, layers, gelu })
    }

    /// Width of all queries of one token.
    pub fn q_dim(&self) -> usize {
        (self.hp.n_head * self.hp.head_dim) as usize
    }

    /// Width of all keys (or values) of one token.
    pub fn kv_dim(&self) -> usize {
        (self.hp.n_head_kv * self.hp.head_dim) as usize
    }
}
