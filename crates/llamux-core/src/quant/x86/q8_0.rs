//! `Q8_0` kernels: `Q8_0 × Q8_0` dot products and the activation quantizer.

use super::super::{BlockQ8_0, F16};
use super::blocks32::*;
use core::arch::x86_64::*;

legacy_vec_dot!(
    /// `BlockQ8_0::vec_dot_unopt` with AVX2 (`maddubs` on `|x|` and `sign(y, x)`). Activations
    /// must not hold -128 (the quantizers never make it).
    vec_dot_avx2, vec_dot_rows_x4_avx2, "avx2,fma,f16c", BlockQ8_0, BlockQ8_0,
    unpack |x| legacy_load_i8x32(&x.qs), dot |q, y| legacy_dot_i8_avx2(q, legacy_load_i8x32(&y.qs))
);

legacy_vec_dot!(
    /// `BlockQ8_0::vec_dot_unopt` with AVX-512 VNNI (`vpdpbusd` on `|x|` and `sign(y, x)`).
    /// Activations must not hold -128 (the quantizers never make it).
    vec_dot_avx512, vec_dot_rows_x4_avx512, "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c", BlockQ8_0, BlockQ8_0,
    unpack |x| legacy_load_i8x32(&x.qs), dot |q, y| legacy_dot_i8_vnni(q, legacy_load_i8x32(&y.qs))
);

/// One block of `quantize_q8_act` with AVX2: writes the quants, returns the scale `amax / 127`
/// and eight `i32` lanes summing to `Σ qs`. Bit for bit the scalar code: the same `amax` (a max
/// ignoring NaN), the same multiplier, round half to even, and `as i8`'s saturation (NaN → 0).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn act_block_avx2(x: &[f32; 32], qs: &mut [i8; 32]) -> (f32, __m256i) {
    let mut v = [_mm256_setzero_ps(); 4];
    for (v, c) in v.iter_mut().zip(x.as_chunks::<8>().0) {
        // SAFETY: `c` is 8 readable floats; the load is unaligned.
        *v = unsafe { _mm256_loadu_ps(c.as_ptr()) };
    }
    let sign = _mm256_set1_ps(-0.0);
    // `_mm256_max_ps(a, m)` returns `m` when `a` is NaN, as `f32::max` does.
    let mut m = _mm256_setzero_ps();
    for &v in &v {
        m = _mm256_max_ps(_mm256_andnot_ps(sign, v), m);
    }
    let amax = legacy_hmax_f32x8(m);
    let d = amax / 127.0;
    let id = _mm256_set1_ps(if amax != 0.0 { 127.0 / amax } else { 0.0 });
    let (lo, hi) = (_mm256_set1_ps(-128.0), _mm256_set1_ps(127.0));
    let mut q = [_mm256_setzero_si256(); 4];
    for (q, &v) in q.iter_mut().zip(&v) {
        let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(v, id));
        // Saturate as `as i8` does; `max`/`min` keep a NaN (second operand), the mask zeroes it.
        let r = _mm256_min_ps(hi, _mm256_max_ps(lo, r));
        let r = _mm256_and_ps(r, _mm256_cmp_ps::<_CMP_ORD_Q>(r, r));
        *q = _mm256_cvtps_epi32(r);
    }
    let sum = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    // packs interleave 128-bit lanes: [q0l q1l q2l q3l | q0h q1h q2h q3h] in 4-byte groups.
    let b = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    let b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    // SAFETY: `qs` is 32 writable bytes; the store is unaligned.
    unsafe { _mm256_storeu_si256(qs.as_mut_ptr().cast(), b) };
    (d, sum)
}

