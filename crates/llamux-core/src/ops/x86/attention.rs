//! Attention over the KV cache: AVX2 and AVX-512 twins of the scalar loops in
//! `ops/attention.rs` — the scores `K_t · q` of several positions per iteration, and the
//! weighted sum `Σ_t p_t · V_t` with the output columns held in registers. Both are generic over
//! the cache's element type (f16 widened with F16C, or f32).

use super::common::{f16_round256, f16_round512, hsum256};
use crate::ops::attention::rows_fit;
use crate::quant::F16;
use core::arch::x86_64::*;

/// A KV cache element: widened to f32 when loaded.
pub(crate) trait Elem: Copy {
    /// Exact widening.
    fn to_f32(self) -> f32;
    /// Eight elements from `p`, widened.
    ///
    /// # Safety
    /// AVX2, FMA and F16C; `p` valid for reading 8 elements.
    unsafe fn load8(p: *const Self) -> __m256;
    /// The elements of `p` selected by `k` (the others are not read and give 0), widened.
    ///
    /// # Safety
    /// The AVX-512 tier's features; `p` valid for reading every element `k` selects.
    unsafe fn load16(k: __mmask16, p: *const Self) -> __m512;
}

impl Elem for F16 {
    #[inline]
    fn to_f32(self) -> f32 {
        F16::to_f32(self)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(p: *const Self) -> __m256 {
        // SAFETY: the caller guarantees 8 readable halves (16 bytes) at `p`.
        _mm256_cvtph_ps(unsafe { _mm_loadu_si128(p.cast()) })
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
    unsafe fn load16(k: __mmask16, p: *const Self) -> __m512 {
        // SAFETY: the caller guarantees every half `k` selects is readable; the others are not read.
        _mm512_cvtph_ps(unsafe { _mm256_maskz_loadu_epi16(k, p.cast()) })
    }
}

impl Elem for f32 {
    #[inline]
    fn to_f32(self) -> f32 {
        self
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(p: *const Self) -> __m256 {
        // SAFETY: the caller guarantees 8 readable floats at `p`.
        unsafe { _mm256_loadu_ps(p) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
    unsafe fn load16(k: __mmask16, p: *const Self) -> __m512 {
        // SAFETY: the caller guarantees every float `k` selects is readable; the others are not read.
        unsafe { _mm512_maskz_loadu_ps(k, p) }
    }
}

const FULL: __mmask16 = 0xffff;

/// All lanes up to `n` (< 16) set.
#[inline]
fn tail_mask(n: usize) -> __mmask16 {
    ((1u32 << n.min(16)) - 1) as __mmask16
}

/// Rounds every element to f16 and back.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn round_f16_avx2(x: &mut [f32]) {
    let mut chunks = x.chunks_exact_mut(8);
    for c in &mut chunks {
        // SAFETY: `c` holds 8 floats.
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), f16_round256(_mm256_loadu_ps(c.as_ptr()))) };
    }
    for v in chunks.into_remainder() {
        *v = F16::from_f32(*v).to_f32();
    }
}

/// Rounds every element to f16 and back.
///
/// # Safety
/// The CPU must support the AVX-512 tier's features.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn round_f16_avx512(x: &mut [f32]) {
    let n = x.len();
    let mut i = 0;
    while i < n {
        let k = tail_mask(n - i);
        // SAFETY: lanes i..min(i + 16, n) only.
        unsafe {
            let p = x.as_mut_ptr().add(i);
            _mm512_mask_storeu_ps(p, k, f16_round512(_mm512_maskz_loadu_ps(k, p)));
        }
        i += 16;
    }
}

