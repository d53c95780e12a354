//! RMSNorm, softmax, SiLU, the GELU table and RoPE: AVX2 and AVX-512 twins of the scalar code in
//! `ops/{norm,softmax,activation,rope}.rs`. Products that the scalar code rounds separately are
//! not fused here either, so those kernels give the scalar results bit for bit; only the sums
//! (f64 in RMSNorm and softmax) are reordered, and `expf` is [`super::common::exp256`].

use super::common::{exp256, exp512, hsum256_pd};
use crate::ops::activation::GeluEntries;
use core::arch::x86_64::*;

/// All lanes up to `n` (< 16) set.
#[inline]
fn tail_mask(n: usize) -> __mmask16 {
    ((1u32 << n.min(16)) - 1) as __mmask16
}

// ---------------------------------------------------------------- RMSNorm

/// `Σ f64(x² in f32)`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn sum_sq_avx2(x: &[f32]) -> f64 {
    let (mut a0, mut a1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        // SAFETY: `c` holds 8 floats.
        let v = unsafe { _mm256_loadu_ps(c.as_ptr()) };
        let sq = _mm256_mul_ps(v, v);
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(sq)));
    }
    let tail: f64 = chunks.remainder().iter().map(|&v| f64::from(v * v)).sum();
    hsum256_pd(_mm256_add_pd(a0, a1)) + tail
}

/// `Σ f64(x² in f32)`.
///
/// # Safety
/// The CPU must support the AVX-512 tier's features.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn sum_sq_avx512(x: &[f32]) -> f64 {
    let (mut a0, mut a1) = (_mm512_setzero_pd(), _mm512_setzero_pd());
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        // SAFETY: `c` holds 16 floats.
        let v = unsafe { _mm512_loadu_ps(c.as_ptr()) };
        let sq = _mm512_mul_ps(v, v);
        a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(sq)));
        a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm512_extractf32x8_ps::<1>(sq)));
    }
    let rest = chunks.remainder();
    // SAFETY: the mask covers only the `rest.len()` floats of `rest`; masked lanes are not read.
    let v = unsafe { _mm512_maskz_loadu_ps(tail_mask(rest.len()), rest.as_ptr()) };
    let sq = _mm512_mul_ps(v, v);
    a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(sq)));
    a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm512_extractf32x8_ps::<1>(sq)));
    _mm512_reduce_add_pd(_mm512_add_pd(a0, a1))
}

/// `out[i] = (x[i] · scale) · w[i]` over the common prefix.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn scale_mul_avx2(out: &mut [f32], x: &[f32], w: &[f32], scale: f32) {
    let n = out.len().min(x.len()).min(w.len());
    let s = _mm256_set1_ps(scale);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, the length of the shortest slice.
        unsafe {
            let v =
                _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x.as_ptr().add(i)), s), _mm256_loadu_ps(w.as_ptr().add(i)));
            _mm256_storeu_ps(out.as_mut_ptr().add(i), v);
        }
        i += 8;
    }
    for ((o, &v), &wi) in out[i..n].iter_mut().zip(&x[i..n]).zip(&w[i..n]) {
        *o = (v * scale) * wi;
    }
}

/// `x[i] = (x[i] · scale) · w[i]` over the common prefix.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn scale_mul_in_place_avx2(x: &mut [f32], w: &[f32], scale: f32) {
    let n = x.len().min(w.len());
    let s = _mm256_set1_ps(scale);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, the length of the shorter slice.
        unsafe {
            let p = x.as_mut_ptr().add(i);
            _mm256_storeu_ps(
                p,
                _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(p), s), _mm256_loadu_ps(w.as_ptr().add(i))),
            );
        }
        i += 8;
    }
    for (v, &wi) in x[i..n].iter_mut().zip(&w[i..n]) {
        *v = (*v * scale) * wi;
    }
}

