//! A generation session: the KV cache and every scratch buffer a token needs, allocated once.

mod generate;

pub use generate::{GenerateError, Generation, Step, Stop};

use crate::buffers::filled;
use crate::model::Model;
use crate::ops::QuantizedInput;
use crate::quant::{QuantError, F16};
use alloc::collections::TryReserveError;
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
    /// A batch is empty or larger than the session's buffers.
    BatchSize {
        /// Tokens in the batch.
        got: usize,
        /// Largest batch the session holds.
        max: usize,
    },
    /// Memory for a session's cache or buffers ran out (or their size overflowed).
    OutOfMemory,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::TokenOutOfRange(t) => write!(f, "token id {t} is outside the vocabulary"),
            SessionError::ContextFull { n_ctx } => write!(f, "the context of {n_ctx} tokens is full"),
            SessionError::Quant(e) => write!(f, "kernel error: {e}"),
            SessionError::BatchSize { got, max } => {
                write!(f, "a batch of {got} tokens (this session takes 1 to {max})")
            }
            SessionError::OutOfMemory => f.write_str("out of memory for the session's cache and buffers"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SessionError {}

impl From<TryReserveError> for SessionError {
    fn from(_: TryReserveError) -> Self {
        SessionError::OutOfMemory
    }
}

impl From<QuantError> for SessionError {
    fn from(e: QuantError) -> Self {
        SessionError::Quant(e)
    }
}

/// Element type of the KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvType {
    /// Half precision (llama.cpp's default): half the memory; queries and attention weights are
    /// rounded to f16 for the products, as ggml does.
    F16,
    /// Single precision.
    F32,
}

/// Storage of one of the caches.
enum KvStore {
    F16(Vec<F16>),
    F32(Vec<f32>),
}

impl KvStore {
    fn try_new(ty: KvType, n: usize) -> Result<Self, TryReserveError> {
        Ok(match ty {
            KvType::F16 => KvStore::F16(filled(n, F16::ZERO)?),
            KvType::F32 => KvStore::F32(filled(n, 0.0)?),
        })
    }

    fn store(&mut self, at: usize, src: &[f32]) {
        match self {
            KvStore::F16(buf) => {
                for (d, &x) in buf.iter_mut().skip(at).zip(src) {
                    *d = F16::from_f32(x);
                }
            }
            KvStore::F32(buf) => {
                for (d, &x) in buf.iter_mut().skip(at).zip(src) {
                    *d = x;
                }
            }
        }
    }
}

/// One layer's keys or values, `[position][kv_dim]`, in the cache's element type.
#[derive(Debug, Clone, Copy)]
pub enum KvSlice<'a> {
    /// Half precision.
    F16(&'a [F16]),
    /// Single precision.
    F32(&'a [f32]),
}

impl KvStore {
    fn layer(&self, at: usize, len: usize) -> Option<KvSlice<'_>> {
        let end = at.checked_add(len)?;
        match self {
            KvStore::F16(buf) => buf.get(at..end).map(KvSlice::F16),
            KvStore::F32(buf) => buf.get(at..end).map(KvSlice::F32),
        }
    }
}

/// Keys and values of every layer for every position (`[layer][position][kv_dim]`).
pub struct KvCache {
    k: KvStore,
    v: KvStore,
    /// Positions per layer.
    pub n_ctx: usize,
    /// Width of one position.
    pub kv_dim: usize,
    /// Element type.
    pub ty: KvType,
}

impl KvCache {
    /// A zeroed cache, or the allocation failure (also for a size that overflows).
    pub fn try_new(ty: KvType, n_layer: usize, n_ctx: usize, kv_dim: usize) -> Result<Self, TryReserveError> {
        let n = n_layer.saturating_mul(n_ctx).saturating_mul(kv_dim);
        Ok(KvCache { k: KvStore::try_new(ty, n)?, v: KvStore::try_new(ty, n)?, n_ctx, kv_dim, ty })
    }