/// `att[t] = (keys[t·stride ..][..q.len()] · q) · scale` for every `t` whose row lies in `keys`
/// (and `t < att.len()`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn scores_avx2<T: Elem>(keys: &[T], stride: usize, q: &[f32], scale: f32, att: &mut [f32]) {
    let hd = q.len();
    let n = att.len().min(rows_fit(keys.len(), stride, hd));
    let full = hd / 8 * 8;
    let qp = q.as_ptr();
    let row = |t: usize| keys[t * stride..].as_ptr();
    let tail =
        |t: usize| -> f32 { q[full..].iter().zip(&keys[t * stride + full..]).map(|(a, b)| a * b.to_f32()).sum() };
    let mut t = 0;
    while t + 4 <= n {
        let r = [row(t), row(t + 1), row(t + 2), row(t + 3)];
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut d = 0;
        while d < full {
            // SAFETY: d + 8 <= hd: `q` and rows t..t + 4 (which hold hd elements each) have them.
            unsafe {
                let qv = _mm256_loadu_ps(qp.add(d));
                for (a, &p) in acc.iter_mut().zip(&r) {
                    *a = _mm256_fmadd_ps(qv, T::load8(p.add(d)), *a);
                }
            }
            d += 8;
        }
        for (j, a) in acc.iter().enumerate() {
            att[t + j] = (hsum256(*a) + tail(t + j)) * scale;
        }
        t += 4;
    }
    while t < n {
        let r = row(t);
        let mut acc = _mm256_setzero_ps();
        let mut d = 0;
        while d < full {
            // SAFETY: as above, for row t.
            acc = unsafe { _mm256_fmadd_ps(_mm256_loadu_ps(qp.add(d)), T::load8(r.add(d)), acc) };
            d += 8;
        }
        att[t] = (hsum256(acc) + tail(t)) * scale;
        t += 1;
    }
}

/// As [`scores_avx2`].
///
/// # Safety
/// The CPU must support the AVX-512 tier's features.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn scores_avx512<T: Elem>(keys: &[T], stride: usize, q: &[f32], scale: f32, att: &mut [f32]) {
    let hd = q.len();
    let n = att.len().min(rows_fit(keys.len(), stride, hd));
    let qp = q.as_ptr();
    let row = |t: usize| keys[t * stride..].as_ptr();
    let mut t = 0;
    while t + 4 <= n {
        let r = [row(t), row(t + 1), row(t + 2), row(t + 3)];
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut d = 0;
        while d < hd {
            let k = tail_mask(hd - d);
            // SAFETY: lanes d..min(d + 16, hd) of `q` and of rows t..t + 4 (hd elements each) only.
            unsafe {
                let qv = _mm512_maskz_loadu_ps(k, qp.add(d));
                for (a, &p) in acc.iter_mut().zip(&r) {
                    *a = _mm512_fmadd_ps(qv, T::load16(k, p.add(d)), *a);
                }
            }
            d += 16;
        }
        for (j, a) in acc.iter().enumerate() {
            att[t + j] = _mm512_reduce_add_ps(*a) * scale;
        }
        t += 4;
    }
    while t < n {
        let r = row(t);
        let mut acc = _mm512_setzero_ps();
        let mut d = 0;
        while d < hd {
            let k = tail_mask(hd - d);
            // SAFETY: as above, for row t.
            acc = unsafe { _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, qp.add(d)), T::load16(k, r.add(d)), acc) };
            d += 16;
        }
        att[t] = _mm512_reduce_add_ps(acc) * scale;
        t += 1;
    }
}

/// Columns `d .. d + 8·NV` of `Σ_t p[t] · row_t`, two positions per iteration.
///
/// # Safety
/// AVX2, FMA and F16C; rows `0..p.len()` of `vals` (at `t·stride`) hold at least `d + 8·NV`
/// elements, and `out` too.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn values_cols_avx2<T: Elem, const NV: usize>(vals: &[T], stride: usize, p: &[f32], d: usize, out: &mut [f32]) {
    let (mut a, mut b) = ([_mm256_setzero_ps(); NV], [_mm256_setzero_ps(); NV]);
    let base = vals.as_ptr();
    let n = p.len();
    let mut t = 0;
    while t + 2 <= n {
        let (p0, p1) = (_mm256_set1_ps(p[t]), _mm256_set1_ps(p[t + 1]));
        // SAFETY: rows t and t + 1 hold d + 8·NV elements (the caller's contract).
        unsafe {
            let (r0, r1) = (base.add(t * stride + d), base.add((t + 1) * stride + d));
            for j in 0..NV {
                a[j] = _mm256_fmadd_ps(p0, T::load8(r0.add(8 * j)), a[j]);
                b[j] = _mm256_fmadd_ps(p1, T::load8(r1.add(8 * j)), b[j]);
            }
        }
        t += 2;
    }
    if t < n {
        let p0 = _mm256_set1_ps(p[t]);
        // SAFETY: as above, for row t.
        unsafe {
            let r0 = base.add(t * stride + d);
            for (j, a) in a.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(p0, T::load8(r0.add(8 * j)), *a);
            }
        }
    }
    for j in 0..NV {
        // SAFETY: `out` holds d + 8·NV floats (the caller's contract).
        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(d + 8 * j), _mm256_add_ps(a[j], b[j])) };
    }
}