/// `out[i] = (x[i] · scale) · w[i]` over the common prefix.
///
/// # Safety
/// The CPU must support the AVX-512 tier's features.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn scale_mul_avx512(out: &mut [f32], x: &[f32], w: &[f32], scale: f32) {
    let n = out.len().min(x.len()).min(w.len());
    let s = _mm512_set1_ps(scale);
    let mut i = 0;
    while i < n {
        let m = tail_mask(n - i);
        // SAFETY: the mask covers lanes i..min(i + 16, n), inside every slice; others are not accessed.
        unsafe {
            let v = _mm512_mul_ps(
                _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x.as_ptr().add(i)), s),
                _mm512_maskz_loadu_ps(m, w.as_ptr().add(i)),
            );
            _mm512_mask_storeu_ps(out.as_mut_ptr().add(i), m, v);
        }
        i += 16;
    }
}

/// `x[i] = (x[i] · scale) · w[i]` over the common prefix.
///
/// # Safety
/// The CPU must support the AVX-512 tier's features.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn scale_mul_in_place_avx512(x: &mut [f32], w: &[f32], scale: f32) {
    let n = x.len().min(w.len());
    let s = _mm512_set1_ps(scale);
    let mut i = 0;
    while i < n {
        let m = tail_mask(n - i);
        // SAFETY: the mask covers lanes i..min(i + 16, n), inside both slices; others are not accessed.
        unsafe {
            let p = x.as_mut_ptr().add(i);
            let v = _mm512_mul_ps(
                _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p), s),
                _mm512_maskz_loadu_ps(m, w.as_ptr().add(i)),
            );
            _mm512_mask_storeu_ps(p, m, v);
        }
        i += 16;
    }
}

// ---------------------------------------------------------------- softmax

/// In-place softmax as `ops::softmax` (max, `e^(x - max)` summed in f64, scaled by `1 / sum`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn softmax_avx2(x: &mut [f32]) {
    let n = x.len();
    // `max_ps(v, m)` returns `m` when `v` is NaN: NaNs are skipped, as `f32::max` does.
    let mut m = _mm256_set1_ps(f32::NEG_INFINITY);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n.
        m = _mm256_max_ps(unsafe { _mm256_loadu_ps(x.as_ptr().add(i)) }, m);
        i += 8;
    }
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), m) };
    let max = lanes.iter().chain(&x[i..]).fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    if max == f32::NEG_INFINITY {
        return;
    }
    let mv = _mm256_set1_ps(max);
    let (mut s0, mut s1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n.
        unsafe {
            let p = x.as_mut_ptr().add(i);
            let e = exp256(_mm256_sub_ps(_mm256_loadu_ps(p), mv));
            _mm256_storeu_ps(p, e);
            s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
            s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(e)));
        }
        i += 8;
    }
    let mut sum = hsum256_pd(_mm256_add_pd(s0, s1));
    for v in &mut x[i..] {
        *v = libm::expf(*v - max);
        sum += f64::from(*v);
    }
    let inv = (1.0 / sum) as f32;
    let iv = _mm256_set1_ps(inv);
    i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n.
        unsafe {
            let p = x.as_mut_ptr().add(i);
            _mm256_storeu_ps(p, _mm256_mul_ps(_mm256_loadu_ps(p), iv));
        }
        i += 8;
    }
    for v in &mut x[i..] {
        *v *= inv;
    }
}