    /// Offset of `(layer, pos)`.
    pub fn index(&self, layer: usize, pos: usize) -> usize {
        (layer * self.n_ctx + pos) * self.kv_dim
    }

    /// Stores the keys and values of one position.
    pub fn store(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let at = self.index(layer, pos);
        self.k.store(at, k);
        self.v.store(at, v);
    }

    /// The keys of `layer` (`None` past the last layer).
    pub fn keys(&self, layer: usize) -> Option<KvSlice<'_>> {
        self.k.layer(layer.checked_mul(self.n_ctx)?.checked_mul(self.kv_dim)?, self.n_ctx * self.kv_dim)
    }

    /// The values of `layer` (`None` past the last layer).
    pub fn values(&self, layer: usize) -> Option<KvSlice<'_>> {
        self.v.layer(layer.checked_mul(self.n_ctx)?.checked_mul(self.kv_dim)?, self.n_ctx * self.kv_dim)
    }

    /// `q · key[at .. at + q.len()]`, or `None` when that range is not in the cache.
    #[inline]
    pub fn key_dot(&self, at: usize, q: &[f32]) -> Option<f32> {
        let end = at.checked_add(q.len())?;
        Some(match &self.k {
            KvStore::F16(buf) => q.iter().zip(buf.get(at..end)?).map(|(a, b)| a * b.to_f32()).sum(),
            KvStore::F32(buf) => q.iter().zip(buf.get(at..end)?).map(|(a, b)| a * b).sum(),
        })
    }

    /// `out += a · value[at .. at + out.len()]`, or `None` (and `out` unchanged) when that range
    /// is not in the cache.
    #[inline]
    pub fn add_value(&self, at: usize, a: f32, out: &mut [f32]) -> Option<()> {
        let end = at.checked_add(out.len())?;
        match &self.v {
            KvStore::F16(buf) => out.iter_mut().zip(buf.get(at..end)?).for_each(|(o, v)| *o += a * v.to_f32()),
            KvStore::F32(buf) => out.iter_mut().zip(buf.get(at..end)?).for_each(|(o, v)| *o += a * v),
        }
        Some(())
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        let per = match self.ty {
            KvType::F16 => 2,
            KvType::F32 => 4,
        };
        2 * per
            * match &self.k {
                KvStore::F16(b) => b.len(),
                KvStore::F32(b) => b.len(),
            }
    }
}

/// Tokens a session's buffers hold for one batch unless asked otherwise: a prompt chunk long
/// enough that each weight tile is reused many times while it is in the cache.
pub const DEFAULT_MAX_BATCH: usize = 64;

/// Activations of one batch's forward pass: the per-token buffers hold a row per token.
pub struct Activations {
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
    /// Attention scores over the context, one row of `n_ctx` per query head.
    pub att: Vec<f32>,
    /// Queries as the cache's dot products see them (rounded to f16 for an f16 cache), per head.
    pub q_att: Vec<f32>,
    /// Gate activations.
    pub hb: Vec<f32>,
    /// Up activations.
    pub hb2: Vec<f32>,
    /// RoPE cos/sin.
    pub rope: Vec<f32>,
    /// Quantized activations: one buffer per distinct input type of the matrices fed together.
    pub xq: [QuantizedInput; 3],
}

/// A session's buffers for its own forward passes.
pub struct Scratch {
    /// Activations.
    pub act: Activations,
    /// Logits after the last pass.
    pub logits: Vec<f32>,
}