/// `out = Σ_t p[t] · vals[t·stride ..][..out.len()]` over every `t < p.len()` whose row lies in
/// `vals` (`out` is overwritten).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn values_avx2<T: Elem>(vals: &[T], stride: usize, p: &[f32], out: &mut [f32]) {
    let hd = out.len();
    let p = &p[..p.len().min(rows_fit(vals.len(), stride, hd))];
    let mut d = 0;
    while d + 32 <= hd {
        // SAFETY: the rows of `p` hold hd >= d + 32 elements, as does `out`.
        unsafe { values_cols_avx2::<T, 4>(vals, stride, p, d, out) };
        d += 32;
    }
    while d + 8 <= hd {
        // SAFETY: as above, d + 8 <= hd.
        unsafe { values_cols_avx2::<T, 1>(vals, stride, p, d, out) };
        d += 8;
    }
    for (c, o) in out.iter_mut().enumerate().skip(d) {
        *o = p.iter().enumerate().fold(0.0, |s, (t, &a)| s + a * vals[t * stride + c].to_f32());
    }
}

/// Columns `d .. d + 16·NV` (the last vector masked by `last`) of `Σ_t p[t] · row_t`.
///
/// # Safety
/// The AVX-512 tier's features; rows `0..p.len()` of `vals` (at `t·stride`) and `out` hold
/// every element `d + 16·j + lane` the masks select.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
unsafe fn values_cols_avx512<T: Elem, const NV: usize>(
    vals: &[T],
    stride: usize,
    p: &[f32],
    d: usize,
    last: __mmask16,
    out: &mut [f32],
) {
    let (mut a, mut b) = ([_mm512_setzero_ps(); NV], [_mm512_setzero_ps(); NV]);
    let mask = |j: usize| if j + 1 == NV { last } else { FULL };
    // Addresses are formed with `wrapping_add`: a masked-off vector may start past a row's end.
    let base = vals.as_ptr();
    let n = p.len();
    let mut t = 0;
    while t + 2 <= n {
        let (p0, p1) = (_mm512_set1_ps(p[t]), _mm512_set1_ps(p[t + 1]));
        let (r0, r1) = (base.wrapping_add(t * stride + d), base.wrapping_add((t + 1) * stride + d));
        for j in 0..NV {
            // SAFETY: only the selected elements of rows t, t + 1 are read (the caller's contract).
            unsafe {
                a[j] = _mm512_fmadd_ps(p0, T::load16(mask(j), r0.wrapping_add(16 * j)), a[j]);
                b[j] = _mm512_fmadd_ps(p1, T::load16(mask(j), r1.wrapping_add(16 * j)), b[j]);
            }
        }
        t += 2;
    }
    if t < n {
        let p0 = _mm512_set1_ps(p[t]);
        let r0 = base.wrapping_add(t * stride + d);
        for (j, a) in a.iter_mut().enumerate() {
            // SAFETY: as above, for row t.
            *a = unsafe { _mm512_fmadd_ps(p0, T::load16(mask(j), r0.wrapping_add(16 * j)), *a) };
        }
    }
    for j in 0..NV {
        // SAFETY: only the selected floats of `out` are written (the caller's contract).
        unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().wrapping_add(d + 16 * j), mask(j), _mm512_add_ps(a[j], b[j])) };
    }
}

/// As [`values_avx2`].
///
/// # Safety
/// The CPU must support the AVX-512 tier's features.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn values_avx512<T: Elem>(vals: &[T], stride: usize, p: &[f32], out: &mut [f32]) {
    let hd = out.len();
    let p = &p[..p.len().min(rows_fit(vals.len(), stride, hd))];
    let mut d = 0;
    while d + 64 <= hd {
        // SAFETY: the rows of `p` hold hd >= d + 64 elements, as does `out`.
        unsafe { values_cols_avx512::<T, 4>(vals, stride, p, d, FULL, out) };
        d += 64;
    }
    while d < hd {
        // SAFETY: the mask selects columns d..min(d + 16, hd) only.
        unsafe { values_cols_avx512::<T, 1>(vals, stride, p, d, tail_mask(hd - d), out) };
        d += 16;
    }
}