/// [`act_block_avx2`] with AVX-512: returns the scale and sixteen `i32` lanes summing to `Σ qs`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) fn act_block_avx512(x: &[f32; 32], qs: &mut [i8; 32]) -> (f32, __m512i) {
    let (c0, c1) = (&x.as_chunks::<16>().0[0], &x.as_chunks::<16>().0[1]);
    // SAFETY: `c0`/`c1` are 16 readable floats each; the loads are unaligned.
    let v = unsafe { [_mm512_loadu_ps(c0.as_ptr()), _mm512_loadu_ps(c1.as_ptr())] };
    let m = _mm512_max_ps(_mm512_abs_ps(v[0]), _mm512_setzero_ps());
    let m = _mm512_max_ps(_mm512_abs_ps(v[1]), m);
    let amax = _mm512_reduce_max_ps(m);
    let d = amax / 127.0;
    let id = _mm512_set1_ps(if amax != 0.0 { 127.0 / amax } else { 0.0 });
    let (lo, hi) = (_mm512_set1_ps(-128.0), _mm512_set1_ps(127.0));
    let mut q = [_mm512_setzero_si512(); 2];
    for (q, &v) in q.iter_mut().zip(&v) {
        let r = _mm512_min_ps(hi, _mm512_max_ps(lo, _mm512_mul_ps(v, id)));
        let ordered = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(r, r);
        *q = _mm512_maskz_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(ordered, r);
    }
    let b = _mm256_set_m128i(_mm512_cvtsepi32_epi8(q[1]), _mm512_cvtsepi32_epi8(q[0]));
    // SAFETY: `qs` is 32 writable bytes; the store is unaligned.
    unsafe { _mm256_storeu_si256(qs.as_mut_ptr().cast(), b) };
    (d, _mm512_add_epi32(q[0], q[1]))
}

/// `BlockQ8_0::from_float_act` with AVX2, bit for bit.
///
/// # Safety
/// The CPU must run AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn quantize_act_avx2(xs: &[f32], ys: &mut [BlockQ8_0]) {
    for (x, y) in xs.as_chunks::<32>().0.iter().zip(ys) {
        y.d = F16::from_f32(act_block_avx2(x, &mut y.qs).0);
    }
}

/// `BlockQ8_0::from_float_act` with AVX-512, bit for bit.
///
/// # Safety
/// The CPU must run every feature this function enables.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn quantize_act_avx512(xs: &[f32], ys: &mut [BlockQ8_0]) {
    for (x, y) in xs.as_chunks::<32>().0.iter().zip(ys) {
        y.d = F16::from_f32(act_block_avx512(x, &mut y.qs).0);
    }
}

crate::quant::x86::tile::legacy_tile!(
    /// `vec_dot_avx512` of rows against tokens laid out as tiles, bit for bit.
    vec_dot_tile_avx512, BlockQ8_0,
    unpack |x| {
        use crate::quant::x86::blocks32::*;
        _mm256_xor_si256(legacy_load_i8x32(&x.qs), _mm256_set1_epi8(-128))
    }, zero_log2: 7
);

crate::quant::x86::tile::legacy_tile8!(
    /// `vec_dot_avx2` of rows against tokens laid out as tiles, eight at a time, bit for bit.
    vec_dot_tile8_avx2, "avx2,fma,f16c", BlockQ8_0,
    unpack |x| {
        use crate::quant::x86::blocks32::*;
        legacy_load_i8x32(&x.qs)
    },
    acc |acc, w, y| {
        use crate::quant::x86::blocks32::*;
        _mm256_add_epi32(acc, legacy_dot_i8_avx2(w, y))
    }
);

crate::quant::x86::tile::legacy_tile8!(
    /// `vec_dot_avx512` of rows against at most eight tokens laid out as tiles, bit for bit.
    vec_dot_tile8_avx512, "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c", BlockQ8_0,
    unpack |x| {
        use crate::quant::x86::blocks32::*;
        _mm256_xor_si256(legacy_load_i8x32(&x.qs), _mm256_set1_epi8(-128))
    },
    acc |acc, w, y| _mm256_dpbusd_epi32(acc, w, y), zero_log2: 7
);
