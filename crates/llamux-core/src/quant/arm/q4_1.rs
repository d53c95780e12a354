//! `Q4_1` NEON kernel: the dot product with `Q8_1` activations.

use super::common::{dot32, f16, ld_i8, ld_u8, neon_dot_entry, nibbles, s8};
use crate::quant::{BlockQ4_1, BlockQ8_1};
use core::arch::aarch64::*;

/// # Safety
/// With `D`, the CPU must support dotprod.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_body<const D: bool>(xs: &[BlockQ4_1], ys: &[BlockQ8_1]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in xs.iter().zip(ys) {
        let (lo, hi) = nibbles(ld_u8(&x.qs, 0));
        // SAFETY: forwarded from the caller.
        let p = unsafe { dot32::<D>(s8(lo), ld_i8(&y.qs, 0), s8(hi), ld_i8(&y.qs, 16)) };
        sumf += (f16(x.d) * f16(y.d)) * vaddvq_s32(p) as f32 + f16(x.m) * f16(y.s);
    }
    sumf
}

neon_dot_entry!(
    /// `Q4_1 · Q8_1` (twin of `BlockQ4_1::vec_dot_unopt`).
    vec_dot_neon,
    vec_dot_neon_base,
    dot_body,
    BlockQ4_1,
    BlockQ8_1
);
