//! `Q2_K` × `Q8_K` dot products. Per super-block the integer sums are exact; the float formula is
//! the scalar twin's.

use super::common::*;
use super::q4_k::{k4_dot, k4_finish2};
use crate::quant::{BlockQ2K, BlockQ8K};
use core::arch::x86_64::*;

/// The 16 group scales (low nibbles) as words, and `Σ min_g bsums_g` as eight `i32` lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scales_and_mins(x: &BlockQ2K, y: &BlockQ8K) -> (__m256i, __m256i) {
    let m4 = _mm_set1_epi8(0x0F);
    // SAFETY: `scales` is 16 bytes and `bsums` 16 i16 = 32 bytes.
    let (sc, bsums) =
        unsafe { (_mm_loadu_si128(x.scales.as_ptr().cast()), _mm256_loadu_si256(y.bsums.as_ptr().cast())) };
    let s16 = _mm256_cvtepu8_epi16(_mm_and_si128(sc, m4));
    let m16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16::<4>(sc), m4));
    (s16, _mm256_madd_epi16(m16, bsums))
}

/// AVX2 `Q2_K` × `Q8_K`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_avx2(xs: &[BlockQ2K], ys: &[BlockQ8K]) -> f32 {
    k4_dot!(xs, ys, block_avx2)
}

/// One super-block on AVX2: `i32` lanes of `Σ sc q a` and `Σ m bsums`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn block_avx2(x: &BlockQ2K, y: &BlockQ8K) -> (__m256i, __m256i) {
    let m3 = _mm256_set1_epi8(3);
    let (s16, mins) = scales_and_mins(x, y);
    let halves = k16_halves_avx2(s16);
    let mut acc = _mm256_setzero_si256();
    for (h, &half) in halves.iter().enumerate() {
        // SAFETY: `qs` is 64 bytes: bytes 32h..32h+32 are in bounds for h < 2.
        let mut qs = unsafe { _mm256_loadu_si256(x.qs.as_ptr().add(32 * h).cast()) };
        for j in 0..4 {
            // SAFETY: `y.qs` is 256 bytes: 128h + 32j + 32 <= 256 for h < 2, j < 4.
            let a = unsafe { _mm256_loadu_si256(y.qs.as_ptr().add(128 * h + 32 * j).cast()) };
            // `qs` is shifted right by 2j (bits 0..2 of each byte came from that byte).
            let q = _mm256_and_si256(qs, m3);
            qs = _mm256_srli_epi16::<2>(qs);
            let p = _mm256_maddubs_epi16(q, a);
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(k16_scale_pair_avx2(half, j), p));
        }
    }
    (acc, mins)
}

/// AVX-512 `Q2_K` × `Q8_K`.
///
/// # Safety
/// The CPU must support the AVX-512 tier (F, BW, VL, DQ, VNNI) and AVX2, FMA, F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_avx512(xs: &[BlockQ2K], ys: &[BlockQ8K]) -> f32 {
    k4_dot!(xs, ys, block_avx512)
}

/// One super-block on AVX-512: `i32` lanes of `Σ sc q a` and `Σ m bsums`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn block_avx512(x: &BlockQ2K, y: &BlockQ8K) -> (__m256i, __m256i) {
    let m3 = _mm512_set1_epi8(3);
    // zmm t of half h holds j = 2t (low 32 bytes) and 2t + 1: bits 2j..2j+2.
    let shifts = [halves_epi16_avx512(0, 2), halves_epi16_avx512(4, 6)];
    let (s16, mins) = scales_and_mins(x, y);
    let mut acc = _mm512_setzero_si512();
    for h in 0..2 {
        // SAFETY: `qs` is 64 bytes: bytes 32h..32h+32 are in bounds for h < 2.
        let qs = unsafe { _mm512_broadcast_i64x4(_mm256_loadu_si256(x.qs.as_ptr().add(32 * h).cast())) };
        for (t, &shift) in shifts.iter().enumerate() {
            // SAFETY: `y.qs` is 256 bytes: 128h + 64t + 64 <= 256 for h, t < 2.
            let a = unsafe { _mm512_loadu_si512(y.qs.as_ptr().add(128 * h + 64 * t).cast()) };
            let q = _mm512_and_si512(_mm512_srlv_epi16(qs, shift), m3);
            acc = _mm512_dpwssd_epi32(acc, k16_scales_avx512(s16, 2 * h + t), _mm512_maddubs_epi16(q, a));
        }
    }
    (fold_i32_avx512(acc), mins)
}
