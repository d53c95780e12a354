//! `Q4_K` × `Q8_K` dot products. Per super-block the integer sums are exact; the float formula is
//! the scalar twin's.

use super::common::*;
use crate::quant::q4_k::K_SCALE_SIZE;
use crate::quant::{BlockQ4K, BlockQ8K};
use core::arch::x86_64::*;

/// The packed 6-bit scales and minimums of a `Q4_K`/`Q5_K` block as bytes: the eight scales,
/// then the eight minimums (ggml's `utmp` unpacking, equal to `scale_min_k4` for each group).
#[inline]
pub(crate) fn k4_scales_mins(s: &[u8; K_SCALE_SIZE]) -> [u8; 16] {
    const KMASK1: u32 = 0x3f3f_3f3f;
    const KMASK2: u32 = 0x0f0f_0f0f;
    const KMASK3: u32 = 0x0303_0303;
    let u = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
    let (u0, u1, u2) = (u(0), u(1), u(2));
    let sc_lo = u0 & KMASK1;
    let sc_hi = (u2 & KMASK2) | (((u0 >> 6) & KMASK3) << 4);
    let m_lo = u1 & KMASK1;
    let m_hi = ((u2 >> 4) & KMASK2) | (((u1 >> 6) & KMASK3) << 4);
    let mut out = [0u8; 16];
    for (o, w) in out.as_chunks_mut::<4>().0.iter_mut().zip([sc_lo, sc_hi, m_lo, m_hi]) {
        *o = w.to_le_bytes();
    }
    out
}

/// `Σ m_g (bsums[2g] + bsums[2g + 1])` as eight `i32` lanes, from the scales/minimums as words
/// (`sm16`: words 8..16 are the minimums).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn k4_mins_dot_avx2(sm16: __m256i, y: &BlockQ8K) -> __m256i {
    let mins = _mm256_extracti128_si256::<1>(sm16);
    let dup = _mm256_set_m128i(_mm_unpackhi_epi16(mins, mins), _mm_unpacklo_epi16(mins, mins));
    // SAFETY: `bsums` is 16 i16 = 32 bytes.
    let bsums = unsafe { _mm256_loadu_si256(y.bsums.as_ptr().cast()) };
    _mm256_madd_epi16(dup, bsums)
}

/// Byte-shuffle masks that broadcast word `g` of a lane (the scale of group `g`) to all 16 words.
pub(crate) static K4_SCALE_SHUF: [[u8; 32]; 8] = {
    let mut t = [[0u8; 32]; 8];
    let mut g = 0;
    while g < 8 {
        let mut i = 0;
        while i < 32 {
            t[g][i] = (2 * g + (i & 1)) as u8;
            i += 1;
        }
        g += 1;
    }
    t
};

/// The scale of group `g` (0..8) in all 16 words, from `scales` (the eight scales as words in
/// both lanes).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn k4_scale_avx2(scales: __m256i, g: usize) -> __m256i {
    // SAFETY: 32 bytes of a static table (`g` clamped to its length).
    let m = unsafe { _mm256_loadu_si256(K4_SCALE_SHUF[g & 7].as_ptr().cast()) };
    _mm256_shuffle_epi8(scales, m)
}

/// `vpermw` indices: entry `k` is group `k` (0..8) in words 0..16 and group `k + 1` in 16..32.
static K4_IDX_AVX512: [[u16; 32]; 8] = {
    let mut t = [[0u16; 32]; 8];
    let mut k = 0;
    while k < 8 {
        let mut i = 0;
        while i < 32 {
            t[k][i] = (k + i / 16) as u16;
            i += 1;
        }
        k += 1;
    }
    t
};

/// The scales of groups `g` (words 0..16) and `g + 1` (words 16..32), from `sm16` (the eight
/// scales in words 0..8).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) fn k4_scale_pair_avx512(sm16: __m256i, g: usize) -> __m512i {
    // SAFETY: 64 bytes of a static table (`g` clamped to its length).
    let idx = unsafe { _mm512_loadu_si512(K4_IDX_AVX512[g & 7].as_ptr().cast()) };
    _mm512_permutexvar_epi16(idx, _mm512_castsi256_si512(sm16))
}

/// AVX2 `Q4_K` × `Q8_K`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_avx2(xs: &[BlockQ4K], ys: &[BlockQ8K]) -> f32 {
    let m4 = _mm256_set1_epi8(0x0F);
    let mut sumf = 0.0f32;
    for (x, y) in xs.iter().zip(ys) {
        let sm = k4_scales_mins(&x.scales);
        // SAFETY: `sm` is 16 bytes.
        let sm16 = _mm256_cvtepu8_epi16(unsafe { _mm_loadu_si128(sm.as_ptr().cast()) });
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
            let lo = _mm256_and_si256(q4, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q4), m4);
            let p_lo = _mm256_madd_epi16(k4_scale_avx2(scales, 2 * j), _mm256_maddubs_epi16(lo, a_lo));
            let p_hi = _mm256_madd_epi16(k4_scale_avx2(scales, 2 * j + 1), _mm256_maddubs_epi16(hi, a_hi));
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(p_lo, p_hi));
        }
        let (sumi, summs) = hsum2_i32_avx2(acc, mins);
        sumf += y.d * f16c_to_f32(x.d) * sumi as f32 - y.d * f16c_to_f32(x.dmin) * summs as f32;
    }
    sumf
}

/// AVX-512 `Q4_K` × `Q8_K` (`vpdpwssd` folds each group's scale into the accumulation).
///
/// # Safety
/// The CPU must support the AVX-512 tier (F, BW, VL, DQ, VNNI) and AVX2, FMA, F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_avx512(xs: &[BlockQ4K], ys: &[BlockQ8K]) -> f32 {
    let m4 = _mm512_set1_epi8(0x0F);
    let mut sumf = 0.0f32;
    for (x, y) in xs.iter().zip(ys) {
        let sm = k4_scales_mins(&x.scales);
        // SAFETY: `sm` is 16 bytes.
        let sm16 = _mm256_cvtepu8_epi16(unsafe { _mm_loadu_si128(sm.as_ptr().cast()) });
        let mins = k4_mins_dot_avx2(sm16, y);
        let mut acc = _mm512_setzero_si512();
        for k in 0..2 {
            // SAFETY: `qs` is 128 bytes and `y.qs` 256: bytes 64k..64k+64 and 128k..128k+128 are
            // in bounds for k < 2.
            let (q4, a0, a1) = unsafe {
                (
                    _mm512_loadu_si512(x.qs.as_ptr().add(64 * k).cast()),
                    _mm512_loadu_si512(y.qs.as_ptr().add(128 * k).cast()),
                    _mm512_loadu_si512(y.qs.as_ptr().add(128 * k + 64).cast()),
                )
            };
            // Low nibbles: elements 128k + [0, 32) and + [64, 96); high: + [32, 64) and + [96, 128).
            let lo = _mm512_and_si512(q4, m4);
            let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(q4), m4);
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
