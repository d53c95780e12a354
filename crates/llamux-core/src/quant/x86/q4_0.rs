//! `Q4_0 × Q8_0` dot products: nibbles kept unsigned, `Σ (q - 8)·y = Σ q·y - 8·Σ y`.

use super::super::{BlockQ4_0, BlockQ8_0};
use super::blocks32::*;

legacy_vec_dot!(
    /// `BlockQ4_0::vec_dot_unopt` with AVX2 (`maddubs` on the unsigned quants, exact for any `y`).
    vec_dot_avx2, vec_dot_rows_x4_avx2, "avx2,fma,f16c", BlockQ4_0, BlockQ8_0,
    unpack |x| legacy_nibbles(legacy_load_u8x16(&x.qs)),
    dot |q, y| legacy_dot_u7i8_avx2(q, legacy_load_i8x32(&y.qs)),
    offset |y| legacy_dot_u7i8_avx2(_mm256_set1_epi8(8), legacy_load_i8x32(&y.qs))
);

legacy_vec_dot!(
    /// `BlockQ4_0::vec_dot_unopt` with AVX-512 VNNI (`vpdpbusd`).
    vec_dot_avx512, vec_dot_rows_x4_avx512, "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c", BlockQ4_0, BlockQ8_0,
    unpack |x| legacy_nibbles(legacy_load_u8x16(&x.qs)),
    dot |q, y| _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, legacy_load_i8x32(&y.qs)),
    offset |y| _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), legacy_load_i8x32(&y.qs))
);

crate::quant::x86::tile::legacy_tile!(
    /// `vec_dot_avx512` of rows against tokens laid out as tiles, bit for bit.
    vec_dot_tile_avx512, BlockQ4_0,
    unpack |x| {
        use crate::quant::x86::blocks32::*;
        legacy_nibbles(legacy_load_u8x16(&x.qs))
    }, zero_log2: 3
);

crate::quant::x86::tile::legacy_tile8!(
    /// `vec_dot_avx2` of rows against tokens laid out as tiles, eight at a time, bit for bit.
    vec_dot_tile8_avx2, "avx2,fma,f16c", BlockQ4_0,
    unpack |x| {
        use crate::quant::x86::blocks32::*;
        legacy_nibbles(legacy_load_u8x16(&x.qs))
    },
    acc |acc, w, y| {
        use crate::quant::x86::blocks32::*;
        _mm256_add_epi32(acc, legacy_dot_u7i8_avx2(w, y))
    }, zero_log2: 3
);

crate::quant::x86::tile::legacy_tile8!(
    /// `vec_dot_avx512` of rows against at most eight tokens laid out as tiles, bit for bit.
    vec_dot_tile8_avx512, "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c", BlockQ4_0,
    unpack |x| {
        use crate::quant::x86::blocks32::*;
        legacy_nibbles(legacy_load_u8x16(&x.qs))
    },
    acc |acc, w, y| _mm256_dpbusd_epi32(acc, w, y), zero_log2: 3
);
