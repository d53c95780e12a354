//! One query head's attention over one layer's KV cache, the way ggml computes it on the CPU:
//! scores `K_t · q · scale`, softmax, then `Σ_t p_t · V_t`. For an f16 cache the query is rounded
//! to f16 for the scores and the probabilities are rounded to f16 for the sum over V (ggml converts
//! both operands to the cache's type).
//!
//! [`attend_head`] allocates nothing and takes its buffers from the caller, so that heads can be
//! run in parallel, each with its own [`AttnScratch`].

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
use crate::isa::Isa;
use crate::isa::Simd;
use crate::quant::F16;
use crate::session::{KvCache, KvSlice};

/// Which head and positions to attend over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Layer of the cache.
    pub layer: usize,
    /// KV head (queries of grouped-query attention share one).
    pub kv_head: usize,
    /// First position attended (a sliding window starts later than 0).
    pub first: usize,
    /// Last position attended (inclusive): the current token's.
    pub pos: usize,
}

/// Per-head working memory.
pub struct AttnScratch<'a> {
    /// The query rounded to f16 (f16 caches): at least `head_dim` floats.
    pub q: &'a mut [f32],
    /// Scores, then probabilities: at least `pos + 1 - first` floats.
    pub att: &'a mut [f32],
}

/// How many rows of `width` elements, `stride` apart, fit in `len` elements.
pub(crate) fn rows_fit(len: usize, stride: usize, width: usize) -> usize {
    match (len.checked_sub(width), stride) {
        (None, _) => 0,
        (Some(_), 0) => usize::MAX,
        (Some(room), s) => room / s + 1,
    }
}

/// Attention of one query head: `out = softmax(K · q · kq_scale) · V` over positions
/// `first..=pos` of `layer`'s cache, for the KV head `kv_head`, with `head_dim = q.len()`.
///
/// Never panics: the head dimension is cut to what `out` (and, for an f16 cache, `scratch.q`)
/// holds, positions past the cache are dropped, and so are those beyond `scratch.att`'s length
/// (the window is `first..first + att.len()` then). A layer or head outside the cache, or an
/// empty window, gives `out` = 0. Returns the number of positions attended.
pub fn attend_head(
    simd: Simd,
    kv: &KvCache,
    w: Window,
    q: &[f32],
    kq_scale: f32,
    scratch: AttnScratch<'_>,
    out: &mut [f32],
) -> usize {
    out.fill(0.0);
    let half = matches!(kv.keys(w.layer), Some(KvSlice::F16(_)));
    let hd = if half { q.len().min(out.len()).min(scratch.q.len()) } else { q.len().min(out.len()) };
    let (Some(keys), Some(vals)) = (kv.keys(w.layer), kv.values(w.layer)) else { return 0 };
    let Some(head_off) = w.kv_head.checked_mul(hd).filter(|&o| o + hd <= kv.kv_dim) else { return 0 };
    let last = w.pos.min(kv.n_ctx.saturating_sub(1));
    if kv.n_ctx == 0 || w.first > last {
        return 0;
    }
    let n = (last + 1 - w.first).min(scratch.att.len());
    let att = &mut scratch.att[..n];
    let start = w.first * kv.kv_dim + head_off;
    let out = &mut out[..hd];
    match (keys, vals) {
        (KvSlice::F16(k), KvSlice::F16(v)) => {
            let qh = &mut scratch.q[..hd];
            qh.copy_from_slice(&q[..hd]);
            round_f16(simd, qh);
            scores(simd, k.get(start..).unwrap_or(&[]), kv.kv_dim, qh, kq_scale, att);
            super::softmax_with(simd, att);
            round_f16(simd, att);
            values(simd, v.get(start..).unwrap_or(&[]), kv.kv_dim, att, out);
        }
        (KvSlice::F32(k), KvSlice::F32(v)) => {
            scores(simd, k.get(start..).unwrap_or(&[]), kv.kv_dim, &q[..hd], kq_scale, att);
            super::softmax_with(simd, att);
            values(simd, v.get(start..).unwrap_or(&[]), kv.kv_dim, att, out);
        }
        _ => return 0,
    }
    n
}

/// A cache element type the kernels read.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
pub(crate) use super::x86::attention::Elem as CacheElem;

/// A cache element type the kernels read.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
pub(crate) trait CacheElem: Copy {
    /// Exact widening.
    fn to_f32(self) -> f32;
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
impl CacheElem for F16 {
    fn to_f32(self) -> f32 {
        F16::to_f32(self)
    }
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
impl CacheElem for f32 {
    fn to_f32(self) -> f32 {
        self
    }
}

/// Rounds every element to f16 and back.
fn round_f16(simd: Simd, x: &mut [f32]) {
    match simd.isa() {
        // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Isa::Avx512 => unsafe { super::x86::attention::round_f16_avx512(x) },
        // SAFETY: as above.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Isa::Avx2 => unsafe { super::x86::attention::round_f16_avx2(x) },
        _ => round_f16_scalar(x),
    }
}

fn round_f16_scalar(x: &mut [f32]) {
    for v in x {
        *v = F16::from_f32(*v).to_f32();
    }
}

/// `att[t] = (keys[t·stride ..][..q.len()] · q) · scale` for every row in `keys`.
fn scores<T: CacheElem>(simd: Simd, keys: &[T], stride: usize, q: &[f32], scale: f32, att: &mut [f32]) {
    match simd.isa() {
        // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Isa::Avx512 => unsafe { super::x86::attention::scores_avx512(keys, stride, q, scale, att) },
        // SAFETY: as above.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Isa::Avx2 => unsafe { super::x86::attention::scores_avx2(keys, stride, q, scale, att) },
        _ => scores_scalar(keys, stride, q, scale, att),
    }
}

fn scores_scalar<T: CacheElem>(keys: &[T], stride: usize, q: &[f32], scale: f32, att: &mut [f32]) {
    let n = att.len().min(rows_fit(keys.len(), stride, q.len()));
    for (t, a) in att[..n].iter_mut().enumerate() {
        let k = &keys[t * stride..t * stride + q.len()];
        *a = q.iter().zip(k).map(|(a, b)| a * b.to_f32()).sum::<f32>() * scale;
    }
}

/// `out = Σ_t p[t] · vals[t·stride ..][..out.len()]` over the rows in `vals`.
fn values<T: CacheElem>(simd: Simd, vals: &[T], stride: usize, p: &[f32], out: &mut [f32]) {
    match simd.isa() {
        // SAFETY: a `Simd` of a tier exists only when the CPU runs that tier.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Isa::Avx512 => unsafe { super::x86::attention::values_avx512(vals, stride, p, out) },
        // SAFETY: as above.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        Isa::Avx2 => unsafe { super::x86::attention::values_avx2(vals, stride, p, out) },
        _ => values_scalar(vals, stride, p, out),
    }
}

fn values_scalar<T: CacheElem>(vals: &[T], stride: usize, p: &[f32], out: &mut [f32]) {
    out.fill(0.0);
    let n = p.len().min(rows_fit(vals.len(), stride, out.len()));
    for (t, &a) in p[..n].iter().enumerate() {
        let v = &vals[t * stride..t * stride + out.len()];
        out.iter_mut().zip(v).for_each(|(o, v)| *o += a * v.to_f32());
    }
}