/// In-place softmax as `ops::softmax`.
///
/// # Safety
/// The CPU must support the AVX-512 tier's features.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn softmax_avx512(x: &mut [f32]) {
    let n = x.len();
    let mut m = _mm512_set1_ps(f32::NEG_INFINITY);
    let mut i = 0;
    while i < n {
        let k = tail_mask(n - i);
        // SAFETY: lanes i..min(i + 16, n) only; masked lanes keep `m` and are not read.
        m = _mm512_mask_max_ps(m, k, unsafe { _mm512_maskz_loadu_ps(k, x.as_ptr().add(i)) }, m);
        i += 16;
    }
    let max = _mm512_reduce_max_ps(m);
    if max == f32::NEG_INFINITY || max.is_nan() {
        return;
    }
    let mv = _mm512_set1_ps(max);
    let (mut s0, mut s1) = (_mm512_setzero_pd(), _mm512_setzero_pd());
    i = 0;
    while i < n {
        let k = tail_mask(n - i);
        // SAFETY: lanes i..min(i + 16, n) only; the others are neither read nor written.
        unsafe {
            let p = x.as_mut_ptr().add(i);
            let e = _mm512_maskz_mov_ps(k, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, p), mv)));
            _mm512_mask_storeu_ps(p, k, e);
            s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
            s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm512_extractf32x8_ps::<1>(e)));
        }
        i += 16;
    }
    let sum = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    let iv = _mm512_set1_ps((1.0 / sum) as f32);
    i = 0;
    while i < n {
        let k = tail_mask(n - i);
        // SAFETY: lanes i..min(i + 16, n) only.
        unsafe {
            let p = x.as_mut_ptr().add(i);
            _mm512_mask_storeu_ps(p, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p), iv));
        }
        i += 16;
    }
}

// ---------------------------------------------------------------- SiLU, GELU

/// `g[i] = silu(g[i]) · u[i]` over the common prefix.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn silu_mul_avx2(g: &mut [f32], u: &[f32]) {
    let n = g.len().min(u.len());
    let one = _mm256_set1_ps(1.0);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, the length of the shorter slice.
        unsafe {
            let p = g.as_mut_ptr().add(i);
            let x = _mm256_loadu_ps(p);
            let e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
            let s = _mm256_div_ps(x, _mm256_add_ps(one, e));
            _mm256_storeu_ps(p, _mm256_mul_ps(s, _mm256_loadu_ps(u.as_ptr().add(i))));
        }
        i += 8;
    }
    for (x, &y) in g[i..n].iter_mut().zip(&u[i..n]) {
        *x = crate::ops::silu(*x) * y;
    }
}

/// `g[i] = silu(g[i]) · u[i]` over the common prefix.
///
/// # Safety
/// The CPU must support the AVX-512 tier's features.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn silu_mul_avx512(g: &mut [f32], u: &[f32]) {
    let n = g.len().min(u.len());
    let one = _mm512_set1_ps(1.0);
    let mut i = 0;
    while i < n {
        let k = tail_mask(n - i);
        // SAFETY: lanes i..min(i + 16, n) only, inside both slices.
        unsafe {
            let p = g.as_mut_ptr().add(i);
            let x = _mm512_maskz_loadu_ps(k, p);
            let e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
            let s = _mm512_div_ps(x, _mm512_add_ps(one, e));
            _mm512_mask_storeu_ps(p, k, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(k, u.as_ptr().add(i))));
        }
        i += 16;
    }
}

/// `g[i] = gelu(g[i]) · u[i]` over the common prefix, `gelu` read from ggml's f16 table
/// (`table` has 65 536 entries, indexed by the f16 bits of the input; 0 at ≤ -10, identity at ≥ 10).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gelu_mul_avx2(table: &GeluEntries, g: &mut [f32], u: &[f32]) {
    let n = g.len().min(u.len());
    let (lo, hi) = (_mm256_set1_ps(-10.0), _mm256_set1_ps(10.0));
    let base = table.as_ptr().cast::<i32>();
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n. The gather reads the aligned 4-byte word holding entry `idx`, bytes
        // 4·(idx >> 1) .. 4·(idx >> 1) + 4 of the 2·65 536-byte table, as idx < 65 536.
        unsafe {
            let p = g.as_mut_ptr().add(i);
            let x = _mm256_loadu_ps(p);
            let idx = _mm256_cvtepu16_epi32(_mm256_cvtps_ph::<{ super::common::F16_ROUND }>(x));
            let words = _mm256_i32gather_epi32::<4>(base, _mm256_srli_epi32::<1>(idx));
            let shift = _mm256_slli_epi32::<4>(_mm256_and_si256(idx, _mm256_set1_epi32(1)));
            let bits = _mm256_and_si256(_mm256_srlv_epi32(words, shift), _mm256_set1_epi32(0xffff));
            let packed = _mm256_permute4x64_epi64::<0b1000>(_mm256_packus_epi32(bits, bits));
            let y = _mm256_cvtph_ps(_mm256_castsi256_si128(packed));
            let y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps::<_CMP_LE_OQ>(x, lo));
            let y = _mm256_blendv_ps(y, x, _mm256_cmp_ps::<_CMP_GE_OQ>(x, hi));
            _mm256_storeu_ps(p, _mm256_mul_ps(y, _mm256_loadu_ps(u.as_ptr().add(i))));
        }
        i += 8;
    }
    crate::ops::activation::gelu_mul_scalar(table, &mut g[i..n], &u[i..n]);
}

