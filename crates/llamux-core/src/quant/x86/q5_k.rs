//! `Q5_K` × `Q8_K` dot products: the `Q4_K` kernels with the fifth bit added to each nibble.

use super::common::*;
use super::q4_k::{k4_dot, k4_finish2, k4_mins_dot_avx2, k4_scale_avx2, k4_scale_pair_avx512, k4_scales_mins_avx2};
use crate::quant::{BlockQ5K, BlockQ8K};
use core::arch::x86_64::*;

/// AVX2 `Q5_K` × `Q8_K`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_avx2(xs: &[BlockQ5K], ys: &[BlockQ8K]) -> f32 {
    k4_dot!(xs, ys, block_avx2)
}

/// One `Q5_K` super-block on AVX2: `Σ sc q a` and `Σ m bsums` as `i32` lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn block_avx2(x: &BlockQ5K, y: &BlockQ8K) -> (__m256i, __m256i) {
    let m4 = _mm256_set1_epi8(0x0F);
    let m16 = _mm256_set1_epi8(0x10);
    let sm16 = _mm256_cvtepu8_epi16(k4_scales_mins_avx2(x));
    // SAFETY: `qh` is 32 bytes.
    let mut qh = unsafe { _mm256_loadu_si256(x.qh.as_ptr().cast()) };
    let mins = k4_mins_dot_avx2(sm16, y);
    let scales = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(sm16));
    let mut acc = _mm256_setzero_si256();
    for j in 0..4 {
        // SAFETY: `qs` is 128 bytes and `y.qs` 256, so bytes 32j..32j+32 and 64j..64j+64 are
        // in bounds for j < 4.
        let (q4, a_lo, a_hi) = unsafe {
            (
                _mm256_loadu_si256(x.qs.as_ptr().add(32 * j).cast()),
                _mm256_loadu_si256(y.qs.as_ptr().add(64 * j).cast()),
                _mm256_loadu_si256(y.qs.as_ptr().add(64 * j + 32).cast()),
            )
        };
        // `qh` is shifted right by 2j: bit 0 is the fifth bit of the low nibbles, bit 1 of
        // the high ones (each byte's bits 0..2 came from the same byte).
        let lo = _mm256_or_si256(_mm256_and_si256(q4, m4), _mm256_and_si256(_mm256_slli_epi16::<4>(qh), m16));
        let hi = _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16::<4>(q4), m4),
            _mm256_and_si256(_mm256_slli_epi16::<3>(qh), m16),
        );
        qh = _mm256_srli_epi16::<2>(qh);
        let p_lo = _mm256_madd_epi16(k4_scale_avx2(scales, 2 * j), _mm256_maddubs_epi16(lo, a_lo));
        let p_hi = _mm256_madd_epi16(k4_scale_avx2(scales, 2 * j + 1), _mm256_maddubs_epi16(hi, a_hi));
        acc = _mm256_add_epi32(acc, _mm256_add_epi32(p_lo, p_hi));
    }
    (acc, mins)
}

/// AVX-512 `Q5_K` × `Q8_K`.
///
/// # Safety
/// The CPU must support the AVX-512 tier (F, BW, VL, DQ, VNNI) and AVX2, FMA, F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_avx512(xs: &[BlockQ5K], ys: &[BlockQ8K]) -> f32 {
    k4_dot!(xs, ys, block_avx512)
}

/// One `Q5_K` super-block on AVX-512: `Σ sc q a` and `Σ m bsums` as `i32` lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn block_avx512(x: &BlockQ5K, y: &BlockQ8K) -> (__m256i, __m256i) {
    let m4 = _mm512_set1_epi8(0x0F);
    let m16 = _mm512_set1_epi8(0x10);
    let nibble_shift = halves_epi16_avx512(0, 4);
    // Fifth bits of elements 64p + [0, 32) (bit 2p of qh) and 64p + [32, 64) (bit 2p + 1).
    let bits: [__m512i; 4] = core::array::from_fn(|p| halves_epi8_avx512(1 << (2 * p), 1 << (2 * p + 1)));
    let sm16 = _mm256_cvtepu8_epi16(k4_scales_mins_avx2(x));
    // SAFETY: `qh` is 32 bytes.
    let qh = unsafe { _mm512_broadcast_i64x4(_mm256_loadu_si256(x.qh.as_ptr().cast())) };
    let mins = k4_mins_dot_avx2(sm16, y);
    let mut acc = _mm512_setzero_si512();
    for (p, &bit) in bits.iter().enumerate() {
        // SAFETY: `qs` is 128 bytes and `y.qs` 256: bytes 32p..32p+32 and 64p..64p+64 are in
        // bounds for p < 4.
        let (q4, a) = unsafe {
            (
                _mm512_broadcast_i64x4(_mm256_loadu_si256(x.qs.as_ptr().add(32 * p).cast())),
                _mm512_loadu_si512(y.qs.as_ptr().add(64 * p).cast()),
            )
        };
        // Low nibbles (elements 64p + [0, 32)) in the low half, high nibbles in the high half.
        let w = _mm512_and_si512(_mm512_srlv_epi16(q4, nibble_shift), m4);
        let w = _mm512_mask_add_epi8(w, _mm512_test_epi8_mask(qh, bit), w, m16);
        acc = _mm512_dpwssd_epi32(acc, k4_scale_pair_avx512(sm16, 2 * p), _mm512_maddubs_epi16(w, a));
    }
    (fold_i32_avx512(acc), mins)
}
