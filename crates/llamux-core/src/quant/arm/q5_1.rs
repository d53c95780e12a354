//! `Q5_1` NEON kernel: the dot product with `Q8_1` activations.

use super::common::{dot32, f16, ld_i8, ld_u8, neon_dot_entry, nibbles, q5_high_bits, s8};
use crate::quant::{BlockQ5_1, BlockQ8_1};
use core::arch::aarch64::*;

/// # Safety
/// With `D`, the CPU must support dotprod.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_body<const D: bool>(xs: &[BlockQ5_1], ys: &[BlockQ8_1]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in xs.iter().zip(ys) {
        let (lo, hi) = nibbles(ld_u8(&x.qs, 0));
        let (hlo, hhi) = q5_high_bits(x.qh);
        let (lo, hi) = (s8(vorrq_u8(lo, hlo)), s8(vorrq_u8(hi, hhi)));
        // SAFETY: forwarded from the caller.
        let p = unsafe { dot32::<D>(lo, ld_i8(&y.qs, 0), hi, ld_i8(&y.qs, 16)) };
        sumf += (f16(x.d) * f16(y.d)) * vaddvq_s32(p) as f32 + f16(x.m) * f16(y.s);
    }
    sumf
}

neon_dot_entry!(
    /// `Q5_1 · Q8_1` (twin of `BlockQ5_1::vec_dot_unopt`).
    vec_dot_neon,
    vec_dot_neon_base,
    dot_body,
    BlockQ5_1,
    BlockQ8_1
);