/// As [`gelu_mul_avx2`].
///
/// # Safety
/// The CPU must support the AVX-512 tier's features.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn gelu_mul_avx512(table: &GeluEntries, g: &mut [f32], u: &[f32]) {
    let n = g.len().min(u.len());
    let (lo, hi) = (_mm512_set1_ps(-10.0), _mm512_set1_ps(10.0));
    let base = table.as_ptr().cast::<i32>();
    let mut i = 0;
    while i < n {
        let k = tail_mask(n - i);
        // SAFETY: lanes i..min(i + 16, n) only, inside both slices. The gather reads, for the
        // active lanes, the aligned 4-byte word holding entry `idx` (< 65 536) of the table.
        unsafe {
            let p = g.as_mut_ptr().add(i);
            let x = _mm512_maskz_loadu_ps(k, p);
            let idx = _mm512_cvtepu16_epi32(_mm512_cvtps_ph::<{ super::common::F16_ROUND }>(x));
            let words = _mm512_mask_i32gather_epi32::<4>(_mm512_setzero_si512(), k, _mm512_srli_epi32::<1>(idx), base);
            let shift = _mm512_slli_epi32::<4>(_mm512_and_si512(idx, _mm512_set1_epi32(1)));
            let y = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srlv_epi32(words, shift)));
            let y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask::<_CMP_LE_OQ>(x, lo), _mm512_setzero_ps());
            let y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, hi), x);
            _mm512_mask_storeu_ps(p, k, _mm512_mul_ps(y, _mm512_maskz_loadu_ps(k, u.as_ptr().add(i))));
        }
        i += 16;
    }
}

// ---------------------------------------------------------------- RoPE

/// Adjacent-pair rotation of `head[..2·np]` by the interleaved `(cos, sin)` pairs `cs[..2·np]`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn rope_normal_avx2(cs: &[f32], head: &mut [f32], np: usize) {
    let n = (2 * np).min(cs.len() & !1).min(head.len() & !1);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, inside both slices.
        unsafe {
            let p = head.as_mut_ptr().add(i);
            let x = _mm256_loadu_ps(p);
            let t = _mm256_loadu_ps(cs.as_ptr().add(i));
            let (c, s) = (_mm256_moveldup_ps(t), _mm256_movehdup_ps(t));
            let xs = _mm256_permute_ps::<0b10_11_00_01>(x);
            // even lanes x0·c − x1·s, odd lanes x1·c + x0·s
            _mm256_storeu_ps(p, _mm256_addsub_ps(_mm256_mul_ps(x, c), _mm256_mul_ps(xs, s)));
        }
        i += 8;
    }
    crate::ops::rope::rotate_normal_scalar(&cs[i..n], &mut head[i..n]);
}

/// As [`rope_normal_avx2`].
///
/// # Safety
/// The CPU must support the AVX-512 tier's features.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn rope_normal_avx512(cs: &[f32], head: &mut [f32], np: usize) {
    let n = (2 * np).min(cs.len() & !1).min(head.len() & !1);
    let mut i = 0;
    while i < n {
        let k = tail_mask(n - i);
        // SAFETY: lanes i..min(i + 16, n) only, inside both slices.
        unsafe {
            let p = head.as_mut_ptr().add(i);
            let x = _mm512_maskz_loadu_ps(k, p);
            let t = _mm512_maskz_loadu_ps(k, cs.as_ptr().add(i));
            let (c, s) = (_mm512_moveldup_ps(t), _mm512_movehdup_ps(t));
            let (xc, xs) = (_mm512_mul_ps(x, c), _mm512_mul_ps(_mm512_permute_ps::<0b10_11_00_01>(x), s));
            let r = _mm512_mask_sub_ps(_mm512_add_ps(xc, xs), 0x5555, xc, xs);
            _mm512_mask_storeu_ps(p, k, r);
        }
        i += 16;
    }
}

