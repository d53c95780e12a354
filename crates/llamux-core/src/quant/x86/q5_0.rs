//! `Q5_0 × Q8_0` dot products: 5-bit values kept unsigned, `Σ (q - 16)·y = Σ q·y - 16·Σ y`.

use super::super::{BlockQ5_0, BlockQ8_0};
use super::blocks32::*;
use core::arch::x86_64::*;

/// The 32 unsigned 5-bit values of a block (low nibbles, `qh` bit `j` as bit 4 of byte `j`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn legacy_q5_avx2(qs: &[u8; 16], qh: [u8; 4]) -> __m256i {
    let hi = _mm256_and_si256(legacy_bytes_from_bits(u32::from_le_bytes(qh)), _mm256_set1_epi8(0x10));
    _mm256_or_si256(legacy_nibbles(legacy_load_u8x16(qs)), hi)
}

/// [`legacy_q5_avx2`] with the high bits as a byte mask.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) fn legacy_q5_avx512(qs: &[u8; 16], qh: [u8; 4]) -> __m256i {
    let q = legacy_nibbles(legacy_load_u8x16(qs));
    _mm256_mask_add_epi8(q, u32::from_le_bytes(qh), q, _mm256_set1_epi8(0x10))
}

legacy_vec_dot!(
    /// `BlockQ5_0::vec_dot_unopt` with AVX2 (`maddubs` on the unsigned quants, exact for any `y`).
    vec_dot_avx2, vec_dot_rows_x4_avx2, "avx2,fma,f16c", BlockQ5_0, BlockQ8_0,
    unpack |x| legacy_q5_avx2(&x.qs, x.qh),
    dot |q, y| legacy_dot_u7i8_avx2(q, legacy_load_i8x32(&y.qs)),
    offset |y| legacy_dot_u7i8_avx2(_mm256_set1_epi8(16), legacy_load_i8x32(&y.qs))
);

legacy_vec_dot!(
    /// `BlockQ5_0::vec_dot_unopt` with AVX-512 VNNI (`vpdpbusd`).
    vec_dot_avx512, vec_dot_rows_x4_avx512, "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c", BlockQ5_0, BlockQ8_0,
    unpack |x| legacy_q5_avx512(&x.qs, x.qh),
    dot |q, y| _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, legacy_load_i8x32(&y.qs)),
    offset |y| _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(16), legacy_load_i8x32(&y.qs))
);

crate::quant::x86::tile::legacy_tile!(
    /// `vec_dot_avx512` of rows against tokens laid out as tiles, bit for bit.
    vec_dot_tile_avx512, BlockQ5_0,
    unpack |x| {
        legacy_q5_avx512(&x.qs, x.qh)
    }, zero_log2: 4
);

crate::quant::x86::tile::legacy_tile8!(
    /// `vec_dot_avx2` of rows against tokens laid out as tiles, eight at a time, bit for bit.
    vec_dot_tile8_avx2, "avx2,fma,f16c", BlockQ5_0,
    unpack |x| legacy_q5_avx2(&x.qs, x.qh),
    acc |acc, w, y| {
        use crate::quant::x86::blocks32::*;
        _mm256_add_epi32(acc, legacy_dot_u7i8_avx2(w, y))
    }, zero_log2: 4
);

crate::quant::x86::tile::legacy_tile8!(
    /// `vec_dot_avx512` of rows against at most eight tokens laid out as tiles, bit for bit.
    vec_dot_tile8_avx512, "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c", BlockQ5_0,
    unpack |x| legacy_q5_avx512(&x.qs, x.qh),
    acc |acc, w, y| _mm256_dpbusd_epi32(acc, w, y), zero_log2: 4
);
