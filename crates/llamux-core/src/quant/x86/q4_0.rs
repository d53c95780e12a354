//! `Q4_0 × Q8_0` dot products: nibbles kept unsigned, `Σ (q - 8)·y = Σ q·y - 8·Σ y`.

use super::super::{BlockQ4_0, BlockQ8_0};
use super::blocks32::*;
use core::arch::x86_64::*;

/// `Σ (q - 8)·y` of one block in eight `i32` lanes with `maddubs` (exact for any `y`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn block_avx2(q: __m256i, y: &BlockQ8_0) -> __m256i {
    let y = legacy_load_i8x32(&y.qs);
    let qy = _mm256_maddubs_epi16(q, y);
    let ey = _mm256_maddubs_epi16(_mm256_set1_epi8(8), y);
    _mm256_madd_epi16(_mm256_sub_epi16(qy, ey), _mm256_set1_epi16(1))
}

/// [`block_avx2`] with `vpdpbusd`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn block_vnni(q: __m256i, y: &BlockQ8_0) -> __m256i {
    let y = legacy_load_i8x32(&y.qs);
    let zero = _mm256_setzero_si256();
    _mm256_sub_epi32(_mm256_dpbusd_epi32(zero, q, y), _mm256_dpbusd_epi32(zero, _mm256_set1_epi8(8), y))
}

legacy_vec_dot!(
    /// `BlockQ4_0::vec_dot_unopt` with AVX2.
    vec_dot_avx2, vec_dot_x4_avx2, "avx2,fma,f16c", BlockQ4_0, BlockQ8_0,
    unpack |x| legacy_nibbles(legacy_load_u8x16(&x.qs)), dot |q, y| block_avx2(q, y)
);

legacy_vec_dot!(
    /// `BlockQ4_0::vec_dot_unopt` with AVX-512 VNNI.
    vec_dot_avx512, vec_dot_x4_avx512, "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c", BlockQ4_0, BlockQ8_0,
    unpack |x| legacy_nibbles(legacy_load_u8x16(&x.qs)), dot |q, y| block_vnni(q, y)
);