/// Half-split rotation: `(head[i], head[half + i])` for `i < np` by the pair `cs[2i], cs[2i + 1]`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn rope_neox_avx2(cs: &[f32], head: &mut [f32], half: usize, np: usize) {
    let np = np.min(cs.len() / 2).min(half).min(head.len().saturating_sub(half));
    let (h0, h1) = head.split_at_mut(half.min(head.len()));
    let mut i = 0;
    while i + 8 <= np {
        // SAFETY: i + 8 <= np: 2·np floats of `cs`, np of `h0` and of `h1` exist.
        unsafe {
            let a = _mm256_loadu_ps(cs.as_ptr().add(2 * i));
            let b = _mm256_loadu_ps(cs.as_ptr().add(2 * i + 8));
            let c = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(_mm256_shuffle_ps::<
                0b10_00_10_00,
            >(a, b))));
            let s = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(_mm256_shuffle_ps::<
                0b11_01_11_01,
            >(a, b))));
            let (p0, p1) = (h0.as_mut_ptr().add(i), h1.as_mut_ptr().add(i));
            let (x0, x1) = (_mm256_loadu_ps(p0), _mm256_loadu_ps(p1));
            _mm256_storeu_ps(p0, _mm256_sub_ps(_mm256_mul_ps(x0, c), _mm256_mul_ps(x1, s)));
            _mm256_storeu_ps(p1, _mm256_add_ps(_mm256_mul_ps(x0, s), _mm256_mul_ps(x1, c)));
        }
        i += 8;
    }
    crate::ops::rope::rotate_neox_scalar(&cs[2 * i..2 * np], &mut h0[i..np], &mut h1[i..np]);
}

/// As [`rope_neox_avx2`].
///
/// # Safety
/// The CPU must support the AVX-512 tier's features.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn rope_neox_avx512(cs: &[f32], head: &mut [f32], half: usize, np: usize) {
    let np = np.min(cs.len() / 2).min(half).min(head.len().saturating_sub(half));
    let (h0, h1) = head.split_at_mut(half.min(head.len()));
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    let mut i = 0;
    while i < np {
        let r = np - i;
        let k = tail_mask(r);
        let (ka, kb) = (tail_mask(2 * r), tail_mask((2 * r).saturating_sub(16)));
        // SAFETY: lanes i..min(i + 16, np) of `h0`, `h1` and 2i..min(2i + 32, 2·np) of `cs` only (the
        // second `cs` address may lie past the end when its mask is empty: it is then not accessed).
        unsafe {
            let a = _mm512_maskz_loadu_ps(ka, cs.as_ptr().add(2 * i));
            let b = _mm512_maskz_loadu_ps(kb, cs.as_ptr().wrapping_add(2 * i + 16));
            let c = _mm512_permutex2var_ps(a, even, b);
            let s = _mm512_permutex2var_ps(a, odd, b);
            let (p0, p1) = (h0.as_mut_ptr().add(i), h1.as_mut_ptr().add(i));
            let (x0, x1) = (_mm512_maskz_loadu_ps(k, p0), _mm512_maskz_loadu_ps(k, p1));
            _mm512_mask_storeu_ps(p0, k, _mm512_sub_ps(_mm512_mul_ps(x0, c), _mm512_mul_ps(x1, s)));
            _mm512_mask_storeu_ps(p1, k, _mm512_add_ps(_mm512_mul_ps(x0, s), _mm512_mul_ps(x1, c)));
        }
        i += 16;
    }
}
