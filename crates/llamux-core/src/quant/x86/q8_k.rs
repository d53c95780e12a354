//! `Q8_K` × `Q8_K` dot products and the `Q8_K` activation quantizer (bit-identical to the
//! scalar `from_float`).

use super::common::*;
use crate::quant::{BlockQ8K, QK_K};
use bytemuck::Zeroable;
use core::arch::x86_64::*;

/// AVX2 `Q8_K` × `Q8_K` (sign-extended words, exact for every byte value).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_avx2(xs: &[BlockQ8K], ys: &[BlockQ8K]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in xs.iter().zip(ys) {
        let mut acc = [_mm256_setzero_si256(); 2];
        for i in 0..QK_K / 32 {
            for (half, a) in acc.iter_mut().enumerate() {
                let o = 32 * i + 16 * half;
                // SAFETY: both `qs` are 256 bytes and o + 16 <= 256.
                let (p, q) = unsafe {
                    (_mm_loadu_si128(x.qs.as_ptr().add(o).cast()), _mm_loadu_si128(y.qs.as_ptr().add(o).cast()))
                };
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(_mm256_cvtepi8_epi16(p), _mm256_cvtepi8_epi16(q)));
            }
        }
        let sumi = hsum_i32_avx2(_mm256_add_epi32(acc[0], acc[1]));
        sumf += x.d * y.d * sumi as f32;
    }
    sumf
}

/// AVX-512 `Q8_K` × `Q8_K`: `vpdpbusd` on `x + 128` (unsigned), minus `128 Σ y`, exact for every
/// byte value.
///
/// # Safety
/// The CPU must support the AVX-512 tier (F, BW, VL, DQ, VNNI) and AVX2, FMA, F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_avx512(xs: &[BlockQ8K], ys: &[BlockQ8K]) -> f32 {
    let bias = _mm512_set1_epi8(-128);
    let mut sumf = 0.0f32;
    for (x, y) in xs.iter().zip(ys) {
        let (mut acc, mut corr) = (_mm512_setzero_si512(), _mm512_setzero_si512());
        for i in 0..QK_K / 64 {
            // SAFETY: both `qs` are 256 bytes and 64i + 64 <= 256.
            let (p, q) = unsafe {
                (
                    _mm512_loadu_si512(x.qs.as_ptr().add(64 * i).cast()),
                    _mm512_loadu_si512(y.qs.as_ptr().add(64 * i).cast()),
                )
            };
            acc = _mm512_dpbusd_epi32(acc, _mm512_xor_si512(p, bias), q);
            corr = _mm512_dpbusd_epi32(corr, bias, q);
        }
        let sumi = hsum_i32_avx2(fold_i32_avx512(_mm512_sub_epi32(acc, corr)));
        sumf += x.d * y.d * sumi as f32;
    }
    sumf
}

/// `bsums` of a block's quants: sums of each 16 (exact).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn bsums_avx2(qs: &[i8; QK_K]) -> [i16; QK_K / 16] {
    let ones8 = _mm256_set1_epi8(1);
    let ones16 = _mm256_set1_epi16(1);
    // v[t]: sums of four quants; lane 0 is group 2t, lane 1 group 2t + 1.
    let v: [__m256i; 8] = core::array::from_fn(|t| {
        // SAFETY: `qs` is 256 bytes and 32t + 32 <= 256 for t < 8.
        let q = unsafe { _mm256_loadu_si256(qs.as_ptr().add(32 * t).cast()) };
        _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, q), ones16)
    });
    // Lane 0: groups 0, 2, 4, 6 (8, 10, 12, 14 for r1); lane 1 the odd ones.
    let r0 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    let r1 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    let w = _mm256_packs_epi32(r0, r1);
    let (even, odd) = (_mm256_castsi256_si128(w), _mm256_extracti128_si256::<1>(w));
    let mut out = [0i16; QK_K / 16];
    // SAFETY: `out` is 16 i16 = 32 bytes.
    unsafe {
        _mm_storeu_si128(out.as_mut_ptr().cast(), _mm_unpacklo_epi16(even, odd));
        _mm_storeu_si128(out.as_mut_ptr().add(8).cast(), _mm_unpackhi_epi16(even, odd));
    }
    out
}

/// `nearest_int(iscale * v).min(127)` of eight floats, as `i32` lanes (bit-exact with the scalar
/// `nearest_int`: the same float multiply and add, then the same integer arithmetic).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn quant8_avx2(iscale: __m256, v: __m256) -> __m256i {
    let t = _mm256_add_ps(_mm256_mul_ps(iscale, v), _mm256_set1_ps(12_582_912.0));
    let i = _mm256_and_si256(_mm256_castps_si256(t), _mm256_set1_epi32(0x007f_ffff));
    _mm256_min_epi32(_mm256_sub_epi32(i, _mm256_set1_epi32(0x0040_0000)), _mm256_set1_epi32(127))
}

