//! `Q5_K` × `Q8_K` dot products: the `Q4_K` kernels with the fifth bit added to each nibble.

use super::common::*;
use super::q4_k::{k4_mins_dot_avx2, k4_scale_avx2, k4_scale_pair_avx512, k4_scales_mins};
use crate::quant::{BlockQ5K, BlockQ8K};
use core::arch::x86_64::*;

/// AVX2 `Q5_K` × `Q8_K`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_avx2(xs: &[BlockQ5K], ys: &[BlockQ8K]) -> f32 {
    let m4 = _mm256_set1_epi8(0x0F);
    let m16 = _mm256_set1_epi8(0x10);
    let mut sumf = 0.0f32;
    for (x, y) in xs.iter().zip(ys) {
        let sm = k4_scales_mins(&x.scales);
        // SAFETY: `sm` is 16 bytes, `qh` 32.
        let (sm16, mut qh) = unsafe {
            (_mm256_cvtepu8_epi16(_mm_loadu_si128(sm.as_ptr().cast())), _mm256_loadu_si256(x.qh.as_ptr().cast()))
        };
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
        let (sumi, summs) = hsum2_i32_avx2(acc, mins);
        sumf += y.d * f16c_to_f32(x.d) * sumi as f32 - y.d * f16c_to_f32(x.dmin) * summs as f32;
    }
    sumf
}

/// AVX-512 `Q5_K` × `Q8_K`.
///
/// # Safety
/// The CPU must support the AVX-512 tier (F, BW, VL, DQ, VNNI) and AVX2, FMA, F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_avx512(xs: &[BlockQ5K], ys: &[BlockQ8K]) -> f32 {
    let m4 = _mm512_set1_epi8(0x0F);
    let m16 = _mm512_set1_epi8(0x10);
    // Fifth-bit masks: for qs bytes 64k..64k+64, low nibbles are pairs p = 2k, 2k+1 (bits 4k,
    // 4k + 2 of qh), high nibbles bits 4k + 1, 4k + 3.
    let bits = [
        [halves_epi8_avx512(1 << 0, 1 << 2), halves_epi8_avx512(1 << 1, 1 << 3)],
        [halves_epi8_avx512(1 << 4, 1 << 6), halves_epi8_avx512(1 << 5, 1 << 7)],
    ];
    let mut sumf = 0.0f32;
    for (x, y) in xs.iter().zip(ys) {
        let sm = k4_scales_mins(&x.scales);
        // SAFETY: `sm` is 16 bytes, `qh` 32.
        let (sm16, qh) = unsafe {
            (
                _mm256_cvtepu8_epi16(_mm_loadu_si128(sm.as_ptr().cast())),
                _mm512_broadcast_i64x4(_mm256_loadu_si256(x.qh.as_ptr().cast())),
            )
        };
        let mins = k4_mins_dot_avx2(sm16, y);
        let mut acc = _mm512_setzero_si512();
        for (k, [bit_lo, bit_hi]) in bits.iter().enumerate() {
            // SAFETY: `qs` is 128 bytes and `y.qs` 256: bytes 64k..64k+64 and 128k..128k+128 are
            // in bounds for k < 2.
            let (q4, a0, a1) = unsafe {
                (
                    _mm512_loadu_si512(x.qs.as_ptr().add(64 * k).cast()),
                    _mm512_loadu_si512(y.qs.as_ptr().add(128 * k).cast()),
                    _mm512_loadu_si512(y.qs.as_ptr().add(128 * k + 64).cast()),
                )
            };
            let lo = _mm512_and_si512(q4, m4);
            let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(q4), m4);
            let lo = _mm512_mask_add_epi8(lo, _mm512_test_epi8_mask(qh, *bit_lo), lo, m16);
            let hi = _mm512_mask_add_epi8(hi, _mm512_test_epi8_mask(qh, *bit_hi), hi, m16);
            let w0 = _mm512_shuffle_i64x2::<0x44>(lo, hi);
            let w1 = _mm512_shuffle_i64x2::<0xEE>(lo, hi);
            acc = _mm512_dpwssd_epi32(acc, k4_scale_pair_avx512(sm16, 4 * k), _mm512_maddubs_epi16(w0, a0));
            acc = _mm512_dpwssd_epi32(acc, k4_scale_pair_avx512(sm16, 4 * k + 2), _mm512_maddubs_epi16(w1, a1));
        }
        let (sumi, summs) = hsum2_i32_avx2(fold_i32_avx512(acc), mins);
        sumf += y.d * f16c_to_f32(x.d) * sumi as f32 - y.d * f16c_to_f32(x.dmin) * summs as f32;
    }
    sumf
}
