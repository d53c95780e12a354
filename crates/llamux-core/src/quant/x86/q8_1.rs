//! `Q8_1` kernels: `Q8_1 × Q8_1` dot products and the activation quantizer.

use super::super::{BlockQ8_1, F16};
use super::blocks32::*;
use super::q8_0::{act_block_avx2, act_block_avx512};
use core::arch::x86_64::*;

legacy_vec_dot!(
    /// `BlockQ8_1::vec_dot_unopt` with AVX2. Activations must not hold -128.
    vec_dot_avx2, vec_dot_rows_x4_avx2, "avx2,fma,f16c", BlockQ8_1, BlockQ8_1,
    unpack |x| legacy_load_i8x32(&x.qs), dot |q, y| legacy_dot_i8_avx2(q, legacy_load_i8x32(&y.qs))
);

legacy_vec_dot!(
    /// `BlockQ8_1::vec_dot_unopt` with AVX-512 VNNI. Activations must not hold -128.
    vec_dot_avx512, vec_dot_rows_x4_avx512, "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c", BlockQ8_1, BlockQ8_1,
    unpack |x| legacy_load_i8x32(&x.qs), dot |q, y| legacy_dot_i8_vnni(q, legacy_load_i8x32(&y.qs))
);

/// `BlockQ8_1::from_float_act` with AVX2, bit for bit (`s` from the exact `i32` sum of the quants).
///
/// # Safety
/// The CPU must run AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn quantize_act_avx2(xs: &[f32], ys: &mut [BlockQ8_1]) {
    for (x, y) in xs.as_chunks::<32>().0.iter().zip(ys) {
        let (d, sum) = act_block_avx2(x, &mut y.qs);
        y.d = F16::from_f32(d);
        y.s = F16::from_f32(d * super::common::hsum_i32_avx2(sum) as f32);
    }
}

/// `BlockQ8_1::from_float_act` with AVX-512, bit for bit.
///
/// # Safety
/// The CPU must run every feature this function enables.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn quantize_act_avx512(xs: &[f32], ys: &mut [BlockQ8_1]) {
    for (x, y) in xs.as_chunks::<32>().0.iter().zip(ys) {
        let (d, sum) = act_block_avx512(x, &mut y.qs);
        y.d = F16::from_f32(d);
        y.s = F16::from_f32(d * _mm512_reduce_add_epi32(sum) as f32);
    }
}