/// The scalar quantizer's choice of `max`: the first element with the largest `|v|` (NaNs never
/// win), or `None` when every `|v|` is zero (or NaN).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn signed_amax_avx2(x: &[f32; QK_K]) -> Option<f32> {
    let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let mut m = [_mm256_setzero_ps(); 4];
    for (i, v) in x.as_chunks::<8>().0.iter().enumerate() {
        // SAFETY: `v` is 8 floats.
        let v = unsafe { _mm256_loadu_ps(v.as_ptr()) };
        // `maxps` returns its second operand when either is NaN, so NaNs are skipped.
        m[i & 3] = _mm256_max_ps(_mm256_and_ps(v, abs_mask), m[i & 3]);
    }
    let m = _mm256_max_ps(_mm256_max_ps(m[0], m[1]), _mm256_max_ps(m[2], m[3]));
    let s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
    let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    let amax = _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
    if amax == 0.0 {
        return None;
    }
    let target = _mm256_set1_ps(amax);
    for v in x.as_chunks::<8>().0 {
        // SAFETY: `v` is 8 floats.
        let a = _mm256_and_ps(unsafe { _mm256_loadu_ps(v.as_ptr()) }, abs_mask);
        let hits = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(a, target));
        if hits != 0 {
            return v.get(hits.trailing_zeros() as usize).copied();
        }
    }
    None
}

/// AVX2 `Q8_K` activation quantizer (the scalar `from_float`, bit for bit).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn quantize_avx2(xs: &[f32], ys: &mut [BlockQ8K]) {
    // After the two packs each lane holds 4-byte pieces of the four inputs, interleaved.
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let low_byte = _mm256_set1_epi32(0xFF);
    for (x, y) in xs.as_chunks::<QK_K>().0.iter().zip(ys) {
        let Some(max) = signed_amax_avx2(x) else {
            *y = BlockQ8K::zeroed();
            continue;
        };
        let iscale = -127.0 / max;
        let vs = _mm256_set1_ps(iscale);
        for (src, dst) in x.as_chunks::<32>().0.iter().zip(y.qs.as_chunks_mut::<32>().0) {
            // `as i8` keeps the low byte: mask it, then the unsigned packs are exact.
            let q: [__m256i; 4] = core::array::from_fn(|k| {
                // SAFETY: `src` is 32 floats and 8k + 8 <= 32 for k < 4.
                let v = unsafe { _mm256_loadu_ps(src.as_ptr().add(8 * k)) };
                _mm256_and_si256(quant8_avx2(vs, v), low_byte)
            });
            let b = _mm256_packus_epi16(_mm256_packus_epi32(q[0], q[1]), _mm256_packus_epi32(q[2], q[3]));
            // SAFETY: `dst` is 32 bytes.
            unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), _mm256_permutevar8x32_epi32(b, order)) };
        }
        y.bsums = bsums_avx2(&y.qs);
        y.d = 1.0 / iscale;
    }
}

/// AVX-512 `Q8_K` activation quantizer (the scalar `from_float`, bit for bit).
///
/// # Safety
/// The CPU must support the AVX-512 tier (F, BW, VL, DQ, VNNI) and AVX2, FMA, F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn quantize_avx512(xs: &[f32], ys: &mut [BlockQ8K]) {
    for (x, y) in xs.as_chunks::<QK_K>().0.iter().zip(ys) {
        let Some(max) = signed_amax_avx2(x) else {
            *y = BlockQ8K::zeroed();
            continue;
        };
        let iscale = -127.0 / max;
        let vs = _mm512_set1_ps(iscale);
        for (src, dst) in x.as_chunks::<16>().0.iter().zip(y.qs.as_chunks_mut::<16>().0) {
            // SAFETY: `src` is 16 floats.
            let v = unsafe { _mm512_loadu_ps(src.as_ptr()) };
            let t = _mm512_add_ps(_mm512_mul_ps(vs, v), _mm512_set1_ps(12_582_912.0));
            let i = _mm512_and_si512(_mm512_castps_si512(t), _mm512_set1_epi32(0x007f_ffff));
            let q = _mm512_min_epi32(_mm512_sub_epi32(i, _mm512_set1_epi32(0x0040_0000)), _mm512_set1_epi32(127));
            // `vpmovdb` truncates, as `as i8` does.
            // SAFETY: `dst` is 16 bytes.
            unsafe { _mm_storeu_si128(dst.as_mut_ptr().cast(), _mm512_cvtepi32_epi8(q)) };
        }
        y.bsums = bsums_avx2(&y.qs);
        y.d = 1.0 / iscale;
    }
}
