//! A generation session: the KV cache and every scratch buffer a token needs, allocated once.

use crate::model::Model;
use crate::ops::QuantizedInput;
use crate::quant::{QuantError, F16};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Why a step of inference was refused.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// A token id is not in the vocabulary.
    TokenOutOfRange(u32),
    /// The context is full.
    ContextFull {
        /// Context length.
        n_ctx: usize,
    },
    /// A kernel refused its operands (a bug: shapes are checked at load).
    Quant(QuantError),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::TokenOutOfRange(t) => write!(f, "token id {t} is outside the vocabulary"),
            SessionError::ContextFull { n_ctx } => write!(f, "the context of {n_ctx} tokens is full"),
            SessionError::Quant(e) => write!(f, "kernel error: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SessionError {}

impl From<QuantError> for SessionError {
    fn from(e: QuantError) -> Self {
        SessionError::Quant(e)
    }
}

/// Keys and values of every layer for every position, stored as f16 (llama.cpp's default).
pub struct KvCache {
    /// `[layer][position][kv_dim]`.
    pub k: Vec<F16>,
    /// `[layer][position][kv_dim]`.
    pub v: Vec<F16>,
    /// Positions per layer.
    pub n_ctx: usize,
    /// Width of one position.
    pub kv_dim: usize,
}

impl KvCache {
    /// Offset of `(layer, pos)` in `k` / `v`.
    pub fn index(&self, layer: usize, pos: usize) -> usize {
        (layer * self.n_ctx + pos) * self.kv_dim
    }
}

/// Buffers for one token's forward pass.
pub struct Scratch {
    /// Residual stream.
    pub x: Vec<f32>,
    /// Normalized input of a sub-block.
    pub xb: Vec<f32>,
    /// Output of a sub-block.
    pub xb2: Vec<f32>,
    /// Queries of all heads.
    pub q: Vec<f32>,
    /// Keys of this token.
    pub k: Vec<f32>,
    /// Values of this token.
    pub v: Vec<f32>,
    /// Attention output of all heads.
    pub att_out: Vec<f32>,
    /// Attention scores of one head over the context.
    pub att: Vec<f32>,
    /// Gate activations.
    pub hb: Vec<f32>,
    /// Up activations.
    pub hb2: Vec<f32>,
    /// RoPE cos/sin.
    pub rope: Vec<f32>,
    /// Output logits.
    pub logits: Vec<f32>,
    /// Quantized activations.
    pub xq: QuantizedInput,
}

/// A sequence being processed: its position, KV cache and scratch.
pub struct Session {
    /// Number of tokens in the cache.
    pub pos: usize,
    /// The cache.
    pub kv: KvCache,
    /// Per-token buffers.
    pub s: Scratch,
}

impl Session {
    /// Allocates everything a model needs for `n_ctx` positions.
    pub fn new(model: &Model<'_>, n_ctx: usize) -> Self {
        let hp = &model.hp;
        let (n_embd, n_ff, q_dim, kv_dim) = (hp.n_embd as usize, hp.n_ff as usize, model.q_dim(), model.kv_dim());
        let n_layer = hp.n_layer as usize;
        let cache = n_layer * n_ctx * kv_dim;
        Session {
            pos: 0,
            kv: KvCache { k: vec![F16::ZERO; cache], v: vec![F16::ZERO; cache], n_ctx, kv_dim },
            s: Scratch {
                x: vec![0.0; n_embd],
                xb: vec![0.0; n_embd.max(q_dim)],
                xb2: vec![0.0; n_embd],
                q: vec![0.0; q_dim],
                k: vec![0.0; kv_dim],
                v: vec![0.0; kv_dim],
                att_out: vec![0.0; q_dim],
                att: vec![0.0; n_ctx],
                hb: vec![0.0; n_ff],
                hb2: vec![0.0; n_ff],
                rope: vec![0.0; hp.head_dim as usize],
                logits: vec![0.0; hp.n_vocab as usize],
                xq: QuantizedInput::with_capacity(n_embd.max(n_ff).max(q_dim)),
            },
        }
    }

    /// Context length.
    pub fn n_ctx(&self) -> usize {
        self.kv.n_ctx
    }

    /// Forgets every position (the buffers are kept).
    pub fn reset(&mut self) {
        self.pos = 0;
    }

    /// Drops positions from `pos` on, so that generation can resume from there.
    pub fn truncate(&mut self, pos: usize) {
        self.pos = self.pos.min(pos);
    }
}
