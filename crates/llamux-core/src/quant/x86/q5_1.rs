//! `Q5_1 × Q8_1` dot products: `Σ q·y` of unsigned 5-bit values, plus `m · s` per block.

use super::super::{BlockQ5_1, BlockQ8_1};
use super::blocks32::*;
use super::q5_0::{legacy_q5_avx2, legacy_q5_avx512};

legacy_vec_dot!(
    /// `BlockQ5_1::vec_dot_unopt` with AVX2.
    vec_dot_avx2, vec_dot_rows_x4_avx2, "avx2,fma,f16c", BlockQ5_1, BlockQ8_1,
    unpack |x| legacy_q5_avx2(&x.qs, x.qh), dot |q, y| legacy_dot_u7i8_avx2(q, legacy_load_i8x32(&y.qs)),
    min: m * s
);

legacy_vec_dot!(
    /// `BlockQ5_1::vec_dot_unopt` with AVX-512 VNNI.
    vec_dot_avx512, vec_dot_rows_x4_avx512, "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c", BlockQ5_1, BlockQ8_1,
    unpack |x| legacy_q5_avx512(&x.qs, x.qh),
    dot |q, y| _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, legacy_load_i8x32(&y.qs)),
    min: m * s
);

crate::quant::x86::tile::legacy_tile!(
    /// `vec_dot_avx512` of rows against tokens laid out as tiles, bit for bit.
    vec_dot_tile_avx512, BlockQ5_1,
    unpack |x| {
        legacy_q5_avx512(&x.qs, x.qh)
    }, min: m
);

crate::quant::x86::tile::legacy_tile8!(
    /// `vec_dot_avx2` of rows against tokens laid out as tiles, eight at a time, bit for bit.
    vec_dot_tile8_avx2, "avx2,fma,f16c", BlockQ5_1,
    unpack |x| legacy_q5_avx2(&x.qs, x.qh),
    acc |acc, w, y| {
        use crate::quant::x86::blocks32::*;
        _mm256_add_epi32(acc, legacy_dot_u7i8_avx2(w, y))
    }, min: m
);

crate::quant::x86::tile::legacy_tile8!(
    /// `vec_dot_avx512` of rows against at most eight tokens laid out as tiles, bit for bit.
    vec_dot_tile8_avx512, "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c", BlockQ5_1,
    unpack |x| legacy_q5_avx512(&x.qs, x.qh),
    acc |acc, w, y| _mm256_dpbusd_epi32(acc, w, y), min: m
);