impl Activations {
    /// Buffers for batches of up to `max_batch` (at least 1) tokens attending over up to
    /// `n_ctx` positions.
    pub fn try_new(model: &Model<'_>, max_batch: usize, n_ctx: usize) -> Result<Self, TryReserveError> {
        let hp = &model.hp;
        let (n_embd, n_ff, q_dim, kv_dim) = (hp.n_embd as usize, hp.n_ff as usize, model.q_dim(), model.kv_dim());
        let nb = max_batch.max(1);
        let rows = |n: usize| filled(nb.saturating_mul(n), 0.0f32);
        let xq_n = n_embd.max(n_ff).max(q_dim);
        Ok(Activations {
            x: rows(n_embd)?,
            xb: rows(n_embd)?,
            xb2: rows(n_embd)?,
            q: rows(q_dim)?,
            k: rows(kv_dim)?,
            v: rows(kv_dim)?,
            att_out: rows(q_dim)?,
            att: filled(n_ctx.saturating_mul(hp.n_head as usize), 0.0)?,
            q_att: filled(q_dim, 0.0)?,
            hb: rows(n_ff)?,
            hb2: rows(n_ff)?,
            rope: filled(hp.head_dim as usize, 0.0)?,
            xq: [
                QuantizedInput::try_new(nb, xq_n)?,
                QuantizedInput::try_new(nb, xq_n)?,
                QuantizedInput::try_new(nb, xq_n)?,
            ],
        })
    }
}

/// Buffers for decoding steps shared by several sessions ([`Model::forward_multi`]): the
/// activations of up to `max_batch` sessions (one token each) with contexts of up to `n_ctx`,
/// and their logits.
pub struct BatchScratch {
    pub(crate) s: Activations,
    pub(crate) logits: Vec<f32>,
    pub(crate) max_batch: usize,
    pub(crate) n_ctx: usize,
}

impl BatchScratch {
    /// Buffers for steps of up to `max_batch` (at least 1) sessions of up to `n_ctx` positions,
    /// or [`SessionError::OutOfMemory`].
    pub fn try_new(model: &Model<'_>, max_batch: usize, n_ctx: usize) -> Result<Self, SessionError> {
        let nb = max_batch.max(1);
        Ok(BatchScratch {
            s: Activations::try_new(model, nb, n_ctx)?,
            logits: filled(nb.saturating_mul(model.hp.n_vocab as usize), 0.0)?,
            max_batch: nb,
            n_ctx,
        })
    }

    /// Most sessions in one step.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }
}

/// A sequence being processed: its position, KV cache and scratch.
pub struct Session {
    /// Number of tokens in the cache.
    pub pos: usize,
    /// The cache.
    pub kv: KvCache,
    /// Rows of the per-token buffers.
    max_batch: usize,
    /// Per-token buffers.
    pub s: Scratch,
}

impl Session {
    /// Allocates everything a model needs for `n_ctx` positions, with an f16 cache and room for
    /// batches of [`DEFAULT_MAX_BATCH`] tokens. Every allocation is fallible: memory running out
    /// (or a size that overflows) is [`SessionError::OutOfMemory`].
    pub fn new(model: &Model<'_>, n_ctx: usize) -> Result<Self, SessionError> {
        Self::with_kv_type(model, n_ctx, KvType::F16)
    }

    /// As [`Session::new`], with the cache's element type chosen.
    pub fn with_kv_type(model: &Model<'_>, n_ctx: usize, kv_type: KvType) -> Result<Self, SessionError> {
        Self::with_options(model, n_ctx, kv_type, DEFAULT_MAX_BATCH)
    }

    /// As [`Session::new`], with the cache's element type and the largest batch (at least 1)
    /// chosen.
    pub fn with_options(
        model: &Model<'_>,
        n_ctx: usize,
        kv_type: KvType,
        max_batch: usize,
    ) -> Result<Self, SessionError> {
        let nb = max_batch.max(1);
        Ok(Session {
            pos: 0,
            kv: KvCache::try_new(kv_type, model.hp.n_layer as usize, n_ctx, model.kv_dim())?,
            max_batch: nb,
            s: Scratch {
                act: Activations::try_new(model, nb, n_ctx)?,
                logits: filled(model.hp.n_vocab as usize, 0.0)?,
            },
        })
    }

    /// The largest batch [`Model::forward_batch`] takes in this session.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Context length.
    pub fn n_ctx(&self) -> usize {
        self.kv.n_ctx
    }

    /// The logits of the last forward pass (what sampling reads and may modify in place).
    pub fn logits_mut(&mut self) -> &mut [f32] {
        &mut self.s.logits
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
