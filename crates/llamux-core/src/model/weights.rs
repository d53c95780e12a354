//! A model's weights, borrowed in place from the GGUF bytes (norm vectors are copied as f32).

use super::{ArchOptions, HParams, ModelError};
use crate::gguf::{Gguf, TensorInfo};
use crate::ops::{GeluTable, Matrix};
use crate::quant::traits;
use alloc::format;
use alloc::string::ToString;
use alloc::vec;
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

fn tensor<'g, 'a>(g: &'g Gguf<'a>, name: &str) -> Result<&'g TensorInfo<'a>, ModelError> {
    g.tensor(name).ok_or_else(|| ModelError::MissingTensor(name.to_string()))
}

fn matrix<'a>(g: &Gguf<'a>, name: &str, rows: u32, cols: u32) -> Result<Matrix<'a>, ModelError> {
    let t = tensor(g, name)?;
    if t.n_dims != 2 || t.ne[0] != u64::from(cols) || t.ne[1] != u64::from(rows) {
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
    let mut out = vec![0.0f32; n as usize];
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
    /// Checks and binds every tensor of a llama-family model.
    pub fn load(g: &Gguf<'a>) -> Result<Self, ModelError> {
        let hp = HParams::from_gguf(g)?;
        let arch = ArchOptions::for_hparams(&hp)?;
        let bad = |k: &str| ModelError::BadValue(format!("{}.{k}", hp.arch));
        if hp.n_head_kv == 0 || hp.n_head % hp.n_head_kv != 0 {
            return Err(bad("attention.head_count_kv"));
        }
        if hp.head_dim == 0 || hp.head_dim % 2 != 0 || hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0 {
            return Err(bad("attention.key_length"));
        }
        if hp.n_layer == 0 || hp.n_layer > 1024 || hp.n_vocab == 0 || hp.n_ff == 0 {
            return Err(bad("block_count"));
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
        let mut layers = Vec::with_capacity(hp.n_layer as usize);
        for il in 0..hp.n_layer {
            let n = |s: &str| format!("blk.{il}.{s}");
            let is_swa = arch.is_swa(il);
            let rope_base = if is_swa { hp.rope_freq_base_swa.unwrap_or(10_000.0) } else { hp.rope_freq_base };
            layers.push(Layer {
                attn_norm: vector(g, &n("attn_norm.weight"), hp.n_embd)?,
                wq: matrix(g, &n("attn_q.weight"), q_dim, hp.n_embd)?,
                wk: matrix(g, &n("attn_k.weight"), kv_dim, hp.n_embd)?,
                wv: matrix(g, &n("attn_v.weight"), kv_dim, hp.n_embd)?,
                wo: matrix(g, &n("attn_output.weight"), hp.n_embd, q_dim)?,
                bq: opt_vector(g, &n("attn_q.bias"), q_dim)?,
                bk: opt_vector(g, &n("attn_k.bias"), kv_dim)?,
                bv: opt_vector(g, &n("attn_v.bias"), kv_dim)?,
                q_norm: opt_vector(g, &n("attn_q_norm.weight"), hp.head_dim)?,
                k_norm: opt_vector(g, &n("attn_k_norm.weight"), hp.head_dim)?,
                post_attn_norm: opt_vector(g, &n("post_attention_norm.weight"), hp.n_embd)?,
                ffn_norm: vector(g, &n("ffn_norm.weight"), hp.n_embd)?,
                w_gate: matrix(g, &n("ffn_gate.weight"), hp.n_ff, hp.n_embd)?,
                w_up: matrix(g, &n("ffn_up.weight"), hp.n_ff, hp.n_embd)?,
                w_down: matrix(g, &n("ffn_down.weight"), hp.n_embd, hp.n_ff)?,
                post_ffn_norm: opt_vector(g, &n("post_ffw_norm.weight"), hp.n_embd)?,
                is_swa,
                rope_base,
            });
        }
        let gelu = (arch.activation == super::Activation::Gelu).then(GeluTable::new);
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
